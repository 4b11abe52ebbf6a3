#ifndef MK_SERVER_STATIC_PRIV_H
#define MK_SERVER_STATIC_PRIV_H

/*
 * Internals of the static handler shared by mk_static.c, mk_mime.c,
 * mk_static_cache.c, their unit tests and the range_header fuzz target.
 * Everything here is pure (no request, no connection) so it can be tested
 * and fuzzed on its own.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "mk_core/mk_string.h"
#include "mk_server/mk_static.h"

/* Files up to this size are read into memory (and cached per worker) so
 * that head and body leave in one writev; larger ones go out by sendfile. */
#define MK_STATIC_SMALL_FILE   (16 * 1024)
/* Per-worker cache bounds. */
#define MK_STATIC_CACHE_SLOTS  256
#define MK_STATIC_CACHE_BYTES  (8 * 1024 * 1024)
/* How old a cache entry's validation may be before fstatat again. */
#define MK_STATIC_REVALIDATE_MS 1000

/* "\"<mtime hex>-<size hex>\"" */
#define MK_STATIC_ETAG_MAX     40

/* ---- MIME table (mk_mime.c) --------------------------------------------- */

/* Parses mime.types text; NULL with a reason in err on failure. The
 * built-in table (a handful of web types) is used when data is NULL. */
struct mk_mime *mk_mime_create(const char *data, size_t len,
                               char *err, size_t errlen);
/* Reads and parses a file; NULL with a reason in err. */
struct mk_mime *mk_mime_load(const char *path, char *err, size_t errlen);
void mk_mime_destroy(struct mk_mime *m);
size_t mk_mime_count(const struct mk_mime *m);
/* The Content-Type header value for a file name: the MIME type, with
 * "; charset=utf-8" for the text types browsers otherwise guess wrongly.
 * The pointer lives as long as the table. */
const char *mk_mime_content_type(const struct mk_mime *m, const char *filename);

/* ---- Range, validators, preconditions (mk_static.c) --------------------- */

enum mk_static_range_result {
    MK_RANGE_NONE = 0,        /* absent, malformed or several: send 200 */
    MK_RANGE_OK,              /* one satisfiable range [first, last] */
    MK_RANGE_UNSATISFIABLE,   /* 416 */
};

/* Parses a Range header value against a representation of `size` bytes.
 * Only "bytes=" (case-insensitive) with exactly one range is honoured. */
enum mk_static_range_result
mk_static_range_parse(struct mk_ptr value, uint64_t size,
                      uint64_t *first, uint64_t *last);

/* Writes the ETag ("\"<mtime hex>-<size hex>\"") into out (at least
 * MK_STATIC_ETAG_MAX bytes, NUL added); returns its length. */
size_t mk_static_etag_format(char *out, time_t mtime, uint64_t size);

/* Does the If-Match / If-None-Match list `value` match our (strong) etag?
 * `*` matches. weak: compare ignoring W/ (If-None-Match); otherwise strong
 * comparison (If-Match, If-Range): a W/ tag never matches. A malformed list
 * matches nothing after the point where it breaks. */
int mk_static_etag_match(struct mk_ptr value, const char *etag,
                         size_t etag_len, int weak);

/* The conditional request headers of one request (MK_PTR_NONE if absent). */
struct mk_static_cond {
    struct mk_ptr if_match;
    struct mk_ptr if_unmodified_since;
    struct mk_ptr if_none_match;
    struct mk_ptr if_modified_since;
};

/* RFC 9110 13.2.2 evaluation for a GET/HEAD of an existing file: returns
 * 0 (proceed), 304 or 412. */
int mk_static_cond_eval(const struct mk_static_cond *c, time_t mtime,
                        const char *etag, size_t etag_len);

/* Does If-Range `value` still select our representation (so the Range
 * applies)? An entity-tag compares strongly, a date must equal mtime. */
int mk_static_if_range_match(struct mk_ptr value, time_t mtime,
                             const char *etag, size_t etag_len);

/* ---- Confined open (mk_static.c) ---------------------------------------- */

#define MK_STATIC_OPEN_AUTO      0   /* openat2 if the kernel has it */
#define MK_STATIC_OPEN_FALLBACK  1   /* openat + realpath check (tests) */

/* Opens `rel` (relative, no leading '/', "" for the root itself) beneath
 * root, read-only and non-blocking (a FIFO must not hang the worker).
 * Returns the fd, or -errno: -EXDEV when the path escapes the root. */
int mk_static_open(const struct mk_static_root *root, const char *rel,
                   int mode);

/* ---- Per-worker small-file cache (mk_static_cache.c) -------------------- */

/* A file ready to serve: from the cache (data != NULL, fd == -1) or
 * freshly opened. */
struct mk_static_file {
    int fd;
    const char *data;         /* whole content when small, else NULL */
    uint64_t size;
    time_t mtime;
    const char *content_type;
    char etag[MK_STATIC_ETAG_MAX];
    size_t etag_len;
    char last_modified[32];
};

struct mk_static_cache_entry;

/* Looks up the requested relative path; revalidates the entry with
 * fstatat when its last check is older than MK_STATIC_REVALIDATE_MS (a
 * changed file drops the entry). Returns NULL on a miss. */
struct mk_static_cache_entry *
mk_static_cache_get(const struct mk_static_root *root,
                    const struct mk_static_conf *sc, const char *rel);
/* Fills `f` from an entry (data points into the entry: valid until the
 * next cache call of this thread; copy it into the response). */
void mk_static_cache_fill(const struct mk_static_cache_entry *e,
                          struct mk_static_file *f);
/* Stores a small file: `rel` the requested path, `file_rel` the path of
 * the file actually served (differs for an index file), `st` its stat.
 * Returns the entry or NULL (not cached; the caller serves from `f`). */
struct mk_static_cache_entry *
mk_static_cache_put(const struct mk_static_root *root,
                    const struct mk_static_conf *sc, const char *rel,
                    const char *file_rel, const struct stat *st,
                    const struct mk_static_file *f);
/* Entries and bytes held by this thread's cache (tests, status). */
size_t mk_static_cache_count(void);
size_t mk_static_cache_bytes(void);
void   mk_static_cache_clear(void);

#endif
