#include <errno.h>
#include <string.h>
#include <limits.h>
#include <stdint.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_event.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_timer.h"

/* Exactly one backend, chosen by CMake (mk_core/CMakeLists.txt). */
#if defined(MK_EVENT_BACKEND_epoll)
#include "mk_core/mk_event_epoll.c.h"
#elif defined(MK_EVENT_BACKEND_kqueue)
#include "mk_core/mk_event_kqueue.c.h"
#else
#error "define MK_EVENT_BACKEND_epoll or MK_EVENT_BACKEND_kqueue"
#endif

#define MK_EVENT_DEFER_MAX 32

struct mk_event_deferred {
    void (*fn)(void *);
    void *arg;
};

struct mk_event_loop {
    struct mk_event_backend backend;
    struct mk_timer_heap timers;
    uint64_t now_ms;
    /* Address used as the wake-up report's pointer; never dispatched. */
    struct mk_event wake_ev;
    struct mk_event_deferred deferred[MK_EVENT_DEFER_MAX];
    int n_deferred;
};

static void mk_event_run_deferred(struct mk_event_loop *loop);

struct mk_event_loop *mk_event_loop_create(int max_events)
{
    struct mk_event_loop *loop;

    if (max_events <= 0) {
        max_events = 256;
    }
    loop = mk_mem_zalloc(sizeof(*loop));
    if (loop == NULL) {
        return NULL;
    }
    loop->wake_ev.fd = -1;
    if (mk_event_backend_init(&loop->backend, max_events,
                              &loop->wake_ev) != 0) {
        mk_mem_free(loop);
        return NULL;
    }
    mk_timer_heap_init(&loop->timers);
    loop->now_ms = mk_clock_monotonic_ms();
    return loop;
}

void mk_event_loop_destroy(struct mk_event_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    /* a thread that stopped between a push and its next wait still owes
     * the wake-up (a channel left claimed would never wake again) */
    mk_event_run_deferred(loop);
    mk_event_backend_release(&loop->backend);
    mk_timer_heap_release(&loop->timers);
    mk_mem_free(loop);
}

int mk_event_add(struct mk_event_loop *loop, struct mk_event *ev, int fd,
                 uint32_t mask, mk_event_handler handler)
{
    int registered = ev->mask != 0 && ev->fd == fd;

    if ((mask & (MK_EVENT_READ | MK_EVENT_WRITE)) == 0) {
        errno = EINVAL;
        return -1;
    }
    ev->fd = fd;
    ev->handler = handler;
    if (mk_event_backend_set(&loop->backend, ev, mask, registered) != 0) {
        return -1;
    }
    ev->mask = mask;
    return 0;
}

int mk_event_mod(struct mk_event_loop *loop, struct mk_event *ev,
                 uint32_t mask)
{
    /* No interest left means not registered: mask 0 is how callers and
     * mk_event_del() tell the two apart. */
    if ((mask & (MK_EVENT_READ | MK_EVENT_WRITE)) == 0) {
        return mk_event_del(loop, ev);
    }
    if (mk_event_backend_set(&loop->backend, ev, mask, ev->mask != 0) != 0) {
        return -1;
    }
    ev->mask = mask;
    return 0;
}

int mk_event_del(struct mk_event_loop *loop, struct mk_event *ev)
{
    if (ev->mask == 0) {
        return 0;
    }
    ev->mask = 0;
    return mk_event_backend_del(&loop->backend, ev);
}

static int mk_event_wait_ms(struct mk_event_loop *loop, int max_wait_ms)
{
    int64_t next = mk_timer_next_ms(&loop->timers, loop->now_ms);

    if (next < 0) {
        return max_wait_ms;
    }
    if (next > INT_MAX) {
        next = INT_MAX;
    }
    if (max_wait_ms < 0 || next < max_wait_ms) {
        return (int) next;
    }
    return max_wait_ms;
}

int mk_event_loop_defer(struct mk_event_loop *loop, void (*fn)(void *),
                        void *arg)
{
    int i;

    for (i = 0; i < loop->n_deferred; i++) {
        if (loop->deferred[i].fn == fn && loop->deferred[i].arg == arg) {
            return 0;
        }
    }
    if (loop->n_deferred == MK_EVENT_DEFER_MAX) {
        return -1;
    }
    loop->deferred[loop->n_deferred].fn = fn;
    loop->deferred[loop->n_deferred].arg = arg;
    loop->n_deferred++;
    return 0;
}

/* A call may defer more: it goes into the list for the next run, so the
 * calls of this run are taken out of it first. */
static void mk_event_run_deferred(struct mk_event_loop *loop)
{
    struct mk_event_deferred run[MK_EVENT_DEFER_MAX];
    int i, n = loop->n_deferred;

    memcpy(run, loop->deferred, (size_t) n * sizeof(run[0]));
    loop->n_deferred = 0;
    for (i = 0; i < n; i++) {
        run[i].fn(run[i].arg);
    }
}

void mk_event_loop_flush(struct mk_event_loop *loop)
{
    mk_event_run_deferred(loop);
}

int mk_event_loop_run_once(struct mk_event_loop *loop, int max_wait_ms)
{
    int dispatched = 0;
    int n;
    int i;

    /* work done between two run_once calls (posted work, a foreign
     * poller's handlers) deferred its wake-ups too */
    mk_event_run_deferred(loop);
    loop->now_ms = mk_clock_monotonic_ms();
    n = mk_event_backend_wait(&loop->backend,
                              mk_event_wait_ms(loop, max_wait_ms));
    if (n < 0) {
        if (errno != EINTR) {
            return -1;
        }
        n = 0;
    }
    loop->now_ms = mk_clock_monotonic_ms();
    for (i = 0; i < n; i++) {
        uint32_t events;
        struct mk_event *ev = mk_event_backend_get(&loop->backend, i, &events);
        if (ev == NULL) {
            continue;           /* deleted earlier in this batch */
        }
        if (ev == &loop->wake_ev) {
            mk_event_backend_wake_drain(&loop->backend);
            continue;
        }
        ev->handler(ev, events);
        dispatched++;
    }
    mk_event_backend_batch_done(&loop->backend);
    mk_timer_run(&loop->timers, loop->now_ms);
    mk_event_run_deferred(loop);
    return dispatched;
}

void mk_event_loop_wakeup(struct mk_event_loop *loop)
{
    mk_event_backend_wakeup(&loop->backend);
}

struct mk_timer_heap *mk_event_loop_timers(struct mk_event_loop *loop)
{
    return &loop->timers;
}

uint64_t mk_event_loop_now(const struct mk_event_loop *loop)
{
    return loop->now_ms;
}

const char *mk_event_backend(void)
{
    return MK_EVENT_BACKEND_NAME;
}

int mk_event_loop_fd(const struct mk_event_loop *loop)
{
    return backend_fd(&loop->backend);
}
