/*
 * http2: the plugin's settings, its protocol declaration (ALPN "h2" on TLS
 * listeners, the prior-knowledge preface on plain ones) and the h2c
 * upgrade of an HTTP/1.1 request (RFC 7540 3.2, kept by RFC 9113 only as
 * something a server may ignore; curl and nghttp still use it).
 * Operators: docs/http2.md; design: http2.h.
 */
#include <string.h>
#include <strings.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/http2/http2.h"

/* ---- Configuration -------------------------------------------------------- */

static const struct mk_conf_key h2_keys[] = {
    MK_CONF_INT("MaxConcurrentStreams", struct h2_conf, max_streams, "100", 1,
                100000),
    MK_CONF_SIZE("InitialWindowSize", struct h2_conf, initial_window, "65535",
                 0, 2147483647),
    MK_CONF_SIZE("ConnectionWindowSize", struct h2_conf, conn_window, "1M",
                 65535, 2147483647),
    MK_CONF_SIZE("MaxFrameSize", struct h2_conf, max_frame, "16384", 16384,
                 16777215),
    MK_CONF_SIZE("MaxHeaderListSize", struct h2_conf, max_header_list, "64K",
                 1024, 16 * 1024 * 1024),
    MK_CONF_SIZE("HeaderTableSize", struct h2_conf, header_table, "4096", 0,
                 65536),
    MK_CONF_TIME("IdleTimeout", struct h2_conf, idle_timeout, "60s", 100,
                 24 * 3600 * 1000ULL),
    MK_CONF_TIME("WindowTimeout", struct h2_conf, window_timeout, "30s", 100,
                 24 * 3600 * 1000ULL),
    MK_CONF_BOOL("Push", struct h2_conf, push, "off"),
    MK_CONF_INT("ResetRate", struct h2_conf, reset_rate, "100", 1, 1000000),
    MK_CONF_INT("ControlRate", struct h2_conf, control_rate, "50", 1, 1000000),
    MK_CONF_INT("MaxContinuations", struct h2_conf, max_continuations, "16",
                1, 1000),
    MK_CONF_END
};

/* A site's [HTTP2]: the same keys; absent ones take the global's. */
static const struct mk_conf_key h2_vhost_keys[] = {
    MK_CONF_INHERIT("MaxConcurrentStreams", struct h2_conf, max_streams),
    MK_CONF_INHERIT("InitialWindowSize", struct h2_conf, initial_window),
    MK_CONF_INHERIT("ConnectionWindowSize", struct h2_conf, conn_window),
    MK_CONF_INHERIT("MaxFrameSize", struct h2_conf, max_frame),
    MK_CONF_INHERIT("MaxHeaderListSize", struct h2_conf, max_header_list),
    MK_CONF_INHERIT("HeaderTableSize", struct h2_conf, header_table),
    MK_CONF_INHERIT("IdleTimeout", struct h2_conf, idle_timeout),
    MK_CONF_INHERIT("WindowTimeout", struct h2_conf, window_timeout),
    MK_CONF_INHERIT("Push", struct h2_conf, push),
    MK_CONF_INHERIT("ResetRate", struct h2_conf, reset_rate),
    MK_CONF_INHERIT("ControlRate", struct h2_conf, control_rate),
    MK_CONF_INHERIT("MaxContinuations", struct h2_conf, max_continuations),
    MK_CONF_END
};

static void h2_resolve(struct h2_conf *cf)
{
    struct h2_settings *s = &cf->set;

    s->max_streams = (uint32_t) cf->max_streams;
    s->initial_window = (uint32_t) cf->initial_window;
    s->conn_window = (uint32_t) cf->conn_window;
    s->max_frame = (uint32_t) cf->max_frame;
    s->max_header_list = (uint32_t) cf->max_header_list;
    s->header_table = (uint32_t) cf->header_table;
    s->idle_timeout = cf->idle_timeout;
    s->window_timeout = cf->window_timeout;
    s->push = cf->push;
    s->reset_rate = (uint32_t) cf->reset_rate;
    s->control_rate = (uint32_t) cf->control_rate;
    s->max_continuations = (uint32_t) cf->max_continuations;
}

static int h2_conf_check(void *conf, struct mk_server *srv, char *err,
                         size_t errlen)
{
    (void) srv;
    (void) err;
    (void) errlen;
    h2_resolve(conf);
    return 0;
}

static int h2_vhost_check(void *vconf, struct mk_vhost *vh, char *err,
                          size_t errlen)
{
    (void) vh;
    (void) err;
    (void) errlen;
    h2_resolve(vconf);
    return 0;
}

/* ---- h2c: Upgrade from HTTP/1.1 (stage 20) ------------------------------ */

struct h2_upgrade {
    uint8_t settings[512];
    size_t len;
};

/* Whether a comma-separated list holds `token` (case-insensitive). */
static int h2_has_token(struct mk_ptr list, const char *token)
{
    size_t tl = strlen(token), i = 0, start, end;

    while (i < list.len) {
        while (i < list.len && (list.data[i] == ' ' || list.data[i] == '\t' ||
                                list.data[i] == ',')) {
            i++;
        }
        start = i;
        while (i < list.len && list.data[i] != ',') {
            i++;
        }
        end = i;
        while (end > start && (list.data[end - 1] == ' ' ||
                               list.data[end - 1] == '\t')) {
            end--;
        }
        if (end - start == tl && strncasecmp(list.data + start, token, tl) == 0) {
            return 1;
        }
    }
    return 0;
}

/* HTTP2-Settings: base64url without padding (RFC 7540 3.2.1). */
static long h2_settings_decode(struct mk_ptr v, uint8_t *out, size_t cap)
{
    char std[700];
    size_t i, n;

    if (v.len == 0 || v.len + 3 > sizeof(std)) {
        return v.len == 0 ? 0 : -1;
    }
    for (i = 0; i < v.len; i++) {
        char ch = v.data[i];
        if (ch == '-') {
            ch = '+';
        }
        else if (ch == '_') {
            ch = '/';
        }
        else if (ch == '+' || ch == '/' || ch == '=') {
            return -1;
        }
        std[i] = ch;
    }
    n = v.len;
    while (n % 4) {
        std[n++] = '=';
    }
    return mk_base64_decode(std, n, (char *) out, cap);
}

static const struct mk_proto *h2_upgrade_accept(void *data, struct mk_stream *r,
                                                const char *choice, size_t len,
                                                void **proto_data)
{
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    struct h2_upgrade *u = data;
    struct mk_conn *c = mk_request_conn(r);
    const struct mk_http_request_head *h = mk_request_head(r);
    struct h2_stream *hs;
    struct h2_conn *hc;

    (void) choice;
    (void) len;
    hc = h2_conn_create(c, h2_settings_for(c), u->settings, u->len,
                        mk_request_method(r) == MK_HTTP_METHOD_HEAD);
    mk_mem_free(u);
    if (!hc) {
        return NULL;
    }
    /* stream 1 is the request, half-closed: it runs once the client's
     * preface has come (h2_on_read) */
    hs = h2_stream_new(hc, 1);
    if (!hs || h2_stream_from_http1(hs, mk_request_buf(r), h->head_len) < 0 ||
        nghttp2_session_set_stream_user_data(hc->ng, 1, hs) != 0 ||
        mk_response_write_raw(r, head, sizeof(head) - 1, MK_WRITE_STATIC) < 0) {
        if (hs) {
            h2_stream_free(hs);
        }
        nghttp2_session_del(hc->ng);
        mk_mem_free(hc);
        return NULL;
    }
    hc->upgraded = hs;
    hc->sending = 1;                   /* our SETTINGS right after the 101 */
    nghttp2_session_send(hc->ng);
    hc->sending = 0;
    *proto_data = hc;
    return &h2_proto;
}

static void h2_upgrade_release(void *data)
{
    mk_mem_free(data);
}

static const struct mk_upgrade h2_upgrade = {
    .name    = "h2c",
    .accept  = h2_upgrade_accept,
    .release = h2_upgrade_release,
};

/* An HTTP/1.1 request asking for h2c, with HTTP2-Settings and no body, on
 * a plain connection: 101 and HTTP/2. Anything else stays HTTP/1.1 (a
 * server may ignore Upgrade). */
static int h2_on_request(void *conf, struct mk_stream *r)
{
    const struct mk_http_request_head *h = mk_request_head(r);
    struct mk_conn *c = mk_request_conn(r);
    struct mk_ptr up, conn, settings;
    struct h2_upgrade *u;
    long n;

    (void) conf;
    if (mk_stream_shares_conn(r) || mk_conn_is_secure(c) ||
        mk_request_version_minor(r) != 1 || h->chunked ||
        (h->has_content_length && h->content_length > 0)) {
        return MK_STAGE_NEXT;
    }
    up = mk_request_header(r, "Upgrade");
    settings = mk_request_header(r, "HTTP2-Settings");
    conn = mk_request_header(r, "Connection");
    if (!up.data || !settings.data || !conn.data ||
        !h2_has_token(up, "h2c") || !h2_has_token(conn, "Upgrade") ||
        !h2_has_token(conn, "HTTP2-Settings")) {
        return MK_STAGE_NEXT;
    }
    u = mk_mem_zalloc(sizeof(*u));
    if (!u) {
        return MK_STAGE_NEXT;
    }
    n = h2_settings_decode(settings, u->settings, sizeof(u->settings));
    if (n < 0 || n % 6 != 0) {
        mk_mem_free(u);
        return mk_response_error(r, 400) < 0 ? MK_STAGE_CLOSE
                                             : MK_STAGE_HANDLED;
    }
    u->len = (size_t) n;
    if (mk_request_upgrade(r, &h2_upgrade, u, 0) < 0) {
        mk_mem_free(u);
        return MK_STAGE_NEXT;          /* another plugin claimed it */
    }
    if (mk_request_upgrade_accept(r, NULL, 0) < 0) {
        return MK_STAGE_CLOSE;
    }
    return MK_STAGE_HANDLED;
}

/* ---- The plugin ------------------------------------------------------------ */

static const struct mk_proto_decl h2_protos[] = {
    /* offered first in ALPN; the preface switches plain connections */
    { "h2", "h2", 10, &h2_proto, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" },
    { NULL, NULL, 0, NULL, NULL }
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_http2 = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "http2",
    .description     = "HTTP/2 on nghttp2: h2 over TLS, h2c, floods defended",
    .conf_keys       = h2_keys,
    .conf_size       = sizeof(struct h2_conf),
    .conf_check      = h2_conf_check,
    .vhost_keys      = h2_vhost_keys,
    .vhost_conf_size = sizeof(struct h2_conf),
    .vhost_check     = h2_vhost_check,
    .on_request      = h2_on_request,
    .protos          = h2_protos,
};
