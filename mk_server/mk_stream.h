#ifndef MK_SERVER_STREAM_H
#define MK_SERVER_STREAM_H

/*
 * Private to mk_server: a stream is one request/response exchange on a
 * connection (the one HTTP/1.1 request in flight, or one of many streams
 * of a multiplexing protocol). The protocol creates it, hands it a request
 * head, feeds it body bytes and serialises its response through the
 * stream ops it registered; the stream runs stages 20 to 40 and knows no
 * wire format.
 *
 * Memory: streams come from the worker's free list (no malloc per
 * request); the head is filled in place and its spans point into a buffer
 * the protocol keeps alive for the stream's life.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mk_core/mk_list.h"
#include "mk_core/mk_timer.h"
#include "mk_server/mk_http_parser.h"

struct mk_conn;
struct mk_stream;
struct mk_vhost;
struct mk_location;
struct mk_plugin_inst;
struct mk_upgrade;
struct mk_proto;

/* Room for the handler's header fields, counted as their HTTP/1.1 text
 * ("Name: value\r\n") so the limit is the same on every protocol. */
#define MK_RESPONSE_FIELDS_ROOM 1024
#define MK_RESPONSE_FIELDS_MAX  128

struct mk_response_field {
    uint16_t off;            /* name at fields_buf + off, value right after */
    uint16_t name_len;
    uint16_t value_len;
    uint16_t trailer;        /* added as a trailer (sent after the body) */
};

struct mk_response {
    int status;
    int64_t content_length;  /* -1 unknown */
    int head_sent;
    int raw;                 /* the handler writes an HTTP/1.x head itself */
    int chunked;             /* HTTP/1.1: we frame the body */
    int close;               /* close the connection after this response */
    int ended;
    uint64_t bytes;          /* body bytes written by the handler */
    uint32_t field_count;
    uint32_t fields_used;    /* MK_RESPONSE_FIELDS_ROOM accounting */
    uint32_t buf_used;
    struct mk_response_field fields[MK_RESPONSE_FIELDS_MAX];
    char fields_buf[MK_RESPONSE_FIELDS_ROOM];
};

/*
 * What a protocol registers to carry its streams. Every send returns 0 or
 * -1 (the connection failed and closes). The stream calls these from one
 * place each (mk_response.c), after its own checks: send_head once, body
 * pieces only after the head and only when the response has a body.
 */
struct mk_stream_ops {
    /* Status and fields (resp.status, resp.fields, content_length). */
    int  (*send_head)(struct mk_stream *s);
    /* A body piece; MK_WRITE_* flags as mk_conn_write (ownership moves
     * with MK_WRITE_FREE even on failure). */
    int  (*send_body)(struct mk_stream *s, const void *data, size_t len,
                      int flags);
    int  (*send_file)(struct mk_stream *s, int fd, off_t offset, size_t len,
                      int close_fd);
    /* The body is complete: trailers (fields with `trailer`) and the end
     * of the response on the wire; the protocol then moves on (the next
     * request) outside the caller's stack. */
    int  (*end)(struct mk_stream *s);
    /* Optional: bytes of a response head the handler wrote itself
     * (mk_response_raw). NULL: the protocol cannot carry one. */
    int  (*send_raw)(struct mk_stream *s, const void *data, size_t len,
                     int flags);
    /* Whether the connection closes after this response (HTTP/1.x
     * keep-alive rules); NULL: never (a multiplexing protocol). */
    int  (*will_close)(const struct mk_stream *s);
    /* Optional: the content handler takes the request body (HTTP/1.1
     * answers an Expect: 100-continue here). */
    void (*body_wanted)(struct mk_stream *s);
    /* Optional: the handler paused or resumed the body (flow control). */
    void (*body_pause)(struct mk_stream *s);
    void (*body_resume)(struct mk_stream *s);
    /* Optional: the stream's own timer fired (mk_stream_set_deadline). */
    void (*on_timeout)(struct mk_stream *s);
};

struct mk_stream {
    struct mk_conn *conn;
    const struct mk_stream_ops *ops;
    void *proto_data;                  /* the protocol's per-stream state */
    uint32_t id;                       /* per connection, 1 for the first */
    struct mk_vhost *vhost;
    const struct mk_location *location;
    struct mk_plugin_inst *handler;    /* NULL: static */
    struct mk_http_request_head head;
    char *const *head_base;            /* the buffer the head's spans index */
    struct mk_http_body body;          /* request body framing and count */
    struct mk_response resp;
    char clean_path[4096];
    int clean_ok;
    uint64_t start_ms;
    int head_done;
    int failed;             /* answered with an error; closing */
    int body_too_large;     /* over MaxRequestBody: 413 */
    int body_paused;
    int discard_body;       /* nobody wants the body: read and drop */
    int in_content;         /* stage 30 ran */
    int done_run;           /* stage 40 ran */
    struct mk_timer timer;  /* mk_stream_set_deadline */
    /* HTTP/1.1's state for its one stream, kept here so that HTTP/1.1
     * allocates nothing per request; other protocols use proto_data. */
    struct mk_http_parser parser;
    int discarding;         /* dropping the body has begun */
    uint64_t discarded;     /* bytes dropped, framing included */
    /* an upgrade claimed at stage 20, and once accepted the protocol that
     * takes the connection when the request is done */
    const struct mk_upgrade *upgrade;
    void *upgrade_data;
    int upgrade_wants_choice;
    const struct mk_proto *upgrade_proto;
    void *upgrade_proto_data;
    void **plugin_data;     /* lazily allocated, plugin_count slots */
    struct mk_list _head;   /* worker free list */
};

/* A new stream on c (from the worker's free list), its id the next of the
 * connection's; NULL on no memory. Its head is empty: the protocol fills
 * s->head with spans into *head_base (HTTP/1.1: &c->in, which may move
 * while the head is parsed) and then calls mk_stream_begin. */
struct mk_stream *mk_stream_create(struct mk_conn *c,
                                   const struct mk_stream_ops *ops,
                                   void *proto_data, char *const *head_base);
/* Runs stage 40 if it has not run (for a stream whose head was given) and
 * returns the stream to the pool; a pending response is dropped. */
void mk_stream_destroy(struct mk_stream *s);

/* The head is complete: vhost, clean path, location and handler, the body
 * limit, then stages 20 and 30 (which may answer and end the stream).
 * Returns 0, or before any stage an HTTP status the protocol answers its
 * own way (400 bad path, 405 CONNECT, 421 a site not served here). */
int  mk_stream_begin(struct mk_stream *s);
/* Request body bytes for the content handler (decoded); 0 or -1 (over
 * MaxRequestBody: body_too_large, or the handler failed). */
int  mk_stream_body(struct mk_stream *s, const char *data, size_t len);
/* The end of the request body (also for a request without one). */
int  mk_stream_body_end(struct mk_stream *s);
/* Stage 40, once. */
void mk_stream_done(struct mk_stream *s);
/* The stream's own timer on the worker's loop (0 disarms); ops->on_timeout
 * runs when it fires. */
void mk_stream_set_deadline(struct mk_stream *s, uint64_t ms_from_now);

/* The span base of the stream's head. */
static inline const char *mk_stream_head_buf(const struct mk_stream *s)
{
    return *s->head_base;
}

#endif
