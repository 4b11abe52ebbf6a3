/*
 * Groups and routed messages, in the gateway thread (spec sections 2.3, 3):
 * a group belongs to one vhost, is created by the first `join` and
 * destroyed with its last member; `NAME:msg` reaches every other member's
 * node, and the sender's own node only when it is a member with echo on;
 * `@sid:msg` reaches one session of the same vhost (spec 10.10 fix).
 * `NAME:chunk` and `@sid:chunk` reach the same recipients' clients.
 */
#include <string.h>

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
    return gw->groups ? 0 : -1;
}

void zmq_groups_release(struct zmq_gw *gw)
{
    /* members were freed with their bindings (zmq_groups_leave_all) */
    mk_hash_destroy(gw->groups, mk_mem_free);
    gw->groups = NULL;
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

static struct zmq_member *groups_member(struct zmq_binding *b,
                                        const struct zmq_group *g)
{
    struct mk_list *it;

    mk_list_foreach(it, &b->memberships) {
        struct zmq_member *m = mk_list_entry(it, struct zmq_member, _session);
        if (m->g == g) {
            return m;
        }
    }
    return NULL;
}

static void groups_remove(struct zmq_gw *gw, struct zmq_member *m)
{
    struct zmq_group *g = m->g;

    mk_list_del(&m->_group);
    mk_list_del(&m->_session);
    mk_mem_free(m);
    if (mk_list_is_empty(&g->members)) {
        mk_hash_del(gw->groups, g->key, g->key_len);
        mk_mem_free(g);
    }
}

static int groups_join(struct zmq_gw *gw, struct zmq_binding *b,
                       const char *name, size_t len)
{
    struct zmq_group *g = groups_find(gw, b->vc, name, len);
    struct zmq_member *m;

    if (!g) {
        g = mk_mem_zalloc(sizeof(*g));
        if (!g) {
            return -1;
        }
        g->key_len = groups_key(g->key, b->vc, name, len);
        mk_list_init(&g->members);
        if (mk_hash_set(gw->groups, g->key, g->key_len, g) < 0) {
            mk_mem_free(g);
            return -1;
        }
    }
    if (groups_member(b, g)) {
        return 0;                          /* joining again: no-op */
    }
    m = mk_mem_zalloc(sizeof(*m));
    if (!m) {
        if (mk_list_is_empty(&g->members)) {
            mk_hash_del(gw->groups, g->key, g->key_len);
            mk_mem_free(g);
        }
        return -1;
    }
    m->b = b;
    m->g = g;
    m->echo = b->echo_default;
    mk_list_add(&m->_group, &g->members);
    mk_list_add(&m->_session, &b->memberships);
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

/* `msg` goes to each recipient's node. */
static void groups_to_node(struct zmq_gw *gw, struct zmq_binding *to,
                           const struct zmq_node_msg *m, void *ctx)
{
    zmq_gw_send(gw, to->node, to->sid, "msg", m->body, m->body_len);
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
                       const struct zmq_node_msg *m)
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
        mb = g ? groups_member(b, g) : NULL;
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
        mb = g ? groups_member(b, g) : NULL;
        if (mb) {
            mb->echo = m->type == ZMQ_MSG_ECHO;
        }
        return 0;
    case ZMQ_MSG_MSG:
        if (m->route.kind != ZMQ_ROUTE_NONE) {
            groups_route(gw, b, m, groups_to_node, NULL);
        }                                  /* msg without a route: ignored */
        return 0;
    default:
        return 0;
    }
}
