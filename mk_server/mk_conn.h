#ifndef MK_SERVER_CONN_H
#define MK_SERVER_CONN_H

/*
 * Private to mk_server: workers, connections and the write queue.
 *
 * Memory: an idle keep-alive connection is only its `struct mk_conn`. The
 * read buffer, the stream (with its parsed head) and write-queue blocks
 * come from per-worker free lists when a request arrives and go back when
 * the connection is idle again, so steady-state serving calls no malloc.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>

#include "mk_core/mk_channel.h"
#include "mk_core/mk_list.h"
#include "mk_core/mk_timer.h"
#include "mk_server/mk_server.h"
#include "mk_server/mk_stream.h"

#define MK_CONN_BUF_SIZE     8192     /* first read buffer */
#define MK_CHUNK_BLOCK_SIZE  16384    /* pooled write-queue block (with header) */
#define MK_CHUNK_SMALL       1024     /* inline room of an unpooled small chunk */
#define MK_POOL_MAX          64       /* free-list depth per kind per worker */

/* ---- Write queue ---------------------------------------------------- */

enum mk_chunk_type {
    MK_CHUNK_MEM,          /* bytes: inline (pooled block) or external */
    MK_CHUNK_FILE,
    MK_CHUNK_SHARED,
};

struct mk_shared_buf {
    atomic_int refs;
    size_t len;
    char data[];
};

struct mk_chunk {
    struct mk_list _head;
    enum mk_chunk_type type;
    void *owned;            /* MK_WRITE_FREE memory, freed once sent (data
                             * has moved past it after a partial write) */
    int pooled;             /* block from the worker pool */
    const char *data;       /* MEM/SHARED: start of unsent bytes */
    size_t len;             /* unsent bytes */
    size_t cap;             /* inline capacity (appendable when > 0) */
    int fd;                 /* FILE */
    off_t offset;
    int close_fd;
    struct mk_shared_buf *sb;
    char inline_data[];     /* MEM inline bytes */
};

/* ---- Connection ------------------------------------------------------- */

enum mk_conn_state {
    MK_CONN_OPEN = 0,
    MK_CONN_CLOSING,        /* flush the queue, then close */
    MK_CONN_CLOSED,         /* waiting to be freed after the batch */
};

#define MK_CONN_F_IN_HANDLER  0x01   /* inside our event handler: defer flush */
#define MK_CONN_F_READABLE    0x02   /* socket may hold unread bytes */
#define MK_CONN_F_EOF         0x04   /* peer sent FIN */
#define MK_CONN_F_WANT_WRITE  0x08   /* last write hit EAGAIN */
#define MK_CONN_F_CORKED      0x10
#define MK_CONN_F_LINGERING   0x20   /* SHUT_WR sent, dropping input */
#define MK_CONN_F_POSTED      0x40   /* on the worker's posted list */
#define MK_CONN_F_DEAD        0x80   /* failed: closes at the posted pass */
#define MK_CONN_F_PROCESSING  0x100  /* the HTTP loop is on the stack */
#define MK_CONN_F_WANT_PROCESS 0x200 /* run the protocol's on_posted at the posted pass */
#define MK_CONN_F_IO_WANT_WRITE 0x400 /* the I/O layer reads on when writable */
#define MK_CONN_F_WANT_PROTO_READ 0x800 /* run the protocol's on_read when posted */
#define MK_CONN_F_LINGER      0x1000 /* linger at close even with no input left */
#define MK_CONN_F_RDHUP       0x2000 /* the kernel said the peer sent its FIN */

struct mk_conn {
    struct mk_event ev;                 /* first member */
    struct mk_channel_msg msg;          /* fair-mode hand-off */
    struct mk_worker *worker;
    struct mk_server *srv;
    struct mk_listen *listen;
    void *io_data;
    const struct mk_proto *proto;
    void *proto_data;
    uint64_t id;
    struct mk_conn_addr peer;
    enum mk_conn_state state;
    int flags;

    char *in;                            /* read buffer, NULL when idle */
    uint32_t in_len;
    uint32_t in_size;

    struct mk_list wq;                   /* of struct mk_chunk */
    size_t wq_bytes;
    uint32_t wq_files;                   /* file chunks (each holds an fd) */
    size_t wq_limit;                     /* 0: the server's WriteQueueLimit */

    struct mk_timer timer;
    uint64_t deadline;                   /* lazy: timer may fire earlier */
    uint64_t close_by;                   /* mk_conn_close_after: hard limit */

    struct mk_session *session;          /* an upgraded one's (mk_session.c) */

    struct mk_filter_chain *filters;     /* output filters, or NULL */
    uint32_t streams;                    /* created on this connection */
    void **plugin_data;                  /* lazily allocated */
    char *peer_str;                      /* lazily formatted */
    struct mk_list _head;                /* worker's list */
    struct mk_list _posted;              /* worker's posted list */
};

/* ---- Worker ----------------------------------------------------------- */

enum mk_worker_state {
    MK_WORKER_RUNNING = 0,
    MK_WORKER_DRAINING,
    MK_WORKER_STOPPING,                  /* close everything now */
};

struct mk_worker_listener {
    struct mk_event ev;                  /* first member */
    struct mk_worker *worker;
    struct mk_listen *listen;
};

struct mk_worker {
    int id;
    pthread_t thread;
    struct mk_server *srv;
    struct mk_event_loop *loop;
    struct mk_channel channel;           /* fair-mode connections */
    struct mk_worker_listener *listeners;
    size_t listener_count;
    struct mk_list conns;
    struct mk_list closed;               /* freed after the event batch */
    /* Connections with work posted by plugin API calls (flush, close,
     * body resumption): done after the event batch, so no API call ever
     * frees state under its caller. */
    struct mk_list posted;
    atomic_int conn_count;
    atomic_int state;
    _Atomic uint64_t drain_deadline;     /* 0: none */
    atomic_int exited;
    atomic_int draining_applied;         /* listeners left the loop */
    struct mk_timer drain_timer;

    /* free lists (only this thread touches them) */
    struct mk_list free_streams;
    size_t n_free_streams;
    char *free_bufs[MK_POOL_MAX];
    size_t n_free_bufs;
    struct mk_chunk *free_chunks[MK_POOL_MAX];
    size_t n_free_chunks;
};

/* mk_conn.c */
struct mk_conn *mk_conn_create(struct mk_server *srv, struct mk_listen *l,
                               int fd, const struct sockaddr *sa);
void mk_conn_start(struct mk_worker *w, struct mk_conn *c);
void mk_conn_destroy(struct mk_conn *c);
/* Ensures room for `want` more bytes in the read buffer (up to `max`). */
int  mk_conn_in_reserve(struct mk_conn *c, size_t want, size_t max);
void mk_conn_in_release_if_empty(struct mk_conn *c);
/* Pulls bytes from the socket until EAGAIN or the buffer is full, then
 * hands them to the protocol. */
void mk_conn_read(struct mk_conn *c);
/* Lazy deadline: the one timer fires at the earliest need. */
void mk_conn_set_deadline(struct mk_conn *c, uint64_t ms_from_now);
/* A failure inside a plugin's call into the core: the connection closes
 * at the posted pass, not under the caller's feet; returns -1. */
int  mk_conn_fail(struct mk_conn *c);

/* mk_conn_write.c: the write queue */
void mk_conn_chunk_destroy(struct mk_worker *w, struct mk_chunk *ch);
/* Open and not failed: writes are accepted. */
int  mk_conn_writable(const struct mk_conn *c);
/* What mk_conn_write* do after the output filters: queue a piece. Also
 * while a graceful close waits for bytes a filter still held. */
int  mk_conn_queue(struct mk_conn *c, const void *data, size_t len, int flags);
int  mk_conn_queue_file(struct mk_conn *c, int fd, off_t offset, size_t len,
                        int close_fd);
int  mk_conn_queue_shared(struct mk_conn *c, struct mk_shared_buf *sb);
/* Writes what the socket takes: 1 when the queue is empty, 0 when bytes
 * wait for the next writable event, -1 on a write error. */
int  mk_conn_write_queue(struct mk_conn *c);
/* Core-only variants with immediate effect, for safe points (our own event
 * handlers and the posted pass), never from inside a plugin call. */
void mk_conn_close_internal(struct mk_conn *c, int graceful);
int  mk_conn_flush_now(struct mk_conn *c);
/* Queues c for the posted pass (MK_CONN_F_WANT_PROCESS: run the
 * protocol's on_posted too). */
void mk_conn_post(struct mk_conn *c, int flags);
/* The posted pass; returns non-zero if more work was posted meanwhile. */
int  mk_worker_run_posted(struct mk_worker *w);

/* mk_http.c: the built-in HTTP/1.1 protocol handler */
extern const struct mk_proto mk_http_proto;

/* mk_http_response.c: HTTP/1.1's serialiser of a stream's response */
int  mk_http_response_send_head(struct mk_stream *r);
int  mk_http_response_send_body(struct mk_stream *r, const void *data,
                                size_t len, int flags);
int  mk_http_response_send_file(struct mk_stream *r, int fd, off_t offset,
                                size_t len, int close_fd);
int  mk_http_response_send_shared(struct mk_stream *r,
                                 struct mk_shared_buf *sb);
int  mk_http_response_send_raw(struct mk_stream *r, const void *data,
                               size_t len, int flags);
/* The end of the body on the wire (last chunk and trailers). */
int  mk_http_response_end_bytes(struct mk_stream *r);
int  mk_http_response_will_close(const struct mk_stream *r);

/* mk_worker.c */
char *mk_worker_buf_get(struct mk_worker *w);
void  mk_worker_buf_put(struct mk_worker *w, char *buf);
struct mk_stream *mk_worker_stream_get(struct mk_worker *w);
void  mk_worker_stream_put(struct mk_worker *w, struct mk_stream *r);
struct mk_chunk *mk_worker_chunk_get(struct mk_worker *w);
int   mk_worker_is_draining(const struct mk_worker *w);
void  mk_worker_conn_closed(struct mk_worker *w, struct mk_conn *c);

/* mk_response.c: whether the status and method allow a body */
int  mk_response_has_body(const struct mk_stream *r);
/* What mk_response_write/_sendfile/_write_shared/_end do after the
 * stream's output filters: hand the piece to the protocol. */
int  mk_response_put(struct mk_stream *r, const void *data, size_t len,
                     int flags);
int  mk_response_put_file(struct mk_stream *r, int fd, off_t offset,
                          size_t len, int close_fd);
int  mk_response_put_shared(struct mk_stream *r, struct mk_shared_buf *sb);
int  mk_response_put_end(struct mk_stream *r);

#endif
