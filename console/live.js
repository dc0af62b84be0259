// The Live panel: the feed over Server-Sent Events, newest first.
//
// The stream is read with fetch rather than EventSource: EventSource only
// hands out events whose names it was told in advance (here every event type
// is a name), cannot send the token in a header, and hides the error body.
// A dropped stream resumes from the last cursor with `Last-Event-ID`.
'use strict';

/** Rows kept on screen; older ones leave the bottom of the table. */
const LIVE_ROWS = 2000;
const LIVE_COLUMNS = ['time', 'type', 'stream', 'version', 'actor', 'data', 'cursor'];

const live = {
  abort: null,
  cursor: null, // the last cursor received: where a reconnect resumes
  types: '',
  paused: false,
  held: [], // events that arrived while paused, oldest first
  retry: 1000,
  timer: null,
};

function liveStatus(text, kind = '') {
  const status = $('live-status');
  status.textContent = text;
  status.className = `status ${kind}`;
}

/** Opens the stream (closing any other) and reads it until it ends or fails. */
async function liveConnect() {
  liveClose();
  const controller = new AbortController();
  live.abort = controller;
  const params = new URLSearchParams();
  if (live.types) params.set('types', live.types);
  const headers = { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' };
  if (live.cursor) headers['Last-Event-ID'] = live.cursor;
  try {
    const res = await fetch(`/api/events/stream?${params}`, { headers, signal: controller.signal });
    if (!res.ok) {
      const error = new ApiError(res.status, await res.json().catch(() => null));
      if (res.status === 401) return signOut(`The server refused the token: ${error.message}`);
      if (res.status < 500) return liveStatus(`stopped: ${error.message}`, 'error');
      throw error;
    }
    liveStatus(live.paused ? 'paused' : 'live', live.paused ? 'paused' : 'live');
    live.retry = 1000;
    await readEvents(res.body, onLiveMessage);
    if (!controller.signal.aborted) liveRetry('the stream ended');
  } catch (error) {
    if (!controller.signal.aborted) liveRetry(error.message);
  }
}

/** Tries again later, waiting longer after each failure (up to 15 s). */
function liveRetry(reason) {
  liveStatus(`reconnecting (${reason})…`);
  live.timer = setTimeout(liveConnect, live.retry);
  live.retry = Math.min(live.retry * 2, 15000);
}

function liveClose() {
  clearTimeout(live.timer);
  if (live.abort) live.abort.abort();
  live.abort = null;
}

/** Parses a text/event-stream body, calling `onMessage({ id, event, data })` per message. */
async function readEvents(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  let message = { id: null, event: 'message', data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    text += value;
    const lines = text.split(/\r\n|\r|\n/);
    text = lines.pop(); // an unfinished line waits for the next chunk
    for (const line of lines) {
      if (line === '') {
        if (message.data.length) onMessage({ ...message, data: message.data.join('\n') });
        message = { id: null, event: 'message', data: [] };
        continue;
      }
      if (line.startsWith(':')) continue; // keep-alive comment
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') message.data.push(val);
      else if (field === 'event') message.event = val;
      else if (field === 'id') message.id = val;
    }
  }
}

function onLiveMessage(message) {
  if (message.event === 'auth:expired') return signOut('The token expired: sign in with a new one.');
  if (message.event === 'feed:reset') {
    const reset = JSON.parse(message.data);
    live.cursor = reset.cursor;
    return liveStatus('reset: the cursor was older than the retention; now live from the newest event', 'paused');
  }
  const event = JSON.parse(message.data);
  live.cursor = message.id || event.cursor;
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
    liveStatus('live', 'live');
  }
}

panels.live = {
  start() {
    if (live.paused) togglePause(); // a new sign-in starts live, not paused
    live.cursor = null;
    live.held = [];
    $('live-list').replaceChildren();
    $('live-empty').hidden = false;
    liveConnect();
  },
  stop: liveClose,
};

document.addEventListener('DOMContentLoaded', () => {
  $('live-pause').addEventListener('click', togglePause);
  // A new filter starts a new list, from the last event seen, so no matching
  // event after it is missed.
  $('live-form').addEventListener('submit', (event) => {
    event.preventDefault();
    live.types = $('live-filter').value.split(',').map((t) => t.trim()).filter(Boolean).join(',');
    $('live-list').replaceChildren();
    live.held = [];
    if (live.paused) togglePause();
    $('live-empty').hidden = false;
    liveConnect();
  });
});
