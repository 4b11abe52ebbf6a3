/*
 * Fuzz target for plugins/websocket/ws_frame.c and ws_utf8.c.
 *
 * The input is read as a stream of frames the way the plugin reads its
 * input buffer: parse a header, unmask the payload that is present (in two
 * pieces, compared with one pass and with a byte-at-a-time reference),
 * repeat until MORE or an error. At each header every prefix must give
 * MORE and then one steady verdict, and an accepted header (minimal
 * encoding is enforced) must come back byte for byte from ws_frame_head.
 * The UTF-8 validator must give the same verdict on the whole input, on
 * two pieces and byte by byte. A node's close body (ws_close_from_node)
 * must match its definition and make a valid, UTF-8 close payload. Any
 * disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/websocket/ws_frame.c"
#include "plugins/websocket/ws_utf8.c"
#include "fuzz_util.h"


/* Prefixes give MORE up to some length, then one verdict that never
 * changes; beyond WS_HEAD_MAX bytes nothing more is read. */
static int fuzz_prefixes(const uint8_t *buf, size_t n)
{
    struct ws_frame f;
    size_t k, top = n < WS_HEAD_MAX ? n : WS_HEAD_MAX;
    int first = WS_FRAME_MORE, r;

    for (k = 0; k <= top; k++) {
        r = ws_frame_parse(buf, k, &f);
        FUZZ_CHECK(r == WS_FRAME_OK || r == WS_FRAME_MORE ||
                   r == WS_FRAME_PROTOCOL);
        if (first == WS_FRAME_MORE) {
            first = r;
        } else {
            FUZZ_CHECK(r == first);
        }
    }
    FUZZ_CHECK(ws_frame_parse(buf, n, &f) == first);
    return first;
}

static void fuzz_header(const uint8_t *buf, size_t n, const struct ws_frame *f)
{
    struct ws_frame g;
    uint8_t h[10];
    size_t hl;

    FUZZ_CHECK(f->head_len >= 2 && f->head_len <= WS_HEAD_MAX &&
               f->head_len <= n);
    FUZZ_CHECK(f->fin <= 1 && f->masked <= 1 && f->rsv <= 7);
    FUZZ_CHECK(f->len >> 63 == 0);
    FUZZ_CHECK(f->opcode <= WS_OP_BINARY ||
               (f->opcode >= WS_OP_CLOSE && f->opcode <= WS_OP_PONG));
    if (f->opcode >= WS_OP_CLOSE) {
        FUZZ_CHECK(f->fin && f->len <= WS_CONTROL_MAX);
    }
    FUZZ_CHECK(f->masked ? memcmp(f->mask, buf + f->head_len - 4, 4) == 0
                         : memcmp(f->mask, "\0\0\0\0", 4) == 0);

    hl = ws_frame_head(h, f->fin, f->rsv & WS_RSV1, f->opcode, f->len);
    FUZZ_CHECK(hl + (f->masked ? 4 : 0) == f->head_len);
    FUZZ_CHECK(h[0] == (buf[0] & 0xcf));          /* RSV2/3 not written */
    FUZZ_CHECK(h[1] == (buf[1] & 0x7f));          /* nor the mask bit */
    FUZZ_CHECK(memcmp(h + 2, buf + 2, hl - 2) == 0);
    FUZZ_CHECK(ws_frame_parse(h, hl, &g) == WS_FRAME_OK);
    FUZZ_CHECK(g.len == f->len && g.opcode == f->opcode && g.fin == f->fin &&
               g.head_len == hl && g.masked == 0);
}

static void fuzz_unmask(uint8_t *p, size_t len, const uint8_t mask[4],
                        size_t split)
{
    uint8_t *whole;
    size_t i;

    if (len == 0) {
        return;
    }
    whole = mk_mem_alloc(len);
    if (whole == NULL) {
        return;
    }
    memcpy(whole, p, len);
    ws_mask(whole, len, mask, 0);
    split %= len + 1;
    ws_mask(p, split, mask, 0);
    ws_mask(p + split, len - split, mask, split);
    FUZZ_CHECK(memcmp(whole, p, len) == 0);
    /* And against the definition, by undoing it a byte at a time. */
    for (i = 0; i < len; i++) {
        whole[i] ^= mask[i & 3];
    }
    ws_mask(p, len, mask, 0);
    FUZZ_CHECK(memcmp(whole, p, len) == 0);
    mk_mem_free(whole);
}

static void fuzz_frames(uint8_t *buf, size_t size)
{
    struct ws_frame f;
    size_t pos = 0, plen;
    int r;

    while (pos < size) {
        r = fuzz_prefixes(buf + pos, size - pos);
        if (r == WS_FRAME_MORE) {
            FUZZ_CHECK(size - pos < WS_HEAD_MAX);
            return;
        }
        if (r == WS_FRAME_PROTOCOL) {
            return;
        }
        FUZZ_CHECK(ws_frame_parse(buf + pos, size - pos, &f) == WS_FRAME_OK);
        fuzz_header(buf + pos, size - pos, &f);
        pos += f.head_len;
        plen = f.len < size - pos ? (size_t) f.len : size - pos;
        if (f.masked) {
            fuzz_unmask(buf + pos, plen, f.mask, f.mask[0] ^ f.mask[3]);
        }
        pos += plen;
    }
}

static int fuzz_utf8_verdict(struct ws_utf8 *u, int failed)
{
    return failed ? -1 : ws_utf8_done(u);
}

static void fuzz_utf8(const uint8_t *p, size_t n, size_t split)
{
    struct ws_utf8 a, b, c;
    int va, vb, fb, fc = 0;
    size_t i;

    ws_utf8_init(&a);
    va = fuzz_utf8_verdict(&a, ws_utf8_feed(&a, p, n) < 0);

    split %= n + 1;
    ws_utf8_init(&b);
    fb = ws_utf8_feed(&b, p, split) < 0;
    fb |= ws_utf8_feed(&b, p + split, n - split) < 0;
    vb = fuzz_utf8_verdict(&b, fb);
    FUZZ_CHECK(va == vb);
    FUZZ_CHECK(ws_utf8_is_valid(p, n) == (va == 1));

    if (n <= 512) {
        ws_utf8_init(&c);
        for (i = 0; i < n; i++) {
            if (ws_utf8_feed(&c, p + i, 1) < 0) {
                fc = 1;
            } else {
                FUZZ_CHECK(!fc);    /* once failed, always failed */
            }
        }
        FUZZ_CHECK(va == fuzz_utf8_verdict(&c, fc));
    }
}

static void fuzz_head_roundtrip(const uint8_t *d, size_t size)
{
    static const uint8_t ops[] = { WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY,
                                   WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
    struct ws_frame f;
    uint8_t h[WS_HEAD_MAX];
    uint64_t len = 0;
    size_t hl, i;
    int op, fin, rsv1;

    if (size < 9) {
        return;
    }
    for (i = 1; i < 9; i++) {
        len = len << 8 | d[i];
    }
    len = (len & 0x7fffffffffffffffULL) >> (d[0] & 63);
    op = ops[(d[0] >> 2) % 6];
    fin = d[0] & 1;
    rsv1 = (d[0] >> 1) & 1;
    if (op >= WS_OP_CLOSE) {
        fin = 1;
        len %= WS_CONTROL_MAX + 1;
    }
    hl = ws_frame_head(h, fin, rsv1, op, len);
    FUZZ_CHECK(hl == (len < 126 ? 2u : len < 65536 ? 4u : 10u));
    FUZZ_CHECK(ws_frame_parse(h, hl, &f) == WS_FRAME_OK);
    FUZZ_CHECK(f.fin == fin && f.rsv == (rsv1 ? WS_RSV1 : 0) &&
               f.opcode == op && f.masked == 0 && f.len == len &&
               f.head_len == hl);
}

/* A node's close body: the verdict matches its definition, and the
 * reason always makes a payload within a control frame's limit. */
static void fuzz_node_close(const uint8_t *d, size_t size)
{
    char reason[WS_CONTROL_MAX];
    uint8_t out[WS_CONTROL_MAX];
    int code = ws_close_from_node(d, size, reason);

    if (size == 0) {
        FUZZ_CHECK(code == 1000);
        return;
    }
    if (size == 1 || !ws_close_code_valid((unsigned) (d[0] << 8 | d[1])) ||
        !ws_utf8_is_valid(d + 2, size - 2)) {
        FUZZ_CHECK(code == -1);
        return;
    }
    FUZZ_CHECK(code == (d[0] << 8 | d[1]));
    FUZZ_CHECK(strlen(reason) < WS_CONTROL_MAX);
    FUZZ_CHECK(ws_close_payload(out, (unsigned) code, reason) <=
               WS_CONTROL_MAX);
    FUZZ_CHECK(ws_utf8_is_valid(out + 2, ws_close_payload(out, (unsigned) code,
                                                          reason) - 2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf;

    fuzz_node_close(data, size);

    fuzz_utf8(data, size, size ? data[size - 1] : 0);
    fuzz_head_roundtrip(data, size);

    /* An exactly-sized, writable copy: ASan sees any access past it. */
    buf = mk_mem_alloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    fuzz_frames(buf, size);
    mk_mem_free(buf);
    return 0;
}
