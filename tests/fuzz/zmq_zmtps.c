/*
 * Fuzz target for plugins/zmq/zmq_zmtps.c: the server side of ZMTP 3 that
 * `NodeGuard native` speaks to node connections, fed by hostile input.
 *
 * Input layout: byte 0 picks frame_max (bits 0-3: 2^n bytes, at most
 * 32 KiB) and byte 1 the read size (1-256 bytes); the rest is the stream.
 * It is fed in reads of that size and again in one piece: the verdict,
 * the frames seen and a digest of every message, READY and PONG must be
 * the same both ways (a reader that depends on how the bytes arrive
 * traps), every stored frame stays within the size it was given, and an
 * identity is never empty or longer than 255 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/zmq/zmq_zmtps.c"
#include "fuzz_util.h"

struct run {
    uint8_t *frame[3];
    uint64_t size[3];
    uint64_t digest;
    unsigned messages;
};

static void run_mix(struct run *r, const uint8_t *p, size_t len)
{
    while (len--) {
        r->digest = (r->digest ^ *p++) * 0x100000001b3ULL;
    }
    r->digest = (r->digest ^ 0xff) * 0x100000001b3ULL;
}

static uint8_t *on_frame(void *ctx, unsigned idx, uint64_t size)
{
    struct run *r = ctx;

    if (idx >= 3) {
        __builtin_trap();
    }
    free(r->frame[idx]);
    r->frame[idx] = malloc(size ? (size_t) size : 1);
    r->size[idx] = size;
    return r->frame[idx];
}

static int on_message(void *ctx, unsigned n)
{
    struct run *r = ctx;
    unsigned i;

    if (n < 1 || n > 3) {
        __builtin_trap();
    }
    for (i = 0; i < n; i++) {
        run_mix(r, r->frame[i], (size_t) r->size[i]);
    }
    r->messages++;
    return 0;
}

static struct zmq_zmtps *current;

static int on_ready(void *ctx)
{
    struct run *r = ctx;

    if (current->id_len == 0 || current->id_len > ZMQ_ZMTP_IDENTITY_MAX) {
        __builtin_trap();
    }
    run_mix(r, current->id, current->id_len);
    return 0;
}

static int on_reply(void *ctx, const uint8_t *p, size_t len)
{
    run_mix(ctx, p, len);
    return 0;
}

static const struct zmq_zmtps_ops ops = {
    on_frame, on_message, on_ready, on_reply
};

static void run_free(struct run *r)
{
    unsigned i;

    for (i = 0; i < 3; i++) {
        free(r->frame[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct zmq_zmtps a, b;
    struct run ra, rb;
    enum zmq_zmtps_verdict va = ZMQ_ZMTPS_OK, vb;
    uint64_t frame_max;
    size_t step, off;

    if (size < 2) {
        return 0;
    }
    frame_max = UINT64_C(1) << (data[0] & 15);
    step = (size_t) data[1] + 1;
    data += 2;
    size -= 2;
    memset(&ra, 0, sizeof(ra));
    memset(&rb, 0, sizeof(rb));
    zmq_zmtps_init(&a, frame_max, ZMQ_ZMTP_COMMAND_MAX);
    zmq_zmtps_init(&b, frame_max, ZMQ_ZMTP_COMMAND_MAX);
    current = &a;
    for (off = 0; off < size; off += step) {
        va = zmq_zmtps_feed(&a, data + off, size - off < step ? size - off
                                                              : step,
                            &ops, &ra);
    }
    current = &b;
    vb = zmq_zmtps_feed(&b, data, size, &ops, &rb);
    if (va != vb || a.frames != b.frames || ra.digest != rb.digest ||
        ra.messages != rb.messages || a.ready != b.ready ||
        zmq_zmtps_verdict_name(va)[0] == '?') {
        __builtin_trap();
    }
    run_free(&ra);
    run_free(&rb);
    return 0;
}
