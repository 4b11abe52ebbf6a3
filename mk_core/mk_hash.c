#include <stdint.h>
#include <string.h>

#include "mk_core/mk_hash.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"

/*
 * Robin-hood open addressing with backward-shift deletion: no tombstones, so
 * lookups never degrade after many deletes, and the probe length of any key
 * stays close to the average. Capacity is a power of two; an entry with
 * key == NULL is empty.
 */
struct mk_hash_entry {
    char    *key;          /* owned copy, NUL-terminated for convenience */
    size_t   klen;
    uint64_t hash;
    void    *value;
};

struct mk_hash {
    struct mk_hash_entry *slots;
    size_t cap;            /* power of two */
    size_t count;
    int    flags;
};

#define MK_HASH_MIN_CAP 8

static uint64_t mk_hash_fnv1a(const char *key, size_t klen, int nocase)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < klen; i++) {
        unsigned char c = (unsigned char) key[i];
        if (nocase) {
            c = (unsigned char) mk_ascii_lower((char) c);
        }
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int mk_hash_key_eq(const struct mk_hash *h,
                          const struct mk_hash_entry *e, uint64_t hash,
                          const char *key, size_t klen)
{
    if (e->hash != hash || e->klen != klen) {
        return 0;
    }
    if (h->flags & MK_HASH_NOCASE) {
        return mk_str_case_eq(e->key, e->klen, key, klen);
    }
    return memcmp(e->key, key, klen) == 0;
}

/* How far the entry in `slot` sits from its ideal slot. */
static size_t mk_hash_distance(const struct mk_hash *h, size_t slot)
{
    size_t ideal = (size_t) h->slots[slot].hash & (h->cap - 1);
    return (slot - ideal) & (h->cap - 1);
}

/* Places an entry known to be absent (the key is already owned). */
static void mk_hash_place(struct mk_hash *h, struct mk_hash_entry e)
{
    size_t mask = h->cap - 1;
    size_t slot = (size_t) e.hash & mask;
    size_t dist = 0;

    for (;;) {
        struct mk_hash_entry *cur = &h->slots[slot];
        if (cur->key == NULL) {
            *cur = e;
            return;
        }
        /* Take from the rich: a resident closer to home than we are
         * gives up its slot and continues probing instead. */
        size_t cdist = mk_hash_distance(h, slot);
        if (cdist < dist) {
            struct mk_hash_entry tmp = *cur;
            *cur = e;
            e = tmp;
            dist = cdist;
        }
        slot = (slot + 1) & mask;
        dist++;
    }
}

static int mk_hash_resize(struct mk_hash *h, size_t cap)
{
    struct mk_hash_entry *old = h->slots;
    size_t old_cap = h->cap;
    size_t i;

    h->slots = mk_mem_zalloc(cap * sizeof(*h->slots));
    if (h->slots == NULL) {
        h->slots = old;
        return -1;
    }
    h->cap = cap;
    for (i = 0; i < old_cap; i++) {
        if (old[i].key != NULL) {
            mk_hash_place(h, old[i]);
        }
    }
    mk_mem_free(old);
    return 0;
}

struct mk_hash *mk_hash_create(size_t size_hint, int flags)
{
    struct mk_hash *h;
    size_t cap = MK_HASH_MIN_CAP;

    /* Room for size_hint entries below the 70 % load limit. */
    while (cap < (size_t) -1 / 16 && cap * 7 < size_hint * 10) {
        cap *= 2;
    }
    h = mk_mem_zalloc(sizeof(*h));
    if (h == NULL) {
        goto error;
    }
    h->slots = mk_mem_zalloc(cap * sizeof(*h->slots));
    if (h->slots == NULL) {
        goto error;
    }
    h->cap = cap;
    h->flags = flags;
    return h;

error:
    mk_mem_free(h);
    return NULL;
}

void mk_hash_destroy(struct mk_hash *h, void (*free_value)(void *value))
{
    size_t i;

    if (h == NULL) {
        return;
    }
    for (i = 0; i < h->cap; i++) {
        if (h->slots[i].key == NULL) {
            continue;
        }
        if (free_value != NULL) {
            free_value(h->slots[i].value);
        }
        mk_mem_free(h->slots[i].key);
    }
    mk_mem_free(h->slots);
    mk_mem_free(h);
}

/* Slot of `key`, or (size_t) -1. Robin-hood lets a miss stop as soon as
 * it meets an entry closer to home than the probe is. */
static size_t mk_hash_find(const struct mk_hash *h, const char *key,
                           size_t klen, uint64_t hash)
{
    size_t mask = h->cap - 1;
    size_t slot = (size_t) hash & mask;
    size_t dist = 0;

    for (;;) {
        const struct mk_hash_entry *e = &h->slots[slot];
        if (e->key == NULL || mk_hash_distance(h, slot) < dist) {
            return (size_t) -1;
        }
        if (mk_hash_key_eq(h, e, hash, key, klen)) {
            return slot;
        }
        slot = (slot + 1) & mask;
        dist++;
    }
}

int mk_hash_set(struct mk_hash *h, const char *key, size_t klen, void *value)
{
    uint64_t hash = mk_hash_fnv1a(key, klen, h->flags & MK_HASH_NOCASE);
    size_t slot = mk_hash_find(h, key, klen, hash);
    struct mk_hash_entry e;

    if (slot != (size_t) -1) {
        h->slots[slot].value = value;
        return 0;
    }
    if ((h->count + 1) * 10 > h->cap * 7) {
        if (mk_hash_resize(h, h->cap * 2) != 0) {
            return -1;
        }
    }
    e.key = mk_mem_alloc(klen + 1);
    if (e.key == NULL) {
        return -1;
    }
    memcpy(e.key, key, klen);
    e.key[klen] = '\0';
    e.klen = klen;
    e.hash = hash;
    e.value = value;
    mk_hash_place(h, e);
    h->count++;
    return 0;
}

void *mk_hash_get(const struct mk_hash *h, const char *key, size_t klen)
{
    uint64_t hash = mk_hash_fnv1a(key, klen, h->flags & MK_HASH_NOCASE);
    size_t slot = mk_hash_find(h, key, klen, hash);

    return slot == (size_t) -1 ? NULL : h->slots[slot].value;
}

void *mk_hash_del(struct mk_hash *h, const char *key, size_t klen)
{
    uint64_t hash = mk_hash_fnv1a(key, klen, h->flags & MK_HASH_NOCASE);
    size_t slot = mk_hash_find(h, key, klen, hash);
    size_t mask = h->cap - 1;
    void *value;

    if (slot == (size_t) -1) {
        return NULL;
    }
    value = h->slots[slot].value;
    mk_mem_free(h->slots[slot].key);
    /* Backward shift: pull the following displaced entries one step home
     * until an empty slot or an entry already at home. */
    for (;;) {
        size_t next = (slot + 1) & mask;
        if (h->slots[next].key == NULL || mk_hash_distance(h, next) == 0) {
            break;
        }
        h->slots[slot] = h->slots[next];
        slot = next;
    }
    memset(&h->slots[slot], 0, sizeof(h->slots[slot]));
    h->count--;
    return value;
}

size_t mk_hash_count(const struct mk_hash *h)
{
    return h->count;
}

int mk_hash_foreach(const struct mk_hash *h,
                    int (*fn)(const char *key, size_t klen, void *value,
                              void *ctx),
                    void *ctx)
{
    size_t i;
    int ret;

    for (i = 0; i < h->cap; i++) {
        if (h->slots[i].key == NULL) {
            continue;
        }
        ret = fn(h->slots[i].key, h->slots[i].klen, h->slots[i].value, ctx);
        if (ret != 0) {
            return ret;
        }
    }
    return 0;
}
