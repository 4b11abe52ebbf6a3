#ifndef MK_SERVER_HTTP_DATE_H
#define MK_SERVER_HTTP_DATE_H

#include <stddef.h>
#include <time.h>

/*
 * HTTP dates: the IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes)
 * of the Date and Last-Modified headers, and the parser of the three forms
 * a recipient must accept (If-Modified-Since, If-Unmodified-Since,
 * If-Range).
 */
#define MK_HTTP_DATE_LEN 29

/* The Date header's value now: MK_HTTP_DATE_LEN bytes (plus a NUL) owned
 * by the calling thread, valid until its next call; copy it, do not keep
 * the pointer. Formatted at most once a second per thread from
 * mk_clock_unix(), so it also works when the clock thread is not running. */
const char *mk_http_date(void);

/* Formats `t` as an IMF-fixdate into out (at least 30 bytes, NUL added). */
void mk_http_date_format(time_t t, char *out);

/* Parses IMF-fixdate (and the two obsolete forms RFC 9110 requires);
 * returns 0 and stores the time, or -1. */
int  mk_http_date_parse(const char *s, size_t len, time_t *out);

#endif
