// The Live panel: the feed through the client library (EventFeed, from
// /eventfeed.js), newest first, and the Append form.
//
// The library keeps the cursor, reconnects from it, and falls back to SSE or
// long-polling when WebSockets are blocked. Its cursor storage here is this
// page's memory: a reload starts where the operator asks (Start from), not
// where another tab stopped. Types filter on the server; stream and actor on
// this page, as the feed has no such filter.
'use strict';

/** Rows kept on screen; older ones leave the bottom of the table. */
const LIVE_ROWS = 2000;
const LIVE_COLUMNS = ['time', 'type', 'stream', 'version', 'actor', 'data', 'cursor'];
/** The most events "Start from N" may go back. */
const LIVE_BACK_MAX = 1000;

const live = {
  feed: null,
  types: [],
  stream: '',
  actor: '',
  paused: false,
  held: [], // events that arrived while paused, oldest first
  onFeed: new Set(), // called with each new feed (presence follows the feed's socket)
};

function liveStatus(text, kind = '') {
  const status = $('live-status');
  status.textContent = text;
  status.className = `status ${kind}`;
}

/** A cursor storage that starts at `start` and keeps what the feed reached in memory. */
function startingAt(start) {
  const kept = new Map();
  return { getItem: (key) => (kept.has(key) ? kept.get(key) : start), setItem: (key, value) => kept.set(key, value) };
}

const STATUS_TEXT = {
  connecting: ['connecting…', ''],
  replaying: ['replaying from the start point…', 'paused'],
  live: ['live', 'live'],
  fallback: ['live over HTTP (WebSocket unavailable)', 'live'],
  offline: ['reconnecting…', ''],
};

function onFeedStatus(info) {
  const { status } = info;
  if (status === 'unauthorized') return signOut('The server refused the token: sign in with a new one.');
  if (status === 'closed') return;
  const [text, kind] = STATUS_TEXT[status] || [status, ''];
  liveStatus(live.paused && kind === 'live' ? 'paused: new events are held, none is lost' : text, live.paused ? 'paused' : kind);
}

/** Opens a feed from `start` (a cursor, or null for what comes next), closing any other. */
function liveOpen(start) {
  liveClose();
  const feed = new EventFeed(location.origin, {
    token: () => session.token,
    types: live.types.length ? live.types : undefined,
    after: start === null ? 'head' : start,
    storage: startingAt(start),
  });
  live.feed = feed;
  feed.onStatus(onFeedStatus);
  feed.onReset(() => liveStatus('reset: the start was older than the retention; now live from the newest event', 'paused'));
  feed.on('*', onLiveEvent);
  for (const hook of live.onFeed) hook(feed);
}

function liveClose() {
  if (live.feed) live.feed.close().catch(() => {});
  live.feed = null;
}

function shown(event) {
  return (!live.stream || event.stream === live.stream) && (!live.actor || (event.actor && event.actor.userId === live.actor));
}

function onLiveEvent(event) {
  if (!shown(event)) return;
  if (live.paused) {
    live.held.push(event);
    $('live-pause').textContent = `Resume (${live.held.length} new)`;
  } else {
    addLiveRows([event]);
  }
}

/** Puts events (oldest first) at the top of the table. */
function addLiveRows(events) {
  const list = $('live-list');
  const fragment = document.createDocumentFragment();
  for (let i = events.length - 1; i >= 0; i--) {
    const row = eventRow(events[i], LIVE_COLUMNS);
    row.classList.add('fresh');
    fragment.append(row);
  }
  list.prepend(fragment);
  while (list.rows.length > LIVE_ROWS) list.lastElementChild.remove();
  $('live-empty').hidden = list.rows.length > 0;
}

function togglePause() {
  live.paused = !live.paused;
  const button = $('live-pause');
  button.setAttribute('aria-pressed', String(live.paused));
  if (live.paused) {
    button.textContent = 'Resume';
    liveStatus('paused: new events are held, none is lost', 'paused');
  } else {
    const held = live.held;
    live.held = [];
    addLiveRows(held);
    button.textContent = 'Pause';
    if (live.feed) onFeedStatus(live.feed.status);
  }
}

/**
 * Where "Start from" points: null (now), a cursor, or, for a number N, the
 * cursor before the last N matching events (an audit query, newest first).
 * The server checks the types and the cursor, so a bad one is explained.
 */
async function startPoint(from) {
  const types = live.types.join(',');
  const check = new URLSearchParams({ after: /^[1-9][0-9]*$/.test(from) || !from ? '0' : from, limit: '1' });
  if (types) check.set('types', types);
  await api(`/api/events?${check}`);
  if (!from) return null;
  if (!/^[1-9][0-9]*$/.test(from)) return from;
  const n = Number(from);
  if (n > LIVE_BACK_MAX) throw new Error(`start from at most the last ${LIVE_BACK_MAX} events`);
  if (!can('auditor')) throw new Error('starting from the last N events needs the auditor or admin role; give a cursor instead');
  const query = new URLSearchParams({ order: 'desc', limit: String(n + 1) });
  if (types) query.set('type', types);
  if (live.stream) query.set('stream', live.stream);
  if (live.actor) query.set('actor', live.actor);
  const page = await api(`/api/audit?${query}`);
  return page.events.length > n ? page.events[n].cursor : '0';
}

/** Applies the filter form: a new list, from the chosen start. */
async function liveApply() {
  const list = (text) => text.split(',').map((t) => t.trim()).filter(Boolean);
  live.types = list($('live-filter').value);
  live.stream = $('live-stream').value.trim();
  live.actor = $('live-actor').value.trim();
  // Without a start point, a new filter goes on from the last event the
  // previous feed reached, so no event after it is missed in the switch.
  const reached = live.feed && live.feed.cursor;
  liveClose();
  $('live-list').replaceChildren();
  live.held = [];
  if (live.paused) togglePause();
  $('live-empty').hidden = false;
  liveStatus('connecting…');
  try {
    liveOpen(await startPoint($('live-from').value.trim() || reached || ''));
  } catch (error) {
    liveStatus(`stopped: ${error.message}`, 'error');
  }
}

// ---- Append ----

async function appendEvent() {
  showError('append-error', null);
  $('append-result').textContent = '';
  let data;
  try {
    data = JSON.parse($('append-data').value || '{}');
  } catch (error) {
    return showError('append-error', new Error(`data is not JSON: ${error.message}`));
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return showError('append-error', new Error('data must be a JSON object'));
  const button = $('append-submit');
  button.disabled = true;
  try {
    const event = { stream: $('append-stream').value.trim(), type: $('append-type').value.trim(), data };
    // Without a running feed (a refused filter), the HTTP API stores it.
    const stored = live.feed ? await live.feed.append(event) : (await apiSend('POST', '/api/events', event)).events[0];
    $('append-result').textContent = `Stored ${stored.type} as version ${stored.version} of ${stored.stream}, cursor ${stored.cursor}.`;
  } catch (error) {
    const where = error.path ? ` (at ${error.path}: ${error.rule})` : '';
    showError('append-error', new Error(`${error.code ? `${error.code}: ` : ''}${error.message}${where}`));
  } finally {
    button.disabled = false;
  }
}

panels.live = {
  start() {
    if (live.paused) togglePause(); // a new sign-in starts live, not paused
    live.held = [];
    $('live-list').replaceChildren();
    $('live-empty').hidden = false;
    $('append-form').hidden = !(can('publisher') || can('service'));
    liveApply();
  },
  stop() {
    liveClose();
    $('append-result').textContent = '';
    showError('append-error', null);
  },
};

document.addEventListener('DOMContentLoaded', () => {
  $('live-pause').addEventListener('click', togglePause);
  $('live-form').addEventListener('submit', (event) => {
    event.preventDefault();
    liveApply();
  });
  $('append-form').addEventListener('submit', (event) => {
    event.preventDefault();
    appendEvent();
  });
});
