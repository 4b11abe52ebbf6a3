#include <string.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_mem.h"
#include "mk_test.h"

MK_TEST(append_and_cstr)
{
    struct mk_buf b;

    mk_buf_init(&b);
    CHECK(b.data == NULL && b.len == 0 && b.size == 0);
    CHECK_EQ_STR(mk_buf_cstr(&b), "");
    CHECK(mk_buf_append_str(&b, "hello") == 0);
    CHECK(mk_buf_append(&b, ", ", 2) == 0);
    CHECK(mk_buf_append(&b, "world!!!", 5) == 0);
    CHECK(mk_buf_append(&b, NULL, 0) == 0);
    CHECK(b.len == 12);
    CHECK_EQ_STR(mk_buf_cstr(&b), "hello, world");
    CHECK(b.len == 12);           /* the NUL is not counted */
    mk_buf_release(&b);
    CHECK(b.data == NULL && b.len == 0 && b.size == 0);
}

MK_TEST(grow_large)
{
    struct mk_buf b;
    size_t i;
    int ok = 1;

    mk_buf_init(&b);
    for (i = 0; i < 100000; i++) {
        char c = (char) ('a' + i % 26);
        if (mk_buf_append(&b, &c, 1) != 0) {
            ok = 0;
            break;
        }
    }
    CHECK(ok);
    CHECK(b.len == 100000);
    CHECK(b.size >= b.len);
    for (i = 0; i < b.len; i++) {
        if (b.data[i] != (char) ('a' + i % 26)) {
            ok = 0;
        }
    }
    CHECK(ok);
    mk_buf_release(&b);
}

MK_TEST(reserve)
{
    struct mk_buf b;

    mk_buf_init(&b);
    CHECK(mk_buf_reserve(&b, 1000) == 0);
    CHECK(b.size >= 1000 && b.len == 0);
    CHECK(mk_buf_reserve(&b, (size_t) -1) == -1);      /* absurd: refused */
    CHECK(b.size >= 1000 && b.len == 0);
    CHECK(mk_buf_append(&b, "abc", 3) == 0);
    CHECK(mk_buf_reserve(&b, (size_t) -2) == -1);      /* len + extra wraps */
    CHECK(b.len == 3 && memcmp(b.data, "abc", 3) == 0);
    mk_buf_release(&b);
}

MK_TEST(printf_grows)
{
    struct mk_buf b;
    char big[3000];

    mk_buf_init(&b);
    CHECK(mk_buf_printf(&b, "%d:%s", 12, "ab") == 0);
    CHECK_EQ_STR(mk_buf_cstr(&b), "12:ab");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(mk_buf_printf(&b, "[%s]", big) == 0);
    CHECK(b.len == 5 + 2 + sizeof(big) - 1);
    CHECK(b.data[5] == '[' && b.data[b.len - 1] == ']');
    CHECK(mk_buf_printf(&b, "%s", "") == 0);
    CHECK(b.len == 5 + 2 + sizeof(big) - 1);
    mk_buf_release(&b);
}

MK_TEST(consume)
{
    struct mk_buf b;

    mk_buf_init(&b);
    mk_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    mk_buf_consume(&b, 4);
    CHECK_EQ_STR(mk_buf_cstr(&b), "/ HTTP/1.1\r\n");
    mk_buf_consume(&b, 0);
    CHECK(b.len == 12);
    mk_buf_consume(&b, 100);
    CHECK(b.len == 0);
    CHECK_EQ_STR(mk_buf_cstr(&b), "");
    mk_buf_release(&b);
}

MK_TEST(mem_wrappers)
{
    char *s = mk_mem_strdup("abc");
    char *t = mk_mem_strndup("abcdef", 4);
    char *u = mk_mem_strndup("ab", 10);
    unsigned char *z = mk_mem_zalloc(64);
    int zero = 1;
    int i;

    CHECK_EQ_STR(s, "abc");
    CHECK_EQ_STR(t, "abcd");
    CHECK_EQ_STR(u, "ab");
    CHECK(z != NULL);
    for (i = 0; z && i < 64; i++) {
        zero &= z[i] == 0;
    }
    CHECK(zero);
    z = mk_mem_realloc(z, 4096);
    CHECK(z != NULL);
    mk_mem_free(s);
    mk_mem_free(t);
    mk_mem_free(u);
    mk_mem_free(z);
    mk_mem_free(NULL);
#ifdef TREMOLO_WITH_JEMALLOC
    {
        size_t before = mk_mem_allocated();
        void *big = mk_mem_alloc(8 << 20);
        memset(big, 1, 8 << 20);
        CHECK(before > 0);
        CHECK(mk_mem_allocated() >= before + (8 << 20));
        mk_mem_free(big);
    }
#else
    CHECK(mk_mem_allocated() == 0);
#endif
}

int main(void)
{
    RUN(append_and_cstr);
    RUN(grow_large);
    RUN(reserve);
    RUN(printf_grows);
    RUN(consume);
    RUN(mem_wrappers);
    return mk_test_done();
}
