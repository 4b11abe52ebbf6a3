#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define MK_STATIC_HAVE_OPENAT2 1
#endif
#endif

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "mk_server/mk_http_date.h"
#include "mk_server/mk_plugin.h"
#include "mk_server/mk_static.h"
#include "mk_server/mk_static_priv.h"

/*
 * The built-in "static" content handler. The pure parts (Range, entity-tag
 * lists, precondition order, confined open) come first and are exposed
 * through mk_static_priv.h for the unit tests and the fuzz target; the
 * request handling follows. Small files are served from the per-worker
 * cache (mk_static_cache.c) with MK_WRITE_COPY: copying at most 16 KiB into
 * the write queue costs less than reference counting a shared buffer and
 * keeps the cache free to evict at any time.
 *
 * Range: one range only. A request for several ranges gets the whole file
 * with 200, which RFC 9110 14.2 allows (a server MAY ignore Range): a
 * multipart/byteranges answer is rarely wanted and a known amplification
 * tool ("bytes=0-,0-,0-..."). A malformed Range is ignored the same way.
 */

/* ---- Range -------------------------------------------------------------- */

static int mk_static_all_digits(struct mk_ptr p)
{
    size_t i;

    if (p.len == 0) {
        return 0;
    }
    for (i = 0; i < p.len; i++) {
        if (p.data[i] < '0' || p.data[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* Digits only; a number too large for 64 bits saturates (it is past the end
 * of any file, which is what it means). -1 if not all digits. */
static int mk_static_u64_sat(struct mk_ptr p, uint64_t *out)
{
    if (!mk_static_all_digits(p)) {
        return -1;
    }
    if (mk_str_to_u64(p.data, p.len, out) < 0) {
        *out = UINT64_MAX;
    }
    return 0;
}

/* The single non-empty element of the range-set, or NONE when there are
 * none or several (a list may hold empty elements: "bytes=,0-1,"). */
static struct mk_ptr mk_static_range_single(const char *p, const char *end)
{
    struct mk_ptr spec = MK_PTR_NONE, e;
    const char *comma;
    int count = 0;

    for (;;) {
        comma = memchr(p, ',', (size_t) (end - p));
        e = mk_ptr_trim(mk_ptr_make(p, (size_t) ((comma ? comma : end) - p)));
        if (e.len > 0) {
            if (++count > 1) {
                return MK_PTR_NONE;
            }
            spec = e;
        }
        if (comma == NULL) {
            return spec;
        }
        p = comma + 1;
    }
}

enum mk_static_range_result
mk_static_range_parse(struct mk_ptr value, uint64_t size,
                      uint64_t *first, uint64_t *last)
{
    struct mk_ptr spec, a, b;
    const char *dash;
    uint64_t va, vb;

    /* An empty file has no byte to select; nginx serves it whole too. */
    if (value.data == NULL || size == 0) {
        return MK_RANGE_NONE;
    }
    value = mk_ptr_trim(value);
    if (value.len < 6 || !mk_str_case_eq(value.data, 6, "bytes=", 6)) {
        return MK_RANGE_NONE;
    }
    spec = mk_static_range_single(value.data + 6, value.data + value.len);
    if (spec.data == NULL) {
        return MK_RANGE_NONE;
    }
    dash = memchr(spec.data, '-', spec.len);
    if (dash == NULL) {
        return MK_RANGE_NONE;
    }
    a = mk_ptr_make(spec.data, (size_t) (dash - spec.data));
    b = mk_ptr_make(dash + 1, spec.len - a.len - 1);

    if (a.len == 0) {                         /* suffix: "-N" */
        if (mk_static_u64_sat(b, &vb) < 0) {
            return MK_RANGE_NONE;
        }
        if (vb == 0) {
            return MK_RANGE_UNSATISFIABLE;
        }
        *first = vb >= size ? 0 : size - vb;
        *last = size - 1;
        return MK_RANGE_OK;
    }
    if (mk_static_u64_sat(a, &va) < 0) {
        return MK_RANGE_NONE;
    }
    if (b.len == 0) {                         /* "A-" */
        vb = UINT64_MAX;
    } else if (mk_static_u64_sat(b, &vb) < 0 || vb < va) {
        return MK_RANGE_NONE;                 /* "5-1" is invalid, not 416 */
    }
    if (va >= size) {
        return MK_RANGE_UNSATISFIABLE;
    }
    *first = va;
    *last = vb >= size ? size - 1 : vb;
    return MK_RANGE_OK;
}

/* ---- Validators and preconditions --------------------------------------- */

size_t mk_static_etag_format(char *out, time_t mtime, uint64_t size)
{
    return mk_str_printf(out, MK_STATIC_ETAG_MAX, "\"%" PRIx64 "-%" PRIx64 "\"",
                         (uint64_t) mtime, size);
}

static const char *mk_static_skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    return p;
}

int mk_static_etag_match(struct mk_ptr value, const char *etag,
                         size_t etag_len, int weak)
{
    const char *p, *end, *close;
    int is_weak;

    if (value.data == NULL) {
        return 0;
    }
    value = mk_ptr_trim(value);
    if (value.len == 1 && value.data[0] == '*') {
        return 1;
    }
    p = value.data;
    end = value.data + value.len;
    while (p < end) {
        /* Quoted tags may contain commas, so walk the list, don't split. */
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }
        if (p == end) {
            break;
        }
        is_weak = 0;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            is_weak = 1;
            p += 2;
        }
        if (p == end || *p != '"') {
            return 0;
        }
        close = memchr(p + 1, '"', (size_t) (end - p - 1));
        if (close == NULL) {
            return 0;
        }
        if ((weak || !is_weak) && (size_t) (close + 1 - p) == etag_len &&
            memcmp(p, etag, etag_len) == 0) {
            return 1;
        }
        p = mk_static_skip_ows(close + 1, end);
        if (p < end && *p != ',') {
            return 0;
        }
    }
    return 0;
}

/* Absent, or present with nothing in it: both mean "no condition". */
static int mk_static_has(struct mk_ptr p)
{
    return p.data != NULL && mk_ptr_trim(p).len > 0;
}

static int mk_static_date(struct mk_ptr p, time_t *out)
{
    p = mk_ptr_trim(p);
    return mk_http_date_parse(p.data, p.len, out);
}

int mk_static_cond_eval(const struct mk_static_cond *c, time_t mtime,
                        const char *etag, size_t etag_len)
{
    time_t t;

    /* RFC 9110 13.2.2: If-Match, else If-Unmodified-Since; then
     * If-None-Match, else If-Modified-Since. An unparsable date is
     * ignored (13.1.3, 13.1.4). */
    if (mk_static_has(c->if_match)) {
        if (!mk_static_etag_match(c->if_match, etag, etag_len, 0)) {
            return 412;
        }
    } else if (mk_static_has(c->if_unmodified_since) &&
               mk_static_date(c->if_unmodified_since, &t) == 0 &&
               mtime > t) {
        return 412;
    }
    if (mk_static_has(c->if_none_match)) {
        if (mk_static_etag_match(c->if_none_match, etag, etag_len, 1)) {
            return 304;
        }
    } else if (mk_static_has(c->if_modified_since) &&
               mk_static_date(c->if_modified_since, &t) == 0 &&
               mtime <= t) {
        return 304;
    }
    return 0;
}

int mk_static_if_range_match(struct mk_ptr value, time_t mtime,
                             const char *etag, size_t etag_len)
{
    time_t t;

    value = mk_ptr_trim(value);
    if (value.len == 0) {
        return 0;
    }
    if (value.data[0] == '"' ||
        (value.len >= 2 && value.data[0] == 'W' && value.data[1] == '/')) {
        /* Strong comparison of one tag: a weak one never matches. */
        return value.len == etag_len &&
               memcmp(value.data, etag, etag_len) == 0;
    }
    return mk_static_date(value, &t) == 0 && t == mtime;
}

/* ---- Confined open ------------------------------------------------------ */

/* Set once the kernel said ENOSYS: every later open goes straight to the
 * fallback. Racy by design between workers: the worst case is one more
 * ENOSYS. */
static volatile int mk_static_no_openat2;

/* Is the absolute path p the root or beneath it? */
static int mk_static_path_beneath(const char *root, const char *p)
{
    size_t n = strlen(root);

    while (n > 1 && root[n - 1] == '/') {
        n--;
    }
    if (n == 1 && root[0] == '/') {
        return p[0] == '/';
    }
    return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* Where does the open fd really live? /proc tells without a race; without
 * /proc, realpath the name and make sure it is the same inode we hold. */
static int mk_static_fd_beneath(const struct mk_static_root *root, int fd,
                                const char *rel)
{
    char link[64], joined[PATH_MAX], real[PATH_MAX];
    struct stat a, b;
    ssize_t n;

    if (root->path == NULL) {
        return 0;
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, real, sizeof(real) - 1);
    if (n > 0 && (size_t) n < sizeof(real) - 1 && real[0] == '/') {
        real[n] = '\0';
        return mk_static_path_beneath(root->path, real);
    }
    if ((size_t) snprintf(joined, sizeof(joined), "%s/%s", root->path, rel)
            >= sizeof(joined) ||
        realpath(joined, real) == NULL ||
        stat(real, &a) < 0 || fstat(fd, &b) < 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        return 0;
    }
    return mk_static_path_beneath(root->path, real);
}

static int mk_static_open_fallback(const struct mk_static_root *root,
                                   const char *rel, int flags)
{
    int fd = openat(root->fd, rel, flags);

    if (fd < 0) {
        return -errno;
    }
    if (!mk_static_fd_beneath(root, fd, rel)) {
        close(fd);
        return -EXDEV;
    }
    return fd;
}

int mk_static_open(const struct mk_static_root *root, const char *rel,
                   int mode)
{
    /* O_NONBLOCK: opening a FIFO planted in the root must not hang the
     * worker; it changes nothing for regular files. */
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    int fd;

    while (*rel == '/') {
        rel++;
    }
    if (*rel == '\0') {
        rel = ".";
    }
    if (root->allow_symlinks_outside) {
        fd = openat(root->fd, rel, flags);
        return fd < 0 ? -errno : fd;
    }
#if defined(MK_STATIC_HAVE_OPENAT2) && defined(SYS_openat2)
    if (mode == MK_STATIC_OPEN_AUTO && !mk_static_no_openat2) {
        struct open_how how;
        int tries;

        memset(&how, 0, sizeof(how));
        how.flags = (uint64_t) flags;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        /* EAGAIN: a concurrent rename raced the lookup; try again. */
        for (tries = 0; tries < 3; tries++) {
            fd = (int) syscall(SYS_openat2, root->fd, rel, &how, sizeof(how));
            if (fd >= 0) {
                return fd;
            }
            if (errno != EAGAIN) {
                break;
            }
        }
        if (errno == ENOSYS) {
            mk_static_no_openat2 = 1;
        } else if (errno != EPERM) {
            return -errno;
        }
        /* EPERM: a seccomp filter that does not know openat2 (old
         * container runtimes) - the fallback finds out the truth. */
    }
#endif
    return mk_static_open_fallback(root, rel, flags);
}

/* ---- Configuration ------------------------------------------------------ */

static int mk_static_index_add(struct mk_static_conf *sc, const char *name,
                               size_t len, char *err, size_t errlen)
{
    char **grown;

    if (memchr(name, '/', len) != NULL) {
        mk_str_printf(err, errlen, "IndexFiles: '%.*s' must be a file name",
                      (int) len, name);
        return -1;
    }
    grown = mk_mem_realloc(sc->index_files,
                           (sc->index_count + 1) * sizeof(char *));
    if (grown == NULL) {
        goto oom;
    }
    sc->index_files = grown;
    sc->index_files[sc->index_count] = mk_mem_strndup(name, len);
    if (sc->index_files[sc->index_count] == NULL) {
        goto oom;
    }
    sc->index_count++;
    return 0;

oom:
    mk_str_printf(err, errlen, "out of memory");
    return -1;
}

/* Each value of the list may hold several names ("index.html index.htm"). */
static int mk_static_index_parse(struct mk_static_conf *sc,
                                 const struct mk_conf_list *list,
                                 char *err, size_t errlen)
{
    const char *p, *start;
    size_t i;

    for (i = 0; list != NULL && i < list->count; i++) {
        p = list->values[i];
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',') {
                p++;
            }
            start = p;
            while (*p && *p != ' ' && *p != '\t' && *p != ',') {
                p++;
            }
            if (p > start && mk_static_index_add(sc, start,
                                                 (size_t) (p - start),
                                                 err, errlen) < 0) {
                return -1;
            }
        }
    }
    if (sc->index_count == 0) {
        return mk_static_index_add(sc, "index.html", 10, err, errlen);
    }
    return 0;
}

int mk_static_conf_init(struct mk_static_conf *sc, const char *mime_path,
                        const struct mk_conf_list *index_files,
                        char *err, size_t errlen)
{
    memset(sc, 0, sizeof(*sc));
    if (mime_path != NULL && mime_path[0] != '\0') {
        sc->mime = mk_mime_load(mime_path, err, errlen);
    } else {
        sc->mime = mk_mime_create(NULL, 0, err, errlen);
    }
    if (sc->mime == NULL) {
        goto error;
    }
    if (mk_static_index_parse(sc, index_files, err, errlen) < 0) {
        goto error;
    }
    return 0;

error:
    mk_static_conf_release(sc);
    return -1;
}

void mk_static_conf_release(struct mk_static_conf *sc)
{
    size_t i;

    mk_mime_destroy(sc->mime);
    for (i = 0; i < sc->index_count; i++) {
        mk_mem_free(sc->index_files[i]);
    }
    mk_mem_free(sc->index_files);
    memset(sc, 0, sizeof(*sc));
}

int mk_static_root_open(struct mk_static_root *root, const char *path,
                        char *err, size_t errlen)
{
    char *copy = mk_mem_strdup(path);

    root->path = NULL;
    root->fd = -1;
    if (copy == NULL) {
        mk_str_printf(err, errlen, "DocumentRoot %s: out of memory", path);
        return -1;
    }
    root->fd = open(path, O_DIRECTORY | O_PATH | O_CLOEXEC);
    if (root->fd < 0) {
        mk_str_printf(err, errlen, "DocumentRoot %s: %s", path,
                      strerror(errno));
        mk_mem_free(copy);
        return -1;
    }
    root->path = copy;
    return 0;
}

void mk_static_root_close(struct mk_static_root *root)
{
    if (root->fd >= 0) {
        close(root->fd);
    }
    root->fd = -1;
    mk_mem_free((char *) root->path);
    root->path = NULL;
}

/* ---- Serving ------------------------------------------------------------ */

/* The handler's return for a mk_response_* result. */
static int mk_static_done(int ret)
{
    return ret < 0 ? MK_STAGE_CLOSE : MK_STAGE_HANDLED;
}

static int mk_static_error(struct mk_stream *r, int status)
{
    return mk_static_done(mk_response_error(r, status));
}

/* Escapes and missing files look the same from outside: never tell a
 * client that a path exists but lies beyond the root. */
static int mk_static_errno_status(struct mk_stream *r, int err,
                                  const char *path)
{
    switch (err) {
    case ENOENT: case ENOTDIR: case EXDEV: case ELOOP: case ENAMETOOLONG:
        return 404;
    case EACCES: case EPERM:
        return 403;
    default:
        mk_err("[fd %d] static: open %s: %s", mk_conn_fd(mk_request_conn(r)),
               path, strerror(err));
        return 500;
    }
}

static void mk_static_close_fd(struct mk_static_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

/* If-Match and If-Unmodified-Since have no parser id: one pass finds both. */
static void mk_static_cond_read(const struct mk_http_request_head *h,
                                const char *buf, struct mk_static_cond *c)
{
    uint32_t i;

    c->if_match = MK_PTR_NONE;
    c->if_unmodified_since = MK_PTR_NONE;
    c->if_none_match = mk_http_header_known(h, buf, MK_HDR_IF_NONE_MATCH);
    c->if_modified_since = mk_http_header_known(h, buf,
                                                MK_HDR_IF_MODIFIED_SINCE);
    for (i = 0; i < h->header_count; i++) {
        struct mk_ptr name = mk_http_span_ptr(buf, h->headers[i].name);

        if (h->headers[i].id != MK_HDR_OTHER) {
            continue;
        }
        if (c->if_match.data == NULL && mk_ptr_case_eq(name, "If-Match")) {
            c->if_match = mk_http_span_ptr(buf, h->headers[i].value);
        } else if (c->if_unmodified_since.data == NULL &&
                   mk_ptr_case_eq(name, "If-Unmodified-Since")) {
            c->if_unmodified_since = mk_http_span_ptr(buf,
                                                      h->headers[i].value);
        }
    }
}

static int mk_static_not_modified(struct mk_stream *r,
                                  struct mk_static_file *f)
{
    mk_static_close_fd(f);
    mk_response_status(r, 304);
    if (mk_response_header_n(r, "ETag", f->etag, f->etag_len) < 0 ||
        mk_response_header(r, "Last-Modified", f->last_modified) < 0 ||
        mk_response_send_head(r) < 0) {
        return MK_STAGE_CLOSE;
    }
    return mk_static_done(mk_response_end(r));
}

static int mk_static_unsatisfiable(struct mk_stream *r,
                                   struct mk_static_file *f)
{
    char cr[48];

    mk_static_close_fd(f);
    mk_str_printf(cr, sizeof(cr), "bytes */%" PRIu64, f->size);
    if (mk_response_header(r, "Content-Range", cr) < 0) {
        return MK_STAGE_CLOSE;
    }
    return mk_static_error(r, 416);
}

/* Which bytes to send: the Range (unless If-Range says the client holds
 * another version), else everything. Returns 200, 206 or 416. */
static int mk_static_select(struct mk_stream *r,
                            const struct mk_http_request_head *h,
                            const char *buf, const struct mk_static_file *f,
                            uint64_t *first, uint64_t *last)
{
    struct mk_ptr range, if_range;

    *first = 0;
    *last = f->size ? f->size - 1 : 0;
    /* HEAD gets the Range treatment too: its head must be the one GET
     * would get (RFC 9110 9.3.2), and nginx and Apache answer it 206. */
    range = mk_http_header_known(h, buf, MK_HDR_RANGE);
    if (range.data == NULL) {
        return 200;
    }
    if_range = mk_http_header_known(h, buf, MK_HDR_IF_RANGE);
    if (if_range.data != NULL &&
        !mk_static_if_range_match(if_range, f->mtime, f->etag, f->etag_len)) {
        return 200;
    }
    switch (mk_static_range_parse(range, f->size, first, last)) {
    case MK_RANGE_OK:
        return 206;
    case MK_RANGE_UNSATISFIABLE:
        return 416;
    default:
        *first = 0;
        *last = f->size ? f->size - 1 : 0;
        return 200;
    }
}

/* Answers for a file ready to serve. Consumes f->fd (sent and closed by
 * the core, or closed here). */
static int mk_static_respond(struct mk_stream *r, struct mk_static_file *f)
{
    const struct mk_http_request_head *h = mk_request_head(r);
    const char *buf = mk_request_buf(r);
    struct mk_static_cond c;
    uint64_t first, last, len;
    char cr[80];
    int status;

    mk_static_cond_read(h, buf, &c);
    status = mk_static_cond_eval(&c, f->mtime, f->etag, f->etag_len);
    if (status == 304) {
        return mk_static_not_modified(r, f);
    }
    if (status == 412) {
        mk_static_close_fd(f);
        return mk_static_error(r, 412);
    }
    status = mk_static_select(r, h, buf, f, &first, &last);
    if (status == 416) {
        return mk_static_unsatisfiable(r, f);
    }
    len = f->size ? last - first + 1 : 0;

    mk_response_status(r, status);
    if (mk_response_header(r, "Content-Type", f->content_type) < 0 ||
        mk_response_header(r, "Last-Modified", f->last_modified) < 0 ||
        mk_response_header_n(r, "ETag", f->etag, f->etag_len) < 0 ||
        mk_response_header(r, "Accept-Ranges", "bytes") < 0) {
        goto error;
    }
    if (status == 206) {
        mk_str_printf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                      first, last, f->size);
        if (mk_response_header(r, "Content-Range", cr) < 0) {
            goto error;
        }
    }
    mk_response_content_length(r, (int64_t) len);
    if (mk_response_send_head(r) < 0) {
        goto error;
    }
    if (h->method == MK_HTTP_METHOD_HEAD || len == 0) {
        mk_static_close_fd(f);
    } else if (f->data != NULL) {
        mk_static_close_fd(f);
        if (mk_response_write(r, f->data + first, (size_t) len,
                              MK_WRITE_COPY) < 0) {
            return MK_STAGE_CLOSE;
        }
    } else {
        int fd = f->fd;

        f->fd = -1;                 /* the core owns it from here on */
        if (mk_response_sendfile(r, fd, (off_t) first, (size_t) len, 1) < 0) {
            return MK_STAGE_CLOSE;
        }
    }
    return mk_static_done(mk_response_end(r));

error:
    mk_static_close_fd(f);
    return MK_STAGE_CLOSE;
}

/* May a byte stand unescaped in a Location path? RFC 3986 pchar and '/',
 * without '%': the path given is decoded, so a '%' is a literal one. */
static int mk_static_location_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

/* 301 to the directory with its slash, built from the normalised path and
 * not the client's: "/\evil.example/../sub" must not come back as a
 * Location that browsers read as "//evil.example". The clean path has no
 * "//" and its other unsafe bytes ('\' among them) are percent-encoded;
 * the query goes back as sent (the parser let only visible ASCII in). */
static int mk_static_redirect(struct mk_stream *r, const char *clean)
{
    static const char hex[] = "0123456789ABCDEF";
    struct mk_ptr query = mk_request_query(r);
    size_t clen = strlen(clean), n = 0, i;
    char *loc;
    int ret;

    loc = mk_mem_alloc(clen * 3 + 2 + query.len);
    if (loc == NULL) {
        return mk_static_error(r, 500);
    }
    for (i = 0; i < clen; i++) {
        unsigned char c = (unsigned char) clean[i];

        if (mk_static_location_safe(c)) {
            loc[n++] = (char) c;
        } else {
            loc[n++] = '%';
            loc[n++] = hex[c >> 4];
            loc[n++] = hex[c & 0xf];
        }
    }
    loc[n++] = '/';
    if (query.len > 0) {
        loc[n++] = '?';
        memcpy(loc + n, query.data, query.len);
        n += query.len;
    }
    ret = mk_response_header_n(r, "Location", loc, n);
    mk_mem_free(loc);
    if (ret < 0) {
        return MK_STAGE_CLOSE;
    }
    return mk_static_error(r, 301);
}

/* First index file of the directory `rel` ("" or ending in '/') that is a
 * regular file; its relative path goes to out. -ENOENT if none. */
static int mk_static_open_index(const struct mk_static_conf *sc,
                                const struct mk_static_root *root,
                                const char *rel, char *out, size_t outlen,
                                struct stat *st)
{
    size_t i;
    int fd;

    for (i = 0; i < sc->index_count; i++) {
        if ((size_t) snprintf(out, outlen, "%s%s", rel, sc->index_files[i])
                >= outlen) {
            return -ENAMETOOLONG;
        }
        fd = mk_static_open(root, out, MK_STATIC_OPEN_AUTO);
        if (fd == -ENOENT || fd == -EXDEV || fd == -ELOOP ||
            fd == -ENOTDIR) {
            continue;
        }
        if (fd < 0) {
            return fd;
        }
        if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
            return fd;
        }
        close(fd);
    }
    return -ENOENT;
}

/* Reads a whole small file. Returns an mk_mem buffer, or NULL when the
 * file changed under us (short read) or memory ran out. */
static char *mk_static_read_all(int fd, uint64_t size)
{
    char *data = mk_mem_alloc(size ? size : 1);
    size_t got = 0;
    ssize_t n;

    while (data != NULL && got < size) {
        n = pread(fd, data + got, size - got, (off_t) got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            mk_mem_free(data);
            return NULL;
        }
        got += (size_t) n;
    }
    return data;
}

static void mk_static_file_init(struct mk_static_file *f, int fd,
                                const struct stat *st, const char *type)
{
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    f->size = (uint64_t) st->st_size;
    f->mtime = st->st_mtime;
    f->content_type = type;
    f->etag_len = mk_static_etag_format(f->etag, f->mtime, f->size);
    mk_http_date_format(f->mtime, f->last_modified);
}

/* Small file: into memory and the cache, so the next request for it makes
 * no system call at all. */
static int mk_static_respond_small(struct mk_stream *r,
                                   const struct mk_static_conf *sc,
                                   const struct mk_static_root *root,
                                   const char *rel, const char *file_rel,
                                   const struct stat *st,
                                   struct mk_static_file *f)
{
    struct mk_static_cache_entry *e;
    char *data;
    int ret;

    data = mk_static_read_all(f->fd, f->size);
    if (data == NULL) {
        /* Grown or shrunk while we read: sendfile copes with either. */
        return mk_static_respond(r, f);
    }
    mk_static_close_fd(f);
    f->data = data;
    e = mk_static_cache_put(root, sc, rel, file_rel, st, f);
    if (e != NULL) {
        mk_static_cache_fill(e, f);
    }
    ret = mk_static_respond(r, f);
    mk_mem_free(data);
    return ret;
}

static int mk_static_serve_path(struct mk_stream *r,
                                const struct mk_static_conf *sc,
                                const struct mk_static_root *root,
                                const char *path, const char *rel)
{
    char index_rel[PATH_MAX];
    const char *file_rel = rel;
    struct mk_static_file f;
    struct stat st;
    int fd;

    fd = mk_static_open(root, rel, MK_STATIC_OPEN_AUTO);
    if (fd < 0) {
        return mk_static_error(r, mk_static_errno_status(r, -fd, path));
    }
    if (fstat(fd, &st) < 0) {
        close(fd);
        return mk_static_error(r, mk_static_errno_status(r, errno, path));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        if (path[strlen(path) - 1] != '/') {
            return mk_static_redirect(r, path);
        }
        fd = mk_static_open_index(sc, root, rel, index_rel,
                                  sizeof(index_rel), &st);
        if (fd < 0) {
            /* No index and no listing: nginx's answer too. */
            return mk_static_error(r, fd == -ENOENT ? 403 :
                                   mk_static_errno_status(r, -fd, path));
        }
        file_rel = index_rel;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);                  /* FIFOs, sockets, devices */
        return mk_static_error(r, 404);
    }
    mk_static_file_init(&f, fd, &st, mk_mime_content_type(sc->mime, file_rel));
    if (f.size <= MK_STATIC_SMALL_FILE) {
        return mk_static_respond_small(r, sc, root, rel, file_rel, &st, &f);
    }
    return mk_static_respond(r, &f);
}

int mk_static_handle(struct mk_stream *r, const struct mk_static_conf *sc,
                     const struct mk_static_root *root)
{
    enum mk_http_method method = mk_request_method(r);
    struct mk_static_cache_entry *e;
    struct mk_static_file f;
    const char *path, *rel;

    if (method != MK_HTTP_METHOD_GET && method != MK_HTTP_METHOD_HEAD) {
        if (mk_response_header(r, "Allow", "GET, HEAD") < 0) {
            return MK_STAGE_CLOSE;
        }
        return mk_static_error(r, 405);
    }
    path = mk_request_clean_path(r);
    if (path == NULL || path[0] != '/') {
        return mk_static_error(r, 400);
    }
    rel = path;
    while (*rel == '/') {
        rel++;
    }
    e = mk_static_cache_get(root, sc, rel);
    if (e != NULL) {
        mk_static_cache_fill(e, &f);
        return mk_static_respond(r, &f);
    }
    return mk_static_serve_path(r, sc, root, path, rel);
}
