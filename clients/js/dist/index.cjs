var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/index.js
var index_exports = {};
__export(index_exports, {
  EventFeed: () => EventFeed,
  FeedError: () => FeedError,
  default: () => index_default
});
module.exports = __toCommonJS(index_exports);

// src/ack.js
var ACK_EVERY_MS = 1e3;
var ConsumerAcks = class {
  /** @param {import('./index.js').EventFeed} feed */
  constructor(feed) {
    this.feed = feed;
    this.timer = null;
    this.due = false;
    this.sent = Promise.resolve();
  }
  /** A cursor was delivered: ack it within a second. */
  schedule() {
    if (!this.feed.consumer || this.feed._stopped()) return;
    this.due = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sent = this.send().catch((err) => {
        this.feed._error(err, "the consumer ack failed");
        this.schedule();
      });
    }, ACK_EVERY_MS);
  }
  /** Sends the last ack now, once the one under way is done. */
  async flush() {
    clearTimeout(this.timer);
    await this.sent;
    await this.send().catch((err) => this.feed._log("last ack failed", err));
  }
  stop() {
    clearTimeout(this.timer);
  }
  async send() {
    const feed = this.feed;
    if (!this.due || !feed.cursor) return;
    this.due = false;
    const cursor = feed.cursor;
    try {
      if (feed._socketConnected()) await feed._link.call("feed:ack", { cursor });
      else await feed._http("POST", "/api/events/ack", { consumer: feed.consumer, cursor });
    } catch (err) {
      this.due = true;
      throw err;
    }
  }
};

// src/http.js
var FeedError = class extends Error {
  /**
   * @param {import('../index.js').FeedErrorBody} [error] the server's error body
   * @param {unknown} [cause] what went wrong underneath, if not the server
   */
  constructor({ code = "internal", message = code, currentVersion, path, rule, index } = {}, cause) {
    super(message, cause === void 0 ? void 0 : { cause });
    this.name = "FeedError";
    this.code = code;
    if (currentVersion !== void 0) this.currentVersion = currentVersion;
    if (path !== void 0) this.path = path;
    if (rule !== void 0) this.rule = rule;
    if (index !== void 0) this.index = index;
  }
};
function asFeedError(err, code = "network") {
  if (err instanceof FeedError) return err;
  const message = err && err.message ? err.message : String(err);
  return new FeedError({ code, message }, err);
}
async function request(base, path, { method = "GET", token, body, signal, init = {} } = {}) {
  const headers = { ...init.headers, authorization: `Bearer ${token}` };
  if (body !== void 0) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      credentials: init.credentials,
      body: body === void 0 ? void 0 : JSON.stringify(body),
      signal
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw asFeedError(err, "network");
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  try {
    return await res.json();
  } catch (err) {
    throw asFeedError(err, err instanceof SyntaxError ? "internal" : "network");
  }
}
async function errorOf(res) {
  const byStatus = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited", 503: "unavailable" };
  let error = { code: byStatus[res.status] ?? "internal", message: `HTTP ${res.status}` };
  try {
    const parsed = await res.json();
    if (parsed && parsed.error) error = parsed.error;
  } catch {
  }
  return new FeedError(error);
}
function uuid() {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === "function") return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = b[6] & 15 | 64;
  b[8] = b[8] & 63 | 128;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
function sleep(ms, signal) {
  return new Promise(
    /** @param {(v?: void) => void} resolve */
    (resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
    }
  );
}
function backoff(attempt, min = 500, max = 1e4) {
  const base = Math.min(max, min * 2 ** Math.max(0, attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

// src/fallback.js
var PAGE = 500;
var HttpFeed = class {
  /**
   * @param {object} host the EventFeed: url, options, tokens, cursor,
   *   consumer, types, `_fromFallback(event)` / `_reset(payload)` to hand
   *   results back, `_error` and `_fatal` for what goes wrong
   * @param {'sse'|'poll'} kind
   */
  constructor(host, kind) {
    this.host = host;
    this.kind = kind;
    this.abort = new AbortController();
  }
  start() {
    this._run(this.abort.signal);
  }
  stop() {
    this.abort.abort();
  }
  async _run(signal) {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await (this.kind === "sse" ? this._sse(signal) : this._poll(signal));
        failures = 0;
      } catch (caught) {
        if (signal.aborted) return;
        const err = asFeedError(caught, "network");
        if (err.code === "unauthorized" && /^authentication failed: /.test(err.message) && !expired(err)) {
          this.host._fatal(err);
          return;
        }
        failures += 1;
        this.host._error(err, `the ${this.kind} fallback failed`);
        if (expired(err)) await this.host._tokens.fresh().catch(() => {
        });
        const { reconnectionDelay, reconnectionDelayMax } = this.host._opts;
        await sleep(backoff(failures, reconnectionDelay, reconnectionDelayMax), signal);
      }
    }
  }
  _query(extra) {
    const q = new URLSearchParams(extra);
    const { cursor, consumer, types } = this.host;
    if (cursor) q.set("after", cursor);
    else if (consumer && this.kind === "poll") q.set("consumer", consumer);
    if (types) q.set("types", types.join(","));
    return q.toString();
  }
  /** One long-poll; the loop calls it again at once. */
  async _poll(signal) {
    const token = await this.host._tokens.valid();
    const path = `/api/events?${this._query({ wait: this.host._opts.pollWait, limit: PAGE })}`;
    const page = await request(this.host.url, path, { token, signal, init: this.host._opts.fetchInit });
    if (signal.aborted) return;
    if (page.reset) this.host._reset(page.reset);
    for (const event of page.events) {
      if (signal.aborted) return;
      this.host._fromFallback(event);
    }
  }
  /** One SSE response, read until it ends (at the token's expiry, say). */
  async _sse(signal) {
    const token = await this.host._tokens.valid();
    const { headers, credentials } = this.host._opts.fetchInit;
    const res = await fetch(`${this.host.url}/api/events/stream?${this._query({})}`, {
      headers: { ...headers, authorization: `Bearer ${token}`, accept: "text/event-stream" },
      credentials,
      signal
    });
    if (!res.ok) throw await errorOf(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (; ; ) {
      const { value, done } = await reader.read();
      if (done || signal.aborted) return;
      buffer += value;
      let end;
      while (end = /\r?\n\r?\n/.exec(buffer)) {
        const block = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        if (this._dispatch(parseBlock(block), signal) === "expired") {
          await reader.cancel().catch(() => {
          });
          await this.host._tokens.fresh();
          return;
        }
      }
    }
  }
  _dispatch({ event, data }, signal) {
    if (signal.aborted || data === "") return;
    if (event === "auth:expired") return "expired";
    const payload = JSON.parse(data);
    if (event === "feed:reset") this.host._reset(payload);
    else this.host._fromFallback(payload);
  }
};
function expired(err) {
  return err.code === "unauthorized" && /expired|not valid yet/.test(err.message);
}
function parseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return { event, data: data.join("\n") };
}

// src/history.js
function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === void 0 || value === null) continue;
    q.set(key, Array.isArray(value) ? value.join(",") : value instanceof Date ? value.toISOString() : String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}
async function* pages(feed, path, params, next) {
  for (let p = params; p; ) {
    const page = await feed._http("GET", path + query(p));
    yield page;
    p = page.hasMore ? next(page, p) : null;
  }
}
function history(feed, { after = "0", types, limit } = {}) {
  const next = (page, p) => ({ ...p, after: page.cursor });
  return pages(feed, "/api/events", { after, types, limit }, next);
}
function stream(feed, name, { fromVersion, limit } = {}) {
  const path = `/api/streams/${String(name).split("/").map(encodeURIComponent).join("/")}`;
  const next = (page, p) => ({ ...p, fromVersion: page.events[page.events.length - 1].version + 1 });
  return pages(feed, path, { fromVersion, limit }, next);
}
function audit(feed, { type, stream: name, actor, from, to, after, limit } = {}) {
  const next = (page, p) => ({ ...p, after: page.cursor });
  return pages(feed, "/api/audit", { type, stream: name, actor, from, to, after, limit }, next);
}

// src/listeners.js
var Listeners = class {
  /** @param {boolean} debug log each step with `console.debug` */
  constructor(debug) {
    this.status = "connecting";
    this._debug = debug;
    this._statusHandlers = /* @__PURE__ */ new Set();
    this._resetHandlers = /* @__PURE__ */ new Set();
    this._errorHandlers = /* @__PURE__ */ new Set();
  }
  /** `handler({ status, reason?, error? })` at every change of `feed.status`. */
  onStatus(handler) {
    return this._add(this._statusHandlers, handler);
  }
  onReset(handler) {
    return this._add(this._resetHandlers, handler);
  }
  /** `handler(error)` for every FeedError the feed recovers from by itself. */
  onError(handler) {
    return this._add(this._errorHandlers, handler);
  }
  /** Whether the feed stopped for good: closed, or its token refused. */
  _stopped() {
    return this.status === "closed" || this.status === "unauthorized";
  }
  _setStatus(status, reason, error) {
    if (this.status === status || this.status === "closed") return;
    if (this.status === "unauthorized" && status !== "closed") return;
    this.status = status;
    this._log("status", status, reason ?? "");
    const info = { status };
    if (reason !== void 0) info.reason = reason;
    if (error !== void 0) info.error = error;
    for (const h of [...this._statusHandlers]) h(info);
  }
  _error(err, context) {
    const error = asFeedError(err, "internal");
    this._log(context, error);
    for (const h of [...this._errorHandlers]) h(error);
  }
  _log(...args) {
    if (this._debug) console.debug("eventfeed:", ...args);
  }
  /** Calls a handler, reporting what it throws instead of rethrowing it. */
  _call(handler, ...args) {
    try {
      handler(...args);
    } catch (err) {
      if (typeof reportError === "function") reportError(err);
      else console.error("eventfeed: a handler threw", err);
    }
  }
  /** Adds a guarded `handler` to `set`; returns its remover. */
  _add(set, handler) {
    const entry = (...args) => this._call(handler, ...args);
    set.add(entry);
    return () => set.delete(entry);
  }
};

// src/presence.js
var RELIST_MS = 1e3;
var RELIST_LARGE_MS = 5e3;
var Presence = class {
  /** @param {object} feed the EventFeed: `presence()`, `_error()` and `_call()` */
  constructor(feed) {
    this.feed = feed;
    this.users = /* @__PURE__ */ new Map();
    this.online = 0;
    this.known = false;
    this.handlers = /* @__PURE__ */ new Set();
    this._listing = null;
    this._again = false;
    this._listedAt = 0;
    this._timer = null;
  }
  /** Adds a handler, called now if the list is known and at every change. */
  on(handler) {
    const entry = (users, info) => this.feed._call(handler, users, info);
    this.handlers.add(entry);
    if (this.known) entry(this.list(), { online: this.online });
    else if (this.handlers.size === 1) this.relist(0);
    return () => this.handlers.delete(entry);
  }
  list() {
    return [...this.users.values()].sort((a, b) => a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);
  }
  /** The socket (re)connected: what was held may be stale. */
  connected() {
    if (this.handlers.size) this.relist(0);
  }
  /** @param {{ online?: number, joins?: { userId: string, username?: string | null }[], leaves?: string[] }} [diff] */
  diff({ online, joins, leaves } = {}) {
    let changed = false;
    for (const { userId, username } of joins ?? []) changed = this._join(userId, username) || changed;
    for (const userId of leaves ?? []) changed = this.users.delete(userId) || changed;
    if (typeof online === "number" && online !== this.online) {
      this.online = online;
      changed = true;
    }
    if (this.online !== this.users.size) this.relist(joins || leaves ? RELIST_MS : RELIST_LARGE_MS);
    if (changed) this._emit();
  }
  /** @param {{ userId?: string, username?: string | null }} [user] */
  userOnline({ userId, username } = {}) {
    if (!this._join(userId, username)) return;
    this.online = Math.max(this.online, this.users.size);
    this._emit();
  }
  /** @param {{ userId?: string }} [user] */
  userOffline({ userId } = {}) {
    if (!this.users.delete(userId)) return;
    this.online = this.users.size;
    this._emit();
  }
  stop() {
    clearTimeout(this._timer);
    this.handlers.clear();
  }
  /** Lists the users again, no sooner than `gap` ms after the last listing. */
  relist(gap) {
    if (!this.handlers.size) return;
    if (this._listing) {
      this._again = true;
      return;
    }
    const wait = Math.max(0, this._listedAt + gap - Date.now());
    if (wait > 0) {
      if (!this._timer) this._timer = setTimeout(() => (this._timer = null, this.relist(0)), wait);
      return;
    }
    this._listing = this._list().finally(() => {
      this._listing = null;
      this._listedAt = Date.now();
      if (this._again) {
        this._again = false;
        this.relist(RELIST_MS);
      }
    });
  }
  async _list() {
    try {
      const users = await this.feed.presence();
      this.users = new Map(users.map((u) => [u.userId, { ...u }]));
      this.online = this.users.size;
      this.known = true;
      this._emit();
    } catch (err) {
      this.feed._error(err, "listing presence failed");
    }
  }
  _join(userId, username) {
    if (typeof userId !== "string" || this.users.has(userId)) return false;
    this.users.set(userId, { userId, username: username ?? null, connections: 1 });
    return true;
  }
  _emit() {
    if (!this.known) return;
    const users = this.list();
    for (const h of [...this.handlers]) h(users, { online: this.online });
  }
};

// src/socket.js
var import_socket = require("socket.io-client");

// src/token.js
function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    const parsed = JSON.parse(new TextDecoder().decode(bytes));
    return parsed && typeof parsed === "object" ? parsed : {};
  } catch {
    return {};
  }
}
var TokenSource = class {
  constructor(option) {
    if (typeof option !== "string" && typeof option !== "function") {
      throw new FeedError({ code: "invalid", message: "EventFeed: options.token must be a string or a function" });
    }
    this._option = option;
    this.current = typeof option === "string" ? option : null;
    this._unused = false;
  }
  /** Whether a newer token can be had at all. */
  get refreshable() {
    return typeof this._option === "function";
  }
  /** The current token's `exp` in milliseconds, or Infinity. */
  get expiresAt() {
    const exp = this.current ? claims(this.current).exp : void 0;
    return typeof exp === "number" ? exp * 1e3 : Infinity;
  }
  /**
   * Calls the token function (a string option is returned as it is). A
   * function that throws, rejects or gives no token rejects with a
   * FeedError `unauthorized` whose `cause` is what it threw.
   */
  async fresh() {
    if (this.refreshable) {
      let token;
      try {
        token = await this._option();
      } catch (err) {
        throw new FeedError({ code: "unauthorized", message: `the token function failed: ${err?.message ?? err}` }, err);
      }
      if (typeof token !== "string" || !token) {
        throw new FeedError({ code: "unauthorized", message: "the token function gave no token" });
      }
      this.current = token;
      this._unused = true;
    }
    return this.current;
  }
  /** A token for a socket connect: the function is called for every one. */
  async forConnect() {
    if (this._unused && this.expiresAt > Date.now()) {
      this._unused = false;
      return this.current;
    }
    const token = await this.fresh();
    this._unused = false;
    return token;
  }
  /** A token for an HTTP request: the current one unless it is about to expire. */
  async valid(marginMs = 5e3) {
    if (this.current && this.expiresAt - Date.now() > marginMs) return this.current;
    return this.fresh();
  }
  /**
   * Milliseconds until the token should be replaced: a quarter of its
   * remaining life before `exp`, at least half a second and at most 30 s
   * early, so short-lived tokens still leave time for the round trip.
   */
  refreshDelay() {
    const left = this.expiresAt - Date.now();
    if (!this.refreshable || left === Infinity) return Infinity;
    const early = Math.min(3e4, Math.max(500, left / 4));
    return Math.max(0, left - early);
  }
};
async function keepTrying(get, { report, stopped, min, max }) {
  for (let attempt = 1; !stopped(); attempt += 1) {
    try {
      return await get();
    } catch (err) {
      if (stopped()) break;
      report(err);
      await sleep(backoff(attempt, min, max));
    }
  }
  return null;
}

// src/socket.js
var SIGNALS = ["feed:replayed", "feed:reset", "presence:diff", "user:online", "user:offline", "user:typing"];
var transport = { io: import_socket.io };
function openSocket(feed) {
  const o = feed._opts;
  const target = feed.namespace === "/" ? feed.url : feed.url + feed.namespace;
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
    reconnectionDelayMax: o.reconnectionDelayMax
  });
  link = new SocketLink(feed, socket);
  socket.on("connect", () => link.connected());
  socket.on("connect_error", (err) => link.refused(err));
  socket.on("disconnect", (reason) => link.disconnected(reason));
  for (const name of SIGNALS) socket.on(name, (p) => feed._signal(name, p));
  socket.onAny((name, payload) => {
    if (payload && payload.type === name && typeof payload.cursor === "string") feed._fromSocket(payload);
  });
  return link;
}
function refusal(message) {
  if (/^authentication failed: .*(expired|not valid yet)/.test(message)) return "expired";
  if (/^authentication failed: /.test(message)) return "unauthorized";
  if (/^invalid cursor/.test(message)) return "invalid_cursor";
  return "failed";
}
var SocketLink = class {
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
    const attempt = this.attempts += 1;
    const token = await keepTrying(() => feed._tokens.forConnect(), {
      report: (err) => feed._error(err, "the token function failed"),
      stopped: () => feed._stopped() || attempt !== this.attempts,
      min: feed._opts.reconnectionDelay,
      max: feed._opts.reconnectionDelayMax
    });
    if (token === null) return;
    const auth = { token };
    if (feed.cursor) auth.after = feed.cursor;
    if (feed.consumer) auth.consumer = feed.consumer;
    if (feed.types) auth.types = feed.types;
    feed._handshaking(Boolean(auth.after || auth.consumer));
    feed._log("connecting", { after: auth.after ?? null, consumer: auth.consumer ?? null, types: auth.types ?? null });
    cb(auth);
  }
  /** An emit with an acknowledgement; a missing one rejects with code `timeout`. */
  async call(name, payload) {
    if (!this.socket.connected) throw new FeedError({ code: "network", message: "the socket is not connected" });
    const timed = this.socket.timeout(this.feed._opts.ackTimeout ?? 1e4);
    let answer;
    try {
      answer = payload === void 0 ? await timed.emitWithAck(name) : await timed.emitWithAck(name, payload);
    } catch (err) {
      throw asFeedError(err, this.socket.connected ? "timeout" : "network");
    }
    if (answer && answer.error && answer.ok !== true) throw new FeedError(answer.error);
    return answer;
  }
  connected() {
    this.failures = 0;
    this.feed._log("connected", this.socket.id);
    this.feed._socketUp();
    this.scheduleRefresh();
  }
  refused(err) {
    const kind = this.socket.active ? "failed" : refusal(err.message);
    this.feed._log("connect refused", err.message);
    if (kind === "unauthorized" || kind === "invalid_cursor" && !this.feed._cursorReplaceable()) {
      this.feed._fatal(new FeedError({ code: kind, message: err.message }));
      return;
    }
    const renewable = kind === "expired" && this.feed._tokens.refreshable;
    if (kind === "invalid_cursor") this.feed._dropCursor(err.message);
    else if (!renewable) this.failures += 1;
    const code = kind === "failed" ? "network" : kind === "expired" ? "unauthorized" : kind;
    this.feed._error(new FeedError({ code, message: err.message }), "connect failed");
    this.feed._socketDown(this.failures >= this.feed._fallbackAfter, err.message);
    if (!this.socket.active) this.retry(renewable || kind === "invalid_cursor" ? 1 : this.failures + 1);
  }
  disconnected(reason) {
    clearTimeout(this.refreshTimer);
    if (this.feed._stopped()) return;
    this.feed._log("disconnected", reason);
    this.feed._socketDown(false, reason);
    if (reason === "io server disconnect") this.retry(1);
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
      if (tokens.expiresAt <= before || !this.socket.connected) return;
      await this.call("auth:refresh", { token });
      this.feed._log("token refreshed");
      this.scheduleRefresh();
    } catch (err) {
      this.feed._error(err, "the token refresh failed");
    }
  }
  close() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    this.socket.disconnect();
  }
};

// src/storage.js
function defaultStorage() {
  try {
    const ls = globalThis.localStorage;
    if (ls) {
      const probe = "__eventfeed_probe__";
      ls.setItem(probe, probe);
      ls.removeItem(probe);
      return ls;
    }
  } catch {
  }
  const map = /* @__PURE__ */ new Map();
  return { getItem: (k) => map.has(k) ? map.get(k) : null, setItem: (k, v) => void map.set(k, String(v)) };
}
function cursorKey({ url, namespace, tenant, user, types, consumer }) {
  const parts = [url, namespace, tenant ?? null, user ?? null, types ? [...types].sort() : null, consumer ?? null];
  return `eventfeed:cursor:${JSON.stringify(parts)}`;
}
var CursorStore = class {
  constructor(storage, onError) {
    this.storage = storage;
    this.onError = onError;
    this.key = null;
    this._pending = null;
    this._writing = null;
  }
  /** The cursor kept under `key` (which later writes use), or null. */
  async load(key) {
    this.key = key;
    try {
      const value = await this.storage.getItem(key);
      return typeof value === "string" && value ? value : null;
    } catch (err) {
      this.onError(err);
      return null;
    }
  }
  save(cursor) {
    if (!this.key) return;
    this._pending = { key: this.key, cursor };
    if (!this._writing) this._writing = this._drain();
  }
  /** Resolves once every cursor saved so far is written (or failed). */
  flushed() {
    return this._writing ?? Promise.resolve();
  }
  async _drain() {
    while (this._pending) {
      const { key, cursor } = this._pending;
      this._pending = null;
      try {
        await this.storage.setItem(key, cursor);
      } catch (err) {
        this.onError(err);
      }
    }
    this._writing = null;
  }
};

// src/options.js
var PATTERN = /^(\*|[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*:([A-Za-z0-9_.-]+|\*))$/;
function checkTypes(types) {
  if (types === void 0 || types === null) return null;
  if (!Array.isArray(types)) throw new FeedError({ code: "invalid", message: "types must be a list of type patterns" });
  for (const t of types) {
    if (typeof t !== "string" || t.length > 100 || !PATTERN.test(t)) {
      throw new FeedError({ code: "invalid", message: `type pattern ${JSON.stringify(t)} is not valid` });
    }
  }
  return types.length && !types.includes("*") ? [...types] : null;
}
function checkAfter(after) {
  if (after === void 0 || after === "stored" || after === "head") return after ?? "stored";
  if (after === 0) return "0";
  if (typeof after === "string" && /^[A-Za-z0-9._~:-]{1,200}$/.test(after)) return after;
  throw new FeedError({ code: "invalid_cursor", message: `invalid cursor ${JSON.stringify(String(after))}` });
}
function settings(o) {
  const reconnectionDelay = o.reconnectionDelay ?? 500;
  return {
    tenantClaim: o.tenantClaim ?? "tenant_id",
    path: o.path,
    transports: o.transports,
    withCredentials: o.withCredentials,
    extraHeaders: o.extraHeaders,
    reconnectionDelay,
    reconnectionDelayMax: Math.max(reconnectionDelay, o.reconnectionDelayMax ?? 1e4),
    ackTimeout: o.ackTimeout ?? 1e4,
    pollWait: o.pollWait ?? 25,
    fetchInit: {
      headers: o.extraHeaders,
      credentials: (
        /** @type {RequestCredentials | undefined} */
        o.withCredentials ? "include" : void 0
      )
    }
  };
}

// src/index.js
var EventFeed = class extends Listeners {
  constructor(url, options = {}) {
    super(Boolean(options.debug));
    this.url = String(url).replace(/\/+$/, "");
    this._opts = settings(options);
    this.namespace = options.namespace ?? "/";
    this.types = checkTypes(options.types);
    this.consumer = options.consumer ?? null;
    this._fallbackKind = options.fallback ?? (typeof EventSource === "function" ? "sse" : "poll");
    this._fallbackAfter = options.fallbackAfter ?? 3;
    this._tokens = new TokenSource(options.token);
    this.cursor = null;
    this._after = checkAfter(options.after);
    this._cursorFrom = null;
    this._claims = {};
    this._store = new CursorStore(options.storage ?? defaultStorage(), (err) => this._error(err, "storage"));
    this._handlers = /* @__PURE__ */ new Map();
    this._presence = new Presence(this);
    this._overlap = [];
    this._link = null;
    this._fallback = null;
    this._acks = new ConsumerAcks(this);
    this._ready = this._start();
  }
  async _start() {
    const token = await keepTrying(() => this._tokens.fresh(), {
      report: (err) => this._error(err, "the token function failed"),
      stopped: () => this._stopped(),
      min: this._opts.reconnectionDelay,
      max: this._opts.reconnectionDelayMax
    });
    if (token === null) return;
    this._claims = claims(token);
    const stored = await this._store.load(this._key());
    if (this._after === "stored") this._useCursor(stored, "storage");
    else if (this._after !== "head") this._useCursor(this._after, "option");
    this._log("starting", { cursor: this.cursor, from: this._cursorFrom });
    if (!this._stopped()) this._link = openSocket(this);
  }
  /**
   * Calls `handler` with each event of `type` (`"*"`: every event; also
   * `user:online`, `user:offline` and `user:typing`); returns the remover.
   */
  on(type, handler) {
    return this._add(this._handlers.get(type) ?? this._handlers.set(type, /* @__PURE__ */ new Set()).get(type), handler);
  }
  /** `handler(users, { online })` now (once known) and at every change of who is online. */
  onPresence(handler) {
    return this._presence.on(handler);
  }
  onTyping(handler) {
    return this.on("user:typing", handler);
  }
  /** Tells the rest of the tenant this user is typing; false while the socket is down. */
  typing(resourceId, resourceType) {
    if (!this._socketConnected()) return false;
    this._link.socket.emit("user:typing", { resourceId, resourceType });
    return true;
  }
  /** Changes the types of a running feed; resolves once the server applies them. */
  async setTypes(patterns) {
    this.types = checkTypes(patterns);
    await this._ready;
    this._store.key = this._key();
    if (this.cursor) this._store.save(this.cursor);
    if (this._fallback) this._restartFallback();
    if (this._socketConnected()) await this._link.call("feed:subscribe", { types: this.types ?? ["*"] });
  }
  /** Appends one event; resolves to the stored envelope or rejects with a FeedError. */
  async append(event) {
    await this._ready;
    const body = { ...event, id: event.id ?? uuid() };
    if (this._socketConnected()) {
      try {
        return (await this._link.call("event:append", body)).event;
      } catch (err) {
        if (err.code !== "timeout" && err.code !== "network") throw err;
      }
    }
    const page = await this._http("POST", "/api/events", body);
    return page.events[0];
  }
  /** The tenant's online users: `[{ userId, username, connections }]`. */
  async presence() {
    await this._ready;
    if (this._socketConnected()) return (await this._link.call("presence:list")).users;
    return (await this._http("GET", "/api/presence")).users;
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
    if (this.status === "closed") return;
    this._setStatus("closed");
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
    this._setStatus(this._replaying ? "replaying" : "live");
    if (!this.cursor && !this._replaying) this._adoptHead();
    this._presence.connected();
  }
  _socketDown(giveUp, reason) {
    if (this._stopped()) return;
    if (giveUp && this._fallbackKind && !this._fallback) {
      this._fallback = new HttpFeed(this, this._fallbackKind);
      this._fallback.start();
    }
    this._setStatus(this._fallback ? "fallback" : "offline", reason);
  }
  _signal(name, payload) {
    if (name === "feed:replayed") {
      if (!this.cursor && payload.cursor) this._setCursor(payload.cursor);
      this._setStatus("live");
    } else if (name === "feed:reset") this._reset(payload);
    else if (name === "presence:diff") this._presence.diff(payload);
    else {
      if (name === "user:online") this._presence.userOnline(payload);
      if (name === "user:offline") this._presence.userOffline(payload);
      for (const h of [...this._handlers.get(name) ?? []]) h(payload);
    }
  }
  _reset(p) {
    this._overlap = [];
    this._setCursor(p.cursor);
    for (const h of [...this._resetHandlers]) h(p);
    if (this.status === "replaying") this._setStatus("live");
  }
  _fromSocket(e) {
    if (!this._wanted(e.type)) return;
    if (this._overlap.length) {
      const at = this._overlap.indexOf(e.cursor);
      if (at >= 0) {
        this._overlap.splice(0, at + 1);
        return;
      }
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
    return this._cursorFrom !== "option";
  }
  _dropCursor(message) {
    this._log("dropping the cursor", this.cursor, message);
    this._useCursor(null, null);
    this._store.save("");
  }
  /** Stops the feed for good: the server refused its token or its cursor. */
  _fatal(error) {
    this._log("stopped", error);
    this._setStatus(error.code === "unauthorized" ? "unauthorized" : "closed", error.message, error);
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
      if (err.code !== "unauthorized" || !/expired/.test(err.message) || !this._tokens.refreshable) throw err;
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
    for (const key of [e.type, "*"]) for (const h of [...this._handlers.get(key) ?? []]) h(e);
    this._acks.schedule();
  }
  _wanted(type) {
    if (!this.types) return true;
    return this.types.some((p) => p === "*" || p === type || p.endsWith(":*") && type.startsWith(p.slice(0, -1)));
  }
  _setCursor(cursor) {
    this._useCursor(cursor, "delivered");
    this._store.save(cursor);
  }
  /** A feed that starts without a cursor takes the head, so a reconnect replays what it missed. */
  _adoptHead() {
    this._link.call("request:current-state").then((state) => {
      if (!this.cursor && state && typeof state.cursor === "string") this._setCursor(state.cursor);
    }).catch((err) => this._error(err, "reading the head failed"));
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
};
var index_default = EventFeed;
