// Builds dist/eventfeed.js, the browser build the server embeds and serves at
// /eventfeed.js (socket.io-client included, global `EventFeed`), and prints
// its gzipped size. With --check it builds in memory and fails if the
// committed file differs from the source, or if the build outgrew its budget.

import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'eventfeed.js');
const BUDGET_GZIP_BYTES = 25 * 1024;
const check = process.argv.includes('--check');

const result = await build({
  entryPoints: [path.join(root, 'src', 'browser.js')],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  write: false,
  logLevel: 'warning',
});
const code = result.outputFiles[0].contents;
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`dist/eventfeed.js: ${code.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET_GZIP_BYTES})`);

let failed = false;
if (gzipped >= BUDGET_GZIP_BYTES) {
  console.error('the browser build is over its gzipped size budget');
  failed = true;
}
if (check) {
  let committed = null;
  try {
    committed = readFileSync(out);
  } catch {}
  if (!committed || !committed.equals(Buffer.from(code))) {
    console.error('dist/eventfeed.js differs from its source: run `npm run build` in clients/js and commit it');
    failed = true;
  }
} else {
  writeFileSync(out, code);
}
process.exit(failed ? 1 : 0);
