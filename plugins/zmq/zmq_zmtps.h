#ifndef ZMQ_ZMTPS_H
#define ZMQ_ZMTPS_H

/*
 * The server side of ZMTP 3.x with the NULL mechanism, for `NodeGuard
 * native` (zmq_guard.c): the gateway terminates a node's TCP connection
 * itself instead of relaying it to its ROUTER. It reads the peer's
 * greeting (3.x, NULL only: older peers and other mechanisms are refused),
 * its READY (Socket-Type DEALER, a non-empty Identity of at most 255
 * bytes: nodes must set one, where libzmq's ROUTER would make one up),
 * answers PING with PONG (ZMTP 3.1) and hands each whole message of at
 * most 3 frames to its owner. The limits are the guard's: MaxFrameSize per
 * frame, 8 KiB per command, 3 frames per message.
 *
 * Pure and allocation-free: the owner gives each frame's storage (ops
 * frame) and sends the bytes it is given (ops reply); the fuzz target
 * drives it directly.
 */
#include <stddef.h>
#include <stdint.h>

#include "plugins/zmq/zmq_zmtp.h"

#define ZMQ_ZMTPS_GREETING_LEN 64

enum zmq_zmtps_verdict {
    ZMQ_ZMTPS_OK = 0,
    ZMQ_ZMTPS_GREETING,        /* not a ZMTP 3.x greeting (older peer) */
    ZMQ_ZMTPS_MECHANISM,       /* not NULL */
    ZMQ_ZMTPS_FRAME_SIZE,      /* a frame larger than frame_max */
    ZMQ_ZMTPS_COMMAND_SIZE,    /* a command larger than command_max */
    ZMQ_ZMTPS_PARTS,           /* a message of more than 3 frames */
    ZMQ_ZMTPS_MALFORMED,       /* reserved flags, bad command, data first */
    ZMQ_ZMTPS_SOCKET_TYPE,     /* the peer is not a DEALER */
    ZMQ_ZMTPS_IDENTITY,        /* no Identity, or an empty one */
    ZMQ_ZMTPS_OWNER,           /* the owner refused (ops returned -1) */
};

struct zmq_zmtps_ops {
    /* Storage for frame `idx` (0..2) of the message being read, `size`
     * bytes (size may be 0: a non-NULL pointer is still needed); NULL
     * fails the stream. */
    uint8_t *(*frame)(void *ctx, unsigned idx, uint64_t size);
    /* A whole message of `n` frames (1..3) has been stored. */
    int (*message)(void *ctx, unsigned n);
    /* The peer's READY was accepted: its identity is z->id. */
    int (*ready)(void *ctx);
    /* Bytes to send to the peer (a PONG). */
    int (*reply)(void *ctx, const uint8_t *p, size_t len);
};

enum zmq_zmtps_state {
    ZMQ_ZMTPS_S_GREETING,
    ZMQ_ZMTPS_S_FLAGS,
    ZMQ_ZMTPS_S_SIZE,
    ZMQ_ZMTPS_S_BODY,
    ZMQ_ZMTPS_S_FAILED,
};

struct zmq_zmtps {
    enum zmq_zmtps_state state;
    enum zmq_zmtps_verdict verdict;     /* sticky once not OK */
    uint8_t greeting[ZMQ_ZMTPS_GREETING_LEN];
    unsigned have;                      /* greeting or size bytes so far */
    uint8_t flags;                      /* the current frame's */
    uint8_t size_bytes[8];
    uint64_t size, got;                 /* the current frame's */
    uint8_t *dst;                       /* where its payload goes */
    unsigned parts;                     /* data frames of this message */
    uint64_t frames;                    /* frames seen in all */
    int ready;                          /* the peer's READY was accepted */
    uint64_t frame_max;
    uint64_t command_max;
    uint8_t id[ZMQ_ZMTP_IDENTITY_MAX];
    size_t id_len;
    uint8_t cmd[ZMQ_ZMTP_COMMAND_MAX];  /* the command being read */
};

void zmq_zmtps_init(struct zmq_zmtps *z, uint64_t frame_max,
                    uint64_t command_max);
/* What the server sends first: greeting 3.0, NULL, then READY with
 * Socket-Type ROUTER; returns its length (<= 128). */
size_t zmq_zmtps_hello(uint8_t *out, size_t outlen);
/* Frame header of a frame of `size` bytes; `more`: MORE set. 2 or 9. */
size_t zmq_zmtps_header(uint8_t out[9], uint64_t size, int more);
/* Reads the next `len` bytes. Returns ZMQ_ZMTPS_OK, or the first
 * violation, which every later call returns too. */
enum zmq_zmtps_verdict zmq_zmtps_feed(struct zmq_zmtps *z,
                                      const uint8_t *p, size_t len,
                                      const struct zmq_zmtps_ops *ops,
                                      void *ctx);
const char *zmq_zmtps_verdict_name(enum zmq_zmtps_verdict v);

#endif
