/* Unit tests: the node guard (plugins/zmq/zmq_guard.c): which Bind values
 * it takes, and its relay on real sockets, with a plain Unix listener
 * standing in for the ROUTER's private endpoint. */
#include <poll.h>
#include <signal.h>

#include "mk_test.h"
#include "plugins/zmq/zmq_guard.c"
#include "plugins/zmq/zmq_zmtp.c"
#include "plugins/zmq/zmq_zmtps.c"

/* ---- endpoints ---------------------------------------------------------- */

static const struct {
    const char *endpoint;
    enum zmq_guard_endpoint kind;
    const char *why;              /* a part of the reason, when refused */
} endpoint_cases[] = {
    { "tcp://127.0.0.1:5000", ZMQ_GUARD_TCP, NULL },
    { "tcp://*:5000", ZMQ_GUARD_TCP, NULL },
    { "tcp://0.0.0.0:65535", ZMQ_GUARD_TCP, NULL },
    { "tcp://[::1]:5000", ZMQ_GUARD_TCP, NULL },
    { "tcp://[::]:5000", ZMQ_GUARD_TCP, NULL },
    { "tcp://localhost:5000", ZMQ_GUARD_TCP, NULL },
    { "tcp://node-gw.example.org:5000", ZMQ_GUARD_TCP, NULL },
    { "ipc:///run/tremolo/nodes", ZMQ_GUARD_DIRECT, NULL },
    { "ipc://@abstract", ZMQ_GUARD_DIRECT, NULL },
    { "inproc://x", ZMQ_GUARD_DIRECT, NULL },
    { "tcp://lo:5000", ZMQ_GUARD_REFUSED, "network interface" },
    { "tcp://127.0.0.1:*", ZMQ_GUARD_REFUSED, "fixed port" },
    { "tcp://127.0.0.1:!", ZMQ_GUARD_REFUSED, "fixed port" },
    { "tcp://127.0.0.1:0", ZMQ_GUARD_REFUSED, "fixed port" },
    { "tcp://127.0.0.1:65536", ZMQ_GUARD_REFUSED, "fixed port" },
    { "tcp://127.0.0.1:50x", ZMQ_GUARD_REFUSED, "fixed port" },
    { "tcp://127.0.0.1:", ZMQ_GUARD_REFUSED, "fixed port" },
    { "tcp://127.0.0.1:+5", ZMQ_GUARD_REFUSED, "fixed port" },
    { "tcp://127.0.0.1", ZMQ_GUARD_REFUSED, "tcp://ADDRESS:PORT" },
    { "tcp://:5000", ZMQ_GUARD_REFUSED, "tcp://ADDRESS:PORT" },
    { "tcp://::1:5000", ZMQ_GUARD_REFUSED, "brackets" },
    { "tcp://[::1:5000", ZMQ_GUARD_REFUSED, "IPv6" },
    { "tcp://[::1]5000", ZMQ_GUARD_REFUSED, "IPv6" },
    { "tcp://[10.0.0.1]:5000", ZMQ_GUARD_REFUSED, "IPv6" },
    { "tcp://[fe80::1%eth0]:5000", ZMQ_GUARD_REFUSED, "IPv6" },
    { "tcp://10.0.0.1;10.0.0.2:5000", ZMQ_GUARD_REFUSED, "source address" },
    { "tcp://a_b:5000", ZMQ_GUARD_REFUSED, "neither" },
};

MK_TEST(endpoint_kinds)
{
    size_t i;
    char why[256];

    for (i = 0; i < sizeof(endpoint_cases) / sizeof(endpoint_cases[0]); i++) {
        why[0] = '\0';
        enum zmq_guard_endpoint k =
            zmq_guard_endpoint_kind(endpoint_cases[i].endpoint, why,
                                    sizeof(why));
        if (k != endpoint_cases[i].kind) {
            fprintf(stderr, "endpoint %s\n", endpoint_cases[i].endpoint);
        }
        CHECK_EQ_INT(k, endpoint_cases[i].kind);
        if (endpoint_cases[i].why) {
            CHECK(strstr(why, endpoint_cases[i].why) != NULL);
        }
    }
}

/* ---- relay --------------------------------------------------------------- */

struct rig {
    struct mk_event_loop *loop;
    struct zmq_guard *guard;
    char endpoint[64];
    int router;                   /* listener standing in for the ROUTER */
    int port;
};

/* A port free right now; a race with other processes is accepted. */
static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *) &a, sizeof(a));
    getsockname(fd, (struct sockaddr *) &a, &len);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int rig_open(struct rig *r, uint64_t frame_max)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    char ipc[128], err[256];
    socklen_t len;
    int tries;

    r->loop = mk_event_loop_create(64);
    r->guard = zmq_guard_create(frame_max, 64);
    for (tries = 0; tries < 20; tries++) {
        r->port = free_port();
        snprintf(r->endpoint, sizeof(r->endpoint), "tcp://127.0.0.1:%d",
                 r->port);
        if (zmq_guard_listen(r->guard, r->endpoint, 0, ipc, sizeof(ipc), err,
                             sizeof(err)) == 0) {
            break;
        }
    }
    CHECK_EQ_INT(strncmp(ipc, "ipc://@tremolo-", 15), 0);
    /* the ROUTER's side: what libzmq would bind from that endpoint */
    len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) +
                       strlen(ipc + 6));
    memcpy(un.sun_path + 1, ipc + 7, strlen(ipc + 7));
    r->router = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(r->router, (struct sockaddr *) &un, len) < 0 ||
        listen(r->router, 16) < 0) {
        return -1;
    }
    return zmq_guard_start(r->guard, r->loop);
}

static void rig_close(struct rig *r)
{
    zmq_guard_destroy(r->guard);
    mk_event_loop_destroy(r->loop);
    close(r->router);
}

/* Runs the relay until `fd` is readable (or for a bounded while). */
static int rig_wait(struct rig *r, int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int i;

    for (i = 0; i < 400; i++) {
        mk_event_loop_run_once(r->loop, 5);
        if (poll(&p, 1, 0) == 1) {
            return 1;
        }
    }
    return 0;
}

/* A node connection through the relay: returns the node's socket and
 * puts the ROUTER side's in *up. */
static int rig_connect(struct rig *r, int *up)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_port = htons((uint16_t) r->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
        !rig_wait(r, r->router)) {
        close(fd);
        return -1;
    }
    *up = accept(r->router, NULL, NULL);
    return fd;
}

/* Reads exactly `len` bytes from `fd`, relaying meanwhile. */
static int rig_read(struct rig *r, int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;

    while (got < len && rig_wait(r, fd)) {
        n = recv(fd, buf + got, len - got, 0);
        if (n <= 0) {
            return -1;
        }
        got += (size_t) n;
    }
    return got == len ? 0 : -1;
}

/* The connection was closed: EOF or reset, not data. */
static int rig_closed(struct rig *r, int fd)
{
    uint8_t b;

    return rig_wait(r, fd) && recv(fd, &b, 1, 0) <= 0;
}

static const uint8_t zmtp3_hello[] = {
    0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0, 'N', 'U', 'L', 'L',
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 6, 5, 'R', 'E', 'A', 'D', 'Y',                /* READY, no property */
    1, 0, 1, 4, 'p', 'o', 'n', 'g', 0, 0,            /* [ , pong, ] */
};

MK_TEST(relay_both_ways)
{
    static const uint8_t four[] = { 1, 0, 1, 0, 1, 0, 0, 0 };
    struct rig r;
    uint8_t buf[sizeof(zmtp3_hello)];
    int node, up = -1;

    CHECK_EQ_INT(rig_open(&r, 1024), 0);
    node = rig_connect(&r, &up);
    CHECK(node >= 0 && up >= 0);
    CHECK_EQ_INT(send(node, zmtp3_hello, sizeof(zmtp3_hello), 0),
                 sizeof(zmtp3_hello));
    CHECK_EQ_INT(rig_read(&r, up, buf, sizeof(zmtp3_hello)), 0);
    CHECK(memcmp(buf, zmtp3_hello, sizeof(zmtp3_hello)) == 0);
    CHECK_EQ_INT(send(up, "from the router", 15, 0), 15);
    CHECK_EQ_INT(rig_read(&r, node, buf, 15), 0);
    CHECK(memcmp(buf, "from the router", 15) == 0);
    /* a 4-frame message: both sides closed, nothing of it forwarded */
    CHECK_EQ_INT(send(node, four, sizeof(four), 0), sizeof(four));
    CHECK(rig_closed(&r, up));
    CHECK(rig_closed(&r, node));
    CHECK_EQ_INT(r.guard->refused, 1);
    CHECK(mk_list_is_empty(&r.guard->conns));
    close(node);
    close(up);
    rig_close(&r);
}

/* The ROUTER side closing ends the node's connection at once. */
MK_TEST(router_close_ends_the_node)
{
    struct rig r;
    int node, up = -1;

    CHECK_EQ_INT(rig_open(&r, 1024), 0);
    node = rig_connect(&r, &up);
    CHECK(node >= 0 && up >= 0);
    close(up);
    CHECK(rig_closed(&r, node));
    CHECK(mk_list_is_empty(&r.guard->conns));
    close(node);
    rig_close(&r);
}

/* While the ROUTER side reads nothing, the relay stops reading the node:
 * what the node can push is bounded by the socket buffers and the
 * relay's own, however much it tries; then everything arrives intact. */
MK_TEST(backpressure)
{
    struct rig r;
    static uint8_t out[16 << 20], in[16 << 20];
    size_t sent = 0, i;
    ssize_t n;
    int node, up = -1, stuck = 0;

    CHECK_EQ_INT(rig_open(&r, sizeof(out)), 0);
    node = rig_connect(&r, &up);
    CHECK(node >= 0 && up >= 0);
    setsockopt(node, SOL_SOCKET, SO_SNDBUF, &(int) { 65536 }, sizeof(int));
    /* the greeting, then one frame announcing the rest */
    memcpy(out, zmtp3_hello, 64);
    out[64] = 2;
    for (i = 0; i < 8; i++) {
        out[65 + i] = (uint8_t) ((sizeof(out) - 73) >> (8 * (7 - i)));
    }
    for (i = 73; i < sizeof(out); i++) {
        out[i] = (uint8_t) (i * 7);
    }
    while (sent < sizeof(out) && stuck < 50) {
        n = send(node, out + sent, sizeof(out) - sent, MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t) n;
            stuck = 0;
        }
        else {
            stuck++;
        }
        mk_event_loop_run_once(r.loop, 1);
    }
    CHECK(sent < sizeof(out));            /* the node was held back */
    /* then the ROUTER side reads and everything goes through */
    for (i = 0; i < sizeof(in); ) {
        while (sent < sizeof(out) &&
               (n = send(node, out + sent, sizeof(out) - sent,
                         MSG_DONTWAIT)) > 0) {
            sent += (size_t) n;
        }
        if (!rig_wait(&r, up) || (n = recv(up, in + i, sizeof(in) - i, 0)) <= 0) {
            break;
        }
        i += (size_t) n;
    }
    CHECK_EQ_INT(i, sizeof(in));
    CHECK(memcmp(in, out, sizeof(in)) == 0);
    close(node);
    close(up);
    rig_close(&r);
}

/* ---- duplicate identities ------------------------------------------------ */

MK_TEST(identity_text)
{
    char buf[ZMQ_ZMTP_IDENTITY_MAX * 4 + 1];
    uint8_t bin[ZMQ_ZMTP_IDENTITY_MAX];

    guard_identity_text((const uint8_t *) "web-1", 5, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "web-1");
    guard_identity_text((const uint8_t *) "a'b\\c\n\xff", 7, buf,
                        sizeof(buf));
    CHECK_EQ_STR(buf, "a\\x27b\\x5cc\\x0a\\xff");
    /* the longest identity, all escaped, fits whole */
    memset(bin, 0, sizeof(bin));
    guard_identity_text(bin, sizeof(bin), buf, sizeof(buf));
    CHECK_EQ_INT(strlen(buf), sizeof(bin) * 4);
}

/* Once a minute per identity; other identities are not held back, and
 * past the table's size the oldest entry gives way. */
MK_TEST(duplicate_log_rate)
{
    struct zmq_guard *g = zmq_guard_create(1024, 4);
    uint64_t h;

    CHECK(g != NULL);
    if (!g) {
        return;
    }
    CHECK_EQ_INT(guard_dup_log_due(g, 1), 1);
    CHECK_EQ_INT(guard_dup_log_due(g, 1), 0);
    CHECK_EQ_INT(guard_dup_log_due(g, 2), 1);
    CHECK_EQ_INT(guard_dup_log_due(g, 1), 0);
    g->dup_log[0].at -= ZMQ_GUARD_DUP_LOG_MS;      /* a minute later */
    CHECK_EQ_INT(guard_dup_log_due(g, 1), 1);
    CHECK_EQ_INT(guard_dup_log_due(g, 1), 0);
    for (h = 10; h < 10 + ZMQ_GUARD_DUP_SLOTS; h++) {
        CHECK_EQ_INT(guard_dup_log_due(g, h), 1);
    }
    CHECK_EQ_INT(guard_dup_log_due(g, 10 + ZMQ_GUARD_DUP_SLOTS - 1), 0);
    zmq_guard_destroy(g);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(endpoint_kinds);
    RUN(relay_both_ways);
    RUN(router_close_ends_the_node);
    RUN(backpressure);
    RUN(identity_text);
    RUN(duplicate_log_rate);
    return mk_test_done();
}
