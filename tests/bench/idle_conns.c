/*
 * idle_conns: hold N idle HTTP/1.1 keep-alive connections open.
 *
 *   idle_conns HOST PORT N [PATH] [INFLIGHT]
 *
 * Opens N TCP connections to HOST:PORT (IPv4 or IPv6 literal), sends one
 * "GET PATH HTTP/1.1" on each, reads the whole response (status line,
 * headers, Content-Length body), and then leaves the connection open and
 * idle. When every connection has completed its request it prints
 * "ready N" on stdout and waits until stdin reaches EOF or a SIGINT/SIGTERM
 * arrives; then it closes everything and exits.
 *
 * Used by tests/bench/static.sh to measure server memory per idle
 * keep-alive connection. It is a benchmark tool, not server code: it uses
 * libc allocation directly and exits on the first hard error.
 *
 * At most INFLIGHT (default 256) connections are connecting or waiting
 * for their response at once: opening 10,000 at once would overflow the
 * server's accept backlog, and SYN retransmits would add seconds.
 *
 * Exit status: 0 after a clean "ready" + stdin EOF/signal; 1 if any
 * connection failed, got a non-2xx status, or was closed by the server
 * before "ready"; 2 on usage errors. Connections the server closes after
 * "ready" are reported on stderr ("closed K") and make the exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IC_BUF_SIZE      4096
#define IC_READY_TIMEOUT 60     /* seconds to get every connection ready */

enum ic_state {
    IC_IDLE_UNOPENED = 0,       /* not opened yet */
    IC_CONNECTING,              /* connect() in progress, request not sent */
    IC_READING,                 /* request sent, reading the response */
    IC_IDLE,                    /* response complete, holding it open */
    IC_CLOSED
};

struct ic_conn {
    int fd;
    enum ic_state state;
    size_t got;                 /* bytes of response buffered (head part) */
    long long body_left;        /* body bytes still to read, -1 = unknown */
};

static volatile sig_atomic_t ic_stop;

static void ic_on_signal(int sig)
{
    (void) sig;
    ic_stop = 1;
}

static void ic_die(const char *what)
{
    perror(what);
    exit(1);
}

/* Raise the descriptor limit: N sockets plus a few for stdio and epoll. */
static void ic_raise_nofile(long n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        ic_die("getrlimit");
    rlim_t want = (rlim_t) n + 64;
    if (rl.rlim_cur >= want)
        return;
    if (rl.rlim_max < want && rl.rlim_max != RLIM_INFINITY) {
        /* Only root may raise the hard limit; try, then fall back. */
        struct rlimit hard = { want, want };
        if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
            return;
        rl.rlim_cur = rl.rlim_max;
    } else {
        rl.rlim_cur = want;
    }
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        ic_die("setrlimit(RLIMIT_NOFILE)");
    if (rl.rlim_cur < want) {
        fprintf(stderr, "idle_conns: RLIMIT_NOFILE %llu is below %llu\n",
                (unsigned long long) rl.rlim_cur, (unsigned long long) want);
        exit(1);
    }
}

/*
 * Look at the buffered head. Returns 1 when the head is complete (and sets
 * body_left from Content-Length, minus the body bytes already buffered),
 * 0 when more is needed, -1 on a non-2xx status or a malformed head.
 */
static int ic_parse_head(struct ic_conn *c, char *buf)
{
    char *end = memmem(buf, c->got, "\r\n\r\n", 4);
    if (!end)
        return c->got >= IC_BUF_SIZE ? -1 : 0;

    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    if (status < 200 || status > 299) {
        fprintf(stderr, "idle_conns: status %d\n", status);
        return -1;
    }

    /* Content-Length, case-insensitive; absent means an empty body here
     * (a chunked or close-delimited reply would not stay keep-alive). */
    long long len = 0;
    for (char *line = strstr(buf, "\r\n"); line && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0) {
            len = strtoll(line + 2 + 15, NULL, 10);
            break;
        }
    }
    size_t head_len = (size_t) (end + 4 - buf);
    c->body_left = len - (long long) (c->got - head_len);
    return 1;
}

static int ic_open(struct ic_conn *c, const struct sockaddr_storage *sa,
                   socklen_t salen, int ep)
{
    c->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   0);
    if (c->fd < 0)
        ic_die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *) sa, salen) < 0
        && errno != EINPROGRESS)
        ic_die("connect");
    c->state = IC_CONNECTING;
    c->got = 0;
    c->body_left = -1;

    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                              .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        ic_die("epoll_ctl ADD");
    return 0;
}

/*
 * Advance one connection on an event. Returns 1 when it just became idle,
 * 0 when still in progress, -1 on failure.
 */
static int ic_on_event(struct ic_conn *c, uint32_t events, int ep,
                       const char *req, size_t req_len, char *buf)
{
    if (c->state == IC_CONNECTING && (events & (EPOLLOUT | EPOLLERR))) {
        int err = 0;
        socklen_t elen = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err) {
            fprintf(stderr, "idle_conns: connect: %s\n", strerror(err));
            return -1;
        }
        /* The request is tiny: one send fits the empty socket buffer. */
        ssize_t n = send(c->fd, req, req_len, MSG_NOSIGNAL);
        if (n != (ssize_t) req_len) {
            perror("idle_conns: send");
            return -1;
        }
        c->state = IC_READING;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
                                  .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
            ic_die("epoll_ctl MOD");
        return 0;
    }
    if (c->state != IC_READING)
        return 0;

    /* Read until EAGAIN. Head bytes accumulate in buf (shared scratch is
     * not enough: a head can arrive in pieces), so each conn keeps its
     * head only until it is parsed; body bytes are just counted. */
    for (;;) {
        if (c->body_left < 0) {
            ssize_t n = recv(c->fd, buf + c->got, IC_BUF_SIZE - 1 - c->got, 0);
            if (n == 0)
                goto closed;
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                goto closed;
            }
            c->got += (size_t) n;
            buf[c->got] = '\0';
            int r = ic_parse_head(c, buf);
            if (r < 0)
                return -1;
            if (r == 0)
                continue;
        } else {
            char sink[IC_BUF_SIZE];
            size_t want = c->body_left < (long long) sizeof(sink)
                          ? (size_t) c->body_left : sizeof(sink);
            if (want > 0) {
                ssize_t n = recv(c->fd, sink, want, 0);
                if (n == 0)
                    goto closed;
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return 0;
                    goto closed;
                }
                c->body_left -= n;
            }
        }
        if (c->body_left == 0) {
            c->state = IC_IDLE;
            return 1;
        }
    }

closed:
    fprintf(stderr, "idle_conns: connection closed before the response "
            "completed\n");
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s HOST PORT N [PATH] [INFLIGHT]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    long n = atol(argv[3]);
    const char *path = argc > 4 ? argv[4] : "/";
    long inflight = argc > 5 ? atol(argv[5]) : 256;
    if (port <= 0 || port > 65535 || n <= 0 || inflight <= 0) {
        fprintf(stderr, "idle_conns: bad PORT, N or INFLIGHT\n");
        return 2;
    }

    struct sockaddr_storage sa;
    socklen_t salen;
    memset(&sa, 0, sizeof(sa));
    struct sockaddr_in *s4 = (struct sockaddr_in *) &sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &sa;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t) port);
        salen = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t) port);
        salen = sizeof(*s6);
    } else {
        fprintf(stderr, "idle_conns: HOST must be an IP literal\n");
        return 2;
    }

    ic_raise_nofile(n);

    struct sigaction sact;
    memset(&sact, 0, sizeof(sact));
    sact.sa_handler = ic_on_signal;     /* no SA_RESTART: wake epoll_wait */
    sigaction(SIGINT, &sact, NULL);
    sigaction(SIGTERM, &sact, NULL);
    signal(SIGPIPE, SIG_IGN);

    char req[1024];
    int req_len = snprintf(req, sizeof(req),
                           "GET %s HTTP/1.1\r\nHost: %s\r\n"
                           "User-Agent: idle_conns\r\n\r\n", path, host);
    if (req_len < 0 || req_len >= (int) sizeof(req)) {
        fprintf(stderr, "idle_conns: PATH too long\n");
        return 2;
    }

    struct ic_conn *conns = calloc((size_t) n, sizeof(*conns));
    /* One head buffer per in-flight slot would be tighter; a buffer per
     * connection is simpler and 10k x 4 KiB is only 40 MiB of client
     * memory, freed once everything is ready. */
    char *bufs = malloc((size_t) n * IC_BUF_SIZE);
    if (!conns || !bufs)
        ic_die("malloc");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        ic_die("epoll_create1");

    long opened = 0, active = 0, ready = 0;
    struct epoll_event evs[512];
    time_t deadline = time(NULL) + IC_READY_TIMEOUT;

    while (ready < n) {
        while (opened < n && active < inflight) {
            ic_open(&conns[opened], &sa, salen, ep);
            opened++;
            active++;
        }
        if (ic_stop) {
            fprintf(stderr, "idle_conns: interrupted at %ld/%ld ready\n",
                    ready, n);
            return 1;
        }
        if (time(NULL) > deadline) {
            fprintf(stderr, "idle_conns: timeout: %ld/%ld ready\n", ready, n);
            return 1;
        }
        int k = epoll_wait(ep, evs, 512, 1000);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            ic_die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            struct ic_conn *c = evs[i].data.ptr;
            if (c->state == IC_IDLE) {
                /* The server closed (or sent to) an idle connection. */
                fprintf(stderr, "idle_conns: server closed a connection "
                        "before ready\n");
                return 1;
            }
            char *buf = bufs + (size_t) (c - conns) * IC_BUF_SIZE;
            int r = ic_on_event(c, evs[i].events, ep, req, (size_t) req_len,
                                buf);
            if (r < 0)
                return 1;
            if (r == 1) {
                ready++;
                active--;
            }
        }
    }
    free(bufs);

    printf("ready %ld\n", ready);
    fflush(stdout);

    /* Idle phase: watch stdin for EOF and the sockets for server closes. */
    struct epoll_event sev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLHUP,
                               .data.ptr = NULL };
    /* A regular file or /dev/null on stdin cannot be watched (EPERM):
     * then only a signal ends the idle phase. */
    (void) epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
    long closed = 0;
    while (!ic_stop) {
        int k = epoll_wait(ep, evs, 512, -1);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            ic_die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            struct ic_conn *c = evs[i].data.ptr;
            if (!c) {
                char tmp[256];
                ssize_t r = read(0, tmp, sizeof(tmp));
                if (r <= 0)
                    ic_stop = 1;
                continue;
            }
            if (c->state == IC_CLOSED)
                continue;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->state = IC_CLOSED;
            closed++;
        }
    }
    if (closed)
        fprintf(stderr, "idle_conns: closed %ld\n", closed);

    for (long i = 0; i < n; i++)
        if (conns[i].state != IC_CLOSED)
            close(conns[i].fd);
    free(conns);
    close(ep);
    return closed ? 1 : 0;
}
