// Headless Chromium (Debian's package) driven by playwright-core, with a
// record of everything the page did: requests, errors, console messages.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export async function openConsole(server, viewport = { width: 1280, height: 800 }) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
  const context = await browser.newContext({ viewport, colorScheme: 'light' });
  // A promise rejected with no handler is an error of the page too; Chromium
  // reports it to neither pageerror nor the console by itself.
  await context.addInitScript(() => window.addEventListener('unhandledrejection', (e) => console.error(`unhandled rejection: ${e.reason && e.reason.stack ? e.reason.stack : e.reason}`)));
  const page = await context.newPage();
  const seen = { requests: [], pageErrors: [], consoleErrors: [], failed: [] };
  page.on('request', (r) => seen.requests.push(r.url()));
  page.on('pageerror', (e) => seen.pageErrors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  // A stream closed on purpose (a new filter, sign-out) is aborted, not failed.
  page.on('requestfailed', (r) => r.failure()?.errorText !== 'net::ERR_ABORTED' && seen.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  await page.goto(`${server.url}/console`);
  return { browser, page, seen };
}

/** axe-core's violations of the page as it is now. Injected through the
 * DevTools protocol, which the page's Content-Security-Policy does not govern. */
export async function axeViolations(page) {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
}
