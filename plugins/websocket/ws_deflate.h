#ifndef WS_DEFLATE_H
#define WS_DEFLATE_H

/*
 * permessage-deflate (RFC 7692) on zlib: negotiation of the
 * Sec-WebSocket-Extensions offer and per-message compression state.
 *
 * Memory model: a connection's struct ws_deflate starts with no zlib state
 * at all. Each direction's z_stream is allocated on its first message; a
 * direction that runs without context takeover frees its stream again after
 * every message, so an idle connection with no context takeover on either
 * side holds no zlib memory. Every zlib allocation goes through mk_mem and is
 * counted per connection (ws_deflate_held()).
 *
 * One struct ws_deflate belongs to one connection and so to one worker
 * thread; nothing here is shared between threads.
 */

#include <stddef.h>
#include <stdint.h>

#include "mk_core/mk_buf.h"

/* The site's policy, from config. */
struct ws_deflate_policy {
    int window_bits;          /* 9..15: the largest LZ77 window either side may use */
    int mem_level;            /* 1..9: zlib memLevel for our compressor */
    int context_takeover;     /* 0: ask for no context takeover both ways */
};

/* What was agreed for one connection. */
struct ws_deflate_params {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits;   /* 8..15; 8 is compressed with 9 (see .c) */
    int client_max_window_bits;   /* 8..15 */
};

/* Large enough for any response ws_deflate_negotiate() writes. */
#define WS_DEFLATE_RESP_MAX 160

/* Results of ws_deflate_inflate*() (ws_deflate_deflate() gives 0 or -1). */
enum {
    WS_DEFLATE_OK = 0,
    WS_DEFLATE_CORRUPT = -1,    /* not DEFLATE data: close with 1007 */
    WS_DEFLATE_TOO_BIG = -2,    /* output would exceed max: close with 1009 */
    WS_DEFLATE_NOMEM = -3       /* mk_mem failed: close with 1011 */
};

/*
 * Parses a request's Sec-WebSocket-Extensions value (all occurrences joined
 * with ", " by the caller): a comma-separated list of extensions, each a
 * token plus ";"-separated parameters whose values are a token or a
 * quoted-string (RFC 6455 9.1, optional whitespace around the separators,
 * empty list elements ignored). Names are matched exactly (lower case).
 *
 * Picks the FIRST permessage-deflate offer acceptable under `policy`. An
 * offer with an unknown or duplicate parameter or an invalid value is
 * declined (RFC 7692 5.1) and the next one is tried; other extensions are
 * ignored. An offer without client_max_window_bits is declined when
 * policy->window_bits < 15, since nothing could then keep the client's
 * window within the policy.
 *
 * On 1 writes the response value into resp (NUL-terminated; resp_size >=
 * WS_DEFLATE_RESP_MAX always suffices, a smaller buffer that cannot hold it
 * declines) and the agreed parameters into *out.
 * Returns 1 when an offer was accepted, 0 when none was (or the policy is
 * out of range), -1 when the value does not parse (the caller answers 400);
 * any syntax error anywhere in the value is -1, even after an accepted offer.
 * On 0 and -1, *out is zeroed and resp is "".
 */
int ws_deflate_negotiate(const char *value, size_t len,
                         const struct ws_deflate_policy *policy,
                         struct ws_deflate_params *out,
                         char *resp, size_t resp_size);

/*
 * zlib memory (bytes) a connection with these params holds between
 * messages once both directions have been used: zlib's documented formulas
 * (deflate (1 << (wbits + 2)) + (1 << (memLevel + 9)), inflate
 * 1 << wbits) plus zlib's state structs, the z_stream and our allocation
 * headers. A direction without context takeover counts 0: its state is
 * freed after each message. ws_deflate_memory_peak() is what a connection
 * holds while it processes a message in each direction, i.e. the transient
 * cost, which is bounded by the messages in progress, not by connections.
 */
size_t ws_deflate_memory(const struct ws_deflate_params *p, int mem_level);
size_t ws_deflate_memory_peak(const struct ws_deflate_params *p,
                              int mem_level);

/* Returns NULL when out of memory. Allocates no zlib state. p is copied.
 * mem_level outside 1..9 is clamped. */
struct ws_deflate *ws_deflate_create(const struct ws_deflate_params *p,
                                     int mem_level);
/* Frees everything, zlib state included. NULL is fine. */
void ws_deflate_destroy(struct ws_deflate *d);

/* Bytes of zlib memory d currently holds (0 when no stream is live). */
size_t ws_deflate_held(const struct ws_deflate *d);

/*
 * Decompresses one whole message (the payloads of its frames concatenated,
 * RSV1 set on its first frame), appending RFC 7692's 00 00 ff ff tail
 * itself, and appends the result to out. `max` bounds this message's output:
 * the limit is checked while inflating and WS_DEFLATE_TOO_BIG returned as
 * soon as one byte more would be produced (out then holds at most max bytes
 * of the message). Returns WS_DEFLATE_OK or a negative WS_DEFLATE_* code.
 * After an error the decompression context is gone: the caller must fail
 * the connection (RFC 7692 gives no way to resynchronise).
 */
int ws_deflate_inflate(struct ws_deflate *d, const uint8_t *in, size_t len,
                       struct mk_buf *out, size_t max);
/* The same fed in pieces (e.g. frame by frame): last = 1 on the message's
 * final piece, which may be empty. max applies to the whole message. */
int ws_deflate_inflate_piece(struct ws_deflate *d, const uint8_t *in,
                             size_t len, int last, struct mk_buf *out,
                             size_t max);

/*
 * Compresses one message and appends to out the payload to send with RSV1
 * set: the Z_SYNC_FLUSH output without its trailing 00 00 ff ff (an empty
 * message gives the single byte 00). Returns 0, or -1 (out of memory or a
 * zlib failure; out is then as it was, the compression context is gone and
 * the connection must be closed).
 */
int ws_deflate_deflate(struct ws_deflate *d, const uint8_t *in, size_t len,
                       struct mk_buf *out);

#endif
