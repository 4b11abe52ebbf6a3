/*
 * Fuzz target for mk_server/mk_http_parser.c.
 *
 * The first input byte picks the limits (small ones half of the time so
 * the 414/431 paths get exercised); the rest is the request. The head is
 * parsed whole and again split in two at a position derived from the data,
 * the first part in its own exactly-sized allocation (the parser keeps
 * offsets, so the buffer may move between calls). Both answers must agree.
 * On OK the body decoder runs over what follows, whole and split, and must
 * agree with itself too. Any disagreement traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mk_server/mk_http_parser.h"
#include "fuzz_util.h"


static struct mk_http_request_head req_a, req_b;

static void fuzz_limits(uint8_t sel, struct mk_http_limits *l)
{
    mk_http_limits_default(l);
    if (sel & 1) {
        l->max_request_line = 8 + ((sel >> 1) & 0x1f) * 3;
        l->max_head = 32 + ((sel >> 3) & 0x1f) * 16;
        l->max_headers = (sel >> 5) & 0x7;
    }
}

static int span_ok(struct mk_http_span s, uint32_t head_len)
{
    return s.off <= head_len && s.len <= head_len - s.off;
}

static void check_head(const struct mk_http_request_head *r,
                       const struct mk_http_parser *p, size_t len)
{
    uint32_t i;

    FUZZ_CHECK(r->head_len >= 4 && r->head_len <= len);
    FUZZ_CHECK(r->head_len <= p->limits.max_head);
    FUZZ_CHECK(r->header_count <= p->limits.max_headers);
    FUZZ_CHECK((unsigned) r->method < MK_HTTP_METHOD_COUNT);
    FUZZ_CHECK(r->version_minor == 0 || r->version_minor == 1);
    FUZZ_CHECK(!(r->chunked && r->has_content_length));
    FUZZ_CHECK(span_ok(r->target, r->head_len));
    FUZZ_CHECK(span_ok(r->path, r->head_len));
    FUZZ_CHECK(span_ok(r->query, r->head_len));
    for (i = 0; i < r->header_count; i++) {
        FUZZ_CHECK(span_ok(r->headers[i].name, r->head_len));
        FUZZ_CHECK(span_ok(r->headers[i].value, r->head_len));
        FUZZ_CHECK(r->headers[i].name.len > 0);
    }
    for (i = 0; i < MK_HDR_COUNT; i++) {
        FUZZ_CHECK(r->known[i] < (int) r->header_count);
    }
}

#define SPAN_EQ(x, y)  ((x).off == (y).off && (x).len == (y).len)

static int same_head(const struct mk_http_request_head *a,
                     const struct mk_http_request_head *b)
{
    uint32_t i;

    if (a->method != b->method || !SPAN_EQ(a->method_name, b->method_name) ||
        !SPAN_EQ(a->target, b->target) || !SPAN_EQ(a->path, b->path) ||
        !SPAN_EQ(a->query, b->query) ||
        a->version_minor != b->version_minor ||
        a->connection != b->connection || a->chunked != b->chunked ||
        a->has_content_length != b->has_content_length ||
        a->content_length != b->content_length ||
        a->expect_continue != b->expect_continue ||
        memcmp(a->known, b->known, sizeof(a->known)) != 0 ||
        a->header_count != b->header_count || a->head_len != b->head_len) {
        return 0;
    }
    for (i = 0; i < a->header_count; i++) {
        if (!SPAN_EQ(a->headers[i].name, b->headers[i].name) ||
            !SPAN_EQ(a->headers[i].value, b->headers[i].value) ||
            a->headers[i].id != b->headers[i].id) {
            return 0;
        }
    }
    return 1;
}

struct body_sum {
    uint64_t hash;
    uint64_t bytes;
};

static int body_on_data(void *ctx, const char *data, size_t n)
{
    struct body_sum *s = ctx;
    size_t i;

    FUZZ_CHECK(n > 0);
    for (i = 0; i < n; i++) {
        s->hash = (s->hash ^ (uint8_t) data[i]) * 1099511628211ULL;
    }
    s->bytes += n;
    return 0;
}

/* Feeds `in` in pieces (first piece `first` bytes); returns consumed or -1. */
static long body_run(const struct mk_http_request_head *r, const char *in,
                     size_t len, size_t first, struct mk_http_body *b,
                     struct body_sum *s)
{
    size_t off = 0;
    size_t piece = first;

    mk_http_body_init(b, r);
    while (off < len && !b->done) {
        size_t n = len - off < piece ? len - off : piece;
        long got = mk_http_body_feed(b, in + off, n, body_on_data, s);
        if (got < 0) {
            FUZZ_CHECK(b->status == 400);
            return -1;
        }
        FUZZ_CHECK((size_t) got <= n);
        FUZZ_CHECK((size_t) got == n || b->done);
        off += (size_t) got;
        piece = len;
    }
    return (long) off;
}

static void fuzz_body(const struct mk_http_request_head *r, const char *in,
                      size_t len, size_t split)
{
    struct mk_http_body b1, b2;
    struct body_sum s1 = { 14695981039346656037ULL, 0 };
    struct body_sum s2 = { 14695981039346656037ULL, 0 };
    long c1 = body_run(r, in, len, len ? len : 1, &b1, &s1);
    long c2 = body_run(r, in, len, split ? split : 1, &b2, &s2);

    FUZZ_CHECK(c1 == c2);
    FUZZ_CHECK(b1.done == b2.done && b1.status == b2.status);
    if (c1 >= 0) {
        FUZZ_CHECK(s1.hash == s2.hash && s1.bytes == s2.bytes);
        FUZZ_CHECK(b1.total == s1.bytes);
        if (r->has_content_length && !r->chunked) {
            FUZZ_CHECK(b1.total <= r->content_length);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mk_http_limits limits;
    struct mk_http_parser p1, p2;
    const char *buf;
    size_t len, split;
    char *part;
    int r1, r2;

    if (size < 1) {
        return 0;
    }
    fuzz_limits(data[0], &limits);
    buf = (const char *) data + 1;
    len = size - 1;
    split = (data[0] * 2654435761u + len) % (len + 1);

    mk_http_parser_init(&p1, &limits);
    r1 = mk_http_parse_head(&p1, buf, len, &req_a);
    FUZZ_CHECK(r1 == MK_HTTP_PARSE_OK || r1 == MK_HTTP_PARSE_PARTIAL ||
               r1 == MK_HTTP_PARSE_ERROR);
    if (r1 == MK_HTTP_PARSE_ERROR) {
        FUZZ_CHECK(p1.status == 400 || p1.status == 414 ||
                   p1.status == 431 || p1.status == 501 || p1.status == 505);
        FUZZ_CHECK(p1.error != NULL);
    }
    else {
        FUZZ_CHECK(p1.status == 0);
    }

    mk_http_parser_init(&p2, &limits);
    part = malloc(split ? split : 1);
    if (!part) {
        return 0;
    }
    memcpy(part, buf, split);
    r2 = mk_http_parse_head(&p2, part, split, &req_b);
    free(part);
    if (r2 == MK_HTTP_PARSE_PARTIAL) {
        r2 = mk_http_parse_head(&p2, buf, len, &req_b);
    }
    FUZZ_CHECK(r1 == r2);
    FUZZ_CHECK(p1.status == p2.status);

    if (r1 == MK_HTTP_PARSE_OK) {
        check_head(&req_a, &p1, len);
        FUZZ_CHECK(same_head(&req_a, &req_b));
        fuzz_body(&req_a, buf + req_a.head_len, len - req_a.head_len,
                  split % (len - req_a.head_len + 1));
    }
    return 0;
}
