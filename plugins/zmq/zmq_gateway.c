/*
 * The gateway thread: owns the ROUTER sockets (ZeroMQ sockets are not
 * thread-safe) and every node-side structure: the node registry, the
 * sid -> node bindings, the health ticks. Workers talk to it through its
 * inbox channel; it answers through each worker's inbox. It waits in its
 * own mk_event_loop, where the inbox and every ZeroMQ socket's ZMQ_FD are
 * registered (see gw_main in zmq_gw_thread.c for why not zmq_poll()).
 * This file handles what arrives (workers' messages, nodes' messages);
 * zmq_gw_thread.c runs the thread, its health ticks, start and stop.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

#define ZMQ_RECV_BATCH 256          /* per ROUTER per wake-up: fairness */
#define ZMQ_HELD_MAX (4 * 1024 * 1024) /* body held for a full node queue */

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
        zmq_wire_destroy(w);
        return;
    }
    /* the worker is woken when the gateway's batch is done, not at its
     * first message: a broadcast to 10,000 members is then one wake-up
     * per worker, and a worker on the other core does not take each
     * member's message alone (27 us of CPU per member instead of 9) */
    mk_channel_push_deferred(&gw->workers[worker]->inbox, &w->msg, gw->loop);
}

static void gw_tell(struct zmq_gw *gw, const uint8_t *sid, int worker,
                    enum zmq_wire_kind kind)
{
    struct zmq_wire *w = zmq_wire_create(kind, sid);

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
    w = zmq_wire_create(ZMQ_WIRE_ACK, b->sid);
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
void zmq_gw_fail(struct zmq_gw *gw, struct zmq_binding *b,
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
        zmq_gw_fail(gw, b, ZMQ_WIRE_NODE_GONE);
        return -1;
    default:
        mk_warn("zmq: node %.*s does not take a session's %s fast enough",
                (int) b->node->id_len, b->node->id,
                type == ZMQ_MSG_BODY ? "request body" : "messages");
        zmq_gw_send(gw, b->node, b->sid, "end", NULL);
        zmq_gw_fail(gw, b, ZMQ_WIRE_NO_NODE);
        return -1;
    }
}

/* Sends what bindings held back, in order, as far as their nodes take it. */
void zmq_gw_flush_held(struct zmq_gw *gw)
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
            zmq_gw_fail(gw, b, ZMQ_WIRE_NODE_GONE);
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
        zmq_gw_fail(gw, b, ZMQ_WIRE_NO_NODE);
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
    struct zmq_wire *w = zmq_wire_create(ZMQ_WIRE_ACK, body->sid);

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

void zmq_gw_on_inbox(struct mk_channel *ch, struct mk_channel_msg *msg)
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
    zmq_wire_destroy(w);
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
        zmq_gw_fail(gw, b, ZMQ_WIRE_NODE_GONE);
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

/* A node's message for its own session goes to the worker that owns it;
 * the body's bytes are shared (zmq_msg_copy counts a reference), not
 * copied. Group fan-outs go their own way (zmq_groups_fanout). */
static void gw_forward(struct zmq_gw *gw, const struct zmq_binding *to,
                       enum zmq_msg_type type, zmq_msg_t *body)
{
    struct zmq_wire *w = zmq_wire_create(ZMQ_WIRE_NODE, to->sid);

    if (!w) {
        return;
    }
    w->type = type;
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
    case ZMQ_MSG_PUSH:
        if (m->route.kind == ZMQ_ROUTE_NONE) {
            gw_forward(gw, b, m->type, body);   /* not the response's start */
        }
        return;
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
    gw_forward(gw, b, m->type, body);
}

void zmq_gw_node_message(struct zmq_gw *gw, int router, const void *id,
                         size_t id_len, const struct zmq_frame *parts,
                         size_t n, zmq_msg_t *body, const zmq_msg_t *meta)
{
    struct zmq_frame frames[4];
    struct zmq_node_msg m;
    struct zmq_binding *b;
    struct zmq_node *node;
    enum zmq_reject why;
    size_t i;
    int up;

    frames[0].data = id;
    frames[0].len = id_len;
    for (i = 0; i < n && i < 3; i++) {
        frames[i + 1] = parts[i];
    }
    n++;
    why = zmq_msg_check(frames, n, gw->max_frame, &m);
    if (why != ZMQ_REJECT_NONE) {
        gw_reject(gw, why);
        return;
    }
    if (!zmq_curve_permits(gw, meta, m.identity, m.identity_len)) {
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
    gw_dispatch(gw, b, &m, body);
}

/* The first n (at most 3) of parts as data/len frames */
static void gw_frames(zmq_msg_t *parts, size_t n, struct zmq_frame *out)
{
    for (size_t i = 0; i < n && i < 3; i++) {
        out[i].data = zmq_msg_data(&parts[i]);
        out[i].len = zmq_msg_size(&parts[i]);
    }
}

/* Reads whole multipart messages: more than 4 frames never leak into the
 * next message as BlastBeat let them (spec 10.2). Returns 0 at EAGAIN, 1
 * when the batch ran out first. */
int zmq_gw_drain_router(struct zmq_gw *gw, int router)
{
    zmq_msg_t parts[4], extra;
    struct zmq_frame frames[3];
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
        gw_frames(&parts[1], n - 1, frames);
        /* n >= 1: libzmq's ROUTER puts the identity first */
        zmq_gw_node_message(gw, router, zmq_msg_data(&parts[0]),
                            zmq_msg_size(&parts[0]), frames, n - 1,
                            n == 4 ? &parts[3] : NULL, &parts[0]);
        for (i = 0; i < n && i < 4; i++) {
            zmq_msg_close(&parts[i]);
        }
    }
    return 1;
}

void zmq_gw_native_message(void *ctx, int router, const uint8_t *id,
                           size_t id_len, zmq_msg_t *parts, size_t n)
{
    struct zmq_frame frames[3];

    gw_frames(parts, n, frames);
    zmq_gw_node_message(ctx, router, id, id_len, frames, n,
                        n == 3 ? &parts[2] : NULL, NULL);
}
