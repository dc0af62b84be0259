// Failures under the server: its LISTEN connection killed mid-stream, and the
// process killed and restarted with an offline consumer waiting.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, http, readAll, runWriters, tenant } from './lib/http.mjs';
import { publisher, reader } from './lib/token.mjs';
import { waitUntil } from './lib/client.mjs';
import { assertSameSequence, assertWriterOrder } from './lib/check.mjs';

const f = useFixture({ server: false });

async function killListener(old = []) {
  const pids = await waitUntil(
    async () => {
      const p = await f.db.listenerPids();
      return p.length > 0 && p.every((x) => !old.includes(x)) ? p : null;
    },
    20_000,
    `a LISTEN connection (application_name 'eventfeed-listener') on ${f.db.name}${old.length ? ` other than the killed pid ${old}` : ''}`,
  );
  const r = await f.db.query('SELECT pg_terminate_backend(pid) AS ok FROM unnest($1::int[]) AS pid', [pids]);
  assert.ok(r.rows.every((x) => x.ok === true), `pg_terminate_backend(${pids}) succeeded`);
  return pids;
}

test(
  '6. the LISTEN connection killed mid-stream: the client still receives every event, once',
  f.run(async (t) => {
    const s = await f.start();
    const T = tenant('l6');
    const token = reader(T, 'u1');
    const pub = publisher(T);
    const c = await f.connect(s, { token, label: 'live' });

    let stop = false;
    const writersDone = runWriters({
      writers: 2,
      total: 20_000,
      shouldStop: () => stop,
      appendOne: async (w, i) => (await appendHttp(s, pub, { stream: `w-${w}`, type: 'load:item', data: { w, i } }))[0].id,
    });
    try {
      await c.waitForEnvelopes(150, 30_000);
      const killed1 = await killListener();
      const atKill1 = c.envelopes.length;
      await c.waitForEnvelopes(atKill1 + 250, 30_000);
      // kill the new LISTEN connection too, if the server opened one
      const relisten = await killListener(killed1).catch((err) => err);
      const atKill2 = c.envelopes.length;
      await c.waitForEnvelopes(atKill2 + 250, 30_000);
      stop = true;
      const writers = await writersDone;

      const [marker] = await appendHttp(s, pub, { stream: 'm', type: 'test:marker', data: {} });
      await c.waitForEvent('test:marker', (e) => e.id === marker.id, 30_000);
      const read = await readAll(s, token, '0'); // the tenant is new: everything it has
      const total = writers.reduce((n, w) => n + w.length, 0);
      t.diagnostic(`${total} appended; listener pids killed: ${killed1} then ${relisten instanceof Error ? 'none (no new listener)' : relisten}; kills at ${atKill1} and ${atKill2} received`);
      assert.equal(read.length, total + 1);
      assertSameSequence(c.ids(), read.map((e) => e.id), 'live events across the listener kills vs GET /api/events');
      assertWriterOrder(c.ids(), writers);
      assert.equal(c.isConnected, true, 'the client stayed connected');
      // the server re-opens its LISTEN connection (the periodic read alone adds latency)
      assert.ok(!(relisten instanceof Error), `the server re-opened its LISTEN connection after the first kill: ${relisten.message}`);
      await waitUntil(
        async () => (await f.db.listenerPids()).some((p) => !relisten.includes(p)),
        20_000,
        'a new LISTEN connection after the second kill',
      );
    } finally {
      stop = true;
      await writersDone.catch(() => {});
    }
  }),
);

test(
  '9. offline queue across a restart: consumer c1 gets exactly the events after its ack, once',
  f.run(async () => {
    const s1 = await f.start();
    const T = tenant('q9');
    const token = reader(T, 'u1', 'one');
    const pub = publisher(T);
    const c = await f.connect(s1, { token, consumer: 'c1', label: 'c1 first session' });
    const e = [];
    for (let i = 1; i <= 5; i++) e.push((await appendHttp(s1, pub, { stream: 'orders', type: 'order:placed', data: { i } }))[0]);
    await c.waitForEnvelopes(5);
    assert.deepEqual(c.ids(), e.map((x) => x.id), 'first session gets e1..e5 live');
    assert.deepEqual(await c.ack('feed:ack', { cursor: e[2].cursor }), { ok: true }, 'feed:ack of e3');
    c.close();

    // more events while c1 is away: over HTTP, then the server dies, then through SQL
    for (let i = 6; i <= 8; i++) e.push((await appendHttp(s1, pub, { stream: 'orders', type: 'order:placed', data: { i } }))[0]);
    const exit = await s1.kill();
    assert.equal(exit.signal, 'SIGKILL');
    for (let i = 9; i <= 10; i++) {
      const row = await f.db.appendSql({ tenantId: T, stream: 'orders', type: 'order:placed', data: { i } });
      assert.equal(row.version, i);
      e.push({ cursor: row.cursor, sql: true });
    }

    const s2 = await f.start();
    const r = await f.connect(s2, { token, consumer: 'c1', label: 'c1 after restart' });
    const replayed = await r.waitForEvent('feed:replayed', () => true, 30_000);
    assert.deepEqual(
      r.envelopes.map((x) => x.data.i),
      [4, 5, 6, 7, 8, 9, 10],
      'c1 gets the events after its acked cursor (e4..e10), once, in order',
    );
    assert.deepEqual(r.envelopes.map((x) => x.cursor), e.slice(3).map((x) => x.cursor), 'their cursors');
    assert.deepEqual(replayed, { count: 7, cursor: e[9].cursor }, 'feed:replayed payload');

    // then live, once
    const [e11] = await appendHttp(s2, pub, { stream: 'orders', type: 'order:placed', data: { i: 11 } });
    await r.waitForEvent('order:placed', (x) => x.id === e11.id);
    assert.deepEqual(r.envelopes.map((x) => x.data.i), [4, 5, 6, 7, 8, 9, 10, 11], 'then e11 live, once');

    // acking the last event: the next session replays nothing, and still says so
    assert.deepEqual(await r.ack('feed:ack', { cursor: e11.cursor }), { ok: true });
    r.close();
    const r2 = await f.connect(s2, { token, consumer: 'c1', label: 'c1 third session' });
    assert.deepEqual(await r2.waitForEvent('feed:replayed'), { count: 0, cursor: e11.cursor }, 'feed:replayed with count 0');
    assert.deepEqual(r2.envelopes, [], 'nothing replayed');
    const [e12] = await appendHttp(s2, pub, { stream: 'orders', type: 'order:placed', data: { i: 12 } });
    await r2.waitForEvent('order:placed', (x) => x.id === e12.id);
    assert.deepEqual(r2.envelopes.map((x) => x.data.i), [12]);

    // the same stored cursor serves polling (after a fresh ack of e10)
    assert.deepEqual(await r2.ack('feed:ack', { cursor: e[9].cursor }), { ok: true });
    const poll = await http(s2, 'GET', '/api/events?consumer=c1&limit=1000', { token });
    assert.equal(poll.status, 200, poll.text);
    assert.deepEqual(poll.body.events.map((x) => x.data.i), [11, 12], 'GET /api/events?consumer=c1 reads after the stored cursor');
  }),
);

test(
  '10. a consumer seen for the first time gets every event appended after it connected, however late the store answers its start',
  f.run(async () => {
    const s = await f.start();
    const T = tenant('q10');
    const pub = publisher(T);
    // Holds the consumers table, so the new consumer's start (reading its
    // stored cursor) waits until the events below are committed.
    const lock = new pg.Client({ connectionString: f.db.url });
    await lock.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE eventfeed.consumers IN ACCESS EXCLUSIVE MODE');
      const c = await f.connect(s, { token: reader(T, 'u1'), consumer: 'c-new', label: 'new consumer' });
      const e = [];
      for (let i = 1; i <= 3; i++) e.push((await appendHttp(s, pub, { stream: 'orders', type: 'order:placed', data: { i } }))[0]);
      assert.equal(c.envelopes.length, 0, 'the consumer is still waiting for its start');
      await lock.query('COMMIT');
      await c.waitForEnvelopes(3);
      assert.deepEqual(c.ids(), e.map((x) => x.id), 'every event appended after the connect, once, in order');
    } finally {
      await lock.end().catch(() => {});
    }
  }),
);
