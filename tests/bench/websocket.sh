#!/usr/bin/env bash
# tests/bench/websocket.sh -- WebSocket (issue 5): Tremolo's websocket
# plugin with a C ZeroMQ node (tests/bench/ws_echo_node.c) against nginx
# proxying WebSocket to an echo server on the npm package `ws`
# (tests/bench/ws_echo_server.js, Node.js). The load comes from
# tests/bench/ws_client.c. Three measures:
#   1. memory per idle WebSocket connection: N (10,000) connections that
#      completed the handshake and echoed one message, all ESTABLISHED;
#      the server's ΔRSS / N (Tremolo's process only, nginx's master and
#      worker only: not the node, not the `ws` server); 1 worker each;
#   2. echo: C (50) connections in a closed loop, each sending a 32-byte
#      text message and waiting for its echo before the next, 5 s a run;
#      messages/s, p99, server CPU per message and the CPU of the whole
#      stack (server + node / `ws` server) per message. The stack runs on
#      CPU 0 (server and its backend pinned there), the client on CPU 1;
#   3. broadcast (Tremolo only: nginx has no groups, a broadcast there is
#      the application's business): N (10,000) members of one group; the
#      node answers a trigger message with one `all:websocket`; delivery
#      latency per member from the node's send, p50/p99/max, per round.
#
# Method: ../shared/BENCHMARKING.md -- both stacks side by side on free
# loopback ports, rounds alternate, ratios are taken within a round. It
# reports; it does not assert targets. Exit 1 only when something could not
# be measured (a server did not start, a run had errors or wrong bytes).
# A missing peer (nginx, or `ws` in tests/js/node_modules) is skipped with
# a message and Tremolo is measured alone.
#
# Environment knobs (defaults in brackets):
#   BENCH_TREMOLO       server binary    [$TREMOLO_BIN (set by make), build/tremolo]
#   BENCH_ROUNDS        echo rounds                      [3]
#   BENCH_SECONDS       seconds per echo run             [5]
#   BENCH_CONNS         echo connections                 [50]
#   BENCH_MSG_SIZE      echo message bytes               [32]
#   BENCH_IDLE          idle connections, 0 = skip       [10000]
#   BENCH_BCAST         broadcast members, 0 = skip      [10000]
#   BENCH_BCAST_ROUNDS  broadcasts                       [5]
set -euo pipefail

cd "${TREMOLO_SRC:-$(dirname "$0")/../..}"
REPO=$(pwd)
. tests/bench/lib.sh

TREMOLO=${BENCH_TREMOLO:-${TREMOLO_BIN:-build/tremolo}}
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-50}
MSG_SIZE=${BENCH_MSG_SIZE:-32}
IDLE=${BENCH_IDLE:-10000}
BCAST=${BENCH_BCAST:-10000}
BCAST_ROUNDS=${BENCH_BCAST_ROUNDS:-5}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
NODEJS=$(command -v node || echo /usr/bin/node)
WS_MODULES=$REPO/tests/js/node_modules
NGINX_WCONNS=25000               # 2 per proxied connection (client + upstream)
URL_PATH=/ws

bench_require curl ss taskset cc
bench_need_tremolo
bench_need_2cpus "stack on CPU 0, client on CPU 1"
HAVE_PEER=1
PEER_WHY=""
if [ ! -x "$NGINX" ]; then
    HAVE_PEER=0; PEER_WHY="nginx not found (Debian nginx-light)"
elif [ ! -x "$NODEJS" ]; then
    HAVE_PEER=0; PEER_WHY="node not found (Node.js >= 20)"
elif [ ! -f "$WS_MODULES/ws/package.json" ]; then
    HAVE_PEER=0; PEER_WHY="npm package ws not in tests/js/node_modules (sh tests/js/setup.sh)"
fi
bench_raise_nofile 65536
NOFILE=$(ulimit -n)

TMP=$(mktemp -d /tmp/tremolo-wsbench.XXXXXX)
declare -A SRV BACK PORT         # slot -> server root PID, backend PID, port
CLIENT_PID=""                    # a ws_client running in the background
STATUS=0
SUMMARY=()

cleanup() {
    local s
    set +e
    if [ -n "$CLIENT_PID" ]; then
        kill -TERM "$CLIENT_PID" 2>/dev/null; wait "$CLIENT_PID" 2>/dev/null
    fi
    for s in "${!SRV[@]}"; do bench_stop "${SRV[$s]}"; done
    for s in "${!BACK[@]}"; do bench_stop "${BACK[$s]}"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLIENT="$TMP/ws_client"
NODE_BIN="$TMP/ws_echo_node"
cc -O2 -o "$CLIENT" tests/bench/ws_client.c tests/bench/ws_client_core.c
cc -O2 -o "$NODE_BIN" tests/bench/ws_echo_node.c tests/bench/bench_node.c -lzmq

# ---------------------------------------------------------------- stacks

# wait_ws SLOT SECONDS: until one WebSocket echo goes through the stack
# (handshake checked, echo byte for byte): the server listens and its
# backend is available.
wait_ws() {
    local slot=$1 secs=$2 i out
    for ((i = 0; i < secs * 5; i++)); do
        kill -0 "${SRV[$slot]}" 2>/dev/null || return 1
        kill -0 "${BACK[$slot]}" 2>/dev/null || return 1
        if ! bench_port_is_free "${PORT[$slot]}"; then
            out=$("$CLIENT" echo 1 1 127.0.0.1 "${PORT[$slot]}" "$URL_PATH" 2>/dev/null || true)
            [ "${out##* }" = 0 ] && return 0
        fi
        sleep 0.2
    done
    return 1
}

# start_tremolo SLOT CPUS NODEMODE: Tremolo (1 worker, liana + zmq +
# websocket, no logger) and one ws_echo_node (echo or bcast), both pinned
# to CPUS unless "".
start_tremolo() {
    local slot=$1 cpus=$2 mode=$3 dir="$TMP/$1" port zport pin=()
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    zport=$(bench_free_port "$port" ${PORT[@]+"${PORT[@]}"})
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    mkdir -p "$dir/sites"
    cat > "$dir/tremolo.conf" <<EOF
[SERVER]
    Listen 127.0.0.1:$port
    Workers ${TREMOLO_WORKERS:-1}
    ErrorLog $dir/error.log
    LogLevel warn
    MimeTypes $REPO/conf/mime.types
EOF
    printf '[PLUGINS]\n    Load liana\n    Load zmq\n    Load websocket\n' > "$dir/plugins.load"
    printf '[ZMQ]\n    Bind tcp://127.0.0.1:%s\n    PingFreq 1s\n' "$zport" > "$dir/zmq.conf"
    cat > "$dir/sites/default.conf" <<EOF
[HOST]
    ServerName 127.0.0.1
    Default on
    Handler zmq
[ZMQ]
    Node bench-*
[WEBSOCKET]
    IdleTimeout 0
    PingInterval 0
    SendQueueLimit 8M
EOF
    "${pin[@]}" "$TREMOLO" -c "$dir/tremolo.conf" > "$dir/stdout.log" 2>&1 < /dev/null &
    SRV[$slot]=$!
    PORT[$slot]=$port
    # The node's unsolicited pong only counts once the ROUTER is bound.
    local i
    for ((i = 0; i < 100; i++)); do
        bench_port_is_free "$zport" || break
        kill -0 "${SRV[$slot]}" 2>/dev/null || break
        sleep 0.05
    done
    "${pin[@]}" "$NODE_BIN" bench-1 "tcp://127.0.0.1:$zport" "$mode" \
        > "$dir/node.log" 2>&1 < /dev/null &
    BACK[$slot]=$!
    wait_ws "$slot" 15
}

# start_nginx SLOT CPUS [WORKER_CONNECTIONS] [NOBACKEND]: the `ws` echo
# server and nginx (1 worker) proxying WebSocket to it, as nginx's docs
# show: proxy_http_version 1.1, Upgrade and Connection headers passed on,
# proxy_read_timeout and proxy_send_timeout long enough for idle sockets.
NGINX_TUNING="1 worker, proxy_http_version 1.1, Upgrade/Connection set, proxy_read/send_timeout 1d, access_log off, tcp_nodelay on, epoll, worker_connections $NGINX_WCONNS, worker_rlimit_nofile $NOFILE"
start_nginx() {
    local slot=$1 cpus=$2 wconns=${3:-$NGINX_WCONNS} nobackend=${4:-} dir="$TMP/$1"
    local port bport pin=()
    port=$(bench_free_port ${PORT[@]+"${PORT[@]}"})
    bport=$(bench_free_port "$port" ${PORT[@]+"${PORT[@]}"})
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    mkdir -p "$dir/tmp"
    if [ -z "$nobackend" ]; then
        NODE_PATH=$WS_MODULES "${pin[@]}" "$NODEJS" "$REPO/tests/bench/ws_echo_server.js" \
            "$bport" > "$dir/ws.log" 2>&1 < /dev/null &
        BACK[$slot]=$!
        bench_wait_file "$dir/ws.log" "listening" "${BACK[$slot]}" 15 || return 1
    fi
    cat > "$dir/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { use epoll; worker_connections $wconns; accept_mutex off; }
http {
    access_log off;
    tcp_nodelay on;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        server_name 127.0.0.1;
        location / {
            proxy_pass http://127.0.0.1:$bport;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
            proxy_read_timeout 1d;
            proxy_send_timeout 1d;
        }
    }
}
EOF
    "${pin[@]}" "$NGINX" -c "$dir/nginx.conf" -p "$dir/" -e "$dir/error.log" \
        > "$dir/stdout.log" 2>&1 < /dev/null &
    SRV[$slot]=$!
    PORT[$slot]=$port
    if [ -n "$nobackend" ]; then
        local i
        for ((i = 0; i < 200; i++)); do
            bench_port_is_free "$port" || return 0
            kill -0 "${SRV[$slot]}" 2>/dev/null || return 1
            sleep 0.05
        done
        return 1
    fi
    wait_ws "$slot" 15
}

# start_slot SLOT KIND CPUS [ARG]: KIND tremolo (ARG = node mode) or nginx.
start_slot() {
    local slot=$1 kind=$2 cpus=$3 arg=${4:-} rc=0
    case $kind in
        tremolo) start_tremolo "$slot" "$cpus" "${arg:-echo}" || rc=1 ;;
        nginx)   start_nginx "$slot" "$cpus" || rc=1 ;;
    esac
    if [ $rc != 0 ]; then
        echo "websocket.sh: $slot ($kind) did not start or echo" >&2
        tail -n 15 "$TMP/$slot"/*.log >&2 2>/dev/null || true
        return 1
    fi
    # Threads started later inherit the affinity; pin every tree again in
    # case one changed its own.
    if [ -n "$cpus" ]; then
        bench_pin "$cpus" "${SRV[$slot]}"
        [ -n "${BACK[$slot]:-}" ] && bench_pin "$cpus" "${BACK[$slot]}"
    fi
    bench_log "$slot: server pid ${SRV[$slot]}, backend pid ${BACK[$slot]:-none}, port ${PORT[$slot]}${cpus:+, cpu $cpus}"
}

stop_slot() {
    [ -n "${SRV[$1]:-}" ] && bench_stop "${SRV[$1]}"
    [ -n "${BACK[$1]:-}" ] && bench_stop "${BACK[$1]}"
    unset "SRV[$1]" "BACK[$1]" "PORT[$1]"
}

# ---------------------------------------------------------------- 2. echo

# measure SLOT SECONDS CLIENTCPU: one closed-loop echo run; prints
# "msgs/s p99_ms us_per_msg_server us_per_msg_stack errors".
measure() {
    local slot=$1 secs=$2 ccpu=$3 pin=() s0 b0 s1 b1 out
    local msgs rate p50 p99 err
    [ -n "$ccpu" ] && pin=(taskset -c "$ccpu")
    s0=$(bench_cpu_ticks "${SRV[$slot]}"); b0=$(bench_cpu_ticks "${BACK[$slot]}")
    out=$("${pin[@]}" "$CLIENT" echo "$CONNS" "$secs" 127.0.0.1 "${PORT[$slot]}" \
          "$URL_PATH" "$MSG_SIZE" 2> "$TMP/client.$slot.err" || true)
    s1=$(bench_cpu_ticks "${SRV[$slot]}"); b1=$(bench_cpu_ticks "${BACK[$slot]}")
    read -r msgs rate p50 p99 err <<< "${out:-- - - - 1}"
    if [ "$msgs" = - ] || [ "${msgs:-0}" = 0 ]; then
        echo "- - - - ${err:-1}"; return 0
    fi
    awk -v s=$((s1 - s0)) -v b=$((b1 - b0)) -v hz="$BENCH_CLK_TCK" -v n="$msgs" \
        -v r="$rate" -v p="$p99" -v e="$err" 'BEGIN {
            printf "%s %s %.2f %.2f %s\n", r, p, s / hz * 1e6 / n, (s + b) / hz * 1e6 / n, e }'
}

# echo_rounds A B CLIENTCPU: warm-up, then ROUNDS rounds alternating which
# slot goes first; the table, medians and the median of per-round ratios
# A/B (as lib.sh's bench_rounds, with one more column: the stack's CPU).
echo_rounds() {
    local A=$1 B=$2 ccpu=$3 r n first second bad flag
    local rate p99 us ust err
    local -a ra=() rb=() pa=() pb=() ua=() ub=() ta=() tb=() q_r=() q_p=() q_u=() q_t=()
    for n in "$A" "$B"; do measure "$n" 1 "$ccpu" > /dev/null; done     # warm-up
    printf '%-6s %-9s %11s %9s %18s %18s\n' round stack "msgs/s" "p99 ms" \
        "us/msg (server)" "us/msg (stack)"
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then first=$A; second=$B; else first=$B; second=$A; fi
        local -A res=()
        bad=0
        for n in "$first" "$second"; do
            res[$n]=$(measure "$n" "$SECONDS_PER_RUN" "$ccpu")
            read -r rate p99 us ust err <<< "${res[$n]}"
            flag=""
            if [ "$rate" = - ] || [ "$err" != 0 ]; then
                flag="INVALID ($err errors: $(head -c 160 "$TMP/client.$n.err" | tr '\n' ' '))"
                bad=1; STATUS=1
            fi
            printf '%-6s %-9s %11s %9s %18s %18s  %s\n' "$r" "$n" "$rate" "$p99" "$us" "$ust" "$flag"
        done
        [ $bad = 1 ] && continue
        local a1 a2 a3 a4 b1 b2 b3 b4
        read -r a1 a2 a3 a4 _ <<< "${res[$A]}"
        read -r b1 b2 b3 b4 _ <<< "${res[$B]}"
        ra+=("$a1"); pa+=("$a2"); ua+=("$a3"); ta+=("$a4")
        rb+=("$b1"); pb+=("$b2"); ub+=("$b3"); tb+=("$b4")
        q_r+=("$(bench_div "$a1" "$b1")"); q_p+=("$(bench_div "$a2" "$b2")")
        q_u+=("$(bench_div "$a3" "$b3")"); q_t+=("$(bench_div "$a4" "$b4")")
    done
    echo
    echo "-- echo: median [min-max] over ${#ra[@]} valid rounds"
    printf '%-9s %26s %22s %22s %22s\n' stack "msgs/s" "p99 ms" "us/msg server" "us/msg stack"
    printf '%-9s %26s %22s %22s %22s\n' "$A" "$(fmt_stats ${ra[@]+"${ra[@]}"})" \
        "$(fmt_stats ${pa[@]+"${pa[@]}"})" "$(fmt_stats ${ua[@]+"${ua[@]}"})" \
        "$(fmt_stats ${ta[@]+"${ta[@]}"})"
    printf '%-9s %26s %22s %22s %22s\n' "$B" "$(fmt_stats ${rb[@]+"${rb[@]}"})" \
        "$(fmt_stats ${pb[@]+"${pb[@]}"})" "$(fmt_stats ${ub[@]+"${ub[@]}"})" \
        "$(fmt_stats ${tb[@]+"${tb[@]}"})"
    local mr mp mu mt
    read -r mr _ _ <<< "$(bench_stats ${q_r[@]+"${q_r[@]}"})"
    read -r mp _ _ <<< "$(bench_stats ${q_p[@]+"${q_p[@]}"})"
    read -r mu _ _ <<< "$(bench_stats ${q_u[@]+"${q_u[@]}"})"
    read -r mt _ _ <<< "$(bench_stats ${q_t[@]+"${q_t[@]}"})"
    mr=$(bench_div "$mr" 1); mp=$(bench_div "$mp" 1)
    mu=$(bench_div "$mu" 1); mt=$(bench_div "$mt" 1)
    echo "ratio $A/$B (median of per-round ratios):"
    echo "  msgs/s          $mr  ($(better "$mr" high "$A" "$B"))"
    echo "  p99             $mp  ($(better "$mp" low "$A" "$B"))"
    echo "  us/msg server   $mu  ($(better "$mu" low "$A" "$B"))"
    echo "  us/msg stack    $mt  ($(better "$mt" low "$A" "$B"))"
    SUMMARY+=("echo msgs/s x$mr, p99 x$mp, server CPU/msg x$mu, stack CPU/msg x$mt")
}

echo_single() {
    local r rate p99 us ust err
    local -a v=() u=()
    measure tremolo 1 1 > /dev/null
    printf '%-6s %-9s %11s %9s %18s %18s\n' round stack "msgs/s" "p99 ms" \
        "us/msg (server)" "us/msg (stack)"
    for ((r = 1; r <= ROUNDS; r++)); do
        read -r rate p99 us ust err <<< "$(measure tremolo "$SECONDS_PER_RUN" 1)"
        printf '%-6s %-9s %11s %9s %18s %18s  %s\n' "$r" tremolo "$rate" "$p99" "$us" "$ust" \
            "$([ "$err" = 0 ] || echo "INVALID ($err errors)")"
        if [ "$err" = 0 ]; then v+=("$rate"); u+=("$us"); else STATUS=1; fi
    done
    SUMMARY+=("echo: tremolo alone $(fmt_stats ${v[@]+"${v[@]}"}) msgs/s, $(fmt_stats ${u[@]+"${u[@]}"}) us/msg server")
}

echo_scenario() {
    echo
    echo "== 2. echo: $CONNS connections, closed loop, $MSG_SIZE-byte text messages, ${SECONDS_PER_RUN}s runs, $ROUNDS rounds"
    echo "   server and its backend (C node / ws server) pinned to CPU 0, ws_client on CPU 1"
    echo "   us/msg server = the server's CPU only (Tremolo / nginx master+worker); stack = + its backend"
    if ! start_slot tremolo tremolo 0 echo; then
        echo "NOT MEASURED: tremolo did not start"; STATUS=1
        SUMMARY+=("echo: not measured"); stop_slot tremolo; return 0
    fi
    if [ $HAVE_PEER = 0 ]; then
        echo "(peer skipped: $PEER_WHY)"
        echo_single; stop_slot tremolo; return 0
    fi
    if ! start_slot nginx nginx 0; then
        echo "NOT MEASURED: nginx + ws did not start"; STATUS=1
        SUMMARY+=("echo: nginx did not start"); stop_slot tremolo; stop_slot nginx; return 0
    fi
    echo_rounds tremolo nginx 1
    stop_slot tremolo; stop_slot nginx
}

# ---------------------------------------------------------------- 1. memory

# idle_rss SLOT N: hold N idle WebSocket connections to SLOT; sets
# IDLE_RESULT "deltaKiB beforeKiB afterKiB established backendDeltaKiB"
# or "-".
idle_rss() {
    local slot=$1 n=$2 port=${PORT[$1]} before after bb ba est line="" i
    local fifo="$TMP/idle.in" out="$TMP/idle.$1.out"
    IDLE_RESULT=-
    "$CLIENT" echo 1 1 127.0.0.1 "$port" "$URL_PATH" > /dev/null 2>&1 || true  # lazy init
    sleep 0.3
    before=$(bench_rss_kb "${SRV[$slot]}"); bb=$(bench_rss_kb "${BACK[$slot]}")
    rm -f "$fifo"; mkfifo "$fifo"
    "$CLIENT" idle "$n" 127.0.0.1 "$port" "$URL_PATH" < "$fifo" > "$out" 2> "$out.err" &
    CLIENT_PID=$!
    exec 9> "$fifo"                  # holds the client's stdin open
    for ((i = 0; i < 1400; i++)); do # up to 70 s
        line=$(head -n1 "$out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ "$line" != "ready $n" ]; then
        echo "websocket.sh: idle client against $slot: ${line:-no ready}: $(head -c 300 "$out.err")" >&2
        exec 9>&-; wait "$CLIENT_PID" 2>/dev/null || true; CLIENT_PID=""
        STATUS=1; return 0
    fi
    sleep 0.5                        # let the server finish its accounting
    est=$(ss -Htn state established "( sport = :$port )" | wc -l)
    after=$(bench_rss_kb "${SRV[$slot]}"); ba=$(bench_rss_kb "${BACK[$slot]}")
    exec 9>&-                        # EOF: the client closes everything
    wait "$CLIENT_PID" 2>/dev/null || true
    CLIENT_PID=""
    if [ "$est" -lt "$n" ]; then
        echo "websocket.sh: $slot: only $est of $n connections ESTABLISHED" >&2
        STATUS=1; return 0
    fi
    IDLE_RESULT="$((after - before)) $before $after $est $((ba - bb))"
}

memory() {
    local n=$IDLE s d before after est bd
    local -A per=()
    # nginx holds 2 descriptors per proxied connection; the hard limit
    # may not allow 2N: then both sides get the same smaller N.
    if [ $HAVE_PEER = 1 ] && [ $((2 * n + 64)) -gt "$NOFILE" ]; then
        n=$(((NOFILE - 64) / 2))
    fi
    echo
    echo "== 1. memory: $n idle WebSocket connections (handshake + one echoed message each), 1 worker, unpinned"
    [ "$n" != "$IDLE" ] && echo "   ($n, not $IDLE: ulimit -n is $NOFILE and nginx needs 2 descriptors per proxied connection)"
    echo "   server RSS only: Tremolo's process (not the C node); nginx's master + worker (not the ws server)"
    for s in tremolo nginx; do
        per[$s]=-
        [ $s = nginx ] && [ $HAVE_PEER = 0 ] && continue
        if ! start_slot "$s" "$s" ""; then STATUS=1; stop_slot "$s"; continue; fi
        idle_rss "$s" "$n"
        if [ "$IDLE_RESULT" != - ]; then
            read -r d before after est bd <<< "$IDLE_RESULT"
            per[$s]=$(awk -v d="$d" -v n="$n" 'BEGIN { printf "%.0f", d * 1024 / n }')
            printf '%-8s RSS %7s KiB -> %7s KiB, %s established: %s bytes/conn (backend, not counted: %s bytes/conn)\n' \
                "$s" "$before" "$after" "$est" "${per[$s]}" \
                "$(awk -v d="$bd" -v n="$n" 'BEGIN { printf "%.0f", d * 1024 / n }')"
        fi
        stop_slot "$s"
    done
    # nginx allocates its worker_connections slots at start, so they are in
    # its "before" RSS; a proxied WebSocket uses two (client + upstream).
    # One slot = (RSS with $NGINX_WCONNS slots - RSS with 1024) / the
    # difference, as static.sh does.
    local slot=0 big=0 small=0 incl=-
    if [ "${per[nginx]}" != - ]; then
        start_nginx nginx-slots "" "$NGINX_WCONNS" nobackend && big=$(bench_rss_kb "${SRV[nginx-slots]}")
        stop_slot nginx-slots
        start_nginx nginx-slots "" 1024 nobackend && small=$(bench_rss_kb "${SRV[nginx-slots]}")
        stop_slot nginx-slots
        slot=$(awk -v b="$big" -v s="$small" -v n=$((NGINX_WCONNS - 1024)) \
               'BEGIN { v = (b - s) * 1024 / n; printf "%.0f", v < 0 ? 0 : v }')
        incl=$((per[nginx] + 2 * slot))
        echo "nginx preallocates worker_connections slots: ~$slot bytes each (RSS $big KiB with $NGINX_WCONNS vs $small KiB with 1024);" \
             "2 per proxied connection: nginx incl. slots $incl bytes/conn"
    fi
    local tgt
    tgt=$(awk -v t="${per[tremolo]}" 'BEGIN { if (t == "-") print "not measured";
          else print (t <= 4096 ? "met" : "MISSED") }')
    if [ "${per[tremolo]}" != - ] && [ "$incl" != - ]; then
        local ratio raw
        ratio=$(bench_div "${per[tremolo]}" "$incl")
        raw=$(bench_div "${per[tremolo]}" "${per[nginx]}")
        echo "ratio tremolo/nginx bytes per idle connection: $ratio incl. nginx's slots, $raw without" \
             "($(better "$ratio" low tremolo nginx))"
        [ "${per[tremolo]}" -lt "$incl" ] || tgt="$tgt, NOT less than nginx"
        SUMMARY+=("idle conn ${per[tremolo]} B vs $incl B (x$ratio, target <= 4096 B and < nginx: $tgt)")
    else
        SUMMARY+=("idle conn tremolo ${per[tremolo]} B, nginx ${per[nginx]} B (target <= 4096 B: $tgt)")
    fi
    echo "(user-space RSS only; the kernel's socket buffers are not in it)"
}

# ---------------------------------------------------------------- 3. broadcast

# broadcast WORKERS SERVER_CPUS CLIENT_CPUS LABEL ("" CPUs: unpinned)
broadcast() {
    local workers=$1 scpus=$2 ccpus=$3 label=$4 cpin=()
    local out="$TMP/bcast.out" i line t0 t1 r p99s=() maxs=() cp99s=() got bad=0
    [ -n "$ccpus" ] && cpin=(taskset -c "$ccpus")
    echo
    echo "== 3. broadcast ($label): $BCAST members of one group, $BCAST_ROUNDS broadcasts, Tremolo only"
    echo "   (nginx has no groups: fan-out is the application's job behind it, so there is no peer figure)"
    echo "   Tremolo ($workers worker(s)) and the node on CPU ${scpus:-any}, ws_client on CPU ${ccpus:-any};"
    echo "   latency = CLOCK_MONOTONIC from the node's send of [sid, \"all:websocket\", ...]"
    echo "   (or from the trigger leaving the client) to a member's read"
    TREMOLO_WORKERS=$workers
    if ! start_slot bcast tremolo "$scpus" bcast; then
        TREMOLO_WORKERS=1
        echo "NOT MEASURED: tremolo did not start"; STATUS=1
        SUMMARY+=("broadcast: not measured"); stop_slot bcast; return 0
    fi
    TREMOLO_WORKERS=1
    "${cpin[@]}" "$CLIENT" bcast "$BCAST" "$BCAST_ROUNDS" 127.0.0.1 "${PORT[bcast]}" \
        "$URL_PATH" > "$out" 2> "$out.err" &
    CLIENT_PID=$!
    for ((i = 0; i < 1400; i++)); do
        grep -q '^ready\|^error' "$out" 2>/dev/null && break
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.05
    done
    # Server CPU from "ready" to the last round's line (the client then
    # pauses 300 ms before it closes its connections: not counted).
    t0=$(bench_cpu_ticks "${SRV[bcast]}")
    while kill -0 "$CLIENT_PID" 2>/dev/null &&
          ! grep -q "^round $BCAST_ROUNDS " "$out" 2>/dev/null; do
        sleep 0.05
    done
    t1=$(bench_cpu_ticks "${SRV[bcast]}")
    wait "$CLIENT_PID" 2>/dev/null || bad=1
    CLIENT_PID=""
    stop_slot bcast
    if ! grep -q "^ready $BCAST\$" "$out"; then
        echo "INVALID: $(head -n1 "$out") $(head -c 300 "$out.err")"; STATUS=1
        SUMMARY+=("broadcast: not measured"); return 0
    fi
    printf '%-6s %9s %22s %22s\n' round received "p50/p99/max ms (node)" "p50/p99/max ms (client)"
    while read -r _ r _ _ _ got np50 np99 nmax cp50 cp99 cmax; do
        printf '%-6s %9s %22s %22s\n' "$r" "$got" "$np50/$np99/$nmax" "$cp50/$cp99/$cmax"
        if [ "$got" = "$BCAST" ]; then p99s+=("$np99"); maxs+=("$nmax"); cp99s+=("$cp99"); fi
    done < <(grep '^round' "$out")
    if [ $bad = 1 ] || [ ${#p99s[@]} != "$BCAST_ROUNDS" ]; then
        echo "INVALID: a broadcast did not reach every member ($(head -c 300 "$out.err"))"; STATUS=1
    fi
    local mp99 mmax cpu tgt
    read -r mp99 _ _ <<< "$(bench_stats ${p99s[@]+"${p99s[@]}"})"
    read -r _ _ mmax <<< "$(bench_stats ${maxs[@]+"${maxs[@]}"})"
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$BENCH_CLK_TCK" -v n="$BCAST" -v r="$BCAST_ROUNDS" \
          'BEGIN { printf "%.2f", d / hz * 1e6 / (n * r) }')
    echo "p99 over members, median [min-max] of rounds: $(fmt_stats ${p99s[@]+"${p99s[@]}"}) ms" \
         "from the node's send, $(fmt_stats ${cp99s[@]+"${cp99s[@]}"}) ms from the client's trigger;" \
         "worst max $mmax ms"
    echo "Tremolo CPU per delivered frame: $cpu us ($((t1 - t0)) ticks for $BCAST_ROUNDS broadcasts)"
    tgt=$(awk -v p="$mp99" 'BEGIN { if (p == "-") print "not measured"; else print (p < 100 ? "met" : "MISSED") }')
    SUMMARY+=("broadcast ($label) to $BCAST p99 $mp99 ms, max $mmax ms, $cpu us CPU/member (target p99 < 100 ms: $tgt)")
}

# ---------------------------------------------------------------- main

echo "websocket.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo "tremolo: $TREMOLO ($("$TREMOLO" -V 2>&1 | head -n1 || true)); liana + zmq + websocket, no logger; node: ws_echo_node.c (C, libzmq)"
if [ $HAVE_PEER = 1 ]; then
    echo "peer: nginx $($NGINX -v 2>&1 | sed 's/.*: //') ($NGINX_TUNING)"
    echo "      -> ws $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$WS_MODULES/ws/package.json") echo server on Node.js $("$NODEJS" --version) (perMessageDeflate off)"
else
    echo "peer: skipped: $PEER_WHY"
fi
LOAD=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at start: $LOAD$(awk -v l="$LOAD" 'BEGIN { if (l > 0.5) print " -- other jobs are running: figures will be noisy, trust CPU/msg first" }')"

echo_scenario
[ "$IDLE" -gt 0 ] && memory
if [ "$BCAST" -gt 0 ]; then
    broadcast 1 0 1 "1 worker pinned"
    # BENCHMARKING.md: also the 2-worker unpinned run, labelled as such:
    # members spread over both workers, mixed with the client's load
    broadcast 2 "" "" "2 workers unpinned"
fi

echo
echo "load average at end: $(cut -d' ' -f1 /proc/loadavg)"
printf "SUMMARY (tremolo/nginx): %s\n" "$(IFS=';'; echo "${SUMMARY[*]}" | sed 's/;/; /g')"
echo "targets (issue 5): idle WebSocket <= 4 KiB per connection and less than nginx; broadcast to 10,000 p99 < 100 ms"
exit $STATUS
