/*
 * hello_backend.c -- the peers' side of http2.sh's node scenario: the work
 * docs/examples/c_node.c does for Tremolo, as an HTTP/1.1 application
 * server a reverse proxy (nginx `proxy_pass`, h2o `proxy.reverse.url`)
 * talks to. One process, one thread, epoll, libc only:
 *
 *     cc -O2 -o hello_backend tests/bench/hello_backend.c
 *     hello_backend /path/to/socket      # a unix stream socket, mode 0666
 *
 * Every request gets the bytes c_node.c sends, head and body:
 * "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n". A request
 * is read up to its blank line; it is not parsed further (c_node.c does not
 * decode its uwsgi packet either), so a request with a body is refused by
 * closing the connection. Connections stay open (HTTP/1.1 keep-alive) and
 * pipelined requests are answered in order, all the answers to one read in
 * one write. SIGINT/SIGTERM end it and remove the socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define IN_MAX   16384          /* a request head must fit */
#define OUT_MAX  65536          /* answers not yet written */
#define EVENTS   256

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n";

struct conn {
    int fd;
    int out_armed;              /* EPOLLOUT asked for */
    size_t in_len, out_off, out_len;
    char in[IN_MAX];
    char out[OUT_MAX];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void) sig;
    stop = 1;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Answer every complete request head in c->in. -1: close the connection
 * (a body announced, a head too long, no room for the answers). */
static int conn_parse(struct conn *c)
{
    size_t used = 0;
    char *end;

    while ((end = memmem(c->in + used, c->in_len - used, "\r\n\r\n", 4))) {
        size_t head = (size_t) (end - (c->in + used)) + 4;
        char *p = c->in + used;

        /* a body we would have to read and skip: not this server's job */
        if (memmem(p, head, "\r\nContent-Length:", 17) ||
            memmem(p, head, "\r\ncontent-length:", 17) ||
            memmem(p, head, "\r\nTransfer-Encoding:", 20) ||
            memmem(p, head, "\r\ntransfer-encoding:", 20)) {
            if (!memmem(p, head, "ength: 0\r\n", 10)) {
                return -1;
            }
        }
        if (c->out_len + sizeof(RESPONSE) - 1 > OUT_MAX) {
            return -1;
        }
        memcpy(c->out + c->out_len, RESPONSE, sizeof(RESPONSE) - 1);
        c->out_len += sizeof(RESPONSE) - 1;
        used += head;
    }
    if (used) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    return c->in_len == IN_MAX ? -1 : 0;
}

/* Write what is queued; EPOLLOUT only while something is left, so a
 * connection whose answers go out at once costs no epoll_ctl. */
static int conn_flush(int ep, struct conn *c)
{
    struct epoll_event ev = { .data.ptr = c };

    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                if (c->out_armed) {
                    return 0;
                }
                c->out_armed = 1;
                ev.events = EPOLLIN | EPOLLOUT;
                return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            return -1;
        }
        c->out_off += (size_t) n;
    }
    c->out_off = c->out_len = 0;
    if (c->out_armed) {
        c->out_armed = 0;
        ev.events = EPOLLIN;
        return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

static int conn_read(struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);
        if (n > 0) {
            c->in_len += (size_t) n;
            if (conn_parse(c) < 0) {
                return -1;
            }
            continue;
        }
        if (n == 0) {
            return -1;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN ? 0 : -1;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct epoll_event evs[EVENTS], ev = { .events = EPOLLIN };
    int lfd, ep, i, n;

    if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    strcpy(sa.sun_path, argv[1]);
    unlink(argv[1]);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
        chmod(argv[1], 0666) < 0 || listen(lfd, 1024) < 0) {
        perror("hello_backend: listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.data.ptr = NULL;                       /* NULL: the listener */
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("hello_backend: epoll");
        return 1;
    }
    while (!stop) {
        n = epoll_wait(ep, evs, EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("hello_backend: epoll_wait");
            break;
        }
        for (i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        free(c);
                    }
                }
                continue;
            }
            if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && !(evs[i].events & EPOLLIN)) {
                conn_close(ep, c);
                continue;
            }
            if (((evs[i].events & EPOLLIN) && conn_read(c) < 0) ||
                conn_flush(ep, c) < 0) {
                conn_close(ep, c);
            }
        }
    }
    unlink(argv[1]);
    return 0;
}
