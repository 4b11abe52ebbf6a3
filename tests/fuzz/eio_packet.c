/*
 * Fuzz target for plugins/socketio/eio_packet.c: Engine.IO v4 packets.
 *
 * The input is a polling POST body. A payload that decodes must come back
 * byte for byte when its packets are appended again (base64 is canonical,
 * so the encoding is unique), and decode to the same packets; fn's stop
 * value must end the walk at once. The input is also one WebSocket frame
 * (text and binary), and a sid for the OPEN JSON, whose output must be one
 * valid JSON object. Any violation traps.
 */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/socketio/sio_json.c"
#include "plugins/socketio/eio_packet.c"
#include "fuzz_util.h"

struct fuzz_eio {
    struct mk_buf again;            /* the packets appended again */
    struct mk_buf log;              /* type, binary, data of each */
    int calls;
    int stop_at;
};

static int fuzz_on_packet(void *ctx, const struct eio_packet *pk)
{
    struct fuzz_eio *f = ctx;
    char head[2];

    FUZZ_CHECK(pk->type >= EIO_CLOSE && pk->type <= EIO_NOOP);
    FUZZ_CHECK(!pk->binary || pk->type == EIO_MESSAGE);
    FUZZ_CHECK(pk->data != NULL || pk->len == 0);
    FUZZ_CHECK(f->stop_at == 0 || f->calls < f->stop_at);
    f->calls++;
    FUZZ_CHECK(eio_payload_append(&f->again, pk) == 0);
    head[0] = (char) pk->type;
    head[1] = (char) pk->binary;
    mk_buf_append(&f->log, head, 2);
    mk_buf_append(&f->log, &pk->len, sizeof(pk->len));
    mk_buf_append(&f->log, pk->data, pk->len);
    return f->calls == f->stop_at ? 5 : 0;
}

static void fuzz_payload(const char *p, size_t n)
{
    struct fuzz_eio a = { .stop_at = 0 }, b = { .stop_at = 0 };
    int r;

    mk_buf_init(&a.again);
    mk_buf_init(&a.log);
    mk_buf_init(&b.again);
    mk_buf_init(&b.log);
    r = eio_payload_decode(p, n, fuzz_on_packet, &a);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r == -1) {
        FUZZ_CHECK(a.calls == 0);   /* a malformed POST delivers nothing */
        goto done;
    }
    FUZZ_CHECK(a.calls >= 1);
    FUZZ_CHECK(a.again.len == n && memcmp(a.again.data, p, n) == 0);
    FUZZ_CHECK(eio_payload_decode(a.again.data, a.again.len, fuzz_on_packet,
                                  &b) == 0);
    FUZZ_CHECK(a.log.len == b.log.len &&
               memcmp(a.log.data, b.log.data, a.log.len) == 0);
    /* a stop value ends the walk at that packet */
    b.calls = 0;
    b.stop_at = (a.calls + 1) / 2;
    b.again.len = 0;
    FUZZ_CHECK(eio_payload_decode(p, n, fuzz_on_packet, &b) == 5);
    FUZZ_CHECK(b.calls == b.stop_at);

done:
    mk_buf_release(&a.again);
    mk_buf_release(&a.log);
    mk_buf_release(&b.again);
    mk_buf_release(&b.log);
}

static void fuzz_frame(const char *p, size_t n)
{
    struct eio_packet pk;
    int r;

    FUZZ_CHECK(eio_frame_decode(p, n, 1, &pk) == 0);
    FUZZ_CHECK(pk.binary && pk.type == EIO_MESSAGE && pk.data == p &&
               pk.len == n);
    r = eio_frame_decode(p, n, 0, &pk);
    if (n == 0 || p[0] < '0' || p[0] > '6') {
        FUZZ_CHECK(r == -1);
        return;
    }
    FUZZ_CHECK(r == 0 && !pk.binary && (int) pk.type == p[0] - '0' &&
               pk.data == p + 1 && pk.len == n - 1);
}

static void fuzz_open(const char *p, size_t n)
{
    char sid[64], out[256];
    size_t k = n < sizeof(sid) - 1 ? n : sizeof(sid) - 1;
    uint64_t v = 0;
    long r;

    memcpy(sid, p, k);
    sid[k] = '\0';
    if (n >= 8) {
        memcpy(&v, p + n - 8, 8);
    }
    r = eio_open_json(out, (v & 0xff) + 16 < sizeof(out) ?
                      (size_t) (v & 0xff) + 16 : sizeof(out), sid, (int) (v & 1),
                      v >> 11, v >> 12, v >> 13);
    if (r >= 0) {
        FUZZ_CHECK((size_t) r == strlen(out));
        FUZZ_CHECK(sio_json_check(out, (size_t) r) == SIO_JSON_OBJECT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = mk_mem_alloc(size ? size : 1);

    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    fuzz_payload(buf, size);
    fuzz_frame(buf, size);
    fuzz_open(buf, size);
    mk_mem_free(buf);
    return 0;
}
