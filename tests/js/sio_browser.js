'use strict';
// Two pages in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) chat through Tremolo's socketio plugin and a node.
//
//   node sio_browser.js '{"url": "http://127.0.0.1:PORT/chat.html",
//                         "timeout": 20000}'
//
// Opens URL?me=alice and URL?me=bob; once both have joined the room,
// alice says a line, then bob answers once he has read it. Prints one
// JSON object: {"done": bool, "alice": results, "bob": results,
// "transports": {alice, bob}, "console": [...], "errors": [...]} where
// results is the page's window.results (sio_pages/chat.html). Exit 0 when
// both lines arrived on both pages, 2 when not in time, 1 when the
// browser could not be used.

const { launch, runMain } = require('./chromium');

const cfg = JSON.parse(process.argv[2]);
const timeout = cfg.timeout || 20000;
const A = 'hello bob, from alice';
const B = 'hi alice, bob here';

async function main() {
  const out = { done: false, console: [], errors: [] };
  const browser = await launch(cfg, out);
  if (!browser) return 1;
  let rc = 0;
  const pages = {};
  try {
    out.version = browser.version();
    for (const who of ['alice', 'bob']) {
      const page = await browser.newPage();
      page.on('console', (m) => out.console.push(who + ' ' + m.type() + ': ' + m.text()));
      page.on('pageerror', (e) => out.errors.push(who + ' pageerror: ' + e.message));
      await page.goto(cfg.url + '?me=' + who, { timeout });
      pages[who] = page;
    }
    try {
      for (const who of ['alice', 'bob']) {
        await pages[who].waitForFunction(
          () => window.results && window.results.joined === true, null,
          { timeout });
      }
      await pages.alice.evaluate((t) => window.say(t), A);
      await pages.bob.waitForFunction(
        (t) => window.results.said.some((s) => s[1] === t), A, { timeout });
      await pages.bob.evaluate((t) => window.say(t), B);
      await pages.alice.waitForFunction(
        (t) => window.results.said.some((s) => s[1] === t), B, { timeout });
      out.done = true;
    } catch (e) {
      out.errors.push('wait: ' + e.message.split('\n')[0]);
      rc = 2;
    }
    out.transports = {};
    for (const who of ['alice', 'bob']) {
      out[who] = await pages[who].evaluate(() => window.results || null);
      out.transports[who] = await pages[who].evaluate(
        () => (window.transport ? window.transport() : null));
    }
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
