#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "mk_core/mk_clock.h"

/*
 * The thread publishes only the second (an atomic); whoever formats a
 * time from it (the server's Date header, mk_http_date.c) keeps its own
 * copy per thread. A shared formatted buffer would be read by workers
 * while the thread rewrites it: a torn value and a data race.
 */
static atomic_llong clock_unix;
static atomic_int clock_running;

static pthread_t clock_thread;
static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clock_cond;
static int clock_stop_flag;          /* under clock_lock */

uint64_t mk_clock_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void mk_clock_refresh(void)
{
    atomic_store(&clock_unix, (long long) time(NULL));
}

static void *mk_clock_worker(void *arg)
{
    struct timespec wall;
    struct timespec deadline;

    pthread_mutex_lock(&clock_lock);
    while (!clock_stop_flag) {
        /* Wake just after the next wall-clock second so the Date header
         * changes when the second does, not up to a second late. */
        clock_gettime(CLOCK_REALTIME, &wall);
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += 1000000000L - wall.tv_nsec + 1000000L;
        while (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&clock_cond, &clock_lock, &deadline);
        if (!clock_stop_flag) {
            mk_clock_refresh();
        }
    }
    pthread_mutex_unlock(&clock_lock);
    return arg;
}

int mk_clock_start(void)
{
    pthread_condattr_t attr;

    if (atomic_load(&clock_running)) {
        return 0;
    }
    mk_clock_refresh();
    if (pthread_condattr_init(&attr) != 0) {
        return -1;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&clock_cond, &attr);
    pthread_condattr_destroy(&attr);
    clock_stop_flag = 0;
    if (pthread_create(&clock_thread, NULL, mk_clock_worker, NULL) != 0) {
        pthread_cond_destroy(&clock_cond);
        return -1;
    }
#ifdef __linux__
    pthread_setname_np(clock_thread, "tremolo-clock");
#endif
    atomic_store(&clock_running, 1);
    return 0;
}

void mk_clock_stop(void)
{
    if (!atomic_load(&clock_running)) {
        return;
    }
    pthread_mutex_lock(&clock_lock);
    clock_stop_flag = 1;
    pthread_cond_signal(&clock_cond);
    pthread_mutex_unlock(&clock_lock);
    pthread_join(clock_thread, NULL);
    pthread_cond_destroy(&clock_cond);
    atomic_store(&clock_running, 0);
}

time_t mk_clock_unix(void)
{
    if (atomic_load(&clock_running)) {
        return (time_t) atomic_load(&clock_unix);
    }
    return time(NULL);
}
