// The event map `eventfeed types typescript` prints from the type catalog
// (examples/schemas) types a feed: tsc --strict accepts a correct use and
// refuses each wrong one, at its own line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const bin = process.env.EVENTFEED_BIN || path.join(root, 'target', 'debug', 'eventfeed');
const tsc = path.join(here, '..', 'node_modules', 'typescript', 'bin', 'tsc');

const events = execFileSync(bin, ['types', 'typescript', '--schemas', path.join(root, 'examples', 'schemas')], {
  encoding: 'utf8',
  env: { ...process.env, EVENTFEED_SCHEMAS: undefined },
});

/** Type-checks `source` beside the printed map; returns tsc's status and output. */
function typecheck(source) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ef-types-'));
  try {
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(path.join(dir, 'events.ts'), events);
    writeFileSync(path.join(dir, 'use.ts'), source);
    const compilerOptions = {
      strict: true,
      noEmit: true,
      target: 'es2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      lib: ['es2022', 'dom'],
      paths: { 'eventfeed-client': [path.join(here, '..', 'index.d.ts')] },
    };
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts'] }));
    const run = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    return { status: run.status, output: run.stdout + run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const header = `import { EventFeed } from 'eventfeed-client';
import type { Events } from './events.js';
const feed = new EventFeed<Events>('http://127.0.0.1:3000', { token: 't' });
`;

test('a correct use of the printed event map type-checks', () => {
  const { status, output } = typecheck(`${header}
feed.on('invoice:paid', (e) => {
  const amount: number = e.data.amount;
  const currency: string | undefined = e.data.currency;
  console.log(amount, currency, e.cursor);
});
feed.on('invoice:sent', (e) => console.log(e.data.to.toUpperCase()));
void feed.append({ stream: 'invoice-42', type: 'invoice:created', data: { amount: 1200, currency: 'EUR' } });
void feed.append({ stream: 'invoice-42', type: 'invoice:paid', data: { amount: 1200, invoiceNumber: 'INV-42' } });
`);
  assert.equal(status, 0, output);
});

test('each wrong use of the printed event map is refused at its line', () => {
  const wrong = [
    "void feed.append({ stream: 'i', type: 'invoice:paid', data: { amount: '12' } });",
    "void feed.append({ stream: 'i', type: 'invoice:created', data: { currency: 'EUR' } });",
    "void feed.append({ stream: 'i', type: 'invoice:paid', data: { amount: 1, note: 'x' } });",
    "void feed.append({ stream: 'i', type: 'invoice:voided', data: {} });",
    "feed.on('invoice:paid', (e) => { const s: string = e.data.amount; console.log(s); });",
    "feed.on('invoice:sent', (e) => console.log(e.data.amount));",
  ];
  const { status, output } = typecheck(header + wrong.join('\n') + '\n');
  assert.notEqual(status, 0, output);
  assert.doesNotMatch(output, /use\.ts\([1-3],/, 'the header itself type-checks');
  const firstLine = header.split('\n').length;
  wrong.forEach((line, i) => {
    assert.match(output, new RegExp(`use\\.ts\\(${firstLine + i},`), `line ${firstLine + i} is refused: ${line}\n${output}`);
  });
});
