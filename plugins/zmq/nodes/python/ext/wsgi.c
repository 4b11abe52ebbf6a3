/* Node.serve_wsgi(app, max_body): the whole WSGI loop in C, the same
 * behaviour as tremolo_wsgi.WSGIHandler:
 *  - request bodies are collected by CONTENT_LENGTH, or until the empty
 *    `body` end marker for chunked uploads; 400 on a bad length, 413 above
 *    max_body; a request without either is dispatched at once;
 *  - a new `uwsgi` for a sid with a pending body dispatches that first;
 *    `end` drops a pending request and `spawn` drops them all;
 *  - the app runs with the GIL; zmq waits and sends run without it;
 *  - an exception before the head gives 500, after it `end` (the
 *    framing is broken: only closing is honest); result.close() always. */
#include "tremolo_ext.h"

#include <stdlib.h>
#include <string.h>

struct wsgi_pending {
    char                 sid[TX_SID_LEN];
    PyObject            *vars;          /* dict */
    char                *buf;
    size_t               len, cap;
    long long            expected;      /* -1: until the end marker */
    struct wsgi_pending *next;
};

struct wsgi_loop {
    TxNode              *node;
    PyObject            *app;
    Py_ssize_t           max_body;
    struct wsgi_pending *pending;
    TxResponse          *spare;         /* reused when the app kept none */
};

/* Interned environ keys and constant values, made once. */
static struct {
    PyObject *REQUEST_METHOD, *SCRIPT_NAME, *PATH_INFO, *QUERY_STRING,
             *SERVER_NAME, *SERVER_PORT, *SERVER_PROTOCOL, *HTTPS,
             *UWSGI_SCHEME, *HTTP_CONNECTION, *HTTP_TRANSFER_ENCODING,
             *CONTENT_LENGTH, *wsgi_version, *wsgi_url_scheme, *wsgi_input,
             *wsgi_errors, *wsgi_multithread, *wsgi_multiprocess,
             *wsgi_run_once, *version, *http, *https, *GET, *slash, *empty,
             *localhost, *port80, *http10, *empty_bytes, *close;
    int ready;
} K;

static int wsgi_consts(void)
{
#define KEY(field, text) \
    if ((K.field = PyUnicode_InternFromString(text)) == NULL) return -1;
    if (K.ready) {
        return 0;
    }
    KEY(REQUEST_METHOD, "REQUEST_METHOD")
    KEY(SCRIPT_NAME, "SCRIPT_NAME")
    KEY(PATH_INFO, "PATH_INFO")
    KEY(QUERY_STRING, "QUERY_STRING")
    KEY(SERVER_NAME, "SERVER_NAME")
    KEY(SERVER_PORT, "SERVER_PORT")
    KEY(SERVER_PROTOCOL, "SERVER_PROTOCOL")
    KEY(HTTPS, "HTTPS")
    KEY(UWSGI_SCHEME, "UWSGI_SCHEME")
    KEY(HTTP_CONNECTION, "HTTP_CONNECTION")
    KEY(HTTP_TRANSFER_ENCODING, "HTTP_TRANSFER_ENCODING")
    KEY(CONTENT_LENGTH, "CONTENT_LENGTH")
    KEY(wsgi_version, "wsgi.version")
    KEY(wsgi_url_scheme, "wsgi.url_scheme")
    KEY(wsgi_input, "wsgi.input")
    KEY(wsgi_errors, "wsgi.errors")
    KEY(wsgi_multithread, "wsgi.multithread")
    KEY(wsgi_multiprocess, "wsgi.multiprocess")
    KEY(wsgi_run_once, "wsgi.run_once")
    KEY(http, "http")
    KEY(https, "https")
    KEY(GET, "GET")
    KEY(slash, "/")
    KEY(empty, "")
    KEY(localhost, "localhost")
    KEY(port80, "80")
    KEY(http10, "HTTP/1.0")
    KEY(close, "close")
#undef KEY
    if ((K.version = Py_BuildValue("(ii)", 1, 0)) == NULL ||
        (K.empty_bytes = PyBytes_FromStringAndSize("", 0)) == NULL) {
        return -1;
    }
    K.ready = 1;
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* The str value of key in d as UTF-8 (NULL, len 0 when absent). */
static const char *dict_str(PyObject *d, PyObject *key, Py_ssize_t *len)
{
    PyObject *v = PyDict_GetItemWithError(d, key);
    const char *p;

    *len = 0;
    if (v == NULL || !PyUnicode_Check(v)) {
        return NULL;
    }
    p = PyUnicode_AsUTF8AndSize(v, len);
    if (p == NULL) {
        PyErr_Clear();
        *len = 0;
    }
    return p;
}

static void print_exception(void)
{
    /* PyErr_PrintEx(0) writes the traceback to sys.stderr without keeping
     * the exception alive in sys.last_* */
    PyErr_PrintEx(0);
}

static TxResponse *resp_get(struct wsgi_loop *L, const char *sid, int index,
                            PyObject *vars)
{
    TxResponse *r = L->spare;
    const char *m, *p, *c;
    Py_ssize_t mlen, plen, clen;

    if (r != NULL) {
        L->spare = NULL;
    }
    else {
        r = PyObject_New(TxResponse, &TxResponse_Type);
        if (r == NULL) {
            return NULL;
        }
        r->status = r->headers = NULL;
        r->head = NULL;
        r->head_cap = 0;
    }
    tx_resp_reset(r);
    r->node = L->node;
    memcpy(r->sid, sid, TX_SID_LEN);
    r->index = index;
    r->active = 1;
    r->emit = tx_resp_emit_wait;
    m = dict_str(vars, K.REQUEST_METHOD, &mlen);
    p = dict_str(vars, K.SERVER_PROTOCOL, &plen);
    c = dict_str(vars, K.HTTP_CONNECTION, &clen);
    tx_resp_request(r, m, mlen, p, plen, c, clen);
    return r;
}

static void resp_put(struct wsgi_loop *L, TxResponse *r)
{
    r->active = 0;
    tx_resp_reset(r);
    if (L->spare == NULL && Py_REFCNT(r) == 1) {
        L->spare = r;                  /* the app kept no reference */
    }
    else {
        Py_DECREF(r);
    }
}

/* 400, 413 or 500 with a short text body; the connection is closed (an
 * unread body would desync the stream). */
static int wsgi_error(struct wsgi_loop *L, const char *sid, int index,
                      PyObject *vars, int code)
{
    TxResponse *r = resp_get(L, sid, index, vars);
    char text[64], status[64];
    int tlen, rc = -1;
    PyObject *hdrs;

    if (r == NULL) {
        return -1;
    }
    r->client_keepalive = 0;
    tlen = snprintf(text, sizeof(text), "%d %s\n", code, tx_reason(code));
    snprintf(status, sizeof(status), "%d %s", code, tx_reason(code));
    hdrs = Py_BuildValue("[(ss)]", "Content-Type", "text/plain");
    r->status = PyUnicode_FromString(status);
    r->headers = hdrs;
    if (r->status != NULL && hdrs != NULL &&
        tx_resp_send_headers(r, tlen) == 0 &&
        tx_resp_send(r, text, (size_t) tlen) == 0 &&
        tx_resp_finish(r) == 0) {
        rc = 0;
    }
    resp_put(L, r);
    return rc;
}

static PyObject *wsgi_environ(PyObject *env, PyObject *body)
{
    PyObject *input, *scheme = NULL, *errors;
    const char *v;
    Py_ssize_t len;

    if (PyDict_SetDefault(env, K.REQUEST_METHOD, K.GET) == NULL ||
        PyDict_SetDefault(env, K.SCRIPT_NAME, K.empty) == NULL ||
        PyDict_SetDefault(env, K.PATH_INFO, K.slash) == NULL ||
        PyDict_SetDefault(env, K.QUERY_STRING, K.empty) == NULL ||
        PyDict_SetDefault(env, K.SERVER_NAME, K.localhost) == NULL ||
        PyDict_SetDefault(env, K.SERVER_PORT, K.port80) == NULL ||
        PyDict_SetDefault(env, K.SERVER_PROTOCOL, K.http10) == NULL) {
        return NULL;
    }
    /* The gateway adds HTTPS=on / UWSGI_SCHEME=https on TLS (spec 2.2). */
    scheme = PyDict_GetItemWithError(env, K.UWSGI_SCHEME);
    if (scheme != NULL && (!PyUnicode_Check(scheme) ||
                           PyUnicode_GET_LENGTH(scheme) == 0)) {
        scheme = NULL;
    }
    if (scheme == NULL) {
        int https = 0;
        v = dict_str(env, K.HTTPS, &len);
        if (v != NULL) {
            https = (len == 2 && strncasecmp(v, "on", 2) == 0) ||
                    (len == 1 && v[0] == '1') ||
                    (len == 3 && strncasecmp(v, "yes", 3) == 0);
        }
        scheme = https ? K.https : K.http;
    }
    if (PyDict_SetItem(env, K.wsgi_url_scheme, scheme) < 0) {
        return NULL;
    }
    errors = PySys_GetObject("stderr");
    if ((input = tx_input_new(body)) == NULL) {
        return NULL;
    }
    if (PyDict_SetItem(env, K.wsgi_version, K.version) < 0 ||
        PyDict_SetItem(env, K.wsgi_input, input) < 0 ||
        PyDict_SetItem(env, K.wsgi_errors, errors ? errors : Py_None) < 0 ||
        PyDict_SetItem(env, K.wsgi_multithread, Py_False) < 0 ||
        PyDict_SetItem(env, K.wsgi_multiprocess, Py_True) < 0 ||
        PyDict_SetItem(env, K.wsgi_run_once, Py_False) < 0) {
        Py_DECREF(input);
        return NULL;
    }
    Py_DECREF(input);
    return env;
}

/* Size of one body piece, or -1 with TypeError. */
static Py_ssize_t piece_len(PyObject *p)
{
    Py_buffer view;
    Py_ssize_t n;

    if (PyBytes_Check(p)) {
        return PyBytes_GET_SIZE(p);
    }
    if (PyObject_GetBuffer(p, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    n = view.len;
    PyBuffer_Release(&view);
    return n;
}

static int piece_send(TxResponse *r, PyObject *p)
{
    Py_buffer view;
    int rc;

    if (PyBytes_Check(p)) {
        return tx_resp_send(r, PyBytes_AS_STRING(p),
                            (size_t) PyBytes_GET_SIZE(p));
    }
    if (PyObject_GetBuffer(p, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    rc = tx_resp_send(r, view.buf, (size_t) view.len);
    PyBuffer_Release(&view);
    return rc;
}

static int need_status(TxResponse *r)
{
    if (r->status == NULL) {
        PyErr_SetString(PyExc_AssertionError,
                        "app returned without start_response()");
        return -1;
    }
    return 0;
}

/* The whole body is known: one message with the head when it fits. */
static int stream_sequence(TxResponse *r, PyObject *seq)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), total = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);

    if (need_status(r) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len = piece_len(items[i]);
        if (len < 0) {
            return -1;
        }
        total += len;
    }
    if (!r->sent_headers && tx_resp_send_headers(r, total) < 0) {
        return -1;
    }
    if (n > 1 && r->mode == TX_MODE_LENGTH && !r->head_method) {
        /* join the pieces: head + body leave as one message */
        PyObject *joined = PyBytes_FromStringAndSize(NULL, total);
        char *dst;
        int rc;
        if (joined == NULL) {
            return -1;
        }
        dst = PyBytes_AS_STRING(joined);
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_buffer view;
            if (PyObject_GetBuffer(items[i], &view, PyBUF_SIMPLE) < 0) {
                Py_DECREF(joined);
                return -1;
            }
            memcpy(dst, view.buf, (size_t) view.len);
            dst += view.len;
            PyBuffer_Release(&view);
        }
        rc = tx_resp_send(r, PyBytes_AS_STRING(joined), (size_t) total);
        Py_DECREF(joined);
        return rc;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (piece_send(r, items[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

static int stream_result(TxResponse *r, PyObject *result)
{
    PyObject *it, *piece;

    if (PyList_Check(result) || PyTuple_Check(result)) {
        if (stream_sequence(r, result) < 0) {
            return -1;
        }
        return tx_resp_finish(r);
    }
    if ((it = PyObject_GetIter(result)) == NULL) {
        return -1;
    }
    if (r->head_method) {
        /* no body goes out, so measure it for an honest Content-Length */
        Py_ssize_t total = 0;
        while ((piece = PyIter_Next(it)) != NULL) {
            Py_ssize_t len = PyObject_Length(piece);
            Py_DECREF(piece);
            if (len < 0) {
                Py_DECREF(it);
                return -1;
            }
            total += len;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            return -1;
        }
        if (!r->sent_headers) {
            if (need_status(r) < 0 || tx_resp_send_headers(r, total) < 0) {
                return -1;
            }
        }
        return tx_resp_finish(r);
    }
    while ((piece = PyIter_Next(it)) != NULL) {
        if (!r->sent_headers) {
            Py_ssize_t len = piece_len(piece);
            if (len < 0) {
                goto error;
            }
            if (len == 0) {
                Py_DECREF(piece);
                continue;              /* the head waits for a real byte */
            }
            if (tx_resp_send_headers(r, -1) < 0) {
                goto error;
            }
        }
        if (piece_send(r, piece) < 0) {
            goto error;
        }
        Py_DECREF(piece);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        return -1;
    }
    if (!r->sent_headers) {
        if (need_status(r) < 0 || tx_resp_send_headers(r, 0) < 0) {
            return -1;
        }
    }
    return tx_resp_finish(r);

error:
    Py_DECREF(piece);
    Py_DECREF(it);
    return -1;
}

/* Run the app for one request. -1 only for what must stop the loop (a
 * BaseException that is not an Exception: KeyboardInterrupt, SystemExit,
 * or an out-of-memory while answering). vars is consumed. */
static int wsgi_dispatch(struct wsgi_loop *L, const char *sid, int index,
                         PyObject *vars, PyObject *body)
{
    TxResponse *r;
    PyObject *result = NULL, *close, *env;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    int rc = 0;

    if ((env = wsgi_environ(vars, body)) == NULL) {
        Py_DECREF(vars);
        return -1;
    }
    if ((r = resp_get(L, sid, index, env)) == NULL) {
        Py_DECREF(vars);
        return -1;
    }
    result = PyObject_CallFunctionObjArgs(L->app, env, (PyObject *) r, NULL);
    if (result != NULL && stream_result(r, result) == 0) {
        goto done;
    }
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Fetch(&et, &ev, &etb);   /* re-raised after result.close() */
        rc = -1;
        goto done;
    }
    print_exception();
    if (!r->head_flushed) {
        resp_put(L, r);
        r = NULL;
        if (wsgi_error(L, sid, index, env, 500) < 0) {
            print_exception();
        }
    }
    else if (tx_node_send_py(L->node, index, sid, "end", "", 0) < 0) {
        /* the framing is broken mid-response: only closing is honest */
        print_exception();
    }

done:
    if (r != NULL) {
        resp_put(L, r);
    }
    if (result != NULL) {
        close = PyObject_GetAttrString(result, "close");
        if (close == NULL) {
            PyErr_Clear();
        }
        else {
            PyObject *o = PyObject_CallNoArgs(close);
            Py_DECREF(close);
            if (o == NULL) {
                print_exception();
            }
            Py_XDECREF(o);
        }
        Py_DECREF(result);
    }
    Py_DECREF(vars);
    if (et != NULL || ev != NULL) {
        PyErr_Restore(et, ev, etb);
    }
    return rc;
}

/* ---- pending request bodies --------------------------------------------- */

static struct wsgi_pending *pending_take(struct wsgi_loop *L, const char *sid)
{
    for (struct wsgi_pending **pp = &L->pending; *pp; pp = &(*pp)->next) {
        if (memcmp((*pp)->sid, sid, TX_SID_LEN) == 0) {
            struct wsgi_pending *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

static struct wsgi_pending *pending_find(struct wsgi_loop *L, const char *sid)
{
    for (struct wsgi_pending *p = L->pending; p; p = p->next) {
        if (memcmp(p->sid, sid, TX_SID_LEN) == 0) {
            return p;
        }
    }
    return NULL;
}

static void pending_free(struct wsgi_pending *p)
{
    Py_XDECREF(p->vars);
    free(p->buf);
    free(p);
}

/* Dispatch a finished pending request with its first `len` body bytes. */
static int pending_dispatch(struct wsgi_loop *L, struct wsgi_pending *p,
                            int index, size_t len)
{
    PyObject *body = PyBytes_FromStringAndSize(p->buf, (Py_ssize_t) len);
    PyObject *vars = p->vars;
    char sid[TX_SID_LEN];
    int rc;

    memcpy(sid, p->sid, TX_SID_LEN);
    p->vars = NULL;
    pending_free(p);
    if (body == NULL) {
        Py_DECREF(vars);
        return -1;
    }
    rc = wsgi_dispatch(L, sid, index, vars, body);
    Py_DECREF(body);
    return rc;
}

/* ---- message handling --------------------------------------------------- */

static int on_request(struct wsgi_loop *L, const char *sid, int index,
                      const char *pkt, size_t pktlen)
{
    struct wsgi_pending *old = pending_take(L, sid), *p;
    PyObject *vars;
    const char *v;
    Py_ssize_t len;
    long long expected = -1;
    int chunked;

    if (old != NULL &&
        pending_dispatch(L, old, index, old->len) < 0) {
        /* a new request implies the previous body ended (BlastBeat sends
         * no end-of-body marker) */
        return -1;
    }
    vars = tx_uwsgi_decode(pkt, pktlen);
    if (vars == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            return -1;
        }
        PyObject *t, *e, *tb, *s;
        PyErr_Fetch(&t, &e, &tb);
        PyErr_NormalizeException(&t, &e, &tb);
        s = e ? PyObject_Str(e) : NULL;
        PySys_FormatStderr("tremolo_node: bad uwsgi packet: %U\n",
                           s ? s : K.empty);
        Py_XDECREF(s);
        Py_XDECREF(t);
        Py_XDECREF(e);
        Py_XDECREF(tb);
        PyErr_Clear();
        return 0;
    }
    v = dict_str(vars, K.HTTP_TRANSFER_ENCODING, &len);
    chunked = v != NULL && tx_token_in(v, len, "chunked");
    v = dict_str(vars, K.CONTENT_LENGTH, &len);
    if (!chunked && v != NULL) {
        Py_ssize_t i = 0, end = len;
        while (i < end && (v[i] == ' ' || v[i] == '\t')) {
            i++;
        }
        while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t')) {
            end--;
        }
        if (i < end) {
            int bad = 0;
            if (v[i] == '+') {
                i++;
            }
            expected = 0;
            if (i == end) {
                bad = 1;
            }
            for (; i < end && !bad; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    bad = 1;
                }
                else if (expected <= (long long) L->max_body) {
                    expected = expected * 10 + (v[i] - '0');
                }
            }
            if (bad) {
                int rc = wsgi_error(L, sid, index, vars, 400);
                Py_DECREF(vars);
                return rc;
            }
            if (expected > (long long) L->max_body) {
                int rc = wsgi_error(L, sid, index, vars, 413);
                Py_DECREF(vars);
                return rc;
            }
        }
    }
    if (!chunked && expected <= 0) {
        return wsgi_dispatch(L, sid, index, vars, K.empty_bytes);
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        Py_DECREF(vars);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(p->sid, sid, TX_SID_LEN);
    p->vars = vars;
    p->expected = chunked ? -1 : expected;
    p->next = L->pending;
    L->pending = p;
    return 0;
}

static int on_body(struct wsgi_loop *L, const char *sid, int index,
                   const char *data, size_t len)
{
    struct wsgi_pending *p = pending_find(L, sid);

    if (p == NULL) {
        return 0;                      /* body of a dispatched request */
    }
    if (len == 0) {                    /* the end-of-body marker */
        p = pending_take(L, sid);
        return pending_dispatch(L, p, index, p->len);
    }
    if (p->len + len > (size_t) L->max_body) {
        PyObject *vars;
        int rc;
        p = pending_take(L, sid);
        vars = Py_NewRef(p->vars);
        pending_free(p);
        rc = wsgi_error(L, sid, index, vars, 413);
        Py_DECREF(vars);
        return rc;
    }
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap : 16384;
        char *nb;
        while (cap < p->len + len) {
            cap *= 2;
        }
        if (p->expected > 0 && (size_t) p->expected >= p->len + len &&
            cap > (size_t) p->expected) {
            cap = (size_t) p->expected;
        }
        nb = realloc(p->buf, cap);
        if (nb == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    if (p->expected >= 0 && p->len >= (size_t) p->expected) {
        p = pending_take(L, sid);
        return pending_dispatch(L, p, index, (size_t) p->expected);
    }
    return 0;
}

static void pending_clear(struct wsgi_loop *L)
{
    while (L->pending != NULL) {
        struct wsgi_pending *p = L->pending;
        L->pending = p->next;
        pending_free(p);
    }
}

static int wsgi_handle(struct wsgi_loop *L, struct tx_msg *m)
{
    const char *sid = zmq_msg_data(&m->frame[0]);
    const char *type = zmq_msg_data(&m->frame[1]);
    const char *data = zmq_msg_data(&m->frame[2]);
    size_t sidlen = zmq_msg_size(&m->frame[0]);
    size_t tlen = zmq_msg_size(&m->frame[1]);
    size_t len = zmq_msg_size(&m->frame[2]);

#define IS(lit) (tlen == sizeof(lit) - 1 && memcmp(type, lit, tlen) == 0)
    if (IS("spawn")) {
        pending_clear(L);              /* old sids are gone (spec 5) */
        return 0;
    }
    if (sidlen != TX_SID_LEN) {
        return 0;
    }
    if (IS("uwsgi")) {
        return on_request(L, sid, m->index, data, len);
    }
    if (IS("body")) {
        return on_body(L, sid, m->index, data, len);
    }
    if (IS("end")) {
        struct wsgi_pending *p = pending_take(L, sid);
        if (p != NULL) {
            pending_free(p);
        }
    }
    return 0;
#undef IS
}

PyObject *tx_serve_wsgi(TxNode *n, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"app", "max_body", NULL};
    struct wsgi_loop L;
    struct tx_msg m;
    int rc;

    memset(&L, 0, sizeof(L));
    L.node = n;
    L.max_body = 64 * 1024 * 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n:serve_wsgi", kwlist,
                                     &L.app, &L.max_body)) {
        return NULL;
    }
    if (L.max_body < 0) {
        PyErr_SetString(PyExc_ValueError, "max_body must be >= 0");
        return NULL;
    }
    if (wsgi_consts() < 0) {
        return NULL;
    }
    Py_INCREF(n);
    Py_INCREF(L.app);
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        rc = tx_node_next(n, TX_POLL_MS, &m);
        Py_END_ALLOW_THREADS
        if (rc > 0) {
            rc = wsgi_handle(&L, &m);
            tx_msg_close(&m);
            /* under steady load there is no timeout: run Python's signal
             * handlers here too (a flag test when none is pending) */
            if (rc < 0 || PyErr_CheckSignals() < 0) {
                goto error;
            }
            if (atomic_load(&n->stop)) {
                break;
            }
            continue;
        }
        if (rc < 0 && errno != EINTR) {
            PyErr_Format(PyExc_OSError, "zmq: %s", zmq_strerror(errno));
            goto error;
        }
        /* a timeout or a signal: let Python's handlers run (they may call
         * stop() or raise KeyboardInterrupt) */
        if (PyErr_CheckSignals() < 0) {
            goto error;
        }
        if (atomic_load(&n->stop)) {
            break;
        }
    }
    pending_clear(&L);
    Py_XDECREF(L.spare);
    Py_DECREF(L.app);
    Py_DECREF(n);
    Py_RETURN_NONE;

error:
    pending_clear(&L);
    Py_XDECREF(L.spare);
    Py_DECREF(L.app);
    Py_DECREF(n);
    return NULL;
}
