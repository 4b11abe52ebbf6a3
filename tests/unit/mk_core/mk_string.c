#include <stdint.h>
#include <stdio.h>

#include "mk_core/mk_string.h"
#include "mk_test.h"

MK_TEST(case_eq)
{
    CHECK(mk_str_case_eq("Content-Length", 14, "content-length", 14));
    CHECK(!mk_str_case_eq("abc", 3, "abd", 3));
    CHECK(!mk_str_case_eq("abc", 3, "abcd", 4));
    CHECK(mk_str_case_eq("", 0, "", 0));
    /* '@' (0x40) and '`' (0x60) differ by 32 but are not letters */
    CHECK(!mk_str_case_eq("@", 1, "`", 1));
    CHECK(mk_ptr_case_eq(MK_PTR_LIT("HOST"), "host"));
    CHECK(!mk_ptr_case_eq(MK_PTR_LIT("HOST"), "hosts"));
    CHECK(mk_ptr_eq(MK_PTR_LIT("abc"), "abc"));
    CHECK(!mk_ptr_eq(MK_PTR_LIT("abc"), "ABC"));
}

MK_TEST(to_u64)
{
    uint64_t v = 7;

    CHECK(mk_str_to_u64("0", 1, &v) == 0 && v == 0);
    CHECK(mk_str_to_u64("12345", 5, &v) == 0 && v == 12345);
    CHECK(mk_str_to_u64("123456", 3, &v) == 0 && v == 123);
    CHECK(mk_str_to_u64("18446744073709551615", 20, &v) == 0 &&
          v == UINT64_MAX);
    v = 7;
    CHECK(mk_str_to_u64("18446744073709551616", 20, &v) == -1);
    CHECK(mk_str_to_u64("99999999999999999999", 20, &v) == -1);
    CHECK(mk_str_to_u64("", 0, &v) == -1);
    CHECK(mk_str_to_u64("+1", 2, &v) == -1);
    CHECK(mk_str_to_u64("-1", 2, &v) == -1);
    CHECK(mk_str_to_u64(" 1", 2, &v) == -1);
    CHECK(mk_str_to_u64("1 ", 2, &v) == -1);
    CHECK(mk_str_to_u64("0x10", 4, &v) == -1);
    CHECK(v == 7);      /* failures leave the output alone */
}

MK_TEST(u64_and_hex)
{
    char buf[32];
    char ref[32];
    uint64_t samples[] = { 0, 1, 9, 10, 99, 100, 4096, 65535, 1234567890123ULL,
                           UINT64_MAX - 1, UINT64_MAX };
    size_t i;
    size_t n;

    for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        n = mk_str_u64(buf, samples[i]);
        snprintf(ref, sizeof(ref), "%llu", (unsigned long long) samples[i]);
        CHECK_EQ_MEM(buf, n, ref);
        n = mk_str_hex(buf, samples[i]);
        snprintf(ref, sizeof(ref), "%llX", (unsigned long long) samples[i]);
        CHECK_EQ_MEM(buf, n, ref);
    }
    /* pseudo-random sweep */
    uint64_t x = 88172645463325252ULL;
    for (i = 0; i < 10000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint64_t v = x >> (i % 64);
        uint64_t back;
        n = mk_str_u64(buf, v);
        if (mk_str_to_u64(buf, n, &back) != 0 || back != v) {
            CHECK(0 && "u64 round trip");
            break;
        }
    }
    CHECK(i == 10000);
}

MK_TEST(trim)
{
    struct mk_ptr p = mk_ptr_trim(MK_PTR_LIT(" \t abc d \t"));
    CHECK_EQ_MEM(p.data, p.len, "abc d");
    p = mk_ptr_trim(MK_PTR_LIT("   "));
    CHECK(p.len == 0);
    p = mk_ptr_trim(MK_PTR_LIT("x"));
    CHECK_EQ_MEM(p.data, p.len, "x");
    p = mk_ptr_trim(MK_PTR_NONE);
    CHECK(p.len == 0);
    p = mk_ptr_trim(MK_PTR_LIT("\r x \n"));     /* only SP and HTAB */
    CHECK_EQ_MEM(p.data, p.len, "\r x \n");
}

MK_TEST(printf_clamps)
{
    char buf[8];
    size_t n;

    n = mk_str_printf(buf, sizeof(buf), "%d-%s", 42, "ab");
    CHECK(n == 5);
    CHECK_EQ_STR(buf, "42-ab");
    n = mk_str_printf(buf, sizeof(buf), "%s", "0123456789");
    CHECK(n == 7);
    CHECK_EQ_STR(buf, "0123456");
    n = mk_str_printf(buf, 1, "%s", "abc");
    CHECK(n == 0);
    CHECK(buf[0] == '\0');
    CHECK(mk_str_printf(buf, 0, "%s", "abc") == 0);
}

MK_TEST(printable_for_logs)
{
    char buf[8];

    CHECK_EQ_STR(mk_str_printable(buf, sizeof(buf), "ok", 2), "ok");
    CHECK_EQ_STR(mk_str_printable(buf, sizeof(buf), "a\nb\x7f\xff", 5),
                 "a?b??");
    CHECK_EQ_STR(mk_str_printable(buf, sizeof(buf), "0123456789", 10),
                 "0123456");                   /* cut, still terminated */
    CHECK_EQ_STR(mk_str_printable(buf, 1, "x", 1), "");
}

int main(void)
{
    RUN(case_eq);
    RUN(to_u64);
    RUN(u64_and_hex);
    RUN(trim);
    RUN(printf_clamps);
    RUN(printable_for_logs);
    return mk_test_done();
}
