// A flooding client in its own process, so that its event loop (hundreds of
// thousands of emits and acks) does not delay the test process's other sockets,
// whose latency is what the flood test measures.
//
// Parent -> child (IPC): { url, token, burst, rate, maxMs }
// Child -> parent: { phase: 'connected' } | { phase: 'burst', acks } | { phase: 'done', ...counts }

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';

const self = fileURLToPath(import.meta.url);

/** Start the flooder; resolves with a handle once its socket is connected. */
export function startFlooder({ url, token }) {
  const child = fork(self, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages = [];
  const waiters = [];
  child.on('message', (m) => {
    messages.push(m);
    for (const w of [...waiters]) w();
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
    for (const w of [...waiters]) w();
  });
  const next = (phase, timeoutMs) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = messages.find((x) => x.phase === phase || x.phase === 'error');
        if (m) {
          done();
          return m.phase === 'error' ? reject(new Error(`flooder: ${m.message}`)) : resolve(m);
        }
        if (exited) {
          done();
          reject(new Error(`flooder exited before "${phase}"`));
        }
      };
      const t = setTimeout(() => {
        done();
        reject(new Error(`flooder: no "${phase}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        const i = waiters.indexOf(check);
        if (i >= 0) waiters.splice(i, 1);
      };
      waiters.push(check);
      check();
    });
  child.send({ url, token });
  return next('connected', 15_000).then(() => ({
    /** Send `n` acked events at once; resolves with the acks. */
    burst(n) {
      child.send({ cmd: 'burst', n });
      return next('burst', 30_000);
    },
    /** Emit `perTick` acked events every 5 ms until disconnected or `maxMs`; resolves with counts. */
    flood(perTick, maxMs) {
      child.send({ cmd: 'flood', perTick, maxMs });
      return next('done', maxMs + 15_000);
    },
    stop() {
      if (!exited) child.kill('SIGKILL');
    },
  }));
}

if (process.argv[2] === '--child') {
  let socket;
  const EVENT = ['feed:subscribe', { types: ['flood:*'] }];
  process.on('message', (m) => {
    if (m.url) {
      socket = io(m.url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: m.token } });
      socket.on('connect', () => process.send({ phase: 'connected' }));
      socket.on('connect_error', (e) => process.send({ phase: 'error', message: `connect_error: ${e.message}` }));
    } else if (m.cmd === 'burst') {
      Promise.all(
        Array.from({ length: m.n }, () =>
          socket
            .timeout(20_000)
            .emitWithAck(...EVENT)
            .catch((e) => ({ timeout: e.message })),
        ),
      ).then((acks) => process.send({ phase: 'burst', acks, connected: socket.connected }));
    } else if (m.cmd === 'flood') {
      const counts = { sent: 0, ok: 0, limited: 0, other: 0, disconnectReason: null, ms: 0 };
      const start = Date.now();
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearInterval(pump);
        counts.ms = Date.now() - start;
        process.send({ phase: 'done', ...counts }, () => process.exit(0));
      };
      socket.on('disconnect', (reason) => {
        counts.disconnectReason = reason;
        finish();
      });
      const pump = setInterval(() => {
        if (Date.now() - start > m.maxMs) return finish();
        if (!socket.connected) return;
        for (let i = 0; i < m.perTick; i++) {
          socket.emit(...EVENT, (a) => {
            if (a?.ok === true) counts.ok++;
            else if (a?.error?.code === 'rate_limited') counts.limited++;
            else counts.other++;
          });
          counts.sent++;
        }
      }, 5);
    }
  });
}
