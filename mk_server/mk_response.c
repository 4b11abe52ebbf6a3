/*
 * The response API, protocol-neutral: status, structured header fields,
 * content length, body pieces, trailers and end, error pages. Each
 * protocol serialises it for its wire through its stream ops (HTTP/1.1:
 * mk_http_response.c); this file is the one place a body piece is handed
 * to the protocol.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_http_date.h"

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

int mk_response_has_body(const struct mk_stream *r)
{
    int st = r->resp.status;

    return !(st < 200 || st == 204 || st == 304 ||
             r->head.method == MK_HTTP_METHOD_HEAD);
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

/* Stores a field; the room is counted as HTTP/1.1 text ("Name: value\r\n")
 * whatever the protocol, so that a handler meets the same limit on all. */
static int response_field_add(struct mk_stream *r, const char *name,
                              const char *value, size_t vlen, int trailer)
{
    struct mk_response *resp = &r->resp;
    struct mk_response_field *f;
    size_t nlen = strlen(name);
    size_t i;

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
    if (resp->fields_used + nlen + vlen + 4 > sizeof(resp->fields_buf) ||
        resp->field_count == MK_RESPONSE_FIELDS_MAX) {
        mk_warn("[fd %d] response headers too large, header %s dropped",
                r->conn->ev.fd, name);
        return -1;
    }
    f = &resp->fields[resp->field_count++];
    f->off = (uint16_t) resp->buf_used;
    f->name_len = (uint16_t) nlen;
    f->value_len = (uint16_t) vlen;
    f->trailer = (uint16_t) trailer;
    memcpy(resp->fields_buf + resp->buf_used, name, nlen);
    memcpy(resp->fields_buf + resp->buf_used + nlen, value, vlen);
    resp->buf_used += (uint32_t) (nlen + vlen);
    resp->fields_used += (uint32_t) (nlen + vlen + 4);
    return 0;
}

int mk_response_header_n(struct mk_stream *r, const char *name,
                         const char *value, size_t vlen)
{
    if (r->resp.head_sent) {
        return -1;
    }
    return response_field_add(r, name, value, vlen, 0);
}

int mk_response_header(struct mk_stream *r, const char *name,
                       const char *value)
{
    return mk_response_header_n(r, name, value, strlen(value));
}

void mk_response_abort(struct mk_stream *r)
{
    if (r->ops->abort) {
        r->ops->abort(r);
        return;
    }
    mk_conn_close(r->conn, 0);
}

int mk_response_preload(struct mk_stream *r, const char *url, size_t len)
{
    char link[1024];
    const char *fields[3] = { "Link", link, NULL };
    size_t i;
    int n;

    if (r->resp.head_sent || r->resp.raw || len == 0 || len > 900) {
        return -1;
    }
    /* the URL goes between angle brackets: nothing that would end it or
     * the field (RFC 8288 3: a URI-Reference has none of these) */
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) url[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '<' || ch == '>' ||
            ch == '"') {
            return -1;
        }
    }
    n = snprintf(link, sizeof(link), "<%.*s>; rel=preload", (int) len, url);
    if (response_field_add(r, "Link", link, (size_t) n, 0) < 0) {
        return -1;
    }
    if (r->ops->send_interim &&
        r->ops->send_interim(r, 103, fields) < 0) {
        return -1;
    }
    if (r->ops->push && url[0] == '/' && r->ops->push(r, url, len) < 0) {
        return -1;
    }
    return 0;
}

int mk_response_trailer(struct mk_stream *r, const char *name,
                        const char *value, size_t vlen)
{
    if (r->resp.ended || r->resp.raw) {
        return -1;
    }
    return response_field_add(r, name, value, vlen, 1);
}

int mk_response_field_next(const struct mk_stream *r, size_t *iter,
                           struct mk_ptr *name, struct mk_ptr *value,
                           int *trailer)
{
    const struct mk_response *resp = &r->resp;
    const struct mk_response_field *f;

    if (*iter >= resp->field_count) {
        return 0;
    }
    f = &resp->fields[(*iter)++];
    *name = mk_ptr_make(resp->fields_buf + f->off, f->name_len);
    *value = mk_ptr_make(resp->fields_buf + f->off + f->name_len,
                         f->value_len);
    if (trailer) {
        *trailer = f->trailer;
    }
    return 1;
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
    return r->ops->will_close ? r->ops->will_close(r) : 0;
}

int mk_response_send_head(struct mk_stream *r)
{
    if (r->resp.head_sent) {
        return 0;
    }
    if (r->resp.status == 0) {
        r->resp.status = 200;
    }
    r->resp.head_sent = 1;
    return r->ops->send_head(r);
}

/* The one place a body piece goes to the protocol. */
static int response_send_body(struct mk_stream *r, const void *data,
                              size_t len, int flags)
{
    r->resp.bytes += len;
    return r->ops->send_body(r, data, len, flags);
}

int mk_response_put(struct mk_stream *r, const void *data, size_t len,
                    int flags)
{
    if (!r->resp.head_sent && mk_response_send_head(r) < 0) {
        goto discard;
    }
    if (len == 0 || !mk_response_has_body(r)) {
        goto discard;
    }
    return response_send_body(r, data, len, flags);

discard:
    if (flags & MK_WRITE_FREE) {
        mk_mem_free((void *) data);
    }
    return r->conn->state == MK_CONN_OPEN ? 0 : -1;
}

int mk_response_put_file(struct mk_stream *r, int fd, off_t offset,
                         size_t len, int close_fd)
{
    if ((!r->resp.head_sent && mk_response_send_head(r) < 0) ||
        len == 0 || !mk_response_has_body(r)) {
        if (close_fd) {
            close(fd);
        }
        return r->conn->state == MK_CONN_OPEN ? 0 : -1;
    }
    r->resp.bytes += len;
    return r->ops->send_file(r, fd, offset, len, close_fd);
}

int mk_response_put_shared(struct mk_stream *r, struct mk_shared_buf *sb)
{
    if ((!r->resp.head_sent && mk_response_send_head(r) < 0) ||
        sb->len == 0 || !mk_response_has_body(r)) {
        return r->conn->state == MK_CONN_OPEN ? 0 : -1;
    }
    if (!r->ops->send_shared) {
        return response_send_body(r, sb->data, sb->len, MK_WRITE_COPY);
    }
    r->resp.bytes += sb->len;
    return r->ops->send_shared(r, sb);
}

int mk_response_raw(struct mk_stream *r)
{
    if (!r->ops->send_raw) {
        return -1;
    }
    r->resp.raw = 1;
    r->resp.head_sent = 1;
    return 0;
}

int mk_response_write_raw(struct mk_stream *r, const void *data, size_t len,
                          int flags)
{
    if (!r->ops->send_raw) {
        if (flags & MK_WRITE_FREE) {
            mk_mem_free((void *) data);
        }
        return -1;
    }
    r->resp.bytes += len;
    return r->ops->send_raw(r, data, len, flags);
}

int mk_response_put_end(struct mk_stream *r)
{
    int ret = 0;

    if (r->resp.ended) {
        return -1;
    }
    if (!r->resp.head_sent) {
        if (r->resp.content_length < 0) {
            r->resp.content_length = 0;
        }
        ret = mk_response_send_head(r);
    }
    r->resp.ended = 1;
    if (r->ops->end(r) < 0) {
        ret = -1;
    }
    return ret;
}

/* The handler's body calls: the stream's output filters (mk_filter.c) see
 * every piece, the end included, before the protocol does. */
int mk_response_write(struct mk_stream *r, const void *data, size_t len,
                      int flags)
{
    if (r->hooks.filters) {
        return mk_filter_stream_write(r, data, len, flags);
    }
    return mk_response_put(r, data, len, flags);
}

int mk_response_sendfile(struct mk_stream *r, int fd, off_t offset,
                         size_t len, int close_fd)
{
    if (r->hooks.filters) {
        return mk_filter_stream_sendfile(r, fd, offset, len, close_fd);
    }
    return mk_response_put_file(r, fd, offset, len, close_fd);
}

int mk_response_write_shared(struct mk_stream *r, struct mk_shared_buf *sb)
{
    if (r->hooks.filters) {
        return mk_filter_stream_write(r, sb->data, sb->len, MK_WRITE_COPY);
    }
    return mk_response_put_shared(r, sb);
}

int mk_response_end(struct mk_stream *r)
{
    if (r->hooks.filters) {
        return mk_filter_stream_end(r);
    }
    return mk_response_put_end(r);
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

int mk_response_is_raw(const struct mk_stream *r)
{
    return r->resp.raw;
}

int mk_response_ended(const struct mk_stream *r)
{
    return r->resp.ended;
}

int64_t mk_response_get_content_length(const struct mk_stream *r)
{
    return r->resp.content_length;
}
