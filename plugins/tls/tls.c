/*
 * tls: HTTPS listeners (`Listen 443 tls`) on mbedTLS. Configuration,
 * certificates, SNI and the shared mbedTLS configuration live here; the
 * I/O layer itself is tls_io.c. Why mbedTLS: the project's required TLS
 * library, small enough for the ARM boards Tremolo also targets.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/error.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/tls/tls.h"

static const struct mk_conf_key tls_keys[] = {
    MK_CONF_LIST("Certificate", struct tls_conf, certificate),
    MK_CONF_LIST("Key", struct tls_conf, key),
    MK_CONF_TIME("HandshakeTimeout", struct tls_conf, handshake_timeout,
                 "10s", 100, 0),
    MK_CONF_TIME("TicketLifetime", struct tls_conf, ticket_lifetime, "1h", 0,
                 7 * 24 * 3600 * 1000ULL),
    MK_CONF_END
};

static const struct mk_conf_key tls_vhost_keys[] = {
    MK_CONF_LIST("Certificate", struct tls_vconf, certificate),
    MK_CONF_LIST("Key", struct tls_vconf, key),
    MK_CONF_END
};

/* Forward-secret AEAD suites only, in the server's order of preference
 * (mbedTLS 2.x servers choose by their own order). */
static const int tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0
};

/* Key exchange: X25519 first (the fastest in mbedTLS), then the NIST
 * curves that older clients offer. */
static const mbedtls_ecp_group_id tls_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE
};

static int tls_mbed_fail(char *err, size_t errlen, const char *file, int line,
                         const char *key, const char *path, int ret)
{
    char why[128];

    mbedtls_strerror(ret, why, sizeof(why));
    return mk_str_fail(err, errlen, "%s:%d: %s: %s: %s", file, line, key,
                       path, why);
}

static void tls_cert_release(struct tls_cert *tc)
{
    if (tc->loaded) {
        mbedtls_x509_crt_free(&tc->chain);
        mbedtls_pk_free(&tc->key);
        tc->loaded = 0;
    }
}

/* mbedTLS sizes its read buffer by seeking to the end, which a directory
 * or a device answers with nonsense: only regular files go to it. */
static int tls_regular_file(const char *path, char *err, size_t errlen,
                            const struct mk_conf_list *l, const char *key)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        return mk_str_fail(err, errlen, "%s:%d: %s: %s: %s", l->files[0],
                           l->lines[0], key, path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return mk_str_fail(err, errlen, "%s:%d: %s: %s: not a regular file",
                           l->files[0], l->lines[0], key, path);
    }
    return 0;
}

/* Certificate and Key, both or neither, each once; read and matched now
 * so that `tremolo -t` finds a bad file as start-up would. */
static int tls_cert_load(struct mk_server *srv, struct tls_cert *tc,
                         const struct mk_conf_list *cert,
                         const struct mk_conf_list *key,
                         char *err, size_t errlen)
{
    char cpath[4096], kpath[4096];
    int ret;

    if (cert->count > 1 || key->count > 1) {
        const struct mk_conf_list *l = cert->count > 1 ? cert : key;
        return mk_str_fail(err, errlen, "%s:%d: %s: given twice", l->files[1],
                           l->lines[1], l == cert ? "Certificate" : "Key");
    }
    if (cert->count != key->count) {
        const struct mk_conf_list *l = cert->count ? cert : key;
        return mk_str_fail(err, errlen, "%s:%d: %s: needs %s as well",
                           l->files[0], l->lines[0],
                           l == cert ? "Certificate" : "Key",
                           l == cert ? "Key" : "Certificate");
    }
    if (cert->count == 0) {
        return 0;
    }
    mk_server_path(srv, cert->values[0], cpath, sizeof(cpath));
    mk_server_path(srv, key->values[0], kpath, sizeof(kpath));
    if (tls_regular_file(cpath, err, errlen, cert, "Certificate") < 0 ||
        tls_regular_file(kpath, err, errlen, key, "Key") < 0) {
        return -1;
    }
    mbedtls_x509_crt_init(&tc->chain);
    mbedtls_pk_init(&tc->key);
    tc->loaded = 1;
    ret = mbedtls_x509_crt_parse_file(&tc->chain, cpath);
    if (ret != 0) {
        return tls_mbed_fail(err, errlen, cert->files[0], cert->lines[0],
                             "Certificate", cpath, ret);
    }
    ret = mbedtls_pk_parse_keyfile(&tc->key, kpath, NULL);
    if (ret != 0) {
        return tls_mbed_fail(err, errlen, key->files[0], key->lines[0], "Key",
                             kpath, ret);
    }
    if (mbedtls_pk_check_pair(&tc->chain.pk, &tc->key) != 0) {
        return mk_str_fail(err, errlen, "%s:%d: Key: %s does not match the "
                           "certificate %s", key->files[0], key->lines[0],
                           kpath, cpath);
    }
    return 0;
}

static int tls_conf_check(void *conf, struct mk_server *srv, char *err,
                          size_t errlen)
{
    struct tls_conf *tc = conf;
    struct mk_vhost *vh = NULL;
    size_t k, count;
    void **confs;
    int certs;

    if (tls_cert_load(srv, &tc->cert, &tc->certificate, &tc->key, err,
                      errlen) < 0) {
        return -1;
    }
    certs = tc->cert.loaded;
    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        confs = mk_vhost_plugin_confs(vh, &mk_plugin_tls, &count);
        for (k = 0; k < count; k++) {
            struct tls_vconf *vc = confs[k];
            if (tls_cert_load(srv, &vc->cert, &vc->certificate, &vc->key,
                              err, errlen) < 0) {
                return -1;
            }
            certs += vc->cert.loaded;
        }
    }
    if (!certs) {
        return mk_str_fail(err, errlen, "%s/tls.conf: [TLS]: Certificate and "
                           "Key are required there, or in a site's [TLS], "
                           "when the tls plugin is loaded",
                           mk_server_conf_dir(srv));
    }
    return 0;
}

static void tls_vhost_release(void *vconf)
{
    tls_cert_release(&((struct tls_vconf *) vconf)->cert);
}

const struct tls_cert *tls_vhost_cert(struct mk_vhost *vh)
{
    size_t k, count;
    void **confs;

    if (!vh) {
        return NULL;
    }
    confs = mk_vhost_plugin_confs(vh, &mk_plugin_tls, &count);
    for (k = 0; k < count; k++) {
        struct tls_vconf *vc = confs[k];
        if (vc->cert.loaded) {
            return &vc->cert;
        }
    }
    return NULL;
}

/* SNI: the certificate of the site the client names; for a name no site
 * with a certificate matches, that of the listener's default site; else
 * the configuration's own (tls.conf's, or the first site's). */
static int tls_on_sni(void *data, mbedtls_ssl_context *ssl,
                      const unsigned char *name, size_t len)
{
    struct tls_conf *tc = data;
    const struct tls_conn *t = (const struct tls_conn *) ssl;
    const struct tls_cert *cert = tls_vhost_cert(
        mk_server_vhost_match(tc->srv, (const char *) name, len));

    if (!cert) {
        cert = t->fallback;
    }
    if (!cert) {
        return 0;
    }
    return mbedtls_ssl_set_hs_own_cert(ssl, (mbedtls_x509_crt *) &cert->chain,
                                       (mbedtls_pk_context *) &cert->key);
}

/* Without a [TLS] certificate in tls.conf, the first site's is the one
 * served to clients that name no known site. */
static const struct tls_cert *tls_default_cert(struct tls_conf *tc)
{
    const struct tls_cert *cert = tc->cert.loaded ? &tc->cert : NULL;
    struct mk_vhost *vh = NULL;

    while (!cert && (vh = mk_server_vhost_next(tc->srv, vh)) != NULL) {
        cert = tls_vhost_cert(vh);
    }
    return cert;
}

/* mbedTLS builds an EC key's table of multiples of the base point at the
 * key's first signature and stores it in the key without a lock: workers
 * signing their first handshakes at once could free a table another one
 * is reading. One signature here, before the workers start, leaves them
 * only reading it (and spares the first clients the wait). */
static int tls_key_warm(struct tls_conf *tc, const struct tls_cert *cert)
{
    unsigned char hash[32] = { 0 }, sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t len;

    if (!cert || !cert->loaded ||
        !mbedtls_pk_can_do(&cert->key, MBEDTLS_PK_ECKEY)) {
        return 0;
    }
    return mbedtls_pk_sign((mbedtls_pk_context *) &cert->key,
                           MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &len,
                           mbedtls_ctr_drbg_random, &tc->drbg) == 0 ? 0 : -1;
}

static int tls_keys_warm(struct tls_conf *tc)
{
    struct mk_vhost *vh = NULL;

    if (tls_key_warm(tc, &tc->cert) < 0) {
        return -1;
    }
    while ((vh = mk_server_vhost_next(tc->srv, vh)) != NULL) {
        if (tls_key_warm(tc, tls_vhost_cert(vh)) < 0) {
            return -1;
        }
    }
    return 0;
}

static int tls_setup(struct tls_conf *tc)
{
    mbedtls_ssl_config *ssl = &tc->ssl;
    const struct tls_cert *def = tls_default_cert(tc);
    static const char pers[] = "tremolo-tls";

    if (mbedtls_ctr_drbg_seed(&tc->drbg, mbedtls_entropy_func, &tc->entropy,
                              (const unsigned char *) pers,
                              sizeof(pers) - 1) != 0 ||
        mbedtls_ssl_config_defaults(ssl, MBEDTLS_SSL_IS_SERVER,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0 ||
        tls_keys_warm(tc) < 0) {
        return -1;
    }
    mbedtls_ssl_conf_rng(ssl, mbedtls_ctr_drbg_random, &tc->drbg);
    /* TLS 1.2 only: the packaged mbedTLS 2.28 has no 1.3 */
    mbedtls_ssl_conf_min_version(ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(ssl, tls_suites);
    mbedtls_ssl_conf_curves(ssl, tls_curves);
    mbedtls_ssl_conf_renegotiation(ssl, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    /* ALPN: the ids the core and the loaded protocol plugins registered,
     * most preferred first; the generation owns the list (mbedTLS keeps
     * the pointer), and it outlives this configuration */
    if (mbedtls_ssl_conf_alpn_protocols(
            ssl, (const char **) mk_server_alpn_ids(tc->srv)) != 0 ||
        mbedtls_ssl_conf_own_cert(ssl, (mbedtls_x509_crt *) &def->chain,
                                  (mbedtls_pk_context *) &def->key) != 0) {
        return -1;
    }
    mbedtls_ssl_conf_sni(ssl, tls_on_sni, tc);
    if (tc->ticket_lifetime) {
        /* one ticket key set per generation, shared by every worker: a
         * session resumes on any of them; mbedTLS rotates the key every
         * lifetime */
        if (mbedtls_ssl_ticket_setup(&tc->ticket, mbedtls_ctr_drbg_random,
                                     &tc->drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                     (uint32_t) (tc->ticket_lifetime / 1000))
            != 0) {
            return -1;
        }
        mbedtls_ssl_conf_session_tickets_cb(ssl, mbedtls_ssl_ticket_write,
                                            mbedtls_ssl_ticket_parse,
                                            &tc->ticket);
    }
    return 0;
}

static int tls_plugin_init(void *conf, struct mk_server *srv)
{
    struct tls_conf *tc = conf;

    tc->srv = srv;
    mbedtls_entropy_init(&tc->entropy);
    mbedtls_ctr_drbg_init(&tc->drbg);
    mbedtls_ssl_ticket_init(&tc->ticket);
    mbedtls_ssl_config_init(&tc->ssl);
    tc->ready = 1;
    if (tls_setup(tc) < 0) {
        mk_err("tls: cannot set up mbedTLS");
        return -1;
    }
    return 0;
}

static void tls_plugin_worker_exit(void *conf, struct mk_worker *w)
{
    tls_pool_drain();
}

static void tls_conf_release(void *conf)
{
    struct tls_conf *tc = conf;

    if (tc->ready) {
        mbedtls_ssl_config_free(&tc->ssl);
        mbedtls_ssl_ticket_free(&tc->ticket);
        mbedtls_ctr_drbg_free(&tc->drbg);
        mbedtls_entropy_free(&tc->entropy);
        tc->ready = 0;
    }
    tls_cert_release(&tc->cert);
}

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_tls = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "tls",
    .description     = "TLS 1.2 listeners on mbedTLS: SNI, ALPN, tickets",
    .flags           = MK_PLUGIN_NETWORK,
    .conf_keys       = tls_keys,
    .conf_size       = sizeof(struct tls_conf),
    .conf_check      = tls_conf_check,
    .conf_release    = tls_conf_release,
    .vhost_keys      = tls_vhost_keys,
    .vhost_conf_size = sizeof(struct tls_vconf),
    .vhost_release   = tls_vhost_release,
    .init            = tls_plugin_init,
    .worker_exit     = tls_plugin_worker_exit,
    .net_io          = &tls_net_io,
    .bb_ini          = &tls_ini,
};
