// The type catalog over Socket.IO: `event:append` is checked against the
// type's schema like an HTTP append, and its refusal acknowledges the same
// `invalid` error with the failing `path` and `rule`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useFixture } from './lib/fixture.mjs';
import { repoRoot } from './lib/server.mjs';
import { tenant, uuid } from './lib/http.mjs';
import { publisher, reader } from './lib/token.mjs';
import { assertErrorAck } from './lib/check.mjs';

const f = useFixture({ env: { EVENTFEED_SCHEMAS: path.join(repoRoot, 'examples', 'schemas') } });

test(
  'event:append refuses data that breaks its schema with path and rule, and stores nothing of it',
  f.run(async () => {
    const T = tenant('types');
    const pub = await f.connect(f.server, { token: publisher(T), label: 'publisher' });
    const watcher = await f.connect(f.server, { token: reader(T, 'u-watch'), label: 'watcher' });
    const cases = [
      [{ amount: -1 }, '/amount', 'minimum'],
      [{ amount: '12' }, '/amount', 'type'],
      [{ invoiceNumber: 'INV-1' }, '/amount', 'required'],
      [{ amount: 1, currency: 'euro' }, '/currency', 'pattern'],
      [{ amount: 1, note: 'x' }, '', 'additionalProperties'],
    ];
    for (const [data, where, rule] of cases) {
      const ack = await pub.ack('event:append', { stream: 'invoice-42', type: 'invoice:paid', data });
      assertErrorAck(ack, 'invalid', true);
      assert.equal(ack.error.path, where, JSON.stringify(ack));
      assert.equal(ack.error.rule, rule, JSON.stringify(ack));
      assert.match(ack.error.message, /invoice:paid/);
    }
    const id = uuid();
    const ok = await pub.ack('event:append', { id, stream: 'invoice-42', type: 'invoice:paid', data: { amount: 1200 } });
    assert.equal(ok.ok, true, JSON.stringify(ok));
    await watcher.waitForEvent('invoice:paid', (e) => e.id === id);
    assert.deepEqual(watcher.envelopes.map((e) => e.id), [id], 'only the conforming event was stored');
  }),
);
