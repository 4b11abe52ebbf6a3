/*
 * The built-in HTTP/1.1 protocol handler (RFC 9112): turns the bytes of a
 * connection into requests, runs stages 20 (request) and 30 (content),
 * streams request bodies to the content handler, and moves on to the next
 * pipelined request once a response has ended and its body was read.
 *
 * Buffer layout while a request lives: the head stays at the start of the
 * connection's read buffer (the parsed spans point into it), body bytes
 * are consumed right after it, and pipelined bytes wait behind. Only when
 * the request is complete is the head dropped from the buffer.
 */
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

/* Queued response bytes past which a pipelined request waits. */
#define MK_HTTP_PIPELINE_QUEUE (64 * 1024)

static void http_process(struct mk_conn *c);

/* The first request's head has HeaderTimeout; a connection whose TLS
 * handshake ends mid-request keeps the request's own deadline. */
static void http_on_start(struct mk_conn *c)
{
    if (!c->req) {
        mk_conn_set_deadline(c, c->srv->conf.header_timeout);
    }
}

static struct mk_stream *http_request_new(struct mk_conn *c)
{
    struct mk_stream *r = mk_worker_stream_get(c->worker);

    if (!r) {
        return NULL;
    }
    r->conn = c;
    /* error pages of a request refused before its Host was read */
    r->vhost = c->listen->default_vhost ? c->listen->default_vhost
                                        : c->srv->default_vhost;
    r->location = NULL;
    r->handler = NULL;
    memset(&r->body, 0, sizeof(r->body));
    r->body.done = 1;
    memset(&r->resp, 0, sizeof(r->resp));
    r->resp.content_length = -1;
    r->head.method = MK_HTTP_METHOD_GET;
    r->head.version_minor = 1;
    r->head.head_len = 0;
    r->head.header_count = 0;
    r->clean_path[0] = '\0';
    r->clean_ok = 0;
    r->start_ms = mk_event_loop_now(c->worker->loop);
    r->seq = c->requests + 1;
    r->body_paused = 0;
    r->discard_body = 1;
    r->discarding = 0;
    r->discarded = 0;
    r->in_content = 0;
    r->done_run = 0;
    r->upgrade = NULL;
    r->upgrade_data = NULL;
    r->upgrade_wants_choice = 0;
    r->upgrade_proto = NULL;
    r->upgrade_proto_data = NULL;
    r->head_done = 0;
    r->failed = 0;
    r->body_too_large = 0;
    r->plugin_data = NULL;
    mk_http_parser_init(&r->parser, &c->srv->limits);
    return r;
}

void mk_http_request_free(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;

    if (r->upgrade && r->upgrade_data && r->upgrade->release) {
        r->upgrade->release(r->upgrade_data);     /* never accepted */
    }
    if (r->upgrade_proto && r->upgrade_proto->on_close) {
        /* accepted, but the connection closes before the switch: the
         * protocol's state is freed the way the connection's would be */
        const struct mk_proto *keep = c->proto;
        void *keep_data = c->proto_data;

        c->proto = r->upgrade_proto;
        c->proto_data = r->upgrade_proto_data;
        r->upgrade_proto->on_close(c);
        c->proto = keep;
        c->proto_data = keep_data;
    }
    mk_mem_free(r->plugin_data);
    r->plugin_data = NULL;
    if (c->req == r) {
        c->req = NULL;
    }
    mk_worker_stream_put(c->worker, r);
}

static void http_stage_done(struct mk_stream *r)
{
    struct mk_server *srv = r->conn->srv;
    size_t i;

    if (r->done_run || !r->head_done) {
        return;
    }
    r->done_run = 1;
    for (i = 0; i < srv->n_done; i++) {
        struct mk_plugin_inst *pi = srv->on_done[i];
        pi->p->on_done(pi->conf, r);
    }
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

/* ---- Stages ------------------------------------------------------------- */

static int http_vhost_and_path(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    const struct mk_http_request_head *h = &r->head;
    struct mk_ptr host = mk_http_header_known(h, c->in, MK_HDR_HOST);
    struct mk_ptr path = mk_http_span_ptr(c->in, h->path);
    struct mk_vhost *vh;
    long n;
    size_t i;

    if (host.data) {
        /* strip the port, keeping [v6] literals whole */
        for (i = host.len; i > 0; i--) {
            if (host.data[i - 1] == ':') {
                host.len = i - 1;
                break;
            }
            if (host.data[i - 1] < '0' || host.data[i - 1] > '9') {
                break;
            }
        }
    }
    vh = mk_server_vhost_lookup(c->srv, c->listen, host.data, host.len);
    if (!vh) {
        return 421;              /* that site is not served on this listener */
    }
    r->vhost = vh;
    if (h->target.len == 1 && c->in[h->target.off] == '*') {
        memcpy(r->clean_path, "*", 2);           /* OPTIONS * */
        r->clean_ok = 1;
        return 0;
    }
    if (h->method == MK_HTTP_METHOD_CONNECT) {
        return 405;
    }
    if (path.len == 0) {
        path = MK_PTR_LIT("/");
    }
    n = mk_path_clean(path.data, path.len, r->clean_path,
                      sizeof(r->clean_path));
    if (n < 0) {
        return 400;
    }
    r->clean_ok = 1;
    r->location = mk_vhost_location(r->vhost, r->clean_path);
    return 0;
}

static void http_content(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    struct mk_plugin_inst *pi = r->handler;
    int ret;

    r->in_content = 1;
    if (pi && pi->p->on_body && !r->body.done) {
        r->discard_body = 0;
        /* RFC 9110 10.1.1: the handler wants the body, so invite it */
        if (r->head.expect_continue && r->head.version_minor >= 1 &&
            c->in_len == r->head.head_len) {
            mk_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25,
                          MK_WRITE_STATIC);
        }
    }
    if (!pi) {
        ret = mk_static_handle(r, &c->srv->static_conf, &r->vhost->root);
    }
    else {
        ret = pi->p->on_content(pi->conf, r);
        if (ret == MK_STAGE_NEXT && c->state == MK_CONN_OPEN && c->req == r &&
            !r->resp.ended) {
            ret = mk_response_error(r, 404) < 0 ? MK_STAGE_CLOSE
                                                : MK_STAGE_HANDLED;
        }
        /* The end-of-body call comes for every request, so a handler never
         * has to ask whether a body exists. */
        else if (ret == MK_STAGE_HANDLED && pi->p->on_body &&
                 r->body.mode == MK_HTTP_BODY_NONE && c->req == r &&
                 c->state == MK_CONN_OPEN &&
                 pi->p->on_body(pi->conf, r, NULL, 0) < 0) {
            ret = MK_STAGE_CLOSE;
        }
    }
    if (ret == MK_STAGE_CLOSE) {
        mk_conn_close_internal(c, 0);
    }
}

/* Stage 20, then stage 30. */
static void http_stages(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    struct mk_server *srv = c->srv;
    size_t i;

    for (i = 0; i < srv->n_request; i++) {
        struct mk_plugin_inst *pi = srv->on_request[i];
        int ret = pi->p->on_request(pi->conf, r);

        if (ret == MK_STAGE_NEXT) {
            continue;
        }
        if (ret == MK_STAGE_CLOSE) {
            mk_conn_close_internal(c, 0);
        }
        return;                         /* HANDLED: the plugin answered */
    }
    http_content(r);
}

/* The head is complete: resolve vhost, path, location, limits; run 20/30. */
static void http_begin(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    struct mk_server *srv = c->srv;
    const struct mk_location *loc;
    int status;

    r->head_done = 1;
    c->requests++;
    r->seq = c->requests;
    r->start_ms = mk_event_loop_now(c->worker->loop);

    status = http_vhost_and_path(r);
    if (status) {
        http_fail(r, status);
        return;
    }
    loc = r->location;
    if (loc) {
        r->handler = loc->handler >= 0 ? &srv->plugins[loc->handler] : NULL;
    }
    else {
        r->handler = r->vhost->handler >= 0 ? &srv->plugins[r->vhost->handler]
                                            : NULL;
    }
    mk_http_body_init(&r->body, &r->head);
    if (r->head.has_content_length &&
        r->head.content_length > srv->conf.max_request_body) {
        /* answered before its body: dropped like any early answer's */
        if (mk_response_error(r, 413) < 0) {
            mk_conn_close_internal(c, 0);
        }
        return;
    }
    http_stages(r);
}

/* ---- Body ---------------------------------------------------------------- */

static int http_on_body_data(void *ctx, const char *data, size_t n)
{
    struct mk_stream *r = ctx;
    struct mk_plugin_inst *pi = r->handler;

    /* only a handler that takes the body gets here (discard_body is 0);
     * the decoder counts `n` into body.total only after this call */
    if (r->body.total + n > r->conn->srv->conf.max_request_body) {
        r->body_too_large = 1;
        return -1;
    }
    return pi->p->on_body(pi->conf, r, data, n) < 0 ? -1 : 0;
}

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
    struct mk_plugin_inst *pi = r->handler;
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
        if (pi && pi->p->on_body &&
            pi->p->on_body(pi->conf, r, NULL, 0) < 0) {
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
    mk_http_request_free(r);
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
    struct mk_stream *r = c->req;
    int close_conn = r->resp.close;

    http_stage_done(r);
    mk_conn_consume(c, r->head.head_len);
    if (r->upgrade_proto) {
        return http_switch(c, r);
    }
    mk_http_request_free(r);
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

void mk_http_request_finish(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;

    if (c->flags & MK_CONN_F_PROCESSING) {
        return;                          /* http_process picks it up */
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
        http_begin(r);
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
        r = c->req;
        if (!r) {
            if (c->in_len == 0 || http_pipeline_held(c)) {
                break;
            }
            r = http_request_new(c);
            if (!r) {
                mk_err("[fd %d] out of memory for a request", c->ev.fd);
                mk_conn_close_internal(c, 0);
                break;
            }
            c->req = r;
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
        if (c->state != MK_CONN_OPEN || c->req != r) {
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

static int http_on_read(struct mk_conn *c)
{
    if (c->flags & MK_CONN_F_PROCESSING) {
        return MK_PROTO_OK;
    }
    http_process(c);
    if (c->state == MK_CONN_OPEN && !c->req && c->in_len == 0 &&
        (c->flags & MK_CONN_F_EOF)) {
        return MK_PROTO_CLOSE;
    }
    return MK_PROTO_OK;
}

/* The queue is empty: a pipelined request held behind it goes on (at the
 * posted pass: this runs inside the flush). */
static int http_on_drain(struct mk_conn *c)
{
    if (!c->req && c->in_len > 0) {
        mk_conn_post(c, MK_CONN_F_WANT_PROCESS);
    }
    return MK_PROTO_OK;
}

static int http_on_timeout(struct mk_conn *c)
{
    struct mk_stream *r = c->req;

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

static void http_on_close(struct mk_conn *c)
{
    struct mk_stream *r = c->req;

    if (!r) {
        return;
    }
    http_stage_done(r);
    mk_http_request_free(r);
}

const struct mk_proto mk_http_proto = {
    .name       = "http/1.1",
    .on_start   = http_on_start,
    .on_posted  = http_on_posted,
    .on_read    = http_on_read,
    .on_drain   = http_on_drain,
    .on_timeout = http_on_timeout,
    .on_close   = http_on_close,
};

/* ---- Request accessors (mk_plugin.h) ----------------------------------- */

struct mk_conn *mk_request_conn(const struct mk_stream *r)
{
    return r->conn;
}

struct mk_vhost *mk_request_vhost(const struct mk_stream *r)
{
    return r->vhost;
}

const struct mk_http_request_head *mk_request_head(const struct mk_stream *r)
{
    return &r->head;
}

const char *mk_request_buf(const struct mk_stream *r)
{
    return r->conn->in;
}

enum mk_http_method mk_request_method(const struct mk_stream *r)
{
    return r->head.method;
}

struct mk_ptr mk_request_target(const struct mk_stream *r)
{
    return mk_http_span_ptr(r->conn->in, r->head.target);
}

struct mk_ptr mk_request_path(const struct mk_stream *r)
{
    return mk_http_span_ptr(r->conn->in, r->head.path);
}

struct mk_ptr mk_request_query(const struct mk_stream *r)
{
    return mk_http_span_ptr(r->conn->in, r->head.query);
}

struct mk_ptr mk_request_header(const struct mk_stream *r, const char *name)
{
    return mk_http_header_get(&r->head, r->conn->in, name);
}

int mk_request_version_minor(const struct mk_stream *r)
{
    return r->head.version_minor;
}

const char *mk_request_clean_path(const struct mk_stream *r)
{
    return r->clean_ok ? r->clean_path : NULL;
}

const char *mk_request_location(const struct mk_stream *r)
{
    return r->location ? r->location->prefix : "/";
}

uint64_t mk_request_start_ms(const struct mk_stream *r)
{
    return r->start_ms;
}

uint32_t mk_request_seq(const struct mk_stream *r)
{
    return r->seq;
}

void *mk_request_plugin_data(const struct mk_stream *r,
                             const struct mk_plugin *p)
{
    size_t i;

    if (!r->plugin_data) {
        return NULL;
    }
    for (i = 0; i < r->conn->srv->plugin_count; i++) {
        if (r->conn->srv->plugins[i].p == p) {
            return r->plugin_data[i];
        }
    }
    return NULL;
}

void mk_request_set_plugin_data(struct mk_stream *r,
                                const struct mk_plugin *p, void *data)
{
    struct mk_server *srv = r->conn->srv;
    size_t i;

    for (i = 0; i < srv->plugin_count; i++) {
        if (srv->plugins[i].p != p) {
            continue;
        }
        if (!r->plugin_data) {
            r->plugin_data = mk_mem_zalloc(srv->plugin_count * sizeof(void *));
            if (!r->plugin_data) {
                return;
            }
        }
        r->plugin_data[i] = data;
        return;
    }
}

void mk_request_body_pause(struct mk_stream *r)
{
    r->body_paused = 1;
}

void mk_request_body_resume(struct mk_stream *r)
{
    if (!r->body_paused) {
        return;
    }
    r->body_paused = 0;
    if ((r->conn->flags & MK_CONN_F_PROCESSING) == 0) {
        mk_conn_post(r->conn, MK_CONN_F_WANT_PROCESS);
    }
}

/* ---- Upgrades (mk_plugin.h) --------------------------------------------- */

int mk_request_upgrade(struct mk_stream *r, const struct mk_upgrade *u,
                       void *data, int wants_choice)
{
    if (r->upgrade || r->in_content) {
        return -1;                       /* one claim, before stage 30 */
    }
    r->upgrade = u;
    r->upgrade_data = data;
    r->upgrade_wants_choice = wants_choice;
    return 0;
}

int mk_request_is_upgrade(const struct mk_stream *r)
{
    return r->upgrade != NULL && r->upgrade_data != NULL;
}

int mk_request_upgrade_wants_choice(const struct mk_stream *r)
{
    return mk_request_is_upgrade(r) && r->upgrade_wants_choice;
}

int mk_request_upgrade_accept(struct mk_stream *r, const char *choice,
                              size_t len)
{
    struct mk_conn *c = r->conn;
    void *data = r->upgrade_data;
    const struct mk_proto *proto;

    if (!mk_request_is_upgrade(r) || r->resp.head_sent || r->resp.ended ||
        c->req != r || c->state != MK_CONN_OPEN) {
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
    mk_http_request_finish(r);
    return 0;
}
