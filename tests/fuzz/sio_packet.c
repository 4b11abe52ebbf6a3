/*
 * Fuzz target for plugins/socketio/sio_packet.c and sio_json.c.
 *
 * The input is read three ways. As a client's Socket.IO packet: what
 * decodes has spans inside the input and a node body (attachments cut
 * from the input) that is one valid JSON object, which sio_node_parse
 * reads back with the packet's namespace and id; an EVENT or ACK then
 * goes back to a packet (sio_encode_event/ack) that decodes, and to the
 * same node body again whenever the client sent no "_binary" objects of
 * its own. As a node's JSON body: what parses encodes into packets that
 * the client-side checks accept (CONNECT_ERROR: valid JSON after its
 * head). As JSON text: the scanner's verdict, value length and string
 * round trip agree. ASan and LeakSanitizer watch memory; any violated
 * invariant traps.
 */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/socketio/sio_json.c"
#include "plugins/socketio/sio_packet.c"
#include "fuzz_util.h"

static int fuzz_in(const char *p, size_t pl, const char *base, size_t bl)
{
    return p >= base && pl <= bl && (size_t) (p - base) <= bl - pl;
}

static int fuzz_has(const char *p, size_t n, const char *s)
{
    size_t k = strlen(s), i;

    for (i = 0; i + k <= n; i++) {
        if (memcmp(p + i, s, k) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The packet's attachments, back to back in o->bin. */
static void fuzz_atts(const struct sio_out *o, struct mk_ptr *att)
{
    size_t k, off = 0;

    for (k = 0; k < o->natt; k++) {
        att[k] = mk_ptr_make(o->bin.data + off, o->att_len[k]);
        off += o->att_len[k];
    }
    FUZZ_CHECK(off == o->bin.len);
}

/* A node message encoded for the client must pass the client's checks. */
static void fuzz_client_accepts(const struct sio_out *o, enum sio_type t,
                                const struct sio_node_msg *m)
{
    struct sio_packet pk;

    FUZZ_CHECK(sio_packet_decode(o->text.data, o->text.len, &pk) == 0);
    FUZZ_CHECK(pk.type == t || (t == SIO_EVENT && pk.type == SIO_BINARY_EVENT)
               || (t == SIO_ACK && pk.type == SIO_BINARY_ACK));
    FUZZ_CHECK(pk.attachments == o->natt);
    FUZZ_CHECK(pk.nsp.len == m->nsp_len &&
               memcmp(pk.nsp.data, m->nsp, m->nsp_len) == 0);
    if (t == SIO_EVENT || t == SIO_ACK) {
        FUZZ_CHECK(pk.has_id == m->has_id && (!m->has_id || pk.id == m->id));
    }
}

static void fuzz_client_packet(const char *p, size_t n)
{
    struct mk_ptr att[SIO_ATTACHMENTS_MAX], att2[SIO_ATTACHMENTS_MAX];
    struct sio_packet pk, pk2;
    struct sio_node_msg m;
    struct sio_out o;
    struct mk_buf body, body2;
    size_t k;
    int r;

    if (sio_packet_decode(p, n, &pk) != 0) {
        return;
    }
    FUZZ_CHECK(pk.type != SIO_CONNECT_ERROR && pk.type <= SIO_BINARY_ACK);
    FUZZ_CHECK(pk.nsp.len >= 1 && pk.nsp.len < SIO_NSP_MAX &&
               pk.nsp.data[0] == '/');
    FUZZ_CHECK((pk.nsp.len == 1 && pk.nsp.data[0] == '/') ||
               fuzz_in(pk.nsp.data, pk.nsp.len, p, n));
    FUZZ_CHECK(pk.data.len == 0 || fuzz_in(pk.data.data, pk.data.len, p, n));
    FUZZ_CHECK(!pk.has_id || pk.id < (UINT64_C(1) << 53));
    FUZZ_CHECK(pk.data.len == 0 ||
               sio_json_check(pk.data.data, pk.data.len) != SIO_JSON_INVALID);
    for (k = 0; k < pk.attachments; k++) {
        /* attachments: pieces of the input itself */
        att[k] = mk_ptr_make(p + k % (n + 1) / 2, k % 5);
        if (att[k].data + att[k].len > p + n) {
            att[k].len = 0;
        }
    }

    mk_buf_init(&body);
    mk_buf_init(&body2);
    sio_out_init(&o);
    if (pk.type == SIO_CONNECT || pk.type == SIO_DISCONNECT) {
        r = pk.type == SIO_CONNECT ? sio_node_connect(&body, pk.nsp, pk.data)
                                   : sio_node_nsp(&body, pk.nsp);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(sio_json_check(body.data, body.len) == SIO_JSON_OBJECT);
        FUZZ_CHECK(sio_node_parse(body.data, body.len, &m) == 0);
        FUZZ_CHECK(m.nsp_len == pk.nsp.len &&
                   memcmp(m.nsp, pk.nsp.data, m.nsp_len) == 0);
        goto done;
    }
    FUZZ_CHECK(sio_node_body(&body, &pk, att, pk.attachments + 1) == -1);
    FUZZ_CHECK(body.len == 0);
    r = sio_node_body(&body, &pk, att, pk.attachments);
    if (r != 0) {
        /* only a bad placeholder in a binary packet fails */
        FUZZ_CHECK(pk.attachments > 0 && body.len == 0);
        goto done;
    }
    FUZZ_CHECK(sio_json_check(body.data, body.len) == SIO_JSON_OBJECT);
    FUZZ_CHECK(sio_node_parse(body.data, body.len, &m) == 0);
    FUZZ_CHECK(m.nsp_len == pk.nsp.len &&
               memcmp(m.nsp, pk.nsp.data, m.nsp_len) == 0);
    FUZZ_CHECK(m.has_id == pk.has_id && (!m.has_id || m.id == pk.id));
    FUZZ_CHECK(m.args.data != NULL &&
               sio_json_kind(m.args.data) == SIO_JSON_ARRAY);

    /* and back to a packet, and to a node body again */
    if (pk.type == SIO_EVENT || pk.type == SIO_BINARY_EVENT) {
        FUZZ_CHECK(m.name.data != NULL);
        r = sio_encode_event(&o, &m);
        FUZZ_CHECK(r == 0 || fuzz_has(body.data, body.len, "_binary"));
        if (r == 0) {
            fuzz_client_accepts(&o, SIO_EVENT, &m);
        }
    } else {
        r = sio_encode_ack(&o, &m);
        FUZZ_CHECK(r == 0 || fuzz_has(body.data, body.len, "_binary"));
        if (r == 0) {
            fuzz_client_accepts(&o, SIO_ACK, &m);
        }
    }
    if (r != 0) {
        FUZZ_CHECK(o.text.len == 0 && o.natt == 0);
        goto done;
    }
    FUZZ_CHECK(sio_packet_decode(o.text.data, o.text.len, &pk2) == 0);
    fuzz_atts(&o, att2);
    FUZZ_CHECK(sio_node_body(&body2, &pk2, att2, o.natt) == 0);
    if (!fuzz_has(body.data, body.len, "_binary")) {
        FUZZ_CHECK(body.len == body2.len &&
                   memcmp(body.data, body2.data, body.len) == 0);
    }

done:
    sio_out_release(&o);
    mk_buf_release(&body);
    mk_buf_release(&body2);
}

static void fuzz_node_body(const char *p, size_t n)
{
    struct sio_node_msg m;
    struct sio_out o;
    int r;

    if (sio_node_parse(p, n, &m) != 0) {
        return;
    }
    FUZZ_CHECK(m.nsp_len >= 1 && m.nsp_len < SIO_NSP_MAX && m.nsp[0] == '/' &&
               m.nsp[m.nsp_len] == '\0' && strlen(m.nsp) == m.nsp_len);
    FUZZ_CHECK(m.name.data == NULL || fuzz_in(m.name.data, m.name.len, p, n));
    FUZZ_CHECK(m.args.data == NULL || fuzz_in(m.args.data, m.args.len, p, n));
    FUZZ_CHECK(!m.has_id || m.id < (UINT64_C(1) << 53));
    sio_out_init(&o);

    r = sio_encode_event(&o, &m);
    if (r == 0) {
        fuzz_client_accepts(&o, SIO_EVENT, &m);
    } else {
        FUZZ_CHECK(o.text.len == 0 && o.natt == 0);
    }
    r = sio_encode_ack(&o, &m);
    FUZZ_CHECK(r == 0 || !m.has_id || fuzz_has(p, n, "_binary"));
    if (r == 0) {
        fuzz_client_accepts(&o, SIO_ACK, &m);
    }
    FUZZ_CHECK(sio_encode_connect(&o, m.nsp, m.nsp_len, "sid_0", m.data) == 0);
    fuzz_client_accepts(&o, SIO_CONNECT, &m);
    FUZZ_CHECK(sio_encode_disconnect(&o, m.nsp, m.nsp_len) == 0);
    fuzz_client_accepts(&o, SIO_DISCONNECT, &m);
    FUZZ_CHECK(sio_encode_connect_error(&o, m.nsp, m.nsp_len, m.message,
                                        m.data) == 0);
    {
        /* "4", then "<nsp>," unless it is "/", then the object */
        size_t h = 1 + (m.nsp_len == 1 ? 0 : m.nsp_len + 1);

        FUZZ_CHECK(o.text.len > h && o.text.data[0] == '4');
        FUZZ_CHECK(sio_json_check(o.text.data + h, o.text.len - h) ==
                   SIO_JSON_OBJECT);
    }
    sio_out_release(&o);
}

static void fuzz_message(const char *p, size_t n)
{
    struct sio_node_msg m;
    struct sio_out o;
    int r;

    sio_node_parse("", 0, &m);
    sio_out_init(&o);
    r = sio_encode_message(&o, p, n, 0);
    if (r == 0) {
        fuzz_client_accepts(&o, SIO_EVENT, &m);
    }
    r = sio_encode_message(&o, p, n, 1);
    FUZZ_CHECK(r == -1 || sio_json_check(p, n) != SIO_JSON_INVALID);
    if (r == 0) {
        fuzz_client_accepts(&o, SIO_EVENT, &m);
    }
    sio_out_release(&o);
}

static void fuzz_json(const char *p, size_t n)
{
    enum sio_json_kind k = sio_json_check(p, n);
    struct mk_buf b;
    char *dec;
    long l, d;

    if (n > 0) {
        l = sio_json_value_len(p, n);
        FUZZ_CHECK(l == -1 || (l > 0 && (size_t) l <= n));
        if (l > 0 && (size_t) l == n) {
            FUZZ_CHECK(k == sio_json_kind(p) && k != SIO_JSON_INVALID);
        }
    }
    if (k != SIO_JSON_STRING || p[0] != '"') {
        return;
    }
    /* a string decodes, and writing it again gives an equal string */
    dec = mk_mem_alloc(n);
    if (dec == NULL) {
        return;
    }
    d = sio_json_string_decode(mk_ptr_make(p, n), dec, n);
    FUZZ_CHECK(d >= 0 && (size_t) d <= n - 2);
    FUZZ_CHECK(sio_json_string_equals(mk_ptr_make(p, n), dec, (size_t) d));
    mk_buf_init(&b);
    FUZZ_CHECK(sio_json_append_string(&b, dec, (size_t) d) == 0);
    FUZZ_CHECK(sio_json_check(b.data, b.len) == SIO_JSON_STRING);
    FUZZ_CHECK(sio_json_string_equals(mk_ptr_make(b.data, b.len), dec,
                                      (size_t) d));
    mk_buf_release(&b);
    mk_mem_free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = mk_mem_alloc(size ? size : 1);

    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    fuzz_client_packet(buf, size);
    fuzz_node_body(buf, size);
    fuzz_message(buf, size);
    fuzz_json(buf, size);
    mk_mem_free(buf);
    return 0;
}
