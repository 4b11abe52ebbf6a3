#ifndef MK_CORE_HASH_H
#define MK_CORE_HASH_H

#include <stddef.h>

/*
 * A map from byte-string keys to pointers (open addressing, grows at 70 %
 * load). Keys are copied in; values are borrowed. With MK_HASH_NOCASE keys
 * compare ASCII case-insensitively (host names, header names).
 */
#define MK_HASH_NOCASE  1

struct mk_hash;

struct mk_hash *mk_hash_create(size_t size_hint, int flags);
/* free_value (may be NULL) is called on each value. */
void  mk_hash_destroy(struct mk_hash *h, void (*free_value)(void *value));
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int   mk_hash_set(struct mk_hash *h, const char *key, size_t klen, void *value);
void *mk_hash_get(const struct mk_hash *h, const char *key, size_t klen);
/* Removes and returns the value, or NULL if absent. */
void *mk_hash_del(struct mk_hash *h, const char *key, size_t klen);
size_t mk_hash_count(const struct mk_hash *h);
/* Calls fn for each entry in unspecified order; stop early by returning
 * non-zero (which is then returned). Do not modify the map inside fn. */
int   mk_hash_foreach(const struct mk_hash *h,
                      int (*fn)(const char *key, size_t klen, void *value,
                                void *ctx),
                      void *ctx);

#endif
