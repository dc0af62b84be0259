// A server restart with appends during the outage: the feed resumes from its
// cursor and delivers every event once, in order, whatever transport it was
// on when the server came back.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './lib/harness.mjs';

describe('restart (postgres)', () => {
  const c = h.useServer('postgres', { proxy: true });

  test('server restart with appends during the outage', async () => {
    const t = h.tenant();
    const feed = h.open(c.proxy.url, { token: h.reader(t), storage: h.memoryStorage() });
    const seen = h.record(feed);
    const statuses = [];
    feed.onStatus((s) => statuses.push(s.status));
    await h.until(() => feed.status === 'live', 'live');
    await h.append(c.server.url, h.publisher(t), ...h.range(0, 3).map((i) => h.numbered(i)));
    await h.until(() => seen.length === 3, 'the first 3');

    await c.server.stop();
    await h.until(() => feed.status !== 'live', 'the feed notices the outage');
    // Appended with the SQL API while no server runs.
    for (const i of h.range(3, 8)) {
      await c.store.db.appendSql({ tenantId: t, stream: 'items', type: 'item:added', data: { i } });
    }
    c.server = await h.serve(c.store);
    c.proxy.retarget(c.server.url);
    await h.append(c.server.url, h.publisher(t), h.numbered(8), h.numbered(9));
    await h.until(() => seen.length >= 10 && feed.status === 'live', 'all 10 and live again', 40_000);
    assert.deepEqual(h.numbers(seen), h.range(0, 10));
    assert.ok(statuses.includes('offline') || statuses.includes('fallback'), `went down: ${statuses}`);
  });
});
