// Start and stop a real `eventfeed serve` process.
//
// The server is told to bind 127.0.0.1:0 and prints `listening on 127.0.0.1:<port>`
// on stdout once it accepts connections; we wait for that line, never for a timer.
// stderr (the logs) is kept in a bounded buffer so a failing test can show it.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');

export const JWT_SECRET = 'e2e-secret-' + 'x'.repeat(24);

const MAX_LOG = 4 * 1024 * 1024; // keep the last 4 MiB of stderr per process
const live = new Set();

export function binPath() {
  return process.env.EVENTFEED_BIN || path.join(repoRoot, 'target', 'debug', 'eventfeed');
}

/**
 * Start a server on `databaseUrl`. Resolves once it prints its port.
 * @returns {Promise<Server>}
 */
export async function startServer({
  databaseUrl,
  secret = JWT_SECRET,
  env = {},
  startTimeoutMs = 60_000,
  name = 'server',
} = {}) {
  const bin = binPath();
  if (!existsSync(bin)) {
    throw new Error(`eventfeed binary not found at ${bin} (build it with cargo build, or set EVENTFEED_BIN)`);
  }
  const childEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    EVENTFEED_ADDR: '127.0.0.1:0',
    EVENTFEED_JWT_SECRET: secret,
    // Stops at once; the drain has tests of its own.
    EVENTFEED_DRAIN: '0',
    RUST_LOG: process.env.EVENTFEED_E2E_RUST_LOG || process.env.RUST_LOG || 'info',
    NO_COLOR: '1',
    ...env,
  };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const proc = spawn(bin, ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new Server(proc, name);
  live.add(server);
  await server._waitListening(startTimeoutMs);
  return server;
}

export class Server {
  constructor(proc, name) {
    this.proc = proc;
    this.name = name;
    this.pid = proc.pid;
    this.port = null;
    this.url = null;
    this._log = [];
    this._logBytes = 0;
    this._stdout = [];
    /** signals this harness sent, so an unexpected shutdown can be told apart */
    this.signals = [];
    this.exited = false;
    this.exitInfo = null;
    this._exitPromise = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exited = true;
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve(this.exitInfo);
      });
    });
    proc.stderr.on('data', (chunk) => {
      this._log.push(chunk);
      this._logBytes += chunk.length;
      while (this._logBytes > MAX_LOG && this._log.length > 1) {
        this._logBytes -= this._log.shift().length;
      }
    });
  }

  _waitListening(timeoutMs) {
    return new Promise((resolve, reject) => {
      const rl = readline.createInterface({ input: this.proc.stdout });
      let done = false;
      const finish = (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          this.kill();
          reject(err);
        } else resolve();
      };
      const timer = setTimeout(
        () => finish(new Error(`${this.name}: no "listening on" line within ${timeoutMs} ms\n${this.tail()}`)),
        timeoutMs,
      );
      rl.on('line', (line) => {
        this._stdout.push(line);
        const m = /listening on (\S+):(\d+)\s*$/.exec(line);
        if (m && !this.port) {
          this.port = Number(m[2]);
          this.url = `http://127.0.0.1:${this.port}`;
          finish();
        }
      });
      this._exitPromise.then((info) =>
        finish(new Error(`${this.name} exited before listening (${JSON.stringify(info)})\n${this.tail()}`)),
      );
    });
  }

  /** The server's stderr so far (or its last `maxChars` characters). */
  logs(maxChars = Infinity) {
    const s = Buffer.concat(this._log).toString('utf8');
    return s.length > maxChars ? s.slice(s.length - maxChars) : s;
  }

  tail(maxChars = 6000) {
    const sent = this.signals.map((x) => `${x.signal} at ${new Date(x.at).toISOString()}`).join(', ') || 'none';
    return `----- ${this.name} (pid ${this.pid}) stderr, last ${maxChars} chars -----\n${this.logs(maxChars)}\n----- stdout -----\n${this._stdout.join('\n')}\n----- signals sent by the harness: ${sent}; exit: ${JSON.stringify(this.exitInfo)}`;
  }

  /** Log lines matching a regexp (for evidence in reports). */
  grep(re) {
    return this.logs()
      .split('\n')
      .filter((l) => re.test(l));
  }

  /** Graceful stop: SIGTERM, then SIGKILL if it does not exit in time. */
  async stop(timeoutMs = 10_000) {
    if (this.exited) return this.exitInfo;
    this._signal('SIGTERM');
    const t = setTimeout(() => this._signal('SIGKILL'), timeoutMs);
    const info = await this._exitPromise;
    clearTimeout(t);
    return info;
  }

  /** Hard kill (a crash). */
  async kill() {
    if (this.exited) return this.exitInfo;
    this._signal('SIGKILL');
    return this._exitPromise;
  }

  _signal(signal) {
    this.signals.push({ signal, at: Date.now() });
    this.proc.kill(signal);
  }

  waitExit() {
    return this._exitPromise;
  }
}

function killAll() {
  for (const s of live) {
    try {
      s.proc.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
