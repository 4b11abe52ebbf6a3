#ifndef MK_CORE_CHANNEL_H
#define MK_CORE_CHANNEL_H

#include <stdatomic.h>
#include "mk_core/mk_event.h"

/*
 * A multi-producer, single-consumer message queue into one event loop.
 * Any thread may push; the loop's thread receives the messages in its
 * handler, in push order per producer. Lock-free (Vyukov's intrusive MPSC
 * queue); the consumer is woken through an eventfd (a pipe on BSD) only
 * when the queue goes from empty to non-empty, so a burst costs one wake-up.
 *
 * Messages are embedded in the sender's object (`struct mk_channel_msg` as
 * a member); ownership passes to the receiver at push.
 */
struct mk_channel_msg {
    struct mk_channel_msg *_Atomic next;
};

struct mk_channel;
typedef void (*mk_channel_cb)(struct mk_channel *ch, struct mk_channel_msg *msg);

struct mk_channel {
    struct mk_event ev;                      /* first member */
    struct mk_event_loop *loop;
    int wake_fd[2];                          /* eventfd: both equal */
    mk_channel_cb on_msg;
    void *data;                              /* owner's pointer */
    struct mk_channel_msg *_Atomic head;     /* producers push here */
    struct mk_channel_msg *tail;             /* consumer pops here */
    struct mk_channel_msg stub;
    atomic_int sleeping;                     /* consumer needs a wake-up */
};

int  mk_channel_init(struct mk_channel *ch, struct mk_event_loop *loop,
                     mk_channel_cb on_msg, void *data);
void mk_channel_release(struct mk_channel *ch);   /* pending msgs are dropped */
/* Consumer thread, once no producer will push again: hands every pending
 * message to the handler now (to free them before mk_channel_release). */
void mk_channel_flush(struct mk_channel *ch);
/* Thread-safe, never blocks, never fails. */
void mk_channel_push(struct mk_channel *ch, struct mk_channel_msg *msg);
/* The same from a thread that runs event loop `from`: a wake-up the
 * consumer needs is sent when `from` has dispatched its current batch or
 * before it sleeps (mk_event_loop_defer), so a burst of pushes reaches
 * the consumer as one batch. `ch` must outlive that moment. */
void mk_channel_push_deferred(struct mk_channel *ch, struct mk_channel_msg *msg,
                              struct mk_event_loop *from);

#endif
