/*
 * Socket.IO v5 packets and their node-side JSON (spec 7.8). Arguments are
 * never re-serialised: bodies are spliced from the spans the scanner
 * finds, so a node gets the bytes the browser sent and the other way
 * round; only binary placeholders are rewritten.
 */
#include <inttypes.h>
#include <string.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_mem.h"

#include "sio_json.h"
#include "sio_packet.h"

#define SIO_ID_LIMIT (UINT64_C(1) << 53)

/* Event names the socket.io server and client keep for themselves; a
 * packet that uses one is malformed in both directions. */
static const char *const sio_reserved[] = {
    "connect", "connect_error", "disconnect", "disconnecting",
    "newListener", "removeListener",
};

static int sio_name_is_reserved(struct mk_ptr name)
{
    size_t i;

    if (sio_json_kind(name.data) != SIO_JSON_STRING) {
        return 0;
    }
    for (i = 0; i < sizeof(sio_reserved) / sizeof(sio_reserved[0]); i++) {
        if (sio_json_string_equals(name, sio_reserved[i],
                                   strlen(sio_reserved[i]))) {
            return 1;
        }
    }
    return 0;
}

/* Whether a namespace is valid UTF-8 without NUL (it becomes a node's
 * JSON string and comes back as a C string). */
static int sio_nsp_is_valid(const unsigned char *p, size_t len)
{
    size_t i = 0, n, k;
    unsigned char c;

    while (i < len) {
        c = p[i];
        if (c == 0) {
            return 0;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
        } else {
            return 0;
        }
        if (len - i < n) {
            return 0;
        }
        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }
        if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] > 0x9f) ||
            (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f)) {
            return 0;
        }
        i += n;
    }
    return 1;
}

static struct mk_ptr sio_trim(const char *p, size_t len)
{
    while (len > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\n' ||
                       p[0] == '\r')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' ||
                       p[len - 1] == '\n' || p[len - 1] == '\r')) {
        len--;
    }
    return mk_ptr_make(p, len);
}

static int sio_contains(struct mk_ptr hay, const char *needle)
{
    size_t n = strlen(needle), i;

    for (i = 0; i + n <= hay.len; i++) {
        if (hay.data[i] == needle[0] && memcmp(hay.data + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether a valid JSON text may hold a member named `key` (quotes
 * included): it must spell it out, or escape some of it with \u. The
 * common packet has neither and is copied without a walk. */
static int sio_may_hold(struct mk_ptr json, const char *key)
{
    return sio_contains(json, key) || sio_contains(json, "\\u");
}

/* The nesting depth of a valid JSON text. */
static size_t sio_json_depth(struct mk_ptr json)
{
    size_t i, d = 0, most = 0;
    int in_str = 0;

    for (i = 0; i < json.len; i++) {
        char c = json.data[i];

        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++d > most) {
                most = d;
            }
        } else if (c == ']' || c == '}') {
            d--;
        }
    }
    return most;
}

/* Whether the payload suits the packet type (spec of socket.io-parser's
 * isPayloadValid, with ACK needing an id to acknowledge). */
static int sio_payload_fits(const struct sio_packet *pk)
{
    struct sio_json_iter it;
    struct mk_ptr first;
    enum sio_json_kind k;

    if (pk->data.len == 0) {
        return pk->type == SIO_CONNECT || pk->type == SIO_DISCONNECT;
    }
    k = sio_json_kind(pk->data.data);
    switch (pk->type) {
    case SIO_CONNECT:
        return k == SIO_JSON_OBJECT && !pk->has_id;
    case SIO_DISCONNECT:
        return 0;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        if (k != SIO_JSON_ARRAY) {
            return 0;
        }
        sio_json_iter_init(&it, pk->data);
        if (!sio_json_array_next(&it, &first)) {
            return 0;
        }
        k = sio_json_kind(first.data);
        return k == SIO_JSON_NUMBER ||
               (k == SIO_JSON_STRING && !sio_name_is_reserved(first));
    case SIO_ACK:
    case SIO_BINARY_ACK:
        return k == SIO_JSON_ARRAY && pk->has_id;
    default:
        return 0;
    }
}

int sio_packet_decode(const char *p, size_t len, struct sio_packet *out)
{
    size_t i = 1, start;
    uint64_t v;

    memset(out, 0, sizeof(*out));
    out->nsp = MK_PTR_LIT("/");
    if (p == NULL || len == 0 || p[0] < '0' || p[0] > '6' || p[0] == '4') {
        return -1;                  /* CONNECT_ERROR is the server's */
    }
    out->type = (enum sio_type) (p[0] - '0');
    if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
        for (v = 0; i < len && p[i] >= '0' && p[i] <= '9' && i < 4; i++) {
            v = v * 10 + (uint64_t) (p[i] - '0');
        }
        if (i == 1 || i >= len || p[i] != '-' || v < 1 ||
            v > SIO_ATTACHMENTS_MAX) {
            return -1;
        }
        out->attachments = (unsigned) v;
        i++;
    }
    if (i < len && p[i] == '/') {
        /* to the comma, or (as the socket.io server reads it) the end */
        start = i;
        while (i < len && p[i] != ',') {
            i++;
        }
        if (i - start >= SIO_NSP_MAX ||
            !sio_nsp_is_valid((const unsigned char *) p + start, i - start)) {
            return -1;
        }
        out->nsp = mk_ptr_make(p + start, i - start);
        if (i < len) {
            i++;
        }
    }
    if (i < len && p[i] >= '0' && p[i] <= '9') {
        for (v = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            v = v * 10 + (uint64_t) (p[i] - '0');
            if (v >= SIO_ID_LIMIT) {
                return -1;
            }
        }
        out->has_id = 1;
        out->id = v;
        if (out->type == SIO_CONNECT || out->type == SIO_DISCONNECT) {
            return -1;
        }
    }
    if (i < len) {
        if (sio_json_check(p + i, len - i) == SIO_JSON_INVALID) {
            return -1;
        }
        out->data = sio_trim(p + i, len - i);
        /* the node body nests the payload one level deeper, and must
         * stay within the bound for Tremolo to read it back (an echo) */
        if (sio_json_depth(out->data) > SIO_JSON_DEPTH_MAX - 1) {
            return -1;
        }
    }
    return sio_payload_fits(out) ? 0 : -1;
}

/* ---- Splicing: copy a JSON text, rewriting some objects ---- */

enum sio_splice_mode {
    SIO_SPLICE_COPY,                /* as it is */
    SIO_PLACEHOLDER_TO_BINARY,      /* client packet -> node body */
    SIO_BINARY_TO_PLACEHOLDER,      /* node body -> client packet */
};

struct sio_splice {
    enum sio_splice_mode mode;
    struct mk_buf *out;             /* NULL: count and check only */
    const char *cursor;             /* source copied up to here */
    const struct mk_ptr *att;       /* PLACEHOLDER_TO_BINARY */
    size_t natt;
    struct sio_out *o;              /* BINARY_TO_PLACEHOLDER */
    unsigned count;
    uint64_t used;                  /* attachments already placed */
};

/* {"_placeholder":true,"num":N} -> {"_binary":"<base64>"}. */
static int sio_put_binary(struct sio_splice *s, struct mk_ptr obj)
{
    struct mk_ptr num = sio_json_member(obj, "num");
    size_t cap;
    uint64_t n;
    long w;

    if (num.data == NULL || sio_json_kind(num.data) != SIO_JSON_NUMBER ||
        sio_json_uint(num, &n) < 0 || n >= s->natt ||
        (s->used & (UINT64_C(1) << n))) {
        return -1;
    }
    /* each attachment in one place: socket.io-parser's encoder never
     * names one twice, and a repeated num would multiply the body */
    s->used |= UINT64_C(1) << n;
    s->count++;
    if (s->out == NULL) {
        return 0;
    }
    cap = (s->att[n].len + 2) / 3 * 4 + 1;
    if (mk_buf_reserve(s->out, cap + 16) < 0 ||
        mk_buf_append_str(s->out, "{\"_binary\":\"") < 0) {
        return -1;
    }
    w = mk_base64_encode(s->att[n].data, s->att[n].len,
                         s->out->data + s->out->len, cap);
    if (w < 0) {
        return -1;
    }
    s->out->len += (size_t) w;
    return mk_buf_append(s->out, "\"}", 2);
}

/* {"_binary":"<base64>"} -> {"_placeholder":true,"num":N}, the decoded
 * bytes appended to the packet's attachments. */
static int sio_put_placeholder(struct sio_splice *s, struct mk_ptr str)
{
    struct sio_out *o = s->o;
    struct mk_buf tmp;
    const char *b64 = str.data + 1;
    size_t b64len = str.len - 2;
    long n;
    int ret = -1;

    if (s->count >= SIO_ATTACHMENTS_MAX) {
        return -1;
    }
    mk_buf_init(&tmp);
    if (memchr(b64, '\\', b64len) != NULL) {
        /* escaped (a "\/" from some encoders): decode the string first */
        if (mk_buf_reserve(&tmp, b64len) < 0) {
            goto done;
        }
        n = sio_json_string_decode(str, tmp.data, tmp.size);
        if (n < 0) {
            goto done;
        }
        b64 = tmp.data;
        b64len = (size_t) n;
    }
    if (mk_buf_reserve(&o->bin, b64len / 4 * 3 + 1) < 0) {
        goto done;
    }
    n = mk_base64_decode(b64, b64len, o->bin.data + o->bin.len,
                         o->bin.size - o->bin.len);
    if (n < 0) {
        goto done;
    }
    if (s->out == NULL) {
        s->count++;                 /* checked; nothing kept */
        ret = 0;
        goto done;
    }
    o->bin.len += (size_t) n;
    o->att_len[s->count] = (size_t) n;
    o->natt = ++s->count;
    ret = mk_buf_printf(s->out, "{\"_placeholder\":true,\"num\":%u}",
                        s->count - 1);

done:
    mk_buf_release(&tmp);
    return ret;
}

/* Whether obj is one to rewrite; its rewrite then replaces it. */
static int sio_splice_object(struct sio_splice *s, struct mk_ptr obj,
                             int *done)
{
    struct mk_ptr m;

    *done = 0;
    if (s->mode == SIO_PLACEHOLDER_TO_BINARY) {
        m = sio_json_member(obj, "_placeholder");
        if (m.data == NULL || sio_json_kind(m.data) != SIO_JSON_TRUE) {
            return 0;
        }
    } else {
        m = sio_json_member(obj, "_binary");
        if (m.data == NULL || sio_json_kind(m.data) != SIO_JSON_STRING) {
            return 0;
        }
    }
    *done = 1;
    if (s->out != NULL &&
        mk_buf_append(s->out, s->cursor, (size_t) (obj.data - s->cursor)) < 0) {
        return -1;
    }
    if ((s->mode == SIO_PLACEHOLDER_TO_BINARY ? sio_put_binary(s, obj)
                                              : sio_put_placeholder(s, m)) < 0) {
        return -1;
    }
    s->cursor = obj.data + obj.len;
    return 0;
}

/* Walks a valid value (depth bounded by the scanner). */
static int sio_splice_walk(struct sio_splice *s, struct mk_ptr v)
{
    struct sio_json_iter it;
    struct mk_ptr key, elem;
    enum sio_json_kind k = sio_json_kind(v.data);
    int done;

    if (s->mode == SIO_SPLICE_COPY) {
        return 0;
    }
    if (k == SIO_JSON_OBJECT) {
        if (sio_splice_object(s, v, &done) < 0) {
            return -1;
        }
        if (done) {
            return 0;
        }
        sio_json_iter_init(&it, v);
        while (sio_json_object_next(&it, &key, &elem)) {
            if (sio_splice_walk(s, elem) < 0) {
                return -1;
            }
        }
    } else if (k == SIO_JSON_ARRAY) {
        sio_json_iter_init(&it, v);
        while (sio_json_array_next(&it, &elem)) {
            if (sio_splice_walk(s, elem) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Copies the elements of a valid array after the first `skip` (from the
 * first one's start to the last one's end: the bytes between them kept),
 * rewriting what the mode says; with s->out NULL, checks and counts only.
 * The number of elements copied, or -1. */
static long sio_splice_elems(struct sio_splice *s, struct mk_ptr arr,
                             size_t skip)
{
    struct sio_json_iter it;
    struct mk_ptr e, last = MK_PTR_NONE;
    size_t idx = 0;
    long n = 0;

    sio_json_iter_init(&it, arr);
    while (sio_json_array_next(&it, &e)) {
        if (idx++ < skip) {
            continue;
        }
        if (n++ == 0) {
            s->cursor = e.data;
        }
        if (sio_splice_walk(s, e) < 0) {
            return -1;
        }
        last = e;
    }
    if (n > 0 && s->out != NULL &&
        mk_buf_append(s->out, s->cursor,
                      (size_t) (last.data + last.len - s->cursor)) < 0) {
        return -1;
    }
    return n;
}

/* Copies one valid value, rewriting what the mode says. */
static int sio_splice_value(struct sio_splice *s, struct mk_ptr v)
{
    s->cursor = v.data;
    if (sio_splice_walk(s, v) < 0) {
        return -1;
    }
    if (s->out == NULL) {
        return 0;
    }
    return mk_buf_append(s->out, s->cursor,
                         (size_t) (v.data + v.len - s->cursor));
}

/* ---- Client packet -> node body ---- */

static int sio_put_nsp_member(struct mk_buf *out, struct mk_ptr nsp, int comma)
{
    if (nsp.len == 1 && nsp.data[0] == '/') {
        return 0;
    }
    if (mk_buf_append_str(out, comma ? ",\"nsp\":" : "\"nsp\":") < 0) {
        return -1;
    }
    return sio_json_append_string(out, nsp.data, nsp.len);
}

/* Appends the elements of the packet's array after the first `skip`,
 * placeholders made into {"_binary":..} when the packet is a binary one. */
static int sio_put_args(struct mk_buf *out, const struct sio_packet *pk,
                        size_t skip, const struct mk_ptr *att, size_t natt)
{
    struct sio_splice s = { SIO_PLACEHOLDER_TO_BINARY, out, NULL, att, natt,
                            NULL, 0, 0 };

    if ((pk->type != SIO_BINARY_EVENT && pk->type != SIO_BINARY_ACK) ||
        !sio_may_hold(pk->data, "\"_placeholder\"")) {
        s.mode = SIO_SPLICE_COPY;           /* placeholders mean nothing */
    }
    return sio_splice_elems(&s, pk->data, skip) < 0 ? -1 : 0;
}

int sio_node_body(struct mk_buf *out, const struct sio_packet *pk,
                  const struct mk_ptr *att, size_t natt)
{
    struct sio_json_iter it;
    struct mk_ptr name;
    size_t start = out->len;
    int binary = pk->type == SIO_BINARY_EVENT || pk->type == SIO_BINARY_ACK;

    if (natt != (binary ? pk->attachments : 0) || pk->data.len == 0) {
        return -1;
    }
    if (pk->type == SIO_EVENT || pk->type == SIO_BINARY_EVENT) {
        sio_json_iter_init(&it, pk->data);
        if (!sio_json_array_next(&it, &name) ||
            mk_buf_append_str(out, "{\"name\":") < 0 ||
            mk_buf_append(out, name.data, name.len) < 0 ||
            mk_buf_append_str(out, ",\"args\":[") < 0 ||
            sio_put_args(out, pk, 1, att, natt) < 0 ||
            mk_buf_append(out, "]", 1) < 0 ||
            sio_put_nsp_member(out, pk->nsp, 1) < 0 ||
            (pk->has_id && mk_buf_printf(out, ",\"id\":%" PRIu64,
                                         pk->id) < 0)) {
            goto error;
        }
    } else if ((pk->type == SIO_ACK || pk->type == SIO_BINARY_ACK) &&
               pk->has_id) {
        if (mk_buf_printf(out, "{\"id\":%" PRIu64 ",\"args\":[", pk->id) < 0 ||
            sio_put_args(out, pk, 0, att, natt) < 0 ||
            mk_buf_append(out, "]", 1) < 0 ||
            sio_put_nsp_member(out, pk->nsp, 1) < 0) {
            goto error;
        }
    } else {
        goto error;
    }
    if (mk_buf_append(out, "}", 1) < 0) {
        goto error;
    }
    return 0;

error:
    out->len = start;
    return -1;
}

int sio_node_connect(struct mk_buf *out, struct mk_ptr nsp, struct mk_ptr auth)
{
    size_t start = out->len;
    int first = 1;

    if (mk_buf_append(out, "{", 1) < 0) {
        goto error;
    }
    if (!(nsp.len == 1 && nsp.data[0] == '/')) {
        if (sio_put_nsp_member(out, nsp, 0) < 0) {
            goto error;
        }
        first = 0;
    }
    if (auth.len > 0) {
        if (mk_buf_append_str(out, first ? "\"auth\":" : ",\"auth\":") < 0 ||
            mk_buf_append(out, auth.data, auth.len) < 0) {
            goto error;
        }
    }
    if (mk_buf_append(out, "}", 1) < 0) {
        goto error;
    }
    return 0;

error:
    out->len = start;
    return -1;
}

int sio_node_nsp(struct mk_buf *out, struct mk_ptr nsp)
{
    return sio_node_connect(out, nsp, MK_PTR_NONE);
}

/* ---- Node body -> client packet ---- */

int sio_node_parse(const char *body, size_t len, struct sio_node_msg *m)
{
    struct sio_json_iter it;
    struct mk_ptr key, v;
    enum sio_json_kind k;
    long n;

    memset(m, 0, sizeof(*m));
    m->nsp[0] = '/';
    m->nsp_len = 1;
    if (len == 0) {
        return 0;
    }
    if (sio_json_check(body, len) != SIO_JSON_OBJECT) {
        return -1;
    }
    sio_json_iter_init(&it, sio_trim(body, len));
    while (sio_json_object_next(&it, &key, &v)) {
        k = sio_json_kind(v.data);
        if (sio_json_string_equals(key, "nsp", 3)) {
            /* it goes back into packets as "<nsp>,": no comma, no NUL */
            n = k == SIO_JSON_STRING ?
                sio_json_string_decode(v, m->nsp, SIO_NSP_MAX - 1) : -1;
            if (n < 1 || m->nsp[0] != '/' || memchr(m->nsp, ',', (size_t) n) ||
                memchr(m->nsp, '\0', (size_t) n)) {
                return -1;
            }
            m->nsp[n] = '\0';
            m->nsp_len = (size_t) n;
        } else if (sio_json_string_equals(key, "name", 4)) {
            if (k != SIO_JSON_STRING && k != SIO_JSON_NUMBER) {
                return -1;
            }
            m->name = v;
        } else if (sio_json_string_equals(key, "args", 4)) {
            m->args = v;
        } else if (sio_json_string_equals(key, "id", 2)) {
            if (k != SIO_JSON_NUMBER || sio_json_uint(v, &m->id) < 0) {
                return -1;
            }
            m->has_id = 1;
        } else if (sio_json_string_equals(key, "data", 4)) {
            m->data = v;
        } else if (sio_json_string_equals(key, "message", 7)) {
            if (k != SIO_JSON_STRING) {
                return -1;
            }
            m->message = v;
        }
    }
    return 0;
}

void sio_out_init(struct sio_out *o)
{
    mk_buf_init(&o->text);
    mk_buf_init(&o->bin);
    o->natt = 0;
}

void sio_out_reset(struct sio_out *o)
{
    o->text.len = 0;
    o->bin.len = 0;
    o->natt = 0;
}

void sio_out_release(struct sio_out *o)
{
    mk_buf_release(&o->text);
    mk_buf_release(&o->bin);
    o->natt = 0;
}

/* <type>[<attachments>-][<nsp>,][<id>] */
static int sio_put_head(struct mk_buf *b, enum sio_type type, unsigned natt,
                        const char *nsp, size_t nsp_len, int has_id,
                        uint64_t id)
{
    char c = (char) ('0' + (int) type);

    if (mk_buf_append(b, &c, 1) < 0 ||
        (natt > 0 && mk_buf_printf(b, "%u-", natt) < 0)) {
        return -1;
    }
    if (nsp_len > 0 && !(nsp_len == 1 && nsp[0] == '/') &&
        (mk_buf_append(b, nsp, nsp_len) < 0 || mk_buf_append(b, ",", 1) < 0)) {
        return -1;
    }
    if (has_id && mk_buf_printf(b, "%" PRIu64, id) < 0) {
        return -1;
    }
    return 0;
}

/* Node arguments: an array's elements (args_is_list), otherwise the one
 * value; {NULL,0} is none. Copied or (out NULL) counted and checked. */
static long sio_put_node_args(struct sio_splice *s, struct mk_ptr args,
                              int args_is_list)
{
    if (args.data == NULL) {
        return 0;
    }
    if (args_is_list && sio_json_kind(args.data) == SIO_JSON_ARRAY) {
        return sio_splice_elems(s, args, 0);
    }
    return sio_splice_value(s, args) < 0 ? -1 : 1;
}

static int sio_has_args(struct mk_ptr args, int args_is_list)
{
    struct sio_json_iter it;
    struct mk_ptr e;

    if (args.data == NULL) {
        return 0;
    }
    if (!args_is_list || sio_json_kind(args.data) != SIO_JSON_ARRAY) {
        return 1;
    }
    sio_json_iter_init(&it, args);
    return sio_json_array_next(&it, &e);
}

/*
 * EVENT or ACK: a first pass counts the {"_binary":..} objects (and
 * checks their base64) because the count comes first in the packet; the
 * second writes the packet with placeholders and fills the attachments.
 */
static int sio_encode_data(struct sio_out *o, enum sio_type type,
                           const char *nsp, size_t nsp_len, struct mk_ptr name,
                           struct mk_ptr args, int args_is_list, int has_id,
                           uint64_t id)
{
    struct sio_splice s = { SIO_BINARY_TO_PLACEHOLDER, NULL, NULL, NULL, 0,
                            o, 0, 0 };
    int more = sio_has_args(args, args_is_list);

    sio_out_reset(o);
    if (more && !sio_may_hold(args, "\"_binary\"")) {
        s.mode = SIO_SPLICE_COPY;           /* no attachments: no walk */
    }
    if (more && sio_put_node_args(&s, args, args_is_list) < 0) {
        goto error;
    }
    if (s.count > 0) {
        type = type == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
    }
    if (sio_put_head(&o->text, type, s.count, nsp, nsp_len, has_id, id) < 0 ||
        mk_buf_append(&o->text, "[", 1) < 0) {
        goto error;
    }
    if (name.data != NULL &&
        (mk_buf_append(&o->text, name.data, name.len) < 0 ||
         (more && mk_buf_append(&o->text, ",", 1) < 0))) {
        goto error;
    }
    s.out = &o->text;
    s.count = 0;
    if (more && sio_put_node_args(&s, args, args_is_list) < 0) {
        goto error;
    }
    if (mk_buf_append(&o->text, "]", 1) < 0) {
        goto error;
    }
    return 0;

error:
    sio_out_reset(o);
    return -1;
}

int sio_encode_event(struct sio_out *o, const struct sio_node_msg *m)
{
    if (m->name.data == NULL || sio_name_is_reserved(m->name)) {
        sio_out_reset(o);
        return -1;
    }
    return sio_encode_data(o, SIO_EVENT, m->nsp, m->nsp_len, m->name, m->args,
                           1, m->has_id, m->id);
}

int sio_encode_ack(struct sio_out *o, const struct sio_node_msg *m)
{
    if (!m->has_id) {
        sio_out_reset(o);
        return -1;
    }
    return sio_encode_data(o, SIO_ACK, m->nsp, m->nsp_len, MK_PTR_NONE,
                           m->args, 1, 1, m->id);
}

int sio_encode_message(struct sio_out *o, const char *body, size_t len,
                       int is_json)
{
    static const struct mk_ptr name = MK_PTR_LIT("\"message\"");

    if (is_json) {
        if (sio_json_check(body, len) == SIO_JSON_INVALID) {
            sio_out_reset(o);
            return -1;
        }
        return sio_encode_data(o, SIO_EVENT, "/", 1, name, sio_trim(body, len),
                               0, 0, 0);
    }
    sio_out_reset(o);
    if (mk_buf_append_str(&o->text, "2[\"message\",") < 0 ||
        sio_json_append_string(&o->text, body, len) < 0 ||
        mk_buf_append(&o->text, "]", 1) < 0) {
        sio_out_reset(o);
        return -1;
    }
    return 0;
}

int sio_encode_connect(struct sio_out *o, const char *nsp, size_t nsp_len,
                       const char *sid, struct mk_ptr data)
{
    struct sio_json_iter it;
    struct mk_ptr key, v;

    sio_out_reset(o);
    if (sio_put_head(&o->text, SIO_CONNECT, 0, nsp, nsp_len, 0, 0) < 0 ||
        mk_buf_append_str(&o->text, "{\"sid\":") < 0 ||
        sio_json_append_string(&o->text, sid, strlen(sid)) < 0) {
        goto error;
    }
    if (data.data != NULL && sio_json_kind(data.data) == SIO_JSON_OBJECT) {
        /* the node's members after the sid, but never a second sid */
        sio_json_iter_init(&it, data);
        while (sio_json_object_next(&it, &key, &v)) {
            if (sio_json_string_equals(key, "sid", 3)) {
                continue;
            }
            if (mk_buf_append(&o->text, ",", 1) < 0 ||
                mk_buf_append(&o->text, key.data, key.len) < 0 ||
                mk_buf_append(&o->text, ":", 1) < 0 ||
                mk_buf_append(&o->text, v.data, v.len) < 0) {
                goto error;
            }
        }
    }
    if (mk_buf_append(&o->text, "}", 1) < 0) {
        goto error;
    }
    return 0;

error:
    sio_out_reset(o);
    return -1;
}

int sio_encode_connect_error(struct sio_out *o, const char *nsp,
                             size_t nsp_len, struct mk_ptr message,
                             struct mk_ptr data)
{
    sio_out_reset(o);
    if (sio_put_head(&o->text, SIO_CONNECT_ERROR, 0, nsp, nsp_len, 0, 0) < 0 ||
        mk_buf_append(&o->text, "{", 1) < 0) {
        goto error;
    }
    if (message.data != NULL &&
        (mk_buf_append_str(&o->text, "\"message\":") < 0 ||
         mk_buf_append(&o->text, message.data, message.len) < 0)) {
        goto error;
    }
    if (data.data != NULL &&
        (mk_buf_append_str(&o->text, message.data ? ",\"data\":"
                                                  : "\"data\":") < 0 ||
         mk_buf_append(&o->text, data.data, data.len) < 0)) {
        goto error;
    }
    if (mk_buf_append(&o->text, "}", 1) < 0) {
        goto error;
    }
    return 0;

error:
    sio_out_reset(o);
    return -1;
}

int sio_encode_disconnect(struct sio_out *o, const char *nsp, size_t nsp_len)
{
    sio_out_reset(o);
    if (sio_put_head(&o->text, SIO_DISCONNECT, 0, nsp, nsp_len, 0, 0) < 0) {
        sio_out_reset(o);
        return -1;
    }
    return 0;
}
