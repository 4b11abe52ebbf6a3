/*
 * HTTP/1.1 request head parser (RFC 9112); the body decoder declared in
 * the same header lives in mk_http_body.c.
 *
 * The head is handled in two steps. A cheap scan finds the blank line that
 * ends the head, checking the size limits and that every LF is preceded by
 * a CR as it goes; it remembers how far it got in p->scan so a head that
 * arrives in pieces is scanned once in total. When the blank line is there,
 * one decoding pass validates the complete head and records offsets.
 *
 * The rules are strict on purpose: anything that two HTTP implementations
 * could frame differently (bare CR/LF, obs-fold, duplicate or conflicting
 * Content-Length / Transfer-Encoding, whitespace before a colon) is refused,
 * because a front-end that is lenient where its upstream is strict is how
 * request smuggling happens.
 */
#include <string.h>

#include "mk_server/mk_http_parser.h"
#include "mk_server/mk_http_chars.h"

/* HTTP_C_* flags of each octet (mk_http_chars.h). */
const uint8_t mk_http_chars[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     2,  7,  6,  7,  7,  7,  7,  7,  6,  6,  7,  7,  6,  7,  7,  6,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  6,  6,  6,  6,  6,
     6, 15, 15, 15, 15, 15, 15,  7,  7,  7,  7,  7,  7,  7,  7,  7,
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  6,  6,  7,  7,
     7, 15, 15, 15, 15, 15, 15,  7,  7,  7,  7,  7,  7,  7,  7,  7,
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  7,  6,  7,  0,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
};


/*
 * Word-at-a-time skipping for the long runs (targets, field values): a
 * word with no special byte is skipped whole and only words holding one
 * are looked at byte by byte. The bit tricks are exact for "does any byte
 * match", which is all that is asked of them.
 */
#define HTTP_ONES   0x0101010101010101ULL
#define HTTP_HIGHS  0x8080808080808080ULL

static inline uint64_t http_load64(const char *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

/* Any byte below n (n <= 0x80)? Bytes >= 0x80 never count. */
static inline uint64_t http_has_less(uint64_t w, uint8_t n)
{
    return (w - HTTP_ONES * n) & ~w & HTTP_HIGHS;
}

/* Any byte equal to b? */
static inline uint64_t http_has_byte(uint64_t w, uint8_t b)
{
    uint64_t x = w ^ (HTTP_ONES * b);

    return (x - HTTP_ONES) & ~x & HTTP_HIGHS;
}

/* Any byte outside 0x21..0x7E? (0x7E + 1 cannot carry.) */
static inline uint64_t http_has_nonvisible(uint64_t w)
{
    return http_has_less(w, 0x21) | (((w + HTTP_ONES) | w) & HTTP_HIGHS);
}

/*
 * Returns the offset of the first octet at or after i that is not of class
 * `cls` (HTTP_C_VALUE or HTTP_C_TARGET; a constant at every call, so the
 * test folds away). Words are read only while they end at or before `end`;
 * the line's CR lies at or before `end` and ends the byte loop by itself.
 * On little-endian machines the lowest flagged bit names the first special
 * byte exactly (false flags only appear above a true one), so only that
 * byte is looked at: a HTAB inside a value is stepped over, anything else
 * ends the run.
 */
static inline __attribute__((always_inline))
uint32_t http_skip_class(const char *buf, uint32_t i, uint32_t end,
                         uint8_t cls)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (i + 8 <= end) {
        uint64_t w = http_load64(buf + i);
        uint64_t special = cls == HTTP_C_VALUE
            ? http_has_less(w, 0x20) | http_has_byte(w, 0x7f)
            : http_has_nonvisible(w);
        if (special == 0) {
            i += 8;
            continue;
        }
        i += (uint32_t) __builtin_ctzll(special) >> 3;
        if (!HTTP_IS(buf[i], cls)) {
            return i;
        }
        i++;
    }
#endif
    while (HTTP_IS(buf[i], cls)) {
        i++;
    }
    return i;
}

struct http_name {
    const char *name;
    uint8_t len;
};

static const struct http_name http_methods[MK_HTTP_METHOD_COUNT] = {
    [MK_HTTP_METHOD_GET]     = { "GET", 3 },
    [MK_HTTP_METHOD_HEAD]    = { "HEAD", 4 },
    [MK_HTTP_METHOD_POST]    = { "POST", 4 },
    [MK_HTTP_METHOD_PUT]     = { "PUT", 3 },
    [MK_HTTP_METHOD_DELETE]  = { "DELETE", 6 },
    [MK_HTTP_METHOD_OPTIONS] = { "OPTIONS", 7 },
    [MK_HTTP_METHOD_PATCH]   = { "PATCH", 5 },
    [MK_HTTP_METHOD_CONNECT] = { "CONNECT", 7 },
    [MK_HTTP_METHOD_TRACE]   = { "TRACE", 5 },
};

/* Lower-case names; matched case-insensitively (RFC 9110 5.1). */
static const struct http_name http_known_headers[MK_HDR_COUNT] = {
    [MK_HDR_HOST]              = { "host", 4 },
    [MK_HDR_CONNECTION]        = { "connection", 10 },
    [MK_HDR_CONTENT_LENGTH]    = { "content-length", 14 },
    [MK_HDR_TRANSFER_ENCODING] = { "transfer-encoding", 17 },
    [MK_HDR_EXPECT]            = { "expect", 6 },
    [MK_HDR_UPGRADE]           = { "upgrade", 7 },
    [MK_HDR_RANGE]             = { "range", 5 },
    [MK_HDR_IF_MODIFIED_SINCE] = { "if-modified-since", 17 },
    [MK_HDR_IF_NONE_MATCH]     = { "if-none-match", 13 },
    [MK_HDR_IF_RANGE]          = { "if-range", 8 },
    [MK_HDR_AUTHORIZATION]     = { "authorization", 13 },
    [MK_HDR_USER_AGENT]        = { "user-agent", 10 },
    [MK_HDR_REFERER]           = { "referer", 7 },
    [MK_HDR_CONTENT_TYPE]      = { "content-type", 12 },
};

/* What the framing headers said, summed over all their occurrences. */
struct http_framing {
    uint32_t hosts;
    int te_seen;
    uint32_t te_chunked;     /* "chunked" elements */
    uint32_t te_other;       /* any other coding */
};

static int http_fail(struct mk_http_parser *p, int status, const char *why)
{
    p->status = status;
    p->error = why;
    return -1;
}

static struct mk_http_span http_span(uint32_t off, uint32_t len)
{
    struct mk_http_span s = { off, len };
    return s;
}

void mk_http_limits_default(struct mk_http_limits *limits)
{
    limits->max_request_line = 8192;
    limits->max_head = 32768;
    limits->max_headers = 100;
}

void mk_http_parser_init(struct mk_http_parser *p,
                         const struct mk_http_limits *limits)
{
    if (limits) {
        p->limits = *limits;
    }
    else {
        mk_http_limits_default(&p->limits);
    }
    if (p->limits.max_headers > MK_HTTP_MAX_HEADERS_CAP) {
        p->limits.max_headers = MK_HTTP_MAX_HEADERS_CAP;
    }
    p->scan = 0;
    p->status = 0;
    p->error = NULL;
}

const char *mk_http_method_name(enum mk_http_method m)
{
    if ((unsigned) m >= MK_HTTP_METHOD_COUNT) {
        return "UNKNOWN";
    }
    return http_methods[m].name;
}

/* Method tokens are case-sensitive (RFC 9110 9.1); -1 if not one of ours. */
static int http_method_lookup(const char *s, uint32_t len)
{
    int i;

    for (i = 0; i < MK_HTTP_METHOD_COUNT; i++) {
        if (http_methods[i].len == len &&
            memcmp(http_methods[i].name, s, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* Field names are tchars, and among tchars only 'A'-'Z' turn into a
 * lower-case letter or '-' when bit 0x20 is set: an exact case fold for
 * the names we look for. */
static int http_name_is(const char *s, uint32_t len, enum mk_http_header_id id)
{
    const struct http_name *h = &http_known_headers[id];
    uint32_t i;

    if (h->len != len) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if ((s[i] | 0x20) != h->name[i]) {
            return 0;
        }
    }
    return 1;
}

static enum mk_http_header_id http_header_lookup(const char *s, uint32_t len)
{
    enum mk_http_header_id a = MK_HDR_OTHER;
    enum mk_http_header_id b = MK_HDR_OTHER;

    switch (len) {
    case 4:  a = MK_HDR_HOST; break;
    case 5:  a = MK_HDR_RANGE; break;
    case 6:  a = MK_HDR_EXPECT; break;
    case 7:  a = MK_HDR_UPGRADE; b = MK_HDR_REFERER; break;
    case 8:  a = MK_HDR_IF_RANGE; break;
    case 10: a = MK_HDR_CONNECTION; b = MK_HDR_USER_AGENT; break;
    case 12: a = MK_HDR_CONTENT_TYPE; break;
    case 13: a = MK_HDR_IF_NONE_MATCH; b = MK_HDR_AUTHORIZATION; break;
    case 14: a = MK_HDR_CONTENT_LENGTH; break;
    case 17: a = MK_HDR_TRANSFER_ENCODING; b = MK_HDR_IF_MODIFIED_SINCE; break;
    default: return MK_HDR_OTHER;
    }
    if (http_name_is(s, len, a)) {
        return a;
    }
    if (b != MK_HDR_OTHER && http_name_is(s, len, b)) {
        return b;
    }
    return MK_HDR_OTHER;
}

/*
 * Next non-empty element of a comma-separated list (RFC 9110 5.6.1), OWS
 * trimmed. Empty elements ("a, ,b") are legal and skipped. Returns 0 at the
 * end of the list.
 */
static int http_list_next(struct mk_ptr list, size_t *pos, struct mk_ptr *item)
{
    while (*pos < list.len) {
        size_t start = *pos;
        const char *comma = memchr(list.data + start, ',', list.len - start);
        size_t end = comma ? (size_t) (comma - list.data) : list.len;

        *pos = end + 1;
        *item = mk_ptr_trim(mk_ptr_make(list.data + start, end - start));
        if (item->len > 0) {
            return 1;
        }
    }
    return 0;
}

/* CONNECT takes only authority-form, host ":" port (RFC 9112 3.2.3). */
static int http_parse_authority_form(struct mk_http_parser *p,
                                     const char *t, uint32_t len)
{
    uint32_t i;
    uint32_t colon = len;

    for (i = 0; i < len; i++) {
        if (t[i] == '/' || t[i] == '?' || t[i] == '#' || t[i] == '@') {
            return http_fail(p, 400, "CONNECT target is not host:port");
        }
        if (t[i] == ':') {
            colon = i;
        }
    }
    if (colon == 0 || colon + 1 >= len) {
        return http_fail(p, 400, "CONNECT target is not host:port");
    }
    for (i = colon + 1; i < len; i++) {
        if (t[i] < '0' || t[i] > '9') {
            return http_fail(p, 400, "CONNECT target has a bad port");
        }
    }
    return 0;
}

/*
 * Classifies the request-target and splits path and query. For
 * absolute-form the path starts at the first '/' after the authority; a
 * target without one ("http://host" or "http://host?q") gets an empty path
 * span, which the server must treat as "/" (RFC 9110 4.2.3). For "*" and
 * for CONNECT the path is the whole target.
 */
static int http_parse_target(struct mk_http_parser *p, const char *buf,
                             struct mk_http_request_head *req)
{
    const char *t = buf + req->target.off;
    uint32_t len = req->target.len;
    uint32_t end = req->target.off + len;
    uint32_t path;
    const char *q;

    req->query = http_span(end, 0);
    if (req->method == MK_HTTP_METHOD_CONNECT) {
        req->path = req->target;
        return http_parse_authority_form(p, t, len);
    }
    if (t[0] == '/') {
        path = req->target.off;
    }
    else if (len == 1 && t[0] == '*') {
        if (req->method != MK_HTTP_METHOD_OPTIONS) {
            return http_fail(p, 400, "asterisk-form target without OPTIONS");
        }
        req->path = req->target;
        return 0;
    }
    else {
        uint32_t a;
        if (len >= 7 && mk_str_case_eq(t, 7, "http://", 7)) {
            a = 7;
        }
        else if (len >= 8 && mk_str_case_eq(t, 8, "https://", 8)) {
            a = 8;
        }
        else {
            return http_fail(p, 400, "malformed request target");
        }
        path = a;
        while (path < len && t[path] != '/' && t[path] != '?') {
            path++;
        }
        if (path == a) {
            return http_fail(p, 400, "absolute-form target without host");
        }
        path += req->target.off;
    }
    q = memchr(buf + path, '?', end - path);
    if (q) {
        uint32_t qoff = (uint32_t) (q - buf);
        req->path = http_span(path, qoff - path);
        req->query = http_span(qoff + 1, end - qoff - 1);
    }
    else {
        req->path = http_span(path, end - path);
    }
    return 0;
}

/* request-line = method SP request-target SP HTTP-version; `end` is the
 * offset of its CR. Single spaces only: RFC 9112 3 lets a server accept
 * more, but a strict front-end cannot be fooled by a lenient backend. */
static int http_parse_request_line(struct mk_http_parser *p, const char *buf,
                                   uint32_t pos, uint32_t end,
                                   struct mk_http_request_head *req)
{
    const char *v;
    uint32_t i = pos;
    int m;

    while (i < end && HTTP_IS(buf[i], HTTP_C_TCHAR)) {
        i++;
    }
    if (i == pos || i == end || buf[i] != ' ') {
        return http_fail(p, 400, "malformed method");
    }
    req->method_name = http_span(pos, i - pos);
    m = http_method_lookup(buf + pos, i - pos);

    pos = ++i;
    i = http_skip_class(buf, i, end, HTTP_C_TARGET);
    if (i == pos || i == end || buf[i] != ' ') {
        return http_fail(p, 400, "malformed request target");
    }
    req->target = http_span(pos, i - pos);

    i++;
    v = buf + i;
    if (end - i != 8 || memcmp(v, "HTTP/", 5) != 0 ||
        v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9') {
        return http_fail(p, 400, "malformed HTTP version");
    }
    if (v[5] != '1') {
        return http_fail(p, 505, "unsupported HTTP version");
    }
    req->version_minor = v[7] == '0' ? 0 : 1;
    if (m < 0) {
        return http_fail(p, 501, "unknown method");
    }
    req->method = (enum mk_http_method) m;
    return http_parse_target(p, buf, req);
}

static void http_apply_connection(struct mk_ptr value,
                                  struct mk_http_request_head *req)
{
    struct mk_ptr item;
    size_t pos = 0;

    while (http_list_next(value, &pos, &item)) {
        if (mk_ptr_case_eq(item, "close")) {
            req->connection |= MK_HTTP_CONN_CLOSE;
        }
        else if (mk_ptr_case_eq(item, "keep-alive")) {
            req->connection |= MK_HTTP_CONN_KEEPALIVE;
        }
        else if (mk_ptr_case_eq(item, "upgrade")) {
            req->connection |= MK_HTTP_CONN_UPGRADE;
        }
    }
}

static void http_apply_transfer_encoding(struct mk_ptr value,
                                         struct http_framing *fr)
{
    struct mk_ptr item;
    size_t pos = 0;

    fr->te_seen = 1;
    while (http_list_next(value, &pos, &item)) {
        if (mk_ptr_case_eq(item, "chunked")) {
            fr->te_chunked++;
        }
        else {
            fr->te_other++;
        }
    }
}

/* Records what the server needs from a known header. */
static int http_apply_header(struct mk_http_parser *p, const char *buf,
                             struct mk_http_request_head *req,
                             const struct mk_http_header *h,
                             struct http_framing *fr)
{
    struct mk_ptr value = mk_http_span_ptr(buf, h->value);

    switch (h->id) {
    case MK_HDR_HOST:
        if (++fr->hosts > 1) {
            return http_fail(p, 400, "more than one Host");
        }
        break;
    case MK_HDR_CONTENT_LENGTH:
        /* Even equal duplicates are refused: RFC 9112 6.3 allows merging
         * them, but an upstream that picks the other copy is exactly how
         * smuggling starts. A list ("5, 5") fails the digits-only parse. */
        if (req->has_content_length) {
            return http_fail(p, 400, "more than one Content-Length");
        }
        if (mk_str_to_u64(value.data, value.len, &req->content_length) < 0) {
            return http_fail(p, 400, "invalid Content-Length");
        }
        req->has_content_length = 1;
        break;
    case MK_HDR_TRANSFER_ENCODING:
        http_apply_transfer_encoding(value, fr);
        break;
    case MK_HDR_CONNECTION:
        http_apply_connection(value, req);
        break;
    case MK_HDR_EXPECT:
        /* Only 100-continue means anything (RFC 9110 10.1.1), and an
         * HTTP/1.0 request must have it ignored. Other expectations are
         * left for the server to answer (417) if it wants to. */
        if (req->version_minor >= 1 && mk_ptr_case_eq(value, "100-continue")) {
            req->expect_continue = 1;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* Parses one field line at buf[pos] (which is not the blank line); returns
 * the offset of the next line, or 0 after an error. The blank line's CR at
 * `end` stops every scan, so the byte loops need no bounds check. */
static uint32_t http_parse_field(struct mk_http_parser *p, const char *buf,
                                 uint32_t pos, uint32_t end,
                                 struct mk_http_request_head *req,
                                 struct http_framing *fr)
{
    struct mk_http_header *h;
    uint32_t i = pos;
    uint32_t vstart;
    uint32_t vend;

    while (HTTP_IS(buf[i], HTTP_C_TCHAR)) {
        i++;
    }
    if (buf[i] != ':') {
        if (i == pos && HTTP_IS_WS(buf[i])) {
            http_fail(p, 400, "obsolete line folding");
        }
        else if (HTTP_IS_WS(buf[i])) {
            http_fail(p, 400, "whitespace before colon");
        }
        else {
            http_fail(p, 400, "invalid field name");
        }
        return 0;
    }
    if (i == pos) {
        http_fail(p, 400, "empty field name");
        return 0;
    }
    if (req->header_count >= p->limits.max_headers) {
        http_fail(p, 431, "too many header fields");
        return 0;
    }
    h = &req->headers[req->header_count];
    h->name = http_span(pos, i - pos);

    i++;
    while (HTTP_IS_WS(buf[i])) {
        i++;
    }
    vstart = i;
    i = http_skip_class(buf, i, end, HTTP_C_VALUE);
    if (buf[i] != '\r' || buf[i + 1] != '\n') {
        http_fail(p, 400, "invalid octet in field value");
        return 0;
    }
    vend = i;
    while (vend > vstart && HTTP_IS_WS(buf[vend - 1])) {
        vend--;
    }
    h->value = http_span(vstart, vend - vstart);
    h->id = http_header_lookup(buf + pos, h->name.len);
    if (h->id != MK_HDR_OTHER) {
        if (req->known[h->id] < 0) {
            req->known[h->id] = (int16_t) req->header_count;
        }
        if (http_apply_header(p, buf, req, h, fr) < 0) {
            return 0;
        }
    }
    req->header_count++;
    return i + 2;
}

/* Cross-field rules, once all fields are known (RFC 9112 3.2, 6.1, 6.3). */
static int http_check_framing(struct mk_http_parser *p,
                              struct mk_http_request_head *req,
                              const struct http_framing *fr)
{
    if (req->version_minor >= 1 && fr->hosts == 0) {
        return http_fail(p, 400, "missing Host");
    }
    if (!fr->te_seen) {
        return 0;
    }
    if (req->version_minor == 0) {
        return http_fail(p, 400, "Transfer-Encoding in HTTP/1.0");
    }
    if (req->has_content_length) {
        return http_fail(p, 400, "Content-Length with Transfer-Encoding");
    }
    if (fr->te_chunked > 1) {
        return http_fail(p, 400, "chunked applied more than once");
    }
    if (fr->te_other > 0 || fr->te_chunked == 0) {
        return http_fail(p, 501, "unsupported Transfer-Encoding");
    }
    req->chunked = 1;
    return 0;
}

/* Decodes a complete head: request line at [rl, rl_end), CR at rl_end,
 * blank line CRLF at head_len - 2. */
static int http_decode_head(struct mk_http_parser *p, const char *buf,
                            uint32_t rl, uint32_t rl_end, uint32_t head_len,
                            struct mk_http_request_head *req)
{
    struct http_framing fr = { 0, 0, 0, 0 };
    uint32_t pos;
    int i;

    req->connection = 0;
    req->chunked = 0;
    req->has_content_length = 0;
    req->content_length = 0;
    req->expect_continue = 0;
    req->header_count = 0;
    for (i = 0; i < MK_HDR_COUNT; i++) {
        req->known[i] = -1;
    }
    if (http_parse_request_line(p, buf, rl, rl_end, req) < 0) {
        return -1;
    }
    pos = rl_end + 2;
    while (pos < head_len - 2) {
        pos = http_parse_field(p, buf, pos, head_len - 2, req, &fr);
        if (pos == 0) {
            return -1;
        }
    }
    if (http_check_framing(p, req, &fr) < 0) {
        return -1;
    }
    req->head_len = head_len;
    return 0;
}

/*
 * Finds the end of the request line: the offset of its LF, or -1 when it
 * has not arrived yet. Leading empty lines count toward the request-line
 * limit so a stream of CRLFs cannot keep the parser busy for free.
 */
static long http_find_request_line(struct mk_http_parser *p, const char *buf,
                                   size_t len, uint32_t *rl)
{
    size_t window = (size_t) p->limits.max_request_line + 2;
    const char *lf;
    size_t i = 0;

    if (window > len) {
        window = len;
    }
    while (i + 1 < window && buf[i] == '\r' && buf[i + 1] == '\n') {
        i += 2;
    }
    *rl = (uint32_t) i;
    lf = memchr(buf + i, '\n', window - i);
    if (!lf) {
        if (len >= (size_t) p->limits.max_request_line + 2) {
            return http_fail(p, 414, "request line too long");
        }
        return -1;
    }
    i = (size_t) (lf - buf);
    if (i == 0 || buf[i - 1] != '\r') {
        return http_fail(p, 400, "bare LF");
    }
    return (long) i;
}

enum mk_http_parse_result mk_http_parse_head(struct mk_http_parser *p,
                                             const char *buf, size_t len,
                                             struct mk_http_request_head *req)
{
    size_t end = len < p->limits.max_head ? len : p->limits.max_head;
    uint32_t rl;
    size_t i;
    long e;

    if (p->status != 0) {
        return MK_HTTP_PARSE_ERROR;
    }
    e = http_find_request_line(p, buf, len, &rl);
    if (e < 0) {
        if (p->status != 0) {
            return MK_HTTP_PARSE_ERROR;
        }
        goto partial;
    }
    /* Every LF must close a CRLF; a line that is just CRLF ends the head.
     * Bytes before p->scan held no LF, so the search resumes there. */
    i = (size_t) e + 1;
    if (p->scan > i) {
        i = p->scan;
    }
    while (i < end) {
        const char *lf = memchr(buf + i, '\n', end - i);
        if (!lf) {
            break;
        }
        i = (size_t) (lf - buf);
        if (buf[i - 1] != '\r') {
            http_fail(p, 400, "bare LF");
            return MK_HTTP_PARSE_ERROR;
        }
        if (buf[i - 2] == '\n') {
            if (http_decode_head(p, buf, rl, (uint32_t) e - 1,
                                 (uint32_t) i + 1, req) < 0) {
                return MK_HTTP_PARSE_ERROR;
            }
            p->scan = (uint32_t) i + 1;
            return MK_HTTP_PARSE_OK;
        }
        i++;
    }

partial:
    if (len >= p->limits.max_head) {
        http_fail(p, 431, "request head too large");
        return MK_HTTP_PARSE_ERROR;
    }
    if (e >= 0) {
        p->scan = (uint32_t) end;
    }
    return MK_HTTP_PARSE_PARTIAL;
}

struct mk_ptr mk_http_header_get(const struct mk_http_request_head *req,
                                 const char *buf, const char *name)
{
    size_t len = strlen(name);
    uint32_t i;

    for (i = 0; i < req->header_count; i++) {
        const struct mk_http_header *h = &req->headers[i];
        if (mk_str_case_eq(buf + h->name.off, h->name.len, name, len)) {
            return mk_http_span_ptr(buf, h->value);
        }
    }
    return MK_PTR_NONE;
}

struct mk_ptr mk_http_header_known(const struct mk_http_request_head *req,
                                   const char *buf, enum mk_http_header_id id)
{
    int idx;

    if (id <= MK_HDR_OTHER || id >= MK_HDR_COUNT) {
        return MK_PTR_NONE;
    }
    idx = req->known[id];
    if (idx < 0) {
        return MK_PTR_NONE;
    }
    return mk_http_span_ptr(buf, req->headers[idx].value);
}
