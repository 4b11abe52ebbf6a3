/* Unit tests: the BlastBeat `uwsgi` packet (spec 2.2): exact byte layout,
 * the 65535-byte limit, header-name conversion and the strict decoder. */
#include <stdlib.h>

#include "mk_test.h"
#include "plugins/zmq/zmq_uwsgi.c"

/* Collects decoded pairs as "k=v;" text for easy comparison. */
struct collect {
    struct mk_buf out;
    int n;
    int stop_at;        /* return 7 at this pair (1-based), 0 = never */
};

static int collect_var(void *ctx, const char *k, size_t kl, const char *v,
                       size_t vl)
{
    struct collect *c = ctx;

    c->n++;
    if (c->stop_at == c->n) {
        return 7;
    }
    mk_buf_append(&c->out, k, kl);
    mk_buf_append(&c->out, "=", 1);
    mk_buf_append(&c->out, v, vl);
    mk_buf_append(&c->out, ";", 1);
    return 0;
}

MK_TEST(packet_layout)
{
    struct mk_buf b;
    const unsigned char want[] = {
        0x00, 0x19, 0x00, 0x00,          /* mod1, SIZE = 25 = total, mod2 */
        0x0e, 0x00, 'R','E','Q','U','E','S','T','_','M','E','T','H','O','D',
        0x03, 0x00, 'G','E','T',
    };
    mk_buf_init(&b);
    CHECK_EQ_INT(zmq_uwsgi_begin(&b), 0);
    CHECK_EQ_INT(b.len, 4);
    CHECK_EQ_INT(zmq_uwsgi_add_str(&b, "REQUEST_METHOD", "GET"), 0);
    CHECK_EQ_INT(zmq_uwsgi_finish(&b), 0);
    CHECK_EQ_INT(b.len, 25);
    CHECK_EQ_INT(b.len, sizeof(want));   /* 4 + 2 + 14 + 2 + 3 */
    CHECK(memcmp(b.data, want, sizeof(want)) == 0);
    /* SIZE includes the header (the quirk) and is little-endian. */
    CHECK_EQ_INT((unsigned char) b.data[1] |
                 ((unsigned char) b.data[2] << 8), b.len);
    CHECK_EQ_INT(b.data[0], 0);
    CHECK_EQ_INT(b.data[3], 0);
    mk_buf_release(&b);
}

MK_TEST(packet_size_little_endian_multibyte)
{
    struct mk_buf b;
    char *val = calloc(1, 300);

    mk_buf_init(&b);
    memset(val, 'x', 300);
    CHECK_EQ_INT(zmq_uwsgi_begin(&b), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "HTTP_HOST", 9, val, 300), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "SCRIPT_NAME", 11, "", 0), 0);
    CHECK_EQ_INT(zmq_uwsgi_finish(&b), 0);
    /* 4 + (2+9+2+300) + (2+11+2+0) = 332 = 0x014c */
    CHECK_EQ_INT(b.len, 332);
    CHECK_EQ_INT((unsigned char) b.data[1], 0x4c);
    CHECK_EQ_INT((unsigned char) b.data[2], 0x01);
    /* value length 300 = 2c 01 right after the key */
    CHECK_EQ_INT((unsigned char) b.data[4 + 2 + 9], 0x2c);
    CHECK_EQ_INT((unsigned char) b.data[4 + 2 + 9 + 1], 0x01);
    /* empty value: length 0 0 and nothing after */
    CHECK_EQ_INT(b.data[b.len - 1], 0);
    CHECK_EQ_INT(b.data[b.len - 2], 0);
    CHECK_EQ_INT(zmq_uwsgi_parse(b.data, b.len, NULL, NULL), 0);
    /* begin again reuses the buffer from scratch */
    CHECK_EQ_INT(zmq_uwsgi_begin(&b), 0);
    CHECK_EQ_INT(b.len, 4);
    CHECK_EQ_INT(zmq_uwsgi_finish(&b), 0);
    CHECK_EQ_INT((unsigned char) b.data[1], 4);
    CHECK_EQ_INT(zmq_uwsgi_parse(b.data, b.len, NULL, NULL), 0);
    mk_buf_release(&b);
    free(val);
}

MK_TEST(limit_boundary)
{
    struct mk_buf b;
    char *val = calloc(1, 70000);
    size_t fill;

    mk_buf_init(&b);
    /* One pair "K" = fill bytes: total = 4 + 2 + 1 + 2 + fill. */
    fill = ZMQ_UWSGI_MAX - 9;
    CHECK_EQ_INT(zmq_uwsgi_begin(&b), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "K", 1, val, fill + 1), ZMQ_UWSGI_ETOOBIG);
    CHECK_EQ_INT(b.len, 4);     /* unchanged on failure */
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "K", 1, val, fill), 0);
    CHECK_EQ_INT(b.len, 65535);
    CHECK_EQ_INT(zmq_uwsgi_finish(&b), 0);
    CHECK_EQ_INT((unsigned char) b.data[1], 0xff);
    CHECK_EQ_INT((unsigned char) b.data[2], 0xff);
    CHECK_EQ_INT(zmq_uwsgi_parse(b.data, b.len, NULL, NULL), 0);
    /* a full packet takes not even an empty pair */
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "", 0, "", 0), ZMQ_UWSGI_ETOOBIG);
    CHECK_EQ_INT(b.len, 65535);

    /* exactly one byte over via a second pair; BlastBeat wrapped to 0 */
    CHECK_EQ_INT(zmq_uwsgi_begin(&b), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "K", 1, val, fill - 4), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "", 0, "", 0), 0);     /* 65535 */
    CHECK_EQ_INT(b.len, 65535);
    CHECK_EQ_INT(zmq_uwsgi_begin(&b), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "K", 1, val, fill - 3), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "", 0, "", 0), ZMQ_UWSGI_ETOOBIG);

    /* single lengths over 65535, and sums that would wrap size_t */
    CHECK_EQ_INT(zmq_uwsgi_begin(&b), 0);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, val, 65536, "", 0), ZMQ_UWSGI_ETOOBIG);
    CHECK_EQ_INT(zmq_uwsgi_add(&b, "K", 1, val, (size_t) -1),
                 ZMQ_UWSGI_ETOOBIG);
    CHECK_EQ_INT(b.len, 4);
    mk_buf_release(&b);
    free(val);
}

MK_TEST(finish_rejects_non_packet)
{
    struct mk_buf b;

    mk_buf_init(&b);
    CHECK_EQ_INT(zmq_uwsgi_finish(&b), -1);
    mk_buf_append(&b, "ab", 2);
    CHECK_EQ_INT(zmq_uwsgi_finish(&b), -1);
    mk_buf_release(&b);
}

static const struct {
    const char *name, *key;     /* key NULL: dropped */
} key_cases[] = {
    { "Host", "HTTP_HOST" },
    { "content-type", "HTTP_CONTENT_TYPE" },
    { "X-Forwarded-For", "HTTP_X_FORWARDED_FOR" },
    { "x-a1-b2", "HTTP_X_A1_B2" },
    { "X_Forwarded_For", NULL },        /* would spoof the line above */
    { "X-Forwarded_For", NULL },
    { "_", NULL },
    { ":authority", NULL },
    { ":method", NULL },
    { "", NULL },
    { "A:b", "HTTP_A:B" },              /* only a leading ':' drops */
    { "Weird!#$~", "HTTP_WEIRD!#$~" },  /* nothing else changed */
};

MK_TEST(header_key)
{
    char out[64];
    size_t i, n;

    for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        n = zmq_uwsgi_header_key(key_cases[i].name,
                                 strlen(key_cases[i].name), out, sizeof(out));
        if (key_cases[i].key == NULL) {
            CHECK_EQ_INT(n, 0);
        }
        else {
            CHECK_EQ_MEM(out, n, key_cases[i].key);
        }
    }
    /* output room: "HTTP_HOST" needs exactly 9 */
    CHECK_EQ_INT(zmq_uwsgi_header_key("Host", 4, out, 9), 9);
    CHECK_EQ_INT(zmq_uwsgi_header_key("Host", 4, out, 8), 0);
    CHECK_EQ_INT(zmq_uwsgi_header_key("Host", 4, out, 3), 0);
    /* a byte after the name is not read: "Ho" of "Host_" */
    CHECK_EQ_INT(zmq_uwsgi_header_key("Ho_st", 2, out, sizeof(out)), 7);
}

MK_TEST(parse_roundtrip)
{
    struct mk_buf b;
    struct collect c;

    mk_buf_init(&b);
    memset(&c, 0, sizeof(c));
    mk_buf_init(&c.out);
    zmq_uwsgi_begin(&b);
    zmq_uwsgi_add_str(&b, "REQUEST_METHOD", "POST");
    zmq_uwsgi_add_str(&b, "QUERY_STRING", "");
    zmq_uwsgi_add(&b, "HTTP_X", 6, "a\0b", 3);
    zmq_uwsgi_add_str(&b, "HTTP_X", "dup");
    CHECK_EQ_INT(zmq_uwsgi_finish(&b), 0);
    CHECK_EQ_INT(zmq_uwsgi_parse(b.data, b.len, collect_var, &c), 0);
    CHECK_EQ_INT(c.n, 4);
    CHECK_EQ_INT(c.out.len, strlen("REQUEST_METHOD=POST;QUERY_STRING=;"
                                   "HTTP_X=a") + 3 + strlen("HTTP_X=dup;"));
    CHECK(memcmp(c.out.data, "REQUEST_METHOD=POST;QUERY_STRING=;HTTP_X=a\0b;"
                 "HTTP_X=dup;", c.out.len) == 0);

    /* a non-zero callback result stops the walk and is returned */
    c.n = 0;
    c.stop_at = 2;
    CHECK_EQ_INT(zmq_uwsgi_parse(b.data, b.len, collect_var, &c), 7);
    CHECK_EQ_INT(c.n, 2);
    mk_buf_release(&c.out);
    mk_buf_release(&b);
}

/* Malformed packets, given as hex-free byte strings with explicit length. */
static const struct {
    const char *pkt;
    size_t len;
    int want;
} parse_cases[] = {
    { "\x00\x04\x00\x00", 4, 0 },                       /* no vars */
    { "\x00\x0a\x00\x00\x01\x00k\x01\x00v", 10, 0 },
    { "\x00\x0a\x00\x00\x00\x00\x00\x00", 8, -1 },      /* SIZE > len */
    { "\x00\x08\x00\x00\x00\x00\x00\x00", 8, 0 },       /* empty k and v */
    { "\x00\x06\x00\x00\x00\x00\x00\x00", 8, -1 },      /* SIZE < len */
    { "\x00\x08\x00\x00\x00\x00\x00\x00", 7, -1 },      /* cut short */
    { "\x01\x04\x00\x00", 4, -1 },                      /* modifier1 */
    { "\x00\x04\x00\x01", 4, -1 },                      /* modifier2 */
    { "\x00\x00\x00\x00", 4, -1 },                      /* SIZE 0 (wrap) */
    { "\x00\x03\x00", 3, -1 },                          /* no header */
    { "", 0, -1 },
    { "\x00\x05\x00\x00\x01", 5, -1 },                  /* half a length */
    { "\x00\x07\x00\x00\x02\x00k", 7, -1 },             /* key past end */
    { "\x00\x08\x00\x00\x01\x00k\x00", 8, -1 },         /* half v length */
    { "\x00\x0b\x00\x00\x01\x00k\x03\x00vv", 11, -1 },  /* value past end */
    { "\x00\x0b\x00\x00\x01\x00k\x01\x00vX", 11, -1 },  /* trailing byte */
    { "\x00\x04\x01\x00", 4, -1 },                      /* big-endian 4 */
};

MK_TEST(parse_strict)
{
    size_t i;
    int got;

    for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        got = zmq_uwsgi_parse(parse_cases[i].pkt, parse_cases[i].len,
                              NULL, NULL);
        if (got != parse_cases[i].want) {
            fprintf(stderr, "parse case %zu: got %d\n", i, got);
        }
        CHECK_EQ_INT(got, parse_cases[i].want);
    }
}

int main(void)
{
    RUN(packet_layout);
    RUN(packet_size_little_endian_multibyte);
    RUN(limit_boundary);
    RUN(finish_rejects_non_packet);
    RUN(header_key);
    RUN(parse_roundtrip);
    RUN(parse_strict);
    return mk_test_done();
}
