/* Unit tests: Socket.IO v5 packets as socket.io-client 4.x sends them,
 * the checks socket.io-parser makes, and the node JSON bodies of spec 7.8
 * in both directions, binary attachments included. */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_test.h"
#include "plugins/socketio/sio_json.c"
#include "plugins/socketio/sio_packet.c"

struct dcase {
    const char *in;
    size_t len;
    int ret;
    int type;
    unsigned att;
    const char *nsp;
    int64_t id;                     /* -1: none */
    const char *data;
};

#define D(s, t, a, n, i, d) { s, sizeof(s) - 1, 0, t, a, n, i, d }
#define BAD(s) { s, sizeof(s) - 1, -1, 0, 0, NULL, -1, NULL }

static const struct dcase dcases[] = {
    /* what socket.io-client 4.8 sends (after the Engine.IO "4") */
    D("0", SIO_CONNECT, 0, "/", -1, ""),
    D("0{\"token\":\"abc\"}", SIO_CONNECT, 0, "/", -1, "{\"token\":\"abc\"}"),
    D("0/chat,", SIO_CONNECT, 0, "/chat", -1, ""),
    D("0/chat,{\"token\":1}", SIO_CONNECT, 0, "/chat", -1, "{\"token\":1}"),
    D("1", SIO_DISCONNECT, 0, "/", -1, ""),
    D("1/chat,", SIO_DISCONNECT, 0, "/chat", -1, ""),
    D("2[\"chat\",\"hi\"]", SIO_EVENT, 0, "/", -1, "[\"chat\",\"hi\"]"),
    D("21[\"ev\",1]", SIO_EVENT, 0, "/", 1, "[\"ev\",1]"),
    D("2/chat,12[\"ev\"]", SIO_EVENT, 0, "/chat", 12, "[\"ev\"]"),
    D("51-[\"up\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, 1,
      "/", -1, "[\"up\",{\"_placeholder\":true,\"num\":0}]"),
    D("52-/x,3[\"up\",{\"_placeholder\":true,\"num\":0},"
      "{\"_placeholder\":true,\"num\":1}]", SIO_BINARY_EVENT, 2, "/x", 3,
      "[\"up\",{\"_placeholder\":true,\"num\":0},"
      "{\"_placeholder\":true,\"num\":1}]"),
    D("3/x,5[true]", SIO_ACK, 0, "/x", 5, "[true]"),
    D("30[]", SIO_ACK, 0, "/", 0, "[]"),
    D("61-9[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, 1, "/", 9,
      "[{\"_placeholder\":true,\"num\":0}]"),
    D("510-[\"a\"]", SIO_BINARY_EVENT, 10, "/", -1, "[\"a\"]"),
    /* what the server also reads */
    D("2[1,\"x\"]", SIO_EVENT, 0, "/", -1, "[1,\"x\"]"),
    D("2[-1.5e3]", SIO_EVENT, 0, "/", -1, "[-1.5e3]"),
    D("2 [\"a\"] ", SIO_EVENT, 0, "/", -1, "[\"a\"]"),
    D("0/chat", SIO_CONNECT, 0, "/chat", -1, ""),
    D("0/,", SIO_CONNECT, 0, "/", -1, ""),
    D("2/\xc3\xa9t\xc3\xa9,[\"a\"]", SIO_EVENT, 0, "/\xc3\xa9t\xc3\xa9", -1,
      "[\"a\"]"),
    D("29007199254740991[\"a\"]", SIO_EVENT, 0, "/", 9007199254740991LL,
      "[\"a\"]"),
    D("2007[\"a\"]", SIO_EVENT, 0, "/", 7, "[\"a\"]"),
    D("2[\"connected\"]", SIO_EVENT, 0, "/", -1, "[\"connected\"]"),
    /* malformed */
    BAD(""), BAD("7"), BAD("x"), BAD("-1"), BAD(" 2[\"a\"]"),
    BAD("4{\"message\":\"x\"}"), BAD("4"),               /* server's only */
    BAD("0[]"), BAD("0\"x\""), BAD("0{"), BAD("0null"), BAD("01{}"),
    BAD("0{}x"), BAD("0/chat,[]"),
    BAD("1{}"), BAD("11"), BAD("1/chat,{}"), BAD("1/chat,1"),
    BAD("2"), BAD("2[]"), BAD("2{}"), BAD("2\"a\""), BAD("2[null]"),
    BAD("2[[]]"), BAD("2[true]"), BAD("2[{}]"), BAD("2[\"a\"]x"),
    BAD("2[\"a\",]"), BAD("2[\"a\""), BAD("2/chat[\"a\"]"), BAD("2/chat,"),
    BAD("2[\"connect\"]"), BAD("2[\"connect_error\"]"),
    BAD("2[\"disconnect\"]"), BAD("2[\"disconnecting\"]"),
    BAD("2[\"newListener\",1]"), BAD("2[\"removeListener\"]"),
    BAD("2[\"\\u0063onnect\"]"),
    BAD("29007199254740992[\"a\"]"), BAD("299999999999999999999[\"a\"]"),
    BAD("2[\"\\ud800\"]"), BAD("2[\"\xff\"]"), BAD("2[\"\xed\xa0\x80\"]"),
    BAD("2[01]"), BAD("2['a']"),
    BAD("3"), BAD("3[]"), BAD("31"), BAD("31{}"), BAD("31\"a\""),
    BAD("5[\"a\"]"), BAD("50-[\"a\"]"), BAD("5-[\"a\"]"), BAD("511-[\"a\"]"),
    BAD("5100-[\"a\"]"), BAD("51[\"a\"]"), BAD("5a-[\"a\"]"), BAD("51-"),
    BAD("51-[]"), BAD("61-[]"), BAD("6-1[]"), BAD("51-[\"connect\"]"),
    BAD("2/a\xff,[\"x\"]"), BAD("2/a\xc0\xaf,[\"x\"]"), BAD("0/a\0b,"),
    BAD("21.5[\"a\"]"),
};

MK_TEST(decode_table)
{
    size_t i;

    for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
        const struct dcase *c = &dcases[i];
        struct sio_packet pk;
        int r = sio_packet_decode(c->in, c->len, &pk);

        if (r != c->ret) {
            fprintf(stderr, "decode case %zu \"%s\": %d, want %d\n", i,
                    c->in, r, c->ret);
        }
        CHECK_EQ_INT(r, c->ret);
        if (r != 0 || c->ret != 0) {
            continue;
        }
        CHECK_EQ_INT(pk.type, c->type);
        CHECK_EQ_INT(pk.attachments, c->att);
        CHECK_EQ_MEM(pk.nsp.data, pk.nsp.len, c->nsp);
        CHECK_EQ_INT(pk.has_id, c->id >= 0);
        if (c->id >= 0) {
            CHECK_EQ_INT(pk.id, c->id);
        }
        if (c->data != NULL) {
            CHECK_EQ_MEM(pk.data.len ? pk.data.data : "", pk.data.len,
                         c->data);
        }
    }
}

/* A namespace fills SIO_NSP_MAX - 1 bytes at most: a node's answer names
 * it in a NUL-terminated array of SIO_NSP_MAX. */
MK_TEST(decode_nsp_bound)
{
    char pkt[SIO_NSP_MAX + 16];
    struct sio_packet pk;
    size_t n;

    pkt[0] = '0';
    pkt[1] = '/';
    memset(pkt + 2, 'a', sizeof(pkt) - 2);
    n = 1 + (SIO_NSP_MAX - 1);
    pkt[n] = ',';
    CHECK_EQ_INT(sio_packet_decode(pkt, n + 1, &pk), 0);
    CHECK_EQ_INT(pk.nsp.len, SIO_NSP_MAX - 1);
    pkt[n] = 'a';
    pkt[n + 1] = ',';
    CHECK_EQ_INT(sio_packet_decode(pkt, n + 2, &pk), -1);
}

/* A payload nests at most SIO_JSON_DEPTH_MAX - 1 deep: its node body is
 * one level deeper and must stay readable by Tremolo (a node's echo). */
MK_TEST(decode_depth)
{
    struct sio_packet pk;
    struct sio_node_msg m;
    struct mk_buf b, body;
    int i, d;

    mk_buf_init(&b);
    mk_buf_init(&body);
    for (d = SIO_JSON_DEPTH_MAX - 1; d <= SIO_JSON_DEPTH_MAX; d++) {
        b.len = 0;
        mk_buf_append_str(&b, "2[\"deep\",");
        for (i = 1; i < d; i++) {
            mk_buf_append_str(&b, "[");
        }
        for (i = 1; i < d; i++) {
            mk_buf_append_str(&b, "]");
        }
        mk_buf_append_str(&b, "]");
        if (d == SIO_JSON_DEPTH_MAX) {
            CHECK_EQ_INT(sio_packet_decode(b.data, b.len, &pk), -1);
            continue;
        }
        CHECK_EQ_INT(sio_packet_decode(b.data, b.len, &pk), 0);
        body.len = 0;
        CHECK_EQ_INT(sio_node_body(&body, &pk, NULL, 0), 0);
        CHECK_EQ_INT(sio_node_parse(body.data, body.len, &m), 0);
    }
    /* brackets inside strings do not count */
    {
        static const char s[] = "2[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"\"]";

        CHECK_EQ_INT(sio_packet_decode(s, sizeof(s) - 1, &pk), 0);
    }
    mk_buf_release(&b);
    mk_buf_release(&body);
}

/* ---- client packet -> node body ---- */

struct bcase {
    const char *in;
    const char *body;               /* NULL: sio_node_body fails */
    size_t natt;
};

static const struct mk_ptr atts[3] = {
    { "\x01\x02\x03", 3 }, { "\xff", 1 }, { "", 0 },
};

static const struct bcase bcases[] = {
    { "2[\"chat\",\"hi\"]", "{\"name\":\"chat\",\"args\":[\"hi\"]}", 0 },
    { "21[\"ev\",1]", "{\"name\":\"ev\",\"args\":[1],\"id\":1}", 0 },
    { "2[\"only\"]", "{\"name\":\"only\",\"args\":[]}", 0 },
    { "2[7]", "{\"name\":7,\"args\":[]}", 0 },
    { "2/chat,7[ \"ev\" , {\"a\" : 1} ,2 ]",
      "{\"name\":\"ev\",\"args\":[{\"a\" : 1} ,2],\"nsp\":\"/chat\",\"id\":7}",
      0 },
    { "2[\"big\",123456789012345678901234567890,1.0e+2,\"\\u00e9\\n\"]",
      "{\"name\":\"big\",\"args\":[123456789012345678901234567890,1.0e+2,"
      "\"\\u00e9\\n\"]}", 0 },
    { "2/a\"b\\,[\"x\"]", "{\"name\":\"x\",\"args\":[],\"nsp\":\"/a\\\"b\\\\\"}",
      0 },
    /* a placeholder outside a binary packet is only data */
    { "2[\"x\",{\"_placeholder\":true,\"num\":0}]",
      "{\"name\":\"x\",\"args\":[{\"_placeholder\":true,\"num\":0}]}", 0 },
    { "3/x,5[true]", "{\"id\":5,\"args\":[true],\"nsp\":\"/x\"}", 0 },
    { "31[]", "{\"id\":1,\"args\":[]}", 0 },
    { "31[ ]", "{\"id\":1,\"args\":[]}", 0 },
    { "51-[\"up\",{\"_placeholder\":true,\"num\":0}]",
      "{\"name\":\"up\",\"args\":[{\"_binary\":\"AQID\"}]}", 1 },
    { "53-/f,4[\"up\",{\"a\":[1,{\"num\":2,\"_placeholder\":true}],"
      "\"b\":{\"_placeholder\":true,\"num\":0}},{\"_placeholder\":true,"
      "\"num\":1},{\"_placeholder\":false,\"num\":0}]",
      "{\"name\":\"up\",\"args\":[{\"a\":[1,{\"_binary\":\"\"}],"
      "\"b\":{\"_binary\":\"AQID\"}},{\"_binary\":\"/w==\"},"
      "{\"_placeholder\":false,\"num\":0}],\"nsp\":\"/f\",\"id\":4}", 3 },
    { "61-2[{\"_placeholder\":true,\"num\":0},\"x\"]",
      "{\"id\":2,\"args\":[{\"_binary\":\"AQID\"},\"x\"]}", 1 },
    /* the first element is the name, never rewritten, never counted */
    { "52-[\"n\",{\"_placeholder\":true,\"num\":1}]",
      "{\"name\":\"n\",\"args\":[{\"_binary\":\"/w==\"}]}", 2 },
    /* a name spelt with escapes is the same name (as JSON.parse reads it) */
    { "51-[\"up\",{\"\\u005fplaceholder\":true,\"num\":0}]",
      "{\"name\":\"up\",\"args\":[{\"_binary\":\"AQID\"}]}", 1 },
    /* an attachment no placeholder names is dropped */
    { "51-[\"up\",1]", "{\"name\":\"up\",\"args\":[1]}", 1 },
    /* bad placeholders, or attachments that do not match */
    { "51-[\"up\",{\"_placeholder\":true,\"num\":1}]", NULL, 1 },
    { "51-[\"up\",{\"_placeholder\":true,\"num\":-1}]", NULL, 1 },
    { "51-[\"up\",{\"_placeholder\":true,\"num\":\"0\"}]", NULL, 1 },
    { "51-[\"up\",{\"_placeholder\":true,\"num\":0.5}]", NULL, 1 },
    { "51-[\"up\",{\"_placeholder\":true}]", NULL, 1 },
    { "51-[\"up\",{\"_placeholder\":true,\"num\":0}]", NULL, 0 },
    { "51-[\"up\",{\"_placeholder\":true,\"num\":0}]", NULL, 2 },
    { "2[\"x\"]", NULL, 1 },
    /* one attachment, one place: a repeated num would multiply the body */
    { "52-[\"up\",{\"_placeholder\":true,\"num\":0},"
      "{\"_placeholder\":true,\"num\":0}]", NULL, 2 },
    { "51-[\"up\",[{\"_placeholder\":true,\"num\":0}],"
      "{\"a\":{\"_placeholder\":true,\"num\":0}}]", NULL, 1 },
};

MK_TEST(node_body)
{
    size_t i;
    struct mk_buf out;

    mk_buf_init(&out);
    for (i = 0; i < sizeof(bcases) / sizeof(bcases[0]); i++) {
        const struct bcase *c = &bcases[i];
        struct sio_packet pk;
        int r;

        CHECK_EQ_INT(sio_packet_decode(c->in, strlen(c->in), &pk), 0);
        mk_buf_append_str(&out, "keep");
        r = sio_node_body(&out, &pk, atts, c->natt);
        if (c->body == NULL) {
            if (r != -1) {
                fprintf(stderr, "body case %zu: accepted\n", i);
            }
            CHECK_EQ_INT(r, -1);
            CHECK_EQ_MEM(out.data, out.len, "keep");
        } else {
            CHECK_EQ_INT(r, 0);
            CHECK(out.len >= 4 && memcmp(out.data, "keep", 4) == 0);
            CHECK_EQ_MEM(out.data + 4, out.len - 4, c->body);
            CHECK_EQ_INT(sio_json_check(out.data + 4, out.len - 4),
                         SIO_JSON_OBJECT);
        }
        out.len = 0;
    }
    mk_buf_release(&out);
}

MK_TEST(node_connect)
{
    struct mk_buf out;

    mk_buf_init(&out);
    CHECK_EQ_INT(sio_node_connect(&out, MK_PTR_LIT("/"), MK_PTR_NONE), 0);
    CHECK_EQ_MEM(out.data, out.len, "{}");
    out.len = 0;
    CHECK_EQ_INT(sio_node_connect(&out, MK_PTR_LIT("/chat"),
                                  MK_PTR_LIT("{\"token\":1}")), 0);
    CHECK_EQ_MEM(out.data, out.len, "{\"nsp\":\"/chat\",\"auth\":{\"token\":1}}");
    out.len = 0;
    CHECK_EQ_INT(sio_node_connect(&out, MK_PTR_LIT("/"),
                                  MK_PTR_LIT("{\"t\":\"x\"}")), 0);
    CHECK_EQ_MEM(out.data, out.len, "{\"auth\":{\"t\":\"x\"}}");
    out.len = 0;
    CHECK_EQ_INT(sio_node_nsp(&out, MK_PTR_LIT("/chat")), 0);
    CHECK_EQ_MEM(out.data, out.len, "{\"nsp\":\"/chat\"}");
    out.len = 0;
    CHECK_EQ_INT(sio_node_nsp(&out, MK_PTR_LIT("/")), 0);
    CHECK_EQ_MEM(out.data, out.len, "{}");
    /* a decoded CONNECT's payload is the auth */
    {
        struct sio_packet pk;

        CHECK_EQ_INT(sio_packet_decode("0/chat,{\"token\":\"abc\"}", 22, &pk),
                     0);
        out.len = 0;
        CHECK_EQ_INT(sio_node_connect(&out, pk.nsp, pk.data), 0);
        CHECK_EQ_MEM(out.data, out.len,
                     "{\"nsp\":\"/chat\",\"auth\":{\"token\":\"abc\"}}");
    }
    mk_buf_release(&out);
}

/* ---- node body -> client packet ---- */

struct ncase {
    const char *body;
    int ret;
    const char *nsp;
    const char *name, *args, *data, *message;   /* NULL: absent */
    int64_t id;
};

static const struct ncase ncases[] = {
    { "", 0, "/", NULL, NULL, NULL, NULL, -1 },
    { "{}", 0, "/", NULL, NULL, NULL, NULL, -1 },
    { " {\"name\":\"news\",\"args\":[\"x\"],\"nsp\":\"/chat\",\"id\":3} ", 0,
      "/chat", "\"news\"", "[\"x\"]", NULL, NULL, 3 },
    { "{\"nsp\":\"/ch\\u0061t\",\"name\":7,\"args\":\"JSON\"}", 0, "/chat",
      "7", "\"JSON\"", NULL, NULL, -1 },
    { "{\"nsp\":\"/chat\",\"message\":\"no\",\"data\":{\"a\":1},\"x\":[]}", 0,
      "/chat", NULL, NULL, "{\"a\":1}", "\"no\"", -1 },
    { "{\"id\":0,\"id\":9007199254740991}", 0, "/", NULL, NULL, NULL, NULL,
      9007199254740991LL },
    { "{\"nsp\":\"/a\",\"nsp\":\"/b\"}", 0, "/b", NULL, NULL, NULL, NULL, -1 },
    { "{\"args\":null,\"data\":null}", 0, "/", NULL, "null", "null", NULL,
      -1 },
    { "[]", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "x", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { " ", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{} x", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"nsp\":1}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"nsp\":\"chat\"}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"nsp\":\"\"}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"nsp\":\"/a,b\"}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"nsp\":\"/a\\u0000\"}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"id\":-1}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"id\":1.5}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"id\":\"1\"}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"id\":null}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"id\":9007199254740992}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"name\":null}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"name\":[\"a\"]}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"message\":1}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
    { "{\"name\":\"\\ud800\"}", -1, NULL, NULL, NULL, NULL, NULL, -1 },
};

static void check_span(struct mk_ptr p, const char *want)
{
    if (want == NULL) {
        CHECK(p.data == NULL && p.len == 0);
    } else {
        CHECK_EQ_MEM(p.data ? p.data : "", p.len, want);
    }
}

MK_TEST(node_parse)
{
    size_t i;

    for (i = 0; i < sizeof(ncases) / sizeof(ncases[0]); i++) {
        const struct ncase *c = &ncases[i];
        struct sio_node_msg m;
        int r = sio_node_parse(c->body, strlen(c->body), &m);

        if (r != c->ret) {
            fprintf(stderr, "parse case %zu: %d, want %d\n", i, r, c->ret);
        }
        CHECK_EQ_INT(r, c->ret);
        if (r != 0 || c->ret != 0) {
            continue;
        }
        CHECK_EQ_STR(m.nsp, c->nsp);
        CHECK_EQ_INT(m.nsp_len, strlen(c->nsp));
        check_span(m.name, c->name);
        check_span(m.args, c->args);
        check_span(m.data, c->data);
        check_span(m.message, c->message);
        CHECK_EQ_INT(m.has_id, c->id >= 0);
        if (c->id >= 0) {
            CHECK_EQ_INT(m.id, c->id);
        }
    }
    /* a namespace of SIO_NSP_MAX - 1 bytes fits, one more does not */
    {
        char body[SIO_NSP_MAX + 32];
        struct sio_node_msg m;
        int n = SIO_NSP_MAX - 1;

        memcpy(body, "{\"nsp\":\"/", 9);
        memset(body + 9, 'a', (size_t) n - 1);
        memcpy(body + 9 + n - 1, "\"}", 2);
        CHECK_EQ_INT(sio_node_parse(body, (size_t) n + 10, &m), 0);
        CHECK_EQ_INT(m.nsp_len, n);
        memset(body + 9, 'a', (size_t) n);
        memcpy(body + 9 + n, "\"}", 2);
        CHECK_EQ_INT(sio_node_parse(body, (size_t) n + 11, &m), -1);
    }
}

struct ecase {
    const char *body;
    int ack;                        /* sio_encode_ack, else _event */
    const char *text;               /* NULL: fails */
    const char *bin;
    size_t natt;
    size_t att_len[3];
};

static const struct ecase ecases[] = {
    { "{\"name\":\"news\",\"args\":[\"x\",{\"a\":1}]}", 0,
      "2[\"news\",\"x\",{\"a\":1}]", "", 0, { 0 } },
    { "{\"name\":\"news\",\"args\":[\"x\"],\"nsp\":\"/chat\",\"id\":3}", 0,
      "2/chat,3[\"news\",\"x\"]", "", 0, { 0 } },
    { "{\"name\":\"news\",\"args\":\"JSON\"}", 0, "2[\"news\",\"JSON\"]", "",
      0, { 0 } },
    { "{\"name\":\"news\"}", 0, "2[\"news\"]", "", 0, { 0 } },
    { "{\"name\":\"news\",\"args\":[ ]}", 0, "2[\"news\"]", "", 0, { 0 } },
    { "{\"name\":\"news\",\"args\":null}", 0, "2[\"news\",null]", "", 0,
      { 0 } },
    { "{\"name\":\"news\",\"args\":[[1,2]]}", 0, "2[\"news\",[1,2]]", "", 0,
      { 0 } },
    { "{\"name\":\"news\",\"args\":[1 , 2]}", 0, "2[\"news\",1 , 2]", "", 0,
      { 0 } },
    { "{\"name\":1,\"args\":[\"x\"]}", 0, "2[1,\"x\"]", "", 0, { 0 } },
    { "{\"name\":\"news\",\"nsp\":\"/\"}", 0, "2[\"news\"]", "", 0, { 0 } },
    { "{\"args\":[\"x\"]}", 0, NULL, "", 0, { 0 } },
    { "{\"name\":\"connect\"}", 0, NULL, "", 0, { 0 } },
    { "{\"name\":\"disconnect\",\"args\":[1]}", 0, NULL, "", 0, { 0 } },
    { "{\"name\":\"removeListener\"}", 0, NULL, "", 0, { 0 } },
    /* binary both ways: the count first, placeholders in order */
    { "{\"name\":\"file\",\"args\":[{\"_binary\":\"AQID\"},"
      "{\"x\":{\"_binary\":\"BA==\"}}]}", 0,
      "52-[\"file\",{\"_placeholder\":true,\"num\":0},"
      "{\"x\":{\"_placeholder\":true,\"num\":1}}]",
      "\x01\x02\x03\x04", 2, { 3, 1 } },
    { "{\"name\":\"f\",\"args\":{\"_binary\":\"\\/w==\"},\"nsp\":\"/b\","
      "\"id\":8}", 0, "51-/b,8[\"f\",{\"_placeholder\":true,\"num\":0}]",
      "\xff", 1, { 1 } },
    { "{\"name\":\"f\",\"args\":[{\"_binary\":\"\"},{\"_binary\":1}]}", 0,
      "51-[\"f\",{\"_placeholder\":true,\"num\":0},{\"_binary\":1}]", "", 1,
      { 0 } },
    { "{\"name\":\"f\",\"args\":[{\"_binary\":\"AQ=\"}]}", 0, NULL, "", 0,
      { 0 } },
    { "{\"name\":\"f\",\"args\":[{\"_binary\":\"A Q==\"}]}", 0, NULL, "", 0,
      { 0 } },
    { "{\"name\":\"f\",\"args\":[{\"_binary\":\"AR==\"}]}", 0, NULL, "", 0,
      { 0 } },
    { "{\"name\":\"f\",\"args\":[{\"\\u005fbinary\":\"AQID\"}]}", 0,
      "51-[\"f\",{\"_placeholder\":true,\"num\":0}]", "\x01\x02\x03", 1,
      { 3 } },
    { "{\"name\":\"f\",\"args\":[\"\\u00e9\",{\"binary\":\"AQID\"}]}", 0,
      "2[\"f\",\"\\u00e9\",{\"binary\":\"AQID\"}]", "", 0, { 0 } },
    /* acks */
    { "{\"id\":7,\"args\":[1,2]}", 1, "37[1,2]", "", 0, { 0 } },
    { "{\"id\":7}", 1, "37[]", "", 0, { 0 } },
    { "{\"id\":7,\"args\":\"x\"}", 1, "37[\"x\"]", "", 0, { 0 } },
    { "{\"id\":0,\"args\":[],\"nsp\":\"/chat\"}", 1, "3/chat,0[]", "", 0,
      { 0 } },
    { "{\"id\":2,\"nsp\":\"/c\",\"args\":[{\"_binary\":\"AQID\"}]}", 1,
      "61-/c,2[{\"_placeholder\":true,\"num\":0}]", "\x01\x02\x03", 1,
      { 3 } },
    { "{\"args\":[1]}", 1, NULL, "", 0, { 0 } },
};

MK_TEST(encode_event_ack)
{
    struct sio_out o;
    size_t i, k;

    sio_out_init(&o);
    for (i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
        const struct ecase *c = &ecases[i];
        struct sio_node_msg m;
        int r;

        CHECK_EQ_INT(sio_node_parse(c->body, strlen(c->body), &m), 0);
        r = c->ack ? sio_encode_ack(&o, &m) : sio_encode_event(&o, &m);
        if ((r == 0) != (c->text != NULL)) {
            fprintf(stderr, "encode case %zu: %d\n", i, r);
        }
        if (c->text == NULL) {
            CHECK_EQ_INT(r, -1);
            CHECK(o.text.len == 0 && o.bin.len == 0 && o.natt == 0);
            continue;
        }
        CHECK_EQ_INT(r, 0);
        CHECK_EQ_MEM(o.text.data, o.text.len, c->text);
        CHECK_EQ_MEM(o.bin.len ? o.bin.data : "", o.bin.len, c->bin);
        CHECK_EQ_INT(o.natt, c->natt);
        for (k = 0; k < c->natt && k < 3; k++) {
            CHECK_EQ_INT(o.att_len[k], c->att_len[k]);
        }
    }
    sio_out_release(&o);
}

/* SIO_ATTACHMENTS_MAX binaries go, one more does not. */
MK_TEST(encode_attachment_bound)
{
    struct sio_node_msg m;
    struct sio_out o;
    struct mk_buf b;
    int i;

    sio_out_init(&o);
    mk_buf_init(&b);
    mk_buf_append_str(&b, "{\"name\":\"m\",\"args\":[");
    for (i = 0; i < SIO_ATTACHMENTS_MAX; i++) {
        mk_buf_append_str(&b, i ? ",{\"_binary\":\"AQ==\"}"
                                : "{\"_binary\":\"AQ==\"}");
    }
    mk_buf_append_str(&b, "]}");
    CHECK_EQ_INT(sio_node_parse(b.data, b.len, &m), 0);
    CHECK_EQ_INT(sio_encode_event(&o, &m), 0);
    CHECK_EQ_INT(o.natt, SIO_ATTACHMENTS_MAX);
    CHECK_EQ_INT(o.bin.len, SIO_ATTACHMENTS_MAX);
    CHECK(o.text.len > 4 && memcmp(o.text.data, "510-", 4) == 0);
    b.len -= 2;
    mk_buf_append_str(&b, ",{\"_binary\":\"AQ==\"}]}");
    CHECK_EQ_INT(sio_node_parse(b.data, b.len, &m), 0);
    CHECK_EQ_INT(sio_encode_event(&o, &m), -1);
    mk_buf_release(&b);
    sio_out_release(&o);
}

MK_TEST(encode_message)
{
    struct sio_out o;

    sio_out_init(&o);
    CHECK_EQ_INT(sio_encode_message(&o, "hi \"there\"\n", 11, 0), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len,
                 "2[\"message\",\"hi \\\"there\\\"\\n\"]");
    CHECK_EQ_INT(sio_encode_message(&o, "", 0, 0), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "2[\"message\",\"\"]");
    CHECK_EQ_INT(sio_encode_message(&o, "a\xff", 2, 0), -1);
    CHECK_EQ_INT(o.text.len, 0);
    CHECK_EQ_INT(sio_encode_message(&o, "[1,2]", 5, 1), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "2[\"message\",[1,2]]");
    CHECK_EQ_INT(sio_encode_message(&o, " 5 ", 3, 1), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "2[\"message\",5]");
    CHECK_EQ_INT(sio_encode_message(&o, "{\"_binary\":\"AQ==\"}", 18, 1), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len,
                 "51-[\"message\",{\"_placeholder\":true,\"num\":0}]");
    CHECK_EQ_INT(o.natt, 1);
    CHECK_EQ_INT(sio_encode_message(&o, "[1,", 3, 1), -1);
    CHECK_EQ_INT(sio_encode_message(&o, "", 0, 1), -1);
    CHECK(o.text.len == 0 && o.natt == 0);
    sio_out_release(&o);
}

MK_TEST(encode_connect)
{
    struct sio_out o;

    sio_out_init(&o);
    CHECK_EQ_INT(sio_encode_connect(&o, "/", 1, "abc", MK_PTR_NONE), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "0{\"sid\":\"abc\"}");
    CHECK_EQ_INT(sio_encode_connect(&o, "/chat", 5, "abc",
                 MK_PTR_LIT("{\"x\":1, \"sid\":\"evil\",\"y\":[2]}")), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len,
                 "0/chat,{\"sid\":\"abc\",\"x\":1,\"y\":[2]}");
    CHECK_EQ_INT(sio_encode_connect(&o, "/", 1, "abc", MK_PTR_LIT("[1]")), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "0{\"sid\":\"abc\"}");

    CHECK_EQ_INT(sio_encode_connect_error(&o, "/chat", 5,
                 MK_PTR_LIT("\"Invalid namespace\""), MK_PTR_NONE), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len,
                 "4/chat,{\"message\":\"Invalid namespace\"}");
    CHECK_EQ_INT(sio_encode_connect_error(&o, "/", 1, MK_PTR_LIT("\"no\""),
                 MK_PTR_LIT("{\"a\":1}")), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len,
                 "4{\"message\":\"no\",\"data\":{\"a\":1}}");
    CHECK_EQ_INT(sio_encode_connect_error(&o, "/", 1, MK_PTR_NONE,
                 MK_PTR_LIT("null")), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "4{\"data\":null}");

    CHECK_EQ_INT(sio_encode_disconnect(&o, "/chat", 5), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "1/chat,");
    CHECK_EQ_INT(sio_encode_disconnect(&o, "/", 1), 0);
    CHECK_EQ_MEM(o.text.data, o.text.len, "1");
    sio_out_release(&o);
}

/* Node -> packet -> node gives the same message, attachments included. */
MK_TEST(round_trip)
{
    static const char *bodies[] = {
        "{\"name\":\"a\",\"args\":[1,\"x\",{\"k\":[null,true]}]}",
        ("{\"name\":\"a\",\"args\":[{\"_binary\":\"AQID\"},"
         "[{\"_binary\":\"/w==\"}]],\"nsp\":\"/n\",\"id\":42}"),
        "{\"name\":5,\"args\":[]}",
    };
    struct sio_out o;
    struct mk_buf back;
    size_t i, k, off;

    sio_out_init(&o);
    mk_buf_init(&back);
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct mk_ptr att[SIO_ATTACHMENTS_MAX];
        struct sio_node_msg m;
        struct sio_packet pk;

        CHECK_EQ_INT(sio_node_parse(bodies[i], strlen(bodies[i]), &m), 0);
        CHECK_EQ_INT(sio_encode_event(&o, &m), 0);
        CHECK_EQ_INT(sio_packet_decode(o.text.data, o.text.len, &pk), 0);
        for (k = 0, off = 0; k < o.natt; k++) {
            att[k] = mk_ptr_make(o.bin.data + off, o.att_len[k]);
            off += o.att_len[k];
        }
        back.len = 0;
        CHECK_EQ_INT(sio_node_body(&back, &pk, att, o.natt), 0);
        CHECK_EQ_MEM(back.data, back.len, bodies[i]);
    }
    mk_buf_release(&back);
    sio_out_release(&o);
}

int main(void)
{
    RUN(decode_table);
    RUN(decode_nsp_bound);
    RUN(decode_depth);
    RUN(node_body);
    RUN(node_connect);
    RUN(node_parse);
    RUN(encode_event_ack);
    RUN(encode_attachment_bound);
    RUN(encode_message);
    RUN(encode_connect);
    RUN(round_trip);
    return mk_test_done();
}
