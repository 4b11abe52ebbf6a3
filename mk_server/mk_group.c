/*
 * Groups: named sets of sessions within a scope (a vhost), so that a
 * node's `NAME:msg` reaches every member wherever it lives. A group is
 * created by its first join and destroyed with its last member; a
 * session joins at most `per_session` groups and a scope holds at most
 * `per_scope` (a join past either is refused, and the caller, which knows
 * who asked, logs it). Membership is one hash lookup.
 *
 * Any thread may call in (the gateway thread applies nodes' joins, a
 * worker leaves when its session ends), so one mutex guards it all: group
 * operations are rare next to messages, which never take it on a worker.
 */
#include <pthread.h>
#include <string.h>

#include "mk_core/mk_hash.h"
#include "mk_core/mk_list.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_plugin.h"
#include "mk_server/mk_session.h"

struct mk_group {
    char key[sizeof(void *) + MK_GROUP_NAME_MAX];  /* scope + name */
    size_t key_len;
    struct group_scope *scope;
    struct mk_list members;
};

/* What a scope holds: its live groups, against per_scope. */
struct group_scope {
    const void *id;
    long long live;
};

/* A session's memberships and its echo default (for future joins). */
struct group_sess {
    uint8_t sid[MK_SESSION_SID_LEN];
    struct mk_list memberships;
    long long count;
    int echo_default;
};

struct group_member {
    struct group_sess *gs;
    struct mk_group *g;
    int echo;
    struct mk_list _group;
    struct mk_list _session;
};

/* A membership's key: the two addresses, unique while both live. */
struct group_pair {
    const struct group_sess *gs;
    const struct mk_group *g;
};

static pthread_mutex_t group_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mk_hash *group_names;      /* scope + name -> mk_group */
static struct mk_hash *group_members;    /* group_pair -> group_member */
static struct mk_hash *group_sessions;   /* sid -> group_sess */
static struct mk_hash *group_scopes;     /* scope -> group_scope */
static long long group_total;            /* live groups, every scope */

static int group_tables(void)
{
    if (!group_names) {
        group_names = mk_hash_create(64, 0);
        group_members = mk_hash_create(64, 0);
        group_sessions = mk_hash_create(64, 0);
        group_scopes = mk_hash_create(16, 0);
    }
    return group_names && group_members && group_sessions && group_scopes ?
           0 : -1;
}

static size_t group_key(char *key, const void *scope, const char *name,
                        size_t len)
{
    memcpy(key, &scope, sizeof(scope));
    memcpy(key + sizeof(scope), name, len);
    return sizeof(scope) + len;
}

static struct mk_group *group_find(const void *scope, const char *name,
                                   size_t len)
{
    char key[sizeof(void *) + MK_GROUP_NAME_MAX];

    if (!group_names || len == 0 || len > MK_GROUP_NAME_MAX) {
        return NULL;
    }
    return mk_hash_get(group_names, key, group_key(key, scope, name, len));
}

static struct group_sess *group_sess_find(const uint8_t *sid)
{
    if (!group_sessions) {
        return NULL;
    }
    return mk_hash_get(group_sessions, (const char *) sid,
                       MK_SESSION_SID_LEN);
}

static struct group_sess *group_sess_get(const uint8_t *sid)
{
    struct group_sess *gs = group_sess_find(sid);

    if (gs) {
        return gs;
    }
    gs = mk_mem_zalloc(sizeof(*gs));
    if (!gs) {
        return NULL;
    }
    memcpy(gs->sid, sid, MK_SESSION_SID_LEN);
    mk_list_init(&gs->memberships);
    gs->echo_default = 1;                /* spec 2.3: echo is on */
    if (mk_hash_set(group_sessions, (const char *) sid, MK_SESSION_SID_LEN,
                    gs) < 0) {
        mk_mem_free(gs);
        return NULL;
    }
    return gs;
}

static struct group_member *group_member(const struct group_sess *gs,
                                         const struct mk_group *g)
{
    struct group_pair k = { gs, g };

    return mk_hash_get(group_members, (const char *) &k, sizeof(k));
}

static void group_drop_if_empty(struct mk_group *g)
{
    struct group_scope *sc = g->scope;

    if (!mk_list_is_empty(&g->members)) {
        return;
    }
    mk_hash_del(group_names, g->key, g->key_len);
    mk_mem_free(g);
    group_total--;
    if (--sc->live == 0) {
        mk_hash_del(group_scopes, (const char *) &sc->id, sizeof(sc->id));
        mk_mem_free(sc);
    }
}

static void group_remove(struct group_member *m)
{
    struct group_pair k = { m->gs, m->g };
    struct mk_group *g = m->g;

    mk_hash_del(group_members, (const char *) &k, sizeof(k));
    mk_list_del(&m->_group);
    mk_list_del(&m->_session);
    m->gs->count--;
    mk_mem_free(m);
    group_drop_if_empty(g);
}

static struct group_scope *group_scope_get(const void *scope)
{
    struct group_scope *sc = mk_hash_get(group_scopes, (const char *) &scope,
                                         sizeof(scope));

    if (sc) {
        return sc;
    }
    sc = mk_mem_zalloc(sizeof(*sc));
    if (!sc) {
        return NULL;
    }
    sc->id = scope;
    if (mk_hash_set(group_scopes, (const char *) &scope, sizeof(scope),
                    sc) < 0) {
        mk_mem_free(sc);
        return NULL;
    }
    return sc;
}

static struct mk_group *group_create(const void *scope, const char *name,
                                     size_t len)
{
    struct group_scope *sc = group_scope_get(scope);
    struct mk_group *g = sc ? mk_mem_zalloc(sizeof(*g)) : NULL;

    if (!g) {
        goto error;
    }
    g->key_len = group_key(g->key, scope, name, len);
    g->scope = sc;
    mk_list_init(&g->members);
    if (mk_hash_set(group_names, g->key, g->key_len, g) < 0) {
        goto error;
    }
    sc->live++;
    group_total++;
    return g;

error:
    mk_mem_free(g);
    if (sc && sc->live == 0) {
        mk_hash_del(group_scopes, (const char *) &scope, sizeof(scope));
        mk_mem_free(sc);
    }
    return NULL;
}

/* Under the lock. The session's record and the group exist on return 0. */
static int group_join(const void *scope, const uint8_t *sid,
                      const char *name, size_t len, long long per_scope,
                      long long per_session)
{
    struct group_sess *gs = group_sess_get(sid);
    struct mk_group *g = group_find(scope, name, len);
    struct group_scope *sc;
    struct group_member *m;
    struct group_pair k;

    if (!gs) {
        return -1;
    }
    if (g && group_member(gs, g)) {
        return MK_GROUP_JOINED;            /* joining again: no-op */
    }
    if (gs->count >= per_session) {
        return MK_GROUP_FULL_SESSION;
    }
    sc = mk_hash_get(group_scopes, (const char *) &scope, sizeof(scope));
    if (!g && sc && sc->live >= per_scope) {
        return MK_GROUP_FULL_SCOPE;
    }
    if (!g && (per_scope <= 0 || !(g = group_create(scope, name, len)))) {
        return per_scope <= 0 ? MK_GROUP_FULL_SCOPE : -1;
    }
    m = mk_mem_zalloc(sizeof(*m));
    k.gs = gs;
    k.g = g;
    if (!m || mk_hash_set(group_members, (const char *) &k, sizeof(k),
                          m) < 0) {
        mk_mem_free(m);
        group_drop_if_empty(g);
        return -1;
    }
    m->gs = gs;
    m->g = g;
    m->echo = gs->echo_default;
    mk_list_add(&m->_group, &g->members);
    mk_list_add(&m->_session, &gs->memberships);
    gs->count++;
    return MK_GROUP_JOINED;
}

int mk_group_join(const void *scope, const uint8_t *sid, const char *name,
                  size_t len, long long per_scope, long long per_session)
{
    int ret = -1;

    if (len == 0 || len > MK_GROUP_NAME_MAX) {
        return -1;
    }
    pthread_mutex_lock(&group_lock);
    if (group_tables() == 0) {
        ret = group_join(scope, sid, name, len, per_scope, per_session);
    }
    pthread_mutex_unlock(&group_lock);
    return ret;
}

void mk_group_leave(const void *scope, const uint8_t *sid, const char *name,
                    size_t len)
{
    struct group_sess *gs;
    struct group_member *m;
    struct mk_group *g;

    pthread_mutex_lock(&group_lock);
    gs = group_sess_find(sid);
    g = gs ? group_find(scope, name, len) : NULL;
    m = g ? group_member(gs, g) : NULL;
    if (m) {
        group_remove(m);
    }
    pthread_mutex_unlock(&group_lock);
}

int mk_group_echo(const void *scope, const uint8_t *sid, const char *name,
                  size_t len, int on)
{
    struct group_sess *gs;
    struct group_member *m;
    struct mk_group *g;
    int ret = 0;

    pthread_mutex_lock(&group_lock);
    if (len == 0) {
        gs = group_tables() == 0 ? group_sess_get(sid) : NULL;
        if (gs) {
            gs->echo_default = on;
        }
        ret = gs ? 0 : -1;
    }
    else {
        gs = group_sess_find(sid);
        g = gs ? group_find(scope, name, len) : NULL;
        m = g ? group_member(gs, g) : NULL;
        if (m) {
            m->echo = on;
        }
    }
    pthread_mutex_unlock(&group_lock);
    return ret;
}

void mk_group_leave_all(const uint8_t *sid)
{
    struct group_sess *gs;

    pthread_mutex_lock(&group_lock);
    gs = group_sess_find(sid);
    if (gs) {
        while (!mk_list_is_empty(&gs->memberships)) {
            group_remove(mk_list_entry(gs->memberships.next,
                                       struct group_member, _session));
        }
        mk_hash_del(group_sessions, (const char *) sid, MK_SESSION_SID_LEN);
        mk_mem_free(gs);
    }
    pthread_mutex_unlock(&group_lock);
}

int mk_group_route(const void *scope, const char *name, size_t len,
                   const uint8_t *from,
                   void (*fn)(void *ctx, const uint8_t *sid), void *ctx)
{
    struct group_member *self = NULL;
    struct mk_group *g;
    struct mk_list *it;
    int n = 0;

    pthread_mutex_lock(&group_lock);
    g = group_find(scope, name, len);
    if (g) {
        mk_list_foreach(it, &g->members) {
            struct group_member *m = mk_list_entry(it, struct group_member,
                                                   _group);
            if (from && memcmp(m->gs->sid, from, MK_SESSION_SID_LEN) == 0) {
                self = m;
                continue;
            }
            fn(ctx, m->gs->sid);
            n++;
        }
        if (self && self->echo) {
            fn(ctx, self->gs->sid);
            n++;
        }
    }
    pthread_mutex_unlock(&group_lock);
    return g ? n : -1;
}

/* ---- Fan-out: a group's recipients by owning worker -------------------- */

struct group_rcpt {
    uint8_t sid[MK_SESSION_SID_LEN];
    int worker;                          /* -1 once in a batch */
};

struct group_rcpts {
    struct group_rcpt *v;
    size_t n, size;
    int failed;
};

/* Under the group lock, then a shard lock (always in that order). A
 * member whose session is gone is skipped: it leaves when its transport
 * lets it go. */
static void group_collect(void *ctx, const uint8_t *sid)
{
    struct group_rcpts *r = ctx;
    struct group_rcpt *v;
    int worker = mk_session_owner(sid);
    size_t size;

    if (worker < 0 || r->failed) {
        return;
    }
    if (r->n == r->size) {
        size = r->size ? r->size * 2 : 16;
        v = mk_mem_realloc(r->v, size * sizeof(*v));
        if (!v) {
            r->failed = 1;
            return;
        }
        r->v = v;
        r->size = size;
    }
    memcpy(r->v[r->n].sid, sid, MK_SESSION_SID_LEN);
    r->v[r->n++].worker = worker;
}

/* fn runs outside the group lock: it may push to a channel or log. */
int mk_group_fanout(const void *scope, const char *name, size_t len,
                    const uint8_t *from, mk_group_batch_fn fn, void *ctx)
{
    struct group_rcpts r = { NULL, 0, 0, 0 };
    uint8_t *batch = NULL;
    size_t i, j, n;
    int worker, ret = mk_group_route(scope, name, len, from, group_collect,
                                     &r);

    if (ret < 0) {
        goto out;
    }
    ret = (int) r.n;
    if (r.failed || (r.n && !(batch = mk_mem_alloc(r.n *
                                                  MK_SESSION_SID_LEN)))) {
        mk_warn("group %.*s: out of memory: a message missed its members",
                (int) len, name);
        ret = -1;
        goto out;
    }
    for (i = 0; i < r.n; i++) {
        worker = r.v[i].worker;
        if (worker < 0) {
            continue;                    /* in an earlier worker's batch */
        }
        for (n = 0, j = i; j < r.n; j++) {
            if (r.v[j].worker == worker) {
                memcpy(batch + n++ * MK_SESSION_SID_LEN, r.v[j].sid,
                       MK_SESSION_SID_LEN);
                r.v[j].worker = -1;
            }
        }
        fn(ctx, worker, batch, n);
    }

out:
    mk_mem_free(batch);
    mk_mem_free(r.v);
    return ret;
}

size_t mk_group_deliver(const uint8_t *sids, size_t n, const char *type,
                        size_t tlen, const void *body, size_t len,
                        uint64_t share)
{
    struct mk_session *s;
    size_t i, taken = 0;

    for (i = 0; i < n; i++) {
        s = mk_session_find_local(sids + i * MK_SESSION_SID_LEN);
        if (s && mk_session_deliver(s, type, tlen, body, len, share) == 0) {
            taken++;
        }
    }
    return taken;
}

long long mk_group_count(const void *scope)
{
    struct group_scope *sc;
    long long n = 0;

    pthread_mutex_lock(&group_lock);
    sc = group_scopes && scope ? mk_hash_get(group_scopes,
                                             (const char *) &scope,
                                             sizeof(scope)) : NULL;
    if (sc) {
        n = sc->live;
    }
    else if (!scope) {
        n = group_total;
    }
    pthread_mutex_unlock(&group_lock);
    return n;
}

long long mk_group_session_count(const uint8_t *sid)
{
    struct group_sess *gs;
    long long n;

    pthread_mutex_lock(&group_lock);
    gs = group_sess_find(sid);
    n = gs ? gs->count : 0;
    pthread_mutex_unlock(&group_lock);
    return n;
}
