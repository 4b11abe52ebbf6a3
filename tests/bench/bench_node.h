/*
 * bench_node.h -- the ZeroMQ side of the benchmarks' C nodes
 * (tests/bench/ws_echo_node.c, tests/bench/sio_node.c): one DEALER socket
 * speaking [sid, type, body] messages (spec 1.2). Build a node with it:
 *
 *     cc -O2 -o ws_echo_node tests/bench/ws_echo_node.c tests/bench/bench_node.c -lzmq
 */
#ifndef TREMOLO_BENCH_NODE_H
#define TREMOLO_BENCH_NODE_H

#include <signal.h>
#include <stddef.h>
#include <zmq.h>

#define NODE_FRAMES 3            /* sid, type, body */

/* A handler of one [sid, type, body] message (not a ping): 0, or -1 with
 * errno set when a send failed. It may send the frames themselves on. */
typedef int (*node_handler)(void *sock, zmq_msg_t frames[NODE_FRAMES]);

/* Run a node until SIGINT/SIGTERM: a context and a DEALER socket with
 * routing id `identity`, no linger and no high-water mark (thousands of
 * connects arrive in a burst, and a dropped or blocked message would stall
 * a client, not measure it), connected to Tremolo's [ZMQ] Bind `endpoint`;
 * an unsolicited `pong` makes it usable at once. Then it answers ["",
 * "ping", ""] with ["", "pong", ""] and gives every other three-frame
 * message to on_msg; other frame counts are dropped. Errors are printed
 * prefixed with `name`. Returns the exit status: 0 when a signal ended it,
 * 1 when the socket failed. */
int node_run(const char *name, const char *identity, const char *endpoint,
             node_handler on_msg);
/* Send one [sid, type, body] message. 0, or -1 with errno set. */
int node_send(void *sock, const void *sid, size_t sid_len,
              const char *type, const void *body, size_t body_len);
/* One message into frames[]; frames past NODE_FRAMES are dropped. Returns
 * the frame count (the caller closes that many, NODE_FRAMES at most) or
 * -1 (EINTR included). */
int node_recv(void *sock, zmq_msg_t frames[NODE_FRAMES]);
/* Whether frame m is the string `want`. */
int is_type(zmq_msg_t *m, const char *want);

#endif
