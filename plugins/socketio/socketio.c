/*
 * socketio: the plugin's settings and stages. Stage 20 claims a site's
 * Path (default /socket.io/) for this plugin's content handler, whatever
 * handler the site's rules chose; that handler (the zmq gateway) still
 * gives each Engine.IO session its node (mk_session_open_backend). Stage
 * 30 sorts the request into a handshake, a poll or a websocket transport;
 * stages 40 and 50 let go of what a request or a connection held.
 * Design: socketio.h; operators: docs/socketio.md.
 */
#include <string.h>
#include <strings.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/socketio/socketio.h"

const char *const sio_close_reason_name[SIO_CLOSE_REASONS] = {
    [SIO_CLOSE_CLIENT] = "client close",
    [SIO_CLOSE_TRANSPORT] = "transport close",
    [SIO_CLOSE_PING_TIMEOUT] = "ping timeout",
    [SIO_CLOSE_CONNECT_TIMEOUT] = "no namespace joined within ConnectTimeout",
    [SIO_CLOSE_PARSE_ERROR] = "parse error",
    [SIO_CLOSE_OVERLAP] = "two polls at once",
    [SIO_CLOSE_QUEUE_FULL] = "MaxBufferedPackets reached",
    [SIO_CLOSE_NODE_END] = "the node ended it",
    [SIO_CLOSE_NODE_GONE] = "no node, or the node failed",
    [SIO_CLOSE_SHUTDOWN] = "server shutdown",
};

/* ---- Configuration -------------------------------------------------------- */

static const struct mk_conf_key sio_keys[] = {
    MK_CONF_STR("Path", struct sio_conf, path, "/socket.io/"),
    MK_CONF_TIME("PingInterval", struct sio_conf, ping_interval, "25s", 100,
                 3600 * 1000ULL),
    MK_CONF_TIME("PingTimeout", struct sio_conf, ping_timeout, "20s", 100,
                 3600 * 1000ULL),
    MK_CONF_SIZE("MaxPayload", struct sio_conf, max_payload, "1000000", 64,
                 1ULL << 30),
    MK_CONF_TIME("ConnectTimeout", struct sio_conf, connect_timeout, "45s",
                 100, 3600 * 1000ULL),
    MK_CONF_ENUM("NodeConnect", struct sio_conf, node_connect, "auto",
                 "auto|node"),
    MK_CONF_STR("Transports", struct sio_conf, transports,
                "polling websocket"),
    MK_CONF_BOOL("AllowUpgrades", struct sio_conf, allow_upgrades, "on"),
    MK_CONF_LIST("Namespace", struct sio_conf, namespaces),
    MK_CONF_LIST("CorsOrigin", struct sio_conf, cors_origins),
    MK_CONF_BOOL("CorsCredentials", struct sio_conf, cors_credentials, "off"),
    MK_CONF_INT("MaxBufferedPackets", struct sio_conf, max_buffered, "1000",
                1, 10000000),
    MK_CONF_END
};

/* A site's [SOCKETIO]: the same keys; absent ones take the global's. */
static const struct mk_conf_key sio_vhost_keys[] = {
    MK_CONF_STR("Path", struct sio_conf, path, NULL),
    MK_CONF_INHERIT("PingInterval", struct sio_conf, ping_interval),
    MK_CONF_INHERIT("PingTimeout", struct sio_conf, ping_timeout),
    MK_CONF_INHERIT("MaxPayload", struct sio_conf, max_payload),
    MK_CONF_INHERIT("ConnectTimeout", struct sio_conf, connect_timeout),
    MK_CONF_INHERIT("NodeConnect", struct sio_conf, node_connect),
    MK_CONF_STR("Transports", struct sio_conf, transports, NULL),
    MK_CONF_INHERIT("AllowUpgrades", struct sio_conf, allow_upgrades),
    MK_CONF_LIST("Namespace", struct sio_conf, namespaces),
    MK_CONF_LIST("CorsOrigin", struct sio_conf, cors_origins),
    MK_CONF_INHERIT("CorsCredentials", struct sio_conf, cors_credentials),
    MK_CONF_INHERIT("MaxBufferedPackets", struct sio_conf, max_buffered),
    MK_CONF_END
};

static int sio_list_has(const struct mk_conf_list *l, const char *v)
{
    size_t i;

    for (i = 0; l && i < l->count; i++) {
        if (strcmp(l->values[i], v) == 0) {
            return 1;
        }
    }
    return 0;
}

static int sio_resolve(struct sio_conf *c, struct sio_conf *g,
                       const char *where, char *err, size_t errlen)
{
    struct sio_settings *s = &c->set;
    const char *path = c->path ? c->path : g->path;
    const char *tr = c->transports ? c->transports : g->transports;
    const struct mk_conf_list *nsps = c->namespaces.count ? &c->namespaces
                                                          : &g->namespaces;
    const struct mk_conf_list *cors = c->cors_origins.count
                                      ? &c->cors_origins : &g->cors_origins;
    char word[32];
    size_t i, n;

    c->global = g;
    if (!path || path[0] != '/' || strlen(path) > 200 ||
        strpbrk(path, "?# \t") != NULL) {
        return mk_str_fail(err, errlen, "%s: Path must be an absolute path "
                           "without query (\"/socket.io/\")", where);
    }
    s->path = path;
    s->path_len = strlen(path);
    s->ping_interval = c->ping_interval;
    s->ping_timeout = c->ping_timeout;
    s->max_payload = c->max_payload;
    s->connect_timeout = c->connect_timeout;
    s->node_connect = c->node_connect;
    s->allow_upgrades = c->allow_upgrades;
    s->cors_credentials = c->cors_credentials;
    s->max_buffered = c->max_buffered;
    s->polling = s->websocket = 0;
    while (*tr) {
        n = strcspn(tr, " \t,");
        if (n >= sizeof(word)) {
            n = sizeof(word) - 1;
        }
        memcpy(word, tr, n);
        word[n] = '\0';
        if (strcmp(word, "polling") == 0) {
            s->polling = 1;
        }
        else if (strcmp(word, "websocket") == 0) {
            s->websocket = 1;
        }
        else if (n) {
            return mk_str_fail(err, errlen, "%s: Transports: \"%s\" is "
                               "neither polling nor websocket", where, word);
        }
        tr += strcspn(tr, " \t,");
        tr += strspn(tr, " \t,");
    }
    if (!s->polling && !s->websocket) {
        return mk_str_fail(err, errlen, "%s: Transports names none", where);
    }
    for (i = 0; i < nsps->count; i++) {
        const char *v = nsps->values[i];
        if (strcmp(v, "*") != 0 &&
            (v[0] != '/' || strlen(v) >= SIO_NSP_MAX || strchr(v, ','))) {
            return mk_str_fail(err, errlen, "%s: Namespace \"%s\": a name "
                               "starts with \"/\", has no \",\" and is under "
                               "%d bytes; \"*\" allows any", where, v,
                               SIO_NSP_MAX);
        }
    }
    s->namespaces = nsps->count ? nsps : NULL;
    s->any_namespace = sio_list_has(nsps, "*");
    s->cors_origins = cors->count ? cors : NULL;
    s->cors_any = sio_list_has(cors, "*");
    if (s->cors_any && s->cors_credentials) {
        mk_warn("%s: CorsOrigin * with CorsCredentials on: each request's "
                "own Origin is allowed (browsers refuse \"*\" with "
                "credentials)", where);
    }
    return 0;
}

static int sio_conf_check(void *conf, struct mk_server *srv, char *err,
                          size_t errlen)
{
    struct sio_conf *g = conf;
    struct mk_vhost *vh = NULL;
    size_t count;
    void **confs;
    char where[300];

    if (sio_resolve(g, g, "[SOCKETIO]", err, errlen) < 0) {
        return -1;
    }
    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        confs = mk_vhost_plugin_confs(vh, &mk_plugin_socketio, &count);
        if (count > 1) {
            return mk_str_fail(err, errlen, "site %s: [SOCKETIO] given %zu "
                               "times (once per site)", mk_vhost_name(vh),
                               count);
        }
        mk_str_printf(where, sizeof(where), "site %s: [SOCKETIO]",
                      mk_vhost_name(vh));
        if (count && sio_resolve(confs[0], g, where, err, errlen) < 0) {
            return -1;
        }
    }
    return 0;
}

static struct sio_conf *sio_conf_of(struct sio_conf *g, struct mk_vhost *vh)
{
    size_t count;
    void **confs = mk_vhost_plugin_confs(vh, &mk_plugin_socketio, &count);

    return count ? confs[0] : g;
}

static const struct sio_settings *sio_settings_of(struct sio_conf *conf,
                                                  struct mk_vhost *vh)
{
    return &sio_conf_of(conf, vh)->set;
}

/* ---- Worker --------------------------------------------------------------- */

static _Thread_local struct sio_worker sio_self;

struct sio_worker *sio_worker(void)
{
    return &sio_self;
}

uint64_t sio_now(void)
{
    return mk_event_loop_now(sio_self.loop);
}


static int sio_worker_init(void *conf, struct mk_worker *w)
{
    struct sio_conf *g = conf;

    atomic_fetch_add(&g->workers, 1);
    sio_self.loop = mk_worker_loop(w);
    sio_self.timers = mk_event_loop_timers(sio_self.loop);
    mk_list_init(&sio_self.sessions);
    mk_buf_init(&sio_self.from);
    mk_buf_init(&sio_self.frame);
    mk_buf_init(&sio_self.reply);
    mk_buf_init(&sio_self.text);
    return 0;
}

static void sio_worker_exit(void *conf, struct mk_worker *w)
{
    struct sio_conf *g = conf;
    unsigned long long n = 0;
    int i;

    (void) w;
    eio_session_worker_exit();
    sio_session_worker_exit();
    mk_buf_release(&sio_self.from);
    mk_buf_release(&sio_self.frame);
    mk_buf_release(&sio_self.reply);
    mk_buf_release(&sio_self.text);
    /* the last worker out: every session is closed and counted by now
     * (worker 0 could leave before another closes its sessions) */
    if (atomic_fetch_sub(&g->workers, 1) != 1) {
        return;
    }
    for (i = 0; i < SIO_CLOSE_REASONS; i++) {
        n += atomic_load(&g->closed[i]);
    }
    mk_info("socketio: %llu sessions opened, %llu closed (client close %llu, "
            "transport close %llu, ping timeout %llu, connect timeout %llu, "
            "parse error %llu, overlap %llu, queue full %llu, node end %llu, "
            "node gone %llu, shutdown %llu)",
            (unsigned long long) atomic_load(&g->opened), n,
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_CLIENT]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_TRANSPORT]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_PING_TIMEOUT]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_CONNECT_TIMEOUT]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_PARSE_ERROR]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_OVERLAP]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_QUEUE_FULL]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_NODE_END]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_NODE_GONE]),
            (unsigned long long) atomic_load(&g->closed[SIO_CLOSE_SHUTDOWN]));
}

/* ---- Helpers --------------------------------------------------------------- */

/* base64url without padding: what Engine.IO sids look like (engine.io
 * uses base64id); 16 bytes make 22 characters. */
void sio_sid_text(const uint8_t *sid, char out[SIO_SID_TEXT_LEN + 1])
{
    char b[32];
    long n = mk_base64_encode(sid, SIO_SID_LEN, b, sizeof(b));
    long i;

    for (i = 0; i < n && i < SIO_SID_TEXT_LEN; i++) {
        out[i] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
    }
    out[SIO_SID_TEXT_LEN] = '\0';
}

int sio_sid_parse(const char *text, size_t len, uint8_t *sid)
{
    char b[SIO_SID_TEXT_LEN + 2];
    char raw[18];
    size_t i;

    if (len != SIO_SID_TEXT_LEN) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '-') {
            ch = '+';
        }
        else if (ch == '_') {
            ch = '/';
        }
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9'))) {
            return -1;
        }
        b[i] = ch;
    }
    b[len] = '=';
    b[len + 1] = '=';
    if (mk_base64_decode(b, len + 2, raw, sizeof(raw)) != SIO_SID_LEN) {
        return -1;
    }
    memcpy(sid, raw, SIO_SID_LEN);
    return 0;
}

int sio_send(const uint8_t *to, const char *type, const void *body,
             size_t len, uint64_t share)
{
    struct mk_session *s = mk_session_find_local(to);

    if (s) {
        return mk_session_deliver(s, type, strlen(type), body, len, share);
    }
    return mk_session_post(to, type, strlen(type), body, len, share);
}

int sio_send_from(const uint8_t *to, const char *type, const uint8_t *from,
                  const char *site, const void *body, size_t len)
{
    struct mk_buf *b = &sio_self.from;
    size_t sl = strlen(site);
    uint8_t l;

    if (sl > 255) {
        sl = 255;
    }
    l = (uint8_t) sl;
    b->len = 0;
    if (mk_buf_append(b, from, SIO_SID_LEN) < 0 ||
        mk_buf_append(b, &l, 1) < 0 || mk_buf_append(b, site, sl) < 0 ||
        (len && mk_buf_append(b, body, len) < 0)) {
        return -1;
    }
    return sio_send(to, type, b->data, b->len, 0);
}

/* CORS as the socket.io server's `cors` option: an allowed Origin is
 * echoed (so credentials can go with it), with Vary: Origin. */
static void sio_cors(struct mk_stream *r, const struct sio_settings *set)
{
    struct mk_ptr origin = mk_request_header(r, "Origin");
    size_t i;
    int ok = 0;

    if (!set->cors_origins || !origin.data) {
        return;
    }
    for (i = 0; !ok && i < set->cors_origins->count; i++) {
        const char *v = set->cors_origins->values[i];
        ok = set->cors_any || (strlen(v) == origin.len &&
                               strncasecmp(v, origin.data, origin.len) == 0);
    }
    if (!ok) {
        return;
    }
    mk_response_header_n(r, "Access-Control-Allow-Origin", origin.data,
                         origin.len);
    mk_response_header(r, "Vary", "Origin");
    if (set->cors_credentials) {
        mk_response_header(r, "Access-Control-Allow-Credentials", "true");
    }
}

int sio_http_answer(struct mk_stream *r, const struct sio_settings *set,
                    const char *ctype, const void *body, size_t len)
{
    mk_response_status(r, 200);
    mk_response_header(r, "Content-Type", ctype);
    mk_response_header(r, "Cache-Control", "no-store");
    sio_cors(r, set);
    mk_response_content_length(r, (int64_t) len);
    if (mk_response_send_head(r) < 0 ||
        (len && mk_response_write(r, body, len, MK_WRITE_COPY) < 0)) {
        return -1;
    }
    return mk_response_end(r);
}

int sio_http_error(struct mk_stream *r, const struct sio_settings *set,
                   enum eio_error code)
{
    static const char *const msg[] = {
        [EIO_ERR_TRANSPORT_UNKNOWN] = "Transport unknown",
        [EIO_ERR_SESSION_UNKNOWN] = "Session ID unknown",
        [EIO_ERR_BAD_HANDSHAKE_METHOD] = "Bad handshake method",
        [EIO_ERR_BAD_REQUEST] = "Bad request",
        [EIO_ERR_FORBIDDEN] = "Forbidden",
        [EIO_ERR_UNSUPPORTED_VERSION] = "Unsupported protocol version",
    };
    char body[96];
    size_t n;

    if ((unsigned) code > EIO_ERR_UNSUPPORTED_VERSION) {
        code = EIO_ERR_BAD_REQUEST;
    }
    n = mk_str_printf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}",
                      (int) code, msg[code]);
    mk_response_status(r, 400);
    mk_response_header(r, "Content-Type", "application/json");
    sio_cors(r, set);
    mk_response_content_length(r, (int64_t) n);
    if (mk_response_send_head(r) < 0 ||
        mk_response_write(r, body, n, MK_WRITE_COPY) < 0) {
        return -1;
    }
    return mk_response_end(r);
}

/* ---- Stages ------------------------------------------------------------------ */

/* Stage 20: the site's Path is ours (the bare path too: clients told to
 * use "/socket.io" ask for it with and without the slash). */
static int sio_on_request(void *conf, struct mk_stream *r)
{
    const struct sio_settings *set = sio_settings_of(conf,
                                                     mk_request_vhost(r));
    struct mk_ptr path = mk_request_path(r);
    size_t pl = set->path_len;

    if (path.len == pl && memcmp(path.data, set->path, pl) == 0) {
        mk_request_claim(r, &mk_plugin_socketio);
    }
    else if (pl > 1 && set->path[pl - 1] == '/' && path.len == pl - 1 &&
             memcmp(path.data, set->path, pl - 1) == 0) {
        mk_request_claim(r, &mk_plugin_socketio);
    }
    return MK_STAGE_NEXT;
}

/* The value of one query parameter (raw: Engine.IO's are plain tokens). */
static struct mk_ptr sio_query(struct mk_ptr q, const char *name)
{
    size_t nl = strlen(name), i = 0, end;
    struct mk_ptr v = { NULL, 0 };

    while (i < q.len) {
        end = i;
        while (end < q.len && q.data[end] != '&') {
            end++;
        }
        if (end - i > nl && q.data[i + nl] == '=' &&
            memcmp(q.data + i, name, nl) == 0) {
            v.data = q.data + i + nl + 1;
            v.len = end - i - nl - 1;
            return v;
        }
        if (end - i == nl && memcmp(q.data + i, name, nl) == 0) {
            v.data = q.data + end;
            return v;                    /* present, empty */
        }
        i = end + 1;
    }
    return v;
}

static int sio_done(int ret)
{
    return ret < 0 ? MK_STAGE_CLOSE : MK_STAGE_HANDLED;
}

static int sio_preflight(struct mk_stream *r, const struct sio_settings *set)
{
    struct mk_ptr hdrs = mk_request_header(r, "Access-Control-Request-Headers");

    mk_response_status(r, 204);
    sio_cors(r, set);
    if (set->cors_origins) {
        mk_response_header(r, "Access-Control-Allow-Methods",
                           "GET, POST, OPTIONS");
        if (hdrs.data) {
            mk_response_header_n(r, "Access-Control-Allow-Headers", hdrs.data,
                                 hdrs.len);
        }
        mk_response_header(r, "Access-Control-Max-Age", "86400");
    }
    mk_response_content_length(r, 0);
    return mk_response_send_head(r) < 0 ? -1 : mk_response_end(r);
}

/* The Engine.IO handshake over polling: a new session here; its OPEN
 * packet answers once a node has the request. */
static int sio_handshake(struct sio_conf *conf, const struct sio_settings *set,
                         struct mk_stream *r)
{
    int status;
    struct eio_session *e = eio_session_create(conf->global, set, r, NULL,
                                               &status);

    if (!e) {
        if (status == 503) {
            mk_response_header(r, "Retry-After", "1");
        }
        return mk_response_error(r, status);
    }
    return 0;
}

static int sio_on_content(void *conf, struct mk_stream *r)
{
    struct sio_conf *g = conf;
    struct sio_conf *sc = sio_conf_of(g, mk_request_vhost(r));
    const struct sio_settings *set = &sc->set;
    struct mk_ptr q = mk_request_query(r);
    struct mk_ptr eio = sio_query(q, "EIO"), tr = sio_query(q, "transport");
    struct mk_ptr sidp = sio_query(q, "sid");
    enum mk_http_method m = mk_request_method(r);
    uint8_t sid[SIO_SID_LEN];
    int polling, websocket;

    if (m == MK_HTTP_METHOD_OPTIONS) {
        return sio_done(sio_preflight(r, set));
    }
    if (eio.len != 1 || eio.data[0] != '4') {
        return sio_done(sio_http_error(r, set, EIO_ERR_UNSUPPORTED_VERSION));
    }
    polling = tr.len == 7 && memcmp(tr.data, "polling", 7) == 0;
    websocket = tr.len == 9 && memcmp(tr.data, "websocket", 9) == 0;
    if ((!polling || !set->polling) && (!websocket || !set->websocket)) {
        return sio_done(sio_http_error(r, set, EIO_ERR_TRANSPORT_UNKNOWN));
    }
    if (websocket && !mk_request_is_upgrade(r)) {
        return sio_done(sio_http_error(r, set, EIO_ERR_BAD_REQUEST));
    }
    if (sidp.data && sio_sid_parse(sidp.data, sidp.len, sid) < 0) {
        return sio_done(sio_http_error(r, set, EIO_ERR_SESSION_UNKNOWN));
    }
    if (websocket) {
        return sio_done(eio_ws_request(g, set, r, sidp.data ? sid : NULL));
    }
    if (!sidp.data) {
        if (m != MK_HTTP_METHOD_GET) {
            return sio_done(sio_http_error(r, set,
                                           EIO_ERR_BAD_HANDSHAKE_METHOD));
        }
        return sio_done(sio_handshake(sc, set, r));
    }
    if (m != MK_HTTP_METHOD_GET && m != MK_HTTP_METHOD_POST) {
        return sio_done(sio_http_error(r, set, EIO_ERR_BAD_REQUEST));
    }
    return sio_done(eio_poll_request(g, set, r, sid));
}

static int sio_on_body(void *conf, struct mk_stream *r, const char *data,
                       size_t len)
{
    (void) conf;
    return eio_poll_body(r, data, len);
}

static void sio_on_done(void *conf, struct mk_stream *r)
{
    (void) conf;
    eio_session_handshake_done(r);
    eio_poll_done(r);
    eio_ws_done(r);
}

static void sio_on_close(void *conf, struct mk_conn *c)
{
    (void) conf;
    eio_ws_close(c);
}

static const struct mk_msg_type sio_msg_types[] = {
    { "socket.io/connect", sio_on_node_message },
    { "socket.io/connect_error", sio_on_node_message },
    { "socket.io/event", sio_on_node_message },
    { "socket.io/ack", sio_on_node_message },
    { "socket.io/msg", sio_on_node_message },
    { "socket.io/json", sio_on_node_message },
    { "socket.io/end", sio_on_node_message },
    { NULL, NULL }
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_socketio = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "socketio",
    .description     = "socket.io (Engine.IO v4, Socket.IO v5) for nodes",
    .conf_keys       = sio_keys,
    .conf_size       = sizeof(struct sio_conf),
    .conf_check      = sio_conf_check,
    .vhost_keys      = sio_vhost_keys,
    .vhost_conf_size = sizeof(struct sio_conf),
    .worker_init     = sio_worker_init,
    .worker_exit     = sio_worker_exit,
    .on_request      = sio_on_request,
    .on_content      = sio_on_content,
    .on_body         = sio_on_body,
    .on_done         = sio_on_done,
    .on_close        = sio_on_close,
    .msg_types       = sio_msg_types,
    /* tremolo -b: BlastBeat served socket.io on every vhost, with no
     * option for it; its nodes' socket.io/event|msg|json|end still work
     * (for today's clients, on the default namespace) */
    .bb_ini          = &(const struct mk_bb_ini){
        .flags = MK_BB_WITH_HANDLER },
};
