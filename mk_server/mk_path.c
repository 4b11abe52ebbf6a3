/*
 * Request paths as the file system and location rules see them:
 * percent-decoded first (so "%2e%2e" is "..") and then normalised: dot
 * segments resolved (RFC 3986 5.2.4), repeated slashes merged. A path that
 * would climb above the root, holds a NUL or a bad escape is invalid: the
 * core answers 400 before any plugin sees it.
 */
#include <string.h>

#include "mk_server/mk_server.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char) (c | 0x20);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

long mk_path_clean(const char *path, size_t len, char *out, size_t outlen)
{
    size_t i, o = 0, seg;
    int hi, lo;
    char ch;

    if (len == 0 || path[0] != '/' || outlen < 2) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        ch = path[i];
        if (ch == '%') {
            if (i + 2 >= len) {
                return -1;
            }
            hi = hexval(path[i + 1]);
            lo = hexval(path[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            ch = (char) (hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0') {
            return -1;
        }
        if (ch == '/') {
            if (o > 0 && out[o - 1] == '/') {
                continue;                      /* merge "//" */
            }
        }
        if (o + 1 >= outlen) {
            return -1;
        }
        out[o++] = ch;
        if (ch != '/' && (i + 1 < len)) {
            continue;
        }
        /* a segment just ended (at '/' or at the end): resolve dots */
        seg = o - (ch == '/' ? 1 : 0);
        {
            size_t start = seg;
            while (start > 0 && out[start - 1] != '/') {
                start--;
            }
            if (seg - start == 1 && out[start] == '.') {
                o = start;                     /* "/./" -> "/" */
            }
            else if (seg - start == 2 && out[start] == '.' &&
                     out[start + 1] == '.') {
                if (start <= 1) {
                    return -1;                 /* above the root */
                }
                o = start - 1;                 /* drop "/.." and the parent */
                while (o > 0 && out[o - 1] != '/') {
                    o--;
                }
            }
        }
    }
    if (o == 0) {
        out[o++] = '/';
    }
    out[o] = '\0';
    return (long) o;
}
