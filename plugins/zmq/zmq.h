#ifndef TREMOLO_ZMQ_H
#define TREMOLO_ZMQ_H

/*
 * The zmq plugin: private structures shared by zmq.c (configuration and
 * stages), zmq_gw_thread.c and zmq_gateway.c (the gateway thread: its
 * loop, and what it reads), zmq_session.c (the worker side) and
 * zmq_wire.c (the messages between them). See docs/zmq-gateway.md.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <zmq.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_channel.h"
#include "mk_core/mk_hash.h"
#include "mk_core/mk_rconf.h"
#include "mk_server/mk_plugin.h"
#include "plugins/zmq/zmq_curve_keys.h"
#include "plugins/zmq/zmq_guard.h"
#include "plugins/zmq/zmq_nodes.h"
#include "plugins/zmq/zmq_proto.h"
#include "plugins/zmq/zmq_queue.h"

#define ZMQ_MAX_ROUTERS 64
#define ZMQ_GUARD_NATIVE 2            /* NodeGuard native */
#define ZMQ_MAX_HOPS 32              /* upper bound of MaxHops */
#define ZMQ_WRITE_QUEUE_MIN (64 * 1024) /* [SERVER] WriteQueueLimit's minimum */
#define ZMQ_RETRY_BODY_MAX (1024 * 1024) /* body kept for a retry */
/* Request-body flow control (docs/zmq-gateway.md): a worker has at most
 * ZMQ_BODY_WINDOW bytes of a session's body on their way to the node; the
 * gateway acknowledges what the node's queue took every ZMQ_BODY_ACK
 * bytes, and the worker reads on below half the window. */
#define ZMQ_BODY_WINDOW (1024 * 1024)
#define ZMQ_BODY_ACK (256 * 1024)
/* What CURVE adds to a frame on the wire: its MESSAGE command's name (8
 * bytes), nonce (8), MAC (16) and the flags byte inside the box (1).
 * ZMQ_MAXMSGSIZE bounds the wire frame, MaxFrameSize the node's. */
#define ZMQ_CURVE_FRAME_OVERHEAD 33

/* [ZMQ] in zmq.conf */
struct zmq_conf {
    struct mk_conf_list bind;
    uint64_t ping_freq;
    uint64_t node_timeout;
    long long max_hops;
    uint64_t max_frame;
    long long max_nodes;
    long long sessions;               /* live sessions, all sites; 0: no cap */
    uint64_t stats_freq;              /* stats log line period; 0: none */
    int node_guard;                   /* relay tcp:// Binds (zmq_guard.h);
                                       * ZMQ_GUARD_NATIVE: serve them */
    long long node_conns;             /* NodeConnections: relayed at once */
    uint64_t node_queue;              /* NodeQueueLimit: bytes toward a node */
    long long groups;                 /* Groups: per site, by default */
    long long session_groups;         /* GroupsPerSession, by default */
    int curve;
    char *curve_secret;               /* Z85, 40 characters */
    char *curve_keys;                 /* allow-list file of node public keys */
    /* every ROUTER endpoint: the global Binds, then the sites' own */
    const char *endpoints[ZMQ_MAX_ROUTERS];
    const char *endpoint_files[ZMQ_MAX_ROUTERS];
    int endpoint_lines[ZMQ_MAX_ROUTERS];
    int nendpoints;
    atomic_long live;                 /* sessions now, against `sessions` */
    struct zmq_gw *gw;                /* set by init */
};

/* [ZMQ] in a site file. NodeTimeout, MaxHops, PingFreq, Groups and
 * GroupsPerSession hold zmq.conf's value when the site leaves them out
 * (MK_CONF_INHERIT): each field has the type of its zmq_conf twin. */
struct zmq_vconf {
    struct mk_conf_list node;
    struct mk_conf_list bind;         /* ROUTERs only this site's nodes use */
    long long sessions;               /* 0: no cap */
    uint64_t node_timeout;
    long long max_hops;
    uint64_t write_queue;             /* 0: the server's WriteQueueLimit */
    uint64_t ping_freq;
    long long groups;
    long long session_groups;
    size_t *patterns;                 /* indexes into the registry */
    struct zmq_site_nodes site;
    atomic_long live;                 /* this site's sessions now */
};

/* Messages between workers and the gateway thread. */
enum zmq_wire_kind {
    ZMQ_WIRE_REQUEST,                  /* worker -> gw: uwsgi packet */
    ZMQ_WIRE_BODY,                     /* worker -> gw: body (empty = end) */
    ZMQ_WIRE_END,                      /* worker -> gw: session closed */
    ZMQ_WIRE_UPGRADED,                 /* worker -> gw: the 101 went out */
    ZMQ_WIRE_FRAMING,                  /* worker -> gw: the node's body broke
                                        * its head's framing (log it) */
    ZMQ_WIRE_NODE,                     /* gw -> worker: a node's message */
    ZMQ_WIRE_FANOUT,                   /* gw -> worker: a routed message for
                                        * each of `sids` (this worker's) */
    ZMQ_WIRE_NO_NODE,                  /* gw -> worker: nobody to ask */
    ZMQ_WIRE_NODE_GONE,                /* gw -> worker: the node went OFF */
    ZMQ_WIRE_ACK,                      /* gw -> worker: body bytes sent on */
    ZMQ_WIRE_BOUND,                    /* gw -> worker: an upgrade has a node */
    ZMQ_WIRE_ATTACH,                   /* worker -> gw: here is my inbox */
    ZMQ_WIRE_DETACH,                   /* worker -> gw: give my inbox back */
};

/* A worker's side of the gateway (zmq_session.c); the gateway thread
 * pushes to its inbox and tells it when it may be released. */
struct zmq_worker {
    struct mk_channel inbox;
    struct mk_hash *sessions;          /* sid -> struct zmq_session */
    struct zmq_gw *gw;
    struct mk_timer_heap *timers;
    struct mk_event_loop *loop;
    struct zmq_wire *detach;           /* made at start: leaving cannot fail */
    int detached;                      /* under gw->handover_lock */
    int id;
};

struct zmq_wire {
    struct mk_channel_msg msg;         /* first member */
    enum zmq_wire_kind kind;
    int worker;
    uint8_t sid[ZMQ_SID_LEN];
    struct zmq_vconf *vc;              /* REQUEST: the request's site */
    int upgrade;                       /* REQUEST: answer BOUND once bound */
    enum zmq_msg_type type;
    int routed;                        /* NODE: sent by another session's node */
    uint64_t acked;                    /* ACK: body bytes the node's queue took */
    uint64_t share;                    /* NODE: a fan-out's id (mk_msg_type) */
    const char *why;                   /* FRAMING: what the node did (static) */
    /* REQUEST: the session's request count; NODE: the count of the
     * binding when the node's message came (which request it answers) */
    uint32_t seq;
    struct zmq_worker *zw;             /* ATTACH, DETACH */
    uint8_t (*sids)[ZMQ_SID_LEN];      /* FANOUT: the recipients */
    uint32_t nsids, sids_size;
    zmq_msg_t payload;                 /* moved, never copied, between threads */
};

struct zmq_gw {
    void *ctx;
    void *routers[ZMQ_MAX_ROUTERS];
    int nrouters;
    struct mk_event_loop *loop;        /* the wait: inbox and ZMQ_FDs */
    struct mk_channel inbox;
    uint64_t unread;                   /* ROUTERs to read to EAGAIN, by bit */
    struct zmq_nodes nodes;
    struct mk_hash *bindings;          /* sid -> struct zmq_binding */
    uint64_t groups_refused;           /* joins past a cap */
    uint64_t msgs_dropped;             /* routed `msg`s a full node missed */
    uint64_t last_groups_log, last_drop_log;
    struct zmq_worker **workers;       /* by worker id; gateway thread only */
    struct zmq_worker **leaving;       /* detached, not yet told so */
    int nleaving;
    /* a worker waits here until the gateway let go of its inbox */
    pthread_mutex_t handover_lock;
    pthread_cond_t handover_cond;
    int handover_closed;               /* the gateway thread has ended */
    void *zap;                         /* ZAP handler (CURVE allow-list) */
    struct zmq_curve_keys curve_keys;  /* CurveKeys: the ZAP allow-list */
    struct zmq_guard *guard;           /* relays tcp:// Binds; NULL: none */
    int nworkers;
    struct zmq_conf *conf;
    struct mk_server *srv;             /* its message-type registry */
    uint64_t tick_ms;                  /* the shortest PingFreq */
    uint64_t shares;                   /* fan-outs so far: their ids */
    size_t max_frame;
    struct mk_list blocked;            /* bindings holding back body pieces */
    uint64_t rejects[ZMQ_REJECT_COUNT];
    uint64_t last_reject_log;
    uint64_t last_framing_log;         /* framing faults: at most one a second */
    atomic_int stop;
    atomic_int release;                /* reload: give up the endpoints */
    atomic_int released;
    pthread_t thread;
    int running;
};

struct zmq_binding {
    struct zmq_node *node;
    int worker;
    uint8_t sid[ZMQ_SID_LEN];
    struct zmq_vconf *vc;              /* the site; stands for the vhost */
    uint32_t seq;                      /* the request last sent to the node */
    uint32_t held_seq;                 /* the request whose uwsgi is held */
    /* retry (spec 2.3 FIX): the request is kept until the response starts */
    zmq_msg_t packet;                  /* shares the bytes sent (refcount) */
    struct mk_list pieces;             /* body messages, incl. the end marker */
    size_t body_kept;
    int body_replayable;               /* every piece is still kept */
    int responded;                     /* a response message was forwarded */
    /* backpressure: pieces the node's queue had no room for, sent in
     * order once it drains, and everything after them; the worker stops
     * reading meanwhile */
    struct zmq_outq held;
    uint64_t unacked;                  /* body bytes sent, not yet acked */
    struct mk_list _blocked;           /* on gw->blocked while held */
    int hops;
    struct zmq_node *refused[ZMQ_MAX_HOPS];
};

/* zmq_curve.c: CURVE on every ROUTER, nodes allowed by public key */
int  zmq_curve_setup(struct zmq_gw *gw, const struct zmq_conf *conf,
                     char *err, size_t errlen);
int  zmq_curve_socket(struct zmq_gw *gw, const struct zmq_conf *conf,
                      void *router, char *err, size_t errlen);
void zmq_curve_handle(struct zmq_gw *gw);       /* one ZAP request */
/* Whether the node that sent msg (any frame of a received message) may use
 * identity id: always without Curve, else as its key's list says. */
int  zmq_curve_permits(const struct zmq_gw *gw, const zmq_msg_t *msg,
                       const char *id, size_t len);
void zmq_curve_release(struct zmq_gw *gw);

/* zmq_routers.c: creates ROUTER i (conf->endpoints[i]) in gw->routers
 * and binds it, behind the node guard where it relays; master thread. */
int  zmq_gw_bind_router(struct zmq_gw *gw, const struct zmq_conf *conf, int i,
                        char *err, size_t errlen);

/* zmq_wire.c: made by the sending thread, destroyed by the receiving one */
struct zmq_wire *zmq_wire_create(enum zmq_wire_kind kind, const uint8_t *sid);
void zmq_wire_destroy(struct zmq_wire *w);
/* FANOUT: one more recipient; 0, or -1 without memory. */
int  zmq_wire_add_sid(struct zmq_wire *w, const uint8_t *sid);

/* zmq_gw_thread.c: the gateway thread's loop (master: start, stop) */
int  zmq_gw_start(struct zmq_gw *gw, struct zmq_conf *conf,
                  struct mk_server *srv, char *err, size_t errlen);
void zmq_gw_stop(struct zmq_gw *gw);
/* Reload (master thread): the running gateway fails its sessions with 502
 * and closes its ROUTERs so the new generation can bind the endpoints. */
void zmq_gw_release_endpoints(struct zmq_gw *gw);

/* zmq_gateway.c (gateway thread): what the loop reads. A worker's message
 * (the inbox handler), one batch from ROUTER `router` (1: more left, 0:
 * EAGAIN), held body pieces sent on as their nodes take them, and a
 * binding ended with the word for its worker (NODE_GONE, NO_NODE). */
void zmq_gw_on_inbox(struct mk_channel *ch, struct mk_channel_msg *msg);
int  zmq_gw_drain_router(struct zmq_gw *gw, int router);
/* One message from node `id` on ROUTER `router`, however it arrived (its
 * ROUTER, or the node guard's own ZMTP server): `parts` are its n frames
 * after the identity, [sid, type, body] when well-formed; `body` is a
 * zmq_msg_t holding parts[2]'s bytes (NULL unless n == 3), shared with
 * the workers it goes to; `meta` is a frame libzmq received, for its
 * CURVE User-Id (NULL: none, refused when CURVE is on). Checks the
 * message (spec 1.3) and acts on it. */
void zmq_gw_node_message(struct zmq_gw *gw, int router, const void *id,
                         size_t id_len, const struct zmq_frame *parts,
                         size_t n, zmq_msg_t *body, const zmq_msg_t *meta);
void zmq_gw_flush_held(struct zmq_gw *gw);
/* A message from a node the guard serves natively (zmq_guard_message_fn;
 * ctx is the gateway). */
void zmq_gw_native_message(void *ctx, int router, const uint8_t *id,
                           size_t id_len, zmq_msg_t *parts, size_t n);
void zmq_gw_fail(struct zmq_gw *gw, struct zmq_binding *b,
                 enum zmq_wire_kind why);

/* zmq_groups.c (gateway thread): join, leave, echo, noecho, routed msg;
 * the groups themselves are mk_server's (mk_group_*), a site's zmq_vconf
 * their scope */
/* Handles a group or routing message from b's node (`body` is its last
 * frame, shared with the recipients of a routed `msg`); returns -1 when
 * the session must be destroyed (invalid group name, spec 2.3). */
int  zmq_groups_message(struct zmq_gw *gw, struct zmq_binding *b,
                        const struct zmq_node_msg *m, zmq_msg_t *body);
/* A routed type for clients (`g:chunk`, `@sid:chunk`): one message to
 * each worker that has recipients, listing them, sharing `body`. */
void zmq_groups_fanout(struct zmq_gw *gw, struct zmq_binding *from,
                       const struct zmq_node_msg *m, zmq_msg_t *body);

/* zmq_queue.c (gateway thread): [identity, sid, type, body] to node `n`,
 * never blocking. `body` (NULL: empty) is shared, not consumed or copied.
 * 0, or -1 with errno: EAGAIN when the node's queue is full (its
 * high-water mark, or NodeQueueLimit bytes not yet written out), anything
 * else when the node is gone. */
int  zmq_gw_send(struct zmq_gw *gw, struct zmq_node *n, const uint8_t *sid,
                 const char *type, zmq_msg_t *body);

/* zmq_packet.c (worker): the request's `uwsgi` packet into b (begun
 * here), with `vars` (name, value pairs ended by NULL; may be NULL) at
 * its end; 0, or -1 when it does not fit (431). */
int  zmq_request_packet(struct mk_stream *r, const char *const *vars,
                        struct mk_buf *b);

/* zmq_session.c: the worker side */
int  zmq_worker_start(struct zmq_gw *gw, struct mk_worker *w);
void zmq_worker_stop(struct zmq_gw *gw, struct mk_worker *w);
int  zmq_session_request(struct zmq_conf *conf, struct mk_stream *r,
                         struct zmq_vconf *vc);
int  zmq_session_body(struct zmq_conf *conf, struct mk_stream *r,
                      const char *data, size_t len);
void zmq_session_done(struct mk_stream *r);
void zmq_session_close(struct zmq_conf *conf, struct mk_conn *c);
int  zmq_session_open(struct zmq_conf *conf, struct zmq_vconf *vc,
                      struct mk_session *ms, struct mk_stream *r,
                      const char *const *vars);

extern const struct mk_plugin mk_plugin_zmq;
/* zmq_ini.c: the BlastBeat .ini options it writes (tremolo -b) */
extern const struct mk_bb_ini zmq_ini;

#endif
