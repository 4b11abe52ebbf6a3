/*
 * tests/bench/gcm_floor.c -- what encrypting a response body costs a
 * server in mbedTLS's AES-128-GCM alone (the record cipher of http2.sh's
 * TLS 1.2 suite): full 16 KiB records, one key, as a TLS connection
 * seals them. http2.sh prints it next to `openssl speed -evp aes-128-gcm`:
 * the floor under Tremolo's CPU per request of the 100 KB file, whatever
 * the HTTP/2 layer does.
 *
 *   gcm_floor [MILLISECONDS, default 1000] [BYTES per response, default 102400]
 *
 * Prints "mbedtls-aes-128-gcm MB_PER_S US_PER_RESPONSE".
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mbedtls/gcm.h>

#define RECORD 16384

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static unsigned char in[RECORD], out[RECORD];
    unsigned char key[16] = { 1 }, iv[12] = { 2 }, aad[13] = { 3 }, tag[16];
    double secs = (argc > 1 ? atof(argv[1]) : 1000) / 1000;
    double bytes = argc > 2 ? atof(argv[2]) : 102400;
    mbedtls_gcm_context g;
    double t0, t;
    long n = 0;

    mbedtls_gcm_init(&g);
    if (mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 128) != 0) {
        fprintf(stderr, "gcm_floor: setkey failed\n");
        return 1;
    }
    t0 = now();
    do {
        for (int i = 0; i < 64; i++, n++) {
            iv[11] = (unsigned char) n;
            if (mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, RECORD, iv,
                                          sizeof(iv), aad, sizeof(aad), in,
                                          out, sizeof(tag), tag) != 0) {
                fprintf(stderr, "gcm_floor: encrypt failed\n");
                return 1;
            }
        }
        t = now() - t0;
    } while (t < secs);
    mbedtls_gcm_free(&g);
    printf("mbedtls-aes-128-gcm %.0f %.1f\n", (double) n * RECORD / t / 1e6,
           t / ((double) n * RECORD) * bytes * 1e6);
    return 0;
}
