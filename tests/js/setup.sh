#!/bin/sh
# Install the npm packages of the JavaScript/Chromium integration tests
# (tests/js/package.json) into tests/js/node_modules. `make test` and
# `make bench` run it after `make deps` (which installs Debian's chromium).
#
# Idempotent: when every dependency is installed at the version
# package.json pins, it changes nothing and needs no network. Otherwise it
# runs `npm install --no-package-lock` (the npm registry must be reachable).
# No browser is downloaded: playwright-core drives /usr/bin/chromium.
# Exits non-zero, saying what to install, when Node.js or npm is missing.
set -e

cd "$(dirname "$0")"

fail() {
    echo "tests/js/setup.sh: $*" >&2
    exit 1
}

if ! command -v node >/dev/null 2>&1; then
    fail "node not found. The WebSocket/browser tests need Node.js >= 20 with
npm (e.g. nodesource's nodejs 20 package, which includes npm; Debian 12's
own nodejs is 18, too old for playwright-core)."
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    fail "Node.js $(node --version) is too old: playwright-core needs >= 20.
Install Node.js 20 or later (with npm)."
fi

if ! command -v npm >/dev/null 2>&1; then
    node_path=$(readlink -f "$(command -v node)")
    owner=$(dpkg-query -S "$node_path" 2>/dev/null | cut -d: -f1 || true)
    version=""
    if [ -n "$owner" ]; then
        version=$(dpkg-query -W -f='${Version}' "$owner" 2>/dev/null || true)
    fi
    case "$owner:$version" in
        nodejs:*nodesource*)
            # Debian's npm package conflicts with nodesource's nodejs.
            fail "npm not found, but nodesource's nodejs package ships it:
reinstall that package (apt-get install --reinstall nodejs). Do not install
Debian's npm package: it conflicts with nodesource's nodejs." ;;
        nodejs:?*)
            if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1
            then
                echo "tests/js: installing Debian's npm (for Debian's nodejs)"
                DEBIAN_FRONTEND=noninteractive apt-get install -y \
                    --no-install-recommends npm ||
                    fail "apt-get install npm failed"
            else
                fail "npm not found: install Debian's npm package
(sudo apt-get install npm), which goes with Debian's nodejs."
            fi ;;
        *)
            fail "npm not found: install the npm that goes with $node_path
(Node.js $(node --version))." ;;
    esac
fi

# 0 when every dependency of package.json is installed at exactly the
# version it names (deps_current.js; the versions are pinned: there is no
# lock file).
deps_current() {
    node deps_current.js tests/js "$@"
}

if deps_current; then
    echo "tests/js: node_modules is up to date with package.json"
else
    echo "tests/js: npm install (ws, socket.io-client, playwright-core)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-package-lock \
        --no-audit --no-fund --loglevel=error ||
        fail "npm install failed in $(pwd) (is the npm registry reachable?)"
    deps_current -v ||
        fail "npm install finished but node_modules does not match package.json"
fi

if [ ! -x /usr/bin/chromium ]; then
    echo "tests/js: warning: /usr/bin/chromium is missing (make deps installs" \
         "Debian's chromium); the browser tests will fail" >&2
fi
exit 0
