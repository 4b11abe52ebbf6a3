/*
 * A stream's hooks: per-stream accounting (a limits plugin counts the
 * streams of a site and may refuse one) and the stream's output filters,
 * set up when the stream is taken and released when it is freed. The
 * accounting runs once the head and the site are known, before stage 20,
 * so that a refusal is an early answer like any other: the body is
 * dropped and the connection goes on.
 */
#include "mk_core/mk_log.h"
#include "mk_server/mk_conn.h"

void mk_stream_hooks_init(struct mk_stream *r)
{
    r->hooks.filters = NULL;
    r->hooks.admitted = 0;
}

/* Plugins [0, upto) admitted the stream: each hears it closed. */
static void stream_close_upto(struct mk_stream *r, size_t upto)
{
    struct mk_server *srv = r->conn->srv;
    size_t i;

    for (i = 0; i < upto; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        if (pi->p->on_stream_open && pi->p->on_stream_close) {
            pi->p->on_stream_close(pi->conf, r);
        }
    }
}

int mk_stream_hooks_open(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    struct mk_server *srv = c->srv;
    size_t i;
    int status;

    for (i = 0; i < srv->plugin_count; i++) {
        struct mk_plugin_inst *pi = &srv->plugins[i];
        if (!pi->p->on_stream_open) {
            continue;
        }
        status = pi->p->on_stream_open(pi->conf, r);
        if (status == 0) {
            continue;
        }
        stream_close_upto(r, i);
        if (status < 400 || status > 599) {
            mk_warn("[fd %d] plugin %s refused a stream with status %d: "
                    "answering 503", c->ev.fd, pi->p->name, status);
            status = 503;
        }
        mk_debug("[fd %d] stream refused by plugin %s: %d", c->ev.fd,
                 pi->p->name, status);
        if (mk_response_error(r, status) < 0) {
            mk_conn_fail(c);
        }
        return -1;
    }
    r->hooks.admitted = 1;
    return 0;
}

void mk_stream_hooks_close(struct mk_stream *r)
{
    mk_filter_chain_destroy(&r->hooks.filters);
    if (r->hooks.admitted) {
        r->hooks.admitted = 0;
        stream_close_upto(r, r->conn->srv->plugin_count);
    }
}
