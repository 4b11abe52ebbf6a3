/*
 * Building a configuration generation: the main file's [SERVER] section,
 * plugins.load and each plugin's section, the sites, and the derived
 * tables (stage lists, parser limits, static-file settings). Every error
 * is one line `file:line: Key: reason`; nothing half-applied survives.
 */
#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_server.h"
#include "mk_server/mk_conn.h"

#define MK_MAX_WORKERS 1024

static const struct mk_conf_key server_keys[] = {
    MK_CONF_LIST("Listen", struct mk_server_conf, listen),
    MK_CONF_INT("Workers", struct mk_server_conf, workers, "0", 0, MK_MAX_WORKERS),
    MK_CONF_ENUM("Scheduler", struct mk_server_conf, scheduler, "reuseport",
                 "reuseport|fair"),
    MK_CONF_STR("User", struct mk_server_conf, user, ""),
    MK_CONF_STR("Group", struct mk_server_conf, group, ""),
    MK_CONF_STR("PidFile", struct mk_server_conf, pid_file, ""),
    MK_CONF_STR("ErrorLog", struct mk_server_conf, error_log, "-"),
    MK_CONF_ENUM("LogLevel", struct mk_server_conf, log_level_index, "info",
                 "error|warn|info|debug"),
    MK_CONF_BOOL("HideVersion", struct mk_server_conf, hide_version, "off"),
    MK_CONF_BOOL("KeepAlive", struct mk_server_conf, keepalive, "on"),
    MK_CONF_TIME("KeepAliveTimeout", struct mk_server_conf, keepalive_timeout,
                 "5s", 1, 0),
    MK_CONF_INT("KeepAliveMaxRequests", struct mk_server_conf, keepalive_max,
                "1000", 0, LLONG_MAX),
    MK_CONF_TIME("HeaderTimeout", struct mk_server_conf, header_timeout,
                 "10s", 1, 0),
    MK_CONF_TIME("BodyTimeout", struct mk_server_conf, body_timeout, "30s", 1, 0),
    MK_CONF_TIME("SendTimeout", struct mk_server_conf, send_timeout, "60s", 1, 0),
    MK_CONF_SIZE("MaxRequestLine", struct mk_server_conf, max_request_line,
                 "8K", 256, 1024 * 1024),
    MK_CONF_SIZE("MaxRequestHead", struct mk_server_conf, max_request_head,
                 "32K", 1024, 1024 * 1024),
    MK_CONF_INT("MaxHeaders", struct mk_server_conf, max_headers, "100", 1,
                MK_HTTP_MAX_HEADERS_CAP),
    MK_CONF_SIZE("MaxRequestBody", struct mk_server_conf, max_request_body,
                 "16M", 0, 0),
    MK_CONF_SIZE("MaxDiscardBody", struct mk_server_conf, max_discard_body,
                 "4M", 0, 0),
    MK_CONF_SIZE("WriteQueueLimit", struct mk_server_conf, write_queue_limit,
                 "8M", 64 * 1024, 0),
    MK_CONF_TIME("DrainTimeout", struct mk_server_conf, drain_timeout, "10s", 0, 0),
    MK_CONF_TIME("ReloadDrainTimeout", struct mk_server_conf,
                 reload_drain_timeout, "0", 0, 0),
    MK_CONF_STR("MimeTypes", struct mk_server_conf, mime_types, "mime.types"),
    MK_CONF_STR("IndexFiles", struct mk_server_conf, index_files,
                "index.html index.htm"),
    MK_CONF_STR("PluginDir", struct mk_server_conf, plugin_dir,
                TREMOLO_PLUGIN_DIR),
    MK_CONF_END
};

struct plugins_load_conf {
    struct mk_conf_list load;
};

static const struct mk_conf_key plugins_load_keys[] = {
    MK_CONF_LIST("Load", struct plugins_load_conf, load),
    MK_CONF_END
};

const char *mk_server_path(const struct mk_server *srv, const char *path,
                           char *out, size_t outlen)
{
    if (path[0] == '/') {
        snprintf(out, outlen, "%s", path);
    }
    else {
        snprintf(out, outlen, "%s/%s", srv->conf_dir, path);
    }
    return out;
}

/* ---- [SERVER] ----------------------------------------------------------- */

static int server_listens(struct mk_server *srv, const struct mk_overrides *ov,
                          char *err, size_t errlen)
{
    const struct mk_conf_list *list = &srv->conf.listen;
    size_t n = ov && ov->n_listen ? ov->n_listen : list->count;
    char reason[256];
    size_t i;

    if (n == 0) {
        snprintf(err, errlen, "%s: [SERVER]: Listen is required (or give -l)",
                 srv->conf_path);
        return -1;
    }
    srv->listens = mk_mem_zalloc(n * sizeof(*srv->listens));
    if (!srv->listens) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const char *v = ov && ov->n_listen ? ov->listen[i] : list->values[i];
        if (mk_listen_parse(v, &srv->listens[i], reason, sizeof(reason)) < 0) {
            if (ov && ov->n_listen) {
                snprintf(err, errlen, "-l: %s", reason);
            }
            else {
                snprintf(err, errlen, "%s:%d: Listen: %s", list->files[i],
                         list->lines[i], reason);
            }
            return -1;
        }
        srv->listen_count = i + 1;
    }
    return 0;
}

static int server_section(struct mk_server *srv, struct mk_rconf *main_rc,
                          const struct mk_overrides *ov, char *err,
                          size_t errlen)
{
    struct mk_rconf_section *s = mk_rconf_section_next(main_rc, "SERVER", NULL);
    long cpus;

    if (!s) {
        snprintf(err, errlen, "%s: no [SERVER] section", srv->conf_path);
        return -1;
    }
    if (mk_rconf_section_next(main_rc, "SERVER", s)) {
        snprintf(err, errlen, "%s: [SERVER] given twice", srv->conf_path);
        return -1;
    }
    if (mk_conf_apply(s, server_keys, &srv->conf, err, errlen) < 0) {
        return -1;
    }
    if (ov && ov->workers >= 0) {
        srv->conf.workers = ov->workers;
    }
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    srv->worker_count = srv->conf.workers > 0 ? (int) srv->conf.workers
                                              : (int) (cpus > 0 ? cpus : 1);
    if (srv->conf.scheduler == MK_SCHED_REUSEPORT &&
        !mk_listener_reuseport_available()) {
        mk_warn("SO_REUSEPORT is not available: using Scheduler fair");
        srv->conf.scheduler = MK_SCHED_FAIR;
    }
    mk_http_limits_default(&srv->limits);
    srv->limits.max_request_line = (uint32_t) srv->conf.max_request_line;
    srv->limits.max_head = (uint32_t) srv->conf.max_request_head;
    srv->limits.max_headers = (uint32_t) srv->conf.max_headers;
    if (srv->limits.max_request_line > srv->limits.max_head) {
        snprintf(err, errlen, "%s:%d: MaxRequestLine is larger than "
                 "MaxRequestHead", s->file, s->line);
        return -1;
    }
    return server_listens(srv, ov, err, errlen);
}

/* ---- Plugins -------------------------------------------------------------- */

static int plugin_conf_load(struct mk_server *srv, struct mk_plugin_inst *pi,
                            struct mk_rconf *main_rc, char *err, size_t errlen)
{
    const struct mk_plugin *p = pi->p;
    struct mk_rconf_section *s = NULL;
    struct mk_rconf *rc;
    char path[PATH_MAX];

    if (!p->conf_keys) {
        return 0;
    }
    pi->conf = mk_mem_zalloc(p->conf_size ? p->conf_size : 1);
    if (!pi->conf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s.conf", srv->conf_dir, p->name);
    if (access(path, F_OK) == 0) {
        rc = mk_rconf_open(path, err, errlen);
        if (!rc || mk_server_keep_rconf(srv, rc) < 0) {
            return -1;
        }
        s = mk_rconf_section_next(rc, p->name, NULL);
        if (!s) {
            snprintf(err, errlen, "%s: no [%s] section", path, p->name);
            return -1;
        }
    }
    else {
        s = mk_rconf_section_next(main_rc, p->name, NULL);
    }
    return mk_conf_apply(s, p->conf_keys, pi->conf, err, errlen);
}

static int plugins_load(struct mk_server *srv, struct mk_rconf *main_rc,
                        char *err, size_t errlen)
{
    struct plugins_load_conf pl = { 0 };
    struct mk_rconf_section *s = NULL;
    struct mk_rconf *rc = NULL;
    char path[PATH_MAX];
    size_t i, k;
    int ret = -1;

    snprintf(path, sizeof(path), "%s/plugins.load", srv->conf_dir);
    if (access(path, F_OK) == 0) {
        rc = mk_rconf_open(path, err, errlen);
        if (!rc || mk_server_keep_rconf(srv, rc) < 0) {
            return -1;
        }
        s = mk_rconf_section_next(rc, "PLUGINS", NULL);
    }
    if (mk_conf_apply(s, plugins_load_keys, &pl, err, errlen) < 0) {
        return -1;
    }
    srv->plugins = mk_mem_zalloc((pl.load.count + 1) * sizeof(*srv->plugins));
    if (!srv->plugins) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (i = 0; i < pl.load.count; i++) {
        char reason[512];
        const struct mk_plugin *p = mk_plugin_find(pl.load.values[i],
                                                   srv->conf.plugin_dir,
                                                   reason, sizeof(reason));
        if (!p) {
            snprintf(err, errlen, "%s:%d: Load: %s", pl.load.files[i],
                     pl.load.lines[i], reason);
            goto out;
        }
        for (k = 0; k < srv->plugin_count; k++) {
            if (srv->plugins[k].p == p) {
                snprintf(err, errlen, "%s:%d: Load: plugin %s is loaded twice",
                         pl.load.files[i], pl.load.lines[i], p->name);
                goto out;
            }
        }
        srv->plugins[srv->plugin_count].p = p;
        srv->plugins[srv->plugin_count].index = (int) srv->plugin_count;
        srv->plugin_count++;
        if (plugin_conf_load(srv, &srv->plugins[srv->plugin_count - 1],
                             main_rc, err, errlen) < 0) {
            goto out;
        }
    }
    ret = 0;

out:
    mk_conf_release(plugins_load_keys, &pl);
    return ret;
}

/* Sections of the main file must be [SERVER] or a loaded plugin's. */
static int main_sections_check(struct mk_server *srv, struct mk_rconf *rc,
                               char *err, size_t errlen)
{
    struct mk_list *it;
    char reason[256];
    size_t i;

    mk_list_foreach(it, &rc->sections) {
        struct mk_rconf_section *s = mk_list_entry(it, struct mk_rconf_section,
                                                   _head);
        int known = strcasecmp(s->name, "SERVER") == 0;

        for (i = 0; !known && i < srv->plugin_count; i++) {
            known = strcasecmp(s->name, srv->plugins[i].p->name) == 0;
        }
        if (known) {
            continue;
        }
        if (mk_plugin_find(s->name, srv->conf.plugin_dir, reason,
                           sizeof(reason))) {
            snprintf(err, errlen, "%s:%d: section [%s] belongs to plugin %s, "
                     "which is not loaded (see plugins.load)", s->file,
                     s->line, s->name, s->name);
        }
        else {
            snprintf(err, errlen, "%s:%d: unknown section [%s]", s->file,
                     s->line, s->name);
        }
        return -1;
    }
    return 0;
}

static int stage_list(struct mk_server *srv, size_t offset,
                      struct mk_plugin_inst ***out, size_t *n)
{
    size_t i;

    *out = mk_mem_zalloc((srv->plugin_count + 1) * sizeof(**out));
    if (!*out) {
        return -1;
    }
    *n = 0;
    for (i = 0; i < srv->plugin_count; i++) {
        void *fn = *(void **) ((const char *) srv->plugins[i].p + offset);
        if (fn) {
            (*out)[(*n)++] = &srv->plugins[i];
        }
    }
    return 0;
}

static int server_finish(struct mk_server *srv, char *err, size_t errlen)
{
    struct mk_conf_list idx = { 0 };
    char *words = mk_mem_strdup(srv->conf.index_files), *tok, *save = NULL;
    char *vals[16];
    char path[PATH_MAX];
    size_t i;
    int ret;

    if (!words) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (tok = strtok_r(words, " \t", &save); tok && idx.count < 16;
         tok = strtok_r(NULL, " \t", &save)) {
        vals[idx.count++] = tok;
    }
    idx.values = vals;
    mk_server_path(srv, srv->conf.mime_types, path, sizeof(path));
    ret = mk_static_conf_init(&srv->static_conf, path, &idx, err, errlen);
    mk_mem_free(words);
    if (ret < 0) {
        return -1;
    }
    for (i = 0; i < srv->listen_count; i++) {
        struct mk_listen *l = &srv->listens[i];
        size_t k;
        for (k = 0; k < srv->plugin_count && !l->io; k++) {
            const struct mk_plugin *p = srv->plugins[k].p;
            if ((p->flags & MK_PLUGIN_NETWORK) == 0) {
                continue;
            }
            if (!l->layer && (p->flags & MK_PLUGIN_NETWORK_PLAIN)) {
                l->layer = mk_mem_strdup(p->name);
                if (!l->layer) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
            }
            if (l->layer && strcmp(p->name, l->layer) == 0) {
                l->io = p->net_io;
            }
        }
        if (!l->layer) {
            snprintf(err, errlen, "Listen %s: no loaded network plugin serves "
                     "plain sockets (see plugins.load)", l->text);
            return -1;
        }
        if (!l->io) {
            snprintf(err, errlen, "Listen %s: network layer \"%s\" is not a "
                     "loaded network plugin (see plugins.load)", l->text,
                     l->layer);
            return -1;
        }
    }
    if (stage_list(srv, offsetof(struct mk_plugin, on_accept),
                   &srv->on_accept, &srv->n_accept) < 0 ||
        stage_list(srv, offsetof(struct mk_plugin, on_request),
                   &srv->on_request, &srv->n_request) < 0 ||
        stage_list(srv, offsetof(struct mk_plugin, on_done),
                   &srv->on_done, &srv->n_done) < 0 ||
        stage_list(srv, offsetof(struct mk_plugin, on_close),
                   &srv->on_close, &srv->n_close) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mk_proto_registry_build(srv, err, errlen) < 0 ||
        mk_filters_build(srv, err, errlen) < 0) {
        return -1;
    }
    return mk_msg_types_build(srv, err, errlen);
}

static int set_paths(struct mk_server *srv, const char *conf_path,
                     char *err, size_t errlen)
{
    char real[PATH_MAX], *slash;

    if (!realpath(conf_path, real)) {
        snprintf(err, errlen, "%s: %s", conf_path, strerror(errno));
        return -1;
    }
    srv->conf_path = mk_mem_strdup(real);
    slash = strrchr(real, '/');
    *slash = '\0';
    srv->conf_dir = mk_mem_strdup(real[0] ? real : "/");
    if (!srv->conf_path || !srv->conf_dir) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

struct mk_server *mk_server_load(const char *conf_path,
                                 const struct mk_overrides *ov,
                                 char *err, size_t errlen)
{
    struct mk_server *srv = mk_mem_zalloc(sizeof(*srv));
    struct mk_rconf *main_rc;
    size_t i;

    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&srv->refs, 1);
    if (set_paths(srv, conf_path, err, errlen) < 0) {
        goto error;
    }
    main_rc = mk_rconf_open(srv->conf_path, err, errlen);
    if (!main_rc || mk_server_keep_rconf(srv, main_rc) < 0) {
        goto error;
    }
    if (server_section(srv, main_rc, ov, err, errlen) < 0 ||
        plugins_load(srv, main_rc, err, errlen) < 0 ||
        main_sections_check(srv, main_rc, err, errlen) < 0 ||
        server_finish(srv, err, errlen) < 0 ||
        mk_vhosts_load(srv, err, errlen) < 0) {
        goto error;
    }
    for (i = 0; i < srv->plugin_count; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        if (pi->p->conf_check && pi->p->conf_check(pi->conf, srv, err,
                                                   errlen) < 0) {
            goto error;
        }
    }
    return srv;

error:
    mk_server_destroy(srv);
    return NULL;
}

void mk_server_destroy(struct mk_server *srv)
{
    size_t i;

    if (!srv) {
        return;
    }
    for (i = 0; i < srv->vhost_count; i++) {
        mk_vhost_destroy(srv, srv->vhosts[i]);
    }
    mk_mem_free(srv->vhosts);
    mk_hash_destroy(srv->vhost_names, NULL);
    for (i = 0; srv->plugins && i < srv->plugin_count; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        if (!pi->conf) {
            continue;
        }
        if (pi->p->conf_release) {
            pi->p->conf_release(pi->conf);
        }
        mk_conf_release(pi->p->conf_keys, pi->conf);
        mk_mem_free(pi->conf);
    }
    mk_mem_free(srv->plugins);
    mk_mem_free(srv->on_accept);
    mk_mem_free(srv->on_request);
    mk_mem_free(srv->on_done);
    mk_mem_free(srv->on_close);
    mk_mem_free(srv->msg_types);
    mk_proto_registry_release(srv);
    mk_mem_free(srv->filters);
    for (i = 0; i < srv->listen_count; i++) {
        mk_mem_free(srv->listens[i].layer);
        mk_mem_free(srv->listens[i].proto_name);
        mk_mem_free(srv->listens[i].fds);
    }
    mk_mem_free(srv->listens);
    mk_static_conf_release(&srv->static_conf);
    mk_conf_release(server_keys, &srv->conf);
    for (i = 0; i < srv->rconf_count; i++) {
        mk_rconf_destroy(srv->rconfs[i]);
    }
    mk_mem_free(srv->rconfs);
    mk_mem_free(srv->conf_path);
    mk_mem_free(srv->conf_dir);
    mk_mem_free(srv);
}

/* ---- Accessors (mk_plugin.h) ---------------------------------------------- */

void *mk_server_plugin_conf(struct mk_server *srv, const struct mk_plugin *p)
{
    size_t i;

    for (i = 0; i < srv->plugin_count; i++) {
        if (srv->plugins[i].p == p) {
            return srv->plugins[i].conf;
        }
    }
    return NULL;
}

const char *mk_server_conf_dir(const struct mk_server *srv)
{
    return srv->conf_dir;
}

int mk_server_worker_count(const struct mk_server *srv)
{
    return srv->worker_count;
}

const char *mk_vhost_name(const struct mk_vhost *vh)
{
    return vh->name_count ? vh->names[0] : "";
}

void **mk_vhost_plugin_confs(const struct mk_vhost *vh,
                             const struct mk_plugin *p, size_t *count)
{
    const struct mk_server *srv = vh->srv;
    size_t i;

    for (i = 0; i < srv->plugin_count; i++) {
        if (srv->plugins[i].p == p) {
            *count = vh->plugin_conf_counts[i];
            return vh->plugin_confs[i];
        }
    }
    *count = 0;
    return NULL;
}

struct mk_vhost *mk_server_vhost_next(struct mk_server *srv,
                                      struct mk_vhost *prev)
{
    size_t i;

    if (!prev) {
        return srv->vhost_count ? srv->vhosts[0] : NULL;
    }
    for (i = 0; i + 1 < srv->vhost_count; i++) {
        if (srv->vhosts[i] == prev) {
            return srv->vhosts[i + 1];
        }
    }
    return NULL;
}

const char *mk_vhost_document_root(const struct mk_vhost *vh)
{
    return vh->root.path;
}
