/*
 * One HTTP/2 stream as a core stream: the decoded header list becomes an
 * HTTP/1.1 request head for the core's parser (so every plugin sees the
 * same head whatever the protocol), DATA frames feed the body with the
 * stream's window as backpressure, and the stream ops turn the handler's
 * response into HEADERS, DATA and trailers.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/http2/http2.h"

/* ---- Text ------------------------------------------------------------- */

static void h2_text_init(struct h2_text *t, char *own, size_t cap)
{
    t->p = own;
    t->own = own;
    t->own_cap = own ? cap : 0;
    t->len = 0;
    t->cap = t->own_cap;
}

static int h2_text_add(struct h2_text *t, const void *data, size_t len)
{
    char *p;
    size_t cap;

    if (len == 0) {
        return 0;
    }
    if (t->len + len > t->cap) {
        cap = t->cap ? t->cap * 2 : 256;
        while (cap < t->len + len) {
            cap *= 2;
        }
        p = mk_mem_alloc(cap);
        if (!p) {
            return -1;
        }
        if (t->len) {
            memcpy(p, t->p, t->len);
        }
        if (t->p != t->own) {
            mk_mem_free(t->p);
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, data, len);
    t->len += len;
    return 0;
}

static void h2_text_release(struct h2_text *t)
{
    if (t->p != t->own) {
        mk_mem_free(t->p);
    }
    h2_text_init(t, t->own, t->own_cap);
}

static int h2_pseudo(struct h2_stream *hs, struct h2_span *sp,
                     const void *value, size_t len)
{
    if (sp->len > 0) {
        return 0;                      /* nghttp2 refuses a repeated one */
    }
    sp->off = (uint32_t) hs->pseudo.len;
    sp->len = (uint32_t) len;
    return h2_text_add(&hs->pseudo, value, len);
}

static const char *h2_span_at(const struct h2_stream *hs,
                              const struct h2_span *sp)
{
    return hs->pseudo.p + sp->off;
}

/* ---- Life ------------------------------------------------------------- */

struct h2_stream *h2_stream_new(struct h2_conn *hc, int32_t id)
{
    /* not zeroed whole: the inline text storage needs no clearing */
    struct h2_stream *hs = mk_mem_alloc(sizeof(*hs));

    if (!hs) {
        return NULL;
    }
    memset(hs, 0, offsetof(struct h2_stream, fields_own));
    hs->hc = hc;
    hs->id = id;
    h2_text_init(&hs->fields, hs->fields_own, sizeof(hs->fields_own));
    h2_text_init(&hs->cookie, NULL, 0);
    h2_text_init(&hs->pseudo, hs->pseudo_own, sizeof(hs->pseudo_own));
    h2_text_init(&hs->text, hs->text_own, sizeof(hs->text_own));
    mk_buf_init(&hs->held);
    mk_list_init(&hs->out);
    mk_list_add(&hs->_head, &hc->streams);
    return hs;
}

static void h2_piece_free(struct h2_piece *p)
{
    mk_list_del(&p->_head);
    if (p->is_file) {
        if (p->close_fd && p->fd >= 0) {
            close(p->fd);
        }
    }
    else if (p->owned) {
        mk_mem_free((void *) p->data);
    }
    mk_mem_free(p);
}

/* Stage 40 runs here (mk_stream_destroy) for a stream that had a head. */
void h2_stream_free(struct h2_stream *hs)
{
    mk_list_del(&hs->_head);
    if (hs->s) {
        hs->hc->open--;
        mk_stream_destroy(hs->s);
    }
    while (!mk_list_is_empty(&hs->out)) {
        h2_piece_free(mk_list_entry(hs->out.next, struct h2_piece, _head));
    }
    h2_text_release(&hs->fields);
    h2_text_release(&hs->cookie);
    h2_text_release(&hs->pseudo);
    h2_text_release(&hs->text);
    mk_buf_release(&hs->held);
    mk_mem_free(hs);
}

/* ---- The request head ------------------------------------------------- */

static int h2_is(const uint8_t *name, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

/* One decoded field (nghttp2 has checked its syntax, the pseudo-header
 * rules and the connection-specific fields: RFC 9113 8.2, 8.3). 0, or -1
 * out of memory. A list over MaxHeaderListSize is still decoded (HPACK
 * state must stay in step) but not kept: the stream gets 431. */
int h2_stream_header(struct h2_stream *hs, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen)
{
    struct h2_span *pseudo = NULL;
    int ret = 0;

    hs->header_bytes += nlen + vlen + 32;
    if (hs->header_bytes > hs->hc->set->max_header_list) {
        hs->too_large = 1;
    }
    if (hs->too_large) {
        return 0;
    }
    if (nlen > 0 && name[0] == ':') {
        if (h2_is(name, nlen, ":method")) {
            pseudo = &hs->method;
        }
        else if (h2_is(name, nlen, ":path")) {
            pseudo = &hs->path;
        }
        else if (h2_is(name, nlen, ":authority")) {
            pseudo = &hs->authority;
        }
        if (pseudo) {
            ret = h2_pseudo(hs, pseudo, value, vlen);
        }
        return ret;                    /* :scheme: the listener says */
    }
    if (h2_is(name, nlen, "cookie")) {
        if (hs->cookie.len > 0) {
            ret |= h2_text_add(&hs->cookie, "; ", 2);
        }
        return ret | h2_text_add(&hs->cookie, value, vlen);
    }
    /* :authority wins over Host (RFC 9113 8.3.1) */
    if (h2_is(name, nlen, "host") && hs->authority.len > 0) {
        return 0;
    }
    ret |= h2_text_add(&hs->fields, name, nlen);
    ret |= h2_text_add(&hs->fields, ": ", 2);
    ret |= h2_text_add(&hs->fields, value, vlen);
    ret |= h2_text_add(&hs->fields, "\r\n", 2);
    return ret;
}

static int h2_stream_respond(struct h2_stream *hs, const char *status)
{
    nghttp2_nv nv = { (uint8_t *) ":status", (uint8_t *) status, 7, 3,
                      NGHTTP2_NV_FLAG_NONE };

    hs->head_sent = 1;
    hs->end_queued = 1;
    h2_conn_post_flush(hs->hc);
    return nghttp2_submit_response(hs->hc->ng, hs->id, &nv, 1, NULL);
}

/* Parses hs->head into a new core stream and runs it (stages 20, 30). */
static void h2_stream_run(struct h2_stream *hs, size_t len, int end_stream)
{
    struct mk_http_request_head *h;
    struct mk_http_parser parser;
    struct mk_http_limits limits;
    int status;

    hs->s = mk_stream_create(hs->hc->c, &h2_stream_ops, hs, &hs->head);
    if (!hs->s) {
        nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
        return;
    }
    hs->hc->open++;
    mk_http_limits_default(&limits);
    limits.max_request_line = (uint32_t) len;
    limits.max_head = (uint32_t) len;
    h = mk_stream_head(hs->s);
    mk_http_parser_init(&parser, &limits);
    if (mk_http_parse_head(&parser, hs->head, len, h) != MK_HTTP_PARSE_OK) {
        /* a field the HTTP/1.1 grammar refuses, or too many: malformed
         * (RFC 9113 8.1.1) */
        hs->hc->open--;
        mk_stream_destroy(hs->s);
        hs->s = NULL;
        nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    hs->body_expected = !end_stream &&
                        !(h->has_content_length && h->content_length == 0);
    hs->body_ended = !hs->body_expected;
    if (hs->body_expected && !h->has_content_length) {
        h->chunked = 1;                /* a body of unknown length */
    }
    status = mk_stream_begin(hs->s);
    if (status) {
        mk_response_error(hs->s, status);
    }
}

/* END_HEADERS of a request: the head as HTTP/1.1 text, then the stream. */
void h2_stream_begin(struct h2_stream *hs, int end_stream)
{
    struct h2_text *t = &hs->text;
    const char *method = h2_span_at(hs, &hs->method);
    const char *auth = h2_span_at(hs, &hs->authority);
    int ret = 0;

    if (hs->too_large) {
        h2_stream_respond(hs, "431");
        return;
    }
    if (hs->method.len == 0 || (hs->path.len == 0 &&
        !h2_is((const uint8_t *) method, hs->method.len, "CONNECT"))) {
        nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    ret |= h2_text_add(t, method, hs->method.len);
    ret |= h2_text_add(t, " ", 1);
    if (hs->path.len > 0) {
        ret |= h2_text_add(t, h2_span_at(hs, &hs->path), hs->path.len);
    }
    else {
        ret |= h2_text_add(t, auth, hs->authority.len);
    }
    ret |= h2_text_add(t, " HTTP/1.1\r\n", 11);
    if (hs->authority.len > 0) {
        ret |= h2_text_add(t, "host: ", 6);
        ret |= h2_text_add(t, auth, hs->authority.len);
        ret |= h2_text_add(t, "\r\n", 2);
    }
    ret |= h2_text_add(t, hs->fields.p, hs->fields.len);
    if (hs->cookie.len > 0) {
        ret |= h2_text_add(t, "cookie: ", 8);
        ret |= h2_text_add(t, hs->cookie.p, hs->cookie.len);
        ret |= h2_text_add(t, "\r\n", 2);
    }
    ret |= h2_text_add(t, "\r\n", 2);
    h2_text_release(&hs->fields);
    h2_text_release(&hs->cookie);
    if (ret < 0) {
        nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
        return;
    }
    hs->head = t->p;                   /* the stream's spans index it */
    h2_stream_run(hs, t->len, end_stream);
}

/* Whether `name` (any case) is in the NULL-ended list. */
static int h2_field_in(const char *const *list, const char *name, size_t len)
{
    for (; *list; list++) {
        if (strlen(*list) == len && strncasecmp(*list, name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* RFC 9113 8.2.2: fields that are HTTP/1.1's connection management; a
 * response never carries them over HTTP/2 ... */
static const char *const h2_connection_fields[] = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding",
    "upgrade", NULL
};

/* ... and an h2c upgrade's request (RFC 9113 3.2) sheds them, with its
 * HTTP2-Settings and TE, as stream 1. */
static const char *const h2_upgrade_fields[] = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding",
    "upgrade", "http2-settings", "te", NULL
};

int h2_stream_from_http1(struct h2_stream *hs, const char *head, size_t len)
{
    const char *p = head, *end = head + len, *eol, *colon;
    struct h2_text *t = &hs->text;
    int ret = 0;

    eol = memchr(p, '\n', (size_t) (end - p));
    if (!eol) {
        return -1;
    }
    ret |= h2_text_add(t, p, (size_t) (eol + 1 - p));     /* request line */
    for (p = eol + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (!eol || eol - p <= 1) {
            break;                     /* the blank line */
        }
        colon = memchr(p, ':', (size_t) (eol - p));
        if (colon && h2_field_in(h2_upgrade_fields, p, (size_t) (colon - p))) {
            continue;
        }
        ret |= h2_text_add(t, p, (size_t) (eol + 1 - p));
    }
    ret |= h2_text_add(t, "\r\n", 2);
    if (ret < 0) {
        return -1;
    }
    hs->head = t->p;
    hs->head_len_upgrade = t->len;
    return 0;
}

void h2_stream_run_upgraded(struct h2_stream *hs)
{
    h2_stream_run(hs, hs->head_len_upgrade, 1);
}

/* ---- The request body ------------------------------------------------- */

static void h2_stream_deliver(struct h2_stream *hs, const uint8_t *data,
                              size_t len)
{
    if (mk_stream_body(hs->s, (const char *) data, len) < 0) {
        /* over MaxRequestBody (or the handler failed) */
        if (!mk_response_head_sent(hs->s)) {
            mk_response_error(hs->s, 413);
        }
        else {
            nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                      NGHTTP2_INTERNAL_ERROR);
        }
        hs->body_ended = 1;
        return;
    }
    /* the handler took it: the client may send as much again */
    nghttp2_session_consume_stream(hs->hc->ng, hs->id, len);
}

/* DATA for the stream. The connection's window is given back at once (a
 * paused stream must not stall the others); the stream's only once its
 * handler took the bytes, so a paused stream holds at most its window. */
void h2_stream_data(struct h2_stream *hs, const uint8_t *data, size_t len)
{
    if (!hs->s || hs->body_ended || mk_response_ended(hs->s)) {
        nghttp2_session_consume_stream(hs->hc->ng, hs->id, len);
        return;                        /* nobody reads it */
    }
    if (hs->paused || hs->held.len > 0) {
        if (mk_buf_append(&hs->held, data, len) < 0) {
            nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                      NGHTTP2_INTERNAL_ERROR);
        }
        return;
    }
    h2_stream_deliver(hs, data, len);
}

void h2_stream_body_end(struct h2_stream *hs)
{
    if (!hs->s || hs->body_ended) {
        return;
    }
    if (hs->paused || hs->held.len > 0) {
        hs->body_end_pending = 1;
        return;
    }
    hs->body_ended = 1;
    if (mk_stream_body_end(hs->s) < 0) {
        nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
}

/* From the connection's posted pass: a resumed stream takes what it held. */
void h2_stream_resume_body(struct h2_stream *hs)
{
    struct mk_buf held;

    if (hs->paused || !hs->s || hs->held.len == 0) {
        if (!hs->paused && hs->body_end_pending && hs->held.len == 0) {
            hs->body_end_pending = 0;
            h2_stream_body_end(hs);
        }
        return;
    }
    held = hs->held;
    mk_buf_init(&hs->held);
    if (!hs->body_ended) {
        h2_stream_deliver(hs, (const uint8_t *) held.data, held.len);
    }
    mk_buf_release(&held);
    if (hs->body_end_pending && !hs->paused) {
        hs->body_end_pending = 0;
        h2_stream_body_end(hs);
    }
}

/* ---- The response: stream ops ----------------------------------------- */

/* A field as an nghttp2 pair, its name lowercased into `lower` (HTTP/2
 * field names are lowercase: RFC 9113 8.2.1). */
static void h2_nv_lower(nghttp2_nv *nv, char *lower, const char *name,
                        size_t nlen, const char *value, size_t vlen)
{
    size_t i;

    for (i = 0; i < nlen; i++) {
        lower[i] = (char) tolower((unsigned char) name[i]);
    }
    *nv = (nghttp2_nv) { (uint8_t *) lower, (uint8_t *) value, nlen, vlen,
                         NGHTTP2_NV_FLAG_NONE };
}

/* A status code as the three digits of :status. */
static void h2_status_digits(int code, char *out)
{
    out[0] = (char) ('0' + code / 100 % 10);
    out[1] = (char) ('0' + code / 10 % 10);
    out[2] = (char) ('0' + code % 10);
}

#define H2_NV_MAX (MK_RESPONSE_FIELDS_MAX + 4)

/* The handler's fields (or trailers) as nghttp2 pairs, names lowercased
 * into `lower`; the connection's own fields are dropped. */
static size_t h2_fields(const struct mk_stream *s, nghttp2_nv *nv, size_t n,
                        char *lower, int trailers)
{
    struct mk_ptr name, value;
    size_t it = 0, used = 0;
    int trailer;

    while (n < H2_NV_MAX &&
           mk_response_field_next(s, &it, &name, &value, &trailer)) {
        if (trailer != trailers ||
            h2_field_in(h2_connection_fields, name.data, name.len)) {
            continue;
        }
        h2_nv_lower(&nv[n++], lower + used, name.data, name.len, value.data,
                    value.len);
        used += name.len;
    }
    return n;
}

static ssize_t h2_data_source(nghttp2_session *ng, int32_t id, uint8_t *buf,
                              size_t length, uint32_t *data_flags,
                              nghttp2_data_source *source, void *user)
{
    (void) ng;
    (void) id;
    (void) buf;
    (void) user;
    return h2_stream_read(source->ptr, length, data_flags);
}

static int h2_send_head(struct mk_stream *s)
{
    struct h2_stream *hs = mk_stream_proto_data(s);
    nghttp2_nv nv[H2_NV_MAX];
    char lower[MK_RESPONSE_FIELDS_ROOM], status[4], clen[24];
    const char *server = mk_server_software(mk_conn_server(hs->hc->c));
    const char *date = mk_server_date();
    int code = mk_response_get_status(s);
    int64_t cl = mk_response_get_content_length(s);
    nghttp2_data_provider dp;
    size_t n = 0;

    h2_status_digits(code, status);
    nv[n++] = (nghttp2_nv) { (uint8_t *) ":status", (uint8_t *) status, 7,
                             3, NGHTTP2_NV_FLAG_NONE };
    nv[n++] = (nghttp2_nv) { (uint8_t *) "server", (uint8_t *) server, 6,
                             strlen(server), NGHTTP2_NV_FLAG_NONE };
    nv[n++] = (nghttp2_nv) { (uint8_t *) "date", (uint8_t *) date, 4, 29,
                             NGHTTP2_NV_FLAG_NONE };
    hs->has_body = mk_request_method(s) != MK_HTTP_METHOD_HEAD &&
                   code >= 200 && code != 204 && code != 304 && cl != 0;
    if (cl >= 0 && code >= 200 && code != 204 && code != 304) {
        nv[n++] = (nghttp2_nv) { (uint8_t *) "content-length",
                                 (uint8_t *) clen, 14,
                                 mk_str_u64(clen, (uint64_t) cl),
                                 NGHTTP2_NV_FLAG_NONE };
    }
    n = h2_fields(s, nv, n, lower, 0);
    hs->head_sent = 1;
    h2_conn_post_flush(hs->hc);
    if (!hs->has_body) {
        hs->end_queued = 1;
        return nghttp2_submit_response(hs->hc->ng, hs->id, nv, n, NULL) == 0
               ? 0 : -1;
    }
    dp.source.ptr = hs;
    dp.read_callback = h2_data_source;
    return nghttp2_submit_response(hs->hc->ng, hs->id, nv, n, &dp) == 0
           ? 0 : -1;
}

/* Nothing more of this response will go: what waits is dropped. */
static void h2_stream_drop_output(struct h2_stream *hs)
{
    while (!mk_list_is_empty(&hs->out)) {
        h2_piece_free(mk_list_entry(hs->out.next, struct h2_piece, _head));
    }
    hs->out_len = 0;
    hs->out_mem = 0;
    hs->closed = 1;
    h2_conn_post_flush(hs->hc);
}

/* Body pieces wait in the stream until its window lets them go. What the
 * streams hold counts with the connection's queue against its
 * WriteQueueLimit: a client that opens windows slowly, or never, costs a
 * bounded amount; over it, the stream that grew is reset. */
static int h2_queue(struct h2_stream *hs, struct h2_piece *p)
{
    if (!hs->has_body || hs->closed) {
        h2_piece_free(p);
        return 0;                      /* HEAD, 304, or the client left */
    }
    mk_list_add(&p->_head, &hs->out);
    hs->out_len += p->len;
    if (!p->is_file) {
        hs->out_mem += p->len;         /* a file range costs no memory */
    }
    if (!p->is_file && h2_conn_over_limit(hs->hc)) {
        mk_warn("[fd %d] http2: stream %d: more than WriteQueueLimit "
                "waits for a client that does not read; resetting it",
                mk_conn_fd(hs->hc->c), hs->id);
        nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
        h2_stream_drop_output(hs);
        return 0;
    }
    if (hs->deferred) {
        hs->deferred = 0;
        nghttp2_session_resume_data(hs->hc->ng, hs->id);
    }
    h2_conn_post_flush(hs->hc);
    return 0;
}

static void h2_abort(struct mk_stream *s)
{
    struct h2_stream *hs = mk_stream_proto_data(s);

    if (!hs->closed) {
        nghttp2_submit_rst_stream(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
        h2_stream_drop_output(hs);
    }
}

static int h2_send_body(struct mk_stream *s, const void *data, size_t len,
                        int flags)
{
    struct h2_stream *hs = mk_stream_proto_data(s);
    struct h2_piece *p = mk_mem_zalloc(sizeof(*p));

    if (!p) {
        if (flags & MK_WRITE_FREE) {
            mk_mem_free((void *) data);
        }
        return -1;
    }
    p->len = len;
    if (flags & (MK_WRITE_FREE | MK_WRITE_STATIC)) {
        p->data = data;
        p->owned = (flags & MK_WRITE_FREE) != 0;
    }
    else {
        p->data = mk_mem_alloc(len ? len : 1);
        if (!p->data) {
            mk_mem_free(p);
            return -1;
        }
        memcpy((void *) p->data, data, len);
        p->owned = 1;
    }
    return h2_queue(hs, p);
}

static int h2_send_file(struct mk_stream *s, int fd, off_t offset, size_t len,
                        int close_fd)
{
    struct h2_stream *hs = mk_stream_proto_data(s);
    struct h2_piece *p = mk_mem_zalloc(sizeof(*p));

    if (!p) {
        if (close_fd) {
            close(fd);
        }
        return -1;
    }
    p->is_file = 1;
    p->fd = fd;
    p->close_fd = close_fd;
    p->offset = offset;
    p->len = len;
    return h2_queue(hs, p);
}

static int h2_end(struct mk_stream *s)
{
    struct h2_stream *hs = mk_stream_proto_data(s);

    hs->end_queued = 1;
    if (hs->deferred) {
        hs->deferred = 0;
        nghttp2_session_resume_data(hs->hc->ng, hs->id);
    }
    h2_conn_post_flush(hs->hc);
    return 0;
}

static int h2_send_interim(struct mk_stream *s, int status,
                           const char *const *fields)
{
    struct h2_stream *hs = mk_stream_proto_data(s);
    nghttp2_nv nv[8];
    char code[4], lower[256];
    size_t n = 0, used = 0, i, len;

    if (hs->head_sent) {
        return -1;
    }
    h2_status_digits(status, code);
    nv[n++] = (nghttp2_nv) { (uint8_t *) ":status", (uint8_t *) code, 7, 3,
                             NGHTTP2_NV_FLAG_NONE };
    for (i = 0; fields[i] && fields[i + 1] && n < 8; i += 2) {
        len = strlen(fields[i]);
        if (used + len > sizeof(lower)) {
            break;
        }
        h2_nv_lower(&nv[n++], lower + used, fields[i], len, fields[i + 1],
                    strlen(fields[i + 1]));
        used += len;
    }
    h2_conn_post_flush(hs->hc);
    return nghttp2_submit_headers(hs->hc->ng, NGHTTP2_FLAG_NONE, hs->id, NULL,
                                  nv, n, NULL) < 0 ? -1 : 0;
}

/* Server push (RFC 9113 8.4), off unless the site says `Push on` and the
 * client left SETTINGS_ENABLE_PUSH on: the promised GET runs as a stream
 * of its own (stages 20-40, so a node or a static file answers it), begun
 * at the posted pass, not inside the handler that asked. */
static int h2_push(struct mk_stream *s, const char *path, size_t len)
{
    struct h2_stream *hs = mk_stream_proto_data(s), *ps;
    struct h2_conn *hc = hs->hc;
    struct mk_ptr host = mk_request_header(s, "Host");
    const char *scheme = mk_conn_is_secure(hc->c) ? "https" : "http";
    nghttp2_nv nv[4];
    int32_t id;

    if (!hc->set->push || hc->shutdown || !host.data ||
        !nghttp2_session_get_remote_settings(hc->ng,
                                             NGHTTP2_SETTINGS_ENABLE_PUSH)) {
        return 1;
    }
    nv[0] = (nghttp2_nv) { (uint8_t *) ":method", (uint8_t *) "GET", 7, 3,
                           NGHTTP2_NV_FLAG_NONE };
    nv[1] = (nghttp2_nv) { (uint8_t *) ":path", (uint8_t *) path, 5, len,
                           NGHTTP2_NV_FLAG_NONE };
    nv[2] = (nghttp2_nv) { (uint8_t *) ":scheme", (uint8_t *) scheme, 7,
                           strlen(scheme), NGHTTP2_NV_FLAG_NONE };
    nv[3] = (nghttp2_nv) { (uint8_t *) ":authority", (uint8_t *) host.data,
                           10, host.len, NGHTTP2_NV_FLAG_NONE };
    ps = h2_stream_new(hc, 0);
    if (!ps || h2_pseudo(ps, &ps->method, "GET", 3) < 0 ||
        h2_pseudo(ps, &ps->path, path, len) < 0 ||
        h2_pseudo(ps, &ps->authority, host.data, host.len) < 0) {
        if (ps) {
            h2_stream_free(ps);
        }
        return -1;
    }
    id = nghttp2_submit_push_promise(hc->ng, NGHTTP2_FLAG_NONE, hs->id, nv, 4,
                                     ps);
    if (id < 0) {
        h2_stream_free(ps);
        return id == NGHTTP2_ERR_PUSH_DISABLED ? 1 : -1;
    }
    ps->id = id;
    ps->promised = 1;
    h2_conn_post_flush(hc);
    return 0;
}

static void h2_body_pause(struct mk_stream *s)
{
    struct h2_stream *hs = mk_stream_proto_data(s);

    hs->paused = 1;
}

static void h2_body_resume(struct mk_stream *s)
{
    struct h2_stream *hs = mk_stream_proto_data(s);

    hs->paused = 0;
    h2_conn_post_flush(hs->hc);        /* the posted pass hands it over */
}

const struct mk_stream_ops h2_stream_ops = {
    .send_head    = h2_send_head,
    .send_body    = h2_send_body,
    .send_file    = h2_send_file,
    .end          = h2_end,
    .body_pause   = h2_body_pause,
    .body_resume  = h2_body_resume,
    .shares_conn  = 1,                 /* a backend session per stream */
    .version      = "HTTP/2",
    .send_interim = h2_send_interim,
    .push         = h2_push,
    .abort        = h2_abort,
};

/* ---- DATA frames ------------------------------------------------------ */

/* nghttp2 asks how much of the body may go in the next DATA frame (at
 * most `length`); the bytes stay here until h2_stream_write_data. */
ssize_t h2_stream_read(struct h2_stream *hs, size_t length,
                       uint32_t *data_flags)
{
    size_t n = hs->out_len < length ? hs->out_len : length;

    if (n == 0 && !hs->end_queued) {
        hs->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == hs->out_len && hs->end_queued) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (hs->s) {
            nghttp2_nv nv[H2_NV_MAX];
            char lower[MK_RESPONSE_FIELDS_ROOM];
            size_t k = h2_fields(hs->s, nv, 0, lower, 1);
            if (k > 0 && nghttp2_submit_trailer(hs->hc->ng, hs->id, nv,
                                                k) == 0) {
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            }
        }
    }
    return (ssize_t) n;
}

/* One DATA frame: its header, then `length` bytes of the queued pieces,
 * into the connection's write queue. On TLS a file piece is read into the
 * frame; on a plain socket it goes as a file range (sendfile): the range
 * that ends it takes its descriptor, earlier ones a duplicate, so no
 * queued range outlives the descriptor it reads. 0, or -1. */
int h2_stream_write_data(struct h2_stream *hs, const uint8_t *framehd,
                         size_t length)
{
    struct mk_conn *c = hs->hc->c;

    if (mk_conn_write(c, framehd, 9, MK_WRITE_COPY) < 0) {
        return -1;
    }
    while (length > 0 && !mk_list_is_empty(&hs->out)) {
        struct h2_piece *p = mk_list_entry(hs->out.next, struct h2_piece,
                                           _head);
        size_t left = p->len - p->off, take = left < length ? left : length;
        int fd;

        if (!p->is_file) {
            if (mk_conn_write(c, p->data + p->off, take, MK_WRITE_COPY) < 0) {
                return -1;
            }
        }
        else if (mk_conn_is_secure(c)) {
            /* a layer that encrypts reads the file into memory anyway:
             * read it here, one pread per frame, no descriptor to share */
            char *buf = mk_mem_alloc(take);
            ssize_t n = buf ? pread(p->fd, buf, take,
                                    p->offset + (off_t) p->off) : -1;
            if (n != (ssize_t) take ||
                mk_conn_write(c, buf, take, MK_WRITE_FREE) < 0) {
                if (n != (ssize_t) take) {
                    mk_mem_free(buf);
                }
                return -1;
            }
        }
        else if (take == left && p->close_fd) {
            p->close_fd = 0;           /* the queue closes it */
            if (mk_conn_write_file(c, p->fd, p->offset + (off_t) p->off, take,
                                   1) < 0) {
                return -1;
            }
        }
        else {
            fd = dup(p->fd);
            if (fd < 0 || mk_conn_write_file(c, fd, p->offset + (off_t) p->off,
                                             take, 1) < 0) {
                return -1;
            }
        }
        p->off += take;
        length -= take;
        hs->out_len -= take;
        if (!p->is_file) {
            hs->out_mem -= take;
        }
        if (p->off == p->len) {
            h2_piece_free(p);
        }
    }
    return 0;
}
