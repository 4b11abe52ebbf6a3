/*
 * Output filters: chains of plugin filters on a connection's bytes or a
 * stream's body, in the order the declarations give (not the order of
 * attachment), each passing pieces on, transforming them, or holding them
 * for later (pacing). The end of a connection's chain is its write queue,
 * the end of a stream's chain its protocol's body writer; both are reached
 * by calling the public write function again with the chain pointer
 * cleared, so that the path without filters stays one branch.
 *
 * Held pieces stay in the core (copied when the producer keeps its
 * buffer) and count as queued: memory in wq_bytes, files in wq_files, so
 * WriteQueueLimit, mk_conn_queued and HTTP pipelining see them.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

struct mk_filter_held {
    struct mk_list _head;
    struct mk_piece p;
    void *owned;                  /* MK_WRITE_FREE memory */
    char inline_data[];           /* MK_WRITE_COPY bytes */
};

struct mk_filter_link {
    const struct mk_filter *f;
    size_t rank;                  /* position in srv->filters */
    void *data;
    struct mk_filter_chain *chain;
    struct mk_filter_link *next;
    struct mk_list held;          /* of struct mk_filter_held */
    size_t held_bytes;
    int held_end;
};

struct mk_filter_chain {
    struct mk_conn *c;
    struct mk_stream *r;          /* NULL: the connection's chain */
    struct mk_filter_link *first;
    size_t held_pieces;           /* over every link */
    int ended;                    /* a stream's END entered the chain */
};

/* ---- The table of declared filters --------------------------------- */

int mk_filters_build(struct mk_server *srv, char *err, size_t errlen)
{
    const struct mk_filter *f;
    size_t i, k, n = 0;

    for (i = 0; i < srv->plugin_count; i++) {
        for (f = srv->plugins[i].p->filters; f && f->name; f++) {
            n++;
        }
    }
    if (n == 0) {
        return 0;
    }
    srv->filters = mk_mem_zalloc(n * sizeof(*srv->filters));
    if (!srv->filters) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* a stable insertion sort by order: equal orders keep load order */
    for (i = 0; i < srv->plugin_count; i++) {
        for (f = srv->plugins[i].p->filters; f && f->name; f++) {
            for (k = 0; k < srv->filter_count; k++) {
                if (strcmp(srv->filters[k]->name, f->name) == 0) {
                    snprintf(err, errlen, "plugin %s: output filter \"%s\" "
                             "is declared twice", srv->plugins[i].p->name,
                             f->name);
                    return -1;
                }
            }
            for (k = srv->filter_count;
                 k > 0 && srv->filters[k - 1]->order > f->order; k--) {
                srv->filters[k] = srv->filters[k - 1];
            }
            srv->filters[k] = f;
            srv->filter_count++;
        }
    }
    return 0;
}

/* ---- Attaching -------------------------------------------------------- */

static int filter_attach(struct mk_filter_chain **chainp, struct mk_conn *c,
                         struct mk_stream *r, const struct mk_filter *f,
                         void *data)
{
    const struct mk_server *srv = c->srv;
    struct mk_filter_link *l, **pos;
    size_t rank;

    for (rank = 0; rank < srv->filter_count && srv->filters[rank] != f;
         rank++) {
    }
    if (rank == srv->filter_count) {
        mk_err("[fd %d] output filter \"%s\" is not declared by a loaded "
               "plugin", c->ev.fd, f->name);
        return -1;
    }
    if (!*chainp) {
        *chainp = mk_mem_zalloc(sizeof(**chainp));
        if (!*chainp) {
            return -1;
        }
        (*chainp)->c = c;
        (*chainp)->r = r;
    }
    for (pos = &(*chainp)->first; *pos && (*pos)->rank <= rank;
         pos = &(*pos)->next) {
        if ((*pos)->f == f) {
            return -1;
        }
    }
    l = mk_mem_zalloc(sizeof(*l));
    if (!l) {
        return -1;
    }
    l->f = f;
    l->rank = rank;
    l->data = data;
    l->chain = *chainp;
    mk_list_init(&l->held);
    l->next = *pos;
    *pos = l;
    return 0;
}

int mk_conn_filter_attach(struct mk_conn *c, const struct mk_filter *f,
                          void *data)
{
    return filter_attach(&c->filters, c, NULL, f, data);
}

int mk_stream_filter_attach(struct mk_stream *r, const struct mk_filter *f,
                            void *data)
{
    return filter_attach(&r->hooks.filters, r->conn, r, f, data);
}

/* ---- Passing ---------------------------------------------------------- */

/* The end of a connection's chain: the write queue (which also takes
 * what is released while a graceful close waits for it). */
static int filter_conn_wire(struct mk_filter_chain *ch, struct mk_piece *p)
{
    if (p->type == MK_PIECE_FILE) {
        return mk_conn_queue_file(ch->c, p->fd, p->offset, p->len,
                                  p->close_fd);
    }
    if (p->type == MK_PIECE_SHARED) {
        return mk_conn_queue_shared(ch->c, p->sb);
    }
    return mk_conn_queue(ch->c, p->data, p->len, p->flags);
}

/* The end of a stream's chain: the protocol's body writer. */
static int filter_stream_wire(struct mk_filter_chain *ch, struct mk_piece *p)
{
    switch (p->type) {
    case MK_PIECE_FILE:
        return mk_response_put_file(ch->r, p->fd, p->offset, p->len,
                                    p->close_fd);
    case MK_PIECE_SHARED:
        return mk_response_put_shared(ch->r, p->sb);
    case MK_PIECE_END:
        return mk_response_put_end(ch->r);
    default:
        return mk_response_put(ch->r, p->data, p->len, p->flags);
    }
}

static int filter_deliver(struct mk_filter_chain *ch, struct mk_filter_link *l,
                          struct mk_piece *p)
{
    while (l && !l->f->on_piece) {
        l = l->next;
    }
    if (l) {
        return l->f->on_piece(l, p);
    }
    return ch->r ? filter_stream_wire(ch, p) : filter_conn_wire(ch, p);
}

/* A piece entering the chain (a producer's write, a release): a filter's
 * -1 fails the connection, as a failed write would; the producer sees -1
 * and need not know which filter gave up. */
static int filter_enter(struct mk_filter_chain *ch, struct mk_filter_link *l,
                        struct mk_piece *p)
{
    struct mk_conn *c = ch->c;

    if (filter_deliver(ch, l, p) == 0) {
        return 0;
    }
    if (c->state != MK_CONN_CLOSED) {
        mk_conn_close(c, 0);
    }
    return -1;
}

int mk_filter_pass(struct mk_filter_link *l, struct mk_piece *p)
{
    return filter_deliver(l->chain, l->next, p);
}

/* ---- Holding ---------------------------------------------------------- */

static void filter_account(struct mk_filter_chain *ch,
                           const struct mk_piece *p, int add)
{
    struct mk_conn *c = ch->c;

    if (p->type == MK_PIECE_FILE) {
        c->wq_files = add ? c->wq_files + 1 : c->wq_files - 1;
    }
    else if (p->type != MK_PIECE_END) {
        c->wq_bytes = add ? c->wq_bytes + p->len : c->wq_bytes - p->len;
    }
}

static void filter_held_destroy(struct mk_filter_link *l, struct mk_filter_held *h)
{
    mk_list_del(&h->_head);
    l->chain->held_pieces--;
    if (h->p.type == MK_PIECE_FILE && h->p.close_fd) {
        close(h->p.fd);
    }
    else if (h->p.type == MK_PIECE_SHARED) {
        mk_shared_buf_release(h->p.sb);
    }
    mk_mem_free(h->owned);
    mk_mem_free(h);
}

int mk_filter_hold(struct mk_filter_link *l, struct mk_piece *p)
{
    struct mk_conn *c = l->chain->c;
    size_t copy = p->type == MK_PIECE_MEM && p->flags == MK_WRITE_COPY
                  ? p->len : 0;
    size_t limit = c->wq_limit ? c->wq_limit
                               : (size_t) c->srv->conf.write_queue_limit;
    struct mk_filter_held *h = mk_mem_alloc(sizeof(*h) + copy);

    if (!h) {
        mk_err("[fd %d] out of memory holding output for filter %s",
               c->ev.fd, l->f->name);
        goto error;
    }
    h->p = *p;
    h->owned = p->type == MK_PIECE_MEM && (p->flags & MK_WRITE_FREE)
               ? (void *) p->data : NULL;
    if (copy) {
        memcpy(h->inline_data, p->data, copy);
        h->p.data = h->inline_data;
    }
    if (p->type == MK_PIECE_SHARED) {
        atomic_fetch_add(&p->sb->refs, 1);
    }
    l->held_end |= p->type == MK_PIECE_END;
    l->held_bytes += p->type == MK_PIECE_END ? 0 : p->len;
    l->chain->held_pieces++;
    mk_list_add(&h->_head, &l->held);
    filter_account(l->chain, p, 1);
    if (c->wq_bytes > limit) {
        mk_warn("[fd %d] output held by filter %s over WriteQueueLimit "
                "(%zu bytes): closing a client that does not read",
                c->ev.fd, l->f->name, c->wq_bytes);
        mk_conn_close(c, 0);
        return -1;
    }
    return 0;

error:
    if (p->type == MK_PIECE_MEM && (p->flags & MK_WRITE_FREE)) {
        mk_mem_free((void *) p->data);
    }
    else if (p->type == MK_PIECE_FILE && p->close_fd) {
        close(p->fd);
    }
    mk_conn_close(c, 0);
    return -1;
}

/* The next `take` bytes of held piece h as a piece of their own; h keeps
 * the rest. Ownership (the memory, the descriptor) moves out with the
 * piece's last bytes. */
static struct mk_piece filter_slice(struct mk_filter_held *h, size_t take)
{
    struct mk_piece q = h->p;
    int whole = take == h->p.len;

    q.len = take;
    if (h->p.type == MK_PIECE_FILE) {
        q.close_fd = whole ? h->p.close_fd : 0;
        h->p.close_fd = whole ? 0 : h->p.close_fd;
        h->p.offset += (off_t) take;
    }
    else if (h->p.type == MK_PIECE_SHARED) {
        int all = whole && h->p.data == h->p.sb->data &&
                  take == h->p.sb->len;
        q.type = all ? MK_PIECE_SHARED : MK_PIECE_MEM;
        q.flags = MK_WRITE_COPY;
    }
    else if (h->owned && whole && h->p.data == h->owned) {
        q.flags = MK_WRITE_FREE;
        h->owned = NULL;
    }
    else {
        q.flags = h->p.flags == MK_WRITE_STATIC ? MK_WRITE_STATIC
                                                : MK_WRITE_COPY;
    }
    if (h->p.type == MK_PIECE_MEM || h->p.type == MK_PIECE_SHARED) {
        h->p.data = (const char *) h->p.data + take;
    }
    h->p.len -= take;
    return q;
}

/* One step of a release: the front piece, or `max` bytes of it. The held
 * piece is freed only after its slice went on: a copied or shared slice
 * still points into it. */
static int filter_release_one(struct mk_filter_link *l, size_t max,
                              size_t *took)
{
    struct mk_filter_held *h = mk_list_entry(l->held.next,
                                             struct mk_filter_held, _head);
    struct mk_piece q;
    int ret;

    *took = h->p.len < max ? h->p.len : max;
    if (h->p.type != MK_PIECE_END && *took == 0) {
        return 0;
    }
    if (h->p.type != MK_PIECE_FILE || *took == h->p.len) {
        q = h->p;
        q.len = *took;
        filter_account(l->chain, &q, 0);
    }
    l->held_bytes -= *took;
    if (h->p.type == MK_PIECE_END) {
        l->held_end = 0;
    }
    q = filter_slice(h, *took);
    ret = filter_enter(l->chain, l->next, &q);
    if (h->p.len == 0) {
        filter_held_destroy(l, h);
    }
    return ret < 0 ? -1 : 1;
}

long mk_filter_release(struct mk_filter_link *l, size_t max)
{
    size_t done = 0, took;
    int ret = 0;

    while (!mk_list_is_empty(&l->held)) {
        ret = filter_release_one(l, max - done, &took);
        if (ret <= 0) {
            break;
        }
        done += took;
    }
    return ret < 0 ? -1 : (long) done;
}

size_t mk_filter_held(const struct mk_filter_link *l)
{
    return l->held_bytes;
}

int mk_filter_holds_end(const struct mk_filter_link *l)
{
    return l->held_end;
}

void *mk_filter_data(const struct mk_filter_link *l)
{
    return l->data;
}

struct mk_conn *mk_filter_conn(const struct mk_filter_link *l)
{
    return l->chain->c;
}

struct mk_stream *mk_filter_stream(const struct mk_filter_link *l)
{
    return l->chain->r;
}

/* ---- Entry points from the write paths ------------------------------ */

static int filter_conn_open(const struct mk_conn *c)
{
    return c->state == MK_CONN_OPEN && (c->flags & MK_CONN_F_DEAD) == 0;
}

int mk_filter_conn_write(struct mk_conn *c, const void *data, size_t len,
                         int flags)
{
    struct mk_piece p = { .type = MK_PIECE_MEM, .data = data, .len = len,
                          .flags = flags, .fd = -1 };
    struct mk_filter_chain *ch = c->filters;

    if (len == 0 || !filter_conn_open(c)) {
        return filter_conn_wire(ch, &p);
    }
    return filter_enter(ch, ch->first, &p);
}

int mk_filter_conn_write_file(struct mk_conn *c, int fd, off_t offset,
                              size_t len, int close_fd)
{
    struct mk_piece p = { .type = MK_PIECE_FILE, .fd = fd, .offset = offset,
                          .len = len, .close_fd = close_fd };
    struct mk_filter_chain *ch = c->filters;

    if (len == 0 || !filter_conn_open(c)) {
        return filter_conn_wire(ch, &p);
    }
    return filter_enter(ch, ch->first, &p);
}

int mk_filter_conn_write_shared(struct mk_conn *c, struct mk_shared_buf *sb)
{
    struct mk_piece p = { .type = MK_PIECE_SHARED, .data = sb->data,
                          .len = sb->len, .fd = -1, .sb = sb };
    struct mk_filter_chain *ch = c->filters;

    if (!filter_conn_open(c)) {
        return filter_conn_wire(ch, &p);
    }
    return filter_enter(ch, ch->first, &p);
}

int mk_filter_conn_holding(const struct mk_conn *c)
{
    return c->filters->held_pieces > 0;
}

int mk_filter_stream_write(struct mk_stream *r, const void *data, size_t len,
                           int flags)
{
    struct mk_piece p = { .type = MK_PIECE_MEM, .data = data, .len = len,
                          .flags = flags, .fd = -1 };
    struct mk_filter_chain *ch = r->hooks.filters;

    if (len == 0 || ch->ended || !filter_conn_open(r->conn)) {
        return filter_stream_wire(ch, &p);
    }
    return filter_enter(ch, ch->first, &p);
}

int mk_filter_stream_sendfile(struct mk_stream *r, int fd, off_t offset,
                              size_t len, int close_fd)
{
    struct mk_piece p = { .type = MK_PIECE_FILE, .fd = fd, .offset = offset,
                          .len = len, .close_fd = close_fd };
    struct mk_filter_chain *ch = r->hooks.filters;

    if (len == 0 || ch->ended || !filter_conn_open(r->conn)) {
        return filter_stream_wire(ch, &p);
    }
    return filter_enter(ch, ch->first, &p);
}

int mk_filter_stream_end(struct mk_stream *r)
{
    struct mk_piece p = { .type = MK_PIECE_END, .fd = -1 };
    struct mk_filter_chain *ch = r->hooks.filters;

    if (ch->ended || r->resp.ended) {
        return -1;
    }
    ch->ended = 1;
    return filter_enter(ch, ch->first, &p);
}

void mk_filter_chain_destroy(struct mk_filter_chain **chainp)
{
    struct mk_filter_chain *ch = *chainp;
    struct mk_filter_link *l;

    if (!ch) {
        return;
    }
    *chainp = NULL;
    while ((l = ch->first) != NULL) {
        ch->first = l->next;
        while (!mk_list_is_empty(&l->held)) {
            struct mk_filter_held *h = mk_list_entry(l->held.next,
                                                     struct mk_filter_held,
                                                     _head);
            filter_account(ch, &h->p, 0);
            filter_held_destroy(l, h);
        }
        if (l->f->on_detach) {
            l->f->on_detach(l);
        }
        mk_mem_free(l);
    }
    mk_mem_free(ch);
}
