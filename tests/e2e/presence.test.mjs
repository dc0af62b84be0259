// Presence across two nodes: a reconnect within the grace announces nothing,
// a node that dies without a goodbye has its users leave, diffs are
// coalesced and net, large tenants get the count only, and no client can
// make the server announce anything about another user.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture } from './lib/fixture.mjs';
import { tenant } from './lib/http.mjs';
import { reader } from './lib/token.mjs';
import { waitUntil } from './lib/client.mjs';

const GRACE_MS = 2_000;
const f = useFixture({ server: false });
const env = { EVENTFEED_PRESENCE_GRACE: `${GRACE_MS}ms`, EVENTFEED_PRESENCE_LIST_MAX: '5' };

/** Waits until `client` has had no `presence:diff` for `quietMs`. */
async function quiet(client, quietMs = 2_500) {
  await waitUntil(() => {
    const last = client.all.filter((m) => m.name === 'presence:diff').at(-1);
    return !last || Date.now() - last.at >= quietMs;
  }, 20_000, 'presence to settle');
}

/** Everything a client heard about `user`: diffs naming it and user:* events. */
function heardOf(client, user) {
  return client.all.filter(
    ({ name, args: [p] }) =>
      (name === 'presence:diff' && ((p.joins ?? []).some((j) => j.userId === user) || (p.leaves ?? []).includes(user))) ||
      ((name === 'user:online' || name === 'user:offline') && p.userId === user),
  );
}

test(
  'P1. a user who reconnects to the other node within the grace is announced neither offline nor online again',
  f.run(async () => {
    const A = await f.start({ env });
    const B = await f.start({ env });
    const T = tenant('p1');
    const watcher = await f.connect(A, { token: reader(T, 'watch'), label: 'watcher on A' });
    const first = await f.connect(B, { token: reader(T, 'mover', 'Mo'), label: 'mover on B' });
    const online = await watcher.waitForEvent('user:online', (p) => p.userId === 'mover', 10_000);
    assert.equal(online.username, 'Mo');
    const diff = watcher.got('presence:diff').find((d) => (d.joins ?? []).some((j) => j.userId === 'mover'));
    assert.deepEqual(diff.joins.find((j) => j.userId === 'mover'), { userId: 'mover', username: 'Mo' });
    await quiet(watcher);
    const before = watcher.all.length;

    first.close();
    await f.connect(A, { token: reader(T, 'mover', 'Mo'), label: 'mover back on A' });
    // Past the grace, with time for the nodes to exchange what they saw.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 3_000)); // the grace is the behaviour under test
    const heard = heardOf({ all: watcher.all.slice(before) }, 'mover');
    assert.deepEqual(heard, [], 'nothing said about the user who moved');
    const list = await watcher.ack('presence:list');
    assert.deepEqual(list.users.find((u) => u.userId === 'mover'), { userId: 'mover', username: 'Mo', connections: 1 });
  }),
);

test(
  'P2. a node killed without a goodbye: its users leave within 15 s of its last heartbeat',
  f.run(async (t) => {
    const A = await f.start({ env });
    const B = await f.start({ env });
    const T = tenant('p2');
    const watcher = await f.connect(A, { token: reader(T, 'watch'), label: 'watcher on A' });
    for (const u of ['k1', 'k2']) await f.connect(B, { token: reader(T, u), label: `${u} on B` });
    await waitUntil(async () => (await watcher.ack('presence:list')).users.length === 3, 10_000, 'both users listed on A');

    const killed = Date.now();
    await B.kill();
    await waitUntil(async () => (await watcher.ack('presence:list')).users.length === 1, 15_000, 'the killed node dropped');
    const dropped = Date.now() - killed;
    const gone = () => new Set(watcher.got('user:offline').map((p) => p.userId));
    await waitUntil(() => gone().has('k1') && gone().has('k2'), GRACE_MS + 5_000, 'user:offline for both');
    t.diagnostic(`dropped from the list ${dropped} ms after the kill; user:offline after ${Date.now() - killed} ms`);
  }),
);

test(
  'P3. diffs come at most once a second, net; above the list limit only the count goes out',
  f.run(async () => {
    const A = await f.start({ env });
    const B = await f.start({ env });
    const T = tenant('p3');
    const watcher = await f.connect(A, { token: reader(T, 'watch'), label: 'watcher on A' });
    await watcher.waitForEvent('presence:diff', (d) => (d.joins ?? []).some((j) => j.userId === 'watch'), 10_000);
    // What came after the watcher's own join (by place: a timestamp may
    // share its millisecond).
    const [t0, seen] = [Date.now(), watcher.all.length];
    // Four users at once, two on each node: a tenant of five, at the limit.
    const users = ['a1', 'a2', 'b1', 'b2'];
    for (const u of users) await f.connect(u.startsWith('a') ? A : B, { token: reader(T, u), label: u });
    await waitUntil(() => users.every((u) => watcher.got('user:online').some((p) => p.userId === u)), 10_000, 'user:online for all four');
    // A visit of a moment: announced not at all, or online then offline once
    // the grace has passed; never offline alone, never twice.
    const flash = await f.connect(B, { token: reader(T, 'flash'), label: 'flash' });
    flash.close();
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 2_000)); // the grace is the behaviour under test
    await quiet(watcher);
    const diffs = watcher.all.slice(seen).filter((m) => m.name === 'presence:diff');
    const seconds = (Date.now() - t0) / 1000;
    assert.ok(diffs.length <= Math.ceil(seconds) + 1, `${diffs.length} diffs in ${seconds} s`);
    const joined = diffs.flatMap(({ args: [d] }) => (d.joins ?? []).map((j) => j.userId));
    assert.deepEqual(joined.filter((u) => u !== 'flash').sort(), users, 'each user joined once, in some diff');
    assert.equal(diffs.at(-1).args[0].online, 5);
    const said = (name) => watcher.got(name).filter((p) => p.userId === 'flash').length;
    assert.ok(said('user:online') <= 1 && said('user:offline') === said('user:online'), `flash: ${JSON.stringify(heardOf(watcher, 'flash'))}`);

    // A sixth user: the tenant is over the limit, so only the count.
    const over = watcher.all.length;
    await f.connect(B, { token: reader(T, 'c1'), label: 'c1' });
    await waitUntil(() => watcher.all.slice(over).some((m) => m.name === 'presence:diff'), 10_000, 'a diff for the sixth user');
    const big = watcher.all.slice(over).find((m) => m.name === 'presence:diff').args[0];
    assert.ok(big.online >= 6 && big.joins === undefined && big.leaves === undefined, JSON.stringify(big));
    assert.ok(!watcher.got('user:online').some((p) => p.userId === 'c1'), 'no user:online above the limit');
    const names = (await watcher.ack('presence:list')).users.map((u) => u.userId);
    assert.ok(names.includes('c1'), 'presence:list still names everyone');
  }),
);

test(
  'P4. a client cannot make the server announce anything about another user',
  f.run(async () => {
    const A = await f.start({ env });
    const B = await f.start({ env });
    const T = tenant('p4');
    const watcher = await f.connect(A, { token: reader(T, 'watch'), label: 'watcher on A' });
    const mallory = await f.connect(B, { token: reader(T, 'mallory'), label: 'mallory on B' });
    await watcher.waitForEvent('user:online', (p) => p.userId === 'mallory', 10_000);
    for (const event of ['user:online', 'user:offline', 'presence:diff', 'presence:join']) {
      mallory.emit(event, { userId: 'victim', username: 'Victim', online: 99, joins: [{ userId: 'victim' }] });
    }
    mallory.emit('user:typing', { resourceId: 'r1', resourceType: 'invoice', userId: 'victim', username: 'Victim' });
    const typing = await watcher.waitForEvent('user:typing', () => true, 10_000);
    assert.equal(typing.userId, 'mallory', 'a typing relay names its sender, whatever the payload says');
    assert.equal(typing.username, 'mallory');
    await quiet(watcher);
    assert.deepEqual(heardOf(watcher, 'victim'), [], 'nothing about a user who never connected');
    assert.ok(!(await watcher.ack('presence:list')).users.some((u) => u.userId === 'victim'));
  }),
);
