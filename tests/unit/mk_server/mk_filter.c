/* Output filters on a real connection over a socketpair: the declared
 * order (not the attach order), transforms, a filter that holds bytes and
 * releases them later (memory, a shared buffer and a file range split in
 * slices) with the held bytes counted as queued, on_drain only once
 * nothing is held, a graceful close that waits for held bytes, and
 * WriteQueueLimit. */
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mk_test.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

static int drains;
static struct mk_filter_link *holder;

static int proto_read(struct mk_conn *c)
{
    return MK_PROTO_OK;
}

static int proto_drain(struct mk_conn *c)
{
    drains++;
    return MK_PROTO_OK;
}

static int proto_timeout(struct mk_conn *c)
{
    return MK_PROTO_CLOSE;
}

static const struct mk_proto test_proto = {
    .name = "test", .on_read = proto_read, .on_drain = proto_drain,
    .on_timeout = proto_timeout,
};

static ssize_t io_read(struct mk_conn *c, void *buf, size_t len)
{
    ssize_t n = read(mk_conn_fd(c), buf, len);

    return n < 0 ? MK_IO_AGAIN : n;
}

static ssize_t io_writev(struct mk_conn *c, const struct iovec *iov, int cnt)
{
    ssize_t n = writev(mk_conn_fd(c), iov, cnt);

    return n < 0 ? MK_IO_AGAIN : n;
}

static const struct mk_net_io test_io = {
    .name = "test", .read = io_read, .writev = io_writev,
};

/* Rewrites byte `from` into `to` (data: "ab" = a->b) in memory pieces. */
static int rewrite(struct mk_filter_link *l, struct mk_piece *p)
{
    const char *map = mk_filter_data(l);
    struct mk_piece q = *p;
    char *buf;
    size_t i;

    if (p->type != MK_PIECE_MEM) {
        return mk_filter_pass(l, p);
    }
    buf = mk_mem_alloc(p->len);
    if (!buf) {
        return -1;
    }
    for (i = 0; i < p->len; i++) {
        const char ch = ((const char *) p->data)[i];
        buf[i] = ch == map[0] ? map[1] : ch;
    }
    if (p->flags & MK_WRITE_FREE) {
        mk_mem_free((void *) p->data);      /* the piece was ours to free */
    }
    q.data = buf;
    q.flags = MK_WRITE_FREE;
    return mk_filter_pass(l, &q);
}

static int hold(struct mk_filter_link *l, struct mk_piece *p)
{
    holder = l;
    return mk_filter_hold(l, p);
}

static int detached;

static void on_detach(struct mk_filter_link *l)
{
    detached++;
}

/* declared out of run order on purpose */
static const struct mk_filter filters[] = {
    { "b2c", 20, rewrite, on_detach },
    { "hold", 90, hold, on_detach },
    { "a2b", 10, rewrite, on_detach },
    { NULL, 0, NULL, NULL }
};

static const struct mk_plugin plugin = { .name = "t", .filters = filters };
static struct mk_plugin_inst inst = { .p = &plugin };
static struct mk_listen listen_ = { .io = &test_io };
static struct mk_server srv;
static struct mk_worker worker;
static int peer = -1;

static void noop_event(struct mk_event *ev, uint32_t events)
{
}

static struct mk_conn *conn_new(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct mk_conn *c;
    int sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    peer = sv[1];
    c = mk_conn_create(&srv, &listen_, sv[0], (struct sockaddr *) &sa);
    c->worker = &worker;
    c->proto = &test_proto;
    mk_list_add(&c->_head, &worker.conns);
    mk_event_add(worker.loop, &c->ev, sv[0], MK_EVENT_READ, noop_event);
    c->flags |= MK_CONN_F_IN_HANDLER;     /* as inside an event handler */
    drains = 0;
    detached = 0;
    holder = NULL;
    return c;
}

static void conn_done(struct mk_conn *c)
{
    if (c->state != MK_CONN_CLOSED) {
        mk_conn_close_internal(c, 0);
    }
    mk_list_del(&c->_head);
    mk_conn_destroy(c);
    close(peer);
}

/* What the peer can read now. */
static size_t peer_read(char *buf, size_t cap)
{
    ssize_t n;
    size_t got = 0;

    while (got < cap && (n = read(peer, buf + got, cap - got)) > 0) {
        got += (size_t) n;
    }
    return got;
}

MK_TEST(table_in_declared_order_duplicates_refused)
{
    struct mk_plugin again = { .name = "u", .filters = filters + 2 };
    struct mk_plugin_inst two[2] = { { .p = &plugin }, { .p = &again } };
    struct mk_server s2 = { .plugins = two, .plugin_count = 2 };
    char err[128];

    CHECK_EQ_INT(srv.filter_count, 3);
    CHECK_EQ_STR(srv.filters[0]->name, "a2b");
    CHECK_EQ_STR(srv.filters[1]->name, "b2c");
    CHECK_EQ_STR(srv.filters[2]->name, "hold");
    CHECK_EQ_INT(mk_filters_build(&s2, err, sizeof(err)), -1);
    CHECK_EQ_STR(err, "plugin u: output filter \"a2b\" is declared twice");
    mk_mem_free(s2.filters);
}

MK_TEST(declared_order_wins_over_attach_order)
{
    static const struct mk_filter stranger = { "x", 1, rewrite, NULL };
    struct mk_conn *c = conn_new();
    char buf[64];

    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[0], "bc"), 0);
    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[2], "ab"), 0);
    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[0], "bc"), -1);  /* twice */
    CHECK_EQ_INT(mk_conn_filter_attach(c, &stranger, "ab"), -1);
    CHECK_EQ_INT(mk_conn_write(c, "aabbz", 5, MK_WRITE_COPY), 0);
    CHECK_EQ_INT(mk_conn_flush_now(c), 0);
    CHECK_EQ_MEM(buf, peer_read(buf, sizeof(buf)), "ccccz");
    CHECK_EQ_INT(drains, 1);
    conn_done(c);
    CHECK_EQ_INT(detached, 2);
}

MK_TEST(held_bytes_count_as_queued_and_drain_waits)
{
    struct mk_conn *c = conn_new();
    char buf[64];

    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[1], NULL), 0);
    CHECK_EQ_INT(mk_conn_write(c, "0123456789", 10, MK_WRITE_COPY), 0);
    CHECK_EQ_INT(mk_conn_write(c, "abcdef", 6, MK_WRITE_STATIC), 0);
    CHECK(holder != NULL);
    CHECK_EQ_INT(mk_conn_queued(c), 16);      /* producers see them */
    CHECK_EQ_INT(mk_filter_held(holder), 16);
    CHECK_EQ_INT(mk_conn_flush_now(c), 0);
    CHECK_EQ_INT(peer_read(buf, sizeof(buf)), 0);
    CHECK_EQ_INT(drains, 0);                  /* not drained: held */

    CHECK_EQ_INT(mk_filter_release(holder, 4), 4);
    CHECK_EQ_INT(mk_conn_queued(c), 16);      /* 4 queued + 12 held */
    CHECK_EQ_INT(mk_conn_flush_now(c), 0);
    CHECK_EQ_MEM(buf, peer_read(buf, sizeof(buf)), "0123");
    CHECK_EQ_INT(drains, 0);
    CHECK_EQ_INT(mk_conn_queued(c), 12);

    CHECK_EQ_INT(mk_filter_release(holder, 100), 12);
    CHECK_EQ_INT(mk_filter_held(holder), 0);
    CHECK_EQ_INT(mk_conn_flush_now(c), 0);
    CHECK_EQ_MEM(buf, peer_read(buf, sizeof(buf)), "456789abcdef");
    CHECK_EQ_INT(drains, 1);                  /* now the producer resumes */
    CHECK_EQ_INT(mk_conn_queued(c), 0);
    conn_done(c);
}

MK_TEST(file_range_split_in_slices)
{
    char path[] = "/tmp/mk_filter_XXXXXX", buf[8192], want[5000];
    struct mk_conn *c = conn_new();
    size_t i, got = 0;
    int fd = mkstemp(path);

    for (i = 0; i < sizeof(want); i++) {
        want[i] = (char) ('A' + i % 26);
    }
    CHECK(write(fd, want, sizeof(want)) == (ssize_t) sizeof(want));
    unlink(path);
    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[1], NULL), 0);
    CHECK_EQ_INT(mk_conn_write(c, "head:", 5, MK_WRITE_STATIC), 0);
    CHECK_EQ_INT(mk_conn_write_file(c, fd, 1000, 4000, 1), 0);
    CHECK_EQ_INT(c->wq_files, 1);             /* a held file counts too */
    while (mk_filter_held(holder) > 0) {
        CHECK(mk_filter_release(holder, 1500) > 0);
        CHECK_EQ_INT(mk_conn_flush_now(c), 0);
        got += peer_read(buf + got, sizeof(buf) - got);
    }
    CHECK_EQ_INT(got, 4005);
    CHECK(memcmp(buf, "head:", 5) == 0);
    CHECK(memcmp(buf + 5, want + 1000, 4000) == 0);
    CHECK_EQ_INT(c->wq_files, 0);
    CHECK(fcntl(fd, F_GETFD) < 0);            /* closed with its last slice */
    conn_done(c);
}

MK_TEST(shared_buffer_held_by_reference_and_sliced)
{
    struct mk_shared_buf *sb = mk_shared_buf_create("hello world", 11);
    struct mk_conn *c = conn_new();
    char buf[64];

    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[1], NULL), 0);
    CHECK_EQ_INT(mk_conn_write_shared(c, sb), 0);
    CHECK_EQ_INT(atomic_load(&sb->refs), 2);  /* no copy: a reference */
    CHECK_EQ_INT(mk_conn_queued(c), 11);
    CHECK_EQ_INT(mk_filter_release(holder, 5), 5);
    CHECK_EQ_INT(mk_conn_flush_now(c), 0);
    CHECK_EQ_MEM(buf, peer_read(buf, sizeof(buf)), "hello");
    CHECK_EQ_INT(mk_filter_release(holder, 100), 6);
    CHECK_EQ_INT(mk_conn_flush_now(c), 0);
    CHECK_EQ_MEM(buf, peer_read(buf, sizeof(buf)), " world");
    CHECK_EQ_INT(atomic_load(&sb->refs), 1);  /* only ours is left */
    CHECK_EQ_INT(drains, 1);
    mk_shared_buf_release(sb);
    conn_done(c);
}

MK_TEST(graceful_close_waits_for_held_bytes)
{
    struct mk_conn *c = conn_new();
    char buf[64];

    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[1], NULL), 0);
    CHECK_EQ_INT(mk_conn_write(c, "last words", 10, MK_WRITE_COPY), 0);
    mk_conn_close_internal(c, 1);
    CHECK_EQ_INT(mk_conn_flush_now(c), 0);
    CHECK(c->state == MK_CONN_CLOSING);       /* not yet: bytes are held */
    c->flags &= ~MK_CONN_F_IN_HANDLER;        /* a timer releases them */
    CHECK_EQ_INT(mk_filter_release(holder, 100), 10);
    CHECK_EQ_INT(mk_worker_run_posted(&worker), 0);
    CHECK(c->state == MK_CONN_CLOSED);
    CHECK_EQ_INT(detached, 1);
    CHECK_EQ_MEM(buf, peer_read(buf, sizeof(buf)), "last words");
    conn_done(c);
}

MK_TEST(write_queue_limit_counts_held_bytes)
{
    struct mk_conn *c = conn_new();
    char big[3000];

    memset(big, 'x', sizeof(big));
    mk_conn_set_write_limit(c, 2000);
    CHECK_EQ_INT(mk_conn_filter_attach(c, &filters[1], NULL), 0);
    CHECK_EQ_INT(mk_conn_write(c, big, 1500, MK_WRITE_COPY), 0);
    CHECK_EQ_INT(mk_conn_write(c, big, 1500, MK_WRITE_COPY), -1);
    CHECK(c->flags & MK_CONN_F_DEAD);         /* closes at the posted pass */
    CHECK_EQ_INT(mk_conn_write(c, big, 10, MK_WRITE_COPY), -1);
    conn_done(c);
}

int main(void)
{
    char err[128];

    srv.plugins = &inst;
    srv.plugin_count = 1;
    srv.conf.write_queue_limit = 1 << 20;
    srv.conf.send_timeout = 10000;
    mk_list_init(&worker.conns);
    mk_list_init(&worker.closed);
    mk_list_init(&worker.posted);
    mk_list_init(&worker.free_streams);
    worker.srv = &srv;
    worker.loop = mk_event_loop_create(16);
    if (!worker.loop || mk_filters_build(&srv, err, sizeof(err)) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    RUN(table_in_declared_order_duplicates_refused);
    RUN(declared_order_wins_over_attach_order);
    RUN(held_bytes_count_as_queued_and_drain_waits);
    RUN(file_range_split_in_slices);
    RUN(shared_buffer_held_by_reference_and_sliced);
    RUN(graceful_close_waits_for_held_bytes);
    RUN(write_queue_limit_counts_held_bytes);
    mk_mem_free(srv.filters);
    mk_event_loop_destroy(worker.loop);
    return mk_test_done();
}
