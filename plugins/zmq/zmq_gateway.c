/*
 * The gateway thread: owns the ROUTER sockets (ZeroMQ sockets are not
 * thread-safe) and every node-side structure: the node registry, the
 * sid -> node bindings, the health ticks. Workers talk to it through its
 * inbox channel; it answers through each worker's inbox. It waits in its
 * own mk_event_loop, where the inbox and every ZeroMQ socket's ZMQ_FD are
 * registered (see gw_main for why not zmq_poll()).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

#define ZMQ_RECV_BATCH 256          /* per ROUTER per wake-up: fairness */
#define ZMQ_FIRST_TICK_MS 1000      /* spec 5: first ping 1 s after start */
#define ZMQ_HELD_MAX (4 * 1024 * 1024) /* body held for a full node queue */
#define ZMQ_HELD_RETRY_MS 5         /* how soon a full queue is tried again */
#define ZMQ_TICK_CATCH_UP 16        /* ROUTER batches read before a tick */

struct zmq_wire *zmq_wire_new(enum zmq_wire_kind kind, const uint8_t *sid)
{
    struct zmq_wire *w = mk_mem_zalloc(sizeof(*w));

    if (!w) {
        return NULL;
    }
    w->kind = kind;
    memcpy(w->sid, sid, ZMQ_SID_LEN);
    zmq_msg_init(&w->payload);
    return w;
}

void zmq_wire_free(struct zmq_wire *w)
{
    zmq_msg_close(&w->payload);
    mk_mem_free(w);
}

/* ---- What a retry replays ------------------------------------------------ */

static void gw_keep_piece(struct zmq_binding *b, zmq_msg_t *m)
{
    if (!b->body_replayable) {
        return;
    }
    if (b->body_kept + zmq_msg_size(m) > ZMQ_RETRY_BODY_MAX ||
        zmq_pieces_add(&b->pieces, m, ZMQ_MSG_BODY) < 0) {
        zmq_pieces_drop(&b->pieces);
        b->body_kept = 0;
        b->body_replayable = 0;             /* too big to replay: no retry */
        return;
    }
    b->body_kept += zmq_msg_size(m);
}

static void gw_to_worker(struct zmq_gw *gw, int worker, struct zmq_wire *w)
{
    if (worker < 0 || worker >= gw->nworkers || !gw->workers[worker]) {
        zmq_wire_free(w);
        return;
    }
    zmq_worker_deliver(gw, worker, w);
}

static void gw_tell(struct zmq_gw *gw, const uint8_t *sid, int worker,
                    enum zmq_wire_kind kind)
{
    struct zmq_wire *w = zmq_wire_new(kind, sid);

    if (w) {
        gw_to_worker(gw, worker, w);
    }
}

/* Body bytes the node's queue took count toward the worker's window. */
static void gw_sent_body(struct zmq_gw *gw, struct zmq_binding *b,
                         size_t len, int flush)
{
    struct zmq_wire *w;

    b->unacked += len;
    if (b->unacked == 0 || (!flush && b->unacked < ZMQ_BODY_ACK)) {
        return;
    }
    w = zmq_wire_new(ZMQ_WIRE_ACK, b->sid);
    if (w) {
        w->acked = b->unacked;
        b->unacked = 0;
        gw_to_worker(gw, b->worker, w);
    }
}

/* Held bytes that count against the worker's window: request bodies and
 * client messages, not a held `uwsgi` or `end`. */
static size_t gw_held_window(const struct zmq_binding *b)
{
    const struct mk_list *it;
    size_t n = 0;

    mk_list_foreach(it, &b->held.pieces) {
        struct zmq_piece *p = mk_list_entry(it, struct zmq_piece, _head);
        if (p->type != ZMQ_MSG_UWSGI && p->type != ZMQ_MSG_END) {
            n += zmq_msg_size(&p->m);
        }
    }
    return n;
}

static void gw_unbind(struct zmq_gw *gw, const uint8_t *sid)
{
    struct zmq_binding *b = mk_hash_del(gw->bindings, (const char *) sid,
                                        ZMQ_SID_LEN);
    if (b) {
        /* every body byte a worker posted is acknowledged once: sent,
         * or dropped here, so its window never stays closed */
        gw_sent_body(gw, b, gw_held_window(b), 1);
        b->node->load--;
        mk_group_leave_all(b->sid);       /* memberships die with the session */
        zmq_pieces_drop(&b->pieces);
        zmq_outq_release(&b->held);
        mk_list_del(&b->_blocked);
        zmq_msg_close(&b->packet);
        mk_mem_free(b);
    }
}

/* Ends the binding and tells the owning worker why (502, 503). */
static void gw_fail(struct zmq_gw *gw, struct zmq_binding *b,
                    enum zmq_wire_kind why)
{
    uint8_t sid[ZMQ_SID_LEN];
    int worker = b->worker;

    memcpy(sid, b->sid, ZMQ_SID_LEN);
    gw_unbind(gw, sid);
    gw_tell(gw, sid, worker, why);
}

/* ---- A session's pieces, in order ------------------------------------------ */

struct gw_target {
    struct zmq_gw *gw;
    struct zmq_binding *b;
};

static int gw_send_piece(void *ctx, enum zmq_msg_type type, zmq_msg_t *body)
{
    struct gw_target *t = ctx;

    return zmq_gw_send(t->gw, t->b->node, t->b->sid, zmq_msg_type_name(type),
                       body);
}

/* A held piece went out: body bytes are acknowledged (the end marker
 * acknowledges them all); `end` is the session's last message. */
static int gw_piece_sent(void *ctx, enum zmq_msg_type type, size_t len)
{
    struct gw_target *t = ctx;

    if (type == ZMQ_MSG_END) {
        gw_unbind(t->gw, t->b->sid);
        return 1;
    }
    if (type == ZMQ_MSG_UWSGI) {
        t->b->seq = t->b->held_seq;       /* what the node sends answers it */
    }
    else {
        gw_sent_body(t->gw, t->b, len, type == ZMQ_MSG_BODY && len == 0);
    }
    return 0;
}

/*
 * Every message for a session's node goes through here once something is
 * held for it: sent now when nothing is held and the node's queue (its
 * high-water mark or NodeQueueLimit) takes it, else kept behind what is
 * held, so request 2's `uwsgi` never overtakes request 1's body tail or
 * end marker. The worker's window stops it reading the client meanwhile,
 * since held body bytes are not acknowledged (docs/zmq-gateway.md,
 * backpressure); ZMQ_HELD_MAX guards against a worker that does not keep
 * to it. Returns 1 when sent, 0 when held, -1 when the session failed.
 */
static int gw_queue(struct zmq_gw *gw, struct zmq_binding *b,
                    enum zmq_msg_type type, zmq_msg_t *m)
{
    struct gw_target t = { gw, b };
    int held = !zmq_outq_is_empty(&b->held);

    switch (zmq_outq_push(&b->held, type, m, ZMQ_HELD_MAX, gw_send_piece,
                          &t)) {
    case ZMQ_OUTQ_SENT:
        return 1;
    case ZMQ_OUTQ_HELD:
        if (!held) {
            mk_list_add(&b->_blocked, &gw->blocked);
        }
        return 0;
    case ZMQ_OUTQ_GONE:
        gw_fail(gw, b, ZMQ_WIRE_NODE_GONE);
        return -1;
    default:
        mk_warn("zmq: node %.*s does not take a session's %s fast enough",
                (int) b->node->id_len, b->node->id,
                type == ZMQ_MSG_BODY ? "request body" : "messages");
        zmq_gw_send(gw, b->node, b->sid, "end", NULL);
        gw_fail(gw, b, ZMQ_WIRE_NO_NODE);
        return -1;
    }
}

/* Sends what bindings held back, in order, as far as their nodes take it. */
static void gw_flush_held(struct zmq_gw *gw)
{
    struct mk_list *it, *tmp;

    mk_list_foreach_safe(it, tmp, &gw->blocked) {
        struct zmq_binding *b = mk_list_entry(it, struct zmq_binding,
                                              _blocked);
        struct gw_target t = { gw, b };

        switch (zmq_outq_flush(&b->held, gw_send_piece, gw_piece_sent, &t)) {
        case ZMQ_OUTQ_SENT:
            mk_list_del(&b->_blocked);
            break;
        case ZMQ_OUTQ_GONE:
            gw_fail(gw, b, ZMQ_WIRE_NODE_GONE);
            break;
        default:
            break;                  /* still full, or the session ended */
        }
    }
}

/* ---- Messages from workers -------------------------------------------------- */

static struct zmq_binding *gw_bind_session(struct zmq_gw *gw,
                                           struct zmq_wire *w)
{
    struct zmq_node *n = zmq_nodes_pick(&gw->nodes, &w->vc->site, NULL, 0);
    struct zmq_binding *b = n ? mk_mem_zalloc(sizeof(*b)) : NULL;

    if (!b || mk_hash_set(gw->bindings, (const char *) w->sid, ZMQ_SID_LEN,
                          b) < 0) {
        mk_mem_free(b);
        return NULL;
    }
    b->node = n;
    b->worker = w->worker;
    memcpy(b->sid, w->sid, ZMQ_SID_LEN);
    b->vc = w->vc;
    mk_list_init(&b->pieces);
    zmq_outq_init(&b->held);
    mk_list_init(&b->_blocked);
    zmq_msg_init(&b->packet);
    n->load++;
    return b;
}

static void gw_request(struct zmq_gw *gw, struct zmq_wire *w)
{
    struct zmq_binding *b = mk_hash_get(gw->bindings, (const char *) w->sid,
                                        ZMQ_SID_LEN);

    /* One node per connection (spec 4.2). A node that died since is left
     * for another one; a keep-alive request for another site is that
     * site's work (spec 10.14): the old node hears `end`. */
    if (b && (!b->node->available || b->vc != w->vc)) {
        if (b->node->available) {
            zmq_gw_send(gw, b->node, w->sid, "end", NULL);
        }
        gw_unbind(gw, w->sid);
        b = NULL;
    }
    if (!b && !(b = gw_bind_session(gw, w))) {
        gw_tell(gw, w->sid, w->worker, ZMQ_WIRE_NO_NODE);
        return;
    }
    /* a new request on the connection: what a retry replays starts over */
    zmq_pieces_drop(&b->pieces);
    b->body_kept = 0;
    b->body_replayable = 1;
    b->responded = 0;
    b->hops = 0;
    zmq_msg_close(&b->packet);
    zmq_msg_init(&b->packet);
    zmq_msg_copy(&b->packet, &w->payload);
    if (!zmq_outq_is_empty(&b->held)) {
        /* the previous request's body tail is still held: behind it; the
         * node's messages answer the previous request until this one has
         * left (gw_piece_sent) */
        b->held_seq = w->seq;
        if (gw_queue(gw, b, ZMQ_MSG_UWSGI, &w->payload) == 1) {
            b->seq = w->seq;
        }
        return;
    }
    b->seq = w->seq;
    if (zmq_gw_send(gw, b->node, w->sid, "uwsgi", &w->payload) < 0) {
        /* nothing of this session waits: a full node is a refusal (503) */
        mk_warn("zmq: cannot queue a request for node %.*s: %s",
                (int) b->node->id_len, b->node->id, zmq_strerror(errno));
        gw_fail(gw, b, ZMQ_WIRE_NO_NODE);
        return;
    }
    if (w->upgrade) {
        gw_tell(gw, w->sid, w->worker, ZMQ_WIRE_BOUND);
    }
}

/* A piece of a session's client-side stream for its node: request body
 * (empty: the end marker) or, on an upgraded session, a WebSocket message
 * (empty is a message); both share the credit window and the order. */
static void gw_body(struct zmq_gw *gw, struct zmq_binding *b, zmq_msg_t *m,
                    enum zmq_msg_type type)
{
    size_t len = zmq_msg_size(m);

    if (type == ZMQ_MSG_BODY) {
        gw_keep_piece(b, m);
    }
    if (gw_queue(gw, b, type, m) == 1) {
        gw_sent_body(gw, b, len, type == ZMQ_MSG_BODY && len == 0);
    }
}

/* The session is gone: its node hears `end` after what is still held
 * back for it, and a full node queue (5,000 clients leaving at once)
 * delays the `end` instead of losing it. */
static void gw_end(struct zmq_gw *gw, struct zmq_binding *b)
{
    zmq_msg_t none;
    int ret;

    zmq_msg_init(&none);
    ret = gw_queue(gw, b, ZMQ_MSG_END, &none);
    zmq_msg_close(&none);
    if (ret == 1) {
        gw_unbind(gw, b->sid);
    }
}

/* The session's response started (or it became a WebSocket): no retry
 * from now on, so what a retry would replay goes. */
static void gw_responded(struct zmq_binding *b)
{
    if (b->responded) {
        return;
    }
    b->responded = 1;
    zmq_msg_close(&b->packet);
    zmq_msg_init(&b->packet);
    zmq_pieces_drop(&b->pieces);
    b->body_kept = 0;
    b->body_replayable = 0;
}

static void gw_ack_unbound(struct zmq_gw *gw, struct zmq_wire *body)
{
    struct zmq_wire *w = zmq_wire_new(ZMQ_WIRE_ACK, body->sid);

    if (w) {
        w->acked = zmq_msg_size(&body->payload);
        gw_to_worker(gw, body->worker, w);
    }
}

/* A worker cut or dropped bytes of a node's response that broke the
 * framing of the node's own head (past its Content-Length, say: bytes a
 * client would take for the answer to its next request). Said once per
 * node and at most once a second, naming the node. */
static void gw_framing_fault(struct zmq_gw *gw, const struct zmq_binding *b,
                             const char *why)
{
    uint64_t now = mk_clock_monotonic_ms();

    if (b->node->warned_framing || now - gw->last_framing_log < 1000) {
        return;
    }
    b->node->warned_framing = 1;
    gw->last_framing_log = now;
    mk_warn("zmq: node \"%.*s\" %s (logged once per node)",
            (int) b->node->id_len, b->node->id, why);
}

static void gw_on_inbox(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    struct zmq_gw *gw = ch->data;
    struct zmq_wire *w = (struct zmq_wire *) msg;
    struct zmq_binding *b;

    switch (w->kind) {
    case ZMQ_WIRE_REQUEST:
        gw_request(gw, w);
        break;
    case ZMQ_WIRE_BODY:
        b = mk_hash_get(gw->bindings, (const char *) w->sid, ZMQ_SID_LEN);
        if (b) {
            gw_body(gw, b, &w->payload, w->type);
        }
        else if (zmq_msg_size(&w->payload)) {
            gw_ack_unbound(gw, w);        /* the session failed meanwhile */
        }
        break;
    case ZMQ_WIRE_ATTACH:
        gw->workers[w->worker] = w->zw;
        break;
    case ZMQ_WIRE_DETACH:
        /* nothing is pushed to it from now on; it is told so once the
         * wake-ups deferred for it went out (gw_main) */
        gw->workers[w->worker] = NULL;
        gw->leaving[gw->nleaving++] = w->zw;
        break;
    case ZMQ_WIRE_UPGRADED:
        b = mk_hash_get(gw->bindings, (const char *) w->sid, ZMQ_SID_LEN);
        if (b) {
            gw_responded(b);
        }
        break;
    case ZMQ_WIRE_END:
        b = mk_hash_get(gw->bindings, (const char *) w->sid, ZMQ_SID_LEN);
        if (b) {
            gw_end(gw, b);
        }
        break;
    case ZMQ_WIRE_FRAMING:
        b = mk_hash_get(gw->bindings, (const char *) w->sid, ZMQ_SID_LEN);
        if (b) {
            gw_framing_fault(gw, b, w->why);
        }
        break;
    default:
        break;
    }
    zmq_wire_free(w);
}

/* ---- Messages from nodes ---------------------------------------------------- */

static void gw_reject(struct zmq_gw *gw, enum zmq_reject why)
{
    uint64_t now = mk_clock_monotonic_ms();

    gw->rejects[why]++;
    /* counted always, logged at most once a second (spec 1.3 FIX) */
    if (now - gw->last_reject_log >= 1000) {
        gw->last_reject_log = now;
        mk_info("zmq: dropped a node message (%s); %llu such so far",
                zmq_reject_name(why), (unsigned long long) gw->rejects[why]);
    }
}

/* `retry` (spec 2.3): the request and its body so far go to another node,
 * never one that already refused, at most MaxHops times and only before
 * any response byte was forwarded; otherwise the client gets 502. */
static void gw_retry(struct zmq_gw *gw, struct zmq_binding *b)
{
    struct zmq_piece *p;
    struct zmq_node *n = NULL;
    struct mk_list *it;

    if (!b->responded && b->body_replayable && zmq_outq_is_empty(&b->held) &&
        b->hops < b->vc->max_hops) {
        b->refused[b->hops++] = b->node;
        n = zmq_nodes_pick(&gw->nodes, &b->vc->site, b->refused,
                           (size_t) b->hops);
    }
    if (!n) {
        gw_fail(gw, b, ZMQ_WIRE_NODE_GONE);
        return;
    }
    b->node->load--;
    n->load++;
    b->node = n;
    zmq_gw_send(gw, n, b->sid, "uwsgi", &b->packet);
    mk_list_foreach(it, &b->pieces) {
        p = mk_list_entry(it, struct zmq_piece, _head);
        zmq_gw_send(gw, n, b->sid, "body", &p->m);
    }
}

/* A node's message for a session goes to the worker that owns it; the
 * body's bytes are shared (zmq_msg_copy counts a reference), not copied,
 * so a group fan-out costs one small message per member. */
void zmq_gw_forward(struct zmq_gw *gw, const struct zmq_binding *to,
                    enum zmq_msg_type type, zmq_msg_t *body, int routed,
                    uint64_t share)
{
    struct zmq_wire *w = zmq_wire_new(ZMQ_WIRE_NODE, to->sid);

    if (!w) {
        return;
    }
    w->type = type;
    w->routed = routed;
    w->share = share;
    w->seq = to->seq;
    zmq_msg_copy(&w->payload, body);
    gw_to_worker(gw, to->worker, w);
}

/* A type that is neither HTTP nor the gateway's own goes to the plugin
 * that registered it (mk_plugin.h, node message types); with none
 * loaded, or for a type nobody knows, it is dropped and said once per
 * node and kind (every unknown name shares one warning). */
static int gw_plugin_type(struct zmq_gw *gw, struct zmq_binding *b,
                          const struct zmq_node_msg *m)
{
    const char *name = zmq_msg_type_name(m->type);
    char shown[65];

    if (m->type != ZMQ_MSG_UNKNOWN &&
        mk_server_handles_msg(gw->srv, name, strlen(name))) {
        return 1;
    }
    if (m->type < 32 && !(b->node->warned_types & (1u << m->type))) {
        b->node->warned_types |= 1u << m->type;
        mk_warn("zmq: node \"%.*s\" sent \"%s\", which no loaded plugin "
                "handles: dropped (logged once per node)",
                (int) b->node->id_len, b->node->id,
                mk_str_printable(shown, sizeof(shown), m->route.type,
                                 m->route.type_len));
    }
    return 0;
}

/* Accepted message of a bound session (spec 2.3). */
static void gw_dispatch(struct zmq_gw *gw, struct zmq_binding *b,
                        struct zmq_node_msg *m, zmq_msg_t *body)
{
    switch (m->type) {
    case ZMQ_MSG_RETRY:
        gw_retry(gw, b);
        return;
    case ZMQ_MSG_JOIN:
    case ZMQ_MSG_LEAVE:
    case ZMQ_MSG_ECHO:
    case ZMQ_MSG_NOECHO:
    case ZMQ_MSG_MSG:
        if (zmq_groups_message(gw, b, m, body) == 0) {
            return;
        }
        /* an invalid group name destroys the session (spec 2.3): the
         * worker closes it and the node gets `end` */
        m->type = ZMQ_MSG_END;
        break;
    default:
        if (!zmq_msg_type_is_http(m->type) && !gw_plugin_type(gw, b, m)) {
            return;                       /* unknown types: ignored (1.3) */
        }
        break;
    }
    /* spec 3: a group or @sid route reaches other sessions' clients; the
     * types without routing support act on the sender's own session */
    if (m->route.kind != ZMQ_ROUTE_NONE && m->type != ZMQ_MSG_HEADERS &&
        m->type != ZMQ_MSG_BODY && m->type != ZMQ_MSG_END) {
        zmq_groups_fanout(gw, b, m, body);
        return;
    }
    gw_responded(b);
    zmq_gw_forward(gw, b, m->type, body, 0, 0);
}

static void gw_node_message(struct zmq_gw *gw, int router, zmq_msg_t *parts,
                            size_t n)
{
    struct zmq_frame frames[4];
    struct zmq_node_msg m;
    struct zmq_binding *b;
    struct zmq_node *node;
    enum zmq_reject why;
    size_t i;
    int up;

    for (i = 0; i < n && i < 4; i++) {
        frames[i].data = zmq_msg_data(&parts[i]);
        frames[i].len = zmq_msg_size(&parts[i]);
    }
    why = zmq_msg_check(frames, n, gw->max_frame, &m);
    if (why != ZMQ_REJECT_NONE) {
        gw_reject(gw, why);
        return;
    }
    if (!zmq_curve_permits(gw, &parts[0], m.identity, m.identity_len)) {
        gw_reject(gw, ZMQ_REJECT_CURVE_IDENTITY);
        return;
    }
    if (m.is_pong) {
        node = zmq_nodes_seen(&gw->nodes, router, m.identity, m.identity_len,
                              mk_clock_monotonic_ms(), &up);
        if (!node) {
            gw_reject(gw, ZMQ_REJECT_WRONG_NODE);
        }
        else if (up) {
            mk_info("zmq: node \"%.*s\" is available", (int) node->id_len,
                    node->id);
        }
        return;
    }
    b = mk_hash_get(gw->bindings, m.sid, ZMQ_SID_LEN);
    if (!b) {
        gw_reject(gw, ZMQ_REJECT_UNKNOWN_SID);
        return;
    }
    if (b->node->router != router || b->node->id_len != m.identity_len ||
        memcmp(b->node->id, m.identity, m.identity_len) != 0) {
        gw_reject(gw, ZMQ_REJECT_WRONG_NODE);
        return;
    }
    zmq_nodes_seen(&gw->nodes, router, m.identity, m.identity_len,
                   mk_clock_monotonic_ms(), &up);     /* traffic is liveness */
    gw_dispatch(gw, b, &m, &parts[3]);
}

/* Reads whole multipart messages: more than 4 frames never leak into the
 * next message as BlastBeat let them (spec 10.2). Returns 0 at EAGAIN, 1
 * when the batch ran out first. */
static int gw_drain_router(struct zmq_gw *gw, int router)
{
    zmq_msg_t parts[4], extra;
    int batch, more;
    size_t n, i;

    for (batch = 0; batch < ZMQ_RECV_BATCH; batch++) {
        n = 0;
        do {
            zmq_msg_t *dst = n < 4 ? &parts[n] : &extra;
            zmq_msg_init(dst);
            if (zmq_msg_recv(dst, gw->routers[router],
                             n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(dst);
                for (i = 0; i < n && i < 4; i++) {
                    zmq_msg_close(&parts[i]);
                }
                return 0;                     /* EAGAIN: drained */
            }
            more = zmq_msg_more(dst);
            if (dst == &extra) {
                zmq_msg_close(&extra);
            }
            n++;
        } while (more);
        gw_node_message(gw, router, parts, n);
        for (i = 0; i < n && i < 4; i++) {
            zmq_msg_close(&parts[i]);
        }
    }
    return 1;
}

/* ---- Health ----------------------------------------------------------------- */

static void gw_ping(void *ctx, struct zmq_node *n)
{
    zmq_gw_send(ctx, n, NULL, "ping", NULL);
}

static void gw_spawn(void *ctx, struct zmq_node *n)
{
    zmq_gw_send(ctx, n, NULL, "spawn", NULL);
}

struct gw_collect {
    const struct zmq_node *node;       /* NULL: every session */
    uint8_t (*sids)[ZMQ_SID_LEN];
    size_t count, size;
};

static int gw_collect_sid(const char *k, size_t kl, void *v, void *ctx)
{
    struct gw_collect *gc = ctx;
    struct zmq_binding *b = v;

    if ((!gc->node || b->node == gc->node) && gc->count < gc->size) {
        memcpy(gc->sids[gc->count++], k, ZMQ_SID_LEN);
    }
    return 0;
}

/* Unbinds the sessions of `node` (NULL: all of them) and has each owning
 * worker answer 502 where nothing was sent yet, or close (spec 4.2 FIX). */
static void gw_fail_sessions(struct zmq_gw *gw, const struct zmq_node *node)
{
    struct gw_collect gc = { node, NULL, 0, mk_hash_count(gw->bindings) };
    size_t i;

    if (gc.size == 0) {
        return;
    }
    gc.sids = mk_mem_alloc(gc.size * ZMQ_SID_LEN);
    if (!gc.sids) {
        return;
    }
    mk_hash_foreach(gw->bindings, gw_collect_sid, &gc);
    for (i = 0; i < gc.count; i++) {
        gw_fail(gw, mk_hash_get(gw->bindings, (const char *) gc.sids[i],
                                ZMQ_SID_LEN), ZMQ_WIRE_NODE_GONE);
    }
    mk_mem_free(gc.sids);
}

/* A dead node's sessions fail over; its bindings go, so its load is zero
 * again when it comes back. */
static void gw_off(void *ctx, struct zmq_node *n)
{
    mk_warn("zmq: node \"%.*s\" is OFF (%u session(s) failed over)",
            (int) n->id_len, n->id, n->load);
    if (n->load > 0) {
        gw_fail_sessions(ctx, n);
    }
}

/* Reload: the next generation takes the endpoints. Sessions still waiting
 * for a node get 502 now rather than a hang (their nodes will answer the
 * new gateway, which does not know these sids). */
static void gw_give_up_endpoints(struct zmq_gw *gw)
{
    int r;

    gw_fail_sessions(gw, NULL);
    if (gw->guard) {
        zmq_guard_close(gw->guard);
    }
    for (r = 0; r < gw->nrouters; r++) {
        zmq_close(gw->routers[r]);
    }
    gw->nrouters = 0;
    if (gw->zap) {
        zmq_close(gw->zap);
        gw->zap = NULL;
    }
    mk_info("zmq: endpoints handed over to the new configuration");
    atomic_store(&gw->released, 1);
}

void zmq_gw_release_endpoints(struct zmq_gw *gw)
{
    uint64_t t0 = mk_clock_monotonic_ms();

    if (!gw->running) {
        return;
    }
    atomic_store(&gw->release, 1);
    mk_event_loop_wakeup(gw->loop);
    while (!atomic_load(&gw->released) && mk_clock_monotonic_ms() - t0 < 2000) {
        usleep(1000);
    }
}

/*
 * ZMQ_FD is an edge: readable when a command reached the socket, and any
 * zmq_send()/zmq_recv() may consume it. So a socket is read to EAGAIN (which
 * makes libzmq process its pending commands) whenever its fd fired or we
 * sent on it since, and that read is the last ZeroMQ call before we sleep.
 */
struct gw_zfd {
    struct mk_event ev;                /* first member */
    struct zmq_gw *gw;
    int router;                        /* -1: the ZAP socket */
};

static void gw_on_zfd(struct mk_event *ev, uint32_t events)
{
    struct gw_zfd *z = (struct gw_zfd *) ev;

    (void) events;
    if (z->router >= 0) {
        z->gw->unread |= UINT64_C(1) << z->router;
        return;
    }
    for (;;) {
        int zevents = 0;
        size_t len = sizeof(zevents);

        if (zmq_getsockopt(z->gw->zap, ZMQ_EVENTS, &zevents, &len) < 0 ||
            !(zevents & ZMQ_POLLIN)) {
            return;
        }
        zmq_curve_handle(z->gw);
    }
}

static int gw_zfd_add(struct zmq_gw *gw, struct gw_zfd *z, void *sock,
                      int router)
{
    int fd;
    size_t len = sizeof(fd);

    z->ev.fd = -1;
    z->ev.mask = 0;
    z->gw = gw;
    z->router = router;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) < 0 ||
        mk_event_add(gw->loop, &z->ev, fd, MK_EVENT_READ, gw_on_zfd) < 0) {
        mk_err("zmq: cannot watch a ZeroMQ socket: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static uint64_t gw_all_routers(const struct zmq_gw *gw)
{
    return gw->nrouters >= 64 ? ~UINT64_C(0)
                              : (UINT64_C(1) << gw->nrouters) - 1;
}

/* One batch from every ROUTER that may hold messages. A ROUTER stays
 * marked when its batch ran out, or when handling a message sent on it
 * (retry, routed msg): then the loop must not sleep. */
static void gw_read_routers(struct zmq_gw *gw)
{
    uint64_t todo = gw->unread;
    int i;

    gw->unread = 0;
    for (i = 0; i < gw->nrouters; i++) {
        if ((todo & (UINT64_C(1) << i)) && gw_drain_router(gw, i)) {
            gw->unread |= UINT64_C(1) << i;
        }
    }
    gw->unread &= gw_all_routers(gw);
}

/*
 * Not zmq_poll(): every call polls with timeout 0, asks each socket for
 * ZMQ_EVENTS (getpid() + poll() inside libzmq), sleeps in poll() and asks
 * again -- some ten system calls per wake-up before any work, on a thread
 * that wakes for every few requests. One epoll_wait() does the waiting.
 */
/* StatsFreq: BlastBeat's periodic stats line (spec 8.2 stats-freq). */
static void gw_stats(struct zmq_gw *gw)
{
    uint64_t dropped = 0;
    size_t i, up = 0;

    for (i = 0; i < ZMQ_REJECT_COUNT; i++) {
        dropped += gw->rejects[i];
    }
    for (i = 0; i < gw->nodes.count; i++) {
        up += gw->nodes.nodes[i]->available != 0;
    }
    mk_info("zmq: stats: %ld live sessions, %zu bound to nodes, %zu/%zu nodes "
            "available, %lld groups, %llu node messages dropped",
            atomic_load(&gw->conf->live), mk_hash_count(gw->bindings), up,
            gw->nodes.count, mk_group_count(NULL),
            (unsigned long long) dropped);
}

/* Milliseconds the gateway may sleep: none while a ROUTER may hold
 * messages, else until the next timer, or a few ms while a node's queue
 * holds a body back (ZeroMQ tells no per-peer POLLOUT). */
static int gw_wait_ms(const struct zmq_gw *gw, uint64_t next_tick,
                       uint64_t next_stats)
{
    uint64_t now = mk_clock_monotonic_ms(), next = next_tick, wait;

    if (gw->unread) {
        return 0;
    }
    if (gw->conf->stats_freq && next_stats < next) {
        next = next_stats;
    }
    wait = next > now ? next - now : 0;

    if (!mk_list_is_empty(&gw->blocked) && wait > ZMQ_HELD_RETRY_MS) {
        wait = ZMQ_HELD_RETRY_MS;
    }
    return (int) wait;
}

static void gw_timers(struct zmq_gw *gw, const struct zmq_tick_ops *ops,
                      uint64_t *next_tick, uint64_t *next_stats)
{
    uint64_t now = mk_clock_monotonic_ms();
    int i;

    if (now >= *next_tick) {
        /* silence is what a node did not send, not what a busy gateway
         * has not read yet: catch up (boundedly) before judging it, then
         * judge at the time of the last read */
        for (i = 0; gw->unread && i < ZMQ_TICK_CATCH_UP; i++) {
            gw_read_routers(gw);
        }
        now = mk_clock_monotonic_ms();
        zmq_nodes_tick(&gw->nodes, now, ops);
        *next_tick = now + gw->tick_ms;
    }
    if (gw->conf->stats_freq && now >= *next_stats) {
        gw_stats(gw);
        *next_stats = now + gw->conf->stats_freq;
    }
}

static void *gw_main(void *arg)
{
    struct zmq_gw *gw = arg;
    struct zmq_tick_ops ops = { gw_ping, gw_spawn, gw_off, gw };
    struct gw_zfd zfd[ZMQ_MAX_ROUTERS + 1];
    uint64_t now, next_tick, next_stats;
    int i, nzfd = 0;

    /* Spec 5: first tick 1 s after start; never later than one PingFreq,
     * or a short PingFreq would find nodes "silent" that were never
     * pinged and mark them OFF. */
    now = mk_clock_monotonic_ms();
    next_tick = now + (gw->tick_ms < ZMQ_FIRST_TICK_MS ? gw->tick_ms
                                                       : ZMQ_FIRST_TICK_MS);
    next_stats = now + gw->conf->stats_freq;

    pthread_setname_np(pthread_self(), "tremolo-zmq");
    for (i = 0; i < gw->nrouters; i++) {
        if (gw_zfd_add(gw, &zfd[nzfd++], gw->routers[i], i) < 0) {
            goto out;
        }
    }
    if (gw->zap) {
        if (gw_zfd_add(gw, &zfd[nzfd++], gw->zap, -1) < 0) {
            goto out;
        }
        gw_on_zfd(&zfd[nzfd - 1].ev, 0);  /* what came before we watched */
    }
    /* the relay shares this loop: its wake-ups are the gateway's own */
    if (gw->guard && zmq_guard_start(gw->guard, gw->loop) < 0) {
        goto out;
    }
    gw->unread = gw_all_routers(gw);
    while (!atomic_load(&gw->stop)) {
        if (atomic_load(&gw->release) && !atomic_load(&gw->released)) {
            while (nzfd > 0) {
                mk_event_del(gw->loop, &zfd[--nzfd].ev);
            }
            gw_give_up_endpoints(gw);
            gw->unread = 0;
        }
        gw_read_routers(gw);
        /* the inbox and the ZMQ_FDs; inbox messages are sent at once */
        if (mk_event_loop_run_once(gw->loop,
                                   gw_wait_ms(gw, next_tick, next_stats)) < 0) {
            mk_err("zmq: event loop failed: %s", strerror(errno));
            break;
        }
        /* run_once ends with the deferred wake-ups: none is left for an
         * inbox given back during it */
        while (gw->nleaving > 0) {
            zmq_worker_detached(gw, gw->leaving[--gw->nleaving]);
        }
        if (!mk_list_is_empty(&gw->blocked)) {
            gw_flush_held(gw);
        }
        gw_timers(gw, &ops, &next_tick, &next_stats);
    }
out:
    while (nzfd > 0) {
        mk_event_del(gw->loop, &zfd[--nzfd].ev);
    }
    mk_event_loop_flush(gw->loop);         /* wake-ups owed to workers */
    pthread_mutex_lock(&gw->handover_lock);
    gw->handover_closed = 1;               /* no worker waits for us now */
    pthread_cond_broadcast(&gw->handover_cond);
    pthread_mutex_unlock(&gw->handover_lock);
    return NULL;
}

/* ---- Start and stop (master thread) ------------------------------------------ */

/* The gateway ticks as often as the most demanding site pings. */
static uint64_t gw_tick_ms(const struct zmq_gw *gw, uint64_t ping_ms)
{
    size_t i;

    for (i = 0; i < gw->nodes.pattern_count; i++) {
        if (gw->nodes.patterns[i].ping_ms < ping_ms) {
            ping_ms = gw->nodes.patterns[i].ping_ms;
        }
    }
    return ping_ms;
}

int zmq_gw_start(struct zmq_gw *gw, struct zmq_conf *conf,
                 struct mk_server *srv, char *err, size_t errlen)
{
    int i;

    gw->conf = conf;
    gw->srv = srv;
    gw->tick_ms = gw_tick_ms(gw, conf->ping_freq);
    gw->max_frame = conf->max_frame;
    gw->nworkers = mk_server_worker_count(srv);
    pthread_mutex_init(&gw->handover_lock, NULL);
    pthread_cond_init(&gw->handover_cond, NULL);
    mk_list_init(&gw->blocked);
    gw->workers = mk_mem_zalloc((size_t) gw->nworkers * sizeof(*gw->workers));
    gw->leaving = mk_mem_zalloc((size_t) gw->nworkers * sizeof(*gw->leaving));
    gw->bindings = mk_hash_create(1024, 0);
    if (!gw->bindings) {
        return mk_str_fail(err, errlen, "zmq: out of memory");
    }
    gw->loop = mk_event_loop_create(64);
    gw->ctx = zmq_ctx_new();
    if (!gw->workers || !gw->leaving || !gw->bindings || !gw->loop ||
        !gw->ctx ||
        mk_channel_init(&gw->inbox, gw->loop, gw_on_inbox, gw) < 0) {
        return mk_str_fail(err, errlen, "zmq: out of resources");
    }
    if (zmq_curve_setup(gw, conf, err, errlen) < 0) {
        return -1;
    }
    if (conf->node_guard && !conf->curve &&
        !(gw->guard = zmq_guard_create(conf->max_frame,
                                       (size_t) conf->node_conns))) {
        return mk_str_fail(err, errlen, "zmq: out of memory");
    }
    for (i = 0; i < conf->nendpoints; i++) {
        if (zmq_gw_bind_router(gw, conf, i, err, errlen) < 0) {
            return -1;
        }
    }
    if (pthread_create(&gw->thread, NULL, gw_main, gw) != 0) {
        return mk_str_fail(err, errlen, "zmq: cannot start the gateway thread");
    }
    gw->running = 1;
    return 0;
}

static int gw_free_binding(const char *k, size_t kl, void *v, void *ctx)
{
    struct zmq_binding *b = v;

    mk_group_leave_all(b->sid);
    zmq_pieces_drop(&b->pieces);
    zmq_outq_release(&b->held);
    zmq_msg_close(&b->packet);
    mk_mem_free(b);
    return 0;
}

void zmq_gw_stop(struct zmq_gw *gw)
{
    int i;

    if (gw->running) {
        atomic_store(&gw->stop, 1);
        mk_event_loop_wakeup(gw->loop);
        pthread_join(gw->thread, NULL);
        gw->running = 0;
    }
    for (i = 0; i < gw->nrouters; i++) {
        zmq_close(gw->routers[i]);
    }
    gw->nrouters = 0;
    zmq_guard_destroy(gw->guard);
    gw->guard = NULL;
    zmq_curve_release(gw);
    if (gw->ctx) {
        zmq_ctx_term(gw->ctx);
        gw->ctx = NULL;
    }
    if (gw->loop) {
        mk_channel_release(&gw->inbox);
        mk_event_loop_destroy(gw->loop);
        gw->loop = NULL;
    }
    if (gw->bindings) {
        mk_hash_foreach(gw->bindings, gw_free_binding, gw);
        mk_hash_destroy(gw->bindings, NULL);
        gw->bindings = NULL;
    }
    zmq_nodes_release(&gw->nodes);
    mk_mem_free(gw->workers);
    mk_mem_free(gw->leaving);
    gw->workers = NULL;
    gw->leaving = NULL;
    pthread_cond_destroy(&gw->handover_cond);
    pthread_mutex_destroy(&gw->handover_lock);
}
