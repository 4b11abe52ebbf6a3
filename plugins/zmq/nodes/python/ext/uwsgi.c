/* uwsgi packet -> dict of str -> str (spec 2.2), exactly as strict as
 * tremolo_node.parse_uwsgi_pairs: modifiers 0/0, SIZE = the whole packet
 * including its 4-byte header, every length in bounds, no empty key.
 * Values are latin-1 (PEP 3333 native strings); a repeated key is joined
 * with ", " ("; " for HTTP_COOKIE), as parse_uwsgi does. */
#include "tremolo_ext.h"

#include <string.h>

static uint16_t uwsgi_u16(const unsigned char *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}

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

PyObject *tx_uwsgi_decode(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *) data;
    PyObject *dict = NULL, *key = NULL, *value = NULL;
    size_t size, off, klen, vlen;
    const char *k;

    if (len < 4) {
        PyErr_SetString(PyExc_ValueError,
                        "uwsgi packet shorter than its 4-byte header");
        return NULL;
    }
    if (p[0] != 0 || p[3] != 0) {
        PyErr_Format(PyExc_ValueError, "uwsgi modifiers must be 0/0, got %d/%d",
                     p[0], p[3]);
        return NULL;
    }
    size = uwsgi_u16(p + 1);
    if (size != len) {
        PyErr_Format(PyExc_ValueError, "uwsgi SIZE %zu != packet length %zu",
                     size, len);
        return NULL;
    }
    dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    off = 4;
    while (off < size) {
        if (off + 2 > size) {
            PyErr_Format(PyExc_ValueError, "truncated key length at offset %zu",
                         off);
            goto error;
        }
        klen = uwsgi_u16(p + off);
        off += 2;
        if (off + klen > size) {
            PyErr_Format(PyExc_ValueError,
                         "key overruns the packet at offset %zu", off);
            goto error;
        }
        k = data + off;
        off += klen;
        if (off + 2 > size) {
            PyErr_Format(PyExc_ValueError,
                         "truncated value length at offset %zu", off);
            goto error;
        }
        vlen = uwsgi_u16(p + off);
        off += 2;
        if (off + vlen > size) {
            PyErr_Format(PyExc_ValueError,
                         "value overruns the packet at offset %zu", off);
            goto error;
        }
        if (klen == 0) {
            PyErr_SetString(PyExc_ValueError, "empty uwsgi key");
            goto error;
        }
        key = PyUnicode_DecodeLatin1(k, (Py_ssize_t) klen, NULL);
        value = PyUnicode_DecodeLatin1(data + off, (Py_ssize_t) vlen, NULL);
        off += vlen;
        if (key == NULL || value == NULL) {
            goto error;
        }
        PyUnicode_InternInPlace(&key);
        {
            PyObject *old = PyDict_GetItemWithError(dict, key);
            if (old != NULL) {
                if (uwsgi_join(dict, key, old, value, klen, k) < 0) {
                    goto error;
                }
            }
            else if (PyErr_Occurred() || PyDict_SetItem(dict, key, value) < 0) {
                goto error;
            }
        }
        Py_CLEAR(key);
        Py_CLEAR(value);
    }
    return dict;

error:
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_DECREF(dict);
    return NULL;
}
