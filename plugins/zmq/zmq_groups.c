/*
 * Groups and routed messages, in the gateway thread (spec sections 2.3, 3):
 * a group belongs to one vhost, is created by the first `join` and
 * destroyed with its last member; `NAME:msg` reaches every other member's
 * node, and the sender's own node only when it is a member with echo on;
 * `@sid:msg` reaches one session of the same vhost (spec 10.10 fix).
 * `NAME:chunk` and `@sid:chunk` reach the same recipients' clients.
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

struct zmq_group {
    char key[sizeof(void *) + ZMQ_GROUP_MAX];  /* site pointer + name */
    size_t key_len;
    struct mk_list members;
};

struct zmq_member {
    struct zmq_binding *b;
    struct zmq_group *g;
    int echo;
    struct mk_list _group;
    struct mk_list _session;
};

int zmq_groups_init(struct zmq_gw *gw)
{
    gw->groups = mk_hash_create(64, 0);
    gw->members = mk_hash_create(64, 0);
    return gw->groups && gw->members ? 0 : -1;
}

void zmq_groups_release(struct zmq_gw *gw)
{
    /* members were freed with their bindings (zmq_groups_leave_all) */
    mk_hash_destroy(gw->groups, mk_mem_free);
    mk_hash_destroy(gw->members, NULL);
    gw->groups = NULL;
    gw->members = NULL;
}

static size_t groups_key(char *key, const void *site, const char *name,
                         size_t len)
{
    memcpy(key, &site, sizeof(site));
    memcpy(key + sizeof(site), name, len);
    return sizeof(site) + len;
}

static struct zmq_group *groups_find(struct zmq_gw *gw, const void *site,
                                     const char *name, size_t len)
{
    char key[sizeof(void *) + ZMQ_GROUP_MAX];

    return mk_hash_get(gw->groups, key, groups_key(key, site, name, len));
}

/* A membership's key: the two addresses, which are unique while both
 * live (a membership never outlives its session or its group). */
struct groups_pair {
    const struct zmq_binding *b;
    const struct zmq_group *g;
};

static struct zmq_member *groups_member(struct zmq_gw *gw,
                                        const struct zmq_binding *b,
                                        const struct zmq_group *g)
{
    struct groups_pair k = { b, g };

    return mk_hash_get(gw->members, (const char *) &k, sizeof(k));
}

static void groups_drop_if_empty(struct zmq_gw *gw, struct zmq_group *g,
                                 struct zmq_binding *b)
{
    if (mk_list_is_empty(&g->members)) {
        mk_hash_del(gw->groups, g->key, g->key_len);
        mk_mem_free(g);
        b->vc->live_groups--;
    }
}

static void groups_remove(struct zmq_gw *gw, struct zmq_member *m)
{
    struct groups_pair k = { m->b, m->g };
    struct zmq_group *g = m->g;
    struct zmq_binding *b = m->b;

    mk_hash_del(gw->members, (const char *) &k, sizeof(k));
    mk_list_del(&m->_group);
    mk_list_del(&m->_session);
    mk_mem_free(m);
    b->ngroups--;
    groups_drop_if_empty(gw, g, b);
}

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

static struct zmq_group *groups_create(struct zmq_gw *gw,
                                       struct zmq_binding *b,
                                       const char *name, size_t len)
{
    struct zmq_group *g = mk_mem_zalloc(sizeof(*g));

    if (!g) {
        return NULL;
    }
    g->key_len = groups_key(g->key, b->vc, name, len);
    mk_list_init(&g->members);
    if (mk_hash_set(gw->groups, g->key, g->key_len, g) < 0) {
        mk_mem_free(g);
        return NULL;
    }
    b->vc->live_groups++;
    return g;
}

static int groups_join(struct zmq_gw *gw, struct zmq_binding *b,
                       const char *name, size_t len)
{
    long long per_session = b->vc->session_groups;
    long long per_site = b->vc->groups;
    struct zmq_group *g = groups_find(gw, b->vc, name, len);
    struct groups_pair k;
    struct zmq_member *m;

    if (g && groups_member(gw, b, g)) {
        return 0;                          /* joining again: no-op */
    }
    if (b->ngroups >= per_session) {
        groups_refuse(gw, b, "GroupsPerSession", per_session);
        return 0;
    }
    if (!g && b->vc->live_groups >= per_site) {
        groups_refuse(gw, b, "the site's Groups", per_site);
        return 0;
    }
    if (!g && !(g = groups_create(gw, b, name, len))) {
        return -1;
    }
    m = mk_mem_zalloc(sizeof(*m));
    k.b = b;
    k.g = g;
    if (!m || mk_hash_set(gw->members, (const char *) &k, sizeof(k), m) < 0) {
        mk_mem_free(m);
        groups_drop_if_empty(gw, g, b);
        return -1;
    }
    m->b = b;
    m->g = g;
    m->echo = b->echo_default;
    mk_list_add(&m->_group, &g->members);
    mk_list_add(&m->_session, &b->memberships);
    b->ngroups++;
    return 0;
}

void zmq_groups_leave_all(struct zmq_gw *gw, struct zmq_binding *b)
{
    while (!mk_list_is_empty(&b->memberships)) {
        groups_remove(gw, mk_list_entry(b->memberships.next,
                                        struct zmq_member, _session));
    }
}

typedef void (*groups_deliver_fn)(struct zmq_gw *gw, struct zmq_binding *to,
                                  const struct zmq_node_msg *m, void *ctx);

/* The recipients of a routed message (spec 3): `@sid` is one session of
 * the sender's vhost, never the sender itself; `NAME` is every other
 * member of the vhost's group, then the sender if it is a member with
 * echo on. A group that does not exist drops the message whole. */
static void groups_route(struct zmq_gw *gw, struct zmq_binding *from,
                         const struct zmq_node_msg *m,
                         groups_deliver_fn deliver, void *ctx)
{
    const struct zmq_route *rt = &m->route;
    struct zmq_member *self = NULL;
    struct zmq_group *g;
    struct zmq_binding *to;
    struct mk_list *it;

    if (rt->kind == ZMQ_ROUTE_SID) {
        to = mk_hash_get(gw->bindings, rt->name, ZMQ_SID_LEN);
        if (to && to != from && to->vc == from->vc) {
            deliver(gw, to, m, ctx);
        }
        return;
    }
    g = groups_find(gw, from->vc, rt->name, rt->name_len);
    if (!g) {
        return;
    }
    mk_list_foreach(it, &g->members) {
        struct zmq_member *mb = mk_list_entry(it, struct zmq_member, _group);
        if (mb->b == from) {
            self = mb;
            continue;
        }
        deliver(gw, mb->b, m, ctx);
    }
    if (self && self->echo) {
        deliver(gw, from, m, ctx);
    }
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

/* Other types go to each recipient's client, through its worker; every
 * delivery of one fan-out shares the bytes and carries the fan-out's id. */
struct groups_fan {
    zmq_msg_t *body;
    uint64_t share;
};

static void groups_to_client(struct zmq_gw *gw, struct zmq_binding *to,
                             const struct zmq_node_msg *m, void *ctx)
{
    struct groups_fan *fan = ctx;

    zmq_gw_forward(gw, to, m->type, fan->body, 1, fan->share);
}

void zmq_groups_fanout(struct zmq_gw *gw, struct zmq_binding *from,
                       const struct zmq_node_msg *m, zmq_msg_t *body)
{
    struct groups_fan fan = { body, ++gw->shares };

    groups_route(gw, from, m, groups_to_client, &fan);
}

int zmq_groups_message(struct zmq_gw *gw, struct zmq_binding *b,
                       const struct zmq_node_msg *m, zmq_msg_t *body)
{
    struct zmq_group *g;
    struct zmq_member *mb;

    switch (m->type) {
    case ZMQ_MSG_JOIN:
        if (!zmq_group_name_is_valid(m->body, m->body_len)) {
            return -1;
        }
        return groups_join(gw, b, m->body, m->body_len);
    case ZMQ_MSG_LEAVE:
        g = zmq_group_name_is_valid(m->body, m->body_len) ?
            groups_find(gw, b->vc, m->body, m->body_len) : NULL;
        mb = g ? groups_member(gw, b, g) : NULL;
        if (mb) {
            groups_remove(gw, mb);
        }
        return 0;
    case ZMQ_MSG_ECHO:
    case ZMQ_MSG_NOECHO:
        if (m->body_len == 0) {
            b->echo_default = m->type == ZMQ_MSG_ECHO;
            return 0;
        }
        g = groups_find(gw, b->vc, m->body,
                        m->body_len > ZMQ_GROUP_MAX ? 0 : m->body_len);
        mb = g ? groups_member(gw, b, g) : NULL;
        if (mb) {
            mb->echo = m->type == ZMQ_MSG_ECHO;
        }
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
