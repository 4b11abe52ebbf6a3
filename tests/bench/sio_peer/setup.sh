#!/bin/sh
# Install the npm peer of tests/bench/socketio.sh (package.json here:
# socket.io@4, @socket.io/cluster-adapter for the unpinned run on Node's
# cluster, and ws's native add-ons bufferutil and utf-8-validate) into
# tests/bench/sio_peer/node_modules. socketio.sh runs it; `make bench` runs
# socketio.sh after tests/js/setup.sh (socket.io-client for the load).
#
# Idempotent: when every dependency is installed at the version
# package.json pins, it changes nothing and needs no network. Otherwise it
# runs `npm install --no-package-lock` (the npm registry must be reachable).
# The add-ons are optional: ws falls back to JavaScript without them, and
# socketio.sh prints which ones loaded. Exits non-zero when node or npm is
# missing or socket.io could not be installed.
set -e

cd "$(dirname "$0")"

fail() {
    echo "tests/bench/sio_peer/setup.sh: $*" >&2
    exit 1
}

command -v node >/dev/null 2>&1 || fail "node not found (Node.js >= 20; see tests/js/setup.sh)"
command -v npm >/dev/null 2>&1 || fail "npm not found (sh tests/js/setup.sh installs it)"

# 0 when every dependency (optional ones too) is installed at exactly the
# version package.json names (tests/js/deps_current.js).
deps_current() {
    node ../../js/deps_current.js sio_peer "$@"
}

if deps_current; then
    echo "sio_peer: node_modules is up to date with package.json"
    exit 0
fi
echo "sio_peer: npm install (socket.io, @socket.io/cluster-adapter, bufferutil, utf-8-validate)"
npm install --no-package-lock --no-audit --no-fund --loglevel=error ||
    fail "npm install failed in $(pwd) (is the npm registry reachable?)"
for m in socket.io @socket.io/cluster-adapter; do
    [ -f "node_modules/$m/package.json" ] ||
        fail "npm install finished but $m is not in node_modules"
done
deps_current -v ||
    echo "sio_peer: warning: an optional add-on is missing; ws uses its JavaScript fallback" >&2
exit 0
