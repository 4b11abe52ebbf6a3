/*
 * logger: line formatting. Pure functions over a struct logger_entry, kept
 * apart from the plugin glue so that unit tests reach them directly.
 *
 * Every byte that came from the client is escaped: a request line or a
 * header carrying `"` or a newline must not forge a second log line or
 * shift the fields a log parser sees (log injection).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_string.h"
#include "plugins/logger/logger.h"

static const char logger_hex[] = "0123456789abcdef";

/* An output cursor. Field caps guarantee the line fits; the clamp only
 * keeps a future mistake from writing past the buffer. */
struct logger_out {
    char *p;
    size_t len;
};

static void logger_put(struct logger_out *o, const char *s, size_t n)
{
    if (n > LOGGER_LINE_MAX - 1 - o->len)
        n = LOGGER_LINE_MAX - 1 - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void logger_puts(struct logger_out *o, const char *s)
{
    logger_put(o, s, strlen(s));
}

static void logger_put_u64(struct logger_out *o, uint64_t v)
{
    char num[24];

    logger_put(o, num, mk_str_u64(num, v));
}

size_t logger_escape_clf(const char *in, size_t len, char *out, size_t max)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) in[i];

        if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
            if (n + 4 > max)
                break;
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = logger_hex[ch >> 4];
            out[n++] = logger_hex[ch & 0xf];
            continue;
        }
        if (n + 1 > max)
            break;
        out[n++] = (char) ch;
    }
    return n;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0. */
static size_t logger_utf8_len(const unsigned char *s, size_t avail)
{
    size_t need, i;
    unsigned char lo = 0x80, hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 4;
    else
        return 0;
    if (avail < need)
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return need;
}

static size_t logger_json_escape_byte(unsigned char ch, char *esc)
{
    switch (ch) {
    case '"':  memcpy(esc, "\\\"", 2); return 2;
    case '\\': memcpy(esc, "\\\\", 2); return 2;
    case '\n': memcpy(esc, "\\n", 2);  return 2;
    case '\r': memcpy(esc, "\\r", 2);  return 2;
    case '\t': memcpy(esc, "\\t", 2);  return 2;
    default:
        break;
    }
    if (ch < 0x20 || ch >= 0x7f) {
        memcpy(esc, "\\u00", 4);
        esc[4] = logger_hex[ch >> 4];
        esc[5] = logger_hex[ch & 0xf];
        return 6;
    }
    esc[0] = (char) ch;
    return 1;
}

size_t logger_escape_json(const char *in, size_t len, char *out, size_t max)
{
    const unsigned char *s = (const unsigned char *) in;
    size_t i = 0, n = 0;

    while (i < len) {
        char esc[6];
        size_t elen, ulen = s[i] >= 0x80 ? logger_utf8_len(s + i, len - i) : 0;

        if (ulen > 0) {
            if (n + ulen > max)
                break;
            memcpy(out + n, s + i, ulen);
            n += ulen;
            i += ulen;
            continue;
        }
        elen = logger_json_escape_byte(s[i], esc);
        if (n + elen > max)
            break;
        memcpy(out + n, esc, elen);
        n += elen;
        i++;
    }
    return n;
}

static void logger_put_clf(struct logger_out *o, struct mk_ptr p,
                           size_t cap, int dash_if_empty)
{
    if (p.len == 0 && dash_if_empty) {
        logger_put(o, "-", 1);
        return;
    }
    if (cap > LOGGER_LINE_MAX - 1 - o->len)
        cap = LOGGER_LINE_MAX - 1 - o->len;
    o->len += logger_escape_clf(p.data, p.len, o->p + o->len, cap);
}

/* "key":"escaped" or "key":null for an absent value. */
static void logger_put_json_str(struct logger_out *o, const char *key,
                                struct mk_ptr p, int null_if_empty)
{
    size_t cap = LOGGER_FIELD_MAX;

    logger_puts(o, ",\"");
    logger_puts(o, key);
    if (p.len == 0 && null_if_empty) {
        logger_puts(o, "\":null");
        return;
    }
    logger_puts(o, "\":\"");
    if (cap > LOGGER_LINE_MAX - 2 - o->len)
        cap = LOGGER_LINE_MAX - 2 - o->len;
    o->len += logger_escape_json(p.data, p.len, o->p + o->len, cap);
    logger_put(o, "\"", 1);
}

static void logger_put_json_u64(struct logger_out *o, const char *key,
                                uint64_t v)
{
    logger_puts(o, ",\"");
    logger_puts(o, key);
    logger_puts(o, "\":");
    logger_put_u64(o, v);
}

static struct mk_ptr logger_protocol(const char *protocol)
{
    return protocol ? mk_ptr_make(protocol, strlen(protocol)) : MK_PTR_NONE;
}

/*
 * $remote_addr - $remote_user [$time_local] "$request" $status
 * $body_bytes_sent "$http_referer" "$http_user_agent"
 */
size_t logger_format_combined(const struct logger_entry *e, char *out)
{
    struct logger_out o = { out, 0 };
    const char *clf, *iso;

    logger_time_format(e->time, &clf, &iso);
    logger_puts(&o, e->remote_addr ? e->remote_addr : "-");
    logger_puts(&o, " - ");
    logger_put_clf(&o, e->user, LOGGER_FIELD_MAX, 1);
    logger_puts(&o, " [");
    logger_puts(&o, clf);
    logger_puts(&o, "] \"");
    if (!e->protocol) {
        logger_put(&o, "-", 1);
    }
    else {
        logger_put_clf(&o, e->method, 64, 0);
        logger_put(&o, " ", 1);
        logger_put_clf(&o, e->target, LOGGER_FIELD_MAX, 0);
        logger_put(&o, " ", 1);
        logger_put_clf(&o, logger_protocol(e->protocol), 16, 0);
    }
    logger_puts(&o, "\" ");
    logger_put_u64(&o, (uint64_t) (e->status > 0 ? e->status : 0));
    logger_put(&o, " ", 1);
    logger_put_u64(&o, e->bytes);
    logger_puts(&o, " \"");
    logger_put_clf(&o, e->referer, LOGGER_FIELD_MAX, 1);
    logger_puts(&o, "\" \"");
    logger_put_clf(&o, e->user_agent, LOGGER_FIELD_MAX, 1);
    logger_put(&o, "\"", 1);
    out[o.len++] = '\n';
    return o.len;
}

size_t logger_format_json(const struct logger_entry *e, char *out)
{
    struct logger_out o = { out, 0 };
    const char *clf, *iso;
    const char *addr = e->remote_addr ? e->remote_addr : "";

    logger_time_format(e->time, &clf, &iso);
    logger_puts(&o, "{\"time\":\"");
    logger_puts(&o, iso);
    logger_put(&o, "\"", 1);
    logger_put_json_str(&o, "remote_addr", mk_ptr_make(addr, strlen(addr)), 0);
    logger_put_json_str(&o, "remote_user", e->user, 1);
    logger_put_json_str(&o, "method", e->method, 1);
    logger_put_json_str(&o, "uri", e->target, 1);
    logger_put_json_str(&o, "protocol", logger_protocol(e->protocol), 1);
    logger_put_json_u64(&o, "status",
                        (uint64_t) (e->status > 0 ? e->status : 0));
    logger_put_json_u64(&o, "bytes", e->bytes);
    logger_put_json_str(&o, "referer", e->referer, 1);
    logger_put_json_str(&o, "user_agent", e->user_agent, 1);
    logger_put_json_str(&o, "host", e->host, 1);
    logger_put_json_u64(&o, "request_time_ms", e->request_time_ms);
    logger_put(&o, "}", 1);
    out[o.len++] = '\n';
    return o.len;
}

/*
 * The user name of Basic credentials, for %remote_user. Not a validator
 * (the auth plugin decides who gets in): a malformed value gives no user.
 * The decoded password is wiped from the stack at once.
 */
size_t logger_basic_user(struct mk_ptr authorization, char *out,
                         size_t outlen)
{
    struct mk_ptr v = mk_ptr_trim(authorization);
    char cred[768];
    const char *colon;
    long n;
    size_t ulen = 0;

    if (outlen == 0 || v.len < 6 || !mk_str_case_eq(v.data, 5, "Basic", 5) ||
        (v.data[5] != ' ' && v.data[5] != '\t'))
        return 0;
    v = mk_ptr_trim(mk_ptr_make(v.data + 6, v.len - 6));
    n = mk_base64_decode(v.data, v.len, cred, sizeof(cred));
    colon = n > 0 ? memchr(cred, ':', (size_t) n) : NULL;
    if (colon && (size_t) (colon - cred) < outlen) {
        ulen = (size_t) (colon - cred);
        memcpy(out, cred, ulen);
        out[ulen] = '\0';
    }
    explicit_bzero(cred, sizeof(cred));
    return ulen;
}

/* strftime per line would cost a localtime_r (and its tz lock) each time;
 * one conversion per second per thread is enough. */
void logger_time_format(time_t t, const char **clf, const char **iso)
{
    static __thread time_t last = (time_t) -1;
    static __thread char clf_buf[40], iso_buf[40];
    struct tm tm;
    char zone[8];

    if (t != last) {
        localtime_r(&t, &tm);
        strftime(clf_buf, sizeof(clf_buf), "%d/%b/%Y:%H:%M:%S %z", &tm);
        /* %z is +hhmm; ISO 8601 extended form wants +hh:mm. */
        strftime(zone, sizeof(zone), "%z", &tm);
        mk_str_printf(iso_buf, sizeof(iso_buf), "%04d-%02d-%02dT%02d:%02d:%02d"
                      "%.3s:%.2s", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      zone, zone + 3);
        last = t;
    }
    *clf = clf_buf;
    *iso = iso_buf;
}
