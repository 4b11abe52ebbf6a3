#ifndef MK_CORE_RCONF_H
#define MK_CORE_RCONF_H

#include <stddef.h>
#include <stdint.h>
#include "mk_core/mk_list.h"

/*
 * The indented configuration reader (Monkey's format):
 *
 *     # comment (a line whose first non-blank is '#'; no inline comments)
 *     [SERVER]
 *         Listen   2001
 *         Workers  0
 *     [AUTH]
 *         Location /private
 *     @include sites/[a-z]*.conf
 *
 * - A section header is `[NAME]` or `[NAME ARG]` at column 0; NAME is
 *   upper-cased ASCII compare (sections are matched case-insensitively),
 *   ARG is the rest after the first blank, trimmed (e.g. `[LOCATION /img]`).
 * - An entry is an INDENTED line (spaces or tabs) `Key value...`: the key is
 *   the first word, the value is the rest of the line, trimmed. Keys compare
 *   case-insensitively. A value may be empty. An entry outside any section,
 *   an unindented non-section line, or a malformed header is an error.
 * - `@include PATTERN` at column 0 reads files matching the glob PATTERN
 *   (relative to the including file's directory) in sorted order; each
 *   included file's sections are appended. No match is fine; nesting deeper
 *   than 8 levels is an error (include loop). Lines end with \n or \r\n; a
 *   NUL byte or a line longer than 8 KiB is an error.
 * - `#line N "FILE"` at column 0 (as in cpp) makes the next line line N of
 *   FILE for every message and entry that follows, until the next #line:
 *   a generated file (tremolo -b) points its errors back at its source.
 *   Any other line starting with `#` stays a comment; `#line` followed by
 *   a digit but malformed is an error. Includes still resolve against the
 *   real file's directory.
 *
 * Every section and entry remembers its file and line so that errors read
 * `file:line: key: reason`.
 */
struct mk_rconf_entry {
    char *key;
    char *value;
    const char *file;          /* owned by the mk_rconf (interned) */
    int line;
    struct mk_list _head;
};

struct mk_rconf_section {
    char *name;                /* as written, e.g. "SERVER" */
    char *arg;                 /* "" when the header has no argument */
    const char *file;
    int line;
    struct mk_list entries;    /* of struct mk_rconf_entry */
    struct mk_list _head;
};

struct mk_rconf {
    char *path;                /* the top file */
    struct mk_list sections;   /* in reading order */
    struct mk_list files;      /* interned file names (internal) */
};

/* Reads `path` and its includes. On error returns NULL and writes a
 * one-line `file:line: reason` into err. */
struct mk_rconf *mk_rconf_open(const char *path, char *err, size_t errlen);
/* The same from memory, `name` standing for the file name in messages;
 * @include is resolved relative to the current directory. Used by tests and
 * the fuzz target. */
struct mk_rconf *mk_rconf_parse(const char *name, const char *data, size_t len,
                                char *err, size_t errlen);
void mk_rconf_destroy(struct mk_rconf *conf);

/* First section named `name` (case-insensitive) at or after `after`'s
 * successor (after == NULL: from the start), or NULL. */
struct mk_rconf_section *mk_rconf_section_next(struct mk_rconf *conf,
                                               const char *name,
                                               struct mk_rconf_section *after);
/* Last value of `key` in the section, or NULL. */
const char *mk_rconf_get(const struct mk_rconf_section *s, const char *key);

/* ---- Typed schema -------------------------------------------------------
 *
 * A section is applied to a C struct with a table of keys; defaults are
 * applied first, then every entry is looked up, converted, range-checked
 * and stored at its offset. An unknown key, a bad value, a missing required
 * key or a repeated single-valued key is an error `file:line: Key: reason`.
 */
enum mk_conf_type {
    MK_CONF_T_STR,     /* char *, mk_mem_strdup'ed; "" allowed */
    MK_CONF_T_INT,     /* long long within [min, max] */
    MK_CONF_T_BOOL,    /* int: on/off, yes/no, true/false, 1/0 */
    MK_CONF_T_SIZE,    /* uint64_t bytes: 512, 64K, 8M, 2G (1024 based) */
    MK_CONF_T_TIME,    /* uint64_t ms: 250ms, 30s, 5m, 1h; bare = seconds */
    MK_CONF_T_ENUM,    /* int: index of the value in `choices` ("a|b|c") */
    MK_CONF_T_LIST,    /* struct mk_conf_list: every occurrence, in order */
    MK_CONF_T_CUSTOM,  /* parse(value, field, err, errlen) per occurrence */
    MK_CONF_T_INHERIT, /* a per-site key: see MK_CONF_INHERIT */
};

#define MK_CONF_MULTI     0x1   /* may repeat (LIST and CUSTOM keys) */
#define MK_CONF_REQUIRED  0x2

/* A repeatable key's values (each mk_mem_strdup'ed) and where each was. */
struct mk_conf_list {
    size_t count;
    char **values;
    const char **files;
    int *lines;
};

typedef int (*mk_conf_parse_fn)(const char *value, void *field,
                                char *err, size_t errlen);

struct mk_conf_key {
    const char *name;
    enum mk_conf_type type;
    size_t offset;
    const char *def;           /* default in the key's own syntax, or NULL */
    long long min, max;        /* INT, SIZE and TIME bounds (max 0: none) */
    const char *choices;       /* ENUM */
    mk_conf_parse_fn parse;    /* CUSTOM */
    int flags;
};

#define MK_CONF_STR(n, st, f, d) \
    { n, MK_CONF_T_STR, offsetof(st, f), d, 0, 0, NULL, NULL, 0 }
#define MK_CONF_INT(n, st, f, d, lo, hi) \
    { n, MK_CONF_T_INT, offsetof(st, f), d, lo, hi, NULL, NULL, 0 }
#define MK_CONF_BOOL(n, st, f, d) \
    { n, MK_CONF_T_BOOL, offsetof(st, f), d, 0, 0, NULL, NULL, 0 }
#define MK_CONF_SIZE(n, st, f, d, lo, hi) \
    { n, MK_CONF_T_SIZE, offsetof(st, f), d, lo, hi, NULL, NULL, 0 }
#define MK_CONF_TIME(n, st, f, d, lo, hi) \
    { n, MK_CONF_T_TIME, offsetof(st, f), d, lo, hi, NULL, NULL, 0 }
#define MK_CONF_ENUM(n, st, f, d, ch) \
    { n, MK_CONF_T_ENUM, offsetof(st, f), d, 0, 0, ch, NULL, 0 }
#define MK_CONF_LIST(n, st, f) \
    { n, MK_CONF_T_LIST, offsetof(st, f), NULL, 0, 0, NULL, NULL, MK_CONF_MULTI }
#define MK_CONF_CUSTOM(n, st, f, d, fn, fl) \
    { n, MK_CONF_T_CUSTOM, offsetof(st, f), d, 0, 0, NULL, fn, fl }
/*
 * A per-site key that inherits the global key of the same name (a plugin's
 * [NAME] section in a site file against [NAME] in <name>.conf): present, it
 * is parsed and range-checked as the global key is (same type, bounds,
 * choices, same error form); absent, the field takes the global section's
 * final value. The site field must have the global field's C type. Only
 * INT, BOOL, SIZE, TIME and ENUM keys inherit (nothing to own or free);
 * mk_conf_apply_inherit resolves them.
 */
#define MK_CONF_INHERIT(n, st, f) \
    { n, MK_CONF_T_INHERIT, offsetof(st, f), NULL, 0, 0, NULL, NULL, 0 }
#define MK_CONF_END { NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0 }

/*
 * Applies `s` (may be NULL: defaults only) to `out`, which the caller has
 * zeroed. Returns 0, or -1 with `file:line: Key: reason` in err (for a
 * missing required key: `file:line: [SECTION]: Key is required`, the
 * section's line; with s == NULL: `Key is required`).
 */
int  mk_conf_apply(const struct mk_rconf_section *s,
                   const struct mk_conf_key *keys, void *out,
                   char *err, size_t errlen);
/* mk_conf_apply for a table with MK_CONF_INHERIT keys: `global_keys` is
 * the global section's table and `global` its applied struct (borrowed,
 * read only). An INHERIT key with no global key of its name, or one of a
 * type that cannot inherit, is an error `Key: ...` (a plugin bug). */
int  mk_conf_apply_inherit(const struct mk_rconf_section *s,
                           const struct mk_conf_key *keys, void *out,
                           const struct mk_conf_key *global_keys,
                           const void *global, char *err, size_t errlen);
/* Frees what mk_conf_apply allocated in `out` (STR and LIST fields; CUSTOM
 * fields belong to their parser's owner). */
void mk_conf_release(const struct mk_conf_key *keys, void *out);

/* The value parsers, exposed for CUSTOM parsers and for the command line.
 * Each returns 0 or -1 with a reason (no file:line) in err. */
int mk_conf_parse_int(const char *v, long long min, long long max,
                      long long *out, char *err, size_t errlen);
int mk_conf_parse_bool(const char *v, int *out, char *err, size_t errlen);
int mk_conf_parse_size(const char *v, uint64_t *out, char *err, size_t errlen);
int mk_conf_parse_time(const char *v, uint64_t *out_ms, char *err,
                       size_t errlen);

#endif
