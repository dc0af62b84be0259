// The History, Stream and Consumers panels: each a read of the HTTP API
// shown as a table; Consumers also keep each one's lag over time.
'use strict';

// ---- History: the audit query, keyset-paginated by cursor ----

const AUDIT_PAGE = 50;
const HISTORY_COLUMNS = ['time', 'type', 'stream', 'version', 'actor', 'data', 'cursor'];
const audit = { query: null, cursor: null, shown: 0 };

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
  if ($('history-order').value === 'desc') query.set('order', 'desc');
  return query;
}

async function auditPage() {
  const query = new URLSearchParams(audit.query);
  // Newest first starts at the newest event: no `after` on the first page.
  if (audit.cursor !== null) query.set('after', audit.cursor);
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
    audit.cursor = null;
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

const updatedAt = () => `updated ${formatTime(new Date().toISOString()).slice(0, 8)}`;

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

// Each consumer's lag over time, sampled by this page from sign-in on.
const CONSUMER_SAMPLE_MS = 5000;
const TREND_POINTS = 60;
const consumers = { trends: new Map(), timer: null, list: [], at: null };

const consumerKey = (c) => `${c.userId}\u0000${c.consumer}`;

/** Whether the lag shrinks, grows or holds over the kept samples. */
function direction(points) {
  if (points.length < 2) return ['steady', 'not enough samples yet'];
  const first = points[0].behind;
  const last = points[points.length - 1].behind;
  if (last < first) return ['catching-up', `catching up: ${first} → ${last}`];
  if (last > first) return ['falling-behind', `falling behind: ${first} → ${last}`];
  return ['steady', `steady at ${last}`];
}

/** A small line of the lag over the samples kept, with its direction in words. */
function trendCell(c) {
  const points = consumers.trends.get(consumerKey(c)) || [];
  const [kind, words] = direction(points);
  const top = Math.max(1, ...points.map((p) => p.behind));
  // The samples kept span the width, the oldest at the left.
  const xy = points.map((p, i) => `${((i / Math.max(1, points.length - 1)) * 100).toFixed(1)},${(19 - (p.behind / top) * 18).toFixed(1)}`);
  const drawing = svg('svg', { viewBox: '0 0 100 20', class: 'spark', role: 'img', 'aria-label': words });
  drawing.append(svg('polyline', { class: 'line', points: xy.join(' ') }));
  const arrow = { 'catching-up': '↘', 'falling-behind': '↗', steady: '→' }[kind];
  return el('td', { class: `trend ${kind}`, title: words }, drawing, el('span', { class: 'arrow', 'aria-hidden': 'true' }, arrow));
}

function drawConsumers() {
  const list = consumers.list;
  $('consumers-list').replaceChildren(...list.map((c) => el('tr', { 'data-test': 'consumer', 'data-consumer': c.consumer, 'data-behind': c.behind, 'data-trend': direction(consumers.trends.get(consumerKey(c)) || [])[0] },
    el('td', { class: 'mono' }, c.consumer), el('td', { class: 'mono' }, c.userId), el('td', { class: 'mono cursor' }, c.cursor),
    behindCell(c), trendCell(c), el('td', { class: 'time', title: c.updatedAt }, ago(c.updatedAt)))));
  if (!list.length) $('consumers-list').append(el('tr', {}, el('td', { colspan: 6, class: 'empty muted' }, 'No stored consumers yet.')));
  $('consumers-status').textContent = `${list.length} consumer${list.length === 1 ? '' : 's'} · lag sampled every ${CONSUMER_SAMPLE_MS / 1000} s · ${consumers.at}`;
}

async function sampleConsumers() {
  try {
    const { consumers: list } = await api('/api/consumers');
    const t = Date.now();
    for (const c of list) {
      const key = consumerKey(c);
      const points = consumers.trends.get(key) || [];
      points.push({ t, behind: c.behind });
      if (points.length > TREND_POINTS) points.shift();
      consumers.trends.set(key, points);
    }
    consumers.list = list;
    consumers.at = updatedAt();
    if (current === 'consumers') drawConsumers();
    showError('consumers-error', null);
  } catch (error) {
    showError('consumers-error', error);
  }
}

panels.consumers = {
  start() {
    consumers.trends = new Map();
    consumers.list = [];
    if (!can('auditor')) return;
    sampleConsumers();
    consumers.timer = setInterval(sampleConsumers, CONSUMER_SAMPLE_MS);
  },
  stop() {
    clearInterval(consumers.timer);
  },
  show() {
    if (!can('auditor')) return showError('consumers-error', new Error('Consumers need the auditor or admin role.'));
    if (consumers.at) drawConsumers();
  },
};

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
