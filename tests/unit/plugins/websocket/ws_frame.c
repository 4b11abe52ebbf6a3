/* Unit tests: RFC 6455 frame headers (5.2), masking (5.3), the server's
 * header writer and close payloads (5.5.1, 7.4). */
#include <stdint.h>
#include <string.h>

#include "mk_test.h"
#include "plugins/websocket/ws_frame.c"
#include "plugins/websocket/ws_utf8.c"

/* A header built by hand from the RFC's layout, independent of
 * ws_frame_head: `form` 0 = 7-bit, 2 = 16-bit, 8 = 64-bit length. */
static size_t build_head(uint8_t *out, uint8_t b0, int form, uint64_t len,
                         const uint8_t *mask)
{
    size_t n = 2;
    int i;

    out[0] = b0;
    out[1] = (uint8_t) ((mask ? 0x80 : 0) |
                        (form == 0 ? len : form == 2 ? 126 : 127));
    for (i = form - 1; i >= 0; i--) {
        out[n++] = (uint8_t) (len >> (8 * i));
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* Every prefix is MORE, the whole header is OK whatever follows it. */
static void check_prefixes(const uint8_t *h, size_t hl)
{
    struct ws_frame f;
    uint8_t buf[WS_HEAD_MAX + 8];
    size_t k;

    for (k = 0; k < hl; k++) {
        CHECK_EQ_INT(ws_frame_parse(h, k, &f), WS_FRAME_MORE);
    }
    memcpy(buf, h, hl);
    memset(buf + hl, 0xff, 8);
    CHECK_EQ_INT(ws_frame_parse(buf, hl + 8, &f), WS_FRAME_OK);
    CHECK_EQ_INT(f.head_len, hl);
}

MK_TEST(header_forms)
{
    static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    static const struct { int form; uint64_t len; } cases[] = {
        { 0, 0 }, { 0, 5 }, { 0, 125 }, { 2, 126 }, { 2, 256 },
        { 2, 65535 }, { 8, 65536 }, { 8, 0x100000005ULL },
        { 8, 0x7fffffffffffffffULL },
    };
    struct ws_frame f;
    uint8_t h[WS_HEAD_MAX];
    size_t i, hl;
    int m;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (m = 0; m < 2; m++) {
            hl = build_head(h, 0x82, cases[i].form, cases[i].len,
                            m ? key : NULL);
            CHECK_EQ_INT(hl, 2 + cases[i].form + 4 * m);
            memset(&f, 0xaa, sizeof(f));
            CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_OK);
            CHECK_EQ_INT(f.fin, 1);
            CHECK_EQ_INT(f.rsv, 0);
            CHECK_EQ_INT(f.opcode, WS_OP_BINARY);
            CHECK_EQ_INT(f.masked, m);
            CHECK(f.len == cases[i].len);
            CHECK_EQ_INT(f.head_len, hl);
            CHECK(memcmp(f.mask, m ? key : (const uint8_t *) "\0\0\0\0",
                         4) == 0);
            check_prefixes(h, hl);
        }
    }
}

MK_TEST(rfc_examples)
{
    /* RFC 6455 5.7: a masked "Hello" and a 256-byte unmasked binary. */
    static const uint8_t hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    static const uint8_t bin256[] = { 0x82, 0x7e, 0x01, 0x00 };
    static const uint8_t frag[] = { 0x01, 0x03, 'H', 'e', 'l' };
    struct ws_frame f;
    uint8_t pl[5];

    CHECK_EQ_INT(ws_frame_parse(hello, sizeof(hello), &f), WS_FRAME_OK);
    CHECK_EQ_INT(f.opcode, WS_OP_TEXT);
    CHECK_EQ_INT(f.head_len, 6);
    CHECK_EQ_INT(f.len, 5);
    memcpy(pl, hello + f.head_len, 5);
    ws_mask(pl, 5, f.mask, 0);
    CHECK_EQ_MEM(pl, 5, "Hello");

    CHECK_EQ_INT(ws_frame_parse(bin256, 4, &f), WS_FRAME_OK);
    CHECK_EQ_INT(f.len, 256);
    CHECK_EQ_INT(f.masked, 0);

    CHECK_EQ_INT(ws_frame_parse(frag, sizeof(frag), &f), WS_FRAME_OK);
    CHECK_EQ_INT(f.fin, 0);
    CHECK_EQ_INT(f.opcode, WS_OP_TEXT);
}

MK_TEST(bits_passed_through)
{
    struct ws_frame f;
    uint8_t h[2];
    unsigned rsv;

    /* RSV bits are reported, not judged; CONT without FIN is fine. */
    for (rsv = 0; rsv < 8; rsv++) {
        h[0] = (uint8_t) (0x80 | rsv << 4 | WS_OP_TEXT);
        h[1] = 3;
        CHECK_EQ_INT(ws_frame_parse(h, 2, &f), WS_FRAME_OK);
        CHECK_EQ_INT(f.rsv, rsv);
    }
    h[0] = WS_OP_CONT;
    h[1] = 0;
    CHECK_EQ_INT(ws_frame_parse(h, 2, &f), WS_FRAME_OK);
    CHECK_EQ_INT(f.fin, 0);
    CHECK_EQ_INT(f.opcode, WS_OP_CONT);
    CHECK_EQ_INT(f.len, 0);
    /* Control frames at their 125-byte limit. */
    for (h[0] = 0x88; h[0] <= 0x8a; h[0]++) {
        h[1] = 125;
        CHECK_EQ_INT(ws_frame_parse(h, 2, &f), WS_FRAME_OK);
        CHECK_EQ_INT(f.len, 125);
    }
}

MK_TEST(reserved_opcodes)
{
    struct ws_frame f;
    uint8_t h[2];
    unsigned op, fin;

    for (op = 0; op < 16; op++) {
        int reserved = (op >= 3 && op <= 7) || op >= 0xb;

        for (fin = 0; fin < 2; fin++) {
            h[0] = (uint8_t) (fin << 7 | op);
            h[1] = 0;
            if (reserved) {
                /* Known from the first byte. */
                CHECK_EQ_INT(ws_frame_parse(h, 1, &f), WS_FRAME_PROTOCOL);
                CHECK_EQ_INT(ws_frame_parse(h, 2, &f), WS_FRAME_PROTOCOL);
            } else if (op >= 8 && !fin) {
                CHECK_EQ_INT(ws_frame_parse(h, 1, &f), WS_FRAME_PROTOCOL);
                CHECK_EQ_INT(ws_frame_parse(h, 2, &f), WS_FRAME_PROTOCOL);
            } else {
                CHECK_EQ_INT(ws_frame_parse(h, 1, &f), WS_FRAME_MORE);
                CHECK_EQ_INT(ws_frame_parse(h, 2, &f), WS_FRAME_OK);
                CHECK_EQ_INT(f.opcode, op);
            }
        }
    }
}

MK_TEST(control_too_long)
{
    struct ws_frame f;
    uint8_t h[WS_HEAD_MAX];
    size_t hl;
    uint8_t op;

    for (op = 0x88; op <= 0x8a; op++) {
        hl = build_head(h, op, 2, 126, NULL);
        CHECK_EQ_INT(ws_frame_parse(h, 2, &f), WS_FRAME_PROTOCOL);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        hl = build_head(h, op, 8, 70000, NULL);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        /* Non-minimal short length in a control frame: still refused. */
        hl = build_head(h, op, 2, 5, NULL);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
    }
}

MK_TEST(length_encoding)
{
    static const uint8_t key[4] = { 1, 2, 3, 4 };
    struct ws_frame f;
    uint8_t h[WS_HEAD_MAX];
    size_t hl;
    int m;

    for (m = 0; m < 2; m++) {
        const uint8_t *k = m ? key : NULL;

        /* 126 form must carry >= 126. */
        hl = build_head(h, 0x82, 2, 0, k);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        hl = build_head(h, 0x82, 2, 125, k);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        CHECK_EQ_INT(ws_frame_parse(h, 3, &f), WS_FRAME_MORE);
        CHECK_EQ_INT(ws_frame_parse(h, 4, &f), WS_FRAME_PROTOCOL);
        hl = build_head(h, 0x82, 2, 126, k);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_OK);
        /* 127 form must carry >= 65536. */
        hl = build_head(h, 0x82, 8, 0, k);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        hl = build_head(h, 0x82, 8, 125, k);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        hl = build_head(h, 0x82, 8, 65535, k);
        CHECK_EQ_INT(ws_frame_parse(h, 9, &f), WS_FRAME_MORE);
        CHECK_EQ_INT(ws_frame_parse(h, 10, &f), WS_FRAME_PROTOCOL);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        hl = build_head(h, 0x82, 8, 65536, k);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_OK);
        CHECK_EQ_INT(f.len, 65536);
        /* The most significant bit of a 64-bit length must be 0; that is
         * visible from the first length byte. */
        hl = build_head(h, 0x82, 8, 0x8000000000000000ULL, k);
        CHECK_EQ_INT(ws_frame_parse(h, 3, &f), WS_FRAME_PROTOCOL);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
        hl = build_head(h, 0x82, 8, UINT64_MAX, k);
        CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_PROTOCOL);
    }
}

MK_TEST(head_roundtrip)
{
    static const uint64_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536,
                                     0x100000005ULL, 0x7fffffffffffffffULL };
    static const int ops[] = { WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY,
                               WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
    struct ws_frame f;
    uint8_t h[10 + 4];
    size_t i, j, hl, want;
    int fin, rsv1;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        want = lens[i] < 126 ? 2 : lens[i] < 65536 ? 4 : 10;
        for (j = 0; j < sizeof(ops) / sizeof(ops[0]); j++) {
            for (fin = 0; fin < 2; fin++) {
                for (rsv1 = 0; rsv1 < 2; rsv1++) {
                    int ctl = ops[j] >= WS_OP_CLOSE;

                    memset(h, 0xee, sizeof(h));
                    hl = ws_frame_head(h, fin, rsv1, ops[j], lens[i]);
                    CHECK_EQ_INT(hl, want);
                    CHECK_EQ_INT(h[hl], 0xee);    /* wrote no further */
                    if (ctl && (!fin || lens[i] > 125)) {
                        CHECK_EQ_INT(ws_frame_parse(h, hl, &f),
                                     WS_FRAME_PROTOCOL);
                        continue;
                    }
                    CHECK_EQ_INT(ws_frame_parse(h, hl, &f), WS_FRAME_OK);
                    CHECK_EQ_INT(f.fin, fin);
                    CHECK_EQ_INT(f.rsv, rsv1 ? WS_RSV1 : 0);
                    CHECK_EQ_INT(f.opcode, ops[j]);
                    CHECK_EQ_INT(f.masked, 0);
                    CHECK(f.len == lens[i]);
                    CHECK_EQ_INT(f.head_len, hl);
                    check_prefixes(h, hl);
                }
            }
        }
    }
    /* Byte-exact against RFC 6455 5.7's unmasked "Hello". */
    hl = ws_frame_head(h, 1, 0, WS_OP_TEXT, 5);
    CHECK(hl == 2 && h[0] == 0x81 && h[1] == 0x05);
    hl = ws_frame_head(h, 1, 0, WS_OP_BINARY, 65536);
    CHECK(hl == 10 && memcmp(h, "\x82\x7f\0\0\0\0\0\x01\0\0", 10) == 0);
}

static void mask_ref(uint8_t *p, size_t len, const uint8_t mask[4],
                     uint64_t offset)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] ^= mask[(offset + i) % 4];
    }
}

MK_TEST(mask_vs_reference)
{
    uint8_t orig[600], a[600 + 16], b[600 + 16], *pa, *pb;
    uint8_t key[4];
    uint64_t offset;
    size_t len, align, i, done, piece;
    int iter, bad = 0, bad_pieces = 0, bad_twice = 0;

    for (iter = 0; iter < 20000; iter++) {
        len = mk_test_rng() % (iter < 2000 ? 40 : sizeof(orig));
        align = mk_test_rng() % 16;
        offset = mk_test_rng() % 4 == 0 ? (uint64_t) (mk_test_rng() >> 1) : mk_test_rng() % 64;
        for (i = 0; i < 4; i++) {
            key[i] = (uint8_t) mk_test_rng();
        }
        for (i = 0; i < len; i++) {
            orig[i] = (uint8_t) mk_test_rng();
        }
        /* Guard bytes around the region catch writes outside it. */
        memset(a, 0x5a, sizeof(a));
        memset(b, 0x5a, sizeof(b));
        pa = a + align;
        pb = b + (mk_test_rng() % 16);
        memcpy(pa, orig, len);
        memcpy(pb, orig, len);
        ws_mask(pa, len, key, offset);
        mask_ref(pb, len, key, offset);
        if (memcmp(pa, pb, len) != 0 ||
            (align > 0 && a[align - 1] != 0x5a) ||
            (align + len < sizeof(a) && a[align + len] != 0x5a)) {
            bad++;
        }
        /* The same payload masked in random pieces. */
        memcpy(pa, orig, len);
        for (done = 0; done < len; done += piece) {
            size_t left = len - done;
            size_t cap = mk_test_rng() % 2 && left > 9 ? 9 : left;

            piece = 1 + mk_test_rng() % cap;
            ws_mask(pa + done, piece, key, offset + done);
        }
        if (memcmp(pa, pb, len) != 0) {
            bad_pieces++;
        }
        ws_mask(pa, len, key, offset);
        if (memcmp(pa, orig, len) != 0) {
            bad_twice++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(bad_pieces, 0);
    CHECK_EQ_INT(bad_twice, 0);
    /* len 0 touches nothing. */
    a[0] = 0x11;
    ws_mask(a, 0, key, 3);
    CHECK_EQ_INT(a[0], 0x11);
}

/* The set of valid wire codes, from RFC 6455 7.4.1 and the IANA registry,
 * written as a list rather than as ranges. */
static int close_code_expected(unsigned c)
{
    switch (c) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:
        return 1;
    }
    return c >= 3000 && c < 5000;
}

MK_TEST(close_codes)
{
    unsigned c;
    int bad = 0;

    CHECK(ws_close_code_valid(1000));
    CHECK(ws_close_code_valid(1003));
    CHECK(!ws_close_code_valid(1004));
    CHECK(!ws_close_code_valid(1005));
    CHECK(!ws_close_code_valid(1006));
    CHECK(ws_close_code_valid(1007));
    CHECK(ws_close_code_valid(1011));
    CHECK(ws_close_code_valid(1014));
    CHECK(!ws_close_code_valid(1015));
    CHECK(!ws_close_code_valid(1016));
    CHECK(!ws_close_code_valid(999));
    CHECK(!ws_close_code_valid(0));
    CHECK(!ws_close_code_valid(2999));
    CHECK(ws_close_code_valid(3000));
    CHECK(ws_close_code_valid(4999));
    CHECK(!ws_close_code_valid(5000));
    CHECK(!ws_close_code_valid(65535));
    CHECK(!ws_close_code_valid(0x100000u + 1000));
    for (c = 0; c < 70000; c++) {
        if (!ws_close_code_valid(c) != !close_code_expected(c)) {
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

MK_TEST(close_payload_basic)
{
    uint8_t out[WS_CONTROL_MAX + 8];
    size_t n;

    n = ws_close_payload(out, 1000, NULL);
    CHECK_EQ_INT(n, 2);
    CHECK(out[0] == 0x03 && out[1] == 0xe8);
    n = ws_close_payload(out, 4999, "bye");
    CHECK_EQ_INT(n, 5);
    CHECK(out[0] == 0x13 && out[1] == 0x87);
    CHECK_EQ_MEM(out + 2, n - 2, "bye");
    n = ws_close_payload(out, 1001, "");
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ws_close_payload(out, 0, "ignored"), 0);
}

/* A reason of `pre` ASCII bytes, then the character ch, then "zz": the
 * payload keeps the longest prefix within 123 bytes that ends on a
 * character boundary. */
static void check_cut(size_t pre, const char *ch)
{
    char reason[200];
    uint8_t out[WS_CONTROL_MAX + 16];
    size_t n, cl = strlen(ch), total, want;

    memset(reason, 'a', pre);
    memcpy(reason + pre, ch, cl);
    memcpy(reason + pre + cl, "zz", 3);
    total = pre + cl + 2;
    if (total <= 123) {
        want = total;
    } else if (pre + cl <= 123) {
        want = 123;
    } else {
        want = pre < 123 ? pre : 123;
    }
    memset(out, 0xee, sizeof(out));
    n = ws_close_payload(out, 1008, reason);
    CHECK_EQ_INT(n, 2 + want);
    CHECK(n <= WS_CONTROL_MAX);
    CHECK_EQ_INT(out[WS_CONTROL_MAX], 0xee);
    CHECK(memcmp(out + 2, reason, n - 2) == 0);
    CHECK(ws_utf8_is_valid(out + 2, n - 2));
}

MK_TEST(close_payload_cut)
{
    static const char *chars[] = { "x", "\xc3\xa9", "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80" };
    size_t pre, i;

    for (i = 0; i < 4; i++) {
        for (pre = 110; pre <= 130; pre++) {
            check_cut(pre, chars[i]);
        }
    }
}

/* A node's `websocket/close` body: code + UTF-8 reason, empty = 1000,
 * anything a client could not send (RFC 6455 7.4) refused. */
MK_TEST(close_from_node)
{
    char reason[WS_CONTROL_MAX];
    uint8_t body[300], out[WS_CONTROL_MAX + 8];
    size_t n;

    CHECK_EQ_INT(ws_close_from_node(NULL, 0, reason), 1000);
    CHECK_EQ_INT(reason[0], 0);
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x0f", 1, reason), -1);
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x0f\xa0", 2, reason),
                 4000);
    CHECK_EQ_INT(reason[0], 0);
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x03\xe8" "bye", 5,
                                    reason), 1000);
    CHECK(strcmp(reason, "bye") == 0);
    /* 1005/1006/1015 are never sent, 999 and 5000 do not exist */
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x03\xed", 2, reason),
                 -1);
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x03\xee", 2, reason),
                 -1);
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x03\xe7", 2, reason),
                 -1);
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x13\x88", 2, reason),
                 -1);
    /* a reason that is not UTF-8 */
    CHECK_EQ_INT(ws_close_from_node((const uint8_t *) "\x03\xe8\xc3", 3,
                                    reason), -1);
    /* a long reason is kept to 124 bytes, and the payload cut to 123 at a
     * character boundary: 122 ASCII then a 2-byte character */
    body[0] = 0x0f;
    body[1] = 0xa1;
    memset(body + 2, 'a', 122);
    memcpy(body + 124, "\xc3\xa9xyz", 5);
    CHECK_EQ_INT(ws_close_from_node(body, 129, reason), 4001);
    CHECK_EQ_INT(strlen(reason), WS_CONTROL_MAX - 1);
    n = ws_close_payload(out, 4001, reason);
    CHECK_EQ_INT(n, 2 + 122);
}

int main(void)
{
    RUN(header_forms);
    RUN(rfc_examples);
    RUN(bits_passed_through);
    RUN(reserved_opcodes);
    RUN(control_too_long);
    RUN(length_encoding);
    RUN(head_roundtrip);
    RUN(mask_vs_reference);
    RUN(close_codes);
    RUN(close_payload_basic);
    RUN(close_payload_cut);
    RUN(close_from_node);
    return mk_test_done();
}
