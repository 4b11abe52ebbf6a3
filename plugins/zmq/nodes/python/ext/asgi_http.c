/* The ASGI HTTP request cycle in C, run eagerly: tremolo_asgi's fast path.
 *
 * Why by hand: no Debian-packaged library runs an ASGI app over our node
 * protocol, and the adapter's Python per request (the request object, the
 * receive/send coroutines, the framing, a task and its bookkeeping) costs
 * about three times what the app itself does: 30 us against uvicorn's 21
 * (docs/zmq-gateway.md, "ASGI nodes"). Here a request costs the app's own
 * Python and little else:
 *
 *  - ASGIEngine.pump() drains the node's sockets; a `uwsgi` with no body
 *    (no Content-Length above 0, not chunked, no Upgrade) for a session
 *    with no request in flight becomes a cycle at once: its scope (asgi.c),
 *    the app's coroutine, and the coroutine driven until it first suspends,
 *    in a copy of the context (contextvars stay per request).
 *  - receive() and send() return awaitables that are already complete
 *    (TxReady: `await` gets its value without suspending), and send()
 *    frames and sends the response (response.c) as it is called.
 *  - An app that finishes without suspending (a hello world; most
 *    handlers that do not wait for I/O) never gets a task: pump() goes on
 *    to the next message. One that suspends is returned to Python, where
 *    the task running pump() becomes that request's task and continues it
 *    (tremolo_asgi.ASGINode._adopt), so asyncio.current_task() is the same
 *    before and after the first suspension, as under Python 3.12's eager
 *    task factory (anyio's cancel scopes need that), and a new pump task
 *    takes the sockets.
 *  - Everything else (bodies, WebSocket, requests queued behind another of
 *    the same connection, malformed packets) is returned to Python as
 *    (sid, type, body, index) for ASGINode.dispatch: the Python adapter
 *    stays the reference and the only path of the pure runtime.
 *
 * The response rules are tremolo_asgi._HTTP's: one `body` message with
 * head and body when the first body event is the last, else `headers` and
 * `chunk`s (HTTP/1.1) or close-delimited and `end` (HTTP/1.0); 500 for an
 * app that fails or returns before its response started, `end` after. A
 * send never waits: when the node's queue is full the rest of the
 * response is handed to ASGINode._send_later, whose coroutine the app's
 * `await send(...)` (or the adopting task) waits on. */
#include "tremolo_ext.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <structmember.h>

typedef struct {
    TxResponse r;            /* first: response.c frames through it */
    TxEngine  *eng;
    PyObject  *sid, *scope;
    PyObject  *coro, *pending, *ctx;  /* a suspended eager run, for take() */
    PyObject  *waiter;       /* the Future of a receive() that waits */
    PyObject  *blocked;      /* [(type, data)] the full queue refused */
    int        started, complete, disconnected, delivered;
} TxCycle;

typedef struct {
    PyObject_HEAD
    PyObject *value;
} TxReady;

static struct {
    PyObject *type, *status, *headers, *body, *more_body, *request_event,
             *disconnect_event, *error_headers, *none, *REQUEST_METHOD,
             *SERVER_PROTOCOL, *HTTP_CONNECTION, *HTTP_TRANSFER_ENCODING,
             *CONTENT_LENGTH, *HTTP_UPGRADE;
    int ready;
} K;

static PyObject *ready_new(PyObject *value);

static int consts(void)
{
#define KEY(field, text) \
    if ((K.field = PyUnicode_InternFromString(text)) == NULL) return -1;
    if (K.ready) {
        return 0;
    }
    KEY(type, "type")
    KEY(status, "status")
    KEY(headers, "headers")
    KEY(body, "body")
    KEY(more_body, "more_body")
    KEY(REQUEST_METHOD, "REQUEST_METHOD")
    KEY(SERVER_PROTOCOL, "SERVER_PROTOCOL")
    KEY(HTTP_CONNECTION, "HTTP_CONNECTION")
    KEY(HTTP_TRANSFER_ENCODING, "HTTP_TRANSFER_ENCODING")
    KEY(CONTENT_LENGTH, "CONTENT_LENGTH")
    KEY(HTTP_UPGRADE, "HTTP_UPGRADE")
#undef KEY
    K.request_event = Py_BuildValue("{s:s,s:y,s:O}", "type", "http.request",
                                    "body", "", "more_body", Py_False);
    K.disconnect_event = Py_BuildValue("{s:s}", "type", "http.disconnect");
    K.error_headers = Py_BuildValue("[(y,y)]", "content-type",
                                    "text/plain; charset=utf-8");
    if (K.request_event == NULL || K.disconnect_event == NULL ||
        K.error_headers == NULL || (K.none = ready_new(Py_None)) == NULL) {
        return -1;
    }
    K.ready = 1;
    return 0;
}

/* ---- TxReady: an awaitable that is already done -------------------------- */

static PyObject *ready_new(PyObject *value)
{
    TxReady *r;

    if (value == NULL) {
        return NULL;
    }
    r = PyObject_New(TxReady, &TxReady_Type);
    if (r == NULL) {
        return NULL;
    }
    r->value = Py_NewRef(value);
    return (PyObject *) r;
}

/* a new ready awaitable owning `value` (a new reference, may be NULL) */
static PyObject *ready_steal(PyObject *value)
{
    PyObject *r = ready_new(value);

    Py_XDECREF(value);
    return r;
}

PyObject *tx_ready(PyObject *value)
{
    return ready_steal(value);
}

PyObject *tx_ready_none(void)
{
    return Py_NewRef(K.none);
}

int tx_engine_sent(TxEngine *e)
{
    PyObject *r;

    if (e->pumping || !tx_node_readable(e->node)) {
        return 0;
    }
    r = PyObject_CallMethod(e->server, "_kick", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static void Ready_dealloc(TxReady *r)
{
    Py_XDECREF(r->value);
    PyObject_Free(r);
}

static PyObject *Ready_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* `await` (PyIter_Send, Python 3.10+) takes the value without raising
 * StopIteration */
static PySendResult Ready_send(TxReady *r, PyObject *arg, PyObject **result)
{
    (void) arg;
    *result = Py_NewRef(r->value);
    return PYGEN_RETURN;
}

/* next() (tracing interpreters, `yield from` by hand) ends at once */
static PyObject *Ready_next(TxReady *r)
{
    if (r->value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    else {
        PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, r->value);
        if (e != NULL) {
            PyErr_SetObject(PyExc_StopIteration, e);
            Py_DECREF(e);
        }
    }
    return NULL;
}

static PyObject *Ready_send_method(TxReady *r, PyObject *arg)
{
    (void) arg;
    return Ready_next(r);
}

static PyObject *Ready_throw(TxReady *r, PyObject *args)
{
    PyObject *t, *v = NULL, *tb = NULL;

    (void) r;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &t, &v, &tb)) {
        return NULL;
    }
    if (PyExceptionInstance_Check(t)) {
        PyErr_SetObject((PyObject *) Py_TYPE(t), t);
    }
    else {
        PyErr_SetObject(t, v);
    }
    return NULL;
}

static PyObject *Ready_close(TxReady *r, PyObject *unused)
{
    (void) r;
    (void) unused;
    Py_RETURN_NONE;
}

static PyMethodDef ready_methods[] = {
    {"send", (PyCFunction) Ready_send_method, METH_O, NULL},
    {"throw", (PyCFunction) Ready_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction) Ready_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}
};

static PyAsyncMethods ready_async = {
    .am_await = Ready_await,
    .am_send = (sendfunc) Ready_send,
};

PyTypeObject TxReady_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_tremolo.Ready",
    .tp_basicsize = sizeof(TxReady),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An awaitable that is already complete (receive()/send()).",
    .tp_dealloc = (destructor) Ready_dealloc,
    .tp_as_async = &ready_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc) Ready_next,
    .tp_methods = ready_methods,
};

/* ---- the cycle: sending -------------------------------------------------- */

/* Sends at once or, once the queue refused one message, keeps this and
 * every later one in order for ASGINode._send_later. */
static int cycle_emit(TxResponse *r, const char *type, const void *a,
                      size_t alen, const void *b, size_t blen)
{
    TxCycle *c = (TxCycle *) r;
    PyObject *data, *item;
    int rc;

    if (c->blocked == NULL) {
        rc = tx_node_try_send2(r->node, r->index, r->sid, type, a, alen, b,
                               blen, !c->eng->paused);
        if (rc != 0) {
            return rc < 0 ? -1 : 0;
        }
        if ((c->blocked = PyList_New(0)) == NULL) {
            return -1;
        }
    }
    data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) (alen + blen));
    if (data == NULL) {
        return -1;
    }
    memcpy(PyBytes_AS_STRING(data), a, alen);
    if (blen) {
        memcpy(PyBytes_AS_STRING(data) + alen, b, blen);
    }
    item = Py_BuildValue("(yN)", type, data);
    rc = item ? PyList_Append(c->blocked, item) : -1;
    Py_XDECREF(item);
    return rc;
}

/* What the app's `await send(...)` waits on: done, or the refused
 * messages going out. */
static PyObject *cycle_result(TxCycle *c)
{
    PyObject *msgs = c->blocked, *out;

    if (msgs == NULL) {
        return tx_engine_sent(c->eng) < 0 ? NULL : Py_NewRef(K.none);
    }
    c->blocked = NULL;
    out = PyObject_CallMethod(c->eng->server, "_send_later", "OiO", c->sid,
                              c->r.index, msgs);
    Py_DECREF(msgs);
    return out;
}

/* A receive() waiting past the response or the client gets
 * http.disconnect. */
static int cycle_wake(TxCycle *c)
{
    PyObject *w = c->waiter, *done;
    int rc = 0;

    if (w == NULL) {
        return 0;
    }
    c->waiter = NULL;
    done = PyObject_CallMethod(w, "done", NULL);
    if (done == NULL) {
        rc = -1;
    }
    else if (done == Py_False) {
        PyObject *ev = PyDict_Copy(K.disconnect_event);
        PyObject *res = ev ? PyObject_CallMethod(w, "set_result", "O", ev)
                           : NULL;
        rc = res ? 0 : -1;
        Py_XDECREF(ev);
        Py_XDECREF(res);
    }
    Py_XDECREF(done);
    Py_DECREF(w);
    return rc;
}

static int cycle_finish_response(TxCycle *c)
{
    c->complete = 1;
    if (tx_resp_finish(&c->r) < 0) {
        return -1;
    }
    return cycle_wake(c);
}

static PyObject *engine_status(TxEngine *e, long code)
{
    PyObject *key = PyLong_FromLong(code), *s, *reason;

    if (key == NULL) {
        return NULL;
    }
    s = PyDict_GetItemWithError(e->statuses, key);
    if (s != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        return Py_XNewRef(s);
    }
    reason = PyDict_GetItemWithError(e->reasons, key);
    if (reason == NULL && PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    s = reason ? PyUnicode_FromFormat("%ld %S", code, reason)
               : PyUnicode_FromFormat("%ld Unknown", code);
    if (s != NULL && PyDict_SetItem(e->statuses, key, s) < 0) {
        Py_CLEAR(s);
    }
    Py_DECREF(key);
    return s;
}

/* A whole error response (the app failed before its response started);
 * the connection closes, as tremolo_asgi._HTTP.error. */
static int cycle_error(TxCycle *c, long code)
{
    PyObject *status = engine_status(c->eng, code), *text;
    int rc;

    if (status == NULL) {
        return -1;
    }
    text = PyUnicode_FromFormat("%U\n", status);
    if (text == NULL) {
        Py_DECREF(status);
        return -1;
    }
    tx_resp_reset(&c->r);
    c->r.status = status;
    c->r.headers = Py_NewRef(K.error_headers);
    c->r.client_keepalive = 0;
    c->r.head_method = 0;
    c->started = 1;
    rc = tx_resp_send_headers(&c->r, PyUnicode_GET_LENGTH(text));
    if (rc == 0) {
        rc = tx_resp_send(&c->r, PyUnicode_1BYTE_DATA(text),
                          (size_t) PyUnicode_GET_LENGTH(text));
    }
    Py_DECREF(text);
    return rc < 0 ? -1 : cycle_finish_response(c);
}

/* After the app: tremolo_asgi._HTTP.run's ending (the traceback of a
 * failure is printed by the caller). */
static int cycle_after(TxCycle *c, int failed)
{
    if (c->disconnected) {
        return 0;
    }
    if (!c->r.sent_headers) {
        if (!failed) {
            PySys_WriteStderr("tremolo_asgi: the app returned without a "
                              "response\n");
        }
        return cycle_error(c, 500);
    }
    if (!c->complete) {
        /* the framing is broken mid-response: only closing is honest */
        c->complete = 1;
        return c->r.emit(&c->r, "end", "", 0, NULL, 0);
    }
    return 0;
}

/* message[key]: a new reference, or NULL (an error set only if it is one) */
static PyObject *msg_get(PyObject *msg, PyObject *key)
{
    PyObject *v;

    if (PyDict_Check(msg)) {
        return Py_XNewRef(PyDict_GetItemWithError(msg, key));
    }
    v = PyObject_GetItem(msg, key);
    if (v == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
    }
    return v;
}

static int kind_is(PyObject *kind, const char *name)
{
    return PyUnicode_Check(kind) &&
           PyUnicode_CompareWithASCIIString(kind, name) == 0;
}

static PyObject *cycle_start(TxCycle *c, PyObject *msg)
{
    PyObject *status, *headers, *line, *list;
    long code;

    if (c->started) {
        PyErr_SetString(PyExc_RuntimeError, "http.response.start sent twice");
        return NULL;
    }
    status = msg_get(msg, K.status);
    if (status == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, K.status);
        }
        return NULL;
    }
    Py_SETREF(status, PyNumber_Long(status));
    if (status == NULL) {
        return NULL;
    }
    code = PyLong_AsLong(status);
    Py_DECREF(status);
    if (code == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (code < 100 || code > 999) {
        return PyErr_Format(PyExc_ValueError, "bad HTTP status %ld", code);
    }
    headers = msg_get(msg, K.headers);
    if (headers == NULL && PyErr_Occurred()) {
        return NULL;
    }
    list = headers ? PySequence_List(headers) : PyList_New(0);
    Py_XDECREF(headers);
    if (list == NULL) {
        return NULL;
    }
    if ((line = engine_status(c->eng, code)) == NULL) {
        Py_DECREF(list);
        return NULL;
    }
    Py_XSETREF(c->r.status, line);
    Py_XSETREF(c->r.headers, list);
    c->started = 1;
    return Py_NewRef(K.none);
}

static PyObject *cycle_body(TxCycle *c, PyObject *msg)
{
    PyObject *body, *more_o;
    Py_buffer view;
    int more, rc = 0;

    if (!c->started) {
        PyErr_SetString(PyExc_RuntimeError,
                        "http.response.body before http.response.start");
        return NULL;
    }
    if (c->complete) {
        PyErr_SetString(PyExc_RuntimeError,
                        "http.response.body after the last one");
        return NULL;
    }
    body = msg_get(msg, K.body);
    if (body == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (body == NULL) {
        view.buf = "";
        view.len = 0;
        view.obj = NULL;
    }
    else {
        rc = PyObject_GetBuffer(body, &view, PyBUF_SIMPLE);
        Py_DECREF(body);
        if (rc < 0) {
            return NULL;
        }
    }
    more_o = msg_get(msg, K.more_body);
    more = more_o ? PyObject_IsTrue(more_o) : 0;
    Py_XDECREF(more_o);
    if (more < 0 || PyErr_Occurred()) {
        rc = -1;
    }
    else if (c->disconnected) {
        c->complete = !more;           /* nobody to send to (ASGI: a no-op) */
    }
    else if (!c->r.sent_headers && !more) {
        /* the usual response: head and body in one message */
        rc = tx_resp_send_headers(&c->r, view.len);
        if (rc == 0) {
            rc = tx_resp_send(&c->r, view.buf, (size_t) view.len);
        }
        if (rc == 0) {
            rc = cycle_finish_response(c);
        }
    }
    else if (c->r.sent_headers || view.len > 0) {
        if (!c->r.sent_headers) {      /* the head waited for the first byte */
            rc = tx_resp_send_headers(&c->r, -1);
        }
        if (rc == 0) {
            rc = tx_resp_send(&c->r, view.buf, (size_t) view.len);
        }
        if (rc == 0 && !more) {
            rc = cycle_finish_response(c);
        }
    }
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return rc < 0 ? NULL : cycle_result(c);
}

static PyObject *Cycle_send(TxCycle *c, PyObject *msg)
{
    PyObject *kind = msg_get(msg, K.type), *out;

    if (kind == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, K.type);
        }
        return NULL;
    }
    if (kind_is(kind, "http.response.start")) {
        out = cycle_start(c, msg);
    }
    else if (kind_is(kind, "http.response.body")) {
        out = cycle_body(c, msg);
    }
    else {
        out = PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message %R",
                           kind);
    }
    Py_DECREF(kind);
    return out;
}

static PyObject *Cycle_receive(TxCycle *c, PyObject *unused)
{
    (void) unused;
    if (!c->delivered) {
        c->delivered = 1;              /* the (empty) request body */
        return ready_steal(PyDict_Copy(K.request_event));
    }
    if (c->disconnected || c->complete) {
        return ready_steal(PyDict_Copy(K.disconnect_event));
    }
    if (c->waiter == NULL) {
        c->waiter = PyObject_CallMethod(c->eng->loop, "create_future", NULL);
        if (c->waiter == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(c->waiter);
}

static PyMethodDef receive_def = {
    "receive", (PyCFunction) Cycle_receive, METH_NOARGS,
    "ASGI receive(): http.request, then http.disconnect"
};
static PyMethodDef send_def = {
    "send", (PyCFunction) Cycle_send, METH_O, "ASGI send(message)"
};

/* ---- the cycle: Python's side ------------------------------------------- */

static PyObject *Cycle_on_end(TxCycle *c, PyObject *unused)
{
    (void) unused;
    c->disconnected = 1;
    if (cycle_wake(c) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Cycle_take(TxCycle *c, PyObject *unused)
{
    PyObject *t;

    (void) unused;
    t = PyTuple_Pack(3, c->coro ? c->coro : Py_None,
                     c->pending ? c->pending : Py_None,
                     c->ctx ? c->ctx : Py_None);
    if (t != NULL) {
        Py_CLEAR(c->coro);
        Py_CLEAR(c->pending);
        Py_CLEAR(c->ctx);
    }
    return t;
}

static PyObject *Cycle_finish(TxCycle *c, PyObject *failed)
{
    int f = PyObject_IsTrue(failed);

    if (f < 0 || cycle_after(c, f) < 0) {
        return NULL;
    }
    return cycle_result(c);
}

static PyMethodDef cycle_methods[] = {
    {"receive", (PyCFunction) Cycle_receive, METH_NOARGS, NULL},
    {"send", (PyCFunction) Cycle_send, METH_O, NULL},
    {"on_end", (PyCFunction) Cycle_on_end, METH_NOARGS,
     "on_end(): the gateway's `end` for the session"},
    {"take", (PyCFunction) Cycle_take, METH_NOARGS,
     "take() -> (coro, pending, ctx): the suspended run (coro None: only\n"
     "the refused sends in `pending` are left)"},
    {"finish", (PyCFunction) Cycle_finish, METH_O,
     "finish(failed) -> awaitable: the ending after the app returned or\n"
     "failed (its traceback printed)"},
    {NULL, NULL, 0, NULL}
};

static PyObject *Cycle_get_sid(TxCycle *c, void *closure)
{
    (void) closure;
    return Py_NewRef(c->sid);
}

static PyObject *Cycle_get_index(TxCycle *c, void *closure)
{
    (void) closure;
    return PyLong_FromLong(c->r.index);
}

static PyObject *Cycle_get_scope(TxCycle *c, void *closure)
{
    (void) closure;
    return Py_NewRef(c->scope);
}

static PyGetSetDef cycle_getset[] = {
    {"sid", (getter) Cycle_get_sid, NULL, NULL, NULL},
    {"index", (getter) Cycle_get_index, NULL, NULL, NULL},
    {"scope", (getter) Cycle_get_scope, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static int Cycle_traverse(TxCycle *c, visitproc visit, void *arg)
{
    Py_VISIT(c->eng);
    Py_VISIT(c->scope);
    Py_VISIT(c->coro);
    Py_VISIT(c->pending);
    Py_VISIT(c->ctx);
    Py_VISIT(c->waiter);
    Py_VISIT(c->blocked);
    Py_VISIT(c->r.status);
    Py_VISIT(c->r.headers);
    return 0;
}

static int Cycle_clear(TxCycle *c)
{
    Py_CLEAR(c->eng);
    Py_CLEAR(c->scope);
    Py_CLEAR(c->coro);
    Py_CLEAR(c->pending);
    Py_CLEAR(c->ctx);
    Py_CLEAR(c->waiter);
    Py_CLEAR(c->blocked);
    Py_CLEAR(c->r.status);
    Py_CLEAR(c->r.headers);
    return 0;
}

static void Cycle_dealloc(TxCycle *c)
{
    PyObject_GC_UnTrack(c);
    Cycle_clear(c);
    Py_CLEAR(c->sid);
    free(c->r.head);
    PyObject_GC_Del(c);
}

PyTypeObject TxCycle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_tremolo.ASGIHTTPCycle",
    .tp_basicsize = sizeof(TxCycle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One ASGI HTTP request run by ASGIEngine.pump().",
    .tp_dealloc = (destructor) Cycle_dealloc,
    .tp_traverse = (traverseproc) Cycle_traverse,
    .tp_clear = (inquiry) Cycle_clear,
    .tp_methods = cycle_methods,
    .tp_getset = cycle_getset,
};

/* ---- the engine ---------------------------------------------------------- */

/* env[key] as UTF-8 (NULL, len 0 when absent or not a str) */
static const char *env_get(PyObject *env, PyObject *key, Py_ssize_t *len)
{
    PyObject *v = PyDict_GetItemWithError(env, key);
    const char *p = NULL;

    *len = 0;
    if (v != NULL && PyUnicode_Check(v)) {
        p = PyUnicode_AsUTF8AndSize(v, len);
    }
    if (p == NULL) {
        PyErr_Clear();
        *len = 0;
    }
    return p;
}

/* A request the fast path takes: no body (Content-Length absent, empty
 * or zero; not chunked) and no Upgrade. Everything else, a bad length
 * included, is the Python adapter's to answer. */
static int bodiless(PyObject *env)
{
    Py_ssize_t len;
    const char *v;

    if (env_get(env, K.HTTP_TRANSFER_ENCODING, &len) != NULL ||
        env_get(env, K.HTTP_UPGRADE, &len) != NULL) {
        return 0;
    }
    v = env_get(env, K.CONTENT_LENGTH, &len);
    for (Py_ssize_t i = 0; v != NULL && i < len; i++) {
        if (v[i] != '0') {
            return 0;
        }
    }
    return 1;
}

static TxCycle *cycle_new(TxEngine *e, PyObject *sid, int index,
                          PyObject *env)
{
    TxCycle *c = PyObject_GC_New(TxCycle, &TxCycle_Type);
    const char *m, *p, *h;
    Py_ssize_t mlen, plen, hlen;

    if (c == NULL) {
        return NULL;
    }
    memset((char *) c + sizeof(PyObject), 0, sizeof(*c) - sizeof(PyObject));
    c->r.node = e->node;
    memcpy(c->r.sid, PyBytes_AS_STRING(sid), TX_SID_LEN);
    c->r.index = index;
    c->r.active = 1;
    c->r.emit = cycle_emit;
    m = env_get(env, K.REQUEST_METHOD, &mlen);
    p = env_get(env, K.SERVER_PROTOCOL, &plen);
    h = env_get(env, K.HTTP_CONNECTION, &hlen);
    tx_resp_request(&c->r, m, mlen, p, plen, h, hlen);
    c->eng = (TxEngine *) Py_NewRef(e);
    c->sid = Py_NewRef(sid);
    PyObject_GC_Track(c);
    c->scope = tx_asgi_build(env, e->state, e->asgi);
    if (c->scope == NULL) {
        Py_DECREF(c);
        return NULL;
    }
    return c;
}

/* The awaitable's iterator: a coroutine as it is, else __await__(). */
static PyObject *await_iter(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    PyObject *it;

    if (PyCoro_CheckExact(o)) {
        return o;
    }
    if (t->tp_as_async == NULL || t->tp_as_async->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "the ASGI app returned %.100s, which "
                     "can't be awaited", t->tp_name);
        Py_DECREF(o);
        return NULL;
    }
    it = t->tp_as_async->am_await(o);
    Py_DECREF(o);
    return it;
}

/*
 * The app on the cycle until it returns or first suspends, in a copy of
 * the current context. 0: the request is over; 1: it suspended (or its
 * last messages wait for the queue), for ASGINode._adopt; -1: an error
 * that is not the app's (or one that stops the node: KeyboardInterrupt,
 * SystemExit).
 */
static int cycle_run(TxCycle *c)
{
    TxEngine *e = c->eng;
    PyObject *ctx = PyContext_CopyCurrent(), *recv, *send, *coro, *res = NULL;
    PyObject *t, *v, *tb;
    PySendResult st = PYGEN_ERROR;

    if (ctx == NULL) {
        return -1;
    }
    if (PyContext_Enter(ctx) < 0) {
        Py_DECREF(ctx);
        return -1;
    }
    recv = PyCFunction_New(&receive_def, (PyObject *) c);
    send = recv ? PyCFunction_New(&send_def, (PyObject *) c) : NULL;
    coro = send ? PyObject_CallFunctionObjArgs(e->app, c->scope, recv, send,
                                               NULL) : NULL;
    Py_XDECREF(recv);
    Py_XDECREF(send);
    if (coro != NULL) {
        coro = await_iter(coro);
    }
    if (coro != NULL) {
        st = PyIter_Send(coro, Py_None, &res);
    }
    PyErr_Fetch(&t, &v, &tb);
    if (PyContext_Exit(ctx) < 0) {
        PyErr_Clear();                 /* cannot happen: entered above */
    }
    PyErr_Restore(t, v, tb);
    if (st == PYGEN_NEXT) {
        c->coro = coro;
        c->pending = res;
        c->ctx = ctx;
        return 1;
    }
    Py_DECREF(ctx);
    Py_XDECREF(coro);
    if (st == PYGEN_RETURN) {
        Py_DECREF(res);
        if (cycle_after(c, 0) < 0) {
            return -1;
        }
    }
    else if (PyErr_ExceptionMatches(e->cancelled)) {
        PyErr_Clear();                 /* as a cancelled task: no answer */
        return 0;
    }
    else if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_PrintEx(0);
        if (cycle_after(c, 1) < 0) {
            return -1;
        }
    }
    else {
        return -1;
    }
    if (c->blocked != NULL) {
        c->pending = cycle_result(c);
        return c->pending ? 1 : -1;
    }
    return 0;
}

/* One `uwsgi`: run on the fast path (0, or 1 with *out the suspended
 * cycle) or handed to Python (1 with *out the message tuple); -1 error.
 * Closes m. */
static int engine_request(TxEngine *e, struct tx_msg *m, PyObject **out)
{
    PyObject *sid, *env;
    TxCycle *c;
    int rc;

    if (zmq_msg_size(&m->frame[0]) != TX_SID_LEN) {
        goto python;
    }
    sid = PyBytes_FromStringAndSize(zmq_msg_data(&m->frame[0]), TX_SID_LEN);
    if (sid == NULL) {
        tx_msg_close(m);
        return -1;
    }
    rc = PyDict_Contains(e->live, sid);
    if (rc != 0) {
        Py_DECREF(sid);
        if (rc < 0) {
            tx_msg_close(m);
            return -1;
        }
        goto python;                   /* answered in order, after those */
    }
    env = tx_uwsgi_decode(zmq_msg_data(&m->frame[2]), zmq_msg_size(&m->frame[2]));
    if (env == NULL || !bodiless(env)) {
        Py_DECREF(sid);
        Py_XDECREF(env);
        if (env == NULL && !PyErr_ExceptionMatches(PyExc_ValueError)) {
            tx_msg_close(m);
            return -1;
        }
        PyErr_Clear();                 /* Python reports the bad packet */
        goto python;
    }
    c = cycle_new(e, sid, m->index, env);
    Py_DECREF(sid);
    Py_DECREF(env);
    tx_msg_close(m);
    if (c == NULL) {
        return -1;
    }
    rc = cycle_run(c);
    if (rc == 1) {
        *out = (PyObject *) c;
        return 1;
    }
    Py_DECREF(c);
    return rc;

python:
    *out = tx_msg_tuple(m);
    return *out ? 1 : -1;
}

static PyObject *engine_pump(TxEngine *e, long budget)
{
    for (; budget > 0; budget--) {
        struct tx_msg m;
        PyObject *out = NULL;
        const char *type;
        size_t tlen;
        int rc = tx_node_recv_nowait(e->node, &m);

        if (rc <= 0) {
            if (rc < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        type = zmq_msg_data(&m.frame[1]);
        tlen = zmq_msg_size(&m.frame[1]);
        if (tlen == 5 && memcmp(type, "uwsgi", 5) == 0) {
            rc = engine_request(e, &m, &out);
            if (rc != 0) {
                return rc < 0 ? NULL : out;
            }
            continue;
        }
        if ((tlen == 9 && memcmp(type, "websocket", 9) == 0) ||
            (tlen == 16 && memcmp(type, "websocket/binary", 16) == 0)) {
            rc = tx_engine_ws_message(e, &m);
            if (rc < 0) {
                return NULL;
            }
            if (rc > 0) {
                continue;
            }
        }
        return tx_msg_tuple(&m);
    }
    Py_RETURN_TRUE;
}

static PyObject *Engine_pump(TxEngine *e, PyObject *arg)
{
    long budget = PyLong_AsLong(arg);
    PyObject *out;

    if (budget == -1 && PyErr_Occurred()) {
        return NULL;
    }
    e->pumping = 1;
    out = engine_pump(e, budget);
    e->pumping = 0;
    return out;
}

static PyObject *Engine_ws_send(TxEngine *e, PyObject *args)
{
    return tx_engine_ws_send(e, args);
}

static PyMemberDef engine_members[] = {
    {"paused", T_INT, offsetof(TxEngine, paused), 0,
     "True while ASGINode does not drain (backpressure): sends are not\n"
     "held for the end of a batch"},
    {NULL, 0, 0, 0, NULL}
};

static PyMethodDef engine_methods[] = {
    {"pump", (PyCFunction) Engine_pump, METH_O,
     "pump(budget) -> None (no message ready) | True (budget spent) |\n"
     "(sid, type, body, index) for ASGINode.dispatch | an ASGIHTTPCycle\n"
     "that suspended, for ASGINode._adopt"},
    {"ws_send", (PyCFunction) Engine_ws_send, METH_VARARGS,
     "ws_send(sid, index, message) -> awaitable: a websocket.send event\n"
     "sent at once (`websocket`, or `websocket/binary` for bytes)"},
    {NULL, NULL, 0, NULL}
};

static int Engine_init(TxEngine *e, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node", "server", "app", "asgi", "state", "live",
                             "reasons", "loop", "cancelled", "inboxes", NULL};
    PyObject *node, *server, *app, *asgi, *state, *live, *reasons, *loop,
             *cancelled, *inboxes;

    if (consts() < 0) {
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOO!OO!O!OOO!:ASGIEngine",
                                     kwlist, &TxNode_Type, &node, &server,
                                     &app, &PyDict_Type, &asgi, &state,
                                     &PyDict_Type, &live, &PyDict_Type,
                                     &reasons, &loop, &cancelled,
                                     &PyDict_Type, &inboxes)) {
        return -1;
    }
    if (state != Py_None && !PyDict_Check(state)) {
        PyErr_SetString(PyExc_TypeError, "state must be a dict or None");
        return -1;
    }
    Py_XSETREF(e->node, (TxNode *) Py_NewRef(node));
    Py_XSETREF(e->server, Py_NewRef(server));
    Py_XSETREF(e->app, Py_NewRef(app));
    Py_XSETREF(e->asgi, Py_NewRef(asgi));
    Py_XSETREF(e->state, Py_NewRef(state));
    Py_XSETREF(e->live, Py_NewRef(live));
    Py_XSETREF(e->reasons, Py_NewRef(reasons));
    Py_XSETREF(e->loop, Py_NewRef(loop));
    Py_XSETREF(e->cancelled, Py_NewRef(cancelled));
    Py_XSETREF(e->inboxes, Py_NewRef(inboxes));
    Py_XSETREF(e->statuses, PyDict_New());
    return e->statuses ? 0 : -1;
}

static int Engine_traverse(TxEngine *e, visitproc visit, void *arg)
{
    Py_VISIT(e->node);
    Py_VISIT(e->server);
    Py_VISIT(e->app);
    Py_VISIT(e->asgi);
    Py_VISIT(e->state);
    Py_VISIT(e->live);
    Py_VISIT(e->reasons);
    Py_VISIT(e->loop);
    Py_VISIT(e->cancelled);
    Py_VISIT(e->inboxes);
    Py_VISIT(e->statuses);
    return 0;
}

static int Engine_clear(TxEngine *e)
{
    Py_CLEAR(e->node);
    Py_CLEAR(e->server);
    Py_CLEAR(e->app);
    Py_CLEAR(e->asgi);
    Py_CLEAR(e->state);
    Py_CLEAR(e->live);
    Py_CLEAR(e->reasons);
    Py_CLEAR(e->loop);
    Py_CLEAR(e->cancelled);
    Py_CLEAR(e->inboxes);
    Py_CLEAR(e->statuses);
    return 0;
}

static void Engine_dealloc(TxEngine *e)
{
    PyObject_GC_UnTrack(e);
    Engine_clear(e);
    Py_TYPE(e)->tp_free((PyObject *) e);
}

PyTypeObject TxEngine_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_tremolo.ASGIEngine",
    .tp_basicsize = sizeof(TxEngine),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ASGIEngine(node, server, app, asgi, state, live, reasons, "
              "loop, cancelled, inboxes):\nthe C paths of "
              "tremolo_asgi.ASGINode (asgi_http.c, asgi_ws.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc) Engine_init,
    .tp_dealloc = (destructor) Engine_dealloc,
    .tp_traverse = (traverseproc) Engine_traverse,
    .tp_clear = (inquiry) Engine_clear,
    .tp_methods = engine_methods,
    .tp_members = engine_members,
};
