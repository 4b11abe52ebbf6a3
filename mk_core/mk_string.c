#include <stdarg.h>
#include <stdio.h>

#include "mk_core/mk_string.h"

int mk_str_case_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;

    if (alen != blen) {
        return 0;
    }
    for (i = 0; i < alen; i++) {
        if (mk_ascii_lower(a[i]) != mk_ascii_lower(b[i])) {
            return 0;
        }
    }
    return 1;
}

int mk_ptr_case_eq(struct mk_ptr p, const char *s)
{
    return mk_str_case_eq(p.data, p.len, s, strlen(s));
}

int mk_str_to_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        d = (unsigned) (s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

size_t mk_str_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    size_t i;

    /* Digits come out least significant first; reverse into buf. */
    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++) {
        buf[i] = tmp[n - 1 - i];
    }
    return n;
}

size_t mk_str_hex(char *buf, uint64_t v)
{
    static const char digits[] = "0123456789ABCDEF";
    char tmp[16];
    size_t n = 0;
    size_t i;

    do {
        tmp[n++] = digits[v & 0xf];
        v >>= 4;
    } while (v != 0);
    for (i = 0; i < n; i++) {
        buf[i] = tmp[n - 1 - i];
    }
    return n;
}

struct mk_ptr mk_ptr_trim(struct mk_ptr p)
{
    while (p.len > 0 && (p.data[0] == ' ' || p.data[0] == '\t')) {
        p.data++;
        p.len--;
    }
    while (p.len > 0 &&
           (p.data[p.len - 1] == ' ' || p.data[p.len - 1] == '\t')) {
        p.len--;
    }
    return p;
}

size_t mk_str_printf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (size == 0) {
        return 0;
    }
    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    if ((size_t) n >= size) {
        return size - 1;
    }
    return (size_t) n;
}

int mk_str_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

char *mk_str_printable(char *buf, size_t size, const char *src, size_t len)
{
    size_t i;

    if (size == 0) {
        return buf;
    }
    for (i = 0; i < len && i < size - 1; i++) {
        buf[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    }
    buf[i] = '\0';
    return buf;
}
