/*
 * The `uwsgi` packet of a request (spec 2.2), built on the worker from
 * the stream's parsed head: CGI-style variables, then every request
 * header as HTTP_*. zmq_uwsgi.c encodes it.
 */
#include <string.h>

#include "plugins/zmq/zmq.h"

static int zmq_add(struct mk_buf *b, const char *k, struct mk_ptr v)
{
    return zmq_uwsgi_add(b, k, strlen(k), v.data ? v.data : "", v.len);
}

int zmq_request_packet(struct mk_stream *r, const char *const *vars,
                       struct mk_buf *b)
{
    const struct mk_http_request_head *h = mk_request_head(r);
    const char *buf = mk_request_buf(r), *name, *colon;
    struct mk_conn *c = mk_request_conn(r);
    struct mk_ptr target = mk_request_target(r);
    const char *path = mk_request_clean_path(r);
    char port[8], key[ZMQ_IDENTITY_MAX + 8], sport[8];
    const char *proto;
    uint32_t i;
    size_t kl;
    int ret = 0;

    name = mk_vhost_name(mk_request_vhost(r));
    colon = strchr(name, ':');
    mk_str_printf(port, sizeof(port), "%u", mk_conn_peer(c)->port);
    /* the site name's port, else the one the client really used, not
     * BlastBeat's "80" even on TLS listeners (spec 10.15) */
    if (colon) {
        mk_str_printf(sport, sizeof(sport), "%s", colon + 1);
    }
    else {
        mk_str_printf(sport, sizeof(sport), "%u", mk_conn_local_port(c));
    }
    zmq_uwsgi_begin(b);
    ret |= zmq_add(b, "REQUEST_METHOD", mk_http_span_ptr(buf, h->method_name));
    ret |= zmq_add(b, "SCRIPT_NAME", MK_PTR_NONE);
    /* decoded and normalised, the path every access rule saw (nginx's
     * $document_uri); the raw target stays in REQUEST_URI */
    ret |= zmq_add(b, "PATH_INFO", mk_ptr_make(path, strlen(path)));
    ret |= zmq_add(b, "QUERY_STRING", mk_request_query(r));
    if (h->known[MK_HDR_CONTENT_TYPE] >= 0) {
        ret |= zmq_add(b, "CONTENT_TYPE",
                       mk_http_header_known(h, buf, MK_HDR_CONTENT_TYPE));
    }
    if (h->known[MK_HDR_CONTENT_LENGTH] >= 0) {
        ret |= zmq_add(b, "CONTENT_LENGTH",
                       mk_http_header_known(h, buf, MK_HDR_CONTENT_LENGTH));
    }
    ret |= zmq_add(b, "SERVER_NAME", mk_ptr_make(name, colon ? (size_t) (colon - name)
                                                         : strlen(name)));
    ret |= zmq_add(b, "SERVER_PORT", mk_ptr_make(sport, strlen(sport)));
    proto = mk_request_protocol(r);     /* HTTP/2 streams say so */
    ret |= zmq_add(b, "SERVER_PROTOCOL", mk_ptr_make(proto, strlen(proto)));
    ret |= zmq_add(b, "REMOTE_ADDR", mk_ptr_make(mk_conn_peer_str(c),
                                                 strlen(mk_conn_peer_str(c))));
    /* the real port, not BlastBeat's byte-swapped one (spec 10.5) */
    ret |= zmq_add(b, "REMOTE_PORT", mk_ptr_make(port, strlen(port)));
    ret |= zmq_add(b, "REQUEST_URI", target);
    if (mk_conn_is_secure(c)) {        /* spec 2.2 FIX: nodes see HTTPS */
        ret |= zmq_add(b, "HTTPS", MK_PTR_LIT("on"));
        ret |= zmq_add(b, "UWSGI_SCHEME", MK_PTR_LIT("https"));
    }
    for (i = 0; i < h->header_count; i++) {
        const struct mk_http_header *hd = &h->headers[i];
        kl = zmq_uwsgi_header_key(buf + hd->name.off, hd->name.len, key,
                                  sizeof(key));
        if (kl == 0) {
            continue;               /* spoofable name (has '_'): dropped */
        }
        ret |= zmq_uwsgi_add(b, key, kl, buf + hd->value.off, hd->value.len);
    }
    for (; vars && vars[0] && vars[1]; vars += 2) {
        ret |= zmq_uwsgi_add_str(b, vars[0], vars[1]);
    }
    if (ret != 0) {
        return -1;
    }
    return zmq_uwsgi_finish(b);
}
