// Two server processes on one database: events appended on either reach
// clients on both, and presence spans the cluster.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, readAll, tenant } from './lib/http.mjs';
import { publisher, reader } from './lib/token.mjs';
import { waitUntil } from './lib/client.mjs';
import { assertSameSequence, assertTimestamp } from './lib/check.mjs';

// A short presence grace: the test waits for user:offline.
const env = { EVENTFEED_PRESENCE_GRACE: '1s' };
const f = useFixture({ env });

test(
  '7. two servers on one database: every event reaches clients on both; presence spans both',
  f.run(async () => {
    const A = f.server;
    const B = await f.start({ env });
    const T = tenant('c7');
    const pub = publisher(T);
    const ca = await f.connect(A, { token: reader(T, 'u1'), label: 'client on A' });
    const cb = await f.connect(B, { token: reader(T, 'u2'), label: 'client on B' });
    const pa = await f.connect(A, { token: pub, label: 'publisher socket on A' });
    const pb = await f.connect(B, { token: pub, label: 'publisher socket on B' });

    const sockAppend = async (p, src, n) => {
      for (let i = 0; i < n; i++) {
        const a = await p.ack('event:append', { stream: `s-${src}`, type: 'cluster:item', data: { src, i } });
        assert.equal(a.ok, true, JSON.stringify(a));
      }
    };
    const httpAppend = async (srv, src, n) => {
      for (let i = 0; i < n; i++) await appendHttp(srv, pub, { stream: `s-${src}`, type: 'cluster:item', data: { src, i } });
    };
    const sqlAppend = async (n) => {
      for (let i = 0; i < n; i++) await f.db.appendSql({ tenantId: T, stream: 's-sql', type: 'cluster:item', data: { src: 'sql', i } });
    };
    await Promise.all([httpAppend(A, 'httpA', 80), httpAppend(B, 'httpB', 80), sockAppend(pa, 'sockA', 40), sockAppend(pb, 'sockB', 40), sqlAppend(40)]);
    const [marker] = await appendHttp(B, pub, { stream: 'm', type: 'test:marker', data: {} });
    for (const c of [ca, cb, pa, pb]) await c.waitForEvent('test:marker', (e) => e.id === marker.id, 30_000);

    const readA = await readAll(A, reader(T, 'u1'));
    const readB = await readAll(B, reader(T, 'u1'));
    assert.equal(readA.length, 281);
    assert.deepEqual(readB.map((e) => e.id), readA.map((e) => e.id), 'both nodes read the same sequence');
    assertSameSequence(ca.ids(), readA.map((e) => e.id), 'client on A');
    assertSameSequence(cb.ids(), readA.map((e) => e.id), 'client on B');

    // presence
    const watcher = await f.connect(A, { token: reader(T, 'u-watch', 'Watcher'), label: 'watcher on A' });
    const other = await f.connect(B, { token: reader(tenant('other'), 'u-x', 'Other Tenant'), label: 'other tenant on B' });
    void other;
    const remote = await f.connect(B, { token: reader(T, 'u-remote', 'Remote Rita'), label: 'u-remote on B' });
    const online = await watcher.waitForEvent('user:online', (p) => p.userId === 'u-remote', 10_000);
    assert.equal(online.username, 'Remote Rita');
    assertTimestamp(online.timestamp, 'user:online timestamp');

    const list = await watcher.ack('presence:list');
    assert.ok(Array.isArray(list.users), `presence:list ack: ${JSON.stringify(list)}`);
    const byId = Object.fromEntries(list.users.map((u) => [u.userId, u]));
    assert.deepEqual(byId['u-remote'], { userId: 'u-remote', username: 'Remote Rita', connections: 1 }, 'A lists the user connected only to B');
    assert.equal(byId['u-watch']?.connections, 1, 'A lists its own user');
    assert.equal(byId['u2']?.connections, 1, 'A lists u2 (on B)');
    assert.equal(byId['u-x'], undefined, 'presence:list has no user of another tenant');

    // a second socket of the same user: no second user:online, connections 2
    const remote2 = await f.connect(B, { token: reader(T, 'u-remote', 'Remote Rita'), label: 'u-remote#2 on B' });
    void remote2;
    await waitUntil(
      async () => (await watcher.ack('presence:list')).users.find((u) => u.userId === 'u-remote')?.connections === 2,
      10_000,
      'presence:list on A to count 2 connections of u-remote',
    );

    // typing relays cross the nodes too
    remote.emit('user:typing', { resourceId: 'doc-9', resourceType: 'document' });
    assert.deepEqual(
      await watcher.waitForEvent('user:typing', () => true, 10_000),
      { userId: 'u-remote', username: 'Remote Rita', resourceId: 'doc-9', resourceType: 'document' },
      'user:typing from B reaches A',
    );

    // last socket gone -> user:offline on A, and gone from the list
    remote.close();
    await waitUntil(
      async () => (await watcher.ack('presence:list')).users.find((u) => u.userId === 'u-remote')?.connections === 1,
      10_000,
      'presence:list on A to count 1 connection of u-remote after one of its two sockets left',
    );
    assert.equal(watcher.count('user:offline'), 0, 'no user:offline while the user still has a socket');
    remote2.close();
    const offline = await watcher.waitForEvent('user:offline', (p) => p.userId === 'u-remote', 10_000);
    assert.equal(offline.username, 'Remote Rita');
    assertTimestamp(offline.timestamp, 'user:offline timestamp');
    await waitUntil(
      async () => !(await watcher.ack('presence:list')).users.some((u) => u.userId === 'u-remote'),
      10_000,
      'u-remote to leave presence:list on A',
    );
    assert.equal(watcher.got('user:online').filter((p) => p.userId === 'u-remote').length, 1, 'one user:online for u-remote');
    assert.equal(watcher.got('user:offline').filter((p) => p.userId === 'u-remote').length, 1, 'one user:offline for u-remote');
    assert.ok(!watcher.got('user:online').some((p) => p.userId === 'u-x'), 'no presence events of another tenant');
  }),
);
