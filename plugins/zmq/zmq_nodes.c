/*
 * Node registry, selection and liveness for the gateway thread
 * (see zmq_nodes.h).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq_nodes.h"

static size_t nodes_key(char *key, size_t size, int router, const char *id,
                        size_t len)
{
    int n = snprintf(key, size, "%d:", router);

    memcpy(key + n, id, len);
    return (size_t) n + len;
}

int zmq_nodes_init(struct zmq_nodes *ns, size_t max_nodes)
{
    memset(ns, 0, sizeof(*ns));
    ns->max_nodes = max_nodes;
    ns->by_key = mk_hash_create(64, 0);
    return ns->by_key ? 0 : -1;
}

void zmq_nodes_release(struct zmq_nodes *ns)
{
    size_t i;

    for (i = 0; i < ns->count; i++) {
        mk_mem_free(ns->nodes[i]);
    }
    mk_mem_free(ns->nodes);
    for (i = 0; i < ns->pattern_count; i++) {
        mk_mem_free(ns->patterns[i].text);
    }
    mk_mem_free(ns->patterns);
    mk_hash_destroy(ns->by_key, NULL);
    memset(ns, 0, sizeof(*ns));
}

struct zmq_node *zmq_nodes_get(struct zmq_nodes *ns, int router,
                               const char *id, size_t len)
{
    char key[ZMQ_NODE_ID_MAX + 16];

    if (len > ZMQ_NODE_ID_MAX) {
        return NULL;
    }
    return mk_hash_get(ns->by_key, key,
                       nodes_key(key, sizeof(key), router, id, len));
}

static int nodes_match(const struct zmq_pattern *p, int router,
                       const char *id)
{
    return p->router == router && (p->is_glob ? fnmatch(p->text, id, 0) == 0
                                              : strcmp(p->text, id) == 0);
}

/* A node is pinged as often as the most demanding site that lists it. */
static void nodes_ping_freq(const struct zmq_nodes *ns, struct zmq_node *n)
{
    size_t i;

    for (i = 0; i < ns->pattern_count; i++) {
        const struct zmq_pattern *p = &ns->patterns[i];
        if (nodes_match(p, n->router, n->id) &&
            (n->ping_ms == 0 || p->ping_ms < n->ping_ms)) {
            n->ping_ms = p->ping_ms;
        }
    }
}

static struct zmq_node *nodes_add(struct zmq_nodes *ns, int router,
                                  const char *id, size_t len)
{
    char key[ZMQ_NODE_ID_MAX + 16];
    struct zmq_node *n;

    if (len == 0 || len > ZMQ_NODE_ID_MAX || ns->count == ns->max_nodes) {
        return NULL;
    }
    if (ns->count == ns->size) {
        size_t size = ns->size ? ns->size * 2 : 16;
        struct zmq_node **grown = mk_mem_realloc(ns->nodes,
                                                 size * sizeof(*grown));
        if (!grown) {
            return NULL;
        }
        ns->nodes = grown;
        ns->size = size;
    }
    n = mk_mem_zalloc(sizeof(*n));
    if (!n) {
        return NULL;
    }
    memcpy(n->id, id, len);
    n->id_len = len;
    n->router = router;
    n->seq = ns->next_seq++;
    nodes_ping_freq(ns, n);
    if (mk_hash_set(ns->by_key, key,
                    nodes_key(key, sizeof(key), router, id, len), n) < 0) {
        mk_mem_free(n);
        return NULL;
    }
    ns->nodes[ns->count++] = n;
    return n;
}

/* Nodes already known that a new or faster pattern matches. */
static void nodes_reping(struct zmq_nodes *ns, const struct zmq_pattern *p)
{
    size_t i;

    for (i = 0; i < ns->count; i++) {
        struct zmq_node *n = ns->nodes[i];
        if (nodes_match(p, n->router, n->id) && p->ping_ms < n->ping_ms) {
            n->ping_ms = p->ping_ms;
        }
    }
}

long zmq_nodes_add_pattern(struct zmq_nodes *ns, int router, const char *text,
                           uint64_t ping_ms)
{
    struct zmq_pattern *grown, *p;
    struct zmq_node *n;
    size_t i;

    for (i = 0; i < ns->pattern_count; i++) {
        p = &ns->patterns[i];
        if (p->router == router && strcmp(p->text, text) == 0) {
            if (ping_ms < p->ping_ms) {      /* listed by several sites */
                p->ping_ms = ping_ms;
                nodes_reping(ns, p);
            }
            return (long) i;
        }
    }
    grown = mk_mem_realloc(ns->patterns,
                           (ns->pattern_count + 1) * sizeof(*grown));
    if (!grown) {
        return -1;
    }
    ns->patterns = grown;
    p = &ns->patterns[ns->pattern_count];
    p->text = mk_mem_strdup(text);
    if (!p->text) {
        return -1;
    }
    p->router = router;
    p->is_glob = strpbrk(text, "*?[") != NULL;
    p->ping_ms = ping_ms;
    ns->pattern_count++;
    nodes_reping(ns, p);
    if (!p->is_glob) {
        n = zmq_nodes_get(ns, router, text, strlen(text));
        if (!n) {
            n = nodes_add(ns, router, text, strlen(text));
        }
        if (!n) {
            ns->pattern_count--;
            mk_mem_free(p->text);
            return -1;
        }
        n->configured = 1;
    }
    return (long) ns->pattern_count - 1;
}

static int nodes_admitted(const struct zmq_nodes *ns, int router,
                          const char *id)
{
    size_t i;

    for (i = 0; i < ns->pattern_count; i++) {
        const struct zmq_pattern *p = &ns->patterns[i];
        if (p->router == router && p->is_glob &&
            fnmatch(p->text, id, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

struct zmq_node *zmq_nodes_seen(struct zmq_nodes *ns, int router,
                                const char *id, size_t len, uint64_t now,
                                int *became_available)
{
    struct zmq_node *n = zmq_nodes_get(ns, router, id, len);
    char name[ZMQ_NODE_ID_MAX + 1];

    *became_available = 0;
    if (!n) {
        /* identities are opaque bytes; a NUL cannot match a pattern */
        if (len == 0 || len > ZMQ_NODE_ID_MAX || memchr(id, '\0', len)) {
            return NULL;
        }
        memcpy(name, id, len);
        name[len] = '\0';
        if (!nodes_admitted(ns, router, name)) {
            return NULL;
        }
        n = nodes_add(ns, router, id, len);
        if (!n) {
            return NULL;
        }
    }
    n->last_seen = now;
    if (!n->available) {
        n->available = 1;
        *became_available = 1;
    }
    return n;
}

static int nodes_excluded(const struct zmq_node *n,
                          struct zmq_node *const *exclude, size_t nexclude)
{
    size_t i;

    for (i = 0; i < nexclude; i++) {
        if (exclude[i] == n) {
            return 1;
        }
    }
    return 0;
}

static void nodes_consider(struct zmq_node *n, struct zmq_node **best,
                           struct zmq_node *const *exclude, size_t nexclude)
{
    if (!n->available || nodes_excluded(n, exclude, nexclude)) {
        return;
    }
    /* strict less-than: ties go to the first candidate in config order */
    if (!*best || n->load < (*best)->load) {
        *best = n;
    }
}

struct zmq_node *zmq_nodes_pick(struct zmq_nodes *ns,
                                const struct zmq_site_nodes *site,
                                struct zmq_node *const *exclude,
                                size_t nexclude)
{
    struct zmq_node *best = NULL;
    size_t i, k;

    for (i = 0; i < site->count; i++) {
        const struct zmq_pattern *p = &ns->patterns[site->patterns[i]];

        if (!p->is_glob) {
            struct zmq_node *n = zmq_nodes_get(ns, p->router, p->text,
                                               strlen(p->text));
            if (n) {
                nodes_consider(n, &best, exclude, nexclude);
            }
            continue;
        }
        for (k = 0; k < ns->count; k++) {         /* admission order */
            struct zmq_node *n = ns->nodes[k];
            if (n->router == p->router && fnmatch(p->text, n->id, 0) == 0) {
                nodes_consider(n, &best, exclude, nexclude);
            }
        }
    }
    return best;
}

static void nodes_forget(struct zmq_nodes *ns, size_t i)
{
    struct zmq_node *n = ns->nodes[i];
    char key[ZMQ_NODE_ID_MAX + 16];

    mk_hash_del(ns->by_key, key,
                nodes_key(key, sizeof(key), n->router, n->id, n->id_len));
    memmove(&ns->nodes[i], &ns->nodes[i + 1],
            (ns->count - i - 1) * sizeof(*ns->nodes));
    ns->count--;
    mk_mem_free(n);
}

void zmq_nodes_tick(struct zmq_nodes *ns, uint64_t now,
                    const struct zmq_tick_ops *ops)
{
    size_t i = 0;

    while (i < ns->count) {
        struct zmq_node *n = ns->nodes[i];
        uint64_t silent = now - n->last_seen, ping_ms = n->ping_ms;

        if (!n->configured && !n->available && n->load == 0 &&
            silent > 10 * ping_ms &&
            atomic_load_explicit(&n->queued, memory_order_acquire) == 0) {
            nodes_forget(ns, i);
            continue;
        }
        if (n->last_seen == 0 || silent >= ping_ms) {
            if (n->available && (n->last_seen == 0 || silent > 3 * ping_ms)) {
                n->available = 0;
                ops->off(ops->ctx, n);
            }
            ops->ping(ops->ctx, n);
        }
        if (!n->spawn_sent) {
            n->spawn_sent = 1;
            ops->spawn(ops->ctx, n);
        }
        i++;
    }
}
