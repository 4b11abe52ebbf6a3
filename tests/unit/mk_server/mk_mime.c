/* Unit tests for mk_server/mk_mime.c: mime.types parsing and lookup. */
#include <string.h>

#include "mk_test.h"
#include "mk_server/mk_static.h"
#include "mk_server/mk_static_priv.h"

static const char sample[] =
    "# a comment line\n"
    "   # an indented comment\n"
    "\n"
    "text/html\t\t\t\thtml htm\n"
    "image/PNG png\r\n"
    "application/x-nothing\n"                  /* type without extensions */
    "application/gzip   gz  tgz   \n"
    "application/first dup\n"
    "application/second dup\n"                 /* later lines win */
    "text/plain txt";                          /* no final newline */

MK_TEST(parse_and_lookup)
{
    char err[128] = "";
    struct mk_mime *m = mk_mime_create(sample, sizeof(sample) - 1,
                                       err, sizeof(err));

    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "err: %s\n", err);
        return;
    }
    CHECK_EQ_INT(mk_mime_count(m), 7);
    CHECK_EQ_STR(mk_mime_lookup(m, "index.html"), "text/html");
    CHECK_EQ_STR(mk_mime_lookup(m, "/a/b/INDEX.HTM"), "text/html");
    CHECK_EQ_STR(mk_mime_lookup(m, "x.png"), "image/PNG");
    CHECK_EQ_STR(mk_mime_lookup(m, "a.tar.gz"), "application/gzip");
    CHECK_EQ_STR(mk_mime_lookup(m, "a.tgz"), "application/gzip");
    CHECK_EQ_STR(mk_mime_lookup(m, "z.dup"), "application/second");
    CHECK_EQ_STR(mk_mime_lookup(m, "notes.txt"), "text/plain");
    /* no extension, empty extension, dot only in a directory name */
    CHECK_EQ_STR(mk_mime_lookup(m, "README"), "application/octet-stream");
    CHECK_EQ_STR(mk_mime_lookup(m, "file."), "application/octet-stream");
    CHECK_EQ_STR(mk_mime_lookup(m, "dir.html/file"),
                 "application/octet-stream");
    CHECK_EQ_STR(mk_mime_lookup(m, "a.unknown"), "application/octet-stream");
    /* a dot file is a file with an extension, like nginx */
    CHECK_EQ_STR(mk_mime_lookup(m, ".html"), "text/html");
    CHECK_EQ_STR(mk_mime_lookup(NULL, "a.html"), "application/octet-stream");
    mk_mime_destroy(m);
}

MK_TEST(content_type_charset)
{
    char err[128];
    struct mk_mime *m = mk_mime_create(sample, sizeof(sample) - 1,
                                       err, sizeof(err));

    CHECK(m != NULL);
    if (m == NULL) {
        return;
    }
    CHECK_EQ_STR(mk_mime_content_type(m, "a.html"),
                 "text/html; charset=utf-8");
    CHECK_EQ_STR(mk_mime_content_type(m, "a.txt"),
                 "text/plain; charset=utf-8");
    CHECK_EQ_STR(mk_mime_content_type(m, "a.png"), "image/PNG");
    CHECK_EQ_STR(mk_mime_content_type(m, "a"), "application/octet-stream");
    mk_mime_destroy(m);
}

MK_TEST(bad_input)
{
    char err[128] = "";
    static const char nul[] = "text/html html\0x";

    CHECK(mk_mime_create("texthtml html\n", 14, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "line 1") != NULL);
    CHECK(mk_mime_create("text/a a\n\nbogus x\n", 18, err, sizeof(err))
          == NULL);
    CHECK(strstr(err, "line 3") != NULL);
    CHECK(mk_mime_create(nul, sizeof(nul) - 1, err, sizeof(err)) == NULL);
    CHECK(mk_mime_load("/nonexistent/mime.types", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "/nonexistent/mime.types") != NULL);
    CHECK(mk_mime_load("/", err, sizeof(err)) == NULL);
}

MK_TEST(empty_and_builtin)
{
    char err[128];
    struct mk_mime *m = mk_mime_create("", 0, err, sizeof(err));

    CHECK(m != NULL);
    CHECK_EQ_INT(mk_mime_count(m), 0);
    CHECK_EQ_STR(mk_mime_lookup(m, "a.html"), "application/octet-stream");
    mk_mime_destroy(m);

    m = mk_mime_create(NULL, 0, err, sizeof(err));
    CHECK(m != NULL);
    if (m == NULL) {
        return;
    }
    CHECK(mk_mime_count(m) > 15);
    CHECK_EQ_STR(mk_mime_lookup(m, "a.css"), "text/css");
    CHECK_EQ_STR(mk_mime_lookup(m, "a.JPG"), "image/jpeg");
    CHECK_EQ_STR(mk_mime_content_type(m, "app.js"),
                 "text/javascript; charset=utf-8");
    CHECK_EQ_STR(mk_mime_content_type(m, "a.json"),
                 "application/json; charset=utf-8");
    mk_mime_destroy(m);
}

/* The shipped table (tests run in tests/unit). */
MK_TEST(shipped_mime_types)
{
    char err[256] = "";
    struct mk_mime *m = mk_mime_load("../../conf/mime.types", err,
                                     sizeof(err));

    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "err: %s\n", err);
        return;
    }
    CHECK(mk_mime_count(m) > 500);
    CHECK_EQ_STR(mk_mime_lookup(m, "a.png"), "image/png");
    CHECK_EQ_STR(mk_mime_lookup(m, "a.svg"), "image/svg+xml");
    CHECK_EQ_STR(mk_mime_content_type(m, "a.htm"),
                 "text/html; charset=utf-8");
    CHECK_EQ_STR(mk_mime_content_type(m, "a.css"),
                 "text/css; charset=utf-8");
    mk_mime_destroy(m);
}

int main(void)
{
    RUN(parse_and_lookup);
    RUN(content_type_charset);
    RUN(bad_input);
    RUN(empty_and_builtin);
    RUN(shipped_mime_types);
    return mk_test_done();
}
