// HTTP calls to the eventfeed API, and the one error type every failure
// becomes, whether it came over HTTP, in a socket acknowledgement, from the
// network or from the token function.

/**
 * Every error the library rejects with or reports. `code` is one of the
 * server's error codes (`invalid`, `invalid_cursor`, `unauthorized`,
 * `forbidden`, `not_found`, `conflict`, `too_large`, `rate_limited`,
 * `unavailable`, `internal`), or `network` (the server could not be reached)
 * or `timeout` (no answer in time).
 */
export class FeedError extends Error {
  /**
   * @param {import('../index.js').FeedErrorBody} [error] the server's error body
   * @param {unknown} [cause] what went wrong underneath, if not the server
   */
  constructor({ code = 'internal', message = code, currentVersion, path, rule, index } = {}, cause) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'FeedError';
    this.code = code;
    if (currentVersion !== undefined) this.currentVersion = currentVersion;
    if (path !== undefined) this.path = path;
    if (rule !== undefined) this.rule = rule;
    if (index !== undefined) this.index = index;
  }
}

/** `err` as a FeedError: kept if it is one, else wrapped with `code`. */
export function asFeedError(err, code = 'network') {
  if (err instanceof FeedError) return err;
  const message = err && err.message ? err.message : String(err);
  return new FeedError({ code, message }, err);
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {string} [token]
 * @property {unknown} [body]
 * @property {AbortSignal} [signal]
 * @property {{ headers?: Record<string, string>, credentials?: RequestCredentials }} [init]
 *   the feed's transport options
 */

/**
 * Sends one request and resolves to its JSON body (or null for 204).
 * A non-2xx answer rejects with a FeedError carrying the server's code; a
 * request that never got an answer, with code `network`.
 * @param {string} base
 * @param {string} path
 * @param {RequestOptions} [o]
 * @returns {Promise<any>}
 */
export async function request(base, path, { method = 'GET', token, body, signal, init = {} } = {}) {
  const headers = { ...init.headers, authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      credentials: init.credentials,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw asFeedError(err, 'network');
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  try {
    return await res.json();
  } catch (err) {
    // A body that is not JSON (a proxy's page) is the server's fault; one cut short, the network's.
    throw asFeedError(err, err instanceof SyntaxError ? 'internal' : 'network');
  }
}

/** The FeedError of a failed response, from its JSON error body if it has one. */
export async function errorOf(res) {
  const byStatus = { 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 429: 'rate_limited', 503: 'unavailable' };
  let error = { code: byStatus[res.status] ?? 'internal', message: `HTTP ${res.status}` };
  try {
    const parsed = await res.json();
    if (parsed && parsed.error) error = parsed.error;
  } catch {
    // Not JSON (a proxy's page, say): the status code has to do.
  }
  return new FeedError(error);
}

/** A random UUID, also on plain-HTTP pages where `crypto.randomUUID` is missing. */
export function uuid() {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise(/** @param {(v?: void) => void} resolve */ (resolve) => {
    // The listener goes when the timer fires: a fallback that retries for
    // hours must not pile them up on its one signal.
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Exponential backoff with jitter, from `min` doubling up to `max`
 * (defaults 0.5 s and 10 s, the feed's `reconnectionDelay` and
 * `reconnectionDelayMax`).
 */
export function backoff(attempt, min = 500, max = 10_000) {
  const base = Math.min(max, min * 2 ** Math.max(0, attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}
