/*
 * The CurveKeys file: which node public keys may connect, and which node
 * identities each may use (format in zmq_curve_keys.h). Z85 decoding is
 * libzmq's; the line format is ours, so it is parsed here.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/zmq/zmq_curve_keys.h"
#include "plugins/zmq/zmq_nodes.h"

static int curve_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static size_t curve_skip_blanks(const char *line, size_t len, size_t i)
{
    while (i < len && curve_is_blank(line[i])) {
        i++;
    }
    return i;
}

static size_t curve_word_end(const char *line, size_t len, size_t i)
{
    while (i < len && !curve_is_blank(line[i])) {
        i++;
    }
    return i;
}

/* A 40-character word as a key: 1 if it is Z85 (decoded into out->key). */
static int curve_decode(const char *word, size_t n, struct zmq_curve_key *out)
{
    char z85[ZMQ_CURVE_Z85_LEN + 1];

    memcpy(z85, word, n);
    z85[n] = '\0';
    return zmq_z85_decode(out->key, z85) != NULL;
}

/* The identities after the key, up to the end or a comment. */
static int curve_parse_ids(const char *line, size_t len, size_t i,
                           struct zmq_curve_key *out, char *err,
                           size_t errlen)
{
    size_t start, used = 0;

    for (;;) {
        i = curve_skip_blanks(line, len, i);
        if (i == len || line[i] == '#') {
            return 0;
        }
        start = i;
        i = curve_word_end(line, len, i);
        if (i - start > ZMQ_NODE_ID_MAX) {
            return mk_str_fail(err, errlen, "a node identity is at most %d "
                               "bytes", ZMQ_NODE_ID_MAX);
        }
        if (out->count == ZMQ_CURVE_IDS_MAX) {
            return mk_str_fail(err, errlen, "more than %d identities for "
                               "one key", ZMQ_CURVE_IDS_MAX);
        }
        if (!out->ids) {
            /* the rest of the line bounds what its words need */
            out->ids = mk_mem_alloc(len - start + 1);
            if (!out->ids) {
                return mk_str_fail(err, errlen, "out of memory");
            }
        }
        memcpy(out->ids + used, line + start, i - start);
        used += i - start;
        out->ids[used++] = '\0';
        out->count++;
    }
}

int zmq_curve_key_parse(const char *line, size_t len,
                        struct zmq_curve_key *out, char *err, size_t errlen)
{
    size_t i, start;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) line[i];

        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
            return mk_str_fail(err, errlen, "control character 0x%02x", c);
        }
    }
    start = curve_skip_blanks(line, len, 0);
    if (start == len || line[start] == '#') {
        return 0;
    }
    i = curve_word_end(line, len, start);
    if (i - start != ZMQ_CURVE_Z85_LEN) {
        return mk_str_fail(err, errlen, "expected a 40-character Z85 public "
                           "key");
    }
    if (!curve_decode(line + start, i - start, out)) {
        return mk_str_fail(err, errlen, "not a Z85 key");
    }
    if (curve_parse_ids(line, len, i, out, err, errlen) < 0) {
        zmq_curve_key_release(out);
        return -1;
    }
    return 1;
}

void zmq_curve_key_release(struct zmq_curve_key *k)
{
    mk_mem_free(k->ids);
    k->ids = NULL;
    k->count = 0;
}

int zmq_curve_key_permits(const struct zmq_curve_key *k, const char *id,
                          size_t len)
{
    char name[ZMQ_NODE_ID_MAX + 1];
    const char *p = k->ids;
    size_t i;

    if (k->count == 0) {
        return 1;
    }
    /* identities are opaque bytes; a NUL cannot match a pattern */
    if (len == 0 || len > ZMQ_NODE_ID_MAX || memchr(id, '\0', len)) {
        return 0;
    }
    memcpy(name, id, len);
    name[len] = '\0';
    for (i = 0; i < k->count; i++, p += strlen(p) + 1) {
        if (strpbrk(p, "*?[") ? fnmatch(p, name, 0) == 0
                              : strcmp(p, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- The file --------------------------------------------------------- */

static int curve_read(const char *path, struct mk_buf *b, char *err,
                      size_t errlen)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f) {
        return mk_str_fail(err, errlen, "CurveKeys %s: cannot open: %s",
                           path, strerror(errno));
    }
    do {
        if (b->len >= ZMQ_CURVE_FILE_MAX) {
            fclose(f);
            return mk_str_fail(err, errlen, "CurveKeys %s: larger than "
                               "16M", path);
        }
        if (mk_buf_reserve(b, 65536) < 0) {
            fclose(f);
            return mk_str_fail(err, errlen, "CurveKeys %s: out of memory",
                               path);
        }
        n = fread(b->data + b->len, 1, 65536, f);
        b->len += n;
    } while (n > 0);
    n = (size_t) ferror(f);
    fclose(f);
    if (n) {
        return mk_str_fail(err, errlen, "CurveKeys %s: read error", path);
    }
    return 0;
}

/* Takes k (its ids) whatever happens. */
static int curve_keys_add(struct zmq_curve_keys *ks, struct zmq_curve_key *k,
                          const char *path, char *err, size_t errlen)
{
    long dup = zmq_curve_keys_find(ks, k->key);

    if (dup >= 0) {
        mk_str_fail(err, errlen, "%s:%d: this key is already listed at "
                    "line %d", path, k->line, ks->keys[dup].line);
        goto error;
    }
    if (ks->count == ks->size) {
        size_t size = ks->size ? ks->size * 2 : 16;
        struct zmq_curve_key *grown = mk_mem_realloc(ks->keys,
                                                     size * sizeof(*grown));
        if (!grown) {
            goto oom;
        }
        ks->keys = grown;
        ks->size = size;
    }
    if (mk_hash_set(ks->by_key, (const char *) k->key, ZMQ_CURVE_KEY_LEN,
                    (void *) (uintptr_t) (ks->count + 1)) < 0) {
        goto oom;
    }
    ks->keys[ks->count++] = *k;
    return 0;

oom:
    mk_str_fail(err, errlen, "CurveKeys %s: out of memory", path);
error:
    zmq_curve_key_release(k);
    return -1;
}

int zmq_curve_keys_load(struct zmq_curve_keys *ks, const char *path,
                        char *err, size_t errlen)
{
    struct mk_buf b;
    struct zmq_curve_key k;
    const char *p, *nl, *end;
    char why[128];
    int line = 0, ret;

    memset(ks, 0, sizeof(*ks));
    mk_buf_init(&b);
    ks->by_key = mk_hash_create(16, 0);
    if (!ks->by_key) {
        mk_str_fail(err, errlen, "CurveKeys %s: out of memory", path);
        goto error;
    }
    if (curve_read(path, &b, err, errlen) < 0) {
        goto error;
    }
    end = b.data + b.len;
    for (p = b.data; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t) (end - p));
        if (!nl) {
            nl = end;
        }
        line++;
        ret = zmq_curve_key_parse(p, (size_t) (nl - p), &k, why, sizeof(why));
        if (ret < 0) {
            mk_str_fail(err, errlen, "%s:%d: %s", path, line, why);
            goto error;
        }
        k.line = line;
        if (ret == 1 && curve_keys_add(ks, &k, path, err, errlen) < 0) {
            goto error;
        }
    }
    mk_buf_release(&b);
    return 0;

error:
    mk_buf_release(&b);
    zmq_curve_keys_release(ks);
    return -1;
}

long zmq_curve_keys_find(const struct zmq_curve_keys *ks, const uint8_t *key)
{
    uintptr_t v = (uintptr_t) mk_hash_get(ks->by_key, (const char *) key,
                                          ZMQ_CURVE_KEY_LEN);

    return v ? (long) v - 1 : -1;
}

void zmq_curve_keys_release(struct zmq_curve_keys *ks)
{
    size_t i;

    for (i = 0; i < ks->count; i++) {
        zmq_curve_key_release(&ks->keys[i]);
    }
    mk_mem_free(ks->keys);
    if (ks->by_key) {
        mk_hash_destroy(ks->by_key, NULL);
    }
    memset(ks, 0, sizeof(*ks));
}
