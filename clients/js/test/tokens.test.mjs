// Short-lived tokens under continuous appends: an expiry never ends the feed,
// and no event is lost or repeated across the reconnects it causes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { claims } from '../src/token.js';
import * as h from './lib/harness.mjs';

const LIFETIME_S = 3;

describe('token expiry (postgres)', () => {
  const c = h.useServer('postgres');

  async function run(token, until, options = {}, ready = 'live') {
    const t = h.tenant();
    const feed = h.open(c.server.url, { token: () => token(t), storage: h.memoryStorage(), ...options });
    const seen = h.record(feed);
    const statuses = [];
    feed.onStatus((s) => statuses.push(s.status));
    await h.until(() => feed.status === ready, ready);
    if (ready === 'fallback') {
      // No cursor yet, and SSE starts live: take one from a first event.
      await h.append(c.server.url, h.publisher(t), { stream: 'items', type: 'probe:ping', data: {} });
      await h.until(() => seen.length === 1, 'the probe');
      seen.length = 0;
    }
    const loop = h.appendLoop(() => c.server.url, h.publisher(t), { everyMs: 50 });
    await h.until(until, 'three token lifetimes', 30_000);
    const n = await loop.stop();
    await h.until(() => seen.length >= n && feed.status === ready, `all ${n} events`, 20_000);
    await feed.close();
    assert.deepEqual(h.numbers(seen), h.range(0, n), 'every event once, in order');
    return statuses;
  }

  test('a token function that only renews expired tokens: three expiries, three reconnects', async () => {
    // Like a cache that renews on expiry only: the refresh before `exp` gets
    // the same token, so the server ends the connection at `exp`.
    let cached = null;
    let minted = 0;
    const token = (t) => {
      if (!cached || claims(cached).exp * 1000 <= Date.now()) {
        cached = h.mintToken({ sub: 'u-short', tenant: t, expIn: LIFETIME_S });
        minted += 1;
      }
      return cached;
    };
    const statuses = await run(token, () => minted >= 4);
    const reconnects = statuses.filter((s) => s === 'offline').length;
    assert.ok(reconnects >= 3, `reconnected after each expiry: ${statuses}`);
  });

  test('a token function that always gives a fresh token: refreshed in place, never disconnected', async () => {
    let calls = 0;
    const token = (t) => {
      calls += 1;
      return h.mintToken({ sub: 'u-fresh', tenant: t, expIn: LIFETIME_S });
    };
    const statuses = await run(token, () => calls >= 5);
    assert.deepEqual(statuses, ['live', 'closed'], 'auth:refresh kept the one connection');
  });

  test('over SSE, an expiry ends the stream and the feed goes on with a new token', async () => {
    let calls = 0;
    const token = (t) => {
      calls += 1;
      return h.mintToken({ sub: 'u-sse', tenant: t, expIn: LIFETIME_S });
    };
    // A namespace the server does not serve refuses every socket connect.
    const options = { fallback: 'sse', fallbackAfter: 1, namespace: '/not-served' };
    const start = Date.now();
    await run(token, () => Date.now() - start > 3.5 * LIFETIME_S * 1000, options, 'fallback');
    assert.ok(calls >= 4, `a token for each SSE stream: ${calls}`);
  });
});
