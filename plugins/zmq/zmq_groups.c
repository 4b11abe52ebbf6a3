/*
 * Groups and routed messages, in the gateway thread (spec sections 2.3, 3).
 * mk_server keeps the groups (mk_group_*: per-site names, caps, echo);
 * this file applies a node's join/leave/echo/noecho to them and routes:
 * `NAME:msg` reaches every other member's node, and the sender's own node
 * only when it is a member with echo on; `@sid:msg` reaches one session of
 * the same site (spec 10.10 fix). `NAME:chunk` and `@sid:chunk` reach the
 * same recipients' clients.
 *
 * A hostile node must not make this costly: a session joins at most
 * GroupsPerSession groups and a site holds at most Groups groups (a join
 * past either is refused, counted and logged once a second), membership
 * is one hash lookup, and a routed `msg` shares the sender's bytes with
 * every recipient's queue (NodeQueueLimit bounds each of those).
 */
#include <errno.h>
#include <string.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

/* A join past a cap: the session stays, without the membership. */
static void groups_refuse(struct zmq_gw *gw, const struct zmq_binding *b,
                         const char *what, long long cap)
{
    uint64_t now = mk_clock_monotonic_ms();

    gw->groups_refused++;
    if (now - gw->last_groups_log >= 1000) {
        gw->last_groups_log = now;
        mk_warn("zmq: node \"%.*s\": join refused, %s (%lld) reached; "
                "%llu join(s) refused so far", (int) b->node->id_len,
                b->node->id, what, cap,
                (unsigned long long) gw->groups_refused);
    }
}

static int groups_join(struct zmq_gw *gw, struct zmq_binding *b,
                       const char *name, size_t len)
{
    switch (mk_group_join(b->vc, b->sid, name, len, b->vc->groups,
                          b->vc->session_groups)) {
    case MK_GROUP_JOINED:
        return 0;
    case MK_GROUP_FULL_SESSION:
        groups_refuse(gw, b, "GroupsPerSession", b->vc->session_groups);
        return 0;
    case MK_GROUP_FULL_SCOPE:
        groups_refuse(gw, b, "the site's Groups", b->vc->groups);
        return 0;
    default:
        return -1;
    }
}

typedef void (*groups_deliver_fn)(struct zmq_gw *gw, struct zmq_binding *to,
                                  const struct zmq_node_msg *m, void *ctx);

struct groups_route_ctx {
    struct zmq_gw *gw;
    const struct zmq_node_msg *m;
    groups_deliver_fn deliver;
    void *ctx;
};

static void groups_to_member(void *ctx, const uint8_t *sid)
{
    struct groups_route_ctx *rc = ctx;
    struct zmq_binding *to = mk_hash_get(rc->gw->bindings, (const char *) sid,
                                         ZMQ_SID_LEN);

    if (to) {                            /* it leaves when it is unbound */
        rc->deliver(rc->gw, to, rc->m, rc->ctx);
    }
}

/* The recipients of a routed message (spec 3): `@sid` is one session of
 * the sender's site, never the sender itself; `NAME` is every other
 * member of the site's group, then the sender if it is a member with
 * echo on. A group that does not exist drops the message whole. */
static void groups_route(struct zmq_gw *gw, struct zmq_binding *from,
                         const struct zmq_node_msg *m,
                         groups_deliver_fn deliver, void *ctx)
{
    const struct zmq_route *rt = &m->route;
    struct groups_route_ctx rc = { gw, m, deliver, ctx };
    struct zmq_binding *to;

    if (rt->kind == ZMQ_ROUTE_SID) {
        to = mk_hash_get(gw->bindings, rt->name, ZMQ_SID_LEN);
        if (to && to != from && to->vc == from->vc) {
            deliver(gw, to, m, ctx);
        }
        return;
    }
    mk_group_route(from->vc, rt->name, rt->name_len, from->sid,
                   groups_to_member, &rc);
}

/* `msg` goes to each recipient's node, sharing the sender's bytes; a
 * node whose queue is full misses it (ZeroMQ's own rule at the high-water
 * mark), counted and logged once a second. */
static void groups_to_node(struct zmq_gw *gw, struct zmq_binding *to,
                           const struct zmq_node_msg *m, void *ctx)
{
    uint64_t now;

    if (zmq_gw_send(gw, to->node, to->sid, "msg", ctx) == 0) {
        return;
    }
    gw->msgs_dropped++;
    now = mk_clock_monotonic_ms();
    if (now - gw->last_drop_log >= 1000) {
        gw->last_drop_log = now;
        mk_warn("zmq: node \"%.*s\" does not read: a routed msg for it was "
                "dropped (%s); %llu so far", (int) to->node->id_len,
                to->node->id, errno == EAGAIN ? "queue full" : "gone",
                (unsigned long long) gw->msgs_dropped);
    }
}

/* Other types go to the recipients' clients: mk_server batches a group's
 * members by owning worker, and each worker gets one message listing its
 * recipients in routing order, sharing the node's bytes (zmq_msg_copy
 * counts a reference) and the fan-out's id, so a worker takes a broadcast
 * to 10,000 members as one message. It goes through the worker's zmq
 * inbox, the one that carries the node's direct messages too: a session
 * gets its node's direct and group messages in the order they were sent. */
struct groups_fan {
    struct zmq_gw *gw;
    const struct zmq_node_msg *m;
    zmq_msg_t *body;
    uint64_t share;
};

/* The worker is woken when the gateway's batch is done (see gw_to_worker
 * in zmq_gateway.c); one whose inbox was given back gets nothing. */
static void groups_batch(void *ctx, int worker, const uint8_t *sids, size_t n)
{
    struct groups_fan *fan = ctx;
    struct zmq_gw *gw = fan->gw;
    struct zmq_wire *w;
    size_t i;

    if (worker < 0 || worker >= gw->nworkers || !gw->workers[worker]) {
        return;
    }
    w = zmq_wire_create(ZMQ_WIRE_FANOUT, sids);
    for (i = 0; w && i < n; i++) {
        if (zmq_wire_add_sid(w, sids + i * ZMQ_SID_LEN) < 0) {
            zmq_wire_destroy(w);
            w = NULL;
        }
    }
    if (!w) {
        mk_warn("zmq: out of memory: a routed %s missed worker %d's members",
                zmq_msg_type_name(fan->m->type), worker);
        return;
    }
    w->type = fan->m->type;
    w->routed = 1;
    w->share = fan->share;
    zmq_msg_copy(&w->payload, fan->body);
    mk_channel_push_deferred(&gw->workers[worker]->inbox, &w->msg, gw->loop);
}

/* `@sid` is one session of the sender's site, never the sender itself;
 * `NAME` is the group's recipients as mk_group_fanout batches them. */
void zmq_groups_fanout(struct zmq_gw *gw, struct zmq_binding *from,
                       const struct zmq_node_msg *m, zmq_msg_t *body)
{
    struct groups_fan fan = { gw, m, body, ++gw->shares };
    const struct zmq_route *rt = &m->route;
    struct zmq_binding *to;

    if (rt->kind != ZMQ_ROUTE_SID) {
        mk_group_fanout(from->vc, rt->name, rt->name_len, from->sid,
                        groups_batch, &fan);
        return;
    }
    to = mk_hash_get(gw->bindings, rt->name, ZMQ_SID_LEN);
    if (to && to != from && to->vc == from->vc) {
        groups_batch(&fan, to->worker, to->sid, 1);
    }
}

int zmq_groups_message(struct zmq_gw *gw, struct zmq_binding *b,
                       const struct zmq_node_msg *m, zmq_msg_t *body)
{
    switch (m->type) {
    case ZMQ_MSG_JOIN:
        if (!zmq_group_name_is_valid(m->body, m->body_len)) {
            return -1;
        }
        return groups_join(gw, b, m->body, m->body_len);
    case ZMQ_MSG_LEAVE:
        if (zmq_group_name_is_valid(m->body, m->body_len)) {
            mk_group_leave(b->vc, b->sid, m->body, m->body_len);
        }
        return 0;
    case ZMQ_MSG_ECHO:
    case ZMQ_MSG_NOECHO:
        /* an empty name sets the default for future joins (spec 2.3) */
        mk_group_echo(b->vc, b->sid, m->body, m->body_len,
                      m->type == ZMQ_MSG_ECHO);
        return 0;
    case ZMQ_MSG_MSG:
        if (m->route.kind != ZMQ_ROUTE_NONE) {
            groups_route(gw, b, m, groups_to_node, body);
        }                                  /* msg without a route: ignored */
        return 0;
    default:
        return 0;
    }
}
