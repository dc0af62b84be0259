// eventfeed console: sign-in, tabs and what every panel shares.
// Plain browser JavaScript, no build step; the other files (live.js,
// panels.js, find.js, types.js, presence.js, health.js) register their
// panels in `panels`. The live feed is the client library (/eventfeed.js).
'use strict';

const TOKEN_KEY = 'eventfeed.console.token';
const $ = (id) => document.getElementById(id);

/** The signed-in session: the token and who the server says it names
 * (`GET /console/session`: tenantId, userId, username, roles). */
const session = { token: null, who: null };

/** Whether the token has `role` (admin has every role). */
function can(role) {
  const roles = (session.who && session.who.roles) || [];
  return roles.includes(role) || roles.includes('admin');
}

/** Panel hooks by name: `show()` when its tab opens, `hide()` when it closes, `start()` at sign-in. */
const panels = {};
let current = null;

/** An error answer of the API: `code` and `status` beside the server's message. */
class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || 'http';
  }
}

/** GETs a JSON path of this server with the session's token. */
async function api(path, token = session.token) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const error = new ApiError(res.status, body);
    if (res.status === 401 && session.token) signOut(`The server refused the token: ${error.message}`);
    throw error;
  }
  return body;
}

/** Sends a JSON body to this server with the session's token. */
async function apiSend(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${session.token}`, Accept: 'application/json', 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => null);
  if (!res.ok) throw Object.assign(new ApiError(res.status, answer), (answer && answer.error) || {});
  return answer;
}

/** Creates an element with attributes and children (text or nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';

/** Creates an SVG element with attributes. */
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local time: `HH:MM:SS.mmm`, with the date when `withDate`. */
function formatTime(iso, withDate = false) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The data cell: a one-line summary that opens to the full JSON. */
function dataCell(e) {
  const detail = { data: e.data };
  if (e.audience) detail.audience = e.audience;
  if (e.metadata) detail.metadata = e.metadata;
  detail.id = e.id;
  return el('td', { class: 'data' },
    el('details', {}, el('summary', {}, truncate(JSON.stringify(e.data), 140)),
      el('pre', {}, JSON.stringify(detail, null, 2))));
}

/** A link-like button that opens the Stream panel on this stream. */
function streamLink(stream) {
  return el('button', { type: 'button', class: 'link', title: `Show stream ${stream}`, onclick: () => panels.stream.open(stream) }, stream);
}

const actorText = (e) => (e.actor ? e.actor.username || e.actor.userId : '—');

/** One event as a table row; `columns` picks and orders the cells. */
function eventRow(e, columns, withDate = false) {
  const cells = {
    time: () => el('td', { class: 'time', title: e.timestamp }, formatTime(e.timestamp, withDate)),
    type: () => el('td', { class: 'type' }, el('code', {}, e.type)),
    stream: () => el('td', { class: 'stream' }, streamLink(e.stream)),
    version: () => el('td', { class: 'num version' }, String(e.version)),
    actor: () => el('td', { class: 'actor', title: e.actor ? e.actor.userId : '' }, actorText(e)),
    data: () => dataCell(e),
    cursor: () => el('td', { class: 'cursor mono' }, el('button', { type: 'button', class: 'link', title: 'Open this event in Find', onclick: () => panels.find.open(e.cursor) }, e.cursor)),
  };
  const attrs = { 'data-test': 'event', 'data-type': e.type, 'data-stream': e.stream, 'data-cursor': e.cursor };
  return el('tr', attrs, ...columns.map((c) => cells[c]()));
}

function showError(id, error) {
  $(id).textContent = error ? error.message || String(error) : '';
}

// ---- tabs ----

function tabs() {
  return [...document.querySelectorAll('[role="tab"]')];
}

function select(name) {
  if (!panels[name]) name = 'live';
  if (current === name) return;
  if (current && panels[current].hide) panels[current].hide();
  current = name;
  for (const tab of tabs()) {
    const on = tab.dataset.panel === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${tab.dataset.panel}`).hidden = !on;
  }
  history.replaceState(null, '', `#${name}`);
  if (panels[name].show) panels[name].show();
}

/** Arrow keys, Home and End move between tabs (the WAI-ARIA tabs pattern). */
function onTabKey(event) {
  const all = tabs();
  const at = all.indexOf(event.target);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  const tab = all[(to + all.length) % all.length];
  tab.focus();
  select(tab.dataset.panel);
}

// ---- sign-in ----

async function signIn(token) {
  // The server verifies the token and says whom it names.
  const who = await api('/console/session', token);
  session.token = token;
  session.who = who;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('who-tenant').textContent = who.tenantId;
  const roles = who.roles.length ? ` · ${who.roles.join(', ')}` : '';
  $('who-user').textContent = `${who.username || who.userId}${roles}`;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('who').hidden = false;
  for (const panel of Object.values(panels)) if (panel.start) panel.start();
  select(location.hash.slice(1));
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.who = null;
  for (const panel of Object.values(panels)) if (panel.stop) panel.stop();
  if (current && panels[current].hide) panels[current].hide();
  current = null;
  // Nothing of this session stays on the page for the next token to see.
  for (const list of document.querySelectorAll('#app tbody')) list.replaceChildren();
  for (const more of document.querySelectorAll('#history-more, #stream-more')) more.hidden = true;
  $('app').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('token').focus();
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('signin-error').textContent = '';
    const token = $('token').value.trim();
    try {
      await signIn(token);
      $('token').value = '';
    } catch (error) {
      $('signin-error').textContent = `Cannot sign in: ${error.message}`;
    }
  });
  $('sign-out').addEventListener('click', () => signOut());
  for (const tab of tabs()) {
    tab.addEventListener('click', () => select(tab.dataset.panel));
    tab.addEventListener('keydown', onTabKey);
  }
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch((error) => signOut(`Cannot sign in: ${error.message}`));
});
