/*
 * Sessions: sids, the owning worker, the backend binding, and routing a
 * message for a sid from any thread to the worker that owns it.
 *
 * The sid table is process-wide, so a message posted by the gateway
 * thread or by another worker (a socket.io poll on the wrong worker)
 * finds its session whatever generation created it. It is split in
 * shards, each under its own mutex, picked by the sid's first byte: sids
 * are random, so the shards fill evenly and workers creating sessions, or
 * threads posting to them, rarely wait for one another; one lock would
 * serialise every worker's session creation. A poster pushes to the
 * owner's inbox while it holds the shard lock, and a session leaves the
 * table under that lock before it is freed: a worker's inbox therefore
 * outlives every push aimed at it (see mk_session_worker_stop).
 *
 * The hot path, a worker sending its own session's client message to the
 * backend (mk_session_backend_send), takes no lock at all.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "mk_core/mk_hash.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_session.h"

#define SESSION_SHARDS 64

struct session_shard {
    pthread_mutex_t lock;
    struct mk_hash *sids;                /* sid -> struct mk_session */
};

/* A message posted from another thread: type and body copied after it. */
struct session_msg {
    struct mk_channel_msg msg;           /* first member */
    uint8_t sid[MK_SESSION_SID_LEN];
    uint64_t share;
    size_t tlen;
    size_t len;
    char data[];
};

static struct session_shard session_table[SESSION_SHARDS] = {
    [0 ... SESSION_SHARDS - 1] = { PTHREAD_MUTEX_INITIALIZER, NULL }
};
static _Atomic uint64_t session_dropped;
static _Thread_local struct mk_session_worker *session_self;

static struct session_shard *session_shard(const uint8_t *sid)
{
    return &session_table[sid[0] % SESSION_SHARDS];
}

/* The session with this sid, or NULL; the caller holds the shard lock. */
static struct mk_session *session_find(struct session_shard *sh,
                                       const uint8_t *sid)
{
    if (!sh->sids) {
        return NULL;
    }
    return mk_hash_get(sh->sids, (const char *) sid, MK_SESSION_SID_LEN);
}

/* 0, or -1 (out of memory, or the sid is taken: a new one is drawn). */
static int session_insert(struct mk_session *s)
{
    struct session_shard *sh = session_shard(s->sid);
    int ret = -1;

    pthread_mutex_lock(&sh->lock);
    if (!sh->sids) {
        sh->sids = mk_hash_create(256, 0);
    }
    if (sh->sids && !session_find(sh, s->sid)) {
        ret = mk_hash_set(sh->sids, (const char *) s->sid,
                          MK_SESSION_SID_LEN, s);
    }
    pthread_mutex_unlock(&sh->lock);
    return ret;
}

static void session_remove(struct mk_session *s)
{
    struct session_shard *sh = session_shard(s->sid);

    pthread_mutex_lock(&sh->lock);
    mk_hash_del(sh->sids, (const char *) s->sid, MK_SESSION_SID_LEN);
    pthread_mutex_unlock(&sh->lock);
}

static void session_drop(void)
{
    atomic_fetch_add_explicit(&session_dropped, 1, memory_order_relaxed);
}

/* ---- Worker start and stop --------------------------------------------- */

/* Owning worker: a posted message; its session may be gone by now. */
static void session_on_inbox(struct mk_channel *ch, struct mk_channel_msg *m)
{
    struct mk_session_worker *sw = ch->data;
    struct session_msg *sm = (struct session_msg *) m;
    struct session_shard *sh = session_shard(sm->sid);
    struct mk_session *s;

    /* only this thread frees its sessions: the pointer stays valid after
     * the lock is let go */
    pthread_mutex_lock(&sh->lock);
    s = session_find(sh, sm->sid);
    pthread_mutex_unlock(&sh->lock);
    if (!s || s->w != sw ||
        mk_session_deliver(s, sm->data, sm->tlen, sm->data + sm->tlen,
                           sm->len, sm->share) < 0) {
        session_drop();
    }
    mk_mem_free(sm);
}

int mk_session_worker_start(struct mk_worker *w)
{
    struct mk_session_worker *sw = mk_mem_zalloc(sizeof(*sw));

    if (!sw) {
        goto error;
    }
    sw->id = w->id;
    mk_list_init(&sw->sessions);
    if (mk_channel_init(&sw->inbox, w->loop, session_on_inbox, sw) < 0) {
        goto error;
    }
    session_self = sw;
    return 0;

error:
    mk_err("worker %d: cannot create its session inbox", w->id);
    mk_mem_free(sw);
    return -1;
}

/* Sessions leave the table first: from then on no thread can push to the
 * inbox (pushes happen under a shard lock, to a session found in it), so
 * flushing it and releasing it is safe. */
void mk_session_worker_stop(struct mk_worker *w)
{
    struct mk_session_worker *sw = session_self;
    struct mk_list *pos, *tmp;
    int left = 0;

    if (!sw) {
        return;
    }
    mk_list_foreach_safe(pos, tmp, &sw->sessions) {
        struct mk_session *s = mk_list_entry(pos, struct mk_session, _head);
        mk_session_destroy(s);
        left++;
    }
    if (left) {
        mk_warn("worker %d: %d session(s) still open at exit: closed",
                w->id, left);
    }
    mk_channel_flush(&sw->inbox);        /* drops: every sid is gone */
    mk_channel_release(&sw->inbox);
    mk_mem_free(sw);
    session_self = NULL;
}

/* ---- Sessions ------------------------------------------------------------ */

struct mk_session *mk_session_create(struct mk_server *srv,
                                     struct mk_vhost *vh,
                                     const struct mk_session_owner *owner,
                                     void *owner_data)
{
    struct mk_session *s = NULL;
    int tries;

    if (!session_self) {
        mk_err("session: created outside a worker thread");
        goto error;
    }
    s = mk_mem_zalloc(sizeof(*s));
    if (!s) {
        goto error;
    }
    s->w = session_self;
    s->srv = srv;
    s->vhost = vh;
    s->owner = owner;
    s->owner_data = owner_data;
    for (tries = 0; tries < 2; tries++) {
        if (getrandom(s->sid, sizeof(s->sid), 0) != sizeof(s->sid)) {
            mk_err("session: no entropy for a sid: %s", strerror(errno));
            goto error;
        }
        if (session_insert(s) == 0) {
            mk_list_add(&s->_head, &session_self->sessions);
            return s;
        }
    }

error:
    mk_mem_free(s);
    return NULL;
}

void mk_session_destroy(struct mk_session *s)
{
    const struct mk_backend *b;

    if (!s) {
        return;
    }
    b = s->backend;
    s->backend = NULL;
    if (b && b->release) {
        b->release(s->backend_data, s);
    }
    session_remove(s);
    mk_list_del(&s->_head);
    mk_session_set_conn(s, NULL);
    mk_mem_free(s);
}

int mk_session_owner(const uint8_t *sid)
{
    struct session_shard *sh = session_shard(sid);
    struct mk_session *s;
    int id;

    pthread_mutex_lock(&sh->lock);
    s = session_find(sh, sid);
    id = s ? s->w->id : -1;              /* w is immutable */
    pthread_mutex_unlock(&sh->lock);
    return id;
}

struct mk_session *mk_session_find_local(const uint8_t *sid)
{
    struct session_shard *sh = session_shard(sid);
    struct mk_session *s;

    /* only this thread frees its sessions: the pointer stays valid after
     * the lock is let go */
    pthread_mutex_lock(&sh->lock);
    s = session_find(sh, sid);
    pthread_mutex_unlock(&sh->lock);
    return s && s->w == session_self ? s : NULL;
}

const uint8_t *mk_session_sid(const struct mk_session *s)
{
    return s->sid;
}

struct mk_vhost *mk_session_vhost(const struct mk_session *s)
{
    return s->vhost;
}

int mk_session_worker_id(const struct mk_session *s)
{
    return s->w->id;
}

void *mk_session_owner_data(const struct mk_session *s)
{
    return s->owner_data;
}

int mk_session_owned_by(const struct mk_session *s,
                        const struct mk_session_owner *owner)
{
    return s && owner && s->owner == owner;
}

void mk_session_set_conn(struct mk_session *s, struct mk_conn *c)
{
    if (s->conn && s->conn->session == s) {
        s->conn->session = NULL;
    }
    s->conn = c;
    if (c) {
        c->session = s;
    }
}

struct mk_conn *mk_session_conn(const struct mk_session *s)
{
    return s->conn;
}

struct mk_session *mk_conn_session(const struct mk_conn *c)
{
    return c->session;
}

/* ---- The backend binding ------------------------------------------------------ */

void mk_session_set_backend(struct mk_session *s, const struct mk_backend *b,
                            void *data)
{
    s->backend = b;
    s->backend_data = data;
    s->held = 0;
}

int mk_session_backend_send(struct mk_session *s, const char *type,
                            const void *body, size_t len)
{
    int ret;

    if (!s || !s->backend) {
        return -1;
    }
    ret = s->backend->send(s->backend_data, s, type, body, len);
    if (ret == 1) {
        s->held = 1;
    }
    return ret;
}

int mk_session_backend_held(const struct mk_session *s)
{
    return s && s->held;
}

int mk_session_backend_binary_typed(const struct mk_session *s)
{
    return s && s->backend && s->backend->binary_typed;
}

void mk_session_backend_ready(struct mk_session *s)
{
    s->held = 0;
    if (s->owner && s->owner->on_ready) {
        s->owner->on_ready(s->owner_data, s);
    }
    else if (s->conn && s->conn->state == MK_CONN_OPEN) {
        mk_conn_post(s->conn, MK_CONN_F_WANT_PROTO_READ);
    }
}

void mk_session_backend_end(struct mk_session *s, int failed)
{
    struct mk_conn *c = s->conn;

    if (s->owner && s->owner->on_end) {
        s->owner->on_end(s->owner_data, s, failed);
        return;
    }
    s->backend = NULL;                   /* nothing more goes to it */
    if (!c || c->state != MK_CONN_OPEN) {
        return;
    }
    if (c->proto->on_end && c->proto->on_end(c, failed) != MK_PROTO_CLOSE) {
        return;
    }
    mk_conn_close(c, 1);
}

/* ---- Messages from other threads --------------------------------------------- */

int mk_session_post(const uint8_t *sid, const char *type, size_t tlen,
                    const void *body, size_t len, uint64_t share)
{
    struct session_shard *sh = session_shard(sid);
    struct session_msg *sm = mk_mem_alloc(sizeof(*sm) + tlen + len);
    struct mk_session *s;

    if (!sm) {
        session_drop();
        return -1;
    }
    memcpy(sm->sid, sid, MK_SESSION_SID_LEN);
    memcpy(sm->data, type, tlen);
    if (len) {
        memcpy(sm->data + tlen, body, len);
    }
    sm->tlen = tlen;
    sm->len = len;
    sm->share = share;
    pthread_mutex_lock(&sh->lock);
    s = session_find(sh, sid);
    if (s) {
        mk_channel_push(&s->w->inbox, &sm->msg);
    }
    pthread_mutex_unlock(&sh->lock);
    if (!s) {
        session_drop();
        mk_mem_free(sm);
        return -1;
    }
    return 0;
}

uint64_t mk_session_dropped(void)
{
    return atomic_load_explicit(&session_dropped, memory_order_relaxed);
}
