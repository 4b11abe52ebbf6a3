#ifndef MK_CORE_EVENT_H
#define MK_CORE_EVENT_H

#include <stdint.h>
#include "mk_core/mk_timer.h"

/*
 * The event loop: epoll on Linux (mk_event_epoll.c.h), kqueue on BSD and
 * macOS (mk_event_kqueue.c.h, chosen by CMake when sys/event.h exists).
 *
 * Every registered object embeds `struct mk_event` as its FIRST member and
 * gives a handler; the loop calls handler(ev, events) for each readiness
 * report. Registration is edge-triggered unless MK_EVENT_LEVEL is given:
 * the owner must read/write until EAGAIN.
 *
 * A loop also owns a timer heap: mk_event_loop_run_once() sleeps until the
 * next I/O event or the earliest timer, then fires both.
 * A loop belongs to one thread; only mk_event_loop_wakeup() and channels
 * (mk_channel.h) may be used from other threads.
 */
#define MK_EVENT_READ    0x1u
#define MK_EVENT_WRITE   0x4u
#define MK_EVENT_LEVEL   0x100u   /* registration flag: level-triggered */
/* Reported only: peer hung up or socket error. READ and WRITE are also
 * reported with it so the owner's read/write path sees the error. */
#define MK_EVENT_CLOSE   0x8u

struct mk_event;
typedef void (*mk_event_handler)(struct mk_event *ev, uint32_t events);

struct mk_event {
    int      fd;
    uint32_t mask;            /* registered interest, 0 when not registered */
    mk_event_handler handler;
};

struct mk_event_loop;

struct mk_event_loop *mk_event_loop_create(int max_events);
/* Closes the loop's own descriptors; registered fds stay open. */
void mk_event_loop_destroy(struct mk_event_loop *loop);

/* Registers fd with interest mask (READ|WRITE [|LEVEL]). */
int  mk_event_add(struct mk_event_loop *loop, struct mk_event *ev, int fd,
                  uint32_t mask, mk_event_handler handler);
int  mk_event_mod(struct mk_event_loop *loop, struct mk_event *ev,
                  uint32_t mask);
/* Unregisters; safe to call for an event that is not registered. Also
 * guarantees the handler is not called for `ev` later in the same
 * mk_event_loop_run_once() batch, so the owner may be freed after the batch. */
int  mk_event_del(struct mk_event_loop *loop, struct mk_event *ev);

/*
 * Waits at most max_wait_ms (-1: until an event or timer), dispatches
 * handlers, then runs due timers. Returns the number of I/O events
 * dispatched, or -1 on a fatal error (EINTR is not an error: returns 0).
 */
int  mk_event_loop_run_once(struct mk_event_loop *loop, int max_wait_ms);

/* Thread-safe: makes a blocked run_once return soon. */
void mk_event_loop_wakeup(struct mk_event_loop *loop);

/*
 * Loop thread only: calls fn(arg) when run_once has dispatched its current
 * batch of events, or before the loop next sleeps, whichever comes first.
 * A pair already pending is not added twice. Meant for waking another
 * thread (mk_channel_push_deferred): on a busy core the woken thread would
 * otherwise preempt this one after its first message, and both would then
 * work one message per wake-up. mk_event_loop_destroy runs what is still
 * pending. Returns -1 when the set is full; the caller then calls fn
 * itself.
 */
int mk_event_loop_defer(struct mk_event_loop *loop, void (*fn)(void *),
                        void *arg);
/* Loop thread only: runs the deferred calls now. For a thread that leaves
 * its loop for good while the loop itself lives on. */
void mk_event_loop_flush(struct mk_event_loop *loop);

struct mk_timer_heap *mk_event_loop_timers(struct mk_event_loop *loop);
/* Monotonic ms cached at the last wake-up (cheap; use for timer deadlines). */
uint64_t mk_event_loop_now(const struct mk_event_loop *loop);

/* The loop's own descriptor (the epoll or kqueue fd): readable whenever
 * run_once would find work. It lets a foreign poller embed the loop, as the
 * ZeroMQ gateway does inside zmq_poll(); then call run_once(loop, 0). */
int mk_event_loop_fd(const struct mk_event_loop *loop);

/* Name of the compiled backend: "epoll" or "kqueue". */
const char *mk_event_backend(void);

#endif
