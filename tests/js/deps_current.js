'use strict';
// Exit 0 when every dependency of ./package.json (optional ones too) is
// installed in ./node_modules at exactly the version it names (the
// versions are pinned: there is no lock file), else 1. The setup scripts
// tests/js/setup.sh and tests/bench/sio_peer/setup.sh run it in their own
// folder:
//
//   node deps_current.js LABEL [-v]
//
// -v names each mismatch on stderr, prefixed with LABEL.

const fs = require('fs');

const label = process.argv[2] || 'deps';
const verbose = process.argv[3] === '-v';
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
const deps = Object.assign({}, pkg.dependencies, pkg.optionalDependencies);
let ok = true;
for (const [name, want] of Object.entries(deps)) {
  let have = null;
  try {
    have = JSON.parse(fs.readFileSync('node_modules/' + name +
                                      '/package.json', 'utf8')).version;
  } catch (e) { /* not installed */ }
  if (have !== want) {
    if (verbose)
      console.error(label + ': ' + name + ': want ' + want + ', have ' +
                    (have || 'none'));
    ok = false;
  }
}
process.exit(ok ? 0 : 1);
