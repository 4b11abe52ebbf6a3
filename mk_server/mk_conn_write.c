/*
 * The connection's write queue: memory, file and shared chunks queued by
 * protocols and written with one writev (files with the I/O layer's
 * sendfile, or read into memory when it has none), WriteQueueLimit, and
 * the send deadline while bytes wait for a slow reader. Closing and the
 * lingering close after the last write stay in mk_conn.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"

#define MK_IOV_MAX        64
#define MK_CONN_EAGER_FLUSH (64 * 1024)

void mk_conn_chunk_destroy(struct mk_worker *w, struct mk_chunk *ch)
{
    if (ch->type == MK_CHUNK_FILE && ch->close_fd) {
        close(ch->fd);
    }
    else if (ch->type == MK_CHUNK_SHARED) {
        mk_shared_buf_release(ch->sb);
    }
    else if (ch->owned) {
        mk_mem_free(ch->owned);
    }
    if (ch->pooled && w && w->n_free_chunks < MK_POOL_MAX) {
        w->free_chunks[w->n_free_chunks++] = ch;
        return;
    }
    mk_mem_free(ch);
}

static struct mk_chunk *conn_chunk_create(struct mk_conn *c, size_t inline_len)
{
    struct mk_chunk *ch;
    size_t room = MK_CHUNK_BLOCK_SIZE - sizeof(struct mk_chunk);

    if (inline_len <= MK_CHUNK_SMALL) {
        /* A header alone when the bytes live elsewhere (a shared broadcast
         * frame, a file), else a small inline room (a frame, a response
         * head): not a 16 KiB block from a pool of 64 that a broadcast to
         * 10,000 clients would overflow and fault in 10,000 times. */
        size_t cap = inline_len ? MK_CHUNK_SMALL : 0;

        ch = mk_mem_alloc(sizeof(*ch) + cap);
        if (!ch) {
            return NULL;
        }
        memset(ch, 0, sizeof(*ch));
        ch->cap = cap;
    }
    else if (inline_len <= room) {
        ch = mk_worker_chunk_get(c->worker);
        if (!ch) {
            return NULL;
        }
        memset(ch, 0, sizeof(*ch));
        ch->pooled = 1;
        ch->cap = inline_len ? room : 0;
    }
    else {
        ch = mk_mem_alloc(sizeof(*ch) + inline_len);
        if (!ch) {
            return NULL;
        }
        memset(ch, 0, sizeof(*ch));
        ch->cap = inline_len;
    }
    ch->type = MK_CHUNK_MEM;
    ch->data = ch->inline_data;
    mk_list_add(&ch->_head, &c->wq);
    return ch;
}

static int conn_queue_check(struct mk_conn *c)
{
    size_t limit = c->wq_limit ? c->wq_limit
                               : (size_t) c->srv->conf.write_queue_limit;

    if (c->wq_bytes > limit) {
        mk_warn("[fd %d] write queue over WriteQueueLimit (%zu bytes): "
                "closing a client that does not read", c->ev.fd, c->wq_bytes);
        return mk_conn_fail(c);
    }
    if ((c->flags & MK_CONN_F_IN_HANDLER) == 0) {
        /* A burst of backend messages in one batch would otherwise all be
         * queued before the posted flush and hit the limit even for a
         * client that reads fast: past a threshold, write now (failures
         * still close later, at the posted pass). */
        if (c->wq_bytes >= MK_CONN_EAGER_FLUSH && mk_conn_write_queue(c) < 0) {
            return mk_conn_fail(c);
        }
        mk_conn_post(c, 0);            /* one writev for a burst of writes */
    }
    return 0;
}

int mk_conn_writable(const struct mk_conn *c)
{
    return c->state == MK_CONN_OPEN && (c->flags & MK_CONN_F_DEAD) == 0;
}

/* A graceful close still sends what output filters release (bandwidth
 * pacing): the queue takes bytes until the connection is closed or dead;
 * the public writes refuse new ones as soon as it is closing. */
static int conn_queueable(const struct mk_conn *c)
{
    return c->state != MK_CONN_CLOSED && (c->flags & MK_CONN_F_DEAD) == 0;
}

int mk_conn_queue(struct mk_conn *c, const void *data, size_t len, int flags)
{
    struct mk_chunk *ch = NULL;

    if (!conn_queueable(c)) {
        if (flags & MK_WRITE_FREE) {
            mk_mem_free((void *) data);
        }
        return -1;
    }
    if (len == 0) {
        return 0;
    }
    if (flags == MK_WRITE_COPY) {
        if (!mk_list_is_empty(&c->wq)) {
            ch = mk_list_entry(c->wq.prev, struct mk_chunk, _head);
            /* append only where the unsent bytes end at the inline tail */
            if (ch->type != MK_CHUNK_MEM || ch->cap == 0 ||
                (size_t) (ch->data + ch->len - ch->inline_data) + len > ch->cap) {
                ch = NULL;
            }
        }
        if (!ch) {
            ch = conn_chunk_create(c, len);
            if (!ch) {
                goto error;
            }
        }
        memcpy((char *) ch->data + ch->len, data, len);
        ch->len += len;
    }
    else {
        ch = conn_chunk_create(c, 0);
        if (!ch) {
            goto error;
        }
        ch->data = data;
        ch->len = len;
        if (flags & MK_WRITE_FREE) {
            ch->owned = (void *) data;
        }
    }
    c->wq_bytes += len;
    return conn_queue_check(c);

error:
    if (flags & MK_WRITE_FREE) {
        mk_mem_free((void *) data);
    }
    mk_err("[fd %d] out of memory queueing a response", c->ev.fd);
    return mk_conn_fail(c);
}

int mk_conn_queue_file(struct mk_conn *c, int fd, off_t offset, size_t len,
                       int close_fd)
{
    struct mk_chunk *ch;

    if (!conn_queueable(c) || len == 0) {
        if (close_fd) {
            close(fd);
        }
        return conn_queueable(c) ? 0 : -1;
    }
    ch = conn_chunk_create(c, 0);
    if (!ch) {
        if (close_fd) {
            close(fd);
        }
        return mk_conn_fail(c);
    }
    ch->type = MK_CHUNK_FILE;
    ch->fd = fd;
    ch->offset = offset;
    ch->len = len;
    ch->close_fd = close_fd;
    c->wq_files++;
    /* file bytes are not memory: they do not count against the limit */
    if ((c->flags & MK_CONN_F_IN_HANDLER) == 0) {
        mk_conn_post(c, 0);
    }
    return 0;
}

struct mk_shared_buf *mk_shared_buf_create(const void *data, size_t len)
{
    struct iovec iov = { (void *) data, len };

    return mk_shared_buf_createv(&iov, 1);
}

struct mk_shared_buf *mk_shared_buf_createv(const struct iovec *iov,
                                            int iovcnt)
{
    struct mk_shared_buf *sb;
    size_t len = 0, off = 0;
    int i;

    for (i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
    }
    sb = mk_mem_alloc(sizeof(*sb) + len);
    if (!sb) {
        return NULL;
    }
    atomic_init(&sb->refs, 1);
    sb->len = len;
    for (i = 0; i < iovcnt; i++) {
        memcpy(sb->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    return sb;
}

void mk_shared_buf_release(struct mk_shared_buf *sb)
{
    if (sb && atomic_fetch_sub(&sb->refs, 1) == 1) {
        mk_mem_free(sb);
    }
}

int mk_conn_queue_shared(struct mk_conn *c, struct mk_shared_buf *sb)
{
    struct mk_chunk *ch;

    if (!conn_queueable(c)) {
        return -1;
    }
    ch = conn_chunk_create(c, 0);
    if (!ch) {
        return mk_conn_fail(c);
    }
    atomic_fetch_add(&sb->refs, 1);
    ch->type = MK_CHUNK_SHARED;
    ch->sb = sb;
    ch->data = sb->data;
    ch->len = sb->len;
    c->wq_bytes += sb->len;
    return conn_queue_check(c);
}

/* The public writes: a closing connection takes no new bytes, and output
 * filters (mk_filter.c) see every piece before the queue does. */
int mk_conn_write(struct mk_conn *c, const void *data, size_t len, int flags)
{
    if (!mk_conn_writable(c)) {
        if (flags & MK_WRITE_FREE) {
            mk_mem_free((void *) data);
        }
        return -1;
    }
    if (c->filters) {
        return mk_filter_conn_write(c, data, len, flags);
    }
    return mk_conn_queue(c, data, len, flags);
}

int mk_conn_write_file(struct mk_conn *c, int fd, off_t offset, size_t len,
                       int close_fd)
{
    if (!mk_conn_writable(c)) {
        if (close_fd) {
            close(fd);
        }
        return -1;
    }
    if (c->filters) {
        return mk_filter_conn_write_file(c, fd, offset, len, close_fd);
    }
    return mk_conn_queue_file(c, fd, offset, len, close_fd);
}

int mk_conn_write_shared(struct mk_conn *c, struct mk_shared_buf *sb)
{
    if (!mk_conn_writable(c)) {
        return -1;
    }
    if (c->filters) {
        return mk_filter_conn_write_shared(c, sb);
    }
    return mk_conn_queue_shared(c, sb);
}

void mk_conn_set_write_limit(struct mk_conn *c, size_t bytes)
{
    c->wq_limit = bytes;
}

size_t mk_conn_write_limit(const struct mk_conn *c)
{
    return c->wq_limit ? c->wq_limit : (size_t) c->srv->conf.write_queue_limit;
}

size_t mk_conn_queued(const struct mk_conn *c)
{
    return c->wq_bytes;
}

/* Drops `n` written bytes from the front of the queue. */
static void conn_advance(struct mk_conn *c, size_t n)
{
    struct mk_list *it, *tmp;

    mk_list_foreach_safe(it, tmp, &c->wq) {
        struct mk_chunk *ch = mk_list_entry(it, struct mk_chunk, _head);
        size_t take;

        if (n == 0 || ch->type == MK_CHUNK_FILE) {
            break;
        }
        take = n < ch->len ? n : ch->len;
        ch->data += take;
        ch->len -= take;
        c->wq_bytes -= take;
        n -= take;
        if (ch->len > 0) {
            break;
        }
        mk_list_del(&ch->_head);
        mk_conn_chunk_destroy(c->worker, ch);
    }
}

/* Without a sendfile in the I/O layer (TLS), files go through memory. */
static ssize_t conn_file_via_memory(struct mk_conn *c, struct mk_chunk *ch)
{
    char buf[16384];
    struct iovec iov;
    size_t want = ch->len < sizeof(buf) ? ch->len : sizeof(buf);
    ssize_t n = pread(ch->fd, buf, want, ch->offset);

    if (n <= 0) {
        return MK_IO_ERROR;
    }
    iov.iov_base = buf;
    iov.iov_len = (size_t) n;
    /* A TLS layer must accept a retry with the same bytes; liana never
     * takes this path. */
    return c->listen->io->writev(c, &iov, 1);
}

static ssize_t conn_write_file(struct mk_conn *c, struct mk_chunk *ch)
{
    const struct mk_net_io *io = c->listen->io;
    ssize_t n;

    if (io->sendfile) {
        off_t off = ch->offset;
        n = io->sendfile(c, ch->fd, &off, ch->len);
    }
    else {
        n = conn_file_via_memory(c, ch);
    }
    if (n > 0) {
        ch->offset += n;
        ch->len -= (size_t) n;
        if (ch->len == 0) {
            mk_list_del(&ch->_head);
            mk_conn_chunk_destroy(c->worker, ch);
            c->wq_files--;
        }
    }
    else if (n == 0) {
        n = MK_IO_ERROR;               /* file shrank under us */
    }
    return n;
}

/* A response head queued before a file goes out with the file's first
 * bytes instead of in a packet of its own (TCP_CORK while both are sent). */
static void conn_cork_if_file_follows(struct mk_conn *c)
{
    struct mk_chunk *first, *second;

    if ((c->flags & MK_CONN_F_CORKED) || !c->listen->io->cork ||
        c->wq.next == &c->wq || c->wq.next->next == &c->wq) {
        return;
    }
    first = mk_list_entry(c->wq.next, struct mk_chunk, _head);
    second = mk_list_entry(c->wq.next->next, struct mk_chunk, _head);
    if (first->type != MK_CHUNK_FILE && second->type == MK_CHUNK_FILE) {
        c->flags |= MK_CONN_F_CORKED;
        c->listen->io->cork(c, 1);
    }
}

/* Writes queued bytes until the queue is empty (1), the socket is full
 * (0) or the connection failed (-1); closes nothing. */
int mk_conn_write_queue(struct mk_conn *c)
{
    const struct mk_net_io *io = c->listen->io;
    struct iovec iov[MK_IOV_MAX];
    struct mk_list *it;
    int cnt;
    ssize_t n;

    conn_cork_if_file_follows(c);
    while (!mk_list_is_empty(&c->wq)) {
        struct mk_chunk *first = mk_list_entry(c->wq.next, struct mk_chunk,
                                               _head);
        if (first->type == MK_CHUNK_FILE) {
            n = conn_write_file(c, first);
        }
        else {
            cnt = 0;
            mk_list_foreach(it, &c->wq) {
                struct mk_chunk *ch = mk_list_entry(it, struct mk_chunk, _head);
                if (ch->type == MK_CHUNK_FILE || cnt == MK_IOV_MAX) {
                    break;
                }
                iov[cnt].iov_base = (void *) ch->data;
                iov[cnt].iov_len = ch->len;
                cnt++;
            }
            n = io->writev(c, iov, cnt);
            if (n > 0) {
                conn_advance(c, (size_t) n);
            }
        }
        if (n == MK_IO_AGAIN) {
            c->flags |= MK_CONN_F_WANT_WRITE;
            mk_conn_set_deadline(c, c->srv->conf.send_timeout);
            return 0;
        }
        if (n < 0) {
            return -1;
        }
    }
    return 1;
}
