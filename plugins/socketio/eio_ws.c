/*
 * The websocket transport: an upgraded connection on the worker that
 * accepted it, framed by the websocket plugin (RFC 6455 is written once,
 * there). It is a session of its own: its backend is this file, which
 * passes each client frame to the Engine.IO session by sid; the Engine.IO
 * session sends it `websocket`, `websocket/binary` and `websocket/close`
 * messages, which the websocket plugin frames. A websocket that opens a
 * session (no sid) makes it here, on its own worker; one that upgrades a
 * polling session waits, before its 101, for that session's consent.
 */
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/socketio/socketio.h"

#define EIO_WS_KIND 0x77732020               /* "ws  ": the request slot's */
#define EIO_WS_ANSWER_MS 10000               /* for the session's consent */

struct eio_ws {
    int kind;
    struct mk_session *ms;             /* this transport's sid */
    struct mk_stream *r;               /* until the 101 */
    struct mk_conn *c;                 /* after it */
    const struct sio_settings *set;
    const char *site;
    uint8_t to[SIO_SID_LEN];           /* the Engine.IO session */
    int answered;                      /* the request has its answer */
    int busy, done;                    /* as eio_poll.c */
    struct mk_timer deadline;
};

static struct eio_ws *eio_ws_of_request(const struct mk_stream *r)
{
    struct eio_ws *ws = mk_request_plugin_data(r, &mk_plugin_socketio);

    return ws && ws->kind == EIO_WS_KIND ? ws : NULL;
}

static void eio_ws_free(struct eio_ws *ws)
{
    mk_timer_disarm(sio_worker()->timers, &ws->deadline);
    mk_session_destroy(ws->ms);
    mk_mem_free(ws);
}

/* A client frame (from the websocket plugin) for the Engine.IO session. */
static int eio_ws_backend_send(void *data, struct mk_session *s,
                               const char *type, const void *body,
                               size_t len)
{
    struct eio_ws *ws = data;
    struct mk_session *es;
    const char *to_type;

    (void) s;
    if (strcmp(type, "websocket") == 0) {
        to_type = "eio:text";
    }
    else if (strcmp(type, "websocket/binary") == 0) {
        to_type = "eio:binary";
    }
    else {
        return 0;                        /* its close: stage 50 tells */
    }
    if (len > ws->set->max_payload) {
        /* engine.io's maxPayload holds for websocket messages too */
        static const char too_big[] = "\x03\xf1" "message over MaxPayload";

        mk_info("socketio: a websocket message of %zu bytes is over "
                "MaxPayload (%llu): closed with 1009", len,
                (unsigned long long) ws->set->max_payload);
        sio_send(mk_session_sid(ws->ms), "websocket/close", too_big,
                 sizeof(too_big) - 1, 0);
        return 0;
    }
    /* a session already gone: its close frame is on its way here */
    sio_send_from(ws->to, to_type, mk_session_sid(ws->ms), ws->site, body,
                  len);
    /* a node behind its client: stop reading until the session says its
     * node has room ("eio:ready"); only for a session on this worker, the
     * usual case (one whose handshake came over this websocket) */
    es = mk_session_find_local(ws->to);
    return es && mk_session_backend_held(es) ? 1 : 0;
}

static const struct mk_backend eio_ws_backend = {
    .name = "socket.io",
    .send = eio_ws_backend_send,
    .binary_typed = 1,
};

/* The 101: the websocket plugin takes the connection, this transport
 * follows it to stage 50. */
static int eio_ws_accept(struct eio_ws *ws)
{
    struct mk_stream *r = ws->r;
    struct mk_conn *c = mk_request_conn(r);

    ws->answered = 1;
    if (mk_request_upgrade_accept(r, NULL, 0) < 0) {
        return -1;
    }
    mk_request_set_plugin_data(r, &mk_plugin_socketio, NULL);
    ws->r = NULL;
    ws->c = c;
    mk_session_set_conn(ws->ms, c);
    mk_conn_set_plugin_data(c, &mk_plugin_socketio, ws);
    return 0;
}

static void eio_ws_on_deadline(struct mk_timer *t, void *data)
{
    struct eio_ws *ws = data;

    (void) t;
    if (!ws->answered) {
        ws->answered = 1;
        sio_http_error(ws->r, ws->set, EIO_ERR_SESSION_UNKNOWN);
    }
}

/* The Engine.IO session's consent to an upgrade, or its refusal. */
static void eio_ws_on_message(void *data, struct mk_session *s,
                              const char *type, size_t tlen,
                              const void *body, size_t len, uint64_t share)
{
    struct eio_ws *ws = data;

    (void) share;
    if (tlen == 9 && memcmp(type, "eio:ready", 9) == 0) {
        mk_session_backend_ready(s);     /* the websocket reads again */
        return;
    }
    if (ws->answered || !ws->r) {
        return;
    }
    ws->busy++;
    mk_timer_disarm(sio_worker()->timers, &ws->deadline);
    if (tlen == 10 && memcmp(type, "eio:accept", 10) == 0) {
        if (eio_ws_accept(ws) < 0) {
            sio_send_from(ws->to, "eio:gone", mk_session_sid(ws->ms),
                          ws->site, NULL, 0);
        }
    }
    else if (tlen == 10 && memcmp(type, "eio:refuse", 10) == 0) {
        uint8_t code = len ? *(const uint8_t *) body : EIO_ERR_BAD_REQUEST;

        ws->answered = 1;
        if (code == EIO_REFUSE_NO_NODE) {
            mk_response_header(ws->r, "Retry-After", "1");
            mk_response_error(ws->r, 503);
        }
        else {
            sio_http_error(ws->r, ws->set, (enum eio_error) code);
        }
    }
    if (--ws->busy == 0 && ws->done) {
        eio_ws_free(ws);
    }
}

static const struct mk_session_owner eio_ws_owner = {
    .on_message = eio_ws_on_message,
};

int eio_ws_request(struct sio_conf *conf, const struct sio_settings *set,
                   struct mk_stream *r, const uint8_t *sid)
{
    struct eio_ws *ws = mk_mem_zalloc(sizeof(*ws));
    int status, ret = 0;

    if (!ws) {
        return -1;
    }
    ws->kind = EIO_WS_KIND;
    ws->r = r;
    ws->set = set;
    ws->site = mk_vhost_name(mk_request_vhost(r));
    mk_timer_init(&ws->deadline, eio_ws_on_deadline, ws);
    ws->ms = mk_session_create(mk_conn_server(mk_request_conn(r)),
                               mk_request_vhost(r), &eio_ws_owner, ws);
    if (!ws->ms) {
        mk_mem_free(ws);
        return -1;
    }
    mk_session_set_backend(ws->ms, &eio_ws_backend, ws);
    mk_request_set_plugin_data(r, &mk_plugin_socketio, ws);
    if (mk_request_plugin_data(r, &mk_plugin_socketio) != ws) {
        eio_ws_free(ws);
        return -1;
    }
    if (!sid) {
        /* a websocket-only client: the session opens on this worker and
         * its OPEN packet is the first frame */
        struct eio_session *e = eio_session_create(conf, set, r,
                                                   mk_session_sid(ws->ms),
                                                   &status);
        if (!e) {
            ws->answered = 1;
            if (status == 503) {
                mk_response_header(r, "Retry-After", "1");
            }
            return mk_response_error(r, status);
        }
        /* the 101 and the OPEN frame wait for the node ("eio:accept") */
        memcpy(ws->to, eio_session_sid(e), SIO_SID_LEN);
        mk_timer_arm(sio_worker()->timers, &ws->deadline,
                     sio_now() + EIO_WS_ANSWER_MS);
        return 0;
    }
    memcpy(ws->to, sid, SIO_SID_LEN);
    ws->busy++;
    if (sio_send_from(sid, "eio:probe", mk_session_sid(ws->ms), ws->site,
                      NULL, 0) < 0) {
        ws->answered = 1;
        ret = sio_http_error(r, set, EIO_ERR_SESSION_UNKNOWN);
    }
    else if (!ws->answered) {
        mk_timer_arm(sio_worker()->timers, &ws->deadline,
                     sio_now() + EIO_WS_ANSWER_MS);
    }
    if (--ws->busy == 0 && ws->done) {
        eio_ws_free(ws);
    }
    return ret;
}

/* Stage 40: a request that never became a websocket lets go of it. */
void eio_ws_done(struct mk_stream *r)
{
    struct eio_ws *ws = eio_ws_of_request(r);

    if (!ws) {
        return;
    }
    mk_request_set_plugin_data(r, &mk_plugin_socketio, NULL);
    if (!ws->answered) {
        /* cut short while the session considered it: a probe it may
         * have accepted is a transport gone */
        sio_send_from(ws->to, "eio:gone", mk_session_sid(ws->ms), ws->site,
                      NULL, 0);
    }
    if (ws->busy) {
        ws->done = 1;
        return;
    }
    eio_ws_free(ws);
}

/* Stage 50: the websocket closed; its session hears it. */
void eio_ws_close(struct mk_conn *c)
{
    struct eio_ws *ws = mk_conn_plugin_data(c, &mk_plugin_socketio);

    if (!ws) {
        return;
    }
    mk_conn_set_plugin_data(c, &mk_plugin_socketio, NULL);
    sio_send_from(ws->to, "eio:gone", mk_session_sid(ws->ms), ws->site,
                  NULL, 0);
    eio_ws_free(ws);
}
