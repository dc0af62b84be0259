// Reading what is stored, page by page, over HTTP: the feed's history
// (`GET /api/events`), one stream (`GET /api/streams/{stream}`) and the
// audit query (`GET /api/audit`). Each is an async iterator over the
// server's pages, `{ events, cursor?, hasMore }`; the next page is asked for
// only when the caller takes it, and the token is the feed's, refreshed as
// for everything else.

/** The query string of `params`, without the ones left out. */
function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    q.set(key, Array.isArray(value) ? value.join(',') : value instanceof Date ? value.toISOString() : String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Pages of `path` with `params`; `next(page, params)` gives the next page's
 * params, or null when there is none.
 */
async function* pages(feed, path, params, next) {
  for (let p = params; p; ) {
    const page = await feed._http('GET', path + query(p));
    yield page;
    p = page.hasMore ? next(page, p) : null;
  }
}

/**
 * The feed's events after `after` (default `0`, the first), `types` as the feed takes them.
 * @param {import('./index.js').EventFeed} feed
 * @param {import('../index.js').HistoryOptions} [o]
 */
export function history(feed, { after = '0', types, limit } = {}) {
  const next = (page, p) => ({ ...p, after: page.cursor });
  return pages(feed, '/api/events', { after, types, limit }, next);
}

/**
 * One stream's events in version order, from `fromVersion` (default 1).
 * @param {import('./index.js').EventFeed} feed
 * @param {string} name
 * @param {import('../index.js').StreamOptions} [o]
 */
export function stream(feed, name, { fromVersion, limit } = {}) {
  const path = `/api/streams/${String(name).split('/').map(encodeURIComponent).join('/')}`;
  const next = (page, p) => ({ ...p, fromVersion: page.events[page.events.length - 1].version + 1 });
  return pages(feed, path, { fromVersion, limit }, next);
}

/**
 * The audit query: `type`, `stream`, `actor`, `from`, `to` (Date or RFC 3339), `after`, `limit`.
 * @param {import('./index.js').EventFeed} feed
 * @param {import('../index.js').AuditFilters} [o]
 */
export function audit(feed, { type, stream: name, actor, from, to, after, limit } = {}) {
  const next = (page, p) => ({ ...p, after: page.cursor });
  return pages(feed, '/api/audit', { type, stream: name, actor, from, to, after, limit }, next);
}
