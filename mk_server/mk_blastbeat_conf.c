/*
 * tremolo -b: a parsed BlastBeat .ini (mk_blastbeat.c) becomes native
 * files in a private directory, which mk_server_load reads like any -c
 * configuration; the directory is removed as soon as it has been read.
 *
 *   tremolo.conf      [SERVER] and the global plugin sections
 *   plugins.load      the plain-socket layer, then the plugins that write
 *                     the .ini's options (mk_blastbeat_plan.c)
 *   sites/NNNN.conf   one per vhost, in .ini order (the first is the
 *                     default, as sites are read sorted)
 *
 * Every entry is preceded by `#line N "FILE.ini"`, so whatever the native
 * loader refuses is reported at the .ini line that caused it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "mk_server/mk_blastbeat.h"

/* A listener: every bind/bind-ssl address once, with the network layer
 * and the shared flag of its first declaration (spec 8.3). */
struct bb_listener {
    char addr[128];
    const struct mk_bb_row *row;    /* its option: plugin = network layer */
    int shared;                     /* first declared in [blastbeat] */
    int line;
};

struct bb_gen {
    const struct mk_bb *bb;
    struct mk_bb_plan plan;
    FILE *f;
    struct bb_listener *ls;
    size_t nls;
    const struct mk_plugin **plugins;   /* to load, in order of need */
    size_t nplugins;
    const struct mk_plugin **defaulted; /* wrote a default: load too */
    size_t ndefaulted;
    char *err;
    size_t errlen;
};

static void bb_emit(struct bb_gen *g, int line, const char *key,
                    const char *value)
{
    fprintf(g->f, "#line %d \"%s\"\n    %s %s\n", line, g->bb->path, key,
            value);
}

static void bb_emit_section(struct bb_gen *g, int line, const char *name)
{
    fprintf(g->f, "#line %d \"%s\"\n[%s]\n", line, g->bb->path, name);
}

static const struct mk_bb_values *bb_values(const struct mk_bb_section *s,
                                            const struct mk_bb_row *r)
{
    return &s->opts[r->opt - mk_bb_opts];
}

/* Adds p to `list` once (it has room for every plugin of the plan). */
static void bb_plugin_add(const struct mk_plugin **list, size_t *n,
                          const struct mk_plugin *p)
{
    size_t i;

    for (i = 0; i < *n && list[i] != p; i++) {
        continue;
    }
    if (i == *n) {
        list[(*n)++] = p;
    }
}

/* The row's plugin will be loaded; an option nobody writes is an error. */
static int bb_plugin_need(struct bb_gen *g, const struct mk_bb_row *r,
                          int line)
{
    if (r->plugin) {
        bb_plugin_add(g->plugins, &g->nplugins, r->plugin);
    }
    else if (!r->section) {
        return mk_str_fail(g->err, g->errlen, "%s:%d: %s: needs the %s plugin, "
                           "which is not available in this build", g->bb->path,
                           line, r->opt->key, r->opt->needs);
    }
    return 0;
}

/* Does the plugin that writes r have r's native key? Plugins grow keys
 * over time (zmq's Sessions, StatsFreq, per-site Bind): a default is
 * written only where the key exists, a value given in the .ini fails. */
static int bb_native_known(const struct mk_bb_row *r, unsigned where)
{
    const struct mk_conf_key *k;

    if (!r->plugin) {
        return r->section != NULL;                 /* a core key */
    }
    for (k = where == MK_BB_GLOBAL ? r->plugin->conf_keys
                                   : r->plugin->vhost_keys;
         k && k->name; k++) {
        if (strcasecmp(k->name, r->native) == 0) {
            return 1;
        }
    }
    return 0;
}

/* One entry of section `s`, after the section's header if it is the
 * first (`*header` is then cleared). */
static void bb_emit_entry(struct bb_gen *g, const struct mk_bb_section *s,
                          const char **header, int line, const char *key,
                          const char *value)
{
    if (*header) {
        bb_emit_section(g, s->line ? s->line : 1, *header);
        *header = NULL;
    }
    bb_emit(g, line, key, value);
}

/* Row `r` has no value in `s`: BlastBeat's default, where it has one and
 * the native key exists (uid/gid: nobody/nogroup only when root). A
 * plugin whose default is written is loaded, after the plugins values
 * need (which keeps the order of plugins.load). */
static int bb_emit_default(struct bb_gen *g, const struct mk_bb_section *s,
                           const struct mk_bb_row *r, unsigned where,
                           const char **header)
{
    const struct mk_bb_opt *o = r->opt;
    char out[4096], why[512];

    if (!r->def || ((o->kind == MK_BB_USER || o->kind == MK_BB_GROUP) &&
                    geteuid() != 0) || !bb_native_known(r, where)) {
        return 0;
    }
    if (mk_bb_convert(o, r->def, g->bb->path, out, sizeof(out), why,
                      sizeof(why)) < 0) {
        return mk_str_fail(g->err, g->errlen, "%s: %s: the default \"%s\" "
                           "cannot be used: %s; set %s in [blastbeat]",
                           g->bb->path, o->key, r->def, why, o->key);
    }
    if (r->plugin) {
        bb_plugin_add(g->defaulted, &g->ndefaulted, r->plugin);
    }
    bb_emit_entry(g, s, header, s->line ? s->line : 1, r->native, out);
    return 0;
}

/* Writes the values of row `r` from section `s`, or its default. */
static int bb_emit_row(struct bb_gen *g, const struct mk_bb_section *s,
                       const struct mk_bb_row *r, unsigned where,
                       const char **header)
{
    const struct mk_bb_values *vs = bb_values(s, r);
    const struct mk_bb_opt *o = r->opt;
    char out[4096], why[512];
    size_t i;
    int line;

    if (vs->count == 0) {
        return bb_emit_default(g, s, r, where, header);
    }
    for (i = 0; i < vs->count; i++) {
        line = vs->v[i].line;
        if (mk_bb_convert(o, vs->v[i].value, g->bb->path, out, sizeof(out),
                          why, sizeof(why)) < 0) {
            return mk_str_fail(g->err, g->errlen, "%s:%d: %s: %s", g->bb->path,
                               line, o->key, why);
        }
        /* vhost sessions, cache, bandwidth, timeout: 0 means "off" */
        if (where == MK_BB_VHOST && (o->kind == MK_BB_COUNT ||
                                     o->kind == MK_BB_MIB ||
                                     o->kind == MK_BB_KBITS ||
                                     o->kind == MK_BB_SECONDS_INT) &&
            strtoll(out, NULL, 10) == 0) {
            continue;
        }
        if (bb_plugin_need(g, r, line) < 0) {
            return -1;
        }
        if (!bb_native_known(r, where)) {
            return mk_str_fail(g->err, g->errlen, "%s:%d: %s: needs the %s "
                               "plugin's %s%s setting, which this build does "
                               "not have", g->bb->path, line, o->key,
                               r->plugin->name, where == MK_BB_VHOST ?
                               "per-site " : "", r->native);
        }
        bb_emit_entry(g, s, header, line, r->native, out);
    }
    return 0;
}

/* Rows a and b go into the same native section (nobody's rows: none). */
static int bb_same_section(const struct mk_bb_row *a,
                           const struct mk_bb_row *b)
{
    return a == b || (a->section && b->section &&
                      strcmp(a->section, b->section) == 0);
}

/* Every native section of the rows valid in `where`, in plan order.
 * `open` is the section whose header is already written (its rows go
 * first: it must be the section of the plan's first row). */
static int bb_emit_sections(struct bb_gen *g, const struct mk_bb_section *s,
                            unsigned where, const char *open)
{
    const struct mk_bb_row *rows = g->plan.rows, *end = rows + g->plan.nrows;
    const struct mk_bb_row *r, *first;
    const char *header;

    for (first = rows; first < end; first++) {
        if (!(first->where & where)) {
            continue;
        }
        for (r = rows; r != first; r++) {
            if ((r->where & where) && bb_same_section(r, first)) {
                break;                  /* section written already */
            }
        }
        if (r != first) {
            continue;
        }
        header = !first->section || (open && !strcmp(open, first->section))
                 ? NULL : first->section;
        for (r = first; r < end; r++) {
            if (!(r->where & where) || !bb_same_section(r, first) ||
                (r->section && !r->native) || r->opt->kind == MK_BB_LISTEN) {
                continue;
            }
            if (bb_emit_row(g, s, r, where, &header) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* ---- Listeners -------------------------------------------------------- */

static int bb_listener_add(struct bb_gen *g, const struct mk_bb_opt *o,
                           const struct mk_bb_value *v, int shared)
{
    struct bb_listener l = { .shared = shared, .line = v->line }, *grown;
    char why[512];
    size_t i;

    l.row = mk_bb_plan_row(&g->plan, o, shared ? MK_BB_GLOBAL : MK_BB_VHOST);
    if (bb_plugin_need(g, l.row, v->line) < 0) {
        return -1;
    }
    if (mk_bb_convert(o, v->value, g->bb->path, l.addr, sizeof(l.addr), why,
                      sizeof(why)) < 0) {
        return mk_str_fail(g->err, g->errlen, "%s:%d: %s: %s", g->bb->path,
                           v->line, o->key, why);
    }
    for (i = 0; i < g->nls; i++) {
        if (strcmp(g->ls[i].addr, l.addr) == 0) {
            if (g->ls[i].line > l.line) {
                g->ls[i] = l;       /* the first declaration in the file */
            }
            return 0;
        }
    }
    grown = mk_mem_realloc(g->ls, (g->nls + 1) * sizeof(*grown));
    if (!grown) {
        return mk_str_fail(g->err, g->errlen, "out of memory");
    }
    g->ls = grown;
    g->ls[g->nls++] = l;
    return 0;
}

static int bb_listeners(struct bb_gen *g)
{
    const struct mk_bb *bb = g->bb;
    const struct mk_bb_opt *o;
    size_t i, n;

    for (o = mk_bb_opts; o->key; o++) {
        const struct mk_bb_values *vs = &bb->global.opts[o - mk_bb_opts];
        if (o->kind != MK_BB_LISTEN) {
            continue;
        }
        for (n = 0; n < vs->count; n++) {
            if (bb_listener_add(g, o, &vs->v[n], 1) < 0) {
                return -1;
            }
        }
        for (i = 0; i < bb->vhost_count; i++) {
            vs = &bb->vhosts[i].opts[o - mk_bb_opts];
            for (n = 0; n < vs->count; n++) {
                if (bb_listener_add(g, o, &vs->v[n], 0) < 0) {
                    return -1;
                }
            }
        }
    }
    for (i = 0; i < g->nls; i++) {
        const struct mk_plugin *layer = g->ls[i].row->plugin;
        char v[160];
        snprintf(v, sizeof(v), "%s%s%s", g->ls[i].addr, layer ? " " : "",
                 layer ? layer->name : "");
        bb_emit(g, g->ls[i].line, "Listen", v);
    }
    return 0;
}

/* A site served on a listener of a plugin's network layer must set the
 * vhost options that plugin requires ("certificate and key"). */
static int bb_site_required(struct bb_gen *g, const struct mk_bb_section *s,
                            const struct bb_listener *l)
{
    const struct mk_bb_row *r, *end = g->plan.rows + g->plan.nrows;
    char names[512];
    size_t n = 0, count = 0, total, missing = 0;

    names[0] = '\0';
    for (r = g->plan.rows; r < end; r++) {
        if (r->plugin == l->row->plugin && r->where == MK_BB_VHOST &&
            (r->flags & MK_BB_REQUIRED)) {
            missing += bb_values(s, r)->count == 0;
            count++;
        }
    }
    total = count;
    for (r = g->plan.rows; missing && r < end; r++) {
        if (r->plugin == l->row->plugin && r->where == MK_BB_VHOST &&
            (r->flags & MK_BB_REQUIRED) && n < sizeof(names)) {
            count--;
            n += (size_t) snprintf(names + n, sizeof(names) - n, "%s%s",
                                   n == 0 ? "" : count ? ", " : " and ",
                                   r->opt->key);
        }
    }
    if (missing) {
        return mk_str_fail(g->err, g->errlen, "%s:%d: [blastbeat:%s]: served "
                           "on a %s listener, so %s %s required", g->bb->path,
                           s->line, s->name, l->row->opt->key, names,
                           total == 1 ? "is" : "are");
    }
    return 0;
}

/* [HOST] Listen of one vhost: its own binds, or every shared listener. */
static int bb_site_listens(struct bb_gen *g, const struct mk_bb_section *s)
{
    const struct bb_listener *layered = NULL;
    const struct mk_bb_opt *o;
    char addr[128], why[512];
    size_t i, n, own = 0;

    for (o = mk_bb_opts; o->key; o++) {
        const struct mk_bb_values *vs = &s->opts[o - mk_bb_opts];
        for (n = 0; o->kind == MK_BB_LISTEN && n < vs->count; n++, own++) {
            mk_bb_convert(o, vs->v[n].value, g->bb->path, addr, sizeof(addr),
                          why, sizeof(why));
            for (i = 0; i < g->nls && strcmp(g->ls[i].addr, addr); i++) {
                continue;
            }
            if (!layered && i < g->nls && g->ls[i].row->plugin) {
                layered = &g->ls[i];
            }
            bb_emit(g, vs->v[n].line, "Listen", addr);
        }
    }
    for (i = 0; own == 0 && i < g->nls; i++) {
        if (g->ls[i].shared) {
            if (!layered && g->ls[i].row->plugin) {
                layered = &g->ls[i];
            }
            bb_emit(g, s->line, "Listen", g->ls[i].addr);
        }
    }
    return layered ? bb_site_required(g, s, layered) : 0;
}

/* ---- Host names ------------------------------------------------------- */

/* Tremolo matches Host without its port and case-insensitively, BlastBeat
 * byte-exactly: two vhosts whose names only differ there cannot both be
 * served, so say which two. */
static int bb_names_check(struct bb_gen *g)
{
    const struct mk_bb *bb = g->bb;
    const struct mk_bb_opt *alias = mk_bb_opt_find("alias", MK_BB_VHOST);
    size_t i, j, a, b;

    for (i = 0; i < bb->vhost_count; i++) {
        const struct mk_bb_values *va = &bb->vhosts[i].opts[alias - mk_bb_opts];
        for (a = 0; a <= va->count; a++) {
            const char *na = a ? va->v[a - 1].value : bb->vhosts[i].name;
            size_t la = mk_vhost_host_len(na);
            for (j = 0; j < i; j++) {
                const struct mk_bb_values *vb =
                    &bb->vhosts[j].opts[alias - mk_bb_opts];
                for (b = 0; b <= vb->count; b++) {
                    const char *nb = b ? vb->v[b - 1].value
                                       : bb->vhosts[j].name;
                    if (mk_str_case_eq(na, la, nb, mk_vhost_host_len(nb))) {
                        return mk_str_fail(g->err, g->errlen, "%s:%d: "
                            "[blastbeat:%s]: host name \"%s\" collides with "
                            "\"%s\" of [blastbeat:%s] (line %d): Tremolo "
                            "matches Host without its port and ignoring case",
                            bb->path, a ? va->v[a - 1].line
                                        : bb->vhosts[i].line,
                            bb->vhosts[i].name, na, nb, bb->vhosts[j].name,
                            bb->vhosts[j].line);
                    }
                }
            }
        }
    }
    return 0;
}

/* ---- Files ------------------------------------------------------------ */

static int bb_open(struct bb_gen *g, const char *dir, const char *name)
{
    char path[PATH_MAX];

    mk_str_printf(path, sizeof(path), "%s/%s", dir, name);
    g->f = fopen(path, "w");
    if (!g->f) {
        return mk_str_fail(g->err, g->errlen, "%s: %s", path, strerror(errno));
    }
    fprintf(g->f, "# generated from %s by tremolo -b; do not edit\n",
            g->bb->path);
    return 0;
}

static int bb_close(struct bb_gen *g, int ret)
{
    int bad = ferror(g->f);

    if (fclose(g->f) != 0 || bad) {
        ret = ret < 0 ? ret : mk_str_fail(g->err, g->errlen, "cannot write "
                                          "the translated configuration");
    }
    g->f = NULL;
    return ret;
}

static int bb_write_site(struct bb_gen *g, const char *dir, size_t i)
{
    const struct mk_bb_section *s = &g->bb->vhosts[i];
    const struct mk_bb_opt *alias = mk_bb_opt_find("alias", MK_BB_VHOST);
    const struct mk_bb_values *va = &s->opts[alias - mk_bb_opts];
    char name[32], names[8192];
    size_t k, n;
    int ret;

    snprintf(name, sizeof(name), "sites/%04zu.conf", i);
    if (bb_open(g, dir, name) < 0) {
        return -1;
    }
    /* the first name is written as is: its :PORT is SERVER_PORT */
    n = (size_t) snprintf(names, sizeof(names), "%s", s->name);
    for (k = 0; k < va->count && n < sizeof(names); k++) {
        n += (size_t) snprintf(names + n, sizeof(names) - n, " %s",
                               va->v[k].value);
    }
    bb_emit_section(g, s->line, "HOST");
    bb_emit(g, s->line, "ServerName", names);
    if (g->plan.handler) {
        bb_emit(g, s->line, "Handler", g->plan.handler->name);
    }
    ret = bb_site_listens(g, s);
    if (ret == 0) {
        ret = bb_emit_sections(g, s, MK_BB_VHOST, "HOST");
    }
    return bb_close(g, ret);
}

static int bb_write_plugins_load(struct bb_gen *g, const char *dir)
{
    const struct mk_plugin *p;
    size_t i, k, n;

    if (bb_open(g, dir, "plugins.load") < 0) {
        return -1;
    }
    /* the sites name the handler: it is loaded even if no option needs it */
    if (g->plan.handler) {
        bb_plugin_add(g->plugins, &g->nplugins, g->plan.handler);
    }
    for (i = 0; i < g->ndefaulted; i++) {
        bb_plugin_add(g->plugins, &g->nplugins, g->defaulted[i]);
    }
    fprintf(g->f, "[PLUGINS]\n");
    if (g->plan.plain_io) {
        fprintf(g->f, "    Load %s\n", g->plan.plain_io->name);
    }
    for (i = 0; i < g->nplugins; i++) {
        if (g->plugins[i] == g->plan.plain_io) {
            continue;
        }
        fprintf(g->f, "    Load %s\n", g->plugins[i]->name);
        /* what comes with the handler (WebSocket for BlastBeat's nodes)
         * is loaded right after it, unless an option loads it anyway */
        for (k = 0; g->plugins[i] == g->plan.handler &&
                    k < g->plan.nplugins; k++) {
            p = g->plan.plugins[k];
            for (n = 0; n < g->nplugins && g->plugins[n] != p; n++) {
                continue;
            }
            if ((p->bb_ini->flags & MK_BB_WITH_HANDLER) && n == g->nplugins) {
                fprintf(g->f, "    Load %s\n", p->name);
            }
        }
    }
    return bb_close(g, 0);
}

/* The files, once the plan is made. */
static int bb_write_files(struct bb_gen *g, const char *dir)
{
    const struct mk_bb *bb = g->bb;
    char sites[PATH_MAX];
    size_t i;
    int ret;

    mk_str_printf(sites, sizeof(sites), "%s/sites", dir);
    if (mkdir(sites, 0700) < 0) {
        return mk_str_fail(g->err, g->errlen, "%s: %s", sites,
                           strerror(errno));
    }
    if (bb_open(g, dir, "tremolo.conf") < 0) {
        return -1;
    }
    bb_emit_section(g, bb->global.line ? bb->global.line : 1, "SERVER");
    ret = bb_listeners(g);
    if (ret == 0) {
        ret = bb_emit_sections(g, &bb->global, MK_BB_GLOBAL, "SERVER");
    }
    if (bb_close(g, ret) < 0) {
        return -1;
    }
    for (i = 0; i < bb->vhost_count; i++) {
        if (bb_write_site(g, dir, i) < 0) {
            return -1;
        }
    }
    /* last: the sites' options add the plugins they need */
    if (bb_write_plugins_load(g, dir) < 0) {
        return -1;
    }
    /* no static file is served, so the default MimeTypes (mime.types beside
     * tremolo.conf) only needs to exist */
    if (bb_open(g, dir, "mime.types") < 0) {
        return -1;
    }
    return bb_close(g, 0);
}

int mk_bb_write(const struct mk_bb *bb, const char *dir,
                const char *plugin_dir, char *err, size_t errlen)
{
    struct bb_gen g = { .bb = bb, .err = err, .errlen = errlen };
    int ret = -1;

    if (bb_names_check(&g) < 0 ||
        mk_bb_plan_init(&g.plan, plugin_dir, err, errlen) < 0) {
        return -1;
    }
    g.plugins = mk_mem_zalloc((g.plan.nplugins + 1) * sizeof(*g.plugins));
    g.defaulted = mk_mem_zalloc((g.plan.nplugins + 1) * sizeof(*g.plugins));
    if (!g.plugins || !g.defaulted) {
        mk_str_fail(err, errlen, "out of memory");
        goto out;
    }
    ret = bb_write_files(&g, dir);

out:
    mk_mem_free(g.plugins);
    mk_mem_free(g.defaulted);
    mk_mem_free(g.ls);
    mk_bb_plan_release(&g.plan);
    return ret;
}

/* ---- Loading ---------------------------------------------------------- */

static char *bb_slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *data = NULL, *grown;
    size_t n = 0, cap = 0;

    if (!f) {
        mk_str_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 8192;
            grown = cap <= 32 * 1024 * 1024 ? mk_mem_realloc(data, cap) : NULL;
            if (!grown) {
                mk_str_fail(err, errlen, "%s: too large", path);
                goto error;
            }
            data = grown;
        }
        n += fread(data + n, 1, cap - n, f);
    } while (n == cap);
    if (ferror(f)) {
        mk_str_fail(err, errlen, "%s: %s", path, strerror(errno));
        goto error;
    }
    fclose(f);
    *len = n;
    return data;

error:
    fclose(f);
    mk_mem_free(data);
    return NULL;
}

/* Removes what mk_bb_write may have left in `dir`, and `dir`. */
static void bb_remove(const char *dir)
{
    static const char *const files[] = { "tremolo.conf", "plugins.load",
                                         "mime.types" };
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d;
    size_t i;

    mk_str_printf(path, sizeof(path), "%s/sites", dir);
    d = opendir(path);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            mk_str_printf(path, sizeof(path), "%s/sites/%s", dir, de->d_name);
            unlink(path);
        }
    }
    if (d) {
        closedir(d);
    }
    mk_str_printf(path, sizeof(path), "%s/sites", dir);
    rmdir(path);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        mk_str_printf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

struct mk_server *mk_bb_server_load(const char *ini,
                                    const struct mk_overrides *ov,
                                    char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    struct mk_server *srv = NULL;
    struct mk_bb *bb = NULL;
    char dir[PATH_MAX], conf[PATH_MAX];
    char *data;
    size_t len;

    if (strpbrk(ini, "\"\n")) {
        mk_str_fail(err, errlen, "%s: the file name must not hold '\"' or a "
                    "line break", ini);
        return NULL;
    }
    data = bb_slurp(ini, &len, err, errlen);
    if (!data) {
        return NULL;
    }
    bb = mk_bb_parse(ini, data, len, err, errlen);
    mk_mem_free(data);
    if (!bb) {
        return NULL;
    }
    snprintf(dir, sizeof(dir), "%s/tremolo-bb-XXXXXX", tmp && tmp[0] ? tmp
                                                                     : "/tmp");
    if (!mkdtemp(dir)) {
        mk_str_fail(err, errlen, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if (mk_bb_write(bb, dir, TREMOLO_PLUGIN_DIR, err, errlen) == 0) {
        mk_str_printf(conf, sizeof(conf), "%s/tremolo.conf", dir);
        srv = mk_server_load(conf, ov, err, errlen);
    }
    bb_remove(dir);

out:
    mk_bb_destroy(bb);
    return srv;
}
