/*
 * BlastBeat's TLS options (spec 8.2-8.4) as `tremolo -b` writes them:
 * bind-ssl listeners use this plugin's layer (`Listen ADDR tls`), and a
 * vhost served on one needs its certificate and key in the site's [TLS].
 */
#include "mk_server/mk_plugin.h"

static const struct mk_bb_key tls_ini_keys[] = {
    { "bind-ssl",    MK_BB_GLOBAL | MK_BB_VHOST, NULL, NULL, 0 },
    { "certificate", MK_BB_VHOST, "Certificate", NULL, MK_BB_REQUIRED },
    { "key",         MK_BB_VHOST, "Key",         NULL, MK_BB_REQUIRED },
    { NULL, 0, NULL, NULL, 0 }
};

const struct mk_bb_ini tls_ini = {
    .keys = tls_ini_keys,
};
