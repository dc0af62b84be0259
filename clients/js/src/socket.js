// The Socket.IO side of an EventFeed: the handshake with the cursor and the
// types, the reconnects socket.io-client does not make by itself, token
// refresh, what a refused connect means (renew the token, stop, or count a
// failure towards the fallback), and acknowledgements as FeedErrors.

import { io } from 'socket.io-client';
import { FeedError, asFeedError, backoff } from './http.js';
import { keepTrying } from './token.js';

/** Emits the server sends that are not events, handed to the feed by name. */
const SIGNALS = ['feed:replayed', 'feed:reset', 'presence:diff', 'user:online', 'user:offline', 'user:typing'];

/**
 * The function that opens a Socket.IO connection: socket.io-client's `io`.
 * Held in an object so the library's own tests can put a scripted socket in
 * its place and drive every refusal and acknowledgement.
 */
export const transport = { io };

/** Opens the feed's socket; `feed` receives what it hears. */
export function openSocket(feed) {
  const o = feed._opts;
  const target = feed.namespace === '/' ? feed.url : feed.url + feed.namespace;
  // Each feed gets its own connection (forceNew): two feeds with different
  // tokens must not share one, and closing one must not close the other.
  let link = null;
  const socket = transport.io(target, {
    forceNew: true,
    // Called at each connect attempt, once the transport is open: `link` is set by then.
    auth: (cb) => link.handshake(cb),
    path: o.path,
    transports: o.transports,
    withCredentials: o.withCredentials,
    extraHeaders: o.extraHeaders,
    reconnectionDelay: o.reconnectionDelay,
    reconnectionDelayMax: o.reconnectionDelayMax,
  });
  link = new SocketLink(feed, socket);
  socket.on('connect', () => link.connected());
  socket.on('connect_error', (err) => link.refused(err));
  socket.on('disconnect', (reason) => link.disconnected(reason));
  for (const name of SIGNALS) socket.on(name, (p) => feed._signal(name, p));
  socket.onAny((name, payload) => {
    // Events arrive under their type; the signals above carry no envelope.
    if (payload && payload.type === name && typeof payload.cursor === 'string') feed._fromSocket(payload);
  });
  return link;
}

/** What a refused connect's message means to the feed. */
function refusal(message) {
  if (/^authentication failed: .*(expired|not valid yet)/.test(message)) return 'expired';
  if (/^authentication failed: /.test(message)) return 'unauthorized';
  if (/^invalid cursor/.test(message)) return 'invalid_cursor';
  return 'failed';
}

class SocketLink {
  constructor(feed, socket) {
    this.feed = feed;
    this.socket = socket;
    this.failures = 0;
    this.retryTimer = null;
    this.refreshTimer = null;
    this.attempts = 0;
  }

  /**
   * socket.io-client calls this for every connect attempt, so the handshake
   * always carries the newest token, cursor and types. A token function that
   * fails is retried with backoff, each failure reported, until the attempt
   * is given up for a newer one.
   */
  async handshake(cb) {
    const feed = this.feed;
    const attempt = (this.attempts += 1);
    const token = await keepTrying(() => feed._tokens.forConnect(), {
      report: (err) => feed._error(err, 'the token function failed'),
      stopped: () => feed._stopped() || attempt !== this.attempts,
      min: feed._opts.reconnectionDelay,
      max: feed._opts.reconnectionDelayMax,
    });
    if (token === null) return;
    const auth = { token };
    if (feed.cursor) auth.after = feed.cursor;
    if (feed.consumer) auth.consumer = feed.consumer;
    if (feed.types) auth.types = feed.types;
    feed._handshaking(Boolean(auth.after || auth.consumer));
    feed._log('connecting', { after: auth.after ?? null, consumer: auth.consumer ?? null, types: auth.types ?? null });
    cb(auth);
  }

  /** An emit with an acknowledgement; a missing one rejects with code `timeout`. */
  async call(name, payload) {
    if (!this.socket.connected) throw new FeedError({ code: 'network', message: 'the socket is not connected' });
    const timed = this.socket.timeout(this.feed._opts.ackTimeout ?? 10_000);
    let answer;
    try {
      answer = payload === undefined ? await timed.emitWithAck(name) : await timed.emitWithAck(name, payload);
    } catch (err) {
      throw asFeedError(err, this.socket.connected ? 'timeout' : 'network');
    }
    if (answer && answer.error && answer.ok !== true) throw new FeedError(answer.error);
    return answer;
  }

  connected() {
    this.failures = 0;
    this.feed._log('connected', this.socket.id);
    this.feed._socketUp();
    this.scheduleRefresh();
  }

  refused(err) {
    const kind = this.socket.active ? 'failed' : refusal(err.message);
    this.feed._log('connect refused', err.message);
    if (kind === 'unauthorized' || (kind === 'invalid_cursor' && !this.feed._cursorReplaceable())) {
      this.feed._fatal(new FeedError({ code: kind, message: err.message }));
      return;
    }
    // An expired token that the function can replace is no failure: the
    // next handshake carries a new one. A fixed token stays expired.
    const renewable = kind === 'expired' && this.feed._tokens.refreshable;
    if (kind === 'invalid_cursor') this.feed._dropCursor(err.message);
    else if (!renewable) this.failures += 1;
    const code = kind === 'failed' ? 'network' : kind === 'expired' ? 'unauthorized' : kind;
    this.feed._error(new FeedError({ code, message: err.message }), 'connect failed');
    this.feed._socketDown(this.failures >= this.feed._fallbackAfter, err.message);
    // A transport error is retried by socket.io-client; a handshake the
    // server refused is final for it, so the feed retries by itself.
    if (!this.socket.active) this.retry(renewable || kind === 'invalid_cursor' ? 1 : this.failures + 1);
  }

  disconnected(reason) {
    clearTimeout(this.refreshTimer);
    if (this.feed._stopped()) return;
    this.feed._log('disconnected', reason);
    this.feed._socketDown(false, reason);
    // At `auth:expired` (or any server-side disconnect) socket.io-client
    // stays down: connect again, which fetches a new token.
    if (reason === 'io server disconnect') this.retry(1);
  }

  retry(attempt) {
    clearTimeout(this.retryTimer);
    const { reconnectionDelay: min, reconnectionDelayMax: max } = this.feed._opts;
    this.retryTimer = setTimeout(() => {
      if (!this.feed._stopped() && !this.socket.active) this.socket.connect();
    }, backoff(attempt, min, max));
  }

  /** Before the token's `exp`, gets a newer one and hands it over with `auth:refresh`. */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const delay = this.feed._tokens.refreshDelay();
    if (delay === Infinity) return;
    this.refreshTimer = setTimeout(() => this.refresh(), delay);
  }

  async refresh() {
    const tokens = this.feed._tokens;
    const before = tokens.expiresAt;
    try {
      const token = await tokens.fresh();
      // No later `exp`: nothing to hand over. The server will end this
      // connection at `exp`, and the reconnect asks for a token again.
      if (tokens.expiresAt <= before || !this.socket.connected) return;
      await this.call('auth:refresh', { token });
      this.feed._log('token refreshed');
      this.scheduleRefresh();
    } catch (err) {
      // The reconnect after `auth:expired` is the way out.
      this.feed._error(err, 'the token refresh failed');
    }
  }

  close() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    this.socket.disconnect();
  }
}
