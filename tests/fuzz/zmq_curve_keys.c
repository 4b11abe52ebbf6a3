/*
 * Fuzz target for plugins/zmq/zmq_curve_keys.c: one line of CurveKeys.
 *
 * The input is the line (any bytes, newlines included). Invariants: a key
 * line's key is its first word, decoded (it encodes back to the same 40
 * characters); its identities are the following words before a comment,
 * in order, each one blank-free, at most 255 bytes and matching itself
 * when it is not a glob; a line that is not a key line holds nothing but
 * blanks before its comment; a refused line says why. Any violation traps.
 */
#include <stdint.h>
#include <string.h>

#include "plugins/zmq/zmq_curve_keys.c"
#include "fuzz_util.h"


static void fuzz_key_line(const char *line, size_t len,
                          const struct zmq_curve_key *k)
{
    char z85[ZMQ_CURVE_Z85_LEN + 1];
    size_t i = curve_skip_blanks(line, len, 0), n, j;
    const char *p = k->ids;

    FUZZ_CHECK(zmq_z85_encode(z85, k->key, ZMQ_CURVE_KEY_LEN) != NULL);
    FUZZ_CHECK(len - i >= ZMQ_CURVE_Z85_LEN &&
               memcmp(line + i, z85, ZMQ_CURVE_Z85_LEN) == 0);
    i += ZMQ_CURVE_Z85_LEN;
    FUZZ_CHECK(k->count <= ZMQ_CURVE_IDS_MAX);
    FUZZ_CHECK((k->count == 0) == (k->ids == NULL));
    for (j = 0; j < k->count; j++, p += n + 1) {
        i = curve_skip_blanks(line, len, i);
        n = strlen(p);
        FUZZ_CHECK(n >= 1 && n <= ZMQ_NODE_ID_MAX && p[0] != '#');
        FUZZ_CHECK(len - i >= n && memcmp(line + i, p, n) == 0);
        i += n;
        FUZZ_CHECK(i == len || curve_is_blank(line[i]));
        if (!strpbrk(p, "*?[")) {
            FUZZ_CHECK(zmq_curve_key_permits(k, p, n));
        }
    }
    i = curve_skip_blanks(line, len, i);
    FUZZ_CHECK(i == len || line[i] == '#');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zmq_curve_key k;
    char err[128];
    size_t i;
    int ret;

    err[0] = '\0';
    ret = zmq_curve_key_parse((const char *) data, size, &k, err, sizeof(err));
    FUZZ_CHECK(ret >= -1 && ret <= 1);
    if (ret == 1) {
        fuzz_key_line((const char *) data, size, &k);
        zmq_curve_key_release(&k);
    }
    else if (ret == 0) {
        i = curve_skip_blanks((const char *) data, size, 0);
        FUZZ_CHECK(i == size || data[i] == '#');
    }
    else {
        FUZZ_CHECK(err[0] != '\0' && k.ids == NULL);
    }
    return 0;
}
