/*
 * The server side of ZMTP 3.x, NULL mechanism (zmq_zmtps.h), written from
 * the ZMTP 3.0/3.1 specification (rfc.zeromq.org/spec/23 and 37).
 */
#include <string.h>
#include <strings.h>

#include "plugins/zmq/zmq_zmtps.h"

#define ZMTPS_MORE 0x01
#define ZMTPS_LONG 0x02
#define ZMTPS_COMMAND 0x04
#define ZMTPS_PING_CONTEXT_MAX 16

void zmq_zmtps_init(struct zmq_zmtps *z, uint64_t frame_max,
                    uint64_t command_max)
{
    z->state = ZMQ_ZMTPS_S_GREETING;
    z->verdict = ZMQ_ZMTPS_OK;
    z->have = 0;
    z->parts = 0;
    z->frames = 0;
    z->ready = 0;
    z->id_len = 0;
    z->dst = NULL;
    z->frame_max = frame_max;
    z->command_max = command_max > sizeof(z->cmd) ? sizeof(z->cmd)
                                                  : command_max;
}

const char *zmq_zmtps_verdict_name(enum zmq_zmtps_verdict v)
{
    switch (v) {
    case ZMQ_ZMTPS_OK:
        return "ok";
    case ZMQ_ZMTPS_GREETING:
        return "not a ZMTP 3 greeting (NodeGuard native needs libzmq 4 "
               "or later on the node)";
    case ZMQ_ZMTPS_MECHANISM:
        return "a security mechanism other than NULL";
    case ZMQ_ZMTPS_FRAME_SIZE:
        return "a frame larger than MaxFrameSize";
    case ZMQ_ZMTPS_COMMAND_SIZE:
        return "a ZMTP command frame larger than 8 KiB";
    case ZMQ_ZMTPS_PARTS:
        return "a message of more than 3 frames";
    case ZMQ_ZMTPS_MALFORMED:
        return "a malformed ZMTP frame or command";
    case ZMQ_ZMTPS_SOCKET_TYPE:
        return "a peer socket other than DEALER";
    case ZMQ_ZMTPS_IDENTITY:
        return "no node identity (set ZMQ_IDENTITY / ZMQ_ROUTING_ID)";
    case ZMQ_ZMTPS_OWNER:
        return "a message the gateway could not take";
    }
    return "?";
}

size_t zmq_zmtps_header(uint8_t out[9], uint64_t size, int more)
{
    uint8_t flags = more ? ZMTPS_MORE : 0;
    int i;

    if (size <= 255) {
        out[0] = flags;
        out[1] = (uint8_t) size;
        return 2;
    }
    out[0] = flags | ZMTPS_LONG;
    for (i = 8; i >= 1; i--) {
        out[i] = (uint8_t) (size & 0xff);
        size >>= 8;
    }
    return 9;
}

size_t zmq_zmtps_hello(uint8_t *out, size_t outlen)
{
    static const uint8_t ready[] = {
        ZMTPS_COMMAND, 28,
        5, 'R', 'E', 'A', 'D', 'Y',
        11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e',
        0, 0, 0, 6, 'R', 'O', 'U', 'T', 'E', 'R',
    };

    if (outlen < ZMQ_ZMTPS_GREETING_LEN + sizeof(ready)) {
        return 0;
    }
    memset(out, 0, ZMQ_ZMTPS_GREETING_LEN);
    out[0] = 0xff;                 /* signature: 0xff, 8 padding, 0x7f */
    out[9] = 0x7f;
    out[10] = 3;                   /* version 3.0 */
    memcpy(out + 12, "NULL", 4);   /* mechanism; as-server 0 (NULL) */
    memcpy(out + ZMQ_ZMTPS_GREETING_LEN, ready, sizeof(ready));
    return ZMQ_ZMTPS_GREETING_LEN + sizeof(ready);
}

static int zmtps_fail(struct zmq_zmtps *z, enum zmq_zmtps_verdict v)
{
    z->verdict = v;
    z->state = ZMQ_ZMTPS_S_FAILED;
    return -1;
}

/* ZMTP property names compare without case (RFC 23, 3.2); strncasecmp
 * stops at a NUL in `p`, which then differs from `name` */
static int zmtps_name_is(const uint8_t *p, size_t len, const char *name)
{
    return len == strlen(name) &&
           strncasecmp((const char *) p, name, len) == 0;
}

/* READY's properties: Socket-Type DEALER and a non-empty Identity. */
static int zmtps_ready(struct zmq_zmtps *z, const uint8_t *d, size_t len,
                       const struct zmq_zmtps_ops *ops, void *ctx)
{
    size_t off = 0, nlen;
    uint64_t vlen;
    int dealer = 0, typed = 0;
    const uint8_t *name;

    z->id_len = 0;
    while (off < len) {
        nlen = d[off++];
        name = d + off;
        if (nlen == 0 || nlen > len - off || len - off - nlen < 4) {
            return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);
        }
        off += nlen;
        vlen = ((uint64_t) d[off] << 24) | ((uint64_t) d[off + 1] << 16) |
               ((uint64_t) d[off + 2] << 8) | d[off + 3];
        off += 4;
        if (vlen > len - off) {
            return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);
        }
        if (zmtps_name_is(name, nlen, "Socket-Type")) {
            typed = 1;
            dealer = vlen == 6 && memcmp(d + off, "DEALER", 6) == 0;
        }
        else if (zmtps_name_is(name, nlen, "Identity")) {
            if (vlen > ZMQ_ZMTP_IDENTITY_MAX) {
                return zmtps_fail(z, ZMQ_ZMTPS_IDENTITY);
            }
            memcpy(z->id, d + off, (size_t) vlen);
            z->id_len = (size_t) vlen;
        }
        off += (size_t) vlen;
    }
    if (!typed || !dealer) {
        return zmtps_fail(z, ZMQ_ZMTPS_SOCKET_TYPE);
    }
    if (z->id_len == 0) {
        return zmtps_fail(z, ZMQ_ZMTPS_IDENTITY);
    }
    z->ready = 1;
    if (ops->ready && ops->ready(ctx) < 0) {
        return zmtps_fail(z, ZMQ_ZMTPS_OWNER);
    }
    return 0;
}

static int zmtps_command(struct zmq_zmtps *z, const struct zmq_zmtps_ops *ops,
                         void *ctx)
{
    const uint8_t *c = z->cmd, *data;
    size_t len = (size_t) z->size, nlen, dlen;
    uint8_t pong[2 + 5 + ZMTPS_PING_CONTEXT_MAX];

    if (len < 1 || c[0] == 0 || (size_t) c[0] > len - 1) {
        return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);
    }
    nlen = c[0];
    data = c + 1 + nlen;
    dlen = len - 1 - nlen;
    if (!z->ready) {
        if (nlen != 5 || memcmp(c + 1, "READY", 5) != 0) {
            return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);
        }
        return zmtps_ready(z, data, dlen, ops, ctx);
    }
    if (nlen == 4 && memcmp(c + 1, "PING", 4) == 0) {
        /* 2 bytes of TTL, then up to 16 bytes of context, echoed */
        if (dlen < 2) {
            return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);
        }
        dlen -= 2;
        if (dlen > ZMTPS_PING_CONTEXT_MAX) {
            dlen = ZMTPS_PING_CONTEXT_MAX;
        }
        pong[0] = ZMTPS_COMMAND;
        pong[1] = (uint8_t) (5 + dlen);
        pong[2] = 4;
        memcpy(pong + 3, "PONG", 4);
        memcpy(pong + 7, data + 2, dlen);
        if (ops->reply && ops->reply(ctx, pong, 7 + dlen) < 0) {
            return zmtps_fail(z, ZMQ_ZMTPS_OWNER);
        }
        return 0;
    }
    if (nlen == 5 && memcmp(c + 1, "READY", 5) == 0) {
        return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);     /* a second one */
    }
    return 0;                      /* PONG, ERROR, unknown: nothing to do */
}

/* The header is whole: check it and find where the payload goes. */
static int zmtps_frame_start(struct zmq_zmtps *z,
                             const struct zmq_zmtps_ops *ops, void *ctx)
{
    z->got = 0;
    z->frames++;
    if (z->flags & ZMTPS_COMMAND) {
        if ((z->flags & ZMTPS_MORE) || z->parts) {
            return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);
        }
        if (z->size > z->command_max) {
            return zmtps_fail(z, ZMQ_ZMTPS_COMMAND_SIZE);
        }
        z->dst = z->cmd;
        return 0;
    }
    if (!z->ready) {
        return zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);     /* data before READY */
    }
    if (z->size > z->frame_max) {
        return zmtps_fail(z, ZMQ_ZMTPS_FRAME_SIZE);
    }
    if (z->parts >= ZMQ_ZMTP_PARTS_MAX) {
        return zmtps_fail(z, ZMQ_ZMTPS_PARTS);
    }
    z->dst = ops->frame(ctx, z->parts, z->size);
    if (!z->dst) {
        return zmtps_fail(z, ZMQ_ZMTPS_OWNER);
    }
    return 0;
}

static int zmtps_frame_end(struct zmq_zmtps *z,
                           const struct zmq_zmtps_ops *ops, void *ctx)
{
    z->state = ZMQ_ZMTPS_S_FLAGS;
    z->dst = NULL;
    if (z->flags & ZMTPS_COMMAND) {
        return zmtps_command(z, ops, ctx);
    }
    z->parts++;
    if (z->flags & ZMTPS_MORE) {
        return 0;
    }
    {
        unsigned n = z->parts;

        z->parts = 0;
        if (ops->message(ctx, n) < 0) {
            return zmtps_fail(z, ZMQ_ZMTPS_OWNER);
        }
    }
    return 0;
}

static int zmtps_greeting_byte(struct zmq_zmtps *z, uint8_t b)
{
    static const uint8_t null_mech[20] = "NULL";

    z->greeting[z->have++] = b;
    if ((z->have == 1 && b != 0xff) ||
        (z->have == 10 && !(b & 1)) ||
        (z->have == 11 && b < 3)) {
        return zmtps_fail(z, ZMQ_ZMTPS_GREETING);
    }
    if (z->have == ZMQ_ZMTPS_GREETING_LEN) {
        if (memcmp(z->greeting + 12, null_mech, sizeof(null_mech)) != 0) {
            return zmtps_fail(z, ZMQ_ZMTPS_MECHANISM);
        }
        z->state = ZMQ_ZMTPS_S_FLAGS;
    }
    return 0;
}

enum zmq_zmtps_verdict zmq_zmtps_feed(struct zmq_zmtps *z,
                                      const uint8_t *p, size_t len,
                                      const struct zmq_zmtps_ops *ops,
                                      void *ctx)
{
    size_t i = 0, n;
    unsigned want;

    while (i < len && z->state != ZMQ_ZMTPS_S_FAILED) {
        switch (z->state) {
        case ZMQ_ZMTPS_S_GREETING:
            zmtps_greeting_byte(z, p[i++]);
            break;
        case ZMQ_ZMTPS_S_FLAGS:
            z->flags = p[i++];
            if (z->flags & 0xf8) {
                zmtps_fail(z, ZMQ_ZMTPS_MALFORMED);
                break;
            }
            z->have = 0;
            z->state = ZMQ_ZMTPS_S_SIZE;
            break;
        case ZMQ_ZMTPS_S_SIZE:
            want = (z->flags & ZMTPS_LONG) ? 8 : 1;
            z->size_bytes[z->have++] = p[i++];
            if (z->have < want) {
                break;
            }
            z->size = 0;
            for (want = 0; want < z->have; want++) {
                z->size = (z->size << 8) | z->size_bytes[want];
            }
            if (zmtps_frame_start(z, ops, ctx) < 0) {
                break;
            }
            z->state = ZMQ_ZMTPS_S_BODY;
            if (z->size == 0) {
                zmtps_frame_end(z, ops, ctx);
            }
            break;
        case ZMQ_ZMTPS_S_BODY:
            n = len - i;
            if (n > z->size - z->got) {
                n = (size_t) (z->size - z->got);
            }
            memcpy(z->dst + z->got, p + i, n);
            z->got += n;
            i += n;
            if (z->got == z->size) {
                zmtps_frame_end(z, ops, ctx);
            }
            break;
        case ZMQ_ZMTPS_S_FAILED:
            break;
        }
    }
    return z->verdict;
}
