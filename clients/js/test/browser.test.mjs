// The browser build in headless Chromium: a page on another origin loads
// /eventfeed.js with a plain <script>, receives events, reloads and resumes
// from localStorage, and falls back to SSE when Socket.IO is blocked.
// Screenshots go to target/client-screens/.

import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import * as h from './lib/harness.mjs';
import { startProxy } from './lib/proxy.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCREENS = path.resolve(here, '..', '..', '..', 'target', 'client-screens');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Serves the test page from an origin of its own. */
async function pageServer() {
  const html = fs.readFileSync(path.join(here, 'lib', 'page.html'));
  const server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

describe('browser (postgres)', () => {
  let store;
  let site;
  let server;
  let proxy;
  let browser;
  before(async () => {
    fs.mkdirSync(SCREENS, { recursive: true });
    store = await h.makeStore('postgres');
    site = await pageServer();
    server = await h.serve(store, { EVENTFEED_CORS_ORIGINS: site.origin });
    proxy = await startProxy(server.url);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    site?.server.close();
    await server?.stop();
    await store?.cleanup();
  });

  async function openPage(base, t) {
    const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.answered = [];
    page.on('response', (r) => page.answered.push(new URL(r.url()).pathname));
    await page.goto(`${site.origin}/#server=${encodeURIComponent(base)}&token=${h.reader(t)}`);
    return { page, errors };
  }

  const status = (page) => page.evaluate(() => window.feed && window.feed.status);
  const received = (page) => page.evaluate(() => window.received);

  test('receives events, reloads and resumes from localStorage', async () => {
    const t = h.tenant();
    const { page, errors } = await openPage(server.url, t);
    await h.until(async () => (await status(page)) === 'live', 'live in the page');
    await h.append(server.url, h.publisher(t), ...h.range(0, 3).map((i) => h.numbered(i)));
    await h.until(async () => (await received(page)).length === 3, '3 events in the page');
    await page.evaluate(() => window.feed.close());
    // Appended while the page is away: the reloaded page must start with these.
    await h.append(server.url, h.publisher(t), h.numbered(3), h.numbered(4));
    await page.reload();
    await h.until(async () => (await received(page))?.length === 2, 'the missed events after the reload');
    assert.deepEqual(await received(page), [3, 4]);
    await h.append(server.url, h.publisher(t), h.numbered(5));
    await h.until(async () => (await received(page)).length === 3, 'live after the reload');
    assert.deepEqual(await received(page), [3, 4, 5]);
    await page.screenshot({ path: path.join(SCREENS, 'reload.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('falls back to SSE when Socket.IO is blocked, and comes back', async () => {
    const t = h.tenant();
    proxy.block();
    const { page, errors } = await openPage(proxy.url, t);
    await h.until(async () => (await status(page)) === 'fallback', 'fallback in the page', 30_000);
    // The page has no cursor yet and SSE starts live: once the stream is
    // open, one probe event gives it a cursor.
    await h.until(() => page.answered.includes('/api/events/stream'), 'the SSE stream open');
    await h.append(server.url, h.publisher(t), h.numbered(-1, 'probe:ping'));
    await h.until(async () => (await received(page)).length === 1, 'the probe over SSE');
    const before = 1;
    await h.append(server.url, h.publisher(t), ...h.range(0, 3).map((i) => h.numbered(i)));
    await h.until(async () => (await received(page)).length === before + 3, 'events over SSE');
    await page.screenshot({ path: path.join(SCREENS, 'fallback-sse.png') });
    proxy.unblock();
    await h.until(async () => (await status(page)) === 'live', 'back on Socket.IO', 30_000);
    await h.append(server.url, h.publisher(t), h.numbered(3), h.numbered(4));
    await h.until(async () => (await received(page)).length === before + 5, 'events over Socket.IO');
    const got = (await received(page)).filter((i) => i >= 0);
    assert.deepEqual(got, [0, 1, 2, 3, 4], 'each once, in order, across the switch');
    await page.screenshot({ path: path.join(SCREENS, 'back-live.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });
});
