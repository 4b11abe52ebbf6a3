#ifndef TREMOLO_ZMQ_QUEUE_H
#define TREMOLO_ZMQ_QUEUE_H

/*
 * What the gateway thread queues toward nodes (zmq_queue.c).
 *
 * Pieces are message bodies kept in order by reference (zmq_msg_copy
 * shares the bytes): what a `retry` replays, and a session's out-queue,
 * the pieces its node's full queue held back. Everything else for that
 * session (the next request's `uwsgi`, its `end`) goes behind them, so a
 * node always sees a session's messages in the order they were made.
 *
 * The out-queue's logic takes its send function as a parameter, so that
 * it can be tested without a node.
 */
#include <stddef.h>
#include <zmq.h>

#include "mk_core/mk_list.h"
#include "plugins/zmq/zmq_proto.h"

struct zmq_piece {
    zmq_msg_t m;                       /* shares the bytes */
    enum zmq_msg_type type;            /* uwsgi, body, websocket..., end */
    struct mk_list _head;
};

/* Appends a reference to `m` to `list`; -1 without memory. */
int  zmq_pieces_add(struct mk_list *list, zmq_msg_t *m, enum zmq_msg_type type);
void zmq_pieces_drop(struct mk_list *list);

struct zmq_outq {
    struct mk_list pieces;             /* struct zmq_piece, oldest first */
    size_t bytes;                      /* their bodies' sizes */
};

/* Sends one piece: 0, or -1 with errno (EAGAIN: the node's queue is full;
 * anything else: the node is gone). `body` is shared, not consumed. */
typedef int (*zmq_outq_send_fn)(void *ctx, enum zmq_msg_type type,
                                zmq_msg_t *body);
/* Told after each piece a flush sent; non-zero stops the flush at once
 * (the session is gone and `q` with it). */
typedef int (*zmq_outq_sent_fn)(void *ctx, enum zmq_msg_type type,
                                size_t len);

#define ZMQ_OUTQ_SENT     1
#define ZMQ_OUTQ_HELD     0
#define ZMQ_OUTQ_GONE    (-1)          /* the send failed, not EAGAIN */
#define ZMQ_OUTQ_FULL    (-2)          /* over `max`, or out of memory */
#define ZMQ_OUTQ_STOPPED (-3)          /* flush: `sent` asked to stop */

void zmq_outq_init(struct zmq_outq *q);
void zmq_outq_release(struct zmq_outq *q);
int  zmq_outq_is_empty(const struct zmq_outq *q);
/* Sends `m` now when nothing is held, else (or when the node's queue is
 * full) keeps a reference behind what is held, up to `max` bytes held.
 * Returns ZMQ_OUTQ_SENT, ZMQ_OUTQ_HELD, ZMQ_OUTQ_GONE or ZMQ_OUTQ_FULL
 * (then nothing was added). */
int  zmq_outq_push(struct zmq_outq *q, enum zmq_msg_type type, zmq_msg_t *m,
                   size_t max, zmq_outq_send_fn send, void *ctx);
/* Sends held pieces in order while the node takes them. Returns
 * ZMQ_OUTQ_SENT when the queue is empty, ZMQ_OUTQ_HELD while the node's
 * queue is still full, ZMQ_OUTQ_GONE or ZMQ_OUTQ_STOPPED. */
int  zmq_outq_flush(struct zmq_outq *q, zmq_outq_send_fn send,
                    zmq_outq_sent_fn sent, void *ctx);

#endif
