#ifndef TREMOLO_EIO_PACKET_H
#define TREMOLO_EIO_PACKET_H

/*
 * Engine.IO v4 packets (https://socket.io/docs/v4/engine-io-protocol/):
 * a type digit and its data; on HTTP long-polling a payload joins packets
 * with the record separator 0x1e and carries binary data as "b" + base64;
 * on WebSocket each frame is one packet, and a binary frame is a binary
 * message packet without a type digit.
 */
#include <stddef.h>
#include <stdint.h>

#include "mk_core/mk_buf.h"

enum eio_type {
    EIO_OPEN = 0,
    EIO_CLOSE = 1,
    EIO_PING = 2,
    EIO_PONG = 3,
    EIO_MESSAGE = 4,
    EIO_UPGRADE = 5,
    EIO_NOOP = 6,
};

#define EIO_RS 0x1e                         /* the polling separator */

struct eio_packet {
    enum eio_type type;
    int binary;                             /* a binary message (type 4) */
    const char *data;                       /* borrowed, see below */
    size_t len;
};

/* Client packets in a polling POST body. Calls fn for each packet in
 * order (a binary packet's data decoded from base64 into a scratch buffer
 * valid only during the call); stops at fn's first non-zero return and
 * returns it. -1 for a malformed payload (an empty packet, an unknown
 * type digit, a client-only-invalid type such as OPEN, bad base64),
 * checked before fn sees any packet: a malformed POST delivers nothing. */
int eio_payload_decode(const char *p, size_t len,
                       int (*fn)(void *ctx, const struct eio_packet *pk),
                       void *ctx);

/* One WebSocket frame's packet (binary_frame: the frame's opcode was
 * binary; data then points to the whole frame). 0 or -1 (empty text
 * frame, unknown type digit). */
int eio_frame_decode(const char *p, size_t len, int binary_frame,
                     struct eio_packet *out);

/* Appends one packet to a polling payload, with the separator before it
 * when b already holds a packet (b->len > 0); binary as "b" + base64.
 * 0 or -1 (no memory). */
int eio_payload_append(struct mk_buf *b, const struct eio_packet *pk);

/* The OPEN packet's JSON ("0" not included):
 * {"sid":"...","upgrades":["websocket"]|[],"pingInterval":N,
 *  "pingTimeout":N,"maxPayload":N}; the length written (NUL added), or
 * -1 when outlen is too small. */
long eio_open_json(char *out, size_t outlen, const char *sid,
                   int upgrade_websocket, uint64_t ping_interval_ms,
                   uint64_t ping_timeout_ms, uint64_t max_payload);

#endif
