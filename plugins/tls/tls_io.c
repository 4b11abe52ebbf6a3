/*
 * The TLS network layer: one mbedtls_ssl_context per connection on the
 * generation's shared configuration, non-blocking handshakes driven from
 * the core's read calls, application data in records of at most 16 KiB.
 */
#include <string.h>
#include <sys/uio.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include <mbedtls/error.h>

#include "plugins/tls/tls.h"

#define TLS_RECORD 16384              /* MBEDTLS_SSL_OUT_CONTENT_LEN */

/* mbedtls_ssl_setup() allocates two 16 KiB record buffers; freeing them
 * with every connection made the allocator hand pages back and fault them
 * in again, most of a handshake-bound worker's time (perf: madvise TLB
 * flushes and page faults). A worker keeps up to 64 contexts of closed
 * connections, enough for the bursts of a -c50 load (16 were not), at most
 * 3 MiB of buffers, and resets them for the next ones. Workers belong to one
 * generation, so a pooled context's configuration is always current. */
#define TLS_POOL_MAX 64

static _Thread_local struct tls_conn *tls_pool[TLS_POOL_MAX];
static _Thread_local int tls_pooled;

static void tls_conn_destroy(struct tls_conn *t)
{
    tls_wire_reset(&t->wire, -1);
    mbedtls_ssl_free(&t->ssl);
    mk_mem_free(t);
}

void tls_pool_drain(void)
{
    while (tls_pooled > 0) {
        tls_conn_destroy(tls_pool[--tls_pooled]);
    }
}

static struct tls_conn *tls_conn_get(struct tls_conf *tc)
{
    struct tls_conn *t;

    while (tls_pooled > 0) {
        t = tls_pool[--tls_pooled];
        if (t->ssl.conf == &tc->ssl && mbedtls_ssl_session_reset(&t->ssl) == 0) {
            t->established = 0;
            t->pending = 0;
            return t;
        }
        tls_conn_destroy(t);
    }
    t = mk_mem_zalloc(sizeof(*t));
    if (!t) {
        return NULL;
    }
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &tc->ssl) != 0) {
        tls_conn_destroy(t);
        return NULL;
    }
    return t;
}

static int tls_on_accept(struct mk_conn *c)
{
    struct tls_conf *tc = mk_server_plugin_conf(mk_conn_server(c),
                                                &mk_plugin_tls);
    struct tls_conn *t = tls_conn_get(tc);

    if (!t) {
        mk_err("[fd %d] tls: out of memory for a session", mk_conn_fd(c));
        return -1;
    }
    tls_wire_reset(&t->wire, mk_conn_fd(c));
    t->fallback = tls_vhost_cert(mk_conn_default_vhost(c));
    mbedtls_ssl_set_bio(&t->ssl, &t->wire, tls_wire_send, tls_wire_recv,
                        NULL);
    mk_conn_set_io_data(c, t);
    mk_conn_timeout(c, tc->handshake_timeout);
    return 0;
}

/* MK_IO_AGAIN while mbedTLS waits for the socket (asking the core for a
 * writable event when it must write first), MK_IO_ERROR when the
 * connection is lost or the peer broke the protocol. */
static ssize_t tls_again(struct mk_conn *c, int ret)
{
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) {
        return MK_IO_AGAIN;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        mk_conn_io_want_write(c);
        return MK_IO_AGAIN;
    }
    if (mk_log_get_level() >= MK_LOG_DEBUG) {
        char why[128];
        mbedtls_strerror(ret, why, sizeof(why));
        mk_debug("[fd %d] tls: %s", mk_conn_fd(c), why);
    }
    return MK_IO_ERROR;
}

/* One handshake step, its flight staged and sent in one call. */
static int tls_handshake(struct mk_conn *c, struct tls_conn *t)
{
    int ret, sent;

    tls_wire_stage_begin(&t->wire);
    ret = mbedtls_ssl_handshake(&t->ssl);
    sent = tls_wire_stage_end(&t->wire);
    if (sent != 0) {
        return sent;
    }
    if (tls_wire_waits(&t->wire)) {
        mk_conn_io_want_write(c);
    }
    return ret;
}

/* The client's ALPN pick decides the protocol; without ALPN the
 * listener's own protocol goes on. mbedTLS only picks among the ids we
 * offered, all of them registered. */
static int tls_select_proto(struct mk_conn *c, struct tls_conn *t)
{
    const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->ssl);

    if (alpn && mk_conn_select_proto(c, alpn, strlen(alpn)) < 0) {
        mk_err("[fd %d] tls: ALPN \"%s\" has no protocol handler",
               mk_conn_fd(c), alpn);
        return -1;
    }
    return 0;
}

static ssize_t tls_read(struct mk_conn *c, void *buf, size_t len)
{
    struct tls_conn *t = mk_conn_io_data(c);
    ssize_t n;
    int ret;

    if ((ret = tls_wire_spill_flush(&t->wire)) != 0) {
        return tls_again(c, ret);
    }
    if (!t->established) {
        ret = tls_handshake(c, t);
        if (ret != 0) {
            n = tls_again(c, ret);
            goto out;
        }
        t->established = 1;
        if (tls_select_proto(c, t) < 0) {
            n = MK_IO_ERROR;
            goto out;
        }
        mk_conn_io_established(c);   /* HandshakeTimeout no longer applies */
    }
    ret = mbedtls_ssl_read(&t->ssl, buf, len);
    if (ret > 0) {
        n = ret;
    }
    else if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
             ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        n = 0;                        /* orderly end, with or without alert */
    }
    else {
        n = tls_again(c, ret);
    }
out:
    if (tls_wire_turn_end(&t->wire) < 0) {
        mk_err("[fd %d] tls: out of memory for read-ahead", mk_conn_fd(c));
        return MK_IO_ERROR;
    }
    return n;
}

/* The next `want` bytes of iov past `skip`, pointed to in place when one
 * iovec holds them, else gathered into buf. */
static const unsigned char *tls_gather(const struct iovec *iov, int iovcnt,
                                       size_t skip, size_t want,
                                       unsigned char *buf)
{
    size_t got = 0, n;
    int i = 0;

    while (i < iovcnt && skip >= iov[i].iov_len) {
        skip -= iov[i++].iov_len;
    }
    if (i < iovcnt && iov[i].iov_len - skip >= want) {
        return (const unsigned char *) iov[i].iov_base + skip;
    }
    for (; i < iovcnt && got < want; i++, skip = 0) {
        n = iov[i].iov_len - skip;
        if (n > want - got) {
            n = want - got;
        }
        memcpy(buf + got, (const char *) iov[i].iov_base + skip, n);
        got += n;
    }
    return buf;
}

/* One record per TLS_RECORD bytes, small iovecs gathered so a response
 * head and its body leave in one record. After WANT_WRITE mbedTLS holds
 * the encrypted record and must be called with the same length again:
 * the core re-offers the same bytes first, and `pending` remembers it. */
static ssize_t tls_writev(struct mk_conn *c, const struct iovec *iov,
                          int iovcnt)
{
    struct tls_conn *t = mk_conn_io_data(c);
    unsigned char buf[TLS_RECORD];
    size_t all = 0, done = 0, want;
    int i, ret;

    if (!t->established) {
        return MK_IO_AGAIN;          /* nothing to say before the handshake */
    }
    for (i = 0; i < iovcnt; i++) {
        all += iov[i].iov_len;
    }
    while (done < all) {
        want = t->pending ? t->pending
                          : (all - done < TLS_RECORD ? all - done : TLS_RECORD);
        ret = mbedtls_ssl_write(&t->ssl,
                                tls_gather(iov, iovcnt, done, want, buf), want);
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE ||
            ret == MBEDTLS_ERR_SSL_WANT_READ) {
            t->pending = want;
            break;
        }
        if (ret < 0) {
            return done ? (ssize_t) done : tls_again(c, ret);
        }
        t->pending = 0;
        done += (size_t) ret;
    }
    return done ? (ssize_t) done : MK_IO_AGAIN;
}

static void tls_on_close(struct mk_conn *c)
{
    struct tls_conn *t = mk_conn_io_data(c);

    if (!t) {
        return;
    }
    if (t->established) {
        mbedtls_ssl_close_notify(&t->ssl);       /* best effort, no wait */
    }
    tls_wire_reset(&t->wire, -1);
    if (tls_pooled < TLS_POOL_MAX) {
        tls_pool[tls_pooled++] = t;
    }
    else {
        tls_conn_destroy(t);
    }
    mk_conn_set_io_data(c, NULL);
}

const struct mk_net_io tls_net_io = {
    .name      = "tls",
    .on_accept = tls_on_accept,
    .read      = tls_read,
    .writev    = tls_writev,
    .on_close  = tls_on_close,
    .buffered  = 1,                   /* records hold bytes the socket gave */
    .secure    = 1,
};
