/*
 * The indented configuration reader (mk_rconf.h); the typed schema that
 * consumes its sections is in mk_rconf_schema.c.
 *
 * The reader is fed hostile input by the fuzzer, so it is written to be
 * boring: one flat pass over the bytes, no recursion except @include (which
 * is bounded by RCONF_DEPTH_MAX and RCONF_FILES_MAX), every line is length
 * checked before it is looked at, and each section or entry is a single
 * allocation so that there is only one thing to free per node.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_core/mk_mem.h"
#include "mk_core/mk_rconf.h"
#include "mk_core/mk_string.h"

#define RCONF_LINE_MAX       8192
#define RCONF_DEPTH_MAX      8
/* Includes form a DAG that may fan out at every level; cap the total so a
 * few files including each other twice cannot cost 2^8 reads. */
#define RCONF_FILES_MAX      1024
#define RCONF_FILE_SIZE_MAX  (16 * 1024 * 1024)

/* An interned file name: entries and sections point into `name`. */
struct rconf_file {
    struct mk_list _head;
    char name[];
};

/* What one mk_rconf_open / mk_rconf_parse call carries through includes. */
struct rconf_ctx {
    struct mk_rconf *conf;
    int nfiles;
    char *err;
    size_t errlen;
};

static int rconf_read_file(struct rconf_ctx *ctx, const char *path, int depth,
                           const char *from, int from_line);

static int rconf_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Length of the leading run of non-blank bytes. */
static size_t rconf_word_len(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && !rconf_is_blank(s[i])) {
        i++;
    }
    return i;
}

static const char *rconf_intern(struct mk_rconf *conf, const char *name)
{
    size_t len = strlen(name);
    struct rconf_file *f = mk_mem_alloc(sizeof(*f) + len + 1);

    if (f == NULL) {
        return NULL;
    }
    memcpy(f->name, name, len + 1);
    mk_list_add(&f->_head, &conf->files);
    return f->name;
}

/* ---- Building the tree ------------------------------------------------ */

/* Name and argument live in the same block as the section. */
static struct mk_rconf_section *rconf_section_add(struct mk_rconf *conf,
                                                  const char *file, int line,
                                                  struct mk_ptr name,
                                                  struct mk_ptr arg)
{
    struct mk_rconf_section *s;

    s = mk_mem_alloc(sizeof(*s) + name.len + 1 + arg.len + 1);
    if (s == NULL) {
        return NULL;
    }
    s->name = (char *) (s + 1);
    memcpy(s->name, name.data, name.len);
    s->name[name.len] = '\0';
    s->arg = s->name + name.len + 1;
    if (arg.len > 0) {
        memcpy(s->arg, arg.data, arg.len);
    }
    s->arg[arg.len] = '\0';
    s->file = file;
    s->line = line;
    mk_list_init(&s->entries);
    mk_list_add(&s->_head, &conf->sections);
    return s;
}

static int rconf_entry_add(struct mk_rconf_section *s, const char *file,
                           int line, struct mk_ptr key, struct mk_ptr value)
{
    struct mk_rconf_entry *e;

    e = mk_mem_alloc(sizeof(*e) + key.len + 1 + value.len + 1);
    if (e == NULL) {
        return -1;
    }
    e->key = (char *) (e + 1);
    memcpy(e->key, key.data, key.len);
    e->key[key.len] = '\0';
    e->value = e->key + key.len + 1;
    if (value.len > 0) {
        memcpy(e->value, value.data, value.len);
    }
    e->value[value.len] = '\0';
    e->file = file;
    e->line = line;
    mk_list_add(&e->_head, &s->entries);
    return 0;
}

/* ---- Reading lines ---------------------------------------------------- */

/* `[NAME]` or `[NAME ARG]`; `h` is the line without trailing blanks. */
static int rconf_header(struct rconf_ctx *ctx, const char *file, int line,
                        struct mk_ptr h, struct mk_rconf_section **section)
{
    struct mk_ptr inner, name, arg;
    size_t nlen;

    if (h.data[h.len - 1] != ']') {
        if (memchr(h.data, ']', h.len) != NULL) {
            return mk_str_fail(ctx->err, ctx->errlen,
                              "%s:%d: unexpected text after section header",
                              file, line);
        }
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: unterminated section header", file, line);
    }
    inner = mk_ptr_trim(mk_ptr_make(h.data + 1, h.len - 2));
    if (inner.len == 0) {
        return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: empty section name",
                          file, line);
    }
    if (memchr(inner.data, '[', inner.len) != NULL ||
        memchr(inner.data, ']', inner.len) != NULL) {
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: malformed section header", file, line);
    }
    nlen = rconf_word_len(inner.data, inner.len);
    name = mk_ptr_make(inner.data, nlen);
    arg = mk_ptr_trim(mk_ptr_make(inner.data + nlen, inner.len - nlen));
    *section = rconf_section_add(ctx->conf, file, line, name, arg);
    if (*section == NULL) {
        return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: out of memory",
                          file, line);
    }
    return 0;
}

/* The directory part of `file` is prefixed to a relative pattern, with its
 * glob metacharacters escaped: a directory named "[conf]" is not a set. */
static char *rconf_include_pattern(const char *file, size_t dirlen,
                                   const char *pat, size_t patlen)
{
    char *out;
    size_t i, n = 0;

    if (patlen > 0 && pat[0] == '/') {
        dirlen = 0;
    }
    out = mk_mem_alloc(dirlen * 2 + patlen + 1);
    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < dirlen; i++) {
        if (strchr("*?[\\", file[i]) != NULL) {
            out[n++] = '\\';
        }
        out[n++] = file[i];
    }
    memcpy(out + n, pat, patlen);
    out[n + patlen] = '\0';
    return out;
}

static int rconf_include(struct rconf_ctx *ctx, const char *file,
                         const char *dir, size_t dirlen, int line,
                         struct mk_ptr pat, int depth)
{
    glob_t g;
    char *pattern;
    size_t i;
    int ret;

    if (depth + 1 > RCONF_DEPTH_MAX) {
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: @include nesting deeper than %d "
                          "(include loop?)", file, line, RCONF_DEPTH_MAX);
    }
    pattern = rconf_include_pattern(dir, dirlen, pat.data, pat.len);
    if (pattern == NULL) {
        return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: out of memory",
                          file, line);
    }
    /* glob() sorts its result, which gives the documented order. */
    ret = glob(pattern, 0, NULL, &g);
    if (ret == GLOB_NOMATCH) {
        mk_mem_free(pattern);
        return 0;
    }
    if (ret != 0) {
        mk_str_fail(ctx->err, ctx->errlen, "%s:%d: @include %s: cannot list "
                   "files", file, line, pattern);
        mk_mem_free(pattern);
        return -1;
    }
    mk_mem_free(pattern);
    for (i = 0; i < g.gl_pathc; i++) {
        if (rconf_read_file(ctx, g.gl_pathv[i], depth + 1, file, line) != 0) {
            globfree(&g);
            return -1;
        }
    }
    globfree(&g);
    return 0;
}

/* `@include PATTERN`; any other directive is an error. */
static int rconf_directive(struct rconf_ctx *ctx, const char *file,
                           const char *dir, size_t dirlen, int line,
                           struct mk_ptr p, int depth)
{
    size_t wlen = rconf_word_len(p.data, p.len);
    struct mk_ptr pat;

    if (!(wlen == 8 && memcmp(p.data, "@include", 8) == 0)) {
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: unknown directive \"%.*s\"", file, line,
                          (int) wlen, p.data);
    }
    pat = mk_ptr_trim(mk_ptr_make(p.data + wlen, p.len - wlen));
    if (pat.len == 0) {
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: @include needs a file pattern", file, line);
    }
    return rconf_include(ctx, file, dir, dirlen, line, pat, depth);
}

/* One line without its terminator; `*section` is the open section. `file`
 * and `line` are what messages and entries show (see #line); includes are
 * resolved against the first `dirlen` bytes of `dir`, the real file. */
static int rconf_line(struct rconf_ctx *ctx, const char *file, const char *dir,
                      size_t dirlen, int line, const char *start, size_t n,
                      int depth, struct mk_rconf_section **section)
{
    struct mk_ptr p = mk_ptr_trim(mk_ptr_make(start, n));
    struct mk_ptr key, value;
    size_t klen;

    if (p.len == 0 || p.data[0] == '#') {
        return 0;
    }
    if (start[0] == '[') {
        return rconf_header(ctx, file, line, p, section);
    }
    if (start[0] == '@') {
        /* Entries after an include would otherwise land in a section that
         * now sits before the included ones: make the author say which. */
        *section = NULL;
        return rconf_directive(ctx, file, dir, dirlen, line, p, depth);
    }
    if (!rconf_is_blank(start[0])) {
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: expected a [SECTION] header or an indented "
                          "entry", file, line);
    }
    if (p.data[0] == '[') {
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: section header must start at column 0",
                          file, line);
    }
    if (*section == NULL) {
        return mk_str_fail(ctx->err, ctx->errlen,
                          "%s:%d: entry outside of any section", file, line);
    }
    klen = rconf_word_len(p.data, p.len);
    key = mk_ptr_make(p.data, klen);
    value = mk_ptr_trim(mk_ptr_make(p.data + klen, p.len - klen));
    if (rconf_entry_add(*section, file, line, key, value) != 0) {
        return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: out of memory",
                          file, line);
    }
    return 0;
}

/* The interned copy of `name`, reusing one already interned: a generated
 * file repeats the same #line file name before every entry. */
static const char *rconf_intern_once(struct mk_rconf *conf, const char *name)
{
    struct mk_list *h;

    mk_list_foreach(h, &conf->files) {
        struct rconf_file *f = mk_list_entry(h, struct rconf_file, _head);
        if (strcmp(f->name, name) == 0) {
            return f->name;
        }
    }
    return rconf_intern(conf, name);
}

/* `#line N "FILE"` at column 0: the next line is line N of FILE, for every
 * message and entry (a generated file points back at its source, as cpp
 * does). Returns 1 if `start` is not such a line (an ordinary comment), 0
 * when applied, -1 on a malformed directive. */
static int rconf_line_directive(struct rconf_ctx *ctx, const char *real,
                                int real_line, const char *start, size_t n,
                                const char **file, int *line)
{
    char name[RCONF_LINE_MAX + 1];
    const char *p = start + 6, *end = start + n, *q;
    long long num = 0;

    if (n < 7 || memcmp(start, "#line ", 6) != 0 || p[0] < '0' || p[0] > '9') {
        return 1;
    }
    while (p < end && *p >= '0' && *p <= '9' && num <= 100000000) {
        num = num * 10 + (*p++ - '0');
    }
    if (p < end && *p == ' ') {
        p++;
    }
    q = p < end && *p == '"' ? memchr(p + 1, '"', (size_t) (end - p - 1))
                             : NULL;
    if (num < 1 || num > 100000000 || q == NULL || q == p + 1 || q + 1 != end) {
        return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: expected "
                           "#line N \"FILE\"", real, real_line);
    }
    memcpy(name, p + 1, (size_t) (q - p - 1));
    name[q - p - 1] = '\0';
    *file = rconf_intern_once(ctx->conf, name);
    if (*file == NULL) {
        return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: out of memory",
                           real, real_line);
    }
    *line = (int) num - 1;
    return 0;
}

/* Splits `data` into lines. `file` is interned; relative includes are
 * resolved against its first `dirlen` bytes. */
static int rconf_read_buf(struct rconf_ctx *ctx, const char *file,
                          size_t dirlen, const char *data, size_t len,
                          int depth)
{
    struct mk_rconf_section *section = NULL;
    const char *shown = file;
    size_t pos = 0;
    int line = 0, shown_line = 0, ret;

    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        pos = 3;                               /* UTF-8 byte order mark */
    }
    while (pos < len) {
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t) (nl - start) : len - pos;

        pos += n + (nl != NULL);
        line++;
        shown_line++;
        if (n > 0 && start[n - 1] == '\r') {
            n--;
        }
        if (n > RCONF_LINE_MAX) {
            return mk_str_fail(ctx->err, ctx->errlen,
                              "%s:%d: line longer than %d bytes", file, line,
                              RCONF_LINE_MAX);
        }
        if (memchr(start, '\0', n) != NULL) {
            return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: NUL byte in line",
                              file, line);
        }
        ret = rconf_line_directive(ctx, file, line, start, n, &shown,
                                   &shown_line);
        if (ret < 0) {
            return -1;
        }
        if (ret > 0 && rconf_line(ctx, shown, file, dirlen, shown_line, start,
                                  n, depth, &section) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads the whole regular file at `fd` (at most RCONF_FILE_SIZE_MAX). */
static char *rconf_slurp(int fd, size_t size, size_t *out_len)
{
    char *buf = mk_mem_alloc(size + 1);
    size_t got = 0;
    ssize_t r;

    if (buf == NULL) {
        return NULL;
    }
    while (got < size) {
        r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            mk_mem_free(buf);
            return NULL;
        }
        if (r == 0) {
            break;                     /* shrank since fstat: take what is */
        }
        got += (size_t) r;
    }
    *out_len = got;
    return buf;
}

/* `from`/`from_line` name the @include line, NULL for the top file. A
 * directory matched by an include glob is skipped; anything else that is
 * not a regular file (a FIFO would block) is an error. */
static int rconf_read_file(struct rconf_ctx *ctx, const char *path, int depth,
                           const char *from, int from_line)
{
    struct stat st;
    const char *name, *slash, *why;
    char *data = NULL;
    size_t len = 0;
    int fd = -1;
    int ret = -1;

    if (++ctx->nfiles > RCONF_FILES_MAX) {
        return mk_str_fail(ctx->err, ctx->errlen, "%s:%d: more than %d files "
                          "included", from, from_line, RCONF_FILES_MAX);
    }
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        why = strerror(errno);
        goto error;
    }
    if (from != NULL && S_ISDIR(st.st_mode)) {
        close(fd);
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        why = "not a regular file";
        goto error;
    }
    if (st.st_size > RCONF_FILE_SIZE_MAX) {
        why = "file larger than 16 MiB";
        goto error;
    }
    data = rconf_slurp(fd, (size_t) st.st_size, &len);
    name = data != NULL ? rconf_intern(ctx->conf, path) : NULL;
    if (name == NULL) {
        why = errno == ENOMEM || data != NULL ? "out of memory"
                                              : strerror(errno);
        goto error;
    }
    slash = strrchr(name, '/');
    ret = rconf_read_buf(ctx, name, slash != NULL ? (size_t) (slash - name) + 1
                                                  : 0,
                         data, len, depth);
    goto out;

error:
    if (from != NULL) {
        mk_str_fail(ctx->err, ctx->errlen, "%s:%d: @include %s: %s", from,
                   from_line, path, why);
    }
    else {
        mk_str_fail(ctx->err, ctx->errlen, "%s: %s", path, why);
    }
out:
    mk_mem_free(data);
    if (fd >= 0) {
        close(fd);
    }
    return ret;
}

/* ---- Public reader API ------------------------------------------------ */

static struct mk_rconf *rconf_create(const char *path)
{
    struct mk_rconf *conf = mk_mem_zalloc(sizeof(*conf));

    if (conf == NULL) {
        return NULL;
    }
    mk_list_init(&conf->sections);
    mk_list_init(&conf->files);
    conf->path = mk_mem_strdup(path);
    if (conf->path == NULL) {
        mk_mem_free(conf);
        return NULL;
    }
    return conf;
}

struct mk_rconf *mk_rconf_open(const char *path, char *err, size_t errlen)
{
    struct rconf_ctx ctx = { NULL, 0, err, errlen };

    ctx.conf = rconf_create(path);
    if (ctx.conf == NULL) {
        mk_str_fail(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (rconf_read_file(&ctx, path, 0, NULL, 0) != 0) {
        mk_rconf_destroy(ctx.conf);
        return NULL;
    }
    return ctx.conf;
}

struct mk_rconf *mk_rconf_parse(const char *name, const char *data, size_t len,
                                char *err, size_t errlen)
{
    struct rconf_ctx ctx = { NULL, 1, err, errlen };
    const char *file;

    ctx.conf = rconf_create(name);
    if (ctx.conf == NULL) {
        mk_str_fail(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    file = rconf_intern(ctx.conf, name);
    if (file == NULL) {
        mk_str_fail(err, errlen, "%s: out of memory", name);
        goto error;
    }
    /* dirlen 0: includes from memory resolve against the current dir. */
    if (rconf_read_buf(&ctx, file, 0, data, len, 0) != 0) {
        goto error;
    }
    return ctx.conf;

error:
    mk_rconf_destroy(ctx.conf);
    return NULL;
}

void mk_rconf_destroy(struct mk_rconf *conf)
{
    struct mk_list *h, *tmp, *eh, *etmp;

    if (conf == NULL) {
        return;
    }
    mk_list_foreach_safe(h, tmp, &conf->sections) {
        struct mk_rconf_section *s = mk_list_entry(h, struct mk_rconf_section,
                                                   _head);
        mk_list_foreach_safe(eh, etmp, &s->entries) {
            mk_mem_free(mk_list_entry(eh, struct mk_rconf_entry, _head));
        }
        mk_mem_free(s);
    }
    mk_list_foreach_safe(h, tmp, &conf->files) {
        mk_mem_free(mk_list_entry(h, struct rconf_file, _head));
    }
    mk_mem_free(conf->path);
    mk_mem_free(conf);
}

struct mk_rconf_section *mk_rconf_section_next(struct mk_rconf *conf,
                                               const char *name,
                                               struct mk_rconf_section *after)
{
    struct mk_list *h = after != NULL ? after->_head.next
                                      : conf->sections.next;
    size_t nlen = strlen(name);

    for (; h != &conf->sections; h = h->next) {
        struct mk_rconf_section *s = mk_list_entry(h, struct mk_rconf_section,
                                                   _head);
        if (mk_str_case_eq(s->name, strlen(s->name), name, nlen)) {
            return s;
        }
    }
    return NULL;
}

const char *mk_rconf_get(const struct mk_rconf_section *s, const char *key)
{
    const struct mk_list *h;
    size_t klen = strlen(key);

    /* Walk backwards: the last occurrence wins. */
    for (h = s->entries.prev; h != &s->entries; h = h->prev) {
        const struct mk_rconf_entry *e = mk_list_entry(h,
                                                       struct mk_rconf_entry,
                                                       _head);
        if (mk_str_case_eq(e->key, strlen(e->key), key, klen)) {
            return e->value;
        }
    }
    return NULL;
}
