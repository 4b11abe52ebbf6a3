/*
 * ws_client.c -- the WebSocket load tool of tests/bench/websocket.sh: one
 * thread, epoll, non-blocking sockets, libc only (the WebSocket part is
 * ws_client_core.c, which sio_client.c shares).
 *
 *     cc -O2 -o ws_client tests/bench/ws_client.c tests/bench/ws_client_core.c
 *     ws_client idle  N HOST PORT PATH             < some-pipe
 *     ws_client echo  C SECONDS HOST PORT PATH [SIZE]
 *     ws_client bcast N ROUNDS HOST PORT PATH
 *
 * Every mode first opens its connections, at most INFLIGHT (256) in
 * their opening handshake at once so no accept queue overflows. A
 * connection is ready when the server answered 101 with the right
 * Sec-WebSocket-Accept (the key is RFC 6455's sample nonce, so the accept
 * value is a constant), and the one text message it then sent came back
 * byte for byte. Client frames are masked (RFC 6455 5.3) with a fresh key
 * each; server frames may arrive in pieces or several per read, and a
 * fragmented message is reassembled. A server ping gets its pong.
 *
 * idle:  prints "ready N" once N connections are ready, then holds them
 *        until stdin reaches EOF (or SIGINT/SIGTERM). Exit 1 if one failed
 *        or the server closed one.
 * echo:  C connections in a closed loop for SECONDS: each sends a SIZE-byte
 *        (32) text message, waits for its echo, checks it, sends the next.
 *        Prints "messages msgs_per_s p50_ms p99_ms errors": messages whose
 *        echo arrived within SECONDS, latency from the send to the echo's
 *        last byte. errors = failed connections, wrong bytes, server
 *        closes, and echoes outstanding for over 2 s at the end.
 * bcast: N connections (the node makes each a member of one group before
 *        echoing its first message); prints "ready N". Then ROUNDS times:
 *        connection 0 sends "go:R:T0", the node broadcasts "go:R:T0:T1" to
 *        the group, and each member notes when the frame's last byte was
 *        read. T0 and T1 are CLOCK_MONOTONIC ns of the client's send and of
 *        the node's send (same machine). Prints per round:
 *        "round R members N received K node_p50 node_p99 node_max
 *         client_p50 client_p99 client_max" (ms; node_* from T1, client_*
 *        from T0), and waits 300 ms between rounds; a round ends when every
 *        member got it or after 10 s.
 */
#define _GNU_SOURCE
#include "ws_client_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define ECHO_STALE    2000           /* ms: an echo this late is an error */
#define ROUND_PAUSE   300            /* ms between broadcast rounds */

enum { M_IDLE, M_ECHO, M_BCAST };
enum { ST_FIRST = ST_CLIENT };       /* the first message's echo is due */

const char client_name[] = "ws_client";

static int mode;
static uint64_t errors;
static size_t msg_size = 32;

/* bcast */
static int round_no;
static struct lat lat_node, lat_client;

void on_fail(struct conn *c)
{
    (void) c;
    errors++;
}


/* A text message that should come back unchanged. */
static void send_checked(struct conn *c, const char *text, size_t len)
{
    c->expect = xrealloc(c->expect, len ? len : 1);
    memcpy(c->expect, text, len);
    c->expect_len = len;
    c->waiting = 1;
    c->sent_ns = now_ns();
    send_frame(c, 0x1, text, len);
}

/* Echo mode's message: SIZE bytes naming the connection and sequence. */
static void send_next_echo(struct conn *c)
{
    char m[MAX_MSG < 65536 ? MAX_MSG : 65536];
    size_t i;
    int n = snprintf(m, sizeof(m), "c%06u s%010u ", (unsigned) (c - conns), c->seq++);

    for (i = (size_t) n; i < msg_size; i++) {
        m[i] = (char) ('a' + i % 26);
    }
    send_checked(c, m, msg_size);
}

/* Ready once the first message came back. */
void on_upgraded(struct conn *c)
{
    char m[64];
    int n = snprintf(m, sizeof(m), "hello from %u", (unsigned) (c - conns));

    c->state = ST_FIRST;
    send_checked(c, m, (size_t) n);
}

static void bcast_member(struct conn *c, const char *m, size_t len, uint64_t t)
{
    char tmp[256], *p, *q;
    unsigned long long r, t0, t1;

    if (!round_open || c->got_round || len >= sizeof(tmp)) {
        conn_fail(c, "unexpected message");
        return;
    }
    memcpy(tmp, m, len);
    tmp[len] = '\0';
    if (strncmp(tmp, "go:", 3) != 0) {
        conn_fail(c, "wrong broadcast bytes");
        return;
    }
    r = strtoull(tmp + 3, &p, 10);
    t0 = *p == ':' ? strtoull(p + 1, &q, 10) : 0;
    t1 = *p == ':' && *q == ':' ? strtoull(q + 1, NULL, 10) : 0;
    if ((int) r != round_no || !t0 || !t1) {
        conn_fail(c, "wrong broadcast bytes");
        return;
    }
    c->got_round = 1;
    round_got++;
    lat_add(&lat_node, t > t1 ? t - t1 : 0);
    lat_add(&lat_client, t > t0 ? t - t0 : 0);
}

/* One complete message from the server. */
void on_message(struct conn *c, const char *m, size_t len, uint64_t t)
{
    if (c->waiting) {
        if (len != c->expect_len || memcmp(m, c->expect, len) != 0) {
            conn_fail(c, "echo with wrong bytes");
            return;
        }
        reply_arrived(c, t, send_next_echo);
        return;
    }
    if (mode == M_BCAST && c->state == ST_READY) {
        bcast_member(c, m, len, t);
        return;
    }
    conn_fail(c, "unexpected message");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ws_client idle  N HOST PORT PATH\n"
            "       ws_client echo  C SECONDS HOST PORT PATH [SIZE]\n"
            "       ws_client bcast N ROUNDS HOST PORT PATH\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long secs = 0, rounds = 0, port;
    uint32_t i;
    int argi;

    if (argc < 6) {
        usage();
    }
    if (strcmp(argv[1], "idle") == 0 && argc == 6) {
        mode = M_IDLE;
        argi = 3;
    }
    else if (strcmp(argv[1], "echo") == 0 && (argc == 7 || argc == 8)) {
        mode = M_ECHO;
        secs = atol(argv[3]);
        if (argc == 8) {
            msg_size = (size_t) atol(argv[7]);
        }
        if (secs <= 0 || msg_size < 1 || msg_size > 65536) {
            usage();
        }
        argi = 4;
    }
    else if (strcmp(argv[1], "bcast") == 0 && argc == 7) {
        mode = M_BCAST;
        rounds = atol(argv[3]);
        if (rounds <= 0) {
            usage();
        }
        argi = 4;
    }
    else {
        usage();
    }
    nconns = (uint32_t) atol(argv[2]);
    host = argv[argi];
    port = atol(argv[argi + 1]);
    path = argv[argi + 2];
    if (nconns == 0 || port <= 0 || port > 65535) {
        usage();
    }
    argi = client_init(port);
    if (argi) {
        return argi;
    }

    errors += open_all();

    if (mode == M_IDLE) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = STDIN_TAG };
        if (errors) {
            return 1;
        }
        printf("ready %u\n", nready);
        fflush(stdout);
        epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
        run(0, NULL);
        return errors ? 1 : 0;
    }

    if (mode == M_ECHO) {
        uint64_t stale = 0, end;
        if (nready) {
            t_start = now_ns();
            t_end = t_start + (uint64_t) secs * 1000000000u;
            for (i = 0; i < nconns; i++) {
                if (conns[i].state == ST_READY) {
                    send_next_echo(&conns[i]);
                }
            }
            run(t_end, NULL);
            /* Echoes still out: late ones are errors (a stuck connection). */
            end = now_ns();
            for (i = 0; i < nconns; i++) {
                if (conns[i].state == ST_READY && conns[i].waiting &&
                    end - conns[i].sent_ns > (uint64_t) ECHO_STALE * 1000000) {
                    stale++;
                }
            }
            if (stale) {
                fprintf(stderr, "ws_client: %llu echoes outstanding for over %d ms\n",
                        (unsigned long long) stale, ECHO_STALE);
            }
            errors += stale;
        }
        qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u64);
        printf("%llu %.1f %.3f %.3f %llu\n", (unsigned long long) completed,
               (double) completed / (double) secs, pct_ms(&lat, 0.50),
               pct_ms(&lat, 0.99), (unsigned long long) errors);
        return errors ? 1 : 0;
    }

    /* bcast */
    if (errors || nready == 0) {
        printf("error: %u of %u connections ready\n", nready, nconns);
        return 1;
    }
    printf("ready %u\n", nready);
    fflush(stdout);
    for (round_no = 1; round_no <= rounds && !stop; round_no++) {
        struct conn *c0 = NULL;
        char m[64];
        uint32_t j;
        int n;

        for (j = 0; j < nconns; j++) {
            conns[j].got_round = 0;
            if (!c0 && conns[j].state == ST_READY) {
                c0 = &conns[j];
            }
        }
        if (!c0) {
            break;
        }
        lat_node.n = lat_client.n = 0;
        round_got = 0;
        round_open = 1;
        n = snprintf(m, sizeof(m), "go:%d:%llu", round_no,
                     (unsigned long long) now_ns());
        send_frame(c0, 0x1, m, (size_t) n);
        run(now_ns() + (uint64_t) ROUND_TIMEOUT * 1000000, round_done);
        round_open = 0;
        qsort(lat_node.v, lat_node.n, sizeof(uint64_t), cmp_u64);
        qsort(lat_client.v, lat_client.n, sizeof(uint64_t), cmp_u64);
        printf("round %d members %u received %u %.3f %.3f %.3f %.3f %.3f %.3f\n",
               round_no, nready, round_got,
               pct_ms(&lat_node, 0.50), pct_ms(&lat_node, 0.99), pct_ms(&lat_node, 1.0),
               pct_ms(&lat_client, 0.50), pct_ms(&lat_client, 0.99),
               pct_ms(&lat_client, 1.0));
        fflush(stdout);
        if (round_got < nready) {
            fprintf(stderr, "ws_client: round %d reached %u of %u members in %d s\n",
                    round_no, round_got, nready, ROUND_TIMEOUT / 1000);
            errors++;
        }
        run(now_ns() + (uint64_t) ROUND_PAUSE * 1000000, NULL);
    }
    return errors ? 1 : 0;
}
