#ifndef MK_SERVER_STATIC_H
#define MK_SERVER_STATIC_H

#include <stddef.h>
#include "mk_core/mk_rconf.h"

/*
 * The built-in content handler "static": files under a vhost's
 * DocumentRoot. GET and HEAD only (others: 405 with Allow), index files,
 * 301 for a directory without its trailing slash, Range (one range: 206 or
 * 416), If-Modified-Since / If-None-Match / If-Range (304, 412 where due),
 * Last-Modified and ETag, Content-Type from the MIME table, sendfile for
 * large files and one writev for small ones (a per-worker cache of small
 * files, revalidated once a second, keeps hot files out of the kernel).
 *
 * Confinement: a file is opened relative to the root's directory fd with
 * openat2(RESOLVE_BENEATH) where the kernel has it (symlinks inside the
 * root work, escapes fail), else with a realpath check; with
 * allow_symlinks_outside, symlinks may point anywhere. The request path is
 * mk_request_clean_path(): already percent-decoded and free of dot segments.
 */
struct mk_mime;

struct mk_static_conf {
    struct mk_mime *mime;
    char **index_files;            /* owned */
    size_t index_count;
};

struct mk_static_root {
    const char *path;              /* realpath of DocumentRoot */
    int fd;                        /* O_DIRECTORY|O_PATH fd of it */
    int allow_symlinks_outside;
};

/* Loads the MIME table (mime.types format: "type ext ext...") and copies the
 * index file names. Returns 0 or -1 with a reason in err. */
int  mk_static_conf_init(struct mk_static_conf *sc, const char *mime_path,
                         const struct mk_conf_list *index_files,
                         char *err, size_t errlen);
void mk_static_conf_release(struct mk_static_conf *sc);

/* Opens root->fd for `path` (the caller passes its realpath) and stores a
 * copy of it in root->path (owned; freed by mk_static_root_close). On
 * failure root->fd is -1 and root->path NULL. */
int  mk_static_root_open(struct mk_static_root *root, const char *path,
                         char *err, size_t errlen);
void mk_static_root_close(struct mk_static_root *root);

struct mk_stream;
/* The stage-30 handler: always answers (200/206/304/301/4xx) and returns
 * MK_STAGE_HANDLED, or MK_STAGE_CLOSE when the connection failed. */
int  mk_static_handle(struct mk_stream *r, const struct mk_static_conf *sc,
                      const struct mk_static_root *root);

/* Frees the calling worker thread's small-file cache (worker exit). */
void mk_static_worker_exit(void);

/* MIME lookup by file name ("a.tar.gz" -> type of "gz"); default
 * "application/octet-stream". Exposed for tests. */
const char *mk_mime_lookup(const struct mk_mime *m, const char *filename);

#endif
