// A server's life around its store: it waits for PostgreSQL at start-up
// (and says why), refuses to share an embedded store with another process,
// and at SIGTERM announces who leaves before it lets go of the database.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { useFixture } from './lib/fixture.mjs';
import { binPath, JWT_SECRET, startServer } from './lib/server.mjs';
import { tenant } from './lib/http.mjs';
import { reader } from './lib/token.mjs';
import { waitUntil } from './lib/client.mjs';
import { PgProxy } from './lib/proxy.mjs';

const f = useFixture({ server: false });

/** Spawns `eventfeed serve` and records its stderr, its stdout and its exit. */
function spawnServer(env) {
  const p = { stderr: '', listening: false, exit: null };
  const childEnv = { ...process.env, EVENTFEED_ADDR: '127.0.0.1:0', EVENTFEED_JWT_SECRET: JWT_SECRET, NO_COLOR: '1', RUST_LOG: 'info', ...env };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  p.proc = spawn(binPath(), ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  p.proc.stderr.on('data', (c) => (p.stderr += c));
  readline.createInterface({ input: p.proc.stdout }).on('line', (l) => (p.listening ||= /^listening on /.test(l)));
  p.exited = new Promise((res) => p.proc.on('exit', (code, signal) => res((p.exit = { code, signal }))));
  return p;
}

async function stop(p) {
  if (!p.exit) p.proc.kill('SIGKILL');
  await p.exited;
}

test(
  '5. start-up waits for PostgreSQL, naming the cause, and stops at once on what waiting cannot fix',
  f.run(async (t) => {
    const proxy = await new PgProxy().start();
    await proxy.refuse();
    const refused = spawnServer({ DATABASE_URL: proxy.url(f.db.name) });
    const noDb = spawnServer({ DATABASE_URL: f.db.url.replace(f.db.name, `${f.db.name}_missing`) });
    try {
      await waitUntil(() => /connection refused/i.test(refused.stderr) || refused.exit, 15_000, 'a log line naming the refusal');
      await waitUntil(() => /does not exist/.test(noDb.stderr) || noDb.exit, 15_000, 'a log line naming the missing database');
      await new Promise((res) => setTimeout(res, 3000));
      assert.equal(refused.exit, null, `still waiting after a refused port: ${refused.stderr}`);
      assert.equal(noDb.exit, null, `still waiting for the database to exist: ${noDb.stderr}`);
      const t0 = Date.now();
      await proxy.allow();
      await waitUntil(() => refused.listening, 20_000, 'listening once PostgreSQL answers');
      t.diagnostic(`listening ${Date.now() - t0} ms after PostgreSQL answered; attempts logged: ${refused.stderr.match(/cannot connect to PostgreSQL/g)?.length}`);

      // A role that does not exist: no amount of waiting helps.
      const badUser = spawnServer({ DATABASE_URL: f.db.url.replace('postgres@', 'no_such_role_x@') });
      const exit = await Promise.race([badUser.exited, new Promise((res) => setTimeout(() => res('still running'), 10_000))]);
      await stop(badUser);
      assert.deepEqual(exit, { code: 1, signal: null }, `exits at once: ${badUser.stderr}`);
      const last = badUser.stderr.trim().split('\n').at(-1);
      assert.match(last, /^eventfeed: cannot connect to DATABASE_URL: .*no_such_role_x/);
      const message = /role "no_such_role_x" does not exist/g;
      assert.equal(last.match(message)?.length, 1, `PostgreSQL's text once: ${last}`);
    } finally {
      await stop(refused);
      await stop(noDb);
      await proxy.stop();
    }
  }),
);

test(
  '7. a second process on one embedded store refuses to start, in one line',
  f.run(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-lock-'));
    const file = path.join(dir, 'store.db');
    const first = await startServer({ databaseUrl: undefined, env: { EVENTFEED_DATA_FILE: file }, name: 'first' });
    try {
      const second = spawnServer({ DATABASE_URL: undefined, EVENTFEED_DATA_FILE: file });
      const exit = await Promise.race([second.exited, new Promise((res) => setTimeout(() => res('still running'), 15_000))]);
      await stop(second);
      assert.deepEqual(exit, { code: 1, signal: null }, `the second process exits: ${second.stderr}`);
      const lines = second.stderr.trim().split('\n').filter((l) => /^eventfeed: /.test(l));
      assert.equal(lines.length, 1, second.stderr);
      assert.match(lines[0], /in use by another eventfeed process/);
      assert.equal(second.listening, false);
    } finally {
      await first.stop();
    }
    // Once the first is gone, the store opens again.
    const again = await startServer({ databaseUrl: undefined, env: { EVENTFEED_DATA_FILE: file }, name: 'again' });
    await again.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }),
);

test(
  '6. SIGTERM with many sockets: user:offline reaches the other node for every user who left, once the grace has passed',
  f.run(async (t) => {
    const env = { EVENTFEED_PRESENCE_GRACE: '1s' };
    const A = await f.start({ env });
    const B = await f.start({ env });
    const T = tenant('s6');
    const watcher = await f.connect(B, { token: reader(T, 'u-watch'), label: 'watcher on B' });
    const users = Array.from({ length: 40 }, (_, i) => `u${i}`);
    // Two sockets each on A; and a few users who also stay on B.
    for (const u of users) for (let k = 0; k < 2; k++) await f.connect(A, { token: reader(T, u), label: `${u}#${k} on A` });
    const staying = ['s1', 's2', 's3'];
    for (const u of staying) {
      await f.connect(A, { token: reader(T, u), label: `${u} on A` });
      await f.connect(B, { token: reader(T, u), label: `${u} on B` });
    }
    await waitUntil(async () => (await watcher.ack('presence:list')).users.length === users.length + staying.length + 1, 15_000, 'everyone online');

    const t0 = Date.now();
    const exit = await A.stop(15_000);
    const offline = () => new Set(watcher.got('user:offline').map((p) => p.userId));
    await waitUntil(() => users.every((u) => offline().has(u)), 10_000, () => `user:offline for all ${users.length} users (got ${offline().size})`);
    t.diagnostic(`A stopped in ${Date.now() - t0} ms; user:offline for ${offline().size} users`);
    assert.deepEqual(exit, { code: 0, signal: null }, 'A exits cleanly');
    for (const u of staying) assert.ok(!offline().has(u), `no user:offline for ${u}, still on B`);
    const noisy = A.grep(/presence exchange|closed pool|pool closed/i);
    assert.deepEqual(noisy, [], 'no presence work after the pools closed');
  }),
);
