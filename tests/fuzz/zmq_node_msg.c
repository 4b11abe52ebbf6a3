/*
 * Fuzz target for plugins/zmq/zmq_msg.c: what a node sends the gateway.
 *
 * Input layout: byte 0 = number of frames (low 3 bits, 0-7), byte 1 picks
 * the frame size limit and max_headers; then each frame but the last is a
 * 1-byte length and that many bytes, the last frame takes the rest. Every
 * frame gets its own exactly-sized allocation. The frames go through
 * zmq_msg_check; the type frame of each through the route split and type
 * lookup; the body through the response head parser, and an accepted head
 * through the rewrite that makes it say close. Invariants (borrowed
 * pointers in bounds, the last-colon rule, head framing rules) are checked
 * against the raw bytes; any violation traps.
 */
#include <stdint.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq_msg.c"
#include "fuzz_util.h"

#define FUZZ_MAX_FRAMES 8

static int fuzz_in(const char *p, size_t pl, const char *base, size_t bl)
{
    return p >= base && pl <= bl && (size_t) (p - base) <= bl - pl;
}

static void fuzz_route(const char *t, size_t len)
{
    struct zmq_route r;
    const char *colon;

    if (zmq_msg_route(t, len, &r) != 0) {
        return;
    }
    FUZZ_CHECK(fuzz_in(r.type, r.type_len, t, len));
    FUZZ_CHECK(r.type + r.type_len == t + len);
    /* the type after the split never holds a colon */
    FUZZ_CHECK(memchr(r.type, ':', r.type_len) == NULL);
    colon = memchr(t, ':', len);
    switch (r.kind) {
    case ZMQ_ROUTE_NONE:
        FUZZ_CHECK(colon == NULL && r.type == t && r.type_len == len);
        break;
    case ZMQ_ROUTE_SID:
        FUZZ_CHECK(len == 18 + r.type_len && t[0] == '@' && t[17] == ':');
        FUZZ_CHECK(r.name == t + 1 && r.name_len == ZMQ_SID_LEN);
        break;
    case ZMQ_ROUTE_GROUP:
        FUZZ_CHECK(r.name == t && r.name_len + 1 + r.type_len == len);
        FUZZ_CHECK(zmq_group_name_is_valid(r.name, r.name_len));
        FUZZ_CHECK(t[r.name_len] == ':' && r.type_len > 0);
        break;
    default:
        FUZZ_CHECK(0);
    }
    if (zmq_msg_type(r.type, r.type_len) != ZMQ_MSG_UNKNOWN) {
        const char *n = zmq_msg_type_name(zmq_msg_type(r.type, r.type_len));
        FUZZ_CHECK(strlen(n) == r.type_len &&
                   memcmp(n, r.type, r.type_len) == 0);
    }
}

/* The head a closing response goes out with: still a head the parser
 * accepts, saying close and nothing else about the connection, framed as
 * before, within the room the caller gives it. */
static void fuzz_head_close(const char *buf, const struct zmq_resp_head *h,
                            int max_headers)
{
    char *out = mk_mem_alloc(h->head_len + ZMQ_RESP_HEAD_CLOSE_EXTRA);
    struct zmq_resp_head c;
    size_t n;

    if (out == NULL) {
        return;
    }
    n = zmq_resp_head_close(buf, h->head_len, out);
    FUZZ_CHECK(n <= h->head_len + ZMQ_RESP_HEAD_CLOSE_EXTRA);
    FUZZ_CHECK(zmq_resp_head_parse(out, n, max_headers + 1, &c) == 0);
    FUZZ_CHECK(c.head_len == n && c.conn_close && !c.conn_keep_alive);
    FUZZ_CHECK(c.status == h->status && c.minor == h->minor);
    FUZZ_CHECK(c.content_length == h->content_length &&
               c.chunked == h->chunked && c.n_headers <= h->n_headers + 1);
    mk_mem_free(out);
}

static void fuzz_head(const char *buf, size_t len, int max_headers)
{
    struct zmq_resp_head h, h2;

    if (zmq_resp_head_parse(buf, len, max_headers, &h) != 0) {
        return;
    }
    FUZZ_CHECK(h.head_len >= 16 && h.head_len <= len);
    FUZZ_CHECK(memcmp(buf, "HTTP/1.", 7) == 0);
    FUZZ_CHECK(memcmp(buf + h.head_len - 4, "\r\n\r\n", 4) == 0);
    FUZZ_CHECK(memchr(buf, '\0', h.head_len) == NULL);
    FUZZ_CHECK(h.status >= 100 && h.status <= 599);
    FUZZ_CHECK(h.minor == 0 || h.minor == 1);
    FUZZ_CHECK(h.n_headers >= 0 && h.n_headers <= max_headers);
    FUZZ_CHECK(h.content_length >= -1);
    FUZZ_CHECK(!(h.chunked && h.content_length >= 0));
    FUZZ_CHECK(h.non_persistent ==
               (h.conn_close || (h.minor == 0 && !h.conn_keep_alive)));
    /* what follows the head does not change it; one byte less breaks it */
    FUZZ_CHECK(zmq_resp_head_parse(buf, h.head_len, max_headers, &h2) == 0);
    FUZZ_CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
    FUZZ_CHECK(zmq_resp_head_parse(buf, h.head_len - 1, max_headers,
                                   &h2) == -1);
    fuzz_head_close(buf, &h, max_headers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zmq_frame f[FUZZ_MAX_FRAMES];
    char *mem[FUZZ_MAX_FRAMES];
    struct zmq_node_msg m;
    enum zmq_reject why;
    size_t n, i, fl, off = 2, max_frame;
    int max_headers;

    if (size < 2) {
        return 0;
    }
    n = data[0] & 7;
    max_frame = (data[1] & 0x80) ? 0 : (size_t) (data[1] & 0x7f) * 4;
    max_headers = data[1] & 0x0f;
    for (i = 0; i < n; i++) {
        if (i + 1 < n && off < size) {
            fl = data[off++];
            if (fl > size - off) {
                fl = size - off;
            }
        }
        else {
            fl = size - off;
        }
        mem[i] = mk_mem_alloc(fl ? fl : 1);
        if (mem[i] == NULL) {
            n = i;
            goto out;
        }
        memcpy(mem[i], data + off, fl);
        off += fl;
        f[i].data = mem[i];
        f[i].len = fl;
        fuzz_route(mem[i], fl);
    }

    why = zmq_msg_check(f, n, max_frame, &m);
    FUZZ_CHECK(why >= ZMQ_REJECT_NONE && why < ZMQ_REJECT_UNKNOWN_SID);
    if (why == ZMQ_REJECT_NONE) {
        FUZZ_CHECK(n == 4);
        FUZZ_CHECK(m.identity == f[0].data && m.identity_len >= 1);
        FUZZ_CHECK(m.body == f[3].data && m.body_len == f[3].len);
        if (m.is_pong) {
            FUZZ_CHECK(f[2].len == 4 && memcmp(f[2].data, "pong", 4) == 0);
        }
        else {
            FUZZ_CHECK(f[1].len == ZMQ_SID_LEN && m.sid == f[1].data);
            FUZZ_CHECK(fuzz_in(m.route.type, m.route.type_len,
                               f[2].data, f[2].len));
        }
        fuzz_head(m.body, m.body_len, max_headers);
    }
    else if (n == 4) {
        /* the body is parsed even when the frames were refused */
        fuzz_head(f[3].data, f[3].len, max_headers);
    }
out:
    for (i = 0; i < n; i++) {
        mk_mem_free(mem[i]);
    }
    return 0;
}
