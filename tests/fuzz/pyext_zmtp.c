/*
 * Fuzz target for plugins/zmq/nodes/python/ext/zmtp.c, the ZMTP 3.0
 * framing of the Python node runtime's native endpoints (_tremolo): the
 * bytes it checks come from the network.
 *
 * The first input byte picks a mode; the rest is the data.
 *  - mode 0: the greeting check on the first 64 bytes, then the command
 *    parser, the READY property check and the PING context on the rest;
 *    every pointer handed back lies inside the input.
 *  - mode 1: the rest as a frame stream, read once whole and once in
 *    pieces whose sizes come from the data; both readings must report the
 *    same frames (flags, size, body bytes) and the same error, and every
 *    frame's DATA events add up to its size.
 *  - mode 2: frame headers encoded by zmtp_frame_header read back with
 *    the size and flags they were made from.
 * Any mismatch traps.
 */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/zmq/nodes/python/ext/zmtp.c"
#include "fuzz_util.h"

#define FUZZ_EVENTS 4096

struct fuzz_trace {
    size_t        n;
    uint8_t       flags[FUZZ_EVENTS];
    uint64_t      size[FUZZ_EVENTS];
    uint32_t      sum[FUZZ_EVENTS];    /* of the body bytes */
    enum zmtp_err err;
};

static struct fuzz_trace whole, pieces;

static uint32_t fuzz_sum(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = h * 31 + p[i];
    }
    return h;
}

/* Feed buf[0..len) in pieces of the sizes cut[] gives (0: all at once). */
static void fuzz_stream(const uint8_t *buf, size_t len, const uint8_t *cut,
                        size_t ncut, struct fuzz_trace *t)
{
    struct zmtp_reader r;
    size_t off = 0, k = 0, end;
    uint64_t got = 0;
    int in_frame = 0;

    zmtp_reader_init(&r);
    memset(t, 0, sizeof(*t));
    end = ncut ? 0 : len;
    for (;;) {
        const uint8_t *data = NULL;
        size_t used = 0, dlen = 0;
        enum zmtp_ev ev;

        if (ncut && off == end && end < len) {
            size_t step = (size_t) cut[k++ % ncut] % 7 + 1;
            end = end + step > len ? len : end + step;
        }
        ev = zmtp_read(&r, buf + off, end - off, &used, &data, &dlen);
        FUZZ_CHECK(used <= end - off);
        if (ev == ZMTP_EV_DATA) {
            FUZZ_CHECK(in_frame && dlen > 0 && dlen == used);
            FUZZ_CHECK(data == buf + off);
            got += dlen;
            FUZZ_CHECK(got <= t->size[t->n - 1]);
            t->sum[t->n - 1] = fuzz_sum(t->sum[t->n - 1], data, dlen);
        }
        off += used;
        switch (ev) {
        case ZMTP_EV_NEED:
            FUZZ_CHECK(off == end);
            if (end == len) {
                return;
            }
            break;
        case ZMTP_EV_ERROR:
            FUZZ_CHECK(r.err != ZMTP_OK);
            t->err = r.err;
            FUZZ_CHECK(zmtp_read(&r, buf, len, &used, &data, &dlen)
                       == ZMTP_EV_ERROR && used == 0);
            return;
        case ZMTP_EV_HEAD:
            FUZZ_CHECK(!in_frame && t->n < FUZZ_EVENTS);
            FUZZ_CHECK(r.size <= ZMTP_FRAME_MAX);
            FUZZ_CHECK(!(r.flags & ZMTP_FLAG_COMMAND) ||
                       r.size <= ZMTP_COMMAND_MAX);
            t->flags[t->n] = r.flags;
            t->size[t->n] = r.size;
            t->n++;
            in_frame = 1;
            got = 0;
            if (t->n == FUZZ_EVENTS) {
                return;
            }
            break;
        case ZMTP_EV_DATA:
            break;
        case ZMTP_EV_END:
            FUZZ_CHECK(in_frame && got == t->size[t->n - 1]);
            in_frame = 0;
            break;
        }
    }
}

static void fuzz_commands(const uint8_t *p, size_t len)
{
    struct zmtp_command c;
    const uint8_t *ctx;
    size_t clen;

    if (len >= ZMTP_GREETING_LEN) {
        enum zmtp_err e = zmtp_greeting_check(p);
        uint8_t ours[ZMTP_GREETING_LEN];

        zmtp_greeting(ours);
        FUZZ_CHECK(zmtp_greeting_check(ours) == ZMTP_OK);
        if (e == ZMTP_OK) {
            FUZZ_CHECK(p[0] == 0xFF && p[10] >= 3);
        }
        p += ZMTP_GREETING_LEN;
        len -= ZMTP_GREETING_LEN;
    }
    if (zmtp_command_parse(p, len, &c) == ZMTP_OK) {
        FUZZ_CHECK(c.namelen >= 1 && c.name == p + 1);
        FUZZ_CHECK(c.data == c.name + c.namelen);
        FUZZ_CHECK(c.data + c.datalen == p + len);
        (void) zmtp_ready_check(c.data, c.datalen);
        if (zmtp_ping_context(c.data, c.datalen, &ctx, &clen) == 0) {
            uint8_t pong[ZMTP_PONG_MAX];
            size_t n = zmtp_pong(pong, ctx, clen);
            FUZZ_CHECK(clen <= 16 && ctx + clen <= c.data + c.datalen);
            FUZZ_CHECK(n == 7 + clen && pong[1] == 5 + clen);
        }
    }
    else {
        FUZZ_CHECK(len == 0 || p[0] == 0 || (size_t) p[0] > len - 1);
    }
    (void) zmtp_ready_check(p, len);
}

static void fuzz_headers(const uint8_t *p, size_t len)
{
    while (len >= 9) {
        uint64_t size = 0;
        unsigned flags = p[0] & (ZMTP_FLAG_MORE | ZMTP_FLAG_COMMAND);
        uint8_t hdr[9];
        struct zmtp_reader r;
        const uint8_t *data;
        size_t used, dlen, hl;

        for (int i = 1; i < 9; i++) {
            size = (size << 8) | p[i];
        }
        size >>= p[1] % 64;                 /* small sizes too */
        hl = zmtp_frame_header(hdr, size, flags);
        FUZZ_CHECK(hl == (size <= 255 ? 2 : 9));
        zmtp_reader_init(&r);
        enum zmtp_ev ev = zmtp_read(&r, hdr, hl, &used, &data, &dlen);
        if (size > ZMTP_FRAME_MAX ||
            ((flags & ZMTP_FLAG_COMMAND) &&
             ((flags & ZMTP_FLAG_MORE) || size > ZMTP_COMMAND_MAX))) {
            FUZZ_CHECK(ev == ZMTP_EV_ERROR);
        }
        else {
            FUZZ_CHECK(ev == ZMTP_EV_HEAD && used == hl);
            FUZZ_CHECK(r.size == size &&
                       (r.flags & ~ZMTP_FLAG_LONG) == flags);
        }
        p += 9;
        len -= 9;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf;
    size_t len;

    if (size < 1 || size > 65536) {
        return 0;
    }
    len = size - 1;
    buf = mk_mem_alloc(len ? len : 1);     /* exact size for ASan */
    memcpy(buf, data + 1, len);
    switch (data[0] % 3) {
    case 0:
        fuzz_commands(buf, len);
        break;
    case 1:
        fuzz_stream(buf, len, NULL, 0, &whole);
        fuzz_stream(buf, len, buf, len, &pieces);
        FUZZ_CHECK(whole.err == pieces.err && whole.n == pieces.n);
        for (size_t i = 0; i < whole.n; i++) {
            FUZZ_CHECK(whole.flags[i] == pieces.flags[i]);
            FUZZ_CHECK(whole.size[i] == pieces.size[i]);
            FUZZ_CHECK(whole.sum[i] == pieces.sum[i]);
        }
        break;
    default:
        fuzz_headers(buf, len);
        break;
    }
    mk_mem_free(buf);
    return 0;
}
