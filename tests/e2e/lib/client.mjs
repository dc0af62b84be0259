// A socket.io-client connection that records everything it receives, with
// promise-based waits on conditions (never on timers).

import { io } from 'socket.io-client';

const DEFAULT_WAIT = 15_000;

/**
 * Connect and wait for `connect`. Rejects with the connect_error otherwise.
 * @param {{url: string}} server
 * @param {object} o
 * @param {string} [o.token]       handshake auth.token
 * @param {string} [o.after]       handshake auth.after
 * @param {string} [o.consumer]    handshake auth.consumer
 * @param {object} [o.auth]        full auth object (overrides token/after/consumer)
 * @param {string} [o.namespace]
 * @param {object} [o.query]
 * @param {object} [o.extraHeaders]
 * @param {string} [o.label]       for messages
 */
export async function connect(server, o = {}) {
  const c = new Client(server, o);
  await c.connected;
  return c;
}

/** Connect expecting a refusal; resolves with the connect_error's Error. */
export async function connectError(server, o = {}, timeoutMs = 10_000) {
  const c = new Client(server, o);
  try {
    await withTimeout(c.connected, timeoutMs, `connect_error for ${c.label}`);
  } catch (err) {
    c.close();
    if (err && err.isConnectError) return err.cause;
    throw err;
  }
  c.close();
  throw new Error(`${c.label}: expected a connect_error, but the socket connected`);
}

export class Client {
  constructor(server, o = {}) {
    this.label = o.label || `${o.namespace || '/'}:${o.token ? 'token' : 'no-token'}`;
    const auth = o.auth ?? pick({ token: o.token, after: o.after, consumer: o.consumer });
    const ns = o.namespace && o.namespace !== '/' ? o.namespace : '';
    this.socket = io(server.url + ns, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: 10_000,
      auth,
      query: o.query,
      extraHeaders: o.extraHeaders,
    });
    /** every incoming emit, in arrival order: { name, args, at } */
    this.all = [];
    /** incoming emits by name: name -> [first arg] */
    this.byName = new Map();
    /** envelopes (emits whose name is the payload's type and which carry a cursor), in order */
    this.envelopes = [];
    /** envelopes.length at each feed:replayed */
    this.replayedAt = [];
    this.isConnected = false;
    this.disconnectReason = null;
    this.disconnectedAt = null;
    this.connectErr = null;
    this._waiters = new Set();

    this.socket.onAny((name, ...args) => {
      const at = Date.now();
      this.all.push({ name, args, at });
      if (!this.byName.has(name)) this.byName.set(name, []);
      this.byName.get(name).push(args[0]);
      const a = args[0];
      if (a && typeof a === 'object' && a.type === name && typeof a.cursor === 'string') {
        this.envelopes.push(a);
      }
      if (name === 'feed:replayed') this.replayedAt.push(this.envelopes.length);
      this._check();
    });

    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => {
        this.isConnected = true;
        this._check();
        resolve();
      });
      this.socket.once('connect_error', (err) => {
        this.connectErr = err;
        this._check();
        const detail = err && err.description ? ` (${describe(err.description)}${err.context ? `; ${describe(err.context)}` : ''})` : '';
        const e = new Error(`${this.label}: connect_error: ${err && err.message}${detail}`);
        e.isConnectError = true;
        e.cause = err;
        reject(e);
      });
    });
    this.connected.catch(() => {});
    this.socket.on('disconnect', (reason) => {
      this.isConnected = false;
      this.disconnectReason = reason;
      this.disconnectedAt = Date.now();
      this._check();
    });
  }

  /** payloads received for an emit name */
  got(name) {
    return this.byName.get(name) || [];
  }

  count(name) {
    return this.got(name).length;
  }

  /** ids of the envelopes received, in order */
  ids() {
    return this.envelopes.map((e) => e.id);
  }

  _check() {
    for (const w of this._waiters) w.check();
  }

  /**
   * Resolve when `predicate(this)` is true. Checked on every incoming emit,
   * connect and disconnect, and every 50 ms (for conditions outside the socket).
   */
  waitFor(predicate, timeoutMs = DEFAULT_WAIT, what = 'condition') {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          let ok;
          try {
            ok = predicate(this);
          } catch (err) {
            cleanup();
            reject(err);
            return;
          }
          if (ok) {
            cleanup();
            resolve(ok);
          } else if (this.disconnectReason !== null) {
            // reconnection is off: nothing more will arrive
            cleanup();
            reject(new Error(`${this.label}: disconnected (${this.disconnectReason}) while waiting for ${what}; ${this.summary()}`));
          }
        },
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}; ${this.summary()}`));
      }, timeoutMs);
      const poll = setInterval(() => w.check(), 50);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this._waiters.delete(w);
      };
      this._waiters.add(w);
      w.check();
    });
  }

  /** Wait for an emit `name` whose payload matches `pred`; resolves with the payload. */
  async waitForEvent(name, pred = () => true, timeoutMs = DEFAULT_WAIT) {
    let found;
    await this.waitFor(
      (c) => {
        found = c.got(name).find((p) => pred(p));
        return found !== undefined;
      },
      timeoutMs,
      `emit "${name}"`,
    );
    return found;
  }

  /** Wait until `n` envelopes have arrived in total. */
  waitForEnvelopes(n, timeoutMs = DEFAULT_WAIT) {
    return this.waitFor((c) => c.envelopes.length >= n, timeoutMs, `${n} envelopes`);
  }

  waitForDisconnect(timeoutMs = DEFAULT_WAIT) {
    return this.waitFor((c) => c.disconnectReason !== null, timeoutMs, 'disconnect').then(() => this.disconnectReason);
  }

  /** Emit with an acknowledgement; resolves with the ack's first argument. */
  ack(event, ...args) {
    return this.socket.timeout(10_000).emitWithAck(event, ...args);
  }

  ackWithin(timeoutMs, event, ...args) {
    return this.socket.timeout(timeoutMs).emitWithAck(event, ...args);
  }

  emit(event, ...args) {
    this.socket.emit(event, ...args);
  }

  summary() {
    const counts = {};
    for (const [k, v] of this.byName) counts[k] = v.length;
    return `connected=${this.isConnected} disconnectReason=${this.disconnectReason} connectError=${
      this.connectErr && this.connectErr.message
    } envelopes=${this.envelopes.length} received=${JSON.stringify(counts)}`;
  }

  close() {
    this.socket.disconnect();
    this.socket.close();
  }
}

function describe(x) {
  if (x instanceof Error) return x.message;
  if (x && typeof x === 'object') {
    if (x.message) return String(x.message);
    if (x.type || x.status) return `${x.type || ''} ${x.status || ''} ${x.statusText || ''}`.trim();
    try {
      return JSON.stringify(x).slice(0, 300);
    } catch {}
  }
  return String(x);
}

function pick(o) {
  const r = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) r[k] = v;
  return r;
}

export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/**
 * Poll an async condition until it returns a truthy value. `what` names it
 * in the timeout's message; a function is asked at the timeout, so it can
 * say how far the condition got.
 */
export async function waitUntil(fn, timeoutMs = DEFAULT_WAIT, what = 'condition', intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
