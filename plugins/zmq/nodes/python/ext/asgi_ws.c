/* WebSocket messages on the C path of tremolo_asgi (see asgi_http.c).
 *
 * A WebSocket echo costs the Python adapter a dispatch, the event, a
 * bounded queue with an asyncio.Event, and four coroutines (receive, the
 * queue's get and wait, send) per message: more than the app's own code.
 * Here a `websocket` or `websocket/binary` message for a session whose
 * Inbox the engine knows (ASGINode.inboxes: the open, not yet closed
 * WebSockets) becomes its websocket.receive event in C and goes straight
 * to the Future the app's receive() waits on; websocket.send is sent by
 * ASGIEngine.ws_send. Close codes, `end`, accept and close stay in
 * Python (_WebSocket), which removes the Inbox from ASGINode.inboxes
 * once the session is gone, so later messages take the Python path (and
 * are dropped there, as before).
 *
 * Inbox(loop, server, high, low) is _Flow's contract: put(item, nbytes),
 * get() -> awaitable, release(), len(); ASGINode._over(+1/-1) when the
 * unread bytes cross `high` and fall back to `low` (backpressure). */
#include "tremolo_ext.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject   *items;         /* list of (event, nbytes); head is next */
    Py_ssize_t  head;
    Py_ssize_t  size;          /* unread bytes */
    Py_ssize_t  high, low;
    int         over;
    PyObject   *waiter;        /* the Future of a get() that waits */
    PyObject   *loop, *server;
} TxInbox;

static int inbox_over(TxInbox *q, int delta)
{
    PyObject *r = PyObject_CallMethod(q->server, "_over", "i", delta);

    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* the waiter, if it still waits (not cancelled), takes value */
static int inbox_hand(TxInbox *q, PyObject *value, int *taken)
{
    PyObject *w = q->waiter, *done, *r;

    *taken = 0;
    if (w == NULL) {
        return 0;
    }
    q->waiter = NULL;
    done = PyObject_CallMethod(w, "done", NULL);
    if (done == NULL) {
        Py_DECREF(w);
        return -1;
    }
    if (done == Py_False) {
        r = PyObject_CallMethod(w, "set_result", "O", value);
        if (r == NULL) {
            Py_DECREF(done);
            Py_DECREF(w);
            return -1;
        }
        Py_DECREF(r);
        *taken = 1;
    }
    Py_DECREF(done);
    Py_DECREF(w);
    return 0;
}

static int inbox_put(TxInbox *q, PyObject *item, Py_ssize_t nbytes)
{
    PyObject *pair;
    int taken, rc;

    if (PyList_GET_SIZE(q->items) == q->head) {
        if (inbox_hand(q, item, &taken) < 0) {
            return -1;
        }
        if (taken) {
            return 0;                  /* straight to the waiting receive() */
        }
    }
    pair = Py_BuildValue("(On)", item, nbytes);
    rc = pair ? PyList_Append(q->items, pair) : -1;
    Py_XDECREF(pair);
    if (rc < 0) {
        return -1;
    }
    q->size += nbytes;
    if (!q->over && q->size > q->high) {
        q->over = 1;
        return inbox_over(q, +1);
    }
    return 0;
}

static PyObject *Inbox_put(TxInbox *q, PyObject *args)
{
    PyObject *item;
    Py_ssize_t nbytes;

    if (!PyArg_ParseTuple(args, "On:put", &item, &nbytes) ||
        inbox_put(q, item, nbytes) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Inbox_get(TxInbox *q, PyObject *unused)
{
    PyObject *pair, *item;
    Py_ssize_t n = PyList_GET_SIZE(q->items);

    (void) unused;
    if (q->head == n) {
        if (q->waiter != NULL) {
            PyErr_SetString(PyExc_RuntimeError,
                            "receive() is already waiting");
            return NULL;
        }
        q->waiter = PyObject_CallMethod(q->loop, "create_future", NULL);
        return Py_XNewRef(q->waiter);
    }
    pair = PyList_GET_ITEM(q->items, q->head);
    item = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
    q->size -= PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 1));
    q->head++;
    if (q->head == n) {                /* empty: start the list again */
        if (PyList_SetSlice(q->items, 0, n, NULL) < 0) {
            Py_DECREF(item);
            return NULL;
        }
        q->head = 0;
    }
    if (q->over && q->size <= q->low) {
        q->over = 0;
        if (inbox_over(q, -1) < 0) {
            Py_DECREF(item);
            return NULL;
        }
    }
    return tx_ready(item);
}

static PyObject *Inbox_release(TxInbox *q, PyObject *unused)
{
    (void) unused;
    if (PyList_SetSlice(q->items, 0, PyList_GET_SIZE(q->items), NULL) < 0) {
        return NULL;
    }
    q->head = 0;
    q->size = 0;
    if (q->over) {
        q->over = 0;
        if (inbox_over(q, -1) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static Py_ssize_t Inbox_len(TxInbox *q)
{
    return PyList_GET_SIZE(q->items) - q->head;
}

static int Inbox_init(TxInbox *q, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop", "server", "high", "low", NULL};
    PyObject *loop, *server;
    Py_ssize_t high, low;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOnn:Inbox", kwlist, &loop,
                                     &server, &high, &low)) {
        return -1;
    }
    Py_XSETREF(q->items, PyList_New(0));
    Py_XSETREF(q->loop, Py_NewRef(loop));
    Py_XSETREF(q->server, Py_NewRef(server));
    q->head = q->size = 0;
    q->high = high;
    q->low = low;
    q->over = 0;
    return q->items ? 0 : -1;
}

static int Inbox_traverse(TxInbox *q, visitproc visit, void *arg)
{
    Py_VISIT(q->items);
    Py_VISIT(q->waiter);
    Py_VISIT(q->loop);
    Py_VISIT(q->server);
    return 0;
}

static int Inbox_clear(TxInbox *q)
{
    Py_CLEAR(q->items);
    Py_CLEAR(q->waiter);
    Py_CLEAR(q->loop);
    Py_CLEAR(q->server);
    return 0;
}

static void Inbox_dealloc(TxInbox *q)
{
    PyObject_GC_UnTrack(q);
    Inbox_clear(q);
    Py_TYPE(q)->tp_free((PyObject *) q);
}

static PyMethodDef inbox_methods[] = {
    {"put", (PyCFunction) Inbox_put, METH_VARARGS,
     "put(item, nbytes): queue an event (or hand it to a waiting get())"},
    {"get", (PyCFunction) Inbox_get, METH_NOARGS,
     "get() -> awaitable of the next event"},
    {"release", (PyCFunction) Inbox_release, METH_NOARGS,
     "release(): drop what is queued (the session is over)"},
    {NULL, NULL, 0, NULL}
};

static PySequenceMethods inbox_sequence = {
    .sq_length = (lenfunc) Inbox_len,
};

PyTypeObject TxInbox_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_tremolo.Inbox",
    .tp_basicsize = sizeof(TxInbox),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Inbox(loop, server, high, low): a WebSocket's receive queue "
              "(asgi_ws.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc) Inbox_init,
    .tp_dealloc = (destructor) Inbox_dealloc,
    .tp_traverse = (traverseproc) Inbox_traverse,
    .tp_clear = (inquiry) Inbox_clear,
    .tp_methods = inbox_methods,
    .tp_as_sequence = &inbox_sequence,
};

/* ---- the engine's side --------------------------------------------------- */

static PyObject *k_type, *k_text, *k_bytes, *v_receive;

static int ws_consts(void)
{
    if (k_type != NULL) {
        return 0;
    }
    k_type = PyUnicode_InternFromString("type");
    k_text = PyUnicode_InternFromString("text");
    k_bytes = PyUnicode_InternFromString("bytes");
    v_receive = PyUnicode_InternFromString("websocket.receive");
    return k_type && k_text && k_bytes && v_receive ? 0 : -1;
}

int tx_engine_ws_message(TxEngine *e, struct tx_msg *m)
{
    const char *data = zmq_msg_data(&m->frame[2]);
    Py_ssize_t len = (Py_ssize_t) zmq_msg_size(&m->frame[2]);
    int binary = zmq_msg_size(&m->frame[1]) == 16;
    PyObject *sid, *inbox, *payload = NULL, *event;
    int rc;

    if (zmq_msg_size(&m->frame[0]) != TX_SID_LEN || ws_consts() < 0) {
        return PyErr_Occurred() ? -1 : 0;
    }
    sid = PyBytes_FromStringAndSize(zmq_msg_data(&m->frame[0]), TX_SID_LEN);
    if (sid == NULL) {
        return -1;
    }
    inbox = PyDict_GetItemWithError(e->inboxes, sid);
    Py_DECREF(sid);
    if (inbox == NULL || !PyObject_TypeCheck(inbox, &TxInbox_Type)) {
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_INCREF(inbox);
    if (!binary) {
        payload = PyUnicode_DecodeUTF8(data, len, NULL);
        if (payload == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                Py_DECREF(inbox);
                return -1;
            }
            /* binary, from a site without `BinaryMessages websocket/binary` */
            PyErr_Clear();
            binary = 1;
        }
    }
    if (binary) {
        payload = PyBytes_FromStringAndSize(data, len);
    }
    event = payload ? PyDict_New() : NULL;
    rc = event && PyDict_SetItem(event, k_type, v_receive) == 0 &&
         PyDict_SetItem(event, binary ? k_bytes : k_text, payload) == 0 &&
         inbox_put((TxInbox *) inbox, event, len) == 0 ? 1 : -1;
    Py_XDECREF(event);
    Py_XDECREF(payload);
    Py_DECREF(inbox);
    if (rc > 0) {
        tx_msg_close(m);
    }
    return rc;
}

/* ws_send(sid, index, message): websocket.send, text or bytes */
PyObject *tx_engine_ws_send(TxEngine *e, PyObject *args)
{
    PyObject *message, *bytes, *text = NULL, *data = NULL, *out;
    const char *sid, *type, *p;
    Py_ssize_t sidlen, len;
    int index, rc;

    if (!PyArg_ParseTuple(args, "y#iO!:ws_send", &sid, &sidlen, &index,
                          &PyDict_Type, &message) || ws_consts() < 0) {
        return NULL;
    }
    if (sidlen != TX_SID_LEN) {
        return PyErr_Format(PyExc_ValueError, "a sid is %d bytes",
                            TX_SID_LEN);
    }
    bytes = PyDict_GetItemWithError(message, k_bytes);
    if (bytes != NULL && bytes != Py_None) {
        type = "websocket/binary";
        data = PyBytes_FromObject(bytes);
    }
    else if (!PyErr_Occurred()) {
        type = "websocket";
        text = PyDict_GetItemWithError(message, k_text);
        if (text == NULL || text == Py_None) {
            data = PyErr_Occurred() ? NULL : PyBytes_FromStringAndSize("", 0);
        }
        else if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "websocket.send text is %.100s, "
                         "not str", Py_TYPE(text)->tp_name);
        }
        else {
            data = PyUnicode_AsUTF8String(text);
        }
    }
    if (data == NULL) {
        return NULL;
    }
    p = PyBytes_AS_STRING(data);
    len = PyBytes_GET_SIZE(data);
    rc = tx_node_try_send2(e->node, index, sid, type, p, (size_t) len, NULL,
                           0, !e->paused);
    if (rc > 0) {
        Py_DECREF(data);
        return tx_engine_sent(e) < 0 ? NULL : tx_ready_none();
    }
    if (rc < 0) {
        Py_DECREF(data);
        return NULL;
    }
    out = PyObject_CallMethod(e->server, "_send_later", "y#i[(yO)]", sid,
                              sidlen, index, type, data);
    Py_DECREF(data);
    return out;
}
