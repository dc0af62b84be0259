// Replay after a disconnect: concurrent writers, handoff to the live feed while
// writers keep going, and a 50,000-event backlog.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, readAll, runWriters, tenant } from './lib/http.mjs';
import { publisher, reader } from './lib/token.mjs';
import { waitUntil } from './lib/client.mjs';
import { assertSameSequence, assertWriterOrder } from './lib/check.mjs';

const f = useFixture();

/** Connect, receive one event, disconnect: returns the last cursor the client kept. */
async function lastCursorThenDisconnect(T, token) {
  const c = await f.connect(f.server, { token, label: 'before disconnect' });
  const [first] = await appendHttp(f.server, publisher(T), { stream: 'start', type: 'test:start', data: {} });
  await c.waitForEvent('test:start', (e) => e.id === first.id);
  assert.deepEqual(c.ids(), [first.id]);
  c.close();
  await c.waitForDisconnect();
  return first.cursor;
}

async function sqlBacklog(T, from, to, type = 'bulk:item') {
  const r = await f.db.query(
    `SELECT count(*)::int AS n FROM (
       SELECT eventfeed.append_event(tenant_id => $1, stream => 'bulk-' || (g % 20), type => $4, data => jsonb_build_object('n', g))
       FROM generate_series($2::int, $3::int) AS g) s`,
    [T, from, to, type],
  );
  assert.equal(r.rows[0].n, to - from + 1);
}

test(
  '3. reconnect with auth.after after 2,000 concurrent appends: all received once, in cursor order, then feed:replayed',
  f.run(async () => {
    const T = tenant('r3');
    const token = reader(T, 'u1');
    const lastCursor = await lastCursorThenDisconnect(T, token);

    const pub = publisher(T);
    const writers = await runWriters({
      writers: 8,
      total: 2000,
      appendOne: async (w, i) =>
        (await appendHttp(f.server, pub, { stream: i % 2 ? `w-${w}` : 'shared', type: 'load:item', data: { w, i } }))[0].id,
    });

    const r = await f.connect(f.server, { token, after: lastCursor, label: 'replaying' });
    const replayed = await r.waitForEvent('feed:replayed', () => true, 60_000);
    const [marker] = await appendHttp(f.server, pub, { stream: 'm', type: 'test:marker', data: {} });
    await r.waitForEvent('test:marker', (e) => e.id === marker.id);

    const read = await readAll(f.server, token, lastCursor);
    assert.equal(read.length, 2001, 'GET /api/events after the kept cursor has the 2,000 events and the marker');
    assertSameSequence(r.ids(), read.map((e) => e.id), 'replayed + live events vs GET /api/events');
    assert.equal(r.replayedAt[0], 2000, 'feed:replayed comes right after the 2,000th replayed event');
    assert.deepEqual(replayed, { count: 2000, cursor: read[1999].cursor }, 'feed:replayed payload');
    assert.equal(r.count('feed:replayed'), 1, 'one feed:replayed');
    assertWriterOrder(r.ids(), writers);
  }),
);

test(
  '4. handoff: appends continue during the replay; every event arrives exactly once, in cursor order',
  f.run(async (t) => {
    const T = tenant('r4');
    const token = reader(T, 'u1');
    const pub = publisher(T);
    const lastCursor = await lastCursorThenDisconnect(T, token);
    await sqlBacklog(T, 1, 5000); // makes the replay last long enough to overlap the writers

    let stop = false;
    const spans = []; // [startMs, endMs] of each append
    let appended = 0;
    const writersDone = runWriters({
      writers: 4,
      total: 6000,
      shouldStop: () => stop,
      appendOne: async (w, i) => {
        const t0 = Date.now();
        const [e] = await appendHttp(f.server, pub, { stream: `w-${w}`, type: 'load:item', data: { w, i } });
        spans.push([t0, Date.now()]);
        appended++;
        return e.id;
      },
    });
    try {
      // writers are under way before the client comes back
      await waitUntil(() => appended >= 50, 20_000, 'the writers to append 50 events', 10);
      const tConnect = Date.now();
      const r = await f.connect(f.server, { token, after: lastCursor, label: 'replaying during appends' });
      await r.waitForEvent('feed:replayed', () => true, 90_000);
      const tReplayed = r.all.find((x) => x.name === 'feed:replayed').at;
      // stay until the live feed has carried a good number of the writers' events
      await r.waitFor((c) => c.envelopes.length >= c.replayedAt[0] + 300, 60_000, '300 live events after feed:replayed');
      stop = true;
      const writers = await writersDone;
      const [marker] = await appendHttp(f.server, pub, { stream: 'm', type: 'test:marker', data: {} });
      await r.waitForEvent('test:marker', (e) => e.id === marker.id, 60_000);

      const during = spans.filter(([a, b]) => b > tConnect && a < tReplayed).length;
      t.diagnostic(`replay took ${tReplayed - tConnect} ms; ${during} appends overlapped it; ${r.replayedAt[0]} replayed, ${r.envelopes.length - r.replayedAt[0]} live`);
      assert.ok(during > 0, `the test must append during the replay (appends overlapping it: ${during})`);

      const read = await readAll(f.server, token, lastCursor);
      const total = writers.reduce((n, w) => n + w.length, 0);
      assert.equal(read.length, 5000 + total + 1, 'GET /api/events has the backlog, the writers’ events and the marker');
      assertSameSequence(r.ids(), read.map((e) => e.id), 'received vs GET /api/events');
      assertWriterOrder(r.ids(), writers);
      const n = r.replayedAt[0];
      assert.ok(n >= 5000, `at least the backlog is replayed before feed:replayed (got ${n})`);
      assert.deepEqual(r.got('feed:replayed'), [{ count: n, cursor: r.envelopes[n - 1].cursor }], 'feed:replayed counts what was replayed');
    } finally {
      stop = true;
      await writersDone.catch(() => {});
    }
  }),
);

test(
  '5. a 50,000-event backlog is replayed to one socket without a drop',
  f.run(async (t) => {
    const T = tenant('r5');
    const token = reader(T, 'u1');
    for (let k = 0; k < 5; k++) await sqlBacklog(T, k * 10_000 + 1, (k + 1) * 10_000);

    const r = await f.connect(f.server, { token, after: '0', label: '50k replay' });
    const tConnect = Date.now();
    const replayed = await r.waitForEvent('feed:replayed', () => true, 150_000);
    t.diagnostic(`feed:replayed ${JSON.stringify(replayed)} after ${r.replayedAt[0]} events, ${Date.now() - tConnect} ms after connect`);
    // whatever comes after feed:replayed too, so a failure says whether events were lost or late
    await r.waitForEnvelopes(50_000, 30_000).catch(() => {});
    assert.equal(r.isConnected, true, 'the socket is still connected after the replay');
    assert.equal(r.envelopes.length, 50_000, 'received 50,000 events');
    const seen = new Uint8Array(50_001);
    for (const e of r.envelopes) {
      assert.equal(e.type, 'bulk:item');
      seen[e.data.n]++;
    }
    const bad = [];
    for (let n = 1; n <= 50_000; n++) if (seen[n] !== 1) bad.push(`${n}x${seen[n]}`);
    assert.deepEqual(bad.slice(0, 10), [], `each of n=1..50000 exactly once (${bad.length} wrong)`);

    const read = await readAll(f.server, token, '0');
    assertSameSequence(r.ids(), read.map((e) => e.id), '50k replay vs GET /api/events');
    assert.deepEqual(
      { position: r.replayedAt[0], ...replayed },
      { position: 50_000, count: 50_000, cursor: read.at(-1).cursor },
      'feed:replayed comes after the whole backlog, which was committed before the socket connected',
    );
  }),
);

test(
  '6. the handshake types apply from the first replayed event: a replay carries only matching types',
  f.run(async () => {
    const T = tenant('r6');
    const pub = publisher(T);
    const types = ['invoice:paid', 'expense:created', 'invoice:sent', 'bank:imported', 'expense:approved'];
    const stored = [];
    for (const type of types) stored.push(...(await appendHttp(f.server, pub, { stream: 's', type, data: {} })));
    const auth = { token: reader(T, 'u1'), after: '0', types: ['invoice:*', 'expense:approved'] };
    const r = await f.connect(f.server, { auth, label: 'typed replay' });
    const replayed = await r.waitForEvent('feed:replayed', () => true);
    assert.deepEqual(r.envelopes.map((e) => e.type), ['invoice:paid', 'invoice:sent', 'expense:approved']);
    assert.equal(replayed.count, 3);
    // Live, the same filter.
    const [live] = await appendHttp(f.server, pub, { stream: 's', type: 'expense:created', data: {} });
    const [marker] = await appendHttp(f.server, pub, { stream: 's', type: 'invoice:void', data: {} });
    await r.waitForEvent('invoice:void', (e) => e.id === marker.id);
    assert.ok(!r.ids().includes(live.id), 'a live event of another type is not delivered');
    assert.equal(stored.length, 5);

    for (const [bad, message] of [
      [['invoice'], /domain:action/],
      ['invoice:*', /types must be a list/],
    ]) {
      const err = await f.connectError(f.server, { auth: { token: reader(T, 'u1'), types: bad }, label: `types=${bad}` });
      assert.match(err.message, message);
    }
  }),
);
