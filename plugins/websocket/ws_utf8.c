/*
 * UTF-8 validation as a small table-driven DFA with an ASCII fast path.
 *
 * Hand-written because nothing we link has one: zlib and mbedTLS carry no
 * UTF-8 validator, and Debian's libwslay does framing only and validates
 * nothing. Every text message goes through here, so it has two parts:
 *
 * - A DFA, which carries a character split across pieces. A state is
 *   "what the next byte may be"; second bytes after E0, ED, F0 and F4 get
 *   their own states, because their narrower ranges are what rule out
 *   overlong forms, surrogates and code points above U+10FFFF the moment
 *   the impossible byte arrives (RFC 3629 section 4 grammar).
 * - A fast loop for the bulk of a piece, which checks whole characters
 *   with the same ranges (ws_utf8_run). The DFA alone chains two
 *   dependent loads per byte, about 0.3-0.8 GB/s on 2-byte text.
 *
 * Fail fast: -1 comes from the piece that holds the first impossible
 * byte; within one piece there is nothing faster to report.
 */
#include <string.h>

#include "plugins/websocket/ws_utf8.h"

enum {
    WS_UTF8_ACCEPT = 0, /* at a character boundary */
    WS_UTF8_TAIL1,      /* one more 80-BF */
    WS_UTF8_TAIL2,      /* two more 80-BF */
    WS_UTF8_TAIL3,      /* three more 80-BF */
    WS_UTF8_E0,         /* A0-BF, then one more (no overlong 3-byte form) */
    WS_UTF8_ED,         /* 80-9F, then one more (no surrogates) */
    WS_UTF8_F0,         /* 90-BF, then two more (no overlong 4-byte form) */
    WS_UTF8_F4,         /* 80-8F, then two more (nothing past U+10FFFF) */
    WS_UTF8_REJECT,     /* cannot be UTF-8 any more */
    WS_UTF8_STATES
};

/* Byte classes: 0 00-7F, 1 80-8F, 2 90-9F, 3 A0-BF, 4 never valid
 * (C0 C1 F5-FF), 5 C2-DF, 6 E0, 7 E1-EC EE-EF, 8 ED, 9 F0, 10 F1-F3, 11 F4.
 * 00-7F are the zero default. */
static const uint8_t ws_utf8_class[256] = {
    [0x80] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
             2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
             3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
             3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
             4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
             5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
             6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,
             9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

#define R WS_UTF8_REJECT
static const uint8_t ws_utf8_next[WS_UTF8_STATES][12] = {
    /*              00 80 90 A0 xx C2 E0 E1 ED F0 F1 F4 */
    [WS_UTF8_ACCEPT] = { 0, R, R, R, R, 1, 4, 2, 5, 6, 3, 7 },
    [WS_UTF8_TAIL1]  = { R, 0, 0, 0, R, R, R, R, R, R, R, R },
    [WS_UTF8_TAIL2]  = { R, 1, 1, 1, R, R, R, R, R, R, R, R },
    [WS_UTF8_TAIL3]  = { R, 2, 2, 2, R, R, R, R, R, R, R, R },
    [WS_UTF8_E0]     = { R, R, R, 1, R, R, R, R, R, R, R, R },
    [WS_UTF8_ED]     = { R, 1, 1, R, R, R, R, R, R, R, R, R },
    [WS_UTF8_F0]     = { R, R, 2, 2, R, R, R, R, R, R, R, R },
    [WS_UTF8_F4]     = { R, 2, R, R, R, R, R, R, R, R, R, R },
    [WS_UTF8_REJECT] = { R, R, R, R, R, R, R, R, R, R, R, R },
};
#undef R

#define WS_UTF8_HIGH 0x8080808080808080ULL

void ws_utf8_init(struct ws_utf8 *u)
{
    u->state = WS_UTF8_ACCEPT;
    u->extra = 0;
}

/* Whole characters with all their bytes at hand (4 in reach), from a
 * character boundary: ASCII a word at a time, the rest by branches on
 * the lead byte, which predict well on real text and leave no chain of
 * dependent loads. Returns where it stopped (a boundary within 3 bytes of
 * the end), or NULL at a character that cannot be valid. */
static const uint8_t *ws_utf8_run(const uint8_t *p, const uint8_t *end)
{
    uint64_t w0, w1;
    unsigned c, lo, hi;

    while (end - p >= 4) {
        c = p[0];
        if (c < 0x80) {
            /* Words only after two ASCII bytes: text with a space between
             * non-ASCII words would fail the word test every time. */
            if (*++p >= 0x80) {
                continue;
            }
            while (end - p >= 16) {
                memcpy(&w0, p, 8);
                memcpy(&w1, p + 8, 8);
                if ((w0 | w1) & WS_UTF8_HIGH) {
                    break;
                }
                p += 16;
            }
            if (end - p >= 8) {
                memcpy(&w0, p, 8);
                if (!(w0 & WS_UTF8_HIGH)) {
                    p += 8;
                }
            }
            continue;
        }
        if (c < 0xe0) {
            /* 80-C1 start nothing; C2-DF take one continuation byte. */
            if (c < 0xc2 || (p[1] & 0xc0) != 0x80) {
                return NULL;
            }
            p += 2;
        } else if (c < 0xf0) {
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
            if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80) {
                return NULL;
            }
            p += 3;
        } else {
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
            if (c > 0xf4 || p[1] < lo || p[1] > hi ||
                (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80) {
                return NULL;
            }
            p += 4;
        }
    }
    return p;
}

int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint32_t s = u->state;

    /* The DFA finishes a character the previous piece left open... */
    while (s != WS_UTF8_ACCEPT && s != WS_UTF8_REJECT && p < end) {
        s = ws_utf8_next[s][ws_utf8_class[*p++]];
    }
    /* ...the fast loop takes the middle, the DFA the last 0-3 bytes. */
    if (s == WS_UTF8_ACCEPT) {
        p = ws_utf8_run(p, end);
        if (p == NULL) {
            s = WS_UTF8_REJECT;
        } else {
            while (p < end && s != WS_UTF8_REJECT) {
                s = ws_utf8_next[s][ws_utf8_class[*p++]];
            }
        }
    }
    u->state = s;
    return s == WS_UTF8_REJECT ? -1 : 0;
}

int ws_utf8_done(const struct ws_utf8 *u)
{
    return u->state == WS_UTF8_ACCEPT;
}

int ws_utf8_is_valid(const uint8_t *p, size_t n)
{
    struct ws_utf8 u;

    ws_utf8_init(&u);
    return ws_utf8_feed(&u, p, n) == 0 && ws_utf8_done(&u);
}
