/*
 * ws_client.c -- the WebSocket load tool of tests/bench/websocket.sh: one
 * thread, epoll, non-blocking sockets, libc only.
 *
 *     cc -O2 -o ws_client tests/bench/ws_client.c
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
#include <time.h>
#include <unistd.h>

#define INFLIGHT      256
#define OPEN_TIMEOUT  60000          /* ms for all connections to be ready */
#define ECHO_STALE    2000           /* ms: an echo this late is an error */
#define ROUND_TIMEOUT 10000          /* ms for a broadcast to reach all */
#define ROUND_PAUSE   300            /* ms between broadcast rounds */
#define MAX_MSG       (1 << 20)
#define STDIN_TAG     UINT32_MAX

/* RFC 6455 1.3's sample key and the accept value it must produce. */
#define WS_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

enum { M_IDLE, M_ECHO, M_BCAST };
enum { ST_FREE, ST_CONNECT, ST_HANDSHAKE, ST_FIRST, ST_READY, ST_DEAD };

struct buf {
    char *p;
    size_t len, cap;
};

struct conn {
    int fd;
    uint8_t state;
    uint8_t want_out;                /* EPOLLOUT registered */
    uint8_t waiting;                 /* an echo is outstanding */
    uint8_t got_round;               /* bcast: this round's frame arrived */
    uint32_t seq;
    uint64_t sent_ns;
    struct buf in;                   /* bytes read, not yet parsed */
    struct buf out;                  /* bytes a write() did not take */
    struct buf msg;                  /* a fragmented message so far */
    char *expect;                    /* the echo we wait for */
    size_t expect_len;
};

struct lat {
    uint64_t *v;
    size_t n, cap;
};

static int mode, epfd;
static struct conn *conns;
static uint32_t nconns, nstarted, nready, ninflight;
static uint64_t errors;
static const char *host, *path;
static struct sockaddr_in addr;
static size_t msg_size = 32;
static uint32_t rng = 2463534242u;
static volatile sig_atomic_t stop;

/* echo */
static uint64_t t_start, t_end, completed;
static struct lat lat;
/* bcast */
static int round_no, round_open;
static uint32_t round_got;
static struct lat lat_node, lat_client;

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
        fprintf(stderr, "ws_client: out of memory\n");
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
    if (errors < 5) {
        fprintf(stderr, "ws_client: connection %u: %s\n",
                (unsigned) (c - conns), why);
    }
    errors++;
    if (c->state != ST_READY) {
        ninflight--;
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
                 path, host, (unsigned) ntohs(addr.sin_port));
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
    c->state = ST_FIRST;
    {
        char m[64];
        int n = snprintf(m, sizeof(m), "hello from %u", (unsigned) (c - conns));
        send_checked(c, m, (size_t) n);
    }
    return 1;
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
static void on_message(struct conn *c, const char *m, size_t len, uint64_t t)
{
    if (c->waiting) {
        if (len != c->expect_len || memcmp(m, c->expect, len) != 0) {
            conn_fail(c, "echo with wrong bytes");
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
                send_next_echo(c);
            }
        }
        return;
    }
    if (mode == M_BCAST && c->state == ST_READY) {
        bcast_member(c, m, len, t);
        return;
    }
    conn_fail(c, "unexpected message");
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
            perror("ws_client: epoll_wait");
            exit(1);
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.u32 == STDIN_TAG) {
                char b[256];
                if (read(0, b, sizeof(b)) <= 0) {
                    stop = 1;
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

static void usage(void)
{
    fprintf(stderr,
            "usage: ws_client idle  N HOST PORT PATH\n"
            "       ws_client echo  C SECONDS HOST PORT PATH [SIZE]\n"
            "       ws_client bcast N ROUNDS HOST PORT PATH\n");
    exit(2);
}

static void open_all(void)
{
    run(now_ns() + (uint64_t) OPEN_TIMEOUT * 1000000, all_opened);
    if (!all_opened() && !stop) {
        fprintf(stderr, "ws_client: %u of %u connections ready after %d s\n",
                nready, nconns, OPEN_TIMEOUT / 1000);
        errors += nconns - nready;
    }
}

int main(int argc, char **argv)
{
    struct rlimit rl;
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
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "ws_client: HOST must be an IPv4 address\n");
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
        perror("ws_client");
        return 1;
    }

    open_all();

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
