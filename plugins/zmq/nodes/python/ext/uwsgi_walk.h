/* The uwsgi packet walker of _tremolo, free of Python so that a libFuzzer
 * target (tests/fuzz/pyext_uwsgi.c) can run it on its own. */
#ifndef TX_UWSGI_WALK_H
#define TX_UWSGI_WALK_H

#include <stddef.h>

enum tx_uwsgi_err {
    TX_UWSGI_OK = 0,
    TX_UWSGI_SHORT,            /* shorter than the 4-byte header */
    TX_UWSGI_MODIFIERS,        /* modifier1/modifier2 not 0/0 */
    TX_UWSGI_SIZE,             /* SIZE != packet length */
    TX_UWSGI_KEYLEN,           /* truncated key length */
    TX_UWSGI_KEY,              /* key overruns the packet */
    TX_UWSGI_VALLEN,           /* truncated value length */
    TX_UWSGI_VALUE,            /* value overruns the packet */
    TX_UWSGI_EMPTYKEY,         /* a 0-length key */
    TX_UWSGI_CALLBACK          /* on_pair returned non-zero */
};

typedef int (*tx_uwsgi_pair_cb)(void *ctx, const char *k, size_t kl,
                                const char *v, size_t vl);

/* Walk every (key, value) pair of a whole packet, in order; stops at the
 * first fault (*off is then where it was found). */
enum tx_uwsgi_err tx_uwsgi_walk(const char *pkt, size_t len,
                                tx_uwsgi_pair_cb on_pair, void *ctx,
                                size_t *off);

#endif
