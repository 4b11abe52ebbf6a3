/*
 * websocket: the RFC 6455 opening handshake and the plugin's settings.
 *
 * Stage 20 checks an upgrade request and claims it; the request then goes
 * to its content handler (the zmq gateway), which opens the session with a
 * node and accepts: at once, or once the node has picked one of the
 * subprotocols the client offered. Accepting writes the 101 here and hands
 * the connection to ws_conn.c. A handler that knows nothing of upgrades
 * just answers, and the connection stays HTTP.
 */
#include <string.h>
#include <strings.h>

#include <mbedtls/sha1.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/websocket/ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- Configuration ------------------------------------------------------ */

static const struct mk_conf_key ws_keys[] = {
    MK_CONF_SIZE("MaxMessageSize", struct ws_conf, max_message, "1M", 1, 0),
    MK_CONF_TIME("PingInterval", struct ws_conf, ping_interval, "30s", 0,
                 24 * 3600 * 1000ULL),
    MK_CONF_TIME("IdleTimeout", struct ws_conf, idle_timeout, "2m", 0,
                 24 * 3600 * 1000ULL),
    MK_CONF_SIZE("SendQueueLimit", struct ws_conf, send_queue, "1M", 4096, 0),
    MK_CONF_TIME("CloseTimeout", struct ws_conf, close_timeout, "5s", 10,
                 3600 * 1000ULL),
    MK_CONF_ENUM("SlowReaderCode", struct ws_conf, slow_reader, "1013",
                 "1013|1008"),
    MK_CONF_ENUM("BinaryMessages", struct ws_conf, binary_type, "websocket",
                 "websocket|websocket/binary"),
    MK_CONF_BOOL("Deflate", struct ws_conf, deflate, "off"),
    MK_CONF_INT("DeflateWindowBits", struct ws_conf, window_bits, "15", 9, 15),
    MK_CONF_INT("DeflateMemLevel", struct ws_conf, mem_level, "8", 1, 9),
    MK_CONF_BOOL("DeflateContextTakeover", struct ws_conf, context_takeover,
                 "on"),
    MK_CONF_SIZE("DeflateMemory", struct ws_conf, deflate_memory, "64M", 0, 0),
    MK_CONF_ENUM("Accept", struct ws_conf, accept_node, "auto", "auto|node"),
    MK_CONF_END
};

/* A site's [WEBSOCKET]: each key parsed and bounded as above. */
static const struct mk_conf_key ws_vhost_keys[] = {
    MK_CONF_INHERIT("MaxMessageSize", struct ws_conf, max_message),
    MK_CONF_INHERIT("PingInterval", struct ws_conf, ping_interval),
    MK_CONF_INHERIT("IdleTimeout", struct ws_conf, idle_timeout),
    MK_CONF_INHERIT("SendQueueLimit", struct ws_conf, send_queue),
    MK_CONF_INHERIT("CloseTimeout", struct ws_conf, close_timeout),
    MK_CONF_INHERIT("SlowReaderCode", struct ws_conf, slow_reader),
    MK_CONF_INHERIT("BinaryMessages", struct ws_conf, binary_type),
    MK_CONF_INHERIT("Deflate", struct ws_conf, deflate),
    MK_CONF_INHERIT("DeflateWindowBits", struct ws_conf, window_bits),
    MK_CONF_INHERIT("DeflateMemLevel", struct ws_conf, mem_level),
    MK_CONF_INHERIT("DeflateContextTakeover", struct ws_conf,
                    context_takeover),
    MK_CONF_INHERIT("DeflateMemory", struct ws_conf, deflate_memory),
    MK_CONF_INHERIT("Accept", struct ws_conf, accept_node),
    MK_CONF_END
};

/* What a connection reads, from the parsed keys (global or a site's). */
static void ws_settings_resolve(struct ws_conf *wc)
{
    struct ws_settings *s = &wc->set;

    s->max_message = wc->max_message;
    s->ping_interval = wc->ping_interval;
    s->idle_timeout = wc->idle_timeout;
    s->send_queue = wc->send_queue;
    s->close_timeout = wc->close_timeout;
    s->slow_reader_code = wc->slow_reader ? 1008 : 1013;
    s->binary_type = wc->binary_type;
    s->deflate = wc->deflate;
    s->policy.window_bits = (int) wc->window_bits;
    s->policy.mem_level = (int) wc->mem_level;
    s->policy.context_takeover = wc->context_takeover;
    s->deflate_memory = wc->deflate_memory;
    s->accept_node = wc->accept_node;
}

static int ws_conf_check(void *conf, struct mk_server *srv, char *err,
                         size_t errlen)
{
    struct ws_conf *wc = conf;
    struct mk_vhost *vh = NULL;
    size_t k, count;
    void **confs;

    ws_settings_resolve(wc);
    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        confs = mk_vhost_plugin_confs(vh, &mk_plugin_websocket, &count);
        if (count > 1) {
            return mk_str_fail(err, errlen, "site %s: [WEBSOCKET] given "
                               "%zu times (once per site)", mk_vhost_name(vh),
                               count);
        }
        for (k = 0; k < count; k++) {
            ws_settings_resolve(confs[k]);
        }
    }
    return 0;
}

/* ---- The opening handshake (RFC 6455 4.2) -------------------------------- */

/* The claim, from stage 20 to the 101 (or the end of the request). */
struct ws_claim {
    const struct ws_settings *set;
    atomic_size_t *deflate_used;
    struct mk_ptr offered;             /* Sec-WebSocket-Protocol (request) */
    struct ws_deflate_params params;
    size_t reserved;                   /* zlib budget taken, 0: no deflate */
    char accept[32];                   /* base64(SHA-1(key + GUID)) */
    char ext[WS_DEFLATE_RESP_MAX];     /* the Sec-WebSocket-Extensions answer */
};

static int ws_is_token_char(char ch)
{
    return ch != ',' && ch != ' ' && ch != '\t';
}

/* Whether a comma-separated header value lists tok[0..tlen): Upgrade and
 * Connection tokens compare case-insensitively, subprotocol names
 * exactly. */
static int ws_list_find(struct mk_ptr v, const char *tok, size_t tlen,
                        int exact)
{
    size_t i = 0, start;

    while (i < v.len) {
        while (i < v.len && !ws_is_token_char(v.data[i])) {
            i++;
        }
        start = i;
        while (i < v.len && ws_is_token_char(v.data[i])) {
            i++;
        }
        if (i - start == tlen && tlen &&
            (exact ? memcmp(v.data + start, tok, tlen) == 0
                   : strncasecmp(v.data + start, tok, tlen) == 0)) {
            return 1;
        }
    }
    return 0;
}

static int ws_list_has(struct mk_ptr v, const char *tok)
{
    return ws_list_find(v, tok, strlen(tok), 0);
}

static int ws_list_has_exact(struct mk_ptr v, const char *tok, size_t tlen)
{
    return ws_list_find(v, tok, tlen, 1);
}

static struct mk_ptr ws_trim(struct mk_ptr v)
{
    while (v.len && (v.data[0] == ' ' || v.data[0] == '\t')) {
        v.data++;
        v.len--;
    }
    while (v.len && (v.data[v.len - 1] == ' ' || v.data[v.len - 1] == '\t')) {
        v.len--;
    }
    return v;
}

static int ws_accept_key(struct mk_ptr key, char *out, size_t outlen)
{
    char raw[20], buf[64 + sizeof(WS_GUID)];

    if (mk_base64_decode(key.data, key.len, raw, sizeof(raw)) != 16) {
        return -1;                       /* a nonce of 16 bytes (4.1) */
    }
    memcpy(buf, key.data, key.len);
    memcpy(buf + key.len, WS_GUID, sizeof(WS_GUID) - 1);
    if (mbedtls_sha1_ret((const unsigned char *) buf,
                         key.len + sizeof(WS_GUID) - 1,
                         (unsigned char *) raw) != 0) {
        return -1;
    }
    return mk_base64_encode(raw, 20, out, outlen) < 0 ? -1 : 0;
}

static int ws_refuse(struct mk_stream *r, int status)
{
    mk_response_close(r);
    if (status == 426) {
        mk_response_header(r, "Sec-WebSocket-Version", "13");
    }
    return mk_response_error(r, status) < 0 ? MK_STAGE_CLOSE
                                            : MK_STAGE_HANDLED;
}

static const struct ws_settings *ws_settings_of(struct ws_conf *wc,
                                                struct mk_vhost *vh,
                                                atomic_size_t **used)
{
    size_t count;
    void **confs = mk_vhost_plugin_confs(vh, &mk_plugin_websocket, &count);

    if (count) {
        struct ws_conf *vc = confs[0];
        *used = &vc->deflate_used;
        return &vc->set;
    }
    *used = &wc->deflate_used;
    return &wc->set;
}

/* Takes the connection's zlib memory from its site's budget; without room
 * the connection goes uncompressed rather than refused. */
static size_t ws_deflate_reserve(const struct ws_settings *set,
                                 atomic_size_t *used,
                                 const struct ws_deflate_params *p)
{
    size_t need = ws_deflate_memory_peak(p, set->policy.mem_level);
    size_t was = atomic_fetch_add(used, need);

    if (was + need > set->deflate_memory) {
        atomic_fetch_sub(used, need);
        return 0;
    }
    return need;
}

static void ws_claim_release(void *data)
{
    struct ws_claim *cl = data;

    if (cl->reserved) {
        atomic_fetch_sub(cl->deflate_used, cl->reserved);
    }
    mk_mem_free(cl);
}

static const struct mk_proto *ws_accept(void *data, struct mk_stream *r,
                                        const char *choice, size_t len,
                                        void **proto_data)
{
    struct ws_claim *cl = data;
    struct mk_conn *c = mk_request_conn(r);
    struct ws_deflate *deflate = NULL;
    struct ws_conn *ws;
    char head[512];
    size_t n;

    if (choice && !ws_list_has_exact(cl->offered, choice, len)) {
        char shown[64];

        mk_warn("websocket: the node chose subprotocol \"%s\", which the "
                "client did not offer: closed",
                mk_str_printable(shown, sizeof(shown), choice, len));
        ws_claim_release(cl);
        return NULL;
    }
    if (choice && len > 128) {
        ws_claim_release(cl);
        return NULL;
    }
    if (cl->reserved) {
        deflate = ws_deflate_create(&cl->params, cl->set->policy.mem_level);
        if (!deflate) {
            ws_claim_release(cl);
            return NULL;
        }
    }
    /* the answer first: once it is queued, failing closes the connection
     * and the protocol state never exists */
    n = mk_str_printf(head, sizeof(head),
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n%s%.*s%s%s%s%s\r\n",
                      cl->accept,
                      choice ? "Sec-WebSocket-Protocol: " : "",
                      choice ? (int) len : 0, choice ? choice : "",
                      choice ? "\r\n" : "",
                      deflate ? "Sec-WebSocket-Extensions: " : "",
                      deflate ? cl->ext : "", deflate ? "\r\n" : "");
    if (mk_response_write_raw(r, head, n, MK_WRITE_COPY) < 0 ||
        !(ws = ws_conn_create(c, cl->set, deflate, cl->deflate_used,
                              cl->reserved))) {
        if (deflate) {
            ws_deflate_destroy(deflate);
        }
        ws_claim_release(cl);
        return NULL;
    }
    cl->reserved = 0;                    /* the connection holds it now */
    ws_claim_release(cl);
    *proto_data = ws;
    return &ws_proto;
}

static const struct mk_upgrade ws_upgrade = {
    .name    = "websocket",
    .accept  = ws_accept,
    .release = ws_claim_release,
};

/* Stage 20: an RFC 6455 opening handshake is checked and claimed here;
 * the request goes on to its content handler, which accepts. */
static int ws_on_request(void *conf, struct mk_stream *r)
{
    struct ws_conf *wc = conf;
    const struct mk_http_request_head *h = mk_request_head(r);
    struct mk_ptr up = mk_request_header(r, "Upgrade");
    struct mk_ptr version, key, ext, proto;
    atomic_size_t *used;
    struct ws_claim *cl;
    int negotiated;

    if (!up.data || !ws_list_has(up, "websocket")) {
        return MK_STAGE_NEXT;
    }
    if (mk_request_method(r) != MK_HTTP_METHOD_GET ||
        mk_request_version_minor(r) < 1 ||
        !ws_list_has(mk_request_header(r, "Connection"), "upgrade") ||
        h->chunked || (h->has_content_length && h->content_length > 0)) {
        mk_debug("websocket: not a valid opening handshake (4.2.1): 400");
        return ws_refuse(r, 400);
    }
    version = ws_trim(mk_request_header(r, "Sec-WebSocket-Version"));
    if (version.len != 2 || memcmp(version.data, "13", 2) != 0) {
        return ws_refuse(r, 426);
    }
    key = ws_trim(mk_request_header(r, "Sec-WebSocket-Key"));
    cl = mk_mem_zalloc(sizeof(*cl));
    if (!cl) {
        return MK_STAGE_CLOSE;
    }
    if (!key.data || key.len != 24 ||
        ws_accept_key(key, cl->accept, sizeof(cl->accept)) < 0) {
        mk_mem_free(cl);
        mk_debug("websocket: missing or invalid Sec-WebSocket-Key: 400");
        return ws_refuse(r, 400);
    }
    cl->set = ws_settings_of(wc, mk_request_vhost(r), &used);
    cl->deflate_used = used;
    proto = ws_trim(mk_request_header(r, "Sec-WebSocket-Protocol"));
    cl->offered = proto;
    ext = mk_request_header(r, "Sec-WebSocket-Extensions");
    if (cl->set->deflate && ext.data) {
        negotiated = ws_deflate_negotiate(ext.data, ext.len,
                                          &cl->set->policy, &cl->params,
                                          cl->ext, sizeof(cl->ext));
        if (negotiated < 0) {
            mk_mem_free(cl);
            mk_debug("websocket: unreadable Sec-WebSocket-Extensions: 400");
            return ws_refuse(r, 400);
        }
        if (negotiated) {
            cl->reserved = ws_deflate_reserve(cl->set, used, &cl->params);
            if (!cl->reserved) {
                mk_info("websocket: site %s: DeflateMemory (%llu bytes) in "
                        "use: a connection goes uncompressed",
                        mk_vhost_name(mk_request_vhost(r)),
                        (unsigned long long) cl->set->deflate_memory);
            }
        }
    }
    /* the 101 waits for the node when it is to pick a subprotocol, or
     * when the site lets it refuse (Accept node: an ASGI app's close
     * before accept is a 403) */
    if (mk_request_upgrade(r, &ws_upgrade, cl,
                           proto.len > 0 || cl->set->accept_node) < 0) {
        ws_claim_release(cl);
        return ws_refuse(r, 400);
    }
    return MK_STAGE_NEXT;
}

static void ws_worker_exit(void *conf, struct mk_worker *w)
{
    (void) conf;
    (void) w;
    ws_worker_release();
}

static const struct mk_msg_type ws_msg_types[] = {
    { "websocket", ws_on_node_message },
    { "websocket/binary", ws_on_node_message },
    { "websocket/close", ws_on_node_message },
    { NULL, NULL }
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_websocket = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "websocket",
    .description     = "WebSocket (RFC 6455, permessage-deflate) for nodes",
    .conf_keys       = ws_keys,
    .conf_size       = sizeof(struct ws_conf),
    .conf_check      = ws_conf_check,
    .vhost_keys      = ws_vhost_keys,
    .vhost_conf_size = sizeof(struct ws_conf),
    .worker_exit     = ws_worker_exit,
    .on_request      = ws_on_request,
    .msg_types       = ws_msg_types,
    /* tremolo -b: BlastBeat spoke WebSocket on every vhost, with no
     * option for it; its nodes expect upgrades wherever this is built */
    .bb_ini          = &(const struct mk_bb_ini){
        .flags = MK_BB_WITH_HANDLER },
};
