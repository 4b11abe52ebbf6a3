/*
 * sio_client.c -- the C load client of tests/bench/socketio.sh: socket.io
 * clients (Engine.IO v4 / Socket.IO v5 over the websocket transport,
 * namespace "/") in one thread, epoll, non-blocking sockets, libc only.
 * Its WebSocket and epoll parts are tests/bench/ws_client_core.c (shared
 * with ws_client.c); the socket.io packets on top are the ones
 * socket.io-client sends on a websocket connection. It exists because socket.io-client (and even a
 * minimal client in Node.js) costs as much CPU per packet as the servers
 * it measures (README.md, socketio.sh).
 *
 *     cc -O2 -o sio_client tests/bench/sio_client.c tests/bench/ws_client_core.c
 *     sio_client echo  C SECONDS HOST PORT [SIZE]
 *     sio_client bcast N ROUNDS HOST PORT [step]
 *
 * Each client: GET /socket.io/?EIO=4&transport=websocket (101, the right
 * Sec-WebSocket-Accept), Engine.IO open `0{...}`, CONNECT `40`, the
 * server's `40{...}`, then one `42ID["echo","<SIZE bytes>"]` that must come
 * back as `43ID["<the same>"]`: then it is ready (a node has run its
 * connect handler: its room join is in place). At most INFLIGHT (256)
 * clients open at once. Server pings `2` get `3`; noops `6` are ignored.
 *
 * echo:  C clients in a closed loop for SECONDS, each emitting `echo` with
 *        an ack id and emitting the next one when the ack came back with
 *        the same argument. Prints "events events_per_s p50_ms p99_ms
 *        connect_errors missing_acks other_errors client_cpu_pct".
 * bcast: N members; prints "ready N". Then ROUNDS times (with `step`, each
 *        waits for a line on stdin): client 0 emits `42["bcast",T0]`, the
 *        server emits `tick` with its CLOCK_MONOTONIC ms to room "all",
 *        every member notes when its `42["tick",T1]` was read. Per round:
 *        "round R received K p50 p99 max p50 p99 max client_cpu_ms" (ms;
 *        the first three from T1, the server's emit, the next three from
 *        T0, the trigger; client_cpu_ms: this process's CPU from the
 *        trigger to the last tick). A round ends when every member got it
 *        or after 10 s. Last line: "errors connect_errors missing_ticks
 *        other_errors".
 * Errors: connect_errors = clients that failed before they were ready (or
 * were not ready within 60 s); missing_acks = acks with other arguments or
 * not back 5 s after the run's end; other = a ready client closed by
 * the server, a packet out of place, a second tick in one round. Exit 1
 * when there was any error.
 */
#define _GNU_SOURCE
#include "ws_client_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>

#define ACK_STALE     5000           /* ms: an ack this late is missing */
#define ACK_ID_MAX    24             /* c->expect: `ID["`, after "43" */

enum { M_ECHO, M_BCAST };
/* After the upgrade: Engine.IO's open, our CONNECT's answer, the first ack. */
enum { ST_OPEN = ST_CLIENT, ST_JOIN, ST_FIRST };

const char client_name[] = "sio_client";

static int mode;
static uint64_t err_connect, err_ack, err_other;
static int quiet_fail;               /* on_fail counts nothing */
static size_t msg_size = 32;
static char echo_arg[4096];

/* bcast */
static uint64_t round_t0;
static struct lat lat_emit, lat_trigger;

void on_fail(struct conn *c)
{
    if (c->state != ST_READY) {
        err_connect++;
    }
    else if (!quiet_fail) {
        err_other++;
    }
}

void on_upgraded(struct conn *c)
{
    c->state = ST_OPEN;              /* Engine.IO's open packet comes next */
}

/* A text message (one masked frame). */
static void send_text(struct conn *c, const char *text, size_t len)
{
    send_frame(c, 0x1, text, len);
}

/* 42ID["echo","PAYLOAD"]; the ack must be 43ID["PAYLOAD"]. */
static void send_echo(struct conn *c)
{
    char m[4200];
    int n;
    uint32_t id = c->seq++;

    n = snprintf(m, sizeof(m), "42%u[\"echo\",\"%s\"]", id, echo_arg);
    if (!c->expect) {
        c->expect = xrealloc(NULL, ACK_ID_MAX);
    }
    c->expect_len = (size_t) snprintf(c->expect, ACK_ID_MAX, "%u[\"", id);
    c->waiting = 1;
    c->sent_ns = now_ns();
    send_text(c, m, (size_t) n);
}

static void ack_wrong(struct conn *c, const char *why)
{
    err_ack++;
    quiet_fail = c->state == ST_READY;
    conn_fail(c, why);
    quiet_fail = 0;
}

/* p: the ACK after "43": ID["PAYLOAD"] */
static void on_ack(struct conn *c, const char *p, size_t len, uint64_t t)
{
    if (!c->waiting || len != c->expect_len + msg_size + 2 ||
        memcmp(p, c->expect, c->expect_len) != 0 ||
        memcmp(p + c->expect_len, echo_arg, msg_size) != 0 ||
        memcmp(p + c->expect_len + msg_size, "\"]", 2) != 0) {
        ack_wrong(c, "an ack with another id or other arguments");
        return;
    }
    reply_arrived(c, t, send_echo);
}

/* p: the EVENT after "42": ["tick",T1] */
static void on_tick(struct conn *c, const char *p, size_t len, uint64_t t)
{
    char tmp[128], *end;
    double t1;

    if (mode != M_BCAST || c->state != ST_READY || !round_open ||
        c->got_round || len >= sizeof(tmp) || len < 10 ||
        memcmp(p, "[\"tick\",", 8) != 0) {
        conn_fail(c, "an event out of place");
        return;
    }
    memcpy(tmp, p + 8, len - 8);
    tmp[len - 8] = '\0';
    t1 = strtod(tmp, &end);
    if (end == tmp || *end != ']' || t1 <= 0) {
        conn_fail(c, "a tick without its time");
        return;
    }
    c->got_round = 1;
    round_got++;
    t1 *= 1e6;                       /* ms -> ns */
    lat_add(&lat_emit, (double) t > t1 ? (uint64_t) ((double) t - t1) : 0);
    lat_add(&lat_trigger, t > round_t0 ? t - round_t0 : 0);
}

/* One complete WebSocket message: one Engine.IO packet. */
void on_message(struct conn *c, const char *m, size_t len, uint64_t t)
{
    if (len == 0) {
        conn_fail(c, "an empty packet");
        return;
    }
    switch (m[0]) {
    case '0':                        /* open */
        if (c->state != ST_OPEN) {
            conn_fail(c, "open out of place");
            return;
        }
        c->state = ST_JOIN;
        send_text(c, "40", 2);
        return;
    case '2':                        /* ping */
        send_text(c, "3", 1);
        return;
    case '6':                        /* noop */
        return;
    case '4':                        /* message: a Socket.IO packet */
        break;
    default:
        conn_fail(c, m[0] == '1' ? "Engine.IO close" : "an unknown Engine.IO packet");
        return;
    }
    if (len < 2) {
        conn_fail(c, "an empty Socket.IO packet");
        return;
    }
    switch (m[1]) {
    case '0':                        /* CONNECT "/" accepted */
        if (c->state != ST_JOIN) {
            conn_fail(c, "CONNECT out of place");
            return;
        }
        c->state = ST_FIRST;
        send_echo(c);
        return;
    case '3':
        on_ack(c, m + 2, len - 2, t);
        return;
    case '2':
        on_tick(c, m + 2, len - 2, t);
        return;
    case '4':
        conn_fail(c, "CONNECT_ERROR");
        return;
    case '1':
        conn_fail(c, "DISCONNECT from the server");
        return;
    default:
        conn_fail(c, "an unexpected Socket.IO packet");
        return;
    }
}


static int none_waiting(void)
{
    uint32_t i;

    for (i = 0; i < nconns; i++) {
        if (conns[i].state == ST_READY && conns[i].waiting) {
            return 0;
        }
    }
    return 1;
}

static uint64_t line_want;

static int have_line(void)
{
    return stdin_lines >= line_want;
}

static double cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: sio_client echo  C SECONDS HOST PORT [SIZE]\n"
            "       sio_client bcast N ROUNDS HOST PORT [step]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long secs = 0, rounds = 0, port;
    uint32_t i;
    int step = 0;
    size_t k;

    if (argc < 6) {
        usage();
    }
    if (strcmp(argv[1], "echo") == 0 && (argc == 6 || argc == 7)) {
        mode = M_ECHO;
        secs = atol(argv[3]);
        if (argc == 7) {
            msg_size = (size_t) atol(argv[6]);
        }
        if (secs <= 0 || msg_size < 1 || msg_size >= sizeof(echo_arg)) {
            usage();
        }
    }
    else if (strcmp(argv[1], "bcast") == 0 && (argc == 6 || argc == 7)) {
        mode = M_BCAST;
        rounds = atol(argv[3]);
        if (rounds <= 0 || (argc == 7 && strcmp(argv[6], "step") != 0)) {
            usage();
        }
        step = argc == 7;
    }
    else {
        usage();
    }
    for (k = 0; k < msg_size; k++) {
        echo_arg[k] = (char) ('a' + k % 26);
    }
    nconns = (uint32_t) atol(argv[2]);
    host = argv[4];
    port = atol(argv[5]);
    if (nconns == 0 || port <= 0 || port > 65535) {
        usage();
    }
    path = "/socket.io/?EIO=4&transport=websocket";
    k = (size_t) client_init(port);
    if (k) {
        return (int) k;
    }

    if (open_all()) {
        err_connect = nconns - nready;   /* failed or still opening */
    }

    if (mode == M_ECHO) {
        uint64_t stale = 0, end;
        double cpu0 = 0, cpu1 = 0;
        if (nready) {
            cpu0 = cpu_ms();
            t_start = now_ns();
            t_end = t_start + (uint64_t) secs * 1000000000u;
            for (i = 0; i < nconns; i++) {
                if (conns[i].state == ST_READY) {
                    send_echo(&conns[i]);
                }
            }
            run(t_end, NULL);
            cpu1 = cpu_ms();
            /* Acks still out get ACK_STALE more; then they are missing. */
            run(now_ns() + (uint64_t) ACK_STALE * 1000000, none_waiting);
            end = now_ns();
            for (i = 0; i < nconns; i++) {
                if (conns[i].state == ST_READY && conns[i].waiting &&
                    end - conns[i].sent_ns >= (uint64_t) ACK_STALE * 1000000) {
                    stale++;
                }
            }
            if (stale) {
                fprintf(stderr, "sio_client: %llu acks outstanding for over %d ms\n",
                        (unsigned long long) stale, ACK_STALE);
            }
            err_ack += stale;
        }
        qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u64);
        printf("%llu %.1f %.3f %.3f %llu %llu %llu %.0f\n",
               (unsigned long long) completed,
               (double) completed / (double) secs, pct_ms(&lat, 0.50),
               pct_ms(&lat, 0.99), (unsigned long long) err_connect,
               (unsigned long long) err_ack, (unsigned long long) err_other,
               (cpu1 - cpu0) / ((double) secs * 10.0));
        return err_connect || err_ack || err_other ? 1 : 0;
    }

    /* bcast */
    {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = STDIN_TAG };
        uint64_t missing = 0;
        int r;

        printf("ready %u\n", nready);
        fflush(stdout);
        if (step) {
            epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
        }
        for (r = 1; r <= rounds && !stop && nready; r++) {
            struct conn *c0 = NULL;
            char m[64];
            double cpu0;
            int n;

            if (step) {
                line_want++;
                run(0, have_line);
                if (stop) {
                    break;
                }
            }
            for (i = 0; i < nconns; i++) {
                conns[i].got_round = 0;
                if (!c0 && conns[i].state == ST_READY) {
                    c0 = &conns[i];
                }
            }
            if (!c0) {
                break;
            }
            lat_emit.n = lat_trigger.n = 0;
            round_got = 0;
            round_open = 1;
            cpu0 = cpu_ms();
            round_t0 = now_ns();
            n = snprintf(m, sizeof(m), "42[\"bcast\",%.3f]", (double) round_t0 / 1e6);
            send_text(c0, m, (size_t) n);
            run(now_ns() + (uint64_t) ROUND_TIMEOUT * 1000000, round_done);
            round_open = 0;
            qsort(lat_emit.v, lat_emit.n, sizeof(uint64_t), cmp_u64);
            qsort(lat_trigger.v, lat_trigger.n, sizeof(uint64_t), cmp_u64);
            printf("round %d received %u %.3f %.3f %.3f %.3f %.3f %.3f %.1f\n",
                   r, round_got,
                   pct_ms(&lat_emit, 0.50), pct_ms(&lat_emit, 0.99), pct_ms(&lat_emit, 1.0),
                   pct_ms(&lat_trigger, 0.50), pct_ms(&lat_trigger, 0.99),
                   pct_ms(&lat_trigger, 1.0), cpu_ms() - cpu0);
            fflush(stdout);
            if (round_got < nready) {
                fprintf(stderr, "sio_client: round %d reached %u of %u members in %d s\n",
                        r, round_got, nready, ROUND_TIMEOUT / 1000);
                missing += nready - round_got;
            }
        }
        printf("errors %llu %llu %llu\n", (unsigned long long) err_connect,
               (unsigned long long) missing, (unsigned long long) err_other);
        fflush(stdout);
        return err_connect || missing || err_other ? 1 : 0;
    }
}
