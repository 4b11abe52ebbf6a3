/*
 * The gateway thread's loop (zmq_gateway.c handles what it reads): the
 * wait on the inbox and every ZeroMQ socket's ZMQ_FD, the nodes' health
 * ticks and the stats line, the hand-over of endpoints on reload, and the
 * start and stop of the thread (master thread).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

#define ZMQ_FIRST_TICK_MS 1000      /* spec 5: first ping 1 s after start */
#define ZMQ_HELD_RETRY_MS 5         /* how soon a full queue is tried again */
#define ZMQ_TICK_CATCH_UP 16        /* ROUTER batches read before a tick */

/* Tells a detached worker it may release its inbox: gw_main calls it
 * once its deferred wake-ups went out (see zmq_worker_start). */
static void gw_worker_detached(struct zmq_gw *gw, struct zmq_worker *zw)
{
    pthread_mutex_lock(&gw->handover_lock);
    zw->detached = 1;
    pthread_cond_broadcast(&gw->handover_cond);
    pthread_mutex_unlock(&gw->handover_lock);
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
        zmq_gw_fail(gw, mk_hash_get(gw->bindings, (const char *) gc.sids[i],
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
        if ((todo & (UINT64_C(1) << i)) && zmq_gw_drain_router(gw, i)) {
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
    int i, nzfd = 0, more;

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
        more = zmq_guard_resume(gw->guard);
        /* what the last batch (and the reads above) sent native nodes:
         * one write per node per wake-up */
        zmq_guard_flush(gw->guard);
        /* the inbox and the ZMQ_FDs; inbox messages are sent at once */
        if (mk_event_loop_run_once(gw->loop,
                                   more ? 0 : gw_wait_ms(gw, next_tick,
                                                         next_stats)) < 0) {
            mk_err("zmq: event loop failed: %s", strerror(errno));
            break;
        }
        /* run_once ends with the deferred wake-ups: none is left for an
         * inbox given back during it */
        while (gw->nleaving > 0) {
            gw_worker_detached(gw, gw->leaving[--gw->nleaving]);
        }
        if (!mk_list_is_empty(&gw->blocked)) {
            zmq_gw_flush_held(gw);
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
        mk_channel_init(&gw->inbox, gw->loop, zmq_gw_on_inbox, gw) < 0) {
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
    if (gw->guard && conf->node_guard == ZMQ_GUARD_NATIVE) {
        zmq_guard_set_native(gw->guard, zmq_gw_native_message, gw);
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
