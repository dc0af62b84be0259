// A TCP load balancer in the test process, as a deploy puts in front of the
// nodes: each new connection goes to the first node that accepts it, so a
// node that stops accepting sends its clients to the next one.

import net from 'node:net';

export class Balancer {
  /** @param {{url: string}[]} servers  in order of preference */
  constructor(servers) {
    this.targets = servers.map((s) => new URL(s.url));
    this.server = null;
    this.url = null;
    this.open = new Set();
  }

  async start() {
    this.server = net.createServer((client) => this._route(client, 0));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  /** Puts `server` first. */
  prefer(server) {
    const url = new URL(server.url);
    this.targets = [url, ...this.targets.filter((t) => t.port !== url.port)];
  }

  _route(client, i) {
    if (i >= this.targets.length) {
      client.destroy();
      return;
    }
    client.pause();
    const target = this.targets[i];
    const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
    upstream.once('error', () => {
      if (!upstream.connected) this._route(client, i + 1);
    });
    upstream.once('connect', () => {
      upstream.connected = true;
      this.open.add(client);
      client.pipe(upstream).pipe(client);
      client.resume();
      const end = () => {
        this.open.delete(client);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }

  async stop() {
    for (const c of this.open) c.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
