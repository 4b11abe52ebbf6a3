/*
 * The protocol registry: the protocol handlers of a generation, the
 * core's HTTP/1.1 and those the loaded plugins declare, by name (what a
 * Listen line names) and by ALPN id (what a TLS client picks). Built with
 * the generation and read-only afterwards, so a worker or a network layer
 * looks a protocol up without a lock. A handful of protocols: linear scans.
 */
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_server.h"

static const struct mk_proto_decl proto_http1 = {
    "http/1.1", "http/1.1", 0, &mk_http_proto, NULL
};

static const char *proto_owner(const struct mk_proto_entry *e)
{
    return e->plugin ? e->plugin->p->name : "the core";
}

/* The same name or ALPN id twice: which protocol would a listener or a
 * client get? Refused, naming both declarers. */
static int proto_check_unique(const struct mk_server *srv,
                              const struct mk_proto_entry *e,
                              char *err, size_t errlen)
{
    const struct mk_proto_decl *d = e->decl;
    size_t k;

    if (!d->proto || !d->proto->on_read) {
        snprintf(err, errlen, "plugin %s: protocol \"%s\" has no handler",
                 proto_owner(e), d->name);
        return -1;
    }
    for (k = 0; k < srv->proto_count; k++) {
        const struct mk_proto_entry *o = &srv->protos[k];
        if (strcmp(o->decl->name, d->name) == 0) {
            snprintf(err, errlen, "protocol \"%s\" is registered by %s and "
                     "by %s: load one of them", d->name, proto_owner(o),
                     proto_owner(e));
            return -1;
        }
        if (d->alpn && o->decl->alpn && strcmp(o->decl->alpn, d->alpn) == 0) {
            snprintf(err, errlen, "ALPN id \"%s\" is registered by %s (%s) "
                     "and by %s (%s): load one of them", d->alpn,
                     proto_owner(o), o->decl->name, proto_owner(e), d->name);
            return -1;
        }
    }
    return 0;
}

static int proto_add(struct mk_server *srv, const struct mk_proto_decl *d,
                     const struct mk_plugin_inst *pi, char *err, size_t errlen)
{
    struct mk_proto_entry e = { d, pi };

    if (proto_check_unique(srv, &e, err, errlen) < 0) {
        return -1;
    }
    srv->protos[srv->proto_count++] = e;
    return 0;
}

/* Highest preference first; a stable insertion sort keeps load order
 * (the core first) among equals. */
static int proto_alpn_build(struct mk_server *srv)
{
    const struct mk_proto_decl **by_pref;
    size_t i, k, n = 0;

    srv->alpn_ids = mk_mem_zalloc((srv->proto_count + 1) * sizeof(char *));
    by_pref = mk_mem_zalloc(srv->proto_count * sizeof(*by_pref));
    if (!srv->alpn_ids || !by_pref) {
        mk_mem_free(by_pref);
        return -1;
    }
    for (i = 0; i < srv->proto_count; i++) {
        const struct mk_proto_decl *d = srv->protos[i].decl;
        if (!d->alpn) {
            continue;
        }
        for (k = n; k > 0 && by_pref[k - 1]->preference < d->preference; k--) {
            by_pref[k] = by_pref[k - 1];
        }
        by_pref[k] = d;
        n++;
    }
    for (i = 0; i < n; i++) {
        srv->alpn_ids[i] = by_pref[i]->alpn;
    }
    mk_mem_free(by_pref);
    return 0;
}

static int proto_listeners(struct mk_server *srv, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < srv->listen_count; i++) {
        struct mk_listen *l = &srv->listens[i];
        const struct mk_proto_decl *d = mk_proto_find(srv, l->proto_name);

        if (!d) {
            snprintf(err, errlen, "Listen %s: protocol \"%s\" is not "
                     "registered by the core or a loaded plugin", l->text,
                     l->proto_name);
            return -1;
        }
        l->proto = d->proto;
    }
    return 0;
}

int mk_proto_registry_build(struct mk_server *srv, char *err, size_t errlen)
{
    const struct mk_proto_decl *d;
    size_t i, n = 1;

    for (i = 0; i < srv->plugin_count; i++) {
        for (d = srv->plugins[i].p->protos; d && d->name; d++) {
            n++;
        }
    }
    srv->protos = mk_mem_zalloc(n * sizeof(*srv->protos));
    if (!srv->protos) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (proto_add(srv, &proto_http1, NULL, err, errlen) < 0) {
        return -1;
    }
    for (i = 0; i < srv->plugin_count; i++) {
        for (d = srv->plugins[i].p->protos; d && d->name; d++) {
            if (proto_add(srv, d, &srv->plugins[i], err, errlen) < 0) {
                return -1;
            }
        }
    }
    if (proto_alpn_build(srv) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return proto_listeners(srv, err, errlen);
}

void mk_proto_registry_release(struct mk_server *srv)
{
    mk_mem_free(srv->protos);
    mk_mem_free(srv->alpn_ids);
    srv->protos = NULL;
    srv->alpn_ids = NULL;
    srv->proto_count = 0;
}

const struct mk_proto_decl *mk_proto_find(const struct mk_server *srv,
                                          const char *name)
{
    size_t i;

    for (i = 0; i < srv->proto_count; i++) {
        if (strcmp(srv->protos[i].decl->name, name) == 0) {
            return srv->protos[i].decl;
        }
    }
    return NULL;
}

const char *const *mk_server_alpn_ids(const struct mk_server *srv)
{
    return srv->alpn_ids;
}

int mk_conn_select_proto(struct mk_conn *c, const char *alpn, size_t len)
{
    const struct mk_server *srv = c->srv;
    size_t i;

    for (i = 0; i < srv->proto_count; i++) {
        const struct mk_proto_decl *d = srv->protos[i].decl;
        if (!d->alpn || strlen(d->alpn) != len ||
            memcmp(d->alpn, alpn, len) != 0) {
            continue;
        }
        if (c->proto == d->proto) {
            return 0;
        }
        if (c->proto && c->proto->on_close) {
            c->proto->on_close(c);
        }
        mk_conn_set_proto(c, d->proto, NULL);
        return 0;
    }
    return -1;
}
