#ifndef TREMOLO_SOCKETIO_H
#define TREMOLO_SOCKETIO_H

/*
 * socketio: Engine.IO v4 / Socket.IO v5 at the edge, bridged to nodes as
 * spec 7.8 says. Three kinds of session (mk_server's), all owned by this
 * plugin:
 *
 *   the Engine.IO session (eio_session.c)  the one nodes see: its sid is
 *       the client's for its whole life; it lives on the worker that took
 *       the handshake, holds the packet queue, heartbeats, namespaces
 *       (sio_session.c) and its backend (the site's handler, the zmq
 *       gateway, through mk_session_open_backend);
 *   a poll (eio_poll.c)                   one long-polling GET or POST,
 *       on whichever worker the kernel gave its connection: it reaches
 *       the Engine.IO session through mk_session_post by sid, and the
 *       answer comes back to the poll's own session the same way, so no
 *       balancer needs to be sticky;
 *   a websocket transport (eio_ws.c)      an upgraded connection, framed
 *       by the websocket plugin (whose `websocket` message types this
 *       plugin delivers to it); it too may live on another worker.
 *
 * Between them travel internal messages, "eio:..." types no plugin
 * registers (so they reach the owner, never a node): the body starts with
 * the sender's 16-byte sid where the receiver must answer.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_event.h"
#include "mk_core/mk_timer.h"
#include "mk_server/mk_plugin.h"
#include "plugins/socketio/eio_packet.h"
#include "plugins/socketio/sio_packet.h"

#define SIO_SID_LEN       MK_SESSION_SID_LEN
#define SIO_SID_TEXT_LEN  22                /* base64url of 16 bytes */

/* Engine.IO error codes (the JSON body of a 400). */
enum eio_error {
    EIO_ERR_TRANSPORT_UNKNOWN = 0,
    EIO_ERR_SESSION_UNKNOWN = 1,
    EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
    EIO_ERR_BAD_REQUEST = 3,
    EIO_ERR_FORBIDDEN = 4,
    EIO_ERR_UNSUPPORTED_VERSION = 5,
};

/* Why a session closed: logged and counted. */
enum sio_close_reason {
    SIO_CLOSE_CLIENT = 0,          /* the client's close packet */
    SIO_CLOSE_TRANSPORT,           /* its connection closed */
    SIO_CLOSE_PING_TIMEOUT,
    SIO_CLOSE_CONNECT_TIMEOUT,     /* no namespace joined in time */
    SIO_CLOSE_PARSE_ERROR,         /* a malformed packet */
    SIO_CLOSE_OVERLAP,             /* a second concurrent poll */
    SIO_CLOSE_QUEUE_FULL,          /* MaxBufferedPackets */
    SIO_CLOSE_NODE_END,            /* the node's `end` / socket.io/end */
    SIO_CLOSE_NODE_GONE,           /* no node, or the node failed */
    SIO_CLOSE_SHUTDOWN,
    SIO_CLOSE_REASONS
};

/* A site's settings, resolved from its [SOCKETIO] and the global one. */
struct sio_settings {
    const char *path;              /* "/socket.io/" */
    size_t path_len;
    uint64_t ping_interval;        /* ms */
    uint64_t ping_timeout;         /* ms */
    uint64_t max_payload;          /* bytes */
    uint64_t connect_timeout;      /* ms */
    int node_connect;              /* 0 auto, 1 the node accepts */
    int polling, websocket;        /* transports served */
    int allow_upgrades;
    const struct mk_conf_list *namespaces;   /* none: "/" only */
    int any_namespace;             /* "*" listed */
    const struct mk_conf_list *cors_origins; /* none: no CORS headers */
    int cors_any;                  /* "*" listed */
    int cors_credentials;
    long long max_buffered;        /* packets queued between polls */
};

struct sio_conf {
    /* parsed keys (global [SOCKETIO], or a site's) */
    char *path;
    uint64_t ping_interval, ping_timeout, max_payload, connect_timeout;
    int node_connect;
    char *transports;
    int allow_upgrades;
    struct mk_conf_list namespaces;
    struct mk_conf_list cors_origins;
    int cors_credentials;
    long long max_buffered;
    /* resolved */
    struct sio_settings set;
    struct sio_conf *global;       /* a site's: the global section */
    /* counters, in the global section (process-wide) */
    atomic_ullong closed[SIO_CLOSE_REASONS];
    atomic_ullong opened;
    atomic_int workers;            /* running: the last one to exit logs */
};

/* Per worker (thread-local in each file through sio_worker()). */
struct sio_worker {
    struct mk_event_loop *loop;
    struct mk_timer_heap *timers;
    struct mk_list sessions;       /* its Engine.IO sessions */
    /* scratch, reused by every message (released at worker exit) */
    struct mk_buf from;            /* sio_send_from */
    struct mk_buf frame;           /* a packet as one websocket frame */
    struct mk_buf reply;           /* an answer to a poll */
    struct mk_buf text;            /* small JSON texts */
};
struct sio_worker *sio_worker(void);
uint64_t sio_now(void);

/* socketio.c */
extern const struct mk_plugin mk_plugin_socketio;
extern const char *const sio_close_reason_name[SIO_CLOSE_REASONS];
/* 16-byte sid <-> the 22-character text Engine.IO clients carry. */
void sio_sid_text(const uint8_t *sid, char out[SIO_SID_TEXT_LEN + 1]);
int  sio_sid_parse(const char *text, size_t len, uint8_t *sid);
/* Sends an internal message to the session `to`: delivered at once when
 * it lives on this worker, else posted to its worker. -1: no such
 * session (anywhere). */
int  sio_send(const uint8_t *to, const char *type, const void *body,
              size_t len, uint64_t share);
/* The same with the sender's sid and site name before the body (what an
 * Engine.IO session needs to answer and to check the site). */
int  sio_send_from(const uint8_t *to, const char *type, const uint8_t *from,
                   const char *site, const void *body, size_t len);
/* An Engine.IO error answer (400 with its JSON; CORS headers). */
int  sio_http_error(struct mk_stream *r, const struct sio_settings *set,
                    enum eio_error code);
/* 200 with CORS headers and a text body (copied). */
int  sio_http_answer(struct mk_stream *r, const struct sio_settings *set,
                     const char *ctype, const void *body, size_t len);

/* eio_session.c: the Engine.IO session, on its owning worker */
struct eio_session;
/* A handshake on this worker: a new session whose node gets the request
 * as its `uwsgi`. The client's answer waits until a node has it: the
 * OPEN packet then answers a polling handshake (r), or goes as the first
 * frame of the websocket transport `websocket_sid` (websocket-only
 * clients: "eio:accept" first); no node answers 503 (that transport:
 * "eio:refuse" 0xff). NULL with an HTTP status in *status when it cannot
 * even be asked. */
struct eio_session *eio_session_create(struct sio_conf *conf,
                                       const struct sio_settings *set,
                                       struct mk_stream *r,
                                       const uint8_t *websocket_sid,
                                       int *status);
/* Stage 40 of a polling handshake (it may end before its answer). */
void eio_session_handshake_done(struct mk_stream *r);
#define EIO_REFUSE_NO_NODE 0xff          /* "eio:refuse" body: answer 503 */
const uint8_t *eio_session_sid(const struct eio_session *e);
/* Packets for the client (from the socket.io layer), in order. */
int  eio_session_send(struct eio_session *e, const struct sio_out *o,
                      uint64_t share);
void eio_session_close(struct eio_session *e, enum sio_close_reason why);
const struct sio_settings *eio_session_settings(const struct eio_session *e);
struct mk_session *eio_session_ms(const struct eio_session *e);
struct sio_state *eio_session_state(const struct eio_session *e);
/* The session this mk_session is, when it is an Engine.IO one. */
struct eio_session *eio_session_of(struct mk_session *s);
/* Worker exit: every session still open closes, and is freed. */
void eio_session_worker_exit(void);

/* sio_session.c: the Socket.IO layer of an Engine.IO session */
struct sio_state;
struct sio_state *sio_state_create(struct eio_session *e);
void sio_state_destroy(struct sio_state *st);
/* A client message packet (Engine.IO type 4): text, or a binary
 * attachment. -1: malformed, the session closes. */
int  sio_on_client_message(struct sio_state *st, const char *data,
                           size_t len, int binary);
/* The node's `end` (the session closes after this). */
void sio_on_node_end(struct sio_state *st);
/* Node messages (mk_msg_type handlers). */
void sio_on_node_message(void *conf, struct mk_session *s, const char *type,
                         const void *body, size_t len, uint64_t share);
/* Whether a namespace is joined (no namespace joined: ConnectTimeout). */
int  sio_state_joined(const struct sio_state *st);
/* Worker exit: the layer's scratch encoders. */
void sio_session_worker_exit(void);

/* eio_poll.c: a long-polling request, on its connection's worker */
int  eio_poll_request(struct sio_conf *conf, const struct sio_settings *set,
                      struct mk_stream *r, const uint8_t *sid);
int  eio_poll_body(struct mk_stream *r, const char *data, size_t len);
void eio_poll_done(struct mk_stream *r);

/* eio_ws.c: a websocket transport, on its connection's worker */
int  eio_ws_request(struct sio_conf *conf, const struct sio_settings *set,
                    struct mk_stream *r, const uint8_t *sid);
void eio_ws_done(struct mk_stream *r);
void eio_ws_close(struct mk_conn *c);

#endif
