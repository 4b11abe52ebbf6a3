/*
 * A WebSocket connection after the 101 (RFC 6455 5-7): frames from the
 * client become messages for the node, messages from the node become
 * frames, control frames are answered here, and the close handshake,
 * pings, idle clients and slow readers are dealt with the same way for
 * every node.
 */
#include <stdatomic.h>
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/websocket/ws.h"

/* Messages shorter than this go uncompressed even with permessage-deflate:
 * the deflate block overhead eats what little they would save. */
#define WS_DEFLATE_MIN 64

static atomic_uint_fast64_t ws_slow_count;
static uint8_t ws_nothing[1];            /* the payload of an empty frame */

/* The last broadcast frame this worker encoded (mk_msg_type: deliveries
 * of one fan-out share an id), so 10,000 members cost one frame, not
 * 10,000. It holds a reference until the next broadcast. */
static _Thread_local struct {
    uint64_t share;
    int op;
    struct mk_shared_buf *frame;
} ws_bcast;

void ws_worker_release(void)
{
    mk_shared_buf_release(ws_bcast.frame);
    ws_bcast.frame = NULL;
    ws_bcast.share = 0;
}

static uint64_t ws_now(const struct ws_conn *ws)
{
    return mk_event_loop_now(mk_worker_loop(mk_conn_worker(ws->c)));
}

/* ---- Timer: pings, idle clients, the close handshake's deadline --------- */

static void ws_arm(struct ws_conn *ws)
{
    const struct ws_settings *s = ws->set;
    uint64_t now = ws_now(ws), due = 0, t;

    if (ws->closing) {
        return;                          /* the close deadline stands */
    }
    if (s->idle_timeout) {
        due = ws->last_rx + s->idle_timeout;
    }
    if (s->ping_interval) {
        t = (ws->last_rx > ws->last_ping ? ws->last_rx : ws->last_ping) +
            s->ping_interval;
        if (!due || t < due) {
            due = t;
        }
    }
    mk_conn_timeout(ws->c, due ? (due > now ? due - now : 1) : 0);
}

/* ---- Writing frames ------------------------------------------------------ */

static int ws_write_frame(struct ws_conn *ws, int op, int rsv1,
                          const void *p, size_t len)
{
    uint8_t head[WS_HEAD_MAX];
    size_t hl = ws_frame_head(head, 1, rsv1, op, len);

    if (mk_conn_write(ws->c, head, hl, MK_WRITE_COPY) < 0) {
        return -1;
    }
    return len ? mk_conn_write(ws->c, p, len, MK_WRITE_COPY) : 0;
}

/* Queues our close frame (once) and closes: what the client sends after
 * it is read and dropped until its answer, for at most CloseTimeout. */
static void ws_close(struct ws_conn *ws, unsigned code, const char *reason)
{
    uint8_t payload[WS_CONTROL_MAX];
    size_t n;

    if (ws->closing) {
        return;
    }
    ws->closing = 1;
    ws->discard = 1;
    n = ws_close_payload(payload, code, reason);
    ws_write_frame(ws, WS_OP_CLOSE, 0, payload, n);
    /* the client's answer ends it (ws_control); CloseTimeout bounds the
     * wait, even behind a slow reader's backlog */
    mk_conn_close_after(ws->c, ws->set->close_timeout);
}

/* A protocol error: the close frame with its code, then the connection
 * goes once that is written (the client's answer is not awaited). */
static int ws_fail(struct ws_conn *ws, unsigned code, const char *why)
{
    mk_debug("[fd %d] websocket: %s: closing with %u", mk_conn_fd(ws->c),
             why, code);
    ws_close(ws, code, why);
    return MK_PROTO_CLOSE;
}

/* Whether `more` bytes still fit in the client's send queue. A client that
 * lets SendQueueLimit fill is closed with SlowReaderCode; one message is
 * always accepted into an empty queue, whatever its size. Every frame we
 * queue passes here (node messages and pongs) but two: our close frame (at
 * most 127 bytes, once; it is how a full queue is answered anyway) and our
 * ping, which goes out only with an empty queue (the core closes a
 * connection whose timer fires with bytes still queued). */
static int ws_room(struct ws_conn *ws, size_t more)
{
    size_t queued = mk_conn_queued(ws->c);

    if (queued == 0 || queued + more <= ws->set->send_queue) {
        return 1;
    }
    mk_warn("websocket: [fd %d] %s: slow reader, %zu bytes queued "
            "(SendQueueLimit %llu): closed with %d (%llu so far)",
            mk_conn_fd(ws->c), mk_conn_peer_str(ws->c), queued,
            (unsigned long long) ws->set->send_queue,
            ws->set->slow_reader_code,
            (unsigned long long) (atomic_fetch_add(&ws_slow_count, 1) + 1));
    ws_close(ws, (unsigned) ws->set->slow_reader_code, "slow reader");
    return 0;
}

static int ws_write_deflated(struct ws_conn *ws, int op, const void *body,
                             size_t len)
{
    struct mk_buf out;
    int ret;

    mk_buf_init(&out);
    ret = ws_deflate_deflate(ws->deflate, body, len, &out);
    if (ret == 0) {
        ret = ws_write_frame(ws, op, 1, out.data, out.len);
    }
    mk_buf_release(&out);
    return ret;
}

/* One fan-out, encoded once per worker: the frame is shared by reference
 * with every member this worker serves. */
static int ws_write_shared(struct ws_conn *ws, int op, const void *body,
                           size_t len, uint64_t share)
{
    if (ws_bcast.share != share || ws_bcast.op != op || !ws_bcast.frame) {
        uint8_t head[WS_HEAD_MAX];
        struct iovec iov[2] = {
            { head, ws_frame_head(head, 1, 0, op, len) },
            { (void *) body, len },
        };
        struct mk_shared_buf *sb = mk_shared_buf_createv(iov, 2);

        if (!sb) {
            return -1;
        }
        mk_shared_buf_release(ws_bcast.frame);
        ws_bcast.frame = sb;
        ws_bcast.share = share;
        ws_bcast.op = op;
    }
    return mk_conn_write_shared(ws->c, ws_bcast.frame);
}

/* A node's `websocket/close`: our close frame with its code and reason
 * (the client's answer is awaited, as after `end`). A body that is not a
 * valid code and UTF-8 reason closes with 1011: the node asked to close,
 * and a wrong code is the node's fault, not the client's. */
static void ws_node_close(struct ws_conn *ws, const void *body, size_t len)
{
    char reason[WS_CONTROL_MAX];
    int code = ws_close_from_node(body, len, reason);

    if (code < 0) {
        mk_warn("[fd %d] websocket: a node's websocket/close holds no valid "
                "close code and UTF-8 reason: closed with 1011",
                mk_conn_fd(ws->c));
        code = 1011;
        reason[0] = '\0';
    }
    ws_close(ws, (unsigned) code, reason[0] ? reason : NULL);
}

/* A node's `websocket` (text) or `websocket/binary` message, for this
 * session or fanned out to it. Not a WebSocket session (yet): ignored, as
 * spec 2.3 FIX says, rather than written into an HTTP stream. */
void ws_on_node_message(void *conf, struct mk_session *s, const char *type,
                        const void *body, size_t len, uint64_t share)
{
    struct mk_conn *c = mk_session_conn(s);
    struct ws_conn *ws = c ? mk_conn_plugin_data(c, &mk_plugin_websocket)
                           : NULL;
    int op = strcmp(type, "websocket") == 0 ? WS_OP_TEXT : WS_OP_BINARY;
    int ret;

    (void) conf;
    if (ws && strcmp(type, "websocket/close") == 0) {
        ws_node_close(ws, body, len);
        return;
    }
    if (!ws || ws->closing || !ws_room(ws, len + WS_HEAD_MAX)) {
        return;
    }
    if (ws->deflate && len >= WS_DEFLATE_MIN) {
        ret = ws_write_deflated(ws, op, body, len);
    }
    else if (share) {
        ret = ws_write_shared(ws, op, body, len, share);
    }
    else {
        ret = ws_write_frame(ws, op, 0, body, len);
    }
    if (ret < 0) {
        mk_conn_close(c, 0);
    }
}

/* ---- Reading frames -------------------------------------------------------- */

/* A whole message for the node. The payload is in `p` (unmasked). */
static int ws_deliver(struct ws_conn *ws, int op, const uint8_t *p,
                      size_t len)
{
    struct mk_session *s = mk_conn_session(ws->c);
    const char *type = op == WS_OP_BINARY &&
                       (ws->set->binary_type ||
                        mk_session_backend_binary_typed(s)) ?
                       "websocket/binary" : "websocket";
    int ret = mk_session_backend_send(s, type, p, len);

    if (ret < 0) {
        return ws_fail(ws, 1011, "the node cannot take messages");
    }
    return MK_PROTO_OK;                  /* 1: held until the backend is ready */
}

/* The message assembled from its frames is complete. */
static int ws_message_done(struct ws_conn *ws)
{
    struct mk_buf plain;
    int op = ws->msg_op, ret;

    ws->msg_op = 0;
    if (ws->msg_deflated) {
        ws->msg_deflated = 0;
        mk_buf_init(&plain);
        ret = ws_deflate_inflate(ws->deflate, (const uint8_t *) ws->msg.data,
                                 ws->msg.len, &plain,
                                 (size_t) ws->set->max_message);
        mk_buf_release(&ws->msg);
        if (ret == WS_DEFLATE_TOO_BIG) {
            mk_buf_release(&plain);
            return ws_fail(ws, 1009, "message over MaxMessageSize");
        }
        if (ret < 0) {
            mk_buf_release(&plain);
            return ws_fail(ws, ret == WS_DEFLATE_CORRUPT ? 1007 : 1011,
                           "cannot inflate a message");
        }
        if (op == WS_OP_TEXT &&
            !ws_utf8_is_valid((const uint8_t *) plain.data, plain.len)) {
            mk_buf_release(&plain);
            return ws_fail(ws, 1007, "text message not UTF-8");
        }
        ret = ws_deliver(ws, op, (const uint8_t *) plain.data, plain.len);
        mk_buf_release(&plain);
        return ret;
    }
    if (op == WS_OP_TEXT && !ws_utf8_done(&ws->utf8)) {
        return ws_fail(ws, 1007, "text message not UTF-8");
    }
    ret = ws_deliver(ws, op, (const uint8_t *) ws->msg.data, ws->msg.len);
    mk_buf_release(&ws->msg);            /* an idle connection holds none */
    return ret;
}

/* A header just parsed: is this frame allowed here? (5.1-5.5, 7692 6.1) */
static int ws_frame_check(struct ws_conn *ws)
{
    const struct ws_frame *f = &ws->f;
    int data = f->opcode == WS_OP_TEXT || f->opcode == WS_OP_BINARY;

    if (!f->masked) {
        return ws_fail(ws, 1002, "unmasked client frame");
    }
    if ((f->rsv & ~WS_RSV1) ||
        ((f->rsv & WS_RSV1) && (!ws->deflate || !data))) {
        return ws_fail(ws, 1002, "RSV bits without an extension");
    }
    if (f->opcode == WS_OP_CONT && !ws->msg_op) {
        return ws_fail(ws, 1002, "continuation without a message");
    }
    if (data && ws->msg_op) {
        return ws_fail(ws, 1002, "new message inside a fragmented one");
    }
    if ((data || f->opcode == WS_OP_CONT) &&
        f->len + ws->msg.len > ws->set->max_message) {
        return ws_fail(ws, 1009, "message over MaxMessageSize");
    }
    if (data) {
        ws->msg_op = f->opcode;
        ws->msg_deflated = (f->rsv & WS_RSV1) != 0;
        ws_utf8_init(&ws->utf8);
    }
    return MK_PROTO_OK;
}

static int ws_control(struct ws_conn *ws, const uint8_t *p, size_t len)
{
    unsigned code;

    switch (ws->f.opcode) {
    case WS_OP_PING:
        /* a client that pings and never reads our pongs fills its queue
         * like one that reads no messages: it is a slow reader too */
        if (ws->closing || !ws_room(ws, len + WS_HEAD_MAX)) {
            return MK_PROTO_OK;
        }
        if (ws_write_frame(ws, WS_OP_PONG, 0, p, len) < 0) {
            return MK_PROTO_CLOSE;
        }
        return MK_PROTO_OK;
    case WS_OP_PONG:
        return MK_PROTO_OK;              /* its arrival counted as life */
    default:                             /* WS_OP_CLOSE */
        break;
    }
    if (len == 1) {
        return ws_fail(ws, 1002, "close frame of one byte");
    }
    code = len ? (unsigned) (p[0] << 8 | p[1]) : 0;
    if (len && !ws_close_code_valid(code)) {
        return ws_fail(ws, 1002, "invalid close code");
    }
    if (len > 2 && !ws_utf8_is_valid(p + 2, len - 2)) {
        return ws_fail(ws, 1007, "close reason not UTF-8");
    }
    if (!ws->closing) {
        /* the client closes first: its node hears the code and reason
         * (the payload as it came, empty when it gave none) before `end`;
         * a BlastBeat node ignores the type (spec 1.3) */
        mk_session_backend_send(mk_conn_session(ws->c), "websocket/close",
                                p, len);
        ws_close(ws, code ? code : 1000, NULL);   /* echo its code (5.5.1) */
    }
    return MK_PROTO_CLOSE;               /* written, then the TCP close */
}

/* Payload bytes of a data frame: unmasked in place, checked, and either
 * handed over in place (a whole single-frame message already in the
 * buffer, the usual case) or appended to the message. */
static int ws_data(struct ws_conn *ws, uint8_t *p, size_t n)
{
    struct ws_frame *f = &ws->f;

    ws_mask(p, n, f->mask, ws->frame_got);
    ws->frame_got += n;
    if (ws->discard) {
        return MK_PROTO_OK;
    }
    if (ws->msg_op == WS_OP_TEXT && !ws->msg_deflated &&
        ws_utf8_feed(&ws->utf8, p, n) < 0) {
        return ws_fail(ws, 1007, "text message not UTF-8");
    }
    if (f->fin && f->opcode != WS_OP_CONT && ws->frame_got == n &&
        n == f->len && !ws->msg_deflated) {
        int op = ws->msg_op;

        ws->msg_op = 0;
        if (op == WS_OP_TEXT && !ws_utf8_done(&ws->utf8)) {
            return ws_fail(ws, 1007, "text message not UTF-8");
        }
        return ws_deliver(ws, op, p, n);
    }
    if (mk_buf_append(&ws->msg, (const char *) p, n) < 0) {
        return ws_fail(ws, 1011, "out of memory for a message");
    }
    if (ws->frame_got == f->len && f->fin) {
        return ws_message_done(ws);
    }
    return MK_PROTO_OK;
}

static int ws_on_read(struct mk_conn *c)
{
    struct ws_conn *ws = mk_conn_proto_data(c);
    struct mk_ptr in;
    size_t n;
    int ret;

    for (;;) {
        if (mk_session_backend_held(mk_conn_session(c)) ||
            mk_conn_input(c).len == 0) {
            break;                       /* the node's queue first */
        }
        in = mk_conn_input(c);
        if (!ws->in_frame) {
            ret = ws_frame_parse((const uint8_t *) in.data, in.len, &ws->f);
            if (ret == WS_FRAME_MORE) {
                break;
            }
            if (ret != WS_FRAME_OK) {
                return ws_fail(ws, 1002, "malformed frame header");
            }
            ws->last_rx = ws_now(ws);
            mk_conn_consume(c, ws->f.head_len);
            ws->in_frame = 1;
            ws->frame_got = 0;
            if (!ws->discard && ws_frame_check(ws) != MK_PROTO_OK) {
                return MK_PROTO_CLOSE;
            }
            if (ws->f.len > 0) {
                continue;                /* the payload, from the new input */
            }
            in.data = (char *) ws_nothing;
            in.len = 0;                  /* no payload: handled below */
        }
        if (ws->f.opcode >= WS_OP_CLOSE) {
            if (in.len < ws->f.len) {
                break;                   /* <= 125 bytes: wait for all */
            }
            ws_mask((uint8_t *) in.data, ws->f.len, ws->f.mask, 0);
            ws->in_frame = 0;
            ret = ws_control(ws, (const uint8_t *) in.data, ws->f.len);
            mk_conn_consume(c, ws->f.len);
            if (ret != MK_PROTO_OK) {
                return ret;
            }
            continue;
        }
        n = ws->f.len - ws->frame_got < in.len ?
            (size_t) (ws->f.len - ws->frame_got) : in.len;
        if (n == 0 && ws->f.len > 0) {
            break;
        }
        ret = ws_data(ws, (uint8_t *) in.data, n);
        mk_conn_consume(c, n);
        if (ws->frame_got == ws->f.len) {
            ws->in_frame = 0;
        }
        if (ret != MK_PROTO_OK) {
            return ret;
        }
    }
    if (mk_conn_input(c).len == 0 && mk_conn_is_eof(c)) {
        return MK_PROTO_CLOSE;           /* gone without a close frame */
    }
    return MK_PROTO_OK;
}

static int ws_on_timeout(struct mk_conn *c)
{
    struct ws_conn *ws = mk_conn_proto_data(c);
    const struct ws_settings *s = ws->set;
    uint64_t now = ws_now(ws);
    uint64_t quiet = ws->last_rx > ws->last_ping ? ws->last_rx
                                                  : ws->last_ping;

    if (ws->closing) {
        mk_debug("[fd %d] websocket: no close from the client within "
                 "CloseTimeout", mk_conn_fd(c));
        return MK_PROTO_CLOSE;
    }
    if (s->idle_timeout && now - ws->last_rx >= s->idle_timeout) {
        mk_debug("[fd %d] websocket: idle for IdleTimeout", mk_conn_fd(c));
        ws_close(ws, 1001, "idle");
        return MK_PROTO_OK;
    }
    if (s->ping_interval && now - quiet >= s->ping_interval) {
        ws->last_ping = now;
        if (ws_write_frame(ws, WS_OP_PING, 0, NULL, 0) < 0) {
            return MK_PROTO_CLOSE;
        }
    }
    ws_arm(ws);
    return MK_PROTO_OK;
}

/* The node ended the session (`end`), or its node is gone. */
static int ws_on_end(struct mk_conn *c, int failed)
{
    struct ws_conn *ws = mk_conn_proto_data(c);

    ws_close(ws, failed ? 1011 : 1000, failed ? "node gone" : NULL);
    return MK_PROTO_OK;                  /* wait for the client's close */
}

static void ws_on_close(struct mk_conn *c)
{
    struct ws_conn *ws = mk_conn_proto_data(c);

    if (!ws) {
        return;
    }
    if (ws->deflate) {
        ws_deflate_destroy(ws->deflate);
    }
    if (ws->deflate_reserved) {
        atomic_fetch_sub(ws->deflate_used, ws->deflate_reserved);
    }
    mk_buf_release(&ws->msg);
    mk_conn_set_plugin_data(c, &mk_plugin_websocket, NULL);
    mk_mem_free(ws);
}

const struct mk_proto ws_proto = {
    .name       = "websocket",
    .on_read    = ws_on_read,
    .on_timeout = ws_on_timeout,
    .on_close   = ws_on_close,
    .on_end     = ws_on_end,
};

struct ws_conn *ws_conn_create(struct mk_conn *c, const struct ws_settings *set,
                               struct ws_deflate *deflate,
                               atomic_size_t *deflate_used, size_t reserved)
{
    struct ws_conn *ws = mk_mem_zalloc(sizeof(*ws));

    if (!ws) {
        return NULL;
    }
    ws->c = c;
    ws->set = set;
    ws->deflate = deflate;
    ws->deflate_used = deflate_used;
    ws->deflate_reserved = reserved;
    mk_buf_init(&ws->msg);
    ws->last_rx = ws->last_ping = ws_now(ws);
    /* this plugin keeps the queue to SendQueueLimit itself (ws_room: one
     * message past it at most, plus our close frame); the core's
     * WriteQueueLimit would close a client mid-message instead */
    mk_conn_set_write_limit(c, (size_t) -1 / 2);
    mk_conn_set_plugin_data(c, &mk_plugin_websocket, ws);
    ws_arm(ws);
    return ws;
}
