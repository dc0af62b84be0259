// A consumer: the server keeps its cursor (the offline queue), the feed acks
// it by itself, and another process with empty storage resumes from it.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './lib/harness.mjs';

for (const kind of ['postgres', 'sqlite']) {
  describe(`consumer (${kind})`, () => {
    const c = h.useServer(kind);

    /** Events after the consumer's stored cursor, as the server sees it. */
    async function queued(t, consumer) {
      const res = await fetch(`${c.server.url}/api/events?consumer=${consumer}`, {
        headers: { authorization: `Bearer ${h.reader(t)}` },
      });
      return (await res.json()).events;
    }

    test('acks by itself, and a process with empty storage resumes from the stored cursor', async () => {
      const t = h.tenant();
      const first = h.open(c.server.url, { token: h.reader(t), consumer: 'billing', storage: h.memoryStorage() });
      const seen1 = h.record(first);
      await h.until(() => first.status === 'live', 'live');
      await h.append(c.server.url, h.publisher(t), ...h.range(0, 3).map((i) => h.numbered(i)));
      await h.until(() => seen1.length === 3, 'first 3');
      // No close yet: the automatic ack (within about a second) empties the queue.
      await h.until(async () => (await queued(t, 'billing')).length === 0, 'the automatic ack', 10_000);
      await h.append(c.server.url, h.publisher(t), h.numbered(3));
      await h.until(() => seen1.length === 4, 'the 4th');
      await first.close(); // stores the last ack before it resolves
      assert.equal((await queued(t, 'billing')).length, 0, 'close() acked the last event');

      // Queued while nobody listens.
      await h.append(c.server.url, h.publisher(t), ...h.range(4, 7).map((i) => h.numbered(i)));
      // Read back with `until`: PostgreSQL shows an event to readers once no
      // older transaction in the cluster is still open.
      const waiting = await h.until(async () => {
        const events = await queued(t, 'billing');
        return events.length === 3 && events;
      }, 'the queued events');
      assert.deepEqual(h.numbers(waiting), [4, 5, 6]);
      const second = h.open(c.server.url, { token: h.reader(t), consumer: 'billing', storage: h.memoryStorage() });
      const seen2 = h.record(second);
      await h.until(() => seen2.length === 3 && second.status === 'live', 'the queue');
      assert.deepEqual(h.numbers(seen2), [4, 5, 6]);
      await second.close();
    });

    test('acks over HTTP when the socket is down', async () => {
      const t = h.tenant();
      const feed = h.open(c.server.url, {
        token: h.reader(t),
        consumer: 'poller',
        storage: h.memoryStorage(),
        fallback: 'poll',
        fallbackAfter: 1,
        namespace: '/not-served', // refused: the feed reads by long-polling
      });
      const seen = h.record(feed);
      await h.until(() => feed.status === 'fallback', 'fallback');
      // A consumer seen for the first time starts at the head; the first poll
      // may not have been made yet, so name it now, before the appends.
      await queued(t, 'poller');
      await h.append(c.server.url, h.publisher(t), h.numbered(0), h.numbered(1));
      await h.until(() => seen.length === 2, 'both over polling');
      await feed.close();
      assert.equal((await queued(t, 'poller')).length, 0, 'acked with POST /api/events/ack');
      assert.deepEqual(h.numbers(seen), [0, 1]);
    });
  });
}
