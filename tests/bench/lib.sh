# tests/bench/lib.sh -- shell helpers shared by the tests/bench/*.sh
# benchmarks. Source it from bash (`. tests/bench/lib.sh`); it defines
# functions only, plus BENCH_CLK_TCK, and starts nothing.
#
# Conventions: functions print their result on stdout; numbers are plain
# decimals; PIDs are the ones the caller started (bench_stop only signals
# the PID it is given and waits for it).

# `make bench` runs every tests/bench/*.sh, this one too: run directly, it
# has nothing to do.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    exit 0
fi

BENCH_CLK_TCK=$(getconf CLK_TCK)

# bench_log MSG...: progress to stderr, so stdout stays the report.
bench_log() {
    printf '[bench] %s\n' "$*" >&2
}

# bench_require TOOL...: exits the calling script (status 1, naming it)
# when a tool is not installed.
bench_require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null && continue
        echo "$(basename "$0"): $tool not found (make deps)" >&2
        exit 1
    done
}

# bench_raise_nofile WANT: raise the soft descriptor limit of this shell
# (and its children) to WANT, or to the hard limit when WANT is not
# allowed (an unprivileged container cannot raise the hard limit). Call it
# directly, not in $(...): a subshell's limit dies with it. Read the
# result with `ulimit -n`.
bench_raise_nofile() {
    local want=$1 hard
    if ! ulimit -n "$want" 2>/dev/null; then
        hard=$(ulimit -Hn)
        [ "$hard" = unlimited ] && hard=$want
        ulimit -n "$hard"
    fi
}

# bench_port_is_free PORT: true when nothing listens on PORT (TCP).
bench_port_is_free() {
    [ -z "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]
}

# bench_free_port [SKIP...]: a free TCP port in 20000-29999 that is not one
# of the SKIP ports (ports picked but not bound yet).
bench_free_port() {
    local p s tries=0 taken
    while [ $tries -lt 200 ]; do
        p=$((20000 + RANDOM % 10000))
        tries=$((tries + 1))
        taken=0
        for s in "$@"; do [ "$s" = "$p" ] && taken=1; done
        [ $taken = 0 ] && bench_port_is_free "$p" && { echo "$p"; return 0; }
    done
    echo "bench_free_port: no free port found" >&2
    return 1
}

# bench_wait_http URL PID [SECONDS]: wait until URL answers 2xx, failing
# early if PID dies. Default 10 s.
bench_wait_http() {
    local url=$1 pid=$2 secs=${3:-10} i code
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" \
               2>/dev/null || true)
        case $code in 2??) return 0 ;; esac
        sleep 0.05
    done
    return 1
}

# bench_pid_tree PID: PID and all its descendants (processes, not threads),
# one per line. Children are read from /proc/<pid>/task/*/children, so a
# child forked by any thread is found.
bench_pid_tree() {
    local pid=$1 c
    [ -d "/proc/$pid" ] || return 0
    echo "$pid"
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        bench_pid_tree "$c"
    done
}

# bench_pin CPULIST PID: pin every process and every thread of the tree
# rooted at PID to CPULIST (e.g. 0 or 0-1).
bench_pin() {
    local cpus=$1 pid=$2 p
    for p in $(bench_pid_tree "$pid"); do
        taskset -a -p -c "$cpus" "$p" >/dev/null
    done
}

# bench_cpu_ticks PID: utime+stime, in clock ticks, of the tree rooted at
# PID. /proc/<pid>/stat of a process already sums all its threads, so only
# processes are added (a multi-threaded server is counted once; nginx's
# master + workers are summed). Fields are counted after the last ')' so a
# command name with spaces cannot shift them.
bench_cpu_ticks() {
    local total=0 p rest
    for p in $(bench_pid_tree "$1"); do
        rest=$(cat /proc/"$p"/stat 2>/dev/null) || continue
        rest=${rest##*) }
        # After "comm) ": state=$1 ... utime=$12 stime=$13
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# bench_rss_kb PID: VmRSS in KiB, summed over the tree rooted at PID.
bench_rss_kb() {
    local total=0 p kb
    for p in $(bench_pid_tree "$1"); do
        kb=$(awk '/^VmRSS:/ { print $2 }' /proc/"$p"/status 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# bench_stop PID [SECONDS]: SIGTERM the PID, wait up to SECONDS (default 5)
# for it to exit, then SIGKILL it. Only that PID is signalled: a server's
# master is expected to stop its own workers.
bench_stop() {
    local pid=$1 secs=${2:-5} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        bench_log "pid $pid ignored SIGTERM for ${secs}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# bench_cleanup_pids: an EXIT trap for scripts that keep their stacks in
# the associative array PIDS (name -> "root pid ..."): stops every one of
# them (bench_stop) and removes $TMP.
bench_cleanup_pids() {
    local name p
    set +e
    for name in "${!PIDS[@]}"; do
        for p in ${PIDS[$name]}; do bench_stop "$p"; done
    done
    rm -rf "$TMP"
}

# bench_stats V...: "median min max" of the numbers given (median of an
# even count = mean of the middle two). Prints "- - -" for no numbers.
bench_stats() {
    [ $# -gt 0 ] || { echo "- - -"; return 0; }
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR % 2) m = v[(NR + 1) / 2]
            else        m = (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.6g %.6g %.6g\n", m, v[1], v[NR]
        }'
}

# bench_div A B [FORMAT]: A / B with awk, "-" when B is 0 or either is "-".
bench_div() {
    awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN {
        if (a == "-" || b == "-" || b + 0 == 0) print "-"
        else printf f "\n", a / b }'
}

# bench_wrk_parse FILE: reads `wrk --latency` output and prints
# "requests req_per_s p99_ms errors", errors = socket errors + non-2xx/3xx
# responses (wrk counts status > 399).
bench_wrk_parse() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            return v + 0
        }
        /requests in/        { req = $1 }
        /^Requests\/sec:/    { rps = $2 }
        $1 == "99%"          { p99 = ms($2) }
        /Socket errors:/     {
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0
        }
        /Non-2xx or 3xx/     { err += $NF }
        END {
            if (req == "" || rps == "" || p99 == "") { print "- - - 1"; exit }
            printf "%d %.2f %.3f %d\n", req, rps, p99, err
        }' "$1"
}

# fmt_stats V...: "median [min-max]" or "-" for no values.
fmt_stats() {
    [ -n "${1:-}" ] || { echo "-"; return; }
    local m lo hi
    read -r m lo hi <<< "$(bench_stats "$@")"
    echo "$m [$lo-$hi]"
}

# better RATIO high|low A B: which server wins given ratio A/B. Within 3 %
# is called a tie: rounds drift more than that.
better() {
    local ratio=$1 dir=$2 a=$3 b=$4
    [ "$ratio" = - ] && { echo "no data"; return; }
    awk -v r="$ratio" -v d="$dir" -v a="$a" -v b="$b" 'BEGIN {
        if (r > 0.97 && r < 1.03) { print "tie"; exit }
        win = (d == "high") ? (r > 1) : (r < 1)
        print (win ? a : b) " better" }'
}

# bench_rounds A B WRKCPU LABEL CPULABEL: the measurement core of every
# benchmark. Warms both up, then ROUNDS rounds alternating which goes first,
# each calling the script's own `measure NAME SECONDS WRKCPU` (which prints
# "req/s p99_ms us/req errors"); prints the per-round table, medians and the
# median of per-round ratios A/B. Sets BENCH_RATIOS ("req/s xR, p99 xP,
# CPU/req xU") and BENCH_INVALID=1 if any run had errors.
bench_rounds() {
    local A=$1 B=$2 wcpu=$3 label=$4 cpulabel=$5
    local r n first second rps p99 us err flag bad ra pa ua rb pb ub
    local -a rps_a=() rps_b=() p99_a=() p99_b=() us_a=() us_b=()
    local -a r_rps=() r_p99=() r_us=()

    BENCH_INVALID=0
    for n in "$A" "$B"; do measure "$n" 1 "$wcpu" > /dev/null; done   # warm-up
    printf '%-6s %-14s %12s %9s %9s  %s\n' round "$label" "req/s" "p99 ms" "us/req" ""
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then first=$A; second=$B; else first=$B; second=$A; fi
        local -A res=()
        bad=0
        for n in "$first" "$second"; do
            res[$n]=$(measure "$n" "$SECONDS_PER_RUN" "$wcpu")
            read -r rps p99 us err <<< "${res[$n]}"
            flag=""
            if [ "$rps" = - ] || [ "$err" != 0 ]; then
                flag="INVALID ($err errors)"; bad=1; BENCH_INVALID=1
            fi
            printf '%-6s %-14s %12s %9s %9s  %s\n' "$r" "$n" "$rps" "$p99" "$us" "$flag"
        done
        [ $bad = 1 ] && continue      # a round with an invalid run gives no ratio
        read -r ra pa ua _ <<< "${res[$A]}"
        read -r rb pb ub _ <<< "${res[$B]}"
        rps_a+=("$ra"); us_a+=("$ua")
        rps_b+=("$rb"); us_b+=("$ub")
        r_rps+=("$(bench_div "$ra" "$rb")")
        r_us+=("$(bench_div "$ua" "$ub")")
        if [ "$pa" != - ] && [ "$pb" != - ]; then   # a load without latencies
            p99_a+=("$pa"); p99_b+=("$pb")
            r_p99+=("$(bench_div "$pa" "$pb")")
        fi
    done

    echo
    echo "-- $TITLE: median [min-max] over ${#rps_a[@]} valid rounds"
    printf '%-14s %28s %24s %24s\n' "$label" "req/s" "p99 ms" "us/req ($cpulabel)"
    printf '%-14s %28s %24s %24s\n' "$A" "$(fmt_stats ${rps_a[@]+"${rps_a[@]}"})" \
        "$(fmt_stats ${p99_a[@]+"${p99_a[@]}"})" "$(fmt_stats ${us_a[@]+"${us_a[@]}"})"
    printf '%-14s %28s %24s %24s\n' "$B" "$(fmt_stats ${rps_b[@]+"${rps_b[@]}"})" \
        "$(fmt_stats ${p99_b[@]+"${p99_b[@]}"})" "$(fmt_stats ${us_b[@]+"${us_b[@]}"})"
    local mr mp mu
    read -r mr _ _ <<< "$(bench_stats ${r_rps[@]+"${r_rps[@]}"})"
    read -r mp _ _ <<< "$(bench_stats ${r_p99[@]+"${r_p99[@]}"})"
    read -r mu _ _ <<< "$(bench_stats ${r_us[@]+"${r_us[@]}"})"
    mr=$(bench_div "$mr" 1 %.3f); mp=$(bench_div "$mp" 1 %.3f); mu=$(bench_div "$mu" 1 %.3f)
    echo "ratio $A/$B (median of per-round ratios):"
    echo "  req/s  $mr  ($(better "$mr" high "$A" "$B"))"
    echo "  p99    $mp  ($(better "$mp" low "$A" "$B"))"
    echo "  us/req $mu  ($(better "$mu" low "$A" "$B"))"
    BENCH_RATIOS="req/s x$mr, p99 x$mp, CPU/req x$mu"
}

# bench_wait_file FILE TEXT PID SECONDS: wait until FILE contains TEXT;
# fails at once when PID is gone.
bench_wait_file() {
    local file=$1 text=$2 pid=$3 secs=$4 i
    for ((i = 0; i < secs * 20; i++)); do
        grep -qF -- "$text" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# bench_need_tremolo: the server binary ($TREMOLO) is built, or the
# script ends saying so.
bench_need_tremolo() {
    [ -x "$TREMOLO" ] && return 0
    echo "$(basename "$0"): $TREMOLO not built (run make)" >&2
    exit 1
}

# bench_need_2cpus WHAT: at least 2 CPUs (WHAT: what runs where), or the
# script ends saying so.
bench_need_2cpus() {
    [ "$(nproc)" -ge 2 ] && return 0
    echo "$(basename "$0"): needs 2 CPUs ($1)" >&2
    exit 1
}
