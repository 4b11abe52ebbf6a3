#ifndef MK_CORE_MEM_H
#define MK_CORE_MEM_H

#include <stddef.h>

/*
 * All allocation goes through these wrappers. With TREMOLO_WITH_JEMALLOC
 * (the default) the binary links jemalloc, which replaces malloc itself, so
 * the wrappers stay thin; the build option only swaps the allocator.
 *
 * Every function returns NULL on failure and never aborts: callers on the hot
 * path close the one connection that asked, startup code exits.
 */
void *mk_mem_alloc(size_t size);
void *mk_mem_zalloc(size_t size);
void *mk_mem_realloc(void *ptr, size_t size);
void  mk_mem_free(void *ptr);
char *mk_mem_strdup(const char *s);
char *mk_mem_strndup(const char *s, size_t n);

/* Bytes currently allocated by the process, as the allocator reports them
 * (jemalloc "stats.allocated"); 0 when the allocator cannot tell. Used by the
 * limits plugin and the status page, never on the hot path. */
size_t mk_mem_allocated(void);

#endif
