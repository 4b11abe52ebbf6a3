#ifndef TREMOLO_TLS_H
#define TREMOLO_TLS_H

/*
 * The tls plugin: a network I/O layer on mbedTLS (Debian's 2.28: TLS 1.2,
 * ALPN, SNI; no TLS 1.3). tls.c holds the configuration, certificates and
 * the per-generation mbedTLS state shared read-only by the workers;
 * tls_io.c the per-connection layer (handshake, records).
 */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "mk_server/mk_plugin.h"
#include "plugins/tls/tls_wire.h"

/* A certificate chain and its private key, read at start-up. */
struct tls_cert {
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    int loaded;
};

/* [TLS] in tls.conf */
struct tls_conf {
    struct mk_conf_list certificate;   /* at most one; a list for its line */
    struct mk_conf_list key;
    uint64_t handshake_timeout;
    uint64_t ticket_lifetime;          /* 0: no session tickets */
    struct tls_cert cert;              /* the default certificate */
    /* the generation's shared state (init; read-only in the workers, the
     * RNG and the ticket keys lock themselves: MBEDTLS_THREADING_C) */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_ticket_context ticket;
    mbedtls_ssl_config ssl;
    struct mk_server *srv;
    int ready;
};

/* [TLS] in a site file: the certificate SNI picks for its ServerNames */
struct tls_vconf {
    struct mk_conf_list certificate;
    struct mk_conf_list key;
    struct tls_cert cert;
};

/* A connection's TLS state (tls_io.c); `ssl` first, so the SNI callback
 * finds the connection from the context mbedTLS hands it. */
struct tls_conn {
    mbedtls_ssl_context ssl;
    struct tls_wire wire;              /* mbedTLS's bio */
    int established;
    size_t pending;                    /* bytes of a record mbedTLS holds */
    const struct tls_cert *fallback;   /* the listener's default site's */
};

/* tls.c: the certificate of a site's [TLS], or NULL */
const struct tls_cert *tls_vhost_cert(struct mk_vhost *vh);

/* tls_io.c: frees the calling worker's pooled contexts (worker exit) */
void tls_pool_drain(void);

extern const struct mk_plugin mk_plugin_tls;
extern const struct mk_net_io tls_net_io;
/* tls_ini.c: the BlastBeat .ini options it writes (tremolo -b) */
extern const struct mk_bb_ini tls_ini;

#endif
