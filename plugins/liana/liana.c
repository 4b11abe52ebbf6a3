/*
 * liana: the plain-socket network I/O layer. It keeps no state: every call
 * works on the connection's fd, which the core owns and closes.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/sendfile.h>
#endif

#include "mk_server/mk_plugin.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static ssize_t liana_errno_result(void)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return MK_IO_AGAIN;
    return MK_IO_ERROR;
}

static ssize_t liana_read(struct mk_conn *c, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = recv(mk_conn_fd(c), buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return liana_errno_result();
}

/*
 * sendmsg() instead of writev(): MSG_NOSIGNAL turns a write to a reset peer
 * into EPIPE instead of SIGPIPE, so the server does not depend on the
 * signal being ignored process-wide (a plugin library may reset it).
 */
static ssize_t liana_writev(struct mk_conn *c, const struct iovec *iov,
                            int iovcnt)
{
    struct msghdr msg = { 0 };
    ssize_t n;

    /* A partial write is a valid answer: the core re-queues the rest. */
    if (iovcnt > IOV_MAX)
        iovcnt = IOV_MAX;
    msg.msg_iov = (struct iovec *) iov;
    msg.msg_iovlen = (size_t) iovcnt;
    do {
#ifdef MSG_NOSIGNAL
        n = sendmsg(mk_conn_fd(c), &msg, MSG_NOSIGNAL);
#else
        /* BSD/macOS: the master ignores SIGPIPE for the whole process. */
        n = sendmsg(mk_conn_fd(c), &msg, 0);
#endif
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return liana_errno_result();
}

#if defined(__linux__)
static ssize_t liana_sendfile(struct mk_conn *c, int fd, off_t *offset,
                              size_t len)
{
    ssize_t n;

    if (len == 0)
        return 0;
    do {
        n = sendfile(mk_conn_fd(c), fd, offset, len);
    } while (n < 0 && errno == EINTR);
    /* 0 with bytes still owed means the file shrank under us: the promised
     * Content-Length can no longer be met, so the connection must end. */
    if (n == 0)
        return MK_IO_ERROR;
    if (n > 0)
        return n;
    return liana_errno_result();
}
#elif defined(__FreeBSD__) || defined(__DragonFly__)
static ssize_t liana_sendfile(struct mk_conn *c, int fd, off_t *offset,
                              size_t len)
{
    off_t sent = 0;
    int ret;

    if (len == 0)
        return 0;
    ret = sendfile(fd, mk_conn_fd(c), *offset, len, NULL, &sent, 0);
    /* FreeBSD reports a partial transfer in `sent` even with EAGAIN. */
    if (sent > 0) {
        *offset += sent;
        return (ssize_t) sent;
    }
    if (ret == 0)
        return MK_IO_ERROR;     /* nothing sent, no error: file shrank */
    if (errno == EINTR)
        return MK_IO_AGAIN;
    return liana_errno_result();
}
#elif defined(__APPLE__)
static ssize_t liana_sendfile(struct mk_conn *c, int fd, off_t *offset,
                              size_t len)
{
    off_t sent = (off_t) len;
    int ret;

    if (len == 0)
        return 0;
    /* macOS: `sent` is in/out: bytes asked for, then bytes sent. */
    ret = sendfile(fd, mk_conn_fd(c), *offset, &sent, NULL, 0);
    if (sent > 0) {
        *offset += sent;
        return (ssize_t) sent;
    }
    if (ret == 0)
        return MK_IO_ERROR;
    if (errno == EINTR)
        return MK_IO_AGAIN;
    return liana_errno_result();
}
#else
#define LIANA_NO_SENDFILE 1
#endif

/*
 * Holding partial frames back while the head and the first body bytes are
 * queued saves a small packet per response. Errors are ignored on purpose:
 * the hint is an optimisation and fails on non-TCP sockets (AF_UNIX).
 */
static void liana_cork(struct mk_conn *c, int on)
{
#if defined(TCP_CORK)
    (void) setsockopt(mk_conn_fd(c), IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
#elif defined(TCP_NOPUSH)
    (void) setsockopt(mk_conn_fd(c), IPPROTO_TCP, TCP_NOPUSH, &on, sizeof(on));
#else
    (void) c;
    (void) on;
#endif
}

static const struct mk_net_io liana_io = {
    .name     = "liana",
    .read     = liana_read,
    .writev   = liana_writev,
#ifndef LIANA_NO_SENDFILE
    .sendfile = liana_sendfile,
#endif
    .cork     = liana_cork,
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_liana = {
    .abi         = MK_PLUGIN_ABI,
    .name        = "liana",
    .description = "plain TCP/Unix socket I/O layer",
    .flags       = MK_PLUGIN_NETWORK | MK_PLUGIN_NETWORK_PLAIN,
    .net_io      = &liana_io,
    /* tremolo -b: the layer of BlastBeat's plain `bind` listeners */
};
