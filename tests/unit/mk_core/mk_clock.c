/*
 * The core clock: monotonic milliseconds and the clock thread's published
 * Unix second (HTTP dates are tested with mk_server/mk_http_date.c).
 */
#include <time.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_test.h"

MK_TEST(monotonic)
{
    uint64_t a = mk_clock_monotonic_ms();
    usleep(20000);
    uint64_t b = mk_clock_monotonic_ms();
    CHECK(b >= a + 19);
    CHECK(b < a + 2000);
}

MK_TEST(thread_publishes_the_second)
{
    time_t first, now;
    int changed = 0;
    int i;

    /* without the thread: time() itself */
    now = mk_clock_unix();
    CHECK(now - time(NULL) <= 1 && time(NULL) - now <= 1);

    CHECK(mk_clock_start() == 0);
    CHECK(mk_clock_start() == 0);                 /* idempotent */
    first = mk_clock_unix();
    CHECK(first - time(NULL) <= 1 && time(NULL) - first <= 1);
    /* the thread must move the second forward within ~2.5 s (bounded) */
    for (i = 0; i < 25 && !changed; i++) {
        usleep(100000);
        changed = mk_clock_unix() != first;
    }
    CHECK(changed);
    CHECK(mk_clock_unix() > first);
    mk_clock_stop();
    mk_clock_stop();                              /* idempotent */
    now = mk_clock_unix();
    CHECK(now - time(NULL) <= 1 && time(NULL) - now <= 1);
}

int main(void)
{
    RUN(monotonic);
    RUN(thread_publishes_the_second);
    return mk_test_done();
}
