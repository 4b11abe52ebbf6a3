#ifndef MK_CORE_TIMER_H
#define MK_CORE_TIMER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Per-event-loop timers in a binary min-heap: arm, re-arm and disarm are
 * O(log n), finding the next deadline is O(1). The timer object is embedded
 * in its owner (a connection embeds its own); the heap stores pointers and
 * each timer remembers its slot, so nothing is ever scanned.
 * Not thread-safe: a heap belongs to one loop.
 */
struct mk_timer;
typedef void (*mk_timer_cb)(struct mk_timer *timer, void *data);

struct mk_timer {
    uint64_t expire_ms;     /* absolute, mk_clock_monotonic_ms() base */
    size_t   slot;          /* index in the heap, or MK_TIMER_UNARMED */
    mk_timer_cb cb;
    void    *data;
};

#define MK_TIMER_UNARMED ((size_t) -1)

struct mk_timer_heap {
    struct mk_timer **items;
    size_t count;
    size_t size;
};

int  mk_timer_heap_init(struct mk_timer_heap *h);
void mk_timer_heap_release(struct mk_timer_heap *h);   /* timers are not freed */

void mk_timer_init(struct mk_timer *t, mk_timer_cb cb, void *data);
/* Arms (or moves) `t` to fire at `expire_ms`. Returns 0, -1 on no memory. */
int  mk_timer_arm(struct mk_timer_heap *h, struct mk_timer *t, uint64_t expire_ms);
void mk_timer_disarm(struct mk_timer_heap *h, struct mk_timer *t);
static inline int mk_timer_is_armed(const struct mk_timer *t)
{
    return t->slot != MK_TIMER_UNARMED;
}
/* Milliseconds from `now_ms` to the earliest deadline (0 if already due), or
 * -1 when no timer is armed. */
int64_t mk_timer_next_ms(const struct mk_timer_heap *h, uint64_t now_ms);
/* Disarms and calls every timer whose deadline is <= now_ms, earliest first.
 * A callback may arm, re-arm or disarm any timer, including its own.
 * Returns how many fired. */
int  mk_timer_run(struct mk_timer_heap *h, uint64_t now_ms);

#endif
