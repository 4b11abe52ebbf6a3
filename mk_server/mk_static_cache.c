#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_hash.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_static.h"
#include "mk_server/mk_static_priv.h"

/*
 * The per-worker small-file cache. Each worker is one thread and owns its
 * cache outright (thread-local), so nothing here locks. A hit costs a hash
 * lookup and, at most once a second per entry, one or two fstatat calls;
 * a changed file (inode, size, mtime or ctime: ctime also catches chmod) is
 * dropped and served from disk again. Eviction is CLOCK (second chance)
 * over a fixed slot array, bounded by entries and by bytes.
 *
 * Entry memory is freed at eviction, so a response must never reference
 * it: the handler copies the body into the write queue (MK_WRITE_COPY).
 */
struct mk_static_cache_entry {
    const struct mk_static_conf *sc;   /* content_type points into its MIME
                                          table: valid for this conf only */
    const char *key;                   /* root fd (int) + requested path */
    size_t klen;
    const char *file_rel;              /* file served (index resolved) */
    const char *dir_rel;               /* directory of an index, or NULL */
    dev_t dev;
    ino_t ino;
    struct timespec mtim, ctim;
    ino_t dir_ino;
    struct timespec dir_mtim;          /* a new index file changes it */
    uint64_t validated_ms;
    size_t alloc_size;
    int slot;
    int referenced;
    struct mk_static_file file;        /* fd -1, data into area[] */
    char area[];                       /* key, file_rel, dir_rel, data */
};

struct mk_static_cache {
    struct mk_hash *map;
    struct mk_static_cache_entry *slots[MK_STATIC_CACHE_SLOTS];
    size_t count;
    size_t bytes;
    size_t hand;
};

static _Thread_local struct mk_static_cache *mk_static_tl_cache;

static struct mk_static_cache *mk_static_cache_self(int create)
{
    struct mk_static_cache *c = mk_static_tl_cache;

    if (c != NULL || !create) {
        return c;
    }
    c = mk_mem_zalloc(sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->map = mk_hash_create(MK_STATIC_CACHE_SLOTS, 0);
    if (c->map == NULL) {
        mk_mem_free(c);
        return NULL;
    }
    mk_static_tl_cache = c;
    return c;
}

/* The key: the root's fd then the path, so two vhosts' "/index.html"
 * never meet. Returns its length, 0 if it does not fit. */
static size_t mk_static_cache_key(char *out, size_t outlen, int root_fd,
                                  const char *rel)
{
    size_t n = strlen(rel);

    if (sizeof(int) + n > outlen) {
        return 0;
    }
    memcpy(out, &root_fd, sizeof(int));
    memcpy(out + sizeof(int), rel, n);
    return sizeof(int) + n;
}

static void mk_static_cache_evict(struct mk_static_cache *c,
                                  struct mk_static_cache_entry *e)
{
    mk_hash_del(c->map, e->key, e->klen);
    c->slots[e->slot] = NULL;
    c->count--;
    c->bytes -= e->alloc_size;
    mk_mem_free(e);
}

/* CLOCK: skip (and clear) referenced entries, evict the first that is
 * not. Ends within two sweeps. */
static void mk_static_cache_evict_one(struct mk_static_cache *c)
{
    struct mk_static_cache_entry *e;

    while (c->count > 0) {
        e = c->slots[c->hand];
        c->hand = (c->hand + 1) % MK_STATIC_CACHE_SLOTS;
        if (e == NULL) {
            continue;
        }
        if (e->referenced) {
            e->referenced = 0;
            continue;
        }
        mk_static_cache_evict(c, e);
        return;
    }
}

static int mk_static_ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static int mk_static_cache_still_valid(const struct mk_static_root *root,
                                       const struct mk_static_cache_entry *e)
{
    struct stat st;

    /* fstatat follows symlinks without confinement, but it only compares:
     * a path that now leads elsewhere has another inode and the request
     * goes the confined way again. */
    if (fstatat(root->fd, e->file_rel, &st, 0) < 0 ||
        !S_ISREG(st.st_mode) || st.st_dev != e->dev || st.st_ino != e->ino ||
        (uint64_t) st.st_size != e->file.size ||
        !mk_static_ts_eq(st.st_mtim, e->mtim) ||
        !mk_static_ts_eq(st.st_ctim, e->ctim)) {
        return 0;
    }
    if (e->dir_rel != NULL &&
        (fstatat(root->fd, e->dir_rel, &st, 0) < 0 ||
         st.st_ino != e->dir_ino || !mk_static_ts_eq(st.st_mtim, e->dir_mtim))) {
        return 0;
    }
    return 1;
}

struct mk_static_cache_entry *
mk_static_cache_get(const struct mk_static_root *root,
                    const struct mk_static_conf *sc, const char *rel)
{
    struct mk_static_cache *c = mk_static_cache_self(0);
    struct mk_static_cache_entry *e;
    char key[PATH_MAX + sizeof(int)];
    size_t klen;
    uint64_t now;

    if (c == NULL || c->count == 0) {
        return NULL;
    }
    klen = mk_static_cache_key(key, sizeof(key), root->fd, rel);
    e = klen ? mk_hash_get(c->map, key, klen) : NULL;
    if (e == NULL) {
        return NULL;
    }
    if (e->sc != sc) {
        mk_static_cache_evict(c, e);
        return NULL;
    }
    now = mk_clock_monotonic_ms();
    if (now - e->validated_ms >= MK_STATIC_REVALIDATE_MS) {
        if (!mk_static_cache_still_valid(root, e)) {
            mk_static_cache_evict(c, e);
            return NULL;
        }
        e->validated_ms = now;
    }
    e->referenced = 1;
    return e;
}

void mk_static_cache_fill(const struct mk_static_cache_entry *e,
                          struct mk_static_file *f)
{
    *f = e->file;
}

/* Directory of an index file for revalidation: the requested path itself
 * ("" is the root, which fstatat wants as "."). */
static const char *mk_static_cache_dir_of(const char *rel)
{
    return rel[0] ? rel : ".";
}

static int mk_static_cache_dir_stat(const struct mk_static_root *root,
                                    const char *rel,
                                    struct mk_static_cache_entry *e)
{
    struct stat st;

    if (fstatat(root->fd, mk_static_cache_dir_of(rel), &st, 0) < 0) {
        return -1;
    }
    e->dir_ino = st.st_ino;
    e->dir_mtim = st.st_mtim;
    return 0;
}

static int mk_static_cache_free_slot(const struct mk_static_cache *c)
{
    size_t i, s;

    for (i = 0; i < MK_STATIC_CACHE_SLOTS; i++) {
        s = (c->hand + i) % MK_STATIC_CACHE_SLOTS;
        if (c->slots[s] == NULL) {
            return (int) s;
        }
    }
    return -1;
}

/* Lays the strings and the content out in the entry's area. */
static void mk_static_cache_layout(struct mk_static_cache_entry *e,
                                   const char *key, size_t klen,
                                   const char *file_rel, const char *dir_rel,
                                   const struct mk_static_file *f)
{
    char *p = e->area;
    size_t n;

    memcpy(p, key, klen);
    e->key = p;
    e->klen = klen;
    p += klen;
    n = strlen(file_rel) + 1;
    memcpy(p, file_rel, n);
    e->file_rel = p;
    p += n;
    if (dir_rel != NULL) {
        n = strlen(dir_rel) + 1;
        memcpy(p, dir_rel, n);
        e->dir_rel = p;
        p += n;
    }
    e->file = *f;
    e->file.fd = -1;
    memcpy(p, f->data, f->size);
    e->file.data = p;
}

struct mk_static_cache_entry *
mk_static_cache_put(const struct mk_static_root *root,
                    const struct mk_static_conf *sc, const char *rel,
                    const char *file_rel, const struct stat *st,
                    const struct mk_static_file *f)
{
    struct mk_static_cache *c;
    struct mk_static_cache_entry *e, *old;
    char key[PATH_MAX + sizeof(int)];
    const char *dir_rel = NULL;
    size_t klen, need;
    int slot;

    /* A file written in the last two seconds may be written again within
     * the timestamp granularity without changing size: serving it from
     * memory could then go stale for good. Cache it once it has settled. */
    if (f->data == NULL || f->size > MK_STATIC_SMALL_FILE ||
        st->st_mtime >= mk_clock_unix() - 1) {
        return NULL;
    }
    c = mk_static_cache_self(1);
    klen = mk_static_cache_key(key, sizeof(key), root->fd, rel);
    if (c == NULL || klen == 0) {
        return NULL;
    }
    if (strcmp(rel, file_rel) != 0) {
        dir_rel = mk_static_cache_dir_of(rel);
    }
    need = sizeof(*e) + klen + strlen(file_rel) + 1 +
           (dir_rel ? strlen(dir_rel) + 1 : 0) + f->size;
    if (need > MK_STATIC_CACHE_BYTES) {
        return NULL;
    }
    old = mk_hash_get(c->map, key, klen);
    if (old != NULL) {
        mk_static_cache_evict(c, old);
    }
    while (c->count >= MK_STATIC_CACHE_SLOTS ||
           c->bytes + need > MK_STATIC_CACHE_BYTES) {
        mk_static_cache_evict_one(c);
    }
    e = mk_mem_zalloc(need);
    if (e == NULL) {
        return NULL;
    }
    mk_static_cache_layout(e, key, klen, file_rel, dir_rel, f);
    if (dir_rel != NULL && mk_static_cache_dir_stat(root, rel, e) < 0) {
        goto error;
    }
    slot = mk_static_cache_free_slot(c);
    if (slot < 0 || mk_hash_set(c->map, key, klen, e) < 0) {
        goto error;
    }
    e->sc = sc;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->mtim = st->st_mtim;
    e->ctim = st->st_ctim;
    e->validated_ms = mk_clock_monotonic_ms();
    e->alloc_size = need;
    e->slot = slot;
    c->slots[slot] = e;
    c->count++;
    c->bytes += need;
    return e;

error:
    mk_mem_free(e);
    return NULL;
}

size_t mk_static_cache_count(void)
{
    struct mk_static_cache *c = mk_static_cache_self(0);

    return c ? c->count : 0;
}

size_t mk_static_cache_bytes(void)
{
    struct mk_static_cache *c = mk_static_cache_self(0);

    return c ? c->bytes : 0;
}

void mk_static_cache_clear(void)
{
    struct mk_static_cache *c = mk_static_cache_self(0);
    size_t i;

    for (i = 0; c != NULL && i < MK_STATIC_CACHE_SLOTS; i++) {
        if (c->slots[i] != NULL) {
            mk_static_cache_evict(c, c->slots[i]);
        }
    }
}

void mk_static_worker_exit(void)
{
    struct mk_static_cache *c = mk_static_cache_self(0);

    if (c == NULL) {
        return;
    }
    mk_static_cache_clear();
    mk_hash_destroy(c->map, NULL);
    mk_mem_free(c);
    mk_static_tl_cache = NULL;
}
