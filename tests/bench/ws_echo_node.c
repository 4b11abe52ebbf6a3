/*
 * ws_echo_node.c -- the C ZeroMQ node of the WebSocket benchmark
 * (tests/bench/websocket.sh).
 *
 *     cc -O2 -o ws_echo_node tests/bench/ws_echo_node.c tests/bench/bench_node.c -lzmq
 *     ws_echo_node IDENTITY ENDPOINT echo|bcast
 *
 * One DEALER socket, identity IDENTITY (the site says `Node bench-*`),
 * connected to Tremolo's [ZMQ] Bind endpoint. An unsolicited `pong` makes
 * it usable at once; then, with frames [sid, type, body] (spec 1.2):
 *
 *   ["", "ping", ""]           -> ["", "pong", ""]
 *   [sid, "websocket", msg]    -> [sid, "websocket", msg]  (echo, same frames)
 *   [sid, "uwsgi", packet]     -> nothing (echo), or in bcast mode
 *                                 [sid, "join", "all"]: the session joins
 *                                 group "all" before its first message is
 *                                 echoed, so a client that got its first
 *                                 echo back is a member
 *   bcast mode, [sid, "websocket", "go:..."]
 *                              -> [sid, "all:websocket", "go:...:T1"], T1 =
 *                                 CLOCK_MONOTONIC ns just before the send:
 *                                 one text frame to every member of "all"
 *                                 (the sender too: echo is on by default)
 *   end, spawn, anything else  -> ignored
 *
 * The upgrade's `uwsgi` is never answered with `headers` (spec 7.1).
 * SIGINT/SIGTERM end it.
 */
#include "bench_node.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Send the three received frames back as they are (zero copy: the
 * messages move into the socket). */
static int node_echo(void *sock, zmq_msg_t frames[NODE_FRAMES])
{
    if (zmq_msg_send(&frames[0], sock, ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&frames[1], sock, ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&frames[2], sock, 0) < 0) {
        return -1;
    }
    return 0;
}

static int node_broadcast(void *sock, zmq_msg_t frames[NODE_FRAMES])
{
    char body[256];
    size_t len = zmq_msg_size(&frames[2]);
    struct timespec ts;
    int n;

    if (len > 200) {
        len = 200;
    }
    memcpy(body, zmq_msg_data(&frames[2]), len);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    n = snprintf(body + len, sizeof(body) - len, ":%lld",
                 (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return node_send(sock, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
                     "all:websocket", body, len + (size_t) n);
}

static int bcast;

static int on_msg(void *sock, zmq_msg_t frames[NODE_FRAMES])
{
    if (is_type(&frames[1], "websocket")) {
        if (bcast && zmq_msg_size(&frames[2]) > 3 &&
            memcmp(zmq_msg_data(&frames[2]), "go:", 3) == 0) {
            return node_broadcast(sock, frames);
        }
        return node_echo(sock, frames);
    }
    if (bcast && is_type(&frames[1], "uwsgi")) {
        return node_send(sock, zmq_msg_data(&frames[0]),
                         zmq_msg_size(&frames[0]), "join", "all", 3);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[3], "echo") && strcmp(argv[3], "bcast"))) {
        fprintf(stderr, "usage: %s IDENTITY ENDPOINT echo|bcast\n", argv[0]);
        return 2;
    }
    bcast = strcmp(argv[3], "bcast") == 0;
    return node_run("ws_echo_node", argv[1], argv[2], on_msg);
}
