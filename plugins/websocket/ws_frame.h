#ifndef WS_FRAME_H
#define WS_FRAME_H

/*
 * RFC 6455 framing, I/O-free: the header parser, payload (un)masking, the
 * server's frame header writer and close-frame payloads. Nothing here
 * allocates, keeps state between calls or reads past the `n`/`len` it is
 * given; every pointer is the caller's.
 */
#include <stddef.h>
#include <stdint.h>

enum ws_opcode { WS_OP_CONT = 0x0, WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2,
                 WS_OP_CLOSE = 0x8, WS_OP_PING = 0x9, WS_OP_PONG = 0xA };

#define WS_FRAME_OK       0     /* header complete */
#define WS_FRAME_MORE     1     /* need more bytes */
#define WS_FRAME_PROTOCOL (-1)  /* protocol error: close with 1002 */

#define WS_HEAD_MAX       14    /* longest header: 2 + 8 + 4 (mask) */
#define WS_CONTROL_MAX    125   /* control frame payload limit (5.5) */
#define WS_RSV1           4     /* struct ws_frame.rsv bit: permessage-deflate */

struct ws_frame {
    uint8_t fin;         /* 0/1 */
    uint8_t rsv;         /* the three RSV bits as 0..7 (RSV1 = 4) */
    uint8_t opcode;
    uint8_t masked;      /* 0/1; mask[] is zero when clear */
    uint8_t mask[4];
    uint64_t len;        /* payload length, < 2^63 */
    size_t head_len;     /* 2..14: the payload starts at buf + head_len */
};

/* Parses the frame header at buf[0..n). Returns WS_FRAME_OK and fills f,
 * WS_FRAME_MORE, or WS_FRAME_PROTOCOL for: a reserved opcode (3-7, B-F), a
 * control frame (opcode >= 8) with FIN clear or a length > 125, a 64-bit
 * length with the most significant bit set, or a length not in its minimal
 * encoding (126 form carrying < 126, 127 form carrying < 65536; RFC 6455
 * 5.2 says the minimal number of bytes MUST be used). It does NOT judge
 * RSV bits or masking: the caller knows the negotiated extensions and that
 * clients must mask.
 *
 * An error is reported as soon as the bytes that show it are in (a bad
 * opcode after one byte), so a prefix that gives PROTOCOL gives it for any
 * longer input too, and every prefix of a valid header gives MORE. f is
 * written only on WS_FRAME_OK. */
int ws_frame_parse(const uint8_t *buf, size_t n, struct ws_frame *f);

/* Unmasks (or masks) len bytes in place; `offset` is how many payload bytes
 * of this frame came before p, so a payload can be unmasked piece by
 * piece as it arrives. Works a 64-bit word at a time; p may have any
 * alignment (it steps to an 8-byte boundary first). */
void ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset);

/* Writes an unmasked server frame header into out (>= 10 bytes) and
 * returns its length (2, 4 or 10), always the minimal encoding. rsv1 sets
 * RSV1 (permessage-deflate). len must be < 2^63. */
size_t ws_frame_head(uint8_t *out, int fin, int rsv1, int opcode, uint64_t len);

/* 1 if a close code is valid on the wire: 1000-1003, 1007-1011 (also
 * 1012-1014 as registered by IANA), or 3000-4999. 1004, 1005, 1006, 1015
 * and anything else are not. */
int ws_close_code_valid(unsigned code);

/* Builds a close payload (2-byte big-endian code + reason, reason cut to
 * fit 123 bytes at a UTF-8 character boundary) into out[125]; returns its
 * length. reason may be NULL (no reason). code 0 means "no status code"
 * and gives the empty payload (0), the reply to a close that had none. */
size_t ws_close_payload(uint8_t *out, unsigned code, const char *reason);

/* A node's `websocket/close` body (docs/zmq-gateway.md): a 2-byte
 * big-endian close code, then an optional UTF-8 reason. Returns the code
 * to close with (1000 for an empty body), or -1 when the body is one
 * byte, the code is not valid on the wire (ws_close_code_valid) or the
 * reason is not UTF-8. reason (WS_CONTROL_MAX bytes) gets the reason NUL
 * terminated, at most WS_CONTROL_MAX - 1 bytes of it, for
 * ws_close_payload to cut to fit; an embedded NUL ends it early. */
int ws_close_from_node(const uint8_t *p, size_t len, char *reason);

#endif
