/*
 * The Socket.IO v5 layer of an Engine.IO session: namespaces joined (by
 * Tremolo at once, or by the node: NodeConnect), a client's packets as
 * the node messages of spec 7.8, and the node's messages as packets. A
 * binary packet waits here for its attachments. A group broadcast is
 * encoded once per worker: deliveries with the same `share` reuse it.
 */
#include <string.h>

#include "mk_core/mk_list.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/socketio/socketio.h"
#include "plugins/socketio/sio_json.h"

enum { NSP_CONNECTING = 0, NSP_CONNECTED = 1 };

struct sio_nsp {
    struct mk_list _head;
    struct sio_state *st;
    int state;
    struct mk_timer timer;             /* the node's decision, NodeConnect node */
    size_t len;
    char name[];                       /* NUL-terminated */
};

struct sio_state {
    struct eio_session *e;
    struct mk_list nsps;
    /* a BINARY_EVENT / BINARY_ACK waiting for its attachments */
    int assembling;
    struct mk_buf text;                /* the packet, copied */
    struct mk_buf att;                 /* attachments back to back */
    size_t att_len[SIO_ATTACHMENTS_MAX];
    unsigned att_got;
};

/* One encoded broadcast per worker: the last share seen. */
struct sio_bcast {
    uint64_t share;
    char type;
    int ok;
    char nsp[SIO_NSP_MAX];
    size_t nsp_len;
    struct sio_out out;
};
static _Thread_local struct sio_bcast sio_bcast;
static _Thread_local int sio_bcast_ready;

static _Thread_local struct sio_out sio_scratch;
static _Thread_local int sio_scratch_ready;

static struct sio_out *sio_out_scratch(void)
{
    if (!sio_scratch_ready) {
        sio_out_init(&sio_scratch);
        sio_scratch_ready = 1;
    }
    sio_out_reset(&sio_scratch);
    return &sio_scratch;
}

struct sio_state *sio_state_create(struct eio_session *e)
{
    struct sio_state *st = mk_mem_zalloc(sizeof(*st));

    if (!st) {
        return NULL;
    }
    st->e = e;
    mk_list_init(&st->nsps);
    mk_buf_init(&st->text);
    mk_buf_init(&st->att);
    return st;
}

static void sio_nsp_free(struct sio_nsp *n)
{
    mk_timer_disarm(sio_worker()->timers, &n->timer);
    mk_list_del(&n->_head);
    mk_mem_free(n);
}

void sio_state_destroy(struct sio_state *st)
{
    struct mk_list *pos, *tmp;

    if (!st) {
        return;
    }
    mk_list_foreach_safe(pos, tmp, &st->nsps) {
        sio_nsp_free(mk_list_entry(pos, struct sio_nsp, _head));
    }
    mk_buf_release(&st->text);
    mk_buf_release(&st->att);
    mk_mem_free(st);
}

int sio_state_joined(const struct sio_state *st)
{
    return !mk_list_is_empty(&st->nsps);
}

static struct sio_nsp *sio_nsp_find(struct sio_state *st, const char *name,
                                    size_t len)
{
    struct mk_list *pos;

    mk_list_foreach(pos, &st->nsps) {
        struct sio_nsp *n = mk_list_entry(pos, struct sio_nsp, _head);
        if (n->len == len && memcmp(n->name, name, len) == 0) {
            return n;
        }
    }
    return NULL;
}

static int sio_nsp_allowed(const struct sio_settings *set, const char *name,
                           size_t len)
{
    size_t i;

    if (set->any_namespace) {
        return 1;
    }
    if (!set->namespaces) {
        return len == 1 && name[0] == '/';
    }
    for (i = 0; i < set->namespaces->count; i++) {
        const char *v = set->namespaces->values[i];
        if (strlen(v) == len && memcmp(v, name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

void sio_session_worker_exit(void)
{
    if (sio_scratch_ready) {
        sio_out_release(&sio_scratch);
        sio_scratch_ready = 0;
    }
    if (sio_bcast_ready) {
        sio_out_release(&sio_bcast.out);
        sio_bcast_ready = 0;
    }
}

/* ---- To the node -------------------------------------------------------------- */

static void sio_to_node(struct sio_state *st, const char *type,
                        const struct mk_buf *b)
{
    /* a backend that is full (1) still took it: the node's queue is
     * bounded by the gateway's credit window and the client's pace */
    mk_session_backend_send(eio_session_ms(st->e), type, b->data, b->len);
}

static void sio_send_packet(struct sio_state *st, struct sio_out *o)
{
    eio_session_send(st->e, o, 0);
}

static void sio_connect_error(struct sio_state *st, const char *nsp,
                              size_t len, const char *message)
{
    struct sio_out *o = sio_out_scratch();
    struct mk_buf *msg = &sio_worker()->text;

    msg->len = 0;
    if (sio_json_append_string(msg, message, strlen(message)) < 0 ||
        sio_encode_connect_error(o, nsp, len,
                                 mk_ptr_make(msg->data, msg->len),
                                 MK_PTR_NONE) < 0) {
        return;
    }
    sio_send_packet(st, o);
}

static void sio_connected(struct sio_state *st, struct sio_nsp *n,
                          struct mk_ptr data)
{
    struct sio_out *o = sio_out_scratch();
    char sid[SIO_SID_TEXT_LEN + 1];

    n->state = NSP_CONNECTED;
    mk_timer_disarm(sio_worker()->timers, &n->timer);
    sio_sid_text(eio_session_sid(st->e), sid);
    if (sio_encode_connect(o, n->name, n->len, sid, data) == 0) {
        sio_send_packet(st, o);
    }
}

static void sio_on_node_decision_timeout(struct mk_timer *t, void *data)
{
    struct sio_nsp *n = data;
    struct sio_state *st = n->st;

    (void) t;
    mk_info("socketio: a node did not accept namespace %s within "
            "ConnectTimeout", n->name);
    sio_connect_error(st, n->name, n->len, "Connection timeout");
    sio_nsp_free(n);
}

static int sio_on_connect(struct sio_state *st, const struct sio_packet *pk)
{
    const struct sio_settings *set = eio_session_settings(st->e);
    struct mk_buf b;
    struct sio_nsp *n;

    if (!sio_nsp_allowed(set, pk->nsp.data, pk->nsp.len)) {
        sio_connect_error(st, pk->nsp.data, pk->nsp.len, "Invalid namespace");
        return 0;
    }
    if (sio_nsp_find(st, pk->nsp.data, pk->nsp.len)) {
        return 0;                        /* joined already */
    }
    n = mk_mem_zalloc(sizeof(*n) + pk->nsp.len + 1);
    if (!n) {
        return -1;
    }
    n->st = st;
    n->len = pk->nsp.len;
    memcpy(n->name, pk->nsp.data, pk->nsp.len);
    mk_timer_init(&n->timer, sio_on_node_decision_timeout, n);
    mk_list_add(&n->_head, &st->nsps);
    mk_buf_init(&b);
    if (sio_node_connect(&b, pk->nsp, pk->data) == 0) {
        sio_to_node(st, "socket.io/connect", &b);
    }
    mk_buf_release(&b);
    if (set->node_connect) {
        mk_timer_arm(sio_worker()->timers, &n->timer,
                     sio_now() + set->connect_timeout);
    }
    else {
        sio_connected(st, n, MK_PTR_NONE);
    }
    return 0;
}

static int sio_on_disconnect(struct sio_state *st, const struct sio_packet *pk)
{
    struct sio_nsp *n = sio_nsp_find(st, pk->nsp.data, pk->nsp.len);
    struct mk_buf b;

    if (!n) {
        return 0;
    }
    sio_nsp_free(n);
    mk_buf_init(&b);
    if (sio_node_nsp(&b, pk->nsp) == 0) {
        sio_to_node(st, "socket.io/disconnect", &b);
    }
    mk_buf_release(&b);
    return 0;
}

/* A whole packet (its attachments, if any, in att). */
static int sio_dispatch(struct sio_state *st, const struct sio_packet *pk,
                        const struct mk_ptr *att, size_t natt)
{
    struct sio_nsp *n;
    struct mk_buf b;
    int ret;

    switch (pk->type) {
    case SIO_CONNECT:
        return sio_on_connect(st, pk);
    case SIO_DISCONNECT:
        return sio_on_disconnect(st, pk);
    default:
        break;
    }
    n = sio_nsp_find(st, pk->nsp.data, pk->nsp.len);
    if (!n || n->state != NSP_CONNECTED) {
        return 0;                        /* not joined: dropped (7.8) */
    }
    mk_buf_init(&b);
    ret = sio_node_body(&b, pk, att, natt);
    if (ret == 0) {
        sio_to_node(st, pk->type == SIO_EVENT || pk->type == SIO_BINARY_EVENT
                        ? "socket.io/event" : "socket.io/ack", &b);
    }
    mk_buf_release(&b);
    return ret;
}

int sio_on_client_message(struct sio_state *st, const char *data,
                          size_t len, int binary)
{
    struct sio_packet pk;
    struct mk_ptr att[SIO_ATTACHMENTS_MAX];
    const char *p;
    unsigned i;
    int ret;

    if (binary) {
        if (!st->assembling || mk_buf_append(&st->att, data, len) < 0) {
            return -1;                   /* an attachment nobody announced */
        }
        st->att_len[st->att_got++] = len;
        if (sio_packet_decode(st->text.data, st->text.len, &pk) < 0) {
            return -1;
        }
        if (st->att_got < pk.attachments) {
            return 0;
        }
        for (i = 0, p = st->att.data; i < st->att_got; i++) {
            att[i] = mk_ptr_make(p, st->att_len[i]);
            p += st->att_len[i];
        }
        ret = sio_dispatch(st, &pk, att, st->att_got);
        st->assembling = 0;
        st->att_got = 0;
        st->text.len = 0;
        st->att.len = 0;
        if (st->att.size > 64 * 1024) {
            mk_buf_release(&st->att);
        }
        return ret;
    }
    if (st->assembling || sio_packet_decode(data, len, &pk) < 0) {
        return -1;                       /* text where an attachment was due */
    }
    if (pk.attachments == 0) {
        return sio_dispatch(st, &pk, NULL, 0);
    }
    st->text.len = 0;
    if (mk_buf_append(&st->text, data, len) < 0) {
        return -1;
    }
    st->assembling = 1;
    st->att_got = 0;
    return 0;
}

/* ---- From the node -------------------------------------------------------------- */

void sio_on_node_end(struct sio_state *st)
{
    struct mk_list *pos;

    mk_list_foreach(pos, &st->nsps) {
        struct sio_nsp *n = mk_list_entry(pos, struct sio_nsp, _head);
        struct sio_out *o = sio_out_scratch();
        if (n->state == NSP_CONNECTED &&
            sio_encode_disconnect(o, n->name, n->len) == 0) {
            sio_send_packet(st, o);
        }
    }
}


/* Encodes a node's event/ack/msg/json into o; its namespace in *nsp. */
static int sio_encode_node(char kind, const void *body, size_t len,
                           struct sio_out *o, char *nsp, size_t *nsp_len)
{
    struct sio_node_msg m;

    if (kind == 'm' || kind == 'j') {
        nsp[0] = '/';
        *nsp_len = 1;
        return sio_encode_message(o, body, len, kind == 'j');
    }
    if (sio_node_parse(body, len, &m) < 0) {
        return -1;
    }
    memcpy(nsp, m.nsp, m.nsp_len);
    *nsp_len = m.nsp_len;
    return kind == 'e' ? sio_encode_event(o, &m) : sio_encode_ack(o, &m);
}

static void sio_node_emit(struct sio_state *st, char kind, const void *body,
                          size_t len, uint64_t share)
{
    struct sio_bcast *bc = &sio_bcast;
    struct sio_nsp *n;

    if (!sio_bcast_ready) {
        sio_out_init(&bc->out);
        sio_bcast_ready = 1;
    }
    if (!share || bc->share != share || bc->type != kind) {
        sio_out_reset(&bc->out);
        bc->share = share;
        bc->type = kind;
        bc->ok = sio_encode_node(kind, body, len, &bc->out, bc->nsp,
                                 &bc->nsp_len) == 0;
        if (!bc->ok) {
            mk_warn("socketio: a node's socket.io/%s body is not what spec "
                    "7.8 says: dropped",
                    kind == 'e' ? "event" : kind == 'a' ? "ack" :
                    kind == 'j' ? "json" : "msg");
        }
    }
    if (!bc->ok) {
        return;
    }
    n = sio_nsp_find(st, bc->nsp, bc->nsp_len);
    if (!n || n->state != NSP_CONNECTED) {
        return;                          /* not in that namespace */
    }
    eio_session_send(st->e, &bc->out, share);
}

static void sio_node_connect_answer(struct sio_state *st, int accept,
                                    const void *body, size_t len)
{
    struct sio_node_msg m;
    struct sio_nsp *n;
    struct sio_out *o;

    if (sio_node_parse(body, len, &m) < 0) {
        mk_warn("socketio: a node's socket.io/%s body is not a JSON object "
                "with an nsp: dropped", accept ? "connect" : "connect_error");
        return;
    }
    n = sio_nsp_find(st, m.nsp, m.nsp_len);
    if (!n) {
        return;                          /* the client left it meanwhile */
    }
    if (accept) {
        if (n->state == NSP_CONNECTING) {
            sio_connected(st, n, m.data);
        }
        return;
    }
    o = sio_out_scratch();
    if (sio_encode_connect_error(o, m.nsp, m.nsp_len,
                                 m.message.data ? m.message
                                 : MK_PTR_LIT("\"Connection refused\""),
                                 m.data) == 0) {
        sio_send_packet(st, o);
    }
    sio_nsp_free(n);
}

static void sio_node_end_nsp(struct sio_state *st, const void *body,
                             size_t len)
{
    struct sio_node_msg m;
    struct sio_nsp *n;
    struct sio_out *o;

    if (len == 0) {
        sio_on_node_end(st);
        eio_session_close(st->e, SIO_CLOSE_NODE_END);
        return;
    }
    if (sio_node_parse(body, len, &m) < 0) {
        mk_warn("socketio: a node's socket.io/end body is neither empty nor "
                "{\"nsp\":...}: dropped");
        return;
    }
    n = sio_nsp_find(st, m.nsp, m.nsp_len);
    if (!n) {
        return;
    }
    o = sio_out_scratch();
    if (n->state == NSP_CONNECTED) {
        if (sio_encode_disconnect(o, n->name, n->len) == 0) {
            sio_send_packet(st, o);
        }
    }
    else if (sio_encode_connect_error(o, n->name, n->len,
                                      MK_PTR_LIT("\"Connection refused\""),
                                      MK_PTR_NONE) == 0) {
        sio_send_packet(st, o);          /* a join still waiting: refused */
    }
    sio_nsp_free(n);
}

void sio_on_node_message(void *conf, struct mk_session *s, const char *type,
                         const void *body, size_t len, uint64_t share)
{
    struct eio_session *e = eio_session_of(s);
    const char *t = type + sizeof("socket.io/") - 1;
    struct sio_state *st;

    (void) conf;
    if (!e) {
        mk_debug("socketio: %s for a session that is not socket.io's: "
                 "ignored", type);
        return;
    }
    st = eio_session_state(e);
    if (strcmp(t, "event") == 0) {
        sio_node_emit(st, 'e', body, len, share);
    }
    else if (strcmp(t, "ack") == 0) {
        sio_node_emit(st, 'a', body, len, share);
    }
    else if (strcmp(t, "msg") == 0) {
        sio_node_emit(st, 'm', body, len, share);
    }
    else if (strcmp(t, "json") == 0) {
        sio_node_emit(st, 'j', body, len, share);
    }
    else if (strcmp(t, "connect") == 0) {
        sio_node_connect_answer(st, 1, body, len);
    }
    else if (strcmp(t, "connect_error") == 0) {
        sio_node_connect_answer(st, 0, body, len);
    }
    else if (strcmp(t, "end") == 0) {
        sio_node_end_nsp(st, body, len);
    }
}
