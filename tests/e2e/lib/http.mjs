// The HTTP API, through Node's fetch.

import crypto from 'node:crypto';

export async function http(server, method, path, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(server.url + path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, body: json, text, headers: res.headers };
}

/** POST /api/events; `event` is one event or an array (sent as {events}). Returns the envelopes. */
export async function appendHttp(server, token, event) {
  const body = Array.isArray(event) ? { events: event } : event;
  const r = await http(server, 'POST', '/api/events', { token, body });
  if (r.status !== 201) {
    throw new Error(`POST /api/events -> ${r.status} ${r.text.slice(0, 500)} (body sent: ${JSON.stringify(body).slice(0, 300)})`);
  }
  return r.body.events;
}

/** GET /api/events after `after`, every page, until hasMore is false. */
export async function readAll(server, token, after = '0', { types, limit = 1000 } = {}) {
  const out = [];
  let cursor = after;
  for (let page = 0; page < 10_000; page++) {
    const q = new URLSearchParams({ after: cursor, limit: String(limit) });
    if (types) q.set('types', types);
    const r = await http(server, 'GET', `/api/events?${q}`, { token });
    if (r.status !== 200) throw new Error(`GET /api/events?${q} -> ${r.status} ${r.text.slice(0, 500)}`);
    out.push(...r.body.events);
    if (r.body.events.length > 0 && r.body.cursor !== r.body.events.at(-1).cursor) {
      throw new Error(`GET /api/events: cursor ${r.body.cursor} is not the last returned event's cursor ${r.body.events.at(-1).cursor}`);
    }
    if (!r.body.hasMore) return out;
    if (r.body.events.length === 0) throw new Error('GET /api/events: hasMore=true with an empty page');
    cursor = r.body.cursor;
  }
  throw new Error('GET /api/events: too many pages');
}

export function uuid() {
  return crypto.randomUUID();
}

/** A tenant id unique to this run. */
export function tenant(prefix = 't') {
  return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

/**
 * Run `writers` concurrent loops, each calling `appendOne(writer, i)` for its share
 * of `total` appends, one after the other. Resolves with the per-writer results,
 * in the order each writer appended them.
 */
export async function runWriters({ writers, total, appendOne, shouldStop = () => false }) {
  const per = Array.from({ length: writers }, (_, w) => Math.floor(total / writers) + (w < total % writers ? 1 : 0));
  const results = Array.from({ length: writers }, () => []);
  await Promise.all(
    per.map(async (n, w) => {
      for (let i = 0; i < n && !shouldStop(); i++) results[w].push(await appendOne(w, i));
    }),
  );
  return results;
}
