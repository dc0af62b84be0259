// The Health panel: small charts of this node's /metrics, sampled every few
// seconds from sign-in on, so a few minutes of history are there when the
// panel opens.
'use strict';

const SAMPLE_MS = 3000;
const WINDOW_MS = 5 * 60 * 1000;

/** What is charted: how to read each figure from two successive samples. */
const CHARTS = [
  {
    key: 'rate',
    title: 'Appends per second',
    note: 'events committed on all nodes',
    unit: '/s',
    value: (now, before) => (before ? Math.max(0, (now.delivered - before.delivered) / ((now.t - before.t) / 1000)) : null),
  },
  { key: 'sockets', title: 'Connected sockets', note: 'on this node', unit: '', value: (now) => now.sockets },
  { key: 'lag', title: 'Delivery lag', note: 'append to this node’s read, newest event', unit: ' s', value: (now) => now.lag },
];

const health = { first: 0, samples: [], points: { rate: [], sockets: [], lag: [] }, timer: null, figures: {} };

/** The value of an unlabelled metric in Prometheus text, or 0 when absent. */
function metric(text, name) {
  const match = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+|NaN)$`, 'm'));
  return match ? Number(match[1]) || 0 : 0;
}

async function sample() {
  try {
    const res = await fetch('/metrics');
    const text = await res.text();
    const now = {
      t: Date.now(),
      delivered: metric(text, 'eventfeed_delivered_events_total'),
      sockets: metric(text, 'eventfeed_connected_sockets'),
      lag: metric(text, 'eventfeed_tailer_lag_seconds'),
    };
    const before = health.samples[health.samples.length - 1];
    if (!before) health.first = now.t;
    health.samples = [...health.samples.slice(-1), now];
    for (const chart of CHARTS) {
      const value = chart.value(now, before);
      if (value === null) continue;
      const points = health.points[chart.key];
      points.push({ t: now.t, v: value });
      while (points.length && points[0].t < now.t - WINDOW_MS) points.shift();
    }
    draw();
    $('health-status').textContent = `sampled every ${SAMPLE_MS / 1000} s · ${updatedAt()}`;
    showError('health-error', null);
  } catch (error) {
    showError('health-error', error);
  }
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function format(v, unit) {
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(unit === '' ? 0 : digits)}${unit}`;
}

/** One chart's frame, made once; `draw` fills in its line. */
function figure(chart) {
  const value = el('span', { class: 'value' }, '–');
  const drawing = svg('svg', { viewBox: '0 0 300 100', preserveAspectRatio: 'none', role: 'img', 'aria-label': chart.title });
  for (const y of [1, 50, 99]) drawing.append(svg('line', { class: 'grid', x1: 0, x2: 300, y1: y, y2: y }));
  const area = svg('path', { class: 'area', d: '' });
  const line = svg('polyline', { class: 'line', points: '' });
  drawing.append(area, line);
  const max = el('span', {}, '');
  const since = el('span', {}, '');
  const node = el('figure', { class: 'chart', 'data-chart': chart.key },
    el('figcaption', {}, el('span', {}, el('h2', {}, chart.title), el('span', { class: 'label' }, chart.note)), value),
    drawing,
    el('div', { class: 'axis', 'aria-hidden': 'true' }, since, max, el('span', {}, 'now')));
  return { node, value, drawing, area, line, max, since };
}

/** The time the charts span: what has been sampled, from one minute up to five. */
function span(now) {
  return Math.min(WINDOW_MS, Math.max(60000, now - health.first));
}

function draw() {
  const now = Date.now();
  const width = span(now);
  const since = width < 120000 ? `−${Math.round(width / 1000)} s` : `−${Math.round(width / 60000)} min`;
  for (const chart of CHARTS) {
    const f = health.figures[chart.key];
    const points = health.points[chart.key];
    if (!f || !points.length) continue;
    const top = Math.max(...points.map((p) => p.v), chart.key === 'lag' ? 0.1 : 1) * 1.15;
    const xy = points.map((p) => [((p.t - (now - width)) / width) * 300, 99 - (p.v / top) * 98]);
    const coords = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    f.line.setAttribute('points', coords);
    f.area.setAttribute('d', `M${xy[0][0].toFixed(1)},99 L${coords.replace(/ /g, ' L')} L${xy[xy.length - 1][0].toFixed(1)},99 Z`);
    const latest = format(points[points.length - 1].v, chart.unit);
    f.value.textContent = latest;
    f.since.textContent = since;
    f.max.textContent = `max ${format(top / 1.15, chart.unit)}`;
    f.drawing.setAttribute('aria-label', `${chart.title} over the last ${since.slice(1)}: now ${latest}, at most ${format(top / 1.15, chart.unit)}`);
  }
}

panels.health = {
  start() {
    health.samples = [];
    health.points = { rate: [], sockets: [], lag: [] };
    sample();
    health.timer = setInterval(sample, SAMPLE_MS);
  },
  stop() {
    clearInterval(health.timer);
  },
  show: draw,
};

document.addEventListener('DOMContentLoaded', () => {
  const box = $('health');
  for (const chart of CHARTS) {
    health.figures[chart.key] = figure(chart);
    box.append(health.figures[chart.key].node);
  }
});
