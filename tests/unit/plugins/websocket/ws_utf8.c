/* Unit tests: the incremental UTF-8 validator (RFC 3629, RFC 6455 8.1),
 * on Markus Kuhn's stress-test categories, Autobahn's fail-fast cases,
 * every split of every sample, and random strings against a reference. */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_test.h"
#include "plugins/websocket/ws_utf8.c"

#define VALID     (-1)   /* whole and complete */
#define TRUNCATED (-2)   /* valid so far, ends inside a character */

struct sample {
    const char *s;
    size_t len;
    int fail_at;         /* index of the first impossible byte, or above */
};

#define S(str, f) { str, sizeof(str) - 1, f }

static const struct sample samples[] = {
    S("", VALID),
    S("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
      VALID),
    S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", VALID),  /* kosme */
    /* Boundary code points. */
    S("\x00", VALID),                    /* U+0000 */
    S("\x7f", VALID),                    /* U+007F */
    S("\xc2\x80", VALID),                /* U+0080 */
    S("\xdf\xbf", VALID),                /* U+07FF */
    S("\xe0\xa0\x80", VALID),            /* U+0800 */
    S("\xed\x9f\xbf", VALID),            /* U+D7FF */
    S("\xee\x80\x80", VALID),            /* U+E000 */
    S("\xef\xbf\xbd", VALID),            /* U+FFFD */
    S("\xef\xbf\xbe", VALID),            /* U+FFFE: a noncharacter, valid */
    S("\xef\xbf\xbf", VALID),            /* U+FFFF */
    S("\xf0\x90\x80\x80", VALID),        /* U+10000 */
    S("\xf1\x80\x80\x80", VALID),        /* U+40000 */
    S("\xf3\xbf\xbf\xbf", VALID),        /* U+FFFFF */
    S("\xf4\x8f\xbf\xbf", VALID),        /* U+10FFFF */
    S("0123456789abcdef0123456789abcdef0123456789abcdef\xe2\x82\xac"
      "0123456789abcdef0123456789abcdef", VALID),
    /* Truncated sequences at the end. */
    S("\xc2", TRUNCATED),
    S("\xe0\xa0", TRUNCATED),
    S("\xe1\x80", TRUNCATED),
    S("\xed\x9f", TRUNCATED),
    S("\xf0\x90\x80", TRUNCATED),
    S("\xf4\x8f\xbf", TRUNCATED),
    S("ab\xce", TRUNCATED),
    S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce", TRUNCATED),
    /* Lone and unexpected continuation bytes. */
    S("\x80", 0),
    S("\xbf", 0),
    S("a\x80\xbf", 1),
    S("\xc2\x80\x80", 2),
    S("\xdf\xbf\xbf", 2),
    /* Impossible bytes and 5/6-byte forms. */
    S("\xfe", 0),
    S("\xff", 0),
    S("\xfe\xfe\xff\xff", 0),
    S("\xf8\x88\x80\x80\x80", 0),
    S("\xfc\x84\x80\x80\x80\x80", 0),
    /* Overlong forms: rejected at the byte that proves it. */
    S("\xc0\xaf", 0),
    S("\xc0\x80", 0),
    S("\xc1\xbf", 0),
    S("\xe0\x80\xaf", 1),
    S("\xe0\x9f\xbf", 1),
    S("\xe0\x80\x80", 1),
    S("\xf0\x80\x80\xaf", 1),
    S("\xf0\x8f\xbf\xbf", 1),
    /* Surrogates, single and paired. */
    S("\xed\xa0\x80", 1),
    S("\xed\xad\xbf", 1),
    S("\xed\xbf\xbf", 1),
    S("\xed\xa0\x80\xed\xb0\x80", 1),
    /* Above U+10FFFF. */
    S("\xf4\x90\x80\x80", 1),
    S("\xf5\x80\x80\x80", 0),
    S("\xf7\xbf\xbf\xbf", 0),
    /* A lead byte cut short by something else. */
    S("\xc2\x41", 1),
    S("\xc2\xc2\x80", 1),
    S("\xe1\x80\x41", 2),
    S("\xf1\x80\x80\xc0", 3),
    S("\xf1\x80\x80\x7f", 3),
    /* Autobahn 6.4.1 / 6.4.3: fail before "edited" arrives. */
    S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"
      "edited", 12),
    S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
      "edited", 12),
    S("0123456789abcdef0123456789abcdef0123456789\xff", 42),
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

/*
 * Reference validator, written differently from the DFA: it decodes the
 * bits, and after each byte asks whether any completion of the character
 * so far can be a code point that needs exactly this many bytes and is
 * not a surrogate. Returns VALID, TRUNCATED or the failing index.
 */
static int ref_utf8(const uint8_t *p, size_t n)
{
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    static const uint32_t max[5] = { 0, 0x7f, 0x7ff, 0xffff, 0x10ffff };
    uint32_t v = 0, lo, hi, a, b;
    int need = 0, len = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t c = p[i];

        if (need == 0) {
            if (c < 0x80) {
                continue;
            } else if ((c & 0xe0) == 0xc0) {
                len = 2, v = c & 0x1f;
            } else if ((c & 0xf0) == 0xe0) {
                len = 3, v = c & 0x0f;
            } else if ((c & 0xf8) == 0xf0) {
                len = 4, v = c & 0x07;
            } else {
                return (int) i;
            }
            need = len - 1;
        } else {
            if ((c & 0xc0) != 0x80) {
                return (int) i;
            }
            v = v << 6 | (c & 0x3f);
            need--;
        }
        lo = v << (6 * need);
        hi = lo | ((1u << (6 * need)) - 1);
        a = lo > min[len] ? lo : min[len];
        b = hi < max[len] ? hi : max[len];
        if (a > b || (a >= 0xd800 && b <= 0xdfff)) {
            return (int) i;
        }
    }
    return need ? TRUNCATED : VALID;
}

/* The verdict of feeding the pieces p[cuts[k]..cuts[k+1]) one by one. */
static int verdict_pieces(const uint8_t *p, const size_t *cuts, int ncuts)
{
    struct ws_utf8 u;
    int k, bad = 0;

    ws_utf8_init(&u);
    for (k = 0; k + 1 < ncuts; k++) {
        if (ws_utf8_feed(&u, p + cuts[k], cuts[k + 1] - cuts[k]) < 0) {
            bad = 1;
        } else if (bad) {
            return 99;      /* -1 must be sticky */
        }
    }
    if (bad) {
        return ws_utf8_done(&u) ? 98 : 0;
    }
    return ws_utf8_done(&u) ? VALID : TRUNCATED;
}

/* Whole-buffer verdict in the same terms (0 = invalid somewhere). */
static int verdict_whole(const uint8_t *p, size_t n)
{
    size_t cuts[2] = { 0, n };

    return verdict_pieces(p, cuts, 2);
}

/* The index at which byte-at-a-time feeding first says -1. */
static int fail_index(const uint8_t *p, size_t n)
{
    struct ws_utf8 u;
    size_t i;

    ws_utf8_init(&u);
    for (i = 0; i < n; i++) {
        if (ws_utf8_feed(&u, p + i, 1) < 0) {
            return (int) i;
        }
    }
    return ws_utf8_done(&u) ? VALID : TRUNCATED;
}

static int expect_verdict(int fail_at)
{
    return fail_at >= 0 ? 0 : fail_at;
}

MK_TEST(reference_agrees_with_samples)
{
    size_t i;

    for (i = 0; i < NSAMPLES; i++) {
        int r = ref_utf8((const uint8_t *) samples[i].s, samples[i].len);

        if (r != samples[i].fail_at) {
            fprintf(stderr, "sample %zu: reference says %d\n", i, r);
        }
        CHECK_EQ_INT(r, samples[i].fail_at);
    }
}

MK_TEST(samples_whole)
{
    size_t i;

    for (i = 0; i < NSAMPLES; i++) {
        const uint8_t *p = (const uint8_t *) samples[i].s;
        struct ws_utf8 u;
        int ret;

        ws_utf8_init(&u);
        ret = ws_utf8_feed(&u, p, samples[i].len);
        CHECK_EQ_INT(ret, samples[i].fail_at >= 0 ? -1 : 0);
        CHECK_EQ_INT(ws_utf8_done(&u), samples[i].fail_at == VALID);
        CHECK_EQ_INT(ws_utf8_is_valid(p, samples[i].len),
                     samples[i].fail_at == VALID);
    }
}

MK_TEST(fail_fast)
{
    size_t i;

    for (i = 0; i < NSAMPLES; i++) {
        const uint8_t *p = (const uint8_t *) samples[i].s;
        int f = samples[i].fail_at;
        struct ws_utf8 u;

        if (fail_index(p, samples[i].len) != f) {
            fprintf(stderr, "sample %zu: fails at %d, want %d\n", i,
                    fail_index(p, samples[i].len), f);
        }
        CHECK_EQ_INT(fail_index(p, samples[i].len), f);
        if (f < 0) {
            continue;
        }
        /* Everything before the impossible byte is still fine... */
        ws_utf8_init(&u);
        CHECK_EQ_INT(ws_utf8_feed(&u, p, (size_t) f), 0);
        /* ...it alone fails, and the state stays failed. */
        CHECK_EQ_INT(ws_utf8_feed(&u, p + f, 1), -1);
        CHECK_EQ_INT(ws_utf8_done(&u), 0);
        CHECK_EQ_INT(ws_utf8_feed(&u, (const uint8_t *) "a", 1), -1);
        CHECK_EQ_INT(ws_utf8_feed(&u, p, 0), -1);
        CHECK_EQ_INT(ws_utf8_done(&u), 0);
    }
}

MK_TEST(every_split)
{
    size_t i, a, b, cuts[4];
    int bad2 = 0, bad3 = 0;

    for (i = 0; i < NSAMPLES; i++) {
        const uint8_t *p = (const uint8_t *) samples[i].s;
        size_t n = samples[i].len;
        int want = expect_verdict(samples[i].fail_at);

        CHECK_EQ_INT(verdict_whole(p, n), want);
        for (a = 0; a <= n; a++) {
            cuts[0] = 0, cuts[1] = a, cuts[2] = n;
            bad2 += verdict_pieces(p, cuts, 3) != want;
            for (b = a; b <= n; b++) {
                cuts[2] = b, cuts[3] = n;
                bad3 += verdict_pieces(p, cuts, 4) != want;
            }
        }
    }
    CHECK_EQ_INT(bad2, 0);
    CHECK_EQ_INT(bad3, 0);
}

MK_TEST(fast_path_positions)
{
    uint8_t *buf;
    size_t k, al, n = 150;
    int bad = 0;

    /* One bad byte, or one good 3-byte character, at every position and
     * alignment of a long ASCII run: the word loop must not skip it. The
     * run ends where its allocation ends, so ASan builds catch a word
     * load past the end. */
    for (al = 0; al < 8; al++) {
        uint8_t *p;

        buf = mk_mem_alloc(al + n);
        if (buf == NULL) {
            CHECK(buf != NULL);
            return;
        }
        p = buf + al;

        for (k = 0; k < n; k++) {
            memset(p, 'a', n);
            p[k] = 0xff;
            bad += fail_index(p, n) != (int) k;
            bad += verdict_whole(p, n) != 0;
            bad += !ws_utf8_is_valid(p, k);
            if (k + 3 <= n) {
                memcpy(p + k, "\xe2\x82\xac", 3);
                bad += !ws_utf8_is_valid(p, n);
                bad += verdict_whole(p, k + 2) != TRUNCATED;
                p[k + 1] = 'a';
                bad += fail_index(p, n) != (int) k + 1;
            }
        }
        mk_mem_free(buf);
    }
    CHECK_EQ_INT(bad, 0);
}

static size_t encode(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t) cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t) (0xc0 | cp >> 6);
        o[1] = (uint8_t) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t) (0xe0 | cp >> 12);
        o[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t) (0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t) (0xf0 | cp >> 18);
    o[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t) (0x80 | (cp & 0x3f));
    return 4;
}

/* Mostly-plausible text: ASCII runs, encoded code points near the
 * interesting boundaries (surrogates and > U+10FFFF included, encoded
 * naively so they must be refused), stray high bytes, cut characters. */
static size_t random_text(uint8_t *o, size_t cap)
{
    static const uint32_t edges[] = { 0x80, 0x800, 0xd800, 0xe000, 0x10000,
                                      0x110000, 0x140000, 0x1fffff };
    uint8_t tmp[4];
    size_t n = 0, want = mk_test_rng() % cap, k, l;

    while (n + 4 <= want) {
        switch (mk_test_rng() % 6) {
        case 0:
            for (k = mk_test_rng() % 20; k > 0 && n < want; k--) {
                o[n++] = (uint8_t) (mk_test_rng() % 0x80);
            }
            break;
        case 1:
            n += encode(o + n, (uint32_t) (mk_test_rng() % 0x110000));
            break;
        case 2:
            n += encode(o + n, edges[mk_test_rng() % 8] + (uint32_t) (mk_test_rng() % 5) - 2);
            break;
        case 3:
            o[n++] = (uint8_t) (0x80 | mk_test_rng());
            break;
        case 4:
            l = encode(tmp, (uint32_t) (mk_test_rng() % 0x110000));
            k = mk_test_rng() % l;
            memcpy(o + n, tmp, k);
            n += k;
            break;
        default:
            o[n++] = (uint8_t) mk_test_rng();
            break;
        }
    }
    return n;
}

MK_TEST(random_vs_reference)
{
    static uint8_t buf[96];     /* static: ASan guards globals too */
    uint8_t *p;
    size_t n, cut[3];
    int iter, r, bad_idx = 0, bad_whole = 0, bad_split = 0;
    int seen_valid = 0, seen_trunc = 0, seen_bad = 0;

    for (iter = 0; iter < 300000; iter++) {
        /* At the end of the array, so ASan builds see overreads. */
        n = random_text(buf, sizeof(buf));
        memmove(buf + sizeof(buf) - n, buf, n);
        p = buf + sizeof(buf) - n;
        r = ref_utf8(p, n);
        seen_valid += r == VALID;
        seen_trunc += r == TRUNCATED;
        seen_bad += r >= 0;
        bad_idx += fail_index(p, n) != r;
        bad_whole += verdict_whole(p, n) != expect_verdict(r);
        cut[0] = 0, cut[1] = n ? mk_test_rng() % (n + 1) : 0, cut[2] = n;
        bad_split += verdict_pieces(p, cut, 3) != expect_verdict(r);
    }
    CHECK_EQ_INT(bad_idx, 0);
    CHECK_EQ_INT(bad_whole, 0);
    CHECK_EQ_INT(bad_split, 0);
    /* The generator reaches all three outcomes often. */
    CHECK(seen_valid > 10000);
    CHECK(seen_trunc > 1000);
    CHECK(seen_bad > 10000);
}

MK_TEST(exhaustive_short)
{
    uint8_t b[3];
    uint32_t x;
    int bad = 0;

    /* Every 1-, 2- and 3-byte string. */
    for (x = 0; x < 0x1000000; x++) {
        b[0] = (uint8_t) (x >> 16), b[1] = (uint8_t) (x >> 8), b[2] = (uint8_t) x;
        if (x < 0x100) {
            bad += fail_index(b + 2, 1) != ref_utf8(b + 2, 1);
        }
        if (x < 0x10000) {
            bad += fail_index(b + 1, 2) != ref_utf8(b + 1, 2);
        }
        bad += verdict_whole(b, 3) != expect_verdict(ref_utf8(b, 3));
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    mk_test_rng_state = 0x2545f4914f6cdd1dULL;    /* this test's sequence */
    RUN(reference_agrees_with_samples);
    RUN(samples_whole);
    RUN(fail_fast);
    RUN(every_split);
    RUN(fast_path_positions);
    RUN(random_vs_reference);
    RUN(exhaustive_short);
    return mk_test_done();
}
