// A rolling restart behind a load balancer: each node in turn gets SIGTERM
// while 8 clients append over kept-alive HTTP connections and 200 sockets
// are connected to it. No request gets a 5xx, every acknowledged event is
// stored once, /ready turns 503 at once, the sockets come back on the other
// node without anyone announced offline, and the node exits 0 in time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { io } from 'socket.io-client';
import { useFixture } from './lib/fixture.mjs';
import { Balancer } from './lib/balancer.mjs';
import { readAll, tenant, uuid } from './lib/http.mjs';
import { publisher, reader } from './lib/token.mjs';
import { waitUntil } from './lib/client.mjs';

const DRAIN_MS = 1_000;
const ROUNDS = 5;
const SOCKETS = 200;
const APPENDERS = 8;
const f = useFixture({ server: false });
// 200 handshakes cost a debug build about 8 ms of CPU each, and the clients
// in this process as much again: on a busy shared machine the reconnects
// take seconds. The grace is longer than they may take, as an operator sets
// it longer than a restart's reconnects: what is under test is that
// reconnects within it announce nobody.
const BACK_MS = 30_000;
const env = { EVENTFEED_DRAIN: `${DRAIN_MS}ms`, EVENTFEED_PRESENCE_LIST_MAX: '1000', EVENTFEED_PRESENCE_GRACE: `${BACK_MS}ms` };

/** One client appending one event at a time over one kept-alive connection;
 * a connection that breaks is retried with the same event (same id). */
function appender(url, token, stream, log) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let running = true;
  const post = (event) =>
    new Promise((resolve) => {
      const body = JSON.stringify(event);
      const req = http.request(`${url}/api/events`, {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode, text }));
      });
      req.on('error', (error) => resolve({ error }));
      req.end(body);
    });
  const done = (async () => {
    while (running) {
      const event = { id: uuid(), stream, type: 'drain:item', data: { n: log.acked.length } };
      for (;;) {
        const r = await post(event);
        if (r.error) {
          log.retries++;
          await new Promise((resolve) => setTimeout(resolve, 20)); // a client's retry pause
          continue;
        }
        if (r.status >= 500) log.errors.push(`${r.status} ${r.text}`);
        if (r.status === 201) log.acked.push(event.id);
        else log.refused.push(`${r.status} ${r.text}`);
        break;
      }
    }
    agent.destroy();
  })();
  return { stop: () => ((running = false), done) };
}

/** A reconnecting socket through the balancer, as an app keeps one. */
function socket(url, token) {
  const s = io(url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 200, reconnectionDelayMax: 1_000, auth: { token } });
  s.connects = 0;
  s.errors = [];
  s.on('connect', () => s.connects++);
  s.on('connect_error', (e) => s.errors.push(e.message));
  s.on('disconnect', (r) => s.errors.push(`disconnect: ${r}`));
  s.io.on('reconnect_attempt', (n) => (s.attempts = n));
  return s;
}

/** Sends SIGTERM to `server` and waits until its /ready answers 503.
 * Returns the milliseconds from the signal to the moment the server turned
 * not-ready, read from its log line (the same machine clock): a probe's
 * round trip on a busy machine would measure the machine, not the server. */
async function terminate(server) {
  const signalled = performance.timeOrigin + performance.now();
  server.proc.kill('SIGTERM');
  await waitUntil(async () => (await fetch(`${server.url}/ready`).catch(() => null))?.status === 503, 2_000, '/ready 503');
  // The line is written before /ready turns, but its pipe may be read after
  // the probe's answer.
  await waitUntil(() => server.grep(/stop signal: \/ready answers 503/).length > 0, 2_000, 'the stop line');
  const [line] = server.grep(/stop signal: \/ready answers 503/);
  return Date.parse(line.split(/\s+/)[0]) - signalled;
}

test(
  'D1. a rolling restart under appends and sockets costs no request, no event and no presence flicker',
  f.run(async (t) => {
    let [doomed, other] = [await f.start({ env }), await f.start({ env })];
    const lb = await new Balancer([doomed, other]).start();
    const T = tenant('d1');
    const sockets = Array.from({ length: SOCKETS }, (_, i) => socket(lb.url, reader(T, `u${i}`)));
    const watcher = socket(lb.url, reader(T, 'watch'));
    const offline = [];
    watcher.on('user:offline', (p) => offline.push(p.userId));
    await waitUntil(() => sockets.every((s) => s.connected) && watcher.connected, 60_000, 'every socket connected');

    // The appenders write to another tenant: 200 sockets each receiving every
    // event would load this one test process more than the servers.
    const W = tenant('d1w');
    const log = { acked: [], errors: [], refused: [], retries: 0 };
    const writers = Array.from({ length: APPENDERS }, (_, i) => appender(lb.url, publisher(W), `s-${i}`, log));
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const connects = sockets.map((s) => s.connects);
        const acked = log.acked.length;
        await waitUntil(() => log.acked.length >= acked + 50, 15_000, 'appends flowing');

        const signalled = Date.now();
        const notReady = await terminate(doomed);
        const exit = await doomed.waitExit();
        const exitedMs = Date.now() - signalled;
        await waitUntil(
          () => sockets.every((s, i) => s.connected && s.connects > connects[i]),
          BACK_MS,
          `round ${round}: every socket back (${sockets.filter((s, i) => s.connected && s.connects > connects[i]).length}; ` +
            `connected ${sockets.filter((s) => s.connected).length}; errors ${JSON.stringify(sockets.flatMap((s) => s.errors.slice(-1)).slice(0, 5))}; ` +
            `attempts ${JSON.stringify(sockets.slice(0, 5).map((s) => s.attempts))}; lb open ${lb.open.size})`,
        );
        const back = Date.now() - signalled;
        t.diagnostic(
          `round ${round}: /ready 503 after ${notReady.toFixed(1)} ms; exit ${exit.code} after ${exitedMs} ms; ` +
            `sockets back after ${back} ms; ${log.acked.length} acknowledged, ${log.retries} retried connections`,
        );
        assert.ok(notReady <= 100, `round ${round}: /ready answered 503 ${notReady} ms after the signal`);
        assert.deepEqual(exit, { code: 0, signal: null }, `round ${round}: a clean exit`);
        assert.ok(exitedMs <= DRAIN_MS + 10_000, `round ${round}: exit within the drain plus 10 s (${exitedMs} ms)`);
        assert.ok(doomed.grep(/stopped: answered/).length === 1, `round ${round}: one line says what the stop finished`);
        assert.deepEqual(log.errors, [], `round ${round}: no 5xx`);

        // The replacement node; the next round stops the one holding the sockets.
        const fresh = await f.start({ env });
        lb.prefer(fresh);
        lb.prefer(other);
        [doomed, other] = [other, fresh];
      }
    } finally {
      await Promise.all(writers.map((w) => w.stop()));
      for (const s of [...sockets, watcher]) s.close();
      await lb.stop();
    }
    assert.deepEqual(log.errors, [], 'no 5xx');
    assert.deepEqual(log.refused, [], 'every append answered 201');
    // Reads see events once every transaction before them has ended (other
    // tests' servers share the cluster): wait for the last acknowledged one.
    let stored = [];
    await waitUntil(async () => {
      stored = (await readAll(other, reader(W, 'audit'))).map((e) => e.id);
      return stored.length >= log.acked.length;
    }, 30_000, 'every acknowledged event readable');
    assert.equal(new Set(stored).size, stored.length, 'no event stored twice');
    const have = new Set(stored);
    assert.deepEqual(log.acked.filter((id) => !have.has(id)), [], 'every acknowledged event stored');
    assert.deepEqual(offline, [], 'nobody announced offline during the restarts');
  }),
);
