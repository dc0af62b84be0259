// The CommonJS entry points, as `require` finds them through the package's
// exports: the same API as the ES module, working against the real server.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { EventFeed, FeedError } = require('eventfeed-client');
const react = require('eventfeed-client/react');

describe('CommonJS (sqlite)', () => {
  let h;
  let store;
  let server;
  before(async () => {
    h = await import('./lib/harness.mjs');
    store = await h.makeStore('sqlite');
    server = await h.serve(store);
  });
  after(async () => {
    await server?.stop();
    await store?.cleanup();
  });

  test('require gives the library, whose feed receives events', async () => {
    assert.equal(typeof EventFeed, 'function');
    assert.ok(new FeedError({ code: 'timeout' }) instanceof Error);
    assert.deepEqual(Object.keys(react).sort(), ['useEvents', 'useFeed', 'usePresence']);
    assert.throws(() => new EventFeed(server.url, { token: 'x', after: 'no such cursor!' }), (e) => e instanceof FeedError);
    const t = h.tenant();
    const feed = new EventFeed(server.url, { token: h.reader(t), storage: h.memoryStorage(), after: '0' });
    const seen = [];
    feed.on('item:added', (e) => seen.push(e.data.i));
    await h.append(server.url, h.publisher(t), h.numbered(0), h.numbered(1));
    await h.until(() => seen.length === 2, 'two events');
    assert.deepEqual(seen, [0, 1]);
    await feed.close();
  });
});
