/* The stream's life without a socket: a fake protocol's ops record what
 * the stream hands them, a hand-built server has one stage-20 plugin
 * ("gate") and one content handler ("app"), and the streams run on a real
 * worker loop (for the free list and the stream timer). */
#include <string.h>

#include "mk_test.h"
#include "mk_core/mk_event.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

/* ---- The fake protocol ---------------------------------------------------- */

struct fake_wire {
    int heads, ends, timeouts;
    int status;
    char fields[256];
    char body[256];
    size_t body_len;
    uint32_t end_order[4];
};

static struct fake_wire wire;

static int fake_send_head(struct mk_stream *s)
{
    struct mk_ptr n, v;
    size_t it = 0, k = strlen(wire.fields);

    wire.heads++;
    wire.status = mk_response_get_status(s);
    while (mk_response_field_next(s, &it, &n, &v, NULL)) {
        k += (size_t) snprintf(wire.fields + k, sizeof(wire.fields) - k,
                               "%.*s=%.*s;", (int) n.len, n.data,
                               (int) v.len, v.data);
    }
    return 0;
}

static int fake_send_body(struct mk_stream *s, const void *data, size_t len,
                          int flags)
{
    (void) s;
    (void) flags;
    memcpy(wire.body + wire.body_len, data, len);
    wire.body_len += len;
    return 0;
}

static int fake_send_file(struct mk_stream *s, int fd, off_t off, size_t len,
                          int close_fd)
{
    (void) s; (void) fd; (void) off; (void) len; (void) close_fd;
    return -1;
}

static int fake_end(struct mk_stream *s)
{
    if (wire.ends < 4) {
        wire.end_order[wire.ends] = mk_stream_id(s);
    }
    wire.ends++;
    return 0;
}

static void fake_on_timeout(struct mk_stream *s)
{
    (void) s;
    wire.timeouts++;
}

static const struct mk_stream_ops fake_ops = {
    .send_head  = fake_send_head,
    .send_body  = fake_send_body,
    .send_file  = fake_send_file,
    .end        = fake_end,
    .on_timeout = fake_on_timeout,
};

/* ---- The plugins ---------------------------------------------------------- */

struct app_log {
    int gate, content, done, done_ended, done_status;
    uint64_t done_bytes;
    char done_fields[128];
    char body[64];
    size_t body_len;
    int body_ends;
    int answer_now;              /* on_content answers at once */
};

static struct app_log app;

/* Stage 20: answers 403 for /deny, else lets the request through. */
static int gate_request(void *conf, struct mk_stream *r)
{
    (void) conf;
    app.gate++;
    if (strcmp(mk_request_clean_path(r), "/deny") == 0) {
        return mk_response_error(r, 403) < 0 ? MK_STAGE_CLOSE
                                             : MK_STAGE_HANDLED;
    }
    return MK_STAGE_NEXT;
}

static int app_content(void *conf, struct mk_stream *r)
{
    (void) conf;
    app.content++;
    if (app.answer_now) {
        mk_response_status(r, 201);
        mk_response_header(r, "X-A", "1");
        mk_response_content_length(r, 2);
        mk_response_write(r, "hi", 2, MK_WRITE_STATIC);
        mk_response_end(r);
    }
    return MK_STAGE_HANDLED;
}

static int app_body(void *conf, struct mk_stream *r, const char *data,
                    size_t len)
{
    (void) conf;
    (void) r;
    if (len == 0) {
        app.body_ends++;
        return 0;
    }
    memcpy(app.body + app.body_len, data, len);
    app.body_len += len;
    return 0;
}

/* Stage 40 reads the finished response through the read-only view. */
static void app_done(void *conf, struct mk_stream *r)
{
    struct mk_ptr n, v;
    size_t it = 0, k = 0;

    (void) conf;
    app.done++;
    app.done_ended = mk_response_ended(r);
    app.done_status = mk_response_get_status(r);
    app.done_bytes = mk_response_bytes(r);
    app.done_fields[0] = '\0';
    while (mk_response_field_next(r, &it, &n, &v, NULL)) {
        k += (size_t) snprintf(app.done_fields + k,
                               sizeof(app.done_fields) - k, "%.*s=%.*s;",
                               (int) n.len, n.data, (int) v.len, v.data);
    }
}

static const struct mk_plugin gate_plugin = {
    .abi = MK_PLUGIN_ABI, .name = "gate", .on_request = gate_request,
};
static const struct mk_plugin app_plugin = {
    .abi = MK_PLUGIN_ABI, .name = "app", .on_content = app_content,
    .on_body = app_body, .on_done = app_done,
};

/* ---- The hand-built server --------------------------------------------- */

static struct mk_server srv;
static struct mk_plugin_inst insts[2];
static struct mk_plugin_inst *request_list[1], *done_list[1];
static struct mk_vhost vhost;
static struct mk_listen listen_;
static struct mk_worker worker;
static struct mk_conn conn;

static void setup(void)
{
    memset(&wire, 0, sizeof(wire));
    memset(&app, 0, sizeof(app));
    memset(&srv, 0, sizeof(srv));
    insts[0] = (struct mk_plugin_inst) { .p = &gate_plugin, .index = 0 };
    insts[1] = (struct mk_plugin_inst) { .p = &app_plugin, .index = 1 };
    request_list[0] = &insts[0];
    done_list[0] = &insts[1];
    srv.plugins = insts;
    srv.plugin_count = 2;
    srv.on_request = request_list;
    srv.n_request = 1;
    srv.on_done = done_list;
    srv.n_done = 1;
    srv.conf.max_request_body = 8;
    mk_http_limits_default(&srv.limits);
    memset(&vhost, 0, sizeof(vhost));
    vhost.handler = 1;
    vhost.srv = &srv;
    memset(&listen_, 0, sizeof(listen_));
    listen_.default_vhost = &vhost;
    srv.default_vhost = &vhost;
    if (!worker.loop) {
        worker.loop = mk_event_loop_create(8);
        mk_list_init(&worker.free_streams);
    }
    memset(&conn, 0, sizeof(conn));
    conn.ev.fd = -1;
    conn.srv = &srv;
    conn.listen = &listen_;
    conn.worker = &worker;
    conn.state = MK_CONN_OPEN;
}

struct req_text {
    char *base;
    char text[256];
};

/* A stream whose head is `text`, parsed into it; begun. */
static struct mk_stream *start(struct req_text *t, const char *text)
{
    struct mk_http_parser p;
    struct mk_stream *s;

    snprintf(t->text, sizeof(t->text), "%s", text);
    t->base = t->text;
    s = mk_stream_create(&conn, &fake_ops, t, &t->base);
    CHECK(s != NULL);
    mk_http_parser_init(&p, &srv.limits);
    CHECK_EQ_INT(mk_http_parse_head(&p, t->text, strlen(t->text),
                                    mk_stream_head(s)), MK_HTTP_PARSE_OK);
    CHECK_EQ_INT(mk_stream_begin(s), 0);
    return s;
}

/* ---- Tests --------------------------------------------------------------- */

MK_TEST(lifecycle_through_the_ops)
{
    struct req_text t;
    struct mk_stream *s;

    setup();
    app.answer_now = 1;
    s = start(&t, "GET /a/../b HTTP/1.0\r\n\r\n");
    CHECK_EQ_INT(mk_stream_id(s), 1);
    CHECK(mk_stream_proto_data(s) == &t);
    CHECK_EQ_STR(mk_request_clean_path(s), "/b");
    CHECK_EQ_INT(app.gate, 1);
    CHECK_EQ_INT(app.content, 1);
    CHECK_EQ_INT(app.body_ends, 1);          /* end of an empty body */
    CHECK_EQ_INT(wire.heads, 1);
    CHECK_EQ_INT(wire.status, 201);
    CHECK_EQ_STR(wire.fields, "X-A=1;");
    CHECK_EQ_MEM(wire.body, wire.body_len, "hi");
    CHECK_EQ_INT(wire.ends, 1);
    CHECK_EQ_INT(mk_response_end(s), -1);    /* once */
    CHECK_EQ_INT(app.done, 0);
    mk_stream_destroy(s);
    CHECK_EQ_INT(app.done, 1);
    CHECK_EQ_INT(app.done_ended, 1);
    CHECK_EQ_INT(app.done_status, 201);
    CHECK_EQ_INT(app.done_bytes, 2);
    CHECK_EQ_STR(app.done_fields, "X-A=1;");
}

MK_TEST(stage_20_answers_and_the_handler_never_runs)
{
    struct req_text t;
    struct mk_stream *s;

    setup();
    s = start(&t, "GET /deny HTTP/1.0\r\n\r\n");
    CHECK_EQ_INT(app.content, 0);
    CHECK_EQ_INT(wire.status, 403);
    CHECK_EQ_INT(wire.ends, 1);
    CHECK(strstr(wire.fields, "Content-Type=text/html") != NULL);
    mk_stream_destroy(s);
    CHECK_EQ_INT(app.done_status, 403);
}

MK_TEST(body_pieces_and_the_limit)
{
    struct req_text t;
    struct mk_stream *s;

    setup();
    s = start(&t, "POST /up HTTP/1.0\r\nContent-Length: 5\r\n\r\n");
    CHECK_EQ_INT(app.body_ends, 0);          /* a body is announced */
    CHECK_EQ_INT(mk_stream_body(s, "hel", 3), 0);
    CHECK_EQ_INT(mk_stream_body(s, "lo", 2), 0);
    CHECK_EQ_INT(mk_stream_body_end(s), 0);
    CHECK_EQ_MEM(app.body, app.body_len, "hello");
    CHECK_EQ_INT(app.body_ends, 1);
    /* MaxRequestBody is 8 here */
    CHECK_EQ_INT(mk_stream_body(s, "1234", 4), -1);
    CHECK_EQ_INT(s->body_too_large, 1);
    mk_stream_destroy(s);
    CHECK_EQ_INT(app.done_ended, 0);         /* never answered */
}

MK_TEST(two_streams_in_flight_end_in_any_order)
{
    struct req_text t1, t2;
    struct mk_stream *s1, *s2;

    setup();
    s1 = start(&t1, "GET /one HTTP/1.0\r\n\r\n");
    s2 = start(&t2, "GET /two HTTP/1.0\r\n\r\n");
    CHECK(s1 != s2);
    CHECK_EQ_INT(mk_stream_id(s1), 1);
    CHECK_EQ_INT(mk_stream_id(s2), 2);
    CHECK_EQ_INT(app.content, 2);
    /* each keeps its own head and response */
    CHECK_EQ_STR(mk_request_clean_path(s1), "/one");
    CHECK_EQ_STR(mk_request_clean_path(s2), "/two");
    mk_response_status(s2, 202);
    CHECK_EQ_INT(mk_response_end(s2), 0);
    CHECK_EQ_INT(mk_response_get_status(s1), 0);
    CHECK_EQ_INT(mk_response_end(s1), 0);
    CHECK_EQ_INT(wire.ends, 2);
    CHECK_EQ_INT(wire.end_order[0], 2);
    CHECK_EQ_INT(wire.end_order[1], 1);
    mk_stream_destroy(s2);
    mk_stream_destroy(s1);
    CHECK_EQ_INT(app.done, 2);
}

MK_TEST(destroy_with_a_response_pending)
{
    struct req_text t;
    struct mk_stream *s;

    setup();
    s = start(&t, "GET /slow HTTP/1.0\r\n\r\n");
    mk_response_status(s, 200);
    CHECK_EQ_INT(mk_response_send_head(s), 0);
    CHECK_EQ_INT(mk_response_write(s, "par", 3, MK_WRITE_STATIC), 0);
    mk_stream_destroy(s);
    CHECK_EQ_INT(wire.ends, 0);
    CHECK_EQ_INT(app.done, 1);
    CHECK_EQ_INT(app.done_ended, 0);
    CHECK_EQ_INT(app.done_bytes, 3);
}

MK_TEST(shared_piece_without_the_op_goes_as_bytes)
{
    struct req_text t;
    struct mk_stream *s;
    struct mk_shared_buf *sb = mk_shared_buf_create("frame", 5);

    setup();
    s = start(&t, "GET /sh HTTP/1.0\r\n\r\n");
    CHECK_EQ_INT(mk_response_write_shared(s, sb), 0);
    mk_shared_buf_release(sb);
    CHECK_EQ_MEM(wire.body, wire.body_len, "frame");
    CHECK_EQ_INT(mk_response_bytes(s), 5);
    mk_stream_destroy(s);
}

MK_TEST(raw_head_refused_without_the_op)
{
    struct req_text t;
    struct mk_stream *s;

    setup();
    s = start(&t, "GET /raw HTTP/1.0\r\n\r\n");
    CHECK_EQ_INT(mk_response_raw(s), -1);
    CHECK_EQ_INT(mk_response_is_raw(s), 0);
    CHECK_EQ_INT(mk_response_write_raw(s, "HTTP/1.1 200 OK\r\n", 17,
                                       MK_WRITE_STATIC), -1);
    mk_stream_destroy(s);
}

MK_TEST(misdirected_before_any_stage)
{
    struct req_text t;
    struct mk_http_parser p;
    struct mk_stream *s;

    setup();
    listen_.default_vhost = NULL;           /* no site on this listener */
    t.base = t.text;
    snprintf(t.text, sizeof(t.text), "GET / HTTP/1.0\r\n\r\n");
    s = mk_stream_create(&conn, &fake_ops, &t, &t.base);
    mk_http_parser_init(&p, &srv.limits);
    mk_http_parse_head(&p, t.text, strlen(t.text), mk_stream_head(s));
    CHECK_EQ_INT(mk_stream_begin(s), 421);
    CHECK_EQ_INT(app.gate, 0);
    mk_stream_destroy(s);
}

MK_TEST(own_timer_on_the_worker_loop)
{
    struct req_text t;
    struct mk_stream *s;
    int i;

    setup();
    s = start(&t, "GET /t HTTP/1.0\r\n\r\n");
    mk_stream_set_deadline(s, 1);
    for (i = 0; i < 100 && wire.timeouts == 0; i++) {
        mk_event_loop_run_once(worker.loop, 50);
    }
    CHECK_EQ_INT(wire.timeouts, 1);
    mk_stream_set_deadline(s, 60000);
    mk_stream_destroy(s);                    /* disarms it */
    CHECK(mk_timer_next_ms(mk_event_loop_timers(worker.loop), 0) < 0);
}

/* The worker's pooled streams and the loop go, for the leak checker. */
static void teardown(void)
{
    while (!mk_list_is_empty(&worker.free_streams)) {
        struct mk_stream *s = mk_list_entry(worker.free_streams.next,
                                            struct mk_stream, _head);
        mk_list_del(&s->_head);
        mk_mem_free(s);
    }
    mk_event_loop_destroy(worker.loop);
}

int main(void)
{
    RUN(lifecycle_through_the_ops);
    RUN(stage_20_answers_and_the_handler_never_runs);
    RUN(body_pieces_and_the_limit);
    RUN(two_streams_in_flight_end_in_any_order);
    RUN(destroy_with_a_response_pending);
    RUN(shared_piece_without_the_op_goes_as_bytes);
    RUN(raw_head_refused_without_the_op);
    RUN(misdirected_before_any_stage);
    RUN(own_timer_on_the_worker_loop);
    teardown();
    return mk_test_done();
}
