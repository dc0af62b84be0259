// A stored cursor older than the retention horizon: the feed is told (onReset)
// and goes on from the head; it never skips silently.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './lib/harness.mjs';

for (const kind of ['postgres', 'sqlite']) {
  describe(`reset (${kind})`, () => {
    const c = h.useServer(kind, { serve: false });

    test('a cursor behind retention gets onReset, then the feed goes on from the head', async () => {
      // Retention prunes once at start-up and then every minute.
      const env = { EVENTFEED_RETENTION: '1s' };
      c.server = await h.serve(c.store, env);
      const t = h.tenant();
      const storage = h.memoryStorage();
      const first = h.open(c.server.url, { token: h.reader(t), storage });
      const seen1 = h.record(first);
      await h.until(() => first.status === 'live', 'live');
      // On PostgreSQL retention drops whole partitions: there the events are
      // dated into the first one, which ends when the database was created.
      const add = async (...numbers) => {
        if (kind !== 'postgres') return h.append(c.server.url, h.publisher(t), ...numbers.map((i) => h.numbered(i)));
        for (const i of numbers) {
          await c.store.db.query(
            `INSERT INTO eventfeed.events (id, tenant_id, stream, version, type, data, created_at)
             VALUES (gen_random_uuid(), $1, 'items', $2, 'item:added', jsonb_build_object('i', $3::int), now() - interval '1 day')`,
            [t, i + 1, i],
          );
        }
        await c.store.db.query(
          `INSERT INTO eventfeed.streams (tenant_id, stream, version) VALUES ($1, 'items', $2)
           ON CONFLICT (tenant_id, stream) DO UPDATE SET version = excluded.version`,
          [t, numbers.at(-1) + 1],
        );
      };
      await add(0, 1, 2);
      await h.until(() => seen1.length === 3, 'first 3');
      await first.close();
      await add(3);

      await new Promise((r) => setTimeout(r, 1500));
      // Each start prunes once. PostgreSQL prunes only below the cluster's
      // transaction horizon, which a transaction elsewhere on a shared
      // cluster can hold back for a moment: then start again.
      const reader = h.reader(t);
      await h.until(async () => {
        await c.server.stop();
        // The same address: the stored cursor is kept per server URL.
        c.server = await h.serve(c.store, { ...env, EVENTFEED_ADDR: `127.0.0.1:${c.server.port}` });
        const reset = async () => {
          const res = await fetch(`${c.server.url}/api/events?after=${encodeURIComponent(first.cursor)}`, {
            headers: { authorization: `Bearer ${reader}` },
          });
          return (await res.json()).reset;
        };
        return h.until(reset, 'a reset', 2000).catch(() => null);
      }, 'the start-up prune', 60_000);

      const second = h.open(c.server.url, { token: reader, storage });
      const resets = [];
      second.onReset((r) => resets.push(r));
      const seen2 = h.record(second);
      await h.until(() => resets.length === 1 && second.status === 'live', 'the reset');
      assert.equal(resets[0].reason, 'expired');
      assert.equal(second.cursor, resets[0].cursor, 'the feed took the head');
      await h.append(c.server.url, h.publisher(t), h.numbered(4));
      await h.until(() => seen2.length === 1, 'the next event');
      assert.deepEqual(h.numbers(seen2), [4], 'nothing pruned is delivered; the head onwards is');
      await second.close();
    });
  });
}
