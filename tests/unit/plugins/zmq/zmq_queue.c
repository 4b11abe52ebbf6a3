/* What the gateway queues toward nodes (issue 10, points 8 and 9): a
 * session's out-queue keeps every piece behind what a full node queue held
 * back, and a send shares its body and counts it against the node's byte
 * budget until libzmq lets go of it. */
#include <errno.h>
#include <string.h>

#include "mk_test.h"
#include "plugins/zmq/zmq_msg.c"
#include "plugins/zmq/zmq_queue.c"

/* No node guard here: every node is behind a ROUTER. */
int zmq_guard_is_native(const struct zmq_guard *g, int router)
{
    (void) g;
    (void) router;
    return 0;
}

int zmq_guard_send(struct zmq_guard *g, int router, const void *id,
                   size_t id_len, const void *sid, size_t sid_len,
                   const char *type, const void *body, size_t body_len,
                   size_t limit)
{
    (void) g, (void) router, (void) id, (void) id_len, (void) sid;
    (void) sid_len, (void) type, (void) body, (void) body_len, (void) limit;
    errno = EHOSTUNREACH;
    return -1;
}

/* ---- the out-queue with a fake node ---------------------------------------- */

struct fake_node {
    int full;                       /* the next sends fail with EAGAIN */
    int gone;                       /* ... or with EHOSTUNREACH */
    char log[64][24];               /* "uwsgi:/1", "body:5", ... in order */
    int sent;
    int stop_at_end;                /* `sent` stops the flush at `end` */
    int told;                       /* `sent` calls */
};

static int fake_send(void *ctx, enum zmq_msg_type type, zmq_msg_t *body)
{
    struct fake_node *n = ctx;

    if (n->gone || n->full) {
        errno = n->gone ? EHOSTUNREACH : EAGAIN;
        return -1;
    }
    snprintf(n->log[n->sent++], sizeof(n->log[0]), "%s:%.*s",
             zmq_msg_type_name(type), (int) zmq_msg_size(body),
             (const char *) zmq_msg_data(body));
    return 0;
}

static int fake_sent(void *ctx, enum zmq_msg_type type, size_t len)
{
    struct fake_node *n = ctx;

    n->told++;
    return n->stop_at_end && type == ZMQ_MSG_END;
}

static int push(struct zmq_outq *q, struct fake_node *n,
                enum zmq_msg_type type, const char *s, size_t max)
{
    zmq_msg_t m;
    int ret;

    zmq_msg_init_size(&m, strlen(s));
    memcpy(zmq_msg_data(&m), s, strlen(s));
    ret = zmq_outq_push(q, type, &m, max, fake_send, n);
    zmq_msg_close(&m);             /* the queue keeps its own reference */
    return ret;
}

MK_TEST(request_two_waits_behind_request_one)
{
    struct fake_node n = { 0 };
    struct zmq_outq q;

    zmq_outq_init(&q);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_UWSGI, "/1", 1 << 20), ZMQ_OUTQ_SENT);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "hello", 1 << 20), ZMQ_OUTQ_SENT);
    n.full = 1;                                  /* the node stops reading */
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "world", 1 << 20), ZMQ_OUTQ_HELD);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "", 1 << 20), ZMQ_OUTQ_HELD);
    n.full = 0;             /* room again, but the held pieces go first */
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_UWSGI, "/2", 1 << 20), ZMQ_OUTQ_HELD);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_END, "", 1 << 20), ZMQ_OUTQ_HELD);
    CHECK_EQ_INT(n.sent, 2);
    CHECK_EQ_INT(q.bytes, 7);
    CHECK_EQ_INT(zmq_outq_flush(&q, fake_send, fake_sent, &n), ZMQ_OUTQ_SENT);
    CHECK(zmq_outq_is_empty(&q));
    CHECK_EQ_INT(q.bytes, 0);
    CHECK_EQ_INT(n.sent, 6);
    CHECK_EQ_INT(n.told, 4);
    CHECK_EQ_STR(n.log[0], "uwsgi:/1");
    CHECK_EQ_STR(n.log[1], "body:hello");
    CHECK_EQ_STR(n.log[2], "body:world");
    CHECK_EQ_STR(n.log[3], "body:");             /* request 1's end marker */
    CHECK_EQ_STR(n.log[4], "uwsgi:/2");
    CHECK_EQ_STR(n.log[5], "end:");
    zmq_outq_release(&q);
}

MK_TEST(flush_stops_where_the_node_is_full_again)
{
    struct fake_node n = { .full = 1 };
    struct zmq_outq q;

    zmq_outq_init(&q);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "a", 100), ZMQ_OUTQ_HELD);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "b", 100), ZMQ_OUTQ_HELD);
    CHECK_EQ_INT(zmq_outq_flush(&q, fake_send, fake_sent, &n), ZMQ_OUTQ_HELD);
    CHECK_EQ_INT(n.sent, 0);
    n.full = 0;
    CHECK_EQ_INT(zmq_outq_flush(&q, fake_send, NULL, &n), ZMQ_OUTQ_SENT);
    CHECK_EQ_STR(n.log[0], "body:a");
    CHECK_EQ_STR(n.log[1], "body:b");
    zmq_outq_release(&q);
}

MK_TEST(a_gone_node_a_bound_and_a_stopped_flush)
{
    struct fake_node n = { .gone = 1 };
    struct zmq_outq q;

    zmq_outq_init(&q);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "x", 100), ZMQ_OUTQ_GONE);
    CHECK(zmq_outq_is_empty(&q));
    n.gone = 0;
    n.full = 1;
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "0123456789", 12), ZMQ_OUTQ_HELD);
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "abc", 12), ZMQ_OUTQ_FULL);
    CHECK_EQ_INT(q.bytes, 10);                   /* nothing was added */
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_END, "", 12), ZMQ_OUTQ_HELD);
    n.full = 0;
    n.stop_at_end = 1;
    CHECK_EQ_INT(zmq_outq_flush(&q, fake_send, fake_sent, &n),
                 ZMQ_OUTQ_STOPPED);
    CHECK_EQ_INT(n.sent, 2);
    n.full = 1;
    CHECK_EQ_INT(push(&q, &n, ZMQ_MSG_BODY, "y", 12), ZMQ_OUTQ_HELD);
    n.full = 0;
    n.gone = 1;
    CHECK_EQ_INT(zmq_outq_flush(&q, fake_send, fake_sent, &n), ZMQ_OUTQ_GONE);
    zmq_outq_release(&q);
    CHECK(zmq_outq_is_empty(&q));
}

/* ---- the byte budget, over a real ROUTER ----------------------------------- */

struct budget {
    void *ctx, *dealer;
    struct zmq_conf conf;
    struct zmq_gw gw;
    struct zmq_node node;
};

static void budget_init(struct budget *b, uint64_t limit)
{
    int one = 1;

    memset(b, 0, sizeof(*b));
    b->ctx = zmq_ctx_new();
    b->gw.routers[0] = zmq_socket(b->ctx, ZMQ_ROUTER);
    b->gw.nrouters = 1;
    zmq_setsockopt(b->gw.routers[0], ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    zmq_bind(b->gw.routers[0], "inproc://queue-test");
    b->dealer = zmq_socket(b->ctx, ZMQ_DEALER);
    zmq_setsockopt(b->dealer, ZMQ_ROUTING_ID, "n1", 2);
    zmq_connect(b->dealer, "inproc://queue-test");
    b->conf.node_queue = limit;
    b->gw.conf = &b->conf;
    memcpy(b->node.id, "n1", 2);
    b->node.id_len = 2;
}

static void budget_release(struct budget *b)
{
    int zero = 0;

    zmq_setsockopt(b->gw.routers[0], ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(b->dealer, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_close(b->gw.routers[0]);
    zmq_close(b->dealer);
    zmq_ctx_term(b->ctx);
}

/* Reads one [sid, type, body] at the node; returns the body's bytes, the
 * message still open in *body. */
static const void *node_read(struct budget *b, zmq_msg_t *body)
{
    zmq_msg_t part;
    int i;

    for (i = 0; i < 2; i++) {
        zmq_msg_init(&part);
        zmq_msg_recv(&part, b->dealer, 0);
        zmq_msg_close(&part);
    }
    zmq_msg_init(body);
    if (zmq_msg_recv(body, b->dealer, 0) < 0) {
        return NULL;
    }
    return zmq_msg_data(body);
}

MK_TEST(budget_counts_until_libzmq_lets_go)
{
    static const uint8_t sid[ZMQ_SID_LEN];
    struct budget b;
    zmq_msg_t big, got[4], small;
    int i;

    budget_init(&b, 64 * 1024);
    /* small bodies are copied and not counted (the HWM bounds them) */
    zmq_msg_init_size(&small, 10);
    memset(zmq_msg_data(&small), 's', 10);
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "msg", &small), 0);
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, NULL, "ping", NULL), 0);
    CHECK_EQ_INT(atomic_load(&b.node.queued), 0);
    zmq_msg_init_size(&big, 16 * 1024);
    memset(zmq_msg_data(&big), 'x', 16 * 1024);
    for (i = 0; i < 4; i++) {
        CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "msg", &big), 0);
    }
    CHECK_EQ_INT(atomic_load(&b.node.queued), 64 * 1024);
    /* full: the fifth waits, as at the high-water mark, and so does
     * anything else for this node */
    errno = 0;
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "msg", &big), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "msg", &small), -1);
    CHECK_EQ_INT(atomic_load(&b.node.queued), 64 * 1024);
    for (i = 0; i < 2; i++) {
        CHECK(node_read(&b, &got[0]) != NULL);
        zmq_msg_close(&got[0]);
    }
    /* each recipient got the sender's bytes, not a copy */
    for (i = 0; i < 4; i++) {
        CHECK(node_read(&b, &got[i]) == zmq_msg_data(&big));
    }
    CHECK_EQ_INT(atomic_load(&b.node.queued), 64 * 1024); /* still held */
    zmq_msg_close(&got[0]);
    CHECK_EQ_INT(atomic_load(&b.node.queued), 48 * 1024);
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "msg", &big), 0);
    for (i = 1; i < 4; i++) {
        zmq_msg_close(&got[i]);
    }
    zmq_msg_close(&big);
    zmq_msg_close(&small);
    budget_release(&b);          /* drops what is still queued: given back */
    CHECK_EQ_INT(atomic_load(&b.node.queued), 0);
}

MK_TEST(one_message_larger_than_the_budget_still_goes)
{
    static const uint8_t sid[ZMQ_SID_LEN];
    struct budget b;
    zmq_msg_t big, got;

    budget_init(&b, 64 * 1024);
    zmq_msg_init_size(&big, 256 * 1024);
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "body", &big), 0);
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "body", &big), -1);
    CHECK(node_read(&b, &got) != NULL);
    zmq_msg_close(&got);
    CHECK_EQ_INT(atomic_load(&b.node.queued), 0);
    CHECK_EQ_INT(zmq_gw_send(&b.gw, &b.node, sid, "body", &big), 0);
    zmq_msg_close(&big);
    budget_release(&b);
    CHECK_EQ_INT(atomic_load(&b.node.queued), 0);
}

int main(void)
{
    RUN(request_two_waits_behind_request_one);
    RUN(flush_stops_where_the_node_is_full_again);
    RUN(a_gone_node_a_bound_and_a_stopped_flush);
    RUN(budget_counts_until_libzmq_lets_go);
    RUN(one_message_larger_than_the_budget_still_goes);
    return mk_test_done();
}
