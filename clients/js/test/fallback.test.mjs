// Socket.IO blocked by a proxy: after `fallbackAfter` failed connects the
// feed reads over long-polling or SSE from its cursor, and goes back to the
// socket when it connects again, with no gap and no duplicate either way.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './lib/harness.mjs';

describe('fallback (postgres)', () => {
  const c = h.useServer('postgres', { proxy: true });

  for (const kind of ['poll', 'sse']) {
    test(`to ${kind} and back under continuous appends`, async () => {
      const t = h.tenant();
      const feed = h.open(c.proxy.url, {
        token: h.reader(t),
        storage: h.memoryStorage(),
        fallback: kind,
        fallbackAfter: 2,
      });
      const seen = h.record(feed);
      const statuses = [];
      feed.onStatus((s) => statuses.push(s.status));
      await h.until(() => feed.status === 'live', 'live');
      const loop = h.appendLoop(() => c.server.url, h.publisher(t), { everyMs: 40 });
      await h.until(() => seen.length >= 5, 'events over the socket');

      c.proxy.block();
      await h.until(() => feed.status === 'fallback', 'fallback', 30_000);
      const atFallback = seen.length;
      await h.until(() => seen.length >= atFallback + 20, `events over ${kind}`);
      assert.equal(feed.status, 'fallback', 'still on the fallback while Socket.IO is blocked');

      // Slow Socket.IO requests: the fallback keeps delivering between the
      // socket's handshake and its connect, and the socket's replay repeats
      // those events, which the feed must drop.
      c.proxy.unblock(300);
      await h.until(() => feed.status === 'live', 'back on the socket', 30_000);
      const atReturn = seen.length;
      await h.until(() => seen.length >= atReturn + 10, 'events over the socket again');
      const n = await loop.stop();
      await h.until(() => seen.length >= n, `all ${n} events`);
      await feed.close();
      assert.deepEqual(h.numbers(seen), h.range(0, n), 'every event once, in order');
      assert.deepEqual(
        statuses.filter((s, i) => s !== statuses[i - 1]),
        statuses,
        'no status repeated back to back',
      );
      assert.ok(statuses.indexOf('fallback') < statuses.lastIndexOf('live'), `went there and back: ${statuses}`);
    });
  }
});
