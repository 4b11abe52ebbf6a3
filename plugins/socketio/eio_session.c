/*
 * The Engine.IO session (protocol v4) on the worker that took its
 * handshake: the packet queue a long-polling client drains, the
 * heartbeat, the polling -> websocket upgrade, and the close. Polls and
 * websocket transports reach it by sid from any worker (eio_poll.c,
 * eio_ws.c); what it sends them goes back by their own sids.
 *
 * A session is freed from a timer of its own after it closed, never
 * under a caller: once its mk_session is destroyed no message can find
 * it, so the reaper holds the last reference.
 */
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/socketio/socketio.h"

enum { EIO_POLLING = 0, EIO_WEBSOCKET = 1 };

#define EIO_HANDSHAKE_KIND 0x68732020        /* "hs  ": the request slot's */

struct eio_session {
    int kind;                          /* first: the handshake's request slot */
    struct mk_session *ms;             /* the sid nodes see; NULL once closed */
    struct sio_conf *conf;             /* the global section (counters) */
    const struct sio_settings *set;
    char sid_text[SIO_SID_TEXT_LEN + 1];
    const char *site;                  /* its site's name, for checks */
    int transport;
    int closing;
    int bound;                         /* a node has the handshake */
    struct mk_stream *handshake;       /* a polling handshake to answer */
    int awaiting_pong;
    int has_ws, probing, has_poll;
    uint8_t ws[SIO_SID_LEN];           /* the websocket carrying it */
    uint8_t probe[SIO_SID_LEN];        /* a websocket being probed */
    uint8_t poll[SIO_SID_LEN];         /* the GET waiting for packets */
    /* packets for a polling client: [type][binary][len u32][data] */
    struct mk_buf queue;
    long long queued;
    struct mk_timer ping;              /* heartbeat, then the reaper */
    struct mk_timer connect;           /* ConnectTimeout */
    struct sio_state *sio;
    struct mk_list _head;              /* sio_worker.sessions */
};

/* The body an internal message to a session starts with: who sends it
 * (to answer) and for which site it came (a sid is valid on its own site
 * only). */
struct eio_from {
    uint8_t sid[SIO_SID_LEN];
    uint8_t site_len;
    char site[255];
};

static void eio_on_ping_timer(struct mk_timer *t, void *data);
static const struct mk_session_owner eio_session_owner;
static void eio_on_connect_timer(struct mk_timer *t, void *data);

struct eio_session *eio_session_of(struct mk_session *s)
{
    struct eio_session *e;

    if (!mk_session_owned_by(s, &eio_session_owner)) {
        return NULL;                     /* an HTTP or WebSocket session */
    }
    e = mk_session_owner_data(s);
    return e->closing ? NULL : e;
}

const uint8_t *eio_session_sid(const struct eio_session *e)
{
    return mk_session_sid(e->ms);
}

const struct sio_settings *eio_session_settings(const struct eio_session *e)
{
    return e->set;
}

struct mk_session *eio_session_ms(const struct eio_session *e)
{
    return e->ms;
}

struct sio_state *eio_session_state(const struct eio_session *e)
{
    return e->sio;
}

/* ---- Packets to the client ---------------------------------------------- */

static void eio_flush_poll(struct eio_session *e);

static int eio_queue(struct eio_session *e, enum eio_type type, int binary,
                     const void *data, size_t len)
{
    uint8_t head[6];

    if (e->set->max_buffered && e->queued >= e->set->max_buffered) {
        return -1;
    }
    head[0] = (uint8_t) type;
    head[1] = (uint8_t) binary;
    head[2] = (uint8_t) (len >> 24);
    head[3] = (uint8_t) (len >> 16);
    head[4] = (uint8_t) (len >> 8);
    head[5] = (uint8_t) len;
    if (mk_buf_append(&e->queue, head, sizeof(head)) < 0 ||
        (len && mk_buf_append(&e->queue, data, len) < 0)) {
        return -1;
    }
    e->queued++;
    return 0;
}

/* One packet for the websocket: a text frame "<type><data>", or a binary
 * frame holding a binary message's bytes alone. */
static int eio_ws_packet(const uint8_t *ws, enum eio_type type, int binary,
                         const void *data, size_t len, uint64_t share)
{
    struct mk_buf *frame = &sio_worker()->frame;
    char t = (char) ('0' + type);

    if (binary) {
        return sio_send(ws, "websocket/binary", data, len, share);
    }
    frame->len = 0;
    if (mk_buf_append(frame, &t, 1) < 0 ||
        (len && mk_buf_append(frame, data, len) < 0)) {
        return -1;
    }
    return sio_send(ws, "websocket", frame->data, frame->len, share);
}

/* A packet for the client over its transport; on polling (or while a
 * websocket is probed) it waits in the queue for a poll. -1: the queue
 * is full, the session closes. */
static int eio_packet_out(struct eio_session *e, enum eio_type type,
                          int binary, const void *data, size_t len,
                          uint64_t share)
{
    if (e->transport == EIO_WEBSOCKET) {
        /* a websocket already gone takes nothing: its close is on its
         * way here and closes the session */
        eio_ws_packet(e->ws, type, binary, data, len, share);
        return 0;
    }
    if (eio_queue(e, type, binary, data, len) < 0) {
        mk_warn("socketio: session %s: more than MaxBufferedPackets (%lld) "
                "packets wait for a poll: closed", e->sid_text,
                e->set->max_buffered);
        eio_session_close(e, SIO_CLOSE_QUEUE_FULL);
        return -1;
    }
    if (e->has_poll) {
        eio_flush_poll(e);
    }
    return 0;
}

int eio_session_send(struct eio_session *e, const struct sio_out *o,
                     uint64_t share)
{
    const char *bin = o->bin.data;
    unsigned i;

    if (e->closing) {
        return -1;
    }
    if (eio_packet_out(e, EIO_MESSAGE, 0, o->text.data, o->text.len,
                       share) < 0) {
        return -1;
    }
    for (i = 0; i < o->natt; i++) {
        /* not shared: a transport keeps one frame per share */
        if (eio_packet_out(e, EIO_MESSAGE, 1, bin, o->att_len[i], 0) < 0) {
            return -1;
        }
        bin += o->att_len[i];
    }
    return 0;
}

/* An answer to a poll: [status u16][content type][body]. */
static void eio_reply(const uint8_t *to, int status, int ctype,
                      const void *body, size_t len)
{
    struct mk_buf *b = &sio_worker()->reply;
    uint8_t head[3] = { (uint8_t) (status >> 8), (uint8_t) status,
                        (uint8_t) ctype };

    b->len = 0;
    if (mk_buf_append(b, head, 3) < 0 ||
        (len && mk_buf_append(b, body, len) < 0)) {
        return;                          /* the poll closes at its deadline */
    }
    sio_send(to, "eio:reply", b->data, b->len, 0);
}

static void eio_reply_error(const uint8_t *to, enum eio_error code)
{
    uint8_t c = (uint8_t) code;

    eio_reply(to, 400, 2, &c, 1);
}

/* The queued packet at *off (eio_queue's records), and *off past it;
 * 0 at the end of the queue. */
static int eio_queue_next(const struct eio_session *e, size_t *off,
                          struct eio_packet *pk)
{
    const uint8_t *q;

    if (*off + 6 > e->queue.len) {
        return 0;                        /* (an empty queue has no data) */
    }
    q = (const uint8_t *) e->queue.data + *off;
    pk->type = (enum eio_type) q[0];
    pk->binary = q[1];
    pk->len = (size_t) q[2] << 24 | (size_t) q[3] << 16 |
              (size_t) q[4] << 8 | q[5];
    pk->data = (const char *) q + 6;
    *off += 6 + pk->len;
    return 1;
}

/* The queue, as one polling payload, answers the waiting GET. */
static void eio_flush_poll(struct eio_session *e)
{
    struct mk_buf payload;
    struct eio_packet pk;
    size_t off = 0;

    mk_buf_init(&payload);
    while (eio_queue_next(e, &off, &pk) &&
           eio_payload_append(&payload, &pk) == 0) {
    }
    e->queue.len = 0;
    e->queued = 0;
    if (e->queue.size > 64 * 1024) {
        mk_buf_release(&e->queue);       /* an idle session keeps little */
    }
    e->has_poll = 0;
    eio_reply(e->poll, 200, 0, payload.data, payload.len);
    mk_buf_release(&payload);
}

/* A waiting GET answered with a noop: the client stops polling for its
 * upgrade (the pending packets go over the websocket once it is done). */
static void eio_answer_noop(struct eio_session *e)
{
    if (e->has_poll && e->queue.len == 0) {
        e->has_poll = 0;
        eio_reply(e->poll, 200, 0, "6", 1);
    }
}

/* ---- Heartbeat ---------------------------------------------------------- */

static void eio_schedule_ping(struct eio_session *e)
{
    e->awaiting_pong = 0;
    mk_timer_arm(sio_worker()->timers, &e->ping,
                 sio_now() + e->set->ping_interval);
}

static void eio_on_ping_timer(struct mk_timer *t, void *data)
{
    struct eio_session *e = data;

    (void) t;
    if (e->awaiting_pong) {
        eio_session_close(e, SIO_CLOSE_PING_TIMEOUT);
        return;
    }
    e->awaiting_pong = 1;
    mk_timer_arm(sio_worker()->timers, &e->ping,
                 sio_now() + e->set->ping_timeout);
    eio_packet_out(e, EIO_PING, 0, NULL, 0, 0);
}

static void eio_on_connect_timer(struct mk_timer *t, void *data)
{
    struct eio_session *e = data;

    (void) t;
    if (!sio_state_joined(e->sio)) {
        eio_session_close(e, SIO_CLOSE_CONNECT_TIMEOUT);
    }
}

/* ---- Open and close ----------------------------------------------------- */

struct eio_session *eio_session_create(struct sio_conf *conf,
                                       const struct sio_settings *set,
                                       struct mk_stream *r,
                                       const uint8_t *websocket_sid,
                                       int *status)
{
    struct eio_session *e = mk_mem_zalloc(sizeof(*e));
    const char *vars[] = {
        "TREMOLO_TRANSPORT", websocket_sid ? "websocket" : "polling", NULL
    };

    *status = 503;
    if (!e) {
        return NULL;
    }
    e->kind = EIO_HANDSHAKE_KIND;
    e->conf = conf;
    e->set = set;
    e->site = mk_vhost_name(mk_request_vhost(r));
    mk_buf_init(&e->queue);
    mk_timer_init(&e->ping, eio_on_ping_timer, e);
    mk_timer_init(&e->connect, eio_on_connect_timer, e);
    e->ms = mk_session_create(mk_conn_server(mk_request_conn(r)),
                              mk_request_vhost(r), &eio_session_owner, e);
    e->sio = e->ms ? sio_state_create(e) : NULL;
    if (!e->sio) {
        goto error;
    }
    sio_sid_text(mk_session_sid(e->ms), e->sid_text);
    /* the node hears of it first: its `uwsgi` is the handshake request */
    *status = mk_session_open_backend(e->ms, r, vars);
    if (*status != 0) {
        goto error;
    }
    if (websocket_sid) {
        e->transport = EIO_WEBSOCKET;
        e->has_ws = 1;
        memcpy(e->ws, websocket_sid, SIO_SID_LEN);
    }
    else {
        mk_request_set_plugin_data(r, &mk_plugin_socketio, e);
        if (mk_request_plugin_data(r, &mk_plugin_socketio) != e) {
            goto error;
        }
        e->handshake = r;
    }
    /* a node that never takes it: no namespace joined either, closed */
    mk_timer_arm(sio_worker()->timers, &e->connect,
                 sio_now() + set->connect_timeout);
    atomic_fetch_add(&conf->opened, 1);
    mk_list_add(&e->_head, &sio_worker()->sessions);
    return e;

error:
    if (e->sio) {
        sio_state_destroy(e->sio);
    }
    mk_session_destroy(e->ms);
    mk_mem_free(e);
    return NULL;
}

void eio_session_handshake_done(struct mk_stream *r)
{
    struct eio_session *e = mk_request_plugin_data(r, &mk_plugin_socketio);

    if (e && e->kind == EIO_HANDSHAKE_KIND) {
        mk_request_set_plugin_data(r, &mk_plugin_socketio, NULL);
        e->handshake = NULL;             /* bound later: nobody to answer */
    }
}

/* The polling handshake's answer, taken from the session. */
static struct mk_stream *eio_take_handshake(struct eio_session *e)
{
    struct mk_stream *r = e->handshake;

    if (r) {
        e->handshake = NULL;
        mk_request_set_plugin_data(r, &mk_plugin_socketio, NULL);
    }
    return r;
}

/* A node has the handshake: the client gets its OPEN packet, and the
 * session's clocks start. */
static void eio_session_bound(struct eio_session *e)
{
    char open[320];
    long n;
    struct mk_stream *r;

    e->bound = 1;
    open[0] = '0';
    n = eio_open_json(open + 1, sizeof(open) - 1, e->sid_text,
                      !e->has_ws && e->set->websocket &&
                      e->set->allow_upgrades,
                      e->set->ping_interval, e->set->ping_timeout,
                      e->set->max_payload);
    if (e->has_ws) {
        sio_send(e->ws, "eio:accept", NULL, 0, 0);
        eio_ws_packet(e->ws, EIO_OPEN, 0, open + 1, (size_t) n, 0);
    }
    else if ((r = eio_take_handshake(e)) != NULL) {
        sio_http_answer(r, e->set, "text/plain; charset=UTF-8", open,
                        (size_t) n + 1);
    }
    else {
        eio_session_close(e, SIO_CLOSE_TRANSPORT);   /* the client left */
        return;
    }
    eio_schedule_ping(e);
    mk_timer_arm(sio_worker()->timers, &e->connect,
                 sio_now() + e->set->connect_timeout);
}

static void eio_reap(struct mk_timer *t, void *data)
{
    struct eio_session *e = data;

    (void) t;
    mk_list_del(&e->_head);
    mk_buf_release(&e->queue);
    mk_mem_free(e);
}

void eio_session_worker_exit(void)
{
    struct mk_timer_heap *timers = sio_worker()->timers;
    struct mk_list *pos, *tmp;
    struct eio_session *e;

    mk_list_foreach_safe(pos, tmp, &sio_worker()->sessions) {
        e = mk_list_entry(pos, struct eio_session, _head);
        eio_session_close(e, SIO_CLOSE_SHUTDOWN);
        mk_timer_disarm(timers, &e->ping);
        mk_list_del(&e->_head);
        mk_buf_release(&e->queue);
        mk_mem_free(e);
    }
}

void eio_session_close(struct eio_session *e, enum sio_close_reason why)
{
    static const uint8_t normal_close[2] = { 0x03, 0xe8 };  /* 1000 */
    struct mk_timer_heap *timers = sio_worker()->timers;

    if (e->closing) {
        return;
    }
    e->closing = 1;
    atomic_fetch_add(&e->conf->closed[why], 1);
    if (why == SIO_CLOSE_CLIENT || why == SIO_CLOSE_TRANSPORT ||
        why == SIO_CLOSE_SHUTDOWN) {
        mk_debug("socketio: session %s closed: %s", e->sid_text,
                 sio_close_reason_name[why]);
    }
    else {
        mk_info("socketio: session %s closed: %s", e->sid_text,
                sio_close_reason_name[why]);
    }
    /* a handshake no node took: 503, the client tries again */
    if (!e->bound) {
        struct mk_stream *r = eio_take_handshake(e);
        uint8_t code = EIO_REFUSE_NO_NODE;

        if (r) {
            mk_response_header(r, "Retry-After", "1");
            mk_response_error(r, 503);
        }
        else if (e->has_ws) {
            sio_send(e->ws, "eio:refuse", &code, 1, 0);
            e->has_ws = 0;
        }
    }
    /* the client hears it on whatever carries it; a poll that waits gets
     * what was queued and the close packet, or a noop when the client
     * itself closed (as engine.io: the poll just ends) */
    if (e->has_poll) {
        eio_queue(e, why == SIO_CLOSE_CLIENT ? EIO_NOOP : EIO_CLOSE, 0,
                  NULL, 0);
        eio_flush_poll(e);
    }
    if (e->has_ws && why != SIO_CLOSE_TRANSPORT) {
        sio_send(e->ws, "websocket/close", normal_close, 2, 0);
    }
    if (e->probing) {
        sio_send(e->probe, "websocket/close", normal_close, 2, 0);
    }
    mk_timer_disarm(timers, &e->connect);
    mk_timer_disarm(timers, &e->ping);  /* before it becomes the reaper */
    sio_state_destroy(e->sio);
    e->sio = NULL;
    mk_session_destroy(e->ms);           /* the node gets `end` */
    e->ms = NULL;
    mk_timer_init(&e->ping, eio_reap, e);
    mk_timer_arm(timers, &e->ping, sio_now());
}

/* ---- Client packets ------------------------------------------------------ */

/* One packet from the client, from a POST or the websocket `from`
 * (NULL: a POST). -1 when the session closed. */
static int eio_on_packet(struct eio_session *e, const struct eio_packet *pk,
                         const uint8_t *from)
{
    int probe = from && e->probing && memcmp(from, e->probe, SIO_SID_LEN) == 0;

    if (probe && pk->type == EIO_PING && pk->len == 5 &&
        memcmp(pk->data, "probe", 5) == 0) {
        eio_ws_packet(e->probe, EIO_PONG, 0, "probe", 5, 0);
        eio_answer_noop(e);
        return 0;
    }
    if (probe && pk->type == EIO_UPGRADE) {
        /* the upgrade is done: what waited for a poll goes over it (a
         * poll still waiting has an empty queue: it gets its noop) */
        struct eio_packet queued;
        size_t off = 0;

        memcpy(e->ws, e->probe, SIO_SID_LEN);
        e->has_ws = 1;
        e->probing = 0;
        e->transport = EIO_WEBSOCKET;
        eio_answer_noop(e);
        while (eio_queue_next(e, &off, &queued)) {
            eio_ws_packet(e->ws, queued.type, queued.binary, queued.data,
                          queued.len, 0);
        }
        e->queue.len = 0;
        e->queued = 0;
        return 0;
    }
    if (probe) {
        goto bad;                        /* nothing else before the upgrade */
    }
    switch (pk->type) {
    case EIO_PONG:
        if (e->awaiting_pong) {
            eio_schedule_ping(e);
        }
        return 0;
    case EIO_MESSAGE:
        if (sio_on_client_message(e->sio, pk->data, pk->len,
                                  pk->binary) < 0) {
            if (!e->closing) {
                goto bad;
            }
            return -1;
        }
        return e->closing ? -1 : 0;
    case EIO_CLOSE:
        eio_session_close(e, SIO_CLOSE_CLIENT);
        return -1;
    case EIO_NOOP:
    case EIO_PING:                       /* v4 clients do not ping: ignored */
        return 0;
    default:
        break;                           /* OPEN, an UPGRADE out of place */
    }

bad:
    mk_info("socketio: session %s: a malformed or misplaced packet "
            "(type %d)", e->sid_text, (int) pk->type);
    eio_session_close(e, SIO_CLOSE_PARSE_ERROR);
    return -1;
}

struct eio_post_ctx {
    struct eio_session *e;
    int client_close;                    /* the payload held a close */
};

static int eio_on_posted_packet(void *ctx, const struct eio_packet *pk)
{
    struct eio_post_ctx *pc = ctx;

    if (pk->type == EIO_CLOSE) {
        pc->client_close = 1;
    }
    return eio_on_packet(pc->e, pk, NULL) < 0 ? -1 : 0;
}

/* ---- Messages from polls and websockets -------------------------------- */

/* The sender, its site, and what follows; -1 for a body too short. */
static int eio_from_parse(const uint8_t *body, size_t len,
                          struct eio_from *f, const uint8_t **rest,
                          size_t *rest_len)
{
    if (len < SIO_SID_LEN + 1 || len < SIO_SID_LEN + 1u + body[SIO_SID_LEN]) {
        return -1;
    }
    memcpy(f->sid, body, SIO_SID_LEN);
    f->site_len = body[SIO_SID_LEN];
    memcpy(f->site, body + SIO_SID_LEN + 1, f->site_len);
    *rest = body + SIO_SID_LEN + 1 + f->site_len;
    *rest_len = len - (SIO_SID_LEN + 1u + f->site_len);
    return 0;
}

static int eio_same_site(const struct eio_session *e, const struct eio_from *f)
{
    return strlen(e->site) == f->site_len &&
           memcmp(e->site, f->site, f->site_len) == 0;
}

static void eio_on_get(struct eio_session *e, const struct eio_from *f)
{
    if (e->transport != EIO_POLLING) {
        eio_reply_error(f->sid, EIO_ERR_BAD_REQUEST);
        return;
    }
    if (e->has_poll) {
        /* two polls at once: the client is broken or the sid stolen */
        eio_reply_error(f->sid, EIO_ERR_BAD_REQUEST);
        eio_session_close(e, SIO_CLOSE_OVERLAP);
        return;
    }
    e->has_poll = 1;
    memcpy(e->poll, f->sid, SIO_SID_LEN);
    if (e->queue.len) {
        eio_flush_poll(e);
    }
    else if (e->probing) {
        eio_answer_noop(e);
    }
}

static void eio_on_post(struct eio_session *e, const struct eio_from *f,
                        const uint8_t *data, size_t len)
{
    struct eio_post_ctx pc = { e, 0 };
    uint8_t from[SIO_SID_LEN];

    if (e->transport != EIO_POLLING && !e->probing) {
        eio_reply_error(f->sid, EIO_ERR_BAD_REQUEST);
        return;
    }
    memcpy(from, f->sid, SIO_SID_LEN);
    if (eio_payload_decode((const char *) data, len, eio_on_posted_packet,
                           &pc) < 0 && !pc.client_close) {
        eio_reply_error(from, EIO_ERR_BAD_REQUEST);
        if (!e->closing) {
            mk_info("socketio: session %s: a malformed polling payload",
                    e->sid_text);
            eio_session_close(e, SIO_CLOSE_PARSE_ERROR);
        }
        return;
    }
    eio_reply(from, 200, 1, "ok", 2);
}

static void eio_on_probe(struct eio_session *e, const struct eio_from *f)
{
    if (e->transport != EIO_POLLING || e->probing ||
        !e->set->websocket || !e->set->allow_upgrades) {
        sio_send(f->sid, "eio:refuse", "\x03", 1, 0);
        return;
    }
    e->probing = 1;
    memcpy(e->probe, f->sid, SIO_SID_LEN);
    sio_send(f->sid, "eio:accept", NULL, 0, 0);
}

/* A frame from a websocket transport: its packet, binary or text. */
static void eio_on_frame(struct eio_session *e, const struct eio_from *f,
                         const uint8_t *data, size_t len, int binary)
{
    struct eio_packet pk;
    int current = e->has_ws && memcmp(f->sid, e->ws, SIO_SID_LEN) == 0;
    int probe = e->probing && memcmp(f->sid, e->probe, SIO_SID_LEN) == 0;

    if (!current && !probe) {
        return;                          /* a transport it no longer has */
    }
    if (eio_frame_decode((const char *) data, len, binary, &pk) < 0) {
        mk_info("socketio: session %s: a malformed websocket packet",
                e->sid_text);
        eio_session_close(e, SIO_CLOSE_PARSE_ERROR);
        return;
    }
    eio_on_packet(e, &pk, f->sid);
}

/* A poll or a websocket went away with its connection. */
static void eio_on_gone(struct eio_session *e, const struct eio_from *f)
{
    if (e->has_poll && memcmp(f->sid, e->poll, SIO_SID_LEN) == 0) {
        /* as engine.io: a poll cut short ends the session (what it was
         * to carry is lost with it) */
        e->has_poll = 0;
        eio_session_close(e, SIO_CLOSE_TRANSPORT);
    }
    else if (e->has_ws && memcmp(f->sid, e->ws, SIO_SID_LEN) == 0) {
        e->has_ws = 0;
        eio_session_close(e, SIO_CLOSE_TRANSPORT);
    }
    else if (e->probing && memcmp(f->sid, e->probe, SIO_SID_LEN) == 0) {
        e->probing = 0;                  /* polling goes on */
    }
}

static void eio_session_on_message(void *data, struct mk_session *s,
                                   const char *type, size_t tlen,
                                   const void *body, size_t len,
                                   uint64_t share)
{
    struct eio_session *e = data;
    struct eio_from f;
    const uint8_t *rest;
    size_t rest_len;

    (void) s;
    (void) share;
    if (e->closing || tlen < 5 || memcmp(type, "eio:", 4) != 0 ||
        eio_from_parse(body, len, &f, &rest, &rest_len) < 0) {
        return;
    }
    type += 4;
    tlen -= 4;
    if (tlen == 4 && memcmp(type, "gone", 4) == 0) {
        eio_on_gone(e, &f);
        return;
    }
    if (!eio_same_site(e, &f)) {
        /* a sid is good for the site that issued it only */
        if (tlen == 5 && memcmp(type, "probe", 5) == 0) {
            sio_send(f.sid, "eio:refuse", "\x01", 1, 0);
        }
        else {
            eio_reply_error(f.sid, EIO_ERR_SESSION_UNKNOWN);
        }
        return;
    }
    if (tlen == 4 && memcmp(type, "text", 4) == 0) {
        eio_on_frame(e, &f, rest, rest_len, 0);
    }
    else if (tlen == 6 && memcmp(type, "binary", 6) == 0) {
        eio_on_frame(e, &f, rest, rest_len, 1);
    }
    else if (tlen == 3 && memcmp(type, "get", 3) == 0) {
        eio_on_get(e, &f);
    }
    else if (tlen == 4 && memcmp(type, "post", 4) == 0) {
        eio_on_post(e, &f, rest, rest_len);
    }
    else if (tlen == 5 && memcmp(type, "probe", 5) == 0) {
        eio_on_probe(e, &f);
    }
}

static void eio_session_on_end(void *data, struct mk_session *s, int failed)
{
    struct eio_session *e = data;

    (void) s;
    if (e->closing) {
        return;
    }
    if (failed) {
        /* no DISCONNECT: the client reconnects, maybe to another node */
        eio_session_close(e, SIO_CLOSE_NODE_GONE);
        return;
    }
    sio_on_node_end(e->sio);
    eio_session_close(e, SIO_CLOSE_NODE_END);
}

/* The node has room again: a websocket that stopped reading goes on. */
static void eio_session_on_ready(void *data, struct mk_session *s)
{
    struct eio_session *e = data;

    (void) s;
    if (e->closing) {
        return;
    }
    if (!e->bound) {
        eio_session_bound(e);            /* the first ready: bound */
    }
    else if (e->has_ws) {
        sio_send(e->ws, "eio:ready", NULL, 0, 0);
    }
}

static const struct mk_session_owner eio_session_owner = {
    .on_message = eio_session_on_message,
    .on_ready = eio_session_on_ready,
    .on_end = eio_session_on_end,
};
