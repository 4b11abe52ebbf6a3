#!/usr/bin/env bash
# tests/bench/gateway_threads.sh -- where Tremolo's CPU goes on a gateway
# request, thread by thread, against the same server serving a static file
# (issue 12: "Tremolo's own CPU per gateway request <= 2x its CPU per static
# request"; docs/zmq-gateway.md, cost model).
#
# One Tremolo (1 worker) and its node on CPU 0, wrk (1 thread, 50
# connections, keep-alive) on CPU 1, for each scenario in turn, rounds
# alternating:
#   static   a 13-byte file from the document root (no node);
#   c        the zmq gateway and docs/examples/c_node.c;
#   py       the gateway and tests/bench/wsgi_hello.py on the Python
#            helper's pure-Python runtime (TREMOLO_NODE_PURE=1);
#   pyext    the same on the C runtime (_tremolo), when it is built.
# For every thread class of the server (worker, gateway thread, libzmq I/O
# thread) it prints CPU microseconds, system calls and context switches
# per request (CPU from /proc/<pid>/task/<tid>/stat; calls and switches
# from `perf stat --per-thread`, when perf may count tracepoints), the
# node's CPU per request, and the front's total against static. A run
# with socket errors or non-2xx answers is INVALID and counts for nothing.
# It reports, it asserts nothing: exit 0 when the measurements ran.
#
# Environment knobs (defaults in brackets):
#   BENCH_TREMOLO   server binary   [$TREMOLO_BIN, build/tremolo]
#   BENCH_BUILD     build dir holding python/_tremolo*.so [dir of the binary]
#   BENCH_ROUNDS    rounds          [3]
#   BENCH_SECONDS   seconds per run [5]
#   BENCH_SCENARIOS which, in order [static c py pyext]
#   BENCH_GUARD     NodeGuard       [on]
set -euo pipefail

cd "${TREMOLO_SRC:-$(dirname "$0")/../..}"
REPO=$(pwd)
. tests/bench/lib.sh

TREMOLO=${BENCH_TREMOLO:-${TREMOLO_BIN:-build/tremolo}}
BUILD=${BENCH_BUILD:-$(dirname "$TREMOLO")}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
SCENARIOS=${BENCH_SCENARIOS:-static c py pyext}
GUARD=${BENCH_GUARD:-on}
PYTHON=/usr/bin/python3
HELPER=$REPO/plugins/zmq/nodes/python

bench_require wrk curl taskset cc
bench_need_tremolo
bench_need_2cpus "stack on CPU 0, wrk on CPU 1"
bench_raise_nofile 65536
PERF=0
if command -v perf >/dev/null &&
   perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
    PERF=1
fi

TMP=$(mktemp -d /tmp/tremolo-gwthreads.XXXXXX)
PIDS=""
cleanup() {
    local p
    set +e
    for p in $PIDS; do bench_stop "$p"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -o "$TMP/c_node" docs/examples/c_node.c -lzmq
HAVE_EXT=0
if ls "$BUILD"/python/_tremolo*.so >/dev/null 2>&1; then
    HAVE_EXT=1
fi

# start SCENARIO: Tremolo (+ node) on CPU 0; sets SRV (server pid), NODE
# (node pid or empty), PORT. Nothing is returned until a request answers.
start() {
    local kind=$1 dir="$TMP/run" zport
    rm -rf "$dir"
    mkdir -p "$dir/sites" "$dir/htdocs"
    printf 'hello, world\n' > "$dir/htdocs/index.html"
    PORT=$(bench_free_port)
    zport=$(bench_free_port "$PORT")
    cat > "$dir/tremolo.conf" <<EOF
[SERVER]
    Listen 127.0.0.1:$PORT
    Workers 1
    ErrorLog $dir/error.log
    LogLevel warn
    MimeTypes $REPO/conf/mime.types
    KeepAlive on
    KeepAliveMaxRequests 1000000
    KeepAliveTimeout 60s
EOF
    # no logger plugin: no access log
    printf '[PLUGINS]\n    Load liana\n    Load zmq\n' > "$dir/plugins.load"
    printf '[ZMQ]\n    Bind tcp://127.0.0.1:%s\n    PingFreq 1s\n    NodeGuard %s\n' \
        "$zport" "$GUARD" > "$dir/zmq.conf"
    if [ "$kind" = static ]; then
        printf '[HOST]\n    ServerName 127.0.0.1\n    Default on\n    DocumentRoot %s/htdocs\n' \
            "$dir" > "$dir/sites/default.conf"
    else
        printf '[HOST]\n    ServerName 127.0.0.1\n    Default on\n    Handler zmq\n[ZMQ]\n    Node bench-*\n' \
            > "$dir/sites/default.conf"
    fi
    taskset -c 0 "$TREMOLO" -c "$dir/tremolo.conf" > "$dir/out.log" 2>&1 &
    SRV=$!
    PIDS="$PIDS $SRV"
    NODE=""
    case $kind in
        c)
            taskset -c 0 "$TMP/c_node" bench-1 "tcp://127.0.0.1:$zport" \
                > "$dir/node.log" 2>&1 &
            NODE=$! ;;
        py|pyext)
            env PYTHONPATH="$REPO/tests/bench:$HELPER:$BUILD/python" \
                TREMOLO_NODE_PURE=$([ "$kind" = py ] && echo 1 || echo 0) \
                taskset -c 0 "$PYTHON" "$HELPER/tremolo_wsgi.py" wsgi_hello:app \
                --id bench-1 --connect "tcp://127.0.0.1:$zport" \
                > "$dir/node.log" 2>&1 &
            NODE=$! ;;
    esac
    [ -n "$NODE" ] && PIDS="$PIDS $NODE"
    bench_wait_http "http://127.0.0.1:$PORT/" "$SRV" 15
}

stop() {
    local p
    for p in $NODE $SRV; do bench_stop "$p"; done
    PIDS=""
}

# thread_ticks PID: "class ticks" per thread of PID (class: worker, gateway,
# zmqio, other), summed per class.
thread_ticks() {
    local t comm rest
    for t in /proc/"$1"/task/*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        rest=$(cat "$t/stat" 2>/dev/null) || continue
        rest=${rest##*) }
        set -- $rest
        echo "$(thread_class "$comm") $((${12} + ${13}))"
    done | awk '{ s[$1] += $2 } END { for (c in s) print c, s[c] }'
}

thread_class() {
    case $1 in
        tremolo-w*) echo worker ;;
        tremolo-zmq) echo gateway ;;
        ZMQbg*) echo zmqio ;;
        *) echo other ;;
    esac
}

# The worker is a child of the master on Linux; the gateway thread and
# libzmq's threads live in the same process.
server_pid() {
    local w
    w=$(cat /proc/"$SRV"/task/*/children 2>/dev/null | awk '{print $1}')
    echo "${w:-$SRV}"
}

declare -A SUM                   # "scenario class metric" -> values
add() { SUM["$1"]="${SUM["$1"]:-} $2"; }

measure() {
    local kind=$1 pid before after req errs perfout node0 node1 c v perf_pid
    start "$kind" || { bench_log "$kind: server or node did not start"; stop; return 1; }
    pid=$(server_pid)
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$PORT/" > /dev/null
    before=$(thread_ticks "$pid")
    node0=$([ -n "$NODE" ] && bench_cpu_ticks "$NODE" || echo 0)
    perfout="$TMP/perf.txt"
    : > "$perfout"
    perf_pid=""
    if [ "$PERF" = 1 ]; then
        perf stat -x, --per-thread -e raw_syscalls:sys_enter,context-switches \
            -p "$pid" -o "$perfout" -- sleep "$SECS" &
        perf_pid=$!
    fi
    taskset -c 1 wrk -t1 -c50 -d"${SECS}s" --latency "http://127.0.0.1:$PORT/" \
        > "$TMP/wrk.txt" 2>&1
    [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null || true
    after=$(thread_ticks "$pid")
    node1=$([ -n "$NODE" ] && bench_cpu_ticks "$NODE" || echo 0)
    req=$(awk '/requests in/ { print $1 }' "$TMP/wrk.txt")
    errs=$(awk '/Socket errors/ { n += $4 + $6 + $8 + $10 } /Non-2xx/ { n += $NF }
                END { print n + 0 }' "$TMP/wrk.txt")
    stop
    if [ -z "$req" ] || [ "$req" = 0 ] || [ "$errs" != 0 ]; then
        bench_log "$kind: INVALID run (requests ${req:-0}, errors $errs)"
        return 0
    fi
    add "$kind rps" "$(bench_div "$req" "$SECS" %.0f)"
    for c in worker gateway zmqio other; do
        v=$(awk -v c=$c -v r="$req" -v hz="$BENCH_CLK_TCK" '
            NR == FNR { b[$1] = $2; next } $1 == c { printf "%.2f", ($2 - b[c]) * 1e6 / hz / r }' \
            <(echo "$before") <(echo "$after"))
        add "$kind $c cpu" "${v:-0}"
    done
    add "$kind node cpu" "$(awk -v a="$node0" -v b="$node1" -v r="$req" -v hz="$BENCH_CLK_TCK" \
        'BEGIN { printf "%.2f", (b - a) * 1e6 / hz / r }')"
    if [ "$PERF" = 1 ]; then
        # "comm-tid,count,,event,..." per thread
        for c in worker gateway zmqio; do
            for ev in raw_syscalls:sys_enter context-switches; do
                v=$(awk -F, -v c=$c -v ev=$ev -v r="$req" '
                    function cls(n) { sub(/-[0-9]+$/, "", n)
                        if (n ~ /^tremolo-w/) return "worker"
                        if (n == "tremolo-zmq") return "gateway"
                        if (n ~ /^ZMQbg/) return "zmqio"; return "other" }
                    $4 == ev && cls($1) == c { s += $2 }
                    END { printf "%.2f", s / r }' "$perfout")
                add "$kind $c ${ev%%:*}" "$v"
            done
        done
    fi
}

for ((round = 1; round <= ROUNDS; round++)); do
    for kind in $SCENARIOS; do
        [ "$kind" = pyext ] && [ "$HAVE_EXT" = 0 ] && continue
        bench_log "round $round/$ROUNDS: $kind"
        measure "$kind" || true
    done
done

med() { set -- $(bench_stats ${SUM["$1"]:-}); echo "$1"; }

echo "gateway_threads: 1 worker + node on CPU 0, wrk -c50 on CPU 1, ${SECS}s x $ROUNDS rounds, NodeGuard $GUARD"
echo "medians per request: CPU us | system calls | context switches"
printf '%-7s %8s  %-20s %-20s %-20s %9s %9s %8s\n' scenario req/s worker gateway libzmq-io front node front/st
static_front=""
for kind in $SCENARIOS; do
    [ -n "${SUM["$kind rps"]:-}" ] || continue
    front=0
    cols=()
    for c in worker gateway zmqio; do
        cpu=$(med "$kind $c cpu")
        front=$(awk -v a="$front" -v b="$cpu" 'BEGIN { printf "%.2f", a + b }')
        cols+=("$(printf '%s|%s|%s' "$cpu" "$(med "$kind $c raw_syscalls")" \
                  "$(med "$kind $c context-switches")")")
    done
    front=$(awk -v a="$front" -v b="$(med "$kind other cpu")" 'BEGIN { printf "%.2f", a + b }')
    [ "$kind" = static ] && static_front=$front
    printf '%-7s %8s  %-20s %-20s %-20s %9s %9s %8s\n' "$kind" "$(med "$kind rps")" \
        "${cols[0]}" "${cols[1]}" "${cols[2]}" "$front" "$(med "$kind node cpu")" \
        "$([ -n "$static_front" ] && bench_div "$front" "$static_front" %.2f || echo -)"
done
[ "$PERF" = 1 ] || echo "(perf cannot count tracepoints here: system calls and switches are '-')"
