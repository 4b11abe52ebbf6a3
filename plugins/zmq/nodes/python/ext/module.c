/* _tremolo: the module object, decode_uwsgi() and the reason phrases. */
#include "tremolo_ext.h"

PyDoc_STRVAR(module_doc,
"C runtime for Tremolo (BlastBeat protocol) nodes: its own ZMTP 3.0\n"
"client for tcp:// and ipc:// endpoints, libzmq for other forms and when\n"
"TREMOLO_NODE_LIBZMQ=1.\n"
"\n"
"tremolo_node.RawNode is its pure-Python twin with the same interface;\n"
"tremolo_node.runtime() picks this module's Node when it is importable\n"
"(and TREMOLO_NODE_PURE is not 1).\n"
"\n"
"decode_uwsgi(packet) -> dict[str, str]\n"
"    Decode a uwsgi packet as strictly as tremolo_node.parse_uwsgi_pairs;\n"
"    values are latin-1 str (PEP 3333), repeated keys joined with ', '\n"
"    ('; ' for HTTP_COOKIE). ValueError on a malformed packet.\n"
"\n"
"asgi_scope(env, asgi, state=None) -> dict\n"
"    tremolo_asgi.build_scope(env, state) in C (`asgi` is the scope's\n"
"    \"asgi\" entry, copied).\n"
"\n"
"Node(identity, endpoints, linger_ms=1000)\n"
"    One DEALER per endpoint, the identity given at connect (READY's\n"
"    Identity); connects in the background and every 100 ms until it\n"
"    can; up to 1000 messages wait per endpoint; an\n"
"    unsolicited pong at start and again after 1 s of silence from a\n"
"    front end; every ping is answered inside, never returned.\n"
"  .filenos() -> list[int]: one fd per endpoint, stable: the node's epoll\n"
"    fd for native ones (level-triggered), ZMQ_FD for libzmq ones\n"
"    (edge-triggered); after a wake-up, after a send and now and then\n"
"    (it reconnects and flushes then), call recv_nowait() until None\n"
"  .recv(timeout_ms=-1) -> (sid, type, body, index) | None: None on\n"
"    timeout or after stop(); the GIL is released while waiting;\n"
"    messages that are not 3 frames are dropped\n"
"  .recv_nowait() -> (sid, type, body, index) | None\n"
"  .send(sid, type, body, index=0, wait=True): bytes-like arguments;\n"
"    wait=False raises BlockingIOError where it would wait; the GIL is\n"
"    released only when the send has to wait (a full queue, or another\n"
"    thread using the socket)\n"
"  .serve_wsgi(app, max_body=64 MiB): the WSGI loop (tremolo_wsgi's\n"
"    behaviour), returns after stop()\n"
"  .stop(): thread- and signal-safe; recv() and serve_wsgi() return\n"
"    within 100 ms\n"
"  .close(): close the sockets (waits up to linger_ms for unsent data)\n"
"\n"
"ASGIEngine(node, server, app, asgi, state, live, reasons, loop, cancelled,\n"
"           inboxes)\n"
"    The C paths of tremolo_asgi.ASGINode: .pump(budget) runs bodiless\n"
"    requests to completion in C, puts WebSocket messages in their\n"
"    session's Inbox, and returns what Python must handle (asgi_http.c);\n"
"    .ws_send(sid, index, message) sends a websocket.send (asgi_ws.c).\n"
"Inbox(loop, server, high, low): a WebSocket session's receive queue.\n"
"\n"
"A Node may be used from several threads (socket calls are serialised),\n"
"but one thread doing every recv and send is the fast path.\n");

const char *tx_reason(int code)
{
    switch (code) {
    case 400: return "Bad Request";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    default:  return "Error";
    }
}

static PyObject *mod_decode_uwsgi(PyObject *mod, PyObject *arg)
{
    Py_buffer view;
    PyObject *out;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    out = tx_uwsgi_decode(view.buf, (size_t) view.len);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef module_methods[] = {
    {"decode_uwsgi", mod_decode_uwsgi, METH_O,
     "decode_uwsgi(packet) -> dict of str -> str (ValueError if malformed)"},
    {"asgi_scope", tx_asgi_scope, METH_VARARGS,
     "asgi_scope(env, asgi, state=None) -> the ASGI scope of a decoded\n"
     "uwsgi dict: tremolo_asgi.build_scope() in C"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef tremolo_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_tremolo",
    .m_doc = module_doc,
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__tremolo(void)
{
    PyObject *m;

    if (PyType_Ready(&TxNode_Type) < 0 || PyType_Ready(&TxInput_Type) < 0 ||
        PyType_Ready(&TxResponse_Type) < 0 || PyType_Ready(&TxEngine_Type) < 0 ||
        PyType_Ready(&TxCycle_Type) < 0 || PyType_Ready(&TxReady_Type) < 0 ||
        PyType_Ready(&TxInbox_Type) < 0) {
        return NULL;
    }
    m = PyModule_Create(&tremolo_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Node", (PyObject *) &TxNode_Type) < 0 ||
        PyModule_AddObjectRef(m, "ASGIEngine", (PyObject *) &TxEngine_Type) < 0 ||
        PyModule_AddObjectRef(m, "Inbox", (PyObject *) &TxInbox_Type) < 0 ||
        PyModule_AddIntConstant(m, "SID_LEN", TX_SID_LEN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
