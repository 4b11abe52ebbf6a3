/*
 * The typed schema of mk_rconf.h: value parsers and mk_conf_apply, which
 * turns one section of the reader's tree into a C struct. Kept apart from
 * the reader (mk_rconf.c): this half never sees raw bytes, only entries.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_core/mk_rconf.h"
#include "mk_core/mk_string.h"

/* ---- Value parsers ---------------------------------------------------- */

/* Leading decimal digits of `*s` into `*out`, advancing `*s`. Returns 0,
 * -1 when there is no digit, -2 on overflow of 64 bits. */
static int conf_digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;

    if (*p < '0' || *p > '9') {
        return -1;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned) (*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -2;
        }
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

static int conf_case_eq(const char *a, const char *b)
{
    return mk_str_case_eq(a, strlen(a), b, strlen(b));
}

int mk_conf_parse_int(const char *v, long long min, long long max,
                      long long *out, char *err, size_t errlen)
{
    const char *p = v;
    uint64_t mag;
    long long val;
    int neg = 0;
    int ret;

    /* A '-' is always read; a negative value then fails the bounds check
     * when min >= 0, which says more than "not a number" would. */
    if (*p == '-') {
        neg = 1;
        p++;
    }
    ret = conf_digits(&p, &mag);
    if (ret == -1 || (ret == 0 && *p != '\0')) {
        return mk_str_fail(err, errlen, "\"%s\" is not a whole number", v);
    }
    if (ret == -2 || mag > (uint64_t) LLONG_MAX + (uint64_t) neg) {
        return mk_str_fail(err, errlen, "\"%s\" is out of range", v);
    }
    if (neg) {
        val = mag == (uint64_t) LLONG_MAX + 1 ? LLONG_MIN : -(long long) mag;
    }
    else {
        val = (long long) mag;
    }
    if (!(min == 0 && max == 0)) {
        if (max == 0 && val < min) {
            return mk_str_fail(err, errlen, "%lld is below the minimum %lld",
                              val, min);
        }
        if (max != 0 && (val < min || val > max)) {
            return mk_str_fail(err, errlen, "%lld out of range %lld..%lld",
                              val, min, max);
        }
    }
    *out = val;
    return 0;
}

int mk_conf_parse_bool(const char *v, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = { "on", "yes", "true", "1" };
    static const char *const no[] = { "off", "no", "false", "0" };
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (conf_case_eq(v, yes[i])) {
            *out = 1;
            return 0;
        }
        if (conf_case_eq(v, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return mk_str_fail(err, errlen, "\"%s\" is not a boolean (on/off, yes/no, "
                      "true/false, 1/0)", v);
}

/* Parses "<digits><unit>" where units[i] scales by mult[i]. */
static int conf_parse_scaled(const char *v, const char *const *units,
                             const uint64_t *mult, size_t nunits,
                             uint64_t *out)
{
    const char *p = v;
    uint64_t n;
    size_t i;
    int ret = conf_digits(&p, &n);

    if (ret != 0) {
        return ret;
    }
    for (i = 0; i < nunits; i++) {
        if (conf_case_eq(p, units[i])) {
            if (mult[i] != 0 && n > UINT64_MAX / mult[i]) {
                return -2;
            }
            *out = n * mult[i];
            return 0;
        }
    }
    return -1;
}

int mk_conf_parse_size(const char *v, uint64_t *out, char *err, size_t errlen)
{
    static const char *const units[] = {
        "", "B", "K", "KB", "KiB", "M", "MB", "MiB", "G", "GB", "GiB",
        "T", "TB", "TiB",
    };
    static const uint64_t mult[] = {
        1, 1, 1ULL << 10, 1ULL << 10, 1ULL << 10, 1ULL << 20, 1ULL << 20,
        1ULL << 20, 1ULL << 30, 1ULL << 30, 1ULL << 30, 1ULL << 40,
        1ULL << 40, 1ULL << 40,
    };
    int ret = conf_parse_scaled(v, units, mult, sizeof(mult) / sizeof(mult[0]),
                                out);

    if (ret == -2) {
        return mk_str_fail(err, errlen, "\"%s\" is too large", v);
    }
    if (ret != 0) {
        return mk_str_fail(err, errlen, "\"%s\" is not a size (e.g. 512, 64K, "
                          "8M, 2G)", v);
    }
    return 0;
}

int mk_conf_parse_time(const char *v, uint64_t *out_ms, char *err,
                       size_t errlen)
{
    static const char *const units[] = { "", "ms", "s", "m", "h", "d" };
    static const uint64_t mult[] = {
        1000, 1, 1000, 60 * 1000, 3600 * 1000, 86400 * 1000,
    };
    int ret = conf_parse_scaled(v, units, mult, sizeof(mult) / sizeof(mult[0]),
                                out_ms);

    if (ret == -2) {
        return mk_str_fail(err, errlen, "\"%s\" is too large", v);
    }
    if (ret != 0) {
        return mk_str_fail(err, errlen, "\"%s\" is not a time (e.g. 250ms, "
                          "30s, 5m, 1h; bare = seconds)", v);
    }
    return 0;
}

/* ---- Schema ----------------------------------------------------------- */

/* Writes `v` with the largest unit that divides it exactly. */
static void conf_fmt_unit(char *buf, size_t size, uint64_t v,
                          const char *const *units, const uint64_t *mult,
                          size_t n)
{
    size_t i;

    for (i = n; i-- > 0;) {
        if (v != 0 && v % mult[i] == 0) {
            snprintf(buf, size, "%llu%s",
                     (unsigned long long) (v / mult[i]), units[i]);
            return;
        }
    }
    snprintf(buf, size, "%llu%s", (unsigned long long) v, units[0]);
}

static void conf_fmt(char *buf, size_t size, enum mk_conf_type type,
                     uint64_t v)
{
    static const char *const sunits[] = { "", "K", "M", "G", "T" };
    static const uint64_t smult[] = {
        1, 1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40,
    };
    static const char *const tunits[] = { "ms", "s", "m", "h" };
    static const uint64_t tmult[] = { 1, 1000, 60 * 1000, 3600 * 1000 };

    if (type == MK_CONF_T_SIZE) {
        conf_fmt_unit(buf, size, v, sunits, smult, 5);
    }
    else {
        conf_fmt_unit(buf, size, v, tunits, tmult, 4);
    }
}

/* Bounds of SIZE and TIME keys; a negative min counts as 0. */
static int conf_check_u64(const struct mk_conf_key *k, const char *value,
                          uint64_t v, char *why, size_t whylen)
{
    uint64_t lo = k->min > 0 ? (uint64_t) k->min : 0;
    char a[32], b[32];

    conf_fmt(a, sizeof(a), k->type, lo);
    if (k->max > 0 && (v < lo || v > (uint64_t) k->max)) {
        conf_fmt(b, sizeof(b), k->type, (uint64_t) k->max);
        return mk_str_fail(why, whylen, "%s out of range %s..%s", value, a, b);
    }
    if (v < lo) {
        return mk_str_fail(why, whylen, "%s is below the minimum %s", value, a);
    }
    return 0;
}

static int conf_parse_enum(const char *v, const char *choices, int *out,
                           char *why, size_t whylen)
{
    const char *p = choices != NULL ? choices : "";
    size_t vlen = strlen(v);
    int index = 0;

    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar != NULL ? (size_t) (bar - p) : strlen(p);

        if (mk_str_case_eq(p, n, v, vlen)) {
            *out = index;
            return 0;
        }
        if (bar == NULL) {
            break;
        }
        p = bar + 1;
        index++;
    }
    return mk_str_fail(why, whylen, "\"%s\" is not one of %s", v,
                      choices != NULL ? choices : "(none)");
}

/* Appends to a list whose capacity is implied by count: arrays grow to the
 * next power of two (min 4), so n appends cost O(n). The list owns copies
 * of the file names, so it outlives the mk_rconf it came from; consecutive
 * values from the same file share one copy (see mk_conf_release). */
static int conf_list_add(struct mk_conf_list *l, const char *value,
                         const char *file, int line)
{
    size_t count = l->count;

    if (count == 0 || (count >= 4 && (count & (count - 1)) == 0)) {
        size_t cap = count == 0 ? 4 : count * 2;
        void *p;

        if (cap > SIZE_MAX / sizeof(char *)) {
            return -1;
        }
        /* Each array is replaced as soon as it grows, so a failure part
         * way leaves a consistent list with some spare room. */
        if ((p = mk_mem_realloc(l->values, cap * sizeof(char *))) == NULL) {
            return -1;
        }
        l->values = p;
        if ((p = mk_mem_realloc(l->files, cap * sizeof(char *))) == NULL) {
            return -1;
        }
        l->files = p;
        if ((p = mk_mem_realloc(l->lines, cap * sizeof(int))) == NULL) {
            return -1;
        }
        l->lines = p;
    }
    if (count > 0 && strcmp(l->files[count - 1], file) == 0) {
        l->files[count] = l->files[count - 1];
    }
    else if ((l->files[count] = mk_mem_strdup(file)) == NULL) {
        return -1;
    }
    l->values[count] = mk_mem_strdup(value);
    if (l->values[count] == NULL) {
        if (count == 0 || l->files[count] != l->files[count - 1]) {
            mk_mem_free((void *) l->files[count]);
        }
        return -1;
    }
    l->lines[count] = line;
    l->count = count + 1;
    return 0;
}

/* Converts `value` and stores it in `k`'s field; reason in `why`. */
static int conf_set(const struct mk_conf_key *k, const char *value,
                    const char *file, int line, void *out,
                    char *why, size_t whylen)
{
    void *field = (char *) out + k->offset;
    uint64_t u;
    char *s;

    switch (k->type) {
    case MK_CONF_T_STR:
        /* Kept as written: quotes are not special in this format, so
         * `"a b"` stores the quotes too. */
        if ((s = mk_mem_strdup(value)) == NULL) {
            return mk_str_fail(why, whylen, "out of memory");
        }
        mk_mem_free(*(char **) field);
        *(char **) field = s;
        return 0;
    case MK_CONF_T_INT:
        return mk_conf_parse_int(value, k->min, k->max, (long long *) field,
                                 why, whylen);
    case MK_CONF_T_BOOL:
        return mk_conf_parse_bool(value, (int *) field, why, whylen);
    case MK_CONF_T_SIZE:
    case MK_CONF_T_TIME:
        if ((k->type == MK_CONF_T_SIZE
                 ? mk_conf_parse_size(value, &u, why, whylen)
                 : mk_conf_parse_time(value, &u, why, whylen)) != 0 ||
            conf_check_u64(k, value, u, why, whylen) != 0) {
            return -1;
        }
        *(uint64_t *) field = u;
        return 0;
    case MK_CONF_T_ENUM:
        return conf_parse_enum(value, k->choices, (int *) field, why, whylen);
    case MK_CONF_T_LIST:
        if (conf_list_add(field, value, file, line) != 0) {
            return mk_str_fail(why, whylen, "out of memory");
        }
        return 0;
    case MK_CONF_T_INHERIT:
        break;                  /* resolved by conf_slot_init, never set */
    case MK_CONF_T_CUSTOM:
        if (k->parse == NULL) {
            return mk_str_fail(why, whylen, "no parser for this key");
        }
        why[0] = '\0';
        if (k->parse(value, field, why, whylen) != 0) {
            if (why[0] == '\0') {
                mk_str_fail(why, whylen, "invalid value \"%s\"", value);
            }
            return -1;
        }
        return 0;
    }
    return mk_str_fail(why, whylen, "unknown key type %d", (int) k->type);
}

/* Keys compare case-insensitively. */
static int conf_name_is(const char *key, const char *name)
{
    return mk_str_case_eq(key, strlen(key), name, strlen(name));
}

static int conf_find(const struct mk_conf_key *keys, const char *name)
{
    int i;

    for (i = 0; keys[i].name != NULL; i++) {
        if (conf_name_is(keys[i].name, name)) {
            return i;
        }
    }
    return -1;
}

/* One key of the table being applied: an INHERIT key is replaced by the
 * global key it stands for, moved to the site's offset, and remembers
 * that key so an absent value can be copied from the global struct. */
struct conf_slot {
    struct mk_conf_key key;
    const struct mk_conf_key *global;   /* NULL: not inherited */
    const struct mk_rconf_entry *seen;  /* first entry for this key */
};

/* Bytes of an inheritable field, 0 for a type that cannot inherit. */
static size_t conf_scalar_size(enum mk_conf_type type)
{
    switch (type) {
    case MK_CONF_T_INT:
        return sizeof(long long);
    case MK_CONF_T_BOOL:
    case MK_CONF_T_ENUM:
        return sizeof(int);
    case MK_CONF_T_SIZE:
    case MK_CONF_T_TIME:
        return sizeof(uint64_t);
    default:
        return 0;
    }
}

static int conf_slot_init(struct conf_slot *slot, const struct mk_conf_key *k,
                          const struct mk_conf_key *global_keys,
                          char *err, size_t errlen)
{
    const struct mk_conf_key *g;
    int i;

    slot->key = *k;
    if (k->type != MK_CONF_T_INHERIT) {
        return 0;
    }
    i = global_keys != NULL ? conf_find(global_keys, k->name) : -1;
    if (i < 0) {
        return mk_str_fail(err, errlen, "%s: inherits a global key that does "
                          "not exist", k->name);
    }
    g = &global_keys[i];
    if (conf_scalar_size(g->type) == 0) {
        return mk_str_fail(err, errlen, "%s: a string, list or custom key "
                          "cannot be inherited", k->name);
    }
    /* the global key's parsing and bounds; no default of its own: the
     * global value is the default */
    slot->key = *g;
    slot->key.name = k->name;
    slot->key.offset = k->offset;
    slot->key.def = NULL;
    slot->key.flags = 0;
    slot->global = g;
    return 0;
}

/* Keys whose default is applied only when the key is absent: applying it
 * first would leave it in front of the configured values. */
static int conf_default_when_absent(const struct mk_conf_key *k)
{
    return k->type == MK_CONF_T_LIST || k->type == MK_CONF_T_CUSTOM;
}

static int conf_apply_default(const struct mk_conf_key *k,
                              const struct mk_rconf_section *s, void *out,
                              char *err, size_t errlen)
{
    char why[256];

    if (conf_set(k, k->def, s != NULL ? s->file : "(default)",
                 s != NULL ? s->line : 0, out, why, sizeof(why)) != 0) {
        return mk_str_fail(err, errlen, "%s: default \"%s\": %s", k->name,
                          k->def, why);
    }
    return 0;
}

static int conf_slot_find(const struct conf_slot *slots, const char *name)
{
    int i;

    for (i = 0; slots[i].key.name != NULL; i++) {
        if (conf_name_is(slots[i].key.name, name)) {
            return i;
        }
    }
    return -1;
}

static int conf_apply_entry(const struct mk_rconf_section *s,
                            const struct mk_rconf_entry *e,
                            struct conf_slot *slots, void *out,
                            char *err, size_t errlen)
{
    const struct mk_conf_key *k;
    char why[256];
    int i = conf_slot_find(slots, e->key);

    if (i < 0) {
        return mk_str_fail(err, errlen, "%s:%d: %s: unknown key in [%s%s%s]",
                          e->file, e->line, e->key, s->name,
                          s->arg[0] != '\0' ? " " : "", s->arg);
    }
    k = &slots[i].key;
    if (slots[i].seen != NULL && !(k->flags & MK_CONF_MULTI)) {
        return mk_str_fail(err, errlen, "%s:%d: %s: given twice (first at "
                          "line %d)", e->file, e->line, k->name,
                          slots[i].seen->line);
    }
    if (slots[i].seen == NULL) {
        slots[i].seen = e;
    }
    if (conf_set(k, e->value, e->file, e->line, out, why, sizeof(why)) != 0) {
        return mk_str_fail(err, errlen, "%s:%d: %s: %s", e->file, e->line,
                          k->name, why);
    }
    return 0;
}

/* What the section did not say: defaults applied after the entries, the
 * global values of inherited keys, and the required keys. */
static int conf_apply_absent(const struct mk_rconf_section *s,
                             const struct conf_slot *slots, void *out,
                             const void *global, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; slots[i].key.name != NULL; i++) {
        const struct mk_conf_key *k = &slots[i].key;

        if (slots[i].seen != NULL) {
            continue;
        }
        if (slots[i].global != NULL) {
            memcpy((char *) out + k->offset,
                   (const char *) global + slots[i].global->offset,
                   conf_scalar_size(k->type));
        }
        if (k->def != NULL && conf_default_when_absent(k) &&
            conf_apply_default(k, s, out, err, errlen) != 0) {
            return -1;
        }
        if (!(k->flags & MK_CONF_REQUIRED)) {
            continue;
        }
        if (s != NULL) {
            return mk_str_fail(err, errlen, "%s:%d: [%s%s%s]: %s is required",
                              s->file, s->line, s->name,
                              s->arg[0] != '\0' ? " " : "", s->arg, k->name);
        }
        return mk_str_fail(err, errlen, "%s is required", k->name);
    }
    return 0;
}

int mk_conf_apply(const struct mk_rconf_section *s,
                  const struct mk_conf_key *keys, void *out,
                  char *err, size_t errlen)
{
    return mk_conf_apply_inherit(s, keys, out, NULL, NULL, err, errlen);
}

/* On error everything this call allocated in `out` is released again, so
 * the caller only owns `out` after success (mk_conf_release is still safe
 * to call, the fields are reset). */
int mk_conf_apply_inherit(const struct mk_rconf_section *s,
                          const struct mk_conf_key *keys, void *out,
                          const struct mk_conf_key *global_keys,
                          const void *global, char *err, size_t errlen)
{
    struct conf_slot *slots;
    const struct mk_list *h;
    size_t nkeys = 0, i;

    while (keys[nkeys].name != NULL) {
        nkeys++;
    }
    slots = mk_mem_zalloc((nkeys + 1) * sizeof(*slots));
    if (slots == NULL) {
        return mk_str_fail(err, errlen, "out of memory");
    }
    for (i = 0; i < nkeys; i++) {
        if (conf_slot_init(&slots[i], &keys[i],
                           global != NULL ? global_keys : NULL,
                           err, errlen) != 0) {
            goto error;
        }
        if (slots[i].key.def != NULL &&
            !conf_default_when_absent(&slots[i].key) &&
            conf_apply_default(&slots[i].key, s, out, err, errlen) != 0) {
            goto error;
        }
    }
    if (s != NULL) {
        mk_list_foreach(h, &s->entries) {
            const struct mk_rconf_entry *e =
                mk_list_entry(h, struct mk_rconf_entry, _head);
            if (conf_apply_entry(s, e, slots, out, err, errlen) != 0) {
                goto error;
            }
        }
    }
    if (conf_apply_absent(s, slots, out, global, err, errlen) != 0) {
        goto error;
    }
    mk_mem_free(slots);
    return 0;

error:
    mk_mem_free(slots);
    mk_conf_release(keys, out);
    return -1;
}

void mk_conf_release(const struct mk_conf_key *keys, void *out)
{
    size_t i, j;

    for (i = 0; keys[i].name != NULL; i++) {
        void *field = (char *) out + keys[i].offset;

        if (keys[i].type == MK_CONF_T_STR) {
            mk_mem_free(*(char **) field);
            *(char **) field = NULL;
        }
        else if (keys[i].type == MK_CONF_T_LIST) {
            struct mk_conf_list *l = field;
            for (j = 0; j < l->count; j++) {
                mk_mem_free(l->values[j]);
                if (j == 0 || l->files[j] != l->files[j - 1]) {
                    mk_mem_free((void *) l->files[j]);
                }
            }
            mk_mem_free(l->values);
            mk_mem_free((void *) l->files);
            mk_mem_free(l->lines);
            memset(l, 0, sizeof(*l));
        }
    }
}
