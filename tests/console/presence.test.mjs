// GET /api/presence across two server processes on one database: a user
// connected on one node is listed by the other, on every namespace, for its
// own tenant only, and leaves both lists when it disconnects.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, connectSocket, createDatabase, eventually, startServer, token } from './lib.mjs';

const NAMESPACES = { EVENTFEED_NAMESPACES: '/,/dashboard' };
let db;
let A;
let B;

before(async () => {
  db = await createDatabase();
  A = await startServer(db.url, NAMESPACES);
  B = await startServer(db.url, NAMESPACES);
});

after(async () => {
  await Promise.all([A?.stop(), B?.stop()]);
  await db?.drop();
});

const users = async (server, tenant) => (await call(server, token(tenant, 'ops'), 'GET', '/api/presence')).users;
const entry = (list, id) => list.find((u) => u.userId === id);

test('a user connected on node A is listed by node B, on every namespace, and leaves when it disconnects', async () => {
  const vera = token('acme', 'u-vera', { name: 'Vera' });
  const onA = await connectSocket(A, vera);
  const seen = await eventually('node B to list u-vera', async () => entry(await users(B, 'acme'), 'u-vera'));
  assert.deepEqual(seen, { userId: 'u-vera', username: 'Vera', connections: 1 });

  // A second socket on B's other namespace, and another tenant's user on B.
  const onB = await connectSocket(B, vera, '/dashboard');
  const stranger = await connectSocket(B, token('globex', 'u-stranger'));
  await eventually('both nodes to count two connections', async () => {
    const [a, b] = await Promise.all([users(A, 'acme'), users(B, 'acme')]);
    return entry(a, 'u-vera')?.connections === 2 && entry(b, 'u-vera')?.connections === 2;
  });
  for (const server of [A, B]) {
    const list = await users(server, 'acme');
    assert.equal(entry(list, 'u-stranger'), undefined, 'another tenant is never listed');
  }
  assert.equal(entry(await users(A, 'globex'), 'u-stranger')?.connections, 1);

  onA.disconnect();
  onB.disconnect();
  await eventually('u-vera to leave both lists', async () => {
    const [a, b] = await Promise.all([users(A, 'acme'), users(B, 'acme')]);
    return !entry(a, 'u-vera') && !entry(b, 'u-vera');
  });
  stranger.disconnect();
});
