#include <string.h>

#include <mbedtls/base64.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_mem.h"

/*
 * mbedTLS decodes leniently (missing padding, non-zero pad bits, embedded
 * spaces for PEM). Credentials and handshake keys must be canonical, so the
 * result is encoded again and must give back the input byte for byte.
 */
long mk_base64_decode(const char *in, size_t len, char *out, size_t outcap)
{
    char stack[1024], *again = stack;
    size_t olen = 0, elen = 0;
    long ret = -1;

    if (len % 4 != 0 ||
        mbedtls_base64_decode((unsigned char *) out, outcap, &olen,
                              (const unsigned char *) in, len) != 0) {
        return -1;
    }
    if (len + 1 > sizeof(stack)) {
        again = mk_mem_alloc(len + 1);
        if (!again) {
            return -1;
        }
    }
    if (mbedtls_base64_encode((unsigned char *) again, len + 1, &elen,
                              (const unsigned char *) out, olen) == 0 &&
        elen == len && memcmp(again, in, len) == 0) {
        ret = (long) olen;
    }
    if (again != stack) {
        mk_mem_free(again);
    }
    return ret;
}

long mk_base64_encode(const void *in, size_t len, char *out, size_t outcap)
{
    size_t olen = 0;

    if (mbedtls_base64_encode((unsigned char *) out, outcap, &olen,
                              (const unsigned char *) in, len) != 0) {
        return -1;
    }
    return (long) olen;
}
