/* Unit tests: the strict JSON scanner of the socket.io plugin (RFC 8259
 * grammar, UTF-8 in strings, \u escapes and surrogates, the depth bound),
 * its iterators, string decoding and writing, and integer reading. */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_test.h"
#include "plugins/socketio/sio_json.c"

struct jcase {
    const char *s;
    size_t len;
    enum sio_json_kind kind;        /* SIO_JSON_INVALID: must be refused */
};

#define J(str, k) { str, sizeof(str) - 1, k }
#define BAD(str)  J(str, SIO_JSON_INVALID)

static const struct jcase cases[] = {
    /* scalars */
    J("0", SIO_JSON_NUMBER), J("-0", SIO_JSON_NUMBER),
    J("1", SIO_JSON_NUMBER), J("-12.5e+3", SIO_JSON_NUMBER),
    J("1E9", SIO_JSON_NUMBER), J("0.0e-0", SIO_JSON_NUMBER),
    J("123456789012345678901234567890", SIO_JSON_NUMBER),
    J("true", SIO_JSON_TRUE), J("false", SIO_JSON_FALSE),
    J("null", SIO_JSON_NULL), J(" \t\r\n1 \n", SIO_JSON_NUMBER),
    J("\"\"", SIO_JSON_STRING), J("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
                                  SIO_JSON_STRING),
    J("\"\\u0000\\u00e9\\uFFFF\"", SIO_JSON_STRING),
    J("\"\\ud83d\\ude00\"", SIO_JSON_STRING),          /* a pair */
    J("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"", SIO_JSON_STRING),
    J("\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", SIO_JSON_STRING),
    /* containers */
    J("[]", SIO_JSON_ARRAY), J("[ ]", SIO_JSON_ARRAY), J("{}", SIO_JSON_OBJECT),
    J("{ }", SIO_JSON_OBJECT),
    J("[1,\"a\",null,true,false,{},[],{\"k\":[{}]}]", SIO_JSON_ARRAY),
    J("{\"a\":1,\"b\":{\"c\":[1,2]},\"a\":2}", SIO_JSON_OBJECT),
    J(" [ 1 , 2 ] ", SIO_JSON_ARRAY), J("{ \"a\" : 1 }", SIO_JSON_OBJECT),
    /* numbers: leading zeros, signs, fractions, exponents */
    BAD("01"), BAD("-01"), BAD("00"), BAD("+1"), BAD("-"), BAD("1."),
    BAD(".5"), BAD("1e"), BAD("1e+"), BAD("1.e3"), BAD("0x10"), BAD("NaN"),
    BAD("Infinity"), BAD("-Infinity"), BAD("1 2"), BAD("- 1"),
    /* literals */
    BAD("tru"), BAD("True"), BAD("nul"), BAD("nulll"), BAD("undefined"),
    /* strings: control characters, escapes, surrogates */
    BAD("\""), BAD("\"abc"), BAD("'a'"), BAD("\"\x01\""), BAD("\"\n\""),
    BAD("\"\t\""), BAD("\"\x1f\""), BAD("\"\\x41\""), BAD("\"\\a\""),
    BAD("\"\\u12\""), BAD("\"\\u12g4\""), BAD("\"\\U0041\""), BAD("\"\\\""),
    BAD("\"\\ud800\""), BAD("\"\\udbff x\""), BAD("\"\\ud800\\u0041\""),
    BAD("\"\\ud800\\ud800\""), BAD("\"\\udc00\""), BAD("\"\\udfff\\ud800\""),
    BAD("\"\\ud83d\""), BAD("\"\\ud83d\\"), BAD("\"\\ud83d\\u\""),
    /* strings: bad UTF-8 */
    BAD("\"\x80\""), BAD("\"\xbf\""), BAD("\"\xc0\xaf\""), BAD("\"\xc1\xbf\""),
    BAD("\"\xe0\x80\xaf\""), BAD("\"\xf0\x80\x80\xaf\""),
    BAD("\"\xed\xa0\x80\""), BAD("\"\xed\xbf\xbf\""),       /* surrogates */
    BAD("\"\xf4\x90\x80\x80\""), BAD("\"\xf5\x80\x80\x80\""), BAD("\"\xff\""),
    BAD("\"\xfe\""), BAD("\"\xc3\""), BAD("\"\xe2\x82\""),
    BAD("\"\xf0\x9f\x98\""), BAD("\"\xc3\x28\""),
    /* structure */
    BAD(""), BAD(" "), BAD("["), BAD("]"), BAD("{"), BAD("[1,]"), BAD("[,1]"),
    BAD("[1 2]"), BAD("[1,,2]"), BAD("{\"a\"}"), BAD("{\"a\":}"),
    BAD("{\"a\":1,}"), BAD("{a:1}"), BAD("{1:1}"), BAD("{\"a\" 1}"),
    BAD("{\"a\":1 \"b\":2}"), BAD("[}"), BAD("{]"), BAD("[1}"),
    BAD("{\"a\":1]"), BAD("[[]"), BAD("[]]"),
    /* trailing garbage and other whitespace */
    BAD("[]x"), BAD("{}{}"), BAD("1,"), BAD("\"a\"\"b\""), BAD("null;"),
    BAD("\xef\xbb\xbf[]"), BAD("[\f]"), BAD("[\v1]"), BAD("\x00"),
    BAD("[1]\x00"), BAD("//c\n1"),
};

MK_TEST(table)
{
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum sio_json_kind k = sio_json_check(cases[i].s, cases[i].len);

        if (k != cases[i].kind) {
            fprintf(stderr, "case %zu \"%s\": kind %d, want %d\n", i,
                    cases[i].s, (int) k, (int) cases[i].kind);
        }
        CHECK(k == cases[i].kind);
    }
}

/* Every proper prefix of a valid container is refused, and the value
 * length ignores what follows. */
MK_TEST(value_len)
{
    static const char v[] = "{\"a\":[1,{\"b\":\"\\u00e9\"}],\"c\":-1.5e3}";
    size_t n = sizeof(v) - 1, k;
    char buf[64];

    CHECK_EQ_INT(sio_json_value_len(v, n), n);
    for (k = 0; k < n; k++) {
        CHECK_EQ_INT(sio_json_value_len(v, k), -1);
    }
    memcpy(buf, v, n);
    memcpy(buf + n, ",garbage", 8);
    CHECK_EQ_INT(sio_json_value_len(buf, n + 8), n);
    CHECK_EQ_INT(sio_json_value_len("12,", 3), 2);
    CHECK_EQ_INT(sio_json_value_len("01", 2), 1);
    CHECK_EQ_INT(sio_json_value_len("12", 1), 1);
    CHECK_EQ_INT(sio_json_value_len(" 1", 2), -1);    /* no leading ws */
    CHECK_EQ_INT(sio_json_value_len("1", 0), -1);
    CHECK_EQ_INT(sio_json_value_len(NULL, 0), -1);
    CHECK_EQ_INT(sio_json_kind("-1"), SIO_JSON_NUMBER);
    CHECK_EQ_INT(sio_json_kind("x"), SIO_JSON_INVALID);
}

static void nest(char *buf, int depth, char open, char close)
{
    int i;

    for (i = 0; i < depth; i++) {
        buf[i] = open;
    }
    for (i = 0; i < depth; i++) {
        buf[depth + i] = close;
    }
}

MK_TEST(depth)
{
    char buf[2 * (SIO_JSON_DEPTH_MAX + 1) + 16];
    int d = SIO_JSON_DEPTH_MAX;

    nest(buf, d, '[', ']');
    CHECK_EQ_INT(sio_json_check(buf, 2 * (size_t) d), SIO_JSON_ARRAY);
    nest(buf, d + 1, '[', ']');
    CHECK_EQ_INT(sio_json_check(buf, 2 * (size_t) d + 2), SIO_JSON_INVALID);
    /* objects count too: {"a":{"a":...}} */
    {
        struct mk_buf b;
        int i, ok;

        mk_buf_init(&b);
        for (i = 0; i < d; i++) {
            mk_buf_append_str(&b, "{\"a\":");
        }
        mk_buf_append_str(&b, "1");
        for (i = 0; i < d; i++) {
            mk_buf_append_str(&b, "}");
        }
        CHECK_EQ_INT(sio_json_check(b.data, b.len), SIO_JSON_OBJECT);
        mk_buf_release(&b);
        for (i = 0; i <= d; i++) {
            mk_buf_append_str(&b, i % 2 ? "[" : "{\"a\":");
        }
        for (i = d; i >= 0; i--) {
            mk_buf_append_str(&b, i % 2 ? "]" : "}");
        }
        ok = sio_json_check(b.data, b.len) == SIO_JSON_INVALID;
        CHECK(ok);
        mk_buf_release(&b);
    }
    /* deep but sequential nesting is fine: [[],[],[]...] */
    CHECK_EQ_INT(sio_json_check("[[[]],[[]],[[[]]]]", 18), SIO_JSON_ARRAY);
}

MK_TEST(iterators)
{
    static const char arr[] = "[ 1 , \"two\" ,{\"x\":[3]} ,[] ]";
    static const char obj[] = "{ \"a\" : 1 , \"b\\u0063\":\"v\", \"a\":[2] }";
    const char *want[] = { "1", "\"two\"", "{\"x\":[3]}", "[]" };
    struct sio_json_iter it;
    struct mk_ptr e, k, v;
    int n = 0;

    sio_json_iter_init(&it, mk_ptr_make(arr, sizeof(arr) - 1));
    while (sio_json_array_next(&it, &e)) {
        CHECK(n < 4);
        if (n < 4) {
            CHECK_EQ_MEM(e.data, e.len, want[n]);
        }
        n++;
    }
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(sio_json_array_next(&it, &e), 0);

    sio_json_iter_init(&it, MK_PTR_LIT("[]"));
    CHECK_EQ_INT(sio_json_array_next(&it, &e), 0);
    sio_json_iter_init(&it, MK_PTR_LIT("{}"));
    CHECK_EQ_INT(sio_json_object_next(&it, &k, &v), 0);

    sio_json_iter_init(&it, mk_ptr_make(obj, sizeof(obj) - 1));
    CHECK_EQ_INT(sio_json_object_next(&it, &k, &v), 1);
    CHECK_EQ_MEM(k.data, k.len, "\"a\"");
    CHECK_EQ_MEM(v.data, v.len, "1");
    CHECK_EQ_INT(sio_json_object_next(&it, &k, &v), 1);
    CHECK_EQ_MEM(k.data, k.len, "\"b\\u0063\"");
    CHECK_EQ_MEM(v.data, v.len, "\"v\"");
    CHECK_EQ_INT(sio_json_object_next(&it, &k, &v), 1);
    CHECK_EQ_MEM(v.data, v.len, "[2]");
    CHECK_EQ_INT(sio_json_object_next(&it, &k, &v), 0);

    /* members by decoded name; the last duplicate wins */
    v = sio_json_member(mk_ptr_make(obj, sizeof(obj) - 1), "bc");
    CHECK_EQ_MEM(v.data, v.len, "\"v\"");
    v = sio_json_member(mk_ptr_make(obj, sizeof(obj) - 1), "a");
    CHECK_EQ_MEM(v.data, v.len, "[2]");
    v = sio_json_member(mk_ptr_make(obj, sizeof(obj) - 1), "b");
    CHECK(v.data == NULL && v.len == 0);
    v = sio_json_member(MK_PTR_LIT("[1]"), "a");
    CHECK(v.data == NULL);
}

MK_TEST(strings)
{
    char out[32];
    long n;

    n = sio_json_string_decode(MK_PTR_LIT("\"a\\n\\u00e9\\ud83d\\ude00\\/\""),
                               out, sizeof(out));
    CHECK_EQ_MEM(out, n, "a\n\xc3\xa9\xf0\x9f\x98\x80/");
    n = sio_json_string_decode(MK_PTR_LIT("\"\\u0000x\""), out, sizeof(out));
    CHECK_EQ_INT(n, 2);
    CHECK(out[0] == 0 && out[1] == 'x');
    CHECK_EQ_INT(sio_json_string_decode(MK_PTR_LIT("\"abc\""), out, 2), -1);
    CHECK_EQ_INT(sio_json_string_decode(MK_PTR_LIT("\"abc\""), out, 3), 3);
    CHECK_EQ_INT(sio_json_string_decode(MK_PTR_LIT("\"\\u20ac\""), out, 2), -1);
    CHECK_EQ_INT(sio_json_string_decode(MK_PTR_LIT("\"\""), out, 0), 0);

    CHECK(sio_json_string_equals(MK_PTR_LIT("\"ch\\u0061t\""), "chat", 4));
    CHECK(!sio_json_string_equals(MK_PTR_LIT("\"chat\""), "cha", 3));
    CHECK(!sio_json_string_equals(MK_PTR_LIT("\"cha\""), "chat", 4));
    CHECK(sio_json_string_equals(MK_PTR_LIT("\"\""), "", 0));
    CHECK(sio_json_string_equals(MK_PTR_LIT("\"\\ud83d\\ude00\""),
                                 "\xf0\x9f\x98\x80", 4));
}

MK_TEST(append_string)
{
    static const char raw[] = "q\"b\\s/\x01\x1f\b\f\n\r\t\x7f\xc3\xa9\xf0\x9f\x98\x80";
    struct mk_buf b;
    char out[64];
    long n;

    mk_buf_init(&b);
    CHECK_EQ_INT(sio_json_append_string(&b, raw, sizeof(raw) - 1), 0);
    CHECK_EQ_MEM(b.data, b.len,
                 "\"q\\\"b\\\\s/\\u0001\\u001f\\b\\f\\n\\r\\t\x7f\xc3\xa9"
                 "\xf0\x9f\x98\x80\"");
    CHECK_EQ_INT(sio_json_check(b.data, b.len), SIO_JSON_STRING);
    n = sio_json_string_decode(mk_ptr_make(b.data, b.len), out, sizeof(out));
    CHECK_EQ_INT(n, sizeof(raw) - 1);
    CHECK(n == sizeof(raw) - 1 && memcmp(out, raw, (size_t) n) == 0);

    /* NUL is escaped; invalid UTF-8 fails and leaves the buffer as it was */
    b.len = 0;
    CHECK_EQ_INT(sio_json_append_string(&b, "a\0b", 3), 0);
    CHECK_EQ_MEM(b.data, b.len, "\"a\\u0000b\"");
    CHECK_EQ_INT(sio_json_append_string(&b, "x\xc3", 2), -1);
    CHECK_EQ_INT(sio_json_append_string(&b, "\xed\xa0\x80", 3), -1);
    CHECK_EQ_INT(sio_json_append_string(&b, "\xff", 1), -1);
    CHECK_EQ_MEM(b.data, b.len, "\"a\\u0000b\"");
    b.len = 0;
    CHECK_EQ_INT(sio_json_append_string(&b, "", 0), 0);
    CHECK_EQ_MEM(b.data, b.len, "\"\"");
    mk_buf_release(&b);
}

MK_TEST(uint)
{
    uint64_t v = 99;

    CHECK(sio_json_uint(MK_PTR_LIT("0"), &v) == 0 && v == 0);
    CHECK(sio_json_uint(MK_PTR_LIT("42"), &v) == 0 && v == 42);
    CHECK(sio_json_uint(MK_PTR_LIT("9007199254740991"), &v) == 0 &&
          v == 9007199254740991ULL);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_LIT("9007199254740992"), &v), -1);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_LIT("99999999999999999999"), &v), -1);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_LIT("-1"), &v), -1);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_LIT("-0"), &v), -1);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_LIT("1.5"), &v), -1);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_LIT("1e3"), &v), -1);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_LIT("\"1\""), &v), -1);
    CHECK_EQ_INT(sio_json_uint(MK_PTR_NONE, &v), -1);
}

/* Random byte strings over JSON's alphabet: the verdict never crashes and
 * whatever is accepted has a consistent value length. */
MK_TEST(random)
{
    static const char alpha[] = "[]{}:,\"\\u0123456789abcdefE.-+ tnrl\xc3\xa9";
    char buf[24];
    int round, i, n;

    for (round = 0; round < 200000; round++) {
        n = (int) (mk_test_rng() % sizeof(buf));
        for (i = 0; i < n; i++) {
            buf[i] = alpha[mk_test_rng() % (sizeof(alpha) - 1)];
        }
        if (sio_json_check(buf, (size_t) n) != SIO_JSON_INVALID) {
            size_t ws = json_skip_ws(buf, (size_t) n, 0);
            long l = sio_json_value_len(buf + ws, (size_t) n - ws);

            if (!(l > 0 && (size_t) l + ws <= (size_t) n)) {
                CHECK(0);
            }
        }
    }
    CHECK(sio_json_check("[1]", 3) == SIO_JSON_ARRAY);
}

int main(void)
{
    RUN(table);
    RUN(value_len);
    RUN(depth);
    RUN(iterators);
    RUN(strings);
    RUN(append_string);
    RUN(uint);
    RUN(random);
    return mk_test_done();
}
