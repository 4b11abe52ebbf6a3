/* wsgi.input: a read-only file object over the request body (PEP 3333:
 * read(size), readline(size), readlines(hint), iteration). The body was
 * collected before the app was called, as tremolo_wsgi does. */
#include "tremolo_ext.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject  *body;           /* bytes */
    Py_ssize_t pos;
} TxInput;

PyObject *tx_input_new(PyObject *body)
{
    TxInput *in = PyObject_New(TxInput, &TxInput_Type);

    if (in == NULL) {
        return NULL;
    }
    in->body = Py_NewRef(body);
    in->pos = 0;
    return (PyObject *) in;
}

static void Input_dealloc(TxInput *self)
{
    Py_DECREF(self->body);
    PyObject_Free(self);
}

static int input_size_arg(PyObject *const *args, Py_ssize_t nargs,
                          Py_ssize_t *size)
{
    *size = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "at most one argument");
        return -1;
    }
    if (nargs == 1 && args[0] != Py_None) {
        *size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
        if (*size == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    return 0;
}

static PyObject *input_take(TxInput *self, Py_ssize_t n)
{
    PyObject *out;

    if (self->pos == 0 && n == PyBytes_GET_SIZE(self->body)) {
        out = Py_NewRef(self->body);   /* the whole body: no copy */
    }
    else {
        out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(self->body) +
                                        self->pos, n);
    }
    if (out != NULL) {
        self->pos += n;
    }
    return out;
}

static PyObject *Input_read(TxInput *self, PyObject *const *args,
                            Py_ssize_t nargs)
{
    Py_ssize_t size, left = PyBytes_GET_SIZE(self->body) - self->pos;

    if (input_size_arg(args, nargs, &size) < 0) {
        return NULL;
    }
    if (size < 0 || size > left) {
        size = left;
    }
    return input_take(self, size);
}

static PyObject *input_line(TxInput *self, Py_ssize_t size)
{
    const char *start = PyBytes_AS_STRING(self->body) + self->pos;
    Py_ssize_t left = PyBytes_GET_SIZE(self->body) - self->pos;
    const char *nl;

    if (size < 0 || size > left) {
        size = left;
    }
    nl = memchr(start, '\n', (size_t) size);
    if (nl != NULL) {
        size = nl - start + 1;
    }
    return input_take(self, size);
}

static PyObject *Input_readline(TxInput *self, PyObject *const *args,
                                Py_ssize_t nargs)
{
    Py_ssize_t size;

    if (input_size_arg(args, nargs, &size) < 0) {
        return NULL;
    }
    return input_line(self, size);
}

static PyObject *Input_readlines(TxInput *self, PyObject *const *args,
                                 Py_ssize_t nargs)
{
    Py_ssize_t hint, total = 0;
    PyObject *list = PyList_New(0);

    if (list == NULL) {
        return NULL;
    }
    if (input_size_arg(args, nargs, &hint) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    while (self->pos < PyBytes_GET_SIZE(self->body)) {
        PyObject *line = input_line(self, -1);
        if (line == NULL || PyList_Append(list, line) < 0) {
            Py_XDECREF(line);
            Py_DECREF(list);
            return NULL;
        }
        total += PyBytes_GET_SIZE(line);
        Py_DECREF(line);
        if (hint > 0 && total >= hint) {
            break;
        }
    }
    return list;
}

static PyObject *Input_iternext(TxInput *self)
{
    if (self->pos >= PyBytes_GET_SIZE(self->body)) {
        return NULL;                   /* StopIteration */
    }
    return input_line(self, -1);
}

static PyObject *Input_close(TxInput *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyMethodDef Input_methods[] = {
    {"read", (PyCFunction) (void (*)(void)) Input_read, METH_FASTCALL,
     "read(size=-1) -> bytes"},
    {"readline", (PyCFunction) (void (*)(void)) Input_readline, METH_FASTCALL,
     "readline(size=-1) -> bytes"},
    {"readlines", (PyCFunction) (void (*)(void)) Input_readlines,
     METH_FASTCALL, "readlines(hint=-1) -> list of bytes"},
    {"close", (PyCFunction) Input_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}
};

PyTypeObject TxInput_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_tremolo.Input",
    .tp_basicsize = sizeof(TxInput),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body as a read-only file.",
    .tp_dealloc = (destructor) Input_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc) Input_iternext,
    .tp_methods = Input_methods,
};
