#ifndef MK_CORE_CLOCK_H
#define MK_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC), for timers and deadlines. */
uint64_t mk_clock_monotonic_ms(void);

/*
 * The clock thread refreshes, once a second, the wall time and the
 * preformatted IMF-fixdate used by the Date header ("Sun, 06 Nov 1994
 * 08:49:37 GMT", 29 bytes). Readers never lock: the thread writes into one
 * of two buffers and publishes it with an atomic pointer swap.
 */
#define MK_CLOCK_HTTP_DATE_LEN 29

int  mk_clock_start(void);        /* formats once, then starts the thread */
void mk_clock_stop(void);
/* Pointer to MK_CLOCK_HTTP_DATE_LEN bytes (plus a NUL), valid for ~1 s;
 * copy it, do not keep the pointer. Works (formatting on the spot) if the
 * thread was never started. */
const char *mk_clock_http_date(void);
time_t mk_clock_unix(void);

/* Formats `t` as an IMF-fixdate into out (at least 30 bytes, NUL added). */
void mk_clock_format_http(time_t t, char *out);
/* Parses IMF-fixdate (and the two obsolete forms RFC 9110 requires);
 * returns 0 and stores the time, or -1. */
int  mk_clock_parse_http(const char *s, size_t len, time_t *out);

#endif
