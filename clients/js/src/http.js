// HTTP calls to the eventfeed API, and the one error type every failure
// becomes, whether it came over HTTP or in a socket acknowledgement.

/** An error answer of the server: `code` is one of the protocol's error codes (docs/protocol.md). */
export class FeedError extends Error {
  constructor({ code = 'internal', message = code, currentVersion } = {}) {
    super(message);
    this.name = 'FeedError';
    this.code = code;
    if (currentVersion !== undefined) this.currentVersion = currentVersion;
  }
}

/**
 * Sends one request and resolves to its JSON body (or null for 204).
 * A non-2xx answer rejects with a FeedError carrying the server's code.
 */
export async function request(base, path, { method = 'GET', token, body, signal } = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (res.ok) return res.status === 204 ? null : res.json();
  throw await errorOf(res);
}

/** The FeedError of a failed response, from its JSON error body if it has one. */
export async function errorOf(res) {
  let error = { code: res.status === 503 ? 'unavailable' : 'internal', message: `HTTP ${res.status}` };
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
  return new Promise((resolve) => {
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

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to 10 s. */
export function backoff(attempt) {
  const base = Math.min(10_000, 500 * 2 ** Math.max(0, attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}
