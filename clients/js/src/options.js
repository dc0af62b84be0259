// The options of an EventFeed, checked once at construction: a bad one
// throws a FeedError `invalid` (or `invalid_cursor`) before anything
// connects.

import { FeedError } from './http.js';

/** A type pattern as the server takes it: `*`, `domain:action`, or `domain:*`. */
const PATTERN = /^(\*|[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*:([A-Za-z0-9_.-]+|\*))$/;

/** `types` as a list of valid patterns, or null for every type. */
export function checkTypes(types) {
  if (types === undefined || types === null) return null;
  if (!Array.isArray(types)) throw new FeedError({ code: 'invalid', message: 'types must be a list of type patterns' });
  for (const t of types) {
    if (typeof t !== 'string' || t.length > 100 || !PATTERN.test(t)) {
      throw new FeedError({ code: 'invalid', message: `type pattern ${JSON.stringify(t)} is not valid` });
    }
  }
  return types.length && !types.includes('*') ? [...types] : null;
}

/**
 * `after`: `"stored"` (the default), `"head"`, or a cursor. A cursor is
 * opaque, so only its form is checked here (a short string of URL-safe
 * characters, or 0); the server refuses one it cannot decode.
 */
export function checkAfter(after) {
  if (after === undefined || after === 'stored' || after === 'head') return after ?? 'stored';
  if (after === 0) return '0';
  if (typeof after === 'string' && /^[A-Za-z0-9._~:-]{1,200}$/.test(after)) return after;
  throw new FeedError({ code: 'invalid_cursor', message: `invalid cursor ${JSON.stringify(String(after))}` });
}

/**
 * The transport and behaviour options, with their defaults.
 * @param {Partial<import('../index.js').EventFeedOptions>} o
 */
export function settings(o) {
  const reconnectionDelay = o.reconnectionDelay ?? 500;
  return {
    tenantClaim: o.tenantClaim ?? 'tenant_id',
    path: o.path,
    transports: o.transports,
    withCredentials: o.withCredentials,
    extraHeaders: o.extraHeaders,
    reconnectionDelay,
    reconnectionDelayMax: Math.max(reconnectionDelay, o.reconnectionDelayMax ?? 10_000),
    ackTimeout: o.ackTimeout ?? 10_000,
    pollWait: o.pollWait ?? 25,
    fetchInit: {
      headers: o.extraHeaders,
      credentials: /** @type {RequestCredentials | undefined} */ (o.withCredentials ? 'include' : undefined),
    },
  };
}
