/*
 * Tests for mk_server/mk_http_parser.c: a table of request heads (valid,
 * malformed and smuggling attempts) checked whole, one byte at a time and
 * split at every position, then the body decoder.
 */
#include <stdlib.h>
#include <string.h>

#include "mk_test.h"
#include "mk_server/mk_http_parser.h"

#define OK      MK_HTTP_PARSE_OK
#define ERR     MK_HTTP_PARSE_ERROR
#define PARTIAL MK_HTTP_PARSE_PARTIAL

#define M(x)    MK_HTTP_METHOD_##x
#define CL(n)   .has_cl = 1, .cl = (n)

struct head_case {
    const char *name;
    const char *req;
    size_t len;              /* 0: strlen(req) (set for requests with NUL) */
    int result;
    int status;              /* expected p->status for ERR */
    /* limits, 0 = default */
    uint32_t max_rl;
    uint32_t max_head;
    uint32_t max_hdrs;
    /* expected for OK */
    int method;
    const char *path;
    const char *query;
    int minor;
    int nhdr;
    const char *host;        /* Host value, NULL = no Host header */
    int has_cl;              /* Content-Length expected */
    uint64_t cl;
    int chunked;
    int conn;
    int expect;
    uint32_t head_len;       /* 0: the whole input */
};

#define GOOD(n, r, m, pa, q, mi, nh, h, ...) \
    { .name = n, .req = r, .result = OK, .method = M(m), .path = pa, \
      .query = q, .minor = mi, .nhdr = nh, .host = h, \
      __VA_ARGS__ }
#define BAD(n, r, st, ...) \
    { .name = n, .req = r, .result = ERR, .status = st, __VA_ARGS__ }

static const struct head_case cases[] = {
    /* ---- valid requests ---- */
    GOOD("get", "GET /index.html?x=1&y HTTP/1.1\r\nHost: example.com\r\n"
         "User-Agent: t/1\r\n\r\n",
         GET, "/index.html", "x=1&y", 1, 2, "example.com"),
    GOOD("head", "HEAD / HTTP/1.1\r\nhost: a\r\n\r\n",
         HEAD, "/", "", 1, 1, "a"),
    GOOD("post with length", "POST /form HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
         POST, "/form", "", 1, 3, "a", CL(5),
         .head_len = sizeof("POST /form HTTP/1.1\r\nHost: a\r\n"
                            "Content-Length: 5\r\nContent-Type: text/plain"
                            "\r\n\r\n") - 1),
    GOOD("content-length 0", "PUT /x HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 0\r\n\r\n", PUT, "/x", "", 1, 2, "a", CL(0)),
    GOOD("content-length max", "PUT /x HTTP/1.1\r\nHost: a\r\n"
         "Content-Length:18446744073709551615 \r\n\r\n",
         PUT, "/x", "", 1, 2, "a", CL(UINT64_MAX)),
    GOOD("chunked post", "POST /up HTTP/1.1\r\nHost: a\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         POST, "/up", "", 1, 2, "a", .chunked = 1),
    GOOD("chunked case and ows", "POST /up HTTP/1.1\r\nHost: a\r\n"
         "transfer-encoding:  ,ChunKed ,\r\n\r\n",
         POST, "/up", "", 1, 2, "a", .chunked = 1),
    GOOD("http/1.0 without host", "GET /old HTTP/1.0\r\n\r\n",
         GET, "/old", "", 0, 0, NULL),
    GOOD("http/1.2 is 1.1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
         GET, "/", "", 1, 1, "a"),
    GOOD("absolute-form", "GET http://example.com:8080/a/b?q=1 HTTP/1.1\r\n"
         "Host: example.com:8080\r\n\r\n",
         GET, "/a/b", "q=1", 1, 1, "example.com:8080"),
    GOOD("absolute-form no path", "GET HTTPS://example.com HTTP/1.1\r\n"
         "Host: example.com\r\n\r\n", GET, "", "", 1, 1, "example.com"),
    GOOD("absolute-form query only", "GET http://h?z HTTP/1.1\r\nHost: h\r\n"
         "\r\n", GET, "", "z", 1, 1, "h"),
    GOOD("options asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
         OPTIONS, "*", "", 1, 1, "a"),
    GOOD("connect authority", "CONNECT example.com:443 HTTP/1.1\r\n"
         "Host: example.com:443\r\n\r\n",
         CONNECT, "example.com:443", "", 1, 1, "example.com:443"),
    GOOD("connect ipv6", "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"
         "\r\n", CONNECT, "[::1]:8443", "", 1, 1, "[::1]:8443"),
    GOOD("leading crlf", "\r\n\r\nDELETE /r HTTP/1.1\r\nHost: a\r\n\r\n",
         DELETE, "/r", "", 1, 1, "a"),
    GOOD("pipelined", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
         "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n", GET, "/1", "", 1, 1, "a",
         .head_len = 28),
    GOOD("connection list", "GET / HTTP/1.1\r\nHost: a\r\n"
         "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
         "connection: CLOSE\r\n\r\n", GET, "/", "", 1, 4, "a",
         .conn = MK_HTTP_CONN_CLOSE | MK_HTTP_CONN_KEEPALIVE |
                 MK_HTTP_CONN_UPGRADE),
    GOOD("expect continue", "POST / HTTP/1.1\r\nHost: a\r\n"
         "Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
         POST, "/", "", 1, 3, "a", CL(3), .expect = 1),
    GOOD("expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n"
         "\r\n", POST, "/", "", 1, 2, "a"),
    GOOD("expect ignored in 1.0", "POST / HTTP/1.0\r\n"
         "Expect: 100-continue\r\n\r\n", POST, "/", "", 0, 1, NULL),
    GOOD("values trimmed, obs-text", "PATCH /p HTTP/1.1\r\nHost: \t a b \t\r\n"
         "X-Utf8: caf\xc3\xa9\r\nX-Empty:\r\nX-Ws: \t \r\n\r\n",
         PATCH, "/p", "", 1, 4, "a b"),
    GOOD("empty host allowed", "TRACE / HTTP/1.1\r\nHost:\r\n\r\n",
         TRACE, "/", "", 1, 1, ""),
    GOOD("target visible ascii", "GET /a\"<>{}|\\^`#f?q?r HTTP/1.1\r\n"
         "Host: a\r\n\r\n", GET, "/a\"<>{}|\\^`#f", "q?r", 1, 1, "a"),
    GOOD("request line at limit", "GET /abcdefghijk HTTP/1.1\r\nHost: a\r\n"
         "\r\n", GET, "/abcdefghijk", "", 1, 1, "a", .max_rl = 25),
    GOOD("head at limit", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
         GET, "/", "", 1, 1, "a", .max_head = 27),
    GOOD("headers at limit", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n",
         GET, "/", "", 1, 2, "a", .max_hdrs = 2),

    /* ---- framing / smuggling ---- */
    BAD("cl and te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n", 400),
    BAD("te and cl", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
    BAD("duplicate cl equal", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
    BAD("duplicate cl different", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Content-Length: 5\r\ncontent-length: 6\r\n\r\n", 400),
    BAD("cl list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n"
        "\r\n", 400),
    BAD("cl negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n"
        "\r\n", 400),
    BAD("cl plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n"
        "\r\n", 400),
    BAD("cl hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n"
        "\r\n", 400),
    BAD("cl empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        400),
    BAD("cl overflow", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Content-Length: 18446744073709551616\r\n\r\n", 400),
    BAD("te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n"
        "\r\n", 400),
    BAD("te gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    BAD("te chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Transfer-Encoding: chunked, gzip\r\n\r\n", 501),
    BAD("te xchunked", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Transfer-Encoding: xchunked\r\n\r\n", 501),
    BAD("te chunked params", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Transfer-Encoding: chunked;q=1\r\n\r\n", 501),
    BAD("te split over headers", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
        501),
    BAD("te empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n"
        "\r\n", 501),
    BAD("te chunked twice", "POST / HTTP/1.1\r\nHost: a\r\n"
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400),
    BAD("missing host", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400),
    BAD("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    BAD("two hosts in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n",
        400),

    /* ---- line syntax ---- */
    BAD("bare lf everywhere", "GET / HTTP/1.1\nHost: a\n\n", 400),
    BAD("bare lf in field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    BAD("bare lf terminator", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    BAD("bare lf leading", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("bare lf after leading crlf", "\r\n\nGET / HTTP/1.1\r\n\r\n", 400),
    BAD("bare cr in value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400),
    BAD("bare cr end of value", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400),
    BAD("bare cr in target", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("bare cr line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", 400),
    BAD("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        400),
    BAD("obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
        400),
    BAD("ws before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    BAD("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
    BAD("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400),
    BAD("bad name char", "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400),
    BAD("no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
    { .name = "nul in value", .req = "GET / HTTP/1.1\r\nHost: a\r\n"
      "X: a\0b\r\n\r\n", .len = sizeof("GET / HTTP/1.1\r\nHost: a\r\n"
      "X: a\0b\r\n\r\n") - 1, .result = ERR, .status = 400 },
    BAD("del in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400),
    BAD("ctl in value", "GET / HTTP/1.1\r\nHost: a\x0b\r\n\r\n", 400),
    BAD("ctl in target", "GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("del in target", "GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("utf8 in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("tab in target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400),

    /* ---- request line ---- */
    BAD("http/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    BAD("http/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    BAD("http/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
    BAD("http/1", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
    BAD("lowercase http", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("no version", "GET /\r\nHost: a\r\n\r\n", 400),
    BAD("trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    BAD("double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("lowercase get", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    BAD("unknown method", "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    BAD("method bad char", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("empty request line", "\r\r\nHost: a\r\n\r\n", 400),
    BAD("asterisk with get", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("authority with get", "GET a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        400),
    BAD("origin with connect", "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("connect no port", "CONNECT a.com HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("connect bad port", "CONNECT a.com:8x HTTP/1.1\r\nHost: a\r\n\r\n",
        400),
    BAD("connect userinfo", "CONNECT u@a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        400),
    BAD("ftp scheme", "GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("absolute no host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("relative target", "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", 400),

    /* ---- limits ---- */
    BAD("request line too long", "GET /abcdefghijk HTTP/1.1\r\nHost: a\r\n"
        "\r\n", 414, .max_rl = 24),
    BAD("request line too long, partial", "GET /aaaaaaaaaaaaaaaaaaaaaaa",
        414, .max_rl = 16),
    BAD("leading crlf count as request line", "\r\n\r\n\r\n\r\n\r\n\r\n"
        "\r\n\r\n\r\n\r\n", 414, .max_rl = 16),
    BAD("head too large", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 431,
        .max_head = 26),
    BAD("head too large, partial", "GET / HTTP/1.1\r\nHost: a\r\n"
        "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 431,
        .max_head = 64),
    BAD("too many headers", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n"
        "\r\n", 431, .max_hdrs = 2),
    BAD("too many headers, default", "GET / HTTP/1.1\r\nHost: a\r\n"
        "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\n"
        "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\n"
        "\r\n", 431, .max_hdrs = 20),

    /* ---- incomplete ---- */
    { .name = "empty", .req = "", .result = PARTIAL },
    { .name = "only crlf", .req = "\r\n\r\n", .result = PARTIAL },
    { .name = "no blank line", .req = "GET / HTTP/1.1\r\nHost: a\r\n",
      .result = PARTIAL },
    { .name = "half blank line", .req = "GET / HTTP/1.1\r\nHost: a\r\n\r",
      .result = PARTIAL },
    { .name = "half request line", .req = "GET /inde", .result = PARTIAL },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static size_t case_len(const struct head_case *c)
{
    return c->len ? c->len : strlen(c->req);
}

static void case_parser(const struct head_case *c, struct mk_http_parser *p)
{
    struct mk_http_limits l;

    mk_http_limits_default(&l);
    if (c->max_rl) {
        l.max_request_line = c->max_rl;
    }
    if (c->max_head) {
        l.max_head = c->max_head;
    }
    if (c->max_hdrs) {
        l.max_headers = c->max_hdrs;
    }
    mk_http_parser_init(p, &l);
}

static int span_eq(const char *buf, struct mk_http_span s, const char *want)
{
    return want && s.len == strlen(want) &&
           memcmp(buf + s.off, want, s.len) == 0;
}

static int req_equal(const struct mk_http_request_head *a,
                     const struct mk_http_request_head *b)
{
    uint32_t i;

    if (a->method != b->method || a->version_minor != b->version_minor ||
        a->connection != b->connection || a->chunked != b->chunked ||
        a->has_content_length != b->has_content_length ||
        a->content_length != b->content_length ||
        a->expect_continue != b->expect_continue ||
        a->header_count != b->header_count || a->head_len != b->head_len ||
        memcmp(&a->method_name, &b->method_name, sizeof(a->method_name)) ||
        memcmp(&a->target, &b->target, sizeof(a->target)) ||
        memcmp(&a->path, &b->path, sizeof(a->path)) ||
        memcmp(&a->query, &b->query, sizeof(a->query)) ||
        memcmp(a->known, b->known, sizeof(a->known))) {
        return 0;
    }
    for (i = 0; i < a->header_count; i++) {
        if (memcmp(&a->headers[i], &b->headers[i], sizeof(a->headers[i]))) {
            return 0;
        }
    }
    return 1;
}

static struct mk_http_request_head whole, piece;

static void check_case_fields(const struct head_case *c, const char *buf,
                              size_t len)
{
    struct mk_ptr host = mk_http_header_known(&whole, buf, MK_HDR_HOST);

    CHECK_EQ_INT(whole.method, c->method);
    CHECK(span_eq(buf, whole.path, c->path));
    CHECK(span_eq(buf, whole.query, c->query));
    CHECK_EQ_INT(whole.version_minor, c->minor);
    CHECK_EQ_INT(whole.header_count, c->nhdr);
    CHECK_EQ_INT(whole.head_len, c->head_len ? c->head_len : len);
    CHECK_EQ_INT(whole.has_content_length, c->has_cl);
    if (c->has_cl) {
        CHECK(whole.content_length == c->cl);
    }
    CHECK_EQ_INT(whole.chunked, c->chunked);
    CHECK_EQ_INT(whole.connection, c->conn);
    CHECK_EQ_INT(whole.expect_continue, c->expect);
    if (c->host) {
        CHECK(host.data != NULL && mk_ptr_eq(host, c->host));
    }
    else {
        CHECK(host.data == NULL);
    }
    CHECK(mk_ptr_eq(mk_http_span_ptr(buf, whole.method_name),
                    mk_http_method_name(whole.method)));
}

/* Feeds buf growing one byte at a time in a copy sized exactly, so ASan
 * catches any read past what was handed over. */
static int feed_bytewise(const struct head_case *c, const char *buf,
                         size_t len, size_t *stop_at,
                         struct mk_http_parser *p)
{
    int r = PARTIAL;
    size_t n;

    case_parser(c, p);
    for (n = 0; n <= len && r == PARTIAL; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        r = mk_http_parse_head(p, copy, n, &piece);
        free(copy);
        *stop_at = n;
    }
    return r;
}

MK_TEST(head_table)
{
    size_t i;

    for (i = 0; i < NCASES; i++) {
        const struct head_case *c = &cases[i];
        size_t len = case_len(c);
        char *buf = malloc(len ? len : 1);
        struct mk_http_parser p;
        int f0 = mk_test_failed;
        int r;

        memcpy(buf, c->req, len);
        case_parser(c, &p);
        r = mk_http_parse_head(&p, buf, len, &whole);
        CHECK_EQ_INT(r, c->result);
        if (r == ERR) {
            CHECK_EQ_INT(p.status, c->status);
            CHECK(p.error != NULL);
            /* errors are sticky until the parser is reset */
            CHECK_EQ_INT(mk_http_parse_head(&p, buf, len, &whole), ERR);
        }
        if (r == OK && c->result == OK) {
            check_case_fields(c, buf, len);
        }
        if (mk_test_failed != f0) {
            fprintf(stderr, "  in case \"%s\" (error: %s)\n", c->name,
                    p.error ? p.error : "-");
        }
        free(buf);
    }
}

/* Every case gives the same answer fed byte by byte and split anywhere. */
MK_TEST(head_resumable)
{
    size_t i, k;

    for (i = 0; i < NCASES; i++) {
        const struct head_case *c = &cases[i];
        size_t len = case_len(c);
        struct mk_http_parser p, q;
        size_t stop = 0;
        int f0 = mk_test_failed;
        int rw, rb;

        case_parser(c, &p);
        rw = mk_http_parse_head(&p, c->req, len, &whole);
        rb = feed_bytewise(c, c->req, len, &stop, &q);
        CHECK_EQ_INT(rb, rw);
        CHECK_EQ_INT(q.status, p.status);
        if (rw == OK && rb == OK) {
            CHECK_EQ_INT(stop, whole.head_len);
            CHECK(req_equal(&whole, &piece));
        }
        for (k = 0; k <= len; k++) {
            int r1;
            case_parser(c, &q);
            r1 = mk_http_parse_head(&q, c->req, k, &piece);
            if (r1 == PARTIAL) {
                r1 = mk_http_parse_head(&q, c->req, len, &piece);
            }
            CHECK_EQ_INT(r1, rw);
            CHECK_EQ_INT(q.status, p.status);
            if (rw == OK && r1 == OK) {
                CHECK(req_equal(&whole, &piece));
            }
        }
        if (mk_test_failed != f0) {
            fprintf(stderr, "  in case \"%s\"\n", c->name);
        }
    }
}

MK_TEST(pipelined_second)
{
    const char *buf = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                      "POST /2?k HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n"
                      "\r\nhiGET";
    struct mk_http_parser p;
    struct mk_http_request_head *r = &whole;
    const char *next;

    mk_http_parser_init(&p, NULL);
    CHECK_EQ_INT(mk_http_parse_head(&p, buf, strlen(buf), r), OK);
    CHECK_EQ_INT(r->head_len, 28);
    next = buf + r->head_len;
    mk_http_parser_init(&p, NULL);
    CHECK_EQ_INT(mk_http_parse_head(&p, next, strlen(next), r), OK);
    CHECK_EQ_INT(r->method, MK_HTTP_METHOD_POST);
    CHECK(span_eq(next, r->path, "/2"));
    CHECK(span_eq(next, r->query, "k"));
    CHECK(r->content_length == 2);
    CHECK_EQ_MEM(next + r->head_len, 2, "hi");
}

MK_TEST(header_lookup)
{
    const char *buf = "GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\n"
                      "x-one: 2\r\nRange: bytes=0-1\r\n\r\n";
    struct mk_http_parser p;
    struct mk_ptr v;

    mk_http_parser_init(&p, NULL);
    CHECK_EQ_INT(mk_http_parse_head(&p, buf, strlen(buf), &whole), OK);
    v = mk_http_header_get(&whole, buf, "X-ONE");
    CHECK(v.data && mk_ptr_eq(v, "1"));
    v = mk_http_header_get(&whole, buf, "missing");
    CHECK(v.data == NULL && v.len == 0);
    v = mk_http_header_known(&whole, buf, MK_HDR_RANGE);
    CHECK(v.data && mk_ptr_eq(v, "bytes=0-1"));
    CHECK_EQ_INT(whole.known[MK_HDR_RANGE], 3);
    CHECK_EQ_INT(whole.known[MK_HDR_AUTHORIZATION], -1);
    CHECK_EQ_INT(whole.headers[1].id, MK_HDR_OTHER);
    CHECK_EQ_INT(whole.headers[0].id, MK_HDR_HOST);
    CHECK(mk_http_header_known(&whole, buf, MK_HDR_OTHER).data == NULL);
    CHECK(mk_http_header_known(&whole, buf, MK_HDR_IF_RANGE).data == NULL);
    CHECK_EQ_STR(mk_http_method_name(MK_HTTP_METHOD_OPTIONS), "OPTIONS");
    CHECK_EQ_STR(mk_http_method_name(MK_HTTP_METHOD_TRACE), "TRACE");
}

MK_TEST(limits_clamped)
{
    struct mk_http_limits l;
    struct mk_http_parser p;
    char buf[4096];
    size_t n;
    int i;

    mk_http_limits_default(&l);
    CHECK_EQ_INT(l.max_request_line, 8192);
    CHECK_EQ_INT(l.max_head, 32768);
    CHECK_EQ_INT(l.max_headers, 100);
    l.max_headers = 100000;
    mk_http_parser_init(&p, &l);
    CHECK_EQ_INT(p.limits.max_headers, MK_HTTP_MAX_HEADERS_CAP);

    /* the cap holds even when the limit asked for more */
    n = (size_t) snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (i = 0; i < MK_HTTP_MAX_HEADERS_CAP; i++) {
        memcpy(buf + n, "A: b\r\n", 6);
        n += 6;
    }
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    CHECK_EQ_INT(mk_http_parse_head(&p, buf, n, &whole), ERR);
    CHECK_EQ_INT(p.status, 431);
}

/* ---- body decoder ---- */

struct sink {
    char data[512];
    size_t len;
    int fail_after;          /* on_data fails once this many bytes are in */
};

static int sink_on_data(void *ctx, const char *data, size_t n)
{
    struct sink *s = ctx;

    if (s->fail_after >= 0 && s->len + n > (size_t) s->fail_after) {
        return 1;
    }
    if (s->len + n > sizeof(s->data)) {
        return 1;
    }
    memcpy(s->data + s->len, data, n);
    s->len += n;
    return 0;
}

static void body_setup(struct mk_http_body *b, int chunked, long long cl)
{
    struct mk_http_request_head h;

    memset(&h, 0, sizeof(h));
    h.chunked = chunked;
    h.has_content_length = cl >= 0;
    h.content_length = cl >= 0 ? (uint64_t) cl : 0;
    mk_http_body_init(b, &h);
}

/* Feeds `in` cut into pieces of at most `step` bytes, the first `first`
 * bytes long; returns total consumed or -1. */
static long body_run(struct mk_http_body *b, const char *in, size_t len,
                     size_t first, size_t step, struct sink *s)
{
    size_t off = 0;
    size_t piece_len = first;

    while (off < len && !b->done) {
        size_t n = len - off < piece_len ? len - off : piece_len;
        char *copy = malloc(n ? n : 1);
        long r;

        memcpy(copy, in + off, n);
        r = mk_http_body_feed(b, copy, n, sink_on_data, s);
        free(copy);
        if (r < 0) {
            return -1;
        }
        if ((size_t) r != n && !b->done) {
            return -2;       /* must consume everything until the end */
        }
        off += (size_t) r;
        if (b->done) {
            break;
        }
        piece_len = step;
    }
    return (long) off;
}

struct body_case {
    const char *name;
    int chunked;
    long long cl;
    const char *in;
    const char *out;         /* decoded body; NULL: expect a 400 */
    size_t consumed;         /* 0: whole input */
};

static const struct body_case body_cases[] = {
    { "length", 0, 10, "0123456789GET / HTTP/1.1\r\n", "0123456789", 10 },
    { "length exact", 0, 3, "abc", "abc", 0 },
    { "chunked simple", 1, 0, "5\r\nhello\r\n0\r\n\r\n", "hello", 0 },
    { "chunked ext and trailers", 1, 0,
      "5;ext=1\r\nhello\r\n6 ; a=\"b c\"\t;x\r\n world\r\n"
      "000\r\nX-Trailer: v\r\nOther:\r\n\r\nGET /next HTTP/1.1\r\n",
      "hello world", 69 },
    { "chunked hex", 1, 0, "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n",
      "0123456789abcdefghijk", 0 },
    { "chunked stops before next", 1, 0, "1\r\nx\r\n0\r\n\r\nPOST",
      "x", 11 },
    { "not hex", 1, 0, "g\r\n", NULL, 0 },
    { "empty size", 1, 0, "\r\nhello\r\n", NULL, 0 },
    { "empty size with ext", 1, 0, ";a\r\n", NULL, 0 },
    { "space inside size", 1, 0, "1 2\r\nab\r\n", NULL, 0 },
    { "bws without ext", 1, 0, "5 \r\nhello\r\n0\r\n\r\n", NULL, 0 },
    { "size 0x prefix", 1, 0, "0x5\r\nhello\r\n", NULL, 0 },
    { "size negative", 1, 0, "-5\r\nhello\r\n", NULL, 0 },
    { "size overflow 2^64", 1, 0, "10000000000000000\r\n", NULL, 0 },
    { "size over 2^62", 1, 0, "4000000000000001\r\n", NULL, 0 },
    { "bare lf after size", 1, 0, "5\nhello\r\n0\r\n\r\n", NULL, 0 },
    { "bare cr after size", 1, 0, "5\rhello\r\n0\r\n\r\n", NULL, 0 },
    { "missing crlf after data", 1, 0, "5\r\nhelloX\r\n0\r\n\r\n", NULL, 0 },
    { "bare lf after data", 1, 0, "5\r\nhello\n0\r\n\r\n", NULL, 0 },
    { "ext with ctl", 1, 0, "5;a\x01\r\nhello\r\n", NULL, 0 },
    { "ext with nul", 1, 0, "5;a\0b\r\nhello\r\n", NULL, 0 },
    { "ext with bare lf", 1, 0, "5;a\nhello\r\n", NULL, 0 },
    { "trailer space in name", 1, 0, "0\r\nBad Name: x\r\n\r\n", NULL, 0 },
    { "trailer obs-fold", 1, 0, "0\r\nA: x\r\n y\r\n\r\n", NULL, 0 },
    { "trailer empty name", 1, 0, "0\r\n: x\r\n\r\n", NULL, 0 },
    { "trailer no colon", 1, 0, "0\r\nNoColon\r\n\r\n", NULL, 0 },
    { "trailer ctl", 1, 0, "0\r\nA: \x02\r\n\r\n", NULL, 0 },
    { "trailer bare lf", 1, 0, "0\r\nA: b\n\r\n", NULL, 0 },
    { "final bare lf", 1, 0, "0\r\n\n", NULL, 0 },
    { "final bare cr", 1, 0, "0\r\n\rX", NULL, 0 },
};

#define NBODY (sizeof(body_cases) / sizeof(body_cases[0]))

static size_t body_case_len(const struct body_case *c)
{
    /* the only case with a NUL keeps the bytes after it */
    if (strcmp(c->name, "ext with nul") == 0) {
        return sizeof("5;a\0b\r\nhello\r\n") - 1;
    }
    return strlen(c->in);
}

MK_TEST(body_table)
{
    size_t i, k;

    for (i = 0; i < NBODY; i++) {
        const struct body_case *c = &body_cases[i];
        size_t len = body_case_len(c);
        size_t want = c->consumed ? c->consumed : len;
        int f0 = mk_test_failed;

        /* whole, byte at a time, and every split point */
        for (k = 0; k <= len + 1; k++) {
            struct mk_http_body b;
            struct sink s = { .len = 0, .fail_after = -1 };
            long r;

            body_setup(&b, c->chunked, c->cl);
            if (k == 0) {
                r = body_run(&b, c->in, len, len, len, &s);
            }
            else if (k == len + 1) {
                r = body_run(&b, c->in, len, 1, 1, &s);
            }
            else {
                r = body_run(&b, c->in, len, k, len, &s);
            }
            if (c->out) {
                CHECK_EQ_INT(r, (long) want);
                CHECK_EQ_INT(b.done, 1);
                CHECK_EQ_MEM(s.data, s.len, c->out);
                CHECK(b.total == strlen(c->out));
                /* after the end nothing more is taken */
                CHECK_EQ_INT(mk_http_body_feed(&b, "x", 1, sink_on_data, &s),
                             0);
            }
            else {
                CHECK_EQ_INT(r, -1);
                CHECK_EQ_INT(b.status, 400);
                CHECK_EQ_INT(mk_http_body_feed(&b, "0", 1, sink_on_data, &s),
                             -1);
            }
        }
        if (mk_test_failed != f0) {
            fprintf(stderr, "  in body case \"%s\"\n", c->name);
        }
    }
}

MK_TEST(body_none_and_callback_error)
{
    struct mk_http_body b;
    struct sink s = { .len = 0, .fail_after = -1 };

    body_setup(&b, 0, -1);
    CHECK_EQ_INT(b.mode, MK_HTTP_BODY_NONE);
    CHECK_EQ_INT(b.done, 1);
    CHECK_EQ_INT(mk_http_body_feed(&b, "GET", 3, sink_on_data, &s), 0);
    body_setup(&b, 0, 0);
    CHECK_EQ_INT(b.mode, MK_HTTP_BODY_NONE);
    CHECK_EQ_INT(b.done, 1);

    body_setup(&b, 0, 10);
    CHECK_EQ_INT(b.mode, MK_HTTP_BODY_LENGTH);
    CHECK_EQ_INT(mk_http_body_feed(&b, "0123", 4, sink_on_data, &s), 4);
    CHECK(b.remaining == 6);
    s.fail_after = 5;
    CHECK_EQ_INT(mk_http_body_feed(&b, "4567", 4, sink_on_data, &s), -1);
    CHECK_EQ_INT(b.status, 0);

    body_setup(&b, 1, -1);
    s.len = 0;
    s.fail_after = 2;
    CHECK_EQ_INT(mk_http_body_feed(&b, "5\r\nhello\r\n", 10, sink_on_data,
                                   &s), -1);
    CHECK_EQ_INT(b.status, 0);

    /* NULL on_data discards */
    body_setup(&b, 1, -1);
    CHECK_EQ_INT(mk_http_body_feed(&b, "2\r\nab\r\n0\r\n\r\nX", 13, NULL,
                                   NULL), 12);
    CHECK_EQ_INT(b.done, 1);
    CHECK(b.total == 2);
}

MK_TEST(body_limits)
{
    struct mk_http_body b;
    char line[5000];
    long r;
    int i;

    /* a size line (with extension) over 4 KiB */
    body_setup(&b, 1, -1);
    line[0] = '1';
    line[1] = ';';
    memset(line + 2, 'a', sizeof(line) - 2);
    r = mk_http_body_feed(&b, line, sizeof(line), NULL, NULL);
    CHECK_EQ_INT(r, -1);
    CHECK_EQ_INT(b.status, 400);

    /* leading zeros are fine until the line cap */
    body_setup(&b, 1, -1);
    memset(line, '0', 4000);
    memcpy(line + 4000, "1\r\nz\r\n0\r\n\r\n", 11);
    CHECK_EQ_INT(mk_http_body_feed(&b, line, 4011, NULL, NULL), 4011);
    CHECK_EQ_INT(b.done, 1);

    /* exactly 2^62 is accepted as a size */
    body_setup(&b, 1, -1);
    CHECK_EQ_INT(mk_http_body_feed(&b, "4000000000000000\r\n", 18, NULL, NULL),
                 18);
    CHECK(b.remaining == (uint64_t) 1 << 62);

    /* trailers: many short valid lines, over 8 KiB in total */
    body_setup(&b, 1, -1);
    CHECK_EQ_INT(mk_http_body_feed(&b, "0\r\n", 3, NULL, NULL), 3);
    r = 0;
    for (i = 0; i < 1000 && r >= 0; i++) {
        r = mk_http_body_feed(&b, "X-T: 12345\r\n", 12, NULL, NULL);
    }
    CHECK_EQ_INT(r, -1);
    CHECK_EQ_INT(b.status, 400);
    CHECK(i < 1000);

    /* a trailer section just under the cap passes */
    body_setup(&b, 1, -1);
    CHECK_EQ_INT(mk_http_body_feed(&b, "0\r\n", 3, NULL, NULL), 3);
    for (i = 0; i < 600; i++) {
        CHECK_EQ_INT(mk_http_body_feed(&b, "X-T: 12345\r\n", 12, NULL, NULL),
                     12);
    }
    CHECK_EQ_INT(mk_http_body_feed(&b, "\r\n", 2, NULL, NULL), 2);
    CHECK_EQ_INT(b.done, 1);
}

/* A parsed head drives the body decoder (head_len, then the body). */
MK_TEST(head_then_body)
{
    const char *buf = "POST /u HTTP/1.1\r\nHost: a\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct mk_http_parser p;
    struct mk_http_body b;
    struct sink s = { .len = 0, .fail_after = -1 };
    size_t len = strlen(buf);
    long r;

    mk_http_parser_init(&p, NULL);
    CHECK_EQ_INT(mk_http_parse_head(&p, buf, len, &whole), OK);
    mk_http_body_init(&b, &whole);
    CHECK_EQ_INT(b.mode, MK_HTTP_BODY_CHUNKED);
    r = mk_http_body_feed(&b, buf + whole.head_len, len - whole.head_len,
                          sink_on_data, &s);
    CHECK_EQ_INT(r, 13);
    CHECK_EQ_MEM(s.data, s.len, "abc");
    mk_http_parser_init(&p, NULL);
    CHECK_EQ_INT(mk_http_parse_head(&p, buf + whole.head_len + r,
                                    len - whole.head_len - (size_t) r,
                                    &piece), OK);
    CHECK_EQ_INT(piece.method, MK_HTTP_METHOD_GET);
}

/* A body whose framing comes from elsewhere (a backend's response head):
 * fed without a callback, the decoder stops where that body ends. */
MK_TEST(body_framing_from_elsewhere)
{
    struct mk_http_body b;

    mk_http_body_init_framing(&b, MK_HTTP_BODY_LENGTH, 5);
    CHECK(!b.done);
    CHECK_EQ_INT(mk_http_body_feed(&b, "helloHTTP/1.1", 13, NULL, NULL), 5);
    CHECK(b.done);
    CHECK_EQ_INT(mk_http_body_feed(&b, "more", 4, NULL, NULL), 0);
    mk_http_body_init_framing(&b, MK_HTTP_BODY_LENGTH, 0);
    CHECK(b.done && b.mode == MK_HTTP_BODY_NONE);
    mk_http_body_init_framing(&b, MK_HTTP_BODY_NONE, 7);
    CHECK(b.done && b.mode == MK_HTTP_BODY_NONE);
    mk_http_body_init_framing(&b, MK_HTTP_BODY_CHUNKED, 0);
    CHECK_EQ_INT(mk_http_body_feed(&b, "2\r\nab\r\n", 7, NULL, NULL), 7);
    CHECK_EQ_INT(mk_http_body_feed(&b, "0\r\n\r\nHTTP", 9, NULL, NULL), 5);
    CHECK(b.done && b.total == 2);
    mk_http_body_init_framing(&b, MK_HTTP_BODY_CHUNKED, 0);
    CHECK_EQ_INT(mk_http_body_feed(&b, "zz\r\n", 4, NULL, NULL), -1);
}

int main(void)
{
    RUN(head_table);
    RUN(head_resumable);
    RUN(pipelined_second);
    RUN(header_lookup);
    RUN(limits_clamped);
    RUN(body_table);
    RUN(body_none_and_callback_error);
    RUN(body_limits);
    RUN(head_then_body);
    RUN(body_framing_from_elsewhere);
    return mk_test_done();
}
