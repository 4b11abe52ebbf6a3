'use strict';
// Load a page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser download) and print what the page reports.
//
//   node browser.js '{"url": "http://127.0.0.1:PORT/chat.html",
//                     "timeout": 20000, "screenshot": "/tmp/x.png"}'
//
// The page publishes its findings as `window.results`, and sets
// `window.results.done = true` when it has finished. Prints one JSON
// object on stdout: {"done": bool, "results": ..., "console": [...],
// "errors": [...], "version": "..."}. Exit 0 when the page finished, 2 when
// it did not within `timeout` ms, 1 when the browser could not be used.
// The test judges the results; this script only fetches them.

const { launch, runMain } = require('./chromium');

const cfg = JSON.parse(process.argv[2]);
const timeout = cfg.timeout || 20000;

async function main() {
  const out = { done: false, results: null, console: [], errors: [] };
  const browser = await launch(cfg, out);
  if (!browser) return 1;
  let rc = 0;
  try {
    out.version = browser.version();
    const page = await browser.newPage();
    page.on('console', (m) => out.console.push(m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => out.errors.push('pageerror: ' + e.message));
    await page.goto(cfg.url, { timeout });
    try {
      await page.waitForFunction(
        () => window.results && window.results.done === true, null,
        { timeout });
      out.done = true;
    } catch (e) {
      out.errors.push('wait: ' + e.message.split('\n')[0]);
      rc = 2;
    }
    out.results = await page.evaluate(() => window.results || null);
    if (cfg.screenshot) await page.screenshot({ path: cfg.screenshot });
  } catch (e) {
    out.errors.push(e.message.split('\n')[0]);
    rc = 1;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  return rc;
}

runMain(main);
