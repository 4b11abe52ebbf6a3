/*
 * Fuzz target for plugins/zmq/zmq_uwsgi.c (the BlastBeat `uwsgi` packet).
 *
 * The first input byte picks a mode; the rest is the packet. With bit 0
 * set, the 4-byte header is patched to a valid one (modifiers 0, SIZE =
 * length) so the pair walker sees deep inputs rather than a SIZE mismatch.
 * Every packet the strict decoder accepts is rebuilt with the builder from
 * the decoded pairs and must come out byte for byte identical. The header
 * name conversion runs on the packet bytes too. Any mismatch traps.
 */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq_uwsgi.c"
#include "fuzz_util.h"


static int fuzz_reencode(void *ctx, const char *k, size_t kl, const char *v,
                         size_t vl)
{
    struct mk_buf *b = ctx;

    FUZZ_CHECK(zmq_uwsgi_add(b, k, kl, v, vl) == 0);
    return 0;
}

static void fuzz_header_key(const char *name, size_t len)
{
    char out[64];
    size_t n, i;

    n = zmq_uwsgi_header_key(name, len, out, sizeof(out));
    if (n == 0) {
        FUZZ_CHECK(len == 0 || len + 5 > sizeof(out) || name[0] == ':' ||
                   memchr(name, '_', len) != NULL);
        return;
    }
    FUZZ_CHECK(n == len + 5 && memcmp(out, "HTTP_", 5) == 0);
    for (i = 0; i < len; i++) {
        FUZZ_CHECK(out[5 + i] != '-' && !(out[5 + i] >= 'a' &&
                                          out[5 + i] <= 'z'));
        FUZZ_CHECK((name[i] == '-') == (out[5 + i] == '_'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mk_buf b;
    char *pkt;
    size_t len;
    int ret;

    pkt = fuzz_uwsgi_packet(data, size, ZMQ_UWSGI_MAX, &len);
    if (pkt == NULL) {
        return 0;
    }
    fuzz_header_key(pkt, len < 80 ? len : 80);

    mk_buf_init(&b);
    FUZZ_CHECK(zmq_uwsgi_begin(&b) == 0);
    ret = zmq_uwsgi_parse(pkt, len, fuzz_reencode, &b);
    FUZZ_CHECK(ret == 0 || ret == -1);
    if (ret == 0) {
        FUZZ_CHECK(zmq_uwsgi_finish(&b) == 0);
        FUZZ_CHECK(b.len == len && memcmp(b.data, pkt, len) == 0);
        FUZZ_CHECK(zmq_uwsgi_parse(b.data, b.len, NULL, NULL) == 0);
    }
    mk_buf_release(&b);
    mk_mem_free(pkt);
    return 0;
}
