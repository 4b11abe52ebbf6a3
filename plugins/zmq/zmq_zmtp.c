/*
 * The node guard's reader of ZMTP frame headers (zmq_zmtp.h). Written here
 * rather than taken from libzmq, which has no API to inspect a stream
 * without consuming it; it follows libzmq's version detection so that the
 * same peers are accepted.
 */
#include <string.h>
#include <strings.h>

#include "plugins/zmq/zmq_zmtp.h"

#define ZMTP_SIGNATURE_LEN 10
#define ZMTP_GREETING_V2 12        /* ZMTP 1.0 and 2.0, versioned */
#define ZMTP_GREETING_V3 64
#define ZMTP_MORE 0x01
#define ZMTP_LONG 0x02
#define ZMTP_COMMAND 0x04

void zmq_zmtp_init(struct zmq_zmtp *z, uint64_t frame_max,
                   uint64_t command_max, unsigned parts_max)
{
    memset(z, 0, sizeof(*z));
    z->state = ZMQ_ZMTP_SIGNATURE;
    z->frame_max = frame_max;
    z->command_max = command_max;
    z->parts_max = parts_max;
}

const char *zmq_zmtp_verdict_name(enum zmq_zmtp_verdict v)
{
    switch (v) {
    case ZMQ_ZMTP_OK:
        return "ok";
    case ZMQ_ZMTP_FRAME_SIZE:
        return "a frame larger than MaxFrameSize";
    case ZMQ_ZMTP_COMMAND_SIZE:
        return "a ZMTP command frame larger than 8 KiB";
    case ZMQ_ZMTP_PARTS:
        return "a message of more than 3 frames";
    case ZMQ_ZMTP_MALFORMED:
        return "a malformed ZMTP 1.0 frame";
    }
    return "unknown";
}

static uint64_t zmtp_be64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void zmtp_fail(struct zmq_zmtp *z, enum zmq_zmtp_verdict v)
{
    z->verdict = v;
    z->state = ZMQ_ZMTP_FAILED;
}

static void zmtp_next_header(struct zmq_zmtp *z)
{
    z->have = 0;
    z->state = z->v1 ? ZMQ_ZMTP_V1_LENGTH : ZMQ_ZMTP_V2_FLAGS;
}

const uint8_t *zmq_zmtp_identity(const struct zmq_zmtp *z, size_t *len)
{
    if (z->id_state != ZMQ_ZMTP_ID_KNOWN) {
        *len = 0;
        return NULL;
    }
    *len = z->id_len;
    return z->first + z->id_off;
}

static uint32_t zmtp_be32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
           ((uint32_t) p[2] << 8) | p[3];
}

static void zmtp_set_identity(struct zmq_zmtp *z, size_t off, uint64_t len)
{
    if (len == 0 || len > ZMQ_ZMTP_IDENTITY_MAX || off + len > z->first_len) {
        return;
    }
    z->id_off = (uint16_t) off;
    z->id_len = (uint16_t) len;
    z->id_state = ZMQ_ZMTP_ID_KNOWN;
}

/* READY: a name of 5 bytes, then properties, each a 1-byte name length,
 * the name, a 4-byte big-endian value length and the value (ZMTP 23).
 * Property names are case-insensitive. */
static void zmtp_parse_ready(struct zmq_zmtp *z)
{
    const uint8_t *p = z->first;
    size_t n = z->first_len, off = 6, nl;
    uint32_t vl;

    if (!z->first_command || n < off || p[0] != 5 ||
        memcmp(p + 1, "READY", 5) != 0) {
        return;
    }
    while (off < n) {
        nl = p[off];
        if (n - off < 1 + nl + 4) {
            return;                         /* truncated at the kept head */
        }
        vl = zmtp_be32(p + off + 1 + nl);
        if (nl == 8 && strncasecmp((const char *) p + off + 1, "Identity",
                                   8) == 0) {
            zmtp_set_identity(z, off + 1 + nl + 4, vl);
            return;
        }
        off += 1 + nl + 4;
        if (vl > n - off) {
            return;
        }
        off += vl;
    }
}

void zmq_zmtp_parse_first(struct zmq_zmtp *z)
{
    z->id_state = ZMQ_ZMTP_ID_NONE;
    if (z->v3) {
        zmtp_parse_ready(z);
    }
    else if (!z->first_command && z->first_size == z->first_len) {
        zmtp_set_identity(z, 0, z->first_size);   /* the identity frame */
    }
}

/* A frame header is complete: check it, then skip its payload. */
static void zmtp_frame(struct zmq_zmtp *z, uint64_t size, int more,
                       int command)
{
    if (size > (command ? z->command_max : z->frame_max)) {
        zmtp_fail(z, command ? ZMQ_ZMTP_COMMAND_SIZE : ZMQ_ZMTP_FRAME_SIZE);
        return;
    }
    z->frames++;
    if (++z->parts > z->parts_max) {
        zmtp_fail(z, ZMQ_ZMTP_PARTS);
        return;
    }
    if (!more) {
        z->parts = 0;
    }
    z->left = size;
    z->state = ZMQ_ZMTP_SKIP;
    if (z->frames == 1) {
        z->first_command = command != 0;
        z->first_size = size;
    }
    if (size == 0) {
        if (z->frames == 1) {
            zmq_zmtp_parse_first(z);
        }
        zmtp_next_header(z);
    }
}

/* A ZMTP 1.0 length counts the flags byte: 0 is no frame at all. */
static void zmtp_v1_length(struct zmq_zmtp *z, uint64_t length)
{
    if (length == 0) {
        zmtp_fail(z, ZMQ_ZMTP_MALFORMED);
        return;
    }
    z->left = length - 1;
    z->state = ZMQ_ZMTP_V1_FLAGS;
}

/* The first 10 bytes are either a versioned signature or a whole ZMTP 1.0
 * long-length header (0xff, the length, the flags with MORE clear). */
static void zmtp_signature(struct zmq_zmtp *z)
{
    if (z->hdr[9] & 0x01) {
        z->state = ZMQ_ZMTP_REVISION;
        return;
    }
    z->v1 = 1;
    zmtp_v1_length(z, zmtp_be64(z->hdr + 1));
    if (z->state == ZMQ_ZMTP_V1_FLAGS) {
        zmtp_frame(z, z->left, z->hdr[9] & ZMTP_MORE, 0);
    }
}

static void zmtp_revision(struct zmq_zmtp *z, uint8_t revision)
{
    size_t greeting = revision <= 1 ? ZMTP_GREETING_V2 : ZMTP_GREETING_V3;

    z->v1 = revision == 0;
    z->v3 = revision >= 2;                  /* as libzmq: not 0, not 1 */
    z->left = greeting - ZMTP_SIGNATURE_LEN - 1;
    z->state = ZMQ_ZMTP_SKIP;
}

/* One header byte; the flat switch is the state machine. */
static void zmtp_byte(struct zmq_zmtp *z, uint8_t b)
{
    switch (z->state) {
    case ZMQ_ZMTP_SIGNATURE:
        z->hdr[z->have++] = b;
        if (z->have == 1 && b != 0xff) {
            z->v1 = 1;                      /* unversioned, short length */
            zmtp_v1_length(z, b);
        }
        else if (z->have == ZMTP_SIGNATURE_LEN) {
            zmtp_signature(z);
        }
        break;
    case ZMQ_ZMTP_REVISION:
        zmtp_revision(z, b);
        break;
    case ZMQ_ZMTP_V1_LENGTH:
        if (b == 0xff) {
            z->state = ZMQ_ZMTP_V1_LONG;
        }
        else {
            zmtp_v1_length(z, b);
        }
        break;
    case ZMQ_ZMTP_V1_LONG:
        z->hdr[z->have++] = b;
        if (z->have == 8) {
            zmtp_v1_length(z, zmtp_be64(z->hdr));
        }
        break;
    case ZMQ_ZMTP_V1_FLAGS:
        zmtp_frame(z, z->left, b & ZMTP_MORE, 0);
        break;
    case ZMQ_ZMTP_V2_FLAGS:
        z->flags = b;
        z->state = (b & ZMTP_LONG) ? ZMQ_ZMTP_V2_LONG : ZMQ_ZMTP_V2_SHORT;
        break;
    case ZMQ_ZMTP_V2_SHORT:
        zmtp_frame(z, b, z->flags & ZMTP_MORE, z->flags & ZMTP_COMMAND);
        break;
    case ZMQ_ZMTP_V2_LONG:
        z->hdr[z->have++] = b;
        if (z->have == 8) {
            zmtp_frame(z, zmtp_be64(z->hdr), z->flags & ZMTP_MORE,
                       z->flags & ZMTP_COMMAND);
        }
        break;
    case ZMQ_ZMTP_SKIP:
    case ZMQ_ZMTP_FAILED:
        break;
    }
}

/* The first frame's payload is read for its identity (zmq_zmtp.h); the
 * greeting's skipped bytes are not frames (z->frames is 0 then). */
static void zmtp_keep_first(struct zmq_zmtp *z, const uint8_t *p, size_t n)
{
    size_t room = sizeof(z->first) - z->first_len;

    if (n > room) {
        n = room;
    }
    memcpy(z->first + z->first_len, p, n);
    z->first_len += n;
}

enum zmq_zmtp_verdict zmq_zmtp_feed(struct zmq_zmtp *z, const uint8_t *p,
                                    size_t len)
{
    const uint8_t *end = p + len;

    while (p < end && z->state != ZMQ_ZMTP_FAILED) {
        if (z->state == ZMQ_ZMTP_SKIP) {
            /* payloads are skipped whole: the cost is per frame, not
             * per byte */
            size_t n = (size_t) (end - p) < z->left ? (size_t) (end - p)
                                                    : (size_t) z->left;
            if (z->frames == 1 && z->id_state == ZMQ_ZMTP_ID_PENDING) {
                zmtp_keep_first(z, p, n);
            }
            p += n;
            z->left -= n;
            if (z->left == 0) {
                if (z->frames == 1 && z->id_state == ZMQ_ZMTP_ID_PENDING) {
                    zmq_zmtp_parse_first(z);
                }
                zmtp_next_header(z);
            }
            continue;
        }
        zmtp_byte(z, *p++);
    }
    return z->verdict;
}
