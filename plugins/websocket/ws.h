#ifndef TREMOLO_WS_H
#define TREMOLO_WS_H

/*
 * The websocket plugin: RFC 6455 (and RFC 7692 permessage-deflate) at the
 * edge. ws.c claims upgrade requests at stage 20 and writes the 101 when
 * the content handler (the zmq gateway) accepts; ws_conn.c is the
 * protocol handler the connection then belongs to. Nodes see messages
 * only (spec: `websocket`, `websocket/binary`, groups, `@sid`).
 */
#include <stdatomic.h>
#include <stdint.h>

#include "mk_core/mk_buf.h"
#include "mk_server/mk_plugin.h"
#include "plugins/websocket/ws_deflate.h"
#include "plugins/websocket/ws_frame.h"
#include "plugins/websocket/ws_utf8.h"

/* What one connection lives by: websocket.conf, overridden by its site. */
struct ws_settings {
    uint64_t max_message;              /* MaxMessageSize: 1009 above */
    uint64_t ping_interval;            /* ms of client silence; 0: never */
    uint64_t idle_timeout;             /* ms of client silence; 0: never */
    uint64_t send_queue;               /* SendQueueLimit, bytes */
    uint64_t close_timeout;            /* ms to wait for the close reply */
    int slow_reader_code;              /* 1013 or 1008 */
    int binary_type;                   /* 0: `websocket`, 1: `websocket/binary` */
    int deflate;                       /* permessage-deflate offered */
    struct ws_deflate_policy policy;
    uint64_t deflate_memory;           /* the site's zlib budget */
    int accept_node;                   /* Accept node: the 101 waits for it */
};

/* [WEBSOCKET] in websocket.conf, and in a site file, where every key left
 * out holds websocket.conf's value (MK_CONF_INHERIT). */
struct ws_conf {
    uint64_t max_message, ping_interval, idle_timeout, send_queue;
    uint64_t close_timeout, deflate_memory;
    int slow_reader, binary_type, deflate, context_takeover, accept_node;
    long long window_bits, mem_level;
    struct ws_settings set;            /* resolved by the check */
    atomic_size_t deflate_used;        /* zlib memory its connections hold
                                        * (globally: sites without their own) */
};

/* A connection after the 101 (ws_conn.c). Small on purpose: an idle
 * WebSocket holds this and nothing else of ours. */
struct ws_conn {
    struct mk_conn *c;
    const struct ws_settings *set;
    atomic_size_t *deflate_used;       /* the budget it counts against */
    size_t deflate_reserved;
    struct ws_deflate *deflate;        /* NULL: not negotiated */
    struct mk_buf msg;                 /* a message spanning frames */
    struct ws_frame f;                 /* the frame being read */
    uint64_t frame_got;                /* its payload bytes read so far */
    uint64_t last_rx, last_ping;       /* ms */
    struct ws_utf8 utf8;
    uint8_t in_frame;                  /* f is valid, payload pending */
    uint8_t msg_op;                    /* TEXT/BINARY being assembled, or 0 */
    uint8_t msg_deflated;              /* RSV1 on its first frame */
    uint8_t closing;                   /* our close frame is queued */
    uint8_t discard;                   /* closing: drop the client's data */
};

/* ws_conn.c */
extern const struct mk_proto ws_proto;
struct ws_conn *ws_conn_create(struct mk_conn *c, const struct ws_settings *set,
                               struct ws_deflate *deflate,
                               atomic_size_t *deflate_used, size_t reserved);
void ws_on_node_message(void *conf, struct mk_session *s, const char *type,
                        const void *body, size_t len, uint64_t share);
/* Worker exit: drops the worker's last broadcast frame. */
void ws_worker_release(void);

extern const struct mk_plugin mk_plugin_websocket;

#endif
