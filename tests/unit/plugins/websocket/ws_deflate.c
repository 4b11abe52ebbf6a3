/* Unit tests: permessage-deflate (plugins/websocket/ws_deflate.c):
 * negotiation against RFC 7692's rules and examples, round trips through
 * our streams and through zlib used the way a browser does, the output
 * limit, corrupt input, and the memory the module holds. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "mk_test.h"
#include "plugins/websocket/ws_deflate.c"

#define MIB ((size_t) 1 << 20)

static const struct ws_deflate_policy pol15 = { 15, 8, 1 };

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static uint32_t rng(void)
{
    return (uint32_t) (mk_test_rng() >> 32);
}

static void fill_random(uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t) rng();
    }
}

/* Text-like: words from a small vocabulary, so matches at all distances. */
static void fill_text(uint8_t *p, size_t n)
{
    static const char *const words[] = {
        "websocket ", "frame ", "deflate ", "window ", "{\"id\":", "42,",
        "\"msg\":\"hello\"}", "tremolo ", "monkey ", "\n", "context ",
    };
    size_t i = 0, wl;
    const char *w;

    while (i < n) {
        w = words[rng() % (sizeof(words) / sizeof(words[0]))];
        wl = strlen(w);
        if (wl > n - i) {
            wl = n - i;
        }
        memcpy(p + i, w, wl);
        i += wl;
    }
}

static struct ws_deflate_params params(int snct, int cnct, int sbits,
                                       int cbits)
{
    struct ws_deflate_params p;

    p.server_no_context_takeover = snct;
    p.client_no_context_takeover = cnct;
    p.server_max_window_bits = sbits;
    p.client_max_window_bits = cbits;
    return p;
}

/* The peer's view: its outgoing direction is our incoming one. The module
 * only knows "compress with server_*, inflate with client_*", so a mirror
 * object plays the client in round trips. */
static struct ws_deflate_params mirror(struct ws_deflate_params p)
{
    return params(p.client_no_context_takeover, p.server_no_context_takeover,
                  p.client_max_window_bits, p.server_max_window_bits);
}

static int nego(const char *value, const struct ws_deflate_policy *pol,
                struct ws_deflate_params *out, char *resp)
{
    return ws_deflate_negotiate(value, strlen(value), pol, out, resp,
                                WS_DEFLATE_RESP_MAX);
}

/* Compresses like a browser: raw zlib, Z_SYNC_FLUSH, tail stripped. */
static int zlib_client_deflate(z_stream *z, const uint8_t *in, size_t len,
                               struct mk_buf *out)
{
    size_t room;

    z->next_in = (Bytef *) in;
    z->avail_in = (uInt) len;
    do {
        if (mk_buf_reserve(out, 4096) != 0) {
            return -1;
        }
        room = out->size - out->len;
        z->next_out = (Bytef *) out->data + out->len;
        z->avail_out = (uInt) room;
        if (deflate(z, Z_SYNC_FLUSH) == Z_STREAM_ERROR) {
            return -1;
        }
        out->len += room - z->avail_out;
    } while (z->avail_out == 0);
    if (out->len < 4 || memcmp(out->data + out->len - 4, "\0\0\xff\xff", 4)) {
        return -1;
    }
    out->len -= 4;
    return 0;
}

/* Inflates like a browser: raw zlib with the tail put back. */
static int zlib_client_inflate(z_stream *z, const uint8_t *in, size_t len,
                               struct mk_buf *out)
{
    struct mk_buf src;
    size_t room;
    int ret;

    mk_buf_init(&src);
    mk_buf_append(&src, in, len);
    mk_buf_append(&src, "\0\0\xff\xff", 4);
    z->next_in = (Bytef *) src.data;
    z->avail_in = (uInt) src.len;
    do {
        if (mk_buf_reserve(out, 4096) != 0) {
            ret = Z_MEM_ERROR;
            break;
        }
        room = out->size - out->len;
        z->next_out = (Bytef *) out->data + out->len;
        z->avail_out = (uInt) room;
        ret = inflate(z, Z_SYNC_FLUSH);
        out->len += room - z->avail_out;
    } while (ret == Z_OK && (z->avail_out == 0 || z->avail_in > 0));
    mk_buf_release(&src);
    return (ret == Z_OK || ret == Z_BUF_ERROR) && z->avail_in == 0 ? 0 : -1;
}

static long max_rss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* ------------------------------------------------------------------ */
/* negotiation                                                         */
/* ------------------------------------------------------------------ */

MK_TEST(negotiate_rfc_examples)
{
    struct ws_deflate_params p;
    char resp[WS_DEFLATE_RESP_MAX];
    const struct ws_deflate_policy pol10 = { 10, 8, 1 };

    /* 7.1.3: the plain offer, accepted as is. */
    CHECK_EQ_INT(nego("permessage-deflate", &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate");
    CHECK_EQ_INT(p.server_no_context_takeover, 0);
    CHECK_EQ_INT(p.client_no_context_takeover, 0);
    CHECK_EQ_INT(p.server_max_window_bits, 15);
    CHECK_EQ_INT(p.client_max_window_bits, 15);

    /* 7.1.3: two offers, the first asking for a 1 KiB server window. */
    CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits; "
                      "server_max_window_bits=10, permessage-deflate; "
                      "client_max_window_bits", &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=10");
    CHECK_EQ_INT(p.server_max_window_bits, 10);
    CHECK_EQ_INT(p.client_max_window_bits, 15);

    /* 7.1.3: server_max_window_bits=10 offered first, plain as fallback. */
    CHECK_EQ_INT(nego("permessage-deflate; server_max_window_bits=10, "
                      "permessage-deflate", &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=10");

    /* 7.1.3: the server narrows the client's window it was told about. */
    CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits",
                      &pol10, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=10; "
                       "client_max_window_bits=10");
    CHECK_EQ_INT(p.server_max_window_bits, 10);
    CHECK_EQ_INT(p.client_max_window_bits, 10);

    /* 7.1.1.1: server_no_context_takeover is accepted by echoing it. */
    CHECK_EQ_INT(nego("permessage-deflate; server_no_context_takeover",
                      &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_no_context_takeover");
    CHECK_EQ_INT(p.server_no_context_takeover, 1);
    CHECK_EQ_INT(p.client_no_context_takeover, 0);

    /* 7.1.1.2: the client's hint is taken (frees our inflater). */
    CHECK_EQ_INT(nego("permessage-deflate; client_no_context_takeover",
                      &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; client_no_context_takeover");
    CHECK_EQ_INT(p.client_no_context_takeover, 1);

    /* What Chrome and Firefox send. */
    CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits",
                      &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate");
}

MK_TEST(negotiate_first_acceptable_offer)
{
    struct ws_deflate_params p;
    char resp[WS_DEFLATE_RESP_MAX];
    const struct ws_deflate_policy pol12 = { 12, 8, 1 };

    CHECK_EQ_INT(nego("permessage-deflate; foo=1, permessage-deflate; "
                      "server_max_window_bits=12", &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=12");
    /* The first cannot be held within the policy's 12 bits: no
     * client_max_window_bits means the client may use 15. */
    CHECK_EQ_INT(nego("permessage-deflate, permessage-deflate; "
                      "client_max_window_bits", &pol12, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=12; "
                       "client_max_window_bits=12");
    CHECK_EQ_INT(nego("permessage-deflate", &pol12, &p, resp), 0);
    CHECK_EQ_STR(resp, "");
    /* Only the first acceptable one counts. */
    CHECK_EQ_INT(nego("permessage-deflate; server_max_window_bits=9, "
                      "permessage-deflate; server_max_window_bits=11",
                      &pol15, &p, resp), 1);
    CHECK_EQ_INT(p.server_max_window_bits, 9);
}

MK_TEST(negotiate_declines)
{
    static const char *const declined[] = {
        "permessage-deflate; foo",                          /* unknown */
        "permessage-deflate; foo=\"x\"",
        "permessage-deflate; Server_no_context_takeover",   /* exact names */
        "permessage-deflate; server_no_context_takeover; "
            "server_no_context_takeover",                   /* duplicates */
        "permessage-deflate; client_max_window_bits; "
            "client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; "
            "server_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=7",     /* range */
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; server_max_window_bits=08",    /* leading 0 */
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=\"\"",
        "permessage-deflate; server_max_window_bits=\"1 0\"",
        "permessage-deflate; server_max_window_bits",       /* value needed */
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=-9",
        "permessage-deflate; server_no_context_takeover=1", /* no value */
        "permessage-deflate; client_no_context_takeover=\"\"",
        "x-webkit-deflate-frame; max_window_bits=10",       /* other ext */
        "permessage-deflate-x, Permessage-Deflate",
        "foo, bar; baz=\"q\\\"uoted\"",
    };
    struct ws_deflate_params p;
    char resp[WS_DEFLATE_RESP_MAX];
    size_t i;

    for (i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
        memset(&p, 0x55, sizeof(p));
        strcpy(resp, "junk");
        if (nego(declined[i], &pol15, &p, resp) != 0) {
            fprintf(stderr, "not declined: %s\n", declined[i]);
            CHECK(0);
            continue;
        }
        CHECK_EQ_STR(resp, "");
        CHECK_EQ_INT(p.server_max_window_bits, 0);
    }
}

MK_TEST(negotiate_window_values)
{
    struct ws_deflate_params p;
    char resp[WS_DEFLATE_RESP_MAX];
    const struct ws_deflate_policy pol12 = { 12, 8, 1 };
    const struct ws_deflate_policy pol11 = { 11, 8, 1 };

    /* A quoted "10" is the token 10 (RFC 6455 9.1), escapes included. */
    CHECK_EQ_INT(nego("permessage-deflate; server_max_window_bits=\"10\"",
                      &pol15, &p, resp), 1);
    CHECK_EQ_INT(p.server_max_window_bits, 10);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=10");
    CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits=\"1\\3\"",
                      &pol15, &p, resp), 1);
    CHECK_EQ_INT(p.client_max_window_bits, 13);
    CHECK_EQ_STR(resp, "permessage-deflate; client_max_window_bits=13");

    /* 8 is valid on both sides (compressed with 9, see the .c). */
    CHECK_EQ_INT(nego("permessage-deflate; server_max_window_bits=8; "
                      "client_max_window_bits=8", &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=8; "
                       "client_max_window_bits=8");
    CHECK_EQ_INT(p.server_max_window_bits, 8);
    CHECK_EQ_INT(p.client_max_window_bits, 8);

    /* client_max_window_bits without a value: we choose. */
    CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits",
                      &pol11, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=11; "
                       "client_max_window_bits=11");
    /* A client value above the policy is narrowed, below it kept. */
    CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits=14",
                      &pol12, &p, resp), 1);
    CHECK_EQ_INT(p.client_max_window_bits, 12);
    CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits=9",
                      &pol12, &p, resp), 1);
    CHECK_EQ_INT(p.client_max_window_bits, 9);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=12; "
                       "client_max_window_bits=9");
    /* server_max_window_bits below the policy wins, above is narrowed. */
    CHECK_EQ_INT(nego("permessage-deflate; server_max_window_bits=9; "
                      "client_max_window_bits", &pol12, &p, resp), 1);
    CHECK_EQ_INT(p.server_max_window_bits, 9);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=9; "
                       "client_max_window_bits=12");
    CHECK_EQ_INT(nego("permessage-deflate; server_max_window_bits=14; "
                      "client_max_window_bits", &pol12, &p, resp), 1);
    CHECK_EQ_INT(p.server_max_window_bits, 12);
    /* An explicit 15 is answered, as acceptance requires (7.1.2.1). */
    CHECK_EQ_INT(nego("permessage-deflate; server_max_window_bits=15",
                      &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_max_window_bits=15");
}

MK_TEST(negotiate_policy)
{
    struct ws_deflate_params p;
    char resp[WS_DEFLATE_RESP_MAX];
    const struct ws_deflate_policy no_ct = { 15, 8, 0 };
    const struct ws_deflate_policy bad_lo = { 8, 8, 1 };
    const struct ws_deflate_policy bad_hi = { 16, 8, 1 };

    CHECK_EQ_INT(nego("permessage-deflate", &no_ct, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_no_context_takeover; "
                       "client_no_context_takeover");
    CHECK_EQ_INT(p.server_no_context_takeover, 1);
    CHECK_EQ_INT(p.client_no_context_takeover, 1);
    CHECK_EQ_INT(nego("permessage-deflate", &bad_lo, &p, resp), 0);
    CHECK_EQ_INT(nego("permessage-deflate", &bad_hi, &p, resp), 0);
    /* Syntax is still checked with a policy that accepts nothing. */
    CHECK_EQ_INT(nego("permessage-deflate;", &bad_lo, &p, resp), -1);
}

MK_TEST(negotiate_syntax)
{
    static const char *const garbage[] = {
        "permessage-deflate;", ";", "=", "permessage-deflate x",
        "permessage-deflate; a=", "permessage-deflate; a=\"open",
        "permessage-deflate; a=\"bad\\", "permessage-deflate; a=b=c",
        "permessage-deflate; =1", "\x01", "permessage-deflate\r\n",
        "permessage-deflate; a=\"ctl\x01\"", "\"permessage-deflate\"",
        /* an error after an accepted offer still fails the header */
        "permessage-deflate, @@",
        "permessage-deflate; server_max_window_bits=10, x;",
    };
    struct ws_deflate_params p;
    char resp[WS_DEFLATE_RESP_MAX];
    size_t i;

    for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        strcpy(resp, "junk");
        if (nego(garbage[i], &pol15, &p, resp) != -1) {
            fprintf(stderr, "parsed: %s\n", garbage[i]);
            CHECK(0);
            continue;
        }
        CHECK_EQ_STR(resp, "");
        CHECK_EQ_INT(p.server_max_window_bits, 0);
    }
    /* Embedded NUL: the length counts, not the terminator. */
    CHECK_EQ_INT(ws_deflate_negotiate("permessage-deflate\0", 19, &pol15, &p,
                                      resp, sizeof(resp)), -1);
    CHECK_EQ_INT(ws_deflate_negotiate("permessage-deflate, x", 18, &pol15,
                                      &p, resp, sizeof(resp)), 1);

    /* Empty values and empty list elements are not errors. */
    CHECK_EQ_INT(nego("", &pol15, &p, resp), 0);
    CHECK_EQ_INT(nego(" \t ", &pol15, &p, resp), 0);
    CHECK_EQ_INT(nego(", ,", &pol15, &p, resp), 0);
    CHECK_EQ_INT(nego(",permessage-deflate,", &pol15, &p, resp), 1);
    /* Whitespace around every separator. */
    CHECK_EQ_INT(nego("foo ; bar = \"b a z\" ,\tpermessage-deflate ;"
                      "\tclient_max_window_bits = 10 ; "
                      "server_no_context_takeover , x", &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, "permessage-deflate; server_no_context_takeover; "
                       "client_max_window_bits=10");
}

MK_TEST(negotiate_response_exact)
{
    struct ws_deflate_params p, p2;
    char resp[WS_DEFLATE_RESP_MAX], resp2[WS_DEFLATE_RESP_MAX];
    const char *all = "permessage-deflate; client_max_window_bits=9; "
                      "server_max_window_bits=8; client_no_context_takeover; "
                      "server_no_context_takeover";
    const char *want = "permessage-deflate; server_no_context_takeover; "
                       "client_no_context_takeover; server_max_window_bits=8; "
                       "client_max_window_bits=9";

    CHECK_EQ_INT(nego(all, &pol15, &p, resp), 1);
    CHECK_EQ_STR(resp, want);
    /* The response read back as an offer agrees to the same. */
    CHECK_EQ_INT(nego(resp, &pol15, &p2, resp2), 1);
    CHECK_EQ_STR(resp2, resp);
    CHECK(memcmp(&p, &p2, sizeof(p)) == 0);
    /* Exactly the string's size fits; one byte less declines. */
    CHECK_EQ_INT(ws_deflate_negotiate(all, strlen(all), &pol15, &p, resp,
                                      strlen(want) + 1), 1);
    CHECK_EQ_INT(ws_deflate_negotiate(all, strlen(all), &pol15, &p, resp,
                                      strlen(want)), 0);
    CHECK_EQ_STR(resp, "");
    /* The longest response fits WS_DEFLATE_RESP_MAX. */
    CHECK_EQ_INT(nego("permessage-deflate; server_no_context_takeover; "
                      "client_no_context_takeover; server_max_window_bits=15; "
                      "client_max_window_bits=14", &pol15, &p, resp), 1);
    CHECK(strlen(resp) < WS_DEFLATE_RESP_MAX);
}

/* ------------------------------------------------------------------ */
/* streams                                                             */
/* ------------------------------------------------------------------ */

/* Server compresses, the mirror inflates, and back. */
static void round_trip(const struct ws_deflate_params *p, int mem_level,
                       const uint8_t *msg, size_t len, int messages)
{
    struct ws_deflate_params mp = mirror(*p);
    struct ws_deflate *srv = ws_deflate_create(p, mem_level);
    struct ws_deflate *cli = ws_deflate_create(&mp, mem_level);
    struct mk_buf z, plain;
    int i;

    mk_buf_init(&z);
    mk_buf_init(&plain);
    for (i = 0; i < messages; i++) {
        z.len = plain.len = 0;
        CHECK_EQ_INT(ws_deflate_deflate(srv, msg, len, &z), 0);
        CHECK_EQ_INT(ws_deflate_inflate(cli, (uint8_t *) z.data, z.len,
                                        &plain, len), 0);
        CHECK(plain.len == len && memcmp(plain.data, msg, len) == 0);
        z.len = plain.len = 0;
        CHECK_EQ_INT(ws_deflate_deflate(cli, msg, len, &z), 0);
        CHECK_EQ_INT(ws_deflate_inflate(srv, (uint8_t *) z.data, z.len,
                                        &plain, len), 0);
        CHECK(plain.len == len && memcmp(plain.data, msg, len) == 0);
    }
    mk_buf_release(&z);
    mk_buf_release(&plain);
    ws_deflate_destroy(srv);
    ws_deflate_destroy(cli);
}

MK_TEST(round_trips)
{
    size_t sizes[] = { 0, 1, 5, 300, 70000, 300000 };
    struct ws_deflate_params ps[] = {
        params(0, 0, 15, 15), params(1, 1, 15, 15), params(0, 1, 9, 12),
        params(1, 0, 8, 8),
    };
    uint8_t *buf = malloc(300000);
    size_t i, j;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (j = 0; j < sizeof(ps) / sizeof(ps[0]); j++) {
            fill_random(buf, sizes[i]);
            round_trip(&ps[j], 8, buf, sizes[i], 2);
            fill_text(buf, sizes[i]);
            round_trip(&ps[j], 1 + (int) j * 2, buf, sizes[i], 3);
            memset(buf, 'a', sizes[i]);
            round_trip(&ps[j], 9, buf, sizes[i], 2);
        }
    }
    free(buf);
}

MK_TEST(rfc_payload_examples)
{
    struct ws_deflate_params p = params(0, 0, 15, 15);
    struct ws_deflate *d = ws_deflate_create(&p, 8);
    struct mk_buf out;
    /* RFC 7692 7.2.3.1 .. 7.2.3.5 */
    static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
    static const uint8_t again[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
    static const uint8_t stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                      0x65, 0x6c, 0x6c, 0x6f, 0x00 };
    static const uint8_t final1[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                      0x00 };
    static const uint8_t final2[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                      0x00, 0x00 };
    static const uint8_t two[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                   0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00 };

    mk_buf_init(&out);
    CHECK_EQ_INT(ws_deflate_inflate(d, hello, sizeof(hello), &out, 100), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello");
    out.len = 0;
    /* Sharing the window with the previous message. */
    CHECK_EQ_INT(ws_deflate_inflate(d, again, sizeof(again), &out, 100), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello");
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_inflate(d, stored, sizeof(stored), &out, 100), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello");
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_inflate(d, final1, sizeof(final1), &out, 100), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello");
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_inflate(d, final2, sizeof(final2), &out, 100), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello");
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_inflate(d, two, sizeof(two), &out, 100), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello");
    out.len = 0;
    /* 7.2.3.1's fragmented form: two frames of one message. */
    CHECK_EQ_INT(ws_deflate_inflate_piece(d, hello, 3, 0, &out, 100), 0);
    CHECK_EQ_INT(ws_deflate_inflate_piece(d, hello + 3, 4, 1, &out, 100), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello");
    out.len = 0;
    /* An empty message is the single byte 00 (7.2.3.6). */
    CHECK_EQ_INT(ws_deflate_inflate(d, (const uint8_t *) "", 1, &out, 100), 0);
    CHECK_EQ_INT(out.len, 0);
    ws_deflate_destroy(d);

    /* And we produce the same bytes. */
    p = params(0, 0, 15, 15);
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_deflate(d, (const uint8_t *) "Hello", 5, &out), 0);
    CHECK(out.len == sizeof(hello) && memcmp(out.data, hello, out.len) == 0);
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_deflate(d, (const uint8_t *) "Hello", 5, &out), 0);
    CHECK(out.len == sizeof(again) && memcmp(out.data, again, out.len) == 0);
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_deflate(d, NULL, 0, &out), 0);
    CHECK(out.len == 1 && out.data[0] == 0);
    /* Appends: what was in out stays. */
    CHECK_EQ_INT(ws_deflate_deflate(d, (const uint8_t *) "x", 1, &out), 0);
    CHECK(out.len > 1 && out.data[0] == 0);
    ws_deflate_destroy(d);
    mk_buf_release(&out);
}

MK_TEST(context_takeover)
{
    struct ws_deflate_params on = params(0, 0, 15, 15);
    struct ws_deflate_params off = params(1, 1, 15, 15);
    struct ws_deflate *d = ws_deflate_create(&on, 8);
    struct ws_deflate *fresh;
    struct mk_buf z1, z2, plain;
    uint8_t msg[2000];

    fill_random(msg, sizeof(msg));
    mk_buf_init(&z1);
    mk_buf_init(&z2);
    mk_buf_init(&plain);
    /* With takeover the repeat is a back reference to message 1. */
    CHECK_EQ_INT(ws_deflate_deflate(d, msg, sizeof(msg), &z1), 0);
    CHECK_EQ_INT(ws_deflate_deflate(d, msg, sizeof(msg), &z2), 0);
    CHECK(z1.len > sizeof(msg));
    CHECK(z2.len < 32);
    /* ... which an inflater that has not seen message 1 cannot resolve. */
    fresh = ws_deflate_create(&on, 8);
    CHECK_EQ_INT(ws_deflate_inflate(fresh, (uint8_t *) z2.data, z2.len,
                                    &plain, 1 * MIB), WS_DEFLATE_CORRUPT);
    ws_deflate_destroy(fresh);
    ws_deflate_destroy(d);

    /* Without it each message stands alone: same bytes, and message 2
     * inflates with a fresh inflater. */
    z1.len = z2.len = plain.len = 0;
    d = ws_deflate_create(&off, 8);
    CHECK_EQ_INT(ws_deflate_deflate(d, msg, sizeof(msg), &z1), 0);
    CHECK_EQ_INT(ws_deflate_deflate(d, msg, sizeof(msg), &z2), 0);
    CHECK(z1.len == z2.len && memcmp(z1.data, z2.data, z1.len) == 0);
    fresh = ws_deflate_create(&on, 8);
    CHECK_EQ_INT(ws_deflate_inflate(fresh, (uint8_t *) z2.data, z2.len,
                                    &plain, 1 * MIB), 0);
    CHECK(plain.len == sizeof(msg) && memcmp(plain.data, msg, plain.len) == 0);
    ws_deflate_destroy(fresh);
    ws_deflate_destroy(d);
    mk_buf_release(&z1);
    mk_buf_release(&z2);
    mk_buf_release(&plain);
}

MK_TEST(inflate_pieces)
{
    struct ws_deflate_params p = params(0, 0, 15, 15);
    struct ws_deflate *srv = ws_deflate_create(&p, 8);
    struct ws_deflate *d;
    struct mk_buf z, whole, part;
    uint8_t msg[600];
    size_t i, j;
    int ok = 1;

    fill_text(msg, sizeof(msg));
    mk_buf_init(&z);
    mk_buf_init(&whole);
    mk_buf_init(&part);
    CHECK_EQ_INT(ws_deflate_deflate(srv, msg, sizeof(msg), &z), 0);
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_inflate(d, (uint8_t *) z.data, z.len, &whole,
                                    sizeof(msg)), 0);
    ws_deflate_destroy(d);
    CHECK(whole.len == sizeof(msg) && memcmp(whole.data, msg, whole.len) == 0);
    /* Two pieces split at every position, three at every pair. */
    for (i = 0; i <= z.len; i++) {
        for (j = i; j <= z.len; j++) {
            const uint8_t *zd = (uint8_t *) z.data;

            part.len = 0;
            d = ws_deflate_create(&p, 8);
            ok &= ws_deflate_inflate_piece(d, zd, i, 0, &part, 600) == 0;
            ok &= ws_deflate_inflate_piece(d, zd + i, j - i, 0, &part,
                                           600) == 0;
            ok &= ws_deflate_inflate_piece(d, zd + j, z.len - j, 1, &part,
                                           600) == 0;
            ok &= part.len == whole.len &&
                  memcmp(part.data, whole.data, part.len) == 0;
            ws_deflate_destroy(d);
        }
    }
    CHECK(ok);
    /* The empty final piece of a framed message. */
    part.len = 0;
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_inflate_piece(d, (uint8_t *) z.data, z.len, 0,
                                          &part, 600), 0);
    CHECK_EQ_INT(ws_deflate_inflate_piece(d, NULL, 0, 1, &part, 600), 0);
    CHECK(part.len == sizeof(msg));
    ws_deflate_destroy(d);
    ws_deflate_destroy(srv);
    mk_buf_release(&z);
    mk_buf_release(&whole);
    mk_buf_release(&part);
}

/* 10 MiB of zeros compressed in 64 KiB steps, never held whole. */
static void make_bomb(struct mk_buf *z, size_t total)
{
    static uint8_t zeros[65536];
    z_stream s;
    size_t done, room;
    int flush;

    memset(&s, 0, sizeof(s));
    deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
    for (done = 0; done < total; done += sizeof(zeros)) {
        flush = done + sizeof(zeros) >= total ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        s.next_in = zeros;
        s.avail_in = sizeof(zeros);
        do {
            mk_buf_reserve(z, 4096);
            room = z->size - z->len;
            s.next_out = (Bytef *) z->data + z->len;
            s.avail_out = (uInt) room;
            deflate(&s, flush);
            z->len += room - s.avail_out;
        } while (s.avail_out == 0);
    }
    deflateEnd(&s);
    z->len -= 4;
}

MK_TEST(inflate_limit)
{
    struct ws_deflate_params p = params(0, 0, 15, 15);
    struct ws_deflate *d;
    struct mk_buf z, out;
    long rss0, rss1;
    size_t i;
    int ret = 0;

    mk_buf_init(&z);
    mk_buf_init(&out);
    make_bomb(&z, 10 * MIB);
    CHECK(z.len < 16 * 1024);
    printf("    10 MiB of zeros -> %zu bytes\n", z.len);

    rss0 = max_rss_kib();
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_inflate(d, (uint8_t *) z.data, z.len, &out,
                                    1 * MIB), WS_DEFLATE_TOO_BIG);
    CHECK(out.len == 1 * MIB);
    CHECK_EQ_INT(ws_deflate_held(d), 0);        /* context dropped */
    ws_deflate_destroy(d);
    mk_buf_release(&out);
    rss1 = max_rss_kib();
    /* Inflating it all would take 10 MiB more. */
    printf("    peak RSS grew by %ld KiB\n", rss1 - rss0);
    CHECK(rss1 - rss0 < 6 * 1024);

    /* The same fed in 1000-byte frames, the limit spans the pieces. */
    d = ws_deflate_create(&p, 8);
    for (i = 0; i < z.len && ret == 0; i += 1000) {
        ret = ws_deflate_inflate_piece(d, (uint8_t *) z.data + i,
                                       z.len - i < 1000 ? z.len - i : 1000,
                                       i + 1000 >= z.len, &out, 1 * MIB);
    }
    CHECK_EQ_INT(ret, WS_DEFLATE_TOO_BIG);
    CHECK(out.len == 1 * MIB);
    ws_deflate_destroy(d);
    mk_buf_release(&out);
    mk_buf_release(&z);

    /* Exactly max is fine, one byte less is not; prior content of out
     * does not count. */
    make_bomb(&z, 65536 * 2);
    d = ws_deflate_create(&p, 8);
    mk_buf_append(&out, "prefix", 6);
    CHECK_EQ_INT(ws_deflate_inflate(d, (uint8_t *) z.data, z.len, &out,
                                    131072), 0);
    CHECK_EQ_INT(out.len, 131072 + 6);
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_inflate(d, (uint8_t *) z.data, z.len, &out,
                                    131071), WS_DEFLATE_TOO_BIG);
    CHECK_EQ_INT(out.len, 131071);
    ws_deflate_destroy(d);
    d = ws_deflate_create(&p, 8);
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_inflate(d, (uint8_t *) z.data, z.len, &out, 0),
                 WS_DEFLATE_TOO_BIG);
    CHECK_EQ_INT(out.len, 0);
    ws_deflate_destroy(d);
    mk_buf_release(&out);
    mk_buf_release(&z);
}

MK_TEST(inflate_corrupt)
{
    struct ws_deflate_params p = params(0, 0, 15, 15);
    struct ws_deflate_params p9 = params(0, 0, 15, 9);
    struct ws_deflate *d, *peer;
    struct mk_buf z, out;
    static const uint8_t reserved[] = { 0x07, 0x00 };      /* BTYPE 11 */
    static const uint8_t bad_stored[] = { 0x00, 0x05, 0x00, 0x00, 0x00 };
    uint8_t msg[20000];

    mk_buf_init(&z);
    mk_buf_init(&out);
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_inflate(d, reserved, sizeof(reserved), &out, 100),
                 WS_DEFLATE_CORRUPT);
    CHECK_EQ_INT(ws_deflate_held(d), 0);
    CHECK_EQ_INT(ws_deflate_inflate(d, bad_stored, sizeof(bad_stored), &out,
                                    100), WS_DEFLATE_CORRUPT);
    ws_deflate_destroy(d);

    /* A message cut short: its last block swallows the tail. */
    fill_text(msg, sizeof(msg));
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_deflate(d, msg, sizeof(msg), &z), 0);
    ws_deflate_destroy(d);
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_inflate(d, (uint8_t *) z.data, z.len / 2, &out,
                                    1 * MIB), WS_DEFLATE_CORRUPT);
    ws_deflate_destroy(d);

    /* Distances beyond the agreed client window: compressed with 15 bits,
     * inflated under client_max_window_bits=9. zlib resolves a distance
     * from its window or from this call's output, so the overreach shows
     * when it reaches into the previous message: message 2 repeats
     * message 1 (random, so no other matches) 10000 bytes in. */
    fill_random(msg, sizeof(msg));
    z.len = 0;
    d = ws_deflate_create(&p, 8);
    CHECK_EQ_INT(ws_deflate_deflate(d, msg, 4000, &z), 0);
    peer = ws_deflate_create(&p9, 8);
    out.len = 0;
    CHECK_EQ_INT(ws_deflate_inflate(peer, (uint8_t *) z.data, z.len, &out,
                                    1 * MIB), 0);
    memcpy(msg + 14000, msg, 4000);
    z.len = 0;
    CHECK_EQ_INT(ws_deflate_deflate(d, msg + 4000, 14000, &z), 0);
    CHECK_EQ_INT(ws_deflate_inflate(peer, (uint8_t *) z.data, z.len, &out,
                                    1 * MIB), WS_DEFLATE_CORRUPT);
    CHECK_EQ_INT(ws_deflate_held(peer), 0);
    ws_deflate_destroy(peer);
    ws_deflate_destroy(d);
    mk_buf_release(&z);
    mk_buf_release(&out);
}

/* Every policy window: we negotiate, a zlib "browser" compresses and
 * inflates with exactly the agreed windows, over several messages with
 * context takeover. This is also where server_max_window_bits=8 is shown
 * to hold: zlib's raw inflate at 8 bits reads what we compress with 9. */
MK_TEST(zlib_interop)
{
    struct ws_deflate_policy pol = { 15, 8, 1 };
    struct ws_deflate_params p;
    struct ws_deflate *d;
    struct mk_buf z, plain;
    char resp[WS_DEFLATE_RESP_MAX];
    z_stream cdef, cinf;
    uint8_t *msg = malloc(100000);
    int wb, m, ok;

    mk_buf_init(&z);
    mk_buf_init(&plain);
    for (wb = 8; wb <= 15; wb++) {
        pol.window_bits = wb < 9 ? 9 : wb;
        pol.mem_level = 1 + wb % 9;
        if (wb == 8) {
            CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits; "
                              "server_max_window_bits=8", &pol, &p, resp), 1);
        }
        else {
            CHECK_EQ_INT(nego("permessage-deflate; client_max_window_bits",
                              &pol, &p, resp), 1);
        }
        CHECK_EQ_INT(p.server_max_window_bits, wb);
        d = ws_deflate_create(&p, pol.mem_level);
        memset(&cdef, 0, sizeof(cdef));
        memset(&cinf, 0, sizeof(cinf));
        CHECK_EQ_INT(deflateInit2(&cdef, 6, Z_DEFLATED,
                                  -p.client_max_window_bits, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
        CHECK_EQ_INT(inflateInit2(&cinf, -p.server_max_window_bits), Z_OK);
        ok = 1;
        for (m = 0; m < 4; m++) {
            size_t len = 1000 + (size_t) m * 30000;

            fill_text(msg, len);
            if (m == 2) {
                fill_random(msg + len / 2, len / 4);
            }
            z.len = plain.len = 0;
            ok &= zlib_client_deflate(&cdef, msg, len, &z) == 0;
            ok &= ws_deflate_inflate(d, (uint8_t *) z.data, z.len, &plain,
                                     len) == 0;
            ok &= plain.len == len && memcmp(plain.data, msg, len) == 0;
            z.len = plain.len = 0;
            ok &= ws_deflate_deflate(d, msg, len, &z) == 0;
            ok &= zlib_client_inflate(&cinf, (uint8_t *) z.data, z.len,
                                      &plain) == 0;
            ok &= plain.len == len && memcmp(plain.data, msg, len) == 0;
        }
        if (!ok) {
            fprintf(stderr, "interop failed at window_bits %d\n", wb);
        }
        CHECK(ok);
        deflateEnd(&cdef);
        inflateEnd(&cinf);
        ws_deflate_destroy(d);
    }
    free(msg);
    mk_buf_release(&z);
    mk_buf_release(&plain);
}

/* ------------------------------------------------------------------ */
/* memory                                                              */
/* ------------------------------------------------------------------ */

/* Uses both directions once and returns what d holds afterwards. */
static size_t held_after_use(const struct ws_deflate_params *p, int ml)
{
    struct ws_deflate_params mp = mirror(*p);
    struct ws_deflate *d = ws_deflate_create(p, ml);
    struct ws_deflate *peer = ws_deflate_create(&mp, ml);
    struct mk_buf z, plain;
    uint8_t msg[5000];
    size_t held;

    fill_text(msg, sizeof(msg));
    mk_buf_init(&z);
    mk_buf_init(&plain);
    CHECK_EQ_INT(ws_deflate_held(d), 0);        /* nothing before use */
    CHECK(d->def == NULL && d->inf == NULL);
    CHECK_EQ_INT(ws_deflate_deflate(d, msg, sizeof(msg), &z), 0);
    z.len = 0;
    CHECK_EQ_INT(ws_deflate_deflate(peer, msg, sizeof(msg), &z), 0);
    CHECK_EQ_INT(ws_deflate_inflate(d, (uint8_t *) z.data, z.len, &plain,
                                    sizeof(msg)), 0);
    held = ws_deflate_held(d);
    CHECK((d->def != NULL) == !p->server_no_context_takeover);
    CHECK((d->inf != NULL) == !p->client_no_context_takeover);
    ws_deflate_destroy(d);
    ws_deflate_destroy(peer);
    mk_buf_release(&z);
    mk_buf_release(&plain);
    return held;
}

MK_TEST(memory)
{
    struct {
        struct ws_deflate_params p;
        int ml;
    } cases[] = {
        { { 0, 0, 15, 15 }, 8 }, { { 0, 0, 10, 10 }, 4 },
        { { 0, 0, 9, 8 }, 1 },   { { 0, 0, 8, 15 }, 9 },
        { { 1, 0, 15, 15 }, 8 }, { { 0, 1, 15, 15 }, 8 },
        { { 1, 1, 15, 15 }, 8 },
    };
    struct ws_deflate_params both;
    size_t i, held, mem;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        held = held_after_use(&cases[i].p, cases[i].ml);
        mem = ws_deflate_memory(&cases[i].p, cases[i].ml);
        printf("    snct=%d cnct=%d s=%d c=%d mem_level=%d: held %zu, "
               "ws_deflate_memory %zu, peak %zu\n",
               cases[i].p.server_no_context_takeover,
               cases[i].p.client_no_context_takeover,
               cases[i].p.server_max_window_bits,
               cases[i].p.client_max_window_bits, cases[i].ml, held, mem,
               ws_deflate_memory_peak(&cases[i].p, cases[i].ml));
        /* An upper bound, and a tight one. */
        CHECK(held <= mem);
        CHECK(mem - held <= 1024);
        CHECK(mem <= ws_deflate_memory_peak(&cases[i].p, cases[i].ml));
    }
    /* No context takeover: an idle connection holds no zlib memory. */
    both = params(1, 1, 15, 15);
    CHECK_EQ_INT(held_after_use(&both, 8), 0);
    CHECK_EQ_INT(ws_deflate_memory(&both, 8), 0);
    /* The peak is both streams at once, as the formulas say. */
    both = params(0, 0, 15, 15);
    CHECK(ws_deflate_memory_peak(&both, 8) >= 262144 + 32768 + 5952 + 7160);
    CHECK(ws_deflate_memory_peak(&both, 8) <= 262144 + 32768 + 16384);
}

int main(void)
{
    RUN(negotiate_rfc_examples);
    RUN(negotiate_first_acceptable_offer);
    RUN(negotiate_declines);
    RUN(negotiate_window_values);
    RUN(negotiate_policy);
    RUN(negotiate_syntax);
    RUN(negotiate_response_exact);
    RUN(round_trips);
    RUN(rfc_payload_examples);
    RUN(context_takeover);
    RUN(inflate_pieces);
    RUN(inflate_limit);
    RUN(inflate_corrupt);
    RUN(zlib_interop);
    RUN(memory);
    return mk_test_done();
}
