/*
 * lineproto: a toy protocol with many streams per connection, for the
 * core's integration tests (never shipped). It proves that the stream API
 * carries concurrent requests through stages 20-40 to any stage-30
 * handler, and that a protocol which cannot carry a raw HTTP/1.x head
 * still gets every handler's answer.
 *
 * It registers as protocol "lineproto": a listener carrying it names it
 * (`Listen ... protocol=lineproto`). The client sends, in any order:
 *     <id> <METHOD> <path> <body length>\n     opens stream <id>
 *     <id> = <n>\n<n bytes>                     body bytes of stream <id>
 * and each stream is answered when its response ends, in that order:
 *     <id> <status> <body length>\n<body>
 * A stream's body goes to its handler as it arrives; the head is handed
 * to the stream as request text the protocol keeps, parsed by the HTTP
 * parser, so its spans do not point into the connection's buffer.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_list.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_plugin.h"

#define LP_LINE_MAX 512

struct lp_stream {
    struct mk_list _head;
    struct mk_stream *s;
    char id[32];
    char *base;                    /* head_base: text[] */
    char text[LP_LINE_MAX + 128];  /* the request head as HTTP/1.1 text */
    uint64_t body_left;
    struct mk_buf out;             /* response body, sent at the end */
    int ended;
};

struct lp_conn {
    struct mk_list streams;
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_lineproto;
static const struct mk_proto lp_proto;

static struct lp_stream *lp_find(struct lp_conn *lc, const char *id)
{
    struct mk_list *it;

    mk_list_foreach(it, &lc->streams) {
        struct lp_stream *ls = mk_list_entry(it, struct lp_stream, _head);
        if (strcmp(ls->id, id) == 0) {
            return ls;
        }
    }
    return NULL;
}

static void lp_stream_destroy(struct lp_stream *ls)
{
    mk_list_del(&ls->_head);
    mk_stream_destroy(ls->s);                   /* stage 40 runs here */
    mk_buf_release(&ls->out);
    mk_mem_free(ls);
}

/* ---- Stream ops: the response is collected, then framed at the end ---- */

static int lp_send_head(struct mk_stream *s)
{
    (void) s;
    return 0;                        /* the status goes out with the body */
}

static int lp_send_body(struct mk_stream *s, const void *data, size_t len,
                        int flags)
{
    struct lp_stream *ls = mk_stream_proto_data(s);
    int ret = mk_buf_append(&ls->out, data, len);

    if (flags & MK_WRITE_FREE) {
        mk_mem_free((void *) data);
    }
    return ret;
}

static int lp_send_file(struct mk_stream *s, int fd, off_t offset,
                        size_t len, int close_fd)
{
    struct lp_stream *ls = mk_stream_proto_data(s);
    char buf[4096];
    ssize_t n = 0;
    int ret = 0;

    while (len > 0 && ret == 0) {
        n = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf), offset);
        if (n <= 0) {
            ret = -1;
            break;
        }
        ret = mk_buf_append(&ls->out, buf, (size_t) n);
        offset += n;
        len -= (size_t) n;
    }
    if (close_fd) {
        close(fd);
    }
    return ret;
}

static int lp_end(struct mk_stream *s)
{
    struct lp_stream *ls = mk_stream_proto_data(s);
    struct mk_conn *c = mk_request_conn(s);
    char line[96];
    size_t n;

    n = mk_str_printf(line, sizeof(line), "%s %d %zu\n", ls->id,
                      mk_response_get_status(s), ls->out.len);
    ls->ended = 1;                   /* freed at on_drain, not under us */
    if (mk_conn_write(c, line, n, MK_WRITE_COPY) < 0) {
        return -1;
    }
    return mk_conn_write(c, ls->out.data, ls->out.len, MK_WRITE_COPY);
}

static const struct mk_stream_ops lp_stream_ops = {
    .send_head = lp_send_head,
    .send_body = lp_send_body,
    .send_file = lp_send_file,
    .end       = lp_end,
    .shares_conn = 1,                /* a backend session per stream */
};

/* ---- Input ----------------------------------------------------------- */

static int lp_open(struct mk_conn *c, struct lp_conn *lc, const char *line)
{
    char id[32], method[16], path[LP_LINE_MAX];
    unsigned long long body;
    struct mk_http_parser parser;
    struct mk_http_limits limits;
    struct lp_stream *ls;
    int n;

    if (sscanf(line, "%31s %15s %511s %llu", id, method, path, &body) != 4 ||
        lp_find(lc, id)) {
        return -1;
    }
    ls = mk_mem_zalloc(sizeof(*ls));
    if (!ls) {
        return -1;
    }
    memcpy(ls->id, id, sizeof(id));
    ls->base = ls->text;
    ls->body_left = body;
    mk_buf_init(&ls->out);
    n = snprintf(ls->text, sizeof(ls->text),
                 "%s %s HTTP/1.1\r\nHost: localhost\r\n"
                 "Content-Length: %llu\r\n\r\n", method, path, body);
    ls->s = mk_stream_create(c, &lp_stream_ops, ls, &ls->base);
    if (!ls->s) {
        mk_mem_free(ls);
        return -1;
    }
    mk_list_add(&ls->_head, &lc->streams);
    mk_http_limits_default(&limits);
    mk_http_parser_init(&parser, &limits);
    if (mk_http_parse_head(&parser, ls->text, (size_t) n,
                           mk_stream_head(ls->s)) != MK_HTTP_PARSE_OK) {
        return -1;
    }
    n = mk_stream_begin(ls->s);
    return n == 0 ? 0 : mk_response_error(ls->s, n);
}

static int lp_body(struct lp_conn *lc, const char *id, const char *data,
                   size_t len)
{
    struct lp_stream *ls = lp_find(lc, id);

    if (!ls || len > ls->body_left) {
        return -1;
    }
    ls->body_left -= len;
    if (mk_stream_body(ls->s, data, len) < 0) {
        return -1;
    }
    return ls->body_left == 0 ? mk_stream_body_end(ls->s) : 0;
}

/* One message from the input; 1 done, 0 incomplete, -1 bad. */
static int lp_one(struct mk_conn *c, struct lp_conn *lc)
{
    struct mk_ptr in = mk_conn_input(c);
    const char *nl = memchr(in.data, '\n', in.len);
    char line[LP_LINE_MAX + 1], id[32];
    unsigned long n;
    size_t len;

    if (!nl) {
        return in.len > LP_LINE_MAX ? -1 : 0;
    }
    len = (size_t) (nl - in.data);
    if (len > LP_LINE_MAX) {
        return -1;
    }
    memcpy(line, in.data, len);
    line[len] = '\0';
    if (sscanf(line, "%31s = %lu", id, &n) == 2) {
        if (in.len - len - 1 < n) {
            return 0;
        }
        if (lp_body(lc, id, nl + 1, n) < 0) {
            return -1;
        }
        mk_conn_consume(c, len + 1 + n);
        return 1;
    }
    mk_conn_consume(c, len + 1);
    return lp_open(c, lc, line) < 0 ? -1 : 1;
}

/* ---- mk_proto ---------------------------------------------------------- */

static int lp_on_read(struct mk_conn *c)
{
    struct lp_conn *lc = mk_conn_proto_data(c);
    int ret;

    if (!lc) {
        return MK_PROTO_CLOSE;       /* on_start had no memory */
    }
    while ((ret = lp_one(c, lc)) > 0) {
    }
    if (ret < 0 || mk_conn_is_eof(c)) {
        return MK_PROTO_CLOSE;
    }
    return MK_PROTO_OK;
}

/* Answers are out: the streams that ended are done. */
static int lp_on_drain(struct mk_conn *c)
{
    struct lp_conn *lc = mk_conn_proto_data(c);
    struct mk_list *it, *tmp;

    if (!lc) {
        return MK_PROTO_OK;
    }
    mk_list_foreach_safe(it, tmp, &lc->streams) {
        struct lp_stream *ls = mk_list_entry(it, struct lp_stream, _head);
        if (ls->ended) {
            lp_stream_destroy(ls);
        }
    }
    return MK_PROTO_OK;
}

static int lp_on_timeout(struct mk_conn *c)
{
    (void) c;
    return MK_PROTO_OK;              /* the tests close their connections */
}

static void lp_on_close(struct mk_conn *c)
{
    struct lp_conn *lc = mk_conn_proto_data(c);
    struct mk_list *it, *tmp;

    if (!lc) {
        return;
    }
    mk_list_foreach_safe(it, tmp, &lc->streams) {
        lp_stream_destroy(mk_list_entry(it, struct lp_stream, _head));
    }
    mk_mem_free(lc);
}

static int lp_is_idle(const struct mk_conn *c)
{
    struct lp_conn *lc = mk_conn_proto_data(c);

    return !lc || mk_list_is_empty(&lc->streams);
}

/* The state is made once: on_start runs again after a TLS handshake. */
static void lp_on_start(struct mk_conn *c)
{
    struct lp_conn *lc;

    if (mk_conn_proto_data(c)) {
        return;
    }
    lc = mk_mem_zalloc(sizeof(*lc));
    if (!lc) {
        mk_err("[fd %d] lineproto: no memory for the connection",
               mk_conn_fd(c));
        return;                      /* on_read closes it */
    }
    mk_list_init(&lc->streams);
    mk_conn_set_proto(c, &lp_proto, lc);
    mk_conn_timeout(c, 0);
}

static const struct mk_proto lp_proto = {
    .name       = "lineproto",
    .on_start   = lp_on_start,
    .on_read    = lp_on_read,
    .on_drain   = lp_on_drain,
    .on_timeout = lp_on_timeout,
    .on_close   = lp_on_close,
    .is_idle    = lp_is_idle,
};

static const struct mk_proto_decl lp_protos[] = {
    { "lineproto", NULL, 0, &lp_proto, NULL },
    { NULL, NULL, 0, NULL, NULL }
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_lineproto = {
    .abi       = MK_PLUGIN_ABI,
    .name      = "lineproto",
    .protos    = lp_protos,
};
