/*
 * zmq: the ZeroMQ gateway to application nodes (BlastBeat's protocol).
 * This file holds the configuration and binds the stages; the gateway
 * thread is zmq_gateway.c, the worker side zmq_session.c. Design:
 * docs/zmq-gateway.md.
 */
#include <limits.h>
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

/* NodeGuard: a boolean, or `native` (ZMQ_GUARD_NATIVE): the guard then
 * speaks ZMTP to the nodes itself instead of relaying them to libzmq. */
static int zmq_node_guard_parse(const char *v, void *field, char *err,
                                size_t errlen)
{
    if (strcmp(v, "native") == 0) {
        *(int *) field = ZMQ_GUARD_NATIVE;
        return 0;
    }
    return mk_conf_parse_bool(v, (int *) field, err, errlen);
}

static const struct mk_conf_key zmq_keys[] = {
    MK_CONF_LIST("Bind", struct zmq_conf, bind),
    MK_CONF_TIME("PingFreq", struct zmq_conf, ping_freq, "3s", 10, 0),
    MK_CONF_TIME("NodeTimeout", struct zmq_conf, node_timeout, "60s", 10, 0),
    MK_CONF_INT("MaxHops", struct zmq_conf, max_hops, "10", 0, ZMQ_MAX_HOPS),
    MK_CONF_SIZE("MaxFrameSize", struct zmq_conf, max_frame, "16M", 1024, 0),
    MK_CONF_INT("MaxNodes", struct zmq_conf, max_nodes, "1024", 1, 1000000),
    MK_CONF_INT("Sessions", struct zmq_conf, sessions, "0", 0, LLONG_MAX),
    MK_CONF_TIME("StatsFreq", struct zmq_conf, stats_freq, "0", 0, 0),
    MK_CONF_CUSTOM("NodeGuard", struct zmq_conf, node_guard, "on",
                   zmq_node_guard_parse, 0),
    MK_CONF_INT("NodeConnections", struct zmq_conf, node_conns, "4096", 1,
                1000000),
    MK_CONF_SIZE("NodeQueueLimit", struct zmq_conf, node_queue, "64M",
                 64 * 1024, 0),
    MK_CONF_INT("Groups", struct zmq_conf, groups, "65536", 1, LLONG_MAX),
    MK_CONF_INT("GroupsPerSession", struct zmq_conf, session_groups, "1024",
                1, LLONG_MAX),
    MK_CONF_BOOL("Curve", struct zmq_conf, curve, "off"),
    MK_CONF_STR("CurveSecretKey", struct zmq_conf, curve_secret, ""),
    MK_CONF_STR("CurveKeys", struct zmq_conf, curve_keys, ""),
    MK_CONF_END
};

/* A site's WriteQueueLimit overrides [SERVER]'s, whose minimum it keeps;
 * absent, the field stays 0 and the connection keeps the server's. */
static int zmq_site_write_queue(const char *v, void *field, char *err,
                                size_t errlen)
{
    uint64_t bytes;

    if (mk_conf_parse_size(v, &bytes, err, errlen) < 0) {
        return -1;
    }
    if (bytes < ZMQ_WRITE_QUEUE_MIN) {
        return mk_str_fail(err, errlen, "%s is below the minimum 64K", v);
    }
    *(uint64_t *) field = bytes;
    return 0;
}

/* Sessions caps one site (the global one caps all of them together), so
 * it does not inherit; the other numbers default to [ZMQ] in zmq.conf. */
static const struct mk_conf_key zmq_vhost_keys[] = {
    MK_CONF_LIST("Node", struct zmq_vconf, node),
    MK_CONF_LIST("Bind", struct zmq_vconf, bind),
    MK_CONF_INT("Sessions", struct zmq_vconf, sessions, "0", 0, LLONG_MAX),
    MK_CONF_INHERIT("NodeTimeout", struct zmq_vconf, node_timeout),
    MK_CONF_INHERIT("MaxHops", struct zmq_vconf, max_hops),
    MK_CONF_CUSTOM("WriteQueueLimit", struct zmq_vconf, write_queue, NULL,
                   zmq_site_write_queue, 0),
    MK_CONF_INHERIT("PingFreq", struct zmq_vconf, ping_freq),
    MK_CONF_INHERIT("Groups", struct zmq_vconf, groups),
    MK_CONF_INHERIT("GroupsPerSession", struct zmq_vconf, session_groups),
    MK_CONF_END
};

/* Adds an endpoint to the ROUTER list unless it is there already (sites
 * sharing an endpoint share its ROUTER); returns its index or -1. */
static int zmq_endpoint(struct zmq_conf *zc, const struct mk_conf_list *l,
                        size_t i, char *err, size_t errlen)
{
    int r;

    for (r = 0; r < zc->nendpoints; r++) {
        if (strcmp(zc->endpoints[r], l->values[i]) == 0) {
            return r;
        }
    }
    if (zc->nendpoints == ZMQ_MAX_ROUTERS) {
        return mk_str_fail(err, errlen, "%s:%d: Bind: at most %d endpoints in "
                           "all", l->files[i], l->lines[i], ZMQ_MAX_ROUTERS);
    }
    zc->endpoints[zc->nendpoints] = l->values[i];
    zc->endpoint_files[zc->nendpoints] = l->files[i];
    zc->endpoint_lines[zc->nendpoints] = l->lines[i];
    return zc->nendpoints++;
}

/* A site's nodes need a ROUTER to connect to (spec 1.4: BlastBeat crashed
 * on such a config). */
static int zmq_site_check(struct zmq_conf *zc, struct zmq_vconf *vc,
                          const char *site, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < vc->bind.count; i++) {
        if (zmq_endpoint(zc, &vc->bind, i, err, errlen) < 0) {
            return -1;
        }
    }
    if (vc->node.count && !vc->bind.count && !zc->bind.count) {
        return mk_str_fail(err, errlen, "%s:%d: Node: site %s has no endpoint "
                           "for its nodes: add Bind to this [ZMQ] section or "
                           "to [ZMQ] in zmq.conf", vc->node.files[0],
                           vc->node.lines[0], site);
    }
    return 0;
}

/* With the node guard on, every tcp:// Bind must be one it can listen on
 * itself (zmq_guard.h); CURVE endpoints are not relayed. */
static int zmq_guard_check(const struct zmq_conf *zc, char *err,
                           size_t errlen)
{
    char why[256];
    int r;

    if (!zc->node_guard || zc->curve) {
        return 0;
    }
    for (r = 0; r < zc->nendpoints; r++) {
        if (zmq_guard_endpoint_kind(zc->endpoints[r], why, sizeof(why)) ==
            ZMQ_GUARD_REFUSED) {
            return mk_str_fail(err, errlen, "%s:%d: Bind: %s: %s (or "
                               "NodeGuard off)", zc->endpoint_files[r],
                               zc->endpoint_lines[r], zc->endpoints[r], why);
        }
    }
    return 0;
}

static int zmq_conf_check(void *conf, struct mk_server *srv, char *err,
                          size_t errlen)
{
    struct zmq_conf *zc = conf;
    struct mk_vhost *vh = NULL;
    size_t i, k, count;
    void **confs;

    zc->nendpoints = 0;
    for (i = 0; i < zc->bind.count; i++) {
        if (zmq_endpoint(zc, &zc->bind, i, err, errlen) < 0) {
            return -1;
        }
    }
    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        confs = mk_vhost_plugin_confs(vh, &mk_plugin_zmq, &count);
        for (k = 0; k < count; k++) {
            if (zmq_site_check(zc, confs[k], mk_vhost_name(vh), err,
                               errlen) < 0) {
                return -1;
            }
        }
    }
    if (zc->nendpoints == 0) {
        return mk_str_fail(err, errlen, "[ZMQ]: Bind is required (the "
                           "endpoint nodes connect to, e.g. "
                           "tcp://127.0.0.1:5000), in zmq.conf or in a "
                           "site's [ZMQ]");
    }
    if (zmq_guard_check(zc, err, errlen) < 0) {
        return -1;
    }
    if (zc->curve) {
        char path[4096];

        if (strlen(zc->curve_secret) != 40) {
            return mk_str_fail(err, errlen, "[ZMQ]: Curve on needs "
                               "CurveSecretKey, the server's 40-character "
                               "Z85 secret key");
        }
        if (!zc->curve_keys[0]) {
            return mk_str_fail(err, errlen, "[ZMQ]: Curve on needs CurveKeys, "
                               "the file of allowed node public keys");
        }
        mk_server_path(srv, zc->curve_keys, path, sizeof(path));
        mk_mem_free(zc->curve_keys);
        zc->curve_keys = mk_mem_strdup(path);
        if (!zc->curve_keys) {
            return mk_str_fail(err, errlen, "out of memory");
        }
    }
    return 0;
}

static void zmq_vhost_release(void *vconf)
{
    struct zmq_vconf *vc = vconf;

    mk_mem_free(vc->patterns);
}

static int zmq_router_of(const struct zmq_conf *zc, const char *endpoint)
{
    int r;

    for (r = 0; strcmp(zc->endpoints[r], endpoint) != 0; r++) {
    }
    return r;
}

/* Registers every site's node patterns: on the site's own ROUTERs if it
 * has some (BlastBeat's vhost `zmq`), else on every global one. It is one
 * node per (endpoint, identity). */
static int zmq_sites(struct zmq_gw *gw, struct zmq_conf *zc,
                     struct mk_server *srv)
{
    struct mk_vhost *vh = NULL;
    size_t i, k, b, count, nrouters;
    void **confs;
    long idx;

    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        confs = mk_vhost_plugin_confs(vh, &mk_plugin_zmq, &count);
        for (k = 0; k < count; k++) {
            struct zmq_vconf *vc = confs[k];
            const struct mk_conf_list *binds = vc->bind.count ? &vc->bind
                                                              : &zc->bind;
            nrouters = binds->count;
            vc->patterns = mk_mem_alloc((vc->node.count * nrouters + 1) *
                                        sizeof(size_t));
            if (!vc->patterns) {
                return -1;
            }
            for (i = 0; i < vc->node.count; i++) {
                for (b = 0; b < nrouters; b++) {
                    idx = zmq_nodes_add_pattern(&gw->nodes,
                                                zmq_router_of(zc, binds->values[b]),
                                                vc->node.values[i],
                                                vc->ping_freq);
                    if (idx < 0) {
                        return -1;
                    }
                    vc->patterns[vc->site.count++] = (size_t) idx;
                }
            }
            vc->site.patterns = vc->patterns;
        }
    }
    return 0;
}

/* The gateway of the running generation (master thread only): a reload
 * takes its endpoints over. */
static struct zmq_gw *zmq_running;

static int zmq_plugin_init(void *conf, struct mk_server *srv)
{
    struct zmq_conf *zc = conf;
    char err[512];

    zc->gw = mk_mem_zalloc(sizeof(*zc->gw));
    if (!zc->gw || zmq_nodes_init(&zc->gw->nodes, (size_t) zc->max_nodes) < 0) {
        mk_err("zmq: out of memory");
        return -1;
    }
    if (zmq_sites(zc->gw, zc, srv) < 0) {
        mk_err("zmq: out of memory");
        return -1;
    }
    if (zmq_running) {
        zmq_gw_release_endpoints(zmq_running);
    }
    if (zmq_gw_start(zc->gw, zc, srv, err, sizeof(err)) < 0) {
        mk_err("%s", err);
        zmq_gw_stop(zc->gw);
        mk_mem_free(zc->gw);
        zc->gw = NULL;
        return -1;
    }
    zmq_running = zc->gw;
    return 0;
}

static void zmq_plugin_exit(void *conf, struct mk_server *srv)
{
    struct zmq_conf *zc = conf;

    if (zc->gw) {
        if (zmq_running == zc->gw) {
            zmq_running = NULL;
        }
        zmq_gw_stop(zc->gw);
        mk_mem_free(zc->gw);
        zc->gw = NULL;
    }
}

static int zmq_plugin_worker_init(void *conf, struct mk_worker *w)
{
    struct zmq_conf *zc = conf;

    return zmq_worker_start(zc->gw, w);
}

static void zmq_plugin_worker_exit(void *conf, struct mk_worker *w)
{
    zmq_worker_stop(((struct zmq_conf *) conf)->gw, w);
}

static int zmq_plugin_content(void *conf, struct mk_stream *r)
{
    size_t count;
    void **confs = mk_vhost_plugin_confs(mk_request_vhost(r), &mk_plugin_zmq,
                                         &count);

    return zmq_session_request(conf, r, count ? confs[0] : NULL);
}

static int zmq_plugin_open_backend(void *conf, struct mk_session *ms,
                                   struct mk_stream *r,
                                   const char *const *vars)
{
    size_t count;
    void **confs = mk_vhost_plugin_confs(mk_request_vhost(r), &mk_plugin_zmq,
                                         &count);

    return zmq_session_open(conf, count ? confs[0] : NULL, ms, r, vars);
}

static int zmq_plugin_body(void *conf, struct mk_stream *r, const char *data,
                    size_t len)
{
    return zmq_session_body(conf, r, data, len);
}

static void zmq_plugin_done(void *conf, struct mk_stream *r)
{
    zmq_session_done(r);
}

static void zmq_plugin_close(void *conf, struct mk_conn *c)
{
    zmq_session_close(conf, c);
}

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_zmq = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "zmq",
    .description     = "ZeroMQ gateway to application nodes",
    .conf_keys       = zmq_keys,
    .conf_size       = sizeof(struct zmq_conf),
    .conf_check      = zmq_conf_check,
    .vhost_keys      = zmq_vhost_keys,
    .vhost_conf_size = sizeof(struct zmq_vconf),
    .vhost_release   = zmq_vhost_release,
    .init            = zmq_plugin_init,
    .exit            = zmq_plugin_exit,
    .worker_init     = zmq_plugin_worker_init,
    .worker_exit     = zmq_plugin_worker_exit,
    .on_content      = zmq_plugin_content,
    .on_body         = zmq_plugin_body,
    .on_done         = zmq_plugin_done,
    .on_close        = zmq_plugin_close,
    .open_backend    = zmq_plugin_open_backend,
    .bb_ini          = &zmq_ini,
};
