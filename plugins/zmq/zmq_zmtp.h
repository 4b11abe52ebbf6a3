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
 *
 * The one payload it reads is the peer's first frame, for the identity
 * the peer claims: in ZMTP 3.x the NULL mechanism's READY command, whose
 * Identity property libzmq sends for DEALER, REQ and ROUTER peers; in
 * ZMTP 2.0 and 1.0 the first frame is the identity itself. The first
 * ZMQ_ZMTP_FIRST_MAX bytes of that frame are kept, which holds a READY
 * as libzmq writes it (Socket-Type, then Identity of at most 255 bytes);
 * an Identity past them counts as none.
 *
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

/* The kept head of the first frame: a READY is 6 bytes of name, 16 of
 * Socket-Type, 13 of Identity header and at most 255 of identity. */
#define ZMQ_ZMTP_FIRST_MAX 512
#define ZMQ_ZMTP_IDENTITY_MAX 255

/* What the first frame said about the peer's identity. */
enum zmq_zmtp_identity {
    ZMQ_ZMTP_ID_PENDING = 0,   /* the first frame is not all read yet */
    ZMQ_ZMTP_ID_KNOWN,         /* a non-empty identity: zmq_zmtp_identity() */
    ZMQ_ZMTP_ID_NONE,          /* anonymous, or no READY/Identity found */
};

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
    int v3;                             /* ZMTP 3.x: the first frame is READY */
    enum zmq_zmtp_identity id_state;
    int first_command;                  /* the first frame was a command */
    uint16_t id_off, id_len;            /* the identity, in first[] */
    uint64_t first_size;                /* the first frame's size */
    size_t first_len;                   /* bytes of it kept in first[] */
    uint8_t first[ZMQ_ZMTP_FIRST_MAX];  /* the first frame's head */
};

void zmq_zmtp_init(struct zmq_zmtp *z, uint64_t frame_max,
                   uint64_t command_max, unsigned parts_max);
/* Reads the next `len` bytes of the stream. Returns ZMQ_ZMTP_OK, or the
 * first violation, which every later call returns too. */
enum zmq_zmtp_verdict zmq_zmtp_feed(struct zmq_zmtp *z, const uint8_t *p,
                                    size_t len);
const char *zmq_zmtp_verdict_name(enum zmq_zmtp_verdict v);
/* The identity the peer claimed, borrowed from `z` (not NUL-terminated),
 * with its length in *len; NULL unless z->id_state is ZMQ_ZMTP_ID_KNOWN. */
const uint8_t *zmq_zmtp_identity(const struct zmq_zmtp *z, size_t *len);
/* Parses the head of a first frame (exposed for the unit tests):
 * sets id_state, id_off and id_len from first[0..first_len). */
void zmq_zmtp_parse_first(struct zmq_zmtp *z);

#endif
