#ifndef PLUGINS_HTTP2_H
#define PLUGINS_HTTP2_H

/*
 * http2: HTTP/2 (RFC 9113, HPACK RFC 7541) as a protocol handler on the
 * core's streams. nghttp2 does the framing, HPACK, stream states, flow
 * control windows and the protocol's own checks; this plugin maps its
 * streams onto mk_stream (stages 20-40 run per stream, exactly as for
 * HTTP/1.1), serialises responses as HEADERS and DATA, and adds what the
 * library leaves to the application: the floods it counts itself (rapid
 * reset, CONTINUATION, control frames), bounded header lists and output,
 * request-body flow control as backpressure, GOAWAY on drain.
 *
 *   http2.c      settings, the plugin, h2c upgrade (stage 20)
 *   h2_conn.c    the connection: mk_proto, nghttp2 session and callbacks
 *   h2_stream.c  a stream: the request head, its body, the stream ops
 */
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_list.h"
#include "mk_server/mk_plugin.h"

/* What a connection runs with (a site's [HTTP2] or the global one). */
struct h2_settings {
    uint32_t max_streams;
    uint32_t initial_window;           /* per stream, advertised */
    uint32_t conn_window;              /* the connection's receive window */
    uint32_t max_frame;
    uint32_t max_header_list;          /* decoded bytes, RFC 9113 6.5.2 */
    uint32_t header_table;
    uint64_t idle_timeout;             /* ms */
    uint64_t window_timeout;           /* ms */
    int push;
    uint32_t reset_rate;               /* per second; burst twice that */
    uint32_t control_rate;
    uint32_t max_continuations;
};

struct h2_conf {
    long long max_streams;
    uint64_t initial_window, conn_window, max_frame, max_header_list;
    uint64_t header_table, idle_timeout, window_timeout;
    int push;
    long long reset_rate, control_rate, max_continuations;
    struct h2_settings set;
};

/* A token bucket in thousandths of a token. */
struct h2_bucket {
    uint64_t milli;
    uint64_t at;                       /* ms of the last refill */
};

struct h2_stream;

struct h2_conn {
    struct mk_conn *c;
    nghttp2_session *ng;
    const struct h2_settings *set;
    struct mk_list streams;            /* h2_stream._head: nghttp2 knows them */
    struct mk_list closed;             /* closed by nghttp2, freed after */
    uint32_t open;                     /* streams with a request */
    int shutdown;                      /* GOAWAY sent: no new streams */
    int terminated;                    /* GOAWAY for an error: closing */
    int eof;                           /* the client sent its FIN */
    int32_t max_client_id;             /* highest stream the client began */
    int sending;                       /* in nghttp2_session_send */
    int flush_posted;
    struct h2_bucket resets, control;
    uint32_t continuations;            /* of the header block being read */
    uint64_t data_at;                  /* ms: DATA last went out, or none
                                        * waited */
    struct h2_stream *upgraded;        /* h2c: stream 1, begun on input */
};

/* A piece of a response body waiting for its DATA frames. */
struct h2_piece {
    struct mk_list _head;
    int is_file;
    const char *data;                  /* memory: data[off..len) */
    int owned;                         /* memory to mk_mem_free */
    int fd, close_fd;                  /* file: fd at offset + off */
    off_t offset;
    size_t off, len;
};

/* Text that starts in storage of its own (inside the stream: no malloc
 * for a usual request) and moves to the heap when it outgrows it. */
struct h2_text {
    char *p;
    size_t len, cap;
    char *own;                         /* the inline storage */
    size_t own_cap;
};

struct h2_span {
    uint32_t off, len;
};

#define H2_FIELDS_INLINE 1024          /* "name: value\r\n" of a request */
#define H2_PSEUDO_INLINE 512           /* :method, :path, :authority */
#define H2_HEAD_INLINE   1536          /* the head the core parses */

struct h2_stream {
    struct mk_list _head;
    struct h2_conn *hc;
    struct mk_stream *s;               /* once the head is complete */
    int32_t id;
    /* the request head, as HTTP/1.1 text for the core's parser */
    struct h2_text fields;             /* "name: value\r\n" ... */
    struct h2_text cookie;             /* crumbs joined (RFC 9113 8.2.3) */
    struct h2_text pseudo;             /* the values of: */
    struct h2_span method, path, authority;
    struct h2_text text;               /* the head, built at END_HEADERS */
    char *head;                        /* text.p: the head's spans index it */
    size_t head_len_upgrade;           /* h2c: stream 1's head, ready */
    size_t header_bytes;               /* RFC 9113 6.5.2 accounting */
    int too_large;
    int pseudo_bad;
    /* the request body */
    int body_expected, body_ended, body_end_pending;
    int paused;
    struct mk_buf held;                /* received while paused */
    /* the response */
    struct mk_list out;                /* h2_piece */
    size_t out_len;
    size_t out_mem;                    /* of out_len, bytes held in memory */
    int head_sent, has_body, end_queued, deferred;
    int closed;                        /* nghttp2 closed it */
    int promised;                      /* a push: begins at the posted pass */
    char fields_own[H2_FIELDS_INLINE];
    char pseudo_own[H2_PSEUDO_INLINE];
    char text_own[H2_HEAD_INLINE];
};

extern const struct mk_plugin mk_plugin_http2;
extern const struct mk_proto h2_proto;
extern const struct mk_stream_ops h2_stream_ops;

/* h2_conn.c */
struct h2_conn *h2_conn_create(struct mk_conn *c, const struct h2_settings *set,
                               const uint8_t *upgrade_settings, size_t len,
                               int head_request);
const struct h2_settings *h2_settings_for(struct mk_conn *c);
void h2_conn_post_flush(struct h2_conn *hc);
/* The response bytes the streams hold in memory, with the connection's
 * queue, are past its WriteQueueLimit. */
int  h2_conn_over_limit(const struct h2_conn *hc);

/* h2_stream.c */
struct h2_stream *h2_stream_new(struct h2_conn *hc, int32_t id);
void h2_stream_free(struct h2_stream *hs);
int  h2_stream_header(struct h2_stream *hs, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen);
void h2_stream_begin(struct h2_stream *hs, int end_stream);
/* An HTTP/1.1 request's head (h2c upgrade) as stream 1's; 0 or -1. */
int  h2_stream_from_http1(struct h2_stream *hs, const char *head, size_t len);
void h2_stream_run_upgraded(struct h2_stream *hs);
void h2_stream_data(struct h2_stream *hs, const uint8_t *data, size_t len);
void h2_stream_body_end(struct h2_stream *hs);
void h2_stream_resume_body(struct h2_stream *hs);
ssize_t h2_stream_read(struct h2_stream *hs, size_t length,
                       uint32_t *data_flags);
int  h2_stream_write_data(struct h2_stream *hs, const uint8_t *framehd,
                          size_t length);

#endif
