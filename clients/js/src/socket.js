// The Socket.IO side of an EventFeed: the handshake with the cursor, the
// reconnects socket.io-client does not make by itself, token refresh, and the
// count of failed connects that sends the feed to its fallback.

import { io } from 'socket.io-client';
import { backoff } from './http.js';

const ACK_TIMEOUT_MS = 10_000;

/** Opens the feed's socket; `feed` receives what it hears. */
export function openSocket(feed) {
  const target = feed.namespace === '/' ? feed.url : feed.url + feed.namespace;
  // Each feed gets its own connection (forceNew): two feeds with different
  // tokens must not share one, and closing one must not close the other.
  const socket = io(target, { forceNew: true, auth: (cb) => handshake(feed, cb) });
  const link = new SocketLink(feed, socket);
  socket.on('connect', () => link.connected());
  socket.on('connect_error', (err) => link.refused(err));
  socket.on('disconnect', (reason) => link.disconnected(reason));
  socket.on('feed:replayed', (p) => feed._replayed(p));
  socket.on('feed:reset', (p) => feed._reset(p));
  socket.onAny((name, payload) => {
    // Events arrive under their type; everything else the server emits
    // (presence, typing, feed:*) has no envelope of that type.
    if (payload && payload.type === name && typeof payload.cursor === 'string') feed._fromSocket(payload);
  });
  return link;
}

/**
 * socket.io-client calls this for every connect attempt, so the handshake
 * always carries the newest token and the newest cursor.
 */
function handshake(feed, cb) {
  feed.tokens
    .forConnect()
    .catch(() => undefined)
    .then((token) => {
      if (feed.status === 'closed') return;
      const auth = { token };
      if (feed.cursor) auth.after = feed.cursor;
      if (feed.consumer) auth.consumer = feed.consumer;
      feed._handshaking(Boolean(auth.after || auth.consumer));
      cb(auth);
    });
}

class SocketLink {
  constructor(feed, socket) {
    this.feed = feed;
    this.socket = socket;
    this.failures = 0;
    this.retryTimer = null;
    this.refreshTimer = null;
  }

  /** An emit with an acknowledgement, rejecting if none comes in time. */
  call(name, payload) {
    const timed = this.socket.timeout(ACK_TIMEOUT_MS);
    return payload === undefined ? timed.emitWithAck(name) : timed.emitWithAck(name, payload);
  }

  connected() {
    this.failures = 0;
    this.feed._socketUp();
    this.scheduleRefresh();
  }

  refused(err) {
    // An expired token that the function can replace is no failure: the
    // next handshake carries a new one. A fixed token stays expired.
    const renewable = /expired/i.test(err.message) && this.feed.tokens.refreshable;
    if (!renewable) this.failures += 1;
    this.feed._socketDown(this.failures >= this.feed.fallbackAfter);
    // A transport error is retried by socket.io-client; a handshake the
    // server refused is final for it, so the feed retries by itself.
    if (!this.socket.active) this.retry(renewable ? 1 : this.failures + 1);
  }

  disconnected(reason) {
    clearTimeout(this.refreshTimer);
    if (this.feed.status === 'closed') return;
    this.feed._socketDown(false);
    // At `auth:expired` (or any server-side disconnect) socket.io-client
    // stays down: connect again, which fetches a new token.
    if (reason === 'io server disconnect') this.retry(1);
  }

  retry(attempt) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.feed.status !== 'closed' && !this.socket.active) this.socket.connect();
    }, backoff(attempt));
  }

  /** Before the token's `exp`, gets a newer one and hands it over with `auth:refresh`. */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const delay = this.feed.tokens.refreshDelay();
    if (delay === Infinity) return;
    this.refreshTimer = setTimeout(() => this.refresh(), delay);
  }

  async refresh() {
    const tokens = this.feed.tokens;
    const before = tokens.expiresAt;
    try {
      const token = await tokens.fresh();
      // No later `exp`: nothing to hand over. The server will end this
      // connection at `exp`, and the reconnect asks for a token again.
      if (tokens.expiresAt <= before || !this.socket.connected) return;
      const answer = await this.call('auth:refresh', { token });
      if (answer && answer.ok) this.scheduleRefresh();
    } catch {
      // The token function or the round trip failed: the reconnect after
      // `auth:expired` is the way out.
    }
  }

  close() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    this.socket.disconnect();
  }
}
