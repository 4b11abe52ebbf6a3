/* Unit tests for the pure parts of the static handler: Range parsing,
 * entity tags and preconditions, confined open, configuration, and the
 * per-worker small-file cache. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_test.h"
#include "mk_server/mk_http_date.h"
#include "mk_core/mk_rconf.h"
#include "mk_server/mk_static.h"
#include "mk_server/mk_static_priv.h"

static struct mk_ptr P(const char *s)
{
    return mk_ptr_make(s, strlen(s));
}

/* ---- Range -------------------------------------------------------------- */

struct range_case {
    const char *value;
    uint64_t size;
    enum mk_static_range_result want;
    uint64_t first, last;
};

static const struct range_case range_cases[] = {
    { "bytes=0-0",            100, MK_RANGE_OK, 0, 0 },
    { "bytes=0-99",           100, MK_RANGE_OK, 0, 99 },
    { "bytes=10-19",          100, MK_RANGE_OK, 10, 19 },
    { "bytes=10-",            100, MK_RANGE_OK, 10, 99 },
    { "bytes=90-200",         100, MK_RANGE_OK, 90, 99 },   /* clamped */
    { "bytes=-10",            100, MK_RANGE_OK, 90, 99 },
    { "bytes=-100",           100, MK_RANGE_OK, 0, 99 },
    { "bytes=-500",           100, MK_RANGE_OK, 0, 99 },
    { "BYTES=1-2",            100, MK_RANGE_OK, 1, 2 },      /* unit: nocase */
    { "  bytes=1-2  ",        100, MK_RANGE_OK, 1, 2 },
    { "bytes= 1-2 ",          100, MK_RANGE_OK, 1, 2 },      /* OWS in list */
    { "bytes=,1-2,",          100, MK_RANGE_OK, 1, 2 },      /* empty elems */
    { "bytes=0-18446744073709551615", 100, MK_RANGE_OK, 0, 99 },
    { "bytes=5-99999999999999999999999", 100, MK_RANGE_OK, 5, 99 },
    { "bytes=-99999999999999999999999", 100, MK_RANGE_OK, 0, 99 },
    /* unsatisfiable */
    { "bytes=100-",           100, MK_RANGE_UNSATISFIABLE, 0, 0 },
    { "bytes=100-200",        100, MK_RANGE_UNSATISFIABLE, 0, 0 },
    { "bytes=-0",             100, MK_RANGE_UNSATISFIABLE, 0, 0 },
    { "bytes=99999999999999999999999-", 100, MK_RANGE_UNSATISFIABLE, 0, 0 },
    { "bytes=18446744073709551615-", 100, MK_RANGE_UNSATISFIABLE, 0, 0 },
    /* ignored: malformed, other units, several ranges, empty file */
    { "bytes=5-1",            100, MK_RANGE_NONE, 0, 0 },
    { "bytes=-",              100, MK_RANGE_NONE, 0, 0 },
    { "bytes=",               100, MK_RANGE_NONE, 0, 0 },
    { "bytes=,",              100, MK_RANGE_NONE, 0, 0 },
    { "bytes",                100, MK_RANGE_NONE, 0, 0 },
    { "bytes=abc",            100, MK_RANGE_NONE, 0, 0 },
    { "bytes=1-2-3",          100, MK_RANGE_NONE, 0, 0 },
    { "bytes=1 - 2",          100, MK_RANGE_NONE, 0, 0 },
    { "bytes=+1-2",           100, MK_RANGE_NONE, 0, 0 },
    { "bytes=0x1-2",          100, MK_RANGE_NONE, 0, 0 },
    { "bytes=1-2x",           100, MK_RANGE_NONE, 0, 0 },
    { "bytes=--1",            100, MK_RANGE_NONE, 0, 0 },
    { "bytes = 1-2",          100, MK_RANGE_NONE, 0, 0 },
    { "items=1-2",            100, MK_RANGE_NONE, 0, 0 },
    { "bytes=0-1,5-6",        100, MK_RANGE_NONE, 0, 0 },
    { "bytes=0-1, -5",        100, MK_RANGE_NONE, 0, 0 },
    { "bytes=200-300,0-1",    100, MK_RANGE_NONE, 0, 0 },
    { "bytes=0-0",            0,   MK_RANGE_NONE, 0, 0 },
    { "bytes=-5",             0,   MK_RANGE_NONE, 0, 0 },
    { "",                     100, MK_RANGE_NONE, 0, 0 },
};

MK_TEST(range_table)
{
    size_t i;
    uint64_t first, last;
    enum mk_static_range_result got;

    for (i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
        const struct range_case *c = &range_cases[i];

        first = last = 7777;
        got = mk_static_range_parse(P(c->value), c->size, &first, &last);
        if (got != c->want) {
            fprintf(stderr, "range \"%s\" size %llu: got %d want %d\n",
                    c->value, (unsigned long long) c->size, got, c->want);
        }
        CHECK_EQ_INT(got, c->want);
        if (c->want == MK_RANGE_OK) {
            CHECK_EQ_INT(first, c->first);
            CHECK_EQ_INT(last, c->last);
        }
    }
    CHECK_EQ_INT(mk_static_range_parse(MK_PTR_NONE, 100, &first, &last),
                 MK_RANGE_NONE);
    /* A value that is not NUL-terminated must not be read past its end. */
    CHECK_EQ_INT(mk_static_range_parse(mk_ptr_make("bytes=1-29", 9), 100,
                                       &first, &last), MK_RANGE_OK);
    CHECK_EQ_INT(last, 2);
}

/* ---- Entity tags and preconditions -------------------------------------- */

MK_TEST(etag_format)
{
    char etag[MK_STATIC_ETAG_MAX];
    size_t n = mk_static_etag_format(etag, 0x5f5e100, 0x1234);

    CHECK_EQ_MEM(etag, n, "\"5f5e100-1234\"");
    n = mk_static_etag_format(etag, (time_t) INT64_MAX, UINT64_MAX);
    CHECK_EQ_MEM(etag, n, "\"7fffffffffffffff-ffffffffffffffff\"");
}

MK_TEST(etag_match)
{
    const char *e = "\"abc-10\"";
    size_t el = strlen(e);

    CHECK(mk_static_etag_match(P("\"abc-10\""), e, el, 1));
    CHECK(mk_static_etag_match(P("\"abc-10\""), e, el, 0));
    CHECK(mk_static_etag_match(P("*"), e, el, 1));
    CHECK(mk_static_etag_match(P(" * "), e, el, 0));
    CHECK(mk_static_etag_match(P("W/\"abc-10\""), e, el, 1));
    CHECK(!mk_static_etag_match(P("W/\"abc-10\""), e, el, 0));   /* strong */
    CHECK(mk_static_etag_match(P("\"x\", \"abc-10\""), e, el, 1));
    CHECK(mk_static_etag_match(P("\"x\",W/\"abc-10\" ,\"y\""), e, el, 1));
    CHECK(mk_static_etag_match(P(" ,, \"abc-10\" ,"), e, el, 1));
    /* a comma inside a quoted tag is part of the tag */
    CHECK(!mk_static_etag_match(P("\"abc,\"abc-10\""), e, el, 1));
    CHECK(mk_static_etag_match(P("\"a,b\", \"abc-10\""), e, el, 1));
    CHECK(!mk_static_etag_match(P("\"abc-1\""), e, el, 1));
    CHECK(!mk_static_etag_match(P("\"abc-100\""), e, el, 1));
    CHECK(!mk_static_etag_match(P("abc-10"), e, el, 1));          /* unquoted */
    CHECK(!mk_static_etag_match(P("\"abc-10"), e, el, 1));        /* open */
    CHECK(!mk_static_etag_match(P("w/\"abc-10\""), e, el, 1));    /* W is case */
    CHECK(!mk_static_etag_match(P("\"x\" junk, \"abc-10\""), e, el, 1));
    CHECK(!mk_static_etag_match(P("**"), e, el, 1));
    CHECK(!mk_static_etag_match(P("\"*\""), e, el, 1));
    CHECK(!mk_static_etag_match(P(""), e, el, 1));
    CHECK(!mk_static_etag_match(MK_PTR_NONE, e, el, 1));
}

#define T_MTIME  784111777   /* Sun, 06 Nov 1994 08:49:37 GMT */

MK_TEST(preconditions)
{
    const char *e = "\"abc-10\"";
    size_t el = strlen(e);
    struct mk_static_cond c;

#define COND(im, ius, inm, ims) \
    (c.if_match = (im), c.if_unmodified_since = (ius), \
     c.if_none_match = (inm), c.if_modified_since = (ims), \
     mk_static_cond_eval(&c, T_MTIME, e, el))
#define N MK_PTR_NONE

    CHECK_EQ_INT(COND(N, N, N, N), 0);
    /* If-None-Match */
    CHECK_EQ_INT(COND(N, N, P("\"abc-10\""), N), 304);
    CHECK_EQ_INT(COND(N, N, P("W/\"abc-10\""), N), 304);
    CHECK_EQ_INT(COND(N, N, P("*"), N), 304);
    CHECK_EQ_INT(COND(N, N, P("\"other\""), N), 0);
    /* If-Modified-Since: not modified when mtime <= date */
    CHECK_EQ_INT(COND(N, N, N, P("Sun, 06 Nov 1994 08:49:37 GMT")), 304);
    CHECK_EQ_INT(COND(N, N, N, P("Sun, 06 Nov 1994 08:49:38 GMT")), 304);
    CHECK_EQ_INT(COND(N, N, N, P("Sun, 06 Nov 1994 08:49:36 GMT")), 0);
    CHECK_EQ_INT(COND(N, N, N, P("Sunday, 06-Nov-94 08:49:37 GMT")), 304);
    CHECK_EQ_INT(COND(N, N, N, P("Sun Nov  6 08:49:37 1994")), 304);
    CHECK_EQ_INT(COND(N, N, N, P("yesterday")), 0);      /* bad date ignored */
    /* If-None-Match wins over If-Modified-Since, whatever the date says */
    CHECK_EQ_INT(COND(N, N, P("\"other\""),
                      P("Sun, 06 Nov 1994 08:49:37 GMT")), 0);
    CHECK_EQ_INT(COND(N, N, P("\"abc-10\""),
                      P("Sun, 06 Nov 1994 08:49:36 GMT")), 304);
    /* empty values count as absent */
    CHECK_EQ_INT(COND(N, N, P(""), P("Sun, 06 Nov 1994 08:49:37 GMT")), 304);
    /* If-Match: strong, 412 on mismatch, checked first */
    CHECK_EQ_INT(COND(P("\"abc-10\""), N, N, N), 0);
    CHECK_EQ_INT(COND(P("*"), N, N, N), 0);
    CHECK_EQ_INT(COND(P("\"zzz\""), N, N, N), 412);
    CHECK_EQ_INT(COND(P("W/\"abc-10\""), N, N, N), 412);
    CHECK_EQ_INT(COND(P("\"zzz\""), N, P("\"abc-10\""), N), 412);
    CHECK_EQ_INT(COND(P("\"abc-10\""), N, P("\"abc-10\""), N), 304);
    /* If-Unmodified-Since: only without If-Match */
    CHECK_EQ_INT(COND(N, P("Sun, 06 Nov 1994 08:49:36 GMT"), N, N), 412);
    CHECK_EQ_INT(COND(N, P("Sun, 06 Nov 1994 08:49:37 GMT"), N, N), 0);
    CHECK_EQ_INT(COND(P("\"abc-10\""),
                      P("Sun, 06 Nov 1994 08:49:36 GMT"), N, N), 0);
    CHECK_EQ_INT(COND(N, P("garbage"), N, N), 0);
#undef COND
#undef N
}

MK_TEST(if_range)
{
    const char *e = "\"abc-10\"";
    size_t el = strlen(e);

    CHECK(mk_static_if_range_match(P("\"abc-10\""), T_MTIME, e, el));
    CHECK(mk_static_if_range_match(P(" \"abc-10\" "), T_MTIME, e, el));
    CHECK(!mk_static_if_range_match(P("W/\"abc-10\""), T_MTIME, e, el));
    CHECK(!mk_static_if_range_match(P("\"abc-11\""), T_MTIME, e, el));
    CHECK(!mk_static_if_range_match(P("\"abc-10\", \"x\""), T_MTIME, e, el));
    CHECK(mk_static_if_range_match(P("Sun, 06 Nov 1994 08:49:37 GMT"),
                                   T_MTIME, e, el));
    /* a date that starts with W is still a date */
    CHECK(mk_static_if_range_match(P("Wed, 09 Nov 1994 08:49:37 GMT"),
                                   T_MTIME + 3 * 86400, e, el));
    CHECK(!mk_static_if_range_match(P("Sun, 06 Nov 1994 08:49:38 GMT"),
                                    T_MTIME, e, el));
    CHECK(!mk_static_if_range_match(P("not a date"), T_MTIME, e, el));
    CHECK(!mk_static_if_range_match(P(""), T_MTIME, e, el));
}

/* ---- Confined open ------------------------------------------------------ */

static char tmp_base[PATH_MAX / 2];
static char tmp_root[PATH_MAX];

static void write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd >= 0) {
        if (write(fd, data, strlen(data)) < 0) {
            perror(path);
        }
        close(fd);
    }
}

static void make_tree(void)
{
    char p[PATH_MAX * 2], q[PATH_MAX * 2];

    strcpy(tmp_base, "/tmp/mk_static_test.XXXXXX");
    if (mkdtemp(tmp_base) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    /* the fallback compares real paths: /tmp may itself be a symlink */
    if (realpath(tmp_base, q) == NULL || strlen(q) >= sizeof(tmp_base)) {
        perror("realpath");
        exit(1);
    }
    strcpy(tmp_base, q);
    snprintf(tmp_root, sizeof(tmp_root), "%s/root", tmp_base);
    mkdir(tmp_root, 0755);
    snprintf(p, sizeof(p), "%s/sub", tmp_root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/empty", tmp_root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/a.txt", tmp_root);
    write_file(p, "hello");
    snprintf(p, sizeof(p), "%s/sub/b.html", tmp_root);
    write_file(p, "<p>b</p>");
    snprintf(p, sizeof(p), "%s/outside.txt", tmp_base);
    write_file(p, "secret");

    snprintf(p, sizeof(p), "%s/link_in", tmp_root);
    CHECK(symlink("sub/b.html", p) == 0);
    snprintf(p, sizeof(p), "%s/sub/link_up", tmp_root);
    CHECK(symlink("../a.txt", p) == 0);
    snprintf(p, sizeof(p), "%s/escape", tmp_root);
    CHECK(symlink("../outside.txt", p) == 0);
    snprintf(p, sizeof(p), "%s/escape_abs", tmp_root);
    snprintf(q, sizeof(q), "%s/outside.txt", tmp_base);
    CHECK(symlink(q, p) == 0);
    snprintf(p, sizeof(p), "%s/escape_dir", tmp_root);
    CHECK(symlink("..", p) == 0);
    snprintf(p, sizeof(p), "%s/sub/escape_deep", tmp_root);
    CHECK(symlink("../../outside.txt", p) == 0);
    snprintf(p, sizeof(p), "%s/fifo", tmp_root);
    CHECK(mkfifo(p, 0644) == 0);
}

static void remove_tree(void)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_base);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmp_base);
    }
}

/* Opens and reads up to 31 bytes; returns -errno on open failure. */
static int open_read(const struct mk_static_root *root, const char *rel,
                     int mode, char *out)
{
    int fd = mk_static_open(root, rel, mode);
    ssize_t n;

    out[0] = '\0';
    if (fd < 0) {
        return fd;
    }
    n = read(fd, out, 31);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return 0;
}

static void check_confinement(int mode)
{
    struct mk_static_root root = { tmp_root, -1, 0 };
    char err[256], buf[32];
    int fd;

    CHECK_EQ_INT(mk_static_root_open(&root, tmp_root, err, sizeof(err)), 0);
    CHECK_EQ_INT(open_read(&root, "a.txt", mode, buf), 0);
    CHECK_EQ_STR(buf, "hello");
    CHECK_EQ_INT(open_read(&root, "/a.txt", mode, buf), 0);  /* slash cut */
    CHECK_EQ_INT(open_read(&root, "sub/b.html", mode, buf), 0);
    CHECK_EQ_STR(buf, "<p>b</p>");
    /* symlinks that stay inside work */
    CHECK_EQ_INT(open_read(&root, "link_in", mode, buf), 0);
    CHECK_EQ_STR(buf, "<p>b</p>");
    CHECK_EQ_INT(open_read(&root, "sub/link_up", mode, buf), 0);
    CHECK_EQ_STR(buf, "hello");
    /* escapes are refused and read nothing */
    CHECK_EQ_INT(open_read(&root, "escape", mode, buf), -EXDEV);
    CHECK_EQ_STR(buf, "");
    CHECK_EQ_INT(open_read(&root, "escape_abs", mode, buf), -EXDEV);
    CHECK_EQ_INT(open_read(&root, "escape_dir/outside.txt", mode, buf),
                 -EXDEV);
    CHECK_EQ_INT(open_read(&root, "sub/escape_deep", mode, buf), -EXDEV);
    CHECK_EQ_INT(open_read(&root, "../outside.txt", mode, buf), -EXDEV);
    /* plain failures */
    CHECK_EQ_INT(open_read(&root, "missing", mode, buf), -ENOENT);
    CHECK_EQ_INT(open_read(&root, "a.txt/x", mode, buf), -ENOTDIR);
    /* the root itself and a directory open fine */
    fd = mk_static_open(&root, "", mode);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
    }
    fd = mk_static_open(&root, "sub/", mode);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
    }
    /* a FIFO opens without blocking (the handler then refuses it) */
    fd = mk_static_open(&root, "fifo", mode);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
    }
    mk_static_root_close(&root);
    CHECK_EQ_INT(root.fd, -1);
}

MK_TEST(confinement_openat2)
{
    check_confinement(MK_STATIC_OPEN_AUTO);
}

MK_TEST(confinement_fallback)
{
    check_confinement(MK_STATIC_OPEN_FALLBACK);
}

MK_TEST(fallback_without_path_refuses)
{
    struct mk_static_root root = { NULL, -1, 0 };
    char err[256];

    const char *saved;

    CHECK_EQ_INT(mk_static_root_open(&root, tmp_root, err, sizeof(err)), 0);
    CHECK(root.path != NULL && strcmp(root.path, tmp_root) == 0);
    CHECK(root.path != tmp_root);                   /* a copy */
    saved = root.path;
    root.path = NULL;
    /* no realpath to compare with: fail closed */
    CHECK_EQ_INT(mk_static_open(&root, "a.txt", MK_STATIC_OPEN_FALLBACK),
                 -EXDEV);
    root.path = saved;
    mk_static_root_close(&root);
    CHECK(root.path == NULL);
}

MK_TEST(symlinks_outside_allowed)
{
    struct mk_static_root root = { tmp_root, -1, 1 };
    char err[256], buf[32];

    CHECK_EQ_INT(mk_static_root_open(&root, tmp_root, err, sizeof(err)), 0);
    CHECK_EQ_INT(open_read(&root, "escape", MK_STATIC_OPEN_AUTO, buf), 0);
    CHECK_EQ_STR(buf, "secret");
    CHECK_EQ_INT(open_read(&root, "escape_abs", MK_STATIC_OPEN_AUTO, buf), 0);
    CHECK_EQ_STR(buf, "secret");
    mk_static_root_close(&root);
}

MK_TEST(root_open_errors)
{
    struct mk_static_root root = { "/nonexistent", -1, 0 };
    char err[256] = "", p[PATH_MAX * 2];

    CHECK_EQ_INT(mk_static_root_open(&root, "/nonexistent/x", err,
                                     sizeof(err)), -1);
    CHECK(strstr(err, "/nonexistent/x") != NULL);
    snprintf(p, sizeof(p), "%s/a.txt", tmp_root);
    CHECK_EQ_INT(mk_static_root_open(&root, p, err, sizeof(err)), -1);
    CHECK(root.fd == -1 && root.path == NULL);
}

MK_TEST(root_is_slash)
{
    struct mk_static_root root = { "/", -1, 0 };
    char err[256], buf[32], rel[PATH_MAX * 2];

    CHECK_EQ_INT(mk_static_root_open(&root, "/", err, sizeof(err)), 0);
    snprintf(rel, sizeof(rel), "%s/a.txt", tmp_root + 1);
    CHECK_EQ_INT(open_read(&root, rel, MK_STATIC_OPEN_FALLBACK, buf), 0);
    CHECK_EQ_STR(buf, "hello");
    mk_static_root_close(&root);
}

/* ---- Configuration ------------------------------------------------------ */

MK_TEST(conf_init)
{
    struct mk_static_conf sc;
    char *vals[] = { "index.html index.htm", " default.htm,home.html " };
    char *bad[] = { "sub/index.html" };
    struct mk_conf_list list = { 2, vals, NULL, NULL };
    struct mk_conf_list badlist = { 1, bad, NULL, NULL };
    char err[256] = "";

    CHECK_EQ_INT(mk_static_conf_init(&sc, "../../conf/mime.types", &list,
                                     err, sizeof(err)), 0);
    CHECK_EQ_INT(sc.index_count, 4);
    if (sc.index_count == 4) {
        CHECK_EQ_STR(sc.index_files[0], "index.html");
        CHECK_EQ_STR(sc.index_files[1], "index.htm");
        CHECK_EQ_STR(sc.index_files[2], "default.htm");
        CHECK_EQ_STR(sc.index_files[3], "home.html");
    }
    CHECK_EQ_STR(mk_mime_lookup(sc.mime, "a.png"), "image/png");
    mk_static_conf_release(&sc);
    CHECK(sc.mime == NULL && sc.index_files == NULL);

    CHECK_EQ_INT(mk_static_conf_init(&sc, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ_INT(sc.index_count, 1);
    CHECK_EQ_STR(sc.index_files[0], "index.html");
    CHECK_EQ_STR(mk_mime_lookup(sc.mime, "a.css"), "text/css");
    mk_static_conf_release(&sc);

    CHECK_EQ_INT(mk_static_conf_init(&sc, NULL, &badlist, err, sizeof(err)),
                 -1);
    CHECK(strstr(err, "sub/index.html") != NULL);
    CHECK_EQ_INT(mk_static_conf_init(&sc, "/nonexistent.types", &list,
                                     err, sizeof(err)), -1);
    CHECK(strstr(err, "/nonexistent.types") != NULL);
}

/* ---- Small-file cache --------------------------------------------------- */

/* Makes a file look old enough to cache (recent files are not cached). */
static void age_file(const char *path, time_t mtime)
{
    struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };

    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static struct mk_static_file file_from(const struct stat *st,
                                       const char *data, const char *type)
{
    struct mk_static_file f;

    memset(&f, 0, sizeof(f));
    f.fd = -1;
    f.data = data;
    f.size = (uint64_t) st->st_size;
    f.mtime = st->st_mtime;
    f.content_type = type;
    f.etag_len = mk_static_etag_format(f.etag, f.mtime, f.size);
    mk_http_date_format(f.mtime, f.last_modified);
    return f;
}

MK_TEST(cache_hit_and_revalidate)
{
    struct mk_static_root root = { tmp_root, -1, 0 };
    struct mk_static_conf sc, other;
    struct mk_static_file f, got;
    struct mk_static_cache_entry *e;
    struct stat st;
    char err[256], p[PATH_MAX * 2];
    time_t old = time(NULL) - 100;

    CHECK_EQ_INT(mk_static_root_open(&root, tmp_root, err, sizeof(err)), 0);
    CHECK_EQ_INT(mk_static_conf_init(&sc, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ_INT(mk_static_conf_init(&other, NULL, NULL, err, sizeof(err)),
                 0);
    snprintf(p, sizeof(p), "%s/c.txt", tmp_root);
    write_file(p, "cached!");
    age_file(p, old);
    CHECK(stat(p, &st) == 0);

    CHECK(mk_static_cache_get(&root, &sc, "c.txt") == NULL);
    f = file_from(&st, "cached!", "text/plain");
    e = mk_static_cache_put(&root, &sc, "c.txt", "c.txt", &st, &f);
    CHECK(e != NULL);
    CHECK_EQ_INT(mk_static_cache_count(), 1);
    CHECK(mk_static_cache_bytes() > 7);
    e = mk_static_cache_get(&root, &sc, "c.txt");
    CHECK(e != NULL);
    if (e != NULL) {
        mk_static_cache_fill(e, &got);
        CHECK_EQ_INT(got.fd, -1);
        CHECK_EQ_MEM(got.data, got.size, "cached!");
        CHECK(got.data != f.data);              /* a copy, not the caller's */
        CHECK_EQ_MEM(got.etag, got.etag_len, f.etag);
        CHECK_EQ_STR(got.content_type, "text/plain");
    }
    /* another conf generation must not see this entry */
    CHECK(mk_static_cache_get(&root, &other, "c.txt") == NULL);
    CHECK_EQ_INT(mk_static_cache_count(), 0);

    e = mk_static_cache_put(&root, &sc, "c.txt", "c.txt", &st, &f);
    CHECK(e != NULL);
    /* change the file (same size), wait out the revalidation interval */
    write_file(p, "CHANGED");
    age_file(p, old + 1);
    CHECK(mk_static_cache_get(&root, &sc, "c.txt") != NULL);  /* < 1 s */
    usleep((MK_STATIC_REVALIDATE_MS + 100) * 1000);
    CHECK(mk_static_cache_get(&root, &sc, "c.txt") == NULL);
    CHECK_EQ_INT(mk_static_cache_count(), 0);

    /* a file modified just now is not cached */
    write_file(p, "fresh");
    CHECK(stat(p, &st) == 0);
    f = file_from(&st, "fresh", "text/plain");
    CHECK(mk_static_cache_put(&root, &sc, "c.txt", "c.txt", &st, &f) == NULL);

    mk_static_worker_exit();
    CHECK_EQ_INT(mk_static_cache_count(), 0);
    mk_static_conf_release(&sc);
    mk_static_conf_release(&other);
    mk_static_root_close(&root);
}

MK_TEST(cache_index_dir_change)
{
    struct mk_static_root root = { tmp_root, -1, 0 };
    struct mk_static_conf sc;
    struct mk_static_file f;
    struct stat st;
    char err[256], p[PATH_MAX * 2];
    time_t old = time(NULL) - 100;

    CHECK_EQ_INT(mk_static_root_open(&root, tmp_root, err, sizeof(err)), 0);
    CHECK_EQ_INT(mk_static_conf_init(&sc, NULL, NULL, err, sizeof(err)), 0);
    snprintf(p, sizeof(p), "%s/empty/index.htm", tmp_root);
    write_file(p, "idx");
    age_file(p, old);
    CHECK(stat(p, &st) == 0);
    f = file_from(&st, "idx", "text/html");
    CHECK(mk_static_cache_put(&root, &sc, "empty/", "empty/index.htm", &st,
                              &f) != NULL);
    CHECK(mk_static_cache_get(&root, &sc, "empty/") != NULL);
    /* a new file in the directory (maybe a preferred index) drops it */
    snprintf(p, sizeof(p), "%s/empty/index.html", tmp_root);
    write_file(p, "new");
    usleep((MK_STATIC_REVALIDATE_MS + 100) * 1000);
    CHECK(mk_static_cache_get(&root, &sc, "empty/") == NULL);
    mk_static_worker_exit();
    mk_static_conf_release(&sc);
    mk_static_root_close(&root);
}

MK_TEST(cache_bounded)
{
    struct mk_static_root root = { tmp_root, -1, 0 };
    struct mk_static_conf sc;
    struct mk_static_file f;
    struct stat st;
    char err[256], p[PATH_MAX * 2], rel[64];
    static char big[MK_STATIC_SMALL_FILE];
    int i, hits = 0;

    CHECK_EQ_INT(mk_static_root_open(&root, tmp_root, err, sizeof(err)), 0);
    CHECK_EQ_INT(mk_static_conf_init(&sc, NULL, NULL, err, sizeof(err)), 0);
    snprintf(p, sizeof(p), "%s/a.txt", tmp_root);
    age_file(p, time(NULL) - 100);
    CHECK(stat(p, &st) == 0);
    memset(big, 'x', sizeof(big));
    /* The entries need not exist on disk: put trusts the caller. Fake a
     * 16 KiB size to fill the byte budget too. */
    st.st_size = sizeof(big);
    f = file_from(&st, big, "text/plain");
    for (i = 0; i < MK_STATIC_CACHE_SLOTS * 3; i++) {
        snprintf(rel, sizeof(rel), "f%d", i);
        CHECK(mk_static_cache_put(&root, &sc, rel, rel, &st, &f) != NULL);
        /* keep f0 hot: CLOCK must spare it */
        if (mk_static_cache_get(&root, &sc, "f0") != NULL) {
            hits++;
        }
    }
    CHECK(mk_static_cache_count() <= MK_STATIC_CACHE_SLOTS);
    CHECK(mk_static_cache_bytes() <= MK_STATIC_CACHE_BYTES);
    CHECK_EQ_INT(hits, MK_STATIC_CACHE_SLOTS * 3);
    /* the newest is there, an old cold one is gone */
    snprintf(rel, sizeof(rel), "f%d", MK_STATIC_CACHE_SLOTS * 3 - 1);
    CHECK(mk_static_cache_get(&root, &sc, rel) != NULL);
    CHECK(mk_static_cache_get(&root, &sc, "f1") == NULL);
    /* a different root fd is a different key */
    {
        struct mk_static_root r2 = { tmp_root, -1, 0 };

        CHECK_EQ_INT(mk_static_root_open(&r2, tmp_root, err, sizeof(err)), 0);
        CHECK(mk_static_cache_get(&r2, &sc, "f0") == NULL);
        mk_static_root_close(&r2);
    }
    mk_static_worker_exit();
    CHECK_EQ_INT(mk_static_cache_bytes(), 0);
    mk_static_conf_release(&sc);
    mk_static_root_close(&root);
}

int main(void)
{
    RUN(range_table);
    RUN(etag_format);
    RUN(etag_match);
    RUN(preconditions);
    RUN(if_range);
    make_tree();
    RUN(confinement_openat2);
    RUN(confinement_fallback);
    RUN(fallback_without_path_refuses);
    RUN(symlinks_outside_allowed);
    RUN(root_open_errors);
    RUN(root_is_slash);
    RUN(conf_init);
    RUN(cache_hit_and_revalidate);
    RUN(cache_index_dir_change);
    RUN(cache_bounded);
    remove_tree();
    return mk_test_done();
}
