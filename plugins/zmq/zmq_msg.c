/*
 * What a node sends the gateway (spec 1.3, 2.3, 3): frame checks, the
 * routing prefix, the type table and the response head of `headers`.
 * Pure functions over borrowed bytes; the plugin does the I/O.
 */
#include <string.h>

#include "plugins/zmq/zmq_proto.h"

/* ---- types ------------------------------------------------------------- */

/* Indexed by enum zmq_msg_type. A linear scan of ~23 short names costs
 * less than hashing them, and the table doubles as the name list. */
static const char *const zmq_msg_names[ZMQ_MSG_TYPE_COUNT] = {
    [ZMQ_MSG_UNKNOWN]          = "unknown",
    [ZMQ_MSG_PONG]             = "pong",
    [ZMQ_MSG_HEADERS]          = "headers",
    [ZMQ_MSG_BODY]             = "body",
    [ZMQ_MSG_CHUNK]            = "chunk",
    [ZMQ_MSG_END]              = "end",
    [ZMQ_MSG_WEBSOCKET]        = "websocket",
    [ZMQ_MSG_WEBSOCKET_BINARY] = "websocket/binary",
    [ZMQ_MSG_WEBSOCKET_CLOSE]  = "websocket/close",
    [ZMQ_MSG_RETRY]            = "retry",
    [ZMQ_MSG_MSG]              = "msg",
    [ZMQ_MSG_JOIN]             = "join",
    [ZMQ_MSG_LEAVE]            = "leave",
    [ZMQ_MSG_NOECHO]           = "noecho",
    [ZMQ_MSG_ECHO]             = "echo",
    [ZMQ_MSG_CACHE]            = "cache",
    [ZMQ_MSG_FRAGCACHE]        = "fragcache",
    [ZMQ_MSG_FRAG]             = "frag",
    [ZMQ_MSG_PUSH]             = "push",
    [ZMQ_MSG_PIPE]             = "pipe",
    [ZMQ_MSG_SIO_EVENT]        = "socket.io/event",
    [ZMQ_MSG_SIO_MSG]          = "socket.io/msg",
    [ZMQ_MSG_SIO_JSON]         = "socket.io/json",
    [ZMQ_MSG_SIO_END]          = "socket.io/end",
    [ZMQ_MSG_SIO_CONNECT]      = "socket.io/connect",
    [ZMQ_MSG_SIO_CONNECT_ERROR] = "socket.io/connect_error",
    [ZMQ_MSG_SIO_ACK]          = "socket.io/ack",
    [ZMQ_MSG_SIO_DISCONNECT]   = "socket.io/disconnect",
    [ZMQ_MSG_UWSGI]            = "uwsgi",
};

enum zmq_msg_type zmq_msg_type(const char *t, size_t len)
{
    int i;

    for (i = ZMQ_MSG_UNKNOWN + 1; i < ZMQ_MSG_TYPE_COUNT; i++) {
        if (strlen(zmq_msg_names[i]) == len &&
            memcmp(zmq_msg_names[i], t, len) == 0) {
            return (enum zmq_msg_type) i;
        }
    }
    return ZMQ_MSG_UNKNOWN;
}

int zmq_msg_type_is_http(enum zmq_msg_type type)
{
    return type == ZMQ_MSG_HEADERS || type == ZMQ_MSG_BODY ||
           type == ZMQ_MSG_CHUNK || type == ZMQ_MSG_END;
}

const char *zmq_msg_type_name(enum zmq_msg_type type)
{
    if ((int) type < 0 || type >= ZMQ_MSG_TYPE_COUNT) {
        return zmq_msg_names[ZMQ_MSG_UNKNOWN];
    }
    return zmq_msg_names[type];
}

/* ---- routes ------------------------------------------------------------ */

int zmq_group_name_is_valid(const char *name, size_t len)
{
    return len >= 1 && len <= ZMQ_GROUP_MAX && name[0] != '@';
}

int zmq_msg_route(const char *type, size_t len, struct zmq_route *out)
{
    const char *colon = NULL;
    size_t rl, i;

    /* The LAST colon: a sid may contain ':' bytes, a type never does. */
    for (i = len; i > 0; i--) {
        if (type[i - 1] == ':') {
            colon = type + i - 1;
            break;
        }
    }
    memset(out, 0, sizeof(*out));
    if (colon == NULL) {
        out->kind = ZMQ_ROUTE_NONE;
        out->type = type;
        out->type_len = len;
        return 0;
    }
    rl = (size_t) (colon - type);
    out->type = colon + 1;
    out->type_len = len - rl - 1;
    if (out->type_len == 0) {
        return -1;
    }
    if (rl == 1 + ZMQ_SID_LEN && type[0] == '@') {
        out->kind = ZMQ_ROUTE_SID;
        out->name = type + 1;
        out->name_len = ZMQ_SID_LEN;
        return 0;
    }
    if (!zmq_group_name_is_valid(type, rl)) {
        return -1;
    }
    out->kind = ZMQ_ROUTE_GROUP;
    out->name = type;
    out->name_len = rl;
    return 0;
}

/* ---- frame checks ------------------------------------------------------ */

static const char *const zmq_reject_names[ZMQ_REJECT_COUNT] = {
    [ZMQ_REJECT_NONE]        = "accepted",
    [ZMQ_REJECT_FRAME_COUNT] = "frame count",
    [ZMQ_REJECT_FRAME_SIZE]  = "frame size",
    [ZMQ_REJECT_IDENTITY]    = "identity",
    [ZMQ_REJECT_SID]         = "sid size",
    [ZMQ_REJECT_ROUTE]       = "route",
    [ZMQ_REJECT_UNKNOWN_SID] = "unknown sid",
    [ZMQ_REJECT_UNBOUND]     = "unbound session",
    [ZMQ_REJECT_WRONG_NODE]  = "wrong node",
    [ZMQ_REJECT_CURVE_IDENTITY] = "identity not allowed for its CURVE key",
};

const char *zmq_reject_name(enum zmq_reject reason)
{
    if ((int) reason < 0 || reason >= ZMQ_REJECT_COUNT) {
        return "unknown";
    }
    return zmq_reject_names[reason];
}

enum zmq_reject zmq_msg_check(const struct zmq_frame *frames, size_t n,
                              size_t max_frame, struct zmq_node_msg *out)
{
    const struct zmq_frame *id, *sid, *type, *body;
    struct zmq_route route;
    size_t i;

    /* Exactly 4: BlastBeat kept the first 4 and read the rest as a new
     * message with a sender-chosen identity (spec 10.2). */
    if (n != 4) {
        return ZMQ_REJECT_FRAME_COUNT;
    }
    for (i = 0; i < n; i++) {
        if (max_frame > 0 && frames[i].len > max_frame) {
            return ZMQ_REJECT_FRAME_SIZE;
        }
    }
    id = &frames[0];
    sid = &frames[1];
    type = &frames[2];
    body = &frames[3];
    if (id->len == 0 || id->len > ZMQ_IDENTITY_MAX) {
        return ZMQ_REJECT_IDENTITY;
    }
    memset(out, 0, sizeof(*out));
    out->identity = id->data;
    out->identity_len = id->len;
    out->body = body->data;
    out->body_len = body->len;
    if (type->len == 4 && memcmp(type->data, "pong", 4) == 0) {
        out->is_pong = 1;
        out->type = ZMQ_MSG_PONG;
        out->route.type = type->data;
        out->route.type_len = type->len;
        return ZMQ_REJECT_NONE;
    }
    if (sid->len != ZMQ_SID_LEN) {
        return ZMQ_REJECT_SID;
    }
    if (zmq_msg_route(type->data, type->len, &route) != 0) {
        return ZMQ_REJECT_ROUTE;
    }
    out->sid = sid->data;
    out->route = route;
    out->type = zmq_msg_type(route.type, route.type_len);
    return ZMQ_REJECT_NONE;
}

/* ---- response head ----------------------------------------------------- */

/* RFC 9110 tchar. */
static int zmq_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z')) {
        return 1;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / obs-text / SP / HTAB: anything but the other controls. */
static int zmq_is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int zmq_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int zmq_ieq(const char *a, size_t al, const char *lit)
{
    size_t i, l = strlen(lit);

    if (al != l) {
        return 0;
    }
    for (i = 0; i < l; i++) {
        if (zmq_lower((unsigned char) a[i]) != lit[i]) {
            return 0;
        }
    }
    return 1;
}

/* Finds the CRLF ending the line at `p`. Every byte before it must pass
 * zmq_is_field_char, which also rules out bare CR and bare LF. Returns the
 * line length, or -1. */
static long zmq_line_len(const char *p, const char *end)
{
    const char *q;

    for (q = p; q < end; q++) {
        if (*q == '\r') {
            if (end - q < 2 || q[1] != '\n') {
                return -1;
            }
            return (long) (q - p);
        }
        if (!zmq_is_field_char((unsigned char) *q)) {
            return -1;
        }
    }
    return -1;      /* no line end: the head is incomplete */
}

static int zmq_status_line(const char *p, size_t l, struct zmq_resp_head *h)
{
    /* "HTTP/1.x SSS" then nothing, or SP and a reason phrase (the reason
     * may be empty; a few node libraries also omit the SP). */
    if (l < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
        (p[7] != '0' && p[7] != '1') || p[8] != ' ') {
        return -1;
    }
    if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9') {
        return -1;
    }
    if (l > 12 && p[12] != ' ') {
        return -1;
    }
    h->minor = p[7] - '0';
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return 0;
}

static int zmq_content_length(const char *v, size_t vl,
                              struct zmq_resp_head *h)
{
    long long n = 0;
    size_t i;

    if (h->content_length >= 0 || vl == 0) {
        return -1;      /* duplicates are refused, even identical ones */
    }
    for (i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (1LL << 52)) {
            return -1;
        }
        n = n * 10 + (v[i] - '0');
    }
    h->content_length = n;
    return 0;
}

/* Walks a comma-separated list; `on` gets each trimmed, non-empty element
 * and whether it is the last one. */
static int zmq_list_walk(const char *v, size_t vl, struct zmq_resp_head *h,
                         int (*on)(const char *, size_t, int,
                                   struct zmq_resp_head *))
{
    size_t i = 0, s, e;

    while (i < vl) {
        s = i;
        while (i < vl && v[i] != ',') {
            i++;
        }
        e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t')) {
            s++;
        }
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (i < vl) {
            i++;        /* skip the comma */
        }
        if (e > s && on(v + s, e - s, i >= vl, h) != 0) {
            return -1;
        }
    }
    return 0;
}

static int zmq_on_connection(const char *t, size_t tl, int last,
                             struct zmq_resp_head *h)
{
    (void) last;
    if (zmq_ieq(t, tl, "close")) {
        h->conn_close = 1;
    }
    else if (zmq_ieq(t, tl, "keep-alive")) {
        h->conn_keep_alive = 1;
    }
    return 0;
}

static int zmq_on_coding(const char *t, size_t tl, int last,
                         struct zmq_resp_head *h)
{
    /* chunked may be applied once and only as the final coding. */
    if (h->chunked) {
        return -1;
    }
    if (zmq_ieq(t, tl, "chunked")) {
        if (!last) {
            return -1;
        }
        h->chunked = 1;
    }
    return 0;
}

static int zmq_header(const char *p, size_t l, struct zmq_resp_head *h,
                      int *saw_te)
{
    size_t nl = 0, vs, ve;

    while (nl < l && zmq_is_tchar((unsigned char) p[nl])) {
        nl++;
    }
    /* An empty name also catches obs-fold: the line starts with SP/HTAB. */
    if (nl == 0 || nl == l || p[nl] != ':') {
        return -1;
    }
    vs = nl + 1;
    ve = l;
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t')) {
        vs++;
    }
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) {
        ve--;
    }
    if (zmq_ieq(p, nl, "content-length")) {
        return zmq_content_length(p + vs, ve - vs, h);
    }
    if (zmq_ieq(p, nl, "connection")) {
        return zmq_list_walk(p + vs, ve - vs, h, zmq_on_connection);
    }
    if (zmq_ieq(p, nl, "transfer-encoding")) {
        /* A second TE header would extend the list; refuse it rather
         * than track chunked across lines. */
        if (*saw_te) {
            return -1;
        }
        *saw_te = 1;
        return zmq_list_walk(p + vs, ve - vs, h, zmq_on_coding);
    }
    return 0;
}

int zmq_resp_head_parse(const char *buf, size_t len, int max_headers,
                        struct zmq_resp_head *out)
{
    const char *p = buf, *end = buf + len;
    struct zmq_resp_head h;
    int saw_te = 0;
    long l;

    memset(&h, 0, sizeof(h));
    h.content_length = -1;
    l = zmq_line_len(p, end);
    if (l < 0 || zmq_status_line(p, (size_t) l, &h) != 0) {
        return -1;
    }
    p += l + 2;
    for (;;) {
        l = zmq_line_len(p, end);
        if (l < 0) {
            return -1;
        }
        if (l == 0) {
            p += 2;
            break;      /* the blank line: end of head */
        }
        if (h.n_headers >= max_headers) {
            return -1;
        }
        h.n_headers++;
        if (zmq_header(p, (size_t) l, &h, &saw_te) != 0) {
            return -1;
        }
        p += l + 2;
    }
    /* Both framings at once is how responses get smuggled into a cache. */
    if (saw_te && h.content_length >= 0) {
        return -1;
    }
    h.non_persistent = h.conn_close || (h.minor == 0 && !h.conn_keep_alive);
    h.head_len = (size_t) (p - buf);
    *out = h;
    return 0;
}

/* Copies the head line by line, leaving out every Connection field, and
 * puts the one the server means before the blank line. */
size_t zmq_resp_head_close(const char *head, size_t len, char *out)
{
    static const char field[] = "Connection: close\r\n\r\n";
    const char *p = head, *end = head + len - 2, *eol, *colon;
    size_t o = 0, l;

    while (p < end) {
        eol = memchr(p, '\r', (size_t) (end - p));
        if (!eol) {
            break;                   /* not a head the parser accepted */
        }
        l = (size_t) (eol - p) + 2;
        colon = memchr(p, ':', (size_t) (eol - p));
        if (p == head || !colon ||
            !zmq_ieq(p, (size_t) (colon - p), "connection")) {
            memcpy(out + o, p, l);
            o += l;
        }
        p += l;
    }
    memcpy(out + o, field, sizeof(field) - 1);
    return o + sizeof(field) - 1;
}

/* The fields that describe one hop's connection (RFC 9110 7.6.1), and
 * Content-Length, which the protocol's own framing carries. */
static int zmq_field_is_hop(const char *name, size_t nl)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "transfer-encoding", "upgrade",
        "proxy-connection", "content-length", NULL
    };
    size_t i;

    for (i = 0; hop[i]; i++) {
        if (zmq_ieq(name, nl, hop[i])) {
            return 1;
        }
    }
    return 0;
}

int zmq_resp_head_fields(const char *head, size_t len,
                         int (*on_field)(void *ctx, const char *name,
                                         size_t nl, const char *value,
                                         size_t vl),
                         void *ctx)
{
    const char *p = memchr(head, '\n', len), *end = head + len, *eol;
    const char *colon, *v;
    int ret;

    while (p && ++p < end) {
        eol = memchr(p, '\r', (size_t) (end - p));
        if (!eol || eol == p) {
            break;                   /* the blank line that ends the head */
        }
        colon = memchr(p, ':', (size_t) (eol - p));
        if (colon && !zmq_field_is_hop(p, (size_t) (colon - p))) {
            v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t')) {
                eol--;
            }
            ret = on_field(ctx, p, (size_t) (colon - p), v,
                           (size_t) (eol - v));
            if (ret != 0) {
                return ret;
            }
        }
        p = memchr(p, '\n', (size_t) (end - p));
    }
    return 0;
}
