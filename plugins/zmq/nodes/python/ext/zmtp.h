/* ZMTP 3.0 client framing for _tremolo (rfc.zeromq.org/spec/23, NULL
 * mechanism), free of Python and of libzmq so that a libFuzzer target
 * (tests/fuzz/pyext_zmtp.c) can run it on its own. zmtp_link.c owns the
 * sockets; this file only builds and checks bytes. */
#ifndef TX_ZMTP_H
#define TX_ZMTP_H

#include <stddef.h>
#include <stdint.h>

#define ZMTP_GREETING_LEN  64
#define ZMTP_FLAG_MORE     0x01
#define ZMTP_FLAG_LONG     0x02
#define ZMTP_FLAG_COMMAND  0x04
#define ZMTP_FRAME_MAX     (256ULL << 20)   /* larger frames close the link */
#define ZMTP_COMMAND_MAX   65536            /* larger commands too */
#define ZMTP_READY_MAX     (9 + 6 + 22 + 13 + 255)  /* header, body; id 255 */
#define ZMTP_PONG_MAX      (2 + 5 + 16)

enum zmtp_err {
    ZMTP_OK = 0,
    ZMTP_E_SIGNATURE,          /* not a ZMTP greeting */
    ZMTP_E_VERSION,            /* major version < 3 */
    ZMTP_E_MECHANISM,          /* not NULL */
    ZMTP_E_FLAGS,              /* reserved flag bits, or a command with MORE
                                * or inside a multi-frame message */
    ZMTP_E_SIZE,               /* frame or command larger than allowed */
    ZMTP_E_COMMAND,            /* malformed command body */
    ZMTP_E_PROPERTY,           /* malformed READY properties */
    ZMTP_E_SOCKET_TYPE,        /* the peer cannot talk to a DEALER */
};

const char *zmtp_strerror(enum zmtp_err e);

/* Our 64-byte greeting: version 3.0, mechanism NULL, as-server 0. */
void zmtp_greeting(uint8_t out[ZMTP_GREETING_LEN]);
/* Check the peer's 64-byte greeting. */
enum zmtp_err zmtp_greeting_check(const uint8_t in[ZMTP_GREETING_LEN]);

/* Frame header for a frame of `size` bytes; flags ZMTP_FLAG_MORE and/or
 * ZMTP_FLAG_COMMAND (LONG is chosen here). Returns its length: 2 or 9. */
size_t zmtp_frame_header(uint8_t out[9], uint64_t size, unsigned flags);

/* READY command frame (header included) with Socket-Type DEALER and
 * Identity id (idlen <= 255). Returns its length (<= ZMTP_READY_MAX). */
size_t zmtp_ready(uint8_t out[ZMTP_READY_MAX], const void *id, size_t idlen);
/* PONG command frame answering a PING's context (<= 16 bytes used). */
size_t zmtp_pong(uint8_t out[ZMTP_PONG_MAX], const uint8_t *ctx, size_t len);

/* A command frame's body split into its name and data. */
struct zmtp_command {
    const uint8_t *name;
    size_t         namelen;
    const uint8_t *data;
    size_t         datalen;
};

enum zmtp_err zmtp_command_parse(const uint8_t *body, size_t len,
                                 struct zmtp_command *c);
/* 1 when the command is named `name` (a C string). */
int zmtp_command_is(const struct zmtp_command *c, const char *name);
/* Check a READY's properties: well formed, with a Socket-Type a DEALER
 * may talk to (ROUTER, DEALER, REP). */
enum zmtp_err zmtp_ready_check(const uint8_t *data, size_t len);
/* The context of a PING's data (after its 2-byte TTL); -1 if malformed. */
int zmtp_ping_context(const uint8_t *data, size_t len, const uint8_t **ctx,
                      size_t *ctxlen);

/*
 * Resumable frame reader: it is fed the byte stream in pieces of any size
 * and reports one event per call.
 *   ZMTP_EV_NEED  every byte given was consumed; feed more
 *   ZMTP_EV_HEAD  a header is complete: r->flags, r->size describe the frame
 *   ZMTP_EV_DATA  *data, *dlen are the next body bytes of that frame
 *   ZMTP_EV_END   the frame is complete (follows HEAD directly when empty)
 *   ZMTP_EV_ERROR r->err says why; the stream is unusable
 * *used is how many bytes of p the call consumed.
 */
enum zmtp_ev { ZMTP_EV_NEED, ZMTP_EV_HEAD, ZMTP_EV_DATA, ZMTP_EV_END,
               ZMTP_EV_ERROR };

struct zmtp_reader {
    uint64_t      size;        /* body bytes of the current frame */
    uint64_t      got;         /* of them delivered */
    uint8_t       hdr[9];
    uint8_t       hlen;        /* header bytes held */
    uint8_t       flags;       /* of the current frame */
    uint8_t       in_body;
    uint8_t       in_msg;      /* a MORE frame came: a message frame follows */
    enum zmtp_err err;
};

void zmtp_reader_init(struct zmtp_reader *r);
enum zmtp_ev zmtp_read(struct zmtp_reader *r, const uint8_t *p, size_t len,
                       size_t *used, const uint8_t **data, size_t *dlen);
/* Body bytes the caller read itself straight into its own storage
 * (n <= r->size - r->got, in body only). */
void zmtp_reader_skip(struct zmtp_reader *r, uint64_t n);

#endif
