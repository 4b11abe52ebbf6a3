/*
 * RFC 6455 framing (section 5), hand-written rather than taken from wslay
 * (Debian libwslay-dev). A broadcast must encode a frame once and share the
 * bytes across thousands of connections through the core's refcounted
 * write buffers; wslay's event API copies every queued message per
 * connection and does its own socket I/O through callbacks. The
 * per-connection state must also stay within a few hundred bytes for the
 * 4 KiB-per-idle-connection target. What we need is a header parser over
 * the connection's input buffer and a masking loop, about 100 lines.
 */
#include <string.h>

#include "plugins/websocket/ws_frame.h"
#include "plugins/websocket/ws_utf8.h"

static int ws_opcode_is_known(unsigned op)
{
    return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

int ws_frame_parse(const uint8_t *buf, size_t n, struct ws_frame *f)
{
    unsigned op, len7, masked, i;
    size_t ext, need;
    uint64_t len;

    if (n < 1) {
        return WS_FRAME_MORE;
    }
    op = buf[0] & 0x0f;
    if (!ws_opcode_is_known(op)) {
        return WS_FRAME_PROTOCOL;
    }
    /* Control frames may not be fragmented (5.5). */
    if (op >= WS_OP_CLOSE && !(buf[0] & 0x80)) {
        return WS_FRAME_PROTOCOL;
    }
    if (n < 2) {
        return WS_FRAME_MORE;
    }
    masked = buf[1] >> 7;
    len7 = buf[1] & 0x7f;
    /* Any length over 125 needs the 126 or 127 form. */
    if (op >= WS_OP_CLOSE && len7 > WS_CONTROL_MAX) {
        return WS_FRAME_PROTOCOL;
    }
    ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (ext == 8 && n >= 3 && (buf[2] & 0x80)) {
        return WS_FRAME_PROTOCOL;
    }
    if (n < 2 + ext) {
        return WS_FRAME_MORE;
    }
    len = len7;
    if (ext > 0) {
        len = 0;
        for (i = 0; i < ext; i++) {
            len = (len << 8) | buf[2 + i];
        }
        if ((ext == 2 && len < 126) || (ext == 8 && len < 65536)) {
            return WS_FRAME_PROTOCOL;
        }
    }
    need = 2 + ext + (masked ? 4 : 0);
    if (n < need) {
        return WS_FRAME_MORE;
    }
    f->fin = buf[0] >> 7;
    f->rsv = (buf[0] >> 4) & 7;
    f->opcode = (uint8_t) op;
    f->masked = (uint8_t) masked;
    if (masked) {
        memcpy(f->mask, buf + 2 + ext, 4);
    } else {
        memset(f->mask, 0, 4);
    }
    f->len = len;
    f->head_len = need;
    return WS_FRAME_OK;
}

void ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
    unsigned r = (unsigned) (offset & 3);
    uint8_t k[8];
    uint64_t m, w0, w1, w2, w3;
    size_t i;

    /* Step to an 8-byte boundary so the word loads below are aligned on
     * every CPU; memcpy makes them legal C and compiles to plain moves. */
    while (len > 0 && ((uintptr_t) p & 7) != 0) {
        *p++ ^= mask[r++ & 3];
        len--;
    }
    for (i = 0; i < 8; i++) {
        k[i] = mask[(r + i) & 3];
    }
    memcpy(&m, k, 8);
    /* 8 is a multiple of 4, so the key phase is the same for every word. */
    for (; len >= 32; p += 32, len -= 32) {
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        memcpy(&w2, p + 16, 8);
        memcpy(&w3, p + 24, 8);
        w0 ^= m;
        w1 ^= m;
        w2 ^= m;
        w3 ^= m;
        memcpy(p, &w0, 8);
        memcpy(p + 8, &w1, 8);
        memcpy(p + 16, &w2, 8);
        memcpy(p + 24, &w3, 8);
    }
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w0, p, 8);
        w0 ^= m;
        memcpy(p, &w0, 8);
    }
    for (i = 0; i < len; i++) {
        p[i] ^= k[i];
    }
}

size_t ws_frame_head(uint8_t *out, int fin, int rsv1, int opcode, uint64_t len)
{
    int i;

    out[0] = (uint8_t) ((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    if (len <= WS_CONTROL_MAX) {
        out[1] = (uint8_t) len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
        return 4;
    }
    out[1] = 127;
    for (i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t) (len >> (56 - 8 * i));
    }
    return 10;
}

int ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) ||
           (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

size_t ws_close_payload(uint8_t *out, unsigned code, const char *reason)
{
    size_t n = 0;
    int back;

    if (code == 0) {
        return 0;
    }
    out[0] = (uint8_t) (code >> 8);
    out[1] = (uint8_t) code;
    if (reason != NULL) {
        n = strnlen(reason, WS_CONTROL_MAX - 1);
        if (n > WS_CONTROL_MAX - 2) {
            /* reason[n] is the first byte dropped: if it continues a
             * character, drop that character's earlier bytes too. A
             * character has at most three continuation bytes. */
            n = WS_CONTROL_MAX - 2;
            for (back = 0; back < 3 && n > 0 &&
                 ((uint8_t) reason[n] & 0xc0) == 0x80; back++) {
                n--;
            }
        }
        memcpy(out + 2, reason, n);
    }
    return 2 + n;
}

int ws_close_from_node(const uint8_t *p, size_t len, char *reason)
{
    unsigned code;
    size_t n;

    reason[0] = '\0';
    if (len == 0) {
        return 1000;
    }
    if (len == 1) {
        return -1;
    }
    code = (unsigned) (p[0] << 8 | p[1]);
    if (!ws_close_code_valid(code) || !ws_utf8_is_valid(p + 2, len - 2)) {
        return -1;
    }
    n = len - 2 < WS_CONTROL_MAX - 1 ? len - 2 : WS_CONTROL_MAX - 1;
    memcpy(reason, p + 2, n);
    reason[n] = '\0';
    return (int) code;
}
