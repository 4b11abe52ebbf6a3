/* Connections on a socketpair and a real worker loop: the read path hands
 * bytes to the protocol, the write queue leaves in order (memory and file
 * chunks) at the posted pass and tells the protocol it drained,
 * WriteQueueLimit fails the connection, and graceful and immediate closes
 * run the protocol's on_close and end the socket. The protocol and the
 * I/O layer are fakes of a few lines. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mk_test.h"
#include "mk_core/mk_event.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

/* ---- Fake I/O layer and protocol --------------------------------------- */

static ssize_t fake_read(struct mk_conn *c, void *buf, size_t len)
{
    ssize_t n = read(mk_conn_fd(c), buf, len);

    if (n < 0) {
        return errno == EAGAIN ? MK_IO_AGAIN : MK_IO_ERROR;
    }
    return n;
}

static ssize_t fake_writev(struct mk_conn *c, const struct iovec *iov,
                           int iovcnt)
{
    ssize_t n = writev(mk_conn_fd(c), iov, iovcnt);

    if (n < 0) {
        return errno == EAGAIN ? MK_IO_AGAIN : MK_IO_ERROR;
    }
    return n;
}

static const struct mk_net_io fake_io = {
    .name = "fake", .read = fake_read, .writev = fake_writev,
};

struct proto_log {
    char input[64];
    size_t input_len;
    int drains, closes, timeouts, posted;
};

static struct proto_log plog;

static int fake_on_read(struct mk_conn *c)
{
    struct mk_ptr in = mk_conn_input(c);

    memcpy(plog.input + plog.input_len, in.data, in.len);
    plog.input_len += in.len;
    mk_conn_consume(c, in.len);
    return MK_PROTO_OK;
}

static int fake_on_drain(struct mk_conn *c)
{
    (void) c;
    plog.drains++;
    return MK_PROTO_OK;
}

static int fake_on_timeout(struct mk_conn *c)
{
    (void) c;
    plog.timeouts++;
    return MK_PROTO_CLOSE;
}

static void fake_on_close(struct mk_conn *c)
{
    (void) c;
    plog.closes++;
}

static void fake_on_posted(struct mk_conn *c)
{
    (void) c;
    plog.posted++;
}

static const struct mk_proto fake_proto = {
    .name = "fake", .on_read = fake_on_read, .on_drain = fake_on_drain,
    .on_timeout = fake_on_timeout, .on_close = fake_on_close,
    .on_posted = fake_on_posted,
};

/* ---- A worker, a listener, a connection ---------------------------------- */

static struct mk_server srv;
static struct mk_listen listen_;
static struct mk_worker worker;

static void world_init(void)
{
    srv.conf.write_queue_limit = 1 << 20;
    srv.conf.send_timeout = 5000;
    listen_.io = &fake_io;
    listen_.proto = &fake_proto;
    worker.srv = &srv;
    worker.loop = mk_event_loop_create(16);
    mk_list_init(&worker.conns);
    mk_list_init(&worker.closed);
    mk_list_init(&worker.posted);
    mk_list_init(&worker.free_streams);
}

/* Closed connections are freed after the batch, as the worker does. */
static void free_closed(void)
{
    while (!mk_list_is_empty(&worker.closed)) {
        struct mk_conn *c = mk_list_entry(worker.closed.next, struct mk_conn,
                                          _head);
        mk_list_del(&c->_head);
        mk_conn_destroy(c);
    }
}

static int fcntl_nonblock(int fd)
{
    return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A started connection; *peer is the client's end (blocking, 2 s). */
static struct mk_conn *conn_open(int *peer)
{
    struct sockaddr sa = { .sa_family = AF_UNIX };
    struct timeval tv = { .tv_sec = 2 };
    struct mk_conn *c;
    int sv[2];

    memset(&plog, 0, sizeof(plog));
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ_INT(fcntl_nonblock(sv[0]), 0);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    c = mk_conn_create(&srv, &listen_, sv[0], &sa);
    CHECK(c != NULL);
    mk_conn_start(&worker, c);
    *peer = sv[1];
    return c;
}

/* Reads exactly n bytes (or until EOF); returns how many. */
static size_t peer_read(int fd, char *buf, size_t n)
{
    size_t got = 0;
    ssize_t r;

    while (got < n && (r = read(fd, buf + got, n - got)) > 0) {
        got += (size_t) r;
    }
    return got;
}

static int peer_sees_eof(int fd)
{
    char b;

    return read(fd, &b, 1) == 0;
}

/* ---- Tests --------------------------------------------------------------- */

MK_TEST(read_path_hands_bytes_to_the_protocol)
{
    int peer, i;
    struct mk_conn *c = conn_open(&peer);

    CHECK(c->proto == &fake_proto);
    CHECK_EQ_INT(write(peer, "ping", 4), 4);
    for (i = 0; i < 50 && plog.input_len < 4; i++) {
        mk_event_loop_run_once(worker.loop, 100);
    }
    CHECK_EQ_MEM(plog.input, plog.input_len, "ping");
    mk_conn_close(c, 0);
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(plog.closes, 1);
    CHECK(peer_sees_eof(peer));
    free_closed();
    close(peer);
}

MK_TEST(writes_leave_in_order_at_the_posted_pass)
{
    char buf[64];
    int peer;
    struct mk_conn *c = conn_open(&peer);
    char *owned = mk_mem_alloc(3);

    memcpy(owned, "two", 3);
    CHECK_EQ_INT(mk_conn_write(c, "one ", 4, MK_WRITE_STATIC), 0);
    CHECK_EQ_INT(mk_conn_write(c, owned, 3, MK_WRITE_FREE), 0);
    CHECK_EQ_INT(mk_conn_write(c, " three", 6, MK_WRITE_COPY), 0);
    CHECK_EQ_INT(mk_conn_queued(c), 13);
    CHECK_EQ_INT(plog.drains, 0);            /* nothing written yet */
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(mk_conn_queued(c), 0);
    CHECK_EQ_INT(plog.drains, 1);
    CHECK_EQ_INT(peer_read(peer, buf, 13), 13);
    CHECK_EQ_MEM(buf, 13, "one two three");
    mk_conn_close(c, 1);
    mk_worker_run_posted(&worker);
    CHECK(peer_sees_eof(peer));
    free_closed();
    close(peer);
}

MK_TEST(posted_work_runs_after_the_caller)
{
    int peer;
    struct mk_conn *c = conn_open(&peer);

    mk_conn_post_work(c);
    mk_conn_post_work(c);                    /* once per pass */
    CHECK_EQ_INT(plog.posted, 0);            /* never under the caller */
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(plog.posted, 1);
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(plog.posted, 1);            /* nothing posted since */
    mk_conn_close(c, 0);
    mk_worker_run_posted(&worker);
    free_closed();
    close(peer);
}

MK_TEST(file_chunks_without_sendfile)
{
    char path[] = "/tmp/mk_conn_test_XXXXXX";
    char buf[64];
    int peer, fd = mkstemp(path);
    struct mk_conn *c = conn_open(&peer);

    CHECK(fd >= 0);
    CHECK_EQ_INT(write(fd, "0123456789", 10), 10);
    unlink(path);
    mk_conn_write(c, "[", 1, MK_WRITE_STATIC);
    CHECK_EQ_INT(mk_conn_write_file(c, fd, 2, 5, 1), 0);  /* closes fd */
    mk_conn_write(c, "]", 1, MK_WRITE_STATIC);
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(peer_read(peer, buf, 7), 7);
    CHECK_EQ_MEM(buf, 7, "[23456]");
    mk_conn_close(c, 0);
    mk_worker_run_posted(&worker);
    free_closed();
    close(peer);
}

MK_TEST(write_queue_limit_fails_the_connection)
{
    int peer;
    struct mk_conn *c = conn_open(&peer);

    mk_conn_set_write_limit(c, 8);
    CHECK_EQ_INT(mk_conn_write(c, "12345678", 8, MK_WRITE_STATIC), 0);
    CHECK_EQ_INT(mk_conn_write(c, "9", 1, MK_WRITE_STATIC), -1);
    CHECK_EQ_INT(plog.closes, 0);            /* not under the caller */
    CHECK_EQ_INT(mk_conn_write(c, "x", 1, MK_WRITE_STATIC), -1);
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(plog.closes, 1);
    CHECK_EQ_INT(c->state, MK_CONN_CLOSED);
    free_closed();
    close(peer);
}

MK_TEST(graceful_close_flushes_first)
{
    char buf[8];
    int peer;
    struct mk_conn *c = conn_open(&peer);

    mk_conn_write(c, "bye", 3, MK_WRITE_STATIC);
    mk_conn_close(c, 1);
    CHECK_EQ_INT(c->state, MK_CONN_CLOSING);
    CHECK_EQ_INT(mk_conn_write(c, "late", 4, MK_WRITE_STATIC), -1);
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(plog.closes, 1);
    CHECK_EQ_INT(peer_read(peer, buf, 3), 3);
    CHECK_EQ_MEM(buf, 3, "bye");
    CHECK(peer_sees_eof(peer));
    free_closed();
    close(peer);
}

MK_TEST(timer_asks_the_protocol)
{
    int peer, i;
    struct mk_conn *c = conn_open(&peer);

    mk_conn_timeout(c, 1);
    for (i = 0; i < 50 && plog.timeouts == 0; i++) {
        mk_event_loop_run_once(worker.loop, 50);
    }
    CHECK_EQ_INT(plog.timeouts, 1);
    mk_worker_run_posted(&worker);
    CHECK_EQ_INT(plog.closes, 1);            /* it answered CLOSE */
    CHECK(peer_sees_eof(peer));
    free_closed();
    close(peer);
}

int main(void)
{
    world_init();
    RUN(read_path_hands_bytes_to_the_protocol);
    RUN(writes_leave_in_order_at_the_posted_pass);
    RUN(posted_work_runs_after_the_caller);
    RUN(file_chunks_without_sendfile);
    RUN(write_queue_limit_fails_the_connection);
    RUN(graceful_close_flushes_first);
    RUN(timer_asks_the_protocol);
    while (worker.n_free_bufs > 0) {
        mk_mem_free(worker.free_bufs[--worker.n_free_bufs]);
    }
    while (worker.n_free_chunks > 0) {
        mk_mem_free(worker.free_chunks[--worker.n_free_chunks]);
    }
    mk_event_loop_destroy(worker.loop);
    return mk_test_done();
}
