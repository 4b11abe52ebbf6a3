/* The worker's free lists (read buffers, streams, write-queue blocks:
 * reused, capped at MK_POOL_MAX, released) and a draining worker closing
 * only the connections whose protocol says nothing is in flight. The
 * worker's statics are reached by including its source. */
#include <fcntl.h>
#include <sys/socket.h>

#include "mk_test.h"
#include "../../../mk_server/mk_worker.c"

static struct mk_worker w;

static void pool_init(void)
{
    memset(&w, 0, sizeof(w));
    w.loop = mk_event_loop_create(8);
    mk_list_init(&w.conns);
    mk_list_init(&w.closed);
    mk_list_init(&w.posted);
    mk_list_init(&w.free_streams);
}

MK_TEST(buffers_are_reused_and_capped)
{
    char *bufs[MK_POOL_MAX + 1];
    char *a;
    size_t i;

    pool_init();
    a = mk_worker_buf_get(&w);
    CHECK(a != NULL);
    mk_worker_buf_put(&w, a);
    CHECK(mk_worker_buf_get(&w) == a);       /* no malloc once warm */
    mk_worker_buf_put(&w, a);
    for (i = 0; i < MK_POOL_MAX + 1; i++) {
        bufs[i] = mk_worker_buf_get(&w);
    }
    CHECK_EQ_INT(w.n_free_bufs, 0);
    for (i = 0; i < MK_POOL_MAX + 1; i++) {
        mk_worker_buf_put(&w, bufs[i]);      /* the last one is freed */
    }
    CHECK_EQ_INT(w.n_free_bufs, MK_POOL_MAX);
    worker_pools_release(&w);
    CHECK_EQ_INT(w.n_free_bufs, 0);
    mk_event_loop_destroy(w.loop);
}

MK_TEST(streams_and_chunks_are_reused_and_capped)
{
    struct mk_stream *s[MK_POOL_MAX + 1], *first;
    struct mk_chunk *ch;
    size_t i;

    pool_init();
    first = mk_worker_stream_get(&w);
    mk_worker_stream_put(&w, first);
    CHECK(mk_worker_stream_get(&w) == first);
    s[0] = first;
    for (i = 1; i < MK_POOL_MAX + 1; i++) {
        s[i] = mk_worker_stream_get(&w);
    }
    for (i = 0; i < MK_POOL_MAX + 1; i++) {
        mk_worker_stream_put(&w, s[i]);
    }
    CHECK_EQ_INT(w.n_free_streams, MK_POOL_MAX);
    ch = mk_worker_chunk_get(&w);
    ch->pooled = 1;
    ch->type = MK_CHUNK_MEM;
    ch->owned = NULL;
    mk_conn_chunk_destroy(&w, ch);
    CHECK_EQ_INT(w.n_free_chunks, 1);
    CHECK(mk_worker_chunk_get(&w) == ch);
    mk_mem_free(ch);
    worker_pools_release(&w);
    CHECK_EQ_INT(w.n_free_streams, 0);
    CHECK(mk_list_is_empty(&w.free_streams));
    mk_event_loop_destroy(w.loop);
}

/* ---- Draining: is_idle ----------------------------------------------------- */

static int closes;

static ssize_t sock_read(struct mk_conn *c, void *buf, size_t len)
{
    ssize_t n = read(mk_conn_fd(c), buf, len);

    return n < 0 ? MK_IO_AGAIN : n;
}

static ssize_t sock_writev(struct mk_conn *c, const struct iovec *iov,
                           int cnt)
{
    return writev(mk_conn_fd(c), iov, cnt);
}

static int busy_on_read(struct mk_conn *c)
{
    (void) c;
    return MK_PROTO_OK;
}

static void busy_on_close(struct mk_conn *c)
{
    (void) c;
    closes++;
}

/* proto_data non-NULL: a stream is in flight */
static int busy_is_idle(const struct mk_conn *c)
{
    return mk_conn_proto_data(c) == NULL;
}

static const struct mk_net_io sock_io = {
    .name = "sock", .read = sock_read, .writev = sock_writev,
};
static const struct mk_proto counted = {
    .name = "counted", .on_read = busy_on_read, .on_close = busy_on_close,
    .is_idle = busy_is_idle,
};
static const struct mk_proto hookless = {
    .name = "hookless", .on_read = busy_on_read, .on_close = busy_on_close,
};

static struct mk_conn *open_conn(struct mk_server *srv, struct mk_listen *l,
                                 const struct mk_proto *proto, void *data,
                                 int *peer)
{
    struct sockaddr sa = { .sa_family = AF_UNIX };
    struct mk_conn *c;
    int sv[2];

    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    c = mk_conn_create(srv, l, sv[0], &sa);
    mk_conn_start(&w, c);
    mk_conn_set_proto(c, proto, data);
    *peer = sv[1];
    return c;
}

MK_TEST(draining_closes_only_idle_connections)
{
    static struct mk_server srv;
    static struct mk_listen l;
    int in_flight = 1, p1, p2, p3;
    struct mk_conn *idle, *busy, *plain;

    pool_init();
    srv.conf.write_queue_limit = 1 << 20;
    l.io = &sock_io;
    l.proto = &counted;
    idle = open_conn(&srv, &l, &counted, NULL, &p1);
    busy = open_conn(&srv, &l, &counted, &in_flight, &p2);
    plain = open_conn(&srv, &l, &hookless, NULL, &p3);
    worker_close_idle(&w);
    CHECK_EQ_INT(idle->state, MK_CONN_CLOSED);
    CHECK_EQ_INT(plain->state, MK_CONN_CLOSED);   /* no hook: idle */
    CHECK_EQ_INT(busy->state, MK_CONN_OPEN);
    CHECK_EQ_INT(closes, 2);
    worker_close_all(&w);
    CHECK_EQ_INT(busy->state, MK_CONN_CLOSED);
    worker_free_closed(&w);
    worker_pools_release(&w);
    close(p1);
    close(p2);
    close(p3);
    mk_event_loop_destroy(w.loop);
}

int main(void)
{
    RUN(buffers_are_reused_and_capped);
    RUN(streams_and_chunks_are_reused_and_capped);
    RUN(draining_closes_only_idle_connections);
    return mk_test_done();
}
