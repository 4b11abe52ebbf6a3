/* Unit tests: base64 (mk_core) as auth uses it, users-file parser, location prefix
 * matching and the tremolo-passwd file edit. */
#include "mk_core/mk_base64.h"
#include "mk_test.h"
#include "plugins/auth/auth_users.c"

static long b64(const char *in, char *out, size_t cap)
{
    return mk_base64_decode(in, strlen(in), out, cap);
}

MK_TEST(base64_valid)
{
    char out[64];
    long n;

    n = b64("YWxpY2U6czNjcmV0", out, sizeof(out));
    CHECK_EQ_MEM(out, n, "alice:s3cret");
    n = b64("YQ==", out, sizeof(out));
    CHECK_EQ_MEM(out, n, "a");
    n = b64("YWI=", out, sizeof(out));
    CHECK_EQ_MEM(out, n, "ab");
    n = b64("YWJj", out, sizeof(out));
    CHECK_EQ_MEM(out, n, "abc");
    n = b64("+/8=", out, sizeof(out));
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT((unsigned char) out[0], 0xfb);
    CHECK_EQ_INT((unsigned char) out[1], 0xff);
    /* exact capacity */
    n = b64("YWJj", out, 3);
    CHECK_EQ_INT(n, 3);
}

MK_TEST(base64_strict)
{
    char out[64];

    CHECK_EQ_INT(b64("", out, sizeof(out)), 0);   /* auth refuses n <= 0 */
    CHECK_EQ_INT(b64("YQ", out, sizeof(out)), -1);       /* no padding */
    CHECK_EQ_INT(b64("YQ=", out, sizeof(out)), -1);
    CHECK_EQ_INT(b64("YR==", out, sizeof(out)), -1);     /* pad bits set */
    CHECK_EQ_INT(b64("YWJ=", out, sizeof(out)), -1);     /* pad bits set */
    CHECK_EQ_INT(b64("Y===", out, sizeof(out)), -1);
    CHECK_EQ_INT(b64("====", out, sizeof(out)), -1);
    CHECK_EQ_INT(b64("YQ==YQ==", out, sizeof(out)), -1); /* '=' inside */
    CHECK_EQ_INT(b64("YW J", out, sizeof(out)), -1);
    CHECK_EQ_INT(b64("YW-_", out, sizeof(out)), -1);     /* url alphabet */
    CHECK_EQ_INT(b64("YWJj", out, 2), -1);               /* too small */
}

MK_TEST(locations)
{
    CHECK(auth_location_match("/private", 8, "/private"));
    CHECK(auth_location_match("/private", 8, "/private/"));
    CHECK(auth_location_match("/private", 8, "/private/x/y.html"));
    CHECK(!auth_location_match("/private", 8, "/privateer"));
    CHECK(!auth_location_match("/private", 8, "/priv"));
    CHECK(!auth_location_match("/private", 8, "/"));
    CHECK(!auth_location_match("/private", 8, "/Private"));
    CHECK(!auth_location_match("/private", 8, "/public/private"));
    CHECK(auth_location_match("/", 1, "/"));
    CHECK(auth_location_match("/", 1, "/anything"));
    CHECK(auth_location_match("/a/b", 4, "/a/b/c"));
    CHECK(!auth_location_match("/a/b", 4, "/a/bc"));
}

MK_TEST(user_names)
{
    CHECK(auth_user_valid("alice", 5));
    CHECK(auth_user_valid("\xc3\xa9milie", 7));
    CHECK(!auth_user_valid("", 0));
    CHECK(!auth_user_valid("a:b", 3));
    CHECK(!auth_user_valid("a b", 3));
    CHECK(!auth_user_valid("a\tb", 3));
    CHECK(!auth_user_valid("a\x7f", 2));
}

static const char h6[] = "$6$abcdefgh$Hx0ZfkbyQXUMzLiQvV6m3ZhFzhhkkMI8uY"
                         "CuYKSZ.xZPJbVUFYE2Zp0ZnT5Rt3nHD6xB2ebQJuG/cKv9sd"
                         "2sj.";

MK_TEST(users_parse_ok)
{
    char data[1024], err[256];
    struct mk_hash *users;

    snprintf(data, sizeof(data),
             "# staff\n"
             "alice:%s\r\n"
             "\n"
             "bob:$5$rounds=6000$salt$abcdefABCDEF./0123\n"
             "carol:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7\n"
             "dave:$6$rounds=10000$s$h",
             h6);
    users = auth_users_parse("t.users", data, strlen(data), err, sizeof(err));
    CHECK(users != NULL);
    if (!users)
        return;
    CHECK_EQ_INT(mk_hash_count(users), 4);
    CHECK_EQ_STR(mk_hash_get(users, "alice", 5), h6);
    CHECK_EQ_STR(mk_hash_get(users, "dave", 4), "$6$rounds=10000$s$h");
    CHECK(mk_hash_get(users, "Alice", 5) == NULL);
    auth_users_destroy(users);
}

static const char *users_error(const char *data, char *err, size_t errlen)
{
    struct mk_hash *users = auth_users_parse("t.users", data, strlen(data),
                                             err, errlen);

    if (users) {
        auth_users_destroy(users);
        return "(parsed)";
    }
    return err;
}

MK_TEST(users_parse_errors)
{
    char err[256];

    CHECK(strstr(users_error("alice:$1$salt$md5hash\n", err, sizeof(err)),
                 "t.users:1: unsupported hash type") != NULL);
    CHECK(strstr(users_error("# x\nalice:$apr1$salt$x\n", err, sizeof(err)),
                 "t.users:2: unsupported hash type") != NULL);
    CHECK(strstr(users_error("alice:plaintext\n", err, sizeof(err)),
                 "t.users:1: unsupported hash type") != NULL);
    CHECK(strstr(users_error("alice:$2b$10$abc\n", err, sizeof(err)),
                 "t.users:1: unsupported") != NULL);
    CHECK_EQ_STR(users_error("\n\nalice\n", err, sizeof(err)),
                 "t.users:3: expected user:hash");
    CHECK(strstr(users_error(":$6$s$h\n", err, sizeof(err)),
                 "t.users:1: bad user name") != NULL);
    CHECK_EQ_STR(users_error("a:$6$s$h\nb:$6$s$h\na:$6$t$h\n", err,
                             sizeof(err)), "t.users:3: user listed twice");
    CHECK_EQ_STR(users_error("a:$6$s$\n", err, sizeof(err)),
                 "t.users:1: malformed hash");
    CHECK_EQ_STR(users_error("a:$6$sh\n", err, sizeof(err)),
                 "t.users:1: malformed hash");
    CHECK(strstr(users_error("a:$6$s$h x\n", err, sizeof(err)),
                 "t.users:1: malformed hash") != NULL);
    CHECK_EQ_STR(users_error("", err, sizeof(err)), "(parsed)");
}

static const char *edit(const char *in, const char *user, const char *hash,
                        int *found)
{
    static char buf[1024];
    char *out;
    size_t len;

    *found = auth_passwd_update(in, strlen(in), user, hash, &out, &len);
    if (*found < 0)
        return "(oom)";
    snprintf(buf, sizeof(buf), "%.*s", (int) len, out);
    mk_mem_free(out);
    return buf;
}

MK_TEST(passwd_update)
{
    int found;

    CHECK_EQ_STR(edit("", "alice", "$6$a$b", &found), "alice:$6$a$b\n");
    CHECK_EQ_INT(found, 0);
    CHECK_EQ_STR(edit("# c\nalice:$6$a$b\nbob:$6$c$d\n", "alice", "$6$x$y",
                      &found), "# c\nalice:$6$x$y\nbob:$6$c$d\n");
    CHECK_EQ_INT(found, 1);
    /* a missing final newline is repaired before appending */
    CHECK_EQ_STR(edit("bob:$6$c$d", "carol", "$6$e$f", &found),
                 "bob:$6$c$d\ncarol:$6$e$f\n");
    CHECK_EQ_INT(found, 0);
    /* a prefix of another name is not that name */
    CHECK_EQ_STR(edit("alice2:$6$a$b\n", "alice", "$6$x$y", &found),
                 "alice2:$6$a$b\nalice:$6$x$y\n");
    CHECK_EQ_INT(found, 0);
    /* delete, including a duplicate line */
    CHECK_EQ_STR(edit("a:$6$1$1\nb:$6$2$2\na:$6$3$3\n", "a", NULL, &found),
                 "b:$6$2$2\n");
    CHECK_EQ_INT(found, 1);
    CHECK_EQ_STR(edit("b:$6$2$2\n", "a", NULL, &found), "b:$6$2$2\n");
    CHECK_EQ_INT(found, 0);
    /* replacing keeps one line even when the name was listed twice */
    CHECK_EQ_STR(edit("a:$6$1$1\na:$6$3$3\n", "a", "$6$n$n", &found),
                 "a:$6$n$n\n");
}

int main(void)
{
    RUN(base64_valid);
    RUN(base64_strict);
    RUN(locations);
    RUN(user_names);
    RUN(users_parse_ok);
    RUN(users_parse_errors);
    RUN(passwd_update);
    return mk_test_done();
}
