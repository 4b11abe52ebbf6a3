#include <stdint.h>
#include <stdlib.h>

#include "mk_core/mk_timer.h"
#include "mk_test.h"

#define NT 300

/* Reference model: each timer is either armed at ref_expire[i] or not. */
static struct mk_timer timers[NT];
static int ref_armed[NT];
static uint64_t ref_expire[NT];
static uint64_t last_fired_expire;
static int order_ok = 1;
static int fired_not_due;
static uint64_t run_now;
static int fired_count[NT];

static void on_fire(struct mk_timer *t, void *data)
{
    size_t i = (size_t) (uintptr_t) data;

    if (mk_timer_is_armed(t) || !ref_armed[i] || ref_expire[i] > run_now) {
        fired_not_due++;
    }
    if (ref_expire[i] < last_fired_expire) {
        order_ok = 0;
    }
    last_fired_expire = ref_expire[i];
    ref_armed[i] = 0;
    fired_count[i]++;
}

static int64_t ref_next(uint64_t now)
{
    int64_t best = -1;
    size_t i;

    for (i = 0; i < NT; i++) {
        if (!ref_armed[i]) {
            continue;
        }
        int64_t d = ref_expire[i] <= now ? 0 : (int64_t) (ref_expire[i] - now);
        if (best < 0 || d < best) {
            best = d;
        }
    }
    return best;
}

MK_TEST(random_against_reference)
{
    struct mk_timer_heap h;
    uint64_t now = 1000;
    size_t i;
    int step;
    int mismatches = 0;

    CHECK(mk_timer_heap_init(&h) == 0);
    for (i = 0; i < NT; i++) {
        mk_timer_init(&timers[i], on_fire, (void *) (uintptr_t) i);
        CHECK(!mk_timer_is_armed(&timers[i]));
    }
    CHECK(mk_timer_next_ms(&h, now) == -1);
    for (step = 0; step < 50000; step++) {
        unsigned op = (unsigned) (mk_test_rng() % 10);
        i = (size_t) (mk_test_rng() % NT);
        if (op < 5) {
            uint64_t at = now + mk_test_rng() % 500;
            if (mk_timer_arm(&h, &timers[i], at) != 0) {
                mismatches++;
            }
            ref_armed[i] = 1;
            ref_expire[i] = at;
        }
        else if (op < 7) {
            mk_timer_disarm(&h, &timers[i]);
            ref_armed[i] = 0;
        }
        else if (op < 8) {
            int expected = 0;
            size_t j;
            now += mk_test_rng() % 50;
            for (j = 0; j < NT; j++) {
                expected += ref_armed[j] && ref_expire[j] <= now;
            }
            last_fired_expire = 0;
            run_now = now;
            if (mk_timer_run(&h, now) != expected) {
                mismatches++;
            }
        }
        if (mk_timer_next_ms(&h, now) != ref_next(now)) {
            mismatches++;
        }
        if (h.count != (size_t) 0) {
            size_t armed = 0, j;
            for (j = 0; j < NT; j++) {
                armed += ref_armed[j];
                if (mk_timer_is_armed(&timers[j]) != ref_armed[j]) {
                    mismatches++;
                }
            }
            if (armed != h.count) {
                mismatches++;
            }
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(order_ok);
    CHECK_EQ_INT(fired_not_due, 0);
    mk_timer_heap_release(&h);
    for (i = 0; i < NT; i++) {
        CHECK(!mk_timer_is_armed(&timers[i]));
    }
}

/* A periodic timer that re-arms itself, and one that disarms another. */
static struct mk_timer_heap rh;
static struct mk_timer periodic, victim, killer, same_now;
static int periodic_fired, victim_fired, same_now_fired;

static void on_periodic(struct mk_timer *t, void *data)
{
    uint64_t *now = data;
    periodic_fired++;
    mk_timer_arm(&rh, t, *now + 10);
}

static void on_victim(struct mk_timer *t, void *data)
{
    victim_fired++;
}

static void on_killer(struct mk_timer *t, void *data)
{
    mk_timer_disarm(&rh, &victim);
}

static void on_same_now(struct mk_timer *t, void *data)
{
    uint64_t *now = data;
    same_now_fired++;
    mk_timer_arm(&rh, t, *now);      /* due again at once */
}

MK_TEST(callbacks_rearm_and_disarm)
{
    uint64_t now = 0;
    int runs;

    mk_timer_heap_init(&rh);
    mk_timer_init(&periodic, on_periodic, &now);
    mk_timer_init(&victim, on_victim, NULL);
    mk_timer_init(&killer, on_killer, NULL);
    mk_timer_arm(&rh, &periodic, 10);
    mk_timer_arm(&rh, &killer, 50);
    mk_timer_arm(&rh, &victim, 50);     /* same deadline: killer may win */
    for (now = 0; now <= 100; now++) {
        mk_timer_run(&rh, now);
    }
    CHECK_EQ_INT(periodic_fired, 10);
    CHECK(mk_timer_is_armed(&periodic));
    CHECK(periodic.expire_ms == 110);
    CHECK(!mk_timer_is_armed(&killer));
    CHECK(!mk_timer_is_armed(&victim));
    CHECK(victim_fired <= 1);

    /* the killer fires strictly first: the victim must never run */
    victim_fired = 0;
    now = 300;
    mk_timer_arm(&rh, &killer, 200);
    mk_timer_arm(&rh, &victim, 201);
    CHECK_EQ_INT(mk_timer_run(&rh, 300), 2);      /* periodic, killer */
    CHECK_EQ_INT(victim_fired, 0);
    CHECK_EQ_INT(periodic_fired, 11);
    CHECK(!mk_timer_is_armed(&victim));

    /* re-arming for "now" must not loop forever inside one run */
    now = 1000;
    mk_timer_disarm(&rh, &periodic);
    mk_timer_init(&same_now, on_same_now, &now);
    mk_timer_arm(&rh, &same_now, 1000);
    runs = mk_timer_run(&rh, 1000);
    CHECK(runs >= 1 && runs < 100);
    CHECK(mk_timer_is_armed(&same_now));
    CHECK(mk_timer_next_ms(&rh, 1000) == 0);
    mk_timer_disarm(&rh, &same_now);
    CHECK(mk_timer_next_ms(&rh, 1000) == -1);
    mk_timer_heap_release(&rh);
}

MK_TEST(order_of_many)
{
    struct mk_timer_heap h;
    static struct mk_timer ts[1000];
    size_t i;

    mk_timer_heap_init(&h);
    for (i = 0; i < 1000; i++) {
        mk_timer_init(&ts[i], on_fire, (void *) (uintptr_t) (i % NT));
    }
    /* deadlines in a scrambled order; fire order must be sorted */
    for (i = 0; i < 1000; i++) {
        mk_timer_arm(&h, &ts[i], (i * 7919) % 1000);
    }
    uint64_t prev = 0;
    int sorted = 1;
    for (i = 0; i < 1000; i++) {
        struct mk_timer *top = h.items[0];
        if (top->expire_ms < prev) {
            sorted = 0;
        }
        prev = top->expire_ms;
        mk_timer_disarm(&h, top);
    }
    CHECK(sorted);
    CHECK(h.count == 0);
    CHECK(mk_timer_next_ms(&h, 0) == -1);
    mk_timer_heap_release(&h);
}

int main(void)
{
    mk_test_rng_state = 0x2545f4914f6cdd1dULL;    /* this test's sequence */
    RUN(random_against_reference);
    RUN(callbacks_rearm_and_disarm);
    RUN(order_of_many);
    return mk_test_done();
}
