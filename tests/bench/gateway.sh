#!/usr/bin/env bash
# tests/bench/gateway.sh -- the ZeroMQ gateway (issue 3) against the
# stacks a user would pick instead, for a trivial 13-byte response:
#   (a) Tremolo + a C node (docs/examples/c_node.c) vs Mongrel2 + an
#       equivalent C handler (tests/bench/m2_handler.c): the same design,
#       HTTP in front, ZeroMQ to the application;
#       1. 1 worker, the whole stack on CPU 0, wrk on CPU 1;
#       2. Tremolo with 2 workers, unpinned (Mongrel2 is single-threaded:
#          it has no second worker to give);
#   (b) Tremolo + N Python nodes (plugins/zmq/nodes/python/tremolo_wsgi.py)
#       vs nginx + uWSGI with N Python processes, both running
#       tests/bench/wsgi_hello.py; 1 HTTP worker each, unpinned.
#
# How each peer is configured:
#   Tremolo     1 or 2 workers, Scheduler reuseport, liana + zmq, no logger
#               (no access log), keep-alive on; the zmq gateway bound on a
#               loopback TCP port, PingFreq 1s, site "Node bench-*".
#   C node      docs/examples/c_node.c, one process, identity bench-1.
#   Python      ONE command, `tremolo_wsgi.py wsgi_hello:app --processes N
#               --id bench`: N forked processes with distinct identities
#               bench-1 ... bench-N (two peers with one identity would be one
#               node to ZeroMQ, the second idle); the parent forwards SIGTERM.
#   Mongrel2    config loaded with m2sh, access logging disabled, no daemon,
#               zeromq.threads 1, + m2_handler.c over TCP send/recv specs.
#   nginx+uWSGI as their docs recommend for a local front end: uWSGI
#               --master --processes N --disable-logging --die-on-term on a
#               UNIX socket (--socket DIR/uwsgi.sock --chmod-socket=660; nginx
#               runs as root here, so 660 is enough), nginx 1 worker, epoll,
#               access_log off, `uwsgi_pass unix:DIR/uwsgi.sock;` with
#               /etc/nginx/uwsgi_params, the same keep-alive as Tremolo.
#
# Method: ../shared/BENCHMARKING.md -- both stacks side by side on free
# loopback ports, rounds alternate, ratios are taken within a round.
# us/req is the CPU of the WHOLE stack (server + nodes / handler / uWSGI
# processes) per completed request. A run with socket errors or error
# statuses is printed INVALID and gives no ratio. It reports; it does not
# assert targets: exit 0 when the measurements ran (a peer that is not
# installed is skipped with a message), 1 when Tremolo itself could not be
# measured.
#
# Environment knobs (defaults in brackets):
#   BENCH_TREMOLO   server binary      [$TREMOLO_BIN (set by make), build/tremolo]
#   BENCH_ROUNDS    rounds per scenario            [5]
#   BENCH_SECONDS   seconds per wrk run            [5]
#   BENCH_CONNS     wrk connections                [50]
#   BENCH_PYNODES   Python processes in (b)        [2]
set -euo pipefail

cd "${TREMOLO_SRC:-$(dirname "$0")/../..}"
REPO=$(pwd)
. tests/bench/lib.sh

TREMOLO=${BENCH_TREMOLO:-${TREMOLO_BIN:-build/tremolo}}
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-50}
PYNODES=${BENCH_PYNODES:-2}
PYTHON=/usr/bin/python3          # Debian's: it has python3-zmq
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
BODY='hello, world
'

bench_require wrk curl ss taskset cc
bench_need_tremolo
bench_need_2cpus "stack on CPU 0, wrk on CPU 1"
bench_raise_nofile 65536
export LOGNAME=${LOGNAME:-root}  # mongrel2 complains without it

TMP=$(mktemp -d /tmp/tremolo-gwbench.XXXXXX)
declare -A PIDS PORT             # slot -> "pid pid ..." (roots), port
STATUS=0
SUMMARY=()

cleanup() {
    local name p
    set +e
    for name in "${!PIDS[@]}"; do
        for p in ${PIDS[$name]}; do bench_stop "$p"; done
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- builds

C_NODE="$TMP/c_node"
M2_HANDLER="$TMP/m2_handler"
cc -O2 -o "$C_NODE" docs/examples/c_node.c -lzmq
HAVE_M2=0
if command -v mongrel2 >/dev/null && command -v m2sh >/dev/null; then
    cc -O2 -o "$M2_HANDLER" tests/bench/m2_handler.c -lzmq && HAVE_M2=1
fi
HAVE_UWSGI=0
if command -v uwsgi >/dev/null && [ -x "$NGINX" ] &&
   uwsgi --plugin python3 --version >/dev/null 2>&1; then
    HAVE_UWSGI=1
fi

# ---------------------------------------------------------------- stacks

# spawn SLOT CPUS CMD...: start CMD in the background (pinned to CPUS
# unless ""), add its PID to the slot's roots.
spawn() {
    local slot=$1 cpus=$2 pin=()
    shift 2
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    "${pin[@]}" "$@" < /dev/null &
    PIDS[$slot]="${PIDS[$slot]:-} $!"
}

# start_tremolo SLOT WORKERS CPUS NODEKIND NNODES: Tremolo with the zmq
# gateway and NNODES nodes (c or py) named bench-1..N, matched by the
# site's "Node bench-*" (zero-config). Ready when every node is announced
# available in the error log and a request answers 2xx.
start_tremolo() {
    local slot=$1 workers=$2 cpus=$3 kind=$4 nnodes=$5
    local dir="$TMP/$slot" port zport root i
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    zport=$(bench_free_port "$port" ${PORT[@]+"${PORT[@]}"})
    mkdir -p "$dir/sites"
    cat > "$dir/tremolo.conf" <<EOF
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
EOF
    # No logger plugin: no access log, as on the peers.
    printf '[PLUGINS]\n    Load liana\n    Load zmq\n' > "$dir/plugins.load"
    printf '[ZMQ]\n    Bind tcp://127.0.0.1:%s\n    PingFreq 1s\n' "$zport" > "$dir/zmq.conf"
    printf '[HOST]\n    ServerName 127.0.0.1\n    Default on\n    Handler zmq\n[ZMQ]\n    Node bench-*\n' \
        > "$dir/sites/default.conf"
    spawn "$slot" "$cpus" "$TREMOLO" -c "$dir/tremolo.conf" > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    root=${PIDS[$slot]# }
    bench_wait_file "$dir/error.log" "zmq: nodes connect to" "$root" 10 || return 1
    if [ "$kind" = c ]; then
        for ((i = 1; i <= nnodes; i++)); do
            spawn "$slot" "$cpus" "$C_NODE" "bench-$i" "tcp://127.0.0.1:$zport" \
                > "$dir/node$i.log" 2>&1
        done
    elif [ "$nnodes" = 1 ]; then
        # --processes 1 is one process named exactly --id: no fork.
        PYTHONPATH="$REPO/tests/bench" spawn "$slot" "$cpus" "$PYTHON" \
            "$REPO/plugins/zmq/nodes/python/tremolo_wsgi.py" wsgi_hello:app \
            --id bench-1 --connect "tcp://127.0.0.1:$zport" > "$dir/node.log" 2>&1
    else
        # One parent forks bench-1 ... bench-N (its tree is measured).
        PYTHONPATH="$REPO/tests/bench" spawn "$slot" "$cpus" "$PYTHON" \
            "$REPO/plugins/zmq/nodes/python/tremolo_wsgi.py" wsgi_hello:app \
            --processes "$nnodes" --id bench --connect "tcp://127.0.0.1:$zport" \
            > "$dir/node.log" 2>&1
    fi
    for ((i = 1; i <= nnodes; i++)); do
        bench_wait_file "$dir/error.log" "node \"bench-$i\" is available" "$root" 15 || return 1
    done
    bench_wait_http "http://127.0.0.1:$port/" "$root" 10
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
    spawn "$slot" "$cpus" bash -c 'cd "$1" && exec mongrel2 config.sqlite bench-m2' \
        _ "$dir" > "$dir/stdout.log" 2>&1
    spawn "$slot" "$cpus" "$M2_HANDLER" "tcp://127.0.0.1:$sport" "tcp://127.0.0.1:$rport" \
        > "$dir/handler.log" 2>&1
    PORT[$slot]=$port
    bench_wait_http "http://127.0.0.1:$port/" "$(echo ${PIDS[$slot]} | cut -d' ' -f1)" 10
}

# start_nginx_uwsgi SLOT CPUS NPROC: uWSGI (--master, NPROC processes,
# logging off, --die-on-term so SIGTERM stops it) on a unix socket, as its
# docs recommend behind a local nginx, behind nginx (1 worker,
# uwsgi_pass unix:, access_log off, same keep-alive as Tremolo).
start_nginx_uwsgi() {
    local slot=$1 cpus=$2 nproc=$3 dir="$TMP/$1" port usock root
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    usock="$dir/uwsgi.sock"
    mkdir -p "$dir/tmp"
    spawn "$slot" "$cpus" uwsgi --plugin python3 --master --processes "$nproc" \
        --socket "$usock" --chmod-socket=660 \
        --wsgi-file "$REPO/tests/bench/wsgi_hello.py" \
        --disable-logging --die-on-term > "$dir/uwsgi.log" 2>&1
    cat > "$dir/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes 1;
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
    server {
        listen 127.0.0.1:$port reuseport;
        server_name 127.0.0.1;
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$usock;
        }
    }
}
EOF
    spawn "$slot" "$cpus" "$NGINX" -c "$dir/nginx.conf" -p "$dir/" -e "$dir/error.log" \
        > "$dir/stdout.log" 2>&1
    PORT[$slot]=$port
    root=$(echo ${PIDS[$slot]} | awk '{ print $NF }')
    bench_wait_http "http://127.0.0.1:$port/" "$root" 15
}

# start_slot SLOT KIND WORKERS CPUS
start_slot() {
    local slot=$1 kind=$2 workers=$3 cpus=$4 rc=0 p
    case $kind in
        tremolo-c)   start_tremolo "$slot" "$workers" "$cpus" c 1 || rc=1 ;;
        tremolo-py)  start_tremolo "$slot" "$workers" "$cpus" py "$PYNODES" || rc=1 ;;
        mongrel2)    start_mongrel2 "$slot" "$cpus" || rc=1 ;;
        nginx-uwsgi) start_nginx_uwsgi "$slot" "$cpus" "$PYNODES" || rc=1 ;;
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
    bench_log "$slot ($kind): pids${PIDS[$slot]} port ${PORT[$slot]}${cpus:+ cpu $cpus}"
}

stop_slot() {
    local p
    [ -n "${PIDS[$1]:-}" ] || return 0
    for p in ${PIDS[$1]}; do bench_stop "$p"; done
    unset "PIDS[$1]" "PORT[$1]"
}

# check_response SLOT: 200 with the 13-byte body; prints the head size.
check_response() {
    local slot=$1 code
    code=$(curl -s -D "$TMP/$slot.head" -o "$TMP/$slot.body" -w '%{http_code}' \
           "http://127.0.0.1:${PORT[$slot]}/")
    if [ "$code" != 200 ] || [ "$(cat "$TMP/$slot.body"; echo x)" != "${BODY}x" ]; then
        echo "gateway.sh: $slot answered $code with the wrong body" >&2
        return 1
    fi
    echo "$slot: 200, 13-byte body, head $(wc -c < "$TMP/$slot.head") bytes"
}

# stack_ticks SLOT: CPU ticks of every process tree of the slot.
stack_ticks() {
    local t=0 p
    for p in ${PIDS[$1]}; do t=$((t + $(bench_cpu_ticks "$p"))); done
    echo "$t"
}

# measure SLOT SECONDS WRKCPU: "req/s p99_ms us_per_req errors".
measure() {
    local slot=$1 secs=$2 wcpu=$3 pin=() t0 t1 out="$TMP/wrk.$1.txt" us
    [ -n "$wcpu" ] && pin=(taskset -c "$wcpu")
    t0=$(stack_ticks "$slot")
    "${pin[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" --latency \
        "http://127.0.0.1:${PORT[$slot]}/" > "$out" 2>&1 || true
    t1=$(stack_ticks "$slot")
    read -r req rps p99 err < <(bench_wrk_parse "$out")
    us=$(awk -v d=$((t1 - t0)) -v hz="$BENCH_CLK_TCK" -v n="$req" \
         'BEGIN { if (n + 0 > 0) printf "%.2f", d / hz * 1e6 / n; else print "-" }')
    echo "$rps $p99 $us $err"
}

# scenario TITLE SHORT A KIND_A WORKERS_A B KIND_B WORKERS_B SRVCPU WRKCPU
scenario() {
    local title=$1 short=$2 A=$3 ka=$4 wa=$5 B=$6 kb=$7 wb=$8 scpu=$9 wcpu=${10}

    echo
    echo "== $title: wrk -t1 -c$CONNS -d${SECONDS_PER_RUN}s, $ROUNDS rounds =="
    if ! start_slot "$A" "$ka" "$wa" "$scpu"; then
        echo "NOT MEASURED: $A did not start"; STATUS=1
        SUMMARY+=("$short: not measured"); stop_slot "$A"; return 0
    fi
    if ! start_slot "$B" "$kb" "$wb" "$scpu"; then
        echo "NOT MEASURED: $B did not start"
        SUMMARY+=("$short: $B did not start"); stop_slot "$A"; stop_slot "$B"; return 0
    fi
    if ! check_response "$A" || ! check_response "$B"; then
        echo "INVALID: wrong response"; STATUS=1
        SUMMARY+=("$short: wrong response"); stop_slot "$A"; stop_slot "$B"; return 0
    fi
    TITLE=$title bench_rounds "$A" "$B" "$wcpu" stack "stack CPU"
    SUMMARY+=("$short: $BENCH_RATIOS")
    stop_slot "$A"; stop_slot "$B"
}

# single TITLE SHORT SLOT KIND WORKERS SRVCPU WRKCPU: Tremolo alone, when
# the peer is not installed.
single() {
    local title=$1 short=$2 A=$3 ka=$4 wa=$5 scpu=$6 wcpu=$7 r rps p99 us err
    local -a v=()
    echo
    echo "== $title (peer not installed: Tremolo alone), $ROUNDS runs =="
    if ! start_slot "$A" "$ka" "$wa" "$scpu" || ! check_response "$A"; then
        echo "NOT MEASURED"; STATUS=1; SUMMARY+=("$short: not measured"); stop_slot "$A"; return 0
    fi
    measure "$A" 1 "$wcpu" > /dev/null
    for ((r = 1; r <= ROUNDS; r++)); do
        read -r rps p99 us err <<< "$(measure "$A" "$SECONDS_PER_RUN" "$wcpu")"
        printf '%-6s %-14s %12s %9s %9s  %s\n' "$r" "$A" "$rps" "$p99" "$us" \
            "$([ "$err" = 0 ] || echo "INVALID ($err errors)")"
        [ "$err" = 0 ] && v+=("$rps")
    done
    SUMMARY+=("$short: tremolo alone $(fmt_stats ${v[@]+"${v[@]}"}) req/s")
    stop_slot "$A"
}

# ---------------------------------------------------------------- main

echo "gateway.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo "tremolo: $TREMOLO ($("$TREMOLO" -V 2>&1 | head -n1 || true)); liana + zmq, no logger (no access log)"
[ $HAVE_M2 = 1 ] && echo "mongrel2: $(dpkg-query -W -f '${Version}' mongrel2-core 2>/dev/null || echo '?'); access logging disabled, zeromq.threads 1"
[ $HAVE_UWSGI = 1 ] && echo "uwsgi $(uwsgi --version) --master --processes $PYNODES --disable-logging, unix socket --chmod-socket=660; nginx $($NGINX -v 2>&1 | sed 's/.*: //') 1 worker, uwsgi_pass unix:, access_log off"
LOAD=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at start: $LOAD$(awk -v l="$LOAD" 'BEGIN { if (l > 0.5) print " -- other jobs are running: figures will be noisy" }')"
echo "us/req = utime+stime of every process of the stack (server and its nodes/handler/uWSGI) per completed request"

if [ $HAVE_M2 = 1 ]; then
    scenario "(a) C node vs Mongrel2 + C handler, 1 worker, stack on CPU 0, wrk on CPU 1" \
        "(a) 1 worker" tremolo+c tremolo-c 1 mongrel2+c mongrel2 1 0 1
    scenario "(a) C node vs Mongrel2 + C handler, Tremolo 2 workers (Mongrel2 has 1), unpinned" \
        "(a) 2 workers" tremolo+c tremolo-c 2 mongrel2+c mongrel2 1 "" ""
else
    echo; echo "(a) skipped the peer: mongrel2/m2sh not found (Debian mongrel2-core)"
    single "(a) C node, 1 worker, stack on CPU 0, wrk on CPU 1" "(a) 1 worker" tremolo+c tremolo-c 1 0 1
    single "(a) C node, 2 workers, unpinned" "(a) 2 workers" tremolo+c tremolo-c 2 "" ""
fi
if [ $HAVE_UWSGI = 1 ]; then
    scenario "(b) $PYNODES Python nodes vs nginx + uWSGI with $PYNODES processes, 1 HTTP worker, unpinned" \
        "(b) python x$PYNODES" tremolo+py tremolo-py 1 nginx+uwsgi nginx-uwsgi 1 "" ""
else
    echo; echo "(b) skipped the peer: uwsgi/python3 plugin or nginx not found (Debian uwsgi-core, uwsgi-plugin-python3, nginx-light)"
    single "(b) $PYNODES Python nodes, 1 worker, unpinned" "(b) python x$PYNODES" tremolo+py tremolo-py 1 "" ""
fi

echo
echo "load average at end: $(cut -d' ' -f1 /proc/loadavg)"
printf "SUMMARY (tremolo/peer): %s\n" "$(IFS=';'; echo "${SUMMARY[*]}" | sed 's/;/; /g')"
echo "targets (issue 3): (a) req/s >= 2x Mongrel2; (b) req/s >= 1.0x nginx+uWSGI"
exit $STATUS
