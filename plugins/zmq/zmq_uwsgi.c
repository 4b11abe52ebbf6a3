/*
 * The `uwsgi` packet a node receives once per request (spec 2.2).
 *
 * Layout, all integers little-endian:
 *   u8 modifier1 = 0, u16 SIZE, u8 modifier2 = 0,
 *   then (u16 K, K key bytes, u16 V, V value bytes) until offset SIZE.
 * SIZE counts the 4-byte header too. That is BlastBeat's quirk, not standard
 * uwsgi, and dealers compare against it, so we keep it. Because SIZE is a
 * u16 the whole packet stays <= 65535 bytes; BlastBeat let a 65536-byte
 * packet wrap SIZE to 0 (spec 10.6), we refuse it instead.
 */
#include <string.h>

#include "plugins/zmq/zmq_proto.h"

static void zmq_uwsgi_put16(char *p, size_t v)
{
    p[0] = (char) (v & 0xff);
    p[1] = (char) ((v >> 8) & 0xff);
}

static size_t zmq_uwsgi_get16(const char *p)
{
    return (size_t) (unsigned char) p[0] |
           ((size_t) (unsigned char) p[1] << 8);
}

int zmq_uwsgi_begin(struct mk_buf *b)
{
    static const char head[ZMQ_UWSGI_HEAD_LEN] = { 0, 0, 0, 0 };

    b->len = 0;
    if (mk_buf_append(b, head, sizeof(head)) != 0) {
        return ZMQ_UWSGI_ENOMEM;
    }
    return 0;
}

int zmq_uwsgi_add(struct mk_buf *b, const char *k, size_t kl,
                  const char *v, size_t vl)
{
    size_t need;
    char *p;

    /* Compare piecewise so that huge kl/vl cannot wrap the sum. */
    if (kl > ZMQ_UWSGI_MAX || vl > ZMQ_UWSGI_MAX ||
        b->len > ZMQ_UWSGI_MAX) {
        return ZMQ_UWSGI_ETOOBIG;
    }
    need = 2 + kl + 2 + vl;
    if (need > ZMQ_UWSGI_MAX - b->len) {
        return ZMQ_UWSGI_ETOOBIG;
    }
    /* Reserve once so a failure leaves the buffer exactly as it was. */
    if (mk_buf_reserve(b, need) != 0) {
        return ZMQ_UWSGI_ENOMEM;
    }
    p = b->data + b->len;
    zmq_uwsgi_put16(p, kl);
    if (kl > 0) {
        memcpy(p + 2, k, kl);
    }
    zmq_uwsgi_put16(p + 2 + kl, vl);
    if (vl > 0) {
        memcpy(p + 4 + kl, v, vl);
    }
    b->len += need;
    return 0;
}

int zmq_uwsgi_add_str(struct mk_buf *b, const char *k, const char *v)
{
    return zmq_uwsgi_add(b, k, strlen(k), v, strlen(v));
}

int zmq_uwsgi_finish(struct mk_buf *b)
{
    if (b->len < ZMQ_UWSGI_HEAD_LEN || b->len > ZMQ_UWSGI_MAX) {
        return -1;
    }
    b->data[0] = 0;
    zmq_uwsgi_put16(b->data + 1, b->len);
    b->data[3] = 0;
    return 0;
}

size_t zmq_uwsgi_header_key(const char *name, size_t len,
                            char *out, size_t outlen)
{
    size_t i;
    char c;

    if (len == 0 || name[0] == ':' || memchr(name, '_', len) != NULL) {
        return 0;
    }
    if (len > outlen || outlen - len < 5) {
        return 0;
    }
    memcpy(out, "HTTP_", 5);
    for (i = 0; i < len; i++) {
        c = name[i];
        if (c >= 'a' && c <= 'z') {
            c = (char) (c - 'a' + 'A');
        }
        else if (c == '-') {
            c = '_';
        }
        out[5 + i] = c;
    }
    return 5 + len;
}

int zmq_uwsgi_parse(const char *pkt, size_t len, zmq_uwsgi_var_cb on_var,
                    void *ctx)
{
    size_t off, kl, vl;
    const char *k;
    int ret;

    if (len < ZMQ_UWSGI_HEAD_LEN || len > ZMQ_UWSGI_MAX) {
        return -1;
    }
    if (pkt[0] != 0 || pkt[3] != 0 || zmq_uwsgi_get16(pkt + 1) != len) {
        return -1;
    }
    off = ZMQ_UWSGI_HEAD_LEN;
    while (off < len) {
        /* Each step checks the room left before reading a length. */
        if (len - off < 2) {
            return -1;
        }
        kl = zmq_uwsgi_get16(pkt + off);
        off += 2;
        if (len - off < kl) {
            return -1;
        }
        k = pkt + off;
        off += kl;
        if (len - off < 2) {
            return -1;
        }
        vl = zmq_uwsgi_get16(pkt + off);
        off += 2;
        if (len - off < vl) {
            return -1;
        }
        if (on_var != NULL) {
            ret = on_var(ctx, k, kl, pkt + off, vl);
            if (ret != 0) {
                return ret;
            }
        }
        off += vl;
    }
    return 0;
}
