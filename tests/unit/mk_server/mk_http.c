/* HTTP/1.1's serialiser of a stream's response (mk_http_response.c): the
 * exact bytes queued on the connection for head, Content-Length or
 * chunked framing, trailers, HEAD, bodiless statuses, HTTP/1.0 and raw
 * heads. The stream carries the serialiser as its ops; nothing is
 * written to a socket (the bytes are read back from the write queue). */
#include <string.h>

#include "mk_test.h"
#include "mk_core/mk_event.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_http_date.h"

static int test_ends;

static int test_end(struct mk_stream *s)
{
    test_ends++;
    return mk_http_response_end_bytes(s);
}

/* mk_http.c's ops, less the move to the next request */
static const struct mk_stream_ops http_ops = {
    .send_head  = mk_http_response_send_head,
    .send_body  = mk_http_response_send_body,
    .send_file  = mk_http_response_send_file,
    .send_shared = mk_http_response_send_shared,
    .end        = test_end,
    .send_raw   = mk_http_response_send_raw,
    .will_close = mk_http_response_will_close,
};

static struct mk_server srv;
static struct mk_vhost vhost;
static struct mk_listen listen_;
static struct mk_worker worker;
static struct mk_conn conn;
static char *conn_in;
static char wire[4096];

static void setup(void)
{
    memset(&srv, 0, sizeof(srv));
    srv.conf.keepalive = 1;
    srv.conf.hide_version = 1;
    srv.conf.write_queue_limit = 1 << 20;
    srv.conf.max_request_body = 1 << 20;
    srv.conf.max_discard_body = 1 << 20;
    mk_http_limits_default(&srv.limits);
    memset(&vhost, 0, sizeof(vhost));
    vhost.handler = -1;
    memset(&listen_, 0, sizeof(listen_));
    listen_.default_vhost = &vhost;
    if (!worker.loop) {
        worker.loop = mk_event_loop_create(8);
        mk_list_init(&worker.free_streams);
        mk_list_init(&worker.posted);
    }
    memset(&conn, 0, sizeof(conn));
    conn.ev.fd = -1;
    conn.srv = &srv;
    conn.listen = &listen_;
    conn.worker = &worker;
    conn.state = MK_CONN_OPEN;
    conn.flags = MK_CONN_F_IN_HANDLER;     /* queue only, never flush */
    mk_list_init(&conn.wq);
}

/* A stream whose head is `text` (in the connection's read buffer, as
 * HTTP/1.1 keeps it), not begun: the test plays the handler. */
static struct mk_stream *stream(const char *text)
{
    struct mk_http_parser p;
    struct mk_stream *s;
    size_t n = strlen(text);

    conn_in = mk_mem_alloc(n + 1);
    memcpy(conn_in, text, n + 1);
    conn.in = conn_in;
    conn.in_len = (uint32_t) n;
    s = mk_stream_create(&conn, &http_ops, NULL, &conn.in);
    mk_http_parser_init(&p, &srv.limits);
    CHECK_EQ_INT(mk_http_parse_head(&p, conn.in, n, mk_stream_head(s)),
                 MK_HTTP_PARSE_OK);
    s->head_done = 1;                      /* as mk_stream_begin sets it */
    mk_http_body_init(&s->body, &s->head);
    return s;
}

/* Everything queued, as one string; the queue and the stream go. */
static const char *drain(struct mk_stream *s)
{
    size_t n = 0;

    while (!mk_list_is_empty(&conn.wq)) {
        struct mk_chunk *ch = mk_list_entry(conn.wq.next, struct mk_chunk,
                                            _head);
        memcpy(wire + n, ch->data, ch->len);
        n += ch->len;
        mk_list_del(&ch->_head);
        mk_conn_chunk_destroy(&worker, ch);
    }
    wire[n] = '\0';
    mk_stream_destroy(s);
    mk_mem_free(conn_in);
    return wire;
}

/* "HTTP/1.1 <status line>\r\nServer: tremolo\r\nDate: <now>\r\n" + rest */
static const char *expect(const char *status, const char *rest)
{
    static char buf[2048];

    snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nServer: tremolo\r\n"
             "Date: %.*s\r\n%s", status, MK_HTTP_DATE_LEN,
             mk_http_date(), rest);
    return buf;
}

MK_TEST(content_length_head_and_body)
{
    struct mk_stream *s = stream("GET / HTTP/1.1\r\nHost: a\r\n\r\n");

    mk_response_status(s, 200);
    mk_response_header(s, "Content-Type", "text/plain");
    mk_response_content_length(s, 2);
    CHECK_EQ_INT(mk_response_write(s, "hi", 2, MK_WRITE_STATIC), 0);
    CHECK_EQ_INT(mk_response_end(s), 0);
    CHECK_EQ_INT(s->resp.close, 0);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Content-Length: 2\r\n"
                                  "Content-Type: text/plain\r\n\r\nhi"));
}

MK_TEST(unknown_length_is_chunked_with_trailers)
{
    struct mk_stream *s = stream("GET / HTTP/1.1\r\nHost: a\r\n\r\n");

    mk_response_write(s, "abc", 3, MK_WRITE_STATIC);
    mk_response_write(s, "0123456789abcdefg", 17, MK_WRITE_COPY);
    CHECK_EQ_INT(mk_response_header(s, "X-Late", "1"), -1);  /* head out */
    CHECK_EQ_INT(mk_response_trailer(s, "X-Sum", "ok", 2), 0);
    mk_response_end(s);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Transfer-Encoding: chunked\r\n"
                                  "\r\n3\r\nabc\r\n11\r\n0123456789abcdefg"
                                  "\r\n0\r\nX-Sum: ok\r\n\r\n"));
}

MK_TEST(shared_pieces_are_framed_too)
{
    struct mk_stream *s = stream("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    struct mk_shared_buf *sb = mk_shared_buf_create("shared", 6);

    CHECK_EQ_INT(mk_response_write_shared(s, sb), 0);
    mk_shared_buf_release(sb);               /* the queue holds its own */
    mk_response_end(s);
    CHECK_EQ_INT(mk_response_bytes(s), 6);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Transfer-Encoding: chunked\r\n"
                                  "\r\n6\r\nshared\r\n0\r\n\r\n"));
}

MK_TEST(chunked_end_without_trailers)
{
    struct mk_stream *s = stream("GET / HTTP/1.1\r\nHost: a\r\n\r\n");

    mk_response_send_head(s);
    mk_response_end(s);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Transfer-Encoding: chunked\r\n"
                                  "\r\n0\r\n\r\n"));
}

MK_TEST(head_request_gets_no_body)
{
    struct mk_stream *s = stream("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");

    mk_response_content_length(s, 5);
    CHECK_EQ_INT(mk_response_write(s, "hello", 5, MK_WRITE_STATIC), 0);
    mk_response_end(s);
    CHECK_EQ_INT(mk_response_bytes(s), 0);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Content-Length: 5\r\n\r\n"));
}

MK_TEST(no_content_has_no_framing)
{
    struct mk_stream *s = stream("GET / HTTP/1.1\r\nHost: a\r\n\r\n");

    mk_response_status(s, 204);
    mk_response_end(s);
    CHECK_EQ_STR(drain(s), expect("204 No Content", "\r\n"));
}

MK_TEST(http_1_0_closes_or_keeps_alive)
{
    struct mk_stream *s = stream("GET / HTTP/1.0\r\n\r\n");

    mk_response_write(s, "x", 1, MK_WRITE_STATIC);
    CHECK_EQ_INT(s->resp.close, 1);        /* the close ends the body */
    mk_response_end(s);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Connection: close\r\n\r\nx"));

    s = stream("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    mk_response_content_length(s, 1);
    mk_response_write(s, "y", 1, MK_WRITE_STATIC);
    mk_response_end(s);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Content-Length: 1\r\n"
                                  "Connection: keep-alive\r\n\r\ny"));
}

MK_TEST(connection_close_asked_by_client_or_handler)
{
    struct mk_stream *s = stream("GET / HTTP/1.1\r\nHost: a\r\n"
                                 "Connection: close\r\n\r\n");

    CHECK_EQ_INT(mk_response_will_close(s), 1);
    mk_response_end(s);
    CHECK_EQ_STR(drain(s), expect("200 OK", "Content-Length: 0\r\n"
                                  "Connection: close\r\n\r\n"));

    s = stream("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_EQ_INT(mk_response_will_close(s), 0);
    mk_response_close(s);
    CHECK_EQ_INT(mk_response_will_close(s), 1);
    drain(s);
}

MK_TEST(raw_head_goes_out_verbatim)
{
    struct mk_stream *s = stream("GET / HTTP/1.1\r\nHost: a\r\n\r\n");

    CHECK_EQ_INT(mk_response_raw(s), 0);
    CHECK_EQ_INT(mk_response_is_raw(s), 1);
    mk_response_write_raw(s, "HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody", 29,
                          MK_WRITE_STATIC);
    CHECK_EQ_INT(mk_response_end(s), 0);
    CHECK_EQ_INT(test_ends, 1);
    CHECK_EQ_STR(drain(s), "HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody");
}

int main(void)
{
    setup();
    RUN(content_length_head_and_body);
    setup();
    RUN(unknown_length_is_chunked_with_trailers);
    setup();
    RUN(shared_pieces_are_framed_too);
    setup();
    RUN(chunked_end_without_trailers);
    setup();
    RUN(head_request_gets_no_body);
    setup();
    RUN(no_content_has_no_framing);
    setup();
    RUN(http_1_0_closes_or_keeps_alive);
    setup();
    RUN(connection_close_asked_by_client_or_handler);
    test_ends = 0;
    setup();
    RUN(raw_head_goes_out_verbatim);
    while (!mk_list_is_empty(&worker.free_streams)) {
        struct mk_stream *s = mk_list_entry(worker.free_streams.next,
                                            struct mk_stream, _head);
        mk_list_del(&s->_head);
        mk_mem_free(s);
    }
    while (worker.n_free_chunks > 0) {
        mk_mem_free(worker.free_chunks[--worker.n_free_chunks]);
    }
    mk_event_loop_destroy(worker.loop);
    return mk_test_done();
}
