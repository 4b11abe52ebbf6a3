#!/usr/bin/env bash
# tests/bench/gateway.sh -- the ZeroMQ gateway (issues 3 and 12) against
# the stacks a user would pick instead, same app and same bytes out:
#   (a) a C node: Tremolo + docs/examples/c_node.c vs Mongrel2 + the
#       equivalent C handler tests/bench/m2_handler.c (the same design: HTTP
#       in front, ZeroMQ to the application): 1 worker with the whole stack
#       on CPU 0 and wrk on CPU 1; then Tremolo with 2 workers, unpinned
#       (Mongrel2 is single-threaded: it has no second worker to give);
#   (b) WSGI hello (tests/bench/wsgi_hello.py, 13 bytes): Tremolo + N node
#       processes vs nginx + uWSGI with N processes; N = 1 with the whole
#       stack on CPU 0 and wrk on CPU 1, then N = BENCH_PYNODES (2) unpinned;
#   (c) ASGI hello (tests/bench/asgi_hello.py, the same 13 bytes): Tremolo +
#       N ASGI node processes vs nginx + uvicorn with N workers, N as in (b);
#   (d) ASGI WebSocket echo (asgi_hello.py's websocket route; the client is
#       tests/bench/ws_client.c `echo`, 32-byte text messages in a closed
#       loop), the same two stacks, N as in (b).
#
# How every stack is configured, and why:
#   Tremolo: Workers N (the front gets as many workers as the app gets
#     processes), Scheduler reuseport, keep-alive 60 s / 1,000,000 requests,
#     liana + zmq (+ websocket for (c)/(d), site [WEBSOCKET] IdleTimeout 0,
#     PingInterval 0), no logger plugin (no access log, as the peers),
#     zmq Bind on loopback TCP, PingFreq 1s, site `Node bench-*`,
#     NodeGuard native (BENCH_GUARD): the setting docs/configuration.md
#     gives for nodes on libzmq >= 4 (every node here): the gateway
#     speaks ZMTP to them itself, as bounded as `on`, without the relay.
#   Tremolo's Python nodes: ONE command, as a user runs them:
#     `python3 -m tremolo_node --wsgi wsgi_hello:app --processes N --id bench`
#     (or `--asgi asgi_hello:app`): it forks bench-1 ... bench-N, distinct
#     identities (N = 1 runs as --id bench-1). The ASGI side needs
#     plugins/zmq/nodes/python/tremolo_asgi.py; without it (c)/(d) measure
#     the peer alone, saying so.
#   nginx (every peer): worker_processes N (matching), use epoll,
#     accept_mutex off, listen ... reuseport, access_log off, tcp_nodelay,
#     keep-alive to clients on (keepalive_timeout 60s, keepalive_requests
#     1000000, as Tremolo).
#   uWSGI behind nginx: its docs' setup for a local front end: a unix
#     socket (`--socket PATH --chmod-socket=666`, nginx `uwsgi_pass
#     unix:PATH` with /etc/nginx/uwsgi_params), `--master --processes N`,
#     `--disable-logging` (no request log, as Tremolo), `--die-on-term` so
#     SIGTERM stops it. (Over TCP it is about 25% slower than users run it.)
#   uvicorn behind nginx (Debian python3-uvicorn 0.17): as its deployment
#     docs recommend for production: `--loop uvloop --http httptools`,
#     `--uds PATH --workers N --no-access-log`; nginx `proxy_pass` to an
#     `upstream { server unix:PATH; keepalive 64; }` (the keepalive pool
#     needs the upstream block: a bare `proxy_pass http://unix:PATH` opens
#     a connection per request), `proxy_http_version 1.1`, `Connection ""`
#     for plain requests, and `Upgrade`/`Connection: upgrade` passed on
#     for WebSocket (a map on $http_upgrade), proxy_read/send_timeout 1d.
#   Mongrel2: access logging disabled, no daemon, zeromq.threads 1 (its
#     sample config); one m2_handler.
#
# Method: ../shared/BENCHMARKING.md -- both stacks side by side on free
# loopback ports, rounds alternate, ratios are taken within a round. For
# every run: req/s (msgs/s for (d)), p99 (wrk --latency; ws_client's for
# (d)), errors (non-2xx and socket errors for wrk; failed connections,
# wrong bytes and closes for ws_client): a run with errors is printed
# INVALID and gives no ratio. CPU per request is given SEPARATELY for the
# front (Tremolo's process / nginx master + workers / Mongrel2) and the app
# (node processes / uWSGI master + processes / uvicorn supervisor + workers
# / m2_handler): utime+stime of each whole process tree (lib.sh
# bench_cpu_ticks), children included. It reports; it does not assert
# targets: exit 0 when the measurements ran (a peer that is not installed
# is skipped with a message), 1 when a stack could not be measured or a
# run had errors.
#
# Environment knobs (defaults in brackets):
#   BENCH_TREMOLO   server binary      [$TREMOLO_BIN (set by make), build/tremolo]
#   BENCH_ROUNDS    rounds per scenario            [5]
#   BENCH_SECONDS   seconds per run                [5]
#   BENCH_CONNS     wrk / ws_client connections    [50]
#   BENCH_PYNODES   N of the unpinned (b)-(d) runs [2]
#   BENCH_ONLY      scenarios to run, e.g. "b c"   [a b c d]
#   BENCH_PYEXT     directory of the C runtime _tremolo*.so [python/
#                   beside the binary]
#   BENCH_GUARD     Tremolo's NodeGuard (on, off, native) [native]
#   BENCH_PYHELPER  directory of tremolo_node.py and its adapters
#                                     [plugins/zmq/nodes/python]
set -euo pipefail

cd "${TREMOLO_SRC:-$(dirname "$0")/../..}"
REPO=$(pwd)
. tests/bench/lib.sh

TREMOLO=${BENCH_TREMOLO:-${TREMOLO_BIN:-build/tremolo}}
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-50}
PYNODES=${BENCH_PYNODES:-2}
ONLY=${BENCH_ONLY:-a b c d}
GUARD=${BENCH_GUARD:-native}
PYTHON=/usr/bin/python3          # Debian's: it has python3-zmq, uvicorn
HELPER=${BENCH_PYHELPER:-$REPO/plugins/zmq/nodes/python}
# the C node runtime (_tremolo), built beside the binary; without it the
# nodes run on the helper's pure-Python path (they say which at start)
PYEXT=${BENCH_PYEXT:-$(cd "$(dirname "$TREMOLO")" && pwd)/python}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
MSG_SIZE=32
WS_PATH=/ws
BODY='hello, world
'

bench_require wrk curl ss taskset cc
bench_need_tremolo
bench_need_2cpus "stack on CPU 0, wrk on CPU 1"
bench_raise_nofile 65536
export LOGNAME=${LOGNAME:-root}  # mongrel2 complains without it

TMP=$(mktemp -d /tmp/tremolo-gwbench.XXXXXX)
declare -A PIDS FRONT APP PORT   # slot -> root pids (all / front / app), port
STATUS=0
SUMMARY=()

trap bench_cleanup_pids EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- builds

C_NODE="$TMP/c_node"
M2_HANDLER="$TMP/m2_handler"
WS_CLIENT="$TMP/ws_client"
cc -O2 -o "$C_NODE" docs/examples/c_node.c -lzmq
cc -O2 -o "$WS_CLIENT" tests/bench/ws_client.c tests/bench/ws_client_core.c
HAVE_M2=0
if command -v mongrel2 >/dev/null && command -v m2sh >/dev/null; then
    cc -O2 -o "$M2_HANDLER" tests/bench/m2_handler.c -lzmq && HAVE_M2=1
fi
HAVE_UWSGI=0
if command -v uwsgi >/dev/null && [ -x "$NGINX" ] &&
   uwsgi --plugin python3 --version >/dev/null 2>&1; then
    HAVE_UWSGI=1
fi
HAVE_UVICORN=0
if [ -x "$NGINX" ] && "$PYTHON" -c 'import uvicorn, uvloop, httptools, websockets' 2>/dev/null; then
    HAVE_UVICORN=1
fi
HAVE_ASGI=0
[ -f "$HELPER/tremolo_asgi.py" ] && HAVE_ASGI=1

# ---------------------------------------------------------------- stacks

# spawn SLOT ROLE CPUS CMD...: start CMD in the background (pinned to CPUS
# unless ""), add its PID to the slot's roots and to its ROLE's (front or
# app): each role's CPU is the sum over its trees.
spawn() {
    local slot=$1 role=$2 cpus=$3 pin=()
    shift 3
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    "${pin[@]}" "$@" < /dev/null &
    PIDS[$slot]="${PIDS[$slot]:-} $!"
    if [ "$role" = front ]; then FRONT[$slot]="${FRONT[$slot]:-} $!"
    else APP[$slot]="${APP[$slot]:-} $!"; fi
}

# wait_ws SLOT PID SECONDS: until one WebSocket echo goes through the
# stack (handshake and bytes checked by ws_client); fails early if PID dies.
wait_ws() {
    local slot=$1 pid=$2 secs=$3 i out
    for ((i = 0; i < secs * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        out=$("$WS_CLIENT" echo 1 1 127.0.0.1 "${PORT[$slot]}" "$WS_PATH" 2>/dev/null || true)
        [ -n "$out" ] && [ "${out##* }" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}

# start_tremolo SLOT WORKERS CPUS NODEKIND NNODES: Tremolo with the zmq
# gateway and NNODES node processes bench-1..N (kind c: one C node process
# each; wsgi / asgi: one `python3 -m tremolo_node --processes N` command),
# matched by the site's "Node bench-*". Ready when every node is announced
# available in the error log and a request answers 2xx (and, for asgi, a
# WebSocket echo goes through).
start_tremolo() {
    local slot=$1 workers=$2 cpus=$3 kind=$4 nnodes=$5
    local dir="$TMP/$slot" port zport root i ws="" id=bench
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    zport=$(bench_free_port "$port" ${PORT[@]+"${PORT[@]}"})
    mkdir -p "$dir/sites"
    cat > "$dir/tremolo.conf" <<EOF2
[SERVER]
    Listen 127.0.0.1:$port
    Workers $workers
    Scheduler reuseport
    ErrorLog $dir/error.log
    LogLevel info
    MimeTypes $REPO/conf/mime.types
    KeepAlive on
    KeepAliveMaxRequests 1000000
    KeepAliveTimeout 60s
EOF2
    # No logger plugin: no access log, as on the peers.
    [ "$kind" = asgi ] && ws=$'    Load websocket\n'
    printf '[PLUGINS]\n    Load liana\n    Load zmq\n%s' "$ws" > "$dir/plugins.load"
    printf '[ZMQ]\n    Bind tcp://127.0.0.1:%s\n    PingFreq 1s\n    NodeGuard %s\n' \
        "$zport" "$GUARD" > "$dir/zmq.conf"
    printf '[HOST]\n    ServerName 127.0.0.1\n    Default on\n    Handler zmq\n[ZMQ]\n    Node bench-*\n' \
        > "$dir/sites/default.conf"
    [ "$kind" = asgi ] &&
        printf '[WEBSOCKET]\n    IdleTimeout 0\n    PingInterval 0\n' >> "$dir/sites/default.conf"
    spawn "$slot" front "$cpus" "$TREMOLO" -c "$dir/tremolo.conf" > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    root=${FRONT[$slot]# }
    bench_wait_file "$dir/error.log" "zmq: nodes connect to" "$root" 10 || return 1
    case $kind in
    c)
        for ((i = 1; i <= nnodes; i++)); do
            spawn "$slot" app "$cpus" "$C_NODE" "bench-$i" "tcp://127.0.0.1:$zport" \
                > "$dir/node$i.log" 2>&1
        done ;;
    wsgi|asgi)
        # --processes 1 keeps the name as given: call that one bench-1.
        [ "$nnodes" = 1 ] && id=bench-1
        local app=wsgi_hello:app
        [ "$kind" = asgi ] && app=asgi_hello:app
        PYTHONPATH="$REPO/tests/bench:$HELPER:$PYEXT" spawn "$slot" app "$cpus" "$PYTHON" \
            -m tremolo_node --"$kind" "$app" --processes "$nnodes" --id "$id" \
            --connect "tcp://127.0.0.1:$zport" > "$dir/node.log" 2>&1 ;;
    esac
    for ((i = 1; i <= nnodes; i++)); do
        bench_wait_file "$dir/error.log" "node \"bench-$i\" is available" "$root" 20 || return 1
    done
    bench_wait_http "http://127.0.0.1:$port/" "$root" 10 || return 1
    [ "$kind" != asgi ] || wait_ws "$slot" "$root" 10
}

# start_mongrel2 SLOT CPUS: Mongrel2 (config loaded with m2sh into a
# sqlite db, access log disabled, no daemon, 1 ZeroMQ I/O thread as its
# sample config) + one m2_handler. Mongrel2 chroots into its directory
# when run as root, so every path in the config is relative to it.
start_mongrel2() {
    local slot=$1 cpus=$2 dir="$TMP/$1" port sport rport
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    sport=$(bench_free_port "$port" ${PORT[@]+"${PORT[@]}"})
    rport=$(bench_free_port "$port" "$sport" ${PORT[@]+"${PORT[@]}"})
    mkdir -p "$dir/logs" "$dir/run" "$dir/tmp"
    cat > "$dir/m2.conf" <<EOF
bench = Handler(send_spec='tcp://127.0.0.1:$sport',
                send_ident='7c1e7a4f-3f8e-4c4b-9d3f-2a1b0c9d8e70',
                recv_spec='tcp://127.0.0.1:$rport', recv_ident='')
main = Server(uuid="bench-m2", access_log="/logs/access.log",
              error_log="/logs/error.log", chroot="./",
              pid_file="/run/mongrel2.pid", default_host="127.0.0.1",
              name="bench", bind_addr="127.0.0.1", port=$port,
              hosts=[Host(name="127.0.0.1", routes={'/': bench})])
settings = {"zeromq.threads": 1, "server.daemonize": 0,
            "disable.access_logging": 1}
servers = [main]
EOF
    (cd "$dir" && m2sh load -config m2.conf -db config.sqlite) > "$dir/m2sh.log" 2>&1 || return 1
    spawn "$slot" front "$cpus" bash -c 'cd "$1" && exec mongrel2 config.sqlite bench-m2' \
        _ "$dir" > "$dir/stdout.log" 2>&1
    spawn "$slot" app "$cpus" "$M2_HANDLER" "tcp://127.0.0.1:$sport" "tcp://127.0.0.1:$rport" \
        > "$dir/handler.log" 2>&1
    PORT[$slot]=$port
    bench_wait_http "http://127.0.0.1:$port/" "$(echo ${PIDS[$slot]} | cut -d' ' -f1)" 10
}

# nginx_conf SLOT NWORKERS PORT LOCATION_BLOCK HTTP_EXTRA: the nginx
# settings every peer shares (see the header), in $TMP/SLOT/nginx.conf.
nginx_conf() {
    local slot=$1 nworkers=$2 port=$3 location=$4 extra=$5 dir="$TMP/$1"
    mkdir -p "$dir/tmp"
    cat > "$dir/nginx.conf" <<EOF2
daemon off;
master_process on;
user root;
worker_processes $nworkers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { use epoll; worker_connections 4096; accept_mutex off; }
http {
    access_log off;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$extra
    server {
        listen 127.0.0.1:$port reuseport;
        server_name 127.0.0.1;
$location
    }
}
EOF2
}

# start_nginx_uwsgi SLOT CPUS NPROC: uWSGI (--master, NPROC processes,
# logging off, --die-on-term) on a unix socket behind nginx (NPROC
# workers, uwsgi_pass unix:).
start_nginx_uwsgi() {
    local slot=$1 cpus=$2 nproc=$3 dir="$TMP/$1" port usock
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    usock="$dir/uwsgi.sock"
    mkdir -p "$dir"
    spawn "$slot" app "$cpus" uwsgi --plugin python3 --master --processes "$nproc" \
        --socket "$usock" --chmod-socket=666 \
        --wsgi-file "$REPO/tests/bench/wsgi_hello.py" \
        --disable-logging --die-on-term > "$dir/uwsgi.log" 2>&1
    nginx_conf "$slot" "$nproc" "$port" "        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$usock;
        }" ""
    spawn "$slot" front "$cpus" "$NGINX" -c "$dir/nginx.conf" -p "$dir/" -e "$dir/error.log" \
        > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    bench_wait_http "http://127.0.0.1:$port/" "${FRONT[$slot]# }" 15
}

# start_nginx_uvicorn SLOT CPUS NPROC: uvicorn (uvloop, httptools, NPROC
# workers, no access log) on a unix socket behind nginx (NPROC workers,
# keep-alive upstream, WebSocket upgrade passed on).
start_nginx_uvicorn() {
    local slot=$1 cpus=$2 nproc=$3 dir="$TMP/$1" port usock
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    usock="$dir/uvicorn.sock"
    mkdir -p "$dir"
    spawn "$slot" app "$cpus" "$PYTHON" -m uvicorn asgi_hello:app \
        --app-dir "$REPO/tests/bench" --uds "$usock" --workers "$nproc" \
        --loop uvloop --http httptools --ws websockets --no-access-log \
        > "$dir/uvicorn.log" 2>&1
    nginx_conf "$slot" "$nproc" "$port" "        location / {
            proxy_pass http://uvicorn;
            proxy_http_version 1.1;
            proxy_set_header Host \$host;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_read_timeout 1d;
            proxy_send_timeout 1d;
        }" "    map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
    upstream uvicorn { server unix:$usock; keepalive 64; }"
    spawn "$slot" front "$cpus" "$NGINX" -c "$dir/nginx.conf" -p "$dir/" -e "$dir/error.log" \
        > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    bench_wait_http "http://127.0.0.1:$port/" "${FRONT[$slot]# }" 20 || return 1
    wait_ws "$slot" "${FRONT[$slot]# }" 10
}

# start_slot SLOT KIND N CPUS: N = Tremolo's workers for tremolo-c, the
# processes (and front workers) for the Python stacks.
start_slot() {
    local slot=$1 kind=$2 n=$3 cpus=$4 rc=0 p
    case $kind in
        tremolo-c)     start_tremolo "$slot" "$n" "$cpus" c 1 || rc=1 ;;
        tremolo-wsgi)  start_tremolo "$slot" "$n" "$cpus" wsgi "$n" || rc=1 ;;
        tremolo-asgi)  start_tremolo "$slot" "$n" "$cpus" asgi "$n" || rc=1 ;;
        mongrel2)      start_mongrel2 "$slot" "$cpus" || rc=1 ;;
        nginx-uwsgi)   start_nginx_uwsgi "$slot" "$cpus" "$n" || rc=1 ;;
        nginx-uvicorn) start_nginx_uvicorn "$slot" "$cpus" "$n" || rc=1 ;;
    esac
    if [ $rc != 0 ]; then
        echo "gateway.sh: $slot ($kind) did not start" >&2
        tail -n 15 "$TMP/$slot"/*.log "$TMP/$slot"/logs/*.log >&2 2>/dev/null || true
        return 1
    fi
    # Children spawned later inherit the affinity; pin every tree again in
    # case a thread changed its own.
    if [ -n "$cpus" ]; then
        for p in ${PIDS[$slot]}; do bench_pin "$cpus" "$p"; done
    fi
    bench_log "$slot ($kind): front${FRONT[$slot]} app${APP[$slot]} port ${PORT[$slot]}${cpus:+ cpu $cpus}"
}

stop_slot() {
    local p
    [ -n "${PIDS[$1]:-}" ] || return 0
    # the front first: it stops sending to the app, then the app goes
    for p in ${FRONT[$1]:-} ${APP[$1]:-}; do bench_stop "$p"; done
    unset "PIDS[$1]" "FRONT[$1]" "APP[$1]" "PORT[$1]"
}

# check_response SLOT MODE: http: 200 with the 13-byte body (prints the
# head size); ws: one echo through (handshake and bytes checked).
check_response() {
    local slot=$1 mode=$2 code out
    if [ "$mode" = ws ]; then
        out=$("$WS_CLIENT" echo 1 1 127.0.0.1 "${PORT[$slot]}" "$WS_PATH" 2>&1 || true)
        if [ -z "$out" ] || [ "${out##* }" != 0 ]; then
            echo "gateway.sh: $slot: no WebSocket echo ($out)" >&2
            return 1
        fi
        echo "$slot: WebSocket upgrade and echo checked"
        return 0
    fi
    code=$(curl -s -D "$TMP/$slot.head" -o "$TMP/$slot.body" -w '%{http_code}' \
           "http://127.0.0.1:${PORT[$slot]}/")
    if [ "$code" != 200 ] || [ "$(cat "$TMP/$slot.body"; echo x)" != "${BODY}x" ]; then
        echo "gateway.sh: $slot answered $code with the wrong body" >&2
        return 1
    fi
    echo "$slot: 200, 13-byte body, head $(wc -c < "$TMP/$slot.head") bytes"
}

# ticks PIDS...: CPU ticks of the process trees rooted at PIDS.
ticks() {
    local t=0 p
    for p in "$@"; do t=$((t + $(bench_cpu_ticks "$p"))); done
    echo "$t"
}

# measure SLOT SECONDS WRKCPU MODE: one run, wrk (http) or ws_client echo
# (ws); prints "rate p99_ms us_front us_app errors" (us = CPU µs per
# request / message of the front's and of the app's process trees).
measure() {
    local slot=$1 secs=$2 wcpu=$3 mode=$4 pin=() f0 a0 f1 a1 out="$TMP/run.$1.txt"
    local n rate p99 err p50
    [ -n "$wcpu" ] && pin=(taskset -c "$wcpu")
    f0=$(ticks ${FRONT[$slot]}); a0=$(ticks ${APP[$slot]})
    if [ "$mode" = ws ]; then
        "${pin[@]}" "$WS_CLIENT" echo "$CONNS" "$secs" 127.0.0.1 "${PORT[$slot]}" \
            "$WS_PATH" "$MSG_SIZE" > "$out" 2> "$out.err" || true
        read -r n rate p50 p99 err < <(cat "$out"; echo "- - - - 1")
    else
        "${pin[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" --latency \
            "http://127.0.0.1:${PORT[$slot]}/" > "$out" 2>&1 || true
        read -r n rate p99 err < <(bench_wrk_parse "$out")
    fi
    f1=$(ticks ${FRONT[$slot]}); a1=$(ticks ${APP[$slot]})
    if [ "$n" = - ] || [ "${n:-0}" = 0 ]; then
        echo "- - - - ${err:-1}"; return 0
    fi
    awk -v f=$((f1 - f0)) -v a=$((a1 - a0)) -v hz="$BENCH_CLK_TCK" -v n="$n" \
        -v r="$rate" -v p="$p99" -v e="$err" 'BEGIN {
            printf "%s %s %.2f %.2f %s\n", r, p, f / hz * 1e6 / n, a / hz * 1e6 / n, e }'
}

# gw_rounds A B WRKCPU MODE UNIT: warm-up, then ROUNDS rounds alternating
# which slot goes first; the per-run table, medians [min-max] and the
# median of per-round ratios A/B (as lib.sh's bench_rounds, with the CPU
# split into front and app). Sets BENCH_RATIOS.
gw_rounds() {
    local A=$1 B=$2 wcpu=$3 mode=$4 unit=$5 r n first second bad flag
    local rate p99 uf ua err
    local -a ra=() rb=() pa=() pb=() fa=() fb=() aa=() ab=() q_r=() q_p=() q_f=() q_a=()
    for n in "$A" "$B"; do measure "$n" 1 "$wcpu" "$mode" > /dev/null; done   # warm-up
    printf '%-6s %-15s %11s %9s %15s %15s  %s\n' round stack "$unit/s" "p99 ms" \
        "us/$unit front" "us/$unit app" ""
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then first=$A; second=$B; else first=$B; second=$A; fi
        local -A res=()
        bad=0
        for n in "$first" "$second"; do
            res[$n]=$(measure "$n" "$SECONDS_PER_RUN" "$wcpu" "$mode")
            read -r rate p99 uf ua err <<< "${res[$n]}"
            flag=""
            if [ "$rate" = - ] || [ "$err" != 0 ]; then
                flag="INVALID ($err errors)"; bad=1; STATUS=1
            fi
            printf '%-6s %-15s %11s %9s %15s %15s  %s\n' "$r" "$n" "$rate" "$p99" \
                "$uf" "$ua" "$flag"
        done
        [ $bad = 1 ] && continue      # a round with an invalid run gives no ratio
        local r1 p1 f1 a1 r2 p2 f2 a2
        read -r r1 p1 f1 a1 _ <<< "${res[$A]}"
        read -r r2 p2 f2 a2 _ <<< "${res[$B]}"
        ra+=("$r1"); pa+=("$p1"); fa+=("$f1"); aa+=("$a1")
        rb+=("$r2"); pb+=("$p2"); fb+=("$f2"); ab+=("$a2")
        q_r+=("$(bench_div "$r1" "$r2")"); q_p+=("$(bench_div "$p1" "$p2")")
        q_f+=("$(bench_div "$f1" "$f2")"); q_a+=("$(bench_div "$a1" "$a2")")
    done
    echo
    echo "-- $TITLE: median [min-max] over ${#ra[@]} valid rounds"
    printf '%-15s %26s %22s %22s %22s\n' stack "$unit/s" "p99 ms" "us/$unit front" "us/$unit app"
    printf '%-15s %26s %22s %22s %22s\n' "$A" "$(fmt_stats ${ra[@]+"${ra[@]}"})" \
        "$(fmt_stats ${pa[@]+"${pa[@]}"})" "$(fmt_stats ${fa[@]+"${fa[@]}"})" \
        "$(fmt_stats ${aa[@]+"${aa[@]}"})"
    printf '%-15s %26s %22s %22s %22s\n' "$B" "$(fmt_stats ${rb[@]+"${rb[@]}"})" \
        "$(fmt_stats ${pb[@]+"${pb[@]}"})" "$(fmt_stats ${fb[@]+"${fb[@]}"})" \
        "$(fmt_stats ${ab[@]+"${ab[@]}"})"
    local mr mp mf ma
    read -r mr _ _ <<< "$(bench_stats ${q_r[@]+"${q_r[@]}"})"
    read -r mp _ _ <<< "$(bench_stats ${q_p[@]+"${q_p[@]}"})"
    read -r mf _ _ <<< "$(bench_stats ${q_f[@]+"${q_f[@]}"})"
    read -r ma _ _ <<< "$(bench_stats ${q_a[@]+"${q_a[@]}"})"
    mr=$(bench_div "$mr" 1); mp=$(bench_div "$mp" 1)
    mf=$(bench_div "$mf" 1); ma=$(bench_div "$ma" 1)
    echo "ratio $A/$B (median of per-round ratios):"
    printf '  %-13s %s  (%s)\n' "$unit/s" "$mr" "$(better "$mr" high "$A" "$B")" \
        p99 "$mp" "$(better "$mp" low "$A" "$B")" \
        "us/$unit front" "$mf" "$(better "$mf" low "$A" "$B")" \
        "us/$unit app" "$ma" "$(better "$ma" low "$A" "$B")"
    BENCH_RATIOS="$unit/s x$mr, p99 x$mp, front CPU x$mf, app CPU x$ma"
}

# scenario TITLE SHORT MODE A KIND_A B KIND_B N SRVCPU WRKCPU
scenario() {
    local title=$1 short=$2 mode=$3 A=$4 ka=$5 B=$6 kb=$7 n=$8 scpu=$9 wcpu=${10}
    local unit=req
    [ "$mode" = ws ] && unit=msg
    echo
    echo "== $title: $([ "$mode" = ws ] && echo "ws_client echo $CONNS conns, ${MSG_SIZE}-byte messages" || echo "wrk -t1 -c$CONNS"), ${SECONDS_PER_RUN}s runs, $ROUNDS rounds =="
    if ! start_slot "$A" "$ka" "$n" "$scpu"; then
        echo "NOT MEASURED: $A did not start"; STATUS=1
        SUMMARY+=("$short: not measured"); stop_slot "$A"; return 0
    fi
    if ! start_slot "$B" "$kb" "$n" "$scpu"; then
        echo "NOT MEASURED: $B did not start"
        SUMMARY+=("$short: $B did not start"); stop_slot "$A"; stop_slot "$B"; return 0
    fi
    if ! check_response "$A" "$mode" || ! check_response "$B" "$mode"; then
        echo "INVALID: wrong response"; STATUS=1
        SUMMARY+=("$short: wrong response"); stop_slot "$A"; stop_slot "$B"; return 0
    fi
    TITLE=$title gw_rounds "$A" "$B" "$wcpu" "$mode" "$unit"
    SUMMARY+=("$short: $BENCH_RATIOS")
    stop_slot "$A"; stop_slot "$B"
}

# single TITLE SHORT MODE SLOT KIND N SRVCPU WRKCPU: one stack alone, when
# the other side cannot run (peer not installed, or no tremolo_asgi.py).
single() {
    local title=$1 short=$2 mode=$3 A=$4 ka=$5 n=$6 scpu=$7 wcpu=$8 r rate p99 uf ua err
    local -a v=()
    local unit=req
    [ "$mode" = ws ] && unit=msg
    echo
    echo "== $title, $ROUNDS runs =="
    if ! start_slot "$A" "$ka" "$n" "$scpu" || ! check_response "$A" "$mode"; then
        echo "NOT MEASURED"; STATUS=1; SUMMARY+=("$short: not measured"); stop_slot "$A"; return 0
    fi
    measure "$A" 1 "$wcpu" "$mode" > /dev/null
    printf '%-6s %-15s %11s %9s %15s %15s  %s\n' run stack "$unit/s" "p99 ms" \
        "us/$unit front" "us/$unit app" ""
    for ((r = 1; r <= ROUNDS; r++)); do
        read -r rate p99 uf ua err <<< "$(measure "$A" "$SECONDS_PER_RUN" "$wcpu" "$mode")"
        printf '%-6s %-15s %11s %9s %15s %15s  %s\n' "$r" "$A" "$rate" "$p99" "$uf" "$ua" \
            "$([ "$err" = 0 ] || echo "INVALID ($err errors)")"
        if [ "$err" = 0 ]; then v+=("$rate"); else STATUS=1; fi
    done
    SUMMARY+=("$short: $A alone $(fmt_stats ${v[@]+"${v[@]}"}) $unit/s")
    stop_slot "$A"
}

# python_pair LETTER WHAT MODE TREMOLO_KIND PEER_KIND HAVE_PEER HAVE_TREMOLO
# WHY_NOT: the two configurations of (b)-(d), N = 1 pinned and N =
# PYNODES unpinned, as pairs, or one side alone.
python_pair() {
    local letter=$1 what=$2 mode=$3 tk=$4 pk=$5 have_peer=$6 have_tremolo=$7 why=$8
    local n title short cpus wcpu peer=${pk#nginx-} mine=${tk#tremolo-}
    for n in 1 "$PYNODES"; do
        if [ "$n" = 1 ]; then
            cpus=0; wcpu=1; title="($letter) $what, 1 process, stack on CPU 0, client on CPU 1"
        else
            cpus=""; wcpu=""; title="($letter) $what, $n processes and $n front workers, unpinned"
        fi
        short="($letter) x$n"
        if [ "$have_peer" = 1 ] && [ "$have_tremolo" = 1 ]; then
            scenario "$title" "$short" "$mode" "tremolo+$mine" "$tk" "nginx+$peer" "$pk" "$n" "$cpus" "$wcpu"
        elif [ "$have_tremolo" = 1 ]; then
            single "$title (peer not installed: Tremolo alone)" "$short" "$mode" \
                "tremolo+$mine" "$tk" "$n" "$cpus" "$wcpu"
        elif [ "$have_peer" = 1 ]; then
            echo; echo "($letter) Tremolo side skipped: $why"
            single "$title (the peer alone)" "$short" "$mode" "nginx+$peer" "$pk" "$n" "$cpus" "$wcpu"
        else
            echo; echo "($letter) skipped: $why"
        fi
    done
}

# ---------------------------------------------------------------- main

echo "gateway.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo "tremolo: $TREMOLO ($("$TREMOLO" -V 2>&1 | head -n1 || true)); liana + zmq (+ websocket for ASGI), no logger (no access log), Workers = N"
echo "python nodes: $PYTHON -m tremolo_node --wsgi|--asgi MODULE:app --processes N --id bench (bench-1 ... bench-N)"
[ $HAVE_M2 = 1 ] && echo "mongrel2: $(dpkg-query -W -f '${Version}' mongrel2-core 2>/dev/null || echo '?'); access logging disabled, zeromq.threads 1"
[ -x "$NGINX" ] && echo "nginx $($NGINX -v 2>&1 | sed 's/.*: //'): worker_processes N, access_log off, keep-alive to clients"
[ $HAVE_UWSGI = 1 ] && echo "uwsgi $(uwsgi --version): --master --processes N --disable-logging, unix socket --chmod-socket=666, nginx uwsgi_pass unix:"
[ $HAVE_UVICORN = 1 ] && echo "uvicorn $("$PYTHON" -c 'import uvicorn; print(uvicorn.__version__)'): --loop uvloop --http httptools --uds --workers N --no-access-log, nginx proxy_pass to a keepalive unix: upstream, HTTP/1.1, Upgrade passed on"
LOAD=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at start: $LOAD$(awk -v l="$LOAD" 'BEGIN { if (l > 0.5) print " -- other jobs are running: figures will be noisy" }')"
echo "us/req front = the front's process tree (Tremolo / nginx / Mongrel2); app = the app's trees (nodes / uWSGI / uvicorn / m2_handler), children included"

case " $ONLY " in *" a "*)
if [ $HAVE_M2 = 1 ]; then
    scenario "(a) C node vs Mongrel2 + C handler, 1 worker, stack on CPU 0, wrk on CPU 1" \
        "(a) 1 worker" http tremolo+c tremolo-c mongrel2+c mongrel2 1 0 1
    scenario "(a) C node vs Mongrel2 + C handler, Tremolo 2 workers (Mongrel2 has 1), unpinned" \
        "(a) 2 workers" http tremolo+c tremolo-c mongrel2+c mongrel2 2 "" ""
else
    echo; echo "(a) skipped the peer: mongrel2/m2sh not found (Debian mongrel2-core)"
    single "(a) C node, 1 worker, stack on CPU 0, wrk on CPU 1" "(a) 1 worker" http tremolo+c tremolo-c 1 0 1
    single "(a) C node, 2 workers, unpinned" "(a) 2 workers" http tremolo+c tremolo-c 2 "" ""
fi ;;
esac
NO_UWSGI="uwsgi/python3 plugin or nginx not found (Debian uwsgi-core, uwsgi-plugin-python3, nginx-light)"
NO_ASGI="$HELPER/tremolo_asgi.py (the ASGI adapter) is not there"
case " $ONLY " in *" b "*)
    [ $HAVE_UWSGI = 1 ] || { echo; echo "(b) the peer is not installed: $NO_UWSGI"; }
    python_pair b "WSGI hello: Tremolo + python3 -m tremolo_node --wsgi vs nginx + uWSGI" \
        http tremolo-wsgi nginx-uwsgi $HAVE_UWSGI 1 "" ;;
esac
[ $HAVE_UVICORN = 1 ] || {
    echo; echo "(c)/(d) the peer is not installed: nginx or python3-uvicorn/uvloop/httptools/websockets"; }
case " $ONLY " in *" c "*)
    python_pair c "ASGI hello: Tremolo + python3 -m tremolo_node --asgi vs nginx + uvicorn" \
        http tremolo-asgi nginx-uvicorn $HAVE_UVICORN $HAVE_ASGI "$NO_ASGI" ;;
esac
case " $ONLY " in *" d "*)
    python_pair d "ASGI WebSocket echo: Tremolo + python3 -m tremolo_node --asgi vs nginx + uvicorn" \
        ws tremolo-asgi nginx-uvicorn $HAVE_UVICORN $HAVE_ASGI "$NO_ASGI" ;;
esac

echo
echo "load average at end: $(cut -d' ' -f1 /proc/loadavg)"
printf "SUMMARY (tremolo/peer): %s\n" "$(IFS=';'; echo "${SUMMARY[*]}" | sed 's/;/; /g')"
echo "targets (issue 3): (a) req/s >= 2x Mongrel2. (issue 12): (b) req/s >= 1.5x nginx+uWSGI, p99 no worse;"
echo "  (c)/(d) req/s, msgs/s >= 1.5x nginx+uvicorn; Tremolo's CPU per gateway request <= 2x its CPU per static request (static.sh)"
exit $STATUS
