#!/usr/bin/env bash
# tests/bench/static.sh -- Tremolo vs nginx serving one small static file.
#
# Run from the repository root with build/tremolo built (`make bench` does
# both). Method: ../shared/BENCHMARKING.md -- both servers side by side on
# free loopback ports, same 13-byte file, same keep-alive settings, access
# logs off; rounds alternate between the servers and ratios are taken
# within a round. Scenarios:
#   1. 1 worker each, server pinned to CPU 0, wrk pinned to CPU 1;
#   2. 2 workers each, unpinned;
#   3. memory: 10,000 idle keep-alive connections, delta RSS per connection.
# It reports; it does not assert targets. Exit status: 0 when every
# measurement is valid, 1 when a server failed to start or a run had
# socket errors / error statuses (the run is printed as INVALID).
#
# Environment knobs (defaults in brackets):
#   BENCH_TREMOLO   server binary      [$TREMOLO_BIN (set by make), build/tremolo]
#   BENCH_ROUNDS    rounds per scenario            [5]
#   BENCH_SECONDS   seconds per wrk run            [5]
#   BENCH_CONNS     wrk connections                [100]
#   BENCH_IDLE      idle connections for memory, 0 = skip   [10000]
#   BENCH_SYSCALLS  0 = skip the strace syscall count (1 worker only)  [1]
#   BENCH_SELFTEST  1 = run nginx in both slots to check the script itself
set -euo pipefail

cd "${TREMOLO_SRC:-$(dirname "$0")/../..}"
REPO=$(pwd)
. tests/bench/lib.sh

TREMOLO=${BENCH_TREMOLO:-${TREMOLO_BIN:-build/tremolo}}
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-100}
IDLE=${BENCH_IDLE:-10000}
SELFTEST=${BENCH_SELFTEST:-0}
STRACE_SECONDS=2
SYSCALLS=${BENCH_SYSCALLS:-1}
command -v strace >/dev/null || SYSCALLS=0
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

bench_require wrk curl ss taskset cc "$NGINX"
[ "$SELFTEST" = 1 ] || bench_need_tremolo
bench_need_2cpus "server on CPU 0, wrk on CPU 1"
NCPU=$(nproc)

bench_raise_nofile 65536
NOFILE=$(ulimit -n)
WORKER_CONNS=$((NOFILE < 20000 ? NOFILE : 20000))

TMP=$(mktemp -d /tmp/tremolo-bench.XXXXXX)
declare -A PID PORT
STATUS=0
IDLE_PID=""

cleanup() {
    local name
    set +e
    if [ -n "$IDLE_PID" ]; then
        kill -TERM "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null
    fi
    for name in "${!PID[@]}"; do bench_stop "${PID[$name]}"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$TMP/htdocs"
printf 'hello, world\n' > "$TMP/htdocs/hello.txt"
URL_PATH=/hello.txt

# ---------------------------------------------------------------- servers

# write_tremolo_conf DIR PORT WORKERS
write_tremolo_conf() {
    local dir=$1 port=$2 workers=$3
    mkdir -p "$dir/sites"
    cat > "$dir/tremolo.conf" <<EOF
[SERVER]
    Listen 127.0.0.1:$port
    Workers $workers
    Scheduler reuseport
    ErrorLog $dir/error.log
    LogLevel warn
    MimeTypes $REPO/conf/mime.types
    KeepAlive on
    KeepAliveMaxRequests 1000000
    KeepAliveTimeout 60s
EOF
    # No logger plugin: no access log, the same work as nginx's access_log off.
    cat > "$dir/plugins.load" <<EOF
[PLUGINS]
    Load liana
EOF
    cat > "$dir/sites/default.conf" <<EOF
[HOST]
    ServerName 127.0.0.1
    Default on
    DocumentRoot $TMP/htdocs
    Handler static
EOF
}

# write_nginx_conf DIR PORT WORKERS [WORKER_CONNECTIONS]
# Tuned as nginx's docs recommend for small static files: sendfile +
# tcp_nopush, open_file_cache, access_log off, reuseport listeners (one
# accept queue per worker, as Tremolo's Scheduler reuseport), epoll,
# keep-alive as long as Tremolo's.
NGINX_TUNING="access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
  listen ... reuseport; events { use epoll; accept_mutex off; }
  keepalive_requests 1000000; keepalive_timeout 60s; worker_rlimit_nofile"
write_nginx_conf() {
    local dir=$1 port=$2 workers=$3 wconns=${4:-$WORKER_CONNS}
    mkdir -p "$dir/logs" "$dir/tmp"
    cat > "$dir/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes $workers;
worker_rlimit_nofile $NOFILE;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    use epoll;
    worker_connections $wconns;
    accept_mutex off;
}
http {
    types { text/plain txt; text/html html; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
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
        root $TMP/htdocs;
    }
}
EOF
}

# kind_of NAME: which server a slot runs (selftest runs nginx in both).
kind_of() {
    if [ "$SELFTEST" = 1 ]; then echo nginx; else
        case $1 in tremolo*) echo tremolo ;; *) echo nginx ;; esac
    fi
}

# start_server NAME WORKERS CPUS [WORKER_CONNECTIONS]: start slot NAME on a
# free port, pinned to CPUS ("" = unpinned). Sets PID[NAME], PORT[NAME].
# Returns non-zero when the server does not come up.
start_server() {
    local name=$1 workers=$2 cpus=$3 wconns=${4:-$WORKER_CONNS}
    local dir="$TMP/$name" port pin=()
    port=$(bench_free_port "${PORT[@]:-}")
    mkdir -p "$dir"
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    if [ "$(kind_of "$name")" = tremolo ]; then
        write_tremolo_conf "$dir" "$port" "$workers"
        "${pin[@]}" "$TREMOLO" -c "$dir/tremolo.conf" \
            > "$dir/stdout.log" 2>&1 < /dev/null &
    else
        write_nginx_conf "$dir" "$port" "$workers" "$wconns"
        "${pin[@]}" "$NGINX" -c "$dir/nginx.conf" -p "$dir/" -e "$dir/error.log" \
            > "$dir/stdout.log" 2>&1 < /dev/null &
    fi
    PID[$name]=$!
    PORT[$name]=$port
    if ! bench_wait_http "http://127.0.0.1:$port$URL_PATH" "${PID[$name]}" 10; then
        echo "static.sh: $name ($(kind_of "$name")) did not start on port $port" >&2
        tail -n 20 "$dir/stdout.log" "$dir/error.log" >&2 2>/dev/null || true
        return 1
    fi
    # Workers a server spawns after start-up inherit the affinity; pin
    # the whole tree again anyway in case a thread changed its own.
    [ -n "$cpus" ] && bench_pin "$cpus" "${PID[$name]}"
    bench_log "$name: pid ${PID[$name]} port $port workers $workers${cpus:+ cpu $cpus}"
    return 0
}

stop_server() {
    [ -n "${PID[$1]:-}" ] || return 0
    bench_stop "${PID[$1]}"
    unset "PID[$1]"
}

stop_all() {
    local n
    for n in "${!PID[@]}"; do stop_server "$n"; done
}

# check_same_response A B: both slots must answer 200 with the same body;
# prints their head sizes so "same work" can be judged.
check_same_response() {
    local a=$1 b=$2 n ha hb
    for n in "$a" "$b"; do
        curl -s -D "$TMP/$n.head" -o "$TMP/$n.body" "http://127.0.0.1:${PORT[$n]}$URL_PATH"
        if ! cmp -s "$TMP/$n.body" "$TMP/htdocs/hello.txt"; then
            echo "static.sh: $n does not serve the test file" >&2
            return 1
        fi
    done
    ha=$(wc -c < "$TMP/$a.head"); hb=$(wc -c < "$TMP/$b.head")
    echo "response: 13-byte body; head $ha bytes ($a), $hb bytes ($b)"
}

# ---------------------------------------------------------------- wrk runs

# measure NAME SECONDS WRKCPU: one wrk run against slot NAME; prints
# "req/s p99_ms us_per_req errors".
measure() {
    local name=$1 secs=$2 wcpu=$3 pin=() t0 t1 out
    out="$TMP/wrk.$name.txt"
    [ -n "$wcpu" ] && pin=(taskset -c "$wcpu")
    t0=$(bench_cpu_ticks "${PID[$name]}")
    "${pin[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" --latency \
        "http://127.0.0.1:${PORT[$name]}$URL_PATH" > "$out" 2>&1 || true
    t1=$(bench_cpu_ticks "${PID[$name]}")
    read -r req rps p99 err < <(bench_wrk_parse "$out")
    local us
    us=$(awk -v d=$((t1 - t0)) -v hz="$BENCH_CLK_TCK" -v n="$req" \
         'BEGIN { if (n + 0 > 0) printf "%.2f", d / hz * 1e6 / n; else print "-" }')
    echo "$rps $p99 $us $err"
}

# scenario TITLE WORKERS SRVCPU WRKCPU: start both servers, warm up, run
# the alternating rounds, print the table, stop the servers.
scenario() {
    local title=$1 workers=$2 scpu=$3 wcpu=$4
    local A=tremolo B=nginx n
    [ "$SELFTEST" = 1 ] && { A=nginx-a; B=nginx-b; }

    echo
    echo "== $title: wrk -t1 -c$CONNS -d${SECONDS_PER_RUN}s, $ROUNDS rounds =="
    if ! start_server "$A" "$workers" "$scpu" || ! start_server "$B" "$workers" "$scpu"; then
        STATUS=1
        echo "INVALID: a server failed to start"
        SUMMARY+=("${title%%,*}: not measured")
        stop_all
        return 0
    fi
    if ! check_same_response "$A" "$B"; then
        STATUS=1; echo "INVALID: wrong response"; stop_all
        SUMMARY+=("${title%%,*}: not measured"); return 0
    fi

    TITLE=$title bench_rounds "$A" "$B" "$wcpu" server "server CPU"
    [ "$BENCH_INVALID" = 1 ] && STATUS=1
    SUMMARY+=("${title%%,*}: $BENCH_RATIOS")

    if [ "$SYSCALLS" = 1 ]; then
        echo "syscalls per request (strace -c -f, one ${STRACE_SECONDS}s run each, not timed):"
        for n in "$A" "$B"; do syscalls "$n" "$wcpu"; done
    fi
    stop_server "$A"; stop_server "$B"
}

# syscalls NAME WRKCPU: count the server's syscalls under strace -c -f for
# one short wrk run and print them per request (total and the top five).
# Explains a CPU figure: the floor is ~2.2 per request (read + writev +
# a share of epoll_wait).
syscalls() {
    local name=$1 wcpu=$2 pin=() args=() p out="$TMP/strace.$1" spid req
    [ -n "$wcpu" ] && pin=(taskset -c "$wcpu")
    for p in $(bench_pid_tree "${PID[$name]}"); do args+=(-p "$p"); done
    strace -c -f -o "$out" "${args[@]}" 2> "$out.err" &
    spid=$!
    sleep 0.5                                   # let strace attach
    "${pin[@]}" wrk -t1 -c"$CONNS" -d"${STRACE_SECONDS}s" --latency \
        "http://127.0.0.1:${PORT[$name]}$URL_PATH" > "$TMP/wrk.strace.txt" 2>&1 || true
    kill -INT "$spid" 2>/dev/null || true       # detach and write the summary
    wait "$spid" 2>/dev/null || true
    read -r req _ _ _ < <(bench_wrk_parse "$TMP/wrk.strace.txt")
    if [ ! -s "$out" ] || [ "$req" = - ] || [ "$req" = 0 ]; then
        echo "  $name: strace gave no data ($(head -c 200 "$out.err"))"
        return 0
    fi
    awk -v n="$req" -v name="$name" '
        /^-/ || /^% time/ { next }
        $NF == "total" { total = $4; next }
        NF >= 5 { calls[$NF] = $4 }
        END {
            line = sprintf("  %-8s %.2f/req:", name, total / n)
            k = 0
            while (k < 5) {
                best = ""; bv = 0
                for (c in calls) if (calls[c] + 0 > bv) { bv = calls[c] + 0; best = c }
                if (best == "") break
                line = line sprintf(" %s %.2f", best, bv / n)
                delete calls[best]; k++
            }
            print line
        }' "$out"
}

# ---------------------------------------------------------------- memory

# idle_rss NAME: open $IDLE idle keep-alive connections to slot NAME; sets
# IDLE_RESULT to "deltaKiB beforeKiB afterKiB established", or "-" on
# failure (with STATUS=1). Not run in a subshell, so the EXIT trap knows
# IDLE_PID.
IDLE_BIN=""
idle_rss() {
    local name=$1 port=${PORT[$1]} before after est fifo="$TMP/idle.in" line=""
    local out="$TMP/idle.$1.out"
    curl -s -o /dev/null "http://127.0.0.1:$port$URL_PATH"   # lazy init done
    sleep 0.2
    before=$(bench_rss_kb "${PID[$name]}")
    rm -f "$fifo"; mkfifo "$fifo"
    "$IDLE_BIN" 127.0.0.1 "$port" "$IDLE" "$URL_PATH" < "$fifo" > "$out" 2> "$out.err" &
    IDLE_PID=$!
    exec 9> "$fifo"                  # holds idle_conns' stdin open
    local i
    for ((i = 0; i < 1200; i++)); do   # up to 60 s
        line=$(head -n1 "$out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ "$line" != "ready $IDLE" ]; then
        echo "static.sh: idle_conns against $name: ${line:-no ready}: $(cat "$out.err")" >&2
        exec 9>&-; wait "$IDLE_PID" 2>/dev/null || true; IDLE_PID=""
        STATUS=1; IDLE_RESULT=-; return 0
    fi
    sleep 0.5                         # let the server finish its accounting
    est=$(ss -Htn state established "( sport = :$port )" | wc -l)
    after=$(bench_rss_kb "${PID[$name]}")
    exec 9>&-                         # EOF: idle_conns closes everything
    wait "$IDLE_PID" 2>/dev/null || true
    IDLE_PID=""
    if [ "$est" -lt "$IDLE" ]; then
        echo "static.sh: $name: only $est of $IDLE connections ESTABLISHED" >&2
        STATUS=1; IDLE_RESULT=-; return 0
    fi
    bench_log "$name: RSS $before KiB -> $after KiB with $est established"
    IDLE_RESULT="$((after - before)) $before $after $est"
}

memory() {
    local A=tremolo B=nginx
    [ "$SELFTEST" = 1 ] && { A=nginx-a; B=nginx-b; }
    echo
    echo "== memory: $IDLE idle keep-alive connections, 1 worker each (ulimit -n $NOFILE) =="
    IDLE_BIN="$TMP/idle_conns"
    cc -O2 -o "$IDLE_BIN" tests/bench/idle_conns.c

    local n d before after est
    local -A per=()
    for n in "$A" "$B"; do
        if ! start_server "$n" 1 ""; then STATUS=1; per[$n]=-; continue; fi
        idle_rss "$n"
        read -r d before after est <<< "$IDLE_RESULT"
        if [ "$d" = - ]; then per[$n]=-; else
            per[$n]=$(awk -v d="$d" -v n="$IDLE" 'BEGIN { printf "%.0f", d * 1024 / n }')
            printf '%-8s RSS %7s KiB -> %7s KiB, %s established: %s bytes/conn\n' \
                "$n" "$before" "$after" "$est" "${per[$n]}"
        fi
        stop_server "$n"
    done

    # nginx allocates and touches worker_connections slots at start, so
    # they sit in the "before" RSS. Measure one slot: the baseline RSS with
    # $WORKER_CONNS slots minus that with 1024, over the difference, and
    # count it in nginx's per-connection cost (a slot is needed per
    # connection; Tremolo allocates per connection instead).
    local slot=0 big=0 small=0 need_slot=0
    local -A incl=()
    for n in "$A" "$B"; do
        [ "$(kind_of "$n")" = nginx ] && [ "${per[$n]}" != - ] && need_slot=1
    done
    if [ $need_slot = 1 ]; then
        start_server nginx-slots 1 "" "$WORKER_CONNS" && big=$(bench_rss_kb "${PID[nginx-slots]}")
        stop_server nginx-slots
        start_server nginx-slots 1 "" 1024 && small=$(bench_rss_kb "${PID[nginx-slots]}")
        stop_server nginx-slots
        slot=$(awk -v b="$big" -v s="$small" -v n=$((WORKER_CONNS - 1024)) \
               'BEGIN { printf "%.0f", (b - s) * 1024 / n }')
        echo "nginx preallocates worker_connections slots: ~$slot bytes each" \
             "(RSS $big KiB with $WORKER_CONNS slots vs $small KiB with 1024)"
    fi
    for n in "$A" "$B"; do
        incl[$n]=${per[$n]}
        if [ "${per[$n]}" != - ] && [ "$(kind_of "$n")" = nginx ]; then
            incl[$n]=$((per[$n] + slot))
            echo "$n incl. its slot: ${incl[$n]} bytes/conn"
        fi
    done
    local ratio
    if [ "${incl[$A]}" != - ] && [ "${incl[$B]}" != - ]; then
        ratio=$(bench_div "${incl[$A]}" "${incl[$B]}")
        echo "ratio $A/$B bytes per idle connection (nginx incl. slot): $ratio" \
             "($(better "$ratio" low "$A" "$B"))"
        SUMMARY+=("idle conn ${incl[$A]} B vs ${incl[$B]} B (x$ratio)")
    else
        SUMMARY+=("idle conn: not measured")
    fi
    echo "(user-space RSS only; the kernel's ~4 KB per socket is the same for both)"
}

# ---------------------------------------------------------------- main

SUMMARY=()
echo "static.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $NCPU CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $($NGINX -v 2>&1 | sed 's/.*: //')"
if [ "$SELFTEST" = 1 ]; then
    echo "SELFTEST: nginx runs in both slots (checks the script, not Tremolo)"
else
    echo "tremolo: $TREMOLO ($("$TREMOLO" -V 2>&1 | head -n1 || true)); no logger plugin (no access log)"
fi
echo "nginx tuning: $NGINX_TUNING"
LOAD=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at start: $LOAD$(awk -v l="$LOAD" 'BEGIN { if (l > 0.5) print " -- other jobs are running: req/s and p99 will be noisy, trust us/req" }')"
echo "server CPU = utime+stime of the server's processes (/proc/<pid>/stat), per completed request"

scenario "1 worker, server on CPU 0, wrk on CPU 1" 1 0 1
SYSCALLS_ALL=$SYSCALLS; SYSCALLS=0   # one count is enough: same code path
scenario "2 workers, unpinned" 2 "" ""
SYSCALLS=$SYSCALLS_ALL
[ "$IDLE" -gt 0 ] && memory

echo
echo "load average at end: $(cut -d' ' -f1 /proc/loadavg)"
if [ "$SELFTEST" = 1 ]; then pair=nginx-a/nginx-b; else pair=tremolo/nginx; fi
printf "SUMMARY ($pair): %s\n" "$(IFS=';'; echo "${SUMMARY[*]}" | sed 's/;/; /g')"
[ $STATUS = 0 ] || echo "static.sh: some measurements are INVALID (see above)" >&2
exit $STATUS
