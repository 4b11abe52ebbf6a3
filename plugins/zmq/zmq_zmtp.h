#ifndef ZMQ_ZMTP_H
#define ZMQ_ZMTP_H

/*
 * What the node guard (zmq_guard.c) reads of a node's ZMTP stream before
 * libzmq gets it: the greeting and every frame header, never a payload
 * byte. It exists because libzmq bounds one frame (ZMQ_MAXMSGSIZE) but not
 * the frames of one multipart message: an unfinished message stays
 * invisible to the application until its last frame, so only a reader in
 * front of libzmq can refuse one.
 *
 * The framings are the ones libzmq 4.3 accepts on a NULL-mechanism socket
 * (its zmtp_engine.cpp picks them the same way):
 *   - ZMTP 1.0 unversioned (libzmq 2.x): no greeting; a frame is a length
 *     (1 byte, or 0xff and 8 bytes big-endian) counting a flags byte (bit 0:
 *     MORE) and the payload. Recognised by a first byte other than 0xff, or
 *     by 0xff whose tenth byte has bit 0 clear.
 *   - a versioned greeting: 0xff, 8 bytes, a byte with bit 0 set, then the
 *     revision. Revision 0 (ZMTP 1.0) and 1 (ZMTP 2.0, libzmq 3.x) end the
 *     greeting at 12 bytes, any other at 64 (ZMTP 3.x). Revision 0 then
 *     uses the framing above; every other one a flags byte (bit 0 MORE,
 *     bit 1 LONG, bit 2 COMMAND) and a 1- or 8-byte big-endian size.
 *
 * Every frame, commands included, counts toward the message it belongs
 * to, as libzmq's pipe would count it; a frame without MORE ends it.
 * Pure and allocation-free: the fuzz target and unit tests drive it
 * directly.
 */
#include <stddef.h>
#include <stdint.h>

/* A node message has exactly three frames on the wire (spec 1.2). */
#define ZMQ_ZMTP_PARTS_MAX 3
/* A NULL-mechanism READY carries Socket-Type and Identity (at most 255
 * bytes); PING, PONG and ERROR are smaller still. 8 KiB leaves room for
 * metadata a node adds, and an anonymous peer can make the server hold
 * no more than that before its handshake is done. */
#define ZMQ_ZMTP_COMMAND_MAX (8 * 1024)

enum zmq_zmtp_verdict {
    ZMQ_ZMTP_OK = 0,
    ZMQ_ZMTP_FRAME_SIZE,       /* a frame larger than frame_max */
    ZMQ_ZMTP_COMMAND_SIZE,     /* a command frame larger than command_max */
    ZMQ_ZMTP_PARTS,            /* a message of more than parts_max frames */
    ZMQ_ZMTP_MALFORMED,        /* a ZMTP 1.0 length of 0 (no flags byte) */
};

enum zmq_zmtp_state {
    ZMQ_ZMTP_SIGNATURE,        /* the first 10 bytes */
    ZMQ_ZMTP_REVISION,         /* byte 10 of a versioned greeting */
    ZMQ_ZMTP_SKIP,             /* greeting rest or frame payload */
    ZMQ_ZMTP_V1_LENGTH,
    ZMQ_ZMTP_V1_LONG,
    ZMQ_ZMTP_V1_FLAGS,
    ZMQ_ZMTP_V2_FLAGS,
    ZMQ_ZMTP_V2_SHORT,
    ZMQ_ZMTP_V2_LONG,
    ZMQ_ZMTP_FAILED,
};

struct zmq_zmtp {
    enum zmq_zmtp_state state;
    enum zmq_zmtp_verdict verdict;      /* sticky once not OK */
    int v1;                             /* ZMTP 1.0 framing */
    uint8_t hdr[10];                    /* header bytes collected so far */
    unsigned have;
    uint8_t flags;                      /* the ZMTP 2.0+ frame's flags */
    uint64_t left;                      /* bytes to skip in ZMQ_ZMTP_SKIP */
    unsigned parts;                     /* frames of the current message */
    uint64_t frames;                    /* frames seen in all */
    uint64_t frame_max;
    uint64_t command_max;
    unsigned parts_max;
};

void zmq_zmtp_init(struct zmq_zmtp *z, uint64_t frame_max,
                   uint64_t command_max, unsigned parts_max);
/* Reads the next `len` bytes of the stream. Returns ZMQ_ZMTP_OK, or the
 * first violation, which every later call returns too. */
enum zmq_zmtp_verdict zmq_zmtp_feed(struct zmq_zmtp *z, const uint8_t *p,
                                    size_t len);
const char *zmq_zmtp_verdict_name(enum zmq_zmtp_verdict v);

#endif
