/*
 * sio_client.c -- the C load client of tests/bench/socketio.sh: socket.io
 * clients (Engine.IO v4 / Socket.IO v5 over the websocket transport,
 * namespace "/") in one thread, epoll, non-blocking sockets, libc only.
 * Its WebSocket and epoll parts are tests/bench/ws_client.c's; the
 * socket.io packets on top are the ones socket.io-client sends on a
 * websocket connection. It exists because socket.io-client (and even a
 * minimal client in Node.js) costs as much CPU per packet as the servers
 * it measures (README.md, socketio.sh).
 *
 *     cc -O2 -o sio_client tests/bench/sio_client.c
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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define INFLIGHT      256
#define OPEN_TIMEOUT  60000          /* ms for all clients to be ready */
#define ACK_STALE     5000           /* ms: an ack this late is missing */
#define ROUND_TIMEOUT 10000          /* ms for a broadcast to reach all */
#define MAX_MSG       (1 << 20)
#define STDIN_TAG     UINT32_MAX
#define SIO_PATH      "/socket.io/?EIO=4&transport=websocket"

/* RFC 6455 1.3's sample key and the accept value it must produce. */
#define WS_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

enum { M_ECHO, M_BCAST };
enum { ST_FREE, ST_CONNECT, ST_HANDSHAKE, ST_OPEN, ST_JOIN, ST_FIRST,
       ST_READY, ST_DEAD };

struct buf {
    char *p;
    size_t len, cap;
};

struct conn {
    int fd;
    uint8_t state;
    uint8_t want_out;                /* EPOLLOUT registered */
    uint8_t waiting;                 /* an ack is outstanding */
    uint8_t got_round;               /* bcast: this round's tick arrived */
    uint32_t seq;                    /* the next ack id */
    uint64_t sent_ns;
    struct buf in;                   /* bytes read, not yet parsed */
    struct buf out;                  /* bytes a write() did not take */
    struct buf msg;                  /* a fragmented message so far */
    char expect[64];                 /* the ack we wait for, after "43" */
    size_t expect_len;
};

struct lat {
    uint64_t *v;
    size_t n, cap;
};

static int mode, epfd;
static struct conn *conns;
static uint32_t nconns, nstarted, nready, ninflight;
static uint64_t err_connect, err_ack, err_other;
static int quiet_fail;               /* conn_fail counts nothing */
static const char *host;
static struct sockaddr_in addr;
static size_t msg_size = 32;
static char echo_arg[4096];
static uint32_t rng = 2463534242u;
static volatile sig_atomic_t stop;
static uint64_t stdin_lines;

/* echo */
static uint64_t t_start, t_end, completed;
static struct lat lat;
/* bcast */
static int round_open;
static uint32_t round_got;
static uint64_t round_t0;
static struct lat lat_emit, lat_trigger;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void) sig;
    stop = 1;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "sio_client: out of memory\n");
        exit(1);
    }
    return p;
}

static void buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = b->len + len < 256 ? 256 : (b->len + len) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void buf_consume(struct buf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void lat_add(struct lat *l, uint64_t v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in ms. */
static double pct_ms(const struct lat *l, double p)
{
    size_t i;
    if (l->n == 0) {
        return 0;
    }
    i = (size_t) (p * (double) l->n + 0.999999);
    i = i == 0 ? 0 : i - 1;
    if (i >= l->n) {
        i = l->n - 1;
    }
    return (double) l->v[i] / 1e6;
}

static void set_events(struct conn *c, int out)
{
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
                              .data.u32 = (uint32_t) (c - conns) };
    if ((uint8_t) out != c->want_out) {
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = (uint8_t) out;
    }
}

static void conn_fail(struct conn *c, const char *why)
{
    if (c->state == ST_DEAD) {
        return;
    }
    if (err_connect + err_ack + err_other < 5) {
        fprintf(stderr, "sio_client: connection %u: %s\n",
                (unsigned) (c - conns), why);
    }
    if (c->state != ST_READY) {
        ninflight--;
        err_connect++;
    }
    else if (!quiet_fail) {
        err_other++;
    }
    c->state = ST_DEAD;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

/* Write what is queued, then data; keep what the socket does not take. */
static void conn_write(struct conn *c, const void *data, size_t len)
{
    ssize_t n;

    if (len) {
        buf_add(&c->out, data, len);
    }
    while (c->out.len) {
        n = write(c->fd, c->out.p, c->out.len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                break;
            }
            conn_fail(c, strerror(errno));
            return;
        }
        buf_consume(&c->out, (size_t) n);
    }
    set_events(c, c->out.len > 0 || c->state == ST_CONNECT);
}

/* One masked frame (FIN set). */
static void send_frame(struct conn *c, int opcode, const void *payload, size_t len)
{
    uint8_t hdr[14], mask[4], *frame;
    size_t h = 0, i;

    hdr[h++] = (uint8_t) (0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (uint8_t) (0x80 | len);
    }
    else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t) (len >> 8);
        hdr[h++] = (uint8_t) len;
    }
    else {
        hdr[h++] = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            hdr[h++] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        }
    }
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    memcpy(mask, &rng, 4);
    memcpy(hdr + h, mask, 4);
    h += 4;
    frame = xrealloc(NULL, h + len);
    memcpy(frame, hdr, h);
    for (i = 0; i < len; i++) {
        frame[h + i] = ((const uint8_t *) payload)[i] ^ mask[i & 3];
    }
    conn_write(c, frame, h + len);
    free(frame);
}

static void start_connect(uint32_t i)
{
    struct conn *c = &conns[i];
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = i };
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->state = ST_CONNECT;
    ninflight++;
    nstarted++;
    if (c->fd < 0) {
        c->fd = open("/dev/null", O_RDONLY);      /* conn_fail closes it */
        conn_fail(c, strerror(errno));
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 &&
        errno != EINPROGRESS) {
        conn_fail(c, strerror(errno));
        return;
    }
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = 1;
}

static void on_connected(struct conn *c)
{
    char req[1024];
    int err = 0, n;
    socklen_t len = sizeof(err);

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        conn_fail(c, strerror(err));
        return;
    }
    c->state = ST_HANDSHAKE;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 SIO_PATH, host, (unsigned) ntohs(addr.sin_port));
    conn_write(c, req, (size_t) n);
}

/* The 101 head in c->in: check it, drop it. 0: not complete yet. */
static int parse_handshake(struct conn *c)
{
    char *end, *p, *line;
    int ok = 0;

    end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > 16384) {
            conn_fail(c, "handshake response too long");
            return -1;
        }
        return 0;
    }
    *end = '\0';
    if (strncmp(c->in.p, "HTTP/1.1 101", 12) != 0) {
        char why[128];
        snprintf(why, sizeof(why), "no 101: %.60s", c->in.p);
        conn_fail(c, why);
        return -1;
    }
    for (line = strstr(c->in.p, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        p = line + 2;
        if (strncasecmp(p, "Sec-WebSocket-Accept:", 21) == 0) {
            p += 21;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            ok = strncmp(p, WS_ACCEPT, sizeof(WS_ACCEPT) - 1) == 0 &&
                 (p[sizeof(WS_ACCEPT) - 1] == '\r' || p[sizeof(WS_ACCEPT) - 1] == ' ' ||
                  p[sizeof(WS_ACCEPT) - 1] == '\0');
        }
    }
    if (!ok) {
        conn_fail(c, "missing or wrong Sec-WebSocket-Accept");
        return -1;
    }
    buf_consume(&c->in, (size_t) (end + 4 - c->in.p));
    c->state = ST_OPEN;              /* Engine.IO's open packet comes next */
    return 1;
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
    c->expect_len = (size_t) snprintf(c->expect, sizeof(c->expect), "%u[\"", id);
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
    c->waiting = 0;
    if (c->state == ST_FIRST) {
        c->state = ST_READY;
        nready++;
        ninflight--;
        return;
    }
    if (mode == M_ECHO && t_start) {
        if (t <= t_end) {
            completed++;
            lat_add(&lat, t - c->sent_ns);
        }
        if (t < t_end) {
            send_echo(c);
        }
    }
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
static void on_message(struct conn *c, const char *m, size_t len, uint64_t t)
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

/* Parse every complete frame in c->in. */
static void parse_frames(struct conn *c, uint64_t t)
{
    size_t off = 0;

    while (c->state != ST_DEAD) {
        const uint8_t *p = (const uint8_t *) c->in.p + off;
        size_t avail = c->in.len - off, h = 2, i;
        uint64_t len;
        int fin, op;

        if (avail < 2) {
            break;
        }
        fin = p[0] & 0x80;
        op = p[0] & 0x0f;
        if (p[1] & 0x80) {
            conn_fail(c, "masked frame from the server");
            return;
        }
        if ((p[0] & 0x70) != 0) {
            conn_fail(c, "RSV bits set");
            return;
        }
        len = p[1] & 0x7f;
        if (len == 126) {
            if (avail < 4) {
                break;
            }
            len = (uint64_t) p[2] << 8 | p[3];
            h = 4;
        }
        else if (len == 127) {
            if (avail < 10) {
                break;
            }
            for (len = 0, i = 0; i < 8; i++) {
                len = len << 8 | p[2 + i];
            }
            h = 10;
        }
        if (len > MAX_MSG) {
            conn_fail(c, "frame too large");
            return;
        }
        if (avail < h + len) {
            break;
        }
        off += h + len;
        if (op == 0x9) {
            send_frame(c, 0xA, p + h, (size_t) len);
        }
        else if (op == 0xA) {
            /* unsolicited pong: ignore */
        }
        else if (op == 0x8) {
            char why[64];
            snprintf(why, sizeof(why), "server sent close %d",
                     len >= 2 ? p[h] << 8 | p[h + 1] : 0);
            conn_fail(c, why);
            return;
        }
        else if (op <= 0x2) {
            if (fin && c->msg.len == 0) {
                on_message(c, (const char *) p + h, (size_t) len, t);
            }
            else {
                buf_add(&c->msg, p + h, (size_t) len);
                if (c->msg.len > MAX_MSG) {
                    conn_fail(c, "message too large");
                    return;
                }
                if (fin) {
                    on_message(c, c->msg.p, c->msg.len, t);
                    c->msg.len = 0;
                }
            }
        }
        else {
            conn_fail(c, "reserved opcode");
            return;
        }
    }
    if (c->state != ST_DEAD && off) {
        buf_consume(&c->in, off);
    }
}

static void on_readable(struct conn *c)
{
    char tmp[65536];
    ssize_t n;
    uint64_t t;

    for (;;) {
        n = read(c->fd, tmp, sizeof(tmp));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_fail(c, strerror(errno));
            }
            return;
        }
        if (n == 0) {
            conn_fail(c, "closed by the server");
            return;
        }
        t = now_ns();
        buf_add(&c->in, tmp, (size_t) n);
        if (c->state == ST_HANDSHAKE && parse_handshake(c) <= 0) {
            return;
        }
        parse_frames(c, t);
        if (c->state == ST_DEAD || (size_t) n < sizeof(tmp)) {
            return;
        }
    }
}

static void on_event(struct epoll_event *ev)
{
    struct conn *c = &conns[ev->data.u32];

    if (c->state == ST_DEAD) {
        return;
    }
    if (c->state == ST_CONNECT) {
        if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            on_connected(c);
        }
        return;
    }
    if (ev->events & EPOLLOUT) {
        conn_write(c, NULL, 0);
    }
    if (c->state != ST_DEAD && (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        on_readable(c);
    }
}

/* Run the loop until deadline (ns, 0: none) or done() says so. */
static void run(uint64_t deadline, int (*done)(void))
{
    struct epoll_event evs[1024];
    int n, i, timeout;
    uint64_t now;

    while (!stop && !(done && done())) {
        while (mode != M_BCAST || !round_open) {
            /* top up the opening connections */
            if (nstarted >= nconns || ninflight >= INFLIGHT) {
                break;
            }
            start_connect(nstarted);
        }
        timeout = -1;
        if (deadline) {
            now = now_ns();
            if (now >= deadline) {
                return;
            }
            timeout = (int) ((deadline - now) / 1000000) + 1;
        }
        n = epoll_wait(epfd, evs, 1024, timeout);
        if (n < 0 && errno != EINTR) {
            perror("sio_client: epoll_wait");
            exit(1);
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.u32 == STDIN_TAG) {
                char b[256];
                ssize_t k = read(0, b, sizeof(b)), j;
                if (k <= 0) {
                    stop = 1;
                }
                for (j = 0; j < k; j++) {
                    stdin_lines += b[j] == '\n';
                }
                continue;
            }
            on_event(&evs[i]);
        }
    }
}

static int all_opened(void)
{
    return nstarted == nconns && ninflight == 0;
}

static int round_done(void)
{
    return round_got >= nready;
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

static void open_all(void)
{
    run(now_ns() + (uint64_t) OPEN_TIMEOUT * 1000000, all_opened);
    if (!all_opened() && !stop) {
        fprintf(stderr, "sio_client: %u of %u clients ready after %d s\n",
                nready, nconns, OPEN_TIMEOUT / 1000);
        err_connect = nconns - nready;
    }
}

int main(int argc, char **argv)
{
    struct rlimit rl;
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
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "sio_client: HOST must be an IPv4 address\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rng ^= (uint32_t) now_ns() ^ (uint32_t) getpid();
    conns = calloc(nconns, sizeof(*conns));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || epfd < 0) {
        perror("sio_client");
        return 1;
    }

    open_all();

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
