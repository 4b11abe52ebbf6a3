#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "mk_core/mk_clock.h"

/*
 * The thread publishes only the second (an atomic); each reader thread
 * formats its own copy of the Date when the second changes. A shared
 * formatted buffer would be read by workers while the thread rewrites it:
 * a torn Date for a reader preempted long enough, and a data race.
 */
static atomic_llong clock_unix;
static atomic_int clock_running;

static pthread_t clock_thread;
static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clock_cond;
static int clock_stop_flag;          /* under clock_lock */

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

uint64_t mk_clock_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static char *mk_clock_put2(char *p, int v)
{
    *p++ = (char) ('0' + v / 10 % 10);
    *p++ = (char) ('0' + v % 10);
    return p;
}

void mk_clock_format_http(time_t t, char *out)
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
    p = mk_clock_put2(p, tm.tm_mday);
    *p++ = ' ';
    memcpy(p, month_names[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    p = mk_clock_put2(p, year / 100);
    p = mk_clock_put2(p, year % 100);
    *p++ = ' ';
    p = mk_clock_put2(p, tm.tm_hour);
    *p++ = ':';
    p = mk_clock_put2(p, tm.tm_min);
    *p++ = ':';
    p = mk_clock_put2(p, tm.tm_sec);
    memcpy(p, " GMT", 5);
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

const char *mk_clock_http_date(void)
{
    static _Thread_local char local[MK_CLOCK_HTTP_DATE_LEN + 1];
    static _Thread_local time_t formatted = -1;
    time_t now = mk_clock_unix();

    if (now != formatted) {             /* once a second per thread */
        mk_clock_format_http(now, local);
        formatted = now;
    }
    return local;
}

time_t mk_clock_unix(void)
{
    if (atomic_load(&clock_running)) {
        return (time_t) atomic_load(&clock_unix);
    }
    return time(NULL);
}

/* ---- parsing (RFC 9110 section 5.6.7) ---- */

/* A fixed-position cursor over the input; every helper fails the parse by
 * returning -1 on the first byte that does not fit. */
struct mk_date_cur {
    const char *p;
    const char *end;
};

static int mk_date_lit(struct mk_date_cur *c, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t) (c->end - c->p) < n || memcmp(c->p, lit, n) != 0) {
        return -1;
    }
    c->p += n;
    return 0;
}

/* Exactly `n` digits (a leading space counts as a zero when `pad`). */
static int mk_date_num(struct mk_date_cur *c, int n, int pad, int *out)
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

static int mk_date_month(struct mk_date_cur *c, int *mon)
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
static int mk_date_wday(struct mk_date_cur *c, int long_form, int *wday)
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

static int mk_date_hms(struct mk_date_cur *c, struct tm *tm)
{
    if (mk_date_num(c, 2, 0, &tm->tm_hour) || mk_date_lit(c, ":") ||
        mk_date_num(c, 2, 0, &tm->tm_min) || mk_date_lit(c, ":") ||
        mk_date_num(c, 2, 0, &tm->tm_sec)) {
        return -1;
    }
    return 0;
}

static int mk_date_days_in_month(int year, int mon)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return days[mon] + (mon == 1 && leap);
}

/* Two-digit RFC 850 year: a year more than 50 years in the future is taken
 * as the most recent past year with the same last two digits. */
static int mk_date_year2(int yy)
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

int mk_clock_parse_http(const char *s, size_t len, time_t *out)
{
    struct mk_date_cur c = { s, s + len };
    struct tm tm;
    int wday;
    int year;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (len == 29) {            /* Sun, 06 Nov 1994 08:49:37 GMT */
        if (mk_date_wday(&c, 0, &wday) || mk_date_lit(&c, ", ") ||
            mk_date_num(&c, 2, 0, &tm.tm_mday) || mk_date_lit(&c, " ") ||
            mk_date_month(&c, &tm.tm_mon) || mk_date_lit(&c, " ") ||
            mk_date_num(&c, 4, 0, &year) || mk_date_lit(&c, " ") ||
            mk_date_hms(&c, &tm) || mk_date_lit(&c, " GMT")) {
            return -1;
        }
    }
    else if (len == 24) {       /* Sun Nov  6 08:49:37 1994 */
        if (mk_date_wday(&c, 0, &wday) || mk_date_lit(&c, " ") ||
            mk_date_month(&c, &tm.tm_mon) || mk_date_lit(&c, " ") ||
            mk_date_num(&c, 2, 1, &tm.tm_mday) || mk_date_lit(&c, " ") ||
            mk_date_hms(&c, &tm) || mk_date_lit(&c, " ") ||
            mk_date_num(&c, 4, 0, &year)) {
            return -1;
        }
    }
    else {                      /* Sunday, 06-Nov-94 08:49:37 GMT */
        if (mk_date_wday(&c, 1, &wday) || mk_date_lit(&c, ", ") ||
            mk_date_num(&c, 2, 0, &tm.tm_mday) || mk_date_lit(&c, "-") ||
            mk_date_month(&c, &tm.tm_mon) || mk_date_lit(&c, "-") ||
            mk_date_num(&c, 2, 0, &year) || mk_date_lit(&c, " ") ||
            mk_date_hms(&c, &tm) || mk_date_lit(&c, " GMT")) {
            return -1;
        }
        year = mk_date_year2(year);
    }
    if (c.p != c.end || tm.tm_mday < 1 ||
        tm.tm_mday > mk_date_days_in_month(year, tm.tm_mon) ||
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
