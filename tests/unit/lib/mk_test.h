#ifndef MK_TEST_H
#define MK_TEST_H

/*
 * A minimal unit-test harness. Each check counts; a failed check prints
 * file:line and the expression and the test keeps going. main() ends with
 * `return mk_test_done();`, which prints the closing line
 * "N passed, N failed" and returns non-zero on any failure.
 *
 *     MK_TEST(parses_get) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *     int main(void) { RUN(parses_get); return mk_test_done(); }
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int mk_test_passed;
static int mk_test_failed;

#define MK_TEST(name) static void test_##name(void)
#define RUN(name) \
    do { int f0 = mk_test_failed; test_##name(); \
         printf("%s %s\n", mk_test_failed == f0 ? "ok  " : "FAIL", #name); \
         fflush(stdout); } while (0)

#define CHECK(expr) \
    do { if (expr) { mk_test_passed++; } else { mk_test_failed++; \
         fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                 #expr); } } while (0)

#define CHECK_EQ_INT(a, b) \
    do { long long va_ = (long long) (a), vb_ = (long long) (b); \
         if (va_ == vb_) { mk_test_passed++; } else { mk_test_failed++; \
         fprintf(stderr, "%s:%d: %s == %s: %lld != %lld\n", __FILE__, \
                 __LINE__, #a, #b, va_, vb_); } } while (0)

#define CHECK_EQ_STR(a, b) \
    do { const char *sa_ = (a), *sb_ = (b); \
         if (sa_ && sb_ && strcmp(sa_, sb_) == 0) { mk_test_passed++; } \
         else { mk_test_failed++; \
         fprintf(stderr, "%s:%d: %s == %s: \"%s\" != \"%s\"\n", __FILE__, \
                 __LINE__, #a, #b, sa_ ? sa_ : "(null)", \
                 sb_ ? sb_ : "(null)"); } } while (0)

/* Slice (data, len) equals the C string s. */
#define CHECK_EQ_MEM(data, len, s) \
    do { size_t l_ = (size_t) (len); const char *s_ = (s); \
         if (l_ == strlen(s_) && memcmp((data), s_, l_) == 0) \
             { mk_test_passed++; } else { mk_test_failed++; \
         fprintf(stderr, "%s:%d: %s == \"%s\": got \"%.*s\"\n", __FILE__, \
                 __LINE__, #data, s_, (int) l_, (const char *) (data)); } \
    } while (0)

/* A reproducible pseudo-random sequence for tests (xorshift64); a test
 * that wants another sequence sets mk_test_rng_state before using it. */
static uint64_t mk_test_rng_state = 0x9e3779b97f4a7c15ULL;

static inline uint64_t mk_test_rng(void)
{
    mk_test_rng_state ^= mk_test_rng_state << 13;
    mk_test_rng_state ^= mk_test_rng_state >> 7;
    mk_test_rng_state ^= mk_test_rng_state << 17;
    return mk_test_rng_state;
}

static inline int mk_test_done(void)
{
    printf("%d passed, %d failed\n", mk_test_passed, mk_test_failed);
    return mk_test_failed == 0 && mk_test_passed > 0 ? 0 : 1;
}

#endif
