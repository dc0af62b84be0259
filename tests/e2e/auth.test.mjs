// Where a socket's token may come from, and what happens when it expires.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { appendHttp, tenant } from './lib/http.mjs';
import { mintToken, publisher, reader } from './lib/token.mjs';

const f = useFixture();
const nowS = () => Math.floor(Date.now() / 1000);

test(
  '2b. the socket token is taken from auth.token, else ?token=, else the Authorization header',
  f.run(async () => {
    const T = tenant('tok');
    const viaAuth = await f.connect(f.server, { token: reader(T, 'u-auth'), label: 'auth.token' });
    const viaQuery = await f.connect(f.server, { auth: {}, query: { token: reader(T, 'u-query') }, label: '?token=' });
    const viaHeader = await f.connect(f.server, {
      auth: {},
      extraHeaders: { Authorization: `Bearer ${reader(T, 'u-header')}` },
      label: 'Authorization header',
    });
    const [e] = await appendHttp(f.server, publisher(T), { stream: 's', type: 'tok:checked', data: {} });
    for (const c of [viaAuth, viaQuery, viaHeader]) {
      const got = await c.waitForEvent('tok:checked', (x) => x.id === e.id);
      assert.equal(got.tenantId, T);
    }
  }),
);

test(
  '8. token expiry: auth:expired then disconnect at exp; auth:refresh with a valid token keeps the socket; a foreign refresh is refused',
  f.run(async () => {
    const T = tenant('x8');
    const other = tenant('x8other');
    const exp = nowS() + 3;
    const short = (sub, t = T) => mintToken({ sub, tenant: t, name: sub, exp });
    const expiring = await f.connect(f.server, { token: short('u1'), label: 'expiring' });
    const refreshed = await f.connect(f.server, { token: short('u2'), label: 'refreshed' });
    const otherSub = await f.connect(f.server, { token: short('u3'), label: 'refresh for another sub' });
    const otherTenant = await f.connect(f.server, { token: short('u4'), label: 'refresh for another tenant' });
    const badSig = await f.connect(f.server, { token: short('u5'), label: 'refresh with a bad signature' });
    const stale = await f.connect(f.server, { token: short('u6'), label: 'refresh with an expired token' });

    const newExp = nowS() + 3600;
    const ok = await refreshed.ack('auth:refresh', { token: mintToken({ sub: 'u2', tenant: T, name: 'u2', exp: newExp }) });
    assert.deepEqual(ok, { ok: true, exp: newExp }, 'auth:refresh with a valid token for the same sub and tenant');

    const refusals = {
      otherSub: await otherSub.ack('auth:refresh', { token: mintToken({ sub: 'someone-else', tenant: T, expIn: 3600 }) }),
      otherTenant: await otherTenant.ack('auth:refresh', { token: mintToken({ sub: 'u4', tenant: other, expIn: 3600 }) }),
      badSig: await badSig.ack('auth:refresh', { token: mintToken({ sub: 'u5', tenant: T, expIn: 3600, secret: 'not-the-secret' }) }),
      stale: await stale.ack('auth:refresh', { token: mintToken({ sub: 'u6', tenant: T, expIn: -30 }) }),
    };
    for (const [k, a] of Object.entries(refusals)) {
      assert.equal(a?.ok, false, `${k}: refresh refused: ${JSON.stringify(a)}`);
      assert.equal(typeof a.error?.code, 'string', `${k}: refusal carries an error code: ${JSON.stringify(a)}`);
    }

    const refused = [otherSub, otherTenant, badSig, stale];
    for (const c of [expiring, ...refused]) {
      await c.waitForEvent('auth:expired', () => true, exp * 1000 - Date.now() + 5000);
      const reason = await c.waitForDisconnect(5000);
      assert.equal(reason, 'io server disconnect', `${c.label}: the server disconnects it`);
      const expiredAt = c.all.find((x) => x.name === 'auth:expired').at;
      assert.ok(expiredAt <= c.disconnectedAt, `${c.label}: auth:expired comes before the disconnect`);
      assert.ok(
        c.disconnectedAt >= exp * 1000 - 1000 && c.disconnectedAt <= exp * 1000 + 3000,
        `${c.label}: disconnected at exp (${new Date(exp * 1000).toISOString()}), not at ${new Date(c.disconnectedAt).toISOString()}`,
      );
    }

    // waiting for time to pass is the behaviour under test here
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 + 2500 - Date.now())));
    assert.equal(refreshed.isConnected, true, 'the refreshed socket is still connected 2.5 s past the old exp');
    assert.equal(refreshed.count('auth:expired'), 0, 'the refreshed socket got no auth:expired');
    const [e] = await appendHttp(f.server, publisher(T), { stream: 's', type: 'after:refresh', data: {} });
    await refreshed.waitForEvent('after:refresh', (x) => x.id === e.id);
  }),
);
