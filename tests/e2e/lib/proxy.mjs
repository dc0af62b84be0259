// An in-process TCP proxy between the servers and PostgreSQL, to make network
// faults without touching the shared cluster: blackhole the established
// connections (they stay open and swallow everything, as a half-open
// connection does), reset them (RST), or refuse new ones (the port closes).

import net from 'node:net';

export class PgProxy {
  constructor({ host = '127.0.0.1', port = 5432 } = {}) {
    this.target = { host, port };
    this.port = null;
    this.pairs = new Set();
    this.server = null;
  }

  /** Listens on 127.0.0.1 (a free port the first time, the same one after `refuse`). */
  async start() {
    this.server = net.createServer((client) => this._pair(client));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.port = this.server.address().port;
    return this;
  }

  /** The URL of `database` through the proxy. */
  url(database) {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  _pair(client) {
    const upstream = net.connect(this.target);
    const pair = { client, upstream, blackholed: false };
    this.pairs.add(pair);
    const forward = (from, to) =>
      from.on('data', (chunk) => {
        if (!pair.blackholed) to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }

  /** Every established connection goes silent both ways; new ones pass. */
  blackhole() {
    for (const p of this.pairs) p.blackholed = true;
    return this.pairs.size;
  }

  /** Every established connection is reset (`Connection reset by peer`). */
  reset() {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) {
      p.client.resetAndDestroy();
      p.upstream.destroy();
    }
    return n;
  }

  /** Resets every connection and closes the port: connects are refused. */
  async refuse() {
    const closed = new Promise((resolve) => this.server.close(() => resolve()));
    this.reset();
    await closed;
  }

  /** Opens the port again after `refuse`. */
  async allow() {
    await this.start();
  }

  async stop() {
    if (this.server?.listening) await this.refuse();
    else this.reset();
  }
}
