/*
 * The response writer: status line and head built in one pass into the
 * connection's write queue (so head + small body leave in one writev),
 * body framing (Content-Length, chunked, or close-delimited for HTTP/1.0),
 * HEAD and bodiless statuses, error pages, and the keep-alive decision.
 */
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

#define MK_SERVER_TOKEN "tremolo/" TREMOLO_VERSION

struct mk_status_reason {
    int status;
    const char *reason;
};

static const struct mk_status_reason status_reasons[] = {
    { 100, "Continue" }, { 101, "Switching Protocols" },
    { 103, "Early Hints" },
    { 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
    { 203, "Non-Authoritative Information" }, { 204, "No Content" },
    { 205, "Reset Content" }, { 206, "Partial Content" },
    { 300, "Multiple Choices" }, { 301, "Moved Permanently" },
    { 302, "Found" }, { 303, "See Other" }, { 304, "Not Modified" },
    { 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
    { 400, "Bad Request" }, { 401, "Unauthorized" },
    { 402, "Payment Required" }, { 403, "Forbidden" }, { 404, "Not Found" },
    { 405, "Method Not Allowed" }, { 406, "Not Acceptable" },
    { 407, "Proxy Authentication Required" }, { 408, "Request Timeout" },
    { 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
    { 412, "Precondition Failed" }, { 413, "Content Too Large" },
    { 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
    { 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" },
    { 421, "Misdirected Request" }, { 422, "Unprocessable Content" },
    { 425, "Too Early" }, { 426, "Upgrade Required" },
    { 428, "Precondition Required" }, { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" }, { 501, "Not Implemented" },
    { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
    { 0, NULL }
};

const char *mk_http_status_reason(int status)
{
    const struct mk_status_reason *s;

    for (s = status_reasons; s->status; s++) {
        if (s->status == status) {
            return s->reason;
        }
    }
    return status >= 500 ? "Error" : status >= 400 ? "Client Error" : "Unknown";
}

static int response_has_body(const struct mk_stream *r)
{
    int st = r->resp.status;

    return !(st < 200 || st == 204 || st == 304 ||
             r->head.method == MK_HTTP_METHOD_HEAD);
}

/* RFC 9112 9.3: HTTP/1.1 persists unless "close"; 1.0 only on request. */
static int response_keepalive(const struct mk_stream *r)
{
    const struct mk_conn *c = r->conn;
    const struct mk_server_conf *conf = &c->srv->conf;

    if (r->resp.close || !conf->keepalive || !r->head_done ||
        mk_worker_is_draining(c->worker)) {
        return 0;
    }
    /* A client that half-closed still gets answers to the requests it
     * pipelined before (they may wait behind a file): the last one says
     * close. */
    if ((c->flags & MK_CONN_F_EOF) && c->in_len <= r->head.head_len) {
        return 0;
    }
    if (conf->keepalive_max > 0 && r->seq >= (uint64_t) conf->keepalive_max) {
        return 0;
    }
    if (r->head.connection & MK_HTTP_CONN_CLOSE) {
        return 0;
    }
    if (r->head.version_minor == 0 &&
        !(r->head.connection & MK_HTTP_CONN_KEEPALIVE)) {
        return 0;
    }
    /* An unread body is normally read and dropped after the response;
     * but a client waiting for "100 Continue" will never send it, and one
     * announced beyond MaxDiscardBody is not worth reading. */
    if (!r->body.done && r->discard_body &&
        (r->head.expect_continue ||
         (r->body.mode == MK_HTTP_BODY_LENGTH &&
          r->body.remaining > conf->max_discard_body - r->discarded))) {
        return 0;
    }
    return 1;
}

void mk_response_status(struct mk_stream *r, int status)
{
    r->resp.status = status;
}

/* Does a Location value send a browser to another host? URL parsers drop
 * leading C0 controls and spaces and every tab (CR and LF never get this
 * far), and read "//host" and "/\\host" as network paths. */
static int response_location_offsite(const char *v, size_t len)
{
    size_t i = 0;

    while (i < len && (unsigned char) v[i] <= ' ') {
        i++;
    }
    if (i == len || v[i] != '/') {
        return 0;
    }
    i++;
    while (i < len && v[i] == '\t') {
        i++;
    }
    return i < len && (v[i] == '/' || v[i] == '\\');
}

int mk_response_header_n(struct mk_stream *r, const char *name,
                         const char *value, size_t vlen)
{
    struct mk_response *resp = &r->resp;
    size_t nlen = strlen(name);
    size_t i;

    if (resp->head_sent) {
        return -1;
    }
    /* header injection defence: no CR/LF from handlers' values */
    for (i = 0; i < vlen; i++) {
        if (value[i] == '\r' || value[i] == '\n') {
            return -1;
        }
    }
    /* the last guard against an open redirect, whoever built the value */
    if (mk_str_case_eq(name, nlen, "Location", 8) &&
        response_location_offsite(value, vlen)) {
        mk_warn("[fd %d] response Location starting with \"//\" or \"/\\\" "
                "refused: browsers read it as another site", r->conn->ev.fd);
        return -1;
    }
    if (resp->extra_len + nlen + vlen + 4 > sizeof(resp->extra)) {
        mk_warn("[fd %d] response headers too large, header %s dropped",
                r->conn->ev.fd, name);
        return -1;
    }
    memcpy(resp->extra + resp->extra_len, name, nlen);
    resp->extra_len += nlen;
    memcpy(resp->extra + resp->extra_len, ": ", 2);
    resp->extra_len += 2;
    memcpy(resp->extra + resp->extra_len, value, vlen);
    resp->extra_len += vlen;
    memcpy(resp->extra + resp->extra_len, "\r\n", 2);
    resp->extra_len += 2;
    return 0;
}

int mk_response_header(struct mk_stream *r, const char *name,
                       const char *value)
{
    return mk_response_header_n(r, name, value, strlen(value));
}

void mk_response_content_length(struct mk_stream *r, int64_t len)
{
    r->resp.content_length = len;
}

void mk_response_close(struct mk_stream *r)
{
    r->resp.close = 1;
}

int mk_response_will_close(const struct mk_stream *r)
{
    return !response_keepalive(r);
}

static size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

int mk_response_send_head(struct mk_stream *r)
{
    struct mk_response *resp = &r->resp;
    struct mk_conn *c = r->conn;
    char head[2048 + sizeof(resp->extra)];
    const char *reason;
    size_t n = 0;

    if (resp->head_sent) {
        return 0;
    }
    if (resp->status == 0) {
        resp->status = 200;
    }
    resp->head_sent = 1;
    reason = mk_http_status_reason(resp->status);

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
    n += put(head + n, mk_clock_http_date(), MK_CLOCK_HTTP_DATE_LEN);
    n += put(head + n, "\r\n", 2);

    if (resp->status >= 200 && resp->status != 204 && resp->status != 304) {
        if (resp->content_length >= 0) {
            n += put(head + n, "Content-Length: ", 16);
            n += mk_str_u64(head + n, (uint64_t) resp->content_length);
            n += put(head + n, "\r\n", 2);
        }
        else if (r->head.version_minor >= 1 && response_has_body(r)) {
            n += put(head + n, "Transfer-Encoding: chunked\r\n", 28);
            resp->chunked = 1;
        }
        else if (response_has_body(r)) {
            resp->close = 1;               /* HTTP/1.0: the close ends it */
        }
    }
    memcpy(head + n, resp->extra, resp->extra_len);
    n += resp->extra_len;

    if (!response_keepalive(r)) {
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

static int response_frame(struct mk_stream *r, size_t len)
{
    char line[24];
    size_t n;

    n = mk_str_hex(line, len);
    line[n++] = '\r';
    line[n++] = '\n';
    return mk_conn_write(r->conn, line, n, MK_WRITE_COPY);
}

int mk_response_write(struct mk_stream *r, const void *data, size_t len,
                      int flags)
{
    struct mk_conn *c = r->conn;

    if (!r->resp.head_sent && mk_response_send_head(r) < 0) {
        goto discard;
    }
    if (len == 0 || !response_has_body(r)) {
        goto discard;
    }
    r->resp.bytes += len;
    if (r->resp.chunked) {
        if (response_frame(r, len) < 0 ||
            mk_conn_write(c, data, len, flags) < 0) {
            return -1;
        }
        return mk_conn_write(c, "\r\n", 2, MK_WRITE_STATIC);
    }
    return mk_conn_write(c, data, len, flags);

discard:
    if (flags & MK_WRITE_FREE) {
        mk_mem_free((void *) data);
    }
    return c->state == MK_CONN_OPEN ? 0 : -1;
}

int mk_response_sendfile(struct mk_stream *r, int fd, off_t offset,
                         size_t len, int close_fd)
{
    struct mk_conn *c = r->conn;

    if ((!r->resp.head_sent && mk_response_send_head(r) < 0) ||
        len == 0 || !response_has_body(r)) {
        if (close_fd) {
            close(fd);
        }
        return c->state == MK_CONN_OPEN ? 0 : -1;
    }
    r->resp.bytes += len;
    if (r->resp.chunked) {
        if (response_frame(r, len) < 0 ||
            mk_conn_write_file(c, fd, offset, len, close_fd) < 0) {
            return -1;
        }
        return mk_conn_write(c, "\r\n", 2, MK_WRITE_STATIC);
    }
    return mk_conn_write_file(c, fd, offset, len, close_fd);
}

int mk_response_raw(struct mk_stream *r)
{
    r->resp.raw = 1;
    r->resp.head_sent = 1;
    return 0;
}

int mk_response_write_raw(struct mk_stream *r, const void *data, size_t len,
                          int flags)
{
    r->resp.bytes += len;
    return mk_conn_write(r->conn, data, len, flags);
}

int mk_response_end(struct mk_stream *r)
{
    struct mk_conn *c = r->conn;
    int ret = 0;

    if (r->resp.ended || c->req != r) {
        return -1;
    }
    if (!r->resp.head_sent) {
        if (r->resp.content_length < 0) {
            r->resp.content_length = 0;
        }
        ret = mk_response_send_head(r);
    }
    else if (r->resp.chunked) {
        ret = mk_conn_write(c, "0\r\n\r\n", 5, MK_WRITE_STATIC);
    }
    else if (r->resp.raw && !response_keepalive(r)) {
        r->resp.close = 1;
    }
    r->resp.ended = 1;
    mk_http_request_finish(r);
    return ret;
}

static const struct mk_error_page *response_error_page(const struct mk_vhost *vh,
                                                       int status)
{
    size_t i;

    for (i = 0; vh && i < vh->error_page_count; i++) {
        if (vh->error_pages[i].status == status) {
            return &vh->error_pages[i];
        }
    }
    return NULL;
}

int mk_response_error(struct mk_stream *r, int status)
{
    const struct mk_error_page *page;
    char body[512];
    size_t n;

    if (r->resp.head_sent) {
        /* too late for a status: the only honest signal is to close */
        mk_conn_close(r->conn, 0);
        return -1;
    }
    r->resp.status = status;
    page = response_error_page(r->vhost, status);
    if (page) {
        mk_response_header(r, "Content-Type", page->type);
        mk_response_content_length(r, (int64_t) page->len);
        if (mk_response_send_head(r) < 0 ||
            mk_response_write(r, page->body, page->len, MK_WRITE_STATIC) < 0) {
            return -1;
        }
        return mk_response_end(r);
    }
    n = mk_str_printf(body, sizeof(body),
                      "<html>\n<head><title>%d %s</title></head>\n"
                      "<body>\n<h1>%d %s</h1>\n</body>\n</html>\n",
                      status, mk_http_status_reason(status), status,
                      mk_http_status_reason(status));
    mk_response_header(r, "Content-Type", "text/html; charset=utf-8");
    mk_response_content_length(r, (int64_t) n);
    if (mk_response_send_head(r) < 0 ||
        mk_response_write(r, body, n, MK_WRITE_COPY) < 0) {
        return -1;
    }
    return mk_response_end(r);
}

int mk_response_get_status(const struct mk_stream *r)
{
    return r->resp.status;
}

int mk_response_head_sent(const struct mk_stream *r)
{
    return r->resp.head_sent;
}

uint64_t mk_response_bytes(const struct mk_stream *r)
{
    return r->resp.bytes;
}
