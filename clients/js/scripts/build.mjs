// Builds what the package ships besides its ES module source:
// - dist/eventfeed.js, the browser build the server embeds and serves at
//   /eventfeed.js (socket.io-client included; globals `EventFeed` and
//   `FeedError`), and prints its gzipped size;
// - dist/index.cjs and dist/react.cjs, the CommonJS builds (`require`), with
//   socket.io-client and react left to the app's own copies, and react.cjs
//   using index.cjs so both entry points share one EventFeed class.
// With --check it builds in memory and fails if a committed file differs
// from the source, or if the browser build outgrew its budget.

import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUDGET_GZIP_BYTES = 20 * 1024;
const check = process.argv.includes('--check');

/** In react.cjs, `./index.js` is the CommonJS build beside it, not a second copy. */
const shareIndex = {
  name: 'share-index',
  setup(b) {
    b.onResolve({ filter: /^\.\/index\.js$/ }, () => ({ path: './index.cjs', external: true }));
  },
};

const common = { bundle: true, write: false, logLevel: 'warning', legalComments: 'none' };
const outputs = [
  {
    file: 'eventfeed.js',
    options: { entryPoints: ['src/browser.js'], format: 'iife', platform: 'browser', target: 'es2020', minify: true },
  },
  {
    file: 'index.cjs',
    options: { entryPoints: ['src/index.js'], format: 'cjs', platform: 'neutral', target: 'es2022', external: ['socket.io-client'] },
  },
  {
    file: 'react.cjs',
    options: {
      entryPoints: ['src/react.js'],
      format: 'cjs',
      platform: 'neutral',
      target: 'es2022',
      external: ['react', 'socket.io-client'],
      plugins: [shareIndex],
    },
  },
];

let failed = false;
for (const { file, options } of outputs) {
  const entryPoints = options.entryPoints.map((e) => path.join(root, e));
  const result = await build({ ...common, ...options, entryPoints });
  const code = Buffer.from(result.outputFiles[0].contents);
  const out = path.join(root, 'dist', file);
  if (file === 'eventfeed.js') {
    const gzipped = gzipSync(code, { level: 9 }).length;
    console.log(`dist/${file}: ${code.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET_GZIP_BYTES})`);
    if (gzipped > BUDGET_GZIP_BYTES) {
      console.error('the browser build is over its gzipped size budget');
      failed = true;
    }
  }
  if (!check) {
    writeFileSync(out, code);
    continue;
  }
  let committed = null;
  try {
    committed = readFileSync(out);
  } catch {}
  if (!committed || !committed.equals(code)) {
    console.error(`dist/${file} differs from its source: run \`npm run build\` in clients/js and commit it`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
