/*
 * c_node.c -- a minimal Tremolo ZeroMQ node in C (used by the gateway
 * benchmark, tests/bench/gateway.sh).
 *
 *     cc -O2 -o c_node docs/examples/c_node.c -lzmq
 *     ./c_node bench-1 tcp://127.0.0.1:5000
 *
 * It connects one DEALER socket, identity argv[1], to the gateway's Bind
 * endpoint argv[2], says `pong` once so the gateway may use it before its
 * first ping, then serves forever:
 *
 *   [sid, "ping",  ""]     -> [sid, "pong", ""]
 *   [sid, "uwsgi", packet] -> [sid, "headers", head] + [sid, "body", text]
 *   [sid, "body"|"end"|anything else, ...] -> ignored
 *
 * Every request gets the same 13-byte answer; the uwsgi packet is not even
 * decoded, which is the point: the benchmark measures the gateway, not
 * the node. A real node decodes the packet (u8 modifier1, u16le size, u8
 * modifier2, then u16le-length-prefixed key/value pairs) -- see
 * plugins/zmq/nodes/python/tremolo_node.py. SIGINT/SIGTERM end it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define NODE_FRAMES 3            /* sid, type, body */
#define NODE_SMALL  64           /* a frame we need to look at fits here */

static const char RESP_HEAD[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n";
static const char RESP_BODY[] = "hello, world\n";

static volatile sig_atomic_t node_stop;

static void node_on_signal(int sig)
{
    (void) sig;
    node_stop = 1;
}

/* Send one [sid, type, body] message. ZeroMQ delivers a multipart
 * message atomically, so a failed middle frame cannot leave half a
 * message on the wire. */
static int node_send(void *sock, const void *sid, size_t sid_len,
                     const char *type, const void *body, size_t body_len)
{
    if (zmq_send(sock, sid, sid_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, type, strlen(type), ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, body, body_len, 0) < 0) {
        return -1;
    }
    return 0;
}

/* Receive one message into frames[]. Returns the number of frames, or -1
 * on error (EINTR included, so a signal ends the loop). Frames past
 * NODE_FRAMES are read and dropped so the next message starts clean. */
static int node_recv(void *sock, zmq_msg_t frames[NODE_FRAMES])
{
    int n = 0, more = 1;
    size_t more_len;
    zmq_msg_t extra;

    while (more) {
        zmq_msg_t *m = n < NODE_FRAMES ? &frames[n] : &extra;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, 0) < 0) {
            zmq_msg_close(m);
            goto error;
        }
        more_len = sizeof(more);
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_len);
        if (m == &extra) {
            zmq_msg_close(m);
        }
        n++;
    }
    return n;

error:
    while (n > 0) {
        n--;
        if (n < NODE_FRAMES) {
            zmq_msg_close(&frames[n]);
        }
    }
    return -1;
}

static int node_type_is(zmq_msg_t *type, const char *want)
{
    size_t len = strlen(want);
    return zmq_msg_size(type) == len && memcmp(zmq_msg_data(type), want, len) == 0;
}

int main(int argc, char **argv)
{
    void *ctx = NULL, *sock = NULL;
    zmq_msg_t frames[NODE_FRAMES];
    int n, i, rc = 1, linger = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s IDENTITY ENDPOINT\n", argv[0]);
        return 2;
    }
    signal(SIGINT, node_on_signal);
    signal(SIGTERM, node_on_signal);

    ctx = zmq_ctx_new();
    if (!ctx) {
        goto error;
    }
    sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!sock) {
        goto error;
    }
    /* The identity is how the gateway recognises us (Node bench-*). */
    if (zmq_setsockopt(sock, ZMQ_ROUTING_ID, argv[1], strlen(argv[1])) < 0 ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_connect(sock, argv[2]) < 0) {
        goto error;
    }
    /* Unsolicited pong: usable at once, not only after the first ping. */
    if (node_send(sock, "", 0, "pong", "", 0) < 0) {
        goto error;
    }

    while (!node_stop) {
        n = node_recv(sock, frames);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto error;
        }
        if (n == NODE_FRAMES) {
            void *sid = zmq_msg_data(&frames[0]);
            size_t sid_len = zmq_msg_size(&frames[0]);

            if (node_type_is(&frames[1], "uwsgi")) {
                if (node_send(sock, sid, sid_len, "headers",
                              RESP_HEAD, sizeof(RESP_HEAD) - 1) < 0 ||
                    node_send(sock, sid, sid_len, "body",
                              RESP_BODY, sizeof(RESP_BODY) - 1) < 0) {
                    fprintf(stderr, "c_node: send: %s\n", zmq_strerror(errno));
                }
            }
            else if (node_type_is(&frames[1], "ping")) {
                node_send(sock, sid, sid_len, "pong", "", 0);
            }
            /* body, end, spawn, ...: nothing to do for this node. */
        }
        for (i = 0; i < n && i < NODE_FRAMES; i++) {
            zmq_msg_close(&frames[i]);
        }
    }
    rc = 0;

error:
    if (rc != 0) {
        fprintf(stderr, "c_node: %s\n", zmq_strerror(errno));
    }
    if (sock) {
        zmq_close(sock);
    }
    if (ctx) {
        zmq_ctx_term(ctx);
    }
    return rc;
}
