/* uwsgi packet -> dict of str -> str, the pairs from uwsgi_walk.c. Values
 * are latin-1 (PEP 3333 native strings); a repeated key is joined with ", "
 * ("; " for HTTP_COOKIE), as tremolo_node.parse_uwsgi does. */
#include "tremolo_ext.h"
#include "uwsgi_walk.h"

#include <string.h>

static int uwsgi_join(PyObject *dict, PyObject *key, PyObject *old,
                      PyObject *value, size_t klen, const char *k)
{
    const char *sep = (klen == 11 && memcmp(k, "HTTP_COOKIE", 11) == 0)
                      ? "; " : ", ";
    PyObject *sepo = PyUnicode_FromString(sep);
    PyObject *tmp, *joined;
    int rc;

    if (sepo == NULL) {
        return -1;
    }
    tmp = PyUnicode_Concat(old, sepo);
    Py_DECREF(sepo);
    if (tmp == NULL) {
        return -1;
    }
    joined = PyUnicode_Concat(tmp, value);
    Py_DECREF(tmp);
    if (joined == NULL) {
        return -1;
    }
    rc = PyDict_SetItem(dict, key, joined);
    Py_DECREF(joined);
    return rc;
}

static int uwsgi_pair(void *ctx, const char *k, size_t kl, const char *v,
                      size_t vl)
{
    PyObject *dict = ctx, *old;
    PyObject *key = PyUnicode_DecodeLatin1(k, (Py_ssize_t) kl, NULL);
    PyObject *value = PyUnicode_DecodeLatin1(v, (Py_ssize_t) vl, NULL);
    int rc = -1;

    if (key == NULL || value == NULL) {
        goto done;
    }
    PyUnicode_InternInPlace(&key);
    old = PyDict_GetItemWithError(dict, key);
    if (old != NULL) {
        rc = uwsgi_join(dict, key, old, value, kl, k);
    }
    else if (!PyErr_Occurred()) {
        rc = PyDict_SetItem(dict, key, value);
    }

done:
    Py_XDECREF(key);
    Py_XDECREF(value);
    return rc;
}

PyObject *tx_uwsgi_decode(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *) data;
    PyObject *dict = PyDict_New();
    size_t off;
    enum tx_uwsgi_err err;

    if (dict == NULL) {
        return NULL;
    }
    err = tx_uwsgi_walk(data, len, uwsgi_pair, dict, &off);
    switch (err) {
    case TX_UWSGI_OK:
        return dict;
    case TX_UWSGI_CALLBACK:
        break;                         /* the Python error is set */
    case TX_UWSGI_SHORT:
        PyErr_SetString(PyExc_ValueError,
                        "uwsgi packet shorter than its 4-byte header");
        break;
    case TX_UWSGI_MODIFIERS:
        PyErr_Format(PyExc_ValueError, "uwsgi modifiers must be 0/0, got %d/%d",
                     p[0], p[3]);
        break;
    case TX_UWSGI_SIZE:
        PyErr_Format(PyExc_ValueError, "uwsgi SIZE %d != packet length %zu",
                     p[1] | (p[2] << 8), len);
        break;
    case TX_UWSGI_KEYLEN:
        PyErr_Format(PyExc_ValueError, "truncated key length at offset %zu", off);
        break;
    case TX_UWSGI_KEY:
        PyErr_Format(PyExc_ValueError, "key overruns the packet at offset %zu",
                     off);
        break;
    case TX_UWSGI_VALLEN:
        PyErr_Format(PyExc_ValueError, "truncated value length at offset %zu",
                     off);
        break;
    case TX_UWSGI_VALUE:
        PyErr_Format(PyExc_ValueError, "value overruns the packet at offset %zu",
                     off);
        break;
    case TX_UWSGI_EMPTYKEY:
        PyErr_SetString(PyExc_ValueError, "empty uwsgi key");
        break;
    }
    Py_DECREF(dict);
    return NULL;
}
