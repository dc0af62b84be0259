// A scripted Socket.IO server for the library's own logic: the tests decide
// what each handshake gets (accepted or refused, with which message), what
// each acknowledgement answers (or that none comes), and what the server
// pushes. It implements the part of socket.io-client's Socket the library
// uses, and the library reaches it through its `transport` seam.

import { transport } from '../../src/socket.js';

let ids = 0;

export class FakeServer {
  constructor() {
    /** Every socket the library opened. */
    this.sockets = [];
    /** Every handshake, in order: `{ socket, auth }`. */
    this.handshakes = [];
    /** What the library emitted without an acknowledgement: `{ name, payload }`. */
    this.emitted = [];
    /** Acknowledged emits: `{ name, payload }`. */
    this.calls = [];
    /** `name -> (payload) => answer`; a missing entry, or `undefined`, never answers. */
    this.answers = {};
    this.io = (url, opts) => {
      const socket = new FakeSocket(this, url, opts);
      this.sockets.push(socket);
      // As socket.io-client: the first attempt starts once the transport opens, later.
      queueMicrotask(() => socket.connect());
      return socket;
    };
  }

  /** Puts this server in place of socket.io-client; returns the undo. */
  install() {
    const real = transport.io;
    transport.io = this.io;
    return () => {
      transport.io = real;
    };
  }

  get last() {
    return this.handshakes[this.handshakes.length - 1];
  }
}

class FakeSocket {
  constructor(server, url, opts) {
    this.server = server;
    this.url = url;
    this.opts = opts;
    this.connected = false;
    this.active = false;
    this.id = undefined;
    this.handlers = new Map();
    this.anyHandlers = [];
    this.attempting = false;
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, []);
    this.handlers.get(name).push(fn);
    return this;
  }

  onAny(fn) {
    this.anyHandlers.push(fn);
    return this;
  }

  /** Starts a connect attempt, as socket.io-client does: asks `auth` for the handshake. */
  connect() {
    if (this.connected || this.attempting) return this;
    this.active = true;
    this.attempting = true;
    this.opts.auth((auth) => {
      this.attempting = false;
      this.server.handshakes.push({ socket: this, auth });
    });
    return this;
  }

  disconnect() {
    const was = this.connected;
    this.connected = false;
    this.active = false;
    if (was) this.fire('disconnect', 'io client disconnect');
    return this;
  }

  emit(name, payload) {
    this.server.emitted.push({ name, payload });
    return this;
  }

  timeout(ms) {
    return {
      emitWithAck: (name, payload) => {
        this.server.calls.push({ name, payload });
        const answer = this.server.answers[name]?.(payload);
        if (answer !== undefined) return Promise.resolve(answer);
        return new Promise((_, reject) => setTimeout(() => reject(new Error('operation has timed out')), ms));
      },
    };
  }

  // ---- what the scripted server does ----

  accept() {
    this.connected = true;
    this.id = `fake-${(ids += 1)}`;
    this.fire('connect');
  }

  /** A refusal by the server's connect middleware: final for socket.io-client. */
  refuse(message) {
    this.active = false;
    this.fire('connect_error', new Error(message));
  }

  /** The server ends the connection (`auth:expired`, say). */
  drop(reason = 'io server disconnect') {
    this.connected = false;
    if (reason === 'io server disconnect') this.active = false;
    this.fire('disconnect', reason);
  }

  /** An emit from the server. */
  push(name, payload) {
    this.fire(name, payload);
    for (const fn of this.anyHandlers) fn(name, payload);
  }

  fire(name, ...args) {
    for (const fn of this.handlers.get(name) ?? []) fn(...args);
  }
}

/** A token the library can read (it never verifies): `claims` in an unsigned JWT. */
export function jwt(claims) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}.sig`;
}

/** An envelope as the server would push it. */
export function envelope(cursor, type = 'item:added', data = {}) {
  return { id: `id-${cursor}`, cursor, tenantId: 't', stream: 's', version: 1, type, data, actor: { userId: 'u' } };
}
