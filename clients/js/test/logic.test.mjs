// The library's own logic on a scripted socket (no server): where a feed
// starts, under which storage key its cursor is kept, asynchronous storage,
// types in the handshake, live presence from presence:diff, typing.

import { describe, test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { EventFeed } from '../src/index.js';
import { FakeServer, envelope, jwt } from './lib/fake-socket.mjs';
import { memoryStorage, until } from './lib/harness.mjs';

const URL_ = 'http://127.0.0.1:9';

describe('where a feed starts and what it keeps', () => {
  let server;
  let uninstall;
  const feeds = [];
  const open = (options, url = URL_) => {
    const feed = new EventFeed(url, { storage: memoryStorage(), fallback: false, reconnectionDelay: 5, ...options });
    feeds.push(feed);
    return feed;
  };
  /** Opens a feed, accepts its handshake, and returns both. */
  const live = async (options) => {
    const feed = open(options);
    const n = server.handshakes.length;
    await until(() => server.handshakes.length > n, 'a handshake');
    const hs = server.last;
    hs.socket.accept();
    return { feed, hs };
  };
  beforeEach(() => {
    server = new FakeServer();
    uninstall = server.install();
    server.answers['request:current-state'] = () => ({ cursor: '1-0', online: [] });
  });
  afterEach(async () => {
    await Promise.all(feeds.splice(0).map((f) => f.close()));
    uninstall();
  });

  test('the storage key names url, namespace, tenant (from tenantClaim), user, types and consumer', async () => {
    const storage = memoryStorage();
    const token = jwt({ sub: 'u:1', org: 'acme', tenant_id: 'not-this' });
    const variants = [
      {},
      { types: ['invoice:*'] },
      { types: ['expense:*', 'invoice:paid'] },
      { types: ['invoice:paid', 'expense:*'] }, // the same types, in another order
      { consumer: 'laptop' },
      { namespace: '/dashboard' },
    ];
    for (const v of variants) {
      const { feed, hs } = await live({ token, storage, tenantClaim: 'org', ...v });
      hs.socket.push('invoice:paid', envelope(`c-${feeds.length}`, 'invoice:paid'));
      await feed.close();
    }
    const keys = [...storage.map.keys()];
    assert.equal(keys.length, 5, `one key per distinct feed: ${keys.join('\n')}`);
    const parts = keys.map((k) => JSON.parse(k.slice('eventfeed:cursor:'.length)));
    assert.deepEqual(parts[0], [URL_, '/', 'acme', 'u:1', null, null]);
    assert.deepEqual(parts[2], [URL_, '/', 'acme', 'u:1', ['expense:*', 'invoice:paid'], null]);
    assert.deepEqual(parts[3].slice(4), [null, 'laptop']);
    assert.equal(parts[4][1], '/dashboard');
    assert.equal(storage.map.get(keys[2]), 'c-4', 'the later feed of the same types went on from the same key');
  });

  test('after: "stored" resumes, "head" does not, and a cursor starts there', async () => {
    const storage = memoryStorage();
    const token = jwt({ sub: 'u1', tenant_id: 't' });
    const first = await live({ token, storage });
    assert.equal(first.hs.auth.after, undefined, 'nothing stored: live from the head');
    first.hs.socket.push('item:added', envelope('9-1'));
    await first.feed.close();

    const stored = await live({ token, storage });
    assert.equal(stored.hs.auth.after, '9-1');
    const head = await live({ token, storage, after: 'head' });
    assert.equal(head.hs.auth.after, undefined);
    const given = await live({ token, storage, after: '4-2' });
    assert.equal(given.hs.auth.after, '4-2');
    const zero = await live({ token, storage, after: 0 });
    assert.equal(zero.hs.auth.after, '0');
    // A reconnect goes on from the last delivered cursor, not from the one given.
    given.hs.socket.push('item:added', envelope('5-0'));
    given.hs.socket.drop('transport close');
    given.hs.socket.connect();
    await until(() => server.last.socket === given.hs.socket && server.last !== given.hs, 'the reconnect');
    assert.equal(server.last.auth.after, '5-0');
  });

  test('an asynchronous storage: the cursor is read before the handshake and written by close', async () => {
    const map = new Map();
    let writes = 0;
    const later = (value) => new Promise((resolve) => setTimeout(() => resolve(value), 20));
    const storage = {
      getItem: (k) => later(map.get(k) ?? null),
      setItem: (k, v) => later().then(() => ((writes += 1), map.set(k, v))),
    };
    const token = jwt({ sub: 'u1', tenant_id: 't' });
    const { feed, hs } = await live({ token, storage });
    for (let i = 1; i <= 20; i += 1) hs.socket.push('item:added', envelope(`${i}-0`));
    await feed.close();
    assert.equal([...map.values()][0], '20-0', 'close resolved after the last cursor was written');
    assert.ok(writes < 20, `writes were coalesced: ${writes}`);
    const again = await live({ token, storage });
    assert.equal(again.hs.auth.after, '20-0');
  });

  test('types go in the handshake; setTypes subscribes the live socket and the next handshake', async () => {
    server.answers['feed:subscribe'] = () => ({ ok: true });
    const token = jwt({ sub: 'u1', tenant_id: 't' });
    const { feed, hs } = await live({ token, types: ['invoice:*'] });
    assert.deepEqual(hs.auth.types, ['invoice:*']);
    const got = [];
    feed.on('*', (e) => got.push(e.type));
    hs.socket.push('invoice:paid', envelope('1-1', 'invoice:paid'));
    await feed.setTypes(['expense:*']);
    assert.deepEqual(server.calls.at(-1), { name: 'feed:subscribe', payload: { types: ['expense:*'] } });
    // An event of the old types still in flight is not delivered.
    hs.socket.push('invoice:sent', envelope('1-2', 'invoice:sent'));
    hs.socket.push('expense:filed', envelope('1-3', 'expense:filed'));
    assert.deepEqual(got, ['invoice:paid', 'expense:filed']);
    hs.socket.drop('transport close');
    hs.socket.connect();
    await until(() => server.last !== hs, 'the reconnect');
    assert.deepEqual(server.last.auth.types, ['expense:*']);
    await assert.rejects(feed.setTypes(['bad']), { code: 'invalid' });
  });

  test('onPresence: the list, then presence:diff joins and leaves, then a count alone lists again', async () => {
    let listed = [{ userId: 'u1', username: 'one', connections: 1 }];
    server.answers['presence:list'] = () => ({ users: listed });
    const { feed, hs } = await live({ token: jwt({ sub: 'u1', tenant_id: 't' }) });
    const seen = [];
    feed.onPresence((users, { online }) => seen.push([online, users.map((u) => u.userId).join(',')]));
    await until(() => seen.length === 1, 'the first list');
    hs.socket.push('presence:diff', { online: 3, joins: [{ userId: 'u3', username: 'three' }, { userId: 'u2', username: 'two' }] });
    hs.socket.push('presence:diff', { online: 2, leaves: ['u3'] });
    // A user online event for one already listed changes nothing.
    hs.socket.push('user:online', { userId: 'u2', username: 'two', timestamp: '' });
    assert.deepEqual(seen, [
      [1, 'u1'],
      [3, 'u1,u2,u3'],
      [2, 'u1,u2'],
    ]);
    // Above the server's list limit a diff carries the count only: the names are listed again.
    listed = [...Array(250)].map((_, i) => ({ userId: `v${String(i).padStart(3, '0')}`, username: null, connections: 1 }));
    hs.socket.push('presence:diff', { online: 250 });
    await until(() => seen.at(-1)[1].split(',').length === 250, 'the list read again');
    assert.equal(seen.at(-1)[0], 250);
    const lists = server.calls.filter((c) => c.name === 'presence:list').length;
    assert.equal(lists, 2, 'listed at connect and once for the count');
  });

  test('typing is sent and relayed; user:online, user:offline and user:typing reach on() handlers', async () => {
    server.answers['presence:list'] = () => ({ users: [] });
    const { feed, hs } = await live({ token: jwt({ sub: 'u1', tenant_id: 't' }) });
    assert.equal(feed.typing('inv-1', 'invoice'), true);
    assert.deepEqual(server.emitted.at(-1), { name: 'user:typing', payload: { resourceId: 'inv-1', resourceType: 'invoice' } });
    const heard = [];
    feed.onTyping((t) => heard.push(['typing', t.userId]));
    for (const name of ['user:online', 'user:offline', 'user:typing']) feed.on(name, (p) => heard.push([name, p.userId]));
    const all = [];
    feed.on('*', (e) => all.push(e));
    hs.socket.push('user:online', { userId: 'u2', username: 'two', timestamp: 't' });
    hs.socket.push('user:typing', { userId: 'u2', username: 'two', resourceId: 'inv-1', resourceType: 'invoice' });
    hs.socket.push('user:offline', { userId: 'u2', username: 'two', timestamp: 't' });
    assert.deepEqual(heard, [
      ['user:online', 'u2'],
      ['typing', 'u2'],
      ['user:typing', 'u2'],
      ['user:offline', 'u2'],
    ]);
    assert.deepEqual(all, [], '"*" is every event; these are not events');
    hs.socket.drop('transport close');
    assert.equal(feed.typing('inv-1', 'invoice'), false, 'nothing to send on while offline');
  });

  test('transport options reach socket.io-client and the fallback', async () => {
    const headers = { 'x-app': 'billing' };
    const options = {
      token: jwt({ sub: 'u1', tenant_id: 't' }),
      path: '/events/socket.io/',
      transports: ['websocket'],
      withCredentials: true,
      extraHeaders: headers,
      reconnectionDelay: 250,
      reconnectionDelayMax: 4000,
    };
    await live(options);
    const o = server.last.socket.opts;
    assert.deepEqual(
      [o.path, o.transports, o.withCredentials, o.extraHeaders, o.reconnectionDelay, o.reconnectionDelayMax],
      ['/events/socket.io/', ['websocket'], true, headers, 250, 4000],
    );
    const feed = feeds.at(-1);
    assert.deepEqual(feed._opts.fetchInit, { headers, credentials: 'include' });
  });
});

