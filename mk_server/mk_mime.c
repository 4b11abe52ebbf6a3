#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_core/mk_hash.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "mk_server/mk_static.h"
#include "mk_server/mk_static_priv.h"

/*
 * The MIME table: extension -> type, case-insensitive. The file text is kept
 * in one buffer and the types are NUL-terminated in place, so the map's
 * values point into it and the whole table is two allocations (the buffer
 * and the map) however many extensions it holds.
 */
struct mk_mime {
    struct mk_hash *map;      /* extension -> char * into buf */
    char *buf;
};

#define MK_MIME_DEFAULT   "application/octet-stream"
#define MK_MIME_MAX_FILE  (4 * 1024 * 1024)

/* Used when no MimeTypes file is configured. */
static const char mk_mime_builtin[] =
    "text/html html htm\n"
    "text/css css\n"
    "text/javascript js mjs\n"
    "text/plain txt\n"
    "text/xml xml\n"
    "application/json json\n"
    "application/wasm wasm\n"
    "application/pdf pdf\n"
    "application/gzip gz\n"
    "application/zip zip\n"
    "image/png png\n"
    "image/jpeg jpg jpeg\n"
    "image/gif gif\n"
    "image/webp webp\n"
    "image/svg+xml svg\n"
    "image/x-icon ico\n"
    "font/woff woff\n"
    "font/woff2 woff2\n"
    "video/mp4 mp4\n"
    "audio/mpeg mp3\n";

/* Types served with an explicit charset: without one, browsers guess the
 * encoding of text (and old ones sniffed UTF-7 into script). */
static const char *const mk_mime_charset[][2] = {
    { "text/html",              "text/html; charset=utf-8" },
    { "text/plain",             "text/plain; charset=utf-8" },
    { "text/css",               "text/css; charset=utf-8" },
    { "text/javascript",        "text/javascript; charset=utf-8" },
    { "application/javascript", "application/javascript; charset=utf-8" },
    { "application/json",       "application/json; charset=utf-8" },
};

static int mk_mime_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line "type ext ext..." (already NUL-free, without its '\n'). The type
 * is NUL-terminated in place: the byte after it is a blank or the line end,
 * never needed again. */
static int mk_mime_parse_line(struct mk_mime *m, char *p, char *end,
                              int lineno, char *err, size_t errlen)
{
    char *type, *ext;

    while (p < end && mk_mime_is_blank(*p)) {
        p++;
    }
    if (p == end || *p == '#') {
        return 0;
    }
    type = p;
    while (p < end && !mk_mime_is_blank(*p)) {
        p++;
    }
    if (memchr(type, '/', (size_t) (p - type)) == NULL) {
        mk_str_printf(err, errlen, "line %d: '%.*s' is not a media type",
                      lineno, (int) (p - type), type);
        return -1;
    }
    *p = '\0';   /* safe: p < end, or p == end which is the '\n' or NUL */
    if (p < end) {
        p++;
    }
    while (p < end) {
        while (p < end && mk_mime_is_blank(*p)) {
            p++;
        }
        ext = p;
        while (p < end && !mk_mime_is_blank(*p)) {
            p++;
        }
        /* Later lines win on a repeated extension, as in nginx. */
        if (p > ext && mk_hash_set(m->map, ext, (size_t) (p - ext), type) < 0) {
            mk_str_printf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

struct mk_mime *mk_mime_create(const char *data, size_t len,
                               char *err, size_t errlen)
{
    struct mk_mime *m;
    char *p, *end, *nl;
    int lineno = 0;

    if (data == NULL) {
        data = mk_mime_builtin;
        len = sizeof(mk_mime_builtin) - 1;
    }
    if (memchr(data, '\0', len) != NULL) {
        mk_str_printf(err, errlen, "NUL byte in MIME types");
        return NULL;
    }
    m = mk_mem_zalloc(sizeof(*m));
    if (m == NULL) {
        goto oom;
    }
    m->buf = mk_mem_alloc(len + 1);
    m->map = mk_hash_create(1024, MK_HASH_NOCASE);
    if (m->buf == NULL || m->map == NULL) {
        goto oom;
    }
    memcpy(m->buf, data, len);
    m->buf[len] = '\0';

    p = m->buf;
    end = m->buf + len;
    while (p < end) {
        nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL) {
            nl = end;
        }
        lineno++;
        if (mk_mime_parse_line(m, p, nl, lineno, err, errlen) < 0) {
            goto error;
        }
        p = nl + 1;
    }
    return m;

oom:
    mk_str_printf(err, errlen, "out of memory");
error:
    mk_mime_destroy(m);
    return NULL;
}

struct mk_mime *mk_mime_load(const char *path, char *err, size_t errlen)
{
    struct mk_mime *m = NULL;
    struct stat st;
    char *data = NULL;
    size_t got = 0;
    ssize_t n;
    int fd;
    char sub[256];

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        mk_str_printf(err, errlen, "%s: %s", path, strerror(errno));
        goto error;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > MK_MIME_MAX_FILE) {
        mk_str_printf(err, errlen, "%s: not a regular file under 4 MiB",
                      path);
        goto error;
    }
    data = mk_mem_alloc((size_t) st.st_size + 1);
    if (data == NULL) {
        mk_str_printf(err, errlen, "%s: out of memory", path);
        goto error;
    }
    while (got < (size_t) st.st_size) {
        n = read(fd, data + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            mk_str_printf(err, errlen, "%s: read failed", path);
            goto error;
        }
        got += (size_t) n;
    }
    m = mk_mime_create(data, got, sub, sizeof(sub));
    if (m == NULL) {
        mk_str_printf(err, errlen, "%s: %s", path, sub);
    }
error:
    if (fd >= 0) {
        close(fd);
    }
    mk_mem_free(data);
    return m;
}

void mk_mime_destroy(struct mk_mime *m)
{
    if (m == NULL) {
        return;
    }
    if (m->map != NULL) {
        mk_hash_destroy(m->map, NULL);
    }
    mk_mem_free(m->buf);
    mk_mem_free(m);
}

size_t mk_mime_count(const struct mk_mime *m)
{
    return m ? mk_hash_count(m->map) : 0;
}

const char *mk_mime_lookup(const struct mk_mime *m, const char *filename)
{
    const char *base, *dot, *type;

    if (m == NULL || filename == NULL) {
        return MK_MIME_DEFAULT;
    }
    base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    dot = strrchr(base, '.');
    if (dot == NULL || dot[1] == '\0') {
        return MK_MIME_DEFAULT;
    }
    type = mk_hash_get(m->map, dot + 1, strlen(dot + 1));
    return type ? type : MK_MIME_DEFAULT;
}

const char *mk_mime_content_type(const struct mk_mime *m, const char *filename)
{
    const char *type = mk_mime_lookup(m, filename);
    size_t i;

    for (i = 0; i < sizeof(mk_mime_charset) / sizeof(mk_mime_charset[0]);
         i++) {
        if (strcasecmp(type, mk_mime_charset[i][0]) == 0) {
            return mk_mime_charset[i][1];
        }
    }
    return type;
}
