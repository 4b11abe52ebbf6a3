/*
 * echo: a content handler for the core's integration tests (never shipped).
 * It exercises what the zmq gateway and the proxy rely on: request bodies
 * streamed through on_body (Content-Length and de-chunked), the end-of-body
 * call, "100 Continue", and responses that end later, from a timer, outside
 * any read event of the connection.
 *
 *   POST /anything      -> 200, body = the request body, X-Echo-Chunks: N
 *   any /slow/...       -> the same, answered 200 ms after the body ended
 */
#include <string.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_timer.h"
#include "mk_server/mk_plugin.h"

struct echo_req {
    struct mk_buf body;
    unsigned chunks;
    struct mk_stream *r;
    struct mk_timer timer;
    struct mk_timer_heap *heap;
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_echo;

static void echo_answer(struct echo_req *er)
{
    char n[24];

    mk_str_printf(n, sizeof(n), "%u", er->chunks);
    mk_response_status(er->r, 200);
    mk_response_header(er->r, "Content-Type", "application/octet-stream");
    mk_response_header(er->r, "X-Echo-Chunks", n);
    mk_response_content_length(er->r, (int64_t) er->body.len);
    mk_response_write(er->r, er->body.data, er->body.len, MK_WRITE_COPY);
    mk_response_end(er->r);
}

static void echo_on_timer(struct mk_timer *t, void *data)
{
    echo_answer(data);
}

static int echo_content(void *conf, struct mk_stream *r)
{
    struct echo_req *er = mk_mem_zalloc(sizeof(*er));

    if (!er) {
        return MK_STAGE_CLOSE;
    }
    mk_buf_init(&er->body);
    er->r = r;
    mk_timer_init(&er->timer, echo_on_timer, er);
    er->heap = mk_event_loop_timers(mk_worker_loop(mk_conn_worker(
        mk_request_conn(r))));
    mk_request_set_plugin_data(r, &mk_plugin_echo, er);
    return MK_STAGE_HANDLED;
}

static int echo_body(void *conf, struct mk_stream *r, const char *data,
                     size_t len)
{
    struct echo_req *er = mk_request_plugin_data(r, &mk_plugin_echo);
    struct mk_ptr path = mk_request_path(r);

    if (len > 0) {
        er->chunks++;
        return mk_buf_append(&er->body, data, len);
    }
    if (path.len >= 6 && memcmp(path.data, "/slow/", 6) == 0) {
        return mk_timer_arm(er->heap, &er->timer,
                            mk_event_loop_now(mk_worker_loop(mk_conn_worker(
                                mk_request_conn(r)))) + 200);
    }
    echo_answer(er);
    return 0;
}

static void echo_done(void *conf, struct mk_stream *r)
{
    struct echo_req *er = mk_request_plugin_data(r, &mk_plugin_echo);

    if (!er) {
        return;
    }
    mk_timer_disarm(er->heap, &er->timer);     /* client gone first */
    mk_buf_release(&er->body);
    mk_mem_free(er);
    mk_request_set_plugin_data(r, &mk_plugin_echo, NULL);
}

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_echo = {
    .abi        = MK_PLUGIN_ABI,
    .name       = "echo",
    .on_content = echo_content,
    .on_body    = echo_body,
    .on_done    = echo_done,
};
