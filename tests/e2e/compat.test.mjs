// Client code written for hand-made Socket.IO servers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, tenant } from './lib/http.mjs';
import { publisher, reader } from './lib/token.mjs';
import { assertErrorAck } from './lib/check.mjs';

const f = useFixture({ env: { EVENTFEED_NAMESPACES: '/,/dashboard=kpi:*|metrics:*' } });

test(
  '11a. join-tenant: own tenant -> {ok:true, room}; another tenant -> forbidden, and nothing of it arrives',
  f.run(async () => {
    const T = tenant('j');
    const other = tenant('j-other');
    const c = await f.connect(f.server, { token: reader(T, 'u1'), label: 'joiner' });
    assert.deepEqual(await c.ack('join-tenant', T), { ok: true, room: `tenant:${T}` });
    assertErrorAck(await c.ack('join-tenant', other), 'forbidden');
    // the seeds also emit it without an acknowledgement
    c.emit('join-tenant', T);
    c.emit('join-tenant', other);
    assert.deepEqual(await c.ack('join-tenant', T), { ok: true, room: `tenant:${T}` });

    await appendHttp(f.server, publisher(other), { stream: 's', type: 'secret:thing', data: {} });
    const [mine] = await appendHttp(f.server, publisher(T), { stream: 's', type: 'test:marker', data: {} });
    await c.waitForEvent('test:marker', (e) => e.id === mine.id);
    assert.deepEqual(c.ids(), [mine.id], 'only its own tenant, once (joining again does not duplicate)');
  }),
);

test(
  '11b. EVENTFEED_NAMESPACES: /dashboard gets only kpi:* and metrics:* (live and replay); unlisted namespaces are refused',
  f.run(async () => {
    const T = tenant('ns');
    const root = await f.connect(f.server, { token: reader(T, 'u1'), label: '/' });
    const dash = await f.connect(f.server, { token: reader(T, 'u1'), namespace: '/dashboard', label: '/dashboard' });
    const pub = publisher(T);
    const appended = [];
    for (const type of ['invoice:paid', 'kpi:updated', 'business:created', 'metrics:cpu', 'kpi:updated', 'metrics:done']) {
      appended.push((await appendHttp(f.server, pub, { stream: 'dash', type, data: { type } }))[0]);
    }
    const last = appended.at(-1);
    await root.waitForEvent('metrics:done', (e) => e.id === last.id);
    await dash.waitForEvent('metrics:done', (e) => e.id === last.id);
    assert.deepEqual(root.ids(), appended.map((e) => e.id), '/ gets every event');
    const wanted = appended.filter((e) => /^(kpi|metrics):/.test(e.type));
    assert.deepEqual(dash.envelopes.map((e) => e.type), ['kpi:updated', 'metrics:cpu', 'kpi:updated', 'metrics:done']);
    assert.deepEqual(dash.ids(), wanted.map((e) => e.id), '/dashboard gets kpi:* and metrics:* only');
    assert.deepEqual(dash.got('kpi:updated')[0], appended[1], 'the same envelope on /dashboard');

    const replay = await f.connect(f.server, { token: reader(T, 'u2'), namespace: '/dashboard', after: '0', label: '/dashboard replay' });
    const done = await replay.waitForEvent('feed:replayed');
    assert.deepEqual(replay.ids(), wanted.map((e) => e.id), '/dashboard replay is filtered the same way');
    assert.deepEqual(done, { count: 4, cursor: last.cursor });

    const noAuth = await f.connectError(f.server, { auth: {}, namespace: '/dashboard', label: '/dashboard without token' });
    assert.ok(noAuth.message.startsWith('authentication failed: '), `same authentication on /dashboard: ${noAuth.message}`);
    const unlisted = await f.connectError(f.server, { token: reader(T, 'u1'), namespace: '/admin', label: '/admin' });
    assert.equal(unlisted.message, 'Invalid namespace');
  }),
);

test(
  '11c. request:current-state without an ack emits reconnected {cursor, online}; with an ack answers the same',
  f.run(async () => {
    const T = tenant('cs');
    const c = await f.connect(f.server, { token: reader(T, 'u1', 'Ann'), label: 'dashboard client' });
    const [e] = await appendHttp(f.server, publisher(T), { stream: 's', type: 'kpi:updated', data: {} });
    await c.waitForEvent('kpi:updated', (x) => x.id === e.id);

    c.emit('request:current-state');
    const rc = await c.waitForEvent('reconnected');
    assert.deepEqual(Object.keys(rc).sort(), ['cursor', 'online'], `reconnected payload: ${JSON.stringify(rc)}`);
    assert.equal(typeof rc.cursor, 'string');
    assert.ok(Array.isArray(rc.online), 'online is an array');
    const onlineIds = rc.online.map((u) => (typeof u === 'string' ? u : u.userId));
    assert.ok(onlineIds.includes('u1'), `online lists the connected user: ${JSON.stringify(rc.online)}`);

    const viaAck = await c.ack('request:current-state');
    assert.deepEqual(Object.keys(viaAck).sort(), ['cursor', 'online'], `ack payload: ${JSON.stringify(viaAck)}`);
    assert.equal(viaAck.cursor, rc.cursor, 'nothing was appended since: same head');

    // the head cursor is a valid `after`: nothing to replay, then live
    const r = await f.connect(f.server, { token: reader(T, 'u1'), after: rc.cursor, label: 'from head' });
    const done = await r.waitForEvent('feed:replayed');
    assert.equal(done.count, 0, `feed:replayed after the head: ${JSON.stringify(done)}`);
    assert.equal(typeof done.cursor, 'string');
    const [e2] = await appendHttp(f.server, publisher(T), { stream: 's', type: 'kpi:updated', data: { n: 2 } });
    await r.waitForEvent('kpi:updated', (x) => x.id === e2.id);
    assert.deepEqual(r.ids(), [e2.id]);
  }),
);
