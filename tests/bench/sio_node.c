/*
 * sio_node.c -- the C ZeroMQ node of the socket.io benchmark
 * (tests/bench/socketio.sh), the same work as tests/bench/sio_server.js
 * and tests/bench/sio_echo_app.py, over spec section 7.8.
 *
 *     cc -O2 -o sio_node tests/bench/sio_node.c tests/bench/bench_node.c -lzmq
 *     sio_node IDENTITY ENDPOINT
 *
 * One DEALER socket, identity IDENTITY (the site says `Node bench-*`),
 * connected to Tremolo's [ZMQ] Bind endpoint. An unsolicited `pong` makes
 * it usable at once; then, with frames [sid, type, body] (spec 1.2):
 *
 *   ["", "ping", ""]              -> ["", "pong", ""]
 *   [sid, "socket.io/connect", _] -> [sid, "join", "all"]
 *   [sid, "socket.io/event", {"name":"echo","args":A,"id":N[,"nsp":S]}]
 *                                 -> [sid, "socket.io/ack",
 *                                     {"id":N,"args":A[,"nsp":S]}]
 *                                    (A copied byte for byte; nsp omitted
 *                                    for "/", as the gateway omits it)
 *   [sid, "socket.io/event", {"name":"bcast",...}]
 *                                 -> [sid, "all:socket.io/event",
 *                                     {"name":"tick","args":[T]}], T =
 *                                    CLOCK_MONOTONIC in ms just before the
 *                                    send: one event to every member of
 *                                    room "all" (the sender too)
 *   uwsgi, socket.io/disconnect, end, anything else -> ignored
 *
 * The handshake's `uwsgi` is never answered (spec 7.8). The JSON of an
 * event is scanned, not parsed: the top-level members are found by a small
 * scanner that skips strings (with escapes), arrays and objects; a body it
 * cannot read is counted and ignored. SIGINT/SIGTERM end it, printing the
 * counters on stderr.
 */
#include "bench_node.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define NODE_REPLY_MAX 65536

struct node_span {
    const char *p;
    size_t len;
};

/* The members of an event body this node reads. */
struct node_event {
    struct node_span name;       /* the string's contents, no quotes */
    struct node_span args;       /* the raw value */
    struct node_span id;         /* the raw number */
    struct node_span nsp;        /* the raw string, quotes included */
};

static size_t node_skip_ws(const char *p, size_t len, size_t i)
{
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
                       p[i] == '\r')) {
        i++;
    }
    return i;
}

/* The end (one past) of the string starting at p[i] == '"', or 0. */
static size_t node_skip_string(const char *p, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (p[i] == '\\') {
            i++;
        }
        else if (p[i] == '"') {
            return i + 1;
        }
    }
    return 0;
}

/* The end (one past) of the value starting at p[i], or 0 when it is not
 * complete within len. Not a validator: the gateway validated the JSON. */
static size_t node_skip_value(const char *p, size_t len, size_t i)
{
    int depth = 0;

    if (i >= len) {
        return 0;
    }
    if (p[i] == '"') {
        return node_skip_string(p, len, i);
    }
    if (p[i] != '[' && p[i] != '{') {
        while (i < len && p[i] != ',' && p[i] != '}' && p[i] != ']' &&
               p[i] != ' ' && p[i] != '\n' && p[i] != '\r' && p[i] != '\t') {
            i++;
        }
        return i;
    }
    while (i < len) {
        if (p[i] == '"') {
            i = node_skip_string(p, len, i);
            if (i == 0) {
                return 0;
            }
            continue;
        }
        if (p[i] == '[' || p[i] == '{') {
            depth++;
        }
        else if (p[i] == ']' || p[i] == '}') {
            if (--depth == 0) {
                return i + 1;
            }
        }
        i++;
    }
    return 0;
}

static int node_key_is(const char *p, size_t start, size_t end, const char *k)
{
    size_t klen = strlen(k);
    return end - start == klen + 2 && memcmp(p + start + 1, k, klen) == 0;
}

/* Finds name, args, id and nsp among the top-level members of the object
 * body; 0, or -1 when the body is not an object this scanner can walk. */
static int node_event_scan(const char *p, size_t len, struct node_event *ev)
{
    size_t i, ks, ke, vs, ve;

    memset(ev, 0, sizeof(*ev));
    i = node_skip_ws(p, len, 0);
    if (i >= len || p[i] != '{') {
        return -1;
    }
    i = node_skip_ws(p, len, i + 1);
    if (i < len && p[i] == '}') {
        return 0;
    }
    while (i < len) {
        if (p[i] != '"') {
            return -1;
        }
        ks = i;
        ke = node_skip_string(p, len, i);
        if (ke == 0) {
            return -1;
        }
        i = node_skip_ws(p, len, ke);
        if (i >= len || p[i] != ':') {
            return -1;
        }
        vs = node_skip_ws(p, len, i + 1);
        ve = node_skip_value(p, len, vs);
        if (ve == 0 || ve == vs) {
            return -1;
        }
        if (node_key_is(p, ks, ke, "name") && p[vs] == '"') {
            ev->name.p = p + vs + 1;
            ev->name.len = ve - vs - 2;
        }
        else if (node_key_is(p, ks, ke, "args")) {
            ev->args.p = p + vs;
            ev->args.len = ve - vs;
        }
        else if (node_key_is(p, ks, ke, "id")) {
            ev->id.p = p + vs;
            ev->id.len = ve - vs;
        }
        else if (node_key_is(p, ks, ke, "nsp")) {
            ev->nsp.p = p + vs;
            ev->nsp.len = ve - vs;
        }
        i = node_skip_ws(p, len, ve);
        if (i < len && p[i] == '}') {
            return 0;
        }
        if (i >= len || p[i] != ',') {
            return -1;
        }
        i = node_skip_ws(p, len, i + 1);
    }
    return -1;
}

static int span_is(struct node_span s, const char *want)
{
    size_t len = strlen(want);
    return s.p && s.len == len && memcmp(s.p, want, len) == 0;
}

/* Appends src to out at *pos; -1 when it does not fit. */
static int node_put(char *out, size_t *pos, const void *src, size_t len)
{
    if (*pos + len > NODE_REPLY_MAX) {
        return -1;
    }
    memcpy(out + *pos, src, len);
    *pos += len;
    return 0;
}

static int node_ack(void *sock, zmq_msg_t *sid, const struct node_event *ev)
{
    static char out[NODE_REPLY_MAX];
    size_t pos = 0;

    if (node_put(out, &pos, "{\"id\":", 6) < 0 ||
        node_put(out, &pos, ev->id.p, ev->id.len) < 0 ||
        node_put(out, &pos, ",\"args\":", 8) < 0 ||
        node_put(out, &pos, ev->args.p ? ev->args.p : "[]",
                 ev->args.p ? ev->args.len : 2) < 0) {
        return -1;
    }
    if (ev->nsp.p && !span_is(ev->nsp, "\"/\"") &&
        (node_put(out, &pos, ",\"nsp\":", 7) < 0 ||
         node_put(out, &pos, ev->nsp.p, ev->nsp.len) < 0)) {
        return -1;
    }
    if (node_put(out, &pos, "}", 1) < 0) {
        return -1;
    }
    return node_send(sock, zmq_msg_data(sid), zmq_msg_size(sid),
                     "socket.io/ack", out, pos);
}

static int node_broadcast(void *sock, zmq_msg_t *sid)
{
    char body[96];
    struct timespec ts;
    int n;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    n = snprintf(body, sizeof(body), "{\"name\":\"tick\",\"args\":[%.3f]}",
                 (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6);
    return node_send(sock, zmq_msg_data(sid), zmq_msg_size(sid),
                     "all:socket.io/event", body, (size_t) n);
}

static unsigned long acks, bcasts, joins, bad;

static int on_msg(void *sock, zmq_msg_t frames[NODE_FRAMES])
{
    struct node_event ev;

    if (is_type(&frames[1], "socket.io/event")) {
        if (node_event_scan(zmq_msg_data(&frames[2]),
                            zmq_msg_size(&frames[2]), &ev) < 0) {
            bad++;
        }
        else if (span_is(ev.name, "echo") && ev.id.p) {
            acks++;
            return node_ack(sock, &frames[0], &ev);
        }
        else if (span_is(ev.name, "bcast")) {
            bcasts++;
            return node_broadcast(sock, &frames[0]);
        }
    }
    else if (is_type(&frames[1], "socket.io/connect")) {
        joins++;
        return node_send(sock, zmq_msg_data(&frames[0]),
                         zmq_msg_size(&frames[0]), "join", "all", 3);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: %s IDENTITY ENDPOINT\n", argv[0]);
        return 2;
    }
    rc = node_run("sio_node", argv[1], argv[2], on_msg);
    fprintf(stderr, "sio_node: %lu joins, %lu acks, %lu broadcasts, %lu bad bodies\n",
            joins, acks, bcasts, bad);
    return rc;
}
