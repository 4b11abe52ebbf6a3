#!/bin/sh
# Install the Debian (12, bookworm) packages that building, testing and
# benchmarking Tremolo need. Idempotent: when every package is present it
# changes nothing and needs no network; otherwise it runs `apt-get update`
# once and installs only what is missing. Works as root or through sudo.
set -e

PACKAGES=""
want() { PACKAGES="$PACKAGES $*"; }

# Compilers and build system; clang + its runtime for ASan/UBSan/libFuzzer.
want build-essential cmake pkg-config clang libclang-rt-14-dev
# Libraries the server and its plugins link.
want libjemalloc-dev libmbedtls-dev libzmq3-dev zlib1g-dev \
     libnghttp2-dev libcrypt-dev
# Test runners and the real clients the integration tests drive.
want python3-pytest python3-zmq curl nghttp2-client python3-h2
# Benchmark: load generator and the peers we compare with (nginx for static
# files and HTTP/2; h2o for HTTP/2; Mongrel2 and nginx + uWSGI for the
# ZeroMQ gateway).
want wrk nginx-light mongrel2-core uwsgi-core uwsgi-plugin-python3 h2o
# The Python node runtime (a CPython extension) and the frameworks its
# tests run as nodes; uvicorn with uvloop and httptools is the ASGI peer the
# gateway benchmark compares with (websockets for its WebSocket side).
want python3-dev python3-flask python3-fastapi python3-starlette \
     python3-uvicorn python3-uvloop python3-httptools python3-websockets
# Tools the tests use to look at a running server (ps, ss) and make certs.
want procps iproute2 openssl
# The browser the WebSocket tests drive headless through playwright-core
# (tests/js/setup.sh installs the npm packages; no browser download).
want chromium

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system; install the equivalents of:$PACKAGES" >&2
    exit 0
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "deps: all build and test packages are installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "deps: installing$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086 -- $missing is a word list on purpose
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends $missing
