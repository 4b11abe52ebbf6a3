#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_test.h"

static char dir[] = "/tmp/mk_log_test.XXXXXX";
static char path[256];
static char rotated[256];

/* Reads a whole file into a NUL-terminated heap string. */
static char *slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    char *buf;
    long n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t) n + 1);
    if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
        n = 0;
    }
    fclose(f);
    return buf;
}

/* Occurrences of needle in s (a plain scan: ASan's strstr re-measures the
 * haystack on every call, which is quadratic over a 2 MB log). */
static int count_lines(const char *s, const char *needle)
{
    size_t nlen = strlen(needle);
    size_t slen = strlen(s);
    size_t i;
    int n = 0;

    for (i = 0; i + nlen <= slen; i++) {
        if (s[i] == needle[0] && memcmp(s + i, needle, nlen) == 0) {
            n++;
            i += nlen - 1;
        }
    }
    return n;
}

MK_TEST(levels)
{
    CHECK_EQ_INT(mk_log_level_parse("error"), MK_LOG_ERROR);
    CHECK_EQ_INT(mk_log_level_parse("warn"), MK_LOG_WARN);
    CHECK_EQ_INT(mk_log_level_parse("info"), MK_LOG_INFO);
    CHECK_EQ_INT(mk_log_level_parse("debug"), MK_LOG_DEBUG);
    CHECK_EQ_INT(mk_log_level_parse("Debug"), MK_LOG_DEBUG);
    CHECK_EQ_INT(mk_log_level_parse("verbose"), -1);
    CHECK_EQ_INT(mk_log_level_parse("errors"), -1);
    CHECK_EQ_INT(mk_log_level_parse(""), -1);
    mk_log_set_level(MK_LOG_WARN);
    CHECK(mk_log_get_level() == MK_LOG_WARN);
}

MK_TEST(format_and_filter)
{
    regex_t re;
    char *s;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/error.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/error.log.1", dir);
    CHECK(mk_log_open(path) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777 & ~0640u) == 0);
    mk_log_set_level(MK_LOG_WARN);
    mk_err("[fd %d] reading request line: %s", 12, "too large");
    mk_warn("warned %d", 1);
    mk_info("hidden info");
    mk_debug("hidden debug %d", 2);
    mk_log_set_level(MK_LOG_DEBUG);
    mk_debug("shown debug");
    errno = EAGAIN;
    mk_info("errno kept");
    CHECK(errno == EAGAIN);
    s = slurp(path);
    CHECK(s != NULL);
    if (s == NULL) {
        return;
    }
    CHECK(regcomp(&re,
                  "^[0-9]{4}/[0-1][0-9]/[0-3][0-9] [0-2][0-9]:[0-5][0-9]:"
                  "[0-6][0-9] \\[error\\] \\[fd 12\\] reading request line: "
                  "too large\n"
                  "[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]{8} \\[warn\\] warned 1\n"
                  "[0-9/]{10} [0-9:]{8} \\[debug\\] shown debug\n"
                  "[0-9/]{10} [0-9:]{8} \\[info\\] errno kept\n$",
                  REG_EXTENDED) == 0);
    if (regexec(&re, s, 0, NULL, 0) != 0) {
        fprintf(stderr, "log content:\n%s", s);
        CHECK(0);
    }
    CHECK(strstr(s, "hidden") == NULL);
    regfree(&re);
    free(s);
}

MK_TEST(long_line_is_cut_but_terminated)
{
    char *big = malloc(10000);
    char *s;

    memset(big, 'x', 9999);
    big[9999] = '\0';
    truncate(path, 0);
    mk_err("%s", big);
    s = slurp(path);
    CHECK(s != NULL && strlen(s) > 1000 && strlen(s) <= 4096);
    CHECK(s != NULL && s[strlen(s) - 1] == '\n');
    CHECK(s != NULL && count_lines(s, "\n") == 1);
    CHECK(s != NULL && strstr(s, "...\n") != NULL);
    free(s);
    free(big);
}

/* Writers hammer the log while the main thread rotates it several times:
 * every line must end up, whole, in one of the files. */
#define WRITERS 4
#define LINES 5000

static void *writer(void *arg)
{
    int id = (int) (long) arg;
    int i;

    for (i = 0; i < LINES; i++) {
        mk_info("writer %d line %d payload-abcdefghijklmnopqrstuvwxyz", id, i);
    }
    return NULL;
}

MK_TEST(reopen_after_rename)
{
    pthread_t th[WRITERS];
    char name[300];
    char *all = NULL;
    size_t total = 0;
    int rotations = 0;
    int i;

    truncate(path, 0);
    mk_log_set_level(MK_LOG_INFO);
    for (i = 0; i < WRITERS; i++) {
        pthread_create(&th[i], NULL, writer, (void *) (long) i);
    }
    for (i = 0; i < 5; i++) {
        usleep(2000);
        snprintf(name, sizeof(name), "%s.%d", path, i);
        if (rename(path, name) == 0 && mk_log_reopen() == 0) {
            rotations++;
        }
    }
    for (i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
    }
    CHECK_EQ_INT(rotations, 5);
    /* gather all files */
    for (i = -1; i < 5; i++) {
        char *s;
        if (i < 0) {
            snprintf(name, sizeof(name), "%s", path);
        }
        else {
            snprintf(name, sizeof(name), "%s.%d", path, i);
        }
        s = slurp(name);
        CHECK(s != NULL);
        if (s == NULL) {
            continue;
        }
        all = realloc(all, total + strlen(s) + 1);
        memcpy(all + total, s, strlen(s) + 1);
        total += strlen(s);
        free(s);
        unlink(name);
    }
    CHECK_EQ_INT(count_lines(all, "\n"), WRITERS * LINES);
    CHECK_EQ_INT(count_lines(all, "[info] writer "), WRITERS * LINES);
    CHECK_EQ_INT(count_lines(all, "payload-abcdefghijklmnopqrstuvwxyz\n"),
                 WRITERS * LINES);
    /* spot-check: each writer's last line is there */
    for (i = 0; i < WRITERS; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "writer %d line %d ", i, LINES - 1);
        CHECK(strstr(all, needle) != NULL);
    }
    free(all);
}

MK_TEST(open_failure_keeps_target)
{
    char *s;

    CHECK(mk_log_open(path) == 0);
    CHECK(mk_log_open("/nonexistent-dir/x/error.log") == -1);
    CHECK(errno == ENOENT);
    mk_err("still here");
    s = slurp(path);
    CHECK(s != NULL && strstr(s, "[error] still here\n") != NULL);
    free(s);
    /* switching to stderr leaves the file alone */
    CHECK(mk_log_open("-") == 0);
    mk_err("to stderr (expected in test output)");
    CHECK(mk_log_reopen() == 0);     /* no file: nothing to do */
    s = slurp(path);
    CHECK(s != NULL && strstr(s, "to stderr") == NULL);
    free(s);
    mk_log_close();
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    RUN(levels);
    RUN(format_and_filter);
    RUN(long_line_is_cut_but_terminated);
    RUN(reopen_after_rename);
    RUN(open_failure_keeps_target);
    return mk_test_done();
}
