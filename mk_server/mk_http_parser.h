#ifndef MK_SERVER_HTTP_PARSER_H
#define MK_SERVER_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include "mk_core/mk_string.h"

/*
 * HTTP/1.1 request head parser (RFC 9112) and request body decoder.
 *
 * Zero-copy: every parsed field is an offset + length into the caller's
 * read buffer (offsets, not pointers, so the buffer may be reallocated
 * between calls). The parser never writes a response; on error it sets
 * `status` to the HTTP status the server should answer with.
 *
 * Resumable: call mk_http_parse_head() again with the same buffer start
 * and more bytes; it resumes scanning where it stopped and only decodes the
 * head once the blank line has arrived, so feeding one byte at a time costs
 * O(n) in total. Pipelining: `head_len` tells where the next message (the
 * body, or the next request) begins.
 *
 * What is rejected, and with which status:
 *   400  malformed request line or header line, bare CR or bare LF as a line
 *        end, NUL or other control bytes, obs-fold (a line starting with SP
 *        or HTAB), whitespace between a field name and its colon, empty
 *        field name, missing Host in HTTP/1.1, more than one Host,
 *        Content-Length that is not 1*DIGIT or overflows, more than one
 *        Content-Length (even with equal values), Content-Length together
 *        with Transfer-Encoding, Transfer-Encoding in HTTP/1.0, a request
 *        target that is not origin-form/absolute-form/authority-form(CONNECT)
 *        /asterisk-form(OPTIONS).
 *   414  request line longer than limits.max_request_line.
 *   431  head longer than limits.max_head, or more than limits.max_headers
 *        fields.
 *   501  unknown method (any token not in enum mk_http_method), or a
 *        Transfer-Encoding whose final coding is not exactly "chunked"
 *        (case-insensitive) or that lists any other coding.
 *   505  HTTP major version other than 1 ("HTTP/2.0", "HTTP/0.9").
 * HTTP/1.x minor versions above 1 are accepted and treated as 1.1.
 */

enum mk_http_method {
    MK_HTTP_METHOD_GET = 0,
    MK_HTTP_METHOD_HEAD,
    MK_HTTP_METHOD_POST,
    MK_HTTP_METHOD_PUT,
    MK_HTTP_METHOD_DELETE,
    MK_HTTP_METHOD_OPTIONS,
    MK_HTTP_METHOD_PATCH,
    MK_HTTP_METHOD_CONNECT,
    MK_HTTP_METHOD_TRACE,
    MK_HTTP_METHOD_COUNT
};

/* Headers the server looks at, recognised while parsing (case-insensitive
 * name match) so nobody searches the list again. */
enum mk_http_header_id {
    MK_HDR_OTHER = 0,
    MK_HDR_HOST,
    MK_HDR_CONNECTION,
    MK_HDR_CONTENT_LENGTH,
    MK_HDR_TRANSFER_ENCODING,
    MK_HDR_EXPECT,
    MK_HDR_UPGRADE,
    MK_HDR_RANGE,
    MK_HDR_IF_MODIFIED_SINCE,
    MK_HDR_IF_NONE_MATCH,
    MK_HDR_IF_RANGE,
    MK_HDR_AUTHORIZATION,
    MK_HDR_USER_AGENT,
    MK_HDR_REFERER,
    MK_HDR_CONTENT_TYPE,
    MK_HDR_COUNT
};

/* A slice of the read buffer: data is at buf + off. */
struct mk_http_span {
    uint32_t off;
    uint32_t len;
};

struct mk_http_header {
    struct mk_http_span name;
    struct mk_http_span value;     /* leading/trailing SP/HTAB removed */
    enum mk_http_header_id id;
};

#define MK_HTTP_MAX_HEADERS_CAP 128    /* hard cap of limits.max_headers */

struct mk_http_limits {
    uint32_t max_request_line;     /* default 8192 */
    uint32_t max_head;             /* request line + headers; default 32768 */
    uint32_t max_headers;          /* default 100, at most the cap above */
};

/* Connection header summary */
#define MK_HTTP_CONN_CLOSE      0x1
#define MK_HTTP_CONN_KEEPALIVE  0x2
#define MK_HTTP_CONN_UPGRADE    0x4

struct mk_http_request_head {
    enum mk_http_method method;
    struct mk_http_span method_name;
    struct mk_http_span target;    /* the raw request-target */
    struct mk_http_span path;      /* target up to '?' (not decoded); for
                                    * absolute-form the part after the
                                    * authority, empty (meaning "/") if none;
                                    * the whole target for "*" and CONNECT */
    struct mk_http_span query;     /* after '?', len 0 if none */
    int      version_minor;        /* 0 or 1 (higher minors clamp to 1) */
    int      connection;           /* MK_HTTP_CONN_* flags */
    int      chunked;              /* Transfer-Encoding: chunked */
    int      has_content_length;
    uint64_t content_length;
    int      expect_continue;      /* Expect: 100-continue */
    /* index into headers[] of each known header's first occurrence, -1 */
    int16_t  known[MK_HDR_COUNT];
    uint32_t header_count;
    struct mk_http_header headers[MK_HTTP_MAX_HEADERS_CAP];
    uint32_t head_len;             /* bytes from buffer start through CRLFCRLF */
};

enum mk_http_parse_result {
    MK_HTTP_PARSE_ERROR   = -1,
    MK_HTTP_PARSE_OK      = 0,
    MK_HTTP_PARSE_PARTIAL = 1,
};

struct mk_http_parser {
    struct mk_http_limits limits;
    uint32_t scan;                 /* resume point of the end-of-head search */
    int      status;               /* HTTP status to answer after ERROR */
    const char *error;             /* short static reason for the log */
};

void mk_http_limits_default(struct mk_http_limits *limits);
/* Resets for a new request (keeps limits). */
void mk_http_parser_init(struct mk_http_parser *p,
                         const struct mk_http_limits *limits);
/*
 * Parses the head at the start of buf[0..len). OK fills *req (head_len set),
 * PARTIAL asks for more bytes, ERROR sets p->status and p->error.
 * Leading empty lines (CRLF) before the request line are skipped, as RFC
 * 9112 section 2.2 allows; they count in head_len.
 */
enum mk_http_parse_result mk_http_parse_head(struct mk_http_parser *p,
                                             const char *buf, size_t len,
                                             struct mk_http_request_head *req);

static inline struct mk_ptr mk_http_span_ptr(const char *buf,
                                             struct mk_http_span s)
{
    return mk_ptr_make(buf + s.off, s.len);
}

/* Value of the first header named `name` (case-insensitive), or a NULL
 * slice. */
struct mk_ptr mk_http_header_get(const struct mk_http_request_head *req,
                                 const char *buf, const char *name);
struct mk_ptr mk_http_header_known(const struct mk_http_request_head *req,
                                   const char *buf, enum mk_http_header_id id);

const char *mk_http_method_name(enum mk_http_method m);

/* ---- Request body -------------------------------------------------------
 *
 * Content-Length bodies are passed through; chunked bodies are de-chunked
 * (chunk extensions ignored, trailers parsed and discarded). Chunk sizes
 * must be 1*HEXDIG without overflow past 2^62, chunk data must be followed
 * by CRLF, lines end with CRLF only: anything else is a 400.
 */
enum mk_http_body_mode {
    MK_HTTP_BODY_NONE = 0,
    MK_HTTP_BODY_LENGTH,
    MK_HTTP_BODY_CHUNKED,
};

struct mk_http_body {
    enum mk_http_body_mode mode;
    uint64_t remaining;            /* LENGTH: bytes left; CHUNKED: in chunk */
    uint64_t total;                /* decoded bytes so far */
    int      state;                /* internal chunked state */
    uint32_t line_len;             /* internal: bytes of the current line */
    int      done;                 /* whole body (and trailers) consumed */
    int      status;               /* HTTP status after an error */
};

/* Sets up decoding from a parsed head (mode NONE, done=1 if no body). */
void mk_http_body_init(struct mk_http_body *b,
                       const struct mk_http_request_head *req);

/*
 * Consumes input from in[0..len) and calls on_data for each run of body
 * bytes (pointing into `in`; no copy). Stops at the end of the body, so
 * bytes of a pipelined next request are not consumed. Returns the number of
 * input bytes consumed (>= 0), or -1 on a framing error (b->status = 400)
 * or when on_data returns non-zero (b->status untouched).
 */
long mk_http_body_feed(struct mk_http_body *b, const char *in, size_t len,
                       int (*on_data)(void *ctx, const char *data, size_t n),
                       void *ctx);

/* Sets up the same decoder for a body whose framing is known another way
 * (a response head from a backend): LENGTH with `length` bytes (0: no
 * body), CHUNKED, or NONE. Fed with on_data == NULL it finds where that
 * body ends, so a proxy forwards nothing past it. */
void mk_http_body_init_framing(struct mk_http_body *b,
                               enum mk_http_body_mode mode, uint64_t length);

#endif
