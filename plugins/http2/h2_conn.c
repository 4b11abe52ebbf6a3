/*
 * The HTTP/2 connection: an nghttp2 server session fed from the
 * connection's input and writing into its write queue, as the core's
 * protocol handler (mk_proto). Frames are serialised once per event batch
 * (the posted pass), so the DATA of many streams leave in one writev.
 *
 * Defences nghttp2 leaves to its user are counted here, each ending in
 * GOAWAY ENHANCE_YOUR_CALM: client resets (CVE-2023-44487), CONTINUATION
 * frames per header block (CVE-2024-27316 class), control frames and
 * empty DATA frames (SETTINGS, PING, PRIORITY floods: CVE-2019-9512,
 * 9515, 9516 and the like). The library's own limits (max_outbound_ack,
 * max_settings, and where it has them its reset rate and CONTINUATION
 * count) stay set, higher, as a second line.
 */
#include <string.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/http2/http2.h"

/* Output is serialised while the connection's queue holds less than this:
 * a client that reads slowly gets no more than this in kernel-bound
 * buffers from us, and nghttp2 keeps the rest (bounded by the streams'
 * windows and WriteQueueLimit). */
#define H2_OUT_HIGH (256 * 1024)

/* ---- Defences ------------------------------------------------------------ */

static int h2_terminate(struct h2_conn *hc, uint32_t code)
{
    if (!hc->terminated) {
        hc->terminated = 1;
        hc->shutdown = 1;
        mk_conn_linger(hc->c);         /* let the GOAWAY arrive */
        nghttp2_session_terminate_session(hc->ng, code);
    }
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Takes one token from a bucket of `rate` per second (burst 2 x rate):
 * 0, or -1 when empty. */
static int h2_bucket_take(struct h2_bucket *b, uint32_t rate)
{
    uint64_t now = mk_clock_monotonic_ms(), burst = 2000ULL * rate;

    if (b->at == 0) {
        b->milli = burst;
    }
    else {
        b->milli += (now - b->at) * rate;
        if (b->milli > burst) {
            b->milli = burst;
        }
    }
    b->at = now;
    if (b->milli < 1000) {
        return -1;
    }
    b->milli -= 1000;
    return 0;
}

/* Ends the connection for a flood; from a callback, its return value
 * stops nghttp2 at once (parsing on after terminating is not allowed). */
static int h2_calm(struct h2_conn *hc, const char *what)
{
    mk_warn("[fd %d] http2: client %s: %s; GOAWAY ENHANCE_YOUR_CALM",
            mk_conn_fd(hc->c), mk_conn_peer_str(hc->c), what);
    return h2_terminate(hc, NGHTTP2_ENHANCE_YOUR_CALM);
}

int h2_conn_over_limit(const struct h2_conn *hc)
{
    const struct mk_list *it;
    size_t held = mk_conn_queued(hc->c);

    mk_list_foreach(it, &hc->streams) {
        held += mk_list_entry(it, struct h2_stream, _head)->out_mem;
    }
    return held > mk_conn_write_limit(hc->c);
}

/* ---- nghttp2 callbacks ---------------------------------------------------- */

static ssize_t h2_on_send(nghttp2_session *ng, const uint8_t *data,
                          size_t len, int flags, void *user)
{
    struct h2_conn *hc = user;

    (void) ng;
    (void) flags;
    if (mk_conn_queued(hc->c) >= H2_OUT_HIGH) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (mk_conn_write(hc->c, data, len, MK_WRITE_COPY) < 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t) len;
}

static int h2_on_send_data(nghttp2_session *ng, nghttp2_frame *frame,
                           const uint8_t *framehd, size_t length,
                           nghttp2_data_source *source, void *user)
{
    struct h2_conn *hc = user;

    (void) ng;
    (void) frame;
    if (mk_conn_queued(hc->c) >= H2_OUT_HIGH) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    hc->data_at = mk_clock_monotonic_ms();     /* the client reads */
    return h2_stream_write_data(source->ptr, framehd, length) < 0
           ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int h2_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd,
                             void *user)
{
    struct h2_conn *hc = user;

    if (hd->type == NGHTTP2_HEADERS) {
        hc->continuations = 0;
        /* RFC 9113 5.1.1: a new stream's id is above every earlier one;
         * nghttp2 1.52 drops a lower one silently instead of failing */
        if ((hd->stream_id & 1) && hd->stream_id <= hc->max_client_id &&
            !nghttp2_session_find_stream(ng, hd->stream_id)) {
            mk_info("[fd %d] http2: client %s: stream %d after %d",
                    mk_conn_fd(hc->c), mk_conn_peer_str(hc->c),
                    hd->stream_id, hc->max_client_id);
            return h2_terminate(hc, NGHTTP2_PROTOCOL_ERROR);
        }
        if ((hd->stream_id & 1) && hd->stream_id > hc->max_client_id) {
            hc->max_client_id = hd->stream_id;
        }
    }
    else if (hd->type == NGHTTP2_CONTINUATION &&
             ++hc->continuations > hc->set->max_continuations) {
        h2_calm(hc, "CONTINUATION frames past MaxContinuations");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame,
                               void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *hs;

    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;                      /* trailers: the stream exists */
    }
    hs = h2_stream_new(hc, frame->hd.stream_id);
    if (!hs) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, hs);
    return 0;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *frame,
                        const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user)
{
    struct h2_stream *hs;

    (void) flags;
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;                      /* trailer fields are not kept */
    }
    hs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!hs) {
        return 0;
    }
    return h2_stream_header(hs, name, namelen, value, valuelen) < 0
           ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame,
                            void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *hs = NULL;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    if (frame->hd.stream_id) {
        hs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    }
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!hs) {
            break;
        }
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            h2_stream_begin(hs, end);
        }
        else if (end) {
            h2_stream_body_end(hs);    /* trailers end the body */
        }
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !end &&
            h2_bucket_take(&hc->control, hc->set->control_rate) < 0) {
            return h2_calm(hc, "a flood of empty DATA frames");
        }
        if (hs && end) {
            h2_stream_body_end(hs);
        }
        break;
    case NGHTTP2_RST_STREAM:
        if (h2_bucket_take(&hc->resets, hc->set->reset_rate) < 0) {
            return h2_calm(hc, "stream resets past ResetRate (rapid reset)");
        }
        break;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            break;
        }
        /* fall through */
    case NGHTTP2_PRIORITY:
        if (h2_bucket_take(&hc->control, hc->set->control_rate) < 0) {
            return h2_calm(hc, "control frames past ControlRate");
        }
        break;
    default:
        break;
    }
    return 0;
}

static int h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id,
                            const uint8_t *data, size_t len, void *user)
{
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, id);

    (void) flags;
    /* the connection's window never waits for a handler */
    nghttp2_session_consume_connection(ng, len);
    if (!hs) {
        return 0;
    }
    h2_stream_data(hs, data, len);
    return 0;
}

/* A stream the server ended while the client still sends its request
 * body: RST_STREAM NO_ERROR tells it to stop (RFC 9113 8.1). */
static int h2_on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame,
                            void *user)
{
    struct h2_stream *hs;

    (void) user;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    hs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (hs && !hs->body_ended &&
        nghttp2_session_get_stream_remote_close(ng, frame->hd.stream_id) == 0) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    }
    return 0;
}

/* The stream is gone for nghttp2; ours is freed after the callback (its
 * stage 40 and the backend's end must not run inside the library). */
static int h2_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code,
                              void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, id);

    (void) code;
    if (!hs) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    hs->closed = 1;
    mk_list_del(&hs->_head);
    mk_list_add(&hs->_head, &hc->closed);
    return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    nghttp2_session_callbacks *cb;

    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return NULL;
    }
    nghttp2_session_callbacks_set_send_callback(cb, h2_on_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, h2_on_send_data);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb,
                                                          h2_on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
                                                            h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
                                                              h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb,
                                                           h2_on_stream_close);
    return cb;
}

/* ---- The connection ------------------------------------------------------ */

const struct h2_settings *h2_settings_for(struct mk_conn *c)
{
    struct mk_vhost *vh = mk_conn_default_vhost(c);
    struct h2_conf *g;
    size_t n = 0;
    void **site;

    if (vh) {
        site = mk_vhost_plugin_confs(vh, &mk_plugin_http2, &n);
        if (site && n > 0) {
            return &((struct h2_conf *) site[0])->set;
        }
    }
    g = mk_server_plugin_conf(mk_conn_server(c), &mk_plugin_http2);
    return &g->set;
}

static int h2_session_new(struct h2_conn *hc)
{
    const struct h2_settings *set = hc->set;
    nghttp2_session_callbacks *cb = h2_callbacks();
    nghttp2_option *opt;
    int rc;

    if (!cb || nghttp2_option_new(&opt) != 0) {
        if (cb) {
            nghttp2_session_callbacks_del(cb);
        }
        return -1;
    }
    /* the streams' windows open as their handlers take the body */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
#ifdef TREMOLO_NGHTTP2_RESET_RATE
    /* the library's own lines, behind ours */
    nghttp2_option_set_stream_reset_rate_limit(opt, 8ULL * set->reset_rate,
                                               4 * set->reset_rate);
#endif
#ifdef TREMOLO_NGHTTP2_MAX_CONTINUATIONS
    nghttp2_option_set_max_continuations(opt, 2 * set->max_continuations);
#endif
    rc = nghttp2_session_server_new2(&hc->ng, cb, hc, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return rc == 0 ? 0 : -1;
}

static int h2_submit_settings(struct h2_conn *hc)
{
    const struct h2_settings *set = hc->set;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, set->max_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, set->initial_window },
        { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, set->max_frame },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, set->max_header_list },
        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, set->header_table },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
    };

    if (nghttp2_submit_settings(hc->ng, NGHTTP2_FLAG_NONE, iv,
                                sizeof(iv) / sizeof(iv[0])) != 0) {
        return -1;
    }
    if (set->conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
        nghttp2_session_set_local_window_size(hc->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t) set->conn_window) != 0) {
        return -1;
    }
    return 0;
}

struct h2_conn *h2_conn_create(struct mk_conn *c, const struct h2_settings *set,
                               const uint8_t *upgrade_settings, size_t len,
                               int head_request)
{
    struct h2_conn *hc = mk_mem_zalloc(sizeof(*hc));

    if (!hc) {
        return NULL;
    }
    hc->c = c;
    hc->set = set;
    mk_list_init(&hc->streams);
    mk_list_init(&hc->closed);
    if (h2_session_new(hc) < 0) {
        mk_mem_free(hc);
        return NULL;
    }
    if ((upgrade_settings &&
         nghttp2_session_upgrade2(hc->ng, upgrade_settings, len, head_request,
                                  NULL) != 0) ||
        h2_submit_settings(hc) < 0) {
        nghttp2_session_del(hc->ng);
        mk_mem_free(hc);
        return NULL;
    }
    return hc;
}

/* Streams nghttp2 closed: stage 40, the backend's end, the memory. */
static void h2_reap(struct h2_conn *hc)
{
    while (!mk_list_is_empty(&hc->closed)) {
        h2_stream_free(mk_list_entry(hc->closed.next, struct h2_stream,
                                     _head));
    }
}

/* Bytes of response waiting in the streams for the client's windows. */
static size_t h2_waiting(const struct h2_conn *hc)
{
    const struct mk_list *it;
    size_t n = 0;

    mk_list_foreach(it, &hc->streams) {
        n += mk_list_entry(it, struct h2_stream, _head)->out_len;
    }
    return n;
}

/* Some response waits, and every one that waits is held by a window the
 * client has closed (nothing of them can go until it opens one). */
static int h2_window_blocked(const struct h2_conn *hc)
{
    const struct mk_list *it;
    int waiting = 0;

    mk_list_foreach(it, &hc->streams) {
        const struct h2_stream *hs = mk_list_entry(it, struct h2_stream,
                                                   _head);
        if (hs->out_len == 0) {
            continue;
        }
        if (nghttp2_session_get_remote_window_size(hc->ng) > 0 &&
            nghttp2_session_get_stream_remote_window_size(hc->ng,
                                                          hs->id) > 0) {
            return 0;
        }
        waiting = 1;
    }
    return waiting;
}

/* The connection's one timer: IdleTimeout with no stream open; with
 * responses waiting for windows the client does not open (a zero-window
 * or slow-read client holding streams, descriptors and buffers),
 * WindowTimeout from the last DATA that went out. While bytes wait in
 * the connection's queue the timer is the core's (SendTimeout). */
static void h2_arm(struct h2_conn *hc)
{
    uint64_t now = mk_clock_monotonic_ms(), due;

    if (mk_conn_queued(hc->c) > 0) {
        return;                        /* the core's SendTimeout runs */
    }
    if (hc->open == 0) {
        hc->data_at = 0;
        mk_conn_timeout(hc->c, hc->set->idle_timeout);
        return;
    }
    if (h2_waiting(hc) == 0) {
        hc->data_at = 0;
        mk_conn_timeout(hc->c, 0);     /* the handlers own their deadlines */
        return;
    }
    if (hc->data_at == 0) {
        hc->data_at = now;
    }
    due = hc->data_at + hc->set->window_timeout;
    mk_conn_timeout(hc->c, due > now ? due - now : 1);
}

/* Serialises what nghttp2 has to send, as far as the queue bound lets,
 * then decides whether the connection is done. MK_PROTO_OK or CLOSE. */
static int h2_flush(struct h2_conn *hc)
{
    int rc;

    if (hc->sending) {
        return MK_PROTO_OK;
    }
    hc->sending = 1;
    rc = nghttp2_session_send(hc->ng);
    hc->sending = 0;
    h2_reap(hc);
    if (rc != 0) {
        mk_info("[fd %d] http2: %s", mk_conn_fd(hc->c), nghttp2_strerror(rc));
        return MK_PROTO_CLOSE;
    }
    if (((!nghttp2_session_want_read(hc->ng) ||
          (hc->shutdown && hc->open == 0)) &&
         !nghttp2_session_want_write(hc->ng)) ||
        /* after the client's FIN no WINDOW_UPDATE can come */
        (hc->eof && h2_window_blocked(hc))) {
        /* graceful: the queue is written first; the client may still be
         * sending (WINDOW_UPDATE for what it reads), and unread input at
         * close() would reset the connection under our last bytes */
        mk_conn_linger(hc->c);
        return MK_PROTO_CLOSE;
    }
    h2_arm(hc);
    return MK_PROTO_OK;
}

void h2_conn_post_flush(struct h2_conn *hc)
{
    if (!hc->flush_posted) {
        hc->flush_posted = 1;
        mk_conn_post_work(hc->c);
    }
}

static int h2_on_read(struct mk_conn *c)
{
    struct h2_conn *hc = mk_conn_proto_data(c);
    struct mk_ptr in = mk_conn_input(c);
    ssize_t n = 0;

    if (!hc) {
        return MK_PROTO_CLOSE;         /* on_start had no memory */
    }
    if (in.len > 0) {
        n = nghttp2_session_mem_recv(hc->ng, (const uint8_t *) in.data,
                                     in.len);
        if (n < 0) {
            if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC && !hc->terminated) {
                mk_info("[fd %d] http2: client %s: %s", mk_conn_fd(c),
                        mk_conn_peer_str(c), nghttp2_strerror((int) n));
            }
            mk_conn_consume(c, in.len);
            mk_conn_linger(c);
            h2_flush(hc);              /* a GOAWAY nghttp2 queued */
            return MK_PROTO_CLOSE;
        }
        mk_conn_consume(c, (size_t) n);
        if (!nghttp2_session_want_read(hc->ng)) {
            mk_conn_linger(c);         /* a connection error: GOAWAY sent */
        }
    }
    if (hc->upgraded && in.len > 0) {
        struct h2_stream *hs = hc->upgraded;
        hc->upgraded = NULL;           /* h2c: the client's preface came */
        h2_stream_run_upgraded(hs);
    }
    if (mk_conn_is_eof(c)) {
        hc->shutdown = 1;              /* nothing more can come: finish */
        hc->eof = 1;
    }
    return h2_flush(hc);
}

static void h2_on_posted(struct mk_conn *c)
{
    struct h2_conn *hc = mk_conn_proto_data(c);
    struct mk_list *it, *tmp;

    if (!hc) {
        return;
    }
    hc->flush_posted = 0;
    mk_list_foreach_safe(it, tmp, &hc->streams) {
        struct h2_stream *hs = mk_list_entry(it, struct h2_stream, _head);
        if (hs->promised) {
            hs->promised = 0;          /* a push: its request is complete */
            h2_stream_begin(hs, 1);
            continue;
        }
        if (!hs->paused && (hs->held.len > 0 || hs->body_end_pending)) {
            h2_stream_resume_body(hs);
        }
    }
    if (h2_flush(hc) == MK_PROTO_CLOSE) {
        mk_conn_close(c, 1);
    }
}

static int h2_on_drain(struct mk_conn *c)
{
    struct h2_conn *hc = mk_conn_proto_data(c);

    return hc ? h2_flush(hc) : MK_PROTO_OK;
}

/* IdleTimeout with no stream open: GOAWAY, then close. */
static int h2_on_timeout(struct mk_conn *c)
{
    struct h2_conn *hc = mk_conn_proto_data(c);

    if (!hc) {
        return MK_PROTO_CLOSE;
    }
    if (hc->open > 0) {
        if (hc->data_at && h2_waiting(hc) > 0 && mk_clock_monotonic_ms() -
            hc->data_at >= hc->set->window_timeout) {
            h2_calm(hc, "no window opened for WindowTimeout while "
                    "responses wait (slow read)");
            h2_flush(hc);
            return MK_PROTO_CLOSE;
        }
        h2_arm(hc);
        return MK_PROTO_OK;
    }
    hc->shutdown = 1;
    nghttp2_session_terminate_session(hc->ng, NGHTTP2_NO_ERROR);
    h2_flush(hc);
    return MK_PROTO_CLOSE;
}

static void h2_on_shutdown(struct mk_conn *c)
{
    struct h2_conn *hc = mk_conn_proto_data(c);

    if (!hc || hc->shutdown) {
        return;
    }
    hc->shutdown = 1;
    /* streams up to the last one begun still finish (RFC 9113 6.8) */
    nghttp2_submit_goaway(hc->ng, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(hc->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_conn_post_flush(hc);
}

/* Stages never close a connection under its protocol's callbacks (the
 * core fails it at the posted pass), so this never runs inside nghttp2. */
static void h2_on_close(struct mk_conn *c)
{
    struct h2_conn *hc = mk_conn_proto_data(c);

    if (!hc) {
        return;
    }
    h2_reap(hc);
    while (!mk_list_is_empty(&hc->streams)) {
        struct h2_stream *hs = mk_list_entry(hc->streams.next,
                                             struct h2_stream, _head);
        hs->closed = 1;
        h2_stream_free(hs);
    }
    nghttp2_session_del(hc->ng);
    mk_mem_free(hc);
    mk_conn_set_proto(c, &h2_proto, NULL);
}

static int h2_is_idle(const struct mk_conn *c)
{
    const struct h2_conn *hc = mk_conn_proto_data(c);

    return !hc || hc->open == 0;
}

/* ALPN h2 or the prior-knowledge preface: the state is made once (on_start
 * runs again after a TLS handshake). */
static void h2_on_start(struct mk_conn *c)
{
    struct h2_conn *hc;

    if (mk_conn_proto_data(c)) {
        return;
    }
    hc = h2_conn_create(c, h2_settings_for(c), NULL, 0, 0);
    if (!hc) {
        mk_err("[fd %d] http2: no memory for the connection", mk_conn_fd(c));
        return;                        /* on_read closes it */
    }
    mk_conn_set_proto(c, &h2_proto, hc);
    mk_conn_timeout(c, hc->set->idle_timeout);
}

const struct mk_proto h2_proto = {
    .name        = "h2",
    .on_start    = h2_on_start,
    .on_posted   = h2_on_posted,
    .on_read     = h2_on_read,
    .on_drain    = h2_on_drain,
    .on_timeout  = h2_on_timeout,
    .on_close    = h2_on_close,
    .is_idle     = h2_is_idle,
    .on_shutdown = h2_on_shutdown,
};
