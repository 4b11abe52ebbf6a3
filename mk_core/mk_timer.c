#include <stdint.h>

#include "mk_core/mk_mem.h"
#include "mk_core/mk_timer.h"

int mk_timer_heap_init(struct mk_timer_heap *h)
{
    h->items = NULL;
    h->count = 0;
    h->size = 0;
    return 0;
}

void mk_timer_heap_release(struct mk_timer_heap *h)
{
    size_t i;

    /* Timers belong to their owners; just mark them unarmed so a later
     * mk_timer_disarm() on them is harmless. */
    for (i = 0; i < h->count; i++) {
        h->items[i]->slot = MK_TIMER_UNARMED;
    }
    mk_mem_free(h->items);
    mk_timer_heap_init(h);
}

void mk_timer_init(struct mk_timer *t, mk_timer_cb cb, void *data)
{
    t->expire_ms = 0;
    t->slot = MK_TIMER_UNARMED;
    t->cb = cb;
    t->data = data;
}

static void mk_timer_set(struct mk_timer_heap *h, size_t i, struct mk_timer *t)
{
    h->items[i] = t;
    t->slot = i;
}

static void mk_timer_sift_up(struct mk_timer_heap *h, size_t i)
{
    struct mk_timer *t = h->items[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->items[parent]->expire_ms <= t->expire_ms) {
            break;
        }
        mk_timer_set(h, i, h->items[parent]);
        i = parent;
    }
    mk_timer_set(h, i, t);
}

static void mk_timer_sift_down(struct mk_timer_heap *h, size_t i)
{
    struct mk_timer *t = h->items[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->count) {
            break;
        }
        if (child + 1 < h->count &&
            h->items[child + 1]->expire_ms < h->items[child]->expire_ms) {
            child++;
        }
        if (t->expire_ms <= h->items[child]->expire_ms) {
            break;
        }
        mk_timer_set(h, i, h->items[child]);
        i = child;
    }
    mk_timer_set(h, i, t);
}

/* Restores the heap after the item at slot i changed its key. */
static void mk_timer_fix(struct mk_timer_heap *h, size_t i)
{
    if (i > 0 && h->items[(i - 1) / 2]->expire_ms > h->items[i]->expire_ms) {
        mk_timer_sift_up(h, i);
    }
    else {
        mk_timer_sift_down(h, i);
    }
}

int mk_timer_arm(struct mk_timer_heap *h, struct mk_timer *t,
                 uint64_t expire_ms)
{
    if (mk_timer_is_armed(t)) {
        t->expire_ms = expire_ms;
        mk_timer_fix(h, t->slot);
        return 0;
    }
    if (h->count == h->size) {
        size_t size = h->size ? h->size * 2 : 64;
        struct mk_timer **items = mk_mem_realloc(h->items,
                                                 size * sizeof(*items));
        if (items == NULL) {
            return -1;
        }
        h->items = items;
        h->size = size;
    }
    t->expire_ms = expire_ms;
    mk_timer_set(h, h->count, t);
    h->count++;
    mk_timer_sift_up(h, h->count - 1);
    return 0;
}

void mk_timer_disarm(struct mk_timer_heap *h, struct mk_timer *t)
{
    size_t i = t->slot;
    struct mk_timer *last;

    if (i == MK_TIMER_UNARMED) {
        return;
    }
    t->slot = MK_TIMER_UNARMED;
    last = h->items[--h->count];
    if (last != t) {
        mk_timer_set(h, i, last);
        mk_timer_fix(h, i);
    }
}

int64_t mk_timer_next_ms(const struct mk_timer_heap *h, uint64_t now_ms)
{
    uint64_t expire;

    if (h->count == 0) {
        return -1;
    }
    expire = h->items[0]->expire_ms;
    if (expire <= now_ms) {
        return 0;
    }
    if (expire - now_ms > (uint64_t) INT64_MAX) {
        return INT64_MAX;
    }
    return (int64_t) (expire - now_ms);
}

int mk_timer_run(struct mk_timer_heap *h, uint64_t now_ms)
{
    /* At most as many calls as timers were armed on entry: a callback that
     * re-arms itself (or another timer) for "now" fires on the next run
     * instead of keeping this one going forever. */
    size_t budget = h->count;
    int fired = 0;

    while (budget > 0 && h->count > 0 && h->items[0]->expire_ms <= now_ms) {
        struct mk_timer *t = h->items[0];
        /* Pop before the call: the callback owns the timer from here and
         * may re-arm, disarm or free it. */
        mk_timer_disarm(h, t);
        budget--;
        fired++;
        if (t->cb != NULL) {
            t->cb(t, t->data);
        }
    }
    return fired;
}
