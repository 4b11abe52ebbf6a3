/*
 * Virtual hosts: one site file (sites/NAME.conf) per vhost with a [HOST]
 * section, optional [LOCATION /prefix] sections choosing another content
 * handler, and [PLUGIN] sections holding that plugin's per-vhost settings.
 * Host lookup: exact names in a hash map, then `*.suffix` wildcards, then
 * the listener's default vhost; a site that names listeners ([HOST] Listen)
 * is served only on those (otherwise the answer is 421).
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_server.h"

#define MK_ERROR_PAGE_MAX (64 * 1024)

struct host_conf {
    char *server_name;
    int is_default;
    char *docroot;
    int allow_symlinks;
    char *handler;
    struct mk_conf_list error_pages;
    struct mk_conf_list listen;
};

static const struct mk_conf_key host_keys[] = {
    MK_CONF_STR("ServerName", struct host_conf, server_name, NULL),
    MK_CONF_BOOL("Default", struct host_conf, is_default, "off"),
    MK_CONF_STR("DocumentRoot", struct host_conf, docroot, NULL),
    MK_CONF_BOOL("AllowSymlinksOutsideRoot", struct host_conf, allow_symlinks,
                 "off"),
    MK_CONF_STR("Handler", struct host_conf, handler, "static"),
    MK_CONF_LIST("ErrorPage", struct host_conf, error_pages),
    MK_CONF_LIST("Listen", struct host_conf, listen),
    MK_CONF_END
};

struct location_conf {
    char *handler;
};

static const struct mk_conf_key location_keys[] = {
    { "Handler", MK_CONF_T_STR, offsetof(struct location_conf, handler), NULL,
      0, 0, NULL, NULL, MK_CONF_REQUIRED },
    MK_CONF_END
};

static int handler_index(struct mk_server *srv, const char *name,
                         const char *file, int line, char *err, size_t errlen)
{
    size_t i;

    if (strcmp(name, "static") == 0) {
        return -1;
    }
    for (i = 0; i < srv->plugin_count; i++) {
        if (strcmp(srv->plugins[i].p->name, name) == 0) {
            if (!srv->plugins[i].p->on_content) {
                snprintf(err, errlen, "%s:%d: Handler: plugin %s has no "
                         "content handler", file, line, name);
                return -2;
            }
            return (int) i;
        }
    }
    snprintf(err, errlen, "%s:%d: Handler: \"%s\" is neither \"static\" nor "
             "a loaded plugin (see plugins.load)", file, line, name);
    return -2;
}

size_t mk_vhost_host_len(const char *name)
{
    size_t len = strlen(name), i = len;

    while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9') {
        i--;
    }
    return i > 1 && i < len && name[i - 1] == ':' ? i - 1 : len;
}

static int vhost_names(struct mk_server *srv, struct mk_vhost *vh,
                       const char *names, const struct mk_rconf_section *s,
                       char *err, size_t errlen)
{
    char *copy = mk_mem_strdup(names), *tok, *save = NULL;
    struct mk_vhost *other;
    size_t hlen;

    if (!copy) {
        goto nomem;
    }
    for (tok = strtok_r(copy, " \t", &save); tok;
         tok = strtok_r(NULL, " \t", &save)) {
        char **grown = mk_mem_realloc(vh->names,
                                      (vh->name_count + 1) * sizeof(char *));
        if (!grown) {
            goto nomem;
        }
        vh->names = grown;
        vh->names[vh->name_count] = mk_mem_strdup(tok);
        if (!vh->names[vh->name_count]) {
            goto nomem;
        }
        vh->name_count++;
        hlen = mk_vhost_host_len(tok);
        other = mk_hash_get(srv->vhost_names, tok, hlen);
        if (other == vh) {
            continue;                   /* a:80 and a:8080 in one site */
        }
        if (other) {
            snprintf(err, errlen, "%s:%d: ServerName: \"%.*s\" is already used "
                     "by %s", s->file, s->line, (int) hlen, tok, other->file);
            mk_mem_free(copy);
            return -1;
        }
        if (mk_hash_set(srv->vhost_names, tok, hlen, vh) < 0) {
            goto nomem;
        }
    }
    mk_mem_free(copy);
    if (vh->name_count == 0) {
        snprintf(err, errlen, "%s:%d: [HOST]: ServerName is required",
                 s->file, s->line);
        return -1;
    }
    return 0;

nomem:
    mk_mem_free(copy);
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* [HOST] Listen ADDR:PORT: each must be the address of a [SERVER] Listen;
 * the site is then served only there and those listeners are reserved. */
static int vhost_listens(struct mk_server *srv, struct mk_vhost *vh,
                         const struct mk_conf_list *list,
                         char *err, size_t errlen)
{
    struct mk_listen want;
    char reason[256];
    size_t i, k;

    if (list->count == 0) {
        return 0;
    }
    vh->on_listen = mk_mem_zalloc(srv->listen_count + 1);
    if (!vh->on_listen) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < list->count; i++) {
        if (strpbrk(list->values[i], " \t")) {
            snprintf(err, errlen, "%s:%d: Listen: \"%s\": expected ADDR:PORT "
                     "(the layer is [SERVER] Listen's)", list->files[i],
                     list->lines[i], list->values[i]);
            return -1;
        }
        if (mk_listen_parse(list->values[i], &want, reason,
                            sizeof(reason)) < 0) {
            snprintf(err, errlen, "%s:%d: Listen: %s", list->files[i],
                     list->lines[i], reason);
            return -1;
        }
        mk_mem_free(want.layer);
        mk_mem_free(want.proto_name);
        for (k = 0; k < srv->listen_count; k++) {
            const struct mk_listen *l = &srv->listens[k];
            if (l->addrlen == want.addrlen &&
                memcmp(&l->addr, &want.addr, want.addrlen) == 0) {
                break;
            }
        }
        if (k == srv->listen_count) {
            snprintf(err, errlen, "%s:%d: Listen: %s is not one of [SERVER] "
                     "Listen", list->files[i], list->lines[i],
                     list->values[i]);
            return -1;
        }
        vh->on_listen[k] = 1;
        srv->listens[k].reserved = 1;
    }
    return 0;
}

static int vhost_serves(const struct mk_vhost *vh, const struct mk_listen *l)
{
    const struct mk_server *srv = vh->srv;

    return vh->on_listen ? vh->on_listen[l - srv->listens] : !l->reserved;
}

/* Each listener's default: the default site if it is served there, else
 * the first site (sorted) that is. */
static void vhost_listen_defaults(struct mk_server *srv)
{
    size_t i, k;

    for (i = 0; i < srv->listen_count; i++) {
        struct mk_listen *l = &srv->listens[i];

        l->default_vhost = NULL;
        if (vhost_serves(srv->default_vhost, l)) {
            l->default_vhost = srv->default_vhost;
            continue;
        }
        for (k = 0; k < srv->vhost_count && !l->default_vhost; k++) {
            if (vhost_serves(srv->vhosts[k], l)) {
                l->default_vhost = srv->vhosts[k];
            }
        }
        if (!l->default_vhost) {
            mk_warn("Listen %s: no site is served on this listener: every "
                    "request there is answered 421", l->text);
        }
    }
}

static int vhost_error_pages(struct mk_server *srv, struct mk_vhost *vh,
                             const struct mk_conf_list *list,
                             char *err, size_t errlen)
{
    size_t i;

    if (list->count == 0) {
        return 0;
    }
    vh->error_pages = mk_mem_zalloc(list->count * sizeof(*vh->error_pages));
    if (!vh->error_pages) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < list->count; i++) {
        struct mk_error_page *ep = &vh->error_pages[i];
        char *end;
        const char *path;
        long code = strtol(list->values[i], &end, 10);
        struct stat st;
        int fd;

        path = end;
        while (*path == ' ' || *path == '\t') {
            path++;
        }
        if (code < 400 || code > 599 || end == list->values[i] ||
            (*end != ' ' && *end != '\t') || *path != '/') {
            snprintf(err, errlen, "%s:%d: ErrorPage: expected \"CODE /path\" "
                     "with CODE 400..599", list->files[i], list->lines[i]);
            return -1;
        }
        fd = openat(vh->root.fd, path + 1, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            st.st_size > MK_ERROR_PAGE_MAX) {
            snprintf(err, errlen, "%s:%d: ErrorPage: cannot use %s%s (missing, "
                     "not a file, or larger than 64 KiB)", list->files[i],
                     list->lines[i], vh->root.path, path);
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
        ep->body = mk_mem_alloc((size_t) st.st_size + 1);
        if (!ep->body || read(fd, ep->body, (size_t) st.st_size) != st.st_size) {
            close(fd);
            snprintf(err, errlen, "%s:%d: ErrorPage: cannot read %s",
                     list->files[i], list->lines[i], path);
            return -1;
        }
        close(fd);
        ep->status = (int) code;
        ep->len = (size_t) st.st_size;
        ep->type = mk_mime_lookup(srv->static_conf.mime, path);
        vh->error_page_count = i + 1;
    }
    return 0;
}

static int vhost_location_add(struct mk_server *srv, struct mk_vhost *vh,
                              const struct mk_rconf_section *s,
                              char *err, size_t errlen)
{
    struct location_conf lc = { 0 };
    struct mk_location *grown, *loc;
    int idx;
    size_t i;

    if (s->arg[0] != '/') {
        snprintf(err, errlen, "%s:%d: [LOCATION]: expected [LOCATION /prefix]",
                 s->file, s->line);
        return -1;
    }
    if (mk_conf_apply(s, location_keys, &lc, err, errlen) < 0) {
        return -1;
    }
    idx = handler_index(srv, lc.handler, s->file, s->line, err, errlen);
    mk_conf_release(location_keys, &lc);
    if (idx == -2) {
        return -1;
    }
    grown = mk_mem_realloc(vh->locations,
                           (vh->location_count + 1) * sizeof(*grown));
    if (!grown) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    vh->locations = grown;
    /* keep longest prefix first so the first match is the best */
    for (i = 0; i < vh->location_count; i++) {
        if (strlen(s->arg) > vh->locations[i].len) {
            break;
        }
    }
    memmove(&vh->locations[i + 1], &vh->locations[i],
            (vh->location_count - i) * sizeof(*grown));
    loc = &vh->locations[i];
    loc->prefix = mk_mem_strdup(s->arg);
    loc->len = strlen(s->arg);
    loc->handler = idx;
    vh->location_count++;
    return loc->prefix ? 0 : -1;
}

static int vhost_plugin_section(struct mk_server *srv, struct mk_vhost *vh,
                                const struct mk_rconf_section *s,
                                char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < srv->plugin_count; i++) {
        const struct mk_plugin *p = srv->plugins[i].p;
        void **grown, *vconf;

        if (strcasecmp(p->name, s->name) != 0) {
            continue;
        }
        if (!p->vhost_keys) {
            snprintf(err, errlen, "%s:%d: plugin %s has no per-site settings",
                     s->file, s->line, p->name);
            return -1;
        }
        vconf = mk_mem_zalloc(p->vhost_conf_size ? p->vhost_conf_size : 1);
        grown = mk_mem_realloc(vh->plugin_confs[i],
                               (vh->plugin_conf_counts[i] + 1) * sizeof(void *));
        if (!vconf || !grown) {
            mk_mem_free(vconf);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        vh->plugin_confs[i] = grown;
        grown[vh->plugin_conf_counts[i]++] = vconf;
        if (mk_conf_apply_inherit(s, p->vhost_keys, vconf, p->conf_keys,
                                  srv->plugins[i].conf, err, errlen) < 0) {
            return -1;
        }
        if (p->vhost_check && p->vhost_check(vconf, vh, err, errlen) < 0) {
            return -1;
        }
        return 0;
    }
    return 1;                       /* not a plugin section */
}

/* Builds one vhost from one site file. */
static int vhost_load(struct mk_server *srv, struct mk_rconf *rc,
                      char *err, size_t errlen)
{
    struct mk_rconf_section *host = NULL, *s;
    struct host_conf hc = { 0 };
    struct mk_vhost *vh, **grown;
    struct mk_list *it;
    char real[PATH_MAX], path[PATH_MAX];
    int ret = -1;

    mk_list_foreach(it, &rc->sections) {
        s = mk_list_entry(it, struct mk_rconf_section, _head);
        if (strcasecmp(s->name, "HOST") == 0) {
            if (host) {
                snprintf(err, errlen, "%s:%d: a site file holds one [HOST] "
                         "(first at line %d)", s->file, s->line, host->line);
                return -1;
            }
            host = s;
        }
    }
    if (!host) {
        snprintf(err, errlen, "%s: no [HOST] section", rc->path);
        return -1;
    }
    vh = mk_mem_zalloc(sizeof(*vh));
    grown = mk_mem_realloc(srv->vhosts, (srv->vhost_count + 1) * sizeof(*grown));
    if (!vh || !grown) {
        mk_mem_free(vh);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->vhosts = grown;
    srv->vhosts[srv->vhost_count++] = vh;
    vh->srv = srv;
    vh->file = rc->path;
    vh->root.fd = -1;
    vh->plugin_confs = mk_mem_zalloc((srv->plugin_count + 1) * sizeof(void **));
    vh->plugin_conf_counts = mk_mem_zalloc((srv->plugin_count + 1) *
                                           sizeof(size_t));
    if (!vh->plugin_confs || !vh->plugin_conf_counts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mk_conf_apply(host, host_keys, &hc, err, errlen) < 0) {
        return -1;
    }
    if (vhost_names(srv, vh, hc.server_name ? hc.server_name : "", host,
                    err, errlen) < 0 ||
        vhost_listens(srv, vh, &hc.listen, err, errlen) < 0) {
        goto out;
    }
    vh->is_default = hc.is_default;
    vh->root.allow_symlinks_outside = hc.allow_symlinks;
    vh->handler = handler_index(srv, hc.handler, host->file, host->line,
                                err, errlen);
    if (vh->handler == -2) {
        goto out;
    }
    if (!hc.docroot) {
        if (vh->handler == -1) {
            snprintf(err, errlen, "%s:%d: [HOST]: DocumentRoot is required "
                     "for the static handler", host->file, host->line);
            goto out;
        }
    }
    else {
        mk_server_path(srv, hc.docroot, path, sizeof(path));
        if (!realpath(path, real)) {
            snprintf(err, errlen, "%s:%d: DocumentRoot: %s: %s", host->file,
                     host->line, path, strerror(errno));
            goto out;
        }
        if (mk_static_root_open(&vh->root, real, err, errlen) < 0) {
            goto out;
        }
        vh->root.allow_symlinks_outside = hc.allow_symlinks;
        if (vhost_error_pages(srv, vh, &hc.error_pages, err, errlen) < 0) {
            goto out;
        }
    }
    mk_list_foreach(it, &rc->sections) {
        s = mk_list_entry(it, struct mk_rconf_section, _head);
        if (s == host) {
            continue;
        }
        if (strcasecmp(s->name, "LOCATION") == 0) {
            if (vhost_location_add(srv, vh, s, err, errlen) < 0) {
                goto out;
            }
            continue;
        }
        ret = vhost_plugin_section(srv, vh, s, err, errlen);
        if (ret < 0) {
            goto out;
        }
        if (ret > 0) {
            char reason[256];
            if (mk_plugin_find(s->name, srv->conf.plugin_dir, reason,
                               sizeof(reason))) {
                snprintf(err, errlen, "%s:%d: section [%s] belongs to plugin "
                         "%s, which is not loaded (see plugins.load)",
                         s->file, s->line, s->name, s->name);
            }
            else {
                snprintf(err, errlen, "%s:%d: unknown section [%s]: not HOST, "
                         "LOCATION or a loaded plugin", s->file, s->line,
                         s->name);
            }
            ret = -1;
            goto out;
        }
    }
    ret = 0;

out:
    mk_conf_release(host_keys, &hc);
    return ret;
}

/* Keeps a parsed file for the generation's lifetime: lists and entries
 * point at its interned file names. */
int mk_server_keep_rconf(struct mk_server *srv, struct mk_rconf *rc)
{
    struct mk_rconf **grown = mk_mem_realloc(srv->rconfs,
                                             (srv->rconf_count + 1) *
                                             sizeof(*grown));
    if (!grown) {
        mk_rconf_destroy(rc);
        return -1;
    }
    srv->rconfs = grown;
    srv->rconfs[srv->rconf_count++] = rc;
    return 0;
}

int mk_vhosts_load(struct mk_server *srv, char *err, size_t errlen)
{
    char pattern[PATH_MAX];
    struct mk_rconf *rc;
    glob_t g;
    size_t i;
    int ret = -1;

    srv->vhost_names = mk_hash_create(16, MK_HASH_NOCASE);
    if (!srv->vhost_names) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(pattern, sizeof(pattern), "%s/sites/*.conf", srv->conf_dir);
    if (glob(pattern, 0, NULL, &g) != 0) {
        snprintf(err, errlen, "no site in %s/sites/: at least one file with a "
                 "[HOST] section is required", srv->conf_dir);
        return -1;
    }
    for (i = 0; i < g.gl_pathc; i++) {
        rc = mk_rconf_open(g.gl_pathv[i], err, errlen);
        if (!rc || mk_server_keep_rconf(srv, rc) < 0) {
            if (rc == NULL && err[0] == '\0') {
                snprintf(err, errlen, "out of memory");
            }
            goto out;
        }
        if (vhost_load(srv, rc, err, errlen) < 0) {
            goto out;
        }
    }
    for (i = 0; i < srv->vhost_count; i++) {
        struct mk_vhost *vh = srv->vhosts[i];
        if (!vh->is_default) {
            continue;
        }
        if (srv->default_vhost) {
            snprintf(err, errlen, "%s: Default: %s is the default site already",
                     vh->file, srv->default_vhost->file);
            goto out;
        }
        srv->default_vhost = vh;
    }
    if (!srv->default_vhost) {
        srv->default_vhost = srv->vhosts[0];   /* files are read sorted */
    }
    vhost_listen_defaults(srv);
    ret = 0;

out:
    globfree(&g);
    return ret;
}

void mk_vhost_destroy(struct mk_server *srv, struct mk_vhost *vh)
{
    size_t i, k;

    for (i = 0; i < vh->name_count; i++) {
        mk_mem_free(vh->names[i]);
    }
    mk_mem_free(vh->names);
    mk_mem_free(vh->on_listen);
    for (i = 0; i < vh->location_count; i++) {
        mk_mem_free(vh->locations[i].prefix);
    }
    mk_mem_free(vh->locations);
    for (i = 0; i < vh->error_page_count; i++) {
        mk_mem_free(vh->error_pages[i].body);
    }
    mk_mem_free(vh->error_pages);
    for (i = 0; vh->plugin_confs && i < srv->plugin_count; i++) {
        const struct mk_plugin *p = srv->plugins[i].p;
        for (k = 0; k < vh->plugin_conf_counts[i]; k++) {
            if (p->vhost_release) {
                p->vhost_release(vh->plugin_confs[i][k]);
            }
            mk_conf_release(p->vhost_keys, vh->plugin_confs[i][k]);
            mk_mem_free(vh->plugin_confs[i][k]);
        }
        mk_mem_free(vh->plugin_confs[i]);
    }
    mk_mem_free(vh->plugin_confs);
    mk_mem_free(vh->plugin_conf_counts);
    mk_static_root_close(&vh->root);
    mk_mem_free(vh);
}

struct mk_vhost *mk_server_vhost_match(struct mk_server *srv,
                                       const char *host, size_t len)
{
    struct mk_vhost *vh = mk_hash_get(srv->vhost_names, host, len);
    size_t i, k;

    /* wildcard names: "*.example.com" matches "a.example.com" */
    for (i = 0; !vh && i < srv->vhost_count; i++) {
        struct mk_vhost *cand = srv->vhosts[i];
        for (k = 0; k < cand->name_count; k++) {
            const char *n = cand->names[k];
            size_t nl = mk_vhost_host_len(n);
            if (n[0] == '*' && n[1] == '.' && len > nl - 1 &&
                mk_str_case_eq(host + len - (nl - 1), nl - 1, n + 1, nl - 1)) {
                return cand;
            }
        }
    }
    return vh;
}

struct mk_vhost *mk_server_vhost_lookup(struct mk_server *srv,
                                        const struct mk_listen *l,
                                        const char *host, size_t len)
{
    struct mk_vhost *vh = host ? mk_server_vhost_match(srv, host, len) : NULL;

    if (!vh) {
        return l->default_vhost;
    }
    return vhost_serves(vh, l) ? vh : NULL;
}

const struct mk_location *mk_vhost_location(const struct mk_vhost *vh,
                                            const char *path)
{
    size_t i;

    for (i = 0; i < vh->location_count; i++) {
        const struct mk_location *loc = &vh->locations[i];
        if (strncmp(path, loc->prefix, loc->len) == 0 &&
            (loc->prefix[loc->len - 1] == '/' || path[loc->len] == '\0' ||
             path[loc->len] == '/')) {
            return loc;
        }
    }
    return NULL;
}
