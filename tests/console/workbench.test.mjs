// The console as an operator's workbench, in headless Chromium against real
// servers on PostgreSQL: Append, Find, Live's start point and filters,
// History newest first, Types, pushed presence, consumer trends, and Health
// from GET /api/stats across a reload and two nodes.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { append, auditAll, call, connectSocket, createDatabase, eventually, repoRoot, startServer, token } from './lib.mjs';
import { axeViolations, openConsole } from './browser.mjs';

const T = 'acme';
const admin = token(T, 'u-ops', { name: 'Olga Ops', roles: ['admin'] });
const publisher = token(T, 'u-billing', { name: 'Billing service', roles: ['publisher'] });
const docs = path.join(repoRoot, process.env.EVENTFEED_SCREENSHOTS || 'target/console-screens');
let db, server, browser, page, seen;

before(async () => {
  db = await createDatabase();
  server = await startServer(db.url, { EVENTFEED_PRESENCE_LIST_MAX: '2' });
  ({ browser, page, seen } = await openConsole(server));
  mkdirSync(docs, { recursive: true });
  await page.fill('[data-test="token-input"]', admin);
  await page.click('[data-test="sign-in"]');
  await page.waitForSelector('#live-status.live');
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await db?.drop();
});

const cursors = (list) => page.$$eval(`[data-test="${list}"] [data-test="event"]`, (trs) => trs.map((tr) => tr.dataset.cursor));
const streams = (list) => page.$$eval(`[data-test="${list}"] [data-test="event"]`, (trs) => trs.map((tr) => tr.dataset.stream));
const tab = (name) => page.click(`[data-test="tab-${name}"]`);
async function shot(name) {
  await page.evaluate(() => Promise.all(document.getAnimations().map((a) => a.finished)));
  await page.screenshot({ path: path.join(docs, `console-${name}.png`) });
}
async function accessible(panel) {
  const critical = (await axeViolations(page)).filter((v) => v.impact === 'critical');
  assert.deepEqual(critical, [], `${panel}: critical axe-core violations`);
}
async function applyLive({ types = '', stream = '', actor = '', from = '' }) {
  await tab('live');
  await page.fill('[data-test="live-filter"]', types);
  await page.fill('#live-stream', stream);
  await page.fill('#live-actor', actor);
  await page.fill('[data-test="live-from"]', from);
  await page.press('[data-test="live-from"]', 'Enter');
}

test('the append form stores an event, which then shows in Live; refusals are explained', async () => {
  await page.fill('[data-test="append-stream"]', 'invoice-77');
  await page.fill('[data-test="append-type"]', 'invoice:paid');
  await page.fill('[data-test="append-data"]', '{"amount": 1200, "currency": "EUR"}');
  await page.click('[data-test="append-submit"]');
  await page.waitForSelector('[data-test="live-list"] [data-test="event"][data-stream="invoice-77"][data-type="invoice:paid"]');
  const stored = (await auditAll(server, admin, { stream: 'invoice-77' }))[0];
  assert.deepEqual(stored.data, { amount: 1200, currency: 'EUR' });
  assert.equal(stored.actor.userId, 'u-ops');
  await page.waitForSelector(`#append-result:has-text("${stored.cursor}")`);
  await accessible('append');

  await page.fill('[data-test="append-data"]', '[1, 2');
  await page.click('[data-test="append-submit"]');
  await page.waitForSelector('#append-error:has-text("not JSON")');
  await page.fill('[data-test="append-data"]', '{}');
  await page.fill('[data-test="append-type"]', 'presence:fake');
  await page.click('[data-test="append-submit"]');
  await page.waitForSelector('#append-error:has-text("invalid")');
  assert.equal((await auditAll(server, admin, { stream: 'invoice-77' })).length, 1, 'nothing else was stored');
});

test('find opens an event by id and by cursor with its full envelope', async () => {
  const events = await append(server, publisher, ...[1, 2, 3].map((i) => ({ stream: `order-${i}`, type: 'order:placed', data: { i } })));
  await tab('find');
  for (const [what, value] of [['id', events[1].id], ['cursor', events[1].cursor]]) {
    await page.fill('[data-test="find-input"]', value);
    await page.click('[data-test="find-submit"]');
    await page.waitForSelector(`[data-test="find-result"] [data-test="event"][data-cursor="${events[1].cursor}"]`);
    const envelope = JSON.parse(await page.textContent('[data-test="find-result"] pre.envelope'));
    assert.deepEqual(envelope, events[1], `found by ${what}: the whole envelope`);
  }
  await shot('find');
  await accessible('find');
  await page.fill('[data-test="find-input"]', '00000000-0000-4000-8000-000000000000');
  await page.click('[data-test="find-submit"]');
  await page.waitForSelector('[data-test="find-result"]:has-text("No event")');
  // A cursor of a row in another panel opens it here.
  await tab('live');
  await page.click(`[data-test="live-list"] [data-cursor="${events[2].cursor}"] td.cursor button`);
  await page.waitForSelector(`[data-test="find-result"] [data-cursor="${events[2].cursor}"]`);
});

test('live starts from the last N events or from a cursor, and filters by stream and actor', async () => {
  const all = await auditAll(server, admin, {});
  await applyLive({ from: '3' });
  const lastThree = all.slice(-3).map((e) => e.cursor).reverse();
  await eventually('the last three events', async () => (await cursors('live-list')).join() === lastThree.join());
  await applyLive({ from: all[all.length - 3].cursor });
  await eventually('the events after the cursor', async () => (await cursors('live-list')).join() === lastThree.slice(0, 2).join());

  await applyLive({ stream: 'order-2' });
  await page.waitForSelector('#live-status.live');
  const mine = await append(server, publisher, { stream: 'order-2', type: 'order:shipped', data: {} }, { stream: 'order-9', type: 'order:shipped', data: {} });
  const [byAdmin] = await append(server, admin, { stream: 'order-2', type: 'order:paid', data: {} });
  await eventually('order-2 rows only', async () => (await cursors('live-list')).join() === [byAdmin.cursor, mine[0].cursor].join());
  await applyLive({ actor: 'u-ops', from: '2' });
  await eventually('u-ops rows only', async () => (await cursors('live-list')).includes(byAdmin.cursor));
  const actors = new Set((await auditAll(server, admin, {})).filter((e) => e.actor.userId === 'u-ops').map((e) => e.cursor));
  assert.ok((await cursors('live-list')).every((c) => actors.has(c)), 'only the actor\'s events');
  await applyLive({});
});

test('a new filter goes on from the last event seen: nothing appended during the switch is missed', async () => {
  await applyLive({ types: 'switch:*' });
  await page.waitForSelector('#live-status.live');
  // The new feed's first request (the server's check of the filter) is held
  // until an event has been appended: it falls between the two feeds.
  let appended;
  const done = new Promise((resolve) => (appended = resolve));
  const hold = async (route) => {
    await done;
    await route.continue();
  };
  await page.route('**/api/events?*', hold);
  await page.fill('[data-test="live-filter"]', 'switch:*, order:*');
  await page.press('[data-test="live-filter"]', 'Enter');
  await page.waitForSelector('#live-status:has-text("connecting")');
  const [during] = await append(server, publisher, { stream: 'order-5', type: 'order:placed', data: {} });
  appended();
  await page.waitForSelector(`[data-test="live-list"] [data-cursor="${during.cursor}"]`);
  await page.unroute('**/api/events?*', hold);
  await applyLive({});
});

test('history pages newest first', async () => {
  await append(server, publisher, ...Array.from({ length: 60 }, (_, i) => ({ stream: `ledger-${i % 3}`, type: 'ledger:posted', data: { i } })));
  await tab('history');
  await page.fill('[data-test="history-type"]', 'ledger:*');
  await page.selectOption('#history-order', 'desc');
  await page.click('[data-test="history-search"]');
  await eventually('the first page', async () => (await cursors('history-list')).length === 50);
  await page.click('[data-test="history-more"]');
  await eventually('the second page', async () => (await cursors('history-list')).length === 60);
  await page.waitForSelector('[data-test="history-more"]', { state: 'hidden' });
  const expected = (await auditAll(server, admin, { type: 'ledger:*' })).map((e) => e.cursor).reverse();
  assert.deepEqual(await cursors('history-list'), expected);
  await page.selectOption('#history-order', 'asc');
});

test('the types tab lists the catalog, or says there is none', async () => {
  const res = await fetch(`${server.url}/api/types`, { headers: { Authorization: `Bearer ${admin}` } });
  await tab('types');
  if (res.status === 404) {
    await page.waitForSelector('[data-test="types-list"]:has-text("no event type catalog")');
    assert.equal((await page.$$('[data-test="type"]')).length, 0);
  } else {
    const catalog = await res.json();
    assert.ok(catalog.types.some((t) => t.type === 'ledger:posted'), 'stored types are in the catalog');
    await page.waitForSelector('[data-test="types-list"] [data-test="type"][data-type="ledger:posted"]');
    const shown = await page.$$eval('[data-test="type"]', (els) => els.map((e) => e.dataset.type));
    assert.deepEqual(shown, catalog.types.map((t) => t.type));
  }
  await shot('types');
  await accessible('types');
});

test('presence is pushed over the socket, not polled; above the list limit it shows the count', async (t) => {
  await tab('presence');
  const polledBefore = seen.requests.filter((url) => url.includes('/api/presence')).length;
  const sockets = [];
  for (const who of ['u-vera', 'u-sam', 'u-ida']) sockets.push(await connectSocket(server, token(T, who, { name: who })));
  const watcher = sockets[0];
  const diffs = [];
  watcher.on('presence:diff', (d) => diffs.push(d));
  const vera = '[data-test="presence-list"] [data-test="user"][data-user="u-vera"]';
  const overLimit = () => diffs.some((d) => !d.joins && !d.leaves && d.online > 2);
  await eventually('u-vera listed or the count shown', async () => (await page.$(vera)) || overLimit());
  if (overLimit()) {
    await page.waitForSelector('[data-test="presence-count"]:has-text("4")');
    await page.click('#presence-load');
    await page.waitForSelector(vera);
  }
  // After the push, one list brings the connection counts.
  await page.waitForSelector(`${vera} td.num:has-text("1")`);
  await shot('presence');
  for (const s of sockets) s.disconnect();
  if (!overLimit()) await page.waitForSelector(vera, { state: 'detached' });
  const polled = seen.requests.filter((url) => url.includes('/api/presence')).length - polledBefore;
  assert.equal(polled, 0, 'presence came over the socket');
  if (!diffs.length) t.diagnostic('this server sends no presence:diff: the panel followed user:online and user:offline');
});

test('consumers show whether each one is catching up or falling behind', async () => {
  const reader = token(T, 'u-mobile');
  const all = await auditAll(server, admin, {});
  const head = all[all.length - 1].cursor;
  await call(server, reader, 'POST', '/api/events/ack', { consumer: 'catching', cursor: all[all.length - 11].cursor });
  await call(server, reader, 'POST', '/api/events/ack', { consumer: 'lagging', cursor: head });
  await tab('consumers');
  await page.waitForSelector('[data-test="consumer"][data-consumer="catching"][data-behind="10"]');
  await call(server, reader, 'POST', '/api/events/ack', { consumer: 'catching', cursor: head });
  await append(server, publisher, ...Array.from({ length: 5 }, (_, i) => ({ stream: 'tick', type: 'tick:tock', data: { i } })));
  await page.waitForSelector('[data-test="consumer"][data-consumer="catching"][data-trend="catching-up"]', { timeout: 30000 });
  await page.waitForSelector('[data-test="consumer"][data-consumer="lagging"][data-trend="falling-behind"]', { timeout: 30000 });
  await shot('consumers');
  await accessible('consumers');
});

test('health comes back whole after a reload and draws every node', async () => {
  await tab('health');
  await page.waitForFunction(() => (document.querySelector('[data-chart="rate"] polyline')?.getAttribute('points') || '').trim().split(' ').length >= 5, null, { timeout: 30000 });
  await page.reload();
  // The first answer after the reload already holds the seconds sampled before it.
  await page.waitForFunction(() => (document.querySelector('[data-chart="rate"] polyline')?.getAttribute('points') || '').trim().split(' ').length >= 5, null, { timeout: 10000 });
  const second = await startServer(db.url);
  try {
    await page.waitForSelector('#health-nodes li:nth-child(2)', { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-chart="sockets"] polyline').length === 2);
    await shot('health');
    await accessible('health');
  } finally {
    await second.stop();
  }
});

test('a token that may not publish gets no append form', async () => {
  await page.click('#sign-out');
  await page.fill('[data-test="token-input"]', token(T, 'u-viewer'));
  await page.click('[data-test="sign-in"]');
  await page.waitForSelector('#who-user:has-text("u-viewer")');
  await tab('live');
  await page.waitForSelector('#live-status.live');
  assert.equal(await page.isVisible('[data-test="append-submit"]'), false);
  assert.deepEqual(seen.pageErrors, [], 'uncaught page errors');
  assert.deepEqual(seen.consoleErrors.filter((text) => /unhandled rejection/.test(text)), [], 'unhandled rejections');
});
