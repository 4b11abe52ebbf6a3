/*
 * The configuration reader and its schema, through the public API only.
 * Runs from tests/unit/, so fixtures are opened as fixtures/rconf/...
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mk_test.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_rconf.h"

#define FIX "fixtures/rconf/"

static char err[512];

static struct mk_rconf *parse(const char *text)
{
    err[0] = '\0';
    return mk_rconf_parse("x.conf", text, strlen(text), err, sizeof(err));
}

/* Parsing `text` must fail with exactly `msg`. */
static void expect_parse_error(const char *text, size_t len, const char *msg)
{
    struct mk_rconf *c;

    err[0] = '\0';
    c = mk_rconf_parse("x.conf", text, len, err, sizeof(err));
    CHECK(c == NULL);
    CHECK_EQ_STR(err, msg);
    mk_rconf_destroy(c);
}

/* Literals may hold a NUL, so their length comes from sizeof. */
#define EXPECT_PARSE_ERROR(lit, msg) \
    expect_parse_error(lit, sizeof(lit) - 1, msg)

static struct mk_rconf_section *nth(struct mk_rconf *c, int n)
{
    struct mk_list *h;

    mk_list_foreach(h, &c->sections) {
        if (n-- == 0) {
            return mk_list_entry(h, struct mk_rconf_section, _head);
        }
    }
    return NULL;
}

/* ---- Reader: good input ------------------------------------------------ */

MK_TEST(open_main_with_includes)
{
    struct mk_rconf *c = mk_rconf_open(FIX "main.conf", err, sizeof(err));
    struct mk_rconf_section *s, *s2;
    struct mk_rconf_entry *e;
    const char *names[] = { "SERVER", "location", "A", "B", "C", "Server" };
    int i;

    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "error: %s\n", err);
        return;
    }
    CHECK_EQ_STR(c->path, FIX "main.conf");
    CHECK_EQ_INT(mk_list_size(&c->sections), 6);
    /* Included sections land where the @include is, in sorted order. */
    for (i = 0; i < 6; i++) {
        CHECK_EQ_STR(nth(c, i)->name, names[i]);
    }

    s = mk_rconf_section_next(c, "server", NULL);
    CHECK(s == nth(c, 0));
    CHECK_EQ_STR(s->arg, "");
    CHECK_EQ_STR(s->file, FIX "main.conf");
    CHECK_EQ_INT(s->line, 2);
    CHECK_EQ_INT(mk_list_size(&s->entries), 4);
    /* Tab indent, trailing blanks trimmed, keys case-insensitive, last wins */
    CHECK_EQ_STR(mk_rconf_get(s, "WORKERS"), "4");
    CHECK_EQ_STR(mk_rconf_get(s, "Listen"), "2002");
    CHECK_EQ_STR(mk_rconf_get(s, "user"), "");
    CHECK(mk_rconf_get(s, "Missing") == NULL);
    e = mk_list_entry(s->entries.prev, struct mk_rconf_entry, _head);
    CHECK_EQ_STR(e->key, "listen");
    CHECK_EQ_INT(e->line, 8);

    s2 = mk_rconf_section_next(c, "SERVER", s);
    CHECK(s2 == nth(c, 5));
    CHECK_EQ_STR(mk_rconf_get(s2, "extra"), "value with  inner   spaces");
    CHECK(mk_rconf_section_next(c, "server", s2) == NULL);

    s = mk_rconf_section_next(c, "LOCATION", NULL);
    CHECK_EQ_STR(s->arg, "/img");
    CHECK_EQ_STR(mk_rconf_get(s, "root"), "/var/www/img");

    s = mk_rconf_section_next(c, "a", NULL);
    CHECK_EQ_STR(s->file, FIX "inc/a.conf");
    CHECK_EQ_INT(s->line, 1);
    CHECK_EQ_STR(mk_rconf_get(s, "K"), "1");

    /* CRLF file: no '\r' left in values, empty value kept. */
    s = mk_rconf_section_next(c, "C", NULL);
    CHECK_EQ_STR(s->name, "C");
    CHECK_EQ_STR(mk_rconf_get(s, "K"), "3");
    CHECK_EQ_STR(mk_rconf_get(s, "Empty"), "");
    e = mk_list_entry(s->entries.prev, struct mk_rconf_entry, _head);
    CHECK_EQ_STR(e->file, FIX "inc/c.conf");
    CHECK_EQ_INT(e->line, 3);
    mk_rconf_destroy(c);
}

MK_TEST(parse_from_memory)
{
    struct mk_rconf *c;
    struct mk_rconf_section *s;

    /* No trailing newline, BOM, blank lines with blanks, header blanks. */
    c = parse("\xEF\xBB\xBF# c\n\n[ LOCATION   /a b ]  \n  \t\n\tK v\n"
              "[empty]\n@include fixtures/rconf/inc/[ab].conf\n"
              "@include fixtures/rconf/none/*.conf\n[Z]\n    Last x");
    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "error: %s\n", err);
        return;
    }
    CHECK_EQ_INT(mk_list_size(&c->sections), 5);
    s = nth(c, 0);
    CHECK_EQ_STR(s->name, "LOCATION");
    CHECK_EQ_STR(s->arg, "/a b");
    CHECK_EQ_STR(s->file, "x.conf");
    CHECK_EQ_INT(s->line, 3);
    CHECK_EQ_STR(mk_rconf_get(s, "k"), "v");
    CHECK(mk_list_is_empty(&nth(c, 1)->entries));
    CHECK_EQ_STR(nth(c, 2)->name, "A");
    CHECK_EQ_STR(nth(c, 3)->name, "B");
    CHECK_EQ_STR(nth(c, 3)->file, "fixtures/rconf/inc/b.conf");
    CHECK_EQ_STR(mk_rconf_get(nth(c, 4), "last"), "x");
    mk_rconf_destroy(c);

    c = parse("");
    CHECK(c != NULL && mk_list_is_empty(&c->sections));
    mk_rconf_destroy(c);
}

MK_TEST(include_depth)
{
    struct mk_rconf *c;

    /* d2 .. d9 is 8 levels below d2 counting d2 as level 0: allowed. */
    c = mk_rconf_open(FIX "deep/d2.conf", err, sizeof(err));
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_EQ_INT(mk_list_size(&c->sections), 8);
    }
    mk_rconf_destroy(c);

    c = mk_rconf_open(FIX "deep/d1.conf", err, sizeof(err));
    CHECK(c == NULL);
    CHECK_EQ_STR(err, FIX "deep/d9.conf:3: @include nesting deeper than 8 "
                 "(include loop?)");

    c = mk_rconf_open(FIX "loop.conf", err, sizeof(err));
    CHECK(c == NULL);
    CHECK_EQ_STR(err, FIX "loop.conf:1: @include nesting deeper than 8 "
                 "(include loop?)");
}

/* ---- Reader: bad input ------------------------------------------------- */

MK_TEST(reader_errors)
{
    static char longline[9000 + 16];
    struct mk_rconf *c;

    EXPECT_PARSE_ERROR("# c\n    Key v\n",
                       "x.conf:2: entry outside of any section");
    EXPECT_PARSE_ERROR("[A]\n K v\n\n\n[SERVER\n",
                       "x.conf:5: unterminated section header");
    EXPECT_PARSE_ERROR("[A] x\n",
                       "x.conf:1: unexpected text after section header");
    EXPECT_PARSE_ERROR("[  ]\n", "x.conf:1: empty section name");
    EXPECT_PARSE_ERROR("[a[b]\n", "x.conf:1: malformed section header");
    EXPECT_PARSE_ERROR("[A]\nKey v\n",
                       "x.conf:2: expected a [SECTION] header or an indented "
                       "entry");
    EXPECT_PARSE_ERROR("[A]\n  [B]\n",
                       "x.conf:2: section header must start at column 0");
    EXPECT_PARSE_ERROR("[A]\n K v\0w\n", "x.conf:2: NUL byte in line");
    EXPECT_PARSE_ERROR("\0", "x.conf:1: NUL byte in line");
    EXPECT_PARSE_ERROR("@inc x\n",
                       "x.conf:1: unknown directive \"@inc\"");
    EXPECT_PARSE_ERROR("@include   \n",
                       "x.conf:1: @include needs a file pattern");
    /* After an @include there is no open section. */
    EXPECT_PARSE_ERROR("[A]\n@include nothing-here-*.conf\n  K v\n",
                       "x.conf:3: entry outside of any section");

    memcpy(longline, "[A]\n ", 5);
    memset(longline + 5, 'k', 9000);
    expect_parse_error(longline, 9005, "x.conf:2: line longer than 8192 "
                       "bytes");
    /* Exactly 8192 bytes (plus CRLF) is fine. */
    memcpy(longline + 4 + 8192, "\r\n", 2);
    c = mk_rconf_parse("x.conf", longline, 4 + 8192 + 2, err, sizeof(err));
    CHECK(c != NULL);
    mk_rconf_destroy(c);

    /* Errors inside an included file name that file. */
    c = mk_rconf_open(FIX "badinc.conf", err, sizeof(err));
    CHECK(c == NULL);
    CHECK_EQ_STR(err, FIX "inc/bad.inc:4: expected a [SECTION] header or an "
                 "indented entry");

    c = mk_rconf_open(FIX "nope.conf", err, sizeof(err));
    CHECK(c == NULL);
    CHECK_EQ_STR(err, FIX "nope.conf: No such file or directory");
    c = mk_rconf_open(FIX "inc", err, sizeof(err));
    CHECK(c == NULL);
    CHECK_EQ_STR(err, FIX "inc: not a regular file");

    /* A tiny error buffer truncates, never overflows. */
    c = mk_rconf_parse("x.conf", "  k\n", 4, err, 4);
    CHECK(c == NULL);
    CHECK_EQ_STR(err, "x.c");
    CHECK(mk_rconf_parse("x.conf", "  k\n", 4, NULL, 0) == NULL);
}

/* ---- Value parsers ----------------------------------------------------- */

MK_TEST(value_parsers)
{
    long long i;
    uint64_t u;
    int b;

    CHECK(mk_conf_parse_int("42", 0, 0, &i, err, sizeof(err)) == 0);
    CHECK_EQ_INT(i, 42);
    CHECK(mk_conf_parse_int("-42", -100, 100, &i, err, sizeof(err)) == 0);
    CHECK_EQ_INT(i, -42);
    CHECK(mk_conf_parse_int("-9223372036854775808", 0, 0, &i, err,
                            sizeof(err)) == 0);
    CHECK(i == INT64_MIN);
    CHECK(mk_conf_parse_int("9223372036854775808", 0, 0, &i, err,
                            sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"9223372036854775808\" is out of range");
    CHECK(mk_conf_parse_int("-1", 0, 10, &i, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "-1 out of range 0..10");
    CHECK(mk_conf_parse_int("3", 5, 0, &i, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "3 is below the minimum 5");
    CHECK(mk_conf_parse_int("1000000", 5, 0, &i, err, sizeof(err)) == 0);
    CHECK(mk_conf_parse_int("abc", 0, 0, &i, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"abc\" is not a whole number");
    CHECK(mk_conf_parse_int("", 0, 0, &i, err, sizeof(err)) == -1);
    CHECK(mk_conf_parse_int("1 ", 0, 0, &i, err, sizeof(err)) == -1);
    CHECK(mk_conf_parse_int("+1", 0, 0, &i, err, sizeof(err)) == -1);
    CHECK(mk_conf_parse_int("-", 0, 0, &i, err, sizeof(err)) == -1);

    CHECK(mk_conf_parse_bool("ON", &b, err, sizeof(err)) == 0 && b == 1);
    CHECK(mk_conf_parse_bool("No", &b, err, sizeof(err)) == 0 && b == 0);
    CHECK(mk_conf_parse_bool("true", &b, err, sizeof(err)) == 0 && b == 1);
    CHECK(mk_conf_parse_bool("0", &b, err, sizeof(err)) == 0 && b == 0);
    CHECK(mk_conf_parse_bool("2", &b, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"2\" is not a boolean (on/off, yes/no, true/false, "
                 "1/0)");

    CHECK(mk_conf_parse_size("512", &u, err, sizeof(err)) == 0 && u == 512);
    CHECK(mk_conf_parse_size("64K", &u, err, sizeof(err)) == 0 &&
          u == 65536);
    CHECK(mk_conf_parse_size("64k", &u, err, sizeof(err)) == 0 &&
          u == 65536);
    CHECK(mk_conf_parse_size("8MB", &u, err, sizeof(err)) == 0 &&
          u == 8ULL << 20);
    CHECK(mk_conf_parse_size("2G", &u, err, sizeof(err)) == 0 &&
          u == 2ULL << 30);
    CHECK(mk_conf_parse_size("1T", &u, err, sizeof(err)) == 0 &&
          u == 1ULL << 40);
    CHECK(mk_conf_parse_size("0", &u, err, sizeof(err)) == 0 && u == 0);
    CHECK(mk_conf_parse_size("-1", &u, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"-1\" is not a size (e.g. 512, 64K, 8M, 2G)");
    CHECK(mk_conf_parse_size("16777216T", &u, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"16777216T\" is too large");
    CHECK(mk_conf_parse_size("99999999999999999999", &u, err,
                             sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"99999999999999999999\" is too large");
    CHECK(mk_conf_parse_size("1.5M", &u, err, sizeof(err)) == -1);
    CHECK(mk_conf_parse_size("K", &u, err, sizeof(err)) == -1);
    CHECK(mk_conf_parse_size("", &u, err, sizeof(err)) == -1);

    CHECK(mk_conf_parse_time("250ms", &u, err, sizeof(err)) == 0 &&
          u == 250);
    CHECK(mk_conf_parse_time("30s", &u, err, sizeof(err)) == 0 &&
          u == 30000);
    CHECK(mk_conf_parse_time("5m", &u, err, sizeof(err)) == 0 &&
          u == 300000);
    CHECK(mk_conf_parse_time("1h", &u, err, sizeof(err)) == 0 &&
          u == 3600000);
    CHECK(mk_conf_parse_time("7", &u, err, sizeof(err)) == 0 && u == 7000);
    CHECK(mk_conf_parse_time("0", &u, err, sizeof(err)) == 0 && u == 0);
    CHECK(mk_conf_parse_time("5x", &u, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"5x\" is not a time (e.g. 250ms, 30s, 5m, 1h; "
                 "bare = seconds)");
    CHECK(mk_conf_parse_time("18446744073709551615", &u, err,
                             sizeof(err)) == -1);
    CHECK_EQ_STR(err, "\"18446744073709551615\" is too large");
}

/* ---- Schema ------------------------------------------------------------ */

struct ports {
    int count;
    int port[8];
};

/* "[ADDR:]PORT", as a Listen parser would be. */
static int parse_port(const char *value, void *field, char *e, size_t elen)
{
    struct ports *p = field;
    const char *colon = strrchr(value, ':');
    long long n;

    if (mk_conf_parse_int(colon != NULL ? colon + 1 : value, 0, 0, &n, e,
                          elen) != 0) {
        return -1;
    }
    if (n < 1 || n > 65535) {
        snprintf(e, elen, "port %lld out of range 1..65535", n);
        return -1;
    }
    if (p->count == 8) {
        snprintf(e, elen, "too many ports");
        return -1;
    }
    p->port[p->count++] = (int) n;
    return 0;
}

struct srv {
    char *name;
    long long workers;
    long long offset;
    int keepalive;
    uint64_t body;
    uint64_t timeout;
    int sched;
    struct mk_conf_list index;
    struct ports listen;
    struct ports admin;
    char *user;
};

static const struct mk_conf_key srv_keys[] = {
    MK_CONF_STR("Name", struct srv, name, "tremolo"),
    MK_CONF_INT("Workers", struct srv, workers, "0", 0, 1024),
    MK_CONF_INT("Offset", struct srv, offset, "-5", -10, 10),
    MK_CONF_BOOL("KeepAlive", struct srv, keepalive, "on"),
    MK_CONF_SIZE("MaxRequestBody", struct srv, body, "16M", 512, 1LL << 30),
    MK_CONF_TIME("Timeout", struct srv, timeout, "5s", 100, 0),
    MK_CONF_ENUM("Scheduler", struct srv, sched, "reuseport",
                 "reuseport|fair"),
    MK_CONF_LIST("IndexFiles", struct srv, index),
    MK_CONF_CUSTOM("Listen", struct srv, listen, "2001", parse_port,
                   MK_CONF_MULTI),
    MK_CONF_CUSTOM("Admin", struct srv, admin, NULL, parse_port, 0),
    { "User", MK_CONF_T_STR, offsetof(struct srv, user), NULL, 0, 0, NULL,
      NULL, MK_CONF_REQUIRED },
    MK_CONF_END
};

/* Applies the first section of `text` to a fresh struct srv. */
static int apply(const char *text, struct srv *out)
{
    struct mk_rconf *c = parse(text);
    int ret;

    memset(out, 0, sizeof(*out));
    if (c == NULL) {
        fprintf(stderr, "parse error: %s\n", err);
        return -2;
    }
    ret = mk_conf_apply(nth(c, 0), srv_keys, out, err, sizeof(err));
    mk_rconf_destroy(c);
    return ret;
}

static void expect_apply_error(const char *text, const char *msg)
{
    struct srv s;

    CHECK_EQ_INT(apply(text, &s), -1);
    CHECK_EQ_STR(err, msg);
    /* apply released what it had allocated: the struct is clean again. */
    CHECK(s.name == NULL && s.user == NULL && s.index.count == 0 &&
          s.index.values == NULL);
    mk_conf_release(srv_keys, &s);
}

MK_TEST(schema_defaults)
{
    struct srv s;

    CHECK_EQ_INT(apply("[SERVER]\n    User www\n", &s), 0);
    CHECK_EQ_STR(s.name, "tremolo");
    CHECK_EQ_INT(s.workers, 0);
    CHECK_EQ_INT(s.offset, -5);
    CHECK_EQ_INT(s.keepalive, 1);
    CHECK(s.body == 16ULL << 20);
    CHECK(s.timeout == 5000);
    CHECK_EQ_INT(s.sched, 0);
    CHECK_EQ_INT(s.index.count, 0);
    CHECK_EQ_INT(s.listen.count, 1);
    CHECK_EQ_INT(s.listen.port[0], 2001);
    CHECK_EQ_INT(s.admin.count, 0);
    CHECK_EQ_STR(s.user, "www");
    mk_conf_release(srv_keys, &s);
    CHECK(s.name == NULL && s.user == NULL);

    /* No section: defaults only, and a required key is reported bare. */
    memset(&s, 0, sizeof(s));
    CHECK_EQ_INT(mk_conf_apply(NULL, srv_keys, &s, err, sizeof(err)), -1);
    CHECK_EQ_STR(err, "User is required");
    CHECK(s.name == NULL);
    memset(&s, 0, sizeof(s));
    CHECK_EQ_INT(mk_conf_apply(NULL, srv_keys + 10, &s, err, sizeof(err)),
                 -1);
    CHECK_EQ_INT(mk_conf_apply(NULL, srv_keys + 11, &s, err, sizeof(err)), 0);
}

MK_TEST(schema_values)
{
    struct srv s;
    int ret = apply("[server]\n"
                    "    name  \"quoted name\"\n"
                    "    WORKERS 16\n"
                    "    Offset -10\n"
                    "    keepalive OFF\n"
                    "    MaxRequestBody 64k\n"
                    "    Timeout 250ms\n"
                    "    Scheduler FAIR\n"
                    "    IndexFiles index.html\n"
                    "    Listen 127.0.0.1:80\n"
                    "    IndexFiles index.htm\n"
                    "    Listen [::1]:8080\n"
                    "    Admin 9000\n"
                    "    User\n", &s);

    CHECK_EQ_INT(ret, 0);
    if (ret != 0) {
        fprintf(stderr, "error: %s\n", err);
        return;
    }
    CHECK_EQ_STR(s.name, "\"quoted name\"");
    CHECK_EQ_INT(s.workers, 16);
    CHECK_EQ_INT(s.offset, -10);
    CHECK_EQ_INT(s.keepalive, 0);
    CHECK(s.body == 65536);
    CHECK(s.timeout == 250);
    CHECK_EQ_INT(s.sched, 1);
    CHECK_EQ_INT(s.index.count, 2);
    CHECK_EQ_STR(s.index.values[0], "index.html");
    CHECK_EQ_STR(s.index.values[1], "index.htm");
    CHECK_EQ_STR(s.index.files[1], "x.conf");
    CHECK_EQ_INT(s.index.lines[0], 9);
    CHECK_EQ_INT(s.index.lines[1], 11);
    /* A configured custom key does not get its default as well. */
    CHECK_EQ_INT(s.listen.count, 2);
    CHECK_EQ_INT(s.listen.port[0], 80);
    CHECK_EQ_INT(s.listen.port[1], 8080);
    CHECK_EQ_INT(s.admin.count, 1);
    CHECK_EQ_STR(s.user, "");
    mk_conf_release(srv_keys, &s);
    CHECK(s.index.count == 0 && s.index.values == NULL);
}

MK_TEST(schema_list_growth)
{
    static const struct mk_conf_key keys[] = {
        MK_CONF_LIST("Item", struct srv, index),
        MK_CONF_END
    };
    char text[64 * 16];
    struct mk_rconf *c;
    struct srv s;
    size_t n = 0;
    int i;

    n += (size_t) snprintf(text, sizeof(text), "[L]\n");
    for (i = 0; i < 40; i++) {
        n += (size_t) snprintf(text + n, sizeof(text) - n, " Item v%d\n", i);
    }
    c = parse(text);
    CHECK(c != NULL);
    memset(&s, 0, sizeof(s));
    CHECK_EQ_INT(mk_conf_apply(nth(c, 0), keys, &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(s.index.count, 40);
    CHECK_EQ_STR(s.index.values[39], "v39");
    CHECK_EQ_INT(s.index.lines[39], 41);
    mk_conf_release(keys, &s);
    mk_rconf_destroy(c);
}

MK_TEST(schema_errors)
{
    expect_apply_error("[SERVER]\n User a\n Workers abc\n",
                       "x.conf:3: Workers: \"abc\" is not a whole number");
    expect_apply_error("[SERVER]\n User a\n Workers 2000\n",
                       "x.conf:3: Workers: 2000 out of range 0..1024");
    expect_apply_error("[SERVER]\n User a\n Workers -1\n",
                       "x.conf:3: Workers: -1 out of range 0..1024");
    expect_apply_error("[SERVER]\n User a\n Offset -11\n",
                       "x.conf:3: Offset: -11 out of range -10..10");
    expect_apply_error("[SERVER]\n User a\n KeepAlive maybe\n",
                       "x.conf:3: KeepAlive: \"maybe\" is not a boolean "
                       "(on/off, yes/no, true/false, 1/0)");
    expect_apply_error("[SERVER]\n User a\n MaxRequestBody 2G\n",
                       "x.conf:3: MaxRequestBody: 2G out of range "
                       "512..1G");
    expect_apply_error("[SERVER]\n User a\n MaxRequestBody 100\n",
                       "x.conf:3: MaxRequestBody: 100 out of range "
                       "512..1G");
    expect_apply_error("[SERVER]\n User a\n Timeout 50ms\n",
                       "x.conf:3: Timeout: 50ms is below the minimum 100ms");
    expect_apply_error("[SERVER]\n User a\n Timeout soon\n",
                       "x.conf:3: Timeout: \"soon\" is not a time (e.g. "
                       "250ms, 30s, 5m, 1h; bare = seconds)");
    expect_apply_error("[SERVER]\n User a\n Scheduler rr\n",
                       "x.conf:3: Scheduler: \"rr\" is not one of "
                       "reuseport|fair");
    expect_apply_error("[SERVER]\n User a\n\n Listen 70000\n",
                       "x.conf:4: Listen: port 70000 out of range 1..65535");
    expect_apply_error("[SERVER]\n User a\n IndexFiles a\n Wrokers 1\n",
                       "x.conf:4: Wrokers: unknown key in [SERVER]");
    expect_apply_error("[LOCATION /img]\n Wrokers 1\n",
                       "x.conf:2: Wrokers: unknown key in "
                       "[LOCATION /img]");
    expect_apply_error("[SERVER]\n User a\n\n Workers 1\n Name n\n\n\n\n"
                       " workers 2\n",
                       "x.conf:9: Workers: given twice (first at line 4)");
    expect_apply_error("[SERVER]\n User a\n Admin 1\n Admin 2\n",
                       "x.conf:4: Admin: given twice (first at line 3)");
    expect_apply_error("\n[SERVER]\n Name n\n IndexFiles a\n",
                       "x.conf:2: [SERVER]: User is required");
}

MK_TEST(schema_bad_default)
{
    static const struct mk_conf_key keys[] = {
        MK_CONF_STR("Name", struct srv, name, "n"),
        MK_CONF_INT("Workers", struct srv, workers, "many", 0, 0),
        MK_CONF_END
    };
    struct srv s;

    memset(&s, 0, sizeof(s));
    CHECK_EQ_INT(mk_conf_apply(NULL, keys, &s, err, sizeof(err)), -1);
    CHECK_EQ_STR(err, "Workers: default \"many\": \"many\" is not a whole "
                 "number");
    CHECK(s.name == NULL);
}

/* ---- #line: a generated file names its source --------------------------- */

MK_TEST(line_directive)
{
    struct mk_rconf *c = parse("# generated\n"
                               "#line 7 \"/etc/bb.ini\"\n"
                               "[SERVER]\n"
                               "    Listen 80\n"
                               "#line 12 \"/etc/bb.ini\"\n"
                               "    Workers 2\n"
                               "#liner is a comment\n"
                               "#line is a comment too\n"
                               "    User x\n");
    struct mk_rconf_section *s;
    struct mk_rconf_entry *e;

    CHECK(c != NULL);
    if (!c) {
        return;
    }
    s = nth(c, 0);
    CHECK_EQ_STR(s->file, "/etc/bb.ini");
    CHECK_EQ_INT(s->line, 7);
    e = mk_list_entry(s->entries.next, struct mk_rconf_entry, _head);
    CHECK_EQ_STR(e->file, "/etc/bb.ini");
    CHECK_EQ_INT(e->line, 8);
    e = mk_list_entry(e->_head.next, struct mk_rconf_entry, _head);
    CHECK_EQ_INT(e->line, 12);
    e = mk_list_entry(e->_head.next, struct mk_rconf_entry, _head);
    CHECK_EQ_STR(e->key, "User");
    CHECK_EQ_INT(e->line, 15);
    /* the same name is interned once however often it is repeated */
    CHECK(s->file == e->file);
    mk_rconf_destroy(c);

    /* a schema error names the ini file and line */
    EXPECT_PARSE_ERROR("#line 3 \"bb.ini\"\nWorkers 2\n",
                       "bb.ini:3: expected a [SECTION] header or an indented "
                       "entry");
    EXPECT_PARSE_ERROR("[A]\n#line 3 bb.ini\n",
                       "x.conf:2: expected #line N \"FILE\"");
    EXPECT_PARSE_ERROR("#line 0 \"a\"\n", "x.conf:1: expected #line N \"FILE\"");
    EXPECT_PARSE_ERROR("#line 3 \"\"\n", "x.conf:1: expected #line N \"FILE\"");
    EXPECT_PARSE_ERROR("#line 3 \"a\" x\n",
                       "x.conf:1: expected #line N \"FILE\"");
    EXPECT_PARSE_ERROR("#line 99999999999 \"a\"\n",
                       "x.conf:1: expected #line N \"FILE\"");
}

int main(void)
{
    RUN(open_main_with_includes);
    RUN(parse_from_memory);
    RUN(include_depth);
    RUN(reader_errors);
    RUN(value_parsers);
    RUN(schema_defaults);
    RUN(schema_values);
    RUN(schema_list_growth);
    RUN(schema_errors);
    RUN(schema_bad_default);
    RUN(line_directive);
    return mk_test_done();
}
