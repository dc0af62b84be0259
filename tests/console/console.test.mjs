// The web console in headless Chromium against a real server on PostgreSQL.
// One server and one page go through every panel in turn, as an operator
// would; each panel's screenshot goes to <EVENTFEED_SCREENSHOTS>/console-<panel>.png
// (Consumers' and Health's come from workbench.test.mjs, where they have trends and two nodes).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { append, auditAll, call, connectSocket, createDatabase, eventually, repoRoot, startServer, token } from './lib.mjs';
import { axeViolations, openConsole } from './browser.mjs';

const T = 'acme';
const admin = token(T, 'u-ops', { name: 'Olga Ops', roles: ['admin'] });
const publisher = token(T, 'u-billing', { name: 'Billing service', roles: ['publisher'] });
const outsider = token('globex', 'u-globex', { roles: ['publisher'] });
// The screenshots in docs/ are refreshed with EVENTFEED_SCREENSHOTS=docs; other runs keep theirs in target/.
const docs = path.join(repoRoot, process.env.EVENTFEED_SCREENSHOTS || 'target/console-screens');
let db, server, browser, page, seen;

before(async () => {
  db = await createDatabase();
  server = await startServer(db.url);
  ({ browser, page, seen } = await openConsole(server));
  mkdirSync(docs, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await db?.drop();
});

const rows = (list) => page.$$eval(`[data-test="${list}"] [data-test="event"]`, (trs) => trs.map((tr) => ({ type: tr.dataset.type, stream: tr.dataset.stream, cursor: tr.dataset.cursor })));
const cursors = async (list) => (await rows(list)).map((r) => r.cursor);
/** Saves the page as console-<name>.png once the new-row highlight has faded. */
async function shot(name) {
  await page.evaluate(() => Promise.all(document.getAnimations().map((a) => a.finished)));
  await page.screenshot({ path: path.join(docs, `console-${name}.png`) });
}
const tab = (name) => page.click(`[data-test="tab-${name}"]`);
const axeChecked = [];

/** Checks the panel on screen with axe-core; critical violations fail the test. */
async function accessible(panel) {
  const violations = await axeViolations(page);
  axeChecked.push(panel);
  const critical = violations.filter((v) => v.impact === 'critical');
  assert.deepEqual(critical, [], `${panel}: critical axe-core violations`);
  for (const v of violations) console.log(`# axe (${panel}): ${v.impact} ${v.id}: ${v.help} at ${v.nodes.join(', ')}`);
}

const invoice = (n, type = 'invoice:paid') => ({ stream: `invoice-${n}`, type, data: { invoiceNumber: `INV-2026-${String(n).padStart(3, '0')}`, amount: 100 * n, currency: 'EUR' } });

test('a refused token is explained; a valid one signs in and shows its tenant', async () => {
  await page.fill('[data-test="token-input"]', token(T, 'u-ops', { roles: ['admin'] }).slice(0, -4) + 'AAAA');
  await page.click('[data-test="sign-in"]');
  await page.waitForSelector('#signin-error:has-text("Cannot sign in")');
  await shot('sign-in');
  await accessible('sign-in');
  await page.fill('[data-test="token-input"]', admin);
  await page.click('[data-test="sign-in"]');
  await page.waitForSelector('#who-tenant:has-text("acme")');
  await page.waitForSelector('#live-status.live');
});

test('live rows arrive newest first and never for another tenant', async () => {
  const first = await append(server, publisher, invoice(1, 'invoice:created'), invoice(2, 'invoice:created'));
  await append(server, outsider, { stream: 'globex-secret', type: 'invoice:created', data: { secret: true } });
  const next = await append(server, publisher, invoice(1), { stream: 'order-7', type: 'order:placed', data: { total: 42 } });
  const expected = [...first, ...next].map((e) => e.cursor).reverse();
  await eventually('four live rows', async () => (await cursors('live-list')).length >= 4);
  assert.deepEqual(await cursors('live-list'), expected, 'every event once, newest first');
  assert.ok((await rows('live-list')).every((r) => r.stream !== 'globex-secret'), 'another tenant never shows');
  await shot('live');
  await accessible('live');
});

test('a type filter shows only matching events; a bad one is explained', async () => {
  await page.fill('[data-test="live-filter"]', 'not a type');
  await page.press('[data-test="live-filter"]', 'Enter');
  await page.waitForSelector('#live-status:has-text("stopped:")');
  await page.fill('[data-test="live-filter"]', 'invoice:*');
  await page.press('[data-test="live-filter"]', 'Enter');
  await page.waitForSelector('#live-status.live');
  const sent = await append(server, publisher, { stream: 'order-8', type: 'order:placed', data: { total: 1 } }, invoice(3));
  const marker = (await append(server, publisher, invoice(4, 'invoice:sent')))[0];
  await eventually('the marker row', async () => (await cursors('live-list')).includes(marker.cursor));
  assert.deepEqual(await cursors('live-list'), [marker.cursor, sent[1].cursor], 'only invoice:* rows');
});

test('pause holds new rows and resume shows every one of them, in order', async () => {
  const before = await cursors('live-list');
  await page.click('[data-test="live-pause"]');
  const held = [];
  for (let i = 10; i < 16; i++) held.push(...(await append(server, publisher, invoice(i))));
  await page.waitForSelector('[data-test="live-pause"]:has-text("Resume (6 new)")');
  assert.deepEqual(await cursors('live-list'), before, 'nothing is added while paused');
  await page.click('[data-test="live-pause"]');
  assert.deepEqual(await cursors('live-list'), [...held.map((e) => e.cursor).reverse(), ...before]);
  await page.fill('[data-test="live-filter"]', '');
  await page.press('[data-test="live-filter"]', 'Enter');
});

test('live resumes from its cursor when the server comes back', async () => {
  const failedBefore = seen.failed.length;
  const consoleBefore = seen.consoleErrors.length;
  const [seenLast] = await append(server, publisher, invoice(20));
  await page.waitForSelector(`[data-test="live-list"] [data-cursor="${seenLast.cursor}"]`);
  await server.stop();
  // Appended while no server runs: only a resume from the cursor can show it.
  await db.sql("SELECT eventfeed.append_event(tenant_id => 'acme', stream => 'while-away', type => 'invoice:voided', data => '{}'::jsonb)");
  server = await startServer(db.url, { EVENTFEED_ADDR: new URL(server.url).host });
  await page.waitForSelector('[data-test="live-list"] [data-stream="while-away"]', { timeout: 30000 });
  await page.waitForSelector('#live-status.live');
  // The requests that failed while the server was down are expected.
  seen.failed.splice(failedBefore);
  seen.consoleErrors.splice(consoleBefore);
});

test('history search and its "more" pages match GET /api/audit', async () => {
  const items = [];
  for (let i = 0; i < 3; i++) {
    items.push(...(await append(server, publisher, ...Array.from({ length: 40 }, (_, j) => ({ stream: `ledger-${j % 5}`, type: 'ledger:posted', data: { line: i * 40 + j } })))));
  }
  await tab('history');
  await page.fill('[data-test="history-type"]', 'ledger:*');
  await page.click('[data-test="history-search"]');
  await eventually('the first page', async () => (await cursors('history-list')).length === 50);
  await shot('history');
  while (await page.isVisible('[data-test="history-more"]')) {
    const shown = (await cursors('history-list')).length;
    await page.click('[data-test="history-more"]');
    await eventually('the next page', async () => (await cursors('history-list')).length > shown);
  }
  const expected = await auditAll(server, admin, { type: 'ledger:*' });
  assert.equal(expected.length, 120);
  assert.deepEqual(await cursors('history-list'), expected.map((e) => e.cursor));

  await page.fill('[data-test="history-type"]', '');
  await page.fill('[data-test="history-stream"]', 'invoice-1');
  await page.fill('[data-test="history-actor"]', 'u-billing');
  await page.click('[data-test="history-search"]');
  const byStream = await auditAll(server, admin, { stream: 'invoice-1', actor: 'u-billing' });
  await eventually('the stream search', async () => (await cursors('history-list')).join() === byStream.map((e) => e.cursor).join());
  await accessible('history');
});

test('the stream view lists one stream by version', async () => {
  await append(server, publisher, invoice(1, 'invoice:sent'));
  await tab('stream');
  await page.fill('[data-test="stream-input"]', 'invoice-1');
  await page.press('[data-test="stream-input"]', 'Enter');
  const expected = (await call(server, admin, 'GET', '/api/streams/invoice-1')).events;
  assert.deepEqual(expected.map((e) => e.version), [1, 2, 3]);
  await eventually('three versions', async () => (await cursors('stream-list')).length === 3);
  assert.deepEqual(await cursors('stream-list'), expected.map((e) => e.cursor));
  await shot('stream');
  await accessible('stream');
});

test('presence updates when a socket connects and leaves', async () => {
  await tab('presence');
  const vera = token(T, 'u-vera', { name: 'Vera Viewer' });
  const sockets = [await connectSocket(server, vera), await connectSocket(server, vera), await connectSocket(server, token(T, 'u-sam', { name: 'Sam' }))];
  const stranger = await connectSocket(server, token('globex', 'u-globex-viewer'));
  const vRow = '[data-test="presence-list"] [data-test="user"][data-user="u-vera"]';
  await page.waitForSelector(`${vRow} td.num:has-text("2")`);
  await page.waitForSelector('[data-test="user"][data-user="u-sam"]');
  assert.equal(await page.$('[data-test="user"][data-user="u-globex-viewer"]'), null, 'another tenant is not listed');
  await shot('presence');
  await accessible('presence');
  for (const s of sockets) s.disconnect();
  stranger.disconnect();
  await page.waitForSelector(vRow, { state: 'detached' });
});

test('consumers show their cursor and how far behind they are', async () => {
  const reader = token(T, 'u-mobile');
  const all = await auditAll(server, admin, {});
  await call(server, reader, 'POST', '/api/events/ack', { consumer: 'mobile-app', cursor: all[all.length - 11].cursor });
  await call(server, publisher, 'POST', '/api/events/ack', { consumer: 'warehouse-sync', cursor: all[all.length - 1].cursor });
  await call(server, reader, 'POST', '/api/events/ack', { consumer: 'nightly-export', cursor: '0' });
  await tab('consumers');
  await page.waitForSelector('[data-test="consumer"][data-consumer="mobile-app"][data-behind="10"]');
  const api = (await call(server, admin, 'GET', '/api/consumers')).consumers;
  const shown = await page.$$eval('[data-test="consumer"]', (trs) => trs.map((tr) => [tr.dataset.consumer, Number(tr.dataset.behind)]));
  assert.deepEqual(shown, api.map((c) => [c.consumer, c.behind]));
  assert.deepEqual(shown.find(([name]) => name === 'warehouse-sync'), ['warehouse-sync', 0]);
  await accessible('consumers');
});

test('health charts draw every node from GET /api/stats', async () => {
  await tab('health');
  const socket = await connectSocket(server, token(T, 'u-vera'));
  for (let i = 0; i < 4; i++) {
    await append(server, publisher, ...Array.from({ length: 5 }, (_, j) => ({ stream: 'pulse', type: 'metric:tick', data: { i, j } })));
    await page.waitForTimeout(800); // spread the appends over a few samples, so the rate line has a shape
  }
  for (const chart of ['rate', 'sockets', 'lag']) {
    await page.waitForFunction((key) => {
      const points = document.querySelector(`[data-test="health"] [data-chart="${key}"] polyline`)?.getAttribute('points') || '';
      return points.trim().split(' ').length >= 2;
    }, chart, { timeout: 30000 });
  }
  // The test's socket and the console's own feed.
  await page.waitForSelector('[data-chart="sockets"] .value:has-text("2")');
  await page.waitForSelector('#health-types li[data-type="metric:tick"]');
  await accessible('health');
  socket.disconnect();
});

test('phone width and dark scheme stay readable', async () => {
  await tab('live');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('dark');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'light' });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at phone width`);
  await shot('phone');
  await accessible('phone');
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('keyboard alone moves between tabs', async () => {
  await page.focus('[data-test="tab-live"]');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.test), 'tab-history');
  assert.equal(await page.isVisible('#panel-history'), true);
  await page.keyboard.press('End');
  assert.equal(await page.isVisible('[data-test="health"]'), true);
});

test('signing out forgets the token and clears every panel', async () => {
  assert.ok(await page.evaluate(() => sessionStorage.length) > 0, 'the token is kept in sessionStorage while signed in');
  assert.ok((await page.$$('[data-test="event"]')).length > 0);
  await page.click('#sign-out');
  await page.waitForSelector('[data-test="token-input"]');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.equal((await page.$$('[data-test="event"], [data-test="user"], [data-test="consumer"]')).length, 0);
});

test('every request went to the server itself, and the page raised no error', async () => {
  const origin = new URL(server.url).origin;
  const foreign = seen.requests.filter((url) => new URL(url).origin !== origin);
  assert.deepEqual(foreign, [], 'requests to another origin');
  assert.ok(seen.requests.some((url) => new URL(url).pathname === '/eventfeed.js'), 'the page loaded the client library');
  assert.ok(seen.requests.some((url) => url.includes('/socket.io/')), 'the live feed is the library\'s socket');
  assert.deepEqual(seen.pageErrors, [], 'uncaught page errors');
  assert.deepEqual(seen.failed, [], 'failed requests');
  // Expected: the refused sign-in's 401 and the bad filter's 400, which the page explained.
  const errors = seen.consoleErrors.filter((text) => !/status of 40[01]/.test(text));
  assert.deepEqual(errors, [], 'console errors');
  assert.ok(axeChecked.length >= 8, `axe-core ran on every panel: ${axeChecked}`);
});
