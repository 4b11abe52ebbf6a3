/* asgi_scope(): tremolo_asgi.build_scope() in C.
 *
 * The scope of every ASGI request is built from its decoded uwsgi dict;
 * in Python that is some thirty dict lookups, string methods and a
 * comprehension over the headers -- the largest item of the adapter's own
 * cost per request. This is the same function, call for call where the
 * result could differ (int() for ports, str.strip() for subprotocols), so
 * test_tremolo_asgi.py can check the two against each other. */
#include "tremolo_ext.h"

/* The keys looked up for every request, made (and interned, so the dict
 * compares them by identity first) once: PyDict_GetItemString would make
 * a new str each time. */
enum env_key {
    K_HTTPS,
    K_UWSGI_SCHEME,
    K_HTTP_UPGRADE,
    K_PATH_INFO,
    K_REQUEST_URI,
    K_QUERY_STRING,
    K_SCRIPT_NAME,
    K_REMOTE_ADDR,
    K_REMOTE_PORT,
    K_SERVER_NAME,
    K_SERVER_PORT,
    K_REQUEST_METHOD,
    K_SERVER_PROTOCOL,
    K_CONTENT_TYPE,
    K_CONTENT_LENGTH,
    K_HTTP_CONTENT_TYPE,
    K_HTTP_CONTENT_LENGTH,
    K_HTTP_SEC_WEBSOCKET_PROTOCOL,
    NKEYS
};
static const char *const key_names[NKEYS] = {
    [K_HTTPS] = "HTTPS",
    [K_UWSGI_SCHEME] = "UWSGI_SCHEME",
    [K_HTTP_UPGRADE] = "HTTP_UPGRADE",
    [K_PATH_INFO] = "PATH_INFO",
    [K_REQUEST_URI] = "REQUEST_URI",
    [K_QUERY_STRING] = "QUERY_STRING",
    [K_SCRIPT_NAME] = "SCRIPT_NAME",
    [K_REMOTE_ADDR] = "REMOTE_ADDR",
    [K_REMOTE_PORT] = "REMOTE_PORT",
    [K_SERVER_NAME] = "SERVER_NAME",
    [K_SERVER_PORT] = "SERVER_PORT",
    [K_REQUEST_METHOD] = "REQUEST_METHOD",
    [K_SERVER_PROTOCOL] = "SERVER_PROTOCOL",
    [K_CONTENT_TYPE] = "CONTENT_TYPE",
    [K_CONTENT_LENGTH] = "CONTENT_LENGTH",
    [K_HTTP_CONTENT_TYPE] = "HTTP_CONTENT_TYPE",
    [K_HTTP_CONTENT_LENGTH] = "HTTP_CONTENT_LENGTH",
    [K_HTTP_SEC_WEBSOCKET_PROTOCOL] = "HTTP_SEC_WEBSOCKET_PROTOCOL",
};
static PyObject *keys[NKEYS];

static PyObject *key(enum env_key k)
{
    if (keys[k] == NULL) {
        keys[k] = PyUnicode_InternFromString(key_names[k]);
    }
    return keys[k];
}

/* env[k] as a borrowed str, or NULL (no error) when absent, not a str, or
 * the key could not be made */
static PyObject *env_str(PyObject *env, enum env_key k)
{
    PyObject *name = key(k), *v;

    v = name ? PyDict_GetItemWithError(env, name) : NULL;
    if (v == NULL) {
        PyErr_Clear();
        return NULL;
    }
    return PyUnicode_Check(v) ? v : NULL;
}

/* str(value).encode("latin-1"); NULL with an error when not latin-1 */
static PyObject *latin1(PyObject *s)
{
    return PyUnicode_AsLatin1String(s);
}

/* int(value) or `dflt` (a new reference) on ValueError/TypeError */
static PyObject *to_int(PyObject *value, PyObject *dflt)
{
    PyObject *n;

    if (value == NULL) {
        Py_INCREF(dflt);
        return dflt;
    }
    n = PyLong_FromUnicodeObject(value, 10);
    if (n == NULL && (PyErr_ExceptionMatches(PyExc_ValueError) ||
                      PyErr_ExceptionMatches(PyExc_TypeError))) {
        PyErr_Clear();
        Py_INCREF(dflt);
        return dflt;
    }
    return n;
}

/* s starts with the ASCII `prefix` */
static int starts_with(PyObject *s, const char *prefix)
{
    Py_ssize_t n = (Py_ssize_t) strlen(prefix), i;

    if (PyUnicode_GET_LENGTH(s) < n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (PyUnicode_READ_CHAR(s, i) != (Py_UCS4) prefix[i]) {
            return 0;
        }
    }
    return 1;
}

/* HTTP_ACCEPT_ENCODING -> b"accept-encoding" */
static PyObject *header_name(PyObject *key)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(key) - 5, i;
    PyObject *out = PyBytes_FromStringAndSize(NULL, len);
    char *p;

    if (out == NULL) {
        return NULL;
    }
    p = PyBytes_AS_STRING(out);
    for (i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(key, i + 5);
        if (c > 0xff) {
            Py_DECREF(out);
            return latin1(key);         /* raises UnicodeEncodeError */
        }
        if (c == '_') {
            c = '-';
        }
        else if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        }
        else if (c >= 0xc0 && c <= 0xde && c != 0xd7) {
            c += 0x20;                  /* str.lower() on latin-1 letters */
        }
        p[i] = (char) c;
    }
    return out;
}

static int add_pair(PyObject *list, PyObject *name, PyObject *value)
{
    PyObject *v = latin1(value), *t;

    if (v == NULL) {
        Py_DECREF(name);
        return -1;
    }
    t = PyTuple_Pack(2, name, v);
    Py_DECREF(name);
    Py_DECREF(v);
    if (t == NULL || PyList_Append(list, t) < 0) {
        Py_XDECREF(t);
        return -1;
    }
    Py_DECREF(t);
    return 0;
}

static PyObject *scope_headers(PyObject *env)
{
    PyObject *list = PyList_New(0), *k, *v, *ct, *cl;
    Py_ssize_t pos = 0;

    if (list == NULL) {
        return NULL;
    }
    while (PyDict_Next(env, &pos, &k, &v)) {
        if (!PyUnicode_Check(k) || !starts_with(k, "HTTP_")) {
            continue;
        }
        if (!PyUnicode_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "uwsgi values must be str");
            goto fail;
        }
        if (add_pair(list, header_name(k), v) < 0) {
            goto fail;
        }
    }
    ct = env_str(env, K_CONTENT_TYPE);
    if (ct && !PyDict_GetItemWithError(env, key(K_HTTP_CONTENT_TYPE)) &&
        add_pair(list, PyBytes_FromString("content-type"), ct) < 0) {
        goto fail;
    }
    cl = env_str(env, K_CONTENT_LENGTH);
    if (cl && !PyDict_GetItemWithError(env, key(K_HTTP_CONTENT_LENGTH)) &&
        add_pair(list, PyBytes_FromString("content-length"), cl) < 0) {
        goto fail;
    }
    return list;

fail:
    Py_DECREF(list);
    return NULL;
}

/* case-insensitive equality of a str with an ASCII word */
static int str_is(PyObject *s, const char *word)
{
    size_t n = strlen(word), i;

    if (s == NULL || (size_t) PyUnicode_GET_LENGTH(s) != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(s, (Py_ssize_t) i);
        if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        }
        if (c != (Py_UCS4) word[i]) {
            return 0;
        }
    }
    return 1;
}

static PyObject *http_version(PyObject *env)
{
    PyObject *p = env_str(env, K_SERVER_PROTOCOL), *v;

    if (p == NULL) {
        return PyUnicode_FromString("1.0");
    }
    if (!starts_with(p, "HTTP/")) {
        return PyUnicode_FromString("1.0");
    }
    v = PyUnicode_Substring(p, 5, PyUnicode_GET_LENGTH(p));
    if (v && PyUnicode_CompareWithASCIIString(v, "2.0") == 0) {
        Py_DECREF(v);
        return PyUnicode_FromString("2");
    }
    if (v && PyUnicode_CompareWithASCIIString(v, "3.0") == 0) {
        Py_DECREF(v);
        return PyUnicode_FromString("3");
    }
    return v;
}

/* The scope's keys and constant values, made (interned) once:
 * PyDict_SetItemString would make and intern a new str per call. */
enum scope_str {
    S_TYPE, S_ASGI, S_HTTP_VERSION, S_SCHEME, S_PATH, S_RAW_PATH,
    S_QUERY_STRING, S_ROOT_PATH, S_HEADERS, S_CLIENT, S_SERVER,
    S_EXTENSIONS, S_SUBPROTOCOLS, S_METHOD, S_STATE,
    V_HTTP, V_WEBSOCKET, V_HTTPS, V_WS, V_WSS, V_EMPTY, V_LOCALHOST, V_GET,
    NSTRS
};
static const char *const str_text[NSTRS] = {
    [S_TYPE] = "type", [S_ASGI] = "asgi", [S_HTTP_VERSION] = "http_version",
    [S_SCHEME] = "scheme", [S_PATH] = "path", [S_RAW_PATH] = "raw_path",
    [S_QUERY_STRING] = "query_string", [S_ROOT_PATH] = "root_path",
    [S_HEADERS] = "headers", [S_CLIENT] = "client", [S_SERVER] = "server",
    [S_EXTENSIONS] = "extensions", [S_SUBPROTOCOLS] = "subprotocols",
    [S_METHOD] = "method", [S_STATE] = "state",
    [V_HTTP] = "http", [V_WEBSOCKET] = "websocket", [V_HTTPS] = "https",
    [V_WS] = "ws", [V_WSS] = "wss", [V_EMPTY] = "",
    [V_LOCALHOST] = "localhost", [V_GET] = "GET",
};
static PyObject *strs[NSTRS];

/* a new reference to the interned str, or NULL with an error */
static PyObject *str(enum scope_str k)
{
    if (strs[k] == NULL) {
        strs[k] = PyUnicode_InternFromString(str_text[k]);
    }
    return Py_XNewRef(strs[k]);
}

static int set_new(PyObject *d, enum scope_str key, PyObject *v)
{
    PyObject *k;
    int rc;

    if (v == NULL) {
        return -1;
    }
    k = str(key);
    rc = k ? PyDict_SetItem(d, k, v) : -1;
    Py_XDECREF(k);
    Py_DECREF(v);
    return rc;
}

/* REQUEST_METHOD.upper(), without a call when it is upper case already
 * (nearly always: Tremolo passes the method as the client sent it) */
static PyObject *method_upper(PyObject *v)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);

    if (PyUnicode_KIND(v) == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = PyUnicode_1BYTE_DATA(v);
        Py_ssize_t i = 0;
        while (i < n && !(p[i] >= 'a' && p[i] <= 'z') && p[i] < 0x80) {
            i++;
        }
        if (i == n) {
            return Py_NewRef(v);
        }
    }
    return PyObject_CallMethod(v, "upper", NULL);
}

static PyObject *paths(PyObject *env, PyObject **raw_path)
{
    PyObject *pi = env_str(env, K_PATH_INFO), *raw, *b, *path;

    if (pi == NULL || PyUnicode_GET_LENGTH(pi) == 0) {
        pi = NULL;
    }
    b = pi ? latin1(pi) : PyBytes_FromString("/");
    if (b == NULL) {
        return NULL;
    }
    path = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b),
                                "replace");
    raw = env_str(env, K_REQUEST_URI);
    if (raw && PyUnicode_GET_LENGTH(raw) > 0) {
        Py_ssize_t q = PyUnicode_FindChar(raw, '?', 0,
                                          PyUnicode_GET_LENGTH(raw), 1);
        PyObject *head = PyUnicode_Substring(raw, 0, q < 0
                                             ? PyUnicode_GET_LENGTH(raw) : q);
        *raw_path = head ? latin1(head) : NULL;
        Py_XDECREF(head);
        Py_DECREF(b);
    }
    else {
        *raw_path = b;
    }
    if (*raw_path == NULL) {
        Py_XDECREF(path);
        return NULL;
    }
    return path;
}

static PyObject *subprotocols(PyObject *env)
{
    PyObject *offered = env_str(env, K_HTTP_SEC_WEBSOCKET_PROTOCOL);
    PyObject *parts, *out, *comma;
    Py_ssize_t i;

    out = PyList_New(0);
    if (out == NULL || offered == NULL) {
        return out;
    }
    comma = PyUnicode_FromString(",");
    parts = comma ? PyUnicode_Split(offered, comma, -1) : NULL;
    Py_XDECREF(comma);
    if (parts == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    for (i = 0; i < PyList_GET_SIZE(parts); i++) {
        PyObject *s = PyObject_CallMethod(PyList_GET_ITEM(parts, i), "strip",
                                          NULL);
        if (s == NULL || (PyUnicode_GET_LENGTH(s) && PyList_Append(out, s) < 0)) {
            Py_XDECREF(s);
            Py_DECREF(parts);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(s);
    }
    Py_DECREF(parts);
    return out;
}

PyObject *tx_asgi_build(PyObject *env, PyObject *state, PyObject *asgi)
{
    PyObject *scope = PyDict_New(), *https, *scheme_src, *raw_path = NULL;
    PyObject *addr, *up, *v, *port, *name;
    int upgrade, secure;

    if (scope == NULL) {
        return NULL;
    }
    https = env_str(env, K_HTTPS);
    scheme_src = env_str(env, K_UWSGI_SCHEME);
    secure = str_is(https, "on") || str_is(https, "1") || str_is(https, "yes") ||
             (scheme_src && PyUnicode_CompareWithASCIIString(scheme_src,
                                                             "https") == 0);
    up = env_str(env, K_HTTP_UPGRADE);
    upgrade = str_is(up, "websocket");
    if (set_new(scope, S_TYPE, str(upgrade ? V_WEBSOCKET : V_HTTP)) < 0 ||
        set_new(scope, S_ASGI, PyDict_Copy(asgi)) < 0 ||
        set_new(scope, S_HTTP_VERSION, http_version(env)) < 0 ||
        set_new(scope, S_SCHEME, str(
            upgrade ? (secure ? V_WSS : V_WS) : (secure ? V_HTTPS : V_HTTP))) < 0 ||
        set_new(scope, S_PATH, paths(env, &raw_path)) < 0 ||
        set_new(scope, S_RAW_PATH, raw_path) < 0) {
        goto fail;
    }
    v = env_str(env, K_QUERY_STRING);
    if (set_new(scope, S_QUERY_STRING, v ? latin1(v) : PyBytes_FromString("")) < 0) {
        goto fail;
    }
    v = env_str(env, K_SCRIPT_NAME);
    if (set_new(scope, S_ROOT_PATH, v ? Py_NewRef(v) : str(V_EMPTY)) < 0 ||
        set_new(scope, S_HEADERS, scope_headers(env)) < 0) {
        goto fail;
    }
    addr = env_str(env, K_REMOTE_ADDR);
    if (addr && PyUnicode_GET_LENGTH(addr)) {
        PyObject *zero = PyLong_FromLong(0);
        port = zero ? to_int(env_str(env, K_REMOTE_PORT), zero) : NULL;
        Py_XDECREF(zero);
        if (set_new(scope, S_CLIENT, port ? PyTuple_Pack(2, addr, port)
                                          : NULL) < 0) {
            Py_XDECREF(port);
            goto fail;
        }
        Py_DECREF(port);
    }
    else if (set_new(scope, S_CLIENT, Py_NewRef(Py_None)) < 0) {
        goto fail;
    }
    name = env_str(env, K_SERVER_NAME);
    name = name ? Py_NewRef(name) : str(V_LOCALHOST);
    port = name ? to_int(env_str(env, K_SERVER_PORT), Py_None) : NULL;
    if (set_new(scope, S_SERVER, port ? PyTuple_Pack(2, name, port) : NULL) < 0) {
        Py_XDECREF(name);
        Py_XDECREF(port);
        goto fail;
    }
    Py_DECREF(name);
    Py_DECREF(port);
    if (set_new(scope, S_EXTENSIONS, PyDict_New()) < 0) {
        goto fail;
    }
    if (upgrade) {
        if (set_new(scope, S_SUBPROTOCOLS, subprotocols(env)) < 0) {
            goto fail;
        }
    }
    else {
        v = env_str(env, K_REQUEST_METHOD);
        if (set_new(scope, S_METHOD, v ? method_upper(v) : str(V_GET)) < 0) {
            goto fail;
        }
    }
    if (state != Py_None && set_new(scope, S_STATE, PyDict_Copy(state)) < 0) {
        goto fail;
    }
    return scope;

fail:
    Py_DECREF(scope);
    return NULL;
}

PyObject *tx_asgi_scope(PyObject *mod, PyObject *args)
{
    PyObject *env, *state = Py_None, *asgi;

    (void) mod;
    if (!PyArg_ParseTuple(args, "O!O|O:asgi_scope", &PyDict_Type, &env, &asgi,
                          &state)) {
        return NULL;
    }
    if (!PyDict_Check(asgi) || (state != Py_None && !PyDict_Check(state))) {
        PyErr_SetString(PyExc_TypeError, "asgi and state must be dicts");
        return NULL;
    }
    return tx_asgi_build(env, state, asgi);
}
