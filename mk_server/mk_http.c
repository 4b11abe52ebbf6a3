/*
 * The built-in HTTP/1.1 protocol handler (RFC 9112): turns the bytes of a
 * connection into streams, one at a time (the stream runs the stages),
 * decodes request bodies into them, serialises their responses
 * (mk_http_response.c), and moves on to the next pipelined request once a
 * response has ended and its body was read.
 *
 * Buffer layout while a request lives: the head stays at the start of the
 * connection's read buffer (the parsed spans point into it), body bytes
 * are consumed right after it, and pipelined bytes wait behind. Only when
 * the request is complete is the head dropped from the buffer.
 */
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_server/mk_conn.h"

/* Queued response bytes past which a pipelined request waits. */
#define MK_HTTP_PIPELINE_QUEUE (64 * 1024)

static void http_process(struct mk_conn *c);
static const struct mk_stream_ops http_stream_ops;

/* HTTP/1.1's per-connection state is its one stream in flight (NULL
 * between requests): nothing to allocate per connection. */
static struct mk_stream *http_stream(const struct mk_conn *c)
{
    return c->proto_data;
}

/* The first request's head has HeaderTimeout; a connection whose TLS
 * handshake ends mid-request keeps the request's own deadline. */
static void http_on_start(struct mk_conn *c)
{
    if (!http_stream(c)) {
        mk_conn_set_deadline(c, c->srv->conf.header_timeout);
    }
}

static struct mk_stream *http_stream_create(struct mk_conn *c)
{
    struct mk_stream *r = mk_stream_create(c, &http_stream_ops, NULL, &c->in);

    if (!r) {
        return NULL;
    }
    mk_http_parser_init(&r->parser, &c->srv->limits);
    c->proto_data = r;
    return r;
}

/* Stage 40 has run. An upgrade claimed and never accepted is released; one
 * accepted whose connection closes before the switch frees its protocol
 * state the way the connection would have. */
static void http_stream_destroy(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;

    if (r->upgrade && r->upgrade_data && r->upgrade->release) {
        r->upgrade->release(r->upgrade_data);     /* never accepted */
    }
    if (c->proto_data == r) {
        c->proto_data = NULL;
    }
    if (r->upgrade_proto && r->upgrade_proto->on_close) {
        const struct mk_proto *keep = c->proto;
        void *keep_data = c->proto_data;

        c->proto = r->upgrade_proto;
        c->proto_data = r->upgrade_proto_data;
        r->upgrade_proto->on_close(c);
        c->proto = keep;
        c->proto_data = keep_data;
    }
    mk_stream_destroy(r);
}

/* A request the parser refused: answer and close (the rest of the input
 * cannot be trusted to be framed). */
static void http_fail(struct mk_stream *r, int status)
{
    struct mk_conn *c = r->conn;         /* r may be gone after the answer */

    r->failed = 1;
    mk_response_close(r);
    if (mk_response_error(r, status) < 0) {
        mk_conn_close_internal(c, 0);
        return;
    }
    mk_conn_close_internal(c, 1);                 /* flush, linger, close */
}

/* ---- Body ---------------------------------------------------------------- */

/* Removes `n` decoded body bytes from behind the head. */
static void http_body_consume(struct mk_conn *c, uint32_t off, long n)
{
    memmove(c->in + off, c->in + off + n, c->in_len - off - (size_t) n);
    c->in_len -= (uint32_t) n;
}

/* A body nobody reads: its request was answered first (stage 20, a 413)
 * or its handler takes no body. It is read and dropped so that the next
 * pipelined request is not lost, but only up to MaxDiscardBody bytes on
 * the wire (chunk framing counts) and for BodyTimeout from the first drop,
 * never refreshed: past either bound, or on a malformed chunk, the
 * connection closes once the response is out. */
static int http_on_body_data(void *ctx, const char *data, size_t n)
{
    return mk_stream_body(ctx, data, n);
}

static void http_discard_body(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    uint64_t max = c->srv->conf.max_discard_body;
    uint32_t off = r->head.head_len;
    size_t avail = c->in_len - off;
    long n;

    if (r->resp.close) {
        return;                   /* closing anyway: the linger drops it */
    }
    if (!r->discarding) {
        r->discarding = 1;
        mk_conn_set_deadline(c, c->srv->conf.body_timeout);
    }
    if (avail > max - r->discarded) {
        avail = (size_t) (max - r->discarded);
    }
    n = mk_http_body_feed(&r->body, c->in + off, avail, NULL, NULL);
    if (n > 0) {
        http_body_consume(c, off, n);
        r->discarded += (uint64_t) n;
    }
    if (r->body.done || (n >= 0 && r->discarded < max)) {
        return;
    }
    if (n < 0 && !r->resp.head_sent) {
        http_fail(r, r->body.status ? r->body.status : 400);
        return;
    }
    mk_info("[fd %d] client %s: unread request body %s; closing after the "
            "response", c->ev.fd, mk_conn_peer_str(c),
            n < 0 ? "malformed" : "over MaxDiscardBody");
    r->resp.close = 1;
}

/* Feeds buffered body bytes; returns -1 when the connection must close. */
static int http_feed_body(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    uint32_t off = r->head.head_len;
    long n;

    if (r->body.done || r->body_paused) {
        return 0;
    }
    if (r->discard_body) {
        if (r->in_content || r->resp.head_sent) {
            http_discard_body(r);
        }
        return 0;
    }
    n = mk_http_body_feed(&r->body, c->in + off, c->in_len - off,
                          http_on_body_data, r);
    if (n < 0) {
        if (r->body_too_large && !r->resp.head_sent) {
            http_fail(r, 413);
            return 0;
        }
        if (r->body.status && !r->resp.head_sent) {
            http_fail(r, r->body.status);
            return 0;
        }
        return -1;
    }
    if (n > 0) {
        http_body_consume(c, off, n);
    }
    if (r->body.done) {
        if (mk_stream_body_end(r) < 0) {
            return -1;
        }
    }
    else {
        mk_conn_set_deadline(c, c->srv->conf.body_timeout);
    }
    return 0;
}

/* ---- Request completion ------------------------------------------------ */

static int http_request_complete(struct mk_stream *r)
{
    return r->resp.ended && r->body.done;
}

/* The upgraded request is done: the claimant's protocol takes the
 * connection, and the bytes the client sent after the request are its
 * first input. Always -1: the HTTP loop stops here. */
static int http_switch(struct mk_conn *c, struct mk_stream *r)
{
    const struct mk_proto *proto = r->upgrade_proto;
    void *data = r->upgrade_proto_data;

    r->upgrade_proto = NULL;             /* the connection owns it now */
    http_stream_destroy(r);
    mk_conn_set_proto(c, proto, data);
    if (c->in_len > 0 || (c->flags & MK_CONN_F_EOF)) {
        if (proto->on_read(c) == MK_PROTO_CLOSE) {
            mk_conn_close_internal(c, 1);
        }
    }
    else {
        mk_conn_in_release_if_empty(c);
    }
    return -1;
}

/* Drops a finished request and decides: next request, idle or close. */
static int http_next(struct mk_conn *c)
{
    struct mk_stream *r = http_stream(c);
    int close_conn = r->resp.close;

    mk_stream_done(r);
    mk_conn_consume(c, r->head.head_len);
    if (r->upgrade_proto) {
        return http_switch(c, r);
    }
    http_stream_destroy(r);
    if (close_conn || mk_worker_is_draining(c->worker)) {
        mk_conn_close_internal(c, 1);
        return -1;
    }
    if (c->in_len == 0) {
        mk_conn_in_release_if_empty(c);
        if (c->flags & MK_CONN_F_EOF) {
            mk_conn_close_internal(c, 1);
            return -1;
        }
        mk_conn_set_deadline(c, c->srv->conf.keepalive_timeout);
    }
    else {
        mk_conn_set_deadline(c, c->srv->conf.header_timeout);
    }
    return 0;
}

/* The response ended: next request or close, from the posted pass
 * unless http_process is on the stack and picks it up. */
static void http_request_finish(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;

    if (c->flags & MK_CONN_F_PROCESSING) {
        return;
    }
    mk_conn_post(c, MK_CONN_F_WANT_PROCESS);
}

/* Posted pass: a resumed body, the next pipelined request, reading again
 * after the buffer had filled. */
static void http_on_posted(struct mk_conn *c)
{
    http_process(c);
    /* Reading stopped while the buffer was full behind a response or a
     * paused body; edge-triggered epoll will not tell us again. */
    if (c->state == MK_CONN_OPEN && (c->flags & MK_CONN_F_READABLE)) {
        mk_conn_read(c);
    }
}

/* ---- The loop over buffered input ------------------------------------- */

static int http_parse(struct mk_conn *c, struct mk_stream *r)
{
    struct mk_server *srv = c->srv;
    enum mk_http_parse_result res;
    size_t max = srv->limits.max_head + 1;

    res = mk_http_parse_head(&r->parser, c->in, c->in_len, &r->head);
    if (res == MK_HTTP_PARSE_OK) {
        int status = mk_stream_begin(r);

        if (status) {
            http_fail(r, status);
        }
        return 1;
    }
    if (res == MK_HTTP_PARSE_ERROR) {
        mk_debug("[fd %d] bad request: %s", c->ev.fd,
                 r->parser.error ? r->parser.error : "?");
        http_fail(r, r->parser.status ? r->parser.status : 400);
        return 0;
    }
    /* PARTIAL: make room for the rest of the head (the parser bounds it) */
    if (c->in_len == c->in_size && mk_conn_in_reserve(c, 1024, max) < 0) {
        http_fail(r, 431);
        return 0;
    }
    if (c->flags & MK_CONN_F_EOF) {
        mk_conn_close_internal(c, 0);             /* truncated request */
    }
    return 0;
}

/* A pipelined request waits while the answers before it are still queued
 * heavily: a queued file holds its descriptor until sent, so a client that
 * sends many requests and reads nothing would pin one per request (and
 * memory up to WriteQueueLimit). Small answers still leave together in one
 * writev. http_on_drain takes the pipeline up again. */
static int http_pipeline_held(const struct mk_conn *c)
{
    return c->wq_files > 0 || c->wq_bytes >= MK_HTTP_PIPELINE_QUEUE;
}

static void http_process(struct mk_conn *c)
{
    struct mk_stream *r;

    c->flags |= MK_CONN_F_PROCESSING;
    while (c->state == MK_CONN_OPEN && (c->flags & MK_CONN_F_DEAD) == 0) {
        r = http_stream(c);
        if (!r) {
            if (c->in_len == 0 || http_pipeline_held(c)) {
                break;
            }
            r = http_stream_create(c);
            if (!r) {
                mk_err("[fd %d] out of memory for a request", c->ev.fd);
                mk_conn_close_internal(c, 0);
                break;
            }
            mk_conn_set_deadline(c, c->srv->conf.header_timeout);
        }
        if (r->failed) {
            break;                        /* answered; the connection closes */
        }
        if (!r->head_done) {
            if (!http_parse(c, r)) {
                break;
            }
            continue;
        }
        if (http_feed_body(r) < 0) {
            mk_conn_close_internal(c, 0);
            break;
        }
        if (c->state != MK_CONN_OPEN || http_stream(c) != r) {
            break;
        }
        if (!http_request_complete(r)) {
            if (r->resp.ended && r->resp.close && r->discard_body) {
                /* nothing reads the rest of the body: close once the
                 * answer is out (the lingering close drops what follows) */
                mk_conn_close_internal(c, 1);
            }
            else if (!r->body.done && (c->flags & MK_CONN_F_EOF)) {
                mk_conn_close_internal(c, 0);     /* body cut short */
            }
            else if ((c->flags & MK_CONN_F_EOF) &&
                     c->in_len <= r->head.head_len) {
                /* the client left while its response was pending and
                 * nothing pipelined remains: abort, so the handler's
                 * backend (a zmq node) hears `end` now, not at a timeout */
                mk_debug("[fd %d] client closed before its response",
                         c->ev.fd);
                mk_conn_close_internal(c, 0);
            }
            break;                        /* wait: body bytes or response */
        }
        if (http_next(c) < 0) {
            break;
        }
    }
    c->flags &= ~MK_CONN_F_PROCESSING;
}

/* ---- mk_proto callbacks ------------------------------------------------ */

/* Prior knowledge (RFC 9113 3.3): a connection whose first bytes are a
 * loaded protocol's preface is that protocol's. 1: switched, 0: not a
 * preface, -1: a preface's beginning, wait for more. */
static int http_preface(struct mk_conn *c)
{
    const struct mk_server *srv = c->srv;
    size_t i, n, m;

    if (c->streams != 0 || http_stream(c)) {
        return 0;
    }
    for (i = 0; i < srv->proto_count; i++) {
        const struct mk_proto_decl *d = srv->protos[i].decl;
        if (!d->preface) {
            continue;
        }
        n = strlen(d->preface);
        m = c->in_len < n ? c->in_len : n;
        if (memcmp(c->in, d->preface, m) != 0) {
            continue;
        }
        if (m < n) {
            return -1;
        }
        mk_conn_set_proto(c, d->proto, NULL);
        if (d->proto->on_start) {
            d->proto->on_start(c);
        }
        return 1;
    }
    return 0;
}

static int http_on_read(struct mk_conn *c)
{
    if (c->flags & MK_CONN_F_PROCESSING) {
        return MK_PROTO_OK;
    }
    switch (http_preface(c)) {
    case 1:
        return c->proto->on_read(c);
    case -1:
        return (c->flags & MK_CONN_F_EOF) ? MK_PROTO_CLOSE : MK_PROTO_OK;
    default:
        break;
    }
    http_process(c);
    if (c->state == MK_CONN_OPEN && !http_stream(c) && c->in_len == 0 &&
        (c->flags & MK_CONN_F_EOF)) {
        return MK_PROTO_CLOSE;
    }
    return MK_PROTO_OK;
}

/* The queue is empty: a pipelined request held behind it goes on (at the
 * posted pass: this runs inside the flush). */
static int http_on_drain(struct mk_conn *c)
{
    if (!http_stream(c) && c->in_len > 0) {
        mk_conn_post(c, MK_CONN_F_WANT_PROCESS);
    }
    return MK_PROTO_OK;
}

static int http_on_timeout(struct mk_conn *c)
{
    struct mk_stream *r = http_stream(c);

    if (r && !r->head_done && c->in_len > 0) {
        mk_info("[fd %d] client %s timed out sending the request head",
                c->ev.fd, mk_conn_peer_str(c));
        http_fail(r, 408);
        return MK_PROTO_OK;
    }
    if (r && r->head_done && !r->body.done) {
        mk_info("[fd %d] client %s timed out sending the request body",
                c->ev.fd, mk_conn_peer_str(c));
        if (!r->resp.head_sent) {
            http_fail(r, 408);
            return MK_PROTO_OK;
        }
    }
    if (r && r->in_content && !r->resp.ended && r->body.done) {
        /* the content handler owns its own deadlines */
        return MK_PROTO_OK;
    }
    return MK_PROTO_CLOSE;               /* idle keep-alive connection */
}

static int http_is_idle(const struct mk_conn *c)
{
    return http_stream(c) == NULL;
}

static void http_on_close(struct mk_conn *c)
{
    struct mk_stream *r = http_stream(c);

    if (!r) {
        return;
    }
    mk_stream_done(r);
    http_stream_destroy(r);
}

/* ---- Stream ops ----------------------------------------------------------- */

/* RFC 9110 10.1.1: the handler wants the body, so invite it. */
static void http_body_wanted(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;

    if (r->head.expect_continue && r->head.version_minor >= 1 &&
        c->in_len == r->head.head_len) {
        mk_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25,
                      MK_WRITE_STATIC);
    }
}

/* Buffered body bytes wait behind a paused body; the posted pass feeds
 * them unless http_process is on the stack. */
static void http_body_resume(struct mk_stream *r)
{
    if ((r->conn->flags & MK_CONN_F_PROCESSING) == 0) {
        mk_conn_post(r->conn, MK_CONN_F_WANT_PROCESS);
    }
}

static int http_stream_end(struct mk_stream *r)
{
    int ret = mk_http_response_end_bytes(r);

    http_request_finish(r);
    return ret;
}

static const struct mk_stream_ops http_stream_ops = {
    .send_head   = mk_http_response_send_head,
    .send_body   = mk_http_response_send_body,
    .send_file   = mk_http_response_send_file,
    .send_shared = mk_http_response_send_shared,
    .end         = http_stream_end,
    .send_raw    = mk_http_response_send_raw,
    .will_close  = mk_http_response_will_close,
    .body_wanted = http_body_wanted,
    .body_resume = http_body_resume,
};

const struct mk_proto mk_http_proto = {
    .name       = "http/1.1",
    .on_start   = http_on_start,
    .on_posted  = http_on_posted,
    .on_read    = http_on_read,
    .on_drain   = http_on_drain,
    .on_timeout = http_on_timeout,
    .on_close   = http_on_close,
    .is_idle    = http_is_idle,
};

/* ---- Upgrades (mk_plugin.h) --------------------------------------------- */

int mk_request_upgrade_accept(struct mk_stream *r, const char *choice,
                              size_t len)
{
    struct mk_conn *c = r->conn;
    void *data = r->upgrade_data;
    const struct mk_proto *proto;

    if (!mk_request_is_upgrade(r) || r->resp.head_sent || r->resp.ended ||
        http_stream(c) != r || c->state != MK_CONN_OPEN) {
        return -1;
    }
    r->upgrade_data = NULL;              /* the claimant's again */
    r->resp.status = 101;
    r->resp.raw = 1;
    r->resp.head_sent = 1;
    proto = r->upgrade->accept(data, r, choice, len, &r->upgrade_proto_data);
    if (!proto) {
        mk_conn_close_internal(c, 1);
        return -1;
    }
    r->upgrade_proto = proto;
    /* an upgrade request has no body (stage 20 refused those): what
     * follows the head is the new protocol's */
    r->body.done = 1;
    r->resp.ended = 1;
    http_request_finish(r);
    return 0;
}
