/*
 * ZMTP 3.0 framing for the node runtime's own DEALER client.
 *
 * Why hand-written: libzmq always moves every message through its I/O
 * thread (a pipe plus an eventfd mailbox, and a cross-core wake-up each
 * way), which costs a node about as much CPU per request as the
 * application thread itself. A node needs only the client side of one
 * known peer kind, the gateway's ROUTER (libzmq 4.x), with the NULL
 * mechanism: a greeting, a READY each way, and plain frames, done in the
 * calling thread by zmtp_link.c. Only the parts that check bytes coming
 * from the network live here, with no Python and no libzmq, so that
 * tests/fuzz/pyext_zmtp.c can run them. libzmq stays the fallback for
 * other endpoint kinds and when TREMOLO_NODE_LIBZMQ=1.
 */
#include "zmtp.h"

#include <string.h>
#include <strings.h>

const char *zmtp_strerror(enum zmtp_err e)
{
    switch (e) {
    case ZMTP_OK:             return "no error";
    case ZMTP_E_SIGNATURE:    return "the peer's greeting is not ZMTP";
    case ZMTP_E_VERSION:      return "the peer speaks ZMTP older than 3.0";
    case ZMTP_E_MECHANISM:    return "the peer's mechanism is not NULL";
    case ZMTP_E_FLAGS:        return "a frame with invalid flags";
    case ZMTP_E_SIZE:         return "a frame larger than allowed";
    case ZMTP_E_COMMAND:      return "a malformed command";
    case ZMTP_E_PROPERTY:     return "malformed READY properties";
    case ZMTP_E_SOCKET_TYPE:  return "a peer socket type a DEALER cannot use";
    }
    return "unknown error";
}

void zmtp_greeting(uint8_t out[ZMTP_GREETING_LEN])
{
    memset(out, 0, ZMTP_GREETING_LEN);
    out[0] = 0xFF;                 /* signature: 0xFF, 8 padding, 0x7F */
    out[9] = 0x7F;
    out[10] = 3;                   /* version 3.0 */
    out[11] = 0;
    memcpy(out + 12, "NULL", 4);   /* mechanism, NUL-padded to 20 */
    out[32] = 0;                   /* as-server: no */
}

enum zmtp_err zmtp_greeting_check(const uint8_t in[ZMTP_GREETING_LEN])
{
    static const uint8_t null_mech[20] = "NULL";

    if (in[0] != 0xFF || (in[9] & 1) != 1) {
        return ZMTP_E_SIGNATURE;
    }
    if (in[10] < 3) {
        return ZMTP_E_VERSION;
    }
    if (memcmp(in + 12, null_mech, sizeof(null_mech)) != 0) {
        return ZMTP_E_MECHANISM;
    }
    return ZMTP_OK;
}

size_t zmtp_frame_header(uint8_t out[9], uint64_t size, unsigned flags)
{
    flags &= ZMTP_FLAG_MORE | ZMTP_FLAG_COMMAND;
    if (size <= 255) {
        out[0] = (uint8_t) flags;
        out[1] = (uint8_t) size;
        return 2;
    }
    out[0] = (uint8_t) (flags | ZMTP_FLAG_LONG);
    for (int i = 8; i >= 1; i--) {
        out[i] = (uint8_t) (size & 0xFF);
        size >>= 8;
    }
    return 9;
}

static uint8_t *zmtp_put_property(uint8_t *p, const char *name,
                                  const void *value, size_t vlen)
{
    size_t nlen = strlen(name);

    *p++ = (uint8_t) nlen;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = (uint8_t) (vlen >> 24);
    *p++ = (uint8_t) (vlen >> 16);
    *p++ = (uint8_t) (vlen >> 8);
    *p++ = (uint8_t) vlen;
    if (vlen > 0) {
        memcpy(p, value, vlen);
    }
    return p + vlen;
}

size_t zmtp_ready(uint8_t out[ZMTP_READY_MAX], const void *id, size_t idlen)
{
    uint8_t body[ZMTP_READY_MAX], *p = body;
    size_t hlen, blen;

    if (idlen > 255) {
        idlen = 255;
    }
    *p++ = 5;
    memcpy(p, "READY", 5);
    p += 5;
    p = zmtp_put_property(p, "Socket-Type", "DEALER", 6);
    p = zmtp_put_property(p, "Identity", id, idlen);
    blen = (size_t) (p - body);
    hlen = zmtp_frame_header(out, blen, ZMTP_FLAG_COMMAND);
    memcpy(out + hlen, body, blen);
    return hlen + blen;
}

size_t zmtp_pong(uint8_t out[ZMTP_PONG_MAX], const uint8_t *ctx, size_t len)
{
    if (len > 16) {
        len = 16;
    }
    out[0] = ZMTP_FLAG_COMMAND;
    out[1] = (uint8_t) (5 + len);
    out[2] = 4;
    memcpy(out + 3, "PONG", 4);
    if (len > 0) {
        memcpy(out + 7, ctx, len);
    }
    return 7 + len;
}

enum zmtp_err zmtp_command_parse(const uint8_t *body, size_t len,
                                 struct zmtp_command *c)
{
    if (len < 1 || body[0] == 0 || (size_t) body[0] > len - 1) {
        return ZMTP_E_COMMAND;
    }
    c->name = body + 1;
    c->namelen = body[0];
    c->data = body + 1 + c->namelen;
    c->datalen = len - 1 - c->namelen;
    return ZMTP_OK;
}

/* ZMTP property names compare without case (RFC 23, 3.2); strncasecmp
 * stops at a NUL in `a`, which then differs from `b` */
static int zmtp_eq_nocase(const uint8_t *a, size_t alen, const char *b)
{
    return alen == strlen(b) && strncasecmp((const char *) a, b, alen) == 0;
}

int zmtp_command_is(const struct zmtp_command *c, const char *name)
{
    size_t n = strlen(name);

    return c->namelen == n && memcmp(c->name, name, n) == 0;
}

enum zmtp_err zmtp_ready_check(const uint8_t *data, size_t len)
{
    size_t off = 0;
    int typed = 0;

    while (off < len) {
        size_t nlen = data[off++];
        const uint8_t *name = data + off;
        uint64_t vlen;

        if (nlen == 0 || nlen > len - off || len - off - nlen < 4) {
            return ZMTP_E_PROPERTY;
        }
        off += nlen;
        vlen = ((uint64_t) data[off] << 24) | ((uint64_t) data[off + 1] << 16)
               | ((uint64_t) data[off + 2] << 8) | data[off + 3];
        off += 4;
        if (vlen > len - off) {
            return ZMTP_E_PROPERTY;
        }
        if (zmtp_eq_nocase(name, nlen, "Socket-Type")) {
            const uint8_t *v = data + off;
            if (!(vlen == 6 && memcmp(v, "ROUTER", 6) == 0) &&
                !(vlen == 6 && memcmp(v, "DEALER", 6) == 0) &&
                !(vlen == 3 && memcmp(v, "REP", 3) == 0)) {
                return ZMTP_E_SOCKET_TYPE;
            }
            typed = 1;
        }
        off += (size_t) vlen;
    }
    return typed ? ZMTP_OK : ZMTP_E_SOCKET_TYPE;
}

int zmtp_ping_context(const uint8_t *data, size_t len, const uint8_t **ctx,
                      size_t *ctxlen)
{
    if (len < 2) {
        return -1;
    }
    *ctx = data + 2;
    *ctxlen = len - 2 > 16 ? 16 : len - 2;
    return 0;
}

void zmtp_reader_init(struct zmtp_reader *r)
{
    memset(r, 0, sizeof(*r));
}

enum zmtp_ev zmtp_read(struct zmtp_reader *r, const uint8_t *p, size_t len,
                       size_t *used, const uint8_t **data, size_t *dlen)
{
    *used = 0;
    if (r->err != ZMTP_OK) {
        return ZMTP_EV_ERROR;
    }
    if (r->in_body) {
        uint64_t left = r->size - r->got;
        size_t n;

        if (left == 0) {
            r->in_body = 0;
            r->in_msg = (r->flags & ZMTP_FLAG_MORE) != 0;
            return ZMTP_EV_END;
        }
        if (len == 0) {
            return ZMTP_EV_NEED;
        }
        n = left < len ? (size_t) left : len;
        r->got += n;
        *data = p;
        *dlen = n;
        *used = n;
        return ZMTP_EV_DATA;
    }
    for (;;) {
        size_t need = 2;
        uint8_t flags;
        uint64_t size;

        if (r->hlen >= 1 && (r->hdr[0] & ZMTP_FLAG_LONG)) {
            need = 9;
        }
        if (r->hlen < need) {
            if (*used == len) {
                return ZMTP_EV_NEED;
            }
            r->hdr[r->hlen++] = p[(*used)++];
            continue;
        }
        flags = r->hdr[0];
        if (need == 2) {
            size = r->hdr[1];
        }
        else {
            size = 0;
            for (int i = 1; i < 9; i++) {
                size = (size << 8) | r->hdr[i];
            }
        }
        r->hlen = 0;
        if ((flags & ~(ZMTP_FLAG_MORE | ZMTP_FLAG_LONG | ZMTP_FLAG_COMMAND)) ||
            ((flags & ZMTP_FLAG_COMMAND) &&
             ((flags & ZMTP_FLAG_MORE) || r->in_msg))) {
            r->err = ZMTP_E_FLAGS;
            return ZMTP_EV_ERROR;
        }
        if (size > ZMTP_FRAME_MAX ||
            ((flags & ZMTP_FLAG_COMMAND) && size > ZMTP_COMMAND_MAX)) {
            r->err = ZMTP_E_SIZE;
            return ZMTP_EV_ERROR;
        }
        r->flags = flags;
        r->size = size;
        r->got = 0;
        r->in_body = 1;
        return ZMTP_EV_HEAD;
    }
}

void zmtp_reader_skip(struct zmtp_reader *r, uint64_t n)
{
    if (r->in_body && n <= r->size - r->got) {
        r->got += n;
    }
}
