/* One WSGI response: start_response (this object is the callable), write(),
 * the framing choice and the head encoding, the same decisions as
 * tremolo_wsgi._Response (spec 6.2):
 *  - Content-Length when the app gives one or the whole body is known;
 *  - else chunked for HTTP/1.1, close-delimited + `end` for HTTP/1.0;
 *  - 1xx/204/304 and HEAD carry no body; `end` only when not persistent.
 * A head with a known length is held and leaves with the first body piece
 * as ONE `body` message that starts with the whole head ("headless",
 * spec 6.2); otherwise it goes out at once as `headers`. */
#include "tremolo_ext.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tx_token_in(const char *v, Py_ssize_t len, const char *token)
{
    size_t tlen = strlen(token);
    Py_ssize_t i = 0;

    while (i <= len) {
        Py_ssize_t start = i, end;
        while (i < len && v[i] != ',') {
            i++;
        }
        end = i;
        while (start < end && (v[start] == ' ' || v[start] == '\t')) {
            start++;
        }
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) {
            end--;
        }
        if ((size_t) (end - start) == tlen &&
            strncasecmp(v + start, token, tlen) == 0) {
            return 1;
        }
        i++;
    }
    return 0;
}

/* ---- head buffer -------------------------------------------------------- */

static int head_add(TxResponse *r, const char *p, size_t len, size_t *cap)
{
    if (r->head_len + len > *cap) {
        size_t ncap = *cap ? *cap : 512;
        char *np;
        while (ncap < r->head_len + len) {
            ncap *= 2;
        }
        np = realloc(r->head, ncap);
        if (np == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->head = np;
        *cap = ncap;
    }
    memcpy(r->head + r->head_len, p, len);
    r->head_len += len;
    return 0;
}

/* The bytes of a header field: bytes or bytearray as they are (ASGI),
 * else the latin-1 of str() of it (WSGI, PEP 3333); no CR/LF. */
static const char *field_bytes(PyObject *o, PyObject **hold, Py_ssize_t *len)
{
    PyObject *s;
    const char *p;

    if (PyBytes_Check(o) || PyByteArray_Check(o)) {
        s = Py_NewRef(o);
        p = PyBytes_Check(o) ? PyBytes_AS_STRING(o) : PyByteArray_AS_STRING(o);
        *len = PyBytes_Check(o) ? PyBytes_GET_SIZE(o) : PyByteArray_GET_SIZE(o);
    }
    else {
        s = PyUnicode_Check(o) ? Py_NewRef(o) : PyObject_Str(o);
        if (s == NULL) {
            return NULL;
        }
        if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
            Py_DECREF(s);
            PyErr_SetString(PyExc_ValueError,
                            "a response header is not latin-1 (PEP 3333)");
            return NULL;
        }
        p = (const char *) PyUnicode_1BYTE_DATA(s);
        *len = PyUnicode_GET_LENGTH(s);
    }
    if (memchr(p, '\r', (size_t) *len) || memchr(p, '\n', (size_t) *len)) {
        Py_DECREF(s);
        PyErr_SetString(PyExc_ValueError, "CR/LF in a response header");
        return NULL;
    }
    *hold = s;
    return p;
}

int tx_resp_send_headers(TxResponse *r, Py_ssize_t known)
{
    PyObject *seq = NULL, *hold = NULL;
    const char *st, *conn = NULL;
    Py_ssize_t stlen, numlen, n;
    int code = 0, given = 0, app_close, http1, ndig = 0;
    size_t cap = r->head_cap;
    char num[64];

    if (r->status == NULL || !PyUnicode_Check(r->status)) {
        PyErr_Format(PyExc_ValueError, "bad WSGI status %R",
                     r->status ? r->status : Py_None);
        return -1;
    }
    if ((st = field_bytes(r->status, &hold, &stlen)) == NULL) {
        return -1;
    }
    while (ndig < stlen && (st[ndig] == ' ' || st[ndig] == '\t')) {
        ndig++;
    }
    {
        Py_ssize_t i = ndig;
        while (i < stlen && isdigit((unsigned char) st[i]) && code < 100000) {
            code = code * 10 + (st[i] - '0');
            i++;
        }
        if (i == ndig || (i < stlen && st[i] != ' ' && st[i] != '\t')) {
            Py_DECREF(hold);
            PyErr_Format(PyExc_ValueError, "bad WSGI status %R", r->status);
            return -1;
        }
    }
    r->head_len = 0;
    if (head_add(r, r->proto == TX_PROTO_10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9,
                 &cap) < 0 ||
        head_add(r, st, (size_t) stlen, &cap) < 0 ||
        head_add(r, "\r\n", 2, &cap) < 0) {
        goto error;
    }
    Py_CLEAR(hold);
    seq = PySequence_Fast(r->headers, "response headers must be a list");
    if (seq == NULL) {
        goto error;
    }
    n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *hn = NULL, *hv = NULL;
        const char *np, *vp;
        Py_ssize_t nlen, vlen;
        PyObject *name, *value;

        /* a tuple (WSGI, PEP 3333), or a 2-item list too (ASGI apps
         * often write [[b"name", b"value"]]) */
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2) {
            name = PyTuple_GET_ITEM(item, 0);
            value = PyTuple_GET_ITEM(item, 1);
        }
        else if (PyList_Check(item) && PyList_GET_SIZE(item) == 2) {
            name = PyList_GET_ITEM(item, 0);
            value = PyList_GET_ITEM(item, 1);
        }
        else {
            PyErr_SetString(PyExc_TypeError,
                            "a response header is a (name, value) pair");
            goto error;
        }
        /* str() of a field may run code that changes a list: hold them */
        Py_INCREF(name);
        Py_INCREF(value);
        np = field_bytes(name, &hn, &nlen);
        vp = np ? field_bytes(value, &hv, &vlen) : NULL;
        Py_DECREF(name);
        Py_DECREF(value);
        if (np == NULL) {
            goto error;
        }
        if (vp == NULL) {
            Py_DECREF(hn);
            goto error;
        }
        if (nlen == 17 && strncasecmp(np, "transfer-encoding", 17) == 0) {
            Py_DECREF(hn);
            Py_DECREF(hv);
            continue;                  /* the framing is ours */
        }
        if (nlen == 14 && strncasecmp(np, "content-length", 14) == 0) {
            given = 1;
        }
        if (conn == NULL && nlen == 10 && strncasecmp(np, "connection", 10) == 0) {
            /* the first Connection field decides, as _header() does */
            conn = tx_token_in(vp, vlen, "close") ? "close" : "other";
        }
        if (head_add(r, np, (size_t) nlen, &cap) < 0 ||
            head_add(r, ": ", 2, &cap) < 0 ||
            head_add(r, vp, (size_t) vlen, &cap) < 0 ||
            head_add(r, "\r\n", 2, &cap) < 0) {
            Py_DECREF(hn);
            Py_DECREF(hv);
            goto error;
        }
        Py_DECREF(hn);
        Py_DECREF(hv);
    }
    Py_CLEAR(seq);
    app_close = conn != NULL && strcmp(conn, "close") == 0;
    http1 = r->proto != TX_PROTO_OTHER;
    if (code == 204 || code == 304 || code < 200) {
        r->mode = TX_MODE_NONE;
    }
    else if (given) {
        r->mode = TX_MODE_LENGTH;
    }
    else if (known >= 0) {
        r->mode = TX_MODE_LENGTH;
        numlen = snprintf(num, sizeof(num), "Content-Length: %zd\r\n", known);
        if (head_add(r, num, (size_t) numlen, &cap) < 0) {
            goto error;
        }
    }
    else if (r->head_method) {
        r->mode = TX_MODE_NONE;
    }
    else if (r->proto == TX_PROTO_11) {
        r->mode = TX_MODE_CHUNKED;
        if (head_add(r, "Transfer-Encoding: chunked\r\n", 28, &cap) < 0) {
            goto error;
        }
    }
    else {
        r->mode = TX_MODE_CLOSE;
    }
    r->persistent = r->client_keepalive && !app_close &&
                    r->mode != TX_MODE_CLOSE;
    if (http1 && conn == NULL) {
        if (!r->persistent) {
            if (head_add(r, "Connection: close\r\n", 19, &cap) < 0) {
                goto error;
            }
        }
        else if (r->proto == TX_PROTO_10 &&
                 head_add(r, "Connection: keep-alive\r\n", 24, &cap) < 0) {
            goto error;
        }
    }
    if (head_add(r, "\r\n", 2, &cap) < 0) {
        goto error;
    }
    r->head_cap = cap;
    r->sent_headers = 1;
    if (r->mode != TX_MODE_LENGTH) {
        return tx_resp_flush_head(r);
    }
    return 0;                          /* held for the first body piece */

error:
    r->head_cap = cap;
    r->head_len = 0;
    Py_XDECREF(hold);
    Py_XDECREF(seq);
    return -1;
}

int tx_resp_flush_head(TxResponse *r)
{
    if (!r->sent_headers || r->head_flushed) {
        return 0;
    }
    r->head_flushed = 1;
    return r->emit(r, "headers", r->head, r->head_len, NULL, 0);
}

int tx_resp_send(TxResponse *r, const void *data, size_t len)
{
    if (len == 0 || r->head_method || r->mode == TX_MODE_NONE) {
        return 0;
    }
    if (!r->head_flushed) {
        r->head_flushed = 1;
        return r->emit(r, "body", r->head, r->head_len, data, len);
    }
    return r->emit(r, r->mode == TX_MODE_CHUNKED ? "chunk" : "body",
                   data, len, NULL, 0);
}

int tx_resp_finish(TxResponse *r)
{
    if (tx_resp_flush_head(r) < 0) {
        return -1;
    }
    if (r->mode == TX_MODE_CHUNKED && !r->head_method &&
        r->emit(r, "chunk", "", 0, NULL, 0) < 0) {
        return -1;
    }
    if (!r->persistent) {
        /* close-delimited or Connection: close: only `end` closes the
         * HTTP/1.x connection */
        return r->emit(r, "end", "", 0, NULL, 0);
    }
    return 0;
}

int tx_resp_emit_wait(TxResponse *r, const char *type, const void *a,
                      size_t alen, const void *b, size_t blen)
{
    return tx_node_send2_py(r->node, r->index, r->sid, type, a, alen, b, blen);
}

void tx_resp_request(TxResponse *r, const char *method, Py_ssize_t mlen,
                     const char *proto, Py_ssize_t plen,
                     const char *conn, Py_ssize_t clen)
{
    r->head_method = method != NULL && mlen == 4 &&
                     strncasecmp(method, "HEAD", 4) == 0;
    if (proto == NULL) {
        proto = "HTTP/1.0";
        plen = 8;
    }
    r->proto = plen == 8 && memcmp(proto, "HTTP/1.1", 8) == 0 ? TX_PROTO_11
             : plen == 8 && memcmp(proto, "HTTP/1.0", 8) == 0 ? TX_PROTO_10
             : TX_PROTO_OTHER;
    if (r->proto == TX_PROTO_11) {
        r->client_keepalive = !(conn && tx_token_in(conn, clen, "close"));
    }
    else if (r->proto == TX_PROTO_10) {
        r->client_keepalive = conn && tx_token_in(conn, clen, "keep-alive");
    }
    else {
        /* HTTP/2 streams: `end` only finishes the stream and there is no
         * chunked coding; each response is self-contained. */
        r->client_keepalive = 0;
    }
}

void tx_resp_reset(TxResponse *r)
{
    Py_CLEAR(r->status);
    Py_CLEAR(r->headers);
    r->sent_headers = 0;
    r->head_flushed = 0;
    r->mode = TX_MODE_UNSET;
    r->persistent = 0;
    r->head_len = 0;
}

/* ---- Python side: start_response and write ------------------------------ */

static int resp_active(TxResponse *r)
{
    if (!r->active) {
        PyErr_SetString(PyExc_RuntimeError, "the request is over");
        return -1;
    }
    return 0;
}

static PyObject *Response_write(TxResponse *r, PyObject *data)
{
    Py_buffer view;
    int rc;

    if (resp_active(r) < 0) {
        return NULL;
    }
    if (r->status == NULL) {
        PyErr_SetString(PyExc_AssertionError,
                        "write() before start_response()");
        return NULL;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    rc = 0;
    if (!r->sent_headers) {
        rc = tx_resp_send_headers(r, -1);
    }
    if (rc == 0) {
        rc = tx_resp_send(r, view.buf, (size_t) view.len);
    }
    PyBuffer_Release(&view);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef write_def = {
    "write", (PyCFunction) Response_write, METH_O,
    "write(data): WSGI write(), sent at once."
};

static PyObject *Response_call(TxResponse *r, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"status", "headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None, *list;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:start_response", kwlist,
                                     &status, &headers, &exc_info)) {
        return NULL;
    }
    if (resp_active(r) < 0) {
        return NULL;
    }
    if (exc_info != Py_None) {
        if (r->sent_headers) {
            PyObject *t, *v, *tb;
            if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
                PyErr_SetString(PyExc_TypeError, "exc_info is a 3-tuple");
                return NULL;
            }
            t = PyTuple_GET_ITEM(exc_info, 0);
            v = PyTuple_GET_ITEM(exc_info, 1);
            tb = PyTuple_GET_ITEM(exc_info, 2);
            PyErr_Restore(Py_NewRef(t), Py_NewRef(v),
                          tb == Py_None ? NULL : Py_NewRef(tb));
            return NULL;
        }
    }
    else if (r->status != NULL) {
        PyErr_SetString(PyExc_AssertionError, "start_response called twice");
        return NULL;
    }
    list = PySequence_List(headers);
    if (list == NULL) {
        return NULL;
    }
    Py_XSETREF(r->status, Py_NewRef(status));
    Py_XSETREF(r->headers, list);
    return PyCFunction_New(&write_def, (PyObject *) r);
}

static void Response_dealloc(TxResponse *r)
{
    Py_CLEAR(r->status);
    Py_CLEAR(r->headers);
    free(r->head);
    PyObject_Free(r);
}

PyTypeObject TxResponse_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_tremolo.StartResponse",
    .tp_basicsize = sizeof(TxResponse),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "start_response(status, headers, exc_info=None) -> write",
    .tp_dealloc = (destructor) Response_dealloc,
    .tp_call = (ternaryfunc) Response_call,
};
