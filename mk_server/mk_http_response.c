/*
 * HTTP/1.1's serialiser of the stream response (RFC 9112): the status line
 * and head built in one pass into the connection's write queue (so head +
 * small body leave in one writev), body framing (Content-Length, chunked,
 * or close-delimited for HTTP/1.0), trailers, and the keep-alive decision.
 */
#include <string.h>

#include "mk_server/mk_http_date.h"
#include "mk_server/mk_conn.h"

#define MK_SERVER_TOKEN "tremolo/" TREMOLO_VERSION

const char *mk_server_software(const struct mk_server *srv)
{
    return srv->conf.hide_version ? "tremolo" : MK_SERVER_TOKEN;
}

const char *mk_server_date(void)
{
    return mk_http_date();
}

/* RFC 9112 9.3: HTTP/1.1 persists unless "close"; 1.0 only on request. */
int mk_http_response_will_close(const struct mk_stream *r)
{
    const struct mk_conn *c = r->conn;
    const struct mk_server_conf *conf = &c->srv->conf;

    if (r->resp.close || !conf->keepalive || !r->head_done ||
        mk_worker_is_draining(c->worker)) {
        return 1;
    }
    /* A client that half-closed still gets answers to the requests it
     * pipelined before (they may wait behind a file): the last one says
     * close. */
    if ((c->flags & MK_CONN_F_EOF) && c->in_len <= r->head.head_len) {
        return 1;
    }
    if (conf->keepalive_max > 0 && r->id >= (uint64_t) conf->keepalive_max) {
        return 1;
    }
    if (r->head.connection & MK_HTTP_CONN_CLOSE) {
        return 1;
    }
    if (r->head.version_minor == 0 &&
        !(r->head.connection & MK_HTTP_CONN_KEEPALIVE)) {
        return 1;
    }
    /* An unread body is normally read and dropped after the response;
     * but a client waiting for "100 Continue" will never send it, and one
     * announced beyond MaxDiscardBody is not worth reading. */
    if (!r->body.done && r->discard_body &&
        (r->head.expect_continue ||
         (r->body.mode == MK_HTTP_BODY_LENGTH &&
          r->body.remaining > conf->max_discard_body - r->discarded))) {
        return 1;
    }
    return 0;
}

static size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

/* "Name: value\r\n" for each field (trailers or not); the room was
 * counted as this text when the fields were added. */
static size_t http_put_fields(char *p, const struct mk_stream *r,
                              int trailers)
{
    struct mk_ptr name, value;
    size_t it = 0, n = 0;
    int trailer;

    while (mk_response_field_next(r, &it, &name, &value, &trailer)) {
        if (trailer != trailers) {
            continue;
        }
        n += put(p + n, name.data, name.len);
        n += put(p + n, ": ", 2);
        n += put(p + n, value.data, value.len);
        n += put(p + n, "\r\n", 2);
    }
    return n;
}

int mk_http_response_send_head(struct mk_stream *r)
{
    struct mk_response *resp = &r->resp;
    struct mk_conn *c = r->conn;
    char head[2048 + MK_RESPONSE_FIELDS_ROOM];
    const char *reason = mk_http_status_reason(resp->status);
    size_t n = 0;

    n += put(head + n, "HTTP/1.1 ", 9);
    head[n++] = (char) ('0' + resp->status / 100 % 10);
    head[n++] = (char) ('0' + resp->status / 10 % 10);
    head[n++] = (char) ('0' + resp->status % 10);
    head[n++] = ' ';
    n += put(head + n, reason, strlen(reason));
    if (c->srv->conf.hide_version) {
        n += put(head + n, "\r\nServer: tremolo\r\nDate: ", 25);
    }
    else {
        n += put(head + n, "\r\nServer: " MK_SERVER_TOKEN "\r\nDate: ",
                 sizeof("\r\nServer: " MK_SERVER_TOKEN "\r\nDate: ") - 1);
    }
    n += put(head + n, mk_http_date(), MK_HTTP_DATE_LEN);
    n += put(head + n, "\r\n", 2);

    if (resp->status >= 200 && resp->status != 204 && resp->status != 304) {
        if (resp->content_length >= 0) {
            n += put(head + n, "Content-Length: ", 16);
            n += mk_str_u64(head + n, (uint64_t) resp->content_length);
            n += put(head + n, "\r\n", 2);
        }
        else if (r->head.version_minor >= 1 && mk_response_has_body(r)) {
            n += put(head + n, "Transfer-Encoding: chunked\r\n", 28);
            resp->chunked = 1;
        }
        else if (mk_response_has_body(r)) {
            resp->close = 1;               /* HTTP/1.0: the close ends it */
        }
    }
    n += http_put_fields(head + n, r, 0);

    if (mk_http_response_will_close(r)) {
        resp->close = 1;
        n += put(head + n, "Connection: close\r\n\r\n", 21);
    }
    else if (r->head.version_minor == 0) {
        n += put(head + n, "Connection: keep-alive\r\n\r\n", 26);
    }
    else {
        n += put(head + n, "\r\n", 2);
    }
    return mk_conn_write(c, head, n, MK_WRITE_COPY);
}

static int http_frame(struct mk_stream *r, size_t len)
{
    char line[24];
    size_t n;

    n = mk_str_hex(line, len);
    line[n++] = '\r';
    line[n++] = '\n';
    return mk_conn_write(r->conn, line, n, MK_WRITE_COPY);
}

int mk_http_response_send_body(struct mk_stream *r, const void *data,
                               size_t len, int flags)
{
    struct mk_conn *c = r->conn;

    if (r->resp.chunked) {
        if (http_frame(r, len) < 0 ||
            mk_conn_write(c, data, len, flags) < 0) {
            return -1;
        }
        return mk_conn_write(c, "\r\n", 2, MK_WRITE_STATIC);
    }
    return mk_conn_write(c, data, len, flags);
}

int mk_http_response_send_file(struct mk_stream *r, int fd, off_t offset,
                               size_t len, int close_fd)
{
    struct mk_conn *c = r->conn;

    if (r->resp.chunked) {
        if (http_frame(r, len) < 0 ||
            mk_conn_write_file(c, fd, offset, len, close_fd) < 0) {
            return -1;
        }
        return mk_conn_write(c, "\r\n", 2, MK_WRITE_STATIC);
    }
    return mk_conn_write_file(c, fd, offset, len, close_fd);
}

int mk_http_response_send_shared(struct mk_stream *r,
                                 struct mk_shared_buf *sb)
{
    struct mk_conn *c = r->conn;

    if (r->resp.chunked) {
        if (http_frame(r, sb->len) < 0 || mk_conn_write_shared(c, sb) < 0) {
            return -1;
        }
        return mk_conn_write(c, "\r\n", 2, MK_WRITE_STATIC);
    }
    return mk_conn_write_shared(c, sb);
}

int mk_http_response_send_raw(struct mk_stream *r, const void *data,
                              size_t len, int flags)
{
    return mk_conn_write(r->conn, data, len, flags);
}

/* The last chunk with its trailers, or the keep-alive decision of a raw
 * response; a Content-Length body needs no end mark. */
int mk_http_response_end_bytes(struct mk_stream *r)
{
    char last[8 + MK_RESPONSE_FIELDS_ROOM];
    size_t n;

    if (r->resp.chunked) {
        n = put(last, "0\r\n", 3);
        n += http_put_fields(last + n, r, 1);
        if (n == 3) {
            return mk_conn_write(r->conn, "0\r\n\r\n", 5, MK_WRITE_STATIC);
        }
        n += put(last + n, "\r\n", 2);
        return mk_conn_write(r->conn, last, n, MK_WRITE_COPY);
    }
    if (r->resp.raw && mk_http_response_will_close(r)) {
        r->resp.close = 1;
    }
    return 0;
}
