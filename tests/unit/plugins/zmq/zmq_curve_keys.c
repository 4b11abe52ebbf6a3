/* CurveKeys: the line format (a key, the identities it may use, a comment;
 * the lines of before identity lists), matching, and the file loader's
 * file:line errors and duplicate keys. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mk_test.h"
#include "plugins/zmq/zmq_curve_keys.c"

/* bytes 0..31 in Z85; another key holding a '#' inside */
#define KEY_SEQ "009c61o!#m2NH?C3>iWS5d]J*6CRx17-skh9337x"
#define KEY_B   ")kF+W@CsWH7I.$XTb3q+0it!1KYLVI6MUDHP2#q6"

static int parse(const char *line, struct zmq_curve_key *k, char *err)
{
    return zmq_curve_key_parse(line, strlen(line), k, err, 128);
}

/* The listed identities joined with '|'. */
static const char *ids_of(const struct zmq_curve_key *k)
{
    static char out[512];
    const char *p = k->ids;
    size_t i;

    out[0] = '\0';
    for (i = 0; i < k->count; i++, p += strlen(p) + 1) {
        strcat(out, i ? "|" : "");
        strcat(out, p);
    }
    return out;
}

MK_TEST(blank_and_comment_lines)
{
    struct zmq_curve_key k;
    char err[128];

    CHECK_EQ_INT(parse("", &k, err), 0);
    CHECK_EQ_INT(parse("  \t\r", &k, err), 0);
    CHECK_EQ_INT(parse("# " KEY_SEQ " web-1", &k, err), 0);
    CHECK_EQ_INT(parse("   #anything", &k, err), 0);
}

MK_TEST(key_alone_or_with_comment_may_use_any_identity)
{
    struct zmq_curve_key k;
    char err[128];
    size_t i;

    CHECK_EQ_INT(parse(KEY_SEQ, &k, err), 1);
    for (i = 0; i < ZMQ_CURVE_KEY_LEN; i++) {
        CHECK_EQ_INT(k.key[i], i);
    }
    CHECK_EQ_INT(k.count, 0);
    CHECK(k.ids == NULL);
    CHECK(zmq_curve_key_permits(&k, "admin-1", 7));
    CHECK_EQ_INT(parse("  " KEY_SEQ "\t# the old way\r", &k, err), 1);
    CHECK_EQ_INT(k.count, 0);
    CHECK_EQ_INT(parse(KEY_B " #web-1", &k, err), 1);
    CHECK_EQ_INT(k.count, 0);
}

MK_TEST(identities_exact_and_glob)
{
    struct zmq_curve_key k;
    char err[128];

    CHECK_EQ_INT(parse(KEY_B "  node-a node-web-*\tdb-?  # rack 3", &k, err),
                 1);
    CHECK_EQ_INT(k.count, 3);
    CHECK_EQ_STR(ids_of(&k), "node-a|node-web-*|db-?");
    CHECK(zmq_curve_key_permits(&k, "node-a", 6));
    CHECK(zmq_curve_key_permits(&k, "node-web-12", 11));
    CHECK(zmq_curve_key_permits(&k, "db-1", 4));
    CHECK(!zmq_curve_key_permits(&k, "node-ab", 7));       /* exact */
    CHECK(!zmq_curve_key_permits(&k, "db-12", 5));
    CHECK(!zmq_curve_key_permits(&k, "admin-1", 7));
    CHECK(!zmq_curve_key_permits(&k, "node-a\0x", 8));     /* NUL inside */
    CHECK(!zmq_curve_key_permits(&k, "", 0));
    zmq_curve_key_release(&k);
    CHECK_EQ_INT(parse(KEY_B " *", &k, err), 1);            /* any, said so */
    CHECK_EQ_INT(k.count, 1);
    CHECK(zmq_curve_key_permits(&k, "x/y.z", 5));
    zmq_curve_key_release(&k);
    CHECK_EQ_INT(parse(KEY_B " a\\b", &k, err), 1);        /* no glob: exact */
    CHECK(zmq_curve_key_permits(&k, "a\\b", 3));
    CHECK(!zmq_curve_key_permits(&k, "ab", 2));
    zmq_curve_key_release(&k);
}

MK_TEST(bad_lines_say_why)
{
    struct zmq_curve_key k;
    char err[128], line[2048];
    size_t i;

    CHECK_EQ_INT(parse("short-key web-1", &k, err), -1);
    CHECK_EQ_STR(err, "expected a 40-character Z85 public key");
    CHECK_EQ_INT(parse(KEY_SEQ "x", &k, err), -1);
    CHECK_EQ_STR(err, "expected a 40-character Z85 public key");
    CHECK_EQ_INT(parse("~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~", &k, err),
                 -1);
    CHECK_EQ_STR(err, "not a Z85 key");
    CHECK_EQ_INT(parse("%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%", &k, err),
                 -1);                                     /* overflows 2^32 */
    CHECK_EQ_STR(err, "not a Z85 key");
    CHECK_EQ_INT(zmq_curve_key_parse(KEY_SEQ " web\0-1", 46, &k, err, 128), -1);
    CHECK_EQ_STR(err, "control character 0x00");
    CHECK_EQ_INT(parse(KEY_SEQ " web-1 # \x1b[31m", &k, err), -1);
    CHECK_EQ_STR(err, "control character 0x1b");
    memset(line, 'n', sizeof(line));
    memcpy(line, KEY_SEQ " ", 41);
    line[41 + 256] = '\0';
    CHECK_EQ_INT(parse(line, &k, err), -1);
    CHECK_EQ_STR(err, "a node identity is at most 255 bytes");
    line[41 + 255] = '\0';
    CHECK_EQ_INT(parse(line, &k, err), 1);
    zmq_curve_key_release(&k);
    strcpy(line, KEY_SEQ);
    for (i = 0; i < ZMQ_CURVE_IDS_MAX; i++) {
        strcat(line, " n");
    }
    CHECK_EQ_INT(parse(line, &k, err), 1);
    CHECK_EQ_INT(k.count, ZMQ_CURVE_IDS_MAX);
    zmq_curve_key_release(&k);
    strcat(line, " n");
    CHECK_EQ_INT(parse(line, &k, err), -1);
    CHECK_EQ_STR(err, "more than 64 identities for one key");
    CHECK(k.ids == NULL);
}

static char *write_file(const char *text)
{
    static char path[] = "/tmp/curve_keys_XXXXXX";
    int fd;

    strcpy(path, "/tmp/curve_keys_XXXXXX");
    fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text)) {
        return NULL;
    }
    close(fd);
    return path;
}

MK_TEST(file_loads_with_lines_and_finds_keys)
{
    struct zmq_curve_keys ks;
    uint8_t seq[ZMQ_CURVE_KEY_LEN], other[ZMQ_CURVE_KEY_LEN] = { 0 };
    char err[256], *path;
    size_t i;

    for (i = 0; i < sizeof(seq); i++) {
        seq[i] = (uint8_t) i;
    }
    path = write_file("# nodes\n\n" KEY_SEQ "\n" KEY_B "  web-*  # web\n"
                      "   # the end, no newline");
    CHECK(path != NULL);
    CHECK_EQ_INT(zmq_curve_keys_load(&ks, path, err, sizeof(err)), 0);
    CHECK_EQ_INT(ks.count, 2);
    CHECK_EQ_INT(ks.keys[0].line, 3);
    CHECK_EQ_INT(ks.keys[1].line, 4);
    CHECK_EQ_INT(zmq_curve_keys_find(&ks, seq), 0);
    CHECK_EQ_INT(zmq_curve_keys_find(&ks, other), -1);
    CHECK_EQ_STR(ids_of(&ks.keys[1]), "web-*");
    zmq_curve_keys_release(&ks);
    unlink(path);
}

MK_TEST(file_errors_name_file_and_line)
{
    struct zmq_curve_keys ks;
    char err[256], want[256], *path;

    path = write_file(KEY_SEQ " a\n" KEY_B "\n\n" KEY_SEQ "   b\n");
    CHECK_EQ_INT(zmq_curve_keys_load(&ks, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: this key is already listed at "
             "line 1", path);
    CHECK_EQ_STR(err, want);
    CHECK_EQ_INT(ks.count, 0);
    unlink(path);
    path = write_file(KEY_SEQ "\r\n" KEY_B "\r\nnot a key\r\n");
    CHECK_EQ_INT(zmq_curve_keys_load(&ks, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: expected a 40-character Z85 public "
             "key", path);
    CHECK_EQ_STR(err, want);
    unlink(path);
    CHECK_EQ_INT(zmq_curve_keys_load(&ks, "/nonexistent/keys", err,
                                     sizeof(err)), -1);
    CHECK_EQ_STR(err, "CurveKeys /nonexistent/keys: cannot open: No such "
                 "file or directory");
}

int main(void)
{
    RUN(blank_and_comment_lines);
    RUN(key_alone_or_with_comment_may_use_any_identity);
    RUN(identities_exact_and_glob);
    RUN(bad_lines_say_why);
    RUN(file_loads_with_lines_and_finds_keys);
    RUN(file_errors_name_file_and_line);
    return mk_test_done();
}
