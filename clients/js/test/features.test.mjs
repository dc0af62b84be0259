// Against the real server: a replay that carries only the feed's types,
// "read a snapshot over REST, then follow from its cursor", a token signed
// with the wrong key, history, stream and audit pages, live presence and
// typing between two users.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FeedError } from '../src/index.js';
import * as h from './lib/harness.mjs';

/** Every page of an async iterator, each as its events' `data.i`. */
async function pagesOf(iterator) {
  const pages = [];
  for await (const page of iterator) pages.push(h.numbers(page.events));
  return pages;
}

describe('features (postgres)', () => {
  const c = h.useServer('postgres');

  test('types in the handshake: the replay carries only them, and setTypes changes them live', async () => {
    const t = h.tenant();
    const types = ['invoice:paid', 'expense:filed', 'invoice:sent', 'bank:imported'];
    await h.append(c.server.url, h.publisher(t), ...types.map((type, i) => h.numbered(i, type)));
    const feed = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage(), after: '0', types: ['invoice:*'] });
    const seen = h.record(feed);
    await h.until(() => feed.status === 'live' && seen.length === 2, 'the typed replay');
    assert.deepEqual(h.numbers(seen), [0, 2]);
    await feed.setTypes(['bank:*']);
    await h.append(c.server.url, h.publisher(t), h.numbered(4, 'invoice:paid'), h.numbered(5, 'bank:imported'));
    await h.until(() => seen.length === 3, 'the live event of the new type');
    assert.deepEqual(h.numbers(seen), [0, 2, 5]);
  });

  test('a snapshot over REST, then the feed from its cursor; "head" gets only what comes next', async () => {
    const t = h.tenant();
    await h.append(c.server.url, h.publisher(t), ...h.range(0, 5).map((i) => h.numbered(i)));
    const reader = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage(), fallback: false });
    const pages = [];
    let cursor = null;
    for await (const page of reader.history({ limit: 2 })) {
      pages.push(h.numbers(page.events));
      cursor = page.cursor;
    }
    assert.deepEqual(pages, [[0, 1], [2, 3], [4]]);
    await reader.close();

    // "head" starts where the server's live feed is: a feed already live
    // that has received 6 shows the server has read it.
    const live = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage(), after: 'head' });
    const heard = h.record(live);
    await h.until(() => live.status === 'live', 'a live feed');
    await h.append(c.server.url, h.publisher(t), h.numbered(5), h.numbered(6));
    await h.until(() => heard.length === 2, 'the server reading 5 and 6');
    await live.close();
    const follow = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage(), after: cursor });
    const head = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage(), after: 'head' });
    const [followed, headed] = [h.record(follow), h.record(head)];
    await h.until(() => follow.status === 'live' && head.status === 'live', 'both live');
    await h.append(c.server.url, h.publisher(t), h.numbered(7));
    await h.until(() => followed.length === 3 && headed.length === 1, 'the events after the snapshot');
    assert.deepEqual(h.numbers(followed), [5, 6, 7]);
    assert.deepEqual(h.numbers(headed), [7]);
  });

  test('a token signed with the wrong key stops the feed at "unauthorized", over the socket and the fallback', async () => {
    const t = h.tenant();
    const forged = h.mintToken({ sub: 'u1', tenant: t, secret: 'not-the-server-secret-at-all-000000' });
    for (const options of [{}, { fallbackAfter: 1, namespace: '/not-served', fallback: 'poll' }]) {
      const feed = h.open(c.server.url, { token: () => forged, storage: h.memoryStorage(), ...options });
      const statuses = [];
      feed.onStatus((s) => statuses.push(s));
      await h.until(() => feed.status === 'unauthorized', `unauthorized (${JSON.stringify(options)})`);
      const last = statuses.at(-1);
      assert.ok(last.error instanceof FeedError && last.error.code === 'unauthorized');
      assert.match(last.reason, /bad signature/);
    }
  });

  test('stream and audit pages; an audit without the role rejects with FeedError forbidden', async () => {
    const t = h.tenant();
    const events = h.range(0, 5).map((i) => ({ stream: i % 2 ? 'odd' : 'even', type: 'item:added', data: { i } }));
    await h.append(c.server.url, h.publisher(t), ...events);
    const auditor = h.mintToken({ sub: 'u-audit', tenant: t, roles: ['auditor'] });
    const feed = h.open(c.server.url, { token: auditor, storage: h.memoryStorage(), fallback: false });
    assert.deepEqual(await pagesOf(feed.stream('even', { limit: 2 })), [[0, 2], [4]]);
    assert.deepEqual(await pagesOf(feed.stream('odd', { fromVersion: 2 })), [[3]]);
    assert.deepEqual(await pagesOf(feed.audit({ stream: 'odd', limit: 1 })), [[1], [3]]);
    assert.deepEqual(await pagesOf(feed.audit({ to: new Date(Date.now() + 60_000), limit: 5 })), [[0, 1, 2, 3, 4]]);
    const reader = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage(), fallback: false });
    const refused = await pagesOf(reader.audit()).catch((e) => e);
    assert.ok(refused instanceof FeedError);
    assert.equal(refused.code, 'forbidden');
  });

  test('live presence and typing between two users', async () => {
    const t = h.tenant();
    const alice = h.open(c.server.url, { token: h.reader(t, 'u-alice'), storage: h.memoryStorage() });
    const lists = [];
    alice.onPresence((users) => lists.push(users.map((u) => u.userId).join(',')));
    await h.until(() => lists.at(-1) === 'u-alice', 'alice sees herself');
    const bob = h.open(c.server.url, { token: h.reader(t, 'u-bob'), storage: h.memoryStorage() });
    await h.until(() => lists.at(-1) === 'u-alice,u-bob', 'alice sees bob come');
    const typing = [];
    bob.onTyping((e) => typing.push([e.userId, e.resourceId, e.resourceType]));
    await h.until(() => bob.status === 'live', 'bob live');
    await h.until(() => alice.typing('inv-1', 'invoice') && typing.length > 0, 'bob sees alice type');
    assert.deepEqual(typing[0], ['u-alice', 'inv-1', 'invoice']);
    await bob.close();
    await h.until(() => lists.at(-1) === 'u-alice', 'alice sees bob go', 30_000);
  });
});

describe('transport options (sqlite)', () => {
  const c = h.useServer('sqlite');

  test('WebSocket only, and a path the server does not serve never connects', async () => {
    const t = h.tenant();
    const ws = h.open(c.server.url, { token: h.reader(t), storage: h.memoryStorage(), transports: ['websocket'] });
    await h.until(() => ws.status === 'live', 'live over WebSocket only');
    assert.equal(ws._link.socket.io.engine.transport.name, 'websocket');
    const seen = h.record(ws);
    await h.append(c.server.url, h.publisher(t), h.numbered(0));
    await h.until(() => seen.length === 1, 'an event over WebSocket only');

    const lost = h.open(c.server.url, {
      token: h.reader(t),
      storage: h.memoryStorage(),
      path: '/not-socket.io/',
      fallback: false,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    });
    const errors = [];
    lost.onError((e) => errors.push(e.code));
    await h.until(() => errors.length >= 2, 'failed connects reported');
    assert.ok(errors.every((code) => code === 'network'), errors.join());
    assert.notEqual(lost.status, 'live');
  });
});
