#ifndef MK_CORE_BUF_H
#define MK_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable byte buffer that owns its memory. `data` may be NULL while
 * size == 0. Functions returning int give 0 on success and -1 when memory
 * is exhausted or `max` would be exceeded (the buffer is then unchanged).
 */
struct mk_buf {
    char *data;
    size_t len;
    size_t size;
};

void mk_buf_init(struct mk_buf *b);
void mk_buf_release(struct mk_buf *b);           /* frees, back to init state */
int  mk_buf_reserve(struct mk_buf *b, size_t extra);  /* room for len + extra */
int  mk_buf_append(struct mk_buf *b, const void *data, size_t len);
int  mk_buf_append_str(struct mk_buf *b, const char *s);
int  mk_buf_printf(struct mk_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops `n` bytes from the front (memmove of the rest). */
void mk_buf_consume(struct mk_buf *b, size_t n);
/* Returns a NUL-terminated view (appends a NUL not counted in len). */
const char *mk_buf_cstr(struct mk_buf *b);

#endif
