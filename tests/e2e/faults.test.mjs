// Faults between the servers and PostgreSQL, made by a TCP proxy in this
// process (the servers' DATABASE_URL points at it): half-open connections,
// a database restart (every connection reset, then refused for a while).
// Stock socket.io-client sockets and a long-polling reader ride through; every
// acknowledged event reaches each of them once, in order; delivery, presence
// and typing across two nodes come back by themselves, and `/ready` says so.
// Each recovery time is printed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { http, readAll, tenant } from './lib/http.mjs';
import { publisher, reader } from './lib/token.mjs';
import { waitUntil } from './lib/client.mjs';
import { PgProxy } from './lib/proxy.mjs';
import { PollReader, ReadyProbe, StockSocket, appendUntilAcked, timeUntil } from './lib/faults.mjs';

const f = useFixture({ server: false });
/** What each recovery must stay under (the aim is 5 s; this bound is wide for a noisy 2-core machine). */
const RECOVERY_BOUND_MS = 15_000;

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/** Every acknowledged event reached every reader exactly once, in the store's order. */
async function assertEveryoneHasEverything(server, token, acked, readers) {
  const stored = (await readAll(server, token, '0')).map((e) => e.id);
  const storedSet = new Set(stored);
  for (const e of acked) assert.ok(storedSet.has(e.id), `acknowledged event ${e.id} is stored`);
  for (const [label, ids] of readers) {
    assert.equal(new Set(ids).size, ids.length, `${label}: no event twice`);
    assert.deepEqual(ids, stored, `${label}: every stored event, in cursor order`);
  }
}

test(
  'F1. half-open connections: every connection to the database silenced; delivery, typing and /ready come back by themselves',
  f.run(async (t) => {
    const proxy = await new PgProxy().start();
    try {
      const A = await f.start({ databaseUrl: proxy.url(f.db.name) });
      const B = await f.start({ databaseUrl: proxy.url(f.db.name) });
      const T = tenant('f1');
      const pub = publisher(T);
      const rd = reader(T, 'u1');
      const onA = new StockSocket(A, rd, 'u1 on A');
      const onB = new StockSocket(B, reader(T, 'u2'), 'u2 on B');
      await Promise.all([onA.connected, onB.connected]);
      const poll = new PollReader(A, rd);
      const log = { unavailable: 0, wrong: [] };
      const acked = [];
      for (let i = 0; i < 20; i++) acked.push(await appendUntilAcked(A, pub, { stream: 'a', type: 'f1:item', data: { i } }, log));
      await waitUntil(() => onA.envelopes.length === 20 && onB.envelopes.length === 20, 15_000, 'the first 20 events live');

      // A load balancer probes all along: /ready's own connection is open
      // when the others go silent, and goes silent with them.
      assert.equal((await http(A, 'GET', '/ready')).status, 200, '/ready before the blackhole');
      const probe = new ReadyProbe(A);
      const silenced = proxy.blackhole();
      const t0 = Date.now();
      const first = await appendUntilAcked(A, pub, { stream: 'a', type: 'f1:item', data: { after: 'blackhole' } }, log);
      acked.push(first);
      const appended = Date.now() - t0;
      const delivered = await timeUntil(t0, () => onA.has(first.id) && onB.has(first.id), 60_000, 'the first event after the blackhole, live on both nodes');
      const typing = await timeUntil(
        t0,
        () => {
          onB.socket.emit('user:typing', { resourceId: 'doc', resourceType: 'document' });
          return onA.got('user:typing').length > 0;
        },
        60_000,
        'user:typing from B to reach A',
      );
      const ready = await timeUntil(t0, () => probe.since(t0 + delivered).some((x) => x.status === 200), 30_000, '/ready 200 again');
      for (let i = 0; i < 20; i++) acked.push(await appendUntilAcked(B, pub, { stream: 'a', type: 'f1:item', data: { j: i } }, log));
      await waitUntil(() => onA.has(acked.at(-1).id) && poll.events.some((e) => e.id === acked.at(-1).id), 20_000, 'the last event');
      await probe.stop();
      await poll.stop();

      t.diagnostic(
        `silenced ${silenced} connections: append acknowledged after ${appended} ms, live delivery on both nodes after ${delivered} ms, ` +
          `typing across nodes after ${typing} ms, /ready 200 after ${ready} ms; 503s: ${log.unavailable}; slowest /ready ${probe.slowest()} ms`,
      );
      assert.deepEqual(log.wrong, [], 'appends answer 201 or 503 unavailable, nothing else');
      assert.ok(delivered < RECOVERY_BOUND_MS, `live delivery resumed in ${delivered} ms`);
      assert.ok(typing < RECOVERY_BOUND_MS, `typing relays resumed in ${typing} ms`);
      assert.ok(probe.slowest() < 2500, `/ready answered within 2 s (slowest ${probe.slowest()} ms)`);
      const during = probe.samples.filter((x) => x.at + x.ms >= t0 && x.at < t0 + delivered);
      assert.ok(during.some((x) => x.status === 503), `/ready was 503 while the connections were silent: ${during.map((x) => x.status)}`);
      await assertEveryoneHasEverything(A, rd, acked, [
        ['socket on A', onA.ids()],
        ['socket on B', onB.ids()],
        ['poller', poll.events.map((e) => e.id)],
      ]);
      onA.close();
      onB.close();
    } finally {
      await proxy.stop();
    }
  }),
);

test(
  'F2. a database restart (connections reset, then refused 8 s): two nodes resume delivery, presence and typing',
  f.run(async (t) => {
    const proxy = await new PgProxy().start();
    try {
      const url = proxy.url(f.db.name);
      const A = await f.start({ databaseUrl: url });
      const B = await f.start({ databaseUrl: url });
      const T = tenant('f2');
      const pub = publisher(T);
      const rd = reader(T, 'u-a');
      const onA = new StockSocket(A, rd, 'u-a on A');
      const onB = new StockSocket(B, reader(T, 'u-b'), 'u-b on B');
      await Promise.all([onA.connected, onB.connected]);
      const poll = new PollReader(A, rd);
      const log = { unavailable: 0, wrong: [] };
      const acked = [];
      for (let i = 0; i < 10; i++) acked.push(await appendUntilAcked(i % 2 ? A : B, pub, { stream: 'r', type: 'f2:item', data: { i } }, log));
      await waitUntil(() => onA.envelopes.length === 10 && onB.envelopes.length === 10, 15_000, 'the first events on both nodes');

      // Each check is recorded rather than thrown, so one run shows every item that fails.
      const problems = [];
      const check = async (what, fn) => {
        try {
          return await fn();
        } catch (err) {
          problems.push(`${what}: ${err.message}`);
          return Infinity;
        }
      };
      const probe = new ReadyProbe(A);
      await proxy.refuse();
      const down = Date.now();
      // During the outage: appends are `unavailable`, /ready is 503, and a
      // new socket is admitted (its replay waits for the store).
      await check('an append during the outage', async () => {
        const r = await http(A, 'POST', '/api/events', { token: pub, body: { stream: 'r', type: 'f2:item', data: {} } });
        assert.equal(r.status, 503, `${r.status} ${r.text}`);
        assert.equal(r.body.error.code, 'unavailable');
        assert.ok(Number(r.headers.get('retry-after')) > 0, 'with Retry-After');
      });
      const late = new StockSocket(A, reader(T, 'u-late-a'), 'u-late-a on A, connected during the outage');
      await check('a handshake during the outage', () =>
        waitUntil(() => late.socket.connected, 10_000, `connected (connect_errors: ${late.connectErrors})`),
      );
      await check('/ready during the outage', () => waitUntil(() => probe.since(down).some((x) => x.status === 503), 10_000, '503'));
      await sleep(Math.max(0, 8000 - (Date.now() - down)));

      await proxy.allow();
      const up = Date.now();
      const marker = await appendUntilAcked(B, pub, { stream: 'r', type: 'f2:marker', data: {} }, log);
      acked.push(marker);
      const delivery = await check('delivery', () =>
        timeUntil(up, () => [onA, onB, late].every((c) => c.has(marker.id)), 30_000, 'the marker on every socket'),
      );
      const typing = await check('typing', () =>
        timeUntil(
          up,
          () => {
            onB.socket.emit('user:typing', { resourceId: 'doc', resourceType: 'document' });
            return onA.got('user:typing').length > 0;
          },
          30_000,
          'user:typing from B to reach A',
        ),
      );
      const newcomer = new StockSocket(B, reader(T, 'u-new', 'Newcomer'), 'u-new on B');
      const online = await check('user:online', () =>
        timeUntil(up, () => onA.got('user:online').some((p) => p.userId === 'u-new'), 30_000, 'user:online from B on A'),
      );
      let listed = null;
      const presence = await check('presence:list', () =>
        timeUntil(
          up,
          async () => {
            listed = await onA.presence();
            const names = (listed?.users ?? []).map((u) => u.userId);
            return names.includes('u-new') && names.includes('u-b');
          },
          30_000,
          'presence:list on A to list the users on B',
        ),
      );
      const ready = await check('/ready after', () =>
        timeUntil(up, () => probe.since(up).some((x) => x.status === 200), 30_000, '/ready 200 on A'),
      );
      await probe.stop();
      await poll.stop();
      newcomer.close();

      t.diagnostic(
        `after the database answered again: delivery ${delivery} ms, typing ${typing} ms, user:online ${online} ms, ` +
          `presence:list ${presence} ms, /ready 200 ${ready} ms; 503s: ${log.unavailable}; slowest /ready ${probe.slowest()} ms`,
      );
      for (const [what, ms] of Object.entries({ delivery, typing, online, presence, ready })) {
        if (!(ms < RECOVERY_BOUND_MS)) problems.push(`${what} resumed in ${ms} ms`);
      }
      if (log.wrong.length) problems.push(`appends answered other than 201 or 503 unavailable: ${log.wrong.slice(0, 3)}`);
      if (probe.slowest() >= 2500) problems.push(`/ready took ${probe.slowest()} ms`);
      assert.deepEqual(problems, [], 'every part recovered');
      await assertEveryoneHasEverything(A, rd, acked, [
        ['socket on A', onA.ids()],
        ['socket on B', onB.ids()],
        ['socket admitted during the outage', late.ids()],
        ['poller', poll.events.map((e) => e.id)],
      ]);
      for (const c of [onA, onB, late]) c.close();
    } finally {
      await proxy.stop();
    }
  }),
);
