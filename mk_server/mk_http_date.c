/*
 * HTTP dates (RFC 9110 section 5.6.7): the Date header of every response,
 * Last-Modified and the conditional request headers. HTTP, so it lives in
 * the server; mk_core's clock only keeps the time (mk_clock_unix).
 */
#include <string.h>
#include <time.h>

#include "mk_core/mk_clock.h"
#include "mk_server/mk_http_date.h"

static const char day_names[7][4] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char *const day_long_names[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday"
};
static const char month_names[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static char *http_date_put2(char *p, int v)
{
    *p++ = (char) ('0' + v / 10 % 10);
    *p++ = (char) ('0' + v % 10);
    return p;
}

void mk_http_date_format(time_t t, char *out)
{
    struct tm tm;
    char *p = out;
    int year;

    gmtime_r(&t, &tm);
    /* The layout is fixed-width, so years outside 0..9999 are clamped to
     * keep it at 29 bytes; such dates never come from a real clock. */
    year = tm.tm_year + 1900;
    if (year < 0) {
        year = 0;
    }
    else if (year > 9999) {
        year = 9999;
    }
    memcpy(p, day_names[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = http_date_put2(p, tm.tm_mday);
    *p++ = ' ';
    memcpy(p, month_names[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    p = http_date_put2(p, year / 100);
    p = http_date_put2(p, year % 100);
    *p++ = ' ';
    p = http_date_put2(p, tm.tm_hour);
    *p++ = ':';
    p = http_date_put2(p, tm.tm_min);
    *p++ = ':';
    p = http_date_put2(p, tm.tm_sec);
    memcpy(p, " GMT", 5);
}

/* The clock thread publishes the second; each thread formats its own copy
 * when the second changes, so readers never lock or see a torn value. */
const char *mk_http_date(void)
{
    static _Thread_local char local[MK_HTTP_DATE_LEN + 1];
    static _Thread_local time_t formatted = -1;
    time_t now = mk_clock_unix();

    if (now != formatted) {             /* once a second per thread */
        mk_http_date_format(now, local);
        formatted = now;
    }
    return local;
}

/* ---- Parsing ---------------------------------------------------------- */

/* A fixed-position cursor over the input; every helper fails the parse by
 * returning -1 on the first byte that does not fit. */
struct http_date_cur {
    const char *p;
    const char *end;
};

static int http_date_lit(struct http_date_cur *c, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t) (c->end - c->p) < n || memcmp(c->p, lit, n) != 0) {
        return -1;
    }
    c->p += n;
    return 0;
}

/* Exactly `n` digits (a leading space counts as a zero when `pad`). */
static int http_date_num(struct http_date_cur *c, int n, int pad, int *out)
{
    int v = 0;
    int i;

    if (c->end - c->p < n) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        char ch = c->p[i];
        if (pad && i == 0 && ch == ' ') {
            continue;
        }
        if (ch < '0' || ch > '9') {
            return -1;
        }
        v = v * 10 + (ch - '0');
    }
    c->p += n;
    *out = v;
    return 0;
}

static int http_date_month(struct http_date_cur *c, int *mon)
{
    int i;

    if (c->end - c->p < 3) {
        return -1;
    }
    for (i = 0; i < 12; i++) {
        if (memcmp(c->p, month_names[i], 3) == 0) {
            c->p += 3;
            *mon = i;
            return 0;
        }
    }
    return -1;
}

/* Short day name followed by `sep`, or (when `long_form`) the full name. */
static int http_date_wday(struct http_date_cur *c, int long_form, int *wday)
{
    int i;

    for (i = 0; i < 7; i++) {
        const char *name = long_form ? day_long_names[i] : day_names[i];
        size_t n = strlen(name);
        if ((size_t) (c->end - c->p) >= n && memcmp(c->p, name, n) == 0) {
            c->p += n;
            *wday = i;
            return 0;
        }
    }
    return -1;
}

static int http_date_hms(struct http_date_cur *c, struct tm *tm)
{
    if (http_date_num(c, 2, 0, &tm->tm_hour) || http_date_lit(c, ":") ||
        http_date_num(c, 2, 0, &tm->tm_min) || http_date_lit(c, ":") ||
        http_date_num(c, 2, 0, &tm->tm_sec)) {
        return -1;
    }
    return 0;
}

static int http_date_days_in_month(int year, int mon)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return days[mon] + (mon == 1 && leap);
}

/* Two-digit RFC 850 year: a year more than 50 years in the future is taken
 * as the most recent past year with the same last two digits. */
static int http_date_year2(int yy)
{
    struct tm now_tm;
    time_t now = time(NULL);
    int year;

    gmtime_r(&now, &now_tm);
    year = (now_tm.tm_year + 1900) / 100 * 100 + yy;
    if (year > now_tm.tm_year + 1900 + 50) {
        year -= 100;
    }
    return year;
}

int mk_http_date_parse(const char *s, size_t len, time_t *out)
{
    struct http_date_cur c = { s, s + len };
    struct tm tm;
    int wday;
    int year;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (len == 29) {            /* Sun, 06 Nov 1994 08:49:37 GMT */
        if (http_date_wday(&c, 0, &wday) || http_date_lit(&c, ", ") ||
            http_date_num(&c, 2, 0, &tm.tm_mday) || http_date_lit(&c, " ") ||
            http_date_month(&c, &tm.tm_mon) || http_date_lit(&c, " ") ||
            http_date_num(&c, 4, 0, &year) || http_date_lit(&c, " ") ||
            http_date_hms(&c, &tm) || http_date_lit(&c, " GMT")) {
            return -1;
        }
    }
    else if (len == 24) {       /* Sun Nov  6 08:49:37 1994 */
        if (http_date_wday(&c, 0, &wday) || http_date_lit(&c, " ") ||
            http_date_month(&c, &tm.tm_mon) || http_date_lit(&c, " ") ||
            http_date_num(&c, 2, 1, &tm.tm_mday) || http_date_lit(&c, " ") ||
            http_date_hms(&c, &tm) || http_date_lit(&c, " ") ||
            http_date_num(&c, 4, 0, &year)) {
            return -1;
        }
    }
    else {                      /* Sunday, 06-Nov-94 08:49:37 GMT */
        if (http_date_wday(&c, 1, &wday) || http_date_lit(&c, ", ") ||
            http_date_num(&c, 2, 0, &tm.tm_mday) || http_date_lit(&c, "-") ||
            http_date_month(&c, &tm.tm_mon) || http_date_lit(&c, "-") ||
            http_date_num(&c, 2, 0, &year) || http_date_lit(&c, " ") ||
            http_date_hms(&c, &tm) || http_date_lit(&c, " GMT")) {
            return -1;
        }
        year = http_date_year2(year);
    }
    if (c.p != c.end || tm.tm_mday < 1 ||
        tm.tm_mday > http_date_days_in_month(year, tm.tm_mon) ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return -1;
    }
    tm.tm_year = year - 1900;
    t = timegm(&tm);
    if (t == (time_t) -1) {
        return -1;
    }
    *out = t;
    return 0;
}
