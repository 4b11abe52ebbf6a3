/*
 * ws_client_core.c -- the WebSocket client part of tests/bench/ws_client.c
 * and tests/bench/sio_client.c; what it does and the hooks a tool defines
 * are in ws_client_core.h.
 */
#define _GNU_SOURCE
#include "ws_client_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* RFC 6455 1.3's sample key and the accept value it must produce. */
#define WS_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

const char *host, *path;
uint32_t nconns;
int epfd;
struct conn *conns;
uint32_t nstarted, nready, ninflight;
volatile sig_atomic_t stop;
uint64_t stdin_lines;
int round_open;
uint32_t round_got;
uint64_t t_start, t_end, completed;
struct lat lat;

static struct sockaddr_in addr;
static uint32_t rng = 2463534242u;
static uint64_t nfailed;

uint64_t now_ns(void)
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

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", client_name);
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

void lat_add(struct lat *l, uint64_t v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = v;
}

int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in ms. */
double pct_ms(const struct lat *l, double p)
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

void conn_fail(struct conn *c, const char *why)
{
    if (c->state == ST_DEAD) {
        return;
    }
    if (nfailed++ < 5) {
        fprintf(stderr, "%s: connection %u: %s\n", client_name,
                (unsigned) (c - conns), why);
    }
    if (c->state != ST_READY) {
        ninflight--;
    }
    on_fail(c);
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
void send_frame(struct conn *c, int opcode, const void *payload, size_t len)
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
    on_upgraded(c);
    return c->state == ST_DEAD ? -1 : 1;
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
void run(uint64_t deadline, int (*done)(void))
{
    struct epoll_event evs[1024];
    int n, i, timeout;
    uint64_t now;

    while (!stop && !(done && done())) {
        while (!round_open) {
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
            fprintf(stderr, "%s: epoll_wait: %s\n", client_name, strerror(errno));
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

void reply_arrived(struct conn *c, uint64_t t, void (*send_next)(struct conn *c))
{
    c->waiting = 0;
    if (c->state != ST_READY) {
        c->state = ST_READY;
        nready++;
        ninflight--;
        return;
    }
    if (t_start) {
        if (t <= t_end) {
            completed++;
            lat_add(&lat, t - c->sent_ns);
        }
        if (t < t_end) {
            send_next(c);
        }
    }
}

int all_opened(void)
{
    return nstarted == nconns && ninflight == 0;
}

int round_done(void)
{
    return round_got >= nready;
}

uint32_t open_all(void)
{
    run(now_ns() + (uint64_t) OPEN_TIMEOUT * 1000000, all_opened);
    if (!all_opened() && !stop) {
        fprintf(stderr, "%s: %u of %u connections ready after %d s\n",
                client_name, nready, nconns, OPEN_TIMEOUT / 1000);
        return nconns - nready;
    }
    return 0;
}

int client_init(long port)
{
    struct rlimit rl;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "%s: HOST must be an IPv4 address\n", client_name);
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
        fprintf(stderr, "%s: %s\n", client_name, strerror(errno));
        return 1;
    }
    return 0;
}
