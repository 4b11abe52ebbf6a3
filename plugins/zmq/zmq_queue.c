/*
 * What the gateway thread queues toward nodes (see zmq_queue.h): sends
 * that never block and never copy a body, each node's byte budget
 * (NodeQueueLimit), and the per-session out-queue that keeps every piece
 * of a session in order behind what a full node queue held back.
 */
#include <errno.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

/* Bodies this small are copied into the message (libzmq keeps up to 33
 * bytes inline) and not counted: the high-water mark (1000 messages)
 * already bounds them to 64 KB per node, and a ticket would cost more
 * than the bytes. */
#define ZMQ_QUEUE_TRACK_MIN 64

/* ---- Pieces --------------------------------------------------------------- */

int zmq_pieces_add(struct mk_list *list, zmq_msg_t *m, enum zmq_msg_type type)
{
    struct zmq_piece *p = mk_mem_alloc(sizeof(*p));

    if (!p) {
        return -1;
    }
    p->type = type;
    zmq_msg_init(&p->m);
    zmq_msg_copy(&p->m, m);           /* a reference, not a copy */
    mk_list_add(&p->_head, list);
    return 0;
}

void zmq_pieces_drop(struct mk_list *list)
{
    while (!mk_list_is_empty(list)) {
        struct zmq_piece *p = mk_list_entry(list->next, struct zmq_piece,
                                            _head);
        mk_list_del(&p->_head);
        zmq_msg_close(&p->m);
        mk_mem_free(p);
    }
}

/* ---- A session's out-queue ------------------------------------------------- */

void zmq_outq_init(struct zmq_outq *q)
{
    mk_list_init(&q->pieces);
    q->bytes = 0;
}

void zmq_outq_release(struct zmq_outq *q)
{
    zmq_pieces_drop(&q->pieces);
    q->bytes = 0;
}

int zmq_outq_is_empty(const struct zmq_outq *q)
{
    return mk_list_is_empty(&q->pieces);
}

int zmq_outq_push(struct zmq_outq *q, enum zmq_msg_type type, zmq_msg_t *m,
                  size_t max, zmq_outq_send_fn send, void *ctx)
{
    size_t len = zmq_msg_size(m);

    /* with something held, even a send that would succeed now must wait:
     * it would overtake the held pieces */
    if (zmq_outq_is_empty(q)) {
        if (send(ctx, type, m) == 0) {
            return ZMQ_OUTQ_SENT;
        }
        if (errno != EAGAIN) {
            return ZMQ_OUTQ_GONE;
        }
    }
    if (q->bytes + len > max || zmq_pieces_add(&q->pieces, m, type) < 0) {
        return ZMQ_OUTQ_FULL;
    }
    q->bytes += len;
    return ZMQ_OUTQ_HELD;
}

int zmq_outq_flush(struct zmq_outq *q, zmq_outq_send_fn send,
                   zmq_outq_sent_fn sent, void *ctx)
{
    while (!zmq_outq_is_empty(q)) {
        struct zmq_piece *p = mk_list_entry(q->pieces.next, struct zmq_piece,
                                            _head);
        enum zmq_msg_type type = p->type;
        size_t len = zmq_msg_size(&p->m);

        if (send(ctx, type, &p->m) < 0) {
            return errno == EAGAIN ? ZMQ_OUTQ_HELD : ZMQ_OUTQ_GONE;
        }
        mk_list_del(&p->_head);
        zmq_msg_close(&p->m);
        mk_mem_free(p);
        q->bytes -= len;
        if (sent && sent(ctx, type, len) != 0) {
            return ZMQ_OUTQ_STOPPED;
        }
    }
    return ZMQ_OUTQ_SENT;
}

/* ---- Sending under the node's byte budget ---------------------------------- */

/*
 * libzmq releases a message when its I/O thread has written it to the
 * socket, or dropped it with its peer. A message made by zmq_msg_init_data
 * with a free function says when: its ticket holds a reference to the
 * shared body and the node's counter to give the bytes back to. The free
 * function runs on libzmq's I/O thread; `len` is published last and read
 * first, so that thread sees the ticket whole.
 */
struct zmq_ticket {
    zmq_msg_t body;
    atomic_size_t *queued;
    atomic_size_t len;
};

static void queue_ticket_destroy(void *data, void *hint)
{
    struct zmq_ticket *t = hint;
    size_t len = atomic_load_explicit(&t->len, memory_order_acquire);

    (void) data;
    /* the last touch of the node: it may be forgotten once this is 0 */
    atomic_fetch_sub_explicit(t->queued, len, memory_order_release);
    zmq_msg_close(&t->body);
    mk_mem_free(t);
}

/* `out` carries `body`'s bytes (none for NULL) without copying them. */
static int queue_body(struct zmq_node *n, zmq_msg_t *out, zmq_msg_t *body)
{
    size_t len = body ? zmq_msg_size(body) : 0;
    struct zmq_ticket *t;

    if (len < ZMQ_QUEUE_TRACK_MIN) {
        if (zmq_msg_init_size(out, len) < 0) {
            return -1;
        }
        if (len) {
            memcpy(zmq_msg_data(out), zmq_msg_data(body), len);
        }
        return 0;
    }
    t = mk_mem_alloc(sizeof(*t));
    if (!t) {
        return -1;
    }
    zmq_msg_init(&t->body);
    zmq_msg_copy(&t->body, body);
    t->queued = &n->queued;
    atomic_store_explicit(&t->len, len, memory_order_release);
    if (zmq_msg_init_data(out, zmq_msg_data(&t->body), len, queue_ticket_destroy,
                          t) < 0) {
        zmq_msg_close(&t->body);
        mk_mem_free(t);
        return -1;
    }
    atomic_fetch_add_explicit(&n->queued, len, memory_order_relaxed);
    return 0;
}

/* A node past its budget is full, as at its high-water mark. A message
 * larger than the whole budget still goes to an empty queue. */
static int queue_is_full(const struct zmq_gw *gw, struct zmq_node *n,
                         size_t len)
{
    size_t queued = atomic_load_explicit(&n->queued, memory_order_relaxed);

    return queued > 0 && queued + len > gw->conf->node_queue;
}

/* [identity, sid, type, body] through the ROUTER. Never blocks: with
 * ROUTER_MANDATORY a node that is gone (EHOSTUNREACH) or at its
 * high-water mark (EAGAIN) fails the send before any frame is queued. */
static int queue_send_router(struct zmq_gw *gw, struct zmq_node *n,
                             const uint8_t *sid, const char *type,
                             zmq_msg_t *body)
{
    void *s = gw->routers[n->router];
    int flags = ZMQ_DONTWAIT | ZMQ_SNDMORE, err;
    zmq_msg_t out;

    if (queue_body(n, &out, body) < 0) {
        errno = ENOMEM;
        return -1;
    }
    if (zmq_send(s, n->id, n->id_len, flags) < 0 ||
        zmq_send(s, sid, sid ? ZMQ_SID_LEN : 0, flags) < 0 ||
        zmq_send(s, type, strlen(type), flags) < 0 ||
        zmq_msg_send(&out, s, ZMQ_DONTWAIT) < 0) {
        err = errno;
        zmq_msg_close(&out);             /* gives a ticket's bytes back */
        errno = err;
        return -1;
    }
    return 0;
}

int zmq_gw_send(struct zmq_gw *gw, struct zmq_node *n, const uint8_t *sid,
                const char *type, zmq_msg_t *body)
{
    if (zmq_guard_is_native(gw->guard, n->router)) {
        /* identity not on the wire; the buffered bytes are the budget */
        return zmq_guard_send(gw->guard, n->router, n->id, n->id_len, sid,
                              sid ? ZMQ_SID_LEN : 0, type,
                              body ? zmq_msg_data(body) : NULL,
                              body ? zmq_msg_size(body) : 0,
                              gw->conf->node_queue);
    }
    gw->unread |= UINT64_C(1) << n->router; /* a send may eat ZMQ_FD's edge */
    if (queue_is_full(gw, n, body ? zmq_msg_size(body) : 0)) {
        errno = EAGAIN;
        return -1;
    }
    return queue_send_router(gw, n, sid, type, body);
}
