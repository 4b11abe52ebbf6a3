/*
 * Workers and the scheduler. One event-loop thread per worker; in
 * `reuseport` mode each owns a listening socket per Listen line and the
 * kernel spreads connections; in `fair` mode one acceptor thread hands each
 * connection to the least busy worker through that worker's channel.
 *
 * A worker owns every connection it starts for the connection's whole life,
 * and keeps free lists of read buffers, streams and write-queue blocks so
 * that serving a request costs no malloc once warm.
 */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_session.h"

#define MK_ACCEPT_BATCH 64

/* ---- Free lists ----------------------------------------------------------- */

char *mk_worker_buf_get(struct mk_worker *w)
{
    if (w->n_free_bufs > 0) {
        return w->free_bufs[--w->n_free_bufs];
    }
    return mk_mem_alloc(MK_CONN_BUF_SIZE);
}

void mk_worker_buf_put(struct mk_worker *w, char *buf)
{
    if (w->n_free_bufs < MK_POOL_MAX) {
        w->free_bufs[w->n_free_bufs++] = buf;
        return;
    }
    mk_mem_free(buf);
}

struct mk_stream *mk_worker_stream_get(struct mk_worker *w)
{
    struct mk_stream *r;

    if (!mk_list_is_empty(&w->free_streams)) {
        r = mk_list_entry(w->free_streams.next, struct mk_stream, _head);
        mk_list_del(&r->_head);
        w->n_free_streams--;
        return r;
    }
    r = mk_mem_alloc(sizeof(*r));
    if (r) {
        mk_list_init(&r->_head);
    }
    return r;
}

void mk_worker_stream_put(struct mk_worker *w, struct mk_stream *r)
{
    if (w->n_free_streams < MK_POOL_MAX) {
        mk_list_add(&r->_head, &w->free_streams);
        w->n_free_streams++;
        return;
    }
    mk_mem_free(r);
}

struct mk_chunk *mk_worker_chunk_get(struct mk_worker *w)
{
    if (w->n_free_chunks > 0) {
        return w->free_chunks[--w->n_free_chunks];
    }
    return mk_mem_alloc(MK_CHUNK_BLOCK_SIZE);
}

static void worker_pools_release(struct mk_worker *w)
{
    struct mk_list *it, *tmp;

    while (w->n_free_bufs > 0) {
        mk_mem_free(w->free_bufs[--w->n_free_bufs]);
    }
    while (w->n_free_chunks > 0) {
        mk_mem_free(w->free_chunks[--w->n_free_chunks]);
    }
    mk_list_foreach_safe(it, tmp, &w->free_streams) {
        struct mk_stream *r = mk_list_entry(it, struct mk_stream, _head);
        mk_list_del(&r->_head);
        mk_mem_free(r);
    }
    w->n_free_streams = 0;
}

int mk_worker_is_draining(const struct mk_worker *w)
{
    return atomic_load_explicit(&w->state, memory_order_relaxed) !=
           MK_WORKER_RUNNING;
}

void mk_worker_conn_closed(struct mk_worker *w, struct mk_conn *c)
{
    mk_list_del(&c->_head);
    mk_list_add(&c->_head, &w->closed);
}

static void worker_free_closed(struct mk_worker *w)
{
    struct mk_list *it, *tmp;

    mk_list_foreach_safe(it, tmp, &w->closed) {
        struct mk_conn *c = mk_list_entry(it, struct mk_conn, _head);
        mk_list_del(&c->_head);
        mk_conn_destroy(c);
        atomic_fetch_sub(&w->conn_count, 1);
    }
}

/* ---- Accepting ---------------------------------------------------------- */

static int worker_accept_fd(int lfd, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);
    int fd;

    for (;;) {
        fd = accept4(lfd, (struct sockaddr *) ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0 || errno != EINTR) {
            return fd;
        }
    }
}

static void accept_error(int err)
{
    static _Atomic uint64_t last_log;
    uint64_t now = mk_clock_monotonic_ms();

    if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED) {
        return;
    }
    /* EMFILE and friends repeat on every event: log once a second */
    if (now - atomic_load(&last_log) >= 1000) {
        atomic_store(&last_log, now);
        mk_err("accept: %s", strerror(err));
    }
}

static void worker_on_accept(struct mk_event *ev, uint32_t events)
{
    struct mk_worker_listener *wl = (struct mk_worker_listener *) ev;
    struct mk_worker *w = wl->worker;
    struct sockaddr_storage ss;
    struct mk_conn *c;
    int i, fd;

    for (i = 0; i < MK_ACCEPT_BATCH; i++) {
        fd = worker_accept_fd(ev->fd, &ss);
        if (fd < 0) {
            accept_error(errno);
            return;
        }
        c = mk_conn_create(w->srv, wl->listen, fd, (struct sockaddr *) &ss);
        if (!c) {
            mk_err("out of memory accepting a connection");
            close(fd);
            return;
        }
        mk_conn_start(w, c);
    }
}

/* fair mode: connections created by the acceptor arrive here */
static void worker_on_channel(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    struct mk_worker *w = ch->data;
    struct mk_conn *c = mk_container_of(msg, struct mk_conn, msg);

    if (mk_worker_is_draining(w)) {
        close(c->ev.fd);
        mk_conn_destroy(c);
        return;
    }
    mk_conn_start(w, c);
}

static void acceptor_on_accept(struct mk_event *ev, uint32_t events)
{
    struct mk_worker_listener *wl = (struct mk_worker_listener *) ev;
    struct mk_server *srv = wl->worker->srv;
    struct sockaddr_storage ss;
    struct mk_worker *best;
    struct mk_conn *c;
    static unsigned rr;
    int i, k, fd;

    for (i = 0; i < MK_ACCEPT_BATCH; i++) {
        fd = worker_accept_fd(ev->fd, &ss);
        if (fd < 0) {
            accept_error(errno);
            return;
        }
        /* least connections; ties rotate so an idle server spreads load */
        best = &srv->workers[rr++ % (unsigned) srv->worker_count];
        for (k = 0; k < srv->worker_count; k++) {
            struct mk_worker *cand = &srv->workers[k];
            if (atomic_load(&cand->conn_count) < atomic_load(&best->conn_count)) {
                best = cand;
            }
        }
        c = mk_conn_create(srv, wl->listen, fd, (struct sockaddr *) &ss);
        if (!c) {
            close(fd);
            continue;
        }
        mk_channel_push(&best->channel, &c->msg);
    }
}

/* ---- Worker thread -------------------------------------------------------- */

/* Drain: idle connections close now; a protocol that says goodbye its
 * own way (HTTP/2's GOAWAY) is told, and closes when its work is done. */
static void worker_close_idle(struct mk_worker *w)
{
    struct mk_list *it, *tmp;

    mk_list_foreach_safe(it, tmp, &w->conns) {
        struct mk_conn *c = mk_list_entry(it, struct mk_conn, _head);
        if (c->proto->on_shutdown) {
            c->proto->on_shutdown(c);
            continue;
        }
        if ((!c->proto->is_idle || c->proto->is_idle(c)) &&
            mk_list_is_empty(&c->wq) && c->in_len == 0) {
            mk_conn_close_internal(c, 0);
        }
    }
}

static void worker_close_all(struct mk_worker *w)
{
    struct mk_list *it, *tmp;

    mk_list_foreach_safe(it, tmp, &w->conns) {
        struct mk_conn *c = mk_list_entry(it, struct mk_conn, _head);
        mk_conn_close_internal(c, 0);
    }
}

static void worker_on_drain_timer(struct mk_timer *t, void *data)
{
    struct mk_worker *w = data;

    mk_info("worker %d: drain timeout, closing %d connection(s)", w->id,
            atomic_load(&w->conn_count));
    atomic_store(&w->state, MK_WORKER_STOPPING);
}

static void worker_apply_drain(struct mk_worker *w)
{
    uint64_t deadline = atomic_load(&w->drain_deadline);
    size_t i;

    for (i = 0; i < w->listener_count; i++) {
        mk_event_del(w->loop, &w->listeners[i].ev);
    }
    atomic_store(&w->draining_applied, 1);
    worker_close_idle(w);
    if (deadline) {
        mk_timer_init(&w->drain_timer, worker_on_drain_timer, w);
        mk_timer_arm(mk_event_loop_timers(w->loop), &w->drain_timer, deadline);
    }
}

static int worker_plugins_init(struct mk_worker *w)
{
    struct mk_server *srv = w->srv;
    size_t i;

    for (i = 0; i < srv->plugin_count; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        if (pi->p->worker_init && pi->p->worker_init(pi->conf, w) < 0) {
            mk_err("worker %d: plugin %s failed to start", w->id, pi->p->name);
            return -1;
        }
    }
    return 0;
}

static void worker_plugins_exit(struct mk_worker *w)
{
    struct mk_server *srv = w->srv;
    size_t i;

    for (i = srv->plugin_count; i > 0; i--) {
        struct mk_plugin_inst *pi = &srv->plugins[i - 1];
        if (pi->p->worker_exit) {
            pi->p->worker_exit(pi->conf, w);
        }
    }
}

static void *worker_main(void *arg)
{
    struct mk_worker *w = arg;
    char name[16];
    int st, more = 0;

    snprintf(name, sizeof(name), "tremolo-w%d", w->id);
    pthread_setname_np(pthread_self(), name);
    if (mk_session_worker_start(w) < 0 || worker_plugins_init(w) < 0) {
        atomic_store(&w->state, MK_WORKER_STOPPING);
    }
    for (;;) {
        st = atomic_load(&w->state);
        if (st != MK_WORKER_RUNNING && !atomic_load(&w->draining_applied)) {
            worker_apply_drain(w);
        }
        if (st == MK_WORKER_STOPPING) {
            worker_close_all(w);
        }
        worker_free_closed(w);
        if (st != MK_WORKER_RUNNING && mk_list_is_empty(&w->conns)) {
            break;
        }
        if (mk_event_loop_run_once(w->loop, more ? 0 :
                                   st == MK_WORKER_RUNNING ? -1 : 1000) < 0) {
            mk_err("worker %d: event loop failed: %s", w->id, strerror(errno));
            atomic_store(&w->state, MK_WORKER_STOPPING);
        }
        more = mk_worker_run_posted(w);
        worker_free_closed(w);
    }
    worker_plugins_exit(w);
    mk_session_worker_stop(w);
    mk_static_worker_exit();
    worker_pools_release(w);
    atomic_store(&w->exited, 1);
    return NULL;
}

static int worker_setup(struct mk_server *srv, struct mk_worker *w, int id,
                        char *err, size_t errlen)
{
    size_t i;

    w->id = id;
    w->srv = srv;
    mk_list_init(&w->conns);
    mk_list_init(&w->closed);
    mk_list_init(&w->posted);
    mk_list_init(&w->free_streams);
    w->loop = mk_event_loop_create(256);
    if (!w->loop) {
        snprintf(err, errlen, "worker %d: cannot create event loop", id);
        return -1;
    }
    if (mk_channel_init(&w->channel, w->loop, worker_on_channel, w) < 0) {
        snprintf(err, errlen, "worker %d: cannot create channel", id);
        return -1;
    }
    if (srv->conf.scheduler != MK_SCHED_REUSEPORT) {
        return 0;
    }
    w->listeners = mk_mem_zalloc(srv->listen_count * sizeof(*w->listeners));
    if (!w->listeners) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->listener_count = srv->listen_count;
    for (i = 0; i < srv->listen_count; i++) {
        struct mk_worker_listener *wl = &w->listeners[i];
        wl->worker = w;
        wl->listen = &srv->listens[i];
        if (mk_event_add(w->loop, &wl->ev, srv->listens[i].fds[id],
                         MK_EVENT_READ | MK_EVENT_LEVEL, worker_on_accept) < 0) {
            snprintf(err, errlen, "worker %d: cannot watch %s: %s", id,
                     srv->listens[i].text, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* The fair-mode acceptor reuses struct mk_worker_listener; its `worker`
 * field points at worker 0 only to reach the generation. */
static void *acceptor_main(void *arg)
{
    struct mk_server *srv = arg;

    pthread_setname_np(pthread_self(), "tremolo-accept");
    while (!atomic_load(&srv->acceptor_stop)) {
        if (mk_event_loop_run_once(srv->acceptor_loop, -1) < 0) {
            mk_err("acceptor: event loop failed: %s", strerror(errno));
            break;
        }
    }
    atomic_store(&srv->acceptor_exited, 1);
    return NULL;
}

static int acceptor_start(struct mk_server *srv, char *err, size_t errlen)
{
    struct mk_worker_listener *wls;
    size_t i;

    srv->acceptor_loop = mk_event_loop_create(64);
    wls = mk_mem_zalloc(srv->listen_count * sizeof(*wls));
    if (!srv->acceptor_loop || !wls) {
        snprintf(err, errlen, "cannot create the acceptor");
        mk_mem_free(wls);
        return -1;
    }
    for (i = 0; i < srv->listen_count; i++) {
        wls[i].worker = &srv->workers[0];
        wls[i].listen = &srv->listens[i];
        if (mk_event_add(srv->acceptor_loop, &wls[i].ev, srv->listens[i].fds[0],
                         MK_EVENT_READ | MK_EVENT_LEVEL, acceptor_on_accept) < 0) {
            snprintf(err, errlen, "acceptor: cannot watch %s: %s",
                     srv->listens[i].text, strerror(errno));
            return -1;
        }
    }
    srv->acceptor_listeners = wls;
    if (pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the acceptor thread");
        return -1;
    }
    srv->has_acceptor = 1;
    return 0;
}

int mk_workers_start(struct mk_server *srv, char *err, size_t errlen)
{
    int i;

    srv->workers = mk_mem_zalloc((size_t) srv->worker_count *
                                 sizeof(struct mk_worker));
    if (!srv->workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < srv->worker_count; i++) {
        if (worker_setup(srv, &srv->workers[i], i, err, errlen) < 0) {
            return -1;
        }
    }
    for (i = 0; i < srv->worker_count; i++) {
        if (pthread_create(&srv->workers[i].thread, NULL, worker_main,
                           &srv->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            return -1;
        }
        srv->started = i + 1;
    }
    if (srv->conf.scheduler == MK_SCHED_FAIR &&
        acceptor_start(srv, err, errlen) < 0) {
        return -1;
    }
    return 0;
}

static void acceptor_stop(struct mk_server *srv)
{
    if (srv->has_acceptor && !atomic_exchange(&srv->acceptor_stop, 1)) {
        mk_event_loop_wakeup(srv->acceptor_loop);
    }
}

void mk_workers_drain(struct mk_server *srv, uint64_t deadline_ms)
{
    uint64_t deadline = deadline_ms ? mk_clock_monotonic_ms() + deadline_ms : 0;
    int i;

    acceptor_stop(srv);
    for (i = 0; i < srv->started; i++) {
        struct mk_worker *w = &srv->workers[i];
        atomic_store(&w->drain_deadline, deadline);
        if (atomic_load(&w->state) == MK_WORKER_RUNNING) {
            atomic_store(&w->state, MK_WORKER_DRAINING);
        }
        mk_event_loop_wakeup(w->loop);
    }
}

void mk_workers_stop_now(struct mk_server *srv)
{
    int i;

    acceptor_stop(srv);
    for (i = 0; i < srv->started; i++) {
        atomic_store(&srv->workers[i].state, MK_WORKER_STOPPING);
        mk_event_loop_wakeup(srv->workers[i].loop);
    }
}

/* Every worker has taken its listening sockets out of its loop (so the
 * master may close them without a worker accepting on a stale fd). */
int mk_workers_left_listeners(struct mk_server *srv)
{
    int i;

    if (srv->has_acceptor && !atomic_load(&srv->acceptor_exited)) {
        return 0;
    }
    for (i = 0; i < srv->started; i++) {
        if (!atomic_load(&srv->workers[i].draining_applied) &&
            !atomic_load(&srv->workers[i].exited)) {
            return 0;
        }
    }
    return 1;
}

int mk_workers_done(struct mk_server *srv)
{
    int i;

    for (i = 0; i < srv->started; i++) {
        if (!atomic_load(&srv->workers[i].exited)) {
            return 0;
        }
    }
    return 1;
}

void mk_workers_join(struct mk_server *srv)
{
    int i;

    if (srv->has_acceptor) {
        pthread_join(srv->acceptor, NULL);
        srv->has_acceptor = 0;
        mk_event_loop_destroy(srv->acceptor_loop);
        mk_mem_free(srv->acceptor_listeners);
        srv->acceptor_listeners = NULL;
    }
    for (i = 0; i < srv->started; i++) {
        struct mk_worker *w = &srv->workers[i];
        pthread_join(w->thread, NULL);
        mk_channel_release(&w->channel);
        mk_event_loop_destroy(w->loop);
        mk_mem_free(w->listeners);
    }
    srv->started = 0;
    mk_mem_free(srv->workers);
    srv->workers = NULL;
}

/* ---- Accessors (mk_plugin.h) ---------------------------------------------- */

struct mk_event_loop *mk_worker_loop(struct mk_worker *w)
{
    return w->loop;
}

int mk_worker_id(const struct mk_worker *w)
{
    return w->id;
}
