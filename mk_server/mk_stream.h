#ifndef MK_SERVER_STREAM_H
#define MK_SERVER_STREAM_H

/*
 * Private to mk_server (protocols use the stream API of mk_plugin.h): a
 * stream is one request/response exchange on a connection (the one
 * HTTP/1.1 request in flight, or one of many streams of a multiplexing
 * protocol). The protocol creates it, hands it a request head, feeds it
 * body bytes and serialises its response through the stream ops it
 * registered; the stream runs stages 20 to 40 and knows no wire format.
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
#include "mk_server/mk_plugin.h"
#include "mk_server/mk_server.h"

struct mk_location;
struct mk_plugin_inst;


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

struct mk_stream {
    struct mk_conn *conn;
    const struct mk_stream_ops *ops;
    void *proto_data;                  /* the protocol's per-stream state */
    uint32_t id;                       /* per connection, 1 for the first */
    struct mk_vhost *vhost;
    const struct mk_location *location;
    struct mk_plugin_inst *handler;    /* NULL: static */
    struct mk_plugin_inst *routed;     /* the rules' choice, before a claim */
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
    uint64_t body_in;       /* body bytes handed to the handler */
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
    struct mk_stream_hooks hooks;   /* filters, accounting (mk_server.h) */
    struct mk_list _head;   /* worker free list */
};

/* Stage 40, once (mk_stream_destroy runs it too; HTTP/1.1 runs it before
 * it drops the request's head from its buffer). */
void mk_stream_done(struct mk_stream *s);

/* The span base of the stream's head. */
static inline const char *mk_stream_head_buf(const struct mk_stream *s)
{
    return *s->head_base;
}

#endif
