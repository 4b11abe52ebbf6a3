#ifndef TREMOLO_ZMQ_NODES_H
#define TREMOLO_ZMQ_NODES_H

/*
 * The gateway's node registry (gateway thread only; no locks). A node is an
 * identity on one ROUTER. Sites list exact identities or glob patterns
 * (`web-*`, `*`): an identity matching a pattern of its ROUTER is admitted
 * at its first pong with no configuration change; any other is refused.
 * Selection is least live sessions, ties to the first listed; liveness is
 * ping/pong on monotonic milliseconds (spec sections 4.2 and 5).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mk_core/mk_hash.h"

#define ZMQ_NODE_ID_MAX 255

struct zmq_node {
    char id[ZMQ_NODE_ID_MAX + 1];
    size_t id_len;
    int router;
    int configured;            /* listed by exact name: pinged before contact */
    int available;             /* OFF until the first pong or message */
    uint64_t last_seen;        /* ms; 0 = never */
    unsigned load;             /* live sessions bound to it */
    int spawn_sent;
    uint32_t warned_types;     /* unhandled types already logged (bit/type) */
    int warned_framing;        /* a framing fault of its responses was logged */
    uint64_t seq;              /* admission order: ties among glob matches */
    uint64_t ping_ms;          /* the shortest PingFreq of the sites listing it */
    /* bytes libzmq holds for it, given back by libzmq's I/O thread as it
     * writes them out (zmq_queue.c); the node is kept while non-zero */
    atomic_size_t queued;
};

struct zmq_pattern {
    char *text;
    int router;
    int is_glob;
    uint64_t ping_ms;          /* the site's PingFreq (the shortest, if shared) */
};

struct zmq_nodes {
    struct mk_hash *by_key;    /* "router:id" -> node */
    struct zmq_node **nodes;   /* admission order */
    size_t count, size, max_nodes;
    struct zmq_pattern *patterns;
    size_t pattern_count;
    uint64_t next_seq;
};

/* A site's node list: indexes into zmq_nodes.patterns, in config order. */
struct zmq_site_nodes {
    const size_t *patterns;
    size_t count;
};

int  zmq_nodes_init(struct zmq_nodes *ns, size_t max_nodes);
void zmq_nodes_release(struct zmq_nodes *ns);
/* Registers a pattern of a site pinging every ping_ms (exact identities
 * become nodes at once, so they are pinged and sent `spawn` before they
 * ever connect). Returns its index. */
long zmq_nodes_add_pattern(struct zmq_nodes *ns, int router, const char *text,
                           uint64_t ping_ms);

/* A pong or accepted message from `id` on `router`. Returns the node (new
 * if a pattern admits it), or NULL for an identity nobody admits or past
 * max_nodes. *became_available tells the OFF -> available transition. */
struct zmq_node *zmq_nodes_seen(struct zmq_nodes *ns, int router,
                                const char *id, size_t len, uint64_t now,
                                int *became_available);
struct zmq_node *zmq_nodes_get(struct zmq_nodes *ns, int router,
                               const char *id, size_t len);

/* The available candidate with the fewest sessions, skipping `exclude`
 * (nodes that already refused with `retry`); NULL if none. */
struct zmq_node *zmq_nodes_pick(struct zmq_nodes *ns,
                                const struct zmq_site_nodes *site,
                                struct zmq_node *const *exclude,
                                size_t nexclude);

struct zmq_tick_ops {
    void (*ping)(void *ctx, struct zmq_node *n);
    void (*spawn)(void *ctx, struct zmq_node *n);
    void (*off)(void *ctx, struct zmq_node *n);      /* went OFF */
    void *ctx;
};
/* One health tick: ping nodes silent for >= their ping_ms, mark OFF those
 * silent for more than 3 x ping_ms, send `spawn` once, and forget
 * glob-admitted nodes that are OFF, idle, silent for 10 x ping_ms and
 * owed nothing by libzmq (a hostile peer cycling identities cannot grow
 * the registry without bound). The caller ticks at least as often as the shortest ping_ms. */
void zmq_nodes_tick(struct zmq_nodes *ns, uint64_t now,
                    const struct zmq_tick_ops *ops);

#endif
