// The History, Stream, Presence and Consumers panels: each a plain read of
// the HTTP API shown as a table.
'use strict';

// ---- History: the audit query, keyset-paginated by cursor ----

const AUDIT_PAGE = 50;
const HISTORY_COLUMNS = ['time', 'type', 'stream', 'version', 'actor', 'data', 'cursor'];
const audit = { query: null, cursor: '0', shown: 0 };

/** The audit filters from the form; times are the browser's local time. */
function auditQuery() {
  const query = new URLSearchParams();
  for (const [param, id] of [['type', 'history-type'], ['stream', 'history-stream'], ['actor', 'history-actor']]) {
    const value = $(id).value.trim();
    if (value) query.set(param, value);
  }
  for (const [param, id] of [['from', 'history-from'], ['to', 'history-to']]) {
    const value = $(id).value;
    if (value) query.set(param, new Date(value).toISOString());
  }
  return query;
}

async function auditPage() {
  const query = new URLSearchParams(audit.query);
  query.set('after', audit.cursor);
  query.set('limit', String(AUDIT_PAGE));
  $('history-more').disabled = true;
  try {
    const page = await api(`/api/audit?${query}`);
    $('history-list').append(...page.events.map((e) => eventRow(e, HISTORY_COLUMNS, true)));
    audit.cursor = page.cursor;
    audit.shown += page.events.length;
    $('history-more').hidden = !page.hasMore;
    $('history-count').textContent = `${audit.shown} event${audit.shown === 1 ? '' : 's'}${page.hasMore ? ', more available' : ''}`;
    showError('history-error', null);
  } catch (error) {
    showError('history-error', error);
  } finally {
    $('history-more').disabled = false;
  }
}

panels.history = {
  search() {
    audit.query = auditQuery();
    audit.cursor = '0';
    audit.shown = 0;
    $('history-list').replaceChildren();
    $('history-more').hidden = true;
    return auditPage();
  },
};

// ---- Stream: one stream's events by version ----

const STREAM_PAGE = 100;
const STREAM_COLUMNS = ['version', 'time', 'type', 'actor', 'data', 'cursor'];
const stream = { name: null, next: 1, shown: 0 };

async function streamPage() {
  const path = `/api/streams/${encodeURIComponent(stream.name)}?fromVersion=${stream.next}&limit=${STREAM_PAGE}`;
  try {
    const page = await api(path);
    $('stream-list').append(...page.events.map((e) => eventRow(e, STREAM_COLUMNS, true)));
    if (page.events.length) stream.next = page.events[page.events.length - 1].version + 1;
    stream.shown += page.events.length;
    $('stream-more').hidden = !page.hasMore;
    $('stream-count').textContent = stream.shown ? `${stream.shown} event${stream.shown === 1 ? '' : 's'}` : 'No events in this stream (or none you may see).';
    showError('stream-error', null);
  } catch (error) {
    showError('stream-error', error);
  }
}

panels.stream = {
  load(name) {
    Object.assign(stream, { name, next: 1, shown: 0 });
    $('stream-list').replaceChildren();
    return streamPage();
  },
  /** Opens the panel on a stream (from a stream name in another panel). */
  open(name) {
    $('stream-input').value = name;
    select('stream');
    panels.stream.load(name);
  },
};

// ---- Polled panels ----

/** Runs `load` now and every `ms` while its panel is open. */
function poller(load, ms) {
  let timer = null;
  let run = 0; // a tick of an earlier opening stops when the panel reopens
  return {
    show() {
      const mine = ++run;
      const tick = async () => {
        await load();
        if (run === mine) timer = setTimeout(tick, ms);
      };
      tick();
    },
    hide() {
      run++;
      clearTimeout(timer);
    },
  };
}

const updatedAt = () => `updated ${formatTime(new Date().toISOString()).slice(0, 8)}`;

// ---- Presence: who is online, on every node ----

panels.presence = poller(async () => {
  try {
    const { users } = await api('/api/presence');
    $('presence-list').replaceChildren(...users.map((u) => el('tr', { 'data-test': 'user', 'data-user': u.userId },
      el('td', { class: 'mono' }, u.userId), el('td', {}, u.username || '—'), el('td', { class: 'num' }, String(u.connections)))));
    if (!users.length) $('presence-list').append(el('tr', {}, el('td', { colspan: 3, class: 'empty muted' }, 'Nobody is connected.')));
    const sockets = users.reduce((n, u) => n + u.connections, 0);
    $('presence-status').textContent = `${users.length} user${users.length === 1 ? '' : 's'}, ${sockets} connection${sockets === 1 ? '' : 's'} · ${updatedAt()}`;
    showError('presence-error', null);
  } catch (error) {
    showError('presence-error', error);
  }
}, 2000);

// ---- Consumers: stored cursors and how far behind they are ----

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function behindCell(c) {
  // The bar is logarithmic: 1 event and 10,000 both stay visible.
  const share = c.behind ? Math.min(1, Math.log10(c.behind + 1) / 4) : 0;
  const bar = el('span', { class: share > 0.5 ? 'bar far' : 'bar', 'aria-hidden': 'true' }, el('span'));
  bar.firstChild.style.width = `${Math.round(share * 100)}%`;
  const text = c.behindCapped ? `≥ ${c.behind.toLocaleString('en')}` : c.behind.toLocaleString('en');
  return el('td', { class: 'num' }, bar, el('span', { class: c.behindCapped ? 'capped' : '' }, text));
}

panels.consumers = poller(async () => {
  try {
    const { consumers } = await api('/api/consumers');
    $('consumers-list').replaceChildren(...consumers.map((c) => el('tr', { 'data-test': 'consumer', 'data-consumer': c.consumer, 'data-behind': c.behind },
      el('td', { class: 'mono' }, c.consumer), el('td', { class: 'mono' }, c.userId), el('td', { class: 'mono cursor' }, c.cursor),
      behindCell(c), el('td', { class: 'time', title: c.updatedAt }, ago(c.updatedAt)))));
    if (!consumers.length) $('consumers-list').append(el('tr', {}, el('td', { colspan: 5, class: 'empty muted' }, 'No stored consumers yet.')));
    $('consumers-status').textContent = `${consumers.length} consumer${consumers.length === 1 ? '' : 's'} · ${updatedAt()}`;
    showError('consumers-error', null);
  } catch (error) {
    showError('consumers-error', error);
  }
}, 5000);

document.addEventListener('DOMContentLoaded', () => {
  $('history-form').addEventListener('submit', (event) => {
    event.preventDefault();
    panels.history.search();
  });
  $('history-more').addEventListener('click', auditPage);
  $('stream-form').addEventListener('submit', (event) => {
    event.preventDefault();
    panels.stream.load($('stream-input').value.trim());
  });
  $('stream-more').addEventListener('click', streamPage);
});
