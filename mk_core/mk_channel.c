#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include "mk_core/mk_channel.h"

/*
 * Vyukov's intrusive MPSC queue. Producers swap themselves into `head` and
 * then link the previous head to themselves; the consumer walks from `tail`.
 * Between those two producer steps the chain is briefly broken: the consumer
 * can see head != tail while tail->next is still NULL. It must not treat
 * that as empty (the message would sit there with nobody woken for it), so
 * it wakes itself and retries on the next loop iteration.
 *
 * Wake-ups: `sleeping` is 1 while the consumer is idle and wants a wake-up.
 * The producer that flips it 1 -> 0 writes the wake fd; everyone else in the
 * burst skips the syscall. See mk_channel_drain() for the consumer's side.
 */

/* Messages handled per wake-up before yielding to the rest of the loop, so
 * a flood (or a handler that pushes into its own channel) cannot starve
 * the other connections of this loop. */
#define MK_CHANNEL_BATCH 4096

enum mk_channel_pop {
    MK_CHANNEL_MSG,
    MK_CHANNEL_EMPTY,
    MK_CHANNEL_RETRY,           /* a producer is between its two steps */
};

static void mk_channel_enqueue(struct mk_channel *ch, struct mk_channel_msg *m)
{
    struct mk_channel_msg *prev;

    atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
    prev = atomic_exchange_explicit(&ch->head, m, memory_order_seq_cst);
    atomic_store_explicit(&prev->next, m, memory_order_release);
}

static enum mk_channel_pop mk_channel_pop(struct mk_channel *ch,
                                          struct mk_channel_msg **out)
{
    struct mk_channel_msg *tail = ch->tail;
    struct mk_channel_msg *next;

    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &ch->stub) {
        if (next == NULL) {
            return atomic_load(&ch->head) == tail ? MK_CHANNEL_EMPTY
                                                  : MK_CHANNEL_RETRY;
        }
        ch->tail = next;
        tail = next;
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
    }
    if (next != NULL) {
        ch->tail = next;
        *out = tail;
        return MK_CHANNEL_MSG;
    }
    if (atomic_load(&ch->head) != tail) {
        return MK_CHANNEL_RETRY;
    }
    /* `tail` is the last message: put the stub behind it so that tail can
     * be handed out while the queue keeps a node to append to. */
    mk_channel_enqueue(ch, &ch->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        ch->tail = next;
        *out = tail;
        return MK_CHANNEL_MSG;
    }
    return MK_CHANNEL_RETRY;
}

static void mk_channel_signal(struct mk_channel *ch)
{
#ifdef __linux__
    uint64_t one = 1;
#else
    char one = 1;
#endif
    ssize_t n;

    /* EAGAIN: the counter (or pipe) is full, so a wake-up is pending. */
    do {
        n = write(ch->wake_fd[1], &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

static void mk_channel_consume_wake(struct mk_channel *ch)
{
#ifdef __linux__
    uint64_t count;
    ssize_t n;

    /* One read resets an eventfd's counter: reading on to EAGAIN would be
     * a second system call per wake-up for nothing. */
    do {
        n = read(ch->wake_fd[0], &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
#else
    char buf[64];
    ssize_t n;

    do {
        n = read(ch->wake_fd[0], buf, sizeof(buf));
    } while (n > 0 || (n < 0 && errno == EINTR));
#endif
}

/* Hands out messages until the queue is empty, broken or the batch is
 * used up; returns which of those stopped it. */
static enum mk_channel_pop mk_channel_drain(struct mk_channel *ch)
{
    struct mk_channel_msg *msg;
    enum mk_channel_pop st;
    int handled = 0;

    for (;;) {
        st = mk_channel_pop(ch, &msg);
        if (st != MK_CHANNEL_MSG) {
            return st;
        }
        ch->on_msg(ch, msg);
        if (++handled == MK_CHANNEL_BATCH) {
            return MK_CHANNEL_RETRY;
        }
    }
}

static void mk_channel_on_event(struct mk_event *ev, uint32_t events)
{
    struct mk_channel *ch = (struct mk_channel *) ev;

    (void) events;
    mk_channel_consume_wake(ch);
    for (;;) {
        enum mk_channel_pop st = mk_channel_drain(ch);
        if (st == MK_CHANNEL_RETRY) {
            /* Stay "awake" (producers skip the write) and come back on the
             * next loop iteration through our own wake-up. */
            mk_channel_signal(ch);
            return;
        }
        /*
         * Empty: announce we sleep, then look again. With seq_cst on both
         * sides either the producer's exchange of `sleeping` comes after
         * our store (it sees 1 and writes the fd), or its push came before
         * our load of `head` below (we see the message and keep going).
         */
        atomic_store(&ch->sleeping, 1);
        if (atomic_load(&ch->head) == ch->tail) {
            return;
        }
        if (atomic_exchange(&ch->sleeping, 0) == 0) {
            return;             /* a producer claimed it: its write wakes us */
        }
    }
}

int mk_channel_init(struct mk_channel *ch, struct mk_event_loop *loop,
                    mk_channel_cb on_msg, void *data)
{
    ch->ev.fd = -1;
    ch->ev.mask = 0;
    ch->ev.handler = NULL;
    ch->loop = loop;
    ch->on_msg = on_msg;
    ch->data = data;
    atomic_store(&ch->stub.next, NULL);
    atomic_store(&ch->head, &ch->stub);
    ch->tail = &ch->stub;
    atomic_store(&ch->sleeping, 1);
    ch->wake_fd[0] = ch->wake_fd[1] = -1;
#ifdef __linux__
    ch->wake_fd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ch->wake_fd[0] < 0) {
        goto error;
    }
    ch->wake_fd[1] = ch->wake_fd[0];
#else
    if (pipe(ch->wake_fd) != 0) {
        ch->wake_fd[0] = ch->wake_fd[1] = -1;   /* pipe() may have written */
        goto error;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(ch->wake_fd[i], F_SETFL, O_NONBLOCK);
        fcntl(ch->wake_fd[i], F_SETFD, FD_CLOEXEC);
    }
#endif
    if (mk_event_add(loop, &ch->ev, ch->wake_fd[0], MK_EVENT_READ,
                     mk_channel_on_event) != 0) {
        goto error;
    }
    return 0;

error:
    mk_channel_release(ch);
    return -1;
}

void mk_channel_release(struct mk_channel *ch)
{
    mk_event_del(ch->loop, &ch->ev);
    if (ch->wake_fd[0] >= 0) {
        close(ch->wake_fd[0]);
    }
    if (ch->wake_fd[1] >= 0 && ch->wake_fd[1] != ch->wake_fd[0]) {
        close(ch->wake_fd[1]);
    }
    ch->wake_fd[0] = ch->wake_fd[1] = -1;
}

void mk_channel_flush(struct mk_channel *ch)
{
    /* with no producer left the chain is whole: RETRY only means that a
     * batch ran out */
    while (mk_channel_drain(ch) == MK_CHANNEL_RETRY) {
    }
}

void mk_channel_push(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    mk_channel_enqueue(ch, msg);
    if (atomic_exchange(&ch->sleeping, 0) == 1) {
        mk_channel_signal(ch);
    }
}

static void mk_channel_signal_deferred(void *arg)
{
    mk_channel_signal(arg);
}

/* Whoever flips `sleeping` owes the consumer its wake-up; other producers
 * skip theirs until the consumer sleeps again, so the owed one may wait
 * for the end of our batch: our loop sends it before it sleeps itself. */
void mk_channel_push_deferred(struct mk_channel *ch, struct mk_channel_msg *msg,
                              struct mk_event_loop *from)
{
    mk_channel_enqueue(ch, msg);
    if (atomic_exchange(&ch->sleeping, 0) == 1 &&
        mk_event_loop_defer(from, mk_channel_signal_deferred, ch) < 0) {
        mk_channel_signal(ch);
    }
}
