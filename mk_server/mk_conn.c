/*
 * Connections: accept-time set-up, the read path, the one timer per
 * connection, posted work, and closing (graceful, lingering or immediate);
 * the write queue is mk_conn_write.c. The connection knows no protocol: it
 * calls its struct mk_proto hooks only.
 *
 * A connection belongs to one worker thread for its whole life; nothing
 * here locks. Closed connections are freed after the event batch, so a
 * handler further down the same batch never sees freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_session.h"

#define MK_CONN_LINGER_MS 2000      /* read-and-drop time after an error */

static _Atomic uint64_t conn_next_id = 1;

static void conn_on_event(struct mk_event *ev, uint32_t events);
static void conn_after_handler(struct mk_conn *c);
static void conn_on_timer(struct mk_timer *t, void *data);
static void conn_close_now(struct mk_conn *c);

struct mk_conn *mk_conn_create(struct mk_server *srv, struct mk_listen *l,
                               int fd, const struct sockaddr *sa)
{
    struct mk_conn *c = mk_mem_zalloc(sizeof(*c));

    if (!c) {
        return NULL;
    }
    c->ev.fd = fd;
    c->srv = srv;
    c->listen = l;
    c->id = atomic_fetch_add(&conn_next_id, 1);
    mk_list_init(&c->wq);
    mk_list_init(&c->_head);
    mk_list_init(&c->_posted);
    mk_timer_init(&c->timer, conn_on_timer, c);

    c->peer.family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        memcpy(c->peer.addr, &in->sin_addr, 4);
        c->peer.port = ntohs(in->sin_port);
    }
    else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        memcpy(c->peer.addr, &in6->sin6_addr, 16);
        c->peer.port = ntohs(in6->sin6_port);
    }
    return c;
}

/* Runs in the owning worker: registers the socket and runs stage 10. */
void mk_conn_start(struct mk_worker *w, struct mk_conn *c)
{
    struct mk_server *srv = c->srv;
    size_t i;

    c->worker = w;
    mk_list_add(&c->_head, &w->conns);
    atomic_fetch_add(&w->conn_count, 1);

    if (mk_event_add(w->loop, &c->ev, c->ev.fd,
                     MK_EVENT_READ | MK_EVENT_WRITE, conn_on_event) < 0) {
        mk_err("[fd %d] cannot register connection: %s", c->ev.fd,
               strerror(errno));
        conn_close_now(c);
        return;
    }
    /* set before stage 10, which may switch the connection to another */
    c->proto = c->listen->proto;
    for (i = 0; i < srv->n_accept; i++) {
        struct mk_plugin_inst *pi = srv->on_accept[i];
        if (pi->p->on_accept(pi->conf, c) == MK_STAGE_CLOSE) {
            conn_close_now(c);
            return;
        }
    }
    if (c->proto->on_start) {
        c->proto->on_start(c);
    }
    /* after the protocol's deadline: a layer may set its own (a TLS
     * handshake timeout) */
    if (c->listen->io->on_accept && c->listen->io->on_accept(c) < 0) {
        conn_close_now(c);
        return;
    }

    /* With TCP_DEFER_ACCEPT the request is usually there already: read now
     * and save a trip through epoll. */
    c->flags |= MK_CONN_F_READABLE | MK_CONN_F_IN_HANDLER;
    mk_conn_read(c);
    conn_after_handler(c);
}

/* ---- Read path -------------------------------------------------------- */

int mk_conn_in_reserve(struct mk_conn *c, size_t want, size_t max)
{
    size_t size;
    char *nb;

    if (!c->in) {
        c->in = mk_worker_buf_get(c->worker);
        if (!c->in) {
            return -1;
        }
        c->in_size = MK_CONN_BUF_SIZE;
        c->in_len = 0;
    }
    if (c->in_size - c->in_len >= want) {
        return 0;
    }
    if (c->in_size >= max) {
        return -1;
    }
    size = c->in_size;
    while (size - c->in_len < want && size < max) {
        size *= 2;
    }
    if (size > max) {
        size = max;
    }
    if (c->in_size == MK_CONN_BUF_SIZE) {
        /* pooled buffers are fixed-size: move to a private one */
        nb = mk_mem_alloc(size);
        if (!nb) {
            return -1;
        }
        memcpy(nb, c->in, c->in_len);
        mk_worker_buf_put(c->worker, c->in);
    }
    else {
        nb = mk_mem_realloc(c->in, size);
        if (!nb) {
            return -1;
        }
    }
    c->in = nb;
    c->in_size = (uint32_t) size;
    return c->in_size - c->in_len >= want ? 0 : -1;
}

/* Idle connections hold no buffer (the memory target per idle connection
 * is well under 1 KiB). */
void mk_conn_in_release_if_empty(struct mk_conn *c)
{
    if (!c->in || c->in_len > 0) {
        return;
    }
    if (c->in_size == MK_CONN_BUF_SIZE) {
        mk_worker_buf_put(c->worker, c->in);
    }
    else {
        mk_mem_free(c->in);
    }
    c->in = NULL;
    c->in_size = 0;
}

static void conn_linger_read(struct mk_conn *c)
{
    char drop[4096];
    ssize_t n;

    for (;;) {
        n = c->listen->io->read(c, drop, sizeof(drop));
        if (n > 0) {
            continue;
        }
        if (n == MK_IO_AGAIN) {
            return;
        }
        conn_close_now(c);            /* EOF or error: done lingering */
        return;
    }
}

void mk_conn_read(struct mk_conn *c)
{
    size_t space;
    ssize_t n;

    if (c->state == MK_CONN_CLOSING && (c->flags & MK_CONN_F_EOF) == 0 &&
        mk_list_is_empty(&c->wq)) {
        conn_linger_read(c);
        return;
    }
    while (c->state == MK_CONN_OPEN &&
           (c->flags & (MK_CONN_F_READABLE | MK_CONN_F_DEAD)) ==
           MK_CONN_F_READABLE) {
        if (!c->in || c->in_len == c->in_size) {
            /* Full: the protocol must consume first (it resumes reading) */
            if (!c->in && mk_conn_in_reserve(c, 1, MK_CONN_BUF_SIZE) < 0) {
                mk_err("[fd %d] out of memory for the read buffer", c->ev.fd);
                conn_close_now(c);
                return;
            }
            if (c->in_len == c->in_size) {
                return;
            }
        }
        space = c->in_size - c->in_len;
        n = c->listen->io->read(c, c->in + c->in_len, space);
        if (n > 0) {
            c->in_len += (uint32_t) n;
            /* A short read emptied the socket: edge-triggered epoll reports
             * the next bytes, so skip the read that would say EAGAIN (one
             * syscall per request). Not for layers that buffer (TLS), nor
             * once the peer's FIN is known: no new edge would announce
             * the end of the stream that follows these bytes. */
            if ((size_t) n < space && !c->listen->io->buffered &&
                !(c->flags & MK_CONN_F_RDHUP)) {
                c->flags &= ~MK_CONN_F_READABLE;
            }
        }
        else if (n == MK_IO_AGAIN) {
            c->flags &= ~MK_CONN_F_READABLE;
            return;                    /* nothing new for the protocol */
        }
        else {
            c->flags &= ~MK_CONN_F_READABLE;
            if (n < 0) {
                conn_close_now(c);     /* reset or I/O error */
                return;
            }
            c->flags |= MK_CONN_F_EOF;
        }
        if (c->proto->on_read(c) == MK_PROTO_CLOSE) {
            mk_conn_close_internal(c, 1);
            return;
        }
        /* an idle connection keeps no read buffer (a protocol that still
         * needs its input, such as a parsed HTTP head, leaves bytes in it) */
        mk_conn_in_release_if_empty(c);
    }
}

/* ---- Timer -------------------------------------------------------------- */

void mk_conn_set_deadline(struct mk_conn *c, uint64_t ms_from_now)
{
    struct mk_timer_heap *h = mk_event_loop_timers(c->worker->loop);
    uint64_t now = mk_event_loop_now(c->worker->loop);

    if (c->close_by && (ms_from_now == 0 || now + ms_from_now > c->close_by)) {
        ms_from_now = c->close_by > now ? c->close_by - now : 1;
    }
    if (ms_from_now == 0) {
        c->deadline = 0;
        mk_timer_disarm(h, &c->timer);
        return;
    }
    c->deadline = now + ms_from_now;
    /* Lazy re-arm: a timer already due earlier re-checks when it fires,
     * so refreshing a deadline on every read costs no heap operation. */
    if (!mk_timer_is_armed(&c->timer) || c->timer.expire_ms > c->deadline) {
        mk_timer_arm(h, &c->timer, c->deadline);
    }
}

void mk_conn_timeout(struct mk_conn *c, uint64_t ms_from_now)
{
    mk_conn_set_deadline(c, ms_from_now);
}

static void conn_on_timer(struct mk_timer *t, void *data)
{
    struct mk_conn *c = data;
    uint64_t now = mk_event_loop_now(c->worker->loop);

    if (c->state == MK_CONN_CLOSED || c->deadline == 0) {
        return;
    }
    if (now < c->deadline) {
        mk_timer_arm(mk_event_loop_timers(c->worker->loop), t, c->deadline);
        return;
    }
    c->deadline = 0;
    if (c->state == MK_CONN_CLOSING || (c->close_by && now >= c->close_by)) {
        if (!mk_list_is_empty(&c->wq)) {
            mk_info("[fd %d] send timeout, closing", c->ev.fd);
        }
        conn_close_now(c);
        return;
    }
    if (!mk_list_is_empty(&c->wq)) {
        mk_info("[fd %d] send timeout: client stopped reading", c->ev.fd);
        conn_close_now(c);
        return;
    }
    c->flags |= MK_CONN_F_IN_HANDLER;
    if (c->proto->on_timeout(c) == MK_PROTO_CLOSE) {
        mk_conn_close_internal(c, 1);
    }
    conn_after_handler(c);
}

/* ---- Event handler -------------------------------------------------------- */

static void conn_on_event(struct mk_event *ev, uint32_t events)
{
    struct mk_conn *c = (struct mk_conn *) ev;

    if (c->state == MK_CONN_CLOSED) {
        return;
    }
    c->flags |= MK_CONN_F_IN_HANDLER;
    if (events & MK_EVENT_WRITE) {
        c->flags &= ~MK_CONN_F_WANT_WRITE;
    }
    if ((events & MK_EVENT_WRITE) && (c->flags & MK_CONN_F_IO_WANT_WRITE)) {
        c->flags &= ~MK_CONN_F_IO_WANT_WRITE;
        events |= MK_EVENT_READ;          /* the layer's read goes on now */
    }
    if (events & MK_EVENT_CLOSE) {
        c->flags |= MK_CONN_F_RDHUP;
    }
    if (events & (MK_EVENT_READ | MK_EVENT_CLOSE)) {
        c->flags |= MK_CONN_F_READABLE;
        mk_conn_read(c);
    }
    conn_after_handler(c);
}

/* Writes deferred while inside a handler go out now, in one writev; a
 * graceful close requested inside it completes here even when nothing is
 * queued. */
static void conn_after_handler(struct mk_conn *c)
{
    c->flags &= ~MK_CONN_F_IN_HANDLER;
    if (c->state == MK_CONN_CLOSED) {
        return;
    }
    if (c->flags & MK_CONN_F_DEAD) {
        conn_close_now(c);
        return;
    }
    if (!mk_list_is_empty(&c->wq) || c->state == MK_CONN_CLOSING) {
        mk_conn_flush_now(c);
    }
}

/* ---- Posted work ----------------------------------------------------------- */

void mk_conn_post_work(struct mk_conn *c)
{
    mk_conn_post(c, MK_CONN_F_WANT_PROCESS);
}

void mk_conn_post(struct mk_conn *c, int flags)
{
    c->flags |= flags;
    if (c->state == MK_CONN_CLOSED || (c->flags & MK_CONN_F_POSTED) ||
        !c->worker) {
        return;
    }
    c->flags |= MK_CONN_F_POSTED;
    mk_list_add(&c->_posted, &c->worker->posted);
}

/* A failure found inside a plugin's call into the core: the connection is
 * closed at the posted pass, not under the caller's feet. */
int mk_conn_fail(struct mk_conn *c)
{
    mk_conn_post(c, MK_CONN_F_DEAD);
    return -1;
}

/* The backend has room again: the protocol takes up the input it left,
 * then reading goes on if it had stopped behind a full buffer. */
static void conn_proto_read(struct mk_conn *c)
{
    if (c->proto->on_read(c) == MK_PROTO_CLOSE) {
        mk_conn_close_internal(c, 1);
        return;
    }
    if (c->state == MK_CONN_OPEN && (c->flags & MK_CONN_F_READABLE)) {
        mk_conn_read(c);
    }
}

int mk_worker_run_posted(struct mk_worker *w)
{
    struct mk_list batch, *it;
    struct mk_conn *c;

    if (mk_list_is_empty(&w->posted)) {
        return 0;
    }
    /* A snapshot: work posted while running waits for the next pass, so a
     * connection that keeps posting cannot starve the others. */
    batch = w->posted;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    mk_list_init(&w->posted);
    while (!mk_list_is_empty(&batch)) {
        it = batch.next;
        c = mk_list_entry(it, struct mk_conn, _posted);
        mk_list_del(it);
        c->flags &= ~MK_CONN_F_POSTED;
        if (c->state == MK_CONN_CLOSED) {
            continue;
        }
        c->flags |= MK_CONN_F_IN_HANDLER;
        if ((c->flags & (MK_CONN_F_WANT_PROCESS | MK_CONN_F_DEAD)) ==
            MK_CONN_F_WANT_PROCESS) {
            c->flags &= ~MK_CONN_F_WANT_PROCESS;
            if (c->proto->on_posted) {
                c->proto->on_posted(c);
            }
        }
        if ((c->flags & (MK_CONN_F_WANT_PROTO_READ | MK_CONN_F_DEAD)) ==
            MK_CONN_F_WANT_PROTO_READ && c->state == MK_CONN_OPEN) {
            c->flags &= ~MK_CONN_F_WANT_PROTO_READ;
            conn_proto_read(c);
        }
        conn_after_handler(c);
    }
    return !mk_list_is_empty(&w->posted);
}

int mk_conn_flush_now(struct mk_conn *c)
{
    const struct mk_net_io *io = c->listen->io;
    int ret;

    if (c->state == MK_CONN_CLOSED) {
        return -1;
    }
    ret = mk_conn_write_queue(c);
    if (ret < 0) {
        conn_close_now(c);
        return -1;
    }
    if (ret == 0) {
        return 0;
    }
    if (c->flags & MK_CONN_F_CORKED) {
        c->flags &= ~MK_CONN_F_CORKED;
        io->cork(c, 0);                /* push the last partial frame */
    }
    if (c->filters && mk_filter_conn_holding(c)) {
        return 0;                      /* not drained: a filter holds bytes */
    }
    if (c->state == MK_CONN_CLOSING) {
        /* Lingering close: stop sending, read and drop what the client is
         * still sending for a moment, so our response is not destroyed by
         * a TCP reset triggered by unread input. */
        if (c->flags & MK_CONN_F_LINGERING) {
            return 0;                  /* the linger deadline ends it */
        }
        if ((c->flags & MK_CONN_F_EOF) == 0 &&
            (c->in_len > 0 || (c->flags & MK_CONN_F_LINGER))) {
            c->flags |= MK_CONN_F_LINGERING;
            shutdown(c->ev.fd, SHUT_WR);
            mk_conn_set_deadline(c, MK_CONN_LINGER_MS);
            conn_linger_read(c);
            return 0;
        }
        conn_close_now(c);
        return 0;
    }
    if (c->proto->on_drain && c->proto->on_drain(c) == MK_PROTO_CLOSE) {
        mk_conn_close_internal(c, 1);
    }
    return 0;
}

/* Public: writes happen at the end of the current handler or at the
 * posted pass; a plugin never sees the connection fail inside this call. */
int mk_conn_flush(struct mk_conn *c)
{
    if (!mk_conn_writable(c) && c->state != MK_CONN_CLOSING) {
        return -1;
    }
    if ((c->flags & MK_CONN_F_IN_HANDLER) == 0) {
        mk_conn_post(c, 0);
    }
    return 0;
}

/* ---- Closing ---------------------------------------------------------- */

static void conn_start_closing(struct mk_conn *c)
{
    c->state = MK_CONN_CLOSING;
    if (!mk_list_is_empty(&c->wq)) {
        mk_conn_set_deadline(c, c->srv->conf.send_timeout);
    }
}

void mk_conn_close_internal(struct mk_conn *c, int graceful)
{
    if (c->state == MK_CONN_CLOSED) {
        return;
    }
    if (graceful && c->state == MK_CONN_OPEN) {
        conn_start_closing(c);
        if ((c->flags & MK_CONN_F_IN_HANDLER) == 0) {
            mk_conn_flush_now(c);
        }
        return;
    }
    if (graceful && c->state == MK_CONN_CLOSING) {
        return;
    }
    conn_close_now(c);
}

void mk_conn_linger(struct mk_conn *c)
{
    c->flags |= MK_CONN_F_LINGER;
}

void mk_conn_close_after(struct mk_conn *c, uint64_t ms)
{
    if (c->state == MK_CONN_CLOSED) {
        return;
    }
    if (ms == 0) {
        ms = 1;                          /* 0 would disarm the timer */
    }
    c->close_by = mk_event_loop_now(c->worker->loop) + ms;
    mk_conn_set_deadline(c, ms);
}

/* Public: takes effect at the end of the current handler or at the posted
 * pass, so stage 40/50 callbacks never run inside the caller's call. */
void mk_conn_close(struct mk_conn *c, int graceful)
{
    if (c->state == MK_CONN_CLOSED) {
        return;
    }
    if (!graceful) {
        mk_conn_fail(c);
        return;
    }
    if (c->state == MK_CONN_OPEN) {
        conn_start_closing(c);
    }
    if ((c->flags & MK_CONN_F_IN_HANDLER) == 0) {
        mk_conn_post(c, 0);
    }
}

static void conn_close_now(struct mk_conn *c)
{
    struct mk_server *srv = c->srv;
    struct mk_worker *w = c->worker;
    size_t i;

    if (c->state == MK_CONN_CLOSED) {
        return;
    }
    c->state = MK_CONN_CLOSED;
    if (c->flags & MK_CONN_F_POSTED) {
        mk_list_del(&c->_posted);
        c->flags &= ~MK_CONN_F_POSTED;
    }
    if (w) {
        mk_event_del(w->loop, &c->ev);
        mk_timer_disarm(mk_event_loop_timers(w->loop), &c->timer);
    }
    if (c->proto && c->proto->on_close) {
        c->proto->on_close(c);
    }
    mk_filter_chain_destroy(&c->filters);
    for (i = 0; i < srv->n_close; i++) {
        struct mk_plugin_inst *pi = srv->on_close[i];
        pi->p->on_close(pi->conf, c);
    }
    if (c->session) {
        c->session->conn = NULL;             /* a session may outlive c */
        c->session = NULL;
    }
    if (c->listen->io->on_close) {
        c->listen->io->on_close(c);
    }
    close(c->ev.fd);
    c->ev.fd = -1;
    if (w) {
        mk_worker_conn_closed(w, c);
    }
    else {
        mk_conn_destroy(c);
    }
}

void mk_conn_destroy(struct mk_conn *c)
{
    struct mk_list *it, *tmp;

    mk_list_foreach_safe(it, tmp, &c->wq) {
        struct mk_chunk *ch = mk_list_entry(it, struct mk_chunk, _head);
        mk_list_del(&ch->_head);
        mk_conn_chunk_destroy(c->worker, ch);
    }
    if (c->in) {
        c->in_len = 0;
        mk_conn_in_release_if_empty(c);
    }
    mk_mem_free(c->plugin_data);
    mk_mem_free(c->peer_str);
    mk_mem_free(c);
}

/* ---- Public accessors (mk_plugin.h) ------------------------------------ */

uint16_t mk_conn_local_port(const struct mk_conn *c)
{
    const struct sockaddr_storage *a = &c->listen->addr;

    if (a->ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *) a)->sin_port);
    }
    if (a->ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *) a)->sin6_port);
    }
    return 0;
}


const struct mk_conn_addr *mk_conn_peer(const struct mk_conn *c)
{
    return &c->peer;
}

const char *mk_conn_peer_str(struct mk_conn *c)
{
    char buf[INET6_ADDRSTRLEN];

    if (c->peer_str) {
        return c->peer_str;
    }
    if (c->peer.family == AF_INET || c->peer.family == AF_INET6) {
        if (!inet_ntop(c->peer.family, c->peer.addr, buf, sizeof(buf))) {
            return "-";
        }
    }
    else {
        return "unix";
    }
    c->peer_str = mk_mem_strdup(buf);
    return c->peer_str ? c->peer_str : "-";
}

int mk_conn_fd(const struct mk_conn *c)
{
    return c->ev.fd;
}

uint64_t mk_conn_id(const struct mk_conn *c)
{
    return c->id;
}

struct mk_worker *mk_conn_worker(const struct mk_conn *c)
{
    return c->worker;
}

struct mk_server *mk_conn_server(const struct mk_conn *c)
{
    return c->srv;
}

struct mk_vhost *mk_conn_default_vhost(const struct mk_conn *c)
{
    return c->listen->default_vhost;
}

int mk_conn_is_secure(const struct mk_conn *c)
{
    return c->listen->io->secure;
}

void mk_conn_io_established(struct mk_conn *c)
{
    if (c->proto->on_start) {
        c->proto->on_start(c);
    }
}

void mk_conn_io_want_write(struct mk_conn *c)
{
    c->flags |= MK_CONN_F_IO_WANT_WRITE;
}

void *mk_conn_io_data(const struct mk_conn *c)
{
    return c->io_data;
}

void mk_conn_set_io_data(struct mk_conn *c, void *data)
{
    c->io_data = data;
}

const char *mk_conn_listener_layer(const struct mk_conn *c)
{
    return c->listen->layer;
}

struct mk_ptr mk_conn_input(const struct mk_conn *c)
{
    return mk_ptr_make(c->in, c->in ? c->in_len : 0);
}

void mk_conn_consume(struct mk_conn *c, size_t n)
{
    if (n >= c->in_len) {
        c->in_len = 0;
        return;
    }
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= (uint32_t) n;
}

void mk_conn_set_proto(struct mk_conn *c, const struct mk_proto *proto,
                       void *data)
{
    c->proto = proto;
    c->proto_data = data;
}

void *mk_conn_proto_data(const struct mk_conn *c)
{
    return c->proto_data;
}

int mk_conn_is_eof(const struct mk_conn *c)
{
    return (c->flags & MK_CONN_F_EOF) != 0;
}

void *mk_conn_plugin_data(const struct mk_conn *c, const struct mk_plugin *p)
{
    size_t i;

    if (!c->plugin_data) {
        return NULL;
    }
    for (i = 0; i < c->srv->plugin_count; i++) {
        if (c->srv->plugins[i].p == p) {
            return c->plugin_data[i];
        }
    }
    return NULL;
}

void mk_conn_set_plugin_data(struct mk_conn *c, const struct mk_plugin *p,
                             void *data)
{
    size_t i;

    for (i = 0; i < c->srv->plugin_count; i++) {
        if (c->srv->plugins[i].p != p) {
            continue;
        }
        if (!c->plugin_data) {
            c->plugin_data = mk_mem_zalloc(c->srv->plugin_count *
                                           sizeof(void *));
            if (!c->plugin_data) {
                return;
            }
        }
        c->plugin_data[i] = data;
        return;
    }
}
