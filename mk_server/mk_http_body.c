/*
 * Request body decoder (RFC 9112 6, 7.1): Content-Length bodies pass
 * through, chunked bodies are de-chunked one byte-resumable state at a
 * time, so any split of the input decodes the same.
 */
#include <string.h>

#include "mk_server/mk_http_parser.h"
#include "mk_server/mk_http_chars.h"

#define HTTP_CHUNK_LINE_MAX    4096            /* size line or trailer line */
#define HTTP_CHUNK_TRAILER_MAX 8192            /* whole trailer section */
#define HTTP_CHUNK_SIZE_MAX    ((uint64_t) 1 << 62)

/* Order matters: http_chunked_feed hands every state before
 * HTTP_CHUNK_TRAILER (except DATA) to http_chunk_size_byte. */
enum http_chunk_state {
    HTTP_CHUNK_SIZE = 0,     /* HEXDIG of the chunk size */
    HTTP_CHUNK_SIZE_WS,      /* BWS after the size; only ';' may follow */
    HTTP_CHUNK_EXT,          /* chunk extension, ignored up to CR */
    HTTP_CHUNK_SIZE_LF,
    HTTP_CHUNK_DATA,
    HTTP_CHUNK_DATA_CR,
    HTTP_CHUNK_DATA_LF,
    HTTP_CHUNK_TRAILER,      /* start of a trailer line or the last CRLF */
    HTTP_CHUNK_TRAILER_NAME,
    HTTP_CHUNK_TRAILER_VALUE,
    HTTP_CHUNK_TRAILER_LF,
    HTTP_CHUNK_END_LF,
};

void mk_http_body_init(struct mk_http_body *b,
                       const struct mk_http_request_head *req)
{
    b->mode = MK_HTTP_BODY_NONE;
    b->remaining = 0;
    b->total = 0;
    b->state = HTTP_CHUNK_SIZE;
    b->line_len = 0;
    b->done = 1;
    b->status = 0;
    if (req->chunked) {
        b->mode = MK_HTTP_BODY_CHUNKED;
        b->done = 0;
    }
    else if (req->has_content_length && req->content_length > 0) {
        b->mode = MK_HTTP_BODY_LENGTH;
        b->remaining = req->content_length;
        b->done = 0;
    }
}

static int http_chunk_fail(struct mk_http_body *b)
{
    b->status = 400;
    return -1;
}

/* The CRLF after chunk data, then the size line:
 * 1*HEXDIG [ BWS ";" chunk-ext ] CRLF. */
static int http_chunk_size_byte(struct mk_http_body *b, unsigned char c)
{
    switch (b->state) {
    case HTTP_CHUNK_DATA_CR:
        if (c != '\r') {
            return http_chunk_fail(b);
        }
        b->state = HTTP_CHUNK_DATA_LF;
        return 0;
    case HTTP_CHUNK_DATA_LF:
        if (c != '\n') {
            return http_chunk_fail(b);
        }
        b->state = HTTP_CHUNK_SIZE;
        b->line_len = 0;
        return 0;
    case HTTP_CHUNK_SIZE:
        if (HTTP_IS(c, HTTP_C_HEX)) {
            unsigned d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
            if (b->remaining > (HTTP_CHUNK_SIZE_MAX >> 4)) {
                return http_chunk_fail(b);
            }
            b->remaining = (b->remaining << 4) | d;
            if (b->remaining > HTTP_CHUNK_SIZE_MAX) {
                return http_chunk_fail(b);
            }
            return 0;
        }
        if (b->line_len == 1) {
            return http_chunk_fail(b);          /* empty chunk size */
        }
        if (c == ';') {
            b->state = HTTP_CHUNK_EXT;
        }
        else if (HTTP_IS_WS(c)) {
            b->state = HTTP_CHUNK_SIZE_WS;
        }
        else if (c == '\r') {
            b->state = HTTP_CHUNK_SIZE_LF;
        }
        else {
            return http_chunk_fail(b);
        }
        return 0;
    case HTTP_CHUNK_SIZE_WS:
        if (c == ';') {
            b->state = HTTP_CHUNK_EXT;
        }
        else if (!HTTP_IS_WS(c)) {
            return http_chunk_fail(b);
        }
        return 0;
    case HTTP_CHUNK_EXT:
        if (c == '\r') {
            b->state = HTTP_CHUNK_SIZE_LF;
        }
        else if (!HTTP_IS(c, HTTP_C_VALUE)) {
            return http_chunk_fail(b);
        }
        return 0;
    default:                                /* HTTP_CHUNK_SIZE_LF */
        if (c != '\n') {
            return http_chunk_fail(b);
        }
        b->line_len = 0;
        b->state = b->remaining > 0 ? HTTP_CHUNK_DATA : HTTP_CHUNK_TRAILER;
        return 0;
    }
}

/* Trailer section: *( field-line CRLF ) CRLF. Fields are checked like
 * header fields and dropped. `remaining` is free once the last chunk has
 * been read and counts the trailer bytes against their cap. */
static int http_chunk_trailer_byte(struct mk_http_body *b, unsigned char c)
{
    if (++b->remaining > HTTP_CHUNK_TRAILER_MAX) {
        return http_chunk_fail(b);
    }
    switch (b->state) {
    case HTTP_CHUNK_TRAILER:
        if (c == '\r') {
            b->state = HTTP_CHUNK_END_LF;
        }
        else if (HTTP_IS(c, HTTP_C_TCHAR)) {
            b->state = HTTP_CHUNK_TRAILER_NAME;
        }
        else {
            return http_chunk_fail(b);      /* obs-fold, empty name, CTL */
        }
        return 0;
    case HTTP_CHUNK_TRAILER_NAME:
        if (c == ':') {
            b->state = HTTP_CHUNK_TRAILER_VALUE;
        }
        else if (!HTTP_IS(c, HTTP_C_TCHAR)) {
            return http_chunk_fail(b);
        }
        return 0;
    case HTTP_CHUNK_TRAILER_VALUE:
        if (c == '\r') {
            b->state = HTTP_CHUNK_TRAILER_LF;
        }
        else if (!HTTP_IS(c, HTTP_C_VALUE)) {
            return http_chunk_fail(b);
        }
        return 0;
    case HTTP_CHUNK_TRAILER_LF:
        if (c != '\n') {
            return http_chunk_fail(b);
        }
        b->line_len = 0;
        b->state = HTTP_CHUNK_TRAILER;
        return 0;
    default:                                /* HTTP_CHUNK_END_LF */
        if (c != '\n') {
            return http_chunk_fail(b);
        }
        b->done = 1;
        return 0;
    }
}

static long http_chunked_feed(struct mk_http_body *b, const char *in,
                              size_t len,
                              int (*on_data)(void *, const char *, size_t),
                              void *ctx)
{
    size_t i = 0;
    int ret;

    while (i < len && !b->done) {
        unsigned char c = (unsigned char) in[i];

        if (b->state == HTTP_CHUNK_DATA) {
            size_t n = len - i;
            if (n > b->remaining) {
                n = (size_t) b->remaining;
            }
            if (on_data && on_data(ctx, in + i, n) != 0) {
                return -1;
            }
            b->remaining -= n;
            b->total += n;
            i += n;
            if (b->remaining == 0) {
                b->state = HTTP_CHUNK_DATA_CR;
            }
            continue;
        }
        /* line_len is 0 when data ends, and the data CRLF resets it */
        if (++b->line_len > HTTP_CHUNK_LINE_MAX) {
            return http_chunk_fail(b);
        }
        ret = b->state < HTTP_CHUNK_TRAILER ? http_chunk_size_byte(b, c)
                                            : http_chunk_trailer_byte(b, c);
        if (ret < 0) {
            return -1;
        }
        i++;
    }
    return (long) i;
}

long mk_http_body_feed(struct mk_http_body *b, const char *in, size_t len,
                       int (*on_data)(void *ctx, const char *data, size_t n),
                       void *ctx)
{
    size_t n;

    if (b->status != 0) {
        return -1;
    }
    if (b->done || b->mode == MK_HTTP_BODY_NONE) {
        return 0;
    }
    if (b->mode == MK_HTTP_BODY_CHUNKED) {
        return http_chunked_feed(b, in, len, on_data, ctx);
    }
    n = len;
    if (n > b->remaining) {
        n = (size_t) b->remaining;
    }
    if (n > 0 && on_data && on_data(ctx, in, n) != 0) {
        return -1;
    }
    b->remaining -= n;
    b->total += n;
    if (b->remaining == 0) {
        b->done = 1;
    }
    return (long) n;
}

void mk_http_body_init_framing(struct mk_http_body *b,
                               enum mk_http_body_mode mode, uint64_t length)
{
    memset(b, 0, sizeof(*b));
    b->state = HTTP_CHUNK_SIZE;
    b->done = 1;
    if (mode == MK_HTTP_BODY_CHUNKED) {
        b->mode = mode;
        b->done = 0;
    }
    else if (mode == MK_HTTP_BODY_LENGTH && length > 0) {
        b->mode = mode;
        b->remaining = length;
        b->done = 0;
    }
}
