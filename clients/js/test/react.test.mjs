// eventfeed-client/react in headless Chromium: a small app (test/react/app.jsx,
// bundled here with esbuild, React's development build so StrictMode runs
// every effect twice) renders a feed's events and who is online. Under
// StrictMode the page opens one Socket.IO connection for its feed, never
// two; unmounting the component closes it. Screenshot in target/client-screens/.

import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import * as h from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCREENS = path.resolve(here, '..', '..', '..', 'target', 'client-screens');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Serves the app (index.html and its bundle) from an origin of its own. */
async function appServer() {
  const bundle = await build({
    entryPoints: [path.join(here, 'react', 'app.jsx')],
    bundle: true,
    write: false,
    format: 'esm',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'warning',
  });
  const js = bundle.outputFiles[0].contents;
  const html = '<!doctype html><meta charset="utf-8"><title>React feed</title><div id="root"></div><script type="module" src="/app.js"></script>';
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/app.js')) res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

describe('React under StrictMode (postgres)', () => {
  let store;
  let site;
  let server;
  let browser;
  before(async () => {
    fs.mkdirSync(SCREENS, { recursive: true });
    store = await h.makeStore('postgres');
    site = await appServer();
    server = await h.serve(store, { EVENTFEED_CORS_ORIGINS: site.origin });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await h.closeAll();
    await browser?.close();
    site?.server.close();
    await server?.stop();
    await store?.cleanup();
  });

  test('one socket per feed, events rendered in order, presence live, closed on unmount', async () => {
    const t = h.tenant();
    await h.append(server.url, h.publisher(t), h.numbered(0), h.numbered(1));
    const page = await browser.newPage({ viewport: { width: 700, height: 500 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Each Socket.IO connection starts with a request that carries no session id.
    const sessions = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/socket.io/') && !u.searchParams.has('sid')) sessions.push(u.search);
    });
    await page.goto(`${site.origin}/#server=${encodeURIComponent(server.url)}&token=${h.reader(t, 'u-react')}`);
    const shown = () => page.$$eval('[data-test=event]', (els) => els.map((e) => Number(e.dataset.i)));
    const online = () => page.$$eval('[data-test=user]', (els) => els.map((e) => `${e.dataset.user}:${e.dataset.connections}`));

    await h.until(async () => (await shown()).length === 2, 'the replayed events rendered');
    await h.until(async () => (await online()).join() === 'u-react:1', 'the app sees itself online, with one connection');
    await h.append(server.url, h.publisher(t), h.numbered(2), h.numbered(3));
    await h.until(async () => (await shown()).length === 4, 'the live events rendered');
    assert.deepEqual(await shown(), [0, 1, 2, 3]);

    const other = h.open(server.url, { token: h.reader(t, 'u-other'), storage: h.memoryStorage() });
    await h.until(async () => (await online()).join() === 'u-other:1,u-react:1', 'another user comes online');
    await page.screenshot({ path: path.join(SCREENS, 'react.png') });
    await other.close();
    await h.until(async () => (await online()).join() === 'u-react:1', 'the other user goes', 30_000);
    assert.equal(sessions.length, 1, `one Socket.IO connection under StrictMode: ${sessions.join(' ')}`);
    assert.equal(await page.evaluate(() => window.feeds.size), 1, 'one feed, the same across the double effects');
    assert.equal(await page.evaluate(() => window.tokenCalls), 1, 'one feed started: the token was asked for once');

    // Unmounting the component closes its feed: the server sees u-react leave.
    const watcher = h.open(server.url, { token: h.reader(t, 'u-watch'), storage: h.memoryStorage() });
    const seen = [];
    watcher.onPresence((users) => seen.push(users.map((u) => u.userId).join()));
    await h.until(() => seen.at(-1) === 'u-react,u-watch', 'the watcher sees the app');
    await page.click('[data-test=toggle]');
    await h.until(() => seen.at(-1) === 'u-watch', 'the app left when unmounted', 30_000);
    assert.equal(sessions.length, 1);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
