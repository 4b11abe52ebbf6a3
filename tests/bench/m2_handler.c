/*
 * m2_handler.c -- a minimal Mongrel2 handler in C, the peer of
 * docs/examples/c_node.c in tests/bench/gateway.sh: it answers every
 * request with the same 13-byte response.
 *
 *     cc -O2 -o m2_handler tests/bench/m2_handler.c -lzmq
 *     ./m2_handler SEND_SPEC RECV_SPEC
 *
 * Mongrel2's handler protocol: Mongrel2 binds a PUSH socket (send_spec)
 * and a SUB socket (recv_spec); a handler connects PULL and PUB to them.
 * A request arrives as one frame
 *     "SERVER-UUID CONN-ID PATH HLEN:HEADERS,BLEN:BODY,"
 * (HEADERS a tnetstring dict) and the reply is one frame
 *     "SERVER-UUID LEN:CONN-ID, RAW-HTTP-BYTES"
 * which Mongrel2 writes to the connection as is. Mongrel2 also tells the
 * handler about closed connections with METHOD "JSON" and a body
 * {"type":"disconnect"}: those get no reply. HEADERS is JSON unless the
 * Handler says protocol='tnetstring' (the bench config does not), so both
 * spellings are looked for: answering a disconnect makes Mongrel2 send
 * another one for the same dead connection, a loop that kept its stack
 * busy for seconds after every run and ate the CPU of the next one.
 * SIGINT/SIGTERM end it.
 */
#define _GNU_SOURCE              /* memmem */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static const char RESP[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n";
static const char JSON_METHOD_TNET[] = "6:METHOD,4:JSON,";
static const char JSON_METHOD_JSON[] = "\"METHOD\":\"JSON\"";

static volatile sig_atomic_t m2_stop;

static void m2_on_signal(int sig)
{
    (void) sig;
    m2_stop = 1;
}

/* True when the HEADERS netstring after the path says METHOD JSON (a
 * disconnect notice), in either header encoding. */
static int m2_is_json_method(const char *p, const char *end)
{
    const char *path_end = memchr(p, ' ', (size_t) (end - p));
    const char *h;
    size_t hlen = 0;

    if (!path_end) {
        return 0;
    }
    for (h = path_end + 1; h < end && *h >= '0' && *h <= '9'; h++) {
        hlen = hlen * 10 + (size_t) (*h - '0');
    }
    if (h >= end || *h != ':' || hlen > (size_t) (end - h - 1)) {
        return 0;
    }
    h++;
    return memmem(h, hlen, JSON_METHOD_TNET, sizeof(JSON_METHOD_TNET) - 1) ||
           memmem(h, hlen, JSON_METHOD_JSON, sizeof(JSON_METHOD_JSON) - 1);
}

/* Answer one request frame; malformed frames are dropped. */
static void m2_handle(void *pub, const char *req, size_t len)
{
    const char *uuid_end, *id, *id_end;
    char reply[512];
    int n;

    uuid_end = memchr(req, ' ', len);
    if (!uuid_end) {
        return;
    }
    id = uuid_end + 1;
    id_end = memchr(id, ' ', len - (size_t) (id - req));
    if (!id_end) {
        return;
    }
    if (m2_is_json_method(id_end + 1, req + len)) {
        return;                  /* disconnect notice */
    }
    n = snprintf(reply, sizeof(reply), "%.*s %d:%.*s, %s",
                 (int) (uuid_end - req), req,
                 (int) (id_end - id), (int) (id_end - id), id, RESP);
    if (n < 0 || (size_t) n >= sizeof(reply)) {
        return;
    }
    if (zmq_send(pub, reply, (size_t) n, 0) < 0) {
        fprintf(stderr, "m2_handler: send: %s\n", zmq_strerror(errno));
    }
}

int main(int argc, char **argv)
{
    void *ctx = NULL, *pull = NULL, *pub = NULL;
    zmq_msg_t msg;
    int rc = 1, linger = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SEND_SPEC RECV_SPEC\n", argv[0]);
        return 2;
    }
    signal(SIGINT, m2_on_signal);
    signal(SIGTERM, m2_on_signal);

    ctx = zmq_ctx_new();
    if (!ctx) {
        goto error;
    }
    pull = zmq_socket(ctx, ZMQ_PULL);
    pub = zmq_socket(ctx, ZMQ_PUB);
    if (!pull || !pub) {
        goto error;
    }
    if (zmq_setsockopt(pull, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_connect(pull, argv[1]) < 0 || zmq_connect(pub, argv[2]) < 0) {
        goto error;
    }

    while (!m2_stop) {
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, pull, 0) < 0) {
            zmq_msg_close(&msg);
            if (errno == EINTR) {
                continue;
            }
            goto error;
        }
        m2_handle(pub, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
    rc = 0;

error:
    if (rc != 0) {
        fprintf(stderr, "m2_handler: %s\n", zmq_strerror(errno));
    }
    if (pull) {
        zmq_close(pull);
    }
    if (pub) {
        zmq_close(pub);
    }
    if (ctx) {
        zmq_ctx_term(ctx);
    }
    return rc;
}
