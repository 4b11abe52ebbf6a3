/* Unit test: the codec against the real parsers socket.io-client 4.x ships
 * (socket.io-parser, engine.io-parser from tests/js/node_modules, which
 * tests/js/setup.sh installs), through parser_oracle.js:
 *   - packets their encoders write decode here with the same fields, and
 *     turn into the node bodies of spec 7.8 (byte for byte);
 *   - packets and payloads encoded here from node bodies decode there to
 *     what the node asked for, attachments included.
 * Needs node: it fails, not skips, without it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_mem.h"
#include "mk_test.h"
#include "plugins/socketio/sio_json.c"
#include "plugins/socketio/eio_packet.c"
#include "plugins/socketio/sio_packet.c"

#define ORACLE "node plugins/socketio/parser_oracle.js"

/* A decoded string member of a line (NUL added; free it), or NULL. */
static char *member_str(struct mk_ptr obj, const char *name, size_t *len)
{
    struct mk_ptr v = sio_json_member(obj, name);
    char *s;
    long n;

    if (v.data == NULL || sio_json_kind(v.data) != SIO_JSON_STRING) {
        return NULL;
    }
    s = mk_mem_alloc(v.len + 1);
    n = sio_json_string_decode(v, s, v.len);
    s[n < 0 ? 0 : n] = '\0';
    *len = n < 0 ? 0 : (size_t) n;
    return s;
}

static int member_int(struct mk_ptr obj, const char *name, int64_t *out)
{
    struct mk_ptr v = sio_json_member(obj, name);
    uint64_t u;

    if (v.data == NULL || sio_json_uint(v, &u) < 0) {
        return 0;
    }
    *out = (int64_t) u;
    return 1;
}

/* The base64 strings of the array member "bins", decoded into one block;
 * their spans in att. */
static size_t member_bins(struct mk_ptr obj, char *block, size_t cap,
                          struct mk_ptr *att)
{
    struct sio_json_iter it;
    struct mk_ptr e, bins = sio_json_member(obj, "bins");
    size_t n = 0, off = 0;
    long l;

    sio_json_iter_init(&it, bins);
    while (n < SIO_ATTACHMENTS_MAX && sio_json_array_next(&it, &e)) {
        l = mk_base64_decode(e.data + 1, e.len - 2, block + off, cap - off);
        CHECK(l >= 0);
        att[n++] = mk_ptr_make(block + off, l < 0 ? 0 : (size_t) l);
        off += l < 0 ? 0 : (size_t) l;
    }
    return n;
}

static void check_in(struct mk_ptr line)
{
    struct mk_ptr att[SIO_ATTACHMENTS_MAX], v;
    struct sio_packet pk;
    struct mk_buf body;
    char *wire, *nsp, *data, *want, block[256];
    size_t wl, nl, dl = 0, bl = 0, natt;
    int64_t t, id;
    int accept, r;

    wire = member_str(line, "wire", &wl);
    nsp = member_str(line, "nsp", &nl);
    data = member_str(line, "data", &dl);
    want = member_str(line, "body", &bl);
    accept = sio_json_kind(sio_json_member(line, "accept").data) ==
             SIO_JSON_TRUE;
    natt = member_bins(line, block, sizeof(block), att);
    r = sio_packet_decode(wire, wl, &pk);
    if ((r == 0) != accept) {
        fprintf(stderr, "oracle: \"%s\" %s\n", wire,
                accept ? "refused" : "accepted");
    }
    CHECK_EQ_INT(r == 0, accept);
    if (r != 0 || !accept) {
        goto done;
    }
    CHECK(member_int(line, "type", &t) && t == pk.type);
    CHECK_EQ_MEM(pk.nsp.data, pk.nsp.len, nsp);
    v = sio_json_member(line, "id");
    if (sio_json_kind(v.data) == SIO_JSON_NULL) {
        CHECK(!pk.has_id);
    } else {
        CHECK(member_int(line, "id", &id) && pk.has_id &&
              (uint64_t) id == pk.id);
    }
    CHECK_EQ_INT(pk.attachments, natt);
    if (data == NULL) {
        CHECK_EQ_INT(pk.data.len, 0);
    } else {
        CHECK_EQ_MEM(pk.data.data, pk.data.len, data);
    }
    if (want != NULL) {
        mk_buf_init(&body);
        r = pk.type == SIO_CONNECT ? sio_node_connect(&body, pk.nsp, pk.data) :
            pk.type == SIO_DISCONNECT ? sio_node_nsp(&body, pk.nsp) :
            sio_node_body(&body, &pk, att, natt);
        CHECK_EQ_INT(r, 0);
        CHECK_EQ_MEM(body.data ? body.data : "", body.len, want);
        mk_buf_release(&body);
    }

done:
    mk_mem_free(wire);
    mk_mem_free(nsp);
    mk_mem_free(data);
    mk_mem_free(want);
}

/* Encodes a node message and writes the packet for "check". */
static void check_out(struct mk_ptr line, struct mk_buf *back)
{
    struct sio_node_msg m;
    struct sio_out o;
    char *kind, *body, b64[256];
    size_t kl, bl, k, off;
    int r = -1;

    kind = member_str(line, "kind", &kl);
    body = member_str(line, "body", &bl);
    sio_out_init(&o);
    if (strcmp(kind, "message") == 0 || strcmp(kind, "json") == 0) {
        r = sio_encode_message(&o, body, bl, kind[0] == 'j');
    } else if (sio_node_parse(body, bl, &m) == 0) {
        if (strcmp(kind, "event") == 0) {
            r = sio_encode_event(&o, &m);
        } else if (strcmp(kind, "ack") == 0) {
            r = sio_encode_ack(&o, &m);
        } else if (strcmp(kind, "connect") == 0) {
            r = sio_encode_connect(&o, m.nsp, m.nsp_len, "SID1", m.data);
        } else if (strcmp(kind, "connect_error") == 0) {
            r = sio_encode_connect_error(&o, m.nsp, m.nsp_len, m.message,
                                         m.data);
        } else if (strcmp(kind, "disconnect") == 0) {
            r = sio_encode_disconnect(&o, m.nsp, m.nsp_len);
        }
    }
    if (r != 0) {
        fprintf(stderr, "oracle: %s %s not encoded\n", kind, body);
    }
    CHECK_EQ_INT(r, 0);
    mk_buf_append_str(back, "{\"dir\":\"out\",\"sid\":\"SID1\",\"kind\":");
    sio_json_append_string(back, kind, kl);
    mk_buf_append_str(back, ",\"body\":");
    sio_json_append_string(back, body, bl);
    mk_buf_append_str(back, ",\"text\":");
    sio_json_append_string(back, o.text.data ? o.text.data : "", o.text.len);
    mk_buf_append_str(back, ",\"bins\":[");
    for (k = 0, off = 0; k < o.natt; k++) {
        /* the length, not a NUL: mbedTLS writes none for no input */
        long l = mk_base64_encode(o.bin.data + off, o.att_len[k], b64,
                                  sizeof(b64));

        CHECK(l >= 0);
        mk_buf_printf(back, "%s\"%.*s\"", k ? "," : "", (int) l, b64);
        off += o.att_len[k];
    }
    mk_buf_append_str(back, "]}\n");
    sio_out_release(&o);
    mk_mem_free(kind);
    mk_mem_free(body);
}

struct eio_seen {
    struct mk_buf json;             /* the packets as the oracle lists them */
    struct mk_buf again;            /* and appended to a payload again */
};

static int on_eio(void *ctx, const struct eio_packet *pk)
{
    struct eio_seen *s = ctx;
    char b64[256];

    mk_buf_printf(&s->json, "%s{\"type\":%d,\"binary\":%s,\"data\":",
                  s->json.len > 1 ? "," : "", (int) pk->type,
                  pk->binary ? "true" : "false");
    if (pk->binary) {
        long l = mk_base64_encode(pk->data, pk->len, b64, sizeof(b64));

        CHECK(l >= 0);
        mk_buf_printf(&s->json, "\"%.*s\"}", (int) l, b64);
    } else {
        sio_json_append_string(&s->json, pk->data, pk->len);
        mk_buf_append_str(&s->json, "}");
    }
    CHECK_EQ_INT(eio_payload_append(&s->again, pk), 0);
    return 0;
}

static void check_eio(struct mk_ptr line, struct mk_buf *back)
{
    struct mk_ptr want = sio_json_member(line, "packets");
    struct eio_seen s;
    char *payload;
    size_t pl;

    payload = member_str(line, "payload", &pl);
    mk_buf_init(&s.json);
    mk_buf_init(&s.again);
    mk_buf_append_str(&s.json, "[");
    CHECK_EQ_INT(eio_payload_decode(payload, pl, on_eio, &s), 0);
    mk_buf_append_str(&s.json, "]");
    if (want.data != NULL) {
        CHECK(s.json.len == want.len &&
              memcmp(s.json.data, want.data, want.len) == 0);
        if (s.json.len != want.len ||
            memcmp(s.json.data, want.data, want.len) != 0) {
            fprintf(stderr, "oracle: eio %.*s, want %.*s\n", (int) s.json.len,
                    s.json.data, (int) want.len, want.data);
        }
        /* the same packets appended again: the same payload bytes */
        CHECK(s.again.len == pl && memcmp(s.again.data, payload, pl) == 0);
        mk_buf_append_str(back, "{\"dir\":\"eio\",\"payload\":");
        sio_json_append_string(back, s.again.data, s.again.len);
        mk_buf_append_str(back, ",\"packets\":");
        mk_buf_append(back, want.data, want.len);
        mk_buf_append_str(back, "}\n");
    }
    mk_mem_free(payload);
    mk_buf_release(&s.json);
    mk_buf_release(&s.again);
}

MK_TEST(oracle)
{
    struct mk_buf back;
    char *line = NULL, tmpl[] = "/tmp/sio_oracle.XXXXXX", cmd[256], out[4096];
    size_t cap = 0, ndir[3] = { 0, 0, 0 };
    ssize_t n;
    FILE *in, *res;
    int fd, ok = 0;

    mk_buf_init(&back);
    in = popen(ORACLE " gen", "r");
    CHECK(in != NULL);
    if (in == NULL) {
        return;
    }
    while ((n = getline(&line, &cap, in)) > 0) {
        struct mk_ptr obj = mk_ptr_make(line, (size_t) n - 1);
        struct mk_ptr dir;

        CHECK_EQ_INT(sio_json_check(obj.data, obj.len), SIO_JSON_OBJECT);
        dir = sio_json_member(obj, "dir");
        if (sio_json_string_equals(dir, "in", 2)) {
            check_in(obj);
            ndir[0]++;
        } else if (sio_json_string_equals(dir, "out", 3)) {
            check_out(obj, &back);
            ndir[1]++;
        } else if (sio_json_string_equals(dir, "eio", 3)) {
            check_eio(obj, &back);
            ndir[2]++;
        } else {
            CHECK(0);
        }
    }
    free(line);
    CHECK_EQ_INT(pclose(in), 0);
    if (ndir[0] == 0 || ndir[1] == 0 || ndir[2] == 0) {
        fprintf(stderr, "oracle: no cases from `" ORACLE " gen` (node and "
                "tests/js/node_modules: run tests/js/setup.sh)\n");
    }
    CHECK(ndir[0] >= 20 && ndir[1] >= 20 && ndir[2] >= 4);

    /* what this codec wrote, read by the real parsers */
    fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    if (fd < 0) {
        mk_buf_release(&back);
        return;
    }
    CHECK(write(fd, back.data, back.len) == (ssize_t) back.len);
    close(fd);
    snprintf(cmd, sizeof(cmd), ORACLE " check %s", tmpl);
    res = popen(cmd, "r");
    CHECK(res != NULL);
    while (res != NULL && fgets(out, sizeof(out), res) != NULL) {
        if (strncmp(out, "ok ", 3) == 0) {
            ok = atoi(out + 3);
        } else {
            fprintf(stderr, "oracle: %s", out);
        }
    }
    CHECK(res != NULL && pclose(res) == 0);
    CHECK_EQ_INT(ok, ndir[1] + ndir[2]);
    unlink(tmpl);
    mk_buf_release(&back);
}

int main(void)
{
    RUN(oracle);
    return mk_test_done();
}
