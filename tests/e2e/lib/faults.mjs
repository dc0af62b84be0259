// What the fault tests drive and watch: stock socket.io-client sockets that
// reconnect by themselves and resume from their cursor, a long-polling HTTP
// reader, a writer that retries until acknowledged, and `/ready` probes.

import { io } from 'socket.io-client';
import { http, uuid } from './http.mjs';
import { waitUntil } from './client.mjs';

/** A socket as an application would open it: reconnecting, resuming from its last cursor. */
export class StockSocket {
  constructor(server, token, label) {
    this.label = label;
    this.envelopes = [];
    this.byName = new Map();
    this.connectErrors = [];
    this.cursor = '0';
    this.socket = io(server.url, {
      transports: ['websocket'],
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      auth: (cb) => cb({ token, after: this.cursor }),
    });
    this.socket.on('connect_error', (e) => this.connectErrors.push(e.message));
    this.socket.onAny((name, payload) => {
      if (payload && typeof payload === 'object' && payload.type === name && payload.cursor) {
        this.envelopes.push(payload);
        this.cursor = payload.cursor;
      } else {
        if (!this.byName.has(name)) this.byName.set(name, []);
        this.byName.get(name).push(payload);
      }
    });
    this.connected = new Promise((resolve) => this.socket.once('connect', resolve));
  }

  ids() {
    return this.envelopes.map((e) => e.id);
  }

  got(name) {
    return this.byName.get(name) ?? [];
  }

  has(id) {
    return this.envelopes.some((e) => e.id === id);
  }

  async presence(timeoutMs = 2000) {
    try {
      return await this.socket.timeout(timeoutMs).emitWithAck('presence:list');
    } catch {
      return null;
    }
  }

  close() {
    this.socket.close();
  }
}

/** Long-polls GET /api/events from its cursor, through errors, until stopped. */
export class PollReader {
  constructor(server, token) {
    this.events = [];
    this.statuses = new Map();
    this.stopped = false;
    this.done = this._run(server, token);
  }

  async _run(server, token) {
    let cursor = '0';
    while (!this.stopped) {
      const r = await http(server, 'GET', `/api/events?after=${cursor}&limit=1000&wait=2`, { token }).catch(() => null);
      const status = r?.status ?? 'network';
      this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
      if (r?.status === 200) {
        this.events.push(...r.body.events);
        cursor = r.body.cursor;
      } else {
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }

  stop() {
    this.stopped = true;
    return this.done;
  }
}

/**
 * Appends one event with an id of its own, retrying while the answer is 503
 * `unavailable` (with Retry-After), until a 201. Any other answer is recorded
 * as wrong. Resolves with the stored envelope.
 */
export async function appendUntilAcked(server, token, event, log) {
  const body = { id: uuid(), ...event };
  for (;;) {
    const r = await http(server, 'POST', '/api/events', { token, body }).catch((e) => ({ status: 'network', text: e.message }));
    if (r.status === 201) return r.body.events[0];
    if (r.status === 503 && r.body?.error?.code === 'unavailable' && r.headers.get('retry-after')) {
      log.unavailable++;
    } else {
      log.wrong.push(`${r.status} ${String(r.text).slice(0, 200)}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Probes `/ready` every 200 ms; records each answer's status and how long it took. */
export class ReadyProbe {
  constructor(server) {
    this.samples = [];
    this.stopped = false;
    this.done = (async () => {
      while (!this.stopped) {
        const t0 = Date.now();
        const r = await http(server, 'GET', '/ready').catch(() => ({ status: 'network' }));
        this.samples.push({ at: t0, status: r.status, ms: Date.now() - t0, body: r.body });
        await new Promise((res) => setTimeout(res, 200));
      }
    })();
  }

  /** Samples taken at or after `t`. */
  since(t) {
    return this.samples.filter((s) => s.at >= t);
  }

  slowest() {
    return Math.max(0, ...this.samples.map((s) => s.ms));
  }

  stop() {
    this.stopped = true;
    return this.done;
  }
}

/** Milliseconds from `t0` until `fn` returns truthy (polled). */
export async function timeUntil(t0, fn, timeoutMs, what) {
  await waitUntil(fn, timeoutMs, what, 50);
  return Date.now() - t0;
}
