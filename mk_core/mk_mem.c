#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_mem.h"

#ifdef TREMOLO_WITH_JEMALLOC
#include <stdint.h>
#include <jemalloc/jemalloc.h>   /* Debian's build: no je_ prefix */

/* Read by jemalloc at its first allocation; MALLOC_CONF in the environment
 * still overrides it. A worker churns buffers of 16-20 KiB per connection
 * (mbedTLS record buffers, read buffers): with jemalloc's default 20 cached
 * per size class, a burst of closes overflowed the thread cache and the
 * next calloc() zeroed recycled pages with madvise(MADV_DONTNEED), a TLB
 * flush and page faults per connection (perf: 37% of a TLS worker's time).
 * jemalloc's cache GC still returns what stays unused. */
const char *malloc_conf = "tcache_nslots_large:64";
#endif

/*
 * Thin on purpose: jemalloc (when linked) replaces malloc itself, so these
 * wrappers exist to give one place to hook accounting or a different
 * allocator later, not to add behaviour.
 */
void *mk_mem_alloc(size_t size)
{
    return malloc(size);
}

void *mk_mem_zalloc(size_t size)
{
    return calloc(1, size);
}

void *mk_mem_realloc(void *ptr, size_t size)
{
    return realloc(ptr, size);
}

void mk_mem_free(void *ptr)
{
    free(ptr);
}

char *mk_mem_strdup(const char *s)
{
    return mk_mem_strndup(s, strlen(s));
}

char *mk_mem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *copy = mk_mem_alloc(len + 1);

    if (copy == NULL) {
        return NULL;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

size_t mk_mem_allocated(void)
{
#ifdef TREMOLO_WITH_JEMALLOC
    /* jemalloc caches its statistics; bumping the epoch refreshes them. */
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    size_t allocated = 0;

    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0) {
        return 0;
    }
    len = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &len, NULL, 0) != 0) {
        return 0;
    }
    return allocated;
#else
    return 0;
#endif
}
