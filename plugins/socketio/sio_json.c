/*
 * A strict JSON (RFC 8259) scanner: see sio_json.h for why Tremolo scans
 * instead of building a tree. Nothing here allocates except the appends
 * to a caller's mk_buf.
 */
#include <string.h>

#include "sio_json.h"

static int json_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t json_skip_ws(const char *p, size_t len, size_t i)
{
    while (i < len && json_is_ws(p[i])) {
        i++;
    }
    return i;
}

static int json_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The 4 hex digits at p (len bytes available), or -1. */
static long json_hex4(const char *p, size_t len)
{
    long v = 0;
    int i, h;

    if (len < 4) {
        return -1;
    }
    for (i = 0; i < 4; i++) {
        h = json_hex(p[i]);
        if (h < 0) {
            return -1;
        }
        v = v << 4 | h;
    }
    return v;
}

/* The length of the UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t json_utf8_len(const unsigned char *p, size_t len)
{
    unsigned char c = p[0];

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return len >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (len < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (len < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (p[3] & 0xc0) != 0x80 || (c == 0xf0 && p[1] < 0x90) ||
            (c == 0xf4 && p[1] > 0x8f)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

/* A string starting at p[0] == '"': its length with both quotes, or -1. */
static long json_string_len(const char *p, size_t len)
{
    size_t i = 1, n;
    long u, lo;

    while (i < len) {
        unsigned char c = (unsigned char) p[i];

        if (c == '"') {
            return (long) i + 1;
        }
        if (c < 0x20) {
            return -1;
        }
        if (c != '\\') {
            n = json_utf8_len((const unsigned char *) p + i, len - i);
            if (n == 0) {
                return -1;
            }
            i += n;
            continue;
        }
        if (i + 1 >= len) {
            return -1;
        }
        switch (p[i + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n':
        case 'r': case 't':
            i += 2;
            break;
        case 'u':
            u = json_hex4(p + i + 2, len - i - 2);
            if (u < 0 || (u >= 0xdc00 && u <= 0xdfff)) {
                return -1;                  /* lone low surrogate */
            }
            i += 6;
            if (u >= 0xd800 && u <= 0xdbff) {
                /* a high surrogate needs its low half right after */
                if (i + 1 >= len || p[i] != '\\' || p[i + 1] != 'u') {
                    return -1;
                }
                lo = json_hex4(p + i + 2, len - i - 2);
                if (lo < 0xdc00 || lo > 0xdfff) {
                    return -1;
                }
                i += 6;
            }
            break;
        default:
            return -1;
        }
    }
    return -1;
}

static size_t json_digits(const char *p, size_t len, size_t i)
{
    while (i < len && p[i] >= '0' && p[i] <= '9') {
        i++;
    }
    return i;
}

/* A number at p[0]: its length, or -1 (leading zeros, a bare '-', '.' or
 * exponent without digits). A digit right after a lone 0 ends the value,
 * so "01" is the value 0 followed by garbage. */
static long json_number_len(const char *p, size_t len)
{
    size_t i = 0, j;

    if (p[0] == '-') {
        i++;
    }
    if (i >= len || p[i] < '0' || p[i] > '9') {
        return -1;
    }
    i = p[i] == '0' ? i + 1 : json_digits(p, len, i);
    if (i < len && p[i] == '.') {
        j = json_digits(p, len, i + 1);
        if (j == i + 1) {
            return -1;
        }
        i = j;
    }
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-')) {
            i++;
        }
        j = json_digits(p, len, i);
        if (j == i) {
            return -1;
        }
        i = j;
    }
    return (long) i;
}

static long json_literal_len(const char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    return len >= n && memcmp(p, lit, n) == 0 ? (long) n : -1;
}

/* A scalar at p[0] (not a container): its length or -1. */
static long json_scalar_len(const char *p, size_t len)
{
    switch (p[0]) {
    case '"':
        return json_string_len(p, len);
    case 't':
        return json_literal_len(p, len, "true");
    case 'f':
        return json_literal_len(p, len, "false");
    case 'n':
        return json_literal_len(p, len, "null");
    default:
        return json_number_len(p, len);
    }
}

/*
 * Iterative over nesting: stack[d] is the closing bracket of each open
 * container. After a value (scalar or closed container) the scanner
 * expects ',' or the close of the enclosing container; inside an object,
 * each member is a string, ':' and a value.
 */
long sio_json_value_len(const char *p, size_t len)
{
    char stack[SIO_JSON_DEPTH_MAX];
    size_t i = 0, depth = 0;
    long n;

    if (p == NULL || len == 0) {
        return -1;
    }
    for (;;) {
        /* a value starts at p[i] */
        if (i >= len) {
            return -1;
        }
        if (p[i] == '[' || p[i] == '{') {
            if (depth == SIO_JSON_DEPTH_MAX) {
                return -1;
            }
            stack[depth++] = p[i] == '[' ? ']' : '}';
            i = json_skip_ws(p, len, i + 1);
            if (i < len && p[i] == stack[depth - 1]) {
                i++;                        /* empty container */
                depth--;
                goto after_value;
            }
            if (stack[depth - 1] == '}') {
                goto member;
            }
            continue;
        }
        n = json_scalar_len(p + i, len - i);
        if (n < 0) {
            return -1;
        }
        i += (size_t) n;
after_value:
        if (depth == 0) {
            return (long) i;
        }
        i = json_skip_ws(p, len, i);
        if (i >= len) {
            return -1;
        }
        if (p[i] == stack[depth - 1]) {
            i++;
            depth--;
            goto after_value;
        }
        if (p[i] != ',') {
            return -1;
        }
        i = json_skip_ws(p, len, i + 1);
        if (stack[depth - 1] == ']') {
            continue;
        }
member:
        if (i >= len || p[i] != '"') {
            return -1;
        }
        n = json_string_len(p + i, len - i);
        if (n < 0) {
            return -1;
        }
        i = json_skip_ws(p, len, i + (size_t) n);
        if (i >= len || p[i] != ':') {
            return -1;
        }
        i = json_skip_ws(p, len, i + 1);
    }
}

enum sio_json_kind sio_json_kind(const char *p)
{
    switch (p[0]) {
    case '{': return SIO_JSON_OBJECT;
    case '[': return SIO_JSON_ARRAY;
    case '"': return SIO_JSON_STRING;
    case 't': return SIO_JSON_TRUE;
    case 'f': return SIO_JSON_FALSE;
    case 'n': return SIO_JSON_NULL;
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return SIO_JSON_NUMBER;
    default:
        return SIO_JSON_INVALID;
    }
}

enum sio_json_kind sio_json_check(const char *p, size_t len)
{
    size_t i;
    long n;

    if (p == NULL) {
        return SIO_JSON_INVALID;
    }
    i = json_skip_ws(p, len, 0);
    if (i >= len) {
        return SIO_JSON_INVALID;
    }
    n = sio_json_value_len(p + i, len - i);
    if (n < 0 || json_skip_ws(p, len, i + (size_t) n) != len) {
        return SIO_JSON_INVALID;
    }
    return sio_json_kind(p + i);
}

void sio_json_iter_init(struct sio_json_iter *it, struct mk_ptr value)
{
    it->p = value.data;
    it->len = value.len;
    it->pos = 1;                            /* past the bracket */
}

/* The next value at it->pos (after skipping whitespace and one comma),
 * or 0 at the closing bracket. */
static int json_iter_value(struct sio_json_iter *it, struct mk_ptr *out)
{
    long n;

    it->pos = json_skip_ws(it->p, it->len, it->pos);
    if (it->pos >= it->len || it->p[it->pos] == ']' ||
        it->p[it->pos] == '}') {
        return 0;
    }
    n = sio_json_value_len(it->p + it->pos, it->len - it->pos);
    if (n < 0) {
        it->pos = it->len;                  /* not valid: stop here */
        return 0;
    }
    *out = mk_ptr_make(it->p + it->pos, (size_t) n);
    it->pos = json_skip_ws(it->p, it->len, it->pos + (size_t) n);
    if (it->pos < it->len && (it->p[it->pos] == ',' ||
                              it->p[it->pos] == ':')) {
        it->pos++;
    }
    return 1;
}

int sio_json_array_next(struct sio_json_iter *it, struct mk_ptr *elem)
{
    if (it->p == NULL || it->len < 2) {
        return 0;
    }
    return json_iter_value(it, elem);
}

int sio_json_object_next(struct sio_json_iter *it, struct mk_ptr *key,
                         struct mk_ptr *value)
{
    if (it->p == NULL || it->len < 2) {
        return 0;
    }
    return json_iter_value(it, key) && json_iter_value(it, value);
}

/* Duplicate names: the last one wins, as in JavaScript's JSON.parse and
 * Python's json, so Tremolo reads a body the way the peers do. */
struct mk_ptr sio_json_member(struct mk_ptr object, const char *name)
{
    struct sio_json_iter it;
    struct mk_ptr key, value, found = MK_PTR_NONE;
    size_t n = strlen(name);

    if (object.data == NULL || object.len < 2 || object.data[0] != '{') {
        return found;
    }
    sio_json_iter_init(&it, object);
    while (sio_json_object_next(&it, &key, &value)) {
        if (sio_json_string_equals(key, name, n)) {
            found = value;
        }
    }
    return found;
}

/* Decodes one character of a valid string's body at s[*i] into u[0..4);
 * its byte count. */
static size_t json_string_char(const char *s, size_t *i, char *u)
{
    unsigned long c, lo;
    size_t k = *i;

    if (s[k] != '\\') {
        size_t n = json_utf8_len((const unsigned char *) s + k, 4);

        memcpy(u, s + k, n);
        *i = k + n;
        return n;
    }
    switch (s[k + 1]) {
    case 'b': u[0] = '\b'; break;
    case 'f': u[0] = '\f'; break;
    case 'n': u[0] = '\n'; break;
    case 'r': u[0] = '\r'; break;
    case 't': u[0] = '\t'; break;
    case 'u':
        c = (unsigned long) json_hex4(s + k + 2, 4);
        *i = k + 6;
        if (c >= 0xd800 && c <= 0xdbff) {
            lo = (unsigned long) json_hex4(s + k + 8, 4);
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            *i = k + 12;
        }
        if (c < 0x80) {
            u[0] = (char) c;
            return 1;
        }
        if (c < 0x800) {
            u[0] = (char) (0xc0 | c >> 6);
            u[1] = (char) (0x80 | (c & 0x3f));
            return 2;
        }
        if (c < 0x10000) {
            u[0] = (char) (0xe0 | c >> 12);
            u[1] = (char) (0x80 | ((c >> 6) & 0x3f));
            u[2] = (char) (0x80 | (c & 0x3f));
            return 3;
        }
        u[0] = (char) (0xf0 | c >> 18);
        u[1] = (char) (0x80 | ((c >> 12) & 0x3f));
        u[2] = (char) (0x80 | ((c >> 6) & 0x3f));
        u[3] = (char) (0x80 | (c & 0x3f));
        return 4;
    default:                                /* '"', '\\', '/' */
        u[0] = s[k + 1];
        break;
    }
    *i = k + 2;
    return 1;
}

long sio_json_string_decode(struct mk_ptr str, char *out, size_t outlen)
{
    size_t i = 1, o = 0, n;
    char u[4];

    if (str.data == NULL || str.len < 2) {
        return -1;
    }
    while (i < str.len - 1) {
        n = json_string_char(str.data, &i, u);
        if (o + n > outlen) {
            return -1;
        }
        memcpy(out + o, u, n);
        o += n;
    }
    return (long) o;
}

int sio_json_string_equals(struct mk_ptr str, const char *s, size_t len)
{
    size_t i = 1, o = 0, n;
    char u[4];

    if (str.data == NULL || str.len < 2) {
        return 0;
    }
    while (i < str.len - 1) {
        n = json_string_char(str.data, &i, u);
        if (o + n > len || memcmp(s + o, u, n) != 0) {
            return 0;
        }
        o += n;
    }
    return o == len;
}

/* Invalid UTF-8 in s fails (-1): what Tremolo writes is always valid
 * JSON. Control characters and the two JSON specials are escaped, all
 * else is copied. */
int sio_json_append_string(struct mk_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, start, n;
    char esc[6];
    int ne;

    if (mk_buf_reserve(b, len + 2) < 0 || mk_buf_append(b, "\"", 1) < 0) {
        return -1;
    }
    start = b->len;
    while (i < len) {
        unsigned char c = (unsigned char) s[i];
        size_t run = i;

        while (i < len && (unsigned char) s[i] >= 0x20 && s[i] != '"' &&
               s[i] != '\\' && (unsigned char) s[i] < 0x80) {
            i++;
        }
        if (i > run && mk_buf_append(b, s + run, i - run) < 0) {
            goto error;
        }
        if (i >= len) {
            break;
        }
        c = (unsigned char) s[i];
        if (c >= 0x80) {
            n = json_utf8_len((const unsigned char *) s + i, len - i);
            if (n == 0 || mk_buf_append(b, s + i, n) < 0) {
                goto error;
            }
            i += n;
            continue;
        }
        esc[0] = '\\';
        ne = 2;
        switch (c) {
        case '"':  esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            ne = 6;
            break;
        }
        if (mk_buf_append(b, esc, (size_t) ne) < 0) {
            goto error;
        }
        i++;
    }
    if (mk_buf_append(b, "\"", 1) < 0) {
        goto error;
    }
    return 0;

error:
    b->len = start - 1;                     /* the buffer as it was */
    return -1;
}

int sio_json_uint(struct mk_ptr num, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (num.data == NULL || num.len == 0 || num.len > 16 ||
        (num.data[0] == '0' && num.len > 1)) {
        return -1;
    }
    for (i = 0; i < num.len; i++) {
        if (num.data[i] < '0' || num.data[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t) (num.data[i] - '0');
    }
    if (v >= (UINT64_C(1) << 53)) {
        return -1;
    }
    *out = v;
    return 0;
}
