/*
 * Fuzz target for plugins/zmq/zmq_zmtp.c: the node guard's reader of what
 * a peer sends the node endpoint, fed by hostile input.
 *
 * Input layout: byte 0 picks the caps (frame_max from bits 0-3, parts_max
 * 1-4 from bits 4-5) and byte 1 the read size (1-256 bytes); the rest is
 * the stream. It is fed in reads of that size, and the verdict and frame
 * count must equal those of a second, non-incremental reader written
 * below from the framing rules alone (differential check), and of the
 * same stream fed in one piece. Any difference traps. The identity read
 * from the first frame must not depend on the read size either, and
 * stays within the kept head and 255 bytes.
 */
#include <stdint.h>
#include <string.h>

#include "plugins/zmq/zmq_zmtp.c"
#include "fuzz_util.h"


struct ref {
    enum zmq_zmtp_verdict verdict;
    uint64_t frames;
};

/* One frame header at p[0..n): its size, flags and length, or 0 when the
 * header is not all there yet. */
static size_t ref_header(const uint8_t *p, size_t n, int v1, uint64_t *size,
                         int *more, int *command, int *bad)
{
    *bad = 0;
    *command = 0;
    if (n < 1) {
        return 0;
    }
    if (v1) {
        size_t hl = p[0] == 0xff ? 9 : 1;
        uint64_t len;
        if (n < hl) {
            return 0;
        }
        len = p[0] == 0xff ? zmtp_be64(p + 1) : p[0];
        if (len == 0) {
            *bad = 1;
            return hl;
        }
        if (n < hl + 1) {
            return 0;
        }
        *size = len - 1;
        *more = p[hl] & 1;
        return hl + 1;
    }
    *more = p[0] & 1;
    *command = (p[0] & 4) != 0;
    if (p[0] & 2) {
        if (n < 9) {
            return 0;
        }
        *size = zmtp_be64(p + 1);
        return 9;
    }
    if (n < 2) {
        return 0;
    }
    *size = p[1];
    return 2;
}

static struct ref ref_parse(const uint8_t *p, size_t n, uint64_t frame_max,
                            uint64_t command_max, unsigned parts_max)
{
    struct ref r = { ZMQ_ZMTP_OK, 0 };
    size_t off = 0, hl;
    unsigned parts = 0;
    uint64_t size;
    int v1, more, command, bad;

    if (n == 0) {
        return r;
    }
    if (p[0] != 0xff || (n >= 10 && !(p[9] & 1))) {
        v1 = 1;                           /* unversioned: frames from 0 */
    }
    else if (n < 11) {
        return r;
    }
    else {
        v1 = p[10] == 0;
        off = p[10] <= 1 ? 12 : 64;
    }
    while (off < n) {
        hl = ref_header(p + off, n - off, v1, &size, &more, &command, &bad);
        if (hl == 0) {
            break;
        }
        if (bad) {
            r.verdict = ZMQ_ZMTP_MALFORMED;
            break;
        }
        if (size > (command ? command_max : frame_max)) {
            r.verdict = command ? ZMQ_ZMTP_COMMAND_SIZE : ZMQ_ZMTP_FRAME_SIZE;
            break;
        }
        r.frames++;
        if (++parts > parts_max) {
            r.verdict = ZMQ_ZMTP_PARTS;
            break;
        }
        if (!more) {
            parts = 0;
        }
        off += hl;
        if (size >= n - off) {
            break;                        /* the payload runs past the input */
        }
        off += (size_t) size;
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zmq_zmtp inc, whole;
    struct ref r;
    uint64_t frame_max;
    unsigned parts_max;
    size_t step, off;

    if (size < 2) {
        return 0;
    }
    frame_max = (data[0] & 0x0f) == 0x0f ? UINT64_MAX
                                         : (uint64_t) (data[0] & 0x0f) * 37;
    parts_max = 1u + ((data[0] >> 4) & 3);
    step = (size_t) data[1] + 1;
    data += 2;
    size -= 2;

    zmq_zmtp_init(&inc, frame_max, 64, parts_max);
    for (off = 0; off < size; off += step) {
        enum zmq_zmtp_verdict before = inc.verdict;
        enum zmq_zmtp_verdict v = zmq_zmtp_feed(&inc, data + off,
                                                size - off < step ? size - off
                                                                  : step);
        /* a verdict, once given, never changes */
        FUZZ_CHECK(before == ZMQ_ZMTP_OK || v == before);
        FUZZ_CHECK(v != ZMQ_ZMTP_OK || inc.parts <= parts_max);
        FUZZ_CHECK(inc.have <= sizeof(inc.hdr));
    }
    zmq_zmtp_init(&whole, frame_max, 64, parts_max);
    zmq_zmtp_feed(&whole, data, size);
    r = ref_parse(data, size, frame_max, 64, parts_max);
    FUZZ_CHECK(inc.verdict == whole.verdict && inc.frames == whole.frames);
    FUZZ_CHECK(inc.verdict == r.verdict);
    FUZZ_CHECK(inc.frames == r.frames);
    if (inc.verdict == ZMQ_ZMTP_OK) {
        const uint8_t *a, *b;
        size_t alen, blen;

        FUZZ_CHECK(inc.id_state == whole.id_state);
        FUZZ_CHECK(inc.first_len <= sizeof(inc.first));
        a = zmq_zmtp_identity(&inc, &alen);
        b = zmq_zmtp_identity(&whole, &blen);
        FUZZ_CHECK((a == NULL) == (b == NULL) && alen == blen);
        if (a) {
            FUZZ_CHECK(alen > 0 && alen <= ZMQ_ZMTP_IDENTITY_MAX);
            FUZZ_CHECK(a + alen <= inc.first + inc.first_len);
            FUZZ_CHECK(memcmp(a, b, alen) == 0);
        }
    }
    /* a payload being skipped is one the caps allowed */
    if (inc.verdict == ZMQ_ZMTP_OK && inc.state == ZMQ_ZMTP_SKIP &&
        inc.frames > 0) {
        FUZZ_CHECK(inc.left <= frame_max || inc.left <= 64);
    }
    return 0;
}
