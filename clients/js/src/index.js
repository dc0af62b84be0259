// eventfeed-client: the client half of eventfeed (docs/protocol.md is the protocol it speaks).
//
// One EventFeed follows one feed: over Socket.IO while it connects, over SSE
// or long-polling while it cannot, and always from the last delivered cursor,
// which is kept in `storage` so that a reload resumes where it stopped.
// Handlers see each event once, in cursor order; the only overlap, when the
// socket comes back while the fallback still reads, is removed by cursor
// equality alone (cursors are opaque: the client never compares their order).

import { HttpFeed } from './fallback.js';
import { FeedError, request, uuid } from './http.js';
import { openSocket } from './socket.js';
import { cursorKey, defaultStorage } from './storage.js';
import { TokenSource, claims } from './token.js';

const ACK_EVERY_MS = 1000;

export { FeedError };

export class EventFeed {
  constructor(url, options = {}) {
    this.url = String(url).replace(/\/+$/, '');
    this.namespace = options.namespace ?? '/';
    this.types = options.types && options.types.length ? [...options.types] : null;
    this.consumer = options.consumer ?? null;
    this.fallbackKind = options.fallback ?? (typeof EventSource === 'function' ? 'sse' : 'poll');
    this.fallbackAfter = options.fallbackAfter ?? 3;
    this.tokens = new TokenSource(options.token);
    this.cursor = null;
    this.status = 'connecting';
    this._storage = options.storage ?? defaultStorage();
    this._key = null;
    this._handlers = new Map();
    this._statusHandlers = new Set();
    this._resetHandlers = new Set();
    // Cursors the fallback delivered since the socket's latest handshake:
    // the socket's replay repeats exactly these first.
    this._overlap = [];
    this._link = null;
    this._fallback = null;
    this._ack = { timer: null, due: false, sent: Promise.resolve() };
    this._ready = this._start();
    this._ready.catch(() => {});
  }

  async _start() {
    const token = await this.tokens.fresh();
    this._key = cursorKey(this.url, this.namespace, claims(token));
    this.cursor = this._storage.getItem(this._key) || null;
    if (this.status !== 'closed') this._link = openSocket(this);
  }

  /** Calls `handler` with each event of `type` (`"*"`: every event); returns the remover. */
  on(type, handler) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    const set = this._handlers.get(type);
    const entry = (e) => handler(e);
    set.add(entry);
    return () => set.delete(entry);
  }

  onStatus(handler) {
    const entry = (s) => handler(s);
    this._statusHandlers.add(entry);
    return () => this._statusHandlers.delete(entry);
  }

  onReset(handler) {
    const entry = (p) => handler(p);
    this._resetHandlers.add(entry);
    return () => this._resetHandlers.delete(entry);
  }

  /** Appends one event; resolves to the stored envelope or rejects with a FeedError. */
  async append(event) {
    await this._ready;
    // An id of our own makes a retry over HTTP after a lost acknowledgement
    // an idempotent one (the server returns the stored event).
    const body = { ...event, id: event.id ?? uuid() };
    if (this._socketConnected()) {
      let answer = null;
      try {
        answer = await this._link.call('event:append', body);
      } catch {
        // No acknowledgement in time: retry over HTTP below, with the same id.
      }
      if (answer && answer.ok) return answer.event;
      if (answer) throw new FeedError(answer.error);
    }
    const page = await this._http('POST', '/api/events', body);
    return page.events[0];
  }

  /** The tenant's online users: `[{ userId, username, connections }]`. */
  async presence() {
    await this._ready;
    if (this._socketConnected()) {
      const answer = await this._link.call('presence:list');
      if (answer && answer.error) throw new FeedError(answer.error);
      return answer.users;
    }
    return (await this._http('GET', '/api/presence')).users;
  }

  /** Stops everything; resolves once the last consumer ack is stored. */
  async close() {
    if (this.status === 'closed') return;
    this._setStatus('closed');
    this._stopFallback();
    clearTimeout(this._ack.timer);
    await this._ready.catch(() => {});
    await this._ack.sent;
    await this._sendAck().catch(() => {});
    this._link?.close();
  }

  // ---- called by the transports ----

  _handshaking(replays) {
    this._overlap = [];
    this._replaying = replays;
  }

  _socketUp() {
    this._stopFallback();
    this._setStatus(this._replaying ? 'replaying' : 'live');
    if (this.types) this._link.call('feed:subscribe', { types: this.types }).catch(() => {});
    if (!this.cursor && !this._replaying) this._adoptHead();
  }

  _socketDown(giveUp) {
    if (this.status === 'closed') return;
    if (giveUp && this.fallbackKind && !this._fallback) {
      this._fallback = new HttpFeed(this, this.fallbackKind);
      this._fallback.start();
    }
    this._setStatus(this._fallback ? 'fallback' : 'offline');
  }

  _replayed(p) {
    if (!this.cursor && p.cursor) this._setCursor(p.cursor);
    this._setStatus('live');
  }

  _reset(p) {
    this._overlap = [];
    this._setCursor(p.cursor);
    for (const h of [...this._resetHandlers]) guard(h, p);
    if (this.status === 'replaying') this._setStatus('live');
  }

  _fromSocket(e) {
    if (!this._wanted(e.type)) return;
    if (this._overlap.length) {
      const at = this._overlap.indexOf(e.cursor);
      if (at >= 0) {
        this._overlap.splice(0, at + 1);
        return;
      }
      // Past the overlap: everything from here on is new.
      this._overlap = [];
    }
    this._deliver(e);
  }

  _fromFallback(e) {
    if (!this._wanted(e.type)) return;
    this._overlap.push(e.cursor);
    this._deliver(e);
  }

  // ---- internals ----

  _deliver(e) {
    this._setCursor(e.cursor);
    for (const key of [e.type, '*']) {
      const set = this._handlers.get(key);
      if (set) for (const h of [...set]) guard(h, e);
    }
    this._scheduleAck();
  }

  _wanted(type) {
    if (!this.types) return true;
    return this.types.some((p) => p === '*' || p === type || (p.endsWith(':*') && type.startsWith(p.slice(0, -1))));
  }

  _setCursor(cursor) {
    this.cursor = cursor;
    try {
      this._storage.setItem(this._key, cursor);
    } catch {
      // A full or disabled storage costs the resume after a reload, not the feed.
    }
  }

  _setStatus(status) {
    if (this.status === status || this.status === 'closed') return;
    this.status = status;
    for (const h of [...this._statusHandlers]) guard(h, status);
  }

  /** A feed that starts without a cursor takes the head, so a reconnect replays what it missed. */
  _adoptHead() {
    this._link
      .call('request:current-state')
      .then((state) => {
        if (!this.cursor && state && typeof state.cursor === 'string') this._setCursor(state.cursor);
      })
      .catch(() => {});
  }

  _socketConnected() {
    return Boolean(this._link && this._link.socket.connected);
  }

  _stopFallback() {
    this._fallback?.stop();
    this._fallback = null;
  }

  _scheduleAck() {
    if (!this.consumer || this.status === 'closed') return;
    this._ack.due = true;
    if (this._ack.timer) return;
    this._ack.timer = setTimeout(() => {
      this._ack.timer = null;
      this._ack.sent = this._sendAck().catch(() => this._scheduleAck());
    }, ACK_EVERY_MS);
  }

  async _sendAck() {
    if (!this._ack.due || !this.cursor) return;
    this._ack.due = false;
    const cursor = this.cursor;
    try {
      if (this._socketConnected()) {
        const answer = await this._link.call('feed:ack', { cursor });
        if (!answer || !answer.ok) throw new FeedError(answer && answer.error);
      } else {
        await this._http('POST', '/api/events/ack', { consumer: this.consumer, cursor });
      }
    } catch (err) {
      this._ack.due = true;
      throw err;
    }
  }

  async _http(method, path, body) {
    const token = await this.tokens.valid();
    try {
      return await request(this.url, path, { method, token, body });
    } catch (err) {
      if (!(err instanceof FeedError) || err.code !== 'unauthorized' || !this.tokens.refreshable) throw err;
      return request(this.url, path, { method, token: await this.tokens.fresh(), body });
    }
  }
}

/** A throwing handler must not stop the others, nor the feed: it is reported, not rethrown. */
function guard(handler, value) {
  try {
    handler(value);
  } catch (err) {
    if (typeof reportError === 'function') reportError(err);
    else console.error('eventfeed: a handler threw', err);
  }
}

export default EventFeed;
