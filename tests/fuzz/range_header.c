/*
 * Fuzz target for the static handler's parsers of hostile request headers:
 * Range, If-Match / If-None-Match entity-tag lists, If-Range and the
 * precondition order. The first 8 bytes pick the file size; the rest is
 * the header value (not NUL-terminated: a read past it is a bug ASan sees).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_server/mk_static_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mk_static_cond c;
    struct mk_ptr v;
    uint64_t fsize = 0, first = 0, last = 0;
    char etag[MK_STATIC_ETAG_MAX];
    size_t etag_len;
    char *copy;

    if (size >= 8) {
        memcpy(&fsize, data, 8);
        data += 8;
        size -= 8;
    }
    /* An exact-size heap copy so reading one byte too far is caught. */
    copy = mk_mem_alloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    v = mk_ptr_make(copy, size);

    switch (mk_static_range_parse(v, fsize, &first, &last)) {
    case MK_RANGE_OK:
        if (fsize == 0 || first > last || last >= fsize) {
            abort();
        }
        break;
    case MK_RANGE_UNSATISFIABLE:
    case MK_RANGE_NONE:
        break;
    default:
        abort();
    }

    etag_len = mk_static_etag_format(etag, (time_t) (fsize >> 1), fsize);
    (void) mk_static_etag_match(v, etag, etag_len, 0);
    (void) mk_static_etag_match(v, etag, etag_len, 1);
    (void) mk_static_if_range_match(v, (time_t) (fsize >> 1), etag, etag_len);
    c.if_match = v;
    c.if_unmodified_since = v;
    c.if_none_match = v;
    c.if_modified_since = v;
    if (mk_static_cond_eval(&c, (time_t) (fsize >> 1), etag, etag_len) ==
        -1) {
        abort();
    }
    c.if_match = MK_PTR_NONE;
    c.if_none_match = MK_PTR_NONE;
    (void) mk_static_cond_eval(&c, (time_t) (fsize >> 1), etag, etag_len);
    mk_mem_free(copy);
    return 0;
}
