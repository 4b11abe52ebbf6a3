/*
 * Fuzz target for plugins/zmq/nodes/python/ext/uwsgi_walk.c, the uwsgi
 * packet walker of the Python node runtime (_tremolo).
 *
 * The first input byte picks a mode; the rest is the packet. With bit 0
 * set, the 4-byte header is patched to a valid one so the walk goes deep.
 * The walker is checked against the gateway's own decoder
 * (plugins/zmq/zmq_uwsgi.c): it accepts exactly the packets the gateway
 * accepts that have no empty key, with the same pairs in the same order,
 * and every pair lies inside the packet. Any mismatch traps.
 */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq_uwsgi.c"
#include "plugins/zmq/nodes/python/ext/uwsgi_walk.c"
#include "fuzz_util.h"

#define FUZZ_PAIRS 40000

struct fuzz_pairs {
    const char *base;
    size_t      len;
    size_t      n;
    int         empty_key;
    const char *k[FUZZ_PAIRS], *v[FUZZ_PAIRS];
    size_t      kl[FUZZ_PAIRS], vl[FUZZ_PAIRS];
};

static struct fuzz_pairs gw, ours;

static int fuzz_collect(void *ctx, const char *k, size_t kl, const char *v,
                        size_t vl)
{
    struct fuzz_pairs *p = ctx;

    FUZZ_CHECK(k >= p->base && k + kl <= p->base + p->len);
    FUZZ_CHECK(v >= p->base && v + vl <= p->base + p->len);
    FUZZ_CHECK(p->n < FUZZ_PAIRS);
    if (kl == 0) {
        p->empty_key = 1;
    }
    p->k[p->n] = k;
    p->kl[p->n] = kl;
    p->v[p->n] = v;
    p->vl[p->n] = vl;
    p->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum tx_uwsgi_err err;
    size_t len, off, i;
    char *pkt;
    int ret;

    pkt = fuzz_uwsgi_packet(data, size, ZMQ_UWSGI_MAX, &len);
    if (pkt == NULL) {
        return 0;
    }
    memset(&gw, 0, offsetof(struct fuzz_pairs, k));
    memset(&ours, 0, offsetof(struct fuzz_pairs, k));
    gw.base = ours.base = pkt;
    gw.len = ours.len = len;
    ret = zmq_uwsgi_parse(pkt, len, fuzz_collect, &gw);
    err = tx_uwsgi_walk(pkt, len, fuzz_collect, &ours, &off);
    FUZZ_CHECK(off <= len);
    if (ret == 0 && !gw.empty_key) {
        FUZZ_CHECK(err == TX_UWSGI_OK);
        FUZZ_CHECK(ours.n == gw.n);
        for (i = 0; i < gw.n; i++) {
            FUZZ_CHECK(ours.k[i] == gw.k[i] && ours.kl[i] == gw.kl[i]);
            FUZZ_CHECK(ours.v[i] == gw.v[i] && ours.vl[i] == gw.vl[i]);
        }
    }
    else {
        FUZZ_CHECK(err != TX_UWSGI_OK);
        FUZZ_CHECK(!ours.empty_key);       /* never handed an empty key */
    }
    mk_mem_free(pkt);
    return 0;
}
