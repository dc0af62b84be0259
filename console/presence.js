// The Presence panel: who is online, pushed by the server over the live
// feed's socket, never polled. The client library keeps the list
// (`feed.onPresence`, from `presence:list` and `presence:diff`). Above the
// server's list limit a diff carries only `online`: the panel shows that
// count and loads names on demand.
'use strict';

const presence = {
  users: new Map(), // userId → { userId, username, connections }
  online: 0,
  large: false, // over the list limit: names only on demand
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

/** After a change is pushed, one list call brings the connection counts
 * up to date (a diff names who joined and left, not how many sockets each has). */
function recount(feed) {
  clearTimeout(presence.recount);
  presence.recount = setTimeout(() => !presence.large && loadPresence(feed), 300);
}

/** Follows the presence of the feed's tenant, as the library keeps it. */
function followPresence(feed) {
  presence.users = new Map();
  presence.large = false;
  feed.onPresence((users, info) => {
    presence.users = new Map(users.map((u) => [u.userId, { ...u }]));
    presence.online = info && typeof info.online === 'number' ? info.online : users.length;
    presence.large = presence.online > users.length;
    drawPresence();
    recount(feed);
  });
}

panels.presence = {
  start() {
    live.onFeed.add(followPresence);
  },
  stop() {
    live.onFeed.delete(followPresence);
    clearTimeout(presence.recount);
  },
  show() {
    if (live.feed && !presence.users.size && !presence.large) loadPresence(live.feed);
    else drawPresence();
  },
};

document.addEventListener('DOMContentLoaded', () => {
  $('presence-load').addEventListener('click', () => live.feed && loadPresence(live.feed));
});
