// Bad input of every kind against one server, which must keep serving
// everyone else and a fresh client afterwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, http, tenant, uuid } from './lib/http.mjs';
import { mintNoneToken, mintToken, publisher, reader } from './lib/token.mjs';
import { assertErrorAck } from './lib/check.mjs';
import { startFlooder } from './lib/flooder.mjs';

const f = useFixture();
const PREFIX = 'authentication failed: ';

test(
  '10a. refused handshakes: missing token, bad signature, expired, wrong tenant claim, alg none, garbage; malformed after',
  f.run(async () => {
    const T = tenant('bad');
    const cases = {
      'missing token': { auth: {} },
      'bad signature': { token: mintToken({ sub: 'u1', tenant: T, secret: 'some-other-secret-of-enough-length' }) },
      expired: { token: mintToken({ sub: 'u1', tenant: T, expIn: -120 }) },
      'wrong tenant claim (tenant instead of tenant_id)': { token: mintToken({ sub: 'u1', tenant: undefined, extra: { tenant: T } }) },
      'no sub': { token: mintToken({ sub: undefined, tenant: T }) },
      'alg none': { token: mintNoneToken({ sub: 'u1', tenant_id: T }) },
      'not a JWT': { token: 'not.a.jwt' },
    };
    for (const [name, o] of Object.entries(cases)) {
      const err = await f.connectError(f.server, { ...o, label: name });
      assert.ok(
        typeof err.message === 'string' && err.message.startsWith(PREFIX) && err.message.length > PREFIX.length,
        `${name}: connect_error message starts with "${PREFIX}" and names a reason; got ${JSON.stringify(err.message)}`,
      );
      // HTTP refuses the same token the same way
      if (o.token) {
        const r = await http(f.server, 'GET', '/api/events?after=0', { token: o.token });
        assert.equal(r.status, 401, `${name}: HTTP status (${r.text})`);
        assert.equal(r.body?.error?.code, 'unauthorized', `${name}: HTTP error body ${r.text}`);
      }
    }

    for (const after of ['not-a-cursor!!', '%%%', 'eyJ4IjoxfQ', '-1']) {
      const err = await f.connectError(f.server, { token: reader(T, 'u1'), after, label: `after=${after}` });
      assert.equal(err.message, 'invalid cursor', `malformed after=${JSON.stringify(after)}`);
    }
    const r = await http(f.server, 'GET', '/api/events?after=not-a-cursor!!', { token: reader(T, 'u1') });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body?.error?.code, 'invalid_cursor', r.text);
  }),
);

test(
  '10b. unknown client events and wrong payloads are answered with errors; the socket stays usable',
  f.run(async () => {
    const T = tenant('bad');
    const pub = await f.connect(f.server, { token: publisher(T), consumer: 'cx', label: 'publisher' });
    const plain = await f.connect(f.server, { token: reader(T, 'u-reader'), label: 'reader (no publisher role)' });

    assertErrorAck(await pub.ack('bogus:thing', { x: 1 }), 'invalid', true);
    assertErrorAck(await pub.ack('hello'), 'invalid', true);

    assertErrorAck(await pub.ack('event:append', 42), 'invalid');
    assertErrorAck(await pub.ack('event:append', 'a string'), 'invalid');
    assertErrorAck(await pub.ack('event:append', { stream: 's', type: 'nocolon', data: {} }), 'invalid');
    assertErrorAck(await pub.ack('event:append', { stream: 'bad stream!', type: 'a:b', data: {} }), 'invalid');
    assertErrorAck(await pub.ack('event:append', { stream: 's', type: 'a:b', data: [1, 2] }), 'invalid');
    assertErrorAck(await pub.ack('event:append', { stream: 's', type: 'a:b', data: {}, id: 'not-a-uuid' }), 'invalid');
    assertErrorAck(await pub.ack('feed:subscribe', { types: 'x' }), 'invalid');
    assertErrorAck(await pub.ack('feed:subscribe', 7), 'invalid');
    assertErrorAck(await pub.ack('feed:ack', { cursor: 12 }), 'invalid');
    assertErrorAck(await pub.ack('feed:ack', { cursor: 'garbage!!' }), 'invalid_cursor');
    assertErrorAck(await pub.ack('auth:refresh', { token: 5 }), 'invalid');

    // contract errors on a well-formed append
    assertErrorAck(await plain.ack('event:append', { stream: 's', type: 'a:b', data: {} }), 'forbidden');
    const first = await pub.ack('event:append', { stream: 'acct-1', type: 'acct:opened', data: {}, expectedVersion: 0 });
    assert.equal(first.ok, true, JSON.stringify(first));
    const conflict = await pub.ack('event:append', { stream: 'acct-1', type: 'acct:closed', data: {}, expectedVersion: 0 });
    assertErrorAck(conflict, 'conflict');
    assert.equal(conflict.error.currentVersion, 1, `conflict carries currentVersion: ${JSON.stringify(conflict)}`);
    assertErrorAck(await pub.ack('event:append', { stream: 's', type: 'a:b', data: { blob: 'x'.repeat(300 * 1024) } }), 'too_large');

    assert.equal(pub.isConnected, true, 'the publisher socket is still connected');
    const ok = await pub.ack('event:append', { id: uuid(), stream: 's', type: 'still:works', data: {} });
    assert.equal(ok.ok, true, JSON.stringify(ok));
    await plain.waitForEvent('still:works', (e) => e.id === ok.event.id);
    assert.deepEqual(plain.envelopes.map((e) => e.type), ['acct:opened', 'still:works'], 'only the two accepted appends were stored');
  }),
);

test(
  '10c. flood: acks beyond the rate limit say rate_limited, a socket that keeps flooding is disconnected, other tenants are served promptly',
  f.run(async (t) => {
    const TF = tenant('flood');
    const TW = tenant('watch');
    const watcher = await f.connect(f.server, { token: reader(TW, 'u-watch'), label: 'watcher (other tenant)' });
    const pubW = publisher(TW);
    const flooder = await startFlooder({ url: f.server.url, token: reader(TF, 'u-flood') });

    // the other tenant's feed, sampled all along: delay from the append's response to the emit
    let flooding = true;
    const samples = [];
    const sampler = (async () => {
      for (let i = 0; flooding && i < 2000; i++) {
        const t0 = Date.now();
        const [e] = await appendHttp(f.server, pubW, { stream: 'w', type: 'watch:tick', data: { i } });
        const t1 = Date.now();
        await watcher.waitForEvent('watch:tick', (x) => x.id === e.id, 10_000);
        const at = watcher.all.find((x) => x.args[0]?.id === e.id).at;
        samples.push({ append: t1 - t0, feed: Math.max(0, at - t1), duringFlood: flooding });
      }
    })();

    try {
      // phase 1: a burst of 300 acked events at once
      const { acks, connected } = await flooder.burst(300);
      const okN = acks.filter((a) => a?.ok === true).length;
      const limited = acks.filter((a) => a?.ok === false && a.error?.code === 'rate_limited').length;
      const other = acks.filter((a) => !(a?.ok === true) && !(a?.ok === false && a.error?.code === 'rate_limited'));
      assert.deepEqual(other.slice(0, 3), [], `every ack is ok or rate_limited (${other.length} others; connected=${connected})`);
      assert.ok(okN >= 150 && okN <= 280, `about the burst (200) is accepted: ${okN} ok`);
      assert.ok(limited >= 20, `the rest are rate_limited: ${limited}`);

      // phase 2: ~20,000 events/s (200x the limit) for up to 15 s, until the server cuts the socket
      const flood = await flooder.flood(100, 15_000);
      // Keep the server under flood for 3 s more, a fresh flooding socket each
      // time one is cut, so the other tenant is sampled during a flood.
      const until = Date.now() + 3_000;
      while (Date.now() < until) {
        const again = await startFlooder({ url: f.server.url, token: reader(TF, 'u-flood') });
        try {
          await again.flood(100, until - Date.now());
        } finally {
          again.stop();
        }
      }
      const during = samples.filter((s) => s.duringFlood);
      flooding = false;
      await sampler;
      const feed = samples.map((s) => s.feed).sort((a, b) => a - b);
      const worst = feed.at(-1);
      const median = feed[Math.floor(feed.length / 2)];
      const p95 = feed[Math.floor(feed.length * 0.95)];
      t.diagnostic(
        `phase 1: ${okN} ok, ${limited} rate_limited; phase 2: ${JSON.stringify(flood)}; other tenant: ${samples.length} samples ` +
          `(${during.length} during the flood), feed delay median ${median} ms, p95 ${p95} ms, slowest ${JSON.stringify(feed.slice(-5))} ms; worst append ${Math.max(...samples.map((s) => s.append))} ms`,
      );
      assert.equal(watcher.isConnected, true, 'the other tenant’s socket stays connected');
      assert.ok(during.length >= 3, `samples of the other tenant's feed during the flood: ${during.length}`);
      // promptly: typically within tens of ms, nearly always within a second. (p95 rather than the single worst
      // sample: on a 2-core machine shared with other work one stall can come from the scheduler, not the server.)
      assert.ok(
        median < 200 && p95 < 1000,
        `other tenant's live events arrive promptly during the flood: median ${median} ms, p95 ${p95} ms, worst ${worst} ms`,
      );
      assert.equal(flood.other, 0, `phase 2 acks are ok or rate_limited: ${JSON.stringify(flood)}`);
      assert.ok(
        flood.disconnectReason !== null,
        `a socket flooding at ~${Math.round(flood.sent / (flood.ms / 1000))} events/s (the limit is 100/s) for ${(flood.ms / 1000).toFixed(1)} s ` +
          `is disconnected; it was not: ${JSON.stringify(flood)}`,
      );
    } finally {
      flooding = false;
      flooder.stop();
      await sampler.catch(() => {});
    }
  }),
);

test(
  '10d. a 5 MB websocket message gets that socket disconnected; other sockets are unaffected',
  f.run(async () => {
    const T = tenant('huge');
    const big = await f.connect(f.server, { token: publisher(T), label: 'huge sender' });
    const bystander = await f.connect(f.server, { token: reader(T, 'u-by'), label: 'bystander' });
    big.emit('event:append', { stream: 's', type: 'huge:blob', data: { blob: 'x'.repeat(5 * 1024 * 1024) } });
    await big.waitForDisconnect(15_000);
    const [e] = await appendHttp(f.server, publisher(T), { stream: 's', type: 'huge:after', data: {} });
    await bystander.waitForEvent('huge:after', (x) => x.id === e.id);
    assert.equal(bystander.isConnected, true);
    assert.equal(bystander.count('huge:blob'), 0, 'the huge event was not stored');
  }),
);

test(
  '10e. after all of that the server still serves a fresh client (live and replay)',
  f.run(async () => {
    const health = await http(f.server, 'GET', '/health');
    assert.equal(health.status, 200);
    const ready = await http(f.server, 'GET', '/ready');
    assert.equal(ready.status, 200);
    const T = tenant('fresh');
    const c = await f.connect(f.server, { token: reader(T, 'u1'), label: 'fresh client' });
    const [e1] = await appendHttp(f.server, publisher(T), { stream: 's', type: 'fresh:one', data: {} });
    await c.waitForEvent('fresh:one', (x) => x.id === e1.id);
    const r = await f.connect(f.server, { token: reader(T, 'u2'), after: '0', label: 'fresh replay' });
    await r.waitForEvent('feed:replayed');
    assert.deepEqual(r.ids(), [e1.id]);
    assert.deepEqual(r.got('feed:replayed'), [{ count: 1, cursor: e1.cursor }]);
  }),
);

test(
  '10f. an event just under the size limit, appended over the WebSocket, is stored and delivered whole',
  f.run(async () => {
    const T = tenant('big');
    const pub = await f.connect(f.server, { token: publisher(T), label: 'publisher' });
    const watcher = await f.connect(f.server, { token: reader(T, 'u-watch'), label: 'watcher' });
    // Far larger than a socket's read buffer: it arrives in many reads.
    const blob = 'x'.repeat(250 * 1024);
    const ok = await pub.ack('event:append', { stream: 's', type: 'big:blob', data: { blob } });
    assert.equal(ok.ok, true, JSON.stringify(ok).slice(0, 300));
    const got = await watcher.waitForEvent('big:blob', (e) => e.id === ok.event.id);
    assert.equal(got.data.blob, blob, 'the blob arrives whole');
  }),
);
