// An HTTP proxy in front of the server that can refuse Socket.IO (as a
// corporate proxy that blocks WebSockets and unknown long-polls does) while
// passing the rest of the API, and whose target can change (a restarted
// server comes back on a new port behind the same URL).

import http from 'node:http';
import net from 'node:net';

export async function startProxy(target) {
  let upstream = new URL(target);
  let blocked = false;
  let delayMs = 0; // holds each Socket.IO request back, widening the handshake's window
  const socketIo = new Set(); // client connections carrying Socket.IO, cut when blocking starts

  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/socket.io/')) {
      if (blocked) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('Socket.IO is blocked here');
        return;
      }
      socketIo.add(req.socket);
      req.socket.once('close', () => socketIo.delete(req.socket));
      if (delayMs) {
        setTimeout(() => forward(req, res), delayMs);
        return;
      }
    }
    forward(req, res);
  });

  function forward(req, res) {
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  }

  server.on('upgrade', (req, client, head) => {
    if (blocked) {
      client.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n');
      return;
    }
    socketIo.add(client);
    const up = net.connect(Number(upstream.port), upstream.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client).pipe(up);
    });
    const cut = () => {
      up.destroy();
      client.destroy();
      socketIo.delete(client);
    };
    up.on('error', cut);
    client.on('error', cut);
    client.on('close', cut);
  });

  // Every connection, upgraded ones included, so that close() ends them all.
  const all = new Set();
  server.on('connection', (c) => {
    all.add(c);
    c.on('close', () => all.delete(c));
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    retarget(url) {
      upstream = new URL(url);
    },
    /** Refuse Socket.IO from now on, and cut the connections that carry it. */
    block() {
      blocked = true;
      for (const s of socketIo) s.destroy();
      socketIo.clear();
    },
    /** Let Socket.IO through again, each of its requests `slowMs` late. */
    unblock(slowMs = 0) {
      blocked = false;
      delayMs = slowMs;
    },
    close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const c of all) c.destroy();
      return closed;
    },
  };
}
