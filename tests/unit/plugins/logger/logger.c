/* Unit tests: logger's line formats, escaping and Basic user decoding. */
#include <stdlib.h>
#include <time.h>

#include "mk_test.h"
#include "plugins/logger/logger_format.c"

static struct mk_ptr S(const char *s)
{
    return mk_ptr_make(s, strlen(s));
}

static struct logger_entry sample(void)
{
    struct logger_entry e;

    memset(&e, 0, sizeof(e));
    e.time = 1700000000;            /* 2023-11-14 22:13:20 UTC */
    e.remote_addr = "127.0.0.1";
    e.method = S("GET");
    e.target = S("/index.html?a=1");
    e.protocol = "HTTP/1.1";
    e.status = 200;
    e.bytes = 1234;
    e.referer = S("http://example.com/");
    e.user_agent = S("curl/8.0");
    e.host = S("localhost");
    e.request_time_ms = 7;
    return e;
}

static char line[LOGGER_LINE_MAX];

MK_TEST(combined_line)
{
    struct logger_entry e = sample();
    size_t n = logger_format_combined(&e, line);

    CHECK_EQ_MEM(line, n, "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] "
                 "\"GET /index.html?a=1 HTTP/1.1\" 200 1234 "
                 "\"http://example.com/\" \"curl/8.0\"\n");
    e.referer = MK_PTR_NONE;
    e.user_agent = MK_PTR_NONE;
    e.user = S("alice");
    e.protocol = "HTTP/1.0";
    e.status = 404;
    e.bytes = 0;
    n = logger_format_combined(&e, line);
    CHECK_EQ_MEM(line, n, "127.0.0.1 - alice [14/Nov/2023:22:13:20 +0000] "
                 "\"GET /index.html?a=1 HTTP/1.0\" 404 0 \"-\" \"-\"\n");
    e.protocol = NULL;
    n = logger_format_combined(&e, line);
    CHECK(strstr(line, "] \"-\" 404 0") != NULL);
}

MK_TEST(combined_injection)
{
    struct logger_entry e = sample();
    size_t n;

    e.user_agent = S("evil\" 200 0\n127.0.0.2 - - [x]");
    e.target = S("/a\"b\\c\x7f\xc3\xa9");
    e.user = S("bo\"b");
    n = logger_format_combined(&e, line);
    CHECK(memchr(line, '\n', n) == line + n - 1);
    CHECK(strstr(line, "\"evil\\x22 200 0\\x0a127.0.0.2 - - [x]\"") != NULL);
    CHECK(strstr(line, "\"GET /a\\x22b\\x5cc\\x7f\\xc3\\xa9 HTTP/1.1\"")
          != NULL);
    CHECK(strstr(line, " - bo\\x22b [") != NULL);
}

MK_TEST(escape_caps)
{
    char out[16];
    size_t n;

    /* never splits an escape: 3 bytes of room cannot hold \x22 */
    n = logger_escape_clf("a\"", 2, out, 4);
    CHECK_EQ_MEM(out, n, "a");
    n = logger_escape_clf("abcdef", 6, out, 4);
    CHECK_EQ_MEM(out, n, "abcd");
    n = logger_escape_json("a\x01", 2, out, 6);
    CHECK_EQ_MEM(out, n, "a");
    n = logger_escape_json("\xc3\xa9\xc3\xa9", 4, out, 3);
    CHECK_EQ_MEM(out, n, "\xc3\xa9");
}

MK_TEST(json_escape)
{
    char out[128];
    size_t n;

    n = logger_escape_json("a\"b\\c\nd\re\tf\x01g\x7f", 14, out, sizeof(out));
    CHECK_EQ_MEM(out, n, "a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007f");
    /* valid UTF-8 passes */
    n = logger_escape_json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, out,
                           sizeof(out));
    CHECK_EQ_MEM(out, n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* invalid: lone continuation, overlong, surrogate, truncated, > 10FFFF */
    n = logger_escape_json("\x80", 1, out, sizeof(out));
    CHECK_EQ_MEM(out, n, "\\u0080");
    n = logger_escape_json("\xc0\xaf", 2, out, sizeof(out));
    CHECK_EQ_MEM(out, n, "\\u00c0\\u00af");
    n = logger_escape_json("\xed\xa0\x80", 3, out, sizeof(out));
    CHECK_EQ_MEM(out, n, "\\u00ed\\u00a0\\u0080");
    n = logger_escape_json("\xe2\x82", 2, out, sizeof(out));
    CHECK_EQ_MEM(out, n, "\\u00e2\\u0082");
    n = logger_escape_json("\xf4\x90\x80\x80", 4, out, sizeof(out));
    CHECK_EQ_MEM(out, n, "\\u00f4\\u0090\\u0080\\u0080");
}

MK_TEST(json_line)
{
    struct logger_entry e = sample();
    size_t n = logger_format_json(&e, line);

    CHECK_EQ_MEM(line, n, "{\"time\":\"2023-11-14T22:13:20+00:00\","
                 "\"remote_addr\":\"127.0.0.1\",\"remote_user\":null,"
                 "\"method\":\"GET\",\"uri\":\"/index.html?a=1\","
                 "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":1234,"
                 "\"referer\":\"http://example.com/\","
                 "\"user_agent\":\"curl/8.0\",\"host\":\"localhost\","
                 "\"request_time_ms\":7}\n");
    e.user_agent = S("x\"}\n{\"y");
    e.referer = MK_PTR_NONE;
    e.user = S("al\\ice");
    n = logger_format_json(&e, line);
    CHECK(memchr(line, '\n', n) == line + n - 1);
    CHECK(strstr(line, "\"user_agent\":\"x\\\"}\\n{\\\"y\"") != NULL);
    CHECK(strstr(line, "\"referer\":null") != NULL);
    CHECK(strstr(line, "\"remote_user\":\"al\\\\ice\"") != NULL);
}

MK_TEST(huge_fields_fit)
{
    static char big[20000];
    struct logger_entry e = sample();
    size_t n;

    memset(big, '"', sizeof(big));
    e.target = mk_ptr_make(big, sizeof(big));
    e.referer = e.target;
    e.user_agent = e.target;
    e.host = e.target;
    e.user = e.target;
    e.method = e.target;
    n = logger_format_combined(&e, line);
    CHECK(n < LOGGER_LINE_MAX);
    CHECK(line[n - 1] == '\n' && line[n - 2] == '"');
    memset(big, 1, sizeof(big));
    n = logger_format_json(&e, line);
    CHECK(n < LOGGER_LINE_MAX);
    CHECK_EQ_MEM(line + n - 2, 2, "}\n");
}

MK_TEST(basic_user)
{
    char user[64];

    /* "alice:s3cret" */
    CHECK_EQ_INT(logger_basic_user(S("Basic YWxpY2U6czNjcmV0"), user,
                                   sizeof(user)), 5);
    CHECK_EQ_STR(user, "alice");
    CHECK_EQ_INT(logger_basic_user(S("basic   YWxpY2U6czNjcmV0 "), user,
                                   sizeof(user)), 5);
    /* ":pw" -> empty user */
    CHECK_EQ_INT(logger_basic_user(S("Basic OnB3"), user, sizeof(user)), 0);
    /* no colon: "alice" */
    CHECK_EQ_INT(logger_basic_user(S("Basic YWxpY2U="), user, sizeof(user)),
                 0);
    CHECK_EQ_INT(logger_basic_user(S("Bearer YWxpY2U6czNjcmV0"), user,
                                   sizeof(user)), 0);
    CHECK_EQ_INT(logger_basic_user(S("Basic YWx*Y2U6czNjcmV0"), user,
                                   sizeof(user)), 0);
    CHECK_EQ_INT(logger_basic_user(S("BasicYWxpY2U6czNjcmV0"), user,
                                   sizeof(user)), 0);
    CHECK_EQ_INT(logger_basic_user(MK_PTR_NONE, user, sizeof(user)), 0);
    /* too long for the buffer: no user rather than a cut one */
    CHECK_EQ_INT(logger_basic_user(S("Basic YWxpY2U6czNjcmV0"), user, 4), 0);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    RUN(combined_line);
    RUN(combined_injection);
    RUN(escape_caps);
    RUN(json_escape);
    RUN(json_line);
    RUN(huge_fields_fit);
    RUN(basic_user);
    return mk_test_done();
}
