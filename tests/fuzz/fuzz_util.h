/* Shared by the libFuzzer targets in tests/fuzz. */
#ifndef TREMOLO_FUZZ_UTIL_H
#define TREMOLO_FUZZ_UTIL_H

#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"

/* A property the target checks: a crash libFuzzer reports with the input. */
#define FUZZ_CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

/*
 * A uwsgi packet of at most `max` bytes from the fuzzer's input, in an
 * exactly-sized copy so ASan sees any read past its end (free it with
 * mk_mem_free). The first input byte is a switch: with its low bit set
 * the 4-byte header is made valid (modifiers 0, SIZE = the length), so
 * most inputs reach the pairs instead of failing at the header. NULL
 * when the input is empty or too long.
 */
static inline char *fuzz_uwsgi_packet(const uint8_t *data, size_t size,
                                      size_t max, size_t *len)
{
    char *pkt;

    if (size < 1 || size - 1 > max) {
        return NULL;
    }
    *len = size - 1;
    pkt = mk_mem_alloc(*len ? *len : 1);
    if (pkt == NULL) {
        return NULL;
    }
    memcpy(pkt, data + 1, *len);
    if ((data[0] & 1) && *len >= 4) {
        pkt[0] = 0;
        pkt[1] = (char) (*len & 0xff);
        pkt[2] = (char) (*len >> 8);
        pkt[3] = 0;
    }
    return pkt;
}

#endif
