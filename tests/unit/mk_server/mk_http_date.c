/*
 * HTTP dates (mk_server/mk_http_date.c): the IMF-fixdate formatter, the
 * parser of the three forms RFC 9110 requires, and the Date header's value
 * following the clock thread's second.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_server/mk_http_date.h"
#include "mk_test.h"

static int parse(const char *s, time_t *t)
{
    return mk_http_date_parse(s, strlen(s), t);
}

MK_TEST(format_known)
{
    char out[32];

    mk_http_date_format(784111777, out);
    CHECK_EQ_STR(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(strlen(out) == MK_HTTP_DATE_LEN);
    mk_http_date_format(0, out);
    CHECK_EQ_STR(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    mk_http_date_format(951782400, out);               /* leap day 2000 */
    CHECK_EQ_STR(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    mk_http_date_format(4102444799, out);
    CHECK_EQ_STR(out, "Thu, 31 Dec 2099 23:59:59 GMT");
}

MK_TEST(parse_three_forms)
{
    time_t t = 0;

    CHECK(parse("Sun, 06 Nov 1994 08:49:37 GMT", &t) == 0);
    CHECK_EQ_INT(t, 784111777);
    t = 0;
    CHECK(parse("Sunday, 06-Nov-94 08:49:37 GMT", &t) == 0);
    CHECK_EQ_INT(t, 784111777);
    t = 0;
    CHECK(parse("Sun Nov  6 08:49:37 1994", &t) == 0);
    CHECK_EQ_INT(t, 784111777);
    t = 0;
    CHECK(parse("Sun Nov 06 08:49:37 1994", &t) == 0);
    CHECK_EQ_INT(t, 784111777);
    CHECK(parse("Wed Nov 16 08:49:37 1994", &t) == 0);
    CHECK_EQ_INT(t, 784111777 + 10 * 86400);
    CHECK(parse("Tue, 29 Feb 2000 00:00:00 GMT", &t) == 0);
    CHECK_EQ_INT(t, 951782400);
    /* RFC 850 two-digit year: not more than 50 years ahead of now, so "35"
     * is 2035 (until 2085) while "94" above was 1994 */
    CHECK(parse("Monday, 01-Jan-35 00:00:00 GMT", &t) == 0);
    CHECK_EQ_INT(t, 2051222400);
}

MK_TEST(round_trip)
{
    char out[32];
    time_t t;
    time_t back;
    int bad = 0;

    for (t = 0; t < (time_t) 4102444800LL; t += 7777777 + t % 13) {
        mk_http_date_format(t, out);
        if (parse(out, &back) != 0 || back != t) {
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

MK_TEST(rejects_garbage)
{
    static const char *const bad[] = {
        "",
        "garbage",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sun, 06 Nov 19x4 08:49:37 GMT",
        "Sun, 06 Nov +994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov    6 08:49:37 1994",
        "Sun Nov  6  8:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
    };
    size_t i;
    time_t t = 12345;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &t) != -1) {
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
            CHECK(0);
        }
        else {
            CHECK(1);
        }
    }
    /* embedded NUL inside a fixed-length slice */
    CHECK(mk_http_date_parse("Sun, 06 Nov 1994 08:49:37 GM\0", 29, &t) == -1);
    CHECK(mk_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 28, &t) == -1);
    CHECK_EQ_INT(t, 12345);
}

MK_TEST(date_follows_the_clock_thread)
{
    char first[32];
    const char *d;
    time_t parsed, later;
    int changed = 0;
    int i;

    /* without the thread: formatted on the spot */
    d = mk_http_date();
    CHECK(strlen(d) == MK_HTTP_DATE_LEN);
    CHECK(mk_http_date_parse(d, strlen(d), &parsed) == 0);
    CHECK(parsed - time(NULL) <= 1 && time(NULL) - parsed <= 1);

    CHECK(mk_clock_start() == 0);
    d = mk_http_date();
    memcpy(first, d, MK_HTTP_DATE_LEN + 1);
    CHECK(mk_http_date_parse(first, MK_HTTP_DATE_LEN, &parsed) == 0);
    CHECK(parsed == mk_clock_unix() || parsed + 1 == mk_clock_unix());
    /* the thread must move the date forward within ~2.5 s (bounded wait) */
    for (i = 0; i < 25 && !changed; i++) {
        usleep(100000);
        changed = strcmp(mk_http_date(), first) != 0;
    }
    CHECK(changed);
    d = mk_http_date();
    CHECK(mk_http_date_parse(d, strlen(d), &later) == 0);
    CHECK(later > parsed);
    CHECK(mk_clock_unix() >= later);
    mk_clock_stop();
    d = mk_http_date();
    CHECK(strlen(d) == MK_HTTP_DATE_LEN);
}

int main(void)
{
    RUN(format_known);
    RUN(parse_three_forms);
    RUN(round_trip);
    RUN(rejects_garbage);
    RUN(date_follows_the_clock_thread);
    return mk_test_done();
}
