/*
 * bench_node.c -- the ZeroMQ side of the benchmarks' C nodes; see
 * bench_node.h.
 */
#include "bench_node.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t node_stop;

static void node_on_signal(int sig)
{
    (void) sig;
    node_stop = 1;
}

static void *node_open(void **ctx, const char *identity, const char *endpoint)
{
    void *sock;
    int linger = 0, hwm = 0;

    signal(SIGINT, node_on_signal);
    signal(SIGTERM, node_on_signal);
    *ctx = zmq_ctx_new();
    if (!*ctx) {
        return NULL;
    }
    sock = zmq_socket(*ctx, ZMQ_DEALER);
    if (!sock) {
        return NULL;
    }
    if (zmq_setsockopt(sock, ZMQ_ROUTING_ID, identity, strlen(identity)) < 0 ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
        zmq_connect(sock, endpoint) < 0 ||
        node_send(sock, "", 0, "pong", "", 0) < 0) {
        int err = errno;
        zmq_close(sock);
        errno = err;
        return NULL;
    }
    return sock;
}

static void node_close(void *ctx, void *sock)
{
    if (sock) {
        zmq_close(sock);
    }
    if (ctx) {
        zmq_ctx_term(ctx);
    }
}

int node_send(void *sock, const void *sid, size_t sid_len,
              const char *type, const void *body, size_t body_len)
{
    if (zmq_send(sock, sid, sid_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, type, strlen(type), ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, body, body_len, 0) < 0) {
        return -1;
    }
    return 0;
}

/* One message into frames[]; frames past NODE_FRAMES are dropped. Returns
 * the frame count or -1 (EINTR included). */
int node_recv(void *sock, zmq_msg_t frames[NODE_FRAMES])
{
    int n = 0, more = 1;
    size_t more_len;
    zmq_msg_t extra;

    while (more) {
        zmq_msg_t *m = n < NODE_FRAMES ? &frames[n] : &extra;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, 0) < 0) {
            zmq_msg_close(m);
            while (n > 0) {
                n--;
                if (n < NODE_FRAMES) {
                    zmq_msg_close(&frames[n]);
                }
            }
            return -1;
        }
        more_len = sizeof(more);
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_len);
        if (m == &extra) {
            zmq_msg_close(m);
        }
        n++;
    }
    return n;
}

int is_type(zmq_msg_t *m, const char *want)
{
    size_t len = strlen(want);
    return zmq_msg_size(m) == len && memcmp(zmq_msg_data(m), want, len) == 0;
}

int node_run(const char *name, const char *identity, const char *endpoint,
             node_handler on_msg)
{
    void *ctx = NULL, *sock;
    zmq_msg_t frames[NODE_FRAMES];
    int n, i, err, rc = 1;

    sock = node_open(&ctx, identity, endpoint);
    if (!sock) {
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
            err = is_type(&frames[1], "ping") ? node_send(sock, "", 0, "pong", "", 0)
                                              : on_msg(sock, frames);
            if (err < 0) {
                fprintf(stderr, "%s: send: %s\n", name, zmq_strerror(errno));
            }
        }
        /* Closing a sent (now empty) message is harmless. */
        for (i = 0; i < n && i < NODE_FRAMES; i++) {
            zmq_msg_close(&frames[i]);
        }
    }
    rc = 0;

error:
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", name, zmq_strerror(errno));
    }
    node_close(ctx, sock);
    return rc;
}
