/*
 * Streams: one request/response exchange, whatever protocol carries it.
 * The protocol creates the stream and gives it a head; the stream resolves
 * vhost, path and location, runs stage 20 and the stage-30 handler, hands
 * the request body to that handler, and runs stage 40 when it is done. It
 * writes no protocol bytes: its response goes out through the ops the
 * protocol registered (mk_response.c).
 */
#include <stddef.h>
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

static void stream_on_timer(struct mk_timer *t, void *data)
{
    struct mk_stream *s = data;

    (void) t;
    if (s->ops->on_timeout) {
        s->ops->on_timeout(s);
    }
}

struct mk_stream *mk_stream_create(struct mk_conn *c,
                                   const struct mk_stream_ops *ops,
                                   void *proto_data, char *const *head_base)
{
    struct mk_stream *s = mk_worker_stream_get(c->worker);

    if (!s) {
        return NULL;
    }
    /* the pooled stream is reset field by field: the head's header array
     * and the response's field room are only read up to their counts */
    s->conn = c;
    s->ops = ops;
    s->proto_data = proto_data;
    s->id = ++c->streams;
    /* error pages of a request refused before its Host was read */
    s->vhost = c->listen->default_vhost ? c->listen->default_vhost
                                        : c->srv->default_vhost;
    s->location = NULL;
    s->handler = NULL;
    s->routed = NULL;
    /* all fields absent; the header array is read up to its count only */
    memset(&s->head, 0, offsetof(struct mk_http_request_head, headers));
    memset(s->head.known, 0xff, sizeof(s->head.known));
    s->head.method = MK_HTTP_METHOD_GET;
    s->head.version_minor = 1;
    s->head.head_len = 0;
    s->head_base = head_base;
    memset(&s->body, 0, sizeof(s->body));
    s->body.done = 1;
    memset(&s->resp, 0, offsetof(struct mk_response, fields));
    s->resp.content_length = -1;
    s->clean_path[0] = '\0';
    s->clean_ok = 0;
    s->start_ms = mk_event_loop_now(c->worker->loop);
    s->head_done = 0;
    s->failed = 0;
    s->body_too_large = 0;
    s->body_paused = 0;
    s->discard_body = 1;
    s->in_content = 0;
    s->done_run = 0;
    s->body_in = 0;
    mk_timer_init(&s->timer, stream_on_timer, s);
    s->discarding = 0;
    s->discarded = 0;
    s->upgrade = NULL;
    s->upgrade_data = NULL;
    s->upgrade_wants_choice = 0;
    s->upgrade_proto = NULL;
    s->upgrade_proto_data = NULL;
    s->plugin_data = NULL;
    mk_stream_hooks_init(s);
    return s;
}

void mk_stream_destroy(struct mk_stream *s)
{
    struct mk_conn *c = s->conn;

    mk_stream_done(s);
    mk_stream_hooks_close(s);
    mk_timer_disarm(mk_event_loop_timers(c->worker->loop), &s->timer);
    mk_mem_free(s->plugin_data);
    s->plugin_data = NULL;
    mk_worker_stream_put(c->worker, s);
}

void mk_stream_set_deadline(struct mk_stream *s, uint64_t ms_from_now)
{
    struct mk_event_loop *loop = s->conn->worker->loop;
    struct mk_timer_heap *h = mk_event_loop_timers(loop);

    if (ms_from_now == 0) {
        mk_timer_disarm(h, &s->timer);
        return;
    }
    if (mk_timer_arm(h, &s->timer, mk_event_loop_now(loop) + ms_from_now) < 0) {
        mk_err("[fd %d] stream %u: out of memory for a timer",
               s->conn->ev.fd, s->id);
        mk_conn_close(s->conn, 0);
    }
}

void mk_stream_done(struct mk_stream *s)
{
    struct mk_server *srv = s->conn->srv;
    size_t i;

    if (s->done_run || !s->head_done) {
        return;
    }
    s->done_run = 1;
    for (i = 0; i < srv->n_done; i++) {
        struct mk_plugin_inst *pi = srv->on_done[i];
        pi->p->on_done(pi->conf, s);
    }
}

/* ---- Stages ------------------------------------------------------------- */

static int stream_vhost_and_path(struct mk_stream *s)
{
    struct mk_conn *c = s->conn;
    const struct mk_http_request_head *h = &s->head;
    const char *buf = mk_stream_head_buf(s);
    struct mk_ptr host = mk_http_header_known(h, buf, MK_HDR_HOST);
    struct mk_ptr path = mk_http_span_ptr(buf, h->path);
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
    s->vhost = vh;
    if (h->target.len == 1 && buf[h->target.off] == '*') {
        memcpy(s->clean_path, "*", 2);           /* OPTIONS * */
        s->clean_ok = 1;
        return 0;
    }
    if (h->method == MK_HTTP_METHOD_CONNECT) {
        return 405;
    }
    if (path.len == 0) {
        path = MK_PTR_LIT("/");
    }
    n = mk_path_clean(path.data, path.len, s->clean_path,
                      sizeof(s->clean_path));
    if (n < 0) {
        return 400;
    }
    s->clean_ok = 1;
    s->location = mk_vhost_location(s->vhost, s->clean_path);
    return 0;
}

static void stream_content(struct mk_stream *s)
{
    struct mk_conn *c = s->conn;
    struct mk_plugin_inst *pi = s->handler;
    int ret;

    s->in_content = 1;
    if (pi && pi->p->on_body && !s->body.done) {
        s->discard_body = 0;
        if (s->ops->body_wanted) {
            s->ops->body_wanted(s);
        }
    }
    if (!pi) {
        ret = mk_static_handle(s, &c->srv->static_conf, &s->vhost->root);
    }
    else {
        /* the connection state is read first: a closed connection has
         * freed its streams */
        ret = pi->p->on_content(pi->conf, s);
        if (ret == MK_STAGE_NEXT && c->state == MK_CONN_OPEN &&
            !s->resp.ended) {
            ret = mk_response_error(s, 404) < 0 ? MK_STAGE_CLOSE
                                                : MK_STAGE_HANDLED;
        }
        /* The end-of-body call comes for every request, so a handler never
         * has to ask whether a body exists. */
        else if (ret == MK_STAGE_HANDLED && pi->p->on_body &&
                 c->state == MK_CONN_OPEN &&
                 s->body.mode == MK_HTTP_BODY_NONE &&
                 pi->p->on_body(pi->conf, s, NULL, 0) < 0) {
            ret = MK_STAGE_CLOSE;
        }
    }
    if (ret == MK_STAGE_CLOSE) {
        mk_conn_fail(c);
    }
}

/* Stage 20, then stage 30. A stage that says CLOSE fails the connection
 * at the posted pass (mk_conn_fail), never inside this call: a protocol
 * calls mk_stream_begin from its own callbacks (HTTP/2 from inside
 * nghttp2's), which must not see the connection freed under them. */
static void stream_stages(struct mk_stream *s)
{
    struct mk_conn *c = s->conn;
    struct mk_server *srv = c->srv;
    size_t i;

    for (i = 0; i < srv->n_request; i++) {
        struct mk_plugin_inst *pi = srv->on_request[i];
        int ret = pi->p->on_request(pi->conf, s);

        if (ret == MK_STAGE_NEXT) {
            continue;
        }
        if (ret == MK_STAGE_CLOSE) {
            mk_conn_fail(c);
        }
        return;                         /* HANDLED: the plugin answered */
    }
    stream_content(s);
}

int mk_stream_begin(struct mk_stream *s)
{
    struct mk_conn *c = s->conn;
    struct mk_server *srv = c->srv;
    const struct mk_location *loc;
    int status;

    s->head_done = 1;
    s->start_ms = mk_event_loop_now(c->worker->loop);
    status = stream_vhost_and_path(s);
    if (status) {
        return status;
    }
    loc = s->location;
    if (loc) {
        s->handler = loc->handler >= 0 ? &srv->plugins[loc->handler] : NULL;
    }
    else {
        s->handler = s->vhost->handler >= 0 ? &srv->plugins[s->vhost->handler]
                                            : NULL;
    }
    s->routed = s->handler;
    mk_http_body_init(&s->body, &s->head);
    if (s->head.has_content_length &&
        s->head.content_length > srv->conf.max_request_body) {
        /* answered before its body: dropped like any early answer's */
        if (mk_response_error(s, 413) < 0) {
            mk_conn_fail(c);
        }
        return 0;
    }
    if (mk_stream_hooks_open(s) < 0) {
        return 0;                       /* refused, and answered */
    }
    stream_stages(s);
    return 0;
}

/* ---- Body ---------------------------------------------------------------- */

int mk_stream_body(struct mk_stream *s, const char *data, size_t n)
{
    struct mk_plugin_inst *pi = s->handler;

    if (s->discard_body) {
        return 0;                 /* nobody reads it (HTTP/1.1 never asks) */
    }
    if (s->body_in + n > s->conn->srv->conf.max_request_body) {
        s->body_too_large = 1;
        return -1;
    }
    s->body_in += n;
    return pi->p->on_body(pi->conf, s, data, n) < 0 ? -1 : 0;
}

int mk_stream_body_end(struct mk_stream *s)
{
    struct mk_plugin_inst *pi = s->handler;

    if (s->discard_body) {
        return 0;
    }
    return pi->p->on_body(pi->conf, s, NULL, 0) < 0 ? -1 : 0;
}

struct mk_http_request_head *mk_stream_head(struct mk_stream *s)
{
    return &s->head;
}

void *mk_stream_proto_data(const struct mk_stream *s)
{
    return s->proto_data;
}

uint32_t mk_stream_id(const struct mk_stream *s)
{
    return s->id;
}

int mk_stream_shares_conn(const struct mk_stream *s)
{
    return s->ops->shares_conn;
}

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
    return mk_stream_head_buf(r);
}

enum mk_http_method mk_request_method(const struct mk_stream *r)
{
    return r->head.method;
}

struct mk_ptr mk_request_target(const struct mk_stream *r)
{
    return mk_http_span_ptr(mk_stream_head_buf(r), r->head.target);
}

struct mk_ptr mk_request_path(const struct mk_stream *r)
{
    return mk_http_span_ptr(mk_stream_head_buf(r), r->head.path);
}

struct mk_ptr mk_request_query(const struct mk_stream *r)
{
    return mk_http_span_ptr(mk_stream_head_buf(r), r->head.query);
}

struct mk_ptr mk_request_header(const struct mk_stream *r, const char *name)
{
    return mk_http_header_get(&r->head, mk_stream_head_buf(r), name);
}

int mk_request_version_minor(const struct mk_stream *r)
{
    return r->head.version_minor;
}

const char *mk_request_protocol(const struct mk_stream *r)
{
    if (r->ops->version) {
        return r->ops->version;
    }
    return r->head.version_minor ? "HTTP/1.1" : "HTTP/1.0";
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
    return r->id;
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
    if (r->ops->body_pause) {
        r->ops->body_pause(r);
    }
}

void mk_request_body_resume(struct mk_stream *r)
{
    if (!r->body_paused) {
        return;
    }
    r->body_paused = 0;
    if (r->ops->body_resume) {
        r->ops->body_resume(r);
    }
}

/* ---- Content claims and upgrade claims (mk_plugin.h) ------------------- */

int mk_request_claim(struct mk_stream *r, const struct mk_plugin *p)
{
    struct mk_server *srv = r->conn->srv;
    size_t i;

    if (r->in_content || !p->on_content) {
        return -1;
    }
    for (i = 0; i < srv->plugin_count; i++) {
        if (srv->plugins[i].p == p) {
            r->handler = &srv->plugins[i];
            return 0;
        }
    }
    return -1;
}

int mk_session_open_backend(struct mk_session *s, struct mk_stream *r,
                            const char *const *vars)
{
    struct mk_plugin_inst *pi = r->routed;

    if (!pi || !pi->p->open_backend) {
        return 503;                      /* the site's handler has no nodes */
    }
    return pi->p->open_backend(pi->conf, s, r, vars);
}


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
