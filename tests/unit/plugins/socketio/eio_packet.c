/* Unit tests: Engine.IO v4 packets (polling payloads joined by 0x1e with
 * "b" + base64 binary, WebSocket frames, the OPEN packet's JSON). */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_test.h"
#include "plugins/socketio/eio_packet.c"

/* What a payload delivered, flattened: "<type>[b]:<data>|" per packet. */
struct seen {
    struct mk_buf log;
    int calls;
    int stop_at;                    /* return 7 from this call (1-based) */
};

static int on_packet(void *ctx, const struct eio_packet *pk)
{
    struct seen *s = ctx;

    s->calls++;
    mk_buf_printf(&s->log, "%d%s:", (int) pk->type, pk->binary ? "b" : "");
    mk_buf_append(&s->log, pk->data, pk->len);
    mk_buf_append(&s->log, "|", 1);
    return s->calls == s->stop_at ? 7 : 0;
}

struct pcase {
    const char *in;
    size_t len;
    int ret;
    const char *log;                /* what fn saw */
};

#define P(s, r, l) { s, sizeof(s) - 1, r, l }

static const struct pcase payloads[] = {
    P("4hello", 0, "4:hello|"),
    P("4", 0, "4:|"),
    P("4hello\x1e" "4world", 0, "4:hello|4:world|"),
    P("3\x1e" "1", 0, "3:|1:|"),
    P("2\x1e" "5\x1e" "6", 0, "2:|5:|6:|"),
    P("440/chat,{\"token\":1}", 0, "4:40/chat,{\"token\":1}|"),
    P("bAQID", 0, "4b:\x01\x02\x03|"),
    P("b", 0, "4b:|"),
    P("bAQ==", 0, "4b:\x01|"),
    P("451-[\"up\",{\"_placeholder\":true,\"num\":0}]\x1e" "bAQIDBA==", 0,
      "4:51-[\"up\",{\"_placeholder\":true,\"num\":0}]|4b:\x01\x02\x03\x04|"),
    P("bAQIDBAUG\x1e" "bBw==\x1e" "4x", 0,
      "4b:\x01\x02\x03\x04\x05\x06|4b:\x07|4:x|"),
    P("4\xff\xfe", 0, "4:\xff\xfe|"),         /* bytes: sio's to check */
    /* malformed: nothing delivered */
    P("", -1, ""),
    P("\x1e", -1, ""),
    P("4a\x1e", -1, ""),
    P("\x1e" "4a", -1, ""),
    P("4a\x1e\x1e" "4b", -1, ""),
    P("0{\"sid\":\"x\"}", -1, ""),               /* OPEN: the server's */
    P("4a\x1e" "0", -1, ""),
    P("7", -1, ""),
    P("4a\x1e" "9", -1, ""),
    P("x", -1, ""),
    P(" 4", -1, ""),
    P("B", -1, ""),
    P("bAQI=", 0, "4b:\x01\x02|"),
    P("bAQ", -1, ""),
    P("bAQ=", -1, ""),
    P("bAR==", -1, ""),                          /* pad bits not zero */
    P("bAQ==x", -1, ""),
    P("b!!!!", -1, ""),
    P("bAQ ID", -1, ""),
    P("bAQ==\x1e" "bA", -1, ""),
    P("4a\x1e" "bAQ=\x1e" "4b", -1, ""),
};

MK_TEST(payload_decode)
{
    size_t i;

    for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        const struct pcase *c = &payloads[i];
        struct seen s = { .stop_at = 0 };
        int r;

        mk_buf_init(&s.log);
        r = eio_payload_decode(c->in, c->len, on_packet, &s);
        if (r != c->ret) {
            fprintf(stderr, "payload case %zu: %d, want %d\n", i, r, c->ret);
        }
        CHECK_EQ_INT(r, c->ret);
        CHECK_EQ_MEM(s.log.data ? s.log.data : "", s.log.len, c->log);
        mk_buf_release(&s.log);
    }
    CHECK_EQ_INT(eio_payload_decode(NULL, 0, on_packet, NULL), -1);
}

MK_TEST(payload_stop)
{
    static const char in[] = "4a\x1e" "bAQ==\x1e" "4c";
    struct seen s = { .stop_at = 2 };

    mk_buf_init(&s.log);
    CHECK_EQ_INT(eio_payload_decode(in, sizeof(in) - 1, on_packet, &s), 7);
    CHECK_EQ_INT(s.calls, 2);
    CHECK_EQ_MEM(s.log.data, s.log.len, "4:a|4b:\x01|");
    mk_buf_release(&s.log);
}

MK_TEST(frame_decode)
{
    struct eio_packet pk;

    CHECK_EQ_INT(eio_frame_decode("2probe", 6, 0, &pk), 0);
    CHECK(pk.type == EIO_PING && !pk.binary);
    CHECK_EQ_MEM(pk.data, pk.len, "probe");
    CHECK_EQ_INT(eio_frame_decode("3probe", 6, 0, &pk), 0);
    CHECK(pk.type == EIO_PONG);
    CHECK_EQ_INT(eio_frame_decode("5", 1, 0, &pk), 0);
    CHECK(pk.type == EIO_UPGRADE && pk.len == 0);
    CHECK_EQ_INT(eio_frame_decode("42[\"chat\",\"hi\"]", 15, 0, &pk), 0);
    CHECK(pk.type == EIO_MESSAGE && !pk.binary);
    CHECK_EQ_MEM(pk.data, pk.len, "2[\"chat\",\"hi\"]");
    CHECK_EQ_INT(eio_frame_decode("1", 1, 0, &pk), 0);
    CHECK(pk.type == EIO_CLOSE);
    CHECK_EQ_INT(eio_frame_decode("6", 1, 0, &pk), 0);
    CHECK(pk.type == EIO_NOOP);
    CHECK_EQ_INT(eio_frame_decode("", 0, 0, &pk), -1);
    CHECK_EQ_INT(eio_frame_decode("7", 1, 0, &pk), -1);
    CHECK_EQ_INT(eio_frame_decode("x1", 2, 0, &pk), -1);
    /* over WebSocket binary travels in binary frames, not as "b" text */
    CHECK_EQ_INT(eio_frame_decode("bAQ==", 5, 0, &pk), -1);
    CHECK_EQ_INT(eio_frame_decode("\x01\x02\x03", 3, 1, &pk), 0);
    CHECK(pk.type == EIO_MESSAGE && pk.binary);
    CHECK_EQ_MEM(pk.data, pk.len, "\x01\x02\x03");
    CHECK_EQ_INT(eio_frame_decode("4x", 2, 1, &pk), 0);   /* no type digit */
    CHECK(pk.binary && pk.len == 2);
    CHECK_EQ_INT(eio_frame_decode("", 0, 1, &pk), 0);
    CHECK(pk.binary && pk.len == 0);
}

MK_TEST(payload_append)
{
    struct eio_packet pk[] = {
        { EIO_MESSAGE, 0, "2[\"chat\",\"hi\"]", 14 },
        { EIO_MESSAGE, 1, "\x01\x02\x03\x04", 4 },
        { EIO_NOOP, 0, NULL, 0 },
        { EIO_PING, 0, NULL, 0 },
        { EIO_MESSAGE, 1, "", 0 },
        { EIO_CLOSE, 0, NULL, 0 },
    };
    struct seen s = { .stop_at = 0 };
    struct mk_buf b;
    size_t i;

    mk_buf_init(&b);
    CHECK_EQ_INT(eio_payload_append(&b, &pk[0]), 0);
    CHECK_EQ_MEM(b.data, b.len, "42[\"chat\",\"hi\"]");
    for (i = 1; i < sizeof(pk) / sizeof(pk[0]); i++) {
        CHECK_EQ_INT(eio_payload_append(&b, &pk[i]), 0);
    }
    CHECK_EQ_MEM(b.data, b.len,
                 "42[\"chat\",\"hi\"]\x1e" "bAQIDBA==\x1e" "6\x1e" "2\x1e"
                 "b\x1e" "1");
    /* and back (a client would not send 2 or 6, but the codec reads them) */
    mk_buf_init(&s.log);
    CHECK_EQ_INT(eio_payload_decode(b.data, b.len, on_packet, &s), 0);
    CHECK_EQ_MEM(s.log.data, s.log.len,
                 "4:2[\"chat\",\"hi\"]|4b:\x01\x02\x03\x04|6:|2:|4b:|1:|");
    mk_buf_release(&s.log);
    mk_buf_release(&b);

    /* a longer binary packet round-trips byte for byte */
    {
        char bin[1000];
        struct eio_packet big = { EIO_MESSAGE, 1, bin, sizeof(bin) };

        for (i = 0; i < sizeof(bin); i++) {
            bin[i] = (char) (i * 7 + 3);
        }
        mk_buf_init(&b);
        mk_buf_init(&s.log);
        s.calls = 0;
        CHECK_EQ_INT(eio_payload_append(&b, &big), 0);
        CHECK_EQ_INT(b.len, 1 + 1336);
        CHECK_EQ_INT(eio_payload_decode(b.data, b.len, on_packet, &s), 0);
        CHECK_EQ_INT(s.log.len, 3 + sizeof(bin) + 1);
        CHECK(s.log.len == 3 + sizeof(bin) + 1 &&
              memcmp(s.log.data + 3, bin, sizeof(bin)) == 0);
        mk_buf_release(&s.log);
        mk_buf_release(&b);
    }
}

MK_TEST(open_json)
{
    static const char want[] =
        "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
        "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
    char out[256];
    long n;

    n = eio_open_json(out, sizeof(out), "lv_VI97HAXpY6yYWAAAC", 1, 25000,
                      20000, 1000000);
    CHECK_EQ_INT(n, sizeof(want) - 1);
    CHECK_EQ_STR(out, want);
    CHECK_EQ_INT(eio_open_json(out, sizeof(want), "lv_VI97HAXpY6yYWAAAC", 1,
                               25000, 20000, 1000000), sizeof(want) - 1);
    CHECK_EQ_INT(eio_open_json(out, sizeof(want) - 1, "lv_VI97HAXpY6yYWAAAC",
                               1, 25000, 20000, 1000000), -1);
    n = eio_open_json(out, sizeof(out), "abc", 0, 1, 2, 3);
    CHECK_EQ_STR(out, "{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":1,"
                      "\"pingTimeout\":2,\"maxPayload\":3}");
    CHECK_EQ_INT(n, strlen(out));
    CHECK_EQ_INT(eio_open_json(out, sizeof(out), "a\"b", 0, 1, 2, 3), -1);
    CHECK_EQ_INT(eio_open_json(out, sizeof(out), "a\\b", 0, 1, 2, 3), -1);
    CHECK_EQ_INT(eio_open_json(out, sizeof(out), "a\nb", 0, 1, 2, 3), -1);
}

int main(void)
{
    RUN(payload_decode);
    RUN(payload_stop);
    RUN(frame_decode);
    RUN(payload_append);
    RUN(open_json);
    return mk_test_done();
}
