/*
 * A long-polling request (GET waits for packets, POST brings them) on the
 * worker its connection landed on. It becomes a session of its own for
 * as long as it waits: the Engine.IO session, wherever it lives, answers
 * by this sid, so no balancer has to be sticky. A GET waits at most one
 * heartbeat (the session sends a ping every PingInterval); a deadline a
 * little past that answers for a session that vanished meanwhile.
 */
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/socketio/socketio.h"

#define EIO_POLL_KIND 0x706f6c6c             /* "poll": the request slot's */

struct eio_poll {
    int kind;
    struct mk_session *ms;             /* this request's sid */
    struct mk_stream *r;
    const struct sio_settings *set;
    uint8_t to[SIO_SID_LEN];           /* the Engine.IO session */
    int post;
    int too_big;
    int answered;
    int busy;                          /* stage 40 may run under us ... */
    int done;                          /* ... and did: free on the way out */
    struct mk_buf body;
    struct mk_timer deadline;
};

static struct eio_poll *eio_poll_of(const struct mk_stream *r)
{
    struct eio_poll *p = mk_request_plugin_data(r, &mk_plugin_socketio);

    return p && p->kind == EIO_POLL_KIND ? p : NULL;
}

static void eio_poll_free(struct eio_poll *p)
{
    mk_timer_disarm(sio_worker()->timers, &p->deadline);
    mk_session_destroy(p->ms);
    mk_buf_release(&p->body);
    mk_mem_free(p);
}

/* The session never answered (it closed between our message and its
 * arrival): the client's next request learns it is gone. */
static void eio_poll_on_deadline(struct mk_timer *t, void *data)
{
    struct eio_poll *p = data;

    (void) t;
    if (!p->answered) {
        p->answered = 1;
        sio_http_error(p->r, p->set, EIO_ERR_SESSION_UNKNOWN);
    }
}

/* The session's answer: [status u16][type][body]; type 0 text/plain,
 * 1 text/html (engine.io's "ok"), 2 an Engine.IO error code. */
static void eio_poll_on_message(void *data, struct mk_session *s,
                                const char *type, size_t tlen,
                                const void *body, size_t len, uint64_t share)
{
    struct eio_poll *p = data;
    const uint8_t *b = body;
    int status;

    (void) s;
    (void) share;
    if (p->answered || tlen != 9 || memcmp(type, "eio:reply", 9) != 0 ||
        len < 3) {
        return;
    }
    p->answered = 1;
    p->busy++;
    status = b[0] << 8 | b[1];
    if (b[2] == 2 && len >= 4) {
        sio_http_error(p->r, p->set, (enum eio_error) b[3]);
    }
    else if (status == 200) {
        sio_http_answer(p->r, p->set, b[2] == 1 ? "text/html"
                                                : "text/plain; charset=UTF-8",
                        b + 3, len - 3);
    }
    else {
        mk_response_error(p->r, status);
    }
    if (--p->busy == 0 && p->done) {
        eio_poll_free(p);
    }
}

static const struct mk_session_owner eio_poll_owner = {
    .on_message = eio_poll_on_message,
};

/* Hands the request to the Engine.IO session; 400 when no session has
 * that sid. */
static int eio_poll_forward(struct eio_poll *p)
{
    const char *site = mk_vhost_name(mk_request_vhost(p->r));
    uint64_t wait = p->set->ping_interval + p->set->ping_timeout + 5000;
    int ret = 0;

    p->busy++;                           /* a local session answers at once */
    if (sio_send_from(p->to, p->post ? "eio:post" : "eio:get",
                      mk_session_sid(p->ms), site, p->body.data,
                      p->body.len) < 0) {
        p->answered = 1;
        ret = sio_http_error(p->r, p->set, EIO_ERR_SESSION_UNKNOWN);
    }
    else if (!p->answered) {
        mk_timer_arm(sio_worker()->timers, &p->deadline, sio_now() + wait);
    }
    if (--p->busy == 0 && p->done) {
        eio_poll_free(p);
    }
    return ret;
}

int eio_poll_request(struct sio_conf *conf, const struct sio_settings *set,
                     struct mk_stream *r, const uint8_t *sid)
{
    struct eio_poll *p = mk_mem_zalloc(sizeof(*p));

    (void) conf;
    if (!p) {
        return -1;
    }
    p->kind = EIO_POLL_KIND;
    p->r = r;
    p->set = set;
    p->post = mk_request_method(r) == MK_HTTP_METHOD_POST;
    memcpy(p->to, sid, SIO_SID_LEN);
    mk_buf_init(&p->body);
    mk_timer_init(&p->deadline, eio_poll_on_deadline, p);
    p->ms = mk_session_create(mk_conn_server(mk_request_conn(r)),
                              mk_request_vhost(r), &eio_poll_owner, p);
    if (!p->ms) {
        mk_mem_free(p);
        return -1;
    }
    mk_request_set_plugin_data(r, &mk_plugin_socketio, p);
    if (mk_request_plugin_data(r, &mk_plugin_socketio) != p) {
        eio_poll_free(p);
        return -1;
    }
    if (p->post) {
        return 0;                        /* on the end of its body */
    }
    return eio_poll_forward(p);
}

/* A POST's body, up to MaxPayload (413 beyond, as engine.io). */
int eio_poll_body(struct mk_stream *r, const char *data, size_t len)
{
    struct eio_poll *p = eio_poll_of(r);

    if (!p || !p->post || p->answered) {
        return 0;
    }
    if (len == 0) {
        return eio_poll_forward(p) < 0 ? -1 : 0;
    }
    if (p->body.len + len > p->set->max_payload) {
        p->answered = 1;
        mk_response_close(r);            /* the rest is not read */
        mk_response_error(r, 413);
        return 0;
    }
    return mk_buf_append(&p->body, data, len);
}

/* Stage 40: the request ended, answered or cut short. A GET cut short
 * while it waited is the session's end (engine.io: "poll connection
 * closed prematurely"). */
void eio_poll_done(struct mk_stream *r)
{
    struct eio_poll *p = eio_poll_of(r);

    if (!p) {
        return;
    }
    mk_request_set_plugin_data(r, &mk_plugin_socketio, NULL);
    if (!p->answered) {
        sio_send_from(p->to, "eio:gone", mk_session_sid(p->ms),
                      mk_vhost_name(mk_request_vhost(r)), NULL, 0);
    }
    if (p->busy) {
        p->done = 1;                     /* freed when the answer returns */
        return;
    }
    eio_poll_free(p);
}
