#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_mem.h"

void mk_buf_init(struct mk_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->size = 0;
}

void mk_buf_release(struct mk_buf *b)
{
    mk_mem_free(b->data);
    mk_buf_init(b);
}

int mk_buf_reserve(struct mk_buf *b, size_t extra)
{
    size_t need;
    size_t size;
    char *data;

    /* No object may exceed PTRDIFF_MAX; asking the allocator would only
     * fail later (or abort under ASan). */
    if (extra > (size_t) PTRDIFF_MAX - b->len) {
        return -1;
    }
    need = b->len + extra;
    if (need <= b->size) {
        return 0;
    }
    /* Double so that a run of small appends stays amortised O(1). */
    size = b->size ? b->size : 64;
    while (size < need) {
        if (size > (size_t) PTRDIFF_MAX / 2) {
            size = need;
            break;
        }
        size *= 2;
    }
    data = mk_mem_realloc(b->data, size);
    if (data == NULL) {
        return -1;
    }
    b->data = data;
    b->size = size;
    return 0;
}

int mk_buf_append(struct mk_buf *b, const void *data, size_t len)
{
    if (len == 0) {
        return 0;
    }
    if (mk_buf_reserve(b, len) != 0) {
        return -1;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int mk_buf_append_str(struct mk_buf *b, const char *s)
{
    return mk_buf_append(b, s, strlen(s));
}

int mk_buf_printf(struct mk_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    /* First try in the room we have; on truncation grow to the exact size
     * and format again (the va_list must be restarted for that). */
    va_start(ap, fmt);
    n = vsnprintf(b->size ? b->data + b->len : NULL, b->size - b->len,
                  fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    if ((size_t) n >= b->size - b->len) {
        if (mk_buf_reserve(b, (size_t) n + 1) != 0) {
            return -1;
        }
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, b->size - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            return -1;
        }
    }
    b->len += (size_t) n;
    return 0;
}

void mk_buf_consume(struct mk_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

const char *mk_buf_cstr(struct mk_buf *b)
{
    if (mk_buf_reserve(b, 1) != 0) {
        /* Out of memory: a static empty string keeps callers safe. */
        return "";
    }
    b->data[b->len] = '\0';
    return b->data;
}
