/*
 * Engine.IO v4 packets: the polling payload (packets joined by 0x1e,
 * binary as "b" + base64) and one WebSocket frame's packet.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_mem.h"

#include "eio_packet.h"

/* One text packet of a polling payload: its type, or -1. A client never
 * sends OPEN (the server's handshake). */
static int eio_text_type(const char *p, size_t len)
{
    if (len == 0 || p[0] < '1' || p[0] > '6') {
        return -1;
    }
    return p[0] - '0';
}

static size_t eio_next_len(const char *p, size_t len)
{
    const char *rs = memchr(p, EIO_RS, len);

    return rs ? (size_t) (rs - p) : len;
}

/*
 * Two passes over the payload: the first checks every packet (decoding
 * the binary ones into the scratch buffer, since only a decode proves
 * base64 canonical) and sizes the scratch buffer for the largest; the
 * second decodes again and delivers. A malformed POST delivers nothing.
 */
int eio_payload_decode(const char *p, size_t len,
                       int (*fn)(void *ctx, const struct eio_packet *pk),
                       void *ctx)
{
    struct eio_packet pk;
    struct mk_buf scratch;
    char none[1];
    size_t pos, n, most = 0;
    long dl;
    int pass, ret = 0;

    if (p == NULL || len == 0) {
        return -1;
    }
    mk_buf_init(&scratch);
    for (pass = 0; pass < 2; pass++) {
        for (pos = 0; pos <= len; pos += n + 1) {
            n = eio_next_len(p + pos, len - pos);
            if (n == 0) {
                ret = -1;                   /* empty packet, or no packet */
                goto done;
            }
            memset(&pk, 0, sizeof(pk));
            if (p[pos] == 'b') {
                if (pass == 0 && (n - 1) / 4 * 3 > most) {
                    most = (n - 1) / 4 * 3;
                    if (mk_buf_reserve(&scratch, most) < 0) {
                        ret = -1;
                        goto done;
                    }
                }
                dl = mk_base64_decode(p + pos + 1, n - 1,
                                      scratch.data ? scratch.data : none,
                                      scratch.size);
                if (dl < 0) {
                    ret = -1;
                    goto done;
                }
                pk.type = EIO_MESSAGE;
                pk.binary = 1;
                pk.data = scratch.data ? scratch.data : none;
                pk.len = (size_t) dl;
            } else {
                int t = eio_text_type(p + pos, n);

                if (t < 0) {
                    ret = -1;
                    goto done;
                }
                pk.type = (enum eio_type) t;
                pk.data = p + pos + 1;
                pk.len = n - 1;
            }
            if (pass == 1) {
                ret = fn(ctx, &pk);
                if (ret != 0) {
                    goto done;
                }
            }
        }
    }

done:
    mk_buf_release(&scratch);
    return ret;
}

int eio_frame_decode(const char *p, size_t len, int binary_frame,
                     struct eio_packet *out)
{
    memset(out, 0, sizeof(*out));
    if (binary_frame) {
        out->type = EIO_MESSAGE;
        out->binary = 1;
        out->data = p;
        out->len = len;
        return 0;
    }
    if (len == 0 || p[0] < '0' || p[0] > '6') {
        return -1;
    }
    out->type = (enum eio_type) (p[0] - '0');
    out->data = p + 1;
    out->len = len - 1;
    return 0;
}

int eio_payload_append(struct mk_buf *b, const struct eio_packet *pk)
{
    size_t start = b->len, enc;
    long n;
    char c;

    enc = pk->binary ? (pk->len + 2) / 3 * 4 + 1 : pk->len;
    if (mk_buf_reserve(b, enc + 2) < 0) {
        return -1;
    }
    if (start > 0) {
        b->data[b->len++] = EIO_RS;
    }
    if (pk->binary) {
        b->data[b->len++] = 'b';
        n = mk_base64_encode(pk->data, pk->len, b->data + b->len,
                             b->size - b->len);
        if (n < 0) {
            b->len = start;
            return -1;
        }
        b->len += (size_t) n;
        return 0;
    }
    c = (char) ('0' + (int) pk->type);
    b->data[b->len++] = c;
    if (pk->len > 0) {
        memcpy(b->data + b->len, pk->data, pk->len);
        b->len += pk->len;
    }
    return 0;
}

/* The sid is the server's own token: characters that would need a JSON
 * escape are refused rather than escaped. */
long eio_open_json(char *out, size_t outlen, const char *sid,
                   int upgrade_websocket, uint64_t ping_interval_ms,
                   uint64_t ping_timeout_ms, uint64_t max_payload)
{
    const char *s;
    int n;

    for (s = sid; *s; s++) {
        if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f ||
            *s == '"' || *s == '\\') {
            return -1;
        }
    }
    n = snprintf(out, outlen,
                 "{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%" PRIu64
                 ",\"pingTimeout\":%" PRIu64 ",\"maxPayload\":%" PRIu64 "}",
                 sid, upgrade_websocket ? "\"websocket\"" : "",
                 ping_interval_ms, ping_timeout_ms, max_payload);
    if (n < 0 || (size_t) n >= outlen) {
        return -1;
    }
    return n;
}
