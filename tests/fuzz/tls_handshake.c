/*
 * Fuzz target for the server side of the tls plugin's handshake
 * (plugins/tls/tls.c, tls_io.c): the input is what a client sent.
 *
 * The plugin's own tls_plugin_init()/tls_setup() builds the shared
 * mbedtls_ssl_config (TLS 1.2 only, its suites, ALPN http/1.1, SNI, session
 * tickets) over a minimal generation: tls.conf's certificate, a site
 * "localhost" and a site "*.example.com" (the listener's default, so its
 * certificate is the connection's fallback), each with its own [TLS]
 * certificate, so a ClientHello's server name takes every SNI branch. The
 * certificates are P-256 self-signed ones generated here at start-up; no
 * key is ever read from, or written to, a file.
 *
 * Per input, a struct tls_conn is set up as tls_on_accept() does (the SNI
 * callback reads it through the context), over memory BIO callbacks: recv
 * hands out the input, then WANT_READ (a client that went quiet); send
 * discards. The handshake runs step by step, as mbedtls_ssl_handshake()
 * does, until it stops making progress, which is where tls_read() would
 * return to the event loop.
 *
 * Speed: once the ClientHello is taken (SNI, ALPN, ticket, suite), the
 * server's ECDHE key and signature, and the ECDH with the client's key,
 * cost ~9 ms under ASan, 200 times the rest. So an input stops there
 * unless the client sent more (ClientKeyExchange, ChangeCipherSpec,
 * Finished) and it is the first input of the process or one in
 * FUZZ_DEEP_EVERY after it. A gate on the input's bytes would not do:
 * mutations keep them, so deep inputs would come to fill the corpus. The
 * first input always going deep keeps a crash reproducible by running the
 * process on that one file.
 *
 * The RNG is swapped for a counter reset per input so that an input
 * replays the same way (server random, ECDHE key, tickets).
 */
#include <stdint.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/x509_crt.h>

#include "mk_core/mk_hash.h"
#include "mk_server/mk_server.h"
#include "plugins/tls/tls.c"
#include "plugins/tls/tls_ini.c"
#include "plugins/tls/tls_io.c"
#include "plugins/tls/tls_wire.c"
#include "fuzz_util.h"

#define FUZZ_DEEP_EVERY 512


struct fuzz_bio {
    const uint8_t *data;
    size_t len;
    size_t off;
};

static struct tls_conf fuzz_tc;
static struct tls_vconf fuzz_vc[2];
static struct mk_server fuzz_srv;
static struct mk_vhost fuzz_vh[2];
static struct mk_plugin_inst fuzz_inst;
static uint64_t fuzz_rng_state;

/* splitmix64: cheap and reproducible; nothing here needs secrecy */
static int fuzz_rng(void *ctx, unsigned char *out, size_t len)
{
    uint64_t *s = ctx, z;
    size_t n;

    while (len > 0) {
        z = (*s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        n = len < sizeof(z) ? len : sizeof(z);
        memcpy(out, &z, n);
        out += n;
        len -= n;
    }
    return 0;
}

static int fuzz_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct fuzz_bio *b = ctx;
    size_t n = b->len - b->off;

    if (n == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    if (n > len) {
        n = len;
    }
    memcpy(buf, b->data + b->off, n);
    b->off += n;
    return (int) n;
}

static int fuzz_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    return (int) len;
}

/* A self-signed P-256 certificate for `subject` and its key, into tc. */
static void fuzz_make_cert(struct tls_cert *tc, const char *subject)
{
    static uint64_t seed = 1;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    unsigned char der[1024];
    int len;

    mbedtls_x509_crt_init(&tc->chain);
    mbedtls_pk_init(&tc->key);
    tc->loaded = 1;
    FUZZ_CHECK(mbedtls_pk_setup(&tc->key, mbedtls_pk_info_from_type(
                                    MBEDTLS_PK_ECKEY)) == 0);
    FUZZ_CHECK(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1,
                                   mbedtls_pk_ec(tc->key), fuzz_rng,
                                   &seed) == 0);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    FUZZ_CHECK(mbedtls_mpi_lset(&serial, 1) == 0);
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &tc->key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &tc->key);
    FUZZ_CHECK(mbedtls_x509write_crt_set_serial(&crt, &serial) == 0);
    FUZZ_CHECK(mbedtls_x509write_crt_set_subject_name(&crt, subject) == 0);
    FUZZ_CHECK(mbedtls_x509write_crt_set_issuer_name(&crt, subject) == 0);
    FUZZ_CHECK(mbedtls_x509write_crt_set_validity(&crt, "20250101000000",
                                                  "20450101000000") == 0);
    /* DER is written at the end of the buffer */
    len = mbedtls_x509write_crt_der(&crt, der, sizeof(der), fuzz_rng, &seed);
    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(mbedtls_x509_crt_parse_der(&tc->chain,
                                          der + sizeof(der) - len,
                                          (size_t) len) == 0);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&crt);
}

/* The slice of a generation tls.c reads: the plugin instance (for the
 * sites' [TLS] sections) and two sites, found by name as the SNI callback
 * looks them up (exact names through the hash, wildcards by scanning). */
static void fuzz_setup(void)
{
    static char *names0[] = { "localhost" }, *names1[] = { "*.example.com" };
    static void *vconfs0[] = { &fuzz_vc[0] }, *vconfs1[] = { &fuzz_vc[1] };
    static void **plugin_confs0[] = { vconfs0 }, **plugin_confs1[] = { vconfs1 };
    static size_t plugin_conf_counts[] = { 1 };
    static struct mk_vhost *vhosts[] = { &fuzz_vh[0], &fuzz_vh[1] };
    static const char *alpn_ids[] = { "http/1.1", NULL };
    size_t i;

    fuzz_srv.alpn_ids = alpn_ids;         /* the registry's, as built */
    fuzz_inst.p = &mk_plugin_tls;
    fuzz_inst.conf = &fuzz_tc;
    fuzz_srv.plugins = &fuzz_inst;
    fuzz_srv.plugin_count = 1;
    fuzz_vh[0].names = names0;
    fuzz_vh[0].plugin_confs = plugin_confs0;
    fuzz_vh[1].names = names1;
    fuzz_vh[1].plugin_confs = plugin_confs1;
    fuzz_vh[1].is_default = 1;
    fuzz_srv.vhosts = vhosts;
    fuzz_srv.vhost_count = 2;
    fuzz_srv.default_vhost = &fuzz_vh[1];
    fuzz_srv.vhost_names = mk_hash_create(4, MK_HASH_NOCASE);
    FUZZ_CHECK(fuzz_srv.vhost_names != NULL);
    FUZZ_CHECK(mk_hash_set(fuzz_srv.vhost_names, "localhost", 9,
                           &fuzz_vh[0]) == 0);
    for (i = 0; i < 2; i++) {
        fuzz_vh[i].name_count = 1;
        fuzz_vh[i].plugin_conf_counts = plugin_conf_counts;
        fuzz_vh[i].srv = &fuzz_srv;
    }

    fuzz_make_cert(&fuzz_tc.cert, "CN=tremolo default");
    fuzz_make_cert(&fuzz_vc[0].cert, "CN=localhost");
    fuzz_make_cert(&fuzz_vc[1].cert, "CN=*.example.com");
    fuzz_tc.handshake_timeout = 10000;
    fuzz_tc.ticket_lifetime = 3600 * 1000ULL;
    FUZZ_CHECK(tls_plugin_init(&fuzz_tc, &fuzz_srv) == 0);
    mbedtls_ssl_conf_rng(&fuzz_tc.ssl, fuzz_rng, &fuzz_rng_state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static unsigned long execs;
    struct fuzz_bio bio = { data, size, 0 };
    struct tls_conn *t;
    int ret, deep, rounds = 0;

    if (!ready) {
        fuzz_setup();
        ready = 1;
    }
    fuzz_rng_state = 0;
    t = mk_mem_zalloc(sizeof(*t));
    FUZZ_CHECK(t != NULL);
    mbedtls_ssl_init(&t->ssl);
    FUZZ_CHECK(mbedtls_ssl_setup(&t->ssl, &fuzz_tc.ssl) == 0);
    t->wire.fd = -1;
    t->fallback = tls_vhost_cert(fuzz_srv.default_vhost);
    mbedtls_ssl_set_bio(&t->ssl, &bio, fuzz_bio_send, fuzz_bio_recv, NULL);
    deep = execs++ % FUZZ_DEEP_EVERY == 0;
    /* send never blocks, so WANT_WRITE should not come back; bound the
     * loop anyway so a regression shows up as a failed check, not a hang */
    do {
        ret = 0;
        while (ret == 0 && t->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
            if (t->ssl.state == MBEDTLS_SSL_SERVER_KEY_EXCHANGE &&
                (!deep || bio.off == bio.len)) {
                goto done;
            }
            ret = mbedtls_ssl_handshake_step(&t->ssl);
        }
    } while (ret == MBEDTLS_ERR_SSL_WANT_WRITE && ++rounds < 64);
    FUZZ_CHECK(ret != MBEDTLS_ERR_SSL_WANT_WRITE);
done:
    mbedtls_ssl_free(&t->ssl);
    mk_mem_free(t);
    return 0;
}
