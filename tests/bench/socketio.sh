#!/usr/bin/env bash
# tests/bench/socketio.sh -- socket.io (issue 13): Tremolo's socketio
# plugin with a Python node (tests/bench/sio_echo_app.py on
# tremolo_socketio) and with a C node (tests/bench/sio_node.c), against the
# npm socket.io@4 server (tests/bench/sio_server.js) doing the same work.
# The load speaks socket.io over the websocket transport: tests/bench/
# sio_client.c (C, epoll) for echo and broadcast, socket.io-client 4.x
# (tests/bench/sio_load.js) for the idle clients and the start check; the
# clients' own CPU is printed with every figure. Three measures, every
# stack in one run:
#   1. echo: C (100) clients in a closed loop, each emitting "echo" with a
#      32-byte string and an ack callback, the server acking with the same
#      arguments; events/s, p99 (emit to ack), CPU per event of the front
#      (Tremolo / the Node.js server) and of the whole stack (+ the node).
#      Stack on CPU 0, client on CPU 1; rounds rotate the order;
#   1b. the same echo unpinned (../shared/BENCHMARKING.md wants both), each
#      stack set up for 2 cores: Tremolo with Workers 2, the Python node
#      with --processes 2 (the C node stays one process: it is not the
#      bottleneck, see README.md), npm socket.io on Node's cluster with 2
#      workers and @socket.io/cluster-adapter (sio_server.js PORT 2; no
#      @socket.io/sticky: only HTTP long-polling needs it and every client
#      here uses the websocket transport); nothing pinned, the client
#      shares the 2 CPUs with the stack (its CPU % is printed);
#   2. broadcast: N (2,000) clients in room "all"; one client emits
#      "bcast", the server emits "tick" to the room; per broadcast the p99
#      (and max) over members of the time from the trigger leaving the
#      client, and from the server's emit, to a member's handler. Stack on
#      CPU 0, the clients (several processes) on CPU 1; the stacks are all
#      connected at once and their broadcasts alternate;
#   3. memory: N (5,000) idle clients (connected, one echo acked); the
#      front's ΔRSS / N, and the node's separately. 1 worker, unpinned.
#
# Method: ../shared/BENCHMARKING.md. It reports; it does not assert targets.
# Every run prints its errors (connect errors, missing acks or ticks,
# unexpected disconnects); a run with errors is INVALID and gives no ratio,
# and the script then exits 1, as it does when a stack did not start.
# The Tremolo sides are skipped, with a message, while the tree has no
# socketio plugin (plugins/socketio/socketio.c) or no tremolo_socketio.py;
# the npm peer is skipped when node/npm or the registry is missing.
# BENCH_SELFTEST=1 runs the npm server in every slot, to check the harness.
#
# Environment knobs (defaults in brackets):
#   BENCH_TREMOLO       server binary    [$TREMOLO_BIN (set by make), build/tremolo]
#   BENCH_ROUNDS        echo rounds                          [3]
#   BENCH_SECONDS       seconds per echo run                 [5]
#   BENCH_UNPINNED      1: also the unpinned echo (1b.), 0 = skip [1]
#   BENCH_UNPINNED_WORKERS  1b.: Tremolo Workers, Python node processes,
#                       npm cluster workers                  [2]
#   BENCH_CONNS         echo clients                         [100]
#   BENCH_MSG_SIZE      echo payload bytes                   [32]
#   BENCH_BCAST         broadcast members, 0 = skip          [2000]
#   BENCH_BCAST_ROUNDS  broadcasts per stack                 [5]
#   BENCH_IDLE          idle clients, 0 = skip               [5000]
#   BENCH_CLIENT_PROCS  client processes for 2. and 3.       [4]
#   BENCH_SIO_CLIENT    client of 1. and 2.: c (sio_client.c, epoll), raw
#                       (sio_load.js's socket.io packets on ws) or
#                       socket.io-client (sio_load.js)        [c]
#   BENCH_SIO_PLUGINS   plugins Tremolo loads  [liana zmq websocket socketio]
#   BENCH_PYHELPER      tremolo_node.py, tremolo_socketio.py [plugins/zmq/nodes/python]
#   BENCH_PYEXT         the C runtime _tremolo*.so           [python/ next to the binary]
#   BENCH_SELFTEST      1: the npm server in every slot      [0]
#   BENCH_GUARD         Tremolo's NodeGuard (on, off, native) [native]: the
#                       setting docs/configuration.md gives for nodes on
#                       libzmq >= 4 or Tremolo's runtime (both nodes here),
#                       as tests/bench/gateway.sh uses
set -euo pipefail

cd "${TREMOLO_SRC:-$(dirname "$0")/../..}"
REPO=$(pwd)
. tests/bench/lib.sh

TREMOLO=${BENCH_TREMOLO:-${TREMOLO_BIN:-build/tremolo}}
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
GUARD=${BENCH_GUARD:-native}
UNPINNED=${BENCH_UNPINNED:-1}
UNPINNED_WORKERS=${BENCH_UNPINNED_WORKERS:-2}
CONNS=${BENCH_CONNS:-100}
MSG_SIZE=${BENCH_MSG_SIZE:-32}
BCAST=${BENCH_BCAST:-2000}
BCAST_ROUNDS=${BENCH_BCAST_ROUNDS:-5}
IDLE=${BENCH_IDLE:-5000}
PROCS=${BENCH_CLIENT_PROCS:-4}
LOAD_CLIENT=${BENCH_SIO_CLIENT:-c}
SIO_PLUGINS=${BENCH_SIO_PLUGINS:-liana zmq websocket socketio}
HELPER=${BENCH_PYHELPER:-$REPO/plugins/zmq/nodes/python}
SELFTEST=${BENCH_SELFTEST:-0}
PYTHON=/usr/bin/python3          # Debian's: it has python3-zmq
# Per echo mode (set_mode): Tremolo's Workers, the Python node's processes,
# the npm server's cluster workers (0 = no cluster, one process) and the
# load client's CPU ("" = unpinned). The pinned defaults:
T_WORKERS=${TREMOLO_WORKERS:-1}
PY_PROCS=1
NPM_WORKERS=0
CLIENT_CPU=1
NODEJS=$(command -v node || echo /usr/bin/node)
JS_MODULES=$REPO/tests/js/node_modules
PEER_MODULES=$REPO/tests/bench/sio_peer/node_modules
LOAD=$REPO/tests/bench/sio_load.js
SIO_PATH=/socket.io/

bench_require curl ss taskset cc
bench_need_2cpus "stack on CPU 0, clients on CPU 1"
bench_raise_nofile 65536
NOFILE=$(ulimit -n)

[ -x "$NODEJS" ] || { echo "socketio.sh: node not found (Node.js >= 20; sh tests/js/setup.sh)" >&2; exit 1; }
[ -f "$JS_MODULES/socket.io-client/package.json" ] ||
    { echo "socketio.sh: socket.io-client not in tests/js/node_modules (sh tests/js/setup.sh)" >&2; exit 1; }

# The slots: tpy = Tremolo + Python node, tc = Tremolo + C node, npm = the
# npm socket.io server. KIND says what runs in a slot.
declare -A KIND LABEL WHY
SLOTS=()
KIND[npm]=nodejs; LABEL[npm]=npm
HAVE_PEER=1
if ! sh tests/bench/sio_peer/setup.sh >&2; then
    HAVE_PEER=0; WHY[npm]="npm socket.io could not be installed (tests/bench/sio_peer/setup.sh)"
fi
if [ "$SELFTEST" = 1 ]; then
    [ $HAVE_PEER = 1 ] || { echo "socketio.sh: BENCH_SELFTEST needs the npm peer" >&2; exit 1; }
    KIND[tpy]=nodejs; LABEL[tpy]=npm-a
    KIND[tc]=nodejs;  LABEL[tc]=npm-b
    SLOTS=(tpy tc)
else
    KIND[tpy]=tremolo-py; LABEL[tpy]=tremolo-py
    KIND[tc]=tremolo-c;   LABEL[tc]=tremolo-c
    if [ ! -f plugins/socketio/socketio.c ]; then
        WHY[tpy]="this tree has no socketio plugin yet (plugins/socketio/socketio.c)"
        WHY[tc]=${WHY[tpy]}
    else
        bench_need_tremolo
        SLOTS=(tc)
        if [ -f "$HELPER/tremolo_socketio.py" ]; then
            SLOTS=(tpy tc)
        else
            WHY[tpy]="no tremolo_socketio.py in $HELPER"
        fi
    fi
fi
[ $HAVE_PEER = 1 ] && SLOTS+=(npm)
if [ ${#SLOTS[@]} = 0 ]; then
    echo "socketio.sh: nothing to measure: ${WHY[tpy]:-}; ${WHY[npm]:-}" >&2
    exit 1
fi
PYEXT=${BENCH_PYEXT:-$(cd "$(dirname "$TREMOLO")" 2>/dev/null && pwd)/python}

TMP=$(mktemp -d /tmp/tremolo-siobench.XXXXXX)
declare -A FRONT BACK PORT       # slot -> front PID, node PID, port
declare -A CLIENT                # slot -> a background sio_load.js
STATUS=0
SUMMARY=()

cleanup() {
    local s
    set +e
    for s in "${!CLIENT[@]}"; do
        kill -TERM "${CLIENT[$s]}" 2>/dev/null; wait "${CLIENT[$s]}" 2>/dev/null
    done
    for s in "${!FRONT[@]}"; do bench_stop "${FRONT[$s]}"; done
    for s in "${!BACK[@]}"; do bench_stop "${BACK[$s]}"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NODE_BIN="$TMP/sio_node"
SIO_CLIENT="$TMP/sio_client"
cc -O2 -o "$SIO_CLIENT" tests/bench/sio_client.c tests/bench/ws_client_core.c
if [ "$SELFTEST" != 1 ] && [[ " ${SLOTS[*]} " == *" tc "* ]]; then
    cc -O2 -o "$NODE_BIN" tests/bench/sio_node.c tests/bench/bench_node.c -lzmq
fi

# sio_load.js with socket.io-client and the peer's node_modules on
# NODE_PATH: ws in tests/js/node_modules then finds bufferutil too.
load() {
    SIO_LOAD_CLIENT=socket.io-client NODE_PATH=$PEER_MODULES "$NODEJS" "$LOAD" "$@"
}

url() {
    echo "http://127.0.0.1:${PORT[$1]}"
}

# wait_sio SLOT SECONDS: until one socket.io client connects and gets an
# echo acked, failing early when a process of the slot dies.
wait_sio() {
    local slot=$1 secs=$2 out end
    end=$(($(date +%s) + secs))
    while [ "$(date +%s)" -lt "$end" ]; do
        kill -0 "${FRONT[$slot]}" 2>/dev/null || return 1
        if [ -n "${BACK[$slot]:-}" ]; then kill -0 "${BACK[$slot]}" 2>/dev/null || return 1; fi
        if ! bench_port_is_free "${PORT[$slot]}"; then
            out=$(timeout 8 env SIO_LOAD_CLIENT=socket.io-client NODE_PATH="$PEER_MODULES" \
                  "$NODEJS" "$LOAD" echo "$(url "$slot")" 1 1 2>/dev/null || true)
            # events rate p50 p99 connect_errors missing_acks other cpu
            set -- $out
            [ $# = 8 ] && [ "$1" -gt 0 ] && [ "$5$6$7" = 000 ] && return 0
        fi
        sleep 0.5
    done
    return 1
}

# start_tremolo SLOT CPUS py|c: Tremolo (T_WORKERS workers: 1 unless
# TREMOLO_WORKERS, no logger) and one node (the Python one as PY_PROCS
# processes), both pinned to CPUS unless "".
start_tremolo() {
    local slot=$1 cpus=$2 lang=$3 dir="$TMP/$1" port zport pin=() p i
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    zport=$(bench_free_port "$port" ${PORT[@]+"${PORT[@]}"})
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    mkdir -p "$dir/sites"
    cat > "$dir/tremolo.conf" <<EOF
[SERVER]
    Listen 127.0.0.1:$port
    Workers $T_WORKERS
    ErrorLog $dir/error.log
    LogLevel warn
    MimeTypes $REPO/conf/mime.types
EOF
    { echo '[PLUGINS]'; for p in $SIO_PLUGINS; do echo "    Load $p"; done; } > "$dir/plugins.load"
    printf '[ZMQ]\n    Bind tcp://127.0.0.1:%s\n    PingFreq 1s\n    NodeGuard %s\n' \
        "$zport" "$GUARD" > "$dir/zmq.conf"
    cat > "$dir/sites/default.conf" <<EOF
[HOST]
    ServerName 127.0.0.1
    Default on
    Handler zmq
[ZMQ]
    Node bench-*
[SOCKETIO]
    Path $SIO_PATH
EOF
    "${pin[@]}" "$TREMOLO" -c "$dir/tremolo.conf" > "$dir/stdout.log" 2>&1 < /dev/null &
    FRONT[$slot]=$!
    PORT[$slot]=$port
    for ((i = 0; i < 100; i++)); do
        bench_port_is_free "$zport" || break
        kill -0 "${FRONT[$slot]}" 2>/dev/null || break
        sleep 0.05
    done
    if [ "$lang" = c ]; then
        "${pin[@]}" "$NODE_BIN" bench-1 "tcp://127.0.0.1:$zport" \
            > "$dir/node.log" 2>&1 < /dev/null &
    elif [ "$PY_PROCS" -gt 1 ]; then
        # tremolo_socketio's runner forks bench-1-1 ... bench-1-N (site:
        # Node bench-*); the parent stays, so BACK's tree holds them all
        PYTHONPATH="$REPO/tests/bench:$HELPER:$PYEXT" "${pin[@]}" "$PYTHON" \
            "$HELPER/tremolo_socketio.py" sio_echo_app:sio --id bench-1 \
            --connect "tcp://127.0.0.1:$zport" --processes "$PY_PROCS" \
            > "$dir/node.log" 2>&1 < /dev/null &
    else
        PYTHONPATH="$REPO/tests/bench:$HELPER:$PYEXT" "${pin[@]}" "$PYTHON" \
            "$REPO/tests/bench/sio_echo_app.py" bench-1 "tcp://127.0.0.1:$zport" \
            > "$dir/node.log" 2>&1 < /dev/null &
    fi
    BACK[$slot]=$!
    wait_sio "$slot" 15
}

# start_npm SLOT CPUS: the npm socket.io server (sio_server.js; on Node's
# cluster with NPM_WORKERS workers unless 0), pinned to CPUS unless "".
start_npm() {
    local slot=$1 cpus=$2 dir="$TMP/$1" port pin=() wk=()
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    [ "$NPM_WORKERS" -gt 0 ] && wk=("$NPM_WORKERS")
    mkdir -p "$dir"
    NODE_ENV=production NODE_PATH=$PEER_MODULES "${pin[@]}" "$NODEJS" \
        "$REPO/tests/bench/sio_server.js" "$port" ${wk[@]+"${wk[@]}"} \
        > "$dir/server.log" 2>&1 < /dev/null &
    FRONT[$slot]=$!
    PORT[$slot]=$port
    bench_wait_file "$dir/server.log" "listening" "${FRONT[$slot]}" 15 || return 1
    wait_sio "$slot" 15
}

# start_slot SLOT CPUS
start_slot() {
    local slot=$1 cpus=$2 rc=0
    case ${KIND[$slot]} in
        tremolo-py) start_tremolo "$slot" "$cpus" py || rc=1 ;;
        tremolo-c)  start_tremolo "$slot" "$cpus" c || rc=1 ;;
        nodejs)     start_npm "$slot" "$cpus" || rc=1 ;;
    esac
    if [ $rc != 0 ]; then
        echo "socketio.sh: ${LABEL[$slot]} did not start or echo" >&2
        tail -n 15 "$TMP/$slot"/*.log >&2 2>/dev/null || true
        return 1
    fi
    if [ -n "$cpus" ]; then
        bench_pin "$cpus" "${FRONT[$slot]}"
        [ -n "${BACK[$slot]:-}" ] && bench_pin "$cpus" "${BACK[$slot]}"
    fi
    bench_log "${LABEL[$slot]}: front pid ${FRONT[$slot]} ($(bench_pid_tree "${FRONT[$slot]}" | wc -l) processes), node pid ${BACK[$slot]:-none}${BACK[$slot]:+ ($(bench_pid_tree "${BACK[$slot]}" | wc -l) processes)}, port ${PORT[$slot]}${cpus:+, cpu $cpus}"
}

stop_slot() {
    [ -n "${FRONT[$1]:-}" ] && bench_stop "${FRONT[$1]}"
    [ -n "${BACK[$1]:-}" ] && bench_stop "${BACK[$1]}"
    unset "FRONT[$1]" "BACK[$1]" "PORT[$1]"
}

# start_all CPUS: every slot of SLOTS; drops the slots that did not start
# (STATUS=1) and says so.
start_all() {
    local s ok=()
    for s in "${SLOTS[@]}"; do
        if start_slot "$s" "$1"; then ok+=("$s"); else
            echo "NOT MEASURED: ${LABEL[$s]} did not start"; STATUS=1; stop_slot "$s"
        fi
    done
    RUNNING=(${ok[@]+"${ok[@]}"})
}

back_ticks() {
    if [ -n "${BACK[$1]:-}" ]; then bench_cpu_ticks "${BACK[$1]}"; else echo 0; fi
}

# ---------------------------------------------------------------- 1. echo

# measure SLOT SECONDS: one closed-loop run, the client on CPU CLIENT_CPU
# (1; "" = unpinned); prints
# "events/s p99 us_front us_stack connect_errors missing_acks other client_cpu%"
measure() {
    local slot=$1 secs=$2 f0 b0 f1 b1 out cpin=()
    [ -n "$CLIENT_CPU" ] && cpin=(taskset -c "$CLIENT_CPU")
    f0=$(bench_cpu_ticks "${FRONT[$slot]}"); b0=$(back_ticks "$slot")
    if [ "$LOAD_CLIENT" = c ]; then
        out=$(timeout $((secs + 60)) ${cpin[@]+"${cpin[@]}"} "$SIO_CLIENT" echo "$CONNS" "$secs" \
                  127.0.0.1 "${PORT[$slot]}" "$MSG_SIZE" 2> "$TMP/client.$slot.err" || true)
    else
        out=$(SIO_LOAD_CLIENT=$LOAD_CLIENT NODE_PATH=$PEER_MODULES timeout $((secs + 60)) \
                  ${cpin[@]+"${cpin[@]}"} "$NODEJS" "$LOAD" echo "$(url "$slot")" \
                  "$CONNS" "$secs" "$MSG_SIZE" 1 2> "$TMP/client.$slot.err" || true)
    fi
    f1=$(bench_cpu_ticks "${FRONT[$slot]}"); b1=$(back_ticks "$slot")
    set -- ${out:-}
    if [ $# != 8 ] || [ "$1" = 0 ]; then
        echo "- - - - ${5:-$CONNS} ${6:-0} ${7:-0} -"; return 0
    fi
    awk -v f=$((f1 - f0)) -v b=$((b1 - b0)) -v hz="$BENCH_CLK_TCK" -v n="$1" \
        -v r="$2" -v p="$4" -v ce="$5" -v ma="$6" -v oe="$7" -v cc="$8" 'BEGIN {
            printf "%s %s %.2f %.2f %s %s %s %s\n", r, p, f / hz * 1e6 / n,
                (f + b) / hz * 1e6 / n, ce, ma, oe, cc }'
}

# set_mode pinned|unpinned: the echo run's set-up (T_WORKERS, PY_PROCS,
# NPM_WORKERS, CLIENT_CPU; see their defaults above).
set_mode() {
    if [ "$1" = unpinned ]; then
        T_WORKERS=$UNPINNED_WORKERS; PY_PROCS=$UNPINNED_WORKERS
        NPM_WORKERS=$UNPINNED_WORKERS; CLIENT_CPU=""
    else
        T_WORKERS=${TREMOLO_WORKERS:-1}; PY_PROCS=1; NPM_WORKERS=0; CLIENT_CPU=1
    fi
}

# echo_scenario [pinned|unpinned]: 1. (pinned) or 1b. (unpinned); the
# same rounds, checks and ratios, each printed as its own table.
echo_scenario() {
    local mode=${1:-pinned} tag="" stackcpu=0 nodepct=""
    local r i k n rate p99 uf us ce ma oe cc flag s
    local -A vr vp vf vs qr qp qs
    set_mode "$mode"
    echo
    if [ "$mode" = unpinned ]; then
        tag="unpinned "; stackcpu=""
        echo "== 1b. echo, unpinned: $CONNS clients (one process), closed loop, \"echo\" with a $MSG_SIZE-byte string + ack, ${SECONDS_PER_RUN}s runs, $ROUNDS rounds"
        echo "   nothing pinned: each stack and the client ($LOAD_CLIENT, one process) share the $(nproc) CPUs; Tremolo Workers $T_WORKERS,"
        echo "   Python node --processes $PY_PROCS, C node 1 process, npm: Node's cluster, $NPM_WORKERS workers + @socket.io/cluster-adapter"
        echo "   (no sticky sessions: the clients use the websocket transport only); client% = the load process's CPU"
        echo "   (of one core), node% = the node's CPU (stack - front; 100 = one core)"
    else
        echo "== 1. echo: $CONNS clients (one process), closed loop, \"echo\" with a $MSG_SIZE-byte string + ack, ${SECONDS_PER_RUN}s runs, $ROUNDS rounds"
        echo "   stack (front + node) pinned to CPU 0, the client ($LOAD_CLIENT) on CPU 1; us/event front = Tremolo's or the"
        echo "   Node.js server's CPU, stack = + the node; client% = the load process's CPU (near 100: client-bound)"
    fi
    start_all "$stackcpu"
    [ ${#RUNNING[@]} -gt 0 ] || { SUMMARY+=("echo ${tag}: not measured"); set_mode pinned; return 0; }
    for s in "${RUNNING[@]}"; do measure "$s" 1 > /dev/null; done          # warm-up
    printf '%-6s %-11s %10s %8s %10s %10s %7s %6s %6s %7s' round stack "events/s" "p99 ms" \
        "us/ev fr." "us/ev st." "conn_err" "m_ack" "other" "client%"
    [ -n "$tag" ] && printf ' %6s' "node%"
    echo
    for ((r = 1; r <= ROUNDS; r++)); do
        local -A res=()
        local order=()
        n=${#RUNNING[@]}
        for ((i = 0; i < n; i++)); do order+=("${RUNNING[$(((i + r - 1) % n))]}"); done
        for s in "${order[@]}"; do
            res[$s]=$(measure "$s" "$SECONDS_PER_RUN")
            read -r rate p99 uf us ce ma oe cc <<< "${res[$s]}"
            flag=""
            if [ "$rate" = - ] || [ "$ce$ma$oe" != 000 ]; then
                flag="INVALID ($(head -c 160 "$TMP/client.$s.err" | tr '\n' ' '))"; STATUS=1
                unset "res[$s]"         # no figure, no ratio with it
            fi
            if [ -n "$tag" ]; then       # the node's CPU % from its us/event
                nodepct=$(awk -v r="$rate" -v f="$uf" -v t="$us" -v k="${KIND[$s]}" 'BEGIN {
                    if (r == "-" || k == "nodejs") print "-"; else printf "%.0f", (t - f) * r / 1e4 }')
                printf '%-6s %-11s %10s %8s %10s %10s %7s %6s %6s %7s %6s  %s\n' "$r" "${LABEL[$s]}" \
                    "$rate" "$p99" "$uf" "$us" "$ce" "$ma" "$oe" "$cc" "$nodepct" "$flag"
            else
                printf '%-6s %-11s %10s %8s %10s %10s %7s %6s %6s %7s  %s\n' "$r" "${LABEL[$s]}" \
                    "$rate" "$p99" "$uf" "$us" "$ce" "$ma" "$oe" "$cc" "$flag"
            fi
        done
        for s in "${RUNNING[@]}"; do
            [ -n "${res[$s]:-}" ] || continue
            read -r rate p99 uf us _ <<< "${res[$s]}"
            vr[$s]+="$rate "; vp[$s]+="$p99 "; vf[$s]+="$uf "; vs[$s]+="$us "
            if [ "$s" != npm ] && [ -n "${res[npm]:-}" ]; then
                local nr np nst
                read -r nr np _ nst _ <<< "${res[npm]}"
                qr[$s]+="$(bench_div "$rate" "$nr") "
                qp[$s]+="$(bench_div "$p99" "$np") "
                qs[$s]+="$(bench_div "$us" "$nst") "
            fi
        done
    done
    echo
    echo "-- echo${tag:+, ${tag% }}: median [min-max] over the valid runs; ratios from rounds where both runs were valid"
    printf '%-11s %26s %22s %20s %20s\n' stack "events/s" "p99 ms" "us/event front" "us/event stack"
    for s in "${RUNNING[@]}"; do
        printf '%-11s %26s %22s %20s %20s\n' "${LABEL[$s]}" "$(fmt_stats ${vr[$s]:-})" \
            "$(fmt_stats ${vp[$s]:-})" "$(fmt_stats ${vf[$s]:-})" "$(fmt_stats ${vs[$s]:-})"
    done
    for s in "${RUNNING[@]}"; do
        [ "$s" = npm ] && continue
        [ -n "${qr[$s]:-}" ] || continue
        local mr mp ms
        read -r mr _ _ <<< "$(bench_stats ${qr[$s]})"
        read -r mp _ _ <<< "$(bench_stats ${qp[$s]})"
        read -r ms _ _ <<< "$(bench_stats ${qs[$s]})"
        mr=$(bench_div "$mr" 1); mp=$(bench_div "$mp" 1); ms=$(bench_div "$ms" 1)
        echo "ratio ${tag}${LABEL[$s]}/npm (median of per-round ratios): events/s $mr ($(better "$mr" high "${LABEL[$s]}" npm)), p99 $mp ($(better "$mp" low "${LABEL[$s]}" npm)), stack CPU/event $ms ($(better "$ms" low "${LABEL[$s]}" npm))"
        if [ -n "$tag" ]; then
            SUMMARY+=("echo ${tag}${LABEL[$s]}/npm events/s x$mr, p99 x$mp, stack CPU/event x$ms")
        elif [ "${KIND[$s]}" = tremolo-py ]; then
            local tgt
            tgt=$(awk -v r="$mr" 'BEGIN { if (r == "-") print "not measured"; else print (r >= 2 ? "met" : "MISSED") }')
            SUMMARY+=("echo ${LABEL[$s]}/npm events/s x$mr (target >= 2: $tgt), p99 x$mp")
        else
            SUMMARY+=("echo ${LABEL[$s]}/npm events/s x$mr, p99 x$mp")
        fi
    done
    [ -n "${vr[npm]:-}" ] && SUMMARY+=("echo ${tag}npm $(fmt_stats ${vr[npm]}) events/s")
    for s in "${RUNNING[@]}"; do stop_slot "$s"; done
    set_mode pinned
}

# ---------------------------------------------------------------- 2. broadcast

broadcast_scenario() {
    local s r i n line t0 t1 b0 b1 got sp50 sp99 smax tp50 tp99 tmax ccpu flag fd
    local -A BCFD p99s cp99s maxs cpu_front cpu_all ccpus errs
    echo
    echo "== 2. broadcast: $BCAST members of room \"all\" per stack, $BCAST_ROUNDS broadcasts each, alternating stacks"
    echo "   stack pinned to CPU 0; the client on CPU 1: $([ "$LOAD_CLIENT" = c ] && echo "sio_client.c, one process" || echo "sio_load.js ($LOAD_CLIENT), $PROCS processes");"
    echo "   latency per member from the trigger leaving the client (and from the server's emit) to the member"
    echo "   reading its \"tick\"; client ms = the client's CPU from the trigger to the last tick (near the p99: client-bound)"
    start_all 0
    [ ${#RUNNING[@]} -gt 0 ] || { SUMMARY+=("broadcast: not measured"); return 0; }
    local live=()
    for s in "${RUNNING[@]}"; do
        rm -f "$TMP/bc.$s.in"; mkfifo "$TMP/bc.$s.in"
        if [ "$LOAD_CLIENT" = c ]; then
            taskset -c 1 "$SIO_CLIENT" bcast "$BCAST" "$BCAST_ROUNDS" 127.0.0.1 "${PORT[$s]}" step \
                < "$TMP/bc.$s.in" > "$TMP/bc.$s.out" 2> "$TMP/bc.$s.err" &
        else
            SIO_LOAD_CLIENT=$LOAD_CLIENT NODE_PATH=$PEER_MODULES taskset -c 1 "$NODEJS" "$LOAD" \
                bcast "$(url "$s")" "$BCAST" "$BCAST_ROUNDS" "$PROCS" step \
                < "$TMP/bc.$s.in" > "$TMP/bc.$s.out" 2> "$TMP/bc.$s.err" &
        fi
        CLIENT[$s]=$!
        exec {fd}> "$TMP/bc.$s.in"   # holds the client's stdin open
        BCFD[$s]=$fd
        # connect one stack's members at a time: the connect storm is not measured
        for ((i = 0; i < 1800; i++)); do
            grep -q '^ready' "$TMP/bc.$s.out" 2>/dev/null && break
            kill -0 "${CLIENT[$s]}" 2>/dev/null || break
            sleep 0.05
        done
        line=$(head -n1 "$TMP/bc.$s.out" 2>/dev/null || true)
        if [ "$line" != "ready $BCAST" ]; then
            echo "INVALID: ${LABEL[$s]}: ${line:-no ready} $(head -c 300 "$TMP/bc.$s.err")"; STATUS=1
            continue
        fi
        live+=("$s")
        errs[$s]=0
    done
    printf '%-6s %-11s %8s %22s %22s %9s %10s\n' round stack received "p50/p99/max ms trigger" \
        "p50/p99/max ms emit" "client ms" "front ms"
    n=${#live[@]}
    for ((r = 1; r <= BCAST_ROUNDS; r++)); do
        for ((i = 0; i < n; i++)); do
            s=${live[$(((i + r - 1) % n))]}
            t0=$(bench_cpu_ticks "${FRONT[$s]}"); b0=$(back_ticks "$s")
            echo go >&"${BCFD[$s]}"
            local k
            for ((k = 0; k < 400; k++)); do      # 20 s: the client gives up after 15
                grep -q "^round $r " "$TMP/bc.$s.out" 2>/dev/null && break
                kill -0 "${CLIENT[$s]}" 2>/dev/null || break
                sleep 0.05
            done
            t1=$(bench_cpu_ticks "${FRONT[$s]}"); b1=$(back_ticks "$s")
            line=$(grep "^round $r " "$TMP/bc.$s.out" || true)
            if [ -z "$line" ]; then
                echo "$r ${LABEL[$s]}: no result ($(head -c 200 "$TMP/bc.$s.err"))"; errs[$s]=1; STATUS=1
                continue
            fi
            read -r _ _ _ got sp50 sp99 smax tp50 tp99 tmax ccpu <<< "$line"
            flag=""
            if [ "$got" != "$BCAST" ]; then flag="INVALID ($((BCAST - got)) missing ticks)"; errs[$s]=1; STATUS=1; fi
            printf '%-6s %-11s %8s %22s %22s %9s %10s  %s\n' "$r" "${LABEL[$s]}" "$got" \
                "$tp50/$tp99/$tmax" "$sp50/$sp99/$smax" "$ccpu" \
                "$(( (t1 - t0) * 1000 / BENCH_CLK_TCK ))" "$flag"
            if [ -z "$flag" ]; then
                p99s[$s]+="$tp99 "; cp99s[$s]+="$sp99 "; maxs[$s]+="$tmax "; ccpus[$s]+="$ccpu "
                cpu_front[$s]=$(( ${cpu_front[$s]:-0} + t1 - t0 ))
                cpu_all[$s]=$(( ${cpu_all[$s]:-0} + t1 - t0 + b1 - b0 ))
            fi
        done
    done
    for s in "${live[@]}"; do
        fd=${BCFD[$s]}
        exec {fd}>&-
        wait "${CLIENT[$s]}" 2>/dev/null || true
        unset "CLIENT[$s]"
        line=$(grep '^errors' "$TMP/bc.$s.out" || echo "errors - - -")
        echo "${LABEL[$s]}: $line (connect errors, missing ticks, unexpected disconnects)"
        [ "$line" = "errors 0 0 0" ] || { errs[$s]=1; STATUS=1; }
        if [ "${errs[$s]}" = 1 ]; then   # a stack with errors is not a result
            echo "INVALID: ${LABEL[$s]}: errors during its broadcasts; no figure"
            unset "p99s[$s]" "cp99s[$s]" "ccpus[$s]" "cpu_front[$s]" "cpu_all[$s]"
        fi
    done
    echo
    echo "-- broadcast to $BCAST: median [min-max] over the valid broadcasts"
    printf '%-11s %24s %24s %20s %20s %18s\n' stack "p99 ms from trigger" "p99 ms from emit" \
        "client CPU ms" "front CPU us/member" "stack us/member"
    local mp mc cpuf cpua m_npm="" nvalid
    for s in "${live[@]}"; do
        nvalid=$(echo ${p99s[$s]:-} | wc -w)
        cpuf=$(awk -v t="${cpu_front[$s]:-0}" -v hz="$BENCH_CLK_TCK" -v n="$BCAST" -v r="$nvalid" \
               'BEGIN { if (r == 0) print "-"; else printf "%.2f", t / hz * 1e6 / (n * r) }')
        cpua=$(awk -v t="${cpu_all[$s]:-0}" -v hz="$BENCH_CLK_TCK" -v n="$BCAST" -v r="$nvalid" \
               'BEGIN { if (r == 0) print "-"; else printf "%.2f", t / hz * 1e6 / (n * r) }')
        printf '%-11s %24s %24s %20s %20s %18s\n' "${LABEL[$s]}" "$(fmt_stats ${p99s[$s]:-})" \
            "$(fmt_stats ${cp99s[$s]:-})" "$(fmt_stats ${ccpus[$s]:-})" "$cpuf" "$cpua"
    done
    [ -n "${p99s[npm]:-}" ] && read -r m_npm _ _ <<< "$(bench_stats ${p99s[npm]})"
    for s in "${live[@]}"; do
        [ "$s" = npm ] && continue
        [ -n "${p99s[$s]:-}" ] || continue
        read -r mp _ _ <<< "$(bench_stats ${p99s[$s]})"
        read -r mc _ _ <<< "$(bench_stats ${ccpus[$s]})"
        if [ -n "$m_npm" ]; then
            local ratio tgt
            ratio=$(bench_div "$mp" "$m_npm")
            tgt=$(awk -v r="$ratio" 'BEGIN { if (r == "-") print "not measured"; else print (r <= 0.5 ? "met" : "MISSED") }')
            echo "ratio ${LABEL[$s]}/npm broadcast p99: $ratio ($(better "$ratio" low "${LABEL[$s]}" npm))"
            SUMMARY+=("broadcast ${LABEL[$s]} p99 $mp ms vs npm $m_npm ms x$ratio (target <= 0.5: $tgt, client CPU $mc ms per broadcast)")
        else
            SUMMARY+=("broadcast ${LABEL[$s]} p99 $mp ms")
        fi
    done
    [ -n "$m_npm" ] && SUMMARY+=("broadcast npm p99 $m_npm ms")
    echo "(a p99 close to the client's CPU ms means the client, not the server, set it: rank by CPU per member then)"
    for s in "${RUNNING[@]}"; do stop_slot "$s"; done
}

# ---------------------------------------------------------------- 3. memory

# idle_rss SLOT N: hold N idle clients on SLOT; sets IDLE_RESULT
# "front_delta_KiB front_before front_after established node_delta_KiB" or "-".
idle_rss() {
    local slot=$1 n=$2 port=${PORT[$1]} fb fa bb ba est line="" i
    local fifo="$TMP/idle.in" out="$TMP/idle.$1.out"
    IDLE_RESULT=-
    sleep 0.5
    fb=$(bench_rss_kb "${FRONT[$slot]}"); bb=0
    [ -n "${BACK[$slot]:-}" ] && bb=$(bench_rss_kb "${BACK[$slot]}")
    rm -f "$fifo"; mkfifo "$fifo"
    load idle "$(url "$slot")" "$n" "$PROCS" < "$fifo" > "$out" 2> "$out.err" &
    CLIENT[$slot]=$!
    exec 9> "$fifo"
    for ((i = 0; i < 2400; i++)); do # up to 120 s
        line=$(head -n1 "$out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "${CLIENT[$slot]}" 2>/dev/null || break
        sleep 0.05
    done
    if [ "$line" != "ready $n" ]; then
        echo "INVALID: ${LABEL[$slot]}: idle clients: ${line:-no ready}: $(head -c 300 "$out.err")"
        tail -n 5 "$TMP/$slot"/*.log 2>/dev/null | sed 's/^/    /' || true
        exec 9>&-; wait "${CLIENT[$slot]}" 2>/dev/null || true; unset "CLIENT[$slot]"
        STATUS=1; return 0
    fi
    sleep 1                          # let the server settle
    est=$(ss -Htn state established "( sport = :$port )" | wc -l)
    fa=$(bench_rss_kb "${FRONT[$slot]}"); ba=0
    [ -n "${BACK[$slot]:-}" ] && ba=$(bench_rss_kb "${BACK[$slot]}")
    exec 9>&-
    wait "${CLIENT[$slot]}" 2>/dev/null || true
    unset "CLIENT[$slot]"
    line=$(grep '^errors' "$out" || echo "errors - - -")
    if [ "$line" != "errors 0 0 0" ]; then
        echo "INVALID: ${LABEL[$slot]}: idle clients: $line (connect errors, -, unexpected disconnects)"
        STATUS=1; return 0
    fi
    if [ "$est" -lt "$n" ]; then
        echo "INVALID: ${LABEL[$slot]}: only $est of $n connections ESTABLISHED"
        STATUS=1; return 0
    fi
    IDLE_RESULT="$((fa - fb)) $fb $fa $est $((ba - bb))"
}

memory_scenario() {
    local s d fb fa est bd
    local -A front node
    echo
    echo "== 3. memory: $IDLE idle clients per stack (websocket transport, namespace \"/\", in room \"all\", one echo acked),"
    echo "   1 worker, unpinned, sio_load.js in $PROCS processes; ΔRSS / N of the front (Tremolo's process; the"
    echo "   Node.js server) and, separately, of the node; each stack fresh, measured alone"
    printf '%-11s %24s %12s %16s %16s %16s\n' stack "front RSS KiB" established "front B/client" \
        "node B/client" "sum B/client"
    for s in "${SLOTS[@]}"; do
        if ! start_slot "$s" ""; then STATUS=1; stop_slot "$s"; continue; fi
        idle_rss "$s" "$IDLE"
        if [ "$IDLE_RESULT" != - ]; then
            read -r d fb fa est bd <<< "$IDLE_RESULT"
            front[$s]=$(awk -v d="$d" -v n="$IDLE" 'BEGIN { printf "%.0f", d * 1024 / n }')
            node[$s]=$(awk -v d="$bd" -v n="$IDLE" 'BEGIN { printf "%.0f", d * 1024 / n }')
            [ -z "${BACK[$s]:-}" ] && node[$s]=0
            printf '%-11s %24s %12s %16s %16s %16s\n' "${LABEL[$s]}" "$fb -> $fa" "$est" \
                "${front[$s]}" "${node[$s]}" "$((front[$s] + node[$s]))"
        fi
        stop_slot "$s"
    done
    if [ -n "${front[npm]:-}" ]; then
        SUMMARY+=("idle npm ${front[npm]} B/client")
        for s in "${SLOTS[@]}"; do
            [ "$s" = npm ] && continue
            [ -n "${front[$s]:-}" ] || continue
            local rf rs tgt
            rf=$(bench_div "${front[$s]}" "${front[npm]}")
            rs=$(bench_div "$((front[$s] + node[$s]))" "${front[npm]}")
            tgt=$(awk -v r="$rs" 'BEGIN { if (r == "-") print "not measured"; else print (r <= 0.25 ? "met" : "MISSED") }')
            echo "ratio ${LABEL[$s]}/npm bytes per idle client: front $rf, front + node $rs"
            SUMMARY+=("idle ${LABEL[$s]} ${front[$s]} B + node ${node[$s]} B vs npm ${front[npm]} B: x$rs (target <= 0.25 incl. the node: $tgt, front alone x$rf)")
        done
    fi
    echo "(user-space RSS only; the kernel's socket buffers are not in it)"
}

# ---------------------------------------------------------------- main

echo "socketio.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
for s in tpy tc npm; do
    if [[ " ${SLOTS[*]} " == *" $s "* ]]; then
        case ${KIND[$s]} in
            tremolo-py) echo "${LABEL[$s]}: $TREMOLO, 1 worker, plugins: $SIO_PLUGINS, no logger, NodeGuard $GUARD; node: sio_echo_app.py (tremolo_socketio, runtime: see its log line)" ;;
            tremolo-c)  echo "${LABEL[$s]}: the same Tremolo; node: sio_node.c (C, libzmq)" ;;
            nodejs)     echo "${LABEL[$s]}: socket.io $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$PEER_MODULES/socket.io/package.json") on Node.js $("$NODEJS" --version), NODE_ENV=production, perMessageDeflate off, ws add-ons: $(cd "$PEER_MODULES" && "$NODEJS" -e 'const a=[];for(const m of ["bufferutil","utf-8-validate"]){try{require(m);a.push(m)}catch(e){}}console.log(a.join(",")||"none")')" ;;
        esac
    else
        echo "${LABEL[$s]}: skipped: ${WHY[$s]:-}"
    fi
done
case $LOAD_CLIENT in
    c)   echo "load: websocket transport; echo and broadcast: sio_client.c (C, epoll, socket.io-client's packets);" ;;
    raw) echo "load: websocket transport; echo and broadcast: sio_load.js raw (socket.io-client's packets on ws);" ;;
    *)   echo "load: websocket transport; echo and broadcast: sio_load.js with socket.io-client;" ;;
esac
echo "      startup check and idle clients: socket.io-client $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$JS_MODULES/socket.io-client/package.json"), one Manager per client"
echo "ulimit -n: $NOFILE"
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at start: $LOADAVG$(awk -v l="$LOADAVG" 'BEGIN { if (l > 0.5) print " -- other jobs are running: figures will be noisy, trust CPU/event first" }')"

RUNNING=()
[ "$ROUNDS" -gt 0 ] && echo_scenario pinned
[ "$ROUNDS" -gt 0 ] && [ "$UNPINNED" != 0 ] && echo_scenario unpinned
[ "$BCAST" -gt 0 ] && broadcast_scenario
[ "$IDLE" -gt 0 ] && memory_scenario

echo
echo "load average at end: $(cut -d' ' -f1 /proc/loadavg)"
printf "SUMMARY: %s\n" "$(IFS=';'; echo "${SUMMARY[*]:-nothing measured}" | sed 's/;/; /g')"
echo "targets (issue 13): events/s >= 2x npm with the Python node; broadcast p99 <= 0.5x npm; idle client <= 1/4 of npm's memory"
exit $STATUS
