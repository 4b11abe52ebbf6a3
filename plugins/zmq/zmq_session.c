/*
 * The worker side of the gateway: one session per client connection on
 * HTTP/1.x (one sid and node across keep-alive requests, as BlastBeat),
 * one per stream on a multiplexing protocol (mk_stream_shares_conn: HTTP/2,
 * lineproto), its sid and backend binding mk_server's, the
 * `uwsgi` packet of each request, the request body as `body` messages (an
 * empty one ends it), and the node's messages applied to the HTTP
 * response. Only the worker that owns a connection touches its session;
 * the gateway thread reaches it through this worker's inbox.
 */
#include <string.h>
#include <strings.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

struct zmq_session {
    uint8_t sid[ZMQ_SID_LEN];
    struct mk_session *ms;             /* mk_server's: sid, backend binding */
    struct mk_conn *conn;
    struct zmq_vconf *vc;              /* the site it counts against */
    struct zmq_conf *zc;
    struct mk_stream *r;               /* the request being answered */
    struct mk_http_body frame;         /* where the node's body ends */
    int close_delimited;               /* its head gave no length: the close
                                        * of the connection ends the body */
    int head_done;
    int structured;                    /* the head went out as fields */
    int head_only;                     /* a HEAD request: a body is dropped */
    int ended;                         /* response ended; r lives until on_done */
    int faulted;                       /* a framing fault went to the gateway */
    uint32_t seq;                      /* requests sent to the gateway */
    /* body flow control: cumulative bytes posted and acknowledged */
    uint64_t body_posted, body_acked;
    int body_held;                     /* we paused the request body */
    int upgraded;                      /* a WebSocket (any upgrade) session */
    int choosing;                      /* the 101 waits for the node's head */
    int accepted;                      /* the 101 went out */
    int own_stream;                    /* the stream's, not the connection's */
    int foreign;                       /* another plugin's standalone session
                                        * (socket.io): no connection, no
                                        * response; it owns `ms` */
    struct mk_timer timer;             /* NodeTimeout until the head arrives */
};

static _Thread_local struct zmq_worker *zmq_self;

/* ---- Worker start and stop ---------------------------------------------------- */

static void zmq_on_inbox(struct mk_channel *ch, struct mk_channel_msg *msg);

/*
 * The gateway alone reads and writes gw->workers[]: a worker's inbox is
 * handed to it, and taken back, through the gateway's own channel. Taking
 * it back waits for the gateway's word that it will never write to the
 * inbox again, given after its last deferred wake-up of it went out; only
 * then is the inbox (and its eventfd) released. The gateway outlives its
 * workers (it stops with its generation's plugins, after they joined), and
 * a gateway thread that died gives the same word to every worker.
 */
int zmq_worker_start(struct zmq_gw *gw, struct mk_worker *w)
{
    static const uint8_t none[ZMQ_SID_LEN];
    struct zmq_worker *zw = mk_mem_zalloc(sizeof(*zw));
    struct zmq_wire *attach = zmq_wire_create(ZMQ_WIRE_ATTACH, none);

    if (!zw || !attach) {
        goto error;
    }
    zw->gw = gw;
    zw->loop = mk_worker_loop(w);
    zw->timers = mk_event_loop_timers(zw->loop);
    zw->id = mk_worker_id(w);
    zw->sessions = mk_hash_create(256, 0);
    zw->detach = zmq_wire_create(ZMQ_WIRE_DETACH, none);
    if (!zw->sessions || !zw->detach ||
        mk_channel_init(&zw->inbox, mk_worker_loop(w), zmq_on_inbox, zw) < 0) {
        goto error;
    }
    zmq_self = zw;
    attach->worker = zw->id;
    attach->zw = zw;
    mk_channel_push(&gw->inbox, &attach->msg);
    return 0;

error:
    if (zw) {
        mk_hash_destroy(zw->sessions, NULL);
        if (zw->detach) {
            zmq_wire_destroy(zw->detach);
        }
    }
    if (attach) {
        zmq_wire_destroy(attach);
    }
    mk_mem_free(zw);
    return -1;
}

/* A session still here when the worker stops: another plugin's standalone
 * one, whose owner may outlive us this far; it forgets us first. */
static void zmq_session_free_at_exit(void *data)
{
    struct zmq_session *s = data;

    if (s->foreign) {
        mk_session_set_backend(s->ms, NULL, NULL);
    }
    mk_mem_free(s);
}

void zmq_worker_stop(struct zmq_gw *gw, struct mk_worker *w)
{
    struct zmq_worker *zw = zmq_self;

    if (!zw) {
        return;
    }
    /* this loop runs no more: a wake-up of the gateway it still owes
     * goes now, or the gateway would never read the DETACH below */
    mk_event_loop_flush(zw->loop);
    zw->detach->worker = zw->id;
    zw->detach->zw = zw;
    mk_channel_push(&gw->inbox, &zw->detach->msg);
    pthread_mutex_lock(&gw->handover_lock);
    while (!zw->detached && !gw->handover_closed) {
        pthread_cond_wait(&gw->handover_cond, &gw->handover_lock);
    }
    pthread_mutex_unlock(&gw->handover_lock);
    mk_channel_flush(&zw->inbox);                 /* frees what is left */
    mk_channel_release(&zw->inbox);
    mk_hash_destroy(zw->sessions, zmq_session_free_at_exit);
    mk_mem_free(zw);
    zmq_self = NULL;
}

/* The gateway is woken once this worker's batch of events is done, not
 * at the first request of the batch (it outlives the workers). */
static void zmq_to_gateway(struct zmq_wire *w)
{
    w->worker = zmq_self->id;
    mk_channel_push_deferred(&zmq_self->gw->inbox, &w->msg, zmq_self->loop);
}

/* ---- Stages (called from zmq.c) ------------------------------------------------ */

static void zmq_fail(struct zmq_session *s, int status);

static void zmq_on_node_timeout(struct mk_timer *t, void *data)
{
    struct zmq_session *s = data;

    mk_warn("zmq: no answer from the node within NodeTimeout");
    zmq_fail(s, 504);
}

/* The session serving r: its stream's on a multiplexing protocol, else
 * its connection's (kept in the connection's slot: HTTP/1.x allocates
 * nothing more per request). */
static struct zmq_session *zmq_session_of(const struct mk_stream *r)
{
    if (mk_stream_shares_conn(r)) {
        return mk_request_plugin_data(r, &mk_plugin_zmq);
    }
    return mk_conn_plugin_data(mk_request_conn(r), &mk_plugin_zmq);
}

static struct zmq_session *zmq_session_get(struct mk_stream *r)
{
    struct mk_conn *c = mk_request_conn(r);
    struct zmq_session *s = zmq_session_of(r);

    if (s) {
        return s;
    }
    s = mk_mem_zalloc(sizeof(*s));
    if (!s) {
        goto error;
    }
    /* mk_server draws the sid from the kernel CSPRNG: a sid is a
     * capability (spec 1.5) */
    s->ms = mk_session_create(mk_conn_server(c), mk_request_vhost(r), NULL, s);
    if (!s->ms) {
        goto error;
    }
    memcpy(s->sid, mk_session_sid(s->ms), ZMQ_SID_LEN);
    s->conn = c;
    s->own_stream = mk_stream_shares_conn(r);
    if (!s->own_stream) {
        mk_session_set_conn(s->ms, c);     /* one of many would be none */
    }
    mk_timer_init(&s->timer, zmq_on_node_timeout, s);
    if (mk_hash_set(zmq_self->sessions, (const char *) s->sid, ZMQ_SID_LEN,
                    s) < 0) {
        goto error;
    }
    if (s->own_stream) {
        mk_request_set_plugin_data(r, &mk_plugin_zmq, s);
        if (mk_request_plugin_data(r, &mk_plugin_zmq) != s) {
            mk_hash_del(zmq_self->sessions, (const char *) s->sid,
                        ZMQ_SID_LEN);
            goto error;              /* no memory for the stream's slots */
        }
    }
    else {
        mk_conn_set_plugin_data(c, &mk_plugin_zmq, s);
    }
    return s;

error:
    if (s) {
        mk_session_destroy(s->ms);
    }
    mk_mem_free(s);
    return NULL;
}

/* Takes one place under a cap (0: none); the counter is shared by every
 * worker, so the test and the increment are one atomic step. */
static int zmq_take(atomic_long *live, long long cap)
{
    long n = atomic_fetch_add(live, 1);

    if (cap && n >= cap) {
        atomic_fetch_sub(live, 1);
        return -1;
    }
    return 0;
}

static void zmq_session_unsite(struct zmq_session *s)
{
    if (s->vc) {
        atomic_fetch_sub(&s->vc->live, 1);
        atomic_fetch_sub(&s->zc->live, 1);
        s->vc = NULL;
    }
}

/* A session counts against the global and its site's Sessions from its
 * first request; a keep-alive request for another site moves it there
 * (the gateway rebinds it to that site's nodes). */
static int zmq_session_site(struct zmq_session *s, struct zmq_conf *zc,
                            struct zmq_vconf *vc, struct mk_stream *r)
{
    if (s->vc == vc) {
        return 0;
    }
    zmq_session_unsite(s);
    if (zmq_take(&zc->live, zc->sessions) < 0) {
        mk_warn("zmq: [ZMQ] Sessions (%lld) reached: 503", zc->sessions);
        return -1;
    }
    if (zmq_take(&vc->live, vc->sessions) < 0) {
        atomic_fetch_sub(&zc->live, 1);
        mk_warn("zmq: site %s: Sessions (%lld) reached: 503",
                mk_vhost_name(mk_request_vhost(r)), vc->sessions);
        return -1;
    }
    s->vc = vc;
    s->zc = zc;
    if (s->conn) {
        mk_conn_set_write_limit(s->conn, vc->write_queue);
    }
    return 0;
}

static int zmq_refuse(struct mk_stream *r, int status)
{
    if (status == 503) {
        mk_response_header(r, "Retry-After", "1");
    }
    return mk_response_error(r, status) < 0 ? MK_STAGE_CLOSE
                                            : MK_STAGE_HANDLED;
}

/* One piece of the session's client-side stream (request body, or a
 * WebSocket message) on its way to the node, counted against the credit
 * window. -1 without memory, 1 when the window is now full (the caller
 * stops reading its client until the gateway's ACK), else 0. */
static int zmq_post_piece(struct zmq_session *s, enum zmq_msg_type type,
                          const void *data, size_t len)
{
    struct zmq_wire *w = zmq_wire_create(ZMQ_WIRE_BODY, s->sid);

    if (!w || zmq_msg_init_size(&w->payload, len) < 0) {
        mk_mem_free(w);
        return -1;
    }
    if (len) {
        memcpy(zmq_msg_data(&w->payload), data, len);
    }
    w->type = type;
    zmq_to_gateway(w);
    s->body_posted += len;
    return s->body_posted - s->body_acked > ZMQ_BODY_WINDOW;
}

/* An upgraded session's client messages (mk_backend): in order with, and
 * under the same credit window as, request bodies. */
static int zmq_backend_send(void *data, struct mk_session *ms,
                            const char *type, const void *body, size_t len)
{
    struct zmq_session *s = data;
    enum zmq_msg_type t = zmq_msg_type(type, strlen(type));
    int full;

    (void) ms;
    /* any type a plugin may register (websocket, socket.io/..., cache);
     * not the HTTP response the gateway makes itself, nor the node's
     * liveness and request packets, which a node would misread */
    if (t == ZMQ_MSG_UNKNOWN || zmq_msg_type_is_http(t) ||
        t == ZMQ_MSG_PONG || t == ZMQ_MSG_UWSGI) {
        return -1;
    }
    full = zmq_post_piece(s, t, body, len);
    if (full == 1) {
        s->body_held = 1;            /* resumed by the gateway's ACK */
    }
    return full;
}

static void zmq_backend_release(void *data, struct mk_session *ms);

static const struct mk_backend zmq_backend = {
    .name = "zmq",
    .send = zmq_backend_send,
    .release = zmq_backend_release,
};

/* The 101 goes out: the gateway stops keeping the request for a retry
 * (the session is the connection's from now on). */
static int zmq_upgraded(struct zmq_session *s, struct mk_stream *r,
                        const char *choice, size_t len)
{
    struct zmq_wire *w;

    mk_timer_disarm(zmq_self->timers, &s->timer);
    if (mk_request_upgrade_accept(r, choice, len) < 0) {
        return -1;
    }
    s->accepted = 1;
    w = zmq_wire_create(ZMQ_WIRE_UPGRADED, s->sid);
    if (w) {
        zmq_to_gateway(w);
    }
    return 0;
}

/* The request's `uwsgi` packet (with `vars`) on its way to the gateway,
 * as the session's next request. 0, 431 (the packet does not fit) or -1
 * (no memory). */
static int zmq_post_request(struct zmq_session *s, struct mk_stream *r,
                            const char *const *vars, struct zmq_vconf *vc,
                            int upgrade)
{
    struct zmq_wire *w;
    struct mk_buf b;

    mk_buf_init(&b);
    if (zmq_request_packet(r, vars, &b) < 0) {
        mk_buf_release(&b);
        return 431;
    }
    w = zmq_wire_create(ZMQ_WIRE_REQUEST, s->sid);
    if (!w || zmq_msg_init_size(&w->payload, b.len) < 0) {
        mk_buf_release(&b);
        mk_mem_free(w);
        return -1;
    }
    memcpy(zmq_msg_data(&w->payload), b.data, b.len);
    mk_buf_release(&b);
    w->vc = vc;
    w->seq = ++s->seq;
    w->upgrade = upgrade;
    zmq_to_gateway(w);
    return 0;
}

int zmq_session_request(struct zmq_conf *conf, struct mk_stream *r,
                        struct zmq_vconf *vc)
{
    struct zmq_session *s;
    int ret;

    if (!vc || vc->site.count == 0) {
        return zmq_refuse(r, 503);
    }
    if (!mk_request_clean_path(r)) {
        return zmq_refuse(r, 400);   /* the core answers these first */
    }
    s = zmq_session_get(r);
    if (!s) {
        return MK_STAGE_CLOSE;
    }
    if (zmq_session_site(s, conf, vc, r) < 0) {
        return zmq_refuse(r, 503);
    }
    s->r = r;
    s->head_done = 0;
    s->head_only = mk_request_method(r) == MK_HTTP_METHOD_HEAD;
    s->ended = 0;
    s->body_held = 0;                /* a new request is not paused */
    s->upgraded = mk_request_is_upgrade(r);
    s->choosing = mk_request_upgrade_wants_choice(r);
    s->accepted = 0;
    /* an upgrade: the gateway says when it is bound */
    ret = zmq_post_request(s, r, NULL, vc, s->upgraded);
    if (ret != 0) {
        return ret == 431 ? zmq_refuse(r, 431) : MK_STAGE_CLOSE;
    }
    if (s->upgraded) {
        mk_session_set_backend(s->ms, &zmq_backend, s);
    }
    mk_timer_arm(zmq_self->timers, &s->timer,
                 mk_event_loop_now(zmq_self->loop) + vc->node_timeout);
    return MK_STAGE_HANDLED;
}

/*
 * A standalone session of another plugin (a socket.io client's, spec 7.8)
 * gets a node: the request that opened it goes out as `uwsgi` once, and
 * the session is from then on what an upgraded one is after its 101,
 * minus the connection: messages both ways, `end` and a lost node
 * reported to its owner (mk_session_backend_end), `end` to the node when
 * the owner destroys it (zmq_backend_release).
 */
int zmq_session_open(struct zmq_conf *conf, struct zmq_vconf *vc,
                     struct mk_session *ms, struct mk_stream *r,
                     const char *const *vars)
{
    struct zmq_session *s;
    struct zmq_wire *w;
    int ret;

    if (!vc || vc->site.count == 0) {
        return 503;
    }
    s = mk_mem_zalloc(sizeof(*s));
    if (!s) {
        return 503;
    }
    s->ms = ms;
    memcpy(s->sid, mk_session_sid(ms), ZMQ_SID_LEN);
    s->foreign = 1;
    s->upgraded = 1;
    s->accepted = 1;
    mk_timer_init(&s->timer, zmq_on_node_timeout, s);
    if (zmq_session_site(s, conf, vc, r) < 0) {
        mk_mem_free(s);
        return 503;
    }
    ret = mk_hash_set(zmq_self->sessions, (const char *) s->sid, ZMQ_SID_LEN,
                      s) < 0 ? 503
          : zmq_post_request(s, r, vars, vc, 1);  /* bound for its life */
    if (ret != 0) {
        mk_hash_del(zmq_self->sessions, (const char *) s->sid, ZMQ_SID_LEN);
        zmq_session_unsite(s);
        mk_mem_free(s);
        return ret == 431 ? 431 : 503;
    }
    w = zmq_wire_create(ZMQ_WIRE_UPGRADED, s->sid);
    if (w) {
        zmq_to_gateway(w);           /* nothing kept for a retry */
    }
    mk_session_set_backend(ms, &zmq_backend, s);
    return 0;
}

int zmq_session_body(struct zmq_conf *conf, struct mk_stream *r,
                     const char *data, size_t len)
{
    struct zmq_session *s = zmq_session_of(r);
    int full;

    if (!s) {
        /* refused (503, 431) and answered: the core drops the body and
         * the connection goes on; else the session failed */
        return mk_response_ended(r) ? 0 : -1;
    }
    if (s->upgraded) {
        return 0;                    /* no body, no end marker: frames follow */
    }
    full = zmq_post_piece(s, ZMQ_MSG_BODY, data, len);   /* empty: the end */
    if (full < 0) {
        return -1;
    }
    if (full && !s->body_held) {
        s->body_held = 1;            /* the node is behind: stop reading */
        mk_request_body_pause(r);
    }
    return 0;
}

/* The node gets `end`, and the session is gone. */
static void zmq_session_end(struct zmq_session *s)
{
    struct zmq_wire *w;

    mk_hash_del(zmq_self->sessions, (const char *) s->sid, ZMQ_SID_LEN);
    mk_timer_disarm(zmq_self->timers, &s->timer);
    zmq_session_unsite(s);
    w = zmq_wire_create(ZMQ_WIRE_END, s->sid);
    if (w) {
        zmq_to_gateway(w);
    }
    if (!s->foreign) {
        mk_session_set_backend(s->ms, NULL, NULL);   /* no release: ours */
        mk_session_destroy(s->ms);
    }
    mk_mem_free(s);
}

/* mk_backend.release: the owner of a standalone session destroys it. */
static void zmq_backend_release(void *data, struct mk_session *ms)
{
    (void) ms;
    if (zmq_self) {
        zmq_session_end(data);
    }
}

/* A stream's own session ends with it; a connection's waits for the
 * connection's next request. */
void zmq_session_done(struct mk_stream *r)
{
    struct zmq_session *s = zmq_session_of(r);

    if (s && s->own_stream) {
        mk_request_set_plugin_data(r, &mk_plugin_zmq, NULL);
        zmq_session_end(s);
    }
    else if (s && s->r == r) {
        s->r = NULL;
    }
}

void zmq_session_close(struct zmq_conf *conf, struct mk_conn *c)
{
    struct zmq_session *s = mk_conn_plugin_data(c, &mk_plugin_zmq);

    if (s) {
        mk_conn_set_plugin_data(c, &mk_plugin_zmq, NULL);
        zmq_session_end(s);
    }
}

/* ---- Node messages applied to the response --------------------------------------- */

static void zmq_end(struct zmq_session *s)
{
    if (!s->ended) {
        s->ended = 1;
        mk_timer_disarm(zmq_self->timers, &s->timer);
        mk_response_end(s->r);
    }
}

static void zmq_body_resume(struct zmq_session *s)
{
    if (s->body_held) {
        s->body_held = 0;
        if (s->accepted && !s->r) {
            mk_session_backend_ready(s->ms);
        }
        else if (s->r) {
            mk_request_body_resume(s->r);
        }
    }
}

static void zmq_body_acked(struct zmq_session *s, uint64_t n)
{
    s->body_acked += n;
    if (s->body_posted - s->body_acked <= ZMQ_BODY_WINDOW / 2) {
        zmq_body_resume(s);
    }
}

/* An error status while nothing was sent; once bytes went out, closing is
 * the only honest signal left. */
static void zmq_fail(struct zmq_session *s, int status)
{
    mk_timer_disarm(zmq_self->timers, &s->timer);
    if (s->accepted) {
        mk_session_backend_end(s->ms, 1);    /* no status line left to use */
        return;
    }
    zmq_body_resume(s);              /* the core reads the rest and closes */
    if (!s->r || s->ended) {
        return;
    }
    s->ended = 1;
    if (mk_response_head_sent(s->r)) {
        mk_response_abort(s->r);     /* HTTP/2: this stream alone */
        return;
    }
    zmq_refuse(s->r, status);
}

/* The node broke the framing its own head announced. The gateway knows
 * which node that is and says so once per node; a session tells it once. */
static void zmq_framing_fault(struct zmq_session *s, const char *why)
{
    struct zmq_wire *w;

    if (s->faulted) {
        return;
    }
    s->faulted = 1;
    w = zmq_wire_create(ZMQ_WIRE_FRAMING, s->sid);
    if (w) {
        w->why = why;
        zmq_to_gateway(w);
    }
}

/* The node's body broke its head's framing after the head went out: what
 * was valid is flushed, then the close tells the client that the response
 * is cut short. */
static void zmq_cut(struct zmq_session *s, const char *why)
{
    zmq_framing_fault(s, why);
    s->ended = 1;
    mk_conn_close(s->conn, 1);
}

/* Where the node's body ends, from its head (RFC 9112 6.3): at once for
 * HEAD and bodiless statuses, at its Content-Length, at the last chunk
 * when it announced chunked coding to an HTTP/1.1 request (spec 10.3: the
 * request decides the framing), else only when the connection closes. */
static void zmq_framing(struct zmq_session *s, const struct zmq_resp_head *h)
{
    s->close_delimited = 0;
    if (h->status == 204 || h->status == 304 || s->head_only) {
        mk_http_body_init_framing(&s->frame, MK_HTTP_BODY_NONE, 0);
    }
    else if (h->content_length >= 0) {
        mk_http_body_init_framing(&s->frame, MK_HTTP_BODY_LENGTH,
                                  (uint64_t) h->content_length);
    }
    else if (h->chunked && mk_request_version_minor(s->r) >= 1) {
        mk_http_body_init_framing(&s->frame, MK_HTTP_BODY_CHUNKED, 0);
    }
    else {
        mk_http_body_init_framing(&s->frame, MK_HTTP_BODY_NONE, 0);
        s->close_delimited = 1;
    }
}

/* The node's head goes out verbatim, unless the connection closes after
 * this response and the head does not say so: a keep-alive client would
 * send its next request into a closing connection and see a read error. */
static void zmq_send_head(struct zmq_session *s, const char *data,
                          size_t len, const struct zmq_resp_head *h)
{
    char *head;

    if (!mk_response_will_close(s->r) ||
        (h->conn_close && !h->conn_keep_alive)) {
        mk_response_write_raw(s->r, data, len, MK_WRITE_COPY);
        return;
    }
    mk_response_close(s->r);         /* decided: the end keeps to it */
    head = mk_mem_alloc(len + ZMQ_RESP_HEAD_CLOSE_EXTRA);
    if (!head) {
        mk_err("[fd %d] zmq: out of memory for a response head",
               mk_conn_fd(s->conn));
        mk_conn_close(s->conn, 0);
        return;
    }
    mk_response_write_raw(s->r, head, zmq_resp_head_close(data, len, head),
                          MK_WRITE_FREE);
}

static int zmq_on_field(void *ctx, const char *name, size_t nl,
                        const char *value, size_t vl)
{
    char key[256];

    if (nl >= sizeof(key)) {
        return -1;
    }
    memcpy(key, name, nl);
    key[nl] = '\0';
    return mk_response_header_n(ctx, key, value, vl) < 0 ? -1 : 0;
}

/* A protocol that cannot carry the node's head verbatim (HTTP/2): the
 * same status and end-to-end fields through the response API; the
 * protocol frames the body, so the node's framing fields stay behind. */
static void zmq_send_fields(struct zmq_session *s, const char *data,
                            size_t len, const struct zmq_resp_head *h)
{
    if (h->content_length >= 0) {
        mk_response_content_length(s->r, h->content_length);
    }
    if (zmq_resp_head_fields(data, len, zmq_on_field, s->r) != 0 ||
        mk_response_send_head(s->r) < 0) {
        mk_warn("[fd %d] zmq: a node's response head does not fit the "
                "stream's response", mk_conn_fd(s->conn));
        s->head_done = 0;
        zmq_fail(s, 502);
    }
}

/* Body bytes the framing let through, on a structured response. */
static int zmq_on_piece(void *ctx, const char *data, size_t n)
{
    mk_response_write(ctx, data, n, MK_WRITE_COPY);
    return 0;
}

static void zmq_headers(struct zmq_session *s, const char *data, size_t len)
{
    struct zmq_resp_head h;
    int max = (int) MK_HTTP_MAX_HEADERS_CAP;

    if (s->head_done || zmq_resp_head_parse(data, len, max, &h) < 0 ||
        h.head_len != len) {
        mk_warn("zmq: a node sent an invalid response head");
        zmq_fail(s, 502);
        return;
    }
    if (h.status < 200) {
        /* Tremolo sends 100 Continue itself, and a 101 outside an
         * upgrade would hand the connection to the node's bytes */
        mk_warn("[fd %d] zmq: a node sent an interim (%d) response head",
                mk_conn_fd(s->conn), h.status);
        zmq_fail(s, 502);
        return;
    }
    s->head_done = 1;
    mk_timer_disarm(zmq_self->timers, &s->timer);
    zmq_framing(s, &h);
    s->structured = mk_response_raw(s->r) < 0;
    mk_response_status(s->r, h.status);
    if (h.non_persistent || s->close_delimited) {
        mk_response_close(s->r);
    }
    if (s->structured) {
        zmq_send_fields(s, data, len, &h);
    }
    else {
        zmq_send_head(s, data, len, &h);
    }
    if (!s->close_delimited && s->frame.done) {
        zmq_end(s);
    }
}

/* Body bytes of the node's response, up to where its head's framing says
 * the response ends. Bytes past it would reach the client as the answer
 * to its next request (a forged response): they are dropped, the client
 * has the response its head promised, and the connection stays usable. */
static void zmq_body(struct zmq_session *s, const char *data, size_t len)
{
    long n = (long) len;

    if (!s->close_delimited) {
        /* structured: the de-chunked bytes, the protocol frames them */
        n = mk_http_body_feed(&s->frame, data, len,
                              s->structured ? zmq_on_piece : NULL, s->r);
        if (n < 0) {
            zmq_cut(s, "broke the chunked coding of its response");
            return;
        }
    }
    if (n > 0 && !s->structured) {
        mk_response_write_raw(s->r, data, (size_t) n, MK_WRITE_COPY);
    }
    else if (n > 0 && s->close_delimited) {
        mk_response_write(s->r, data, (size_t) n, MK_WRITE_COPY);
    }
    if ((size_t) n < len) {
        zmq_framing_fault(s, "sent body bytes past the end its response "
                          "head announced: dropped");
    }
    if (!s->close_delimited && s->frame.done) {
        zmq_end(s);
    }
}

/* A node may skip `headers` and write its response through `body` alone
 * (spec 6.2); that first `body` must then begin with a whole head, which
 * is taken as `headers` would be: without it the end of the response, and
 * so the start of the next one, would be the node's to choose. */
static void zmq_headless(struct zmq_session *s, const char *data, size_t len)
{
    struct zmq_resp_head h;

    if (zmq_resp_head_parse(data, len, (int) MK_HTTP_MAX_HEADERS_CAP,
                            &h) < 0) {
        mk_warn("[fd %d] zmq: a node's response does not begin with a "
                "whole head", mk_conn_fd(s->conn));
        zmq_fail(s, 502);
        return;
    }
    zmq_headers(s, data, h.head_len);
    if (h.head_len < len && !s->ended) {
        zmq_body(s, data + h.head_len, len - h.head_len);
    }
    else if (h.head_len < len && s->head_done && !s->head_only) {
        zmq_framing_fault(s, "sent a body with a bodiless response: dropped");
    }
}

/* A `chunk` (spec 2.3): framed here when the head announced chunked
 * coding, else its bytes are plain body, counted against the head's
 * Content-Length. The empty one ends the body. */
static void zmq_chunk(struct zmq_session *s, const char *data, size_t len)
{
    char line[24];
    size_t n;

    if (s->frame.mode == MK_HTTP_BODY_CHUNKED) {
        /* through zmq_body too: the framing stays tracked if the node
         * mixes `chunk` and `body` */
        n = mk_str_hex(line, len);
        memcpy(line + n, "\r\n", 2);
        zmq_body(s, line, n + 2);
        if (len && !s->ended) {
            zmq_body(s, data, len);
        }
        if (!s->ended) {
            zmq_body(s, "\r\n", 2);
        }
    }
    else if (len) {
        zmq_body(s, data, len);
    }
    else if (s->close_delimited) {
        zmq_end(s);
    }
    else {
        zmq_cut(s, "ended its body before its Content-Length");
    }
}

/* `g:chunk` or `@sid:chunk` from another session's node: it joins this
 * session's response only while one is streaming (chunked or ended by
 * the close); between responses, or counted against another node's
 * Content-Length, the bytes would corrupt the HTTP stream (spec 10.11:
 * never the wrong victim, never raw bytes into an idle connection). */
static void zmq_apply_routed(struct zmq_session *s, struct zmq_wire *w)
{
    if (w->type == ZMQ_MSG_CHUNK && s->r && !s->ended && s->head_done &&
        (s->frame.mode == MK_HTTP_BODY_CHUNKED || s->close_delimited)) {
        zmq_chunk(s, zmq_msg_data(&w->payload), zmq_msg_size(&w->payload));
    }
}

/* A type a plugin registered (the gateway checked that one is loaded). */
static void zmq_deliver(struct zmq_session *s, struct zmq_wire *w)
{
    const char *name = zmq_msg_type_name(w->type);

    mk_session_deliver(s->ms, name, strlen(name),
                        zmq_msg_data(&w->payload), zmq_msg_size(&w->payload),
                        w->share);
}

/* The value of header `name` in a head zmq_resp_head_parse accepted
 * (CRLF lines, `name: value`), without surrounding blanks. */
static struct mk_ptr zmq_head_value(const char *head, size_t len,
                                    const char *name)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', len), *end = head + len, *eol;
    struct mk_ptr v = { NULL, 0 };

    while (p && ++p < end) {
        eol = memchr(p, '\r', (size_t) (end - p));
        if (!eol || eol == p) {
            break;                   /* the blank line that ends the head */
        }
        if ((size_t) (eol - p) > nlen && p[nlen] == ':' &&
            strncasecmp(p, name, nlen) == 0) {
            p += nlen + 1;
            while (p < eol && (*p == ' ' || *p == '\t')) {
                p++;
            }
            while (eol > p && (eol[-1] == ' ' || eol[-1] == '\t')) {
                eol--;
            }
            v.data = (char *) p;
            v.len = (size_t) (eol - p);
            return v;
        }
        p = memchr(p, '\n', (size_t) (end - p));
    }
    return v;
}

/* The node answers an upgrade that waits for its choice (a subprotocol,
 * or the site's `Accept node`): `headers` with a 101 accepts, naming its
 * pick; any other response refuses, and goes to the client as it is;
 * `websocket/close` refuses with 403 (an ASGI close before accept); a
 * message for the client accepts with no pick. -1 when the message is
 * used up. */
static int zmq_upgrade_answer(struct zmq_session *s, struct zmq_wire *w)
{
    const char *data = zmq_msg_data(&w->payload);
    size_t len = zmq_msg_size(&w->payload);
    struct mk_ptr choice = { NULL, 0 };
    struct zmq_resp_head h;

    s->choosing = 0;
    mk_timer_disarm(zmq_self->timers, &s->timer);
    if (w->type == ZMQ_MSG_WEBSOCKET_CLOSE) {
        s->upgraded = 0;
        mk_session_set_backend(s->ms, NULL, NULL);
        mk_response_close(s->r);
        zmq_fail(s, 403);
        return -1;
    }
    if (w->type == ZMQ_MSG_HEADERS) {
        if (zmq_resp_head_parse(data, len, (int) MK_HTTP_MAX_HEADERS_CAP,
                                &h) < 0 || h.head_len != len) {
            mk_warn("zmq: a node sent an invalid response head");
            zmq_fail(s, 502);
            return -1;
        }
        if (h.status != 101) {
            s->upgraded = 0;         /* refused: an ordinary response */
            mk_session_set_backend(s->ms, NULL, NULL);
            mk_response_close(s->r);
            return 0;
        }
        choice = zmq_head_value(data, len, "Sec-WebSocket-Protocol");
    }
    if (zmq_upgraded(s, s->r, choice.data, choice.len) < 0) {
        mk_conn_close(s->conn, 0);
        return -1;
    }
    return 0;
}

/* After the 101 the node speaks in messages: `end` says goodbye through
 * the protocol (a close frame), HTTP response types are out of place. */
static void zmq_apply_upgraded(struct zmq_session *s, struct zmq_wire *w)
{
    if (!zmq_msg_type_is_http(w->type)) {
        zmq_deliver(s, w);
    }
    else if (w->type == ZMQ_MSG_END && !w->routed) {
        mk_session_backend_end(s->ms, 0);
    }
    else if (!w->routed) {
        mk_debug("zmq: a node sent %s to a WebSocket session: ignored",
                 zmq_msg_type_name(w->type));
    }
}

/* `push` (spec 2.3): BlastBeat's SPDY server push, a head naming the
 * resource in `Url:`. Browsers no longer take pushes; the resource
 * becomes a preload hint: a `Link` on the response and, while its head
 * is not out, a 103 Early Hints where the protocol has them (HTTP/2). */
static void zmq_push(struct zmq_session *s, const char *data, size_t len)
{
    const char *p = data, *end = data + len, *eol, *v;

    if (!s->r || s->ended || mk_response_head_sent(s->r)) {
        return;
    }
    for (; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (!eol) {
            eol = end;
        }
        if (eol - p < 4 || strncasecmp(p, "Url:", 4) != 0) {
            continue;
        }
        for (v = p + 4; v < eol && (*v == ' ' || *v == '\t'); v++) {
        }
        while (eol > v && (eol[-1] == '\r' || eol[-1] == ' ' ||
                           eol[-1] == '\t')) {
            eol--;
        }
        if (mk_response_preload(s->r, v, (size_t) (eol - v)) < 0) {
            mk_debug("zmq: a node's push: no preload for that Url");
        }
        return;
    }
}

static void zmq_apply(struct zmq_session *s, struct zmq_wire *w)
{
    const char *data = zmq_msg_data(&w->payload);
    size_t len = zmq_msg_size(&w->payload);

    if (!w->routed && w->seq != s->seq && (w->type == ZMQ_MSG_HEADERS ||
        w->type == ZMQ_MSG_BODY || w->type == ZMQ_MSG_CHUNK)) {
        /* the gateway had it before it passed this request on (from the
         * node the session had before it moved to another site, say): a
         * late piece of an earlier response, which would otherwise
         * become the answer to this one */
        if (len) {
            zmq_framing_fault(s, "sent response bytes after its response "
                              "ended: dropped");
        }
        return;
    }
    if (s->choosing && s->r && !w->routed && w->type != ZMQ_MSG_END &&
        (w->type == ZMQ_MSG_HEADERS || !zmq_msg_type_is_http(w->type))) {
        if (zmq_upgrade_answer(s, w) < 0 ||
            (w->type == ZMQ_MSG_HEADERS && s->upgraded)) {
            return;
        }
    }
    if (s->accepted) {
        zmq_apply_upgraded(s, w);
        return;
    }
    if (w->type == ZMQ_MSG_PUSH) {
        zmq_push(s, data, len);
        return;
    }
    if (!zmq_msg_type_is_http(w->type)) {
        zmq_deliver(s, w);
        return;
    }
    if (w->routed) {
        zmq_apply_routed(s, w);
        return;
    }
    if (w->type == ZMQ_MSG_END) {
        /* as BlastBeat: end closes (spec 2.3), the stream alone on a
         * multiplexing protocol (7.7); a node that ends a request
         * it never answered gets the client a 502, not an empty 200 */
        if (s->r && !mk_response_head_sent(s->r)) {
            zmq_fail(s, 502);
        }
        else if (s->r) {
            zmq_end(s);
        }
        if (!s->own_stream) {
            mk_conn_close(s->conn, 1);   /* not the other streams' */
        }
        return;
    }
    if (!s->r || s->ended) {
        /* between requests: nothing to answer; after the node's own
         * response ended, its body bytes are past that response's end */
        if (len && s->head_done && !s->head_only &&
            (w->type == ZMQ_MSG_BODY || w->type == ZMQ_MSG_CHUNK)) {
            zmq_framing_fault(s, "sent body bytes after its response "
                              "ended: dropped");
        }
        return;
    }
    switch (w->type) {
    case ZMQ_MSG_HEADERS:
        zmq_headers(s, data, len);
        break;
    case ZMQ_MSG_BODY:
        if (len == 0) {
            break;                   /* writes nothing (spec 2.3) */
        }
        if (s->head_done) {
            zmq_body(s, data, len);
        }
        else {
            zmq_headless(s, data, len);
        }
        break;
    case ZMQ_MSG_CHUNK:
        if (!s->head_done) {
            mk_warn("[fd %d] zmq: a node sent `chunk` before its response "
                    "head", mk_conn_fd(s->conn));
            zmq_fail(s, 502);
            break;
        }
        zmq_chunk(s, data, len);
        break;
    default:
        break;
    }
}

/* A group's message for this worker's members, one shared payload: each
 * session still here gets it in routing order, under the fan-out's id.
 * A type a plugin registered goes through mk_server; a routed `chunk`
 * joins the members' HTTP responses, the transport's own. */
static void zmq_fanout(struct zmq_worker *zw, struct zmq_wire *w)
{
    const char *name = zmq_msg_type_name(w->type);
    struct zmq_session *s;
    uint32_t i;

    if (!zmq_msg_type_is_http(w->type)) {
        mk_group_deliver((const uint8_t *) w->sids, w->nsids, name,
                         strlen(name), zmq_msg_data(&w->payload),
                         zmq_msg_size(&w->payload), w->share);
        return;
    }
    for (i = 0; i < w->nsids; i++) {
        s = mk_hash_get(zw->sessions, (const char *) w->sids[i], ZMQ_SID_LEN);
        if (s) {
            zmq_apply(s, w);
        }
    }
}

static void zmq_on_inbox(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    struct zmq_worker *zw = ch->data;
    struct zmq_wire *w = (struct zmq_wire *) msg;
    struct zmq_session *s = mk_hash_get(zw->sessions, (const char *) w->sid,
                                        ZMQ_SID_LEN);

    if (w->kind == ZMQ_WIRE_FANOUT) {
        zmq_fanout(zw, w);
    }
    else if (s && w->kind == ZMQ_WIRE_NO_NODE) {
        zmq_fail(s, 503);
    }
    else if (s && w->kind == ZMQ_WIRE_BOUND && s->foreign) {
        mk_session_backend_ready(s->ms);  /* its owner answers its client */
    }
    else if (s && w->kind == ZMQ_WIRE_BOUND) {
        /* a node has the upgrade request: BlastBeat's order (spec 7.1),
         * the 101 needs nothing more from it, unless it is to choose */
        if (s->upgraded && !s->choosing && !s->accepted && s->r &&
            zmq_upgraded(s, s->r, NULL, 0) < 0) {
            mk_conn_close(s->conn, 0);
        }
    }
    else if (s && w->kind == ZMQ_WIRE_NODE_GONE) {
        zmq_fail(s, 502);
    }
    else if (s && w->kind == ZMQ_WIRE_NODE) {
        zmq_apply(s, w);
    }
    else if (s && w->kind == ZMQ_WIRE_ACK) {
        zmq_body_acked(s, w->acked);
    }
    zmq_wire_destroy(w);
}
