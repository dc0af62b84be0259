// Live delivery, appends and their errors, presence, and a reload that
// resumes from storage, on both stores.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './lib/harness.mjs';

for (const kind of ['postgres', 'sqlite']) {
  describe(`live (${kind})`, () => {
    const c = h.useServer(kind);

    test('delivers live events to typed and "*" handlers, each once, in order', async () => {
      const t = h.tenant();
      const feed = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage() });
      const statuses = [];
      feed.onStatus((s) => statuses.push(s.status));
      const all = h.record(feed);
      const paid = [];
      const stop = feed.on('invoice:paid', (e) => paid.push(e.data.i));
      await h.until(() => feed.status === 'live', 'live');
      await h.append(c.server.url, h.publisher(t), h.numbered(0), h.numbered(1, 'invoice:paid'), h.numbered(2));
      await h.until(() => all.length === 3, '3 events');
      assert.deepEqual(h.numbers(all), [0, 1, 2]);
      assert.deepEqual(paid, [1]);
      assert.equal(feed.cursor, all[2].cursor, 'the cursor is the last delivered one');
      stop();
      await h.append(c.server.url, h.publisher(t), h.numbered(3, 'invoice:paid'));
      await h.until(() => all.length === 4, '4th event');
      assert.deepEqual(paid, [1], 'a removed handler hears nothing more');
      await feed.close();
      assert.equal(feed.status, 'closed');
      assert.deepEqual(statuses, ['live', 'closed']);
    });

    test('append resolves to the envelope; a conflict rejects with code and currentVersion', async () => {
      const t = h.tenant();
      const feed = h.open(c.server.url, { token: h.publisher(t), storage: h.memoryStorage() });
      const stored = await feed.append({ stream: 'inv-1', type: 'invoice:created', data: { n: 1 } });
      assert.equal(stored.version, 1);
      assert.equal(stored.stream, 'inv-1');
      assert.equal(typeof stored.cursor, 'string');
      const err = await feed
        .append({ stream: 'inv-1', type: 'invoice:paid', data: {}, expectedVersion: 0 })
        .then(() => null, (e) => e);
      assert.ok(err instanceof Error, 'rejects with an Error');
      assert.equal(err.code, 'conflict');
      assert.equal(err.currentVersion, 1);
      const bad = await feed.append({ stream: 'inv-1', type: 'no-colon', data: {} }).then(() => null, (e) => e);
      assert.equal(bad.code, 'invalid');
      await feed.close();
    });

    test('presence lists the connected user', async () => {
      const t = h.tenant();
      const feed = h.open(c.server.url, { token: h.reader(t, 'u-alice'), storage: h.memoryStorage() });
      await h.until(() => feed.status === 'live', 'live');
      const users = await feed.presence();
      assert.deepEqual(
        users.map((u) => [u.userId, u.connections]),
        [['u-alice', 1]],
      );
      await feed.close();
    });

    test('presence over HTTP while the socket cannot connect', async () => {
      const t = h.tenant();
      const online = h.open(c.server.url, { token: h.reader(t, 'u-bob'), storage: h.memoryStorage() });
      await h.until(() => online.status === 'live', 'live');
      const refused = h.open(c.server.url, {
        token: h.reader(t, 'u-carol'),
        storage: h.memoryStorage(),
        namespace: '/not-served',
        fallback: 'poll',
        fallbackAfter: 1,
      });
      await h.until(() => refused.status === 'fallback', 'fallback');
      const users = await refused.presence();
      assert.deepEqual(
        users.map((u) => u.userId),
        ['u-bob'],
      );
      await Promise.all([online.close(), refused.close()]);
    });

    test('a new feed on the same storage resumes after the last delivered event', async () => {
      const t = h.tenant();
      const storage = h.memoryStorage();
      const first = h.open(c.server.url, { token: h.reader(t), storage });
      const seen1 = h.record(first);
      await h.until(() => first.status === 'live', 'live');
      await h.append(c.server.url, h.publisher(t), ...h.range(0, 3).map((i) => h.numbered(i)));
      await h.until(() => seen1.length === 3, 'first 3');
      await first.close();
      // Missed while no feed ran: the next one must replay exactly these.
      await h.append(c.server.url, h.publisher(t), ...h.range(3, 6).map((i) => h.numbered(i)));
      const second = h.open(c.server.url, { token: h.reader(t), storage });
      const seen2 = h.record(second);
      await h.until(() => second.status === 'live', 'live again');
      await h.append(c.server.url, h.publisher(t), h.numbered(6));
      await h.until(() => seen2.length >= 4, 'replay and live');
      assert.deepEqual(h.numbers(seen2), [3, 4, 5, 6]);
      // Another user of the same tenant keeps a cursor of its own.
      const other = h.open(c.server.url, { token: h.reader(t, 'u-other'), storage });
      const otherSeen = h.record(other);
      await h.until(() => other.status === 'live', 'other live');
      assert.equal(otherSeen.length, 0, 'starts live: nothing replayed');
      // It takes the head as its cursor, under a key of its own.
      await h.until(() => storage.map.size === 2, 'one cursor per user');
      await Promise.all([second.close(), other.close()]);
    });
  });
}
