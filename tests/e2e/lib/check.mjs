// Assertions shared by the tests, with messages that say what went wrong.

import assert from 'node:assert/strict';

export const ENVELOPE_KEYS = [
  'actor',
  'audience',
  'cursor',
  'data',
  'id',
  'metadata',
  'stream',
  'tenantId',
  'timestamp',
  'type',
  'version',
].sort();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RFC3339_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const ERROR_CODES = ['invalid', 'invalid_cursor', 'unauthorized', 'forbidden', 'conflict', 'too_large', 'rate_limited', 'internal'];

/** The envelope (docs/protocol.md): exactly these fields, in these formats. */
export function assertEnvelope(e, expect = {}) {
  assert.ok(e && typeof e === 'object', `envelope is an object: ${JSON.stringify(e)}`);
  assert.deepEqual(Object.keys(e).sort(), ENVELOPE_KEYS, `envelope fields of ${JSON.stringify(e)}`);
  assert.match(e.id, UUID, 'id is a UUID');
  assert.equal(typeof e.cursor, 'string', 'cursor is a string');
  assert.ok(e.cursor.length > 0, 'cursor is not empty');
  assert.ok(Number.isInteger(e.version) && e.version >= 1, `version is a positive integer: ${e.version}`);
  assert.match(e.timestamp, RFC3339_MS_UTC, 'timestamp is RFC 3339, UTC, milliseconds');
  assert.ok(!Number.isNaN(Date.parse(e.timestamp)), 'timestamp parses');
  assert.ok(e.data && typeof e.data === 'object' && !Array.isArray(e.data), 'data is an object');
  assert.ok(e.audience === null || (typeof e.audience === 'object' && Array.isArray(e.audience.users)), 'audience is null or {users}');
  assert.ok(e.metadata === null || (typeof e.metadata === 'object' && !Array.isArray(e.metadata)), 'metadata is null or an object');
  for (const [k, v] of Object.entries(expect)) {
    assert.deepEqual(e[k], v, `envelope.${k}`);
  }
}

/**
 * `got` (ids in arrival order) must equal `want` (ids in cursor order):
 * every one exactly once, in the same order. The message names the first
 * difference, duplicates and missing ids, so a failure is evidence.
 */
export function assertSameSequence(got, want, what = 'events') {
  if (got.length === want.length && got.every((x, i) => x === want[i])) return;
  const seen = new Map();
  const dups = [];
  for (const id of got) {
    seen.set(id, (seen.get(id) || 0) + 1);
    if (seen.get(id) === 2) dups.push(id);
  }
  const wantSet = new Set(want);
  const missing = want.filter((id) => !seen.has(id));
  const extra = [...seen.keys()].filter((id) => !wantSet.has(id));
  let firstDiff = -1;
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    if (got[i] !== want[i]) {
      firstDiff = i;
      break;
    }
  }
  assert.fail(
    `${what}: received ${got.length}, expected ${want.length}; duplicates=${dups.length}${
      dups.length ? ` (e.g. ${dups.slice(0, 3).join(', ')})` : ''
    }; missing=${missing.length}${missing.length ? ` (e.g. ${missing.slice(0, 3).join(', ')})` : ''}; unexpected=${extra.length}${
      extra.length ? ` (e.g. ${extra.slice(0, 3).join(', ')})` : ''
    }; first difference at index ${firstDiff}: got ${got[firstDiff]} expected ${want[firstDiff]}`,
  );
}

/** Each writer's appends (awaited one after the other) must arrive in that writer's order. */
export function assertWriterOrder(receivedIds, writerResults) {
  const pos = new Map(receivedIds.map((id, i) => [id, i]));
  writerResults.forEach((ids, w) => {
    for (let i = 1; i < ids.length; i++) {
      assert.ok(
        pos.get(ids[i - 1]) < pos.get(ids[i]),
        `writer ${w}: its append #${i - 1} (${ids[i - 1]}) must arrive before its append #${i} (${ids[i]}), which committed after it`,
      );
    }
  });
}

/** `{ ok:false, error:{ code } }` with the given code (and a message string when `withMessage`). */
export function assertErrorAck(ack, code, withMessage = false) {
  assert.ok(ack && typeof ack === 'object', `ack is an object: ${JSON.stringify(ack)}`);
  assert.equal(ack.ok, false, `ack.ok is false: ${JSON.stringify(ack)}`);
  assert.ok(ack.error && typeof ack.error === 'object', `ack.error is an object: ${JSON.stringify(ack)}`);
  assert.equal(ack.error.code, code, `ack.error.code: ${JSON.stringify(ack)}`);
  if (withMessage) assert.equal(typeof ack.error.message, 'string', `ack.error.message is a string: ${JSON.stringify(ack)}`);
}

export function assertTimestamp(ts, what = 'timestamp') {
  assert.equal(typeof ts, 'string', `${what} is a string: ${JSON.stringify(ts)}`);
  assert.ok(!Number.isNaN(Date.parse(ts)), `${what} parses as a date: ${ts}`);
}
