// Trust (issue 10): what a client is shown never reveals another tenant's
// activity or another user's event, ids with ':' never share a room, commands
// emitted in the `connect` handler are never lost, and no append can pose as the server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, tenant, http, uuid } from './lib/http.mjs';
import { publisher, reader, service } from './lib/token.mjs';
import { assertErrorAck } from './lib/check.mjs';
import { withTimeout } from './lib/client.mjs';

const f = useFixture();

test(
  'cursors handed to a client are its own tenant\'s or its own, however busy other tenants are',
  f.run(async () => {
    const [a, b] = [tenant('quiet'), tenant('busy')];
    const [mine] = await appendHttp(f.server, publisher(a), { stream: 's', type: 'doc:created', data: {} });
    for (let i = 0; i < 5; i++) await appendHttp(f.server, publisher(b), { stream: 's', type: 'doc:created', data: { i } });

    const s = await f.connect(f.server, { token: reader(a, 'u1'), after: '0' });
    const replayed = await s.waitForEvent('feed:replayed');
    assert.deepEqual(replayed, { count: 1, cursor: mine.cursor });
    const state = await s.ack('request:current-state');
    assert.equal(state.cursor, mine.cursor, 'request:current-state names the tenant\'s newest event');
    // A replay that sends nothing reports the cursor it was handed.
    const none = await f.connect(f.server, { token: reader(a, 'u2'), after: mine.cursor });
    assert.deepEqual(await none.waitForEvent('feed:replayed'), { count: 0, cursor: mine.cursor });

    // A new consumer starts at its tenant's head; a tenant with no events gets 0.
    const poll = await http(f.server, 'GET', '/api/events?consumer=fresh', { token: reader(a, 'u3') });
    assert.equal(poll.body.cursor, mine.cursor);
    const empty = await http(f.server, 'GET', '/api/events?consumer=fresh', { token: reader(tenant('empty'), 'u3') });
    assert.equal(empty.body.cursor, '0');
  }),
);

test(
  'tenant "t9:a" user "b" and tenant "t9" user "a:b" are different people',
  f.run(async () => {
    const t9 = tenant('t9');
    const [x, y] = [`${t9}:a`, t9];
    const watchX = await f.connect(f.server, { token: reader(x, 'watcher') });
    const watchY = await f.connect(f.server, { token: reader(y, 'watcher') });
    await f.connect(f.server, { token: reader(x, 'b') });
    await watchX.waitForEvent('user:online', (p) => p.userId === 'b');
    // Were the rooms shared, y's a:b would count x's b as an earlier socket and stay silent.
    await f.connect(f.server, { token: reader(y, 'a:b') });
    await watchY.waitForEvent('user:online', (p) => p.userId === 'a:b');
  }),
);

test(
  'a command emitted in the connect handler is always acknowledged',
  f.run(async () => {
    const t = tenant('eager');
    // The race lost about 1 in 500 commands: three waves of 400 sockets.
    for (let wave = 0; wave < 3; wave++) {
      const sockets = Array.from({ length: 400 }, () =>
        io(f.server.url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: reader(t, 'u') } }),
      );
      try {
        const acks = sockets.map(
          (s) =>
            new Promise((resolve, reject) => {
              s.on('connect_error', reject);
              s.on('connect', () =>
                s.timeout(10_000).emit('feed:subscribe', { types: ['doc:*'] }, (err, ack) => (err ? reject(err) : resolve(ack))),
              );
            }),
        );
        const got = await withTimeout(Promise.all(acks), 30_000, `wave ${wave}: 400 acks`);
        assert.ok(got.every((ack) => ack.ok === true));
      } finally {
        for (const s of sockets) s.close();
      }
    }
  }),
);

test(
  'event:append: a reused id never shows another user\'s event; reserved types and NUL are invalid',
  f.run(async () => {
    const t = tenant('retry');
    const id = uuid();
    const secret = { id, stream: 'inbox/u1', type: 'notification:private', data: { secret: 's3cret-for-u1' }, audience: { users: ['u1'] } };
    const [stored] = await appendHttp(f.server, service(t), secret);

    const u2 = await f.connect(f.server, { token: publisher(t, 'u2'), label: 'publisher u2' });
    for (const body of [{ id, stream: 'x', type: 'a:b', data: {} }, { ...secret, audience: undefined }]) {
      const ack = await u2.ack('event:append', body);
      assertErrorAck(ack, 'conflict');
      assert.equal(ack.error.message, 'id already used', JSON.stringify(ack));
      assert.equal(ack.error.currentVersion, undefined, JSON.stringify(ack));
      assert.ok(!JSON.stringify(ack).includes('s3cret'), `the ack shows the stored event: ${JSON.stringify(ack)}`);
    }
    const svc = await f.connect(f.server, { token: service(t), label: 'service' });
    const again = await svc.ack('event:append', secret);
    assert.deepEqual(again, { ok: true, event: stored }, 'the service\'s own retry is idempotent');

    for (const type of ['feed:reset', 'auth:expired', 'user:online', 'presence:x']) {
      const ack = await u2.ack('event:append', { stream: 's', type, data: {} });
      assertErrorAck(ack, 'invalid');
      assert.match(ack.error.message, /reserved/, JSON.stringify(ack));
    }
    assertErrorAck(await u2.ack('event:append', { stream: 's', type: 'a:b', data: { x: 'a\u0000b' } }), 'invalid');
  }),
);
