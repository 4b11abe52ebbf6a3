/*
 * Bytes on the wire for the TLS layer: staged flights and read-ahead
 * (tls_wire.h says why).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "plugins/tls/tls_wire.h"

/* A whole record with its header and MAC (MBEDTLS_SSL_OUT_CONTENT_LEN is
 * 16 KiB): one read takes the largest record a peer may send. */
#define TLS_WIRE_BUF (16384 + 2048)

static _Thread_local struct {
    unsigned char buf[TLS_WIRE_BUF];
    size_t len;
} wire_out;

static _Thread_local struct {
    unsigned char buf[TLS_WIRE_BUF];
    size_t off, len;
} wire_in;

static int wire_send_raw(int fd, const unsigned char *buf, size_t len)
{
    ssize_t n;

    do {
        n = send(fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        return (int) n;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ?
           MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
}

int tls_wire_spill_flush(struct tls_wire *w)
{
    int n;

    while (w->spill && w->spill_off < w->spill_len) {
        n = wire_send_raw(w->fd, w->spill + w->spill_off,
                          w->spill_len - w->spill_off);
        if (n < 0) {
            return n;
        }
        w->spill_off += (uint32_t) n;
    }
    mk_mem_free(w->spill);
    w->spill = NULL;
    w->spill_len = w->spill_off = 0;
    return 0;
}

void tls_wire_stage_begin(struct tls_wire *w)
{
    w->staging = 1;
}

/* Sends the stage in one call; the socket's refusal is kept as spill. */
static int wire_stage_flush(struct tls_wire *w)
{
    size_t off = 0, len = wire_out.len;
    int n = 0;

    wire_out.len = 0;
    while (off < len) {
        n = wire_send_raw(w->fd, wire_out.buf + off, len - off);
        if (n < 0) {
            break;
        }
        off += (size_t) n;
    }
    if (off == len) {
        return 0;
    }
    if (n != MBEDTLS_ERR_SSL_WANT_WRITE) {
        return n;
    }
    mk_debug("[fd %d] tls: the socket took %zu bytes of a %zu-byte flight, "
             "the rest waits for it", w->fd, off, len);
    w->spill = mk_mem_alloc(len - off);
    if (!w->spill) {
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    }
    memcpy(w->spill, wire_out.buf + off, len - off);
    w->spill_len = (uint32_t) (len - off);
    w->spill_off = 0;
    return 0;
}

int tls_wire_stage_end(struct tls_wire *w)
{
    w->staging = 0;
    return wire_stage_flush(w);
}

int tls_wire_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct tls_wire *w = ctx;
    int ret;

    if (w->spill && (ret = tls_wire_spill_flush(w)) != 0) {
        return ret;                    /* bytes already promised go first */
    }
    if (!w->staging) {
        return wire_send_raw(w->fd, buf, len);
    }
    if (len > sizeof(wire_out.buf) - wire_out.len) {
        if ((ret = wire_stage_flush(w)) != 0) {
            return ret;
        }
        if (w->spill) {
            return MBEDTLS_ERR_SSL_WANT_WRITE;
        }
        if (len > sizeof(wire_out.buf)) {
            return wire_send_raw(w->fd, buf, len);
        }
    }
    memcpy(wire_out.buf + wire_out.len, buf, len);
    wire_out.len += len;
    return (int) len;
}

int tls_wire_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct tls_wire *w = ctx;
    ssize_t n;

    if (w->ahead) {
        if (len > w->ahead_len - w->ahead_off) {
            len = w->ahead_len - w->ahead_off;
        }
        memcpy(buf, w->ahead + w->ahead_off, len);
        w->ahead_off += (uint32_t) len;
        if (w->ahead_off == w->ahead_len) {
            mk_mem_free(w->ahead);
            w->ahead = NULL;
            w->ahead_len = w->ahead_off = 0;
        }
        return (int) len;
    }
    if (wire_in.off == wire_in.len) {
        do {
            n = recv(w->fd, wire_in.buf, sizeof(wire_in.buf), 0);
        } while (n < 0 && errno == EINTR);
        if (n == 0) {
            return 0;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ?
                   MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
        }
        wire_in.off = 0;
        wire_in.len = (size_t) n;
    }
    if (len > wire_in.len - wire_in.off) {
        len = wire_in.len - wire_in.off;
    }
    memcpy(buf, wire_in.buf + wire_in.off, len);
    wire_in.off += len;
    return (int) len;
}

int tls_wire_turn_end(struct tls_wire *w)
{
    size_t left = wire_in.len - wire_in.off;
    unsigned char *keep;

    if (left == 0) {
        return 0;
    }
    /* ahead is empty here: reads drain it before touching the socket */
    keep = mk_mem_alloc(left);
    if (keep) {
        memcpy(keep, wire_in.buf + wire_in.off, left);
        w->ahead = keep;
        w->ahead_len = (uint32_t) left;
        w->ahead_off = 0;
    }
    wire_in.off = wire_in.len = 0;
    return keep ? 0 : -1;
}

void tls_wire_reset(struct tls_wire *w, int fd)
{
    mk_mem_free(w->spill);
    mk_mem_free(w->ahead);
    memset(w, 0, sizeof(*w));
    w->fd = fd;
}
