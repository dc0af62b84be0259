// Per-file fixture: one fresh database, the servers started on it, and the
// sockets opened by the tests; everything is torn down in `after`, and a failing
// test prints the servers' stderr.

import { before, after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDatabase } from './db.mjs';
import { startServer } from './server.mjs';
import { connect, connectError } from './client.mjs';

const LOG_DIR = process.env.EVENTFEED_E2E_LOG_DIR || path.join(os.tmpdir(), 'eventfeed-e2e');

/**
 * @param {object} o
 * @param {boolean} [o.server=true]  start one server in `before` (ctx.server)
 * @param {object}  [o.env]          extra env for that server
 */
export function useFixture({ server = true, env = {} } = {}) {
  const ctx = {
    db: null,
    server: null,
    servers: [],
    clients: [],
    /** Start (and track) another server on the file's database. */
    async start(opts = {}) {
      const s = await startServer({ databaseUrl: ctx.db.url, name: `server-${ctx.servers.length + 1}`, ...opts });
      ctx.servers.push(s);
      return s;
    },
    /** Connect (and track) a socket. */
    async connect(srv, o) {
      const c = await connect(srv, o);
      ctx.clients.push(c);
      return c;
    },
    connectError,
    /** Wrap a test body: on failure, print every server's stderr tail and save full logs. */
    run(fn) {
      return async (t) => {
        try {
          await fn(t);
        } catch (err) {
          const dumps = ctx.servers.flatMap((s) => s.tail(8000).split('\n').slice(-80));
          try {
            fs.mkdirSync(LOG_DIR, { recursive: true });
            for (const s of ctx.servers) {
              const f = path.join(LOG_DIR, `${slug(t.name)}-${s.name}-${s.pid}.log`);
              fs.writeFileSync(f, s.logs());
              t.diagnostic(`full stderr of ${s.name}: ${f}`);
            }
          } catch {}
          for (const line of dumps) t.diagnostic(line);
          throw err;
        } finally {
          for (const c of ctx.clients.splice(0)) c.close();
        }
      };
    },
  };

  before(async () => {
    ctx.db = await createDatabase();
    if (server) ctx.server = await ctx.start({ env });
  });

  after(async () => {
    for (const c of ctx.clients.splice(0)) c.close();
    await Promise.all(ctx.servers.map((s) => s.stop()));
    if (ctx.db) await ctx.db.drop();
  });

  return ctx;
}

function slug(s) {
  return String(s)
    .replace(/[^A-Za-z0-9]+/g, '-')
    .slice(0, 60);
}
