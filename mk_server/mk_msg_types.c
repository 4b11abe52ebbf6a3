/*
 * The message-type registry: which plugin handles each typed message a
 * backend transport (the zmq gateway) brings from an application node
 * (`websocket`, `socket.io/event`, `cache`, ...). Plugins declare their
 * types as data in their descriptor; the table is built with the
 * configuration generation and read-only afterwards, so any thread may
 * look a type up without a lock. A handful of types: a linear scan. A
 * message of a type no plugin registered goes to the session's owner.
 */
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_server.h"
#include "mk_server/mk_session.h"

int mk_msg_types_build(struct mk_server *srv, char *err, size_t errlen)
{
    const struct mk_msg_type *t;
    size_t i, k, n = 0;

    for (i = 0; i < srv->plugin_count; i++) {
        for (t = srv->plugins[i].p->msg_types; t && t->name; t++) {
            n++;
        }
    }
    srv->msg_types = n ? mk_mem_zalloc(n * sizeof(*srv->msg_types)) : NULL;
    if (n && !srv->msg_types) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < srv->plugin_count; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        for (t = pi->p->msg_types; t && t->name; t++) {
            for (k = 0; k < srv->msg_type_count; k++) {
                if (strcmp(srv->msg_types[k].type->name, t->name) == 0) {
                    snprintf(err, errlen, "plugins %s and %s both handle "
                             "node messages of type \"%s\": load one of them",
                             srv->msg_types[k].plugin->p->name, pi->p->name,
                             t->name);
                    return -1;
                }
            }
            srv->msg_types[srv->msg_type_count].type = t;
            srv->msg_types[srv->msg_type_count++].plugin = pi;
        }
    }
    return 0;
}

static const struct mk_msg_entry *msg_type_find(const struct mk_server *srv,
                                                const char *type, size_t len)
{
    size_t i;

    for (i = 0; i < srv->msg_type_count; i++) {
        const char *name = srv->msg_types[i].type->name;
        if (strlen(name) == len && memcmp(name, type, len) == 0) {
            return &srv->msg_types[i];
        }
    }
    return NULL;
}

int mk_server_handles_msg(const struct mk_server *srv, const char *type,
                          size_t len)
{
    return msg_type_find(srv, type, len) != NULL;
}

int mk_session_deliver(struct mk_session *s, const char *type, size_t tlen,
                       const void *body, size_t len, uint64_t share)
{
    const struct mk_msg_entry *e = msg_type_find(s->srv, type, tlen);

    if (e) {
        e->type->on_message(e->plugin->conf, s, e->type->name, body, len,
                            share);
        return 0;
    }
    if (s->owner && s->owner->on_message) {
        s->owner->on_message(s->owner_data, s, type, tlen, body, len, share);
        return 0;
    }
    return -1;
}
