/*
 * tests/bench/ecc_floor.c -- what one full TLS 1.2 ECDHE-ECDSA handshake
 * costs a server in mbedTLS's elliptic-curve arithmetic alone: ECDSA P-256
 * signatures with a long-lived key (the ServerKeyExchange), and ECDHE key
 * pairs plus shared secrets on a fresh context each time (what mbedTLS
 * does per handshake) for X25519 and P-256. tls.sh prints it next to
 * `openssl speed` for the same operations: the floor under Tremolo's CPU
 * per full handshake, whatever the rest of the server does.
 *
 *   ecc_floor [MILLISECONDS per measure, default 1000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>

static mbedtls_ctr_drbg_context drbg;

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

/* one ECDHE exchange as a server does it: fresh context, own key pair,
 * the peer's public value read, the shared secret computed */
static int ecdhe(mbedtls_ecp_group_id id, const unsigned char *peer,
                 size_t peer_len)
{
    mbedtls_ecdh_context c;
    unsigned char pub[200], secret[100];
    size_t len;
    int ret;

    mbedtls_ecdh_init(&c);
    ret = mbedtls_ecdh_setup(&c, id) ||
          mbedtls_ecdh_make_public(&c, &len, pub, sizeof(pub),
                                   mbedtls_ctr_drbg_random, &drbg) ||
          mbedtls_ecdh_read_public(&c, peer, peer_len) ||
          mbedtls_ecdh_calc_secret(&c, &len, secret, sizeof(secret),
                                   mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ecdh_free(&c);
    return ret;
}

static double rate_ecdhe(mbedtls_ecp_group_id id, double secs)
{
    mbedtls_ecdh_context peer;
    unsigned char pub[200];
    size_t len;
    double t0 = now();
    long n = 0;

    mbedtls_ecdh_init(&peer);
    if (mbedtls_ecdh_setup(&peer, id) != 0 ||
        mbedtls_ecdh_make_public(&peer, &len, pub, sizeof(pub),
                                 mbedtls_ctr_drbg_random, &drbg) != 0) {
        fprintf(stderr, "ecc_floor: cannot make a peer key\n");
        exit(1);
    }
    while (now() - t0 < secs) {
        if (ecdhe(id, pub, len) != 0) {
            fprintf(stderr, "ecc_floor: ECDHE failed\n");
            exit(1);
        }
        n++;
    }
    mbedtls_ecdh_free(&peer);
    return (double) n / (now() - t0);
}

static double rate_sign(double secs)
{
    mbedtls_ecdsa_context key;
    unsigned char hash[32] = { 1 }, sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t len;
    double t0;
    long n = 0;

    mbedtls_ecdsa_init(&key);
    if (mbedtls_ecdsa_genkey(&key, MBEDTLS_ECP_DP_SECP256R1,
                             mbedtls_ctr_drbg_random, &drbg) != 0) {
        fprintf(stderr, "ecc_floor: cannot make a key\n");
        exit(1);
    }
    t0 = now();
    while (now() - t0 < secs) {
        if (mbedtls_ecdsa_write_signature(&key, MBEDTLS_MD_SHA256, hash,
                                          sizeof(hash), sig, &len,
                                          mbedtls_ctr_drbg_random,
                                          &drbg) != 0) {
            fprintf(stderr, "ecc_floor: signing failed\n");
            exit(1);
        }
        n++;
    }
    mbedtls_ecdsa_free(&key);
    return (double) n / (now() - t0);
}

int main(int argc, char **argv)
{
    mbedtls_entropy_context entropy;
    double secs = (argc > 1 ? atof(argv[1]) : 1000) / 1000;
    double sign, x25519, p256;

    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                              NULL, 0) != 0) {
        fprintf(stderr, "ecc_floor: no entropy\n");
        return 1;
    }
    sign = rate_sign(secs);
    x25519 = rate_ecdhe(MBEDTLS_ECP_DP_CURVE25519, secs);
    p256 = rate_ecdhe(MBEDTLS_ECP_DP_SECP256R1, secs);
    printf("mbedTLS: ecdsa-p256 sign %.0f/s, ecdhe x25519 %.0f/s, "
           "ecdhe p256 %.0f/s\n", sign, x25519, p256);
    printf("mbedTLS floor per full handshake (sign + x25519): %.0f us\n",
           1e6 / sign + 1e6 / x25519);
    return 0;
}
