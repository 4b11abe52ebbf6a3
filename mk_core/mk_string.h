#ifndef MK_CORE_STRING_H
#define MK_CORE_STRING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A borrowed slice: pointer + length, never NUL-terminated by contract. */
struct mk_ptr {
    const char *data;
    size_t len;
};

#define MK_PTR_LIT(s)  ((struct mk_ptr) { (s), sizeof(s) - 1 })
#define MK_PTR_NONE    ((struct mk_ptr) { NULL, 0 })

static inline struct mk_ptr mk_ptr_make(const char *data, size_t len)
{
    struct mk_ptr p = { data, len };
    return p;
}

/* Byte-exact comparison with a NUL-terminated string. */
static inline int mk_ptr_eq(struct mk_ptr p, const char *s)
{
    size_t n = strlen(s);
    return p.len == n && memcmp(p.data, s, n) == 0;
}

/* ASCII case-insensitive helpers (locale independent). */
int mk_str_case_eq(const char *a, size_t alen, const char *b, size_t blen);
int mk_ptr_case_eq(struct mk_ptr p, const char *s);

static inline char mk_ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char) (c + 32) : c;
}

/*
 * Strict decimal parsing of the whole slice: digits only, no sign, no
 * spaces, no overflow. Returns 0 and stores the value, or -1.
 */
int mk_str_to_u64(const char *s, size_t len, uint64_t *out);

/* Writes the decimal form of `v` into `buf` (at least 21 bytes), no NUL;
 * returns the number of bytes written. */
size_t mk_str_u64(char *buf, uint64_t v);

/* Writes the upper-case hex form of `v` into `buf` (at least 17 bytes), no
 * NUL; returns the number of bytes written. */
size_t mk_str_hex(char *buf, uint64_t v);

/* Trims ASCII spaces and tabs on both ends. */
struct mk_ptr mk_ptr_trim(struct mk_ptr p);

/* Copies at most `size - 1` bytes of untrusted `src` into `buf` for a log
 * line, each byte outside printable ASCII written as '?', so a peer
 * cannot forge log lines; always NUL-terminates. Returns buf. */
char *mk_str_printable(char *buf, size_t size, const char *src, size_t len);

/* snprintf that returns the bytes written (clamped to size - 1), never a
 * negative or larger-than-buffer value. */
size_t mk_str_printf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a one-line error into err (when there is room) and returns -1,
 * so a failing path reads `return mk_str_fail(err, errlen, "...", ...)`. */
int mk_str_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
