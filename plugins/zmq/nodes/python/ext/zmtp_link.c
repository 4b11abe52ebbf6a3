/*
 * _tremolo.Node's native endpoint: a DEALER client of the gateway's ROUTER
 * over a plain non-blocking stream socket, ZMTP 3.0 with the NULL
 * mechanism, run in the calling thread.
 *
 * Why not libzmq here: a libzmq socket hands every message to and from
 * its I/O thread (a pipe plus an eventfd mailbox and a cross-core wake-up
 * each way); a node paid about 4 us of I/O-thread CPU per request on top
 * of its ~5 us of application work. A node only needs the client side
 * of one peer kind (the gateway's ROUTER, libzmq 4.x), so it speaks the
 * wire protocol itself (framing in zmtp.c). libzmq remains the path for
 * other endpoint forms and when TREMOLO_NODE_LIBZMQ=1.
 *
 * What libzmq did that is kept: connect is asynchronous and retried every
 * 100 ms forever (ZMQ_RECONNECT_IVL); up to 1000 messages wait while the
 * link is down or the peer is slow (ZMQ_SNDHWM), then a sender is told
 * "would block"; a message half written when the connection dropped is
 * lost, whole ones queued behind it go out on the next connection; the
 * identity travels in READY (ZMQ_ROUTING_ID); PINGs (ZMQ_HEARTBEAT_IVL on
 * the ROUTER) are answered with PONG.
 */
#include "tremolo_ext.h"
#include "zmtp.h"
#include "zmtp_link.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TX_LINK_RBUF    65536
#define TX_LINK_DIRECT  65536    /* read big bodies straight into the frame */

enum tx_link_state {
    TX_LINK_DOWN,              /* no socket; connect at retry_at */
    TX_LINK_CONNECTING,        /* connect(2) in progress */
    TX_LINK_GREETING,          /* our greeting sent; reading the peer's */
    TX_LINK_HANDSHAKE,         /* our READY sent; waiting for the peer's */
    TX_LINK_READY              /* messages flow */
};

struct tx_link {
    char                   *endpoint;
    struct sockaddr_storage addr;
    socklen_t               addrlen;
    int                     tcp;
    int                     fd;
    int                     epfd;
    uint32_t                watched;       /* epoll events registered */
    enum tx_link_state      state;
    int64_t                 retry_at;
    uint8_t                 id[255];
    size_t                  idlen;
    /* handshake output: greeting, then READY */
    uint8_t                 hs[ZMTP_GREETING_LEN + ZMTP_READY_MAX];
    size_t                  hs_len, hs_pos;
    /* input */
    uint8_t                 greet[ZMTP_GREETING_LEN];
    size_t                  greet_got;
    uint8_t                *rbuf;
    size_t                  rpos, rlen;
    struct zmtp_reader      rd;
    zmq_msg_t               part[3];
    int                     nparts;        /* of part[] initialised */
    int                     nframes;       /* frames of this message so far */
    int                     cur;           /* part taking the body; -1 skip,
                                            * -2 the command buffer */
    uint8_t                *cmd;
    size_t                  cmdlen, cmdcap;
    /* output: whole encoded messages; wbuf[0] starts a message */
    uint8_t                *wbuf;
    size_t                  wcap, wlen, wpos;
    int                     queued;        /* messages in wbuf */
    int                     corked;        /* wbuf waits for the end of the
                                            * input already read */
    const char             *err;
    int                     err_quiet;
    int                    *err_flag;      /* set when err is */
};

static int64_t link_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- endpoints -------------------------------------------------------- */

static int link_parse_tcp(struct tx_link *l, const char *rest)
{
    char host[256], *colon;
    const char *port;
    struct addrinfo hints, *res = NULL;
    size_t len = strlen(rest);

    if (len >= sizeof(host) || strchr(rest, ';') != NULL) {
        return 1;
    }
    memcpy(host, rest, len + 1);
    colon = strrchr(host, ':');
    if (colon == NULL || colon == host || colon[1] == '\0') {
        return 1;
    }
    *colon = '\0';
    port = colon + 1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    hints.ai_family = AF_INET;      /* libzmq's default without ZMQ_IPV6 */
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']') {
            return 1;
        }
        host[hl - 1] = '\0';
        memmove(host, host + 1, hl - 1);
        hints.ai_family = AF_INET6;
    }
    else if (strchr(host, ':') != NULL) {
        hints.ai_family = AF_INET6;
    }
    if (strcmp(host, "*") == 0 ||
        getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        return 1;                   /* libzmq decides (and reports) */
    }
    memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
    l->addrlen = res->ai_addrlen;
    l->tcp = 1;
    freeaddrinfo(res);
    return 0;
}

static int link_parse_ipc(struct tx_link *l, const char *path)
{
    struct sockaddr_un *sun = (struct sockaddr_un *) &l->addr;
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(sun->sun_path)) {
        return 1;
    }
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, len);
    if (path[0] == '@') {
        sun->sun_path[0] = '\0';    /* abstract namespace, as libzmq */
        l->addrlen = (socklen_t) (offsetof(struct sockaddr_un, sun_path)
                                  + len);
    }
    else {
        l->addrlen = (socklen_t) sizeof(*sun);
    }
    l->tcp = 0;
    return 0;
}

int tx_link_create(struct tx_link **out, const char *endpoint,
                   const void *id, size_t idlen, int epfd, int *err_flag)
{
    struct tx_link *l = calloc(1, sizeof(*l));
    int rc;

    if (l == NULL) {
        return -1;
    }
    if (strncmp(endpoint, "tcp://", 6) == 0) {
        rc = link_parse_tcp(l, endpoint + 6);
    }
    else if (strncmp(endpoint, "ipc://", 6) == 0) {
        rc = link_parse_ipc(l, endpoint + 6);
    }
    else {
        rc = 1;
    }
    if (rc != 0) {
        free(l);
        return 1;
    }
    l->endpoint = strdup(endpoint);
    l->rbuf = malloc(TX_LINK_RBUF);
    if (l->endpoint == NULL || l->rbuf == NULL) {
        free(l->endpoint);
        free(l->rbuf);
        free(l);
        return -1;
    }
    l->fd = -1;
    l->epfd = epfd;
    l->err_flag = err_flag;
    l->state = TX_LINK_DOWN;
    l->retry_at = 0;               /* connect at the first drive */
    l->idlen = idlen > sizeof(l->id) ? sizeof(l->id) : idlen;
    memcpy(l->id, id, l->idlen);
    zmtp_reader_init(&l->rd);
    *out = l;
    return 0;
}

const char *tx_link_endpoint(const struct tx_link *l)
{
    return l->endpoint;
}

const char *tx_link_error(struct tx_link *l)
{
    const char *e = l->err;

    l->err = NULL;
    return e;
}

/* ---- the socket ------------------------------------------------------- */

static void link_watch(struct tx_link *l)
{
    uint32_t want = 0;
    struct epoll_event ev;

    if (l->fd < 0) {
        return;
    }
    switch (l->state) {
    case TX_LINK_DOWN:
        return;
    case TX_LINK_CONNECTING:
        want = EPOLLOUT;
        break;
    case TX_LINK_GREETING:
    case TX_LINK_HANDSHAKE:
        want = EPOLLIN | (l->hs_pos < l->hs_len ? EPOLLOUT : 0);
        break;
    case TX_LINK_READY:
        want = EPOLLIN | (l->wpos < l->wlen ? EPOLLOUT : 0);
        break;
    }
    if (want == l->watched) {
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.ptr = l;
    if (epoll_ctl(l->epfd, l->watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD,
                  l->fd, &ev) == 0) {
        l->watched = want;
    }
}

static void link_reset_input(struct tx_link *l)
{
    for (int k = 0; k < l->nparts; k++) {
        zmq_msg_close(&l->part[k]);
    }
    l->nparts = 0;
    l->nframes = 0;
    l->cur = -1;
    l->cmdlen = 0;
    l->rpos = l->rlen = 0;
    l->greet_got = 0;
    zmtp_reader_init(&l->rd);
}

/* Walk our own encoded frames in wbuf[0..end): the offset of the first
 * message boundary at or after `at`, and the whole messages after it. */
static size_t link_boundary(const struct tx_link *l, size_t at)
{
    size_t off = 0;

    while (off < l->wlen) {
        uint8_t flags = l->wbuf[off];
        uint64_t size;
        size_t hlen;

        if (flags & ZMTP_FLAG_LONG) {
            size = 0;
            for (int i = 1; i < 9; i++) {
                size = (size << 8) | l->wbuf[off + (size_t) i];
            }
            hlen = 9;
        }
        else {
            size = l->wbuf[off + 1];
            hlen = 2;
        }
        off += hlen + (size_t) size;
        if (!(flags & ZMTP_FLAG_MORE) && off >= at) {
            break;
        }
    }
    return off;
}

static int link_count(const struct tx_link *l)
{
    size_t off = 0;
    int n = 0;

    while (off < l->wlen) {
        uint8_t flags = l->wbuf[off];
        uint64_t size = 0;
        size_t hlen = 2;

        if (flags & ZMTP_FLAG_LONG) {
            for (int i = 1; i < 9; i++) {
                size = (size << 8) | l->wbuf[off + (size_t) i];
            }
            hlen = 9;
        }
        else {
            size = l->wbuf[off + 1];
        }
        off += hlen + (size_t) size;
        if (!(flags & (ZMTP_FLAG_MORE | ZMTP_FLAG_COMMAND))) {
            n++;
        }
    }
    return n;
}

/* Drop the connection; why (a protocol fault) is reported once. */
static void link_down(struct tx_link *l, const char *why)
{
    if (l->fd >= 0) {
        if (l->watched != 0) {
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->fd, NULL);
        }
        close(l->fd);
    }
    l->fd = -1;
    l->watched = 0;
    l->state = TX_LINK_DOWN;
    l->retry_at = link_now() + TX_LINK_RETRY_NS;
    l->hs_len = l->hs_pos = 0;
    l->corked = 0;
    link_reset_input(l);
    if (l->wpos > 0) {
        /* the message being written is lost, as with libzmq */
        size_t cut = link_boundary(l, l->wpos);
        memmove(l->wbuf, l->wbuf + cut, l->wlen - cut);
        l->wlen -= cut;
        l->wpos = 0;
        l->queued = link_count(l);
    }
    if (why != NULL && !l->err_quiet) {
        l->err = why;
        l->err_quiet = 1;
        *l->err_flag = 1;
    }
}

void tx_link_shutdown(struct tx_link *l)
{
    link_down(l, NULL);
    l->wlen = l->wpos = 0;
    l->queued = 0;
}

void tx_link_destroy(struct tx_link *l)
{
    if (l == NULL) {
        return;
    }
    tx_link_shutdown(l);
    free(l->endpoint);
    free(l->rbuf);
    free(l->cmd);
    free(l->wbuf);
    free(l);
}

/* Write what is pending for the state; 0, or -1 when the link went down. */
static int link_flush(struct tx_link *l)
{
    uint8_t *buf;
    size_t *pos, len;

    if (l->state == TX_LINK_GREETING || l->state == TX_LINK_HANDSHAKE) {
        buf = l->hs;
        pos = &l->hs_pos;
        len = l->hs_len;
    }
    else if (l->state == TX_LINK_READY) {
        buf = l->wbuf;
        pos = &l->wpos;
        len = l->wlen;
        l->corked = 0;
    }
    else {
        return 0;
    }
    while (*pos < len) {
        ssize_t n = send(l->fd, buf + *pos, len - *pos, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            link_down(l, NULL);
            return -1;
        }
        *pos += (size_t) n;
    }
    if (l->state == TX_LINK_READY && l->wpos == l->wlen) {
        l->wpos = l->wlen = 0;
        l->queued = 0;
    }
    link_watch(l);
    return 0;
}

static void link_connected(struct tx_link *l)
{
    l->state = TX_LINK_GREETING;
    zmtp_greeting(l->hs);
    l->hs_len = ZMTP_GREETING_LEN;
    l->hs_pos = 0;
    link_reset_input(l);
    link_flush(l);
}

static void link_connect(struct tx_link *l)
{
    int one = 1;

    l->fd = socket(l->addr.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        link_down(l, NULL);
        return;
    }
    if (l->tcp) {
        setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(l->fd, (struct sockaddr *) &l->addr, l->addrlen) == 0) {
        link_connected(l);
        return;
    }
    if (errno == EINPROGRESS) {
        l->state = TX_LINK_CONNECTING;
        link_watch(l);
        return;
    }
    link_down(l, NULL);            /* refused, no such path: retry later */
}

static void link_check_connect(struct tx_link *l)
{
    struct pollfd pfd = { .fd = l->fd, .events = POLLOUT };
    int err = 0;
    socklen_t len = sizeof(err);

    if (poll(&pfd, 1, 0) <= 0 || pfd.revents == 0) {
        return;
    }
    if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
        link_down(l, NULL);
        return;
    }
    link_connected(l);
}

/* ---- input ------------------------------------------------------------ */

static int link_append(struct tx_link *l, const uint8_t *p, size_t len)
{
    if (l->wlen + len > l->wcap) {
        size_t cap = l->wcap ? l->wcap : 4096;
        uint8_t *w;
        while (cap < l->wlen + len) {
            cap *= 2;
        }
        w = realloc(l->wbuf, cap);
        if (w == NULL) {
            return -1;
        }
        l->wbuf = w;
        l->wcap = cap;
    }
    memcpy(l->wbuf + l->wlen, p, len);
    l->wlen += len;
    return 0;
}

/* A whole command frame in l->cmd; 0, or -1 when the link went down. */
static int link_command(struct tx_link *l)
{
    struct zmtp_command c;
    enum zmtp_err e = zmtp_command_parse(l->cmd, l->cmdlen, &c);

    if (e != ZMTP_OK) {
        link_down(l, zmtp_strerror(e));
        return -1;
    }
    if (zmtp_command_is(&c, "ERROR")) {
        link_down(l, "the peer sent an ERROR command");
        return -1;
    }
    if (l->state == TX_LINK_HANDSHAKE) {
        if (!zmtp_command_is(&c, "READY")) {
            link_down(l, "the peer's first command is not READY");
            return -1;
        }
        e = zmtp_ready_check(c.data, c.datalen);
        if (e != ZMTP_OK) {
            link_down(l, zmtp_strerror(e));
            return -1;
        }
        l->state = TX_LINK_READY;
        return link_flush(l);      /* what waited for the connection */
    }
    if (zmtp_command_is(&c, "READY")) {
        link_down(l, "the peer sent READY twice");
        return -1;
    }
    if (zmtp_command_is(&c, "PING")) {
        uint8_t pong[ZMTP_PONG_MAX];
        const uint8_t *ctx;
        size_t clen;

        if (zmtp_ping_context(c.data, c.datalen, &ctx, &clen) < 0) {
            link_down(l, "a malformed PING");
            return -1;
        }
        if (link_append(l, pong, zmtp_pong(pong, ctx, clen)) < 0) {
            link_down(l, "out of memory");
            return -1;
        }
        return link_flush(l);
    }
    return 0;                      /* PONG, SUBSCRIBE...: nothing to do */
}

/*
 * Parse what was read, reading more as needed. With m NULL (a drive) it
 * stops at the first message once the link is ready, leaving the bytes
 * for tx_link_recv. 1: a message in m; 0: nothing more now.
 */
static int link_input(struct tx_link *l, struct tx_msg *m, int64_t *heard,
                      int64_t now)
{
    for (;;) {
        const uint8_t *data = NULL;
        size_t used, dlen = 0;
        enum zmtp_ev ev;

        if (l->fd < 0 || l->state < TX_LINK_GREETING ||
            (l->state == TX_LINK_READY && m == NULL)) {
            return 0;
        }
        if (l->rpos == l->rlen &&
            !(l->rd.in_body && l->rd.got == l->rd.size)) {
            ssize_t n;

            if (l->corked && link_flush(l) < 0) {
                return 0;          /* the batch ends where the input does */
            }
            if (l->rd.in_body && l->cur >= 0 &&
                l->rd.size - l->rd.got >= TX_LINK_DIRECT) {
                uint8_t *dst = (uint8_t *) zmq_msg_data(&l->part[l->cur]);
                n = read(l->fd, dst + l->rd.got,
                         (size_t) (l->rd.size - l->rd.got));
                if (n > 0) {
                    zmtp_reader_skip(&l->rd, (uint64_t) n);
                    continue;
                }
            }
            else {
                n = read(l->fd, l->rbuf, TX_LINK_RBUF);
                if (n > 0) {
                    l->rpos = 0;
                    l->rlen = (size_t) n;
                }
            }
            if (n == 0) {
                link_down(l, NULL);          /* the peer went away */
                return 0;
            }
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    link_down(l, NULL);
                }
                return 0;
            }
        }
        if (l->state == TX_LINK_GREETING) {
            size_t take = ZMTP_GREETING_LEN - l->greet_got;
            enum zmtp_err e;

            if (take > l->rlen - l->rpos) {
                take = l->rlen - l->rpos;
            }
            memcpy(l->greet + l->greet_got, l->rbuf + l->rpos, take);
            l->greet_got += take;
            l->rpos += take;
            if (l->greet_got < ZMTP_GREETING_LEN) {
                continue;
            }
            e = zmtp_greeting_check(l->greet);
            if (e != ZMTP_OK) {
                link_down(l, zmtp_strerror(e));
                return 0;
            }
            l->state = TX_LINK_HANDSHAKE;
            l->hs_len = zmtp_ready(l->hs, l->id, l->idlen);
            l->hs_pos = 0;
            if (link_flush(l) < 0) {
                return 0;
            }
            continue;
        }
        ev = zmtp_read(&l->rd, l->rbuf + l->rpos, l->rlen - l->rpos, &used,
                       &data, &dlen);
        l->rpos += used;
        switch (ev) {
        case ZMTP_EV_NEED:
            break;
        case ZMTP_EV_ERROR:
            link_down(l, zmtp_strerror(l->rd.err));
            return 0;
        case ZMTP_EV_HEAD:
            if (l->rd.flags & ZMTP_FLAG_COMMAND) {
                if (l->rd.size > l->cmdcap) {
                    uint8_t *c = realloc(l->cmd, (size_t) l->rd.size);
                    if (c == NULL) {
                        link_down(l, "out of memory");
                        return 0;
                    }
                    l->cmd = c;
                    l->cmdcap = (size_t) l->rd.size;
                }
                l->cmdlen = 0;
                l->cur = -2;
            }
            else if (l->state != TX_LINK_READY) {
                link_down(l, "a message before the handshake ended");
                return 0;
            }
            else if (l->nframes < 3) {
                if (zmq_msg_init_size(&l->part[l->nframes],
                                      (size_t) l->rd.size) != 0) {
                    link_down(l, "out of memory");
                    return 0;
                }
                l->cur = l->nframes;
                l->nparts = l->nframes + 1;
            }
            else {
                l->cur = -1;                 /* not our protocol: skip */
            }
            break;
        case ZMTP_EV_DATA:
            if (l->cur == -2) {
                memcpy(l->cmd + l->cmdlen, data, dlen);
                l->cmdlen += dlen;
            }
            else if (l->cur >= 0) {
                uint8_t *dst = (uint8_t *) zmq_msg_data(&l->part[l->cur]);
                memcpy(dst + (l->rd.got - dlen), data, dlen);
            }
            break;
        case ZMTP_EV_END:
            if (l->cur == -2) {
                l->cur = -1;
                if (link_command(l) < 0) {
                    return 0;
                }
                break;
            }
            l->cur = -1;
            l->nframes++;
            if (l->rd.in_msg) {
                break;
            }
            *heard = now;
            l->err_quiet = 0;      /* a working peer: report a new fault */
            if (l->nframes == 3) {
                for (int k = 0; k < 3; k++) {
                    zmq_msg_init(&m->frame[k]);
                    zmq_msg_move(&m->frame[k], &l->part[k]);
                    zmq_msg_close(&l->part[k]);
                }
                l->nparts = 0;
                l->nframes = 0;
                return 1;
            }
            for (int k = 0; k < l->nparts; k++) {
                zmq_msg_close(&l->part[k]);
            }
            l->nparts = 0;
            l->nframes = 0;
            break;
        }
    }
}

/* ---- the interface ---------------------------------------------------- */

void tx_link_drive(struct tx_link *l, int64_t now)
{
    switch (l->state) {
    case TX_LINK_DOWN:
        if (now >= l->retry_at) {
            link_connect(l);
        }
        break;
    case TX_LINK_CONNECTING:
        link_check_connect(l);
        break;
    case TX_LINK_GREETING:
    case TX_LINK_HANDSHAKE:
        if (link_flush(l) == 0) {
            link_input(l, NULL, NULL, now);
        }
        break;
    case TX_LINK_READY:
        if (l->wpos < l->wlen && !l->corked) {
            link_flush(l);
        }
        break;
    }
}

void tx_link_uncork(struct tx_link *l)
{
    if (l->corked && l->state == TX_LINK_READY) {
        link_flush(l);
    }
}

int tx_link_recv(struct tx_link *l, struct tx_msg *m, int64_t *heard,
                 int64_t now)
{
    if (l->state != TX_LINK_READY) {
        tx_link_drive(l, now);
        if (l->state != TX_LINK_READY) {
            return 0;
        }
    }
    return link_input(l, m, heard, now);
}

int tx_link_buffered(const struct tx_link *l)
{
    return l->state == TX_LINK_READY && l->rpos < l->rlen;
}

int tx_link_starting(const struct tx_link *l)
{
    return l->state != TX_LINK_DOWN && l->state != TX_LINK_READY;
}

int tx_link_unsent(const struct tx_link *l)
{
    return l->wlen > l->wpos;
}

void tx_link_wait(const struct tx_link *l, int64_t now, int *fd,
                  short *events, int *wait_ms)
{
    *fd = -1;
    *events = 0;
    *wait_ms = TX_POLL_MS;
    switch (l->state) {
    case TX_LINK_DOWN: {
        int64_t left = (l->retry_at - now) / 1000000LL + 1;
        *wait_ms = left < 1 ? 1 : left > TX_POLL_MS ? TX_POLL_MS : (int) left;
        break;
    }
    case TX_LINK_CONNECTING:
        *fd = l->fd;
        *events = POLLOUT;
        break;
    case TX_LINK_GREETING:
    case TX_LINK_HANDSHAKE:
        *fd = l->fd;
        *events = POLLIN | (l->hs_pos < l->hs_len ? POLLOUT : 0);
        break;
    case TX_LINK_READY:
        *fd = l->fd;
        *events = POLLOUT;
        break;
    }
}

int tx_link_send(struct tx_link *l, const void *sid, size_t sidlen,
                 const void *type, size_t typelen, const void *body,
                 size_t bodylen, int flags)
{
    int force = (flags & TX_LINK_FORCE) != 0;
    int cork = 0;
    uint8_t h[3][9];
    size_t hl[3], total;
    struct iovec iov[6];
    ssize_t n = 0;

    if (l->queued >= TX_LINK_HWM) {
        if (l->state == TX_LINK_READY) {
            link_flush(l);
        }
        if (l->queued >= TX_LINK_HWM) {
            if (force && l->state == TX_LINK_READY) {
                /* a pong: past the mark rather than lost */
            }
            else if (force) {
                return 1;          /* dropped: the front end will ping */
            }
            else {
                errno = EAGAIN;
                return 0;
            }
        }
    }
    hl[0] = zmtp_frame_header(h[0], sidlen, ZMTP_FLAG_MORE);
    hl[1] = zmtp_frame_header(h[1], typelen, ZMTP_FLAG_MORE);
    hl[2] = zmtp_frame_header(h[2], bodylen, 0);
    iov[0] = (struct iovec) { h[0], hl[0] };
    iov[1] = (struct iovec) { (void *) sid, sidlen };
    iov[2] = (struct iovec) { h[1], hl[1] };
    iov[3] = (struct iovec) { (void *) type, typelen };
    iov[4] = (struct iovec) { h[2], hl[2] };
    iov[5] = (struct iovec) { (void *) body, bodylen };
    total = hl[0] + sidlen + hl[1] + typelen + hl[2] + bodylen;
    /*
     * Batching: while input already read is pending (the caller drains
     * until recv_nowait says None), a response may wait so that the ones
     * to a whole batch of requests leave in one write, as libzmq's I/O
     * thread sends them. The batch ends, and the buffer is written, at the
     * send that finds no more input read, before reading more, and when
     * the node has nothing more to return.
     */
    if (l->state == TX_LINK_READY && (flags & TX_LINK_BATCH) &&
        l->rpos < l->rlen && l->wlen - l->wpos < TX_LINK_RBUF) {
        cork = 1;
    }
    else if (l->state == TX_LINK_READY && l->wpos == l->wlen) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 6 };

        do {
            n = sendmsg(l->fd, &mh, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t) total) {
            return 1;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                link_down(l, NULL);        /* it waits for the next one */
            }
            n = 0;
        }
    }
    /* the whole message, so that wbuf starts at a message boundary */
    {
        size_t start = l->wlen;
        for (int k = 0; k < 6; k++) {
            if (iov[k].iov_len > 0 &&
                link_append(l, iov[k].iov_base, iov[k].iov_len) < 0) {
                l->wlen = start;
                errno = ENOMEM;
                return -1;
            }
        }
        if (n > 0) {
            l->wpos = start + (size_t) n;  /* start is 0: wbuf was empty */
        }
    }
    l->queued++;
    if (cork) {
        l->corked = 1;
    }
    else if (l->state == TX_LINK_READY && n == 0 && l->wlen > 0) {
        link_flush(l);             /* behind a batch or a slow peer */
    }
    else {
        link_watch(l);
    }
    return 1;
}
