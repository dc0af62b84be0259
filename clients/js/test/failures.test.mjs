// The library's own logic for what goes wrong, on a scripted socket (no
// server): a token function that fails, a token refused as invalid or as
// expired, a cursor refused, and every rejection a FeedError with a code.

import { describe, test, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { EventFeed, FeedError } from '../src/index.js';
import { FakeServer, jwt } from './lib/fake-socket.mjs';
import { memoryStorage, until } from './lib/harness.mjs';

const URL_ = 'http://127.0.0.1:9';
const quick = { reconnectionDelay: 5, reconnectionDelayMax: 20, fallback: false };

describe('failures the app can act on', () => {
  let server;
  let uninstall;
  const feeds = [];
  const open = (options) => {
    const feed = new EventFeed(URL_, { storage: memoryStorage(), ...quick, ...options });
    feeds.push(feed);
    return feed;
  };
  beforeEach(() => {
    server = new FakeServer();
    uninstall = server.install();
  });
  afterEach(async () => {
    await Promise.all(feeds.splice(0).map((f) => f.close()));
    uninstall();
  });

  test('a token function that throws, then rejects, is retried with backoff, each failure reported', async () => {
    let calls = 0;
    const token = () => {
      calls += 1;
      if (calls === 1) throw new Error('no session yet');
      if (calls === 2) return Promise.reject(new Error('identity provider down'));
      return jwt({ sub: 'u1', tenant_id: 't' });
    };
    const feed = open({ token });
    const errors = [];
    feed.onError((e) => errors.push(e));
    await until(() => server.handshakes.length === 1, 'a handshake with the third token');
    assert.equal(calls, 3);
    assert.deepEqual(
      errors.map((e) => [e instanceof FeedError, e.code, e.cause?.message]),
      [
        [true, 'unauthorized', 'no session yet'],
        [true, 'unauthorized', 'identity provider down'],
      ],
    );
    server.last.socket.accept();
    assert.equal(feed.status, 'live');
  });

  test('a connect attempt given up for a newer one never sends its handshake', async () => {
    let failing = false;
    const token = () => {
      if (failing) throw new Error('identity provider down');
      return jwt({ sub: 'u1', tenant_id: 't', at: Date.now() });
    };
    const feed = open({ token, reconnectionDelayMax: 10 });
    await until(() => server.handshakes.length === 1, 'the first handshake');
    const socket = server.last.socket;
    socket.accept();
    failing = true;
    socket.drop('transport close');
    socket.connect();
    const errors = [];
    feed.onError((e) => errors.push(e));
    await until(() => errors.length >= 2, 'the first attempt failing');
    // The transport opens again (say the server closed the one waiting for a
    // CONNECT): socket.io-client asks for a handshake anew.
    socket.attempting = false;
    socket.connect();
    failing = false;
    await until(() => server.handshakes.length === 2, 'the newer attempt');
    // Ten times the longest backoff: the older attempt would have sent by now.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(server.handshakes.length, 2, 'one handshake for the two attempts');
  });

  test('a token the server refuses as invalid stops the feed with status "unauthorized"', async (t) => {
    const feed = open({ token: () => jwt({ sub: 'u1', tenant_id: 't' }) });
    const statuses = [];
    feed.onStatus((s) => statuses.push(s));
    await until(() => server.handshakes.length === 1, 'the handshake');
    t.mock.timers.enable({ apis: ['setTimeout'] });
    server.last.socket.refuse('authentication failed: bad signature');
    t.mock.timers.runAll();
    t.mock.timers.reset();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(feed.status, 'unauthorized');
    assert.equal(statuses.length, 1);
    const [{ status, reason, error }] = statuses;
    assert.deepEqual([status, reason], ['unauthorized', 'authentication failed: bad signature']);
    assert.ok(error instanceof FeedError && error.code === 'unauthorized');
    assert.equal(server.sockets[0].attempting || server.sockets[0].active, false, 'no retry');
    assert.equal(server.handshakes.length, 1, 'no second handshake');
  });

  test('a token refused as expired is replaced and the feed goes on', async () => {
    let n = 0;
    const feed = open({ token: () => jwt({ sub: 'u1', tenant_id: 't', n: (n += 1) }) });
    const errors = [];
    feed.onError((e) => errors.push(e.code));
    await until(() => server.handshakes.length === 1, 'the handshake');
    server.last.socket.refuse('authentication failed: token expired');
    await until(() => server.handshakes.length === 2, 'a handshake with a new token');
    assert.notEqual(server.handshakes[1].auth.token, server.handshakes[0].auth.token);
    server.last.socket.accept();
    assert.equal(feed.status, 'live');
    assert.deepEqual(errors, ['unauthorized']);
  });

  test('a cursor the app gave that the server refuses stops the feed; a stored one is dropped', async () => {
    const given = open({ token: jwt({ sub: 'u1', tenant_id: 't' }), after: '77-1' });
    await until(() => server.handshakes.length === 1, 'the handshake');
    assert.equal(server.last.auth.after, '77-1');
    const statuses = [];
    given.onStatus((s) => statuses.push(s));
    server.last.socket.refuse('invalid cursor');
    assert.equal(given.status, 'closed');
    assert.equal(statuses[0].error.code, 'invalid_cursor');

    const storage = memoryStorage();
    const first = open({ token: jwt({ sub: 'u2', tenant_id: 't' }), storage });
    await until(() => server.handshakes.length === 2, 'the second feed');
    await first.close();
    // A cursor in storage the server no longer takes: the feed goes on without it.
    storage.map.set(first._store.key, 'garbage-cursor');
    const resumed = open({ token: jwt({ sub: 'u2', tenant_id: 't' }), storage });
    await until(() => server.handshakes.length === 3, 'the resumed feed');
    assert.equal(server.last.auth.after, 'garbage-cursor');
    const errors = [];
    resumed.onError((e) => errors.push(e.code));
    server.last.socket.refuse('invalid cursor');
    await until(() => server.handshakes.length === 4, 'a handshake without the cursor');
    assert.equal(server.last.auth.after, undefined);
    assert.deepEqual(errors, ['invalid_cursor']);
    assert.notEqual(resumed.status, 'closed');
  });

  test('bad options throw a FeedError before anything connects', () => {
    const token = jwt({ sub: 'u1', tenant_id: 't' });
    const cases = [
      [{ token, after: 'not a cursor!' }, 'invalid_cursor'],
      [{ token, after: 5 }, 'invalid_cursor'],
      [{ token, types: ['invoice'] }, 'invalid'],
      [{ token, types: 'invoice:*' }, 'invalid'],
      [{ token: 42 }, 'invalid'],
    ];
    for (const [options, code] of cases) {
      assert.throws(() => new EventFeed(URL_, options), (e) => e instanceof FeedError && e.code === code, JSON.stringify(options));
    }
    assert.equal(server.sockets.length, 0, 'nothing connected');
  });

  test('rejections are FeedErrors: a refusal keeps its code, a missing ack is "timeout", no server is "network"', async () => {
    const feed = open({ token: jwt({ sub: 'u1', tenant_id: 't', roles: ['publisher'] }), ackTimeout: 50 });
    await until(() => server.handshakes.length === 1, 'the handshake');
    server.last.socket.accept();
    server.answers['event:append'] = () => ({ ok: false, error: { code: 'conflict', message: 'expected version 0, stream is at 3', currentVersion: 3 } });
    const conflict = await feed.append({ stream: 's', type: 'a:b', data: {} }).catch((e) => e);
    assert.ok(conflict instanceof FeedError);
    assert.deepEqual([conflict.code, conflict.currentVersion], ['conflict', 3]);

    delete server.answers['presence:list'];
    const late = await feed.presence().catch((e) => e);
    assert.ok(late instanceof FeedError);
    assert.equal(late.code, 'timeout');

    // No acknowledgement for an append: it is retried over HTTP, where nothing listens.
    delete server.answers['event:append'];
    const unreachable = await feed.append({ stream: 's', type: 'a:b', data: {} }).catch((e) => e);
    assert.ok(unreachable instanceof FeedError);
    assert.equal(unreachable.code, 'network');
    const sent = server.calls.filter((c) => c.name === 'event:append').at(-1);
    assert.equal(typeof sent.payload.id, 'string', 'the append carried an id of its own, for an idempotent retry');
  });

  test('debug: true logs each step', async () => {
    const debug = mock.method(console, 'debug', () => {});
    try {
      open({ token: jwt({ sub: 'u1', tenant_id: 't' }), debug: true });
      server.answers['request:current-state'] = () => ({ cursor: '5-0', online: [] });
      await until(() => server.handshakes.length === 1, 'the handshake');
      server.last.socket.accept();
      const lines = debug.mock.calls.map((c) => c.arguments.slice(0, 2).join(' '));
      for (const step of ['eventfeed: starting', 'eventfeed: connecting', 'eventfeed: connected', 'eventfeed: status']) {
        assert.ok(lines.some((l) => l.startsWith(step)), `${step} in ${lines.join(' | ')}`);
      }
    } finally {
      debug.mock.restore();
    }
  });
});
