#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_hash.h"
#include "mk_test.h"

#define NKEYS 100000

static size_t key_of(size_t i, char *buf)
{
    return (size_t) snprintf(buf, 32, "key-%zu", i);
}

/* Reference: slot i holds the value expected for key i (NULL = absent). */
static void *ref[NKEYS];

static int count_cb(const char *key, size_t klen, void *value, void *ctx)
{
    size_t *n = ctx;
    char buf[32];
    size_t i = (size_t) strtoul(key + 4, NULL, 10);

    if (i >= NKEYS || ref[i] != value || key_of(i, buf) != klen) {
        return -1;
    }
    (*n)++;
    return 0;
}

MK_TEST(against_reference)
{
    struct mk_hash *h = mk_hash_create(0, 0);
    size_t expected = 0;
    size_t step;
    size_t bad = 0;
    char buf[32];

    CHECK(h != NULL);
    if (h == NULL) {
        return;
    }
    for (step = 0; step < 600000; step++) {
        size_t i = (size_t) (mk_test_rng() % NKEYS);
        size_t klen = key_of(i, buf);
        unsigned op = (unsigned) (mk_test_rng() % 10);

        if (op < 5) {                       /* insert or replace */
            void *v = (void *) (uintptr_t) (mk_test_rng() | 1);
            if (mk_hash_set(h, buf, klen, v) != 0) {
                bad++;
            }
            expected += ref[i] == NULL;
            ref[i] = v;
        }
        else if (op < 7) {                  /* delete */
            void *v = mk_hash_del(h, buf, klen);
            if (v != ref[i]) {
                bad++;
            }
            expected -= ref[i] != NULL;
            ref[i] = NULL;
        }
        else if (mk_hash_get(h, buf, klen) != ref[i]) {
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(mk_hash_count(h), expected);
    for (step = 0; step < NKEYS; step++) {
        size_t klen = key_of(step, buf);
        if (mk_hash_get(h, buf, klen) != ref[step]) {
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    size_t seen = 0;
    CHECK(mk_hash_foreach(h, count_cb, &seen) == 0);
    CHECK_EQ_INT(seen, expected);
    /* delete everything, then the map must be empty and still usable */
    for (step = 0; step < NKEYS; step++) {
        size_t klen = key_of(step, buf);
        if (mk_hash_del(h, buf, klen) != ref[step]) {
            bad++;
        }
        ref[step] = NULL;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(mk_hash_count(h), 0);
    CHECK(mk_hash_set(h, "again", 5, (void *) 1) == 0);
    CHECK(mk_hash_get(h, "again", 5) == (void *) 1);
    mk_hash_destroy(h, NULL);
}

MK_TEST(case_handling)
{
    struct mk_hash *nc = mk_hash_create(4, MK_HASH_NOCASE);
    struct mk_hash *cs = mk_hash_create(4, 0);
    int a = 1, b = 2;

    CHECK(nc != NULL && cs != NULL);
    CHECK(mk_hash_set(nc, "Example.COM", 11, &a) == 0);
    CHECK(mk_hash_get(nc, "example.com", 11) == &a);
    CHECK(mk_hash_get(nc, "EXAMPLE.COM", 11) == &a);
    CHECK(mk_hash_set(nc, "EXAMPLE.com", 11, &b) == 0);    /* replaces */
    CHECK_EQ_INT(mk_hash_count(nc), 1);
    CHECK(mk_hash_get(nc, "example.com", 11) == &b);
    CHECK(mk_hash_del(nc, "eXaMpLe.CoM", 11) == &b);
    CHECK_EQ_INT(mk_hash_count(nc), 0);

    CHECK(mk_hash_set(cs, "Host", 4, &a) == 0);
    CHECK(mk_hash_get(cs, "host", 4) == NULL);
    CHECK(mk_hash_set(cs, "host", 4, &b) == 0);
    CHECK_EQ_INT(mk_hash_count(cs), 2);
    CHECK(mk_hash_get(cs, "Host", 4) == &a);
    CHECK(mk_hash_get(cs, "host", 4) == &b);
    mk_hash_destroy(nc, NULL);
    mk_hash_destroy(cs, NULL);
}

MK_TEST(binary_keys_and_prefixes)
{
    struct mk_hash *h = mk_hash_create(0, 0);
    int a = 1, b = 2, c = 3;

    CHECK(mk_hash_set(h, "a\0b", 3, &a) == 0);
    CHECK(mk_hash_set(h, "a", 1, &b) == 0);
    CHECK(mk_hash_set(h, "", 0, &c) == 0);
    CHECK(mk_hash_get(h, "a\0b", 3) == &a);
    CHECK(mk_hash_get(h, "a", 1) == &b);
    CHECK(mk_hash_get(h, "", 0) == &c);
    CHECK(mk_hash_get(h, "a\0c", 3) == NULL);
    CHECK(mk_hash_del(h, "missing", 7) == NULL);
    CHECK_EQ_INT(mk_hash_count(h), 3);
    mk_hash_destroy(h, NULL);
}

static int freed;
static void free_value(void *v)
{
    freed++;
    free(v);
}

static int stop_cb(const char *key, size_t klen, void *value, void *ctx)
{
    int *n = ctx;
    return ++*n == 3 ? 42 : 0;
}

MK_TEST(destroy_frees_values_and_foreach_stops)
{
    struct mk_hash *h = mk_hash_create(1000, 0);
    char buf[32];
    int i;
    int n = 0;

    for (i = 0; i < 10; i++) {
        size_t klen = key_of((size_t) i, buf);
        CHECK(mk_hash_set(h, buf, klen, malloc(8)) == 0);
    }
    CHECK(mk_hash_foreach(h, stop_cb, &n) == 42);
    CHECK_EQ_INT(n, 3);
    mk_hash_destroy(h, free_value);
    CHECK_EQ_INT(freed, 10);
}

int main(void)
{
    RUN(against_reference);
    RUN(case_handling);
    RUN(binary_keys_and_prefixes);
    RUN(destroy_frees_values_and_foreach_stops);
    return mk_test_done();
}
