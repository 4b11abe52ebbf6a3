/*
 * permessage-deflate (RFC 7692): negotiation and per-message zlib streams.
 * See ws_deflate.h for the contracts and the memory model.
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "mk_core/mk_mem.h"
#include "plugins/websocket/ws_deflate.h"

/* sizeof(deflate_state) and sizeof(struct inflate_state) are private to
 * zlib (5952 and 7160 bytes in zlib 1.2.13 on LP64, which zconf.h calls "a
 * few kilobytes for small objects"). Rounded up so that ws_deflate_memory()
 * stays an upper bound across zlib builds; the unit test holds it within
 * 1 KiB of what zlib really asks for. */
#define WS_ZLIB_DEFLATE_STATE 6144
#define WS_ZLIB_INFLATE_STATE 7424
/* What one deflateInit2 (state, window, prev, head, pending) and one
 * inflateInit2 plus its lazily allocated window ask for, our z_stream
 * included: each allocation carries one header. */
#define WS_ZLIB_DEFLATE_ALLOCS 6
#define WS_ZLIB_INFLATE_ALLOCS 3

/* Output grows by at least this much per zlib call: big enough that a
 * message's output takes a few calls, and well above the 6 bytes below
 * which Z_SYNC_FLUSH may repeat its flush marker (zlib.h, deflate()). */
#define WS_DEFLATE_CHUNK 16384
/* zlib counts in uInt: larger buffers are handed over in slices. */
#define WS_ZLIB_SLICE ((size_t) 1 << 30)

/* The empty stored block a Z_SYNC_FLUSH ends with; RFC 7692 7.2.1 strips
 * it from every message and 7.2.2 puts it back before inflating. */
static const uint8_t ws_deflate_tail[4] = { 0x00, 0x00, 0xff, 0xff };

/* Each zlib allocation is prefixed by its size so that zfree, which zlib
 * calls without one, can keep the per-connection count exact. The union
 * keeps what follows aligned as malloc would. */
union ws_deflate_hdr {
    size_t size;
    max_align_t align;
};

struct ws_deflate {
    /* NULL until the direction's first message, and again after each
     * message when that direction runs without context takeover. Kept out
     * of line (112 bytes each) so an idle connection pays only for this
     * struct. */
    z_stream *def;
    z_stream *inf;
    size_t held;                /* bytes live in zlib and our z_streams */
    size_t inflated;            /* output of the message being inflated */
    int inf_ended;              /* the message's DEFLATE stream has ended */
    struct ws_deflate_params p;
    int mem_level;
};

static int ws_deflate_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ------------------------------------------------------------------ */
/* Negotiation                                                         */
/* ------------------------------------------------------------------ */

#define WS_PMD_NAME "permessage-deflate"

enum {
    WS_PARAM_SERVER_NCT,
    WS_PARAM_CLIENT_NCT,
    WS_PARAM_SERVER_BITS,
    WS_PARAM_CLIENT_BITS,
    WS_PARAM_COUNT
};

static const struct {
    const char *name;
    size_t len;
} ws_deflate_param_names[WS_PARAM_COUNT] = {
    [WS_PARAM_SERVER_NCT]  = { "server_no_context_takeover", 26 },
    [WS_PARAM_CLIENT_NCT]  = { "client_no_context_takeover", 26 },
    [WS_PARAM_SERVER_BITS] = { "server_max_window_bits", 22 },
    [WS_PARAM_CLIENT_BITS] = { "client_max_window_bits", 22 },
};

/* One permessage-deflate offer as read so far. */
struct ws_deflate_offer {
    unsigned seen;              /* bit per WS_PARAM_*, to catch duplicates */
    int bad;                    /* declined: unknown, duplicate or invalid */
    int server_nct;
    int client_nct;
    int server_bits;            /* 0: absent */
    int client_bits;            /* -1: absent, 0: present without value */
};

struct ws_deflate_cursor {
    const unsigned char *p;
    const unsigned char *end;
};

/* RFC 7230 tchar. */
static int ws_deflate_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z')) {
        return 1;
    }
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
        return 1;
    }
    return 0;
}

static void ws_deflate_skip_ows(struct ws_deflate_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) {
        c->p++;
    }
}

/* Returns the token's length (0 when there is none). */
static size_t ws_deflate_token(struct ws_deflate_cursor *c,
                               const char **tok)
{
    const unsigned char *start = c->p;

    while (c->p < c->end && ws_deflate_is_tchar(*c->p)) {
        c->p++;
    }
    *tok = (const char *) start;
    return (size_t) (c->p - start);
}

/* Reads a quoted-string (RFC 7230 3.2.6) and returns its inside, escapes
 * still in place, or -1 when it is malformed or unterminated. */
static int ws_deflate_quoted(struct ws_deflate_cursor *c, const char **val,
                             size_t *len)
{
    const unsigned char *start;
    unsigned char ch;

    c->p++;                                     /* the opening quote */
    start = c->p;
    while (c->p < c->end) {
        ch = *c->p;
        if (ch == '"') {
            *val = (const char *) start;
            *len = (size_t) (c->p - start);
            c->p++;
            return 0;
        }
        if (ch == '\\') {
            c->p++;
            if (c->p == c->end) {
                return -1;
            }
            ch = *c->p;
            if (ch != '\t' && ch != ' ' && (ch < 0x21 || ch == 0x7f)) {
                return -1;
            }
        }
        else if (ch != '\t' && ch != ' ' && (ch < 0x21 || ch == 0x7f)) {
            return -1;
        }
        c->p++;
    }
    return -1;
}

/* A window size: a decimal 8..15 without leading zeroes (RFC 7692
 * 7.1.2.1), after unescaping a quoted-string (RFC 6455 9.1 makes "10" and
 * 10 the same value). Returns -1 for anything else. */
static int ws_deflate_window_value(const char *v, size_t len, int quoted)
{
    char digits[2];
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (quoted && v[i] == '\\') {
            i++;                /* the parser saw a character follow */
        }
        if (n == sizeof(digits)) {
            return -1;
        }
        digits[n++] = v[i];
    }
    if (n == 1 && (digits[0] == '8' || digits[0] == '9')) {
        return digits[0] - '0';
    }
    if (n == 2 && digits[0] == '1' && digits[1] >= '0' && digits[1] <= '5') {
        return 10 + (digits[1] - '0');
    }
    return -1;
}

static void ws_deflate_offer_param(struct ws_deflate_offer *o,
                                   const char *name, size_t nlen,
                                   const char *val, size_t vlen,
                                   int has_val, int quoted)
{
    int i, bits;

    for (i = 0; i < WS_PARAM_COUNT; i++) {
        if (nlen == ws_deflate_param_names[i].len &&
            memcmp(name, ws_deflate_param_names[i].name, nlen) == 0) {
            break;
        }
    }
    if (i == WS_PARAM_COUNT || (o->seen & (1u << i))) {
        o->bad = 1;
        return;
    }
    o->seen |= 1u << i;

    bits = has_val ? ws_deflate_window_value(val, vlen, quoted) : 0;
    switch (i) {
    case WS_PARAM_SERVER_NCT:
    case WS_PARAM_CLIENT_NCT:
        if (has_val) {
            o->bad = 1;
        }
        else if (i == WS_PARAM_SERVER_NCT) {
            o->server_nct = 1;
        }
        else {
            o->client_nct = 1;
        }
        break;
    case WS_PARAM_SERVER_BITS:
        /* RFC 7692 7.1.2.1: the value is mandatory in an offer. */
        if (!has_val || bits < 0) {
            o->bad = 1;
        }
        o->server_bits = bits;
        break;
    case WS_PARAM_CLIENT_BITS:
        if (has_val && bits < 0) {
            o->bad = 1;
        }
        o->client_bits = bits;
        break;
    }
}

/* Decides one well-formed offer. Returns 1 and fills out and resp, or 0. */
static int ws_deflate_offer_accept(const struct ws_deflate_offer *o,
                                   const struct ws_deflate_policy *pol,
                                   struct ws_deflate_params *out,
                                   char *resp, size_t resp_size)
{
    char sbits[48] = "", cbits[48] = "";
    int wb = pol->window_bits;
    int s_bits, c_bits, snct, cnct;
    int n;

    /* Without client_max_window_bits in the offer we may not answer it
     * (RFC 7692 7.1.2.2) and the client may then use a 32 KiB window: the
     * inflater would have to break the policy, so the offer is declined. */
    if (o->client_bits < 0) {
        if (wb < 15) {
            return 0;
        }
        c_bits = 15;
    }
    else {
        c_bits = o->client_bits == 0 || o->client_bits > wb ? wb
                                                            : o->client_bits;
        if (c_bits < 15) {
            snprintf(cbits, sizeof(cbits), "; client_max_window_bits=%d",
                     c_bits);
        }
    }
    /* The offered value must be answered with the same or a smaller one;
     * without an offer we still announce a policy below 15 (RFC 7692
     * 7.1.2.1 allows it) so the client can inflate with a smaller window. */
    s_bits = o->server_bits && o->server_bits < wb ? o->server_bits : wb;
    if (o->server_bits || s_bits < 15) {
        snprintf(sbits, sizeof(sbits), "; server_max_window_bits=%d", s_bits);
    }
    snct = o->server_nct || !pol->context_takeover;
    /* client_no_context_takeover in an offer is only a hint (7.1.1.2);
     * answering it binds the client and lets us drop the inflater between
     * messages, so it is always taken. */
    cnct = o->client_nct || !pol->context_takeover;

    n = snprintf(resp, resp_size, WS_PMD_NAME "%s%s%s%s",
                 snct ? "; server_no_context_takeover" : "",
                 cnct ? "; client_no_context_takeover" : "", sbits, cbits);
    if (n < 0 || (size_t) n >= resp_size) {
        if (resp_size > 0) {
            resp[0] = '\0';
        }
        return 0;
    }
    out->server_no_context_takeover = snct;
    out->client_no_context_takeover = cnct;
    out->server_max_window_bits = s_bits;
    out->client_max_window_bits = c_bits;
    return 1;
}

/* A flat parser of the whole value: every list element is read, so that a
 * syntax error anywhere is reported even after an offer was taken. */
int ws_deflate_negotiate(const char *value, size_t len,
                         const struct ws_deflate_policy *policy,
                         struct ws_deflate_params *out,
                         char *resp, size_t resp_size)
{
    struct ws_deflate_cursor c;
    struct ws_deflate_offer o;
    const char *name, *val;
    size_t nlen, vlen;
    int policy_ok, accepted = 0, is_pmd, has_val, quoted;

    memset(out, 0, sizeof(*out));
    if (resp_size > 0) {
        resp[0] = '\0';
    }
    policy_ok = policy->window_bits >= 9 && policy->window_bits <= 15;
    c.p = (const unsigned char *) value;
    c.end = c.p + len;

    for (;;) {
        ws_deflate_skip_ows(&c);
        if (c.p == c.end) {
            break;
        }
        if (*c.p == ',') {              /* empty elements are allowed */
            c.p++;
            continue;
        }
        nlen = ws_deflate_token(&c, &name);
        if (nlen == 0) {
            goto error;
        }
        is_pmd = !accepted && policy_ok && nlen == sizeof(WS_PMD_NAME) - 1 &&
                 memcmp(name, WS_PMD_NAME, nlen) == 0;
        memset(&o, 0, sizeof(o));
        o.client_bits = -1;

        for (;;) {
            ws_deflate_skip_ows(&c);
            if (c.p == c.end || *c.p == ',') {
                break;
            }
            if (*c.p != ';') {
                goto error;
            }
            c.p++;
            ws_deflate_skip_ows(&c);
            nlen = ws_deflate_token(&c, &name);
            if (nlen == 0) {
                goto error;
            }
            ws_deflate_skip_ows(&c);
            has_val = quoted = 0;
            val = NULL;
            vlen = 0;
            if (c.p < c.end && *c.p == '=') {
                c.p++;
                ws_deflate_skip_ows(&c);
                has_val = 1;
                if (c.p < c.end && *c.p == '"') {
                    if (ws_deflate_quoted(&c, &val, &vlen) != 0) {
                        goto error;
                    }
                    quoted = 1;
                }
                else if ((vlen = ws_deflate_token(&c, &val)) == 0) {
                    goto error;
                }
            }
            if (is_pmd) {
                ws_deflate_offer_param(&o, name, nlen, val, vlen, has_val,
                                       quoted);
            }
        }
        if (is_pmd && !o.bad) {
            accepted = ws_deflate_offer_accept(&o, policy, out, resp,
                                               resp_size);
        }
    }
    return accepted;

error:
    memset(out, 0, sizeof(*out));
    if (resp_size > 0) {
        resp[0] = '\0';
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

/* zlib rejects 8 for raw deflate (deflateInit2 returns Z_STREAM_ERROR), so
 * an agreed server_max_window_bits=8 is compressed with 9. That is still
 * within the agreement: zlib never emits a distance beyond its MAX_DIST,
 * window size - MIN_LOOKAHEAD = 512 - 262 = 250 bytes with 9 bits, which a
 * peer inflating with a 256-byte window can resolve (the unit test checks
 * this against zlib's own raw inflate at 8 bits). */
static int ws_deflate_server_bits(const struct ws_deflate_params *p)
{
    return ws_deflate_clamp(p->server_max_window_bits, 9, 15);
}

static size_t ws_deflate_def_bytes(const struct ws_deflate_params *p,
                                   int mem_level)
{
    mem_level = ws_deflate_clamp(mem_level, 1, 9);
    return ((size_t) 1 << (ws_deflate_server_bits(p) + 2)) +
           ((size_t) 1 << (mem_level + 9)) + WS_ZLIB_DEFLATE_STATE +
           sizeof(z_stream) +
           WS_ZLIB_DEFLATE_ALLOCS * sizeof(union ws_deflate_hdr);
}

static size_t ws_deflate_inf_bytes(const struct ws_deflate_params *p)
{
    int bits = ws_deflate_clamp(p->client_max_window_bits, 8, 15);

    return ((size_t) 1 << bits) + WS_ZLIB_INFLATE_STATE + sizeof(z_stream) +
           WS_ZLIB_INFLATE_ALLOCS * sizeof(union ws_deflate_hdr);
}

size_t ws_deflate_memory(const struct ws_deflate_params *p, int mem_level)
{
    return (p->server_no_context_takeover ? 0
                                          : ws_deflate_def_bytes(p, mem_level)) +
           (p->client_no_context_takeover ? 0 : ws_deflate_inf_bytes(p));
}

size_t ws_deflate_memory_peak(const struct ws_deflate_params *p,
                              int mem_level)
{
    return ws_deflate_def_bytes(p, mem_level) + ws_deflate_inf_bytes(p);
}

size_t ws_deflate_held(const struct ws_deflate *d)
{
    return d->held;
}

static void *ws_deflate_mem_alloc(struct ws_deflate *d, size_t size)
{
    union ws_deflate_hdr *h;

    if (size > SIZE_MAX - sizeof(*h)) {
        return NULL;
    }
    size += sizeof(*h);
    h = mk_mem_alloc(size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    d->held += size;
    return h + 1;
}

static void ws_deflate_mem_free(struct ws_deflate *d, void *ptr)
{
    union ws_deflate_hdr *h;

    if (ptr == NULL) {
        return;
    }
    h = (union ws_deflate_hdr *) ptr - 1;
    d->held -= h->size;
    mk_mem_free(h);
}

/* zlib's allocation hooks: opaque is the connection's struct ws_deflate. */
static voidpf ws_deflate_zalloc(voidpf opaque, uInt items, uInt size)
{
    if (size != 0 && items > SIZE_MAX / size) {
        return Z_NULL;
    }
    return ws_deflate_mem_alloc(opaque, (size_t) items * size);
}

static void ws_deflate_zfree(voidpf opaque, voidpf ptr)
{
    ws_deflate_mem_free(opaque, ptr);
}

static z_stream *ws_deflate_stream_create(struct ws_deflate *d)
{
    z_stream *z = ws_deflate_mem_alloc(d, sizeof(*z));

    if (z != NULL) {
        memset(z, 0, sizeof(*z));
        z->zalloc = ws_deflate_zalloc;
        z->zfree = ws_deflate_zfree;
        z->opaque = d;
    }
    return z;
}

/* ------------------------------------------------------------------ */
/* Streams                                                             */
/* ------------------------------------------------------------------ */

struct ws_deflate *ws_deflate_create(const struct ws_deflate_params *p,
                                     int mem_level)
{
    struct ws_deflate *d = mk_mem_zalloc(sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->p = *p;
    d->p.server_max_window_bits =
        ws_deflate_clamp(p->server_max_window_bits, 8, 15);
    d->p.client_max_window_bits =
        ws_deflate_clamp(p->client_max_window_bits, 8, 15);
    d->mem_level = ws_deflate_clamp(mem_level, 1, 9);
    return d;
}

static void ws_deflate_def_end(struct ws_deflate *d)
{
    if (d->def != NULL) {
        deflateEnd(d->def);     /* Z_DATA_ERROR mid-message is expected */
        ws_deflate_mem_free(d, d->def);
        d->def = NULL;
    }
}

static void ws_deflate_inf_end(struct ws_deflate *d)
{
    if (d->inf != NULL) {
        inflateEnd(d->inf);
        ws_deflate_mem_free(d, d->inf);
        d->inf = NULL;
    }
    d->inflated = 0;
    d->inf_ended = 0;
}

void ws_deflate_destroy(struct ws_deflate *d)
{
    if (d == NULL) {
        return;
    }
    ws_deflate_def_end(d);
    ws_deflate_inf_end(d);
    mk_mem_free(d);
}

static int ws_deflate_def_start(struct ws_deflate *d)
{
    z_stream *z = ws_deflate_stream_create(d);

    if (z == NULL) {
        return -1;
    }
    /* Level 6: zlib's default, where its speed/ratio curve flattens. */
    if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                     -ws_deflate_server_bits(&d->p), d->mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        ws_deflate_mem_free(d, z);
        return -1;
    }
    d->def = z;
    return 0;
}

static int ws_deflate_inf_start(struct ws_deflate *d)
{
    z_stream *z = ws_deflate_stream_create(d);
    int ret;

    if (z == NULL) {
        return WS_DEFLATE_NOMEM;
    }
    /* The agreed client window, not 15: the window is most of an
     * inflater's memory. zlib resolves a distance from its window or from
     * the output of the current inflate() call, so a client that goes
     * beyond its agreement is caught ("invalid distance too far back")
     * when it reaches past both; memory never grows beyond the window. */
    ret = inflateInit2(z, -d->p.client_max_window_bits);
    if (ret != Z_OK) {
        ws_deflate_mem_free(d, z);
        return ret == Z_MEM_ERROR ? WS_DEFLATE_NOMEM : WS_DEFLATE_CORRUPT;
    }
    d->inf = z;
    return WS_DEFLATE_OK;
}

int ws_deflate_deflate(struct ws_deflate *d, const uint8_t *in, size_t len,
                       struct mk_buf *out)
{
    size_t start = out->len, slice, room;
    z_stream *z;
    int flush;

    if (d->def == NULL && ws_deflate_def_start(d) != 0) {
        goto error;
    }
    z = d->def;
    do {
        slice = len > WS_ZLIB_SLICE ? WS_ZLIB_SLICE : len;
        z->next_in = (z_const Bytef *) in;
        z->avail_in = (uInt) slice;
        len -= slice;
        if (len > 0) {          /* in may be NULL for an empty message */
            in += slice;
        }
        flush = len == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        /* Until zlib leaves output room unused: only then has it taken all
         * the input and, with Z_SYNC_FLUSH, completed the flush. */
        do {
            if (mk_buf_reserve(out, WS_DEFLATE_CHUNK) != 0) {
                goto error;
            }
            room = out->size - out->len;
            if (room > WS_ZLIB_SLICE) {
                room = WS_ZLIB_SLICE;
            }
            z->next_out = (Bytef *) out->data + out->len;
            z->avail_out = (uInt) room;
            if (deflate(z, flush) == Z_STREAM_ERROR) {
                goto error;
            }
            out->len += room - z->avail_out;
        } while (z->avail_out == 0);
        if (z->avail_in != 0) {
            goto error;
        }
    } while (len > 0);

    /* An empty message after a flush gives zlib nothing to do
     * (Z_BUF_ERROR, no output). Its payload is then what a fresh stream
     * would give: the single byte 00 that, with the tail put back, forms
     * an empty stored block. */
    if (out->len == start) {
        out->data[out->len++] = 0x00;
        goto done;
    }
    if (out->len - start < sizeof(ws_deflate_tail) ||
        memcmp(out->data + out->len - sizeof(ws_deflate_tail),
               ws_deflate_tail, sizeof(ws_deflate_tail)) != 0) {
        goto error;
    }
    out->len -= sizeof(ws_deflate_tail);
done:
    /* deflateEnd rather than deflateReset: the point of no context
     * takeover here is that an idle connection holds no zlib memory. The
     * price is a deflateInit2 (and its hash table clear) per message. */
    if (d->p.server_no_context_takeover) {
        ws_deflate_def_end(d);
    }
    return 0;

error:
    out->len = start;
    ws_deflate_def_end(d);
    return -1;
}

/* Inflates all of in, appending to out while counting this message's
 * output against max. */
static int ws_deflate_inf_run(struct ws_deflate *d, const uint8_t *in,
                              size_t len, struct mk_buf *out, size_t max)
{
    z_stream *z = d->inf;
    size_t left, want, room, produced;
    int ret;

    z->avail_in = 0;
    if (d->inflated > max) {            /* a smaller max than last piece's */
        return WS_DEFLATE_TOO_BIG;
    }
    for (;;) {
        if (z->avail_in == 0 && len > 0) {
            want = len > WS_ZLIB_SLICE ? WS_ZLIB_SLICE : len;
            z->next_in = (z_const Bytef *) in;
            z->avail_in = (uInt) want;
            in += want;
            len -= want;
        }
        /* Room for at most one byte past the limit: producing it is how
         * the bomb is seen, and nothing more is ever inflated. */
        left = max - d->inflated;
        want = left < WS_DEFLATE_CHUNK ? left + 1 : WS_DEFLATE_CHUNK;
        if (mk_buf_reserve(out, want) != 0) {
            return WS_DEFLATE_NOMEM;
        }
        room = out->size - out->len;
        if (left < room) {
            room = left + 1;
        }
        if (room > WS_ZLIB_SLICE) {
            room = WS_ZLIB_SLICE;
        }
        z->next_out = (Bytef *) out->data + out->len;
        z->avail_out = (uInt) room;
        ret = inflate(z, Z_SYNC_FLUSH);
        produced = room - z->avail_out;
        out->len += produced;
        d->inflated += produced;
        if (d->inflated > max) {
            out->len -= d->inflated - max;
            return WS_DEFLATE_TOO_BIG;
        }
        switch (ret) {
        case Z_STREAM_END:
            /* A block with BFINAL set (RFC 7692 7.2.3.4). Whatever follows
             * in the message, our tail included, lies past the end of the
             * DEFLATE data and is ignored, as a DEFLATE decoder does; the
             * tail may not even be a whole block there (it relies on the
             * sender's last byte holding a stored block's header bits). */
            d->inf_ended = 1;
            return WS_DEFLATE_OK;
        case Z_OK:
        case Z_BUF_ERROR:       /* no progress: out of input */
            if (z->avail_in == 0 && len == 0 && z->avail_out > 0) {
                return WS_DEFLATE_OK;
            }
            continue;
        case Z_MEM_ERROR:
            return WS_DEFLATE_NOMEM;
        default:                /* Z_DATA_ERROR, Z_NEED_DICT */
            return WS_DEFLATE_CORRUPT;
        }
    }
}

int ws_deflate_inflate_piece(struct ws_deflate *d, const uint8_t *in,
                             size_t len, int last, struct mk_buf *out,
                             size_t max)
{
    int ret;

    if (d->inf == NULL && (ret = ws_deflate_inf_start(d)) != WS_DEFLATE_OK) {
        goto error;
    }
    if (!d->inf_ended) {
        ret = ws_deflate_inf_run(d, in, len, out, max);
        if (ret != WS_DEFLATE_OK) {
            goto error;
        }
    }
    if (!last) {
        return WS_DEFLATE_OK;
    }
    if (!d->inf_ended) {
        ret = ws_deflate_inf_run(d, ws_deflate_tail, sizeof(ws_deflate_tail),
                                 out, max);
        if (ret != WS_DEFLATE_OK) {
            goto error;
        }
        /* A well-formed message ends on a block boundary, so after the
         * tail the inflater waits for a block header (data_type bit 128,
         * zlib.h). Otherwise the message was cut short and its last block
         * ate the tail. */
        if (!d->inf_ended && !(d->inf->data_type & 128)) {
            ret = WS_DEFLATE_CORRUPT;
            goto error;
        }
    }
    d->inflated = 0;
    if (d->p.client_no_context_takeover) {
        ws_deflate_inf_end(d);
    }
    else if (d->inf_ended) {
        /* The next message starts a new stream. Its history is gone: a
         * sender that ended its stream cannot refer back past the end. */
        inflateReset(d->inf);
        d->inf_ended = 0;
    }
    return WS_DEFLATE_OK;

error:
    /* The context is lost either way; freeing it now keeps a failing
     * connection from holding zlib memory until it is closed. */
    ws_deflate_inf_end(d);
    return ret;
}

int ws_deflate_inflate(struct ws_deflate *d, const uint8_t *in, size_t len,
                       struct mk_buf *out, size_t max)
{
    return ws_deflate_inflate_piece(d, in, len, 1, out, max);
}
