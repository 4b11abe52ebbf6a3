#!/usr/bin/env bash
# tests/bench/http2.sh -- HTTP/2 over TLS (issue 14): Tremolo's http2 plugin
# against nginx and h2o, driven by h2load with the same connections and
# streams (BENCH_CONNS x BENCH_STREAMS: -c16 -m10 by default, one h2load
# thread), in one run, rounds rotating the order:
#   1. small: a 100-byte static file (/index.html);
#   2. large: a 100 KB static file (/large.bin, 102400 bytes);
#   3. node:  a dynamic 13-byte answer through an application process:
#      Tremolo + docs/examples/c_node.c (the C node gateway.sh uses) over
#      the zmq gateway, against nginx and h2o each reverse-proxying to
#      tests/bench/hello_backend.c (one C process, epoll, the same head and
#      body bytes c_node.c sends) over a unix socket with keep-alive.
# Each runs twice: 1 worker with the whole stack (server, node or backend)
# on CPU 0 and h2load on CPU 1, then unpinned with BENCH_UNPINNED_WORKERS
# (2) workers / threads and nothing pinned, as ../shared/BENCHMARKING.md
# asks next to the pinned figures.
#
# How every stack is configured, and why:
#   TLS, all three: the same ECDSA P-256 certificate (generated here),
#     TLS 1.2 and ECDHE-ECDSA-AES128-GCM-SHA256 only. Tremolo's mbedTLS 2.28
#     speaks TLS 1.2 only, so the peers (OpenSSL 3) are pinned to TLS 1.2
#     too: nginx `ssl_protocols TLSv1.2; ssl_ciphers ...`; h2o
#     `min-version`/`max-version TLSv1.2`, `cipher-suite` (h2o 2.2.5 cannot
#     turn TLS 1.3 off through max-version on OpenSSL 3, so it also runs
#     with an OPENSSL_CONF whose MinProtocol/MaxProtocol say TLSv1.2);
#     h2load gets `--ciphers` and the same OPENSSL_CONF. Every run's
#     "TLS Protocol", "Cipher" and "Application protocol" lines are checked:
#     anything but TLSv1.2 / that suite / h2 makes the run INVALID.
#   Tremolo: liana, tls, http2, zmq loaded (no logger: no access log),
#     Workers 1 (W unpinned), Scheduler reuseport, keep-alive 60 s /
#     1,000,000 requests, [HTTP2] defaults (100 streams), site DocumentRoot
#     for the files and `[LOCATION /node] Handler zmq`, `Node bench-*`,
#     zmq Bind on loopback TCP, PingFreq 1s, NodeGuard native (what
#     docs/configuration.md gives for libzmq >= 4 nodes, as gateway.sh).
#   nginx (Debian nginx-light): as its docs recommend for production:
#     `listen ... ssl http2 reuseport`, `ssl_session_cache shared:SSL:10m`,
#     `worker_processes 1` (W), `access_log off`, `sendfile on; tcp_nopush
#     on; tcp_nodelay on; open_file_cache` (as static.sh), keep-alive 60 s /
#     1,000,000 (also the requests per HTTP/2 connection since 1.19.7); /node:
#     `proxy_pass` to an `upstream { server unix:SOCK; keepalive K; }`,
#     K = connections x streams (at least 64): the idle pool must hold
#     every request that can be in flight, or the upstream connections past
#     it are closed after each response (6x the backend's CPU with 64),
#     `proxy_http_version 1.1`, `Connection ""` (the pool needs both).
#   h2o (Debian h2o 2.2.5): `num-threads: 1` (W), no `access-log` directive
#     (h2o then writes none), HTTP/2 through ALPN on its TLS listener (its
#     default there), `ocsp-update-interval: 0` (a self-signed certificate
#     has no OCSP responder); /node: `proxy.reverse.url:
#     http://[unix:SOCK]/node` (keep-alive to the upstream is its default).
#
# Per run: req/s (h2load's), p99 latency (from h2load --log-file: the time
# of every request, sorted), server CPU us per request of the whole stack
# (utime+stime of every process tree: Tremolo + c_node, nginx master +
# workers + hello_backend, h2o + its children + hello_backend; lib.sh
# bench_cpu_ticks) and of the front alone, h2load's failed + errored +
# timed-out requests and non-2xx statuses. A run with any error or non-2xx
# is INVALID, gives no ratio, and the script exits 1 (as when a stack does
# not start). Ratios tremolo/nginx and tremolo/h2o are taken within each
# round, then their median. Targets (issue 14): CPU per request <= nginx's
# (>= 1.0x nginx) and <= h2o's / 0.9 (>= 0.9x h2o), p99 no worse; they are
# reported, not asserted. While the tree has no plugins/http2/http2.c, or
# Tremolo does not negotiate h2, Tremolo is skipped with the reason and
# the peers are measured alone (with the h2o/nginx ratio). At the end, the
# floor under the 100 KB file: mbedTLS's AES-128-GCM (tests/bench/
# gcm_floor.c) against OpenSSL's (`openssl speed -evp aes-128-gcm`) per
# 100 KB of records.
#
# Environment knobs (defaults in brackets):
#   BENCH_TREMOLO           server binary [$TREMOLO_BIN (set by make), build/tremolo]
#   BENCH_ROUNDS            rounds per scenario                  [3]
#   BENCH_SECONDS           seconds per h2load run (-D)          [5]
#   BENCH_CONNS             h2load connections (-c)              [16]
#   BENCH_STREAMS           h2load streams per connection (-m)   [10]
#   BENCH_ONLY              scenarios, e.g. "small node"         [small large node]
#   BENCH_UNPINNED          1 also runs the unpinned pass, 0 skips  [1]
#   BENCH_UNPINNED_WORKERS  workers / threads of the unpinned pass  [2]
#   BENCH_GUARD             Tremolo's NodeGuard                  [native]
set -euo pipefail

cd "${TREMOLO_SRC:-$(dirname "$0")/../..}"
REPO=$(pwd)
. tests/bench/lib.sh

TREMOLO=${BENCH_TREMOLO:-${TREMOLO_BIN:-build/tremolo}}
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-16}
STREAMS=${BENCH_STREAMS:-10}
ONLY=${BENCH_ONLY:-small large node}
UNPINNED=${BENCH_UNPINNED:-1}
UNPINNED_WORKERS=${BENCH_UNPINNED_WORKERS:-2}
GUARD=${BENCH_GUARD:-native}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
H2O=$(command -v h2o || echo /usr/bin/h2o)
CIPHER=ECDHE-ECDSA-AES128-GCM-SHA256
NODE_BODY='hello, world
'

bench_require h2load curl openssl taskset cc cmp "$NGINX" "$H2O"
bench_need_tremolo
bench_need_2cpus "stack on CPU 0, h2load on CPU 1"
bench_raise_nofile 65536

TMP=$(mktemp -d /tmp/tremolo-h2bench.XXXXXX)
declare -A PIDS FRONT PORT URLPATH
STATUS=0
SUMMARY=()

trap bench_cleanup_pids EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- files

mkdir -p "$TMP/htdocs"
# 100 bytes: 99 printable characters and a newline
head -c 300 /dev/urandom | base64 -w0 | head -c 99 > "$TMP/htdocs/index.html"
echo >> "$TMP/htdocs/index.html"
head -c 102400 /dev/urandom > "$TMP/htdocs/large.bin"
printf '%s' "$NODE_BODY" > "$TMP/node.expected"
URLPATH[small]=/index.html
URLPATH[large]=/large.bin
URLPATH[node]=/node
declare -A EXPECTED=([small]="$TMP/htdocs/index.html" [large]="$TMP/htdocs/large.bin"
                     [node]="$TMP/node.expected")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 2>/dev/null
# OpenSSL 3's system default for h2o and h2load: TLS 1.2 only.
cat > "$TMP/openssl.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.2
MaxProtocol = TLSv1.2
EOF

C_NODE="$TMP/c_node"
BACKEND="$TMP/hello_backend"
cc -O2 -o "$C_NODE" docs/examples/c_node.c -lzmq
cc -O2 -o "$BACKEND" tests/bench/hello_backend.c

# Tremolo takes part only with the plugin in the tree and the binary
# negotiating h2 (checked once it is up).
TREMOLO_WHY=""
[ -f plugins/http2/http2.c ] ||
    TREMOLO_WHY="the tree has no plugins/http2/http2.c (the http2 plugin is not written yet)"

# ---------------------------------------------------------------- stacks

# spawn SLOT ROLE CPUS CMD...: start CMD in the background (pinned to CPUS
# unless ""); its PID joins the slot's roots and, for ROLE front, the
# front's.
spawn() {
    local slot=$1 role=$2 cpus=$3 pin=()
    shift 3
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    "${pin[@]}" "$@" < /dev/null &
    PIDS[$slot]="${PIDS[$slot]:-} $!"
    [ "$role" = front ] && FRONT[$slot]="${FRONT[$slot]:-} $!"
    return 0
}

# wait_h2 SLOT SECONDS: until GET / over h2 answers (any status: the file
# check comes later); fails at once when the slot's front is gone.
wait_h2() {
    local slot=$1 secs=$2 i pid code
    pid=${FRONT[$slot]# }
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        code=$(curl -sk --http2 -o /dev/null -w '%{http_code}' --max-time 1 \
               "https://127.0.0.1:${PORT[$slot]}/index.html" 2>/dev/null || true)
        case $code in [1-5]??) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

start_tremolo() {
    local slot=$1 workers=$2 cpus=$3 dir="$TMP/$1" port zport root
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    zport=$(bench_free_port "$port" ${PORT[@]+"${PORT[@]}"})
    mkdir -p "$dir/sites"
    cat > "$dir/tremolo.conf" <<EOF
[SERVER]
    Listen 127.0.0.1:$port tls
    Workers $workers
    Scheduler reuseport
    ErrorLog $dir/error.log
    LogLevel info
    MimeTypes $REPO/conf/mime.types
    KeepAlive on
    KeepAliveMaxRequests 1000000
    KeepAliveTimeout 60s
EOF
    # No logger plugin: no access log, as on the peers.
    printf '[PLUGINS]\n    Load liana\n    Load tls\n    Load http2\n    Load zmq\n' \
        > "$dir/plugins.load"
    printf '[TLS]\n    Certificate %s\n    Key %s\n' "$TMP/cert.pem" "$TMP/key.pem" \
        > "$dir/tls.conf"
    printf '[ZMQ]\n    Bind tcp://127.0.0.1:%s\n    PingFreq 1s\n    NodeGuard %s\n' \
        "$zport" "$GUARD" > "$dir/zmq.conf"
    cat > "$dir/sites/default.conf" <<EOF
[HOST]
    ServerName 127.0.0.1
    Default on
    DocumentRoot $TMP/htdocs

[LOCATION /node]
    Handler zmq

[ZMQ]
    Node bench-*
EOF
    spawn "$slot" front "$cpus" "$TREMOLO" -c "$dir/tremolo.conf" > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    root=${FRONT[$slot]# }
    bench_wait_file "$dir/error.log" "zmq: nodes connect to" "$root" 10 || return 1
    spawn "$slot" app "$cpus" "$C_NODE" bench-1 "tcp://127.0.0.1:$zport" > "$dir/node.log" 2>&1
    bench_wait_file "$dir/error.log" 'node "bench-1" is available' "$root" 20 || return 1
    wait_h2 "$slot" 10
}

start_nginx() {
    local slot=$1 workers=$2 cpus=$3 dir="$TMP/$1" port
    # the idle pool holds every stream h2load can have in flight: with
    # fewer, the connections past it are closed after each response and
    # the backend pays an accept and a close per request
    local UPSTREAM_KEEPALIVE=$((CONNS * STREAMS > 64 ? CONNS * STREAMS : 64))
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    mkdir -p "$dir/tmp"
    spawn "$slot" app "$cpus" "$BACKEND" "$dir/backend.sock" > "$dir/backend.log" 2>&1
    cat > "$dir/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes $workers;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { use epoll; worker_connections 4096; accept_mutex off; }
http {
    types { text/html html; application/octet-stream bin; }
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    open_file_cache max=1000 inactive=60s;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi; uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    upstream backend { server unix:$dir/backend.sock; keepalive $UPSTREAM_KEEPALIVE; }
    server {
        listen 127.0.0.1:$port ssl http2 reuseport;
        server_name 127.0.0.1;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2;
        ssl_ciphers $CIPHER;
        ssl_session_cache shared:SSL:10m;
        root $TMP/htdocs;
        location /node {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
EOF
    spawn "$slot" front "$cpus" "$NGINX" -c "$dir/nginx.conf" -p "$dir/" -e "$dir/error.log" \
        > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    wait_h2 "$slot" 10
}

start_h2o() {
    local slot=$1 workers=$2 cpus=$3 dir="$TMP/$1" port
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    mkdir -p "$dir"
    spawn "$slot" app "$cpus" "$BACKEND" "$dir/backend.sock" > "$dir/backend.log" 2>&1
    cat > "$dir/h2o.conf" <<EOF
user: root
num-threads: $workers
pid-file: $dir/h2o.pid
error-log: $dir/error.log
listen:
  host: 127.0.0.1
  port: $port
  ssl:
    certificate-file: $TMP/cert.pem
    key-file: $TMP/key.pem
    min-version: TLSv1.2
    max-version: TLSv1.2
    cipher-suite: $CIPHER
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /node:
        proxy.reverse.url: "http://[unix:$dir/backend.sock]/node"
      /:
        file.dir: $TMP/htdocs
EOF
    OPENSSL_CONF="$TMP/openssl.cnf" spawn "$slot" front "$cpus" "$H2O" -c "$dir/h2o.conf" \
        > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    wait_h2 "$slot" 10
}

stop_slot() {
    local p
    [ -n "${PIDS[$1]:-}" ] || return 0
    # the front first: it stops sending to the app, then the app goes
    for p in ${FRONT[$1]:-}; do bench_stop "$p"; done
    for p in ${PIDS[$1]}; do bench_stop "$p"; done
    unset "PIDS[$1]" "FRONT[$1]" "PORT[$1]"
}

# start_slot SLOT WORKERS CPUS: start the stack named SLOT and pin it.
start_slot() {
    local slot=$1 workers=$2 cpus=$3 p
    if ! "start_$slot" "$slot" "$workers" "$cpus"; then
        echo "http2.sh: $slot did not start" >&2
        tail -n 15 "$TMP/$slot"/*.log >&2 2>/dev/null || true
        stop_slot "$slot"
        return 1
    fi
    # children started later inherit the affinity; pin every tree again in
    # case a thread changed its own
    if [ -n "$cpus" ]; then
        for p in ${PIDS[$slot]}; do bench_pin "$cpus" "$p"; done
    fi
    bench_log "$slot: pids${PIDS[$slot]} (front${FRONT[$slot]}) port ${PORT[$slot]}${cpus:+ cpu $cpus}"
}

# check_slot SLOT SCENARIO: the scenario's URL answers 200 over h2 and
# TLS 1.2 with the expected bytes. Says what failed on stdout.
check_slot() {
    local slot=$1 s=$2 out code ver bytes
    out=$(OPENSSL_CONF="$TMP/openssl.cnf" curl -sk --http2 --tlsv1.2 --ciphers "$CIPHER"           -o "$TMP/check.body" -w '%{http_code} %{http_version}'           "https://127.0.0.1:${PORT[$slot]}${URLPATH[$s]}" 2>&1 || true)
    read -r code ver <<< "$out"
    bytes=right
    cmp -s "$TMP/check.body" "${EXPECTED[$s]}" || bytes=WRONG
    [ "$code" = 200 ] && [ "$ver" = 2 ] && [ $bytes = right ] && return 0
    echo "$slot ${URLPATH[$s]}: status ${code:-none}, HTTP version ${ver:-none}, $bytes bytes"
    return 1
}

# ---------------------------------------------------------------- measure

# ticks PIDS...: CPU ticks of the process trees rooted at PIDS.
ticks() {
    local t=0 p
    for p in "$@"; do t=$((t + $(bench_cpu_ticks "$p"))); done
    echo "$t"
}

# h2load_parse OUT LOG SECONDS: "requests req_per_s p99_ms errors non2xx
# ok" from h2load's output and its --log-file (start, status,
# microseconds). ok: 1, or why the run does not count: "proto" (not h2
# over TLS 1.2 with the cipher), "stopped:SPAN" (the requests' start
# times span less than 80 % of the run: connections were closed, or the
# server stalled past the end), "uneven" (one connection made less
# than half the mean's requests/s: it was closed or starved).
h2load_parse() {
    local out=$1 log=$2 secs=$3 p99 badlog span
    # the 99th percentile: the ceil(0.99 n)-th smallest time
    p99=$(cut -f3 "$log" 2>/dev/null | sort -n | awk '
        { t[NR] = $1 }
        END {
            if (NR == 0) { print "-"; exit }
            i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1
            printf "%.3f\n", t[i] / 1000 }')
    badlog=$(awk -F'\t' '$2 !~ /^2[0-9][0-9]$/ { bad++ } END { print bad + 0 }' "$log" 2>/dev/null || echo 0)
    # the seconds from the first request's start to the last one's: a
    # server that closes connections (a GOAWAY after N requests: h2load
    # does not reconnect) leaves the rest of the run without requests
    span=$(awk -F'\t' 'NR == 1 { lo = hi = $1 } { if ($1 < lo) lo = $1; if ($1 > hi) hi = $1 }
                       END { printf "%.3f\n", NR ? (hi - lo) / 1e6 : 0 }' "$log" 2>/dev/null || echo 0)
    awk -v p99="$p99" -v badlog="${badlog:-0}" -v cipher="$CIPHER" -v span="$span" -v secs="$secs" '
        /^finished in/ { rps = $4 }
        /^requests:/ {
            for (i = 2; i < NF; i++) {
                if ($(i + 1) ~ /^done/)      done = $i
                if ($(i + 1) ~ /^failed/)    err += $i
                if ($(i + 1) ~ /^errored/)   err += $i
                if ($(i + 1) ~ /^timeout/)   err += $i
            }
        }
        /^status codes:/ {
            for (i = 3; i < NF; i++) if ($(i + 1) ~ /^[345]xx/) non2xx += $i
        }
        /^TLS Protocol:/         { tls = $3 }
        /^Cipher:/               { ciph = $2 }
        /^Application protocol:/ { alpn = $3 }
        /^req\/s *:/ { cmin = $3; cmean = $5 }
        END {
            ok = 1
            if (span + 0 < 0.8 * secs) ok = sprintf("stopped:%.2f", span)
            if (cmin + 0 < 0.5 * cmean) ok = "uneven"
            if (!(tls == "TLSv1.2" && ciph == cipher && alpn == "h2")) ok = "proto"
            if (done == "" || rps == "") { print "- - - 1 0 " ok; exit }
            if (non2xx < badlog) non2xx = badlog
            printf "%d %s %s %d %d %s\n", done, rps, p99, err, non2xx, ok }' "$out"
}

# measure SLOT SCENARIO SECONDS H2LOADCPU: one h2load run; prints
# "req/s p99_ms us_stack us_front errors non2xx proto_ok".
measure() {
    local slot=$1 s=$2 secs=$3 wcpu=$4 pin=() out="$TMP/run.$1.txt" log="$TMP/run.$1.log"
    local s0 f0 s1 f1 n rps p99 err non ok
    [ -n "$wcpu" ] && pin=(taskset -c "$wcpu")
    rm -f "$log"
    s0=$(ticks ${PIDS[$slot]}); f0=$(ticks ${FRONT[$slot]})
    OPENSSL_CONF="$TMP/openssl.cnf" "${pin[@]}" h2load -t1 -c"$CONNS" -m"$STREAMS" \
        -D"$secs" --ciphers="$CIPHER" --log-file="$log" \
        "https://127.0.0.1:${PORT[$slot]}${URLPATH[$s]}" > "$out" 2>&1 || true
    s1=$(ticks ${PIDS[$slot]}); f1=$(ticks ${FRONT[$slot]})
    read -r n rps p99 err non ok < <(h2load_parse "$out" "$log" "$secs")
    if [ "$n" = - ] || [ "$n" = 0 ]; then
        echo "- - - - ${err:-1} ${non:-0} ${ok:-0}"; return 0
    fi
    awk -v s=$((s1 - s0)) -v f=$((f1 - f0)) -v hz="$BENCH_CLK_TCK" -v n="$n" \
        -v r="$rps" -v p="$p99" -v e="$err" -v x="$non" -v ok="$ok" 'BEGIN {
            printf "%.0f %s %.2f %.2f %d %d %s\n", r, p, s / hz * 1e6 / n,
                f / hz * 1e6 / n, e, x, ok }'
}

# rounds TITLE SCENARIO H2LOADCPU SLOT...: a 1 s warm-up per slot, then
# ROUNDS rounds, the order rotating by one slot each round; the per-run
# table, medians [min-max], and for each pair in RATIO_PAIRS ("a/b ...")
# the median of the per-round ratios. Appends to SUMMARY.
rounds() {
    local title=$1 s=$2 wcpu=$3
    shift 3
    local -a slots=("$@") order
    local n=${#slots[@]} r i slot bad flag rps p99 us uf err non ok pair a b
    local -A vals=() q=()
    for slot in "${slots[@]}"; do measure "$slot" "$s" 1 "$wcpu" > /dev/null; done
    printf '%-6s %-8s %10s %9s %13s %13s %7s %7s  %s\n' round stack "req/s" "p99 ms" \
        "us/req stack" "us/req front" errors non2xx ""
    for ((r = 1; r <= ROUNDS; r++)); do
        order=()
        for ((i = 0; i < n; i++)); do order+=("${slots[$(((i + r - 1) % n))]}"); done
        local -A res=()
        bad=0
        for slot in "${order[@]}"; do
            res[$slot]=$(measure "$slot" "$s" "$SECONDS_PER_RUN" "$wcpu")
            read -r rps p99 us uf err non ok <<< "${res[$slot]}"
            flag=""
            if [ "$rps" = - ] || [ "$err" != 0 ] || [ "$non" != 0 ]; then
                flag="INVALID ($err errors, $non non-2xx)"
            else
                case $ok in
                1) ;;
                proto)   flag="INVALID (not h2 over TLSv1.2 $CIPHER)" ;;
                stopped:*) flag="INVALID (requests started over ${ok#stopped:} s of $SECONDS_PER_RUN: connections closed or stalled)" ;;
                uneven)  flag="INVALID (a connection made < 1/2 the mean req/s: closed or starved)" ;;
                *)       flag="INVALID (no h2load summary)" ;;
                esac
            fi
            if [ -n "$flag" ]; then
                bad=1; STATUS=1
                tail -n 12 "$TMP/run.$slot.txt" >&2
            fi
            printf '%-6s %-8s %10s %9s %13s %13s %7s %7s  %s\n' "$r" "$slot" "$rps" "$p99" \
                "$us" "$uf" "$err" "$non" "$flag"
        done
        [ $bad = 1 ] && continue      # a round with an invalid run gives no ratio
        for slot in "${slots[@]}"; do
            read -r rps p99 us uf _ <<< "${res[$slot]}"
            vals[$slot.rps]+=" $rps"; vals[$slot.p99]+=" $p99"
            vals[$slot.us]+=" $us"; vals[$slot.uf]+=" $uf"
        done
        for pair in $RATIO_PAIRS; do
            a=${pair%/*}; b=${pair#*/}
            local ra pa ua fa rb pb ub fb
            read -r ra pa ua fa _ <<< "${res[$a]}"
            read -r rb pb ub fb _ <<< "${res[$b]}"
            q[$pair.rps]+=" $(bench_div "$ra" "$rb")"; q[$pair.p99]+=" $(bench_div "$pa" "$pb")"
            q[$pair.us]+=" $(bench_div "$ua" "$ub")"; q[$pair.uf]+=" $(bench_div "$fa" "$fb")"
        done
    done
    echo
    echo "-- $title: median [min-max] over the valid rounds"
    printf '%-8s %24s %20s %20s %20s\n' stack "req/s" "p99 ms" "us/req stack" "us/req front"
    for slot in "${slots[@]}"; do
        printf '%-8s %24s %20s %20s %20s\n' "$slot" "$(fmt_stats ${vals[$slot.rps]:-})" \
            "$(fmt_stats ${vals[$slot.p99]:-})" "$(fmt_stats ${vals[$slot.us]:-})" \
            "$(fmt_stats ${vals[$slot.uf]:-})"
    done
    for pair in $RATIO_PAIRS; do
        a=${pair%/*}; b=${pair#*/}
        local mr mp mu mf
        read -r mr _ _ <<< "$(bench_stats ${q[$pair.rps]:-})"
        read -r mp _ _ <<< "$(bench_stats ${q[$pair.p99]:-})"
        read -r mu _ _ <<< "$(bench_stats ${q[$pair.us]:-})"
        read -r mf _ _ <<< "$(bench_stats ${q[$pair.uf]:-})"
        mr=$(bench_div "$mr" 1); mp=$(bench_div "$mp" 1)
        mu=$(bench_div "$mu" 1); mf=$(bench_div "$mf" 1)
        echo "ratio $pair (median of per-round ratios):"
        printf '  %-13s %s  (%s)\n' "req/s" "$mr" "$(better "$mr" high "$a" "$b")" \
            p99 "$mp" "$(better "$mp" low "$a" "$b")" \
            "us/req stack" "$mu" "$(better "$mu" low "$a" "$b")" \
            "us/req front" "$mf" "$(better "$mf" low "$a" "$b")"
        local tgt=""
        [ "$a" = tremolo ] && tgt=$(target "$b" "$mu" "$mp")
        SUMMARY+=("$SHORT $s $pair: req/s x$mr, p99 x$mp, CPU/req x$mu (front x$mf)$tgt")
    done
}

# target PEER CPU_RATIO P99_RATIO: issue 14's targets on a tremolo/PEER
# ratio: CPU per request <= PEER's (nginx) or <= PEER's / 0.9 (h2o), p99
# no worse.
target() {
    local limit
    case $1 in nginx) limit=1.0 ;; h2o) limit=1.111 ;; *) return 0 ;; esac
    awk -v u="$2" -v p="$3" -v l="$limit" -v peer="$1" 'BEGIN {
        if (u == "-" || p == "-") { print " [target: no data]"; exit }
        printf " [CPU target %s, p99 %s]", (u <= l ? "met" : "MISSED"), (p <= 1.0 ? "met" : "MISSED") }'
}

# pass LABEL WORKERS SERVER_CPU H2LOAD_CPU: start every stack, check the
# bytes, run every scenario, stop them.
pass() {
    local label=$1 workers=$2 scpu=$3 wcpu=$4 slot s
    local -a up=()
    SHORT=$5
    echo
    echo "==== $label ===="
    for slot in $SLOTS; do
        if [ "$slot" = tremolo ] && [ -n "$TREMOLO_WHY" ]; then
            continue
        fi
        if ! start_slot "$slot" "$workers" "$scpu"; then
            echo "NOT MEASURED: $slot did not start"; STATUS=1
            SUMMARY+=("$SHORT: $slot did not start")
            continue
        fi
        up+=("$slot")
    done
    for s in $ONLY; do
        local -a here=()
        for slot in ${up[@]+"${up[@]}"}; do
            if check_slot "$slot" "$s"; then
                here+=("$slot")
            elif [ "$slot" = tremolo ]; then
                echo "Tremolo skipped in $s: it does not serve ${URLPATH[$s]} over h2 (TLS 1.2, the right bytes)"
                SUMMARY+=("$SHORT $s: Tremolo skipped (no right answer over h2)")
            else
                echo "NOT MEASURED: $slot answered wrong"; STATUS=1
                SUMMARY+=("$SHORT $s: $slot answered wrong")
            fi
        done
        [ "${#here[@]}" = 0 ] && continue
        RATIO_PAIRS=""
        case " ${here[*]} " in
        *" tremolo "*)
            for slot in nginx h2o; do
                case " ${here[*]} " in *" $slot "*) RATIO_PAIRS+=" tremolo/$slot" ;; esac
            done ;;
        *" h2o "*)
            case " ${here[*]} " in *" nginx "*) RATIO_PAIRS="h2o/nginx" ;; esac ;;
        esac
        echo
        echo "== $label, $s (${URLPATH[$s]}): h2load -t1 -c$CONNS -m$STREAMS -D$SECONDS_PER_RUN, $ROUNDS rounds =="
        rounds "$label, $s" "$s" "$wcpu" "${here[@]}"
    done
    for slot in ${up[@]+"${up[@]}"}; do stop_slot "$slot"; done
}

# ---------------------------------------------------------------- main

SLOTS="tremolo nginx h2o"
echo "http2.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo "h2load $(h2load --version | awk '{ print $2 }'): -t1 -c$CONNS -m$STREAMS -D${SECONDS_PER_RUN}s per run, TLS 1.2 $CIPHER, ALPN h2; p99 from --log-file"
echo "tremolo: $TREMOLO; liana tls http2 zmq, no logger, [HTTP2] defaults; node: docs/examples/c_node.c, NodeGuard $GUARD"
echo "nginx $($NGINX -v 2>&1 | sed 's/.*: //'): listen ssl http2, ssl_session_cache shared:SSL:10m, access_log off, sendfile on; /node proxy_pass to hello_backend (unix socket, keepalive)"
echo "h2o $($H2O --version | awk 'NR == 1 { print $3 }'): num-threads W, no access log, TLS 1.2 through OPENSSL_CONF; /node proxy.reverse.url to hello_backend (unix socket)"
echo "files: /index.html $(wc -c < "$TMP/htdocs/index.html") B, /large.bin $(wc -c < "$TMP/htdocs/large.bin") B; /node: 13 B from the node / backend"
LOAD=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at start: $LOAD$(awk -v l="$LOAD" 'BEGIN { if (l > 0.5) print " -- other jobs are running: figures will be noisy" }')"
echo "us/req stack = every process of the stack (front + node / backend); front = Tremolo / nginx master + workers / h2o"
[ -n "$TREMOLO_WHY" ] && echo "Tremolo skipped: $TREMOLO_WHY; the peers are measured alone"

pass "1 worker, stack on CPU 0, h2load on CPU 1" 1 0 1 pinned
if [ "$UNPINNED" = 1 ]; then
    pass "$UNPINNED_WORKERS workers/threads, unpinned (h2load unpinned too)" \
        "$UNPINNED_WORKERS" "" "" "unpinned"
fi

# The floor under the 100 KB file: sealing its bytes in AES-128-GCM
# records, mbedTLS (Tremolo's tls plugin; tests/bench/gcm_floor.c) against
# OpenSSL (the peers; `openssl speed -evp`, 16 KiB blocks), on CPU 0.
case " $ONLY " in *" large "*)
    echo
    echo "== AES-128-GCM per 100 KB response (the record cipher alone, CPU 0) =="
    if cc -O2 -o "$TMP/gcm_floor" tests/bench/gcm_floor.c -lmbedcrypto; then
        read -r _ mb_rate mb_us < <(taskset -c 0 "$TMP/gcm_floor" 1000 102400)
        os_rate=$(taskset -c 0 openssl speed -seconds 1 -evp aes-128-gcm 2>/dev/null |
                  awk '/^AES-128-GCM/ { v = $NF; sub(/k$/, "", v); printf "%.0f", v * 1000 / 1e6 }')
        os_us=$(awk -v r="$os_rate" 'BEGIN { if (r > 0) printf "%.1f", 102400 / r; else print "-" }')
        echo "mbedTLS: $mb_rate MB/s, $mb_us us per 100 KB"
        echo "OpenSSL: $os_rate MB/s, $os_us us per 100 KB"
        SUMMARY+=("100 KB AES-128-GCM floor: mbedTLS ${mb_us} us, OpenSSL ${os_us} us per response")
    else
        echo "http2.sh: cannot build tests/bench/gcm_floor.c (libmbedtls-dev?)" >&2
    fi ;;
esac

echo
echo "load average at end: $(cut -d' ' -f1 /proc/loadavg)"
[ -n "$TREMOLO_WHY" ] && echo "Tremolo skipped: $TREMOLO_WHY"
printf 'SUMMARY: %s\n' "$(IFS=';'; echo "${SUMMARY[*]:-nothing measured}" | sed 's/;/; /g')"
echo "targets (issue 14): server CPU per request >= 1.0x nginx (tremolo/nginx CPU <= 1.0) and >= 0.9x h2o (tremolo/h2o CPU <= 1.11), p99 no worse"
echo "(the 100 KB file cannot cost Tremolo less than the mbedTLS AES-GCM floor above)"
exit $STATUS
