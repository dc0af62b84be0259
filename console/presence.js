// The Presence panel: who is online, pushed by the server over the live
// feed's socket, never polled.
//
// With a client library that has `feed.onPresence`, the library keeps the
// list. Otherwise this file follows the feed's socket itself: `presence:list`
// at each connect, then `presence:diff` ({ online, joins?, leaves? }) and
// `user:online` / `user:offline`. Above the server's list limit a diff carries
// only `online`: the panel shows that count and loads names on demand.
'use strict';

const presence = {
  users: new Map(), // userId → { userId, username, connections }
  online: 0,
  large: false, // over the list limit: names only on demand
  socket: null,
  recount: null,
};

function drawPresence() {
  const users = [...presence.users.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  $('presence-list').replaceChildren(...users.map((u) => el('tr', { 'data-test': 'user', 'data-user': u.userId },
    el('td', { class: 'mono' }, u.userId), el('td', {}, u.username || '—'), el('td', { class: 'num' }, u.connections === null ? '—' : String(u.connections)))));
  if (!users.length) {
    const text = presence.large ? 'Load the names to list them.' : 'Nobody is connected.';
    $('presence-list').append(el('tr', {}, el('td', { colspan: 3, class: 'empty muted' }, text)));
  }
  $('presence-large').hidden = !presence.large;
  $('presence-count').textContent = presence.online.toLocaleString('en');
  const sockets = users.reduce((n, u) => n + (u.connections || 0), 0);
  const listed = presence.large ? `${presence.online} online, ${users.length} listed` : `${users.length} user${users.length === 1 ? '' : 's'}, ${sockets} connection${sockets === 1 ? '' : 's'}`;
  $('presence-status').textContent = `${listed} · pushed live · ${updatedAt()}`;
}

/** Replaces the list with the server's (`presence:list`). */
async function loadPresence(feed) {
  try {
    const users = await feed.presence();
    presence.users = new Map(users.map((u) => [u.userId, { ...u }]));
    if (!presence.large) presence.online = users.length;
    drawPresence();
    showError('presence-error', null);
  } catch (error) {
    showError('presence-error', error);
  }
}

/** After a change, one list call brings the connection counts up to date. */
function recount(feed) {
  clearTimeout(presence.recount);
  presence.recount = setTimeout(() => !presence.large && loadPresence(feed), 300);
}

function onDiff(feed, diff) {
  presence.online = diff.online;
  const named = Array.isArray(diff.joins) || Array.isArray(diff.leaves);
  presence.large = !named && diff.online > presence.users.size;
  for (const u of diff.joins || []) if (!presence.users.has(u.userId)) presence.users.set(u.userId, { ...u, connections: null });
  for (const id of diff.leaves || []) presence.users.delete(id);
  drawPresence();
  recount(feed);
}

function onUser(feed, online, u) {
  if (online && !presence.users.has(u.userId)) presence.users.set(u.userId, { userId: u.userId, username: u.username, connections: null });
  if (!online) presence.users.delete(u.userId);
  if (!presence.large) presence.online = presence.users.size;
  drawPresence();
  recount(feed);
}

/** Follows the presence of the feed's tenant: through the library when it can, else on its socket. */
function followPresence(feed) {
  presence.users = new Map();
  presence.large = false;
  if (typeof feed.onPresence === 'function') {
    feed.onPresence((users, info) => {
      presence.users = new Map(users.map((u) => [u.userId, { ...u }]));
      presence.online = info && typeof info.online === 'number' ? info.online : users.length;
      presence.large = presence.online > users.length;
      drawPresence();
    });
    return;
  }
  feed.onStatus((info) => {
    const status = typeof info === 'string' ? info : info.status;
    const socket = feed._link && feed._link.socket;
    if (status !== 'live' && status !== 'replaying') return;
    if (socket && socket !== presence.socket) {
      presence.socket = socket;
      socket.on('presence:diff', (diff) => onDiff(feed, diff));
      socket.on('user:online', (u) => onUser(feed, true, u));
      socket.on('user:offline', (u) => onUser(feed, false, u));
    }
    loadPresence(feed); // what changed while the socket was down
  });
}

panels.presence = {
  start() {
    live.onFeed.add(followPresence);
  },
  stop() {
    live.onFeed.delete(followPresence);
    clearTimeout(presence.recount);
    presence.socket = null;
  },
  show() {
    if (live.feed && !presence.users.size && !presence.large) loadPresence(live.feed);
    else drawPresence();
  },
};

document.addEventListener('DOMContentLoaded', () => {
  $('presence-load').addEventListener('click', () => live.feed && loadPresence(live.feed));
});
