// The Health panel: small charts of appends, sockets and delivery lag.
//
// For an admin they are drawn from GET /api/stats: the server's last 15
// minutes of per-second samples of every node, one line per node, so they
// are all there after a reload, plus the tenant's live deliveries by type.
// Other tokens get this node's /metrics, sampled from sign-in on.
'use strict';

const SAMPLE_MS = 3000;
const STATS_WINDOW_MS = 15 * 60 * 1000;
const METRICS_WINDOW_MS = 5 * 60 * 1000;
/** Node lines get these colour classes in turn. */
const NODE_COLOURS = 4;
/** Types shown under "Deliveries by type", the busiest first. */
const TOP_TYPES = 8;
/** A node whose newest sample is older than this has stopped. */
const STALE_MS = 15000;

const CHARTS = [
  { key: 'rate', title: 'Appends per second', unit: '/s', total: 'sum' },
  { key: 'sockets', title: 'Connected sockets', unit: '', total: 'sum' },
  { key: 'lag', title: 'Delivery lag', unit: ' s', total: 'max' },
];
const NOTES = {
  stats: { rate: 'events committed, per node', sockets: 'per node', lag: 'append to each node’s read, newest event' },
  metrics: { rate: 'events read by this node', sockets: 'on this node', lag: 'append to this node’s read, newest event' },
};

const health = {
  source: null, // 'stats' (admin) or 'metrics'
  self: null, // the answering node
  series: { rate: new Map(), sockets: new Map(), lag: new Map() }, // node → [{ t, v }]
  deliveries: new Map(), // type → [{ t, v }]
  window: METRICS_WINDOW_MS,
  first: 0,
  previous: null,
  timer: null,
  figures: {},
};

/** The value of an unlabelled metric in Prometheus text, or 0 when absent. */
function metric(text, name) {
  const match = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+|NaN)$`, 'm'));
  return match ? Number(match[1]) || 0 : 0;
}

/** Rebuilds every series from the server's samples: nothing depends on this page's age. */
function fromStats(stats) {
  health.self = stats.node;
  health.series = { rate: new Map(), sockets: new Map(), lag: new Map() };
  const byType = new Map();
  for (const { node, samples } of stats.nodes) {
    for (const key of Object.keys(health.series)) health.series[key].set(node, []);
    for (const s of samples) {
      const t = new Date(s.at).getTime();
      health.series.rate.get(node).push({ t, v: s.appends });
      health.series.sockets.get(node).push({ t, v: s.sockets });
      health.series.lag.get(node).push({ t, v: s.lag });
      for (const [type, n] of Object.entries(s.deliveries || {})) {
        const points = byType.get(type) || new Map();
        points.set(t, (points.get(t) || 0) + n);
        byType.set(type, points);
      }
    }
  }
  health.deliveries = new Map([...byType].map(([type, points]) => [type, [...points].sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ t, v }))]));
  health.first = Math.min(Date.now(), ...stats.nodes.flatMap((n) => n.samples.map((s) => new Date(s.at).getTime())));
}

/** Adds one /metrics sample of this node to the series. */
function fromMetrics(text) {
  const now = { t: Date.now(), read: metric(text, 'eventfeed_delivered_events_total') };
  const before = health.previous;
  health.previous = now;
  if (!before) {
    health.first = now.t;
    return;
  }
  const values = {
    rate: Math.max(0, (now.read - before.read) / ((now.t - before.t) / 1000)),
    sockets: metric(text, 'eventfeed_connected_sockets'),
    lag: metric(text, 'eventfeed_tailer_lag_seconds'),
  };
  for (const [key, v] of Object.entries(values)) {
    const points = health.series[key].get('this node') || [];
    points.push({ t: now.t, v });
    while (points.length && points[0].t < now.t - health.window) points.shift();
    health.series[key].set('this node', points);
  }
}

async function sample() {
  try {
    if (health.source === 'stats') fromStats(await api('/api/stats'));
    else fromMetrics(await (await fetch('/metrics')).text());
    draw();
    const what = health.source === 'stats' ? `${health.series.rate.size} node${health.series.rate.size === 1 ? '' : 's'}, last 15 min` : 'this node, sampled by this page';
    $('health-status').textContent = `${what} · ${updatedAt()}`;
    showError('health-error', null);
  } catch (error) {
    showError('health-error', error);
  }
}

function format(v, unit) {
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(unit === '' ? 0 : digits)}${unit}`;
}

/** One chart's frame, made once; `draw` fills in its lines. */
function figure(chart) {
  const value = el('span', { class: 'value' }, '–');
  const note = el('span', { class: 'label' }, '');
  const drawing = svg('svg', { viewBox: '0 0 300 100', preserveAspectRatio: 'none', role: 'img', 'aria-label': chart.title });
  for (const y of [1, 50, 99]) drawing.append(svg('line', { class: 'grid', x1: 0, x2: 300, y1: y, y2: y }));
  const lines = svg('g', {});
  drawing.append(lines);
  const max = el('span', {}, '');
  const since = el('span', {}, '');
  const node = el('figure', { class: 'chart', 'data-chart': chart.key },
    el('figcaption', {}, el('span', {}, el('h2', {}, chart.title), note), value),
    drawing,
    el('div', { class: 'axis', 'aria-hidden': 'true' }, since, max, el('span', {}, 'now')));
  return { node, value, note, drawing, lines, max, since };
}

/** The time the charts span: what has been sampled, from one minute up to the window. */
function span(now) {
  return Math.min(health.window, Math.max(60000, now - health.first));
}

const sinceText = (width) => (width < 120000 ? `−${Math.round(width / 1000)} s` : `−${Math.round(width / 60000)} min`);

/** Coordinates of points in a 300 × 100 box whose top is `top`. */
function coords(points, now, width, top) {
  return points.map((p) => `${(((p.t - (now - width)) / width) * 300).toFixed(1)},${(99 - (p.v / top) * 98).toFixed(1)}`).join(' ');
}

function drawChart(chart, now, width) {
  const f = health.figures[chart.key];
  const nodes = [...health.series[chart.key]].filter(([, points]) => points.length);
  f.note.textContent = NOTES[health.source || 'metrics'][chart.key];
  if (!nodes.length) return;
  const all = nodes.flatMap(([, points]) => points.map((p) => p.v));
  const top = Math.max(...all, chart.key === 'lag' ? 0.1 : 1) * 1.15;
  f.lines.replaceChildren(...nodes.map(([node, points], i) => {
    const line = svg('polyline', { class: `line node-${i % NODE_COLOURS}`, points: coords(points, now, width, top) });
    line.append(svg('title', {}));
    line.firstChild.textContent = node === health.self ? `${node} (this node)` : node;
    return line;
  }));
  // The figure now: of the nodes still sampling (a stopped node keeps its line, not its say).
  const running = nodes.filter(([, points]) => points[points.length - 1].t > now - STALE_MS);
  const latest = (running.length ? running : nodes).map(([, points]) => points[points.length - 1].v);
  const value = chart.total === 'sum' ? latest.reduce((a, b) => a + b, 0) : Math.max(...latest);
  f.value.textContent = format(value, chart.unit);
  f.since.textContent = sinceText(width);
  f.max.textContent = `max ${format(top / 1.15, chart.unit)}`;
  const across = nodes.length > 1 ? ` across ${nodes.length} nodes` : '';
  f.drawing.setAttribute('aria-label', `${chart.title}${across} over the last ${sinceText(width).slice(1)}: now ${format(value, chart.unit)}, at most ${format(top / 1.15, chart.unit)}`);
}

/** The legend: which line is which node. */
function drawLegend() {
  const nodes = [...health.series.rate.keys()];
  $('health-nodes').replaceChildren(...(nodes.length > 1 || health.source === 'stats' ? nodes : []).map((node, i) =>
    el('li', { 'data-node': node }, el('span', { class: `swatch node-${i % NODE_COLOURS}`, 'aria-hidden': 'true' }),
      el('code', {}, node.slice(0, 8)), node === health.self ? ' this node' : '')));
}

/** Live deliveries of the tenant's events by type, summed over the nodes. */
function drawDeliveries(now, width) {
  const box = $('health-deliveries');
  box.hidden = health.source !== 'stats';
  const total = (points) => points.reduce((n, p) => n + p.v, 0);
  const types = [...health.deliveries].sort((a, b) => total(b[1]) - total(a[1]) || (a[0] < b[0] ? -1 : 1)).slice(0, TOP_TYPES);
  const list = $('health-types');
  list.replaceChildren(...types.map(([type, points]) => {
    const top = Math.max(1, ...points.map((p) => p.v)) * 1.15;
    const spark = svg('svg', { viewBox: '0 0 300 100', preserveAspectRatio: 'none', class: 'spark', role: 'img', 'aria-label': `${type}: ${total(points)} deliveries` });
    // A bar per second with deliveries: bursts stay visible, however short.
    const bars = points.map((p) => `M${(((p.t - (now - width)) / width) * 300).toFixed(1)},99 V${(99 - (p.v / top) * 98).toFixed(1)}`);
    spark.append(svg('line', { class: 'grid', x1: 0, x2: 300, y1: 99, y2: 99 }), svg('path', { class: 'bars', d: bars.join(' ') }));
    return el('li', { 'data-type': type }, el('code', {}, type), spark, el('span', { class: 'num' }, total(points).toLocaleString('en')));
  }));
  if (!types.length) list.append(el('li', { class: 'muted' }, 'No event was sent live to a socket in this window.'));
}

function draw() {
  const now = Date.now();
  const width = span(now);
  for (const chart of CHARTS) drawChart(chart, now, width);
  drawLegend();
  drawDeliveries(now, width);
}

/** Samples every few seconds: /metrics from sign-in on (the page keeps the
 * history), /api/stats only while the panel is open (the server keeps it). */
function sampleEvery() {
  clearInterval(health.timer);
  sample();
  health.timer = setInterval(sample, SAMPLE_MS);
}

panels.health = {
  start() {
    health.source = can('admin') ? 'stats' : 'metrics';
    health.window = health.source === 'stats' ? STATS_WINDOW_MS : METRICS_WINDOW_MS;
    health.series = { rate: new Map(), sockets: new Map(), lag: new Map() };
    health.deliveries = new Map();
    health.previous = null;
    health.self = null;
    $('health-title').textContent = health.source === 'stats' ? 'Every node' : 'This node';
    if (health.source === 'metrics') sampleEvery();
  },
  stop() {
    clearInterval(health.timer);
  },
  show() {
    if (health.source === 'stats') sampleEvery();
    else draw();
  },
  hide() {
    if (health.source === 'stats') clearInterval(health.timer);
  },
};

document.addEventListener('DOMContentLoaded', () => {
  const box = $('health');
  for (const chart of CHARTS) {
    health.figures[chart.key] = figure(chart);
    box.append(health.figures[chart.key].node);
  }
});
