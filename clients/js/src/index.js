// eventfeed-client: the client half of eventfeed (see README.md; docs/protocol.md is the protocol it speaks).
//
// One EventFeed follows one feed: over Socket.IO while it connects, over SSE
// or long-polling while it cannot, and always from the last delivered cursor,
// which is kept in `storage` so that a reload resumes where it stopped.
// Handlers see each event once, in cursor order; the only overlap, when the
// socket comes back while the fallback still reads, is removed by cursor
// equality alone (cursors are opaque: the client never compares their order).

import { ConsumerAcks } from './ack.js';
import { HttpFeed } from './fallback.js';
import { audit, history, stream } from './history.js';
import { FeedError, request, uuid } from './http.js';
import { Listeners } from './listeners.js';
import { Presence } from './presence.js';
import { openSocket } from './socket.js';
import { CursorStore, cursorKey, defaultStorage } from './storage.js';
import { TokenSource, claims, keepTrying } from './token.js';
import { checkAfter, checkTypes, settings } from './options.js';

export { FeedError };

export class EventFeed extends Listeners {
  constructor(url, options = {}) {
    super(Boolean(options.debug));
    this.url = String(url).replace(/\/+$/, '');
    this._opts = settings(options);
    this.namespace = options.namespace ?? '/';
    this.types = checkTypes(options.types);
    /** @type {string | null} */
    this.consumer = options.consumer ?? null;
    this._fallbackKind = options.fallback ?? (typeof EventSource === 'function' ? 'sse' : 'poll');
    this._fallbackAfter = options.fallbackAfter ?? 3;
    this._tokens = new TokenSource(options.token);
    /** @type {string | null} */
    this.cursor = null;
    this._after = checkAfter(options.after);
    this._cursorFrom = null;
    this._claims = {};
    this._store = new CursorStore(options.storage ?? defaultStorage(), (err) => this._error(err, 'storage'));
    this._handlers = new Map();
    this._presence = new Presence(this);
    // Cursors the fallback delivered since the socket's latest handshake:
    // the socket's replay repeats exactly these first.
    this._overlap = [];
    this._link = null;
    this._fallback = null;
    this._acks = new ConsumerAcks(this);
    this._ready = this._start();
  }

  async _start() {
    const token = await keepTrying(() => this._tokens.fresh(), {
      report: (err) => this._error(err, 'the token function failed'),
      stopped: () => this._stopped(),
      min: this._opts.reconnectionDelay,
      max: this._opts.reconnectionDelayMax,
    });
    if (token === null) return;
    this._claims = claims(token);
    const stored = await this._store.load(this._key());
    if (this._after === 'stored') this._useCursor(stored, 'storage');
    else if (this._after !== 'head') this._useCursor(this._after, 'option');
    this._log('starting', { cursor: this.cursor, from: this._cursorFrom });
    if (!this._stopped()) this._link = openSocket(this);
  }

  /**
   * Calls `handler` with each event of `type` (`"*"`: every event; also
   * `user:online`, `user:offline` and `user:typing`); returns the remover.
   */
  on(type, handler) {
    return this._add(this._handlers.get(type) ?? this._handlers.set(type, new Set()).get(type), handler);
  }

  /** `handler(users, { online })` now (once known) and at every change of who is online. */
  onPresence(handler) {
    return this._presence.on(handler);
  }

  onTyping(handler) {
    return this.on('user:typing', handler);
  }

  /** Tells the rest of the tenant this user is typing; false while the socket is down. */
  typing(resourceId, resourceType) {
    if (!this._socketConnected()) return false;
    this._link.socket.emit('user:typing', { resourceId, resourceType });
    return true;
  }

  /** Changes the types of a running feed; resolves once the server applies them. */
  async setTypes(patterns) {
    this.types = checkTypes(patterns);
    await this._ready;
    this._store.key = this._key();
    if (this.cursor) this._store.save(this.cursor);
    if (this._fallback) this._restartFallback();
    if (this._socketConnected()) await this._link.call('feed:subscribe', { types: this.types ?? ['*'] });
  }

  /** Appends one event; resolves to the stored envelope or rejects with a FeedError. */
  async append(event) {
    await this._ready;
    // An id of our own makes a retry over HTTP after a lost acknowledgement
    // an idempotent one (the server returns the stored event).
    const body = { ...event, id: event.id ?? uuid() };
    if (this._socketConnected()) {
      try {
        return (await this._link.call('event:append', body)).event;
      } catch (err) {
        // No acknowledgement: retry over HTTP below, with the same id.
        if (err.code !== 'timeout' && err.code !== 'network') throw err;
      }
    }
    const page = await this._http('POST', '/api/events', body);
    return page.events[0];
  }

  /** The tenant's online users: `[{ userId, username, connections }]`. */
  async presence() {
    await this._ready;
    if (this._socketConnected()) return (await this._link.call('presence:list')).users;
    return (await this._http('GET', '/api/presence')).users;
  }

  history(options) {
    return history(this, options);
  }

  stream(name, options) {
    return stream(this, name, options);
  }

  audit(filters) {
    return audit(this, filters);
  }

  /** Stops everything; resolves once the last consumer ack and cursor are stored. */
  async close() {
    if (this.status === 'closed') return;
    this._setStatus('closed');
    this._halt();
    await this._ready;
    await this._acks.flush();
    await this._store.flushed();
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
    if (!this.cursor && !this._replaying) this._adoptHead();
    this._presence.connected();
  }

  _socketDown(giveUp, reason) {
    if (this._stopped()) return;
    if (giveUp && this._fallbackKind && !this._fallback) {
      this._fallback = new HttpFeed(this, this._fallbackKind);
      this._fallback.start();
    }
    this._setStatus(this._fallback ? 'fallback' : 'offline', reason);
  }

  _signal(name, payload) {
    if (name === 'feed:replayed') {
      if (!this.cursor && payload.cursor) this._setCursor(payload.cursor);
      this._setStatus('live');
    } else if (name === 'feed:reset') this._reset(payload);
    else if (name === 'presence:diff') this._presence.diff(payload);
    else {
      if (name === 'user:online') this._presence.userOnline(payload);
      if (name === 'user:offline') this._presence.userOffline(payload);
      for (const h of [...(this._handlers.get(name) ?? [])]) h(payload);
    }
  }

  _reset(p) {
    this._overlap = [];
    this._setCursor(p.cursor);
    for (const h of [...this._resetHandlers]) h(p);
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

  /** A refused cursor from storage or delivery is dropped; one the app gave is final. */
  _cursorReplaceable() {
    return this._cursorFrom !== 'option';
  }

  _dropCursor(message) {
    this._log('dropping the cursor', this.cursor, message);
    this._useCursor(null, null);
    this._store.save('');
  }

  /** Stops the feed for good: the server refused its token or its cursor. */
  _fatal(error) {
    this._log('stopped', error);
    this._setStatus(error.code === 'unauthorized' ? 'unauthorized' : 'closed', error.message, error);
    this._halt();
    this._link?.close();
  }

  async _http(method, path, body) {
    await this._ready;
    const init = this._opts.fetchInit;
    const token = await this._tokens.valid();
    try {
      return await request(this.url, path, { method, token, body, init });
    } catch (err) {
      if (err.code !== 'unauthorized' || !/expired/.test(err.message) || !this._tokens.refreshable) throw err;
      return request(this.url, path, { method, token: await this._tokens.fresh(), body, init });
    }
  }

  // ---- internals ----

  _key() {
    const [tenant, user] = [this._claims[this._opts.tenantClaim], this._claims.sub];
    return cursorKey({ url: this.url, namespace: this.namespace, tenant, user, types: this.types, consumer: this.consumer });
  }

  _useCursor(cursor, from) {
    this.cursor = cursor;
    this._cursorFrom = cursor ? from : null;
  }

  _deliver(e) {
    this._setCursor(e.cursor);
    for (const key of [e.type, '*']) for (const h of [...(this._handlers.get(key) ?? [])]) h(e);
    this._acks.schedule();
  }

  _wanted(type) {
    if (!this.types) return true;
    return this.types.some((p) => p === '*' || p === type || (p.endsWith(':*') && type.startsWith(p.slice(0, -1))));
  }

  _setCursor(cursor) {
    this._useCursor(cursor, 'delivered');
    this._store.save(cursor);
  }

  /** A feed that starts without a cursor takes the head, so a reconnect replays what it missed. */
  _adoptHead() {
    this._link
      .call('request:current-state')
      .then((state) => {
        if (!this.cursor && state && typeof state.cursor === 'string') this._setCursor(state.cursor);
      })
      .catch((err) => this._error(err, 'reading the head failed'));
  }

  _socketConnected() {
    return Boolean(this._link && this._link.socket.connected);
  }

  _halt() {
    this._stopFallback();
    this._presence.stop();
    this._acks.stop();
  }

  _stopFallback() {
    this._fallback?.stop();
    this._fallback = null;
  }

  _restartFallback() {
    const kind = this._fallback.kind;
    this._stopFallback();
    this._fallback = new HttpFeed(this, kind);
    this._fallback.start();
  }
}

export default EventFeed;
