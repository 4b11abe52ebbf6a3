#ifndef MK_CORE_CLOCK_H
#define MK_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC), for timers and deadlines. */
uint64_t mk_clock_monotonic_ms(void);

/*
 * The clock thread refreshes, once a second, the wall time used by the
 * Date header (an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes).
 * Readers never lock: the second is an atomic, and each thread formats
 * its own copy of the Date once per second it asks in.
 */
#define MK_CLOCK_HTTP_DATE_LEN 29

int  mk_clock_start(void);        /* formats once, then starts the thread */
void mk_clock_stop(void);
/* Pointer to MK_CLOCK_HTTP_DATE_LEN bytes (plus a NUL) owned by the
 * calling thread, valid until its next call; copy it, do not keep the
 * pointer. Works (reading the time itself) if the thread never started. */
const char *mk_clock_http_date(void);
time_t mk_clock_unix(void);

/* Formats `t` as an IMF-fixdate into out (at least 30 bytes, NUL added). */
void mk_clock_format_http(time_t t, char *out);
/* Parses IMF-fixdate (and the two obsolete forms RFC 9110 requires);
 * returns 0 and stores the time, or -1. */
int  mk_clock_parse_http(const char *s, size_t len, time_t *out);

#endif
