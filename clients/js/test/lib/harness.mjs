// Shared test helpers: the real server (started by the e2e suite's harness,
// so both suites start it one way), tokens, appends over HTTP, in-memory
// storage, and waiting on a condition without fixed sleeps.

import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { rmSync } from 'node:fs';
import { before, after } from 'node:test';
import { EventFeed } from '../../src/index.js';
import { startProxy } from './proxy.mjs';
import { startServer } from '../../../../tests/e2e/lib/server.mjs';
import { createDatabase } from '../../../../tests/e2e/lib/db.mjs';
import { mintToken } from '../../../../tests/e2e/lib/token.mjs';

export { mintToken, startServer };

/**
 * A store to run a test on: `{ name, env, cleanup, db? }`. PostgreSQL gets a
 * fresh database (dropped by cleanup); SQLite a fresh file.
 */
export async function makeStore(kind) {
  if (kind === 'postgres') {
    const db = await createDatabase('ef_client');
    return { name: kind, db, env: { DATABASE_URL: db.url }, cleanup: () => db.drop() };
  }
  const file = path.join(os.tmpdir(), `ef_client_${crypto.randomBytes(6).toString('hex')}.db`);
  const cleanup = async () => {
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
  };
  return { name: kind, env: { DATABASE_URL: undefined, EVENTFEED_DATA_FILE: file }, cleanup };
}

/** Starts a server on `store` (more env in `env`). */
export function serve(store, env = {}) {
  return startServer({ databaseUrl: store.env.DATABASE_URL, env: { ...store.env, ...env } });
}

export const tenant = () => `t-${crypto.randomBytes(4).toString('hex')}`;

export function reader(tenantId, sub = 'u-reader', expIn = 3600) {
  return mintToken({ sub, tenant: tenantId, name: sub, expIn });
}

export function publisher(tenantId, sub = 'u-pub') {
  return mintToken({ sub, tenant: tenantId, name: sub, roles: ['publisher'] });
}

/** Appends events over HTTP (one request each, so cursor order is call order). */
export async function append(url, token, ...events) {
  const stored = [];
  for (const e of events) {
    const res = await fetch(`${url}/api/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(e),
    });
    if (res.status !== 201) throw new Error(`append: HTTP ${res.status} ${await res.text()}`);
    stored.push(...(await res.json()).events);
  }
  return stored;
}

/** An event numbered `i`, so the receiver can check order and completeness. */
export const numbered = (i, type = 'item:added') => ({ stream: 'items', type, data: { i } });

/** A storage object kept in memory, shared by the feeds of one test. */
export function memoryStorage() {
  const map = new Map();
  return { getItem: (k) => (map.has(k) ? map.get(k) : null), setItem: (k, v) => void map.set(k, v), map };
}

/** Polls `check` every 20 ms until it is truthy; fails after `ms` with `what`. */
export async function until(check, what, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records every event a feed delivers to a `*` handler. */
export function record(feed) {
  const seen = [];
  feed.on('*', (e) => seen.push(e));
  return seen;
}

/** The `data.i` of each event, in delivery order. */
export const numbers = (events) => events.map((e) => e.data.i);

/** 0, 1, … n-1. */
export const range = (from, to) => Array.from({ length: to - from }, (_, k) => from + k);

/**
 * Appends numbered events one after another until stopped; `stop()` resolves
 * to how many were appended. Appends go straight to `url`, not through the
 * proxy the feed under test may be behind.
 */
export function appendLoop(url, token, { everyMs = 50, type } = {}) {
  let n = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      await append(url(), token, numbered(n, type));
      n += 1;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    return n;
  })();
  return {
    get count() {
      return n;
    },
    stop() {
      running = false;
      return done;
    },
  };
}

const opened = new Set();

/** A feed that `closeAll` closes, so a failed test does not leave it running. */
export function open(url, options) {
  const feed = new EventFeed(url, options);
  opened.add(feed);
  return feed;
}

export async function closeAll() {
  await Promise.all([...opened].map((f) => f.close()));
  opened.clear();
}

/**
 * A describe block's fixture: before its tests, a store of `kind`, a server on
 * it (unless `serve: false`) and, with `proxy: true`, a proxy in front of the
 * server; after them, everything closed. Tests read (and may replace)
 * `ctx.server`.
 */
export function useServer(kind, { serve: start = true, proxy = false } = {}) {
  const ctx = { store: null, server: null, proxy: null };
  before(async () => {
    ctx.store = await makeStore(kind);
    if (start) ctx.server = await serve(ctx.store);
    if (proxy) ctx.proxy = await startProxy(ctx.server.url);
  });
  after(async () => {
    await closeAll();
    await ctx.proxy?.close();
    await ctx.server?.stop();
    await ctx.store?.cleanup();
  });
  return ctx;
}
