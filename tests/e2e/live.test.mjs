// Live delivery: the three append paths, the envelope, tenant isolation,
// user-targeted audience, and the user:typing relay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, readAll, tenant, uuid, http } from './lib/http.mjs';
import { mintToken, publisher, service, reader } from './lib/token.mjs';
import { assertEnvelope, assertSameSequence } from './lib/check.mjs';

const f = useFixture();

test(
  '1. a live event appended over HTTP, over the socket and through SQL reaches a client as an emit named by its type',
  f.run(async () => {
    const t = tenant('acme');
    const sub = await f.connect(f.server, { token: reader(t, 'u-reader', 'reader') });
    const pubSock = await f.connect(f.server, { token: mintToken({ sub: 'u-bob', tenant: t, name: 'bob', roles: ['publisher'] }) });
    const before = Date.now();

    // HTTP
    const pubToken = mintToken({ sub: 'u-alice', tenant: t, name: 'alice', roles: ['publisher'] });
    const [viaHttp] = await appendHttp(f.server, pubToken, {
      stream: 'invoice-42',
      type: 'invoice:paid',
      data: { invoiceNumber: 'INV-2026-001', amount: 1200, currency: 'EUR' },
      metadata: { correlationId: 'corr-1' },
    });
    assertEnvelope(viaHttp, {
      tenantId: t,
      stream: 'invoice-42',
      version: 1,
      type: 'invoice:paid',
      data: { invoiceNumber: 'INV-2026-001', amount: 1200, currency: 'EUR' },
      actor: { userId: 'u-alice', username: 'alice' },
      audience: null,
      metadata: { correlationId: 'corr-1' },
    });
    const ts = Date.parse(viaHttp.timestamp);
    assert.ok(ts >= before - 2000 && ts <= Date.now() + 2000, `timestamp ${viaHttp.timestamp} is the server time at append`);
    const gotHttp = await sub.waitForEvent('invoice:paid', (e) => e.id === viaHttp.id);
    assert.deepEqual(gotHttp, viaHttp, 'the socket gets the same envelope the HTTP append returned');

    // Socket event:append, with a client-chosen id
    const id = uuid();
    const ack = await pubSock.ack('event:append', { id, stream: 'invoice-42', type: 'invoice:sent', data: { to: 'x@example.com' } });
    assert.equal(ack.ok, true, `event:append ack: ${JSON.stringify(ack)}`);
    assertEnvelope(ack.event, {
      id,
      tenantId: t,
      stream: 'invoice-42',
      version: 2,
      type: 'invoice:sent',
      data: { to: 'x@example.com' },
      actor: { userId: 'u-bob', username: 'bob' },
      audience: null,
    });
    const gotSock = await sub.waitForEvent('invoice:sent', (e) => e.id === id);
    assert.deepEqual(gotSock, ack.event, 'the socket gets the envelope the event:append ack returned');

    // SQL function
    const row = await f.db.appendSql({ tenantId: t, stream: 'invoice-42', type: 'invoice:voided', data: { reason: 'duplicate' } });
    assert.equal(typeof row.cursor, 'string', 'append_event returns a cursor');
    assert.equal(row.version, 3, 'append_event returns the stream version');
    const gotSql = await sub.waitForEvent('invoice:voided', (e) => e.cursor === row.cursor);
    assertEnvelope(gotSql, { tenantId: t, stream: 'invoice-42', version: 3, type: 'invoice:voided', data: { reason: 'duplicate' } });

    // each exactly once, in append order, matching the polling read
    assert.deepEqual(
      sub.envelopes.map((e) => e.type),
      ['invoice:paid', 'invoice:sent', 'invoice:voided'],
      'the reader received each event once, in order',
    );
    const read = await readAll(f.server, reader(t, 'u-reader'), '0');
    assertSameSequence(sub.ids(), read.map((e) => e.id), 'live events vs GET /api/events');
    assert.deepEqual(sub.envelopes.map((e) => e.cursor), read.map((e) => e.cursor), 'cursors match the polling read');

    // an idempotent retry of the socket append returns the stored event, and delivers nothing new
    const retry = await pubSock.ack('event:append', { id, stream: 'invoice-42', type: 'invoice:sent', data: { to: 'x@example.com' } });
    assert.equal(retry.ok, true, `retried event:append: ${JSON.stringify(retry)}`);
    assert.deepEqual(retry.event, ack.event, 'retrying an id returns the stored event');
    const [marker] = await appendHttp(f.server, pubToken, { stream: 'm', type: 'test:marker', data: {} });
    await sub.waitForEvent('test:marker', (e) => e.id === marker.id);
    assert.equal(sub.got('invoice:sent').length, 1, 'an idempotent retry is not delivered twice');
  }),
);

test(
  '1b. feed:subscribe narrows the live feed to matching types',
  f.run(async () => {
    const t = tenant('sub');
    const c = await f.connect(f.server, { token: reader(t, 'u1') });
    assert.deepEqual(await c.ack('feed:subscribe', { types: ['invoice:*', 'expense:approved'] }), { ok: true });
    const pub = publisher(t);
    const appended = [];
    for (const type of ['invoice:paid', 'expense:created', 'expense:approved', 'bank:transaction_imported', 'invoice:sent']) {
      appended.push((await appendHttp(f.server, pub, { stream: 's', type, data: {} }))[0]);
    }
    await c.waitForEvent('invoice:sent', (e) => e.id === appended[4].id);
    assert.deepEqual(c.envelopes.map((e) => e.type), ['invoice:paid', 'expense:approved', 'invoice:sent']);
  }),
);

test(
  '2. tenant isolation, and an event for audience {users:[u2]} reaches only u2',
  f.run(async () => {
    const A = tenant('a');
    const B = tenant('b');
    const a1 = await f.connect(f.server, { token: reader(A, 'u1', 'one'), label: 'A/u1' });
    const a2 = await f.connect(f.server, { token: reader(A, 'u2', 'two'), label: 'A/u2#1' });
    const a2b = await f.connect(f.server, { token: reader(A, 'u2', 'two'), label: 'A/u2#2' });
    // same user ids in another tenant
    const b1 = await f.connect(f.server, { token: reader(B, 'u1', 'one'), label: 'B/u1' });
    const b2 = await f.connect(f.server, { token: reader(B, 'u2', 'two'), label: 'B/u2' });

    const [eAll] = await appendHttp(f.server, publisher(A), { stream: 'doc-1', type: 'doc:created', data: { n: 1 } });
    const [eU2] = await appendHttp(f.server, service(A), {
      stream: 'doc-1',
      type: 'doc:shared',
      data: { n: 2 },
      audience: { users: ['u2'] },
    });
    assert.deepEqual(eU2.audience, { users: ['u2'] });
    const [eB] = await appendHttp(f.server, publisher(B), { stream: 'doc-1', type: 'doc:created', data: { n: 3 } });
    // a socket append in A by a publisher
    const pubA = await f.connect(f.server, { token: publisher(A), label: 'A/pub' });
    const ackA = await pubA.ack('event:append', { stream: 'doc-2', type: 'doc:created', data: { n: 4 } });
    assert.equal(ackA.ok, true, JSON.stringify(ackA));
    // markers: cursor order means everything before them has been delivered when they arrive
    const [mA] = await appendHttp(f.server, publisher(A), { stream: 'm', type: 'test:marker', data: {} });
    const [mB] = await appendHttp(f.server, publisher(B), { stream: 'm', type: 'test:marker', data: {} });
    for (const c of [a1, a2, a2b]) await c.waitForEvent('test:marker', (e) => e.id === mA.id);
    for (const c of [b1, b2]) await c.waitForEvent('test:marker', (e) => e.id === mB.id);

    assert.deepEqual(a1.ids(), [eAll.id, ackA.event.id, mA.id], 'A/u1 sees A events except the one for u2');
    assert.deepEqual(a2.ids(), [eAll.id, eU2.id, ackA.event.id, mA.id], 'A/u2 (first socket) sees the targeted event');
    assert.deepEqual(a2b.ids(), [eAll.id, eU2.id, ackA.event.id, mA.id], 'A/u2 (second socket) sees the targeted event');
    assert.deepEqual(b1.ids(), [eB.id, mB.id], 'B/u1 sees only tenant B');
    assert.deepEqual(b2.ids(), [eB.id, mB.id], 'B/u2 (same sub as the target, other tenant) sees only tenant B');
    for (const e of [...b1.envelopes, ...b2.envelopes]) assert.equal(e.tenantId, B);

    // replay and polling are isolated the same way
    const b1r = await f.connect(f.server, { token: reader(B, 'u1'), after: '0', label: 'B/u1 replay' });
    await b1r.waitForEvent('feed:replayed');
    assert.deepEqual(b1r.ids(), [eB.id, mB.id], 'replay from 0 in tenant B has only B events');
    assert.deepEqual(b1r.got('feed:replayed')[0], { count: 2, cursor: mB.cursor });
    const a1r = await f.connect(f.server, { token: reader(A, 'u1'), after: '0', label: 'A/u1 replay' });
    await a1r.waitForEvent('feed:replayed');
    assert.deepEqual(a1r.ids(), [eAll.id, ackA.event.id, mA.id], 'replay for A/u1 hides the event for u2');
    assert.deepEqual(
      (await readAll(f.server, reader(A, 'u1'))).map((e) => e.id),
      [eAll.id, ackA.event.id, mA.id],
      'GET /api/events for A/u1',
    );
    assert.deepEqual(
      (await readAll(f.server, reader(A, 'u2'))).map((e) => e.id),
      [eAll.id, eU2.id, ackA.event.id, mA.id],
      'GET /api/events for A/u2',
    );
    // a cursor of tenant A handed to a tenant B socket reaches nothing of A
    const bx = await f.connect(f.server, { token: reader(B, 'u1'), after: eAll.cursor, label: 'B with A cursor' });
    await bx.waitForEvent('feed:replayed');
    for (const e of bx.envelopes) assert.equal(e.tenantId, B, 'a foreign cursor does not leak events');
  }),
);

test(
  '12. user:typing is relayed to the other sockets of the tenant, not to the sender nor another tenant',
  f.run(async () => {
    const A = tenant('a');
    const B = tenant('b');
    const s1 = await f.connect(f.server, { token: reader(A, 'u1', 'alice'), label: 'A/u1 sender' });
    const s1b = await f.connect(f.server, { token: reader(A, 'u1', 'alice'), label: 'A/u1 other socket' });
    const s2 = await f.connect(f.server, { token: reader(A, 'u2', 'bob'), label: 'A/u2' });
    const b1 = await f.connect(f.server, { token: reader(B, 'u1', 'alice'), label: 'B/u1' });
    const b2 = await f.connect(f.server, { token: reader(B, 'u3', 'carol'), label: 'B/u3' });

    // the server names the typist from the token, whatever the payload claims
    s1.emit('user:typing', { resourceId: 'inv-42', resourceType: 'invoice', userId: 'spoofed', username: 'mallory' });
    const expected = { userId: 'u1', username: 'alice', resourceId: 'inv-42', resourceType: 'invoice' };
    assert.deepEqual(await s2.waitForEvent('user:typing'), expected, 'u2 gets the relay');
    assert.deepEqual(await s1b.waitForEvent('user:typing'), expected, "the sender's other socket gets the relay");

    // after the relay has reached the others, a later relay from u2 reaches the sender;
    // the sender must not have had its own.
    s2.emit('user:typing', { resourceId: 'inv-43', resourceType: 'invoice' });
    await s1.waitForEvent('user:typing', (p) => p.resourceId === 'inv-43');
    assert.deepEqual(s1.got('user:typing'), [{ userId: 'u2', username: 'bob', resourceId: 'inv-43', resourceType: 'invoice' }], 'the sender never gets its own typing');
    assert.equal(s2.got('user:typing').length, 1, 'u2 does not get its own typing');

    // tenant B sees only its own typing
    b2.emit('user:typing', { resourceId: 'exp-1', resourceType: 'expense' });
    await b1.waitForEvent('user:typing', (p) => p.resourceId === 'exp-1');
    assert.deepEqual(b1.got('user:typing'), [{ userId: 'u3', username: 'carol', resourceId: 'exp-1', resourceType: 'expense' }], 'tenant B never sees tenant A typing');
    assert.equal(s2.got('user:typing').length, 1, 'tenant A never sees tenant B typing');

    // never stored
    const r = await http(f.server, 'GET', '/api/events?after=0&limit=1000', { token: reader(A, 'u1') });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.events, [], 'typing is not stored as an event');
  }),
);
