/*
 * Finding plugins: built into the binary (the table CMake generates) or a
 * shared object `tremolo-<name>.so` in PluginDir or at an explicit path.
 * Every descriptor is checked against MK_PLUGIN_ABI before use. Shared
 * objects stay loaded until exit: an old generation's workers may still
 * run their code while a reload drains.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_server/mk_server.h"

/* The binary's built-in plugins (a table CMake generates into the
 * executable only, so the library and its tests do not depend on it). */
static const struct mk_plugin *const *plugins_builtin;

void mk_plugin_set_builtins(const struct mk_plugin *const *table)
{
    plugins_builtin = table;
}

static const struct mk_plugin *plugin_check(const struct mk_plugin *p,
                                            const char *where,
                                            char *err, size_t errlen)
{
    if (p->abi != MK_PLUGIN_ABI) {
        snprintf(err, errlen, "%s: plugin ABI %d, this server needs %d "
                 "(rebuild the plugin)", where, p->abi, MK_PLUGIN_ABI);
        return NULL;
    }
    if (!p->name || !p->name[0]) {
        snprintf(err, errlen, "%s: plugin has no name", where);
        return NULL;
    }
    if ((p->flags & MK_PLUGIN_NETWORK) && (!p->net_io || !p->net_io->read ||
                                           !p->net_io->writev)) {
        snprintf(err, errlen, "%s: network plugin without read/writev", where);
        return NULL;
    }
    return p;
}

static const struct mk_plugin *plugin_dlopen(const char *path, const char *name,
                                             char *err, size_t errlen)
{
    char sym[128];
    const struct mk_plugin *p;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
        return NULL;
    }
    snprintf(sym, sizeof(sym), "mk_plugin_%s", name);
    p = dlsym(h, sym);
    if (!p) {
        snprintf(err, errlen, "%s does not export %s", path, sym);
        dlclose(h);
        return NULL;
    }
    return plugin_check(p, path, err, errlen);
}

const struct mk_plugin *mk_plugin_find(const char *name_or_path,
                                       const char *plugin_dir,
                                       char *err, size_t errlen)
{
    const struct mk_plugin *const *b;
    char path[4096], name[64];
    const char *base, *dash, *dot;
    size_t n;

    if (strchr(name_or_path, '/')) {
        /* /usr/lib/tremolo/tremolo-logger.so -> "logger" */
        base = strrchr(name_or_path, '/') + 1;
        dash = strncmp(base, "tremolo-", 8) == 0 ? base + 8 : base;
        dot = strchr(dash, '.');
        n = dot ? (size_t) (dot - dash) : strlen(dash);
        if (n == 0 || n >= sizeof(name)) {
            snprintf(err, errlen, "%s: cannot tell the plugin name from the "
                     "file name (expected tremolo-NAME.so)", name_or_path);
            return NULL;
        }
        memcpy(name, dash, n);
        name[n] = '\0';
        return plugin_dlopen(name_or_path, name, err, errlen);
    }
    for (b = plugins_builtin; b && *b; b++) {
        if (strcasecmp((*b)->name, name_or_path) == 0) {
            return plugin_check(*b, (*b)->name, err, errlen);
        }
    }
    snprintf(path, sizeof(path), "%s/tremolo-%s.so", plugin_dir, name_or_path);
    if (access(path, R_OK) == 0) {
        snprintf(name, sizeof(name), "%s", name_or_path);
        return plugin_dlopen(path, name, err, errlen);
    }
    snprintf(err, errlen, "no plugin \"%s\": not built in and no %s",
             name_or_path, path);
    return NULL;
}

/* scandir filter: tremolo-NAME.so */
static int plugin_so_filter(const struct dirent *de)
{
    size_t n = strlen(de->d_name);

    return n > 11 && n - 11 < 64 && strncmp(de->d_name, "tremolo-", 8) == 0 &&
           strcmp(de->d_name + n - 3, ".so") == 0;
}

static int plugin_is_builtin(const char *name)
{
    const struct mk_plugin *const *b;

    for (b = plugins_builtin; b && *b; b++) {
        if (strcasecmp((*b)->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

int mk_plugin_foreach(const char *plugin_dir,
                      int (*fn)(const struct mk_plugin *p, void *data),
                      void *data)
{
    const struct mk_plugin *const *b;
    const struct mk_plugin *p;
    struct dirent **de = NULL;
    char name[64], why[256];
    int i, n, ret = 0;

    for (b = plugins_builtin; b && *b && ret == 0; b++) {
        if (plugin_check(*b, (*b)->name, why, sizeof(why))) {
            ret = fn(*b, data);
        }
    }
    /* sorted, so that the walk does not depend on the directory's order */
    n = ret == 0 ? scandir(plugin_dir, &de, plugin_so_filter, alphasort) : 0;
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%.*s", (int) strlen(de[i]->d_name) - 11,
                 de[i]->d_name + 8);
        if (ret == 0 && !plugin_is_builtin(name) &&
            (p = mk_plugin_find(name, plugin_dir, why, sizeof(why)))) {
            ret = fn(p, data);
        }
        free(de[i]);                    /* scandir's memory is libc's */
    }
    free(de);
    return ret;
}

int mk_plugins_init(struct mk_server *srv, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < srv->plugin_count; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        if (pi->p->init && pi->p->init(pi->conf, srv) < 0) {
            snprintf(err, errlen, "plugin %s failed to start (see the log "
                     "above)", pi->p->name);
            while (i-- > 0) {
                pi = &srv->plugins[i];
                if (pi->p->exit) {
                    pi->p->exit(pi->conf, srv);
                }
            }
            return -1;
        }
    }
    return 0;
}

void mk_plugins_exit(struct mk_server *srv)
{
    size_t i;

    for (i = srv->plugin_count; i > 0; i--) {
        struct mk_plugin_inst *pi = &srv->plugins[i - 1];
        if (pi->p->exit) {
            pi->p->exit(pi->conf, srv);
        }
    }
}

void mk_plugins_reopen(struct mk_server *srv)
{
    size_t i;

    for (i = 0; i < srv->plugin_count; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        if (pi->p->on_reopen) {
            pi->p->on_reopen(pi->conf, srv);
        }
    }
}
