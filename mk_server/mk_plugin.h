#ifndef MK_SERVER_PLUGIN_H
#define MK_SERVER_PLUGIN_H

/*
 * The plugin API: the one header a plugin includes (with the mk_core headers
 * it uses). A plugin exports exactly one symbol, `mk_plugin_<name>`, a
 * `const struct mk_plugin`; the loader checks `abi` against MK_PLUGIN_ABI.
 *
 * Stages (see docs/plugin-api.md):
 *   10 connect  on_accept   after accept, before any byte is read
 *   20 request  on_request  request head parsed; may answer (HANDLED)
 *   30 content  on_content  the one handler chosen by vhost/location rules
 *   40 response on_done     response finished or failed
 *   50 close    on_close    connection closed
 * Below the stages sit network I/O layers (struct mk_net_io: liana, tls),
 * protocol handlers (struct mk_proto: HTTP/1.1 built in; WebSocket,
 * HTTP/2 as plugins switch a connection to their own; registered by name
 * and ALPN id, struct mk_proto_decl) and output filters on a stream's or
 * a connection's body (struct mk_filter).
 *
 * Threads: init/exit/conf callbacks run in the master; everything else runs
 * in the worker thread that owns the connection. A worker never shares a
 * connection, so stage callbacks take no locks. Work from another thread
 * reaches a connection through an mk_channel on the worker's loop.
 *
 * Configuration generations: a reload (SIGHUP) builds a new `struct
 * mk_server` with new plugin configs and new workers; old workers finish
 * their connections with the old generation. So a plugin keeps no global
 * config: it receives its parsed config (`conf`) in every callback.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "mk_core/mk_event.h"
#include "mk_core/mk_list.h"
#include "mk_core/mk_rconf.h"
#include "mk_core/mk_string.h"
#include "mk_server/mk_http_parser.h"

#define MK_PLUGIN_ABI 4   /* 4: protocol prefaces, on_shutdown, stream protocol
                           * names, preload hints (issue 14) */

/* Plugins build with -fvisibility=hidden and export only their descriptor:
 *     MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_acl = { ... };
 * Only a shared object exports it. A built-in descriptor stays hidden: the
 * binary exports its symbols to shared plugins (-rdynamic), and a visible
 * built-in mk_plugin_x would interpose on the same plugin loaded as .so. */
#ifdef TREMOLO_PLUGIN_BUILTIN
#define MK_PLUGIN_EXPORT __attribute__((visibility("hidden")))
#else
#define MK_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

struct mk_server;
struct mk_worker;
struct mk_vhost;
struct mk_conn;
struct mk_stream;
struct mk_bb_ini;
struct mk_shared_buf;
struct mk_plugin;

enum mk_stage_result {
    MK_STAGE_NEXT    = 0,   /* not mine / continue with the next plugin */
    MK_STAGE_HANDLED = 1,   /* I answered (20) / I own the response (30) */
    MK_STAGE_CLOSE   = -1,  /* close the connection (at the end of the
                             * current event, not inside the caller) */
};

/* ---- Network I/O layer --------------------------------------------------- */

#define MK_IO_AGAIN  (-2)   /* would block; wait for the next event */
#define MK_IO_ERROR  (-1)   /* fatal for the connection */

struct mk_net_io {
    const char *name;
    /* Per-connection set-up after accept (e.g. a TLS session); 0 or -1. */
    int     (*on_accept)(struct mk_conn *c);
    /* > 0 bytes read, 0 orderly EOF, MK_IO_AGAIN, MK_IO_ERROR. */
    ssize_t (*read)(struct mk_conn *c, void *buf, size_t len);
    /* > 0 bytes written, MK_IO_AGAIN, MK_IO_ERROR. */
    ssize_t (*writev)(struct mk_conn *c, const struct iovec *iov, int iovcnt);
    /* Optional (NULL: the core pread()s files into memory chunks). */
    ssize_t (*sendfile)(struct mk_conn *c, int fd, off_t *offset, size_t len);
    /* Release per-connection state; the core closes the fd. */
    void    (*on_close)(struct mk_conn *c);
    /* Optional: TCP_CORK-like hint around a burst of writes. */
    void    (*cork)(struct mk_conn *c, int on);
    /* Non-zero if the layer may hold bytes already taken from the socket
     * (TLS records): the core then reads until MK_IO_AGAIN instead of
     * trusting a short read to mean the socket is drained. */
    int     buffered;
    /* Non-zero if the bytes are encrypted (HTTPS=on for backends). */
    int     secure;
};

/* ---- Protocol handler --------------------------------------------------- */

/* Return MK_PROTO_OK to keep the connection, MK_PROTO_CLOSE to close it. */
#define MK_PROTO_OK     0
#define MK_PROTO_CLOSE  (-1)

struct mk_proto {
    const char *name;
    /* Optional: the connection is ready for this protocol's first bytes:
     * at accept, and again once the I/O layer finished a handshake of its
     * own (a TLS handshake); arms the protocol's first deadline. */
    void (*on_start)(struct mk_conn *c);
    /* Optional: work the protocol posted for the worker's posted pass
     * (mk_conn_post_work), run after the current event batch. */
    void (*on_posted)(struct mk_conn *c);
    /* New bytes are in the connection's input buffer (mk_conn_input), or
     * the backend has room again (mk_session_backend_ready). */
    int  (*on_read)(struct mk_conn *c);
    /* The write queue became empty (flow control resumes here). */
    int  (*on_drain)(struct mk_conn *c);
    /* The connection's timer fired. */
    int  (*on_timeout)(struct mk_conn *c);
    /* The connection is closing; free the protocol state. */
    void (*on_close)(struct mk_conn *c);
    /* Optional: nothing is in flight (no stream open), so a draining
     * worker may close the connection once its queue and input are empty.
     * NULL: always idle then. */
    int  (*is_idle)(const struct mk_conn *c);
    /* Optional: the backend ended the session, by its own choice (a
     * node's `end`) or failing (the node is gone); the protocol says
     * goodbye its own way (a WebSocket close frame). NULL: the connection
     * closes after its queue is written. */
    int  (*on_end)(struct mk_conn *c, int failed);
    /* Optional: the worker began a graceful stop or reload. The protocol
     * takes no new work, tells its client (HTTP/2: GOAWAY), and closes
     * once what is in flight is done. NULL: an idle connection is closed
     * at once, a busy one when its exchange ends. */
    void (*on_shutdown)(struct mk_conn *c);
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
    /* Optional: a shared buffer piece (the protocol takes its own
     * reference); NULL: its bytes go through send_body, copied. */
    int  (*send_shared)(struct mk_stream *s, struct mk_shared_buf *sb);
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
    /* Non-zero: the protocol multiplexes, many streams are in flight on
     * the connection at once (HTTP/2, lineproto), so a backend gives each
     * stream a session of its own (mk_stream_shares_conn). Zero (HTTP/1.x):
     * the connection's requests follow one another and share one session
     * across keep-alive requests (BlastBeat: one sid per connection). */
    int shares_conn;
    /* The protocol as backends name it (SERVER_PROTOCOL: "HTTP/2"); NULL:
     * HTTP/1.x, from the request line. */
    const char *version;
    /* Optional: an interim response (103 Early Hints) with the given
     * fields (name, value pairs ended by NULL), before the head. */
    int  (*send_interim)(struct mk_stream *s, int status,
                         const char *const *fields);
    /* Optional: promise the client a GET of `path` on this site and
     * answer it as a request of its own (HTTP/2 server push, where the
     * site and the client allow it). 0 pushed, 1 not pushed, -1 failed. */
    int  (*push)(struct mk_stream *s, const char *path, size_t len);
    /* Optional: the response cannot be completed (its backend failed
     * after the head went out): HTTP/2 resets the stream alone. NULL: the
     * connection closes, the only way HTTP/1.x has to say it. */
    void (*abort)(struct mk_stream *s);
};

/*
 * Streams: a protocol handler turns its bytes into streams, one
 * request/response exchange each (HTTP/1.1 one at a time, a multiplexing
 * protocol many at once), and the core runs stages 20 to 40 on each:
 *
 *     s = mk_stream_create(c, &my_ops, my_state, &my_state->buf);
 *     fill *mk_stream_head(s) (spans into my_state->buf), e.g. with
 *         mk_http_parse_head on text the protocol keeps;
 *     mk_stream_begin(s);                  stage 20, then the handler
 *     mk_stream_body(s, data, n) ... mk_stream_body_end(s);
 *     ... ops->end runs when the handler ends its response ...
 *     mk_stream_destroy(s);                from the protocol's own callback
 *
 * The protocol calls these from its own callbacks (on_read, on_drain, ...),
 * never from inside a stream op, so no call frees a stream under a plugin.
 */
/* A new stream (its id the connection's next, 1 for the first), or NULL
 * on no memory. The head's spans index the buffer *head_base points to;
 * it must stay valid (and the head bytes unmoved) for the stream's life.
 * proto_data is the protocol's (mk_stream_proto_data). */
struct mk_stream *mk_stream_create(struct mk_conn *c,
                                   const struct mk_stream_ops *ops,
                                   void *proto_data, char *const *head_base);
/* The head to fill before mk_stream_begin (all fields absent). */
struct mk_http_request_head *mk_stream_head(struct mk_stream *s);
void    *mk_stream_proto_data(const struct mk_stream *s);
uint32_t mk_stream_id(const struct mk_stream *s);
/* Its ops' shares_conn: whether the stream's session is its own (a
 * multiplexing protocol) or its connection's (HTTP/1.x). */
int      mk_stream_shares_conn(const struct mk_stream *s);
/* The head is complete: vhost, clean path, location and handler, the body
 * limit, then stages 20 and 30 (which may answer and end the stream).
 * Returns 0, or before any stage an HTTP status the protocol answers its
 * own way (400 bad path, 405 CONNECT, 421 a site not served here). */
int  mk_stream_begin(struct mk_stream *s);
/* Request body bytes (decoded) for the content handler, dropped when no
 * handler reads the body; 0, or -1: over MaxRequestBody or the handler
 * failed (the protocol fails the stream). */
int  mk_stream_body(struct mk_stream *s, const char *data, size_t len);
/* The end of a body the head announced; 0 or -1 as mk_stream_body. */
int  mk_stream_body_end(struct mk_stream *s);
/* Stage 40 (once) if the head was given, then the stream is gone; a
 * response still pending is dropped (stage 40 sees it not ended). */
void mk_stream_destroy(struct mk_stream *s);
/* The stream's own timer on the worker's loop (0 disarms); the ops'
 * on_timeout runs when it fires. */
void mk_stream_set_deadline(struct mk_stream *s, uint64_t ms_from_now);

/* Stage 20: the request's content goes to plugin p (its on_content,
 * on_body), whatever handler the site's rules chose (socket.io claims its
 * Path). 0, or -1: p has no content handler, is not loaded, or stage 30
 * has begun. */
int  mk_request_claim(struct mk_stream *r, const struct mk_plugin *p);

/* ---- Upgrades (WebSocket) -------------------------------------------------
 *
 * A stage-20 plugin claims an upgrade request (mk_request_upgrade) and
 * returns NEXT; the request then reaches its content handler as usual. A
 * handler that knows upgrades (the zmq gateway) opens its session with the
 * backend and, instead of answering, accepts the upgrade: at once, or when
 * the backend has chosen among what the client offered (a subprotocol), or
 * it refuses with an ordinary response. A handler that knows nothing of
 * upgrades just answers, and the connection stays HTTP.
 */
struct mk_upgrade {
    const char *name;                     /* "websocket" */
    /* Accepted: write the 101 (with `choice`, the backend's pick, or NULL)
     * and return the protocol handler that takes the connection over, its
     * state in *proto_data; NULL refuses (the connection closes). `data`
     * is the claim's, owned by the callee from here on. */
    const struct mk_proto *(*accept)(void *data, struct mk_stream *r,
                                     const char *choice, size_t len,
                                     void **proto_data);
    /* The request ended without the upgrade: free `data`. */
    void (*release)(void *data);
};

/* Stage 20: claims the request for an upgrade. wants_choice: the backend
 * must choose before the 101 (the client offered subprotocols). */
int  mk_request_upgrade(struct mk_stream *r, const struct mk_upgrade *u,
                        void *data, int wants_choice);
/* Content handlers: whether the request was claimed, and whether the
 * claim waits for the backend's choice. */
int  mk_request_is_upgrade(const struct mk_stream *r);
int  mk_request_upgrade_wants_choice(const struct mk_stream *r);
/* Content handlers: accepts the claimed upgrade; the request ends (stage
 * 40 sees status 101) and the claiming plugin's protocol handler gets the
 * connection, with any bytes the client sent after the request. 0 or -1
 * (no claim, a response already started, or the claimant refused). */
int  mk_request_upgrade_accept(struct mk_stream *r, const char *choice,
                               size_t len);

/* ---- Sessions: what a backend talks to --------------------------------------
 *
 * A session (mk_server) is a sid, the worker that owns it, its vhost, its
 * owner and its backend binding. It is created on a worker for a stream,
 * for an upgraded connection (WebSocket) or standing alone (a client that
 * spans many requests), and lives on that worker until its owner destroys
 * it. A backend transport (the zmq gateway) carries typed messages between
 * a session and an application node: the plugin serving the session's
 * client (the websocket plugin) sends through mk_session_backend_send
 * without knowing the transport, and a node's message reaches the plugin
 * that registered its type, on the owning worker.
 *
 * Message types: HTTP responses (`headers`, `body`, `chunk`, `end`) are
 * the transport's own; every other type (`websocket`, `socket.io/event`,
 * `cache`, ...) belongs to the plugin that lists it in its descriptor's
 * `msg_types`, else to the session's owner. Two loaded plugins listing the
 * same type is a configuration error.
 */
#define MK_SESSION_SID_LEN 16

struct mk_session;

struct mk_session_owner {
    /* Owning worker: a message of a type no loaded plugin registered (a
     * standalone session's owner takes its node's messages here). `body`
     * is borrowed for the call; `share` as in mk_msg_type. May be NULL. */
    void (*on_message)(void *data, struct mk_session *s, const char *type,
                       size_t tlen, const void *body, size_t len,
                       uint64_t share);
    /* Optional, owning worker: the backend has room again, and the backend
     * ended the session (by choice, or failing). Without them the core
     * acts on the session's connection (its protocol's on_read, on_end).
     * After on_end the backend stays bound, takes nothing more, and is
     * released when the owner destroys the session. */
    void (*on_ready)(void *data, struct mk_session *s);
    void (*on_end)(void *data, struct mk_session *s, int failed);
};

struct mk_backend {
    const char *name;
    /* One message of any registered type for the session's application.
     * 0: taken; 1: taken, but the backend is full: send nothing more until
     * mk_session_backend_ready; -1: failed (close). */
    int (*send)(void *data, struct mk_session *s, const char *type,
                const void *body, size_t len);
    /* Optional: the session is destroyed while bound (its owner ended
     * it): tell the application (zmq: `end`) and free the binding. */
    void (*release)(void *data, struct mk_session *s);
    /* Non-zero: binary WebSocket messages reach it as `websocket/binary`
     * whatever the site's BinaryMessages says (socket.io tells text
     * packets from attachments by the frame's type). */
    int binary_typed;
};

struct mk_msg_type {
    const char *name;                     /* wire name, e.g. "websocket" */
    /* Owning worker. `type` is `name`; `body` is borrowed for the call.
     * `share` is non-zero for a message fanned out to many sessions (a
     * group broadcast): deliveries with the same `share` carry the same
     * bytes, so a plugin may encode them once (ids are never reused). */
    void (*on_message)(void *conf, struct mk_session *s, const char *type,
                       const void *body, size_t len, uint64_t share);
};

/* Worker thread: a new session owned by this worker, its sid 16 bytes
 * from the kernel CSPRNG (a sid is a capability). `owner` (may be NULL)
 * and `owner_data` are borrowed. NULL when out of memory or entropy. */
struct mk_session *mk_session_create(struct mk_server *srv,
                                     struct mk_vhost *vh,
                                     const struct mk_session_owner *owner,
                                     void *owner_data);
/* Owning worker: releases its backend (mk_backend.release), unbinds it
 * from its connection and frees it; messages still on their way to it
 * are dropped (and counted). NULL is a no-op. */
void mk_session_destroy(struct mk_session *s);
/* Owning worker: gives a standalone session (a socket.io client's) a
 * backend, from the request that opens it: the content handler the
 * site's rules chose for r (before any mk_request_claim) opens it, the
 * request as the application's first message, with `vars` (name, value
 * pairs ended by NULL; may be NULL) added to what it sees. 0, or an HTTP
 * status to answer with (503: no backend, limit; 431: too big). */
int mk_session_open_backend(struct mk_session *s, struct mk_stream *r,
                            const char *const *vars);
/* The session with `sid` if it lives on the calling worker, else NULL
 * (a sender may then deliver at once instead of posting). */
struct mk_session *mk_session_find_local(const uint8_t *sid);
/* The sid (MK_SESSION_SID_LEN bytes, borrowed), vhost, owning worker id
 * and owner data. */
const uint8_t *mk_session_sid(const struct mk_session *s);
struct mk_vhost *mk_session_vhost(const struct mk_session *s);
int   mk_session_worker_id(const struct mk_session *s);
void *mk_session_owner_data(const struct mk_session *s);
/* Whether `owner` owns the session (a plugin's message handler tells its
 * own sessions from the gateway's); 0 for NULL. */
int   mk_session_owned_by(const struct mk_session *s,
                          const struct mk_session_owner *owner);
/* Owning worker: binds (NULL unbinds) the connection that carries the
 * session's client, on the same worker; a protocol handler (an upgraded
 * connection's) finds the session through mk_conn_session. The binding
 * ends when the connection closes, after stage 50: a session that
 * outlives its connection (a socket.io client between polls) has none. */
void mk_session_set_conn(struct mk_session *s, struct mk_conn *c);
struct mk_conn *mk_session_conn(const struct mk_session *s);
struct mk_session *mk_conn_session(const struct mk_conn *c);

/* Backends (the content handler that serves the session) register (NULL
 * clears) themselves; no lock, the owning worker's hot path. */
void mk_session_set_backend(struct mk_session *s, const struct mk_backend *b,
                            void *data);
/* As mk_backend.send; -1 when s is NULL or has no backend. After a 1,
 * mk_session_backend_held is true until the backend is ready. */
int  mk_session_backend_send(struct mk_session *s, const char *type,
                             const void *body, size_t len);
int  mk_session_backend_held(const struct mk_session *s);
/* Its backend's binary_typed (0 without a backend). */
int  mk_session_backend_binary_typed(const struct mk_session *s);
/* Backends: room again (the connection's protocol on_read runs after this
 * batch), and the session ended from the backend's side, by choice or
 * failing (the protocol's on_end, else a graceful close). */
void mk_session_backend_ready(struct mk_session *s);
void mk_session_backend_end(struct mk_session *s, int failed);

/* For transports. Whether a loaded plugin handles `type` (any thread: the
 * table is read-only once the generation is built). */
int mk_server_handles_msg(const struct mk_server *srv, const char *type,
                          size_t len);
/* Owning worker: hands a message to the plugin handling `type`, else to
 * the session's owner; -1 when neither takes it. */
int mk_session_deliver(struct mk_session *s, const char *type, size_t tlen,
                       const void *body, size_t len, uint64_t share);
/* Any thread (the gateway thread, another worker): copies the message and
 * routes it to the worker owning `sid`, which delivers it as
 * mk_session_deliver. 0 queued; -1 when no live session has that sid
 * (dropped and counted, as one that is gone by the time it arrives). */
int mk_session_post(const uint8_t *sid, const char *type, size_t tlen,
                    const void *body, size_t len, uint64_t share);
/* Session messages dropped so far (their sid gone, or nobody took the
 * type), process-wide. */
uint64_t mk_session_dropped(void);

/* ---- Groups: named sets of sessions ----------------------------------------
 *
 * A group lives in a scope (the vhost, or an object that stands for it:
 * names are per vhost), is created by its first join and destroyed with
 * its last member. Members are sids, so a transport routes a group message
 * to each member's node or worker. Any thread (one lock, never taken by a
 * worker's message path); a transport calls mk_group_leave_all when a
 * session ends.
 */
#define MK_GROUP_NAME_MAX 64

enum {
    MK_GROUP_JOINED = 0,                  /* a member (maybe already) */
    MK_GROUP_FULL_SESSION = 1,            /* refused: per_session reached */
    MK_GROUP_FULL_SCOPE = 2,              /* refused: per_scope reached */
};

/* Joins `sid` to the scope's group `name` (1..MK_GROUP_NAME_MAX bytes),
 * with the session's echo default; a join past a cap is refused, the
 * caller logs it. One of the values above, or -1 (invalid name, out of
 * memory). */
int  mk_group_join(const void *scope, const uint8_t *sid, const char *name,
                   size_t len, long long per_scope, long long per_session);
void mk_group_leave(const void *scope, const uint8_t *sid, const char *name,
                    size_t len);
/* Echo on or off for one membership, or with len == 0 the session's
 * default for its future joins (on at first). 0, or -1 without memory. */
int  mk_group_echo(const void *scope, const uint8_t *sid, const char *name,
                   size_t len, int on);
void mk_group_leave_all(const uint8_t *sid);
/* Calls fn for each member of the scope's group `name` but `from` (may be
 * NULL), in join order, then for `from` if it is a member with echo on.
 * fn runs under the groups lock: it must not call mk_group_*. Returns the
 * number of calls, or -1 when the group does not exist. */
int  mk_group_route(const void *scope, const char *name, size_t len,
                    const uint8_t *from,
                    void (*fn)(void *ctx, const uint8_t *sid), void *ctx);
/* A group message's recipients as mk_group_route gives them (the sender
 * excluded unless it is a member with echo on), in batches by the worker
 * owning them: fn runs once per worker that has any, with that worker's
 * `n` sids (MK_SESSION_SID_LEN bytes each, in routing order, borrowed for
 * the call), outside the group lock. Members whose session is gone are
 * skipped. Any thread. The number of recipients, or -1 when the group
 * does not exist or memory ran out (nobody gets it, logged). A transport
 * carries each batch to its worker through its own ordered inbox: a
 * session's direct and group messages must reach it in the order its
 * node sent them. */
typedef void (*mk_group_batch_fn)(void *ctx, int worker, const uint8_t *sids,
                                  size_t n);
int  mk_group_fanout(const void *scope, const char *name, size_t len,
                     const uint8_t *from, mk_group_batch_fn fn, void *ctx);
/* Owning worker: one shared message to the batch's sessions that still
 * live on this worker, in order, each through mk_session_deliver with the
 * same `share` (so a plugin may encode it once). How many took it. */
size_t mk_group_deliver(const uint8_t *sids, size_t n, const char *type,
                        size_t tlen, const void *body, size_t len,
                        uint64_t share);
/* The scope's live groups (NULL: every scope's), and the groups a
 * session is in. */
long long mk_group_count(const void *scope);
long long mk_group_session_count(const uint8_t *sid);

/* ---- Protocol registry ----------------------------------------------------
 *
 * A plugin declares the protocol handlers it provides in its descriptor's
 * `protos`; the core declares HTTP/1.1 ("http/1.1") the same way. The
 * table is built with the configuration generation: two declarations with
 * the same name or the same ALPN id are a configuration error. A listener
 * speaks the protocol its `Listen` line names (`protocol=NAME`, default
 * "http/1.1"); the tls layer offers the ALPN ids of the table, highest
 * preference first, and switches a connection to the client's pick.
 */
struct mk_proto_decl {
    const char *name;              /* "http/1.1", "h2c": what Listen names */
    const char *alpn;              /* ALPN id ("h2"), or NULL: not offered */
    int preference;                /* higher is offered first (HTTP/1.1: 0) */
    const struct mk_proto *proto;
    /* Optional: the bytes a client opens a connection with in this
     * protocol ("PRI * HTTP/2.0\r\n..."): an HTTP/1.1 connection whose
     * first bytes are these is switched to it (prior knowledge). */
    const char *preface;
};

/* The ALPN ids of the generation's protocols, highest preference first
 * (equal preferences in load order, the core's first), ended by NULL.
 * Owned by the generation, read-only: any thread of it may read it. */
const char *const *mk_server_alpn_ids(const struct mk_server *srv);
/* For network layers, once their handshake picked a protocol (ALPN):
 * the connection switches to the protocol registered with that ALPN id
 * (the current one's on_close releases its state first, unless it is the
 * same protocol). Call it before mk_conn_io_established, which starts the
 * new protocol. 0, or -1 for an id no loaded plugin registered. */
int mk_conn_select_proto(struct mk_conn *c, const char *alpn, size_t len);
/* Protocol handlers: run the protocol's on_posted after the current event
 * batch (work that must not run under the caller, e.g. resuming streams
 * from inside a plugin call). */
void mk_conn_post_work(struct mk_conn *c);

/* ---- Output filters ---------------------------------------------------------
 *
 * A filter sees each body piece of a stream (before the protocol frames
 * it: mk_response_write, mk_response_sendfile, mk_response_write_shared
 * as a copied memory piece, then the end) or of a
 * connection (every byte before it is queued: mk_conn_write,
 * mk_conn_write_file, mk_conn_write_shared). Plugins declare filters in
 * their descriptor's `filters`; a filter runs at the place its `order`
 * gives it (lower first, nearer the producer; equal orders in load
 * order), whatever the order in which plugins attach them. A plugin
 * attaches a filter to one connection (stage 10) or one stream (stage 20
 * or 30) with its own per-attachment state.
 *
 * on_piece either passes the piece on now (mk_filter_pass, transformed or
 * not) or holds it (mk_filter_hold) and releases held bytes later
 * (mk_filter_release, e.g. from a timer: bandwidth pacing). Held bytes
 * count as queued (mk_conn_queued, WriteQueueLimit), so a producer that
 * respects the bound stops; the protocol's on_drain runs once nothing is
 * held or queued any more, and a graceful close waits for held bytes.
 * A filter that holds must keep the order of what it lets through: once
 * it holds something, it holds what follows (the end included) until it
 * released it.
 */
enum mk_piece_type {
    MK_PIECE_MEM = 0,        /* data, len, flags (MK_WRITE_*) */
    MK_PIECE_FILE,           /* fd, offset, len, close_fd */
    MK_PIECE_SHARED,         /* sb (data, len point into it) */
    MK_PIECE_END,            /* streams only: the response ends */
};

struct mk_shared_buf;

struct mk_piece {
    enum mk_piece_type type;
    const void *data;
    size_t len;
    int flags;
    int fd;
    off_t offset;
    int close_fd;
    struct mk_shared_buf *sb;
};

struct mk_filter_link;                /* one filter attached somewhere */

struct mk_filter {
    const char *name;
    int order;
    /* Worker thread. Pass (mk_filter_pass) or hold (mk_filter_hold) the
     * piece; a piece neither passed nor held is dropped (MK_WRITE_FREE
     * memory and close_fd descriptors are then the filter's to free).
     * 0, or -1: the connection fails and the producer's write returns -1.
     * NULL: pieces pass through. */
    int  (*on_piece)(struct mk_filter_link *l, struct mk_piece *p);
    /* The stream or connection is gone (held pieces are already freed):
     * free the attachment's state. */
    void (*on_detach)(struct mk_filter_link *l);
};

/* Attach a declared filter (-1: not declared by a loaded plugin, already
 * attached there, or out of memory; on_detach is not called then). */
int mk_conn_filter_attach(struct mk_conn *c, const struct mk_filter *f,
                          void *data);
int mk_stream_filter_attach(struct mk_stream *r, const struct mk_filter *f,
                            void *data);
/* Hands a piece to the next filter, or to the protocol (a stream) or the
 * write queue (a connection). Ownership follows the piece's flags as in
 * mk_conn_write. 0 or -1 (the connection fails). */
int mk_filter_pass(struct mk_filter_link *l, struct mk_piece *p);
/* The core keeps the piece (copying MK_WRITE_COPY bytes) behind what this
 * link already holds. 0 or -1 (out of memory, or WriteQueueLimit
 * exceeded: the connection fails). */
int mk_filter_hold(struct mk_filter_link *l, struct mk_piece *p);
/* Passes on up to `max` held bytes (splitting memory and file pieces), in
 * order; an END reached within them passes too. Any time on the worker
 * (a timer): the bytes are written at the posted pass. Returns the bytes
 * released, or -1 (the connection failed). */
long mk_filter_release(struct mk_filter_link *l, size_t max);
/* Bytes this link holds; whether it holds the end. */
size_t mk_filter_held(const struct mk_filter_link *l);
int  mk_filter_holds_end(const struct mk_filter_link *l);
void *mk_filter_data(const struct mk_filter_link *l);
struct mk_conn *mk_filter_conn(const struct mk_filter_link *l);
/* The stream, or NULL for a connection's filter. */
struct mk_stream *mk_filter_stream(const struct mk_filter_link *l);

/* ---- The plugin ---------------------------------------------------------- */

#define MK_PLUGIN_NETWORK  0x1   /* provides `net_io` */
/* With MK_PLUGIN_NETWORK: the layer of listeners that name none (plain
 * sockets); the first loaded plugin with this flag serves them. */
#define MK_PLUGIN_NETWORK_PLAIN 0x2

struct mk_plugin {
    int abi;                              /* MK_PLUGIN_ABI */
    const char *name;                     /* lower case, e.g. "logger" */
    const char *description;
    int flags;

    /* Global config: the [NAME] section (upper-cased name), read from
     * <confdir>/<name>.conf if that file exists, else from the main file.
     * `conf` points to conf_size zeroed bytes filled by the schema. */
    const struct mk_conf_key *conf_keys;
    size_t conf_size;
    int  (*conf_check)(void *conf, struct mk_server *srv,
                       char *err, size_t errlen);       /* -1 refuses */
    void (*conf_release)(void *conf);     /* free CUSTOM fields */

    /* Per-vhost config: each [NAME] section of a site file, repeatable
     * (e.g. one [AUTH] per protected location). A MK_CONF_INHERIT key
     * (mk_rconf.h) takes the global key's parsing and range, and the
     * global value as parsed when the site leaves it out (sites are read
     * after every global section, before any conf_check runs). */
    const struct mk_conf_key *vhost_keys;
    size_t vhost_conf_size;
    int  (*vhost_check)(void *vconf, struct mk_vhost *vh,
                        char *err, size_t errlen);
    void (*vhost_release)(void *vconf);

    /* Master: after all config of the generation is parsed (open files,
     * sockets). Returns 0 or -1 (startup/reload fails, message logged). */
    int  (*init)(void *conf, struct mk_server *srv);
    void (*exit)(void *conf, struct mk_server *srv);
    /* Worker thread start and end. */
    int  (*worker_init)(void *conf, struct mk_worker *w);
    void (*worker_exit)(void *conf, struct mk_worker *w);
    /* Master, SIGUSR1: reopen log files. */
    void (*on_reopen)(void *conf, struct mk_server *srv);

    /* Stage 10: MK_STAGE_NEXT or MK_STAGE_CLOSE. */
    int  (*on_accept)(void *conf, struct mk_conn *c);
    /* Stage 20: NEXT, HANDLED (the plugin answered: mk_response_*)
     * or CLOSE. Runs for every request in plugin load order. */
    int  (*on_request)(void *conf, struct mk_stream *r);
    /* Stage 30, only on the request's chosen handler: HANDLED (it owns
     * the response, which may finish later), NEXT (declined: 404), CLOSE. */
    int  (*on_content)(void *conf, struct mk_stream *r);
    /* Request body bytes for the content handler, de-chunked, as they
     * arrive; a final call with len == 0 marks the end of the body. That
     * call always comes, right after on_content for a request without a
     * body. Return 0, or -1 to fail the request (the connection closes). */
    int  (*on_body)(void *conf, struct mk_stream *r,
                    const char *data, size_t len);
    /* Stage 40: the response is complete (or failed); r is still valid. */
    void (*on_done)(void *conf, struct mk_stream *r);
    /* Stage 50: the connection is closing. Runs for every plugin. */
    void (*on_close)(void *conf, struct mk_conn *c);

    /* MK_PLUGIN_NETWORK plugins: the I/O layer for listeners naming it. */
    const struct mk_net_io *net_io;

    /* Node message types this plugin handles, ended by { NULL }. */
    const struct mk_msg_type *msg_types;

    /* The BlastBeat .ini options this plugin translates for `tremolo -b`
     * (see the end of this header), or NULL. */
    const struct mk_bb_ini *bb_ini;

    /* Protocol handlers this plugin provides, ended by { NULL }. */
    const struct mk_proto_decl *protos;
    /* Output filters this plugin declares, ended by { NULL }. */
    const struct mk_filter *filters;
    /* Per-stream accounting (limits). Worker thread, once the stream's
     * head and site are known, before stage 20: 0 admits the stream, an
     * HTTP status (503) refuses it and the core answers with that status
     * (stages 40 and 50 still run; the connection persists as after any
     * early answer). on_stream_close runs exactly once for every stream
     * this plugin admitted, when the stream is freed (ended, failed or
     * its connection aborted); never for one it did not see admitted. */
    int  (*on_stream_open)(void *conf, struct mk_stream *r);
    void (*on_stream_close)(void *conf, struct mk_stream *r);
    /* Content handlers that are backend transports: bind a backend to a
     * standalone session another plugin created (mk_session_open_backend;
     * r is that request, `vars` extra variables). 0 or an HTTP status. */
    int  (*open_backend)(void *conf, struct mk_session *s,
                         struct mk_stream *r, const char *const *vars);
};

/* ---- Server, vhost, worker accessors ----------------------------------- */

/* This plugin's global config in a generation (NULL if not loaded). */
void *mk_server_plugin_conf(struct mk_server *srv, const struct mk_plugin *p);
/* Directory of the main config file (for relative paths in plugin conf). */
const char *mk_server_conf_dir(const struct mk_server *srv);
/* Resolves `path` against the config directory into out; returns out. */
const char *mk_server_path(const struct mk_server *srv, const char *path,
                           char *out, size_t outlen);
int mk_server_worker_count(const struct mk_server *srv);

const char *mk_vhost_name(const struct mk_vhost *vh);       /* first name */
/* The per-vhost configs of plugin p (array of `count` pointers). */
void **mk_vhost_plugin_confs(const struct mk_vhost *vh,
                             const struct mk_plugin *p, size_t *count);
/* The site one of whose ServerNames matches `host` (port excluded), as the
 * Host header is matched, or NULL: no fall-back to the default site (the
 * tls plugin picks a certificate by SNI with it). */
struct mk_vhost *mk_server_vhost_match(struct mk_server *srv,
                                       const char *host, size_t len);
/* Iterate every vhost of a generation. */
struct mk_vhost *mk_server_vhost_next(struct mk_server *srv,
                                      struct mk_vhost *prev);

struct mk_event_loop *mk_worker_loop(struct mk_worker *w);
int mk_worker_id(const struct mk_worker *w);

/* ---- Connection ---------------------------------------------------------- */

struct mk_conn_addr {
    int family;                 /* AF_INET, AF_INET6 or AF_UNIX */
    uint16_t port;              /* host order */
    uint8_t addr[16];           /* network order: 4 bytes for AF_INET */
};

const struct mk_conn_addr *mk_conn_peer(const struct mk_conn *c);
/* Textual peer address ("127.0.0.1", "::1"), cached per connection. */
const char *mk_conn_peer_str(struct mk_conn *c);
int  mk_conn_fd(const struct mk_conn *c);
/* Port of the listener the connection came in on (host order; 0 for a
 * Unix socket). */
uint16_t mk_conn_local_port(const struct mk_conn *c);
uint64_t mk_conn_id(const struct mk_conn *c);        /* unique per process */
struct mk_worker *mk_conn_worker(const struct mk_conn *c);
struct mk_server *mk_conn_server(const struct mk_conn *c);
/* The listener's I/O layer state slot, for network plugins. */
void *mk_conn_io_data(const struct mk_conn *c);
void  mk_conn_set_io_data(struct mk_conn *c, void *data);
/* The site that answers on this connection's listener when the client
 * names none it serves (its Default site, or the first one served there). */
struct mk_vhost *mk_conn_default_vhost(const struct mk_conn *c);
/* The connection came through a secure layer (TLS). */
int   mk_conn_is_secure(const struct mk_conn *c);
/* For network layers: their own set-up (a TLS handshake) is done, so the
 * protocol's deadline (HeaderTimeout for the first request) starts now in
 * place of the layer's. */
void  mk_conn_io_established(struct mk_conn *c);
/* For network layers whose read must first write (a TLS handshake flight
 * the socket did not take): the core calls read again at the next
 * writable event. */
void  mk_conn_io_want_write(struct mk_conn *c);
/* Name given by the listener's config (e.g. "tls") and its I/O layer conf. */
const char *mk_conn_listener_layer(const struct mk_conn *c);

/* The client has sent its FIN: no input will follow what is buffered. */
int  mk_conn_is_eof(const struct mk_conn *c);
/* Unread input: bytes received and not consumed by the protocol. */
struct mk_ptr mk_conn_input(const struct mk_conn *c);
void mk_conn_consume(struct mk_conn *c, size_t n);

/* Switches the connection to another protocol handler (WebSocket after a
 * 101, HTTP/2 after ALPN). Bytes left in the input buffer are delivered to
 * the new handler's on_read right after the current callback returns. */
void  mk_conn_set_proto(struct mk_conn *c, const struct mk_proto *proto,
                        void *data);
void *mk_conn_proto_data(const struct mk_conn *c);

/* Queues bytes for the client. Flags: */
#define MK_WRITE_COPY    0x0   /* copy data now (caller keeps its buffer) */
#define MK_WRITE_STATIC  0x1   /* data lives forever (string literals) */
#define MK_WRITE_FREE    0x2   /* take ownership; mk_mem_free when sent */
int mk_conn_write(struct mk_conn *c, const void *data, size_t len, int flags);
/* Queues a file range; with close_fd the fd is closed when sent. */
int mk_conn_write_file(struct mk_conn *c, int fd, off_t offset, size_t len,
                       int close_fd);
/* Shared immutable buffer (one broadcast frame to many connections):
 * refcounted, freed when the last connection has sent it. */
struct mk_shared_buf;
struct mk_shared_buf *mk_shared_buf_create(const void *data, size_t len);
/* The same from pieces (a frame header and its payload). */
struct mk_shared_buf *mk_shared_buf_createv(const struct iovec *iov,
                                            int iovcnt);
void mk_shared_buf_release(struct mk_shared_buf *sb);
int  mk_conn_write_shared(struct mk_conn *c, struct mk_shared_buf *sb);
/* This connection's WriteQueueLimit in bytes (0: the server's): a site
 * may allow its clients more or less than the server default. */
void mk_conn_set_write_limit(struct mk_conn *c, size_t bytes);
/* The WriteQueueLimit in force for this connection (a multiplexing
 * protocol bounds what its streams hold with it too). */
size_t mk_conn_write_limit(const struct mk_conn *c);
/* Bytes queued and not yet written (for backpressure decisions). */
size_t mk_conn_queued(const struct mk_conn *c);
/* Tries to write now (otherwise the core flushes when the event handler
 * returns). Returns 0, or -1 if the connection failed (it will close). */
int  mk_conn_flush(struct mk_conn *c);
/* Close after the queue is flushed (graceful) or at once. */
void mk_conn_close(struct mk_conn *c, int graceful);
/* The client may still be sending (a protocol closing on its error): the
 * graceful close reads and drops its input for a moment after the queue
 * is written, so the last bytes (an HTTP/2 GOAWAY) are not destroyed by
 * a reset for unread input. */
void mk_conn_linger(struct mk_conn *c);
/* Closes at once `ms` from now whatever is still queued or unread; until
 * then the connection and its protocol go on (a WebSocket waits for the
 * client's answer to its close frame, maybe behind a slow reader's
 * backlog). A later graceful close keeps this limit. */
void mk_conn_close_after(struct mk_conn *c, uint64_t ms);
/* Re-arms the connection's single timer; 0 disarms. */
void mk_conn_timeout(struct mk_conn *c, uint64_t ms_from_now);

/* Per-connection slot for plugins (index = plugin's load position); lets a
 * stage-10 plugin attach state read at stage 50. */
void *mk_conn_plugin_data(const struct mk_conn *c, const struct mk_plugin *p);
void  mk_conn_set_plugin_data(struct mk_conn *c, const struct mk_plugin *p,
                              void *data);

/* ---- Request -------------------------------------------------------------
 *
 * `struct mk_stream` is one request/response exchange (stages 20-40 run
 * per stream); these accessors read its request. Spans of the head index
 * mk_request_buf(r), the buffer the carrying protocol keeps for the
 * stream's life.
 */

struct mk_conn *mk_request_conn(const struct mk_stream *r);
struct mk_vhost *mk_request_vhost(const struct mk_stream *r);
const struct mk_http_request_head *mk_request_head(const struct mk_stream *r);
/* Base of the buffer the head's spans point into (valid until the request
 * ends; the head bytes are never moved while the request lives). */
const char *mk_request_buf(const struct mk_stream *r);
enum mk_http_method mk_request_method(const struct mk_stream *r);
struct mk_ptr mk_request_target(const struct mk_stream *r);
struct mk_ptr mk_request_path(const struct mk_stream *r);      /* raw */
struct mk_ptr mk_request_query(const struct mk_stream *r);
struct mk_ptr mk_request_header(const struct mk_stream *r, const char *name);
int mk_request_version_minor(const struct mk_stream *r);
/* "HTTP/1.0", "HTTP/1.1" or the carrying protocol's name ("HTTP/2"). */
const char *mk_request_protocol(const struct mk_stream *r);
/* Percent-decoded, dot-segment-normalised path (always starts with '/';
 * NUL-terminated), or NULL if the path was invalid (the core answers 400
 * before any plugin sees such a request). */
const char *mk_request_clean_path(const struct mk_stream *r);
/* The [LOCATION] prefix that matched ("/" if none). */
const char *mk_request_location(const struct mk_stream *r);
/* Time the request head completed (monotonic ms) and the stream's id on
 * its connection (1 for the first; on HTTP/1.1 the request count). */
uint64_t mk_request_start_ms(const struct mk_stream *r);
uint32_t mk_request_seq(const struct mk_stream *r);
/* Per-request slot for the content handler and stage plugins. */
void *mk_request_plugin_data(const struct mk_stream *r,
                             const struct mk_plugin *p);
void  mk_request_set_plugin_data(struct mk_stream *r,
                                 const struct mk_plugin *p, void *data);
/* Stops reading the request body until mk_request_body_resume (flow
 * control toward a slow backend). */
void mk_request_body_pause(struct mk_stream *r);
void mk_request_body_resume(struct mk_stream *r);

/* ---- Response -----------------------------------------------------------
 *
 * Typical handler:
 *     mk_response_status(r, 200);
 *     mk_response_header(r, "Content-Type", "text/plain");
 *     mk_response_content_length(r, 5);
 *     mk_response_send_head(r);
 *     mk_response_write(r, "hello", 5, MK_WRITE_STATIC);
 *     mk_response_end(r);
 *
 * The response is protocol-neutral: status, header fields kept as a
 * name/value list, content length, body pieces, trailers, end. The
 * protocol carrying the stream serialises it through its stream ops;
 * HTTP/1.1 adds Date, Server (unless HideVersion), Content-Length or
 * Transfer-Encoding: chunked (HTTP/1.1 with unknown length; HTTP/1.0 then
 * closes), and Connection. HEAD requests get the head only: body writes
 * are discarded. Unless said otherwise below, a function returns 0, or -1
 * when the connection failed and closes (the handler still gets on_done
 * and on_close); mk_response_header's and mk_response_raw's -1 only refuse
 * and leave the connection open.
 */
/* Room for the handler's header fields, counted as their HTTP/1.1 text
 * ("Name: value\r\n") so the limit is the same on every protocol; a
 * serialiser may size its buffers by these. */
#define MK_RESPONSE_FIELDS_ROOM 1024
#define MK_RESPONSE_FIELDS_MAX  128

void mk_response_status(struct mk_stream *r, int status);
/* -1 (header not added; the connection stays) for a value with CR or LF, a
 * Location a browser would follow to another site ("//host", "/\host"),
 * or no room left in the head. */
int  mk_response_header(struct mk_stream *r, const char *name,
                        const char *value);
int  mk_response_header_n(struct mk_stream *r, const char *name,
                          const char *value, size_t vlen);
/* -1: unknown length (default) */
void mk_response_content_length(struct mk_stream *r, int64_t len);
/* Closes the connection after this response. */
void mk_response_close(struct mk_stream *r);
/* Whether the connection closes after this response, as decided now: the
 * handler or the client asked for it, HTTP/1.0 without keep-alive,
 * KeepAliveMaxRequests reached, the client's FIN, a graceful stop or
 * reload. A raw-mode handler asks before writing its head, so that the
 * head can say `Connection: close`. */
int  mk_response_will_close(const struct mk_stream *r);
int  mk_response_send_head(struct mk_stream *r);
int  mk_response_write(struct mk_stream *r, const void *data, size_t len,
                       int flags);
int  mk_response_sendfile(struct mk_stream *r, int fd, off_t offset,
                          size_t len, int close_fd);
/* A refcounted body piece (one buffer sent to many streams); the caller
 * keeps its own reference. */
int  mk_response_write_shared(struct mk_stream *r, struct mk_shared_buf *sb);
/* Raw mode: the handler writes the whole response itself, status line and
 * head included (the zmq gateway's `headers` are written verbatim). The
 * handler tells at mk_response_end whether the connection may persist.
 * Only an HTTP/1.x stream carries a raw head: on any other protocol
 * mk_response_raw returns -1 (nothing changed; answer with structured
 * fields instead) and mk_response_write_raw returns -1. */
int  mk_response_raw(struct mk_stream *r);
int  mk_response_write_raw(struct mk_stream *r, const void *data, size_t len,
                           int flags);
/* A trailer field, sent after the body where the protocol can (HTTP/1.1
 * with chunked framing, HTTP/2) and dropped elsewhere; the same checks
 * and room as mk_response_header. -1 after the end or in raw mode. */
int  mk_response_trailer(struct mk_stream *r, const char *name,
                         const char *value, size_t vlen);
int  mk_response_end(struct mk_stream *r);
/* The response started and cannot be completed (a backend failed
 * mid-body): the client learns it is cut, the stream alone where the
 * protocol can say so (HTTP/2 RST_STREAM), else by the connection
 * closing. Stage 40 sees it not ended. */
void mk_response_abort(struct mk_stream *r);
/* A complete error response (vhost ErrorPage if configured, else a short
 * HTML body), then end. */
int  mk_response_error(struct mk_stream *r, int status);
int  mk_response_get_status(const struct mk_stream *r);
int  mk_response_head_sent(const struct mk_stream *r);
uint64_t mk_response_bytes(const struct mk_stream *r);    /* body bytes */

/* The response as the handler built it, read-only (stage 40 sees the
 * finished one, e.g. for a cache): status (mk_response_get_status), body
 * bytes (mk_response_bytes), whether it ended (0: it failed, the client
 * left or the connection broke first), whether its head was raw (then its
 * fields are in the handler's bytes, not here), and its fields in the
 * order added. mk_response_field_next starts with *iter = 0 and returns 1
 * per field (name and value borrowed from the stream, valid during the
 * callback; *trailer, if not NULL, tells a trailer), then 0. The core's
 * own fields (Date, Server, framing, Connection) are not listed. */
int  mk_response_ended(const struct mk_stream *r);
int  mk_response_is_raw(const struct mk_stream *r);
/* For serialisers: the length the handler announced, -1 unknown. */
int64_t mk_response_get_content_length(const struct mk_stream *r);
int  mk_response_field_next(const struct mk_stream *r, size_t *iter,
                            struct mk_ptr *name, struct mk_ptr *value,
                            int *trailer);
const char *mk_http_status_reason(int status);
/* For serialisers: the Server field's value in this generation
 * (HideVersion) and the current Date (MK_HTTP_DATE_LEN = 29 characters,
 * refreshed once a second by the clock thread). */
const char *mk_server_software(const struct mk_server *srv);
const char *mk_server_date(void);
/* A resource the client should fetch early (a node's `push`): the
 * response gets `Link: <url>; rel=preload` and, while its head is not
 * sent, a protocol that carries interim responses sends a 103 Early Hints
 * with that Link at once (HTTP/2), and a protocol that pushes (HTTP/2 with
 * `Push on` and a client that takes pushes) promises a GET of a path on
 * this site. -1: the head is sent, a bad URL, or no room for the field. */
int  mk_response_preload(struct mk_stream *r, const char *url, size_t len);

/* ---- Static files (core content handler "static") ---------------------- */
const char *mk_vhost_document_root(const struct mk_vhost *vh);

/* ---- Translating BlastBeat .ini keys (tremolo -b) ---------------------- */

/*
 * `tremolo -b FILE.ini` reads a BlastBeat .ini (spec section 8) and writes
 * native configuration files from it. The core knows BlastBeat's options
 * (their sections, repetition and value grammar) and translates its own;
 * every other option is translated by the plugin that declares it in
 * `bb_ini`. The core walks every plugin mk_plugin_find can find: a plugin
 * that translates an option used in the .ini is loaded, and its values
 * (checked and converted to native units by the core) are written into
 * the plugin's own [NAME] section of tremolo.conf or of the site file.
 * An option no plugin translates is refused when it is used.
 */

/* Where a BlastBeat option appears. */
#define MK_BB_GLOBAL 0x1               /* [blastbeat] */
#define MK_BB_VHOST  0x2               /* [blastbeat:NAME] */

/* mk_bb_key.flags */
#define MK_BB_REQUIRED 0x1  /* a vhost key every vhost served on one of this
                             * plugin's listeners must set */

/* One BlastBeat option and the native key it becomes. */
struct mk_bb_key {
    const char *key;       /* as BlastBeat spells it: "ping-freq" */
    unsigned where;        /* MK_BB_GLOBAL and/or MK_BB_VHOST */
    /* The key in the plugin's [NAME] section (conf_keys for MK_BB_GLOBAL,
     * vhost_keys for MK_BB_VHOST). NULL for an address option (`bind-ssl`):
     * its listeners use this plugin's net_io (`Listen ADDR name`). */
    const char *native;
    /* BlastBeat's default in .ini syntax ("3.0"), written when the .ini
     * does not set the option, or NULL. */
    const char *def;
    unsigned flags;        /* MK_BB_REQUIRED */
};

/* mk_bb_ini.flags: the roles a translated configuration needs. */
#define MK_BB_HANDLER      0x1  /* every site's Handler (BlastBeat's nodes) */
#define MK_BB_WITH_HANDLER 0x4  /* loaded right after the handler plugin */

struct mk_bb_ini {
    const struct mk_bb_key *keys;      /* ended by { NULL }; may be NULL */
    unsigned flags;
};

#endif
