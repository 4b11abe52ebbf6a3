/* uwsgi packet walker (spec 2.2), as strict as tremolo_node.parse_uwsgi_pairs:
 * u8 modifier1 = 0, u16le SIZE = the whole packet including this 4-byte
 * header, u8 modifier2 = 0, then (u16le klen, key, u16le vlen, value) until
 * SIZE; every length in bounds and no empty key. */
#include "uwsgi_walk.h"

static size_t walk_u16(const unsigned char *p)
{
    return (size_t) p[0] | ((size_t) p[1] << 8);
}

enum tx_uwsgi_err tx_uwsgi_walk(const char *pkt, size_t len,
                                tx_uwsgi_pair_cb on_pair, void *ctx,
                                size_t *off)
{
    const unsigned char *p = (const unsigned char *) pkt;
    size_t o = 0, kl, vl;
    const char *k;

    *off = 0;
    if (len < 4) {
        return TX_UWSGI_SHORT;
    }
    if (p[0] != 0 || p[3] != 0) {
        return TX_UWSGI_MODIFIERS;
    }
    if (walk_u16(p + 1) != len) {
        return TX_UWSGI_SIZE;
    }
    o = 4;
    while (o < len) {
        *off = o;
        if (len - o < 2) {
            return TX_UWSGI_KEYLEN;
        }
        kl = walk_u16(p + o);
        o += 2;
        *off = o;
        if (len - o < kl) {
            return TX_UWSGI_KEY;
        }
        k = pkt + o;
        o += kl;
        *off = o;
        if (len - o < 2) {
            return TX_UWSGI_VALLEN;
        }
        vl = walk_u16(p + o);
        o += 2;
        *off = o;
        if (len - o < vl) {
            return TX_UWSGI_VALUE;
        }
        if (kl == 0) {
            return TX_UWSGI_EMPTYKEY;
        }
        if (on_pair != NULL && on_pair(ctx, k, kl, pkt + o, vl) != 0) {
            return TX_UWSGI_CALLBACK;
        }
        o += vl;
    }
    return TX_UWSGI_OK;
}
