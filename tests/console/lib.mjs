// The real parts the console tests drive: a PostgreSQL database of their own,
// `eventfeed serve` processes on it, tokens, the HTTP API and socket.io-client.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { io } from 'socket.io-client';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const SECRET = 'console-test-secret-' + 'x'.repeat(20);
const PG = (process.env.EVENTFEED_E2E_PG || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');

/** A fresh database, dropped by `drop()`; `sql()` runs one statement in it. */
export async function createDatabase() {
  const name = `ef_console_${crypto.randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = `${PG}/${name}`;
  const sql = async (text, params) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  return { name, url, sql, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function admin(sql) {
  const client = new pg.Client({ connectionString: `${PG}/postgres` });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Starts `eventfeed serve` on port 0; resolves once it prints its address. */
export function startServer(databaseUrl, env = {}) {
  const bin = process.env.EVENTFEED_BIN || path.join(repoRoot, 'target', 'debug', 'eventfeed');
  const proc = spawn(bin, ['serve'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, EVENTFEED_ADDR: '127.0.0.1:0', EVENTFEED_JWT_SECRET: SECRET, EVENTFEED_DRAIN: '0', RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (chunk) => {
    log = (log + chunk).slice(-20000);
  });
  return new Promise((resolve, reject) => {
    const exited = () => reject(new Error(`eventfeed exited before listening:\n${log}`));
    proc.once('exit', exited);
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      const match = /listening on (\S+):(\d+)/.exec(line);
      if (!match) return;
      proc.off('exit', exited);
      const url = `http://127.0.0.1:${match[2]}`;
      const stop = () => new Promise((done) => (proc.exitCode !== null ? done() : (proc.once('exit', done), proc.kill('SIGTERM'))));
      resolve({ url, stop, log: () => log });
    });
  });
}

/** An HS256 JWT for `tenant`/`sub`, valid for an hour. */
export function token(tenant, sub, { name = sub, roles = [] } = {}) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = { sub, name, roles, tenant_id: tenant, exp: Math.floor(Date.now() / 1000) + 3600 };
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${crypto.createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

/** Calls the HTTP API; throws on an error answer. */
export async function call(server, tok, method, pathAndQuery, body) {
  const headers = { Authorization: `Bearer ${tok}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(server.url + pathAndQuery, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${pathAndQuery}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Appends events in one request; returns the stored envelopes. */
export async function append(server, tok, ...events) {
  return (await call(server, tok, 'POST', '/api/events', { events })).events;
}

/** Every page of an audit query, in order. */
export async function auditAll(server, tok, params) {
  const out = [];
  let after = '0';
  for (;;) {
    const page = await call(server, tok, 'GET', `/api/audit?${new URLSearchParams({ ...params, after, limit: '1000' })}`);
    out.push(...page.events);
    after = page.cursor;
    if (!page.hasMore) return out;
  }
}

/** A connected socket.io-client socket (`namespace` defaults to `/`). */
export function connectSocket(server, tok, namespace = '/') {
  const socket = io(server.url + namespace, { auth: { token: tok }, transports: ['websocket'], reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => reject(error));
  });
}

/** Polls `probe` until it returns a truthy value; fails after `ms` with `what`. */
export async function eventually(what, probe, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100)); // poll again: the condition is checked, not the time
  }
}
