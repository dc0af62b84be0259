// A fresh PostgreSQL database per test file, dropped at the end.

import crypto from 'node:crypto';
import pg from 'pg';

// Base URL of the cluster (no database name). Override with EVENTFEED_E2E_PG.
const BASE = (process.env.EVENTFEED_E2E_PG || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');

export async function createDatabase(prefix = 'ef_e2e') {
  const name = `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${BASE}/postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return new Database(name);
}

export class Database {
  constructor(name) {
    this.name = name;
    this.url = `${BASE}/${name}`;
    this.pool = new pg.Pool({ connectionString: this.url, max: 4, application_name: 'ef-e2e-test' });
    this.pool.on('error', () => {}); // a terminated idle client must not crash the test process
  }

  query(text, params) {
    return this.pool.query(text, params);
  }

  /** Append one event through the SQL API. Returns { cursor, version }. */
  async appendSql({ tenantId, stream, type, data = {} }) {
    const r = await this.pool.query(
      'SELECT * FROM eventfeed.append_event(tenant_id => $1, stream => $2, type => $3, data => $4::jsonb)',
      [tenantId, stream, type, JSON.stringify(data)],
    );
    const row = r.rows[0];
    return { cursor: row.cursor, version: Number(row.version) };
  }

  /** Backend pids of the server's LISTEN connection(s) on this database. */
  async listenerPids() {
    const r = await this.pool.query(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'eventfeed-listener' AND datname = $1`,
      [this.name],
    );
    return r.rows.map((x) => x.pid);
  }

  async drop() {
    await this.pool.end().catch(() => {});
    const admin = new pg.Client({ connectionString: `${BASE}/postgres` });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}
