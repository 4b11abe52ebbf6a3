/*
 * Fuzz target for plugins/websocket/ws_deflate.c: the
 * Sec-WebSocket-Extensions parser and the permessage-deflate inflater.
 *
 * Byte 0 picks the policy and the mode:
 *   bits 0-2  policy window_bits 9..15      bit 3  policy context_takeover
 *   bits 4-5  mode: 0-1 negotiate, 2 inflate, 3 deflate round trip
 *   bits 6-7  response buffer: full, or 40/80/120 bytes
 * Negotiate: the rest is the header value. The result is -1, 0 or 1; on 1
 * the parameters are within range and policy, and the response, read back
 * as an offer under the same policy, is accepted with the same parameters
 * and the same response. On 0 and -1 nothing is left in out or resp.
 * Inflate: byte 1 gives client_max_window_bits (bits 0-2, + 8) and
 * client_no_context_takeover (bit 3), byte 2 where the message is split
 * into two pieces; the rest is inflated twice (two messages) with a 64 KiB
 * limit that must hold whatever the result.
 * Round trip: byte 1 gives server_max_window_bits and
 * server_no_context_takeover the same way and mem_level (bits 4-7); the
 * rest is compressed twice and must inflate back under a mirrored peer.
 * Any violation traps; ASan/LSan check the rest.
 */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/websocket/ws_deflate.c"
#include "fuzz_util.h"


#define FUZZ_MAX_OUT 65536

static void fuzz_negotiate(const uint8_t *data, size_t size, uint8_t mode)
{
    struct ws_deflate_policy pol;
    struct ws_deflate_params p, p2;
    char *value, *resp, resp2[WS_DEFLATE_RESP_MAX];
    size_t resp_size;
    int ret;

    pol.window_bits = 9 + (mode & 7) % 7;
    pol.context_takeover = (mode >> 3) & 1;
    pol.mem_level = 8;
    resp_size = (mode >> 6) ? (size_t) 40 * (mode >> 6) : WS_DEFLATE_RESP_MAX;
    /* Exactly sized copies so ASan sees any access past either end. */
    value = mk_mem_alloc(size ? size : 1);
    resp = mk_mem_alloc(resp_size);
    FUZZ_CHECK(value != NULL && resp != NULL);
    memcpy(value, data, size);
    memset(resp, 'x', resp_size);

    ret = ws_deflate_negotiate(value, size, &pol, &p, resp, resp_size);
    FUZZ_CHECK(ret >= -1 && ret <= 1);
    if (ret != 1) {
        FUZZ_CHECK(resp[0] == '\0');
        FUZZ_CHECK(p.server_no_context_takeover == 0 &&
                   p.client_no_context_takeover == 0 &&
                   p.server_max_window_bits == 0 &&
                   p.client_max_window_bits == 0);
        goto done;
    }
    FUZZ_CHECK(memchr(resp, '\0', resp_size) != NULL);
    FUZZ_CHECK(strncmp(resp, "permessage-deflate", 18) == 0);
    FUZZ_CHECK(p.server_max_window_bits >= 8 &&
               p.server_max_window_bits <= pol.window_bits);
    FUZZ_CHECK(p.client_max_window_bits >= 8 &&
               p.client_max_window_bits <= pol.window_bits);
    FUZZ_CHECK(p.server_no_context_takeover == 0 ||
               p.server_no_context_takeover == 1);
    FUZZ_CHECK(p.client_no_context_takeover == 0 ||
               p.client_no_context_takeover == 1);
    if (!pol.context_takeover) {
        FUZZ_CHECK(p.server_no_context_takeover &&
                   p.client_no_context_takeover);
    }

    ret = ws_deflate_negotiate(resp, strlen(resp), &pol, &p2, resp2,
                               sizeof(resp2));
    FUZZ_CHECK(ret == 1);
    FUZZ_CHECK(strcmp(resp, resp2) == 0);
    FUZZ_CHECK(memcmp(&p, &p2, sizeof(p)) == 0);

done:
    mk_mem_free(value);
    mk_mem_free(resp);
}

static void fuzz_inflate(const uint8_t *data, size_t size)
{
    struct ws_deflate_params p;
    struct ws_deflate *d;
    struct mk_buf out;
    size_t split;
    int i, ret;

    if (size < 2) {
        return;
    }
    p.server_no_context_takeover = 1;
    p.server_max_window_bits = 15;
    p.client_max_window_bits = 8 + (data[0] & 7);
    p.client_no_context_takeover = (data[0] >> 3) & 1;
    split = data[1] % (size - 1);          /* 0 .. size - 2 */
    data += 2;
    size -= 2;

    d = ws_deflate_create(&p, 8);
    FUZZ_CHECK(d != NULL);
    mk_buf_init(&out);
    for (i = 0; i < 2; i++) {
        out.len = 0;
        ret = ws_deflate_inflate_piece(d, data, split, 0, &out, FUZZ_MAX_OUT);
        FUZZ_CHECK(ret == WS_DEFLATE_OK || ret == WS_DEFLATE_CORRUPT ||
                   ret == WS_DEFLATE_TOO_BIG);
        FUZZ_CHECK(out.len <= FUZZ_MAX_OUT);
        if (ret == WS_DEFLATE_OK) {
            ret = ws_deflate_inflate_piece(d, data + split, size - split, 1,
                                           &out, FUZZ_MAX_OUT);
        }
        FUZZ_CHECK(ret == WS_DEFLATE_OK || ret == WS_DEFLATE_CORRUPT ||
                   ret == WS_DEFLATE_TOO_BIG);
        FUZZ_CHECK(out.len <= FUZZ_MAX_OUT);
        /* Failure, or a finished message without takeover, holds nothing. */
        if (ret != WS_DEFLATE_OK || p.client_no_context_takeover) {
            FUZZ_CHECK(ws_deflate_held(d) == 0 && d->inf == NULL);
        }
        if (ret != WS_DEFLATE_OK) {
            break;
        }
    }
    mk_buf_release(&out);
    ws_deflate_destroy(d);
}

static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    struct ws_deflate_params p, mp;
    struct ws_deflate *srv, *cli;
    struct mk_buf z, plain;
    int i;

    if (size < 1) {
        return;
    }
    p.server_max_window_bits = 8 + (data[0] & 7);
    p.server_no_context_takeover = (data[0] >> 3) & 1;
    p.client_max_window_bits = 15;
    p.client_no_context_takeover = 1;
    mp.server_max_window_bits = 15;
    mp.server_no_context_takeover = 1;
    mp.client_max_window_bits = p.server_max_window_bits;
    mp.client_no_context_takeover = p.server_no_context_takeover;

    srv = ws_deflate_create(&p, 1 + (data[0] >> 4) % 9);
    cli = ws_deflate_create(&mp, 1);
    FUZZ_CHECK(srv != NULL && cli != NULL);
    data++;
    size--;
    mk_buf_init(&z);
    mk_buf_init(&plain);
    for (i = 0; i < 2; i++) {
        z.len = plain.len = 0;
        FUZZ_CHECK(ws_deflate_deflate(srv, data, size, &z) == 0);
        FUZZ_CHECK(ws_deflate_inflate(cli, (uint8_t *) z.data, z.len, &plain,
                                      size) == WS_DEFLATE_OK);
        FUZZ_CHECK(plain.len == size &&
                   (size == 0 || memcmp(plain.data, data, size) == 0));
    }
    FUZZ_CHECK(!p.server_no_context_takeover || ws_deflate_held(srv) == 0);
    mk_buf_release(&z);
    mk_buf_release(&plain);
    ws_deflate_destroy(srv);
    ws_deflate_destroy(cli);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;

    if (size < 1) {
        return 0;
    }
    mode = data[0];
    switch ((mode >> 4) & 3) {
    case 2:
        fuzz_inflate(data + 1, size - 1);
        break;
    case 3:
        fuzz_round_trip(data + 1, size - 1);
        break;
    default:
        fuzz_negotiate(data + 1, size - 1, mode);
        break;
    }
    return 0;
}
