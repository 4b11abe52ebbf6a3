'use strict';
// What the Chromium drivers browser.js and sio_browser.js share: launching
// Debian's /usr/bin/chromium through playwright-core (no browser download)
// and exiting once the JSON result is written.

const { chromium } = require('playwright-core');

// Headless Chromium, or null when it cannot be launched: then the error
// is in out.errors and out is printed, so the caller returns 1.
async function launch(cfg, out) {
  try {
    return await chromium.launch({
      executablePath: cfg.executablePath || '/usr/bin/chromium',
      headless: true,
      timeout: 60000,
      // --no-sandbox: the tests run as root. The rest keeps Chromium off
      // the network: the test machine has none but loopback.
      args: ['--no-sandbox', '--headless=new', '--disable-gpu',
             '--disable-quic', '--no-first-run',
             '--disable-background-networking',
             '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    out.errors.push('launch: ' + e.message);
    process.stdout.write(JSON.stringify(out) + '\n');
    return null;
  }
}

// Exit only once stdout is flushed: a pipe takes the output
// asynchronously, and process.exit() would cut it short.
function finish(rc) {
  process.stdout.write('', () => process.exit(rc));
}

// Run main (async, resolving to the exit status); a throw is printed as
// {"done": false, "errors": [...]} with status 1.
function runMain(main) {
  main().then(finish, (e) => {
    process.stdout.write(JSON.stringify({ done: false,
                                          errors: [String(e)] }) + '\n');
    finish(1);
  });
}

module.exports = { launch, runMain };
