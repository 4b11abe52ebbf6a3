#ifndef MK_CORE_CLOCK_H
#define MK_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC), for timers and deadlines. */
uint64_t mk_clock_monotonic_ms(void);

/*
 * The clock thread publishes, once a second (just after the wall-clock
 * second turns), the current Unix second: hot paths that need wall time
 * read an atomic instead of calling time(). Readers never lock.
 */
int  mk_clock_start(void);        /* reads the time once, then starts the thread */
void mk_clock_stop(void);
/* The last published second; time(NULL) itself if the thread is not
 * running. */
time_t mk_clock_unix(void);

#endif
