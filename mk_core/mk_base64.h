#ifndef MK_CORE_BASE64_H
#define MK_CORE_BASE64_H

#include <stddef.h>

/*
 * Base64 (RFC 4648, standard alphabet, padded). A thin wrapper over
 * mbedTLS, which Tremolo links for TLS anyway: no second hand-written codec.
 * Decoding accepts only the canonical encoding (padding present, pad bits
 * zero, no whitespace).
 */

/* Decodes in[0..len) into out; returns the decoded length, or -1 if the
 * input is not base64 or does not fit in outcap bytes. */
long mk_base64_decode(const char *in, size_t len, char *out, size_t outcap);

/* Encodes in[0..len) into out (NUL-terminated); returns the encoded length
 * without the NUL, or -1 if outcap is too small (4 * ceil(len / 3) + 1). */
long mk_base64_encode(const void *in, size_t len, char *out, size_t outcap);

#endif
