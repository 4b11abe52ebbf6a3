#ifndef ZMQ_PROTO_H
#define ZMQ_PROTO_H

/*
 * The I/O-free half of the zmq plugin: the BlastBeat-compatible wire formats
 * (docs: /work/shared/spec/zmq-gateway-protocol.md, "spec" below).
 *
 *   zmq_uwsgi.c  the `uwsgi` packet sent to nodes (spec 2.2): builder,
 *                header-name conversion and a strict decoder.
 *   zmq_msg.c    what a node sends us (spec 1.3, 2.3, 3): frame checks,
 *                routing prefix split, type lookup, and the parser for the
 *                response head carried by a `headers` message.
 *
 * Nothing here allocates except the builder (through mk_buf). Every pointer
 * in an output struct is borrowed from the caller's input.
 */
#include <stddef.h>

#include "mk_core/mk_buf.h"

/* ---- uwsgi packet (spec 2.2) ------------------------------------------ */

/* SIZE is a u16 holding the whole packet length (header included), so a
 * packet can never be longer than this. */
#define ZMQ_UWSGI_MAX        65535
#define ZMQ_UWSGI_HEAD_LEN   4

#define ZMQ_UWSGI_ETOOBIG    (-1)   /* the packet would pass ZMQ_UWSGI_MAX: 431 */
#define ZMQ_UWSGI_ENOMEM     (-2)   /* allocation failed: 503 */

/* The packet occupies the whole buffer: begin empties `b` (keeping its
 * memory) and writes the 4-byte header placeholder. 0 or ZMQ_UWSGI_ENOMEM. */
int zmq_uwsgi_begin(struct mk_buf *b);
/* Appends one key/value pair. On error the buffer is unchanged. */
int zmq_uwsgi_add(struct mk_buf *b, const char *k, size_t kl,
                  const char *v, size_t vl);
/* Same, for NUL-terminated strings. */
int zmq_uwsgi_add_str(struct mk_buf *b, const char *k, const char *v);
/* Fills the header: modifier1 = 0, SIZE = b->len (little-endian, the
 * BlastBeat quirk: header included), modifier2 = 0. -1 if b is not a packet
 * begun with zmq_uwsgi_begin or is too long. */
int zmq_uwsgi_finish(struct mk_buf *b);

/* "HTTP_" + the name upper-cased with '-' turned into '_'. Returns the key
 * length, or 0 when the header must be dropped: empty name, a name holding
 * '_' (X_Forwarded_For would spoof X-Forwarded-For, spec 2.2 FIX), a name
 * starting with ':' (never emit HTTP_:...), or a key longer than outlen. */
size_t zmq_uwsgi_header_key(const char *name, size_t len,
                            char *out, size_t outlen);

typedef int (*zmq_uwsgi_var_cb)(void *ctx, const char *k, size_t kl,
                                const char *v, size_t vl);
/* Strict decoder: modifiers 0, SIZE == len, every length in bounds, nothing
 * after the last pair. Calls on_var (may be NULL) per pair in order.
 * Returns 0, -1 when malformed (then on_var may already have run for the
 * leading pairs), or the first non-zero value on_var returned. */
int zmq_uwsgi_parse(const char *pkt, size_t len, zmq_uwsgi_var_cb on_var,
                    void *ctx);

/* ---- node messages (spec 1.3, 2.3, 3) --------------------------------- */

#define ZMQ_SID_LEN          16
#define ZMQ_GROUP_MAX        64
#define ZMQ_IDENTITY_MAX     255    /* libzmq's routing-id limit */

enum zmq_msg_type {
    ZMQ_MSG_UNKNOWN = 0,            /* ignored after acceptance (spec 1.3/8) */
    ZMQ_MSG_PONG,
    ZMQ_MSG_HEADERS,
    ZMQ_MSG_BODY,
    ZMQ_MSG_CHUNK,
    ZMQ_MSG_END,
    ZMQ_MSG_WEBSOCKET,
    ZMQ_MSG_WEBSOCKET_BINARY,       /* `websocket/binary`: spec 2.3 FIX */
    ZMQ_MSG_WEBSOCKET_CLOSE,        /* close code + reason, both ways */
    ZMQ_MSG_RETRY,
    ZMQ_MSG_MSG,
    ZMQ_MSG_JOIN,
    ZMQ_MSG_LEAVE,
    ZMQ_MSG_NOECHO,
    ZMQ_MSG_ECHO,
    ZMQ_MSG_CACHE,
    ZMQ_MSG_FRAGCACHE,
    ZMQ_MSG_FRAG,
    ZMQ_MSG_PUSH,
    ZMQ_MSG_PIPE,
    ZMQ_MSG_SIO_EVENT,
    ZMQ_MSG_SIO_MSG,
    ZMQ_MSG_SIO_JSON,
    ZMQ_MSG_SIO_END,
    ZMQ_MSG_SIO_CONNECT,            /* spec 7.8: both ways */
    ZMQ_MSG_SIO_CONNECT_ERROR,
    ZMQ_MSG_SIO_ACK,
    ZMQ_MSG_SIO_DISCONNECT,         /* gateway to node */
    ZMQ_MSG_UWSGI,                  /* known, and ignored from a node */
    ZMQ_MSG_TYPE_COUNT
};

/* Exact, case-sensitive match of a type without its route. */
enum zmq_msg_type zmq_msg_type(const char *t, size_t len);
/* `headers`, `body`, `chunk`, `end`: the HTTP response types the gateway
 * applies itself; every other type belongs to a plugin (or is dropped). */
int zmq_msg_type_is_http(enum zmq_msg_type type);
/* The wire name ("websocket"), "unknown" for ZMQ_MSG_UNKNOWN. */
const char *zmq_msg_type_name(enum zmq_msg_type type);

enum zmq_route_kind {
    ZMQ_ROUTE_NONE = 0,             /* no colon: act on the sender's session */
    ZMQ_ROUTE_GROUP,                /* NAME:TYPE */
    ZMQ_ROUTE_SID                   /* @<16 raw bytes>:TYPE */
};

struct zmq_route {
    enum zmq_route_kind kind;
    const char *name;               /* group name, or the 16 sid bytes */
    size_t name_len;
    const char *type;               /* the type after the route */
    size_t type_len;
};

/* Splits a type frame at its LAST colon (spec 3; not BlastBeat's
 * off-by-one). 0 with *out filled, or -1 for an invalid route: empty type
 * after the colon, '@' route not exactly 17 bytes, group name empty, longer
 * than 64 bytes or starting with '@'. */
int zmq_msg_route(const char *type, size_t len, struct zmq_route *out);

/* A group name as `join`/`leave`/`echo` take it: 1-64 bytes, no leading '@'. */
int zmq_group_name_is_valid(const char *name, size_t len);

/* Why a message from a node was dropped. The first reasons come from
 * zmq_msg_check; the later ones are for the caller's session lookups, so
 * one counter array indexed by this enum covers every rejection. */
enum zmq_reject {
    ZMQ_REJECT_NONE = 0,            /* accepted */
    ZMQ_REJECT_FRAME_COUNT,         /* not exactly 4 frames */
    ZMQ_REJECT_FRAME_SIZE,          /* a frame over the size limit */
    ZMQ_REJECT_IDENTITY,            /* identity frame empty or > 255 bytes */
    ZMQ_REJECT_SID,                 /* sid frame not 16 bytes (non-pong) */
    ZMQ_REJECT_ROUTE,               /* malformed routing prefix */
    ZMQ_REJECT_UNKNOWN_SID,         /* caller: no such session */
    ZMQ_REJECT_UNBOUND,             /* caller: session has no node yet */
    ZMQ_REJECT_WRONG_NODE,          /* caller: other node or other ROUTER */
    ZMQ_REJECT_CURVE_IDENTITY,      /* caller: not an identity of its key */
    ZMQ_REJECT_COUNT
};

const char *zmq_reject_name(enum zmq_reject reason);

struct zmq_frame {
    const void *data;
    size_t len;
};

/* A received message, split and checked. */
struct zmq_node_msg {
    const char *identity;
    size_t identity_len;
    const char *sid;                /* ZMQ_SID_LEN bytes; NULL for pong */
    const char *body;
    size_t body_len;
    int is_pong;                    /* health answer: type frame is "pong" */
    struct zmq_route route;
    enum zmq_msg_type type;         /* of route.type */
};

/* Spec 1.3 steps 2-4 on the frames [identity, sid, type, body]: exactly 4
 * frames, none above max_frame bytes (0: no limit), a plausible identity,
 * then `pong` exactly (no prefix, any sid) or a 16-byte sid and a valid
 * route. Fills *out only when it returns ZMQ_REJECT_NONE. A routed type
 * such as "g:pong" is NOT a health answer (is_pong stays 0). */
enum zmq_reject zmq_msg_check(const struct zmq_frame *frames, size_t n,
                              size_t max_frame, struct zmq_node_msg *out);

/* ---- the response head of a `headers` message (spec 2.3) -------------- */

struct zmq_resp_head {
    int status;                     /* 100..599 */
    int minor;                      /* HTTP/1.<minor>, 0 or 1 */
    long long content_length;       /* -1 when absent */
    int n_headers;
    int conn_close;                 /* Connection: close */
    int conn_keep_alive;            /* Connection: keep-alive */
    int chunked;                    /* last transfer coding is chunked */
    int non_persistent;             /* close after the response (spec 2.3) */
    size_t head_len;                /* bytes up to and including CRLFCRLF */
};

/* Parses `HTTP/1.x SSS reason` CRLF, then up to max_headers `token: value`
 * CRLF lines, then the CRLF that ends the head. Line ends must be exactly
 * CRLF: a bare LF, a bare CR, an obs-fold continuation line, a missing
 * final blank line, a duplicate or non-numeric Content-Length, or
 * Content-Length together with Transfer-Encoding all give -1 (the gateway
 * answers 502). Bytes after the head are allowed; head_len says where the
 * head ends. 0 on success. */
int zmq_resp_head_parse(const char *buf, size_t len, int max_headers,
                        struct zmq_resp_head *out);

/* What a head grows by at most in zmq_resp_head_close. */
#define ZMQ_RESP_HEAD_CLOSE_EXTRA (sizeof("Connection: close\r\n") - 1)

/* For a head zmq_resp_head_parse accepted with head_len == len: writes to
 * `out` (len + ZMQ_RESP_HEAD_CLOSE_EXTRA bytes) the same head with every
 * Connection field replaced by one `Connection: close`, for a response
 * after which the server closes. Returns the new length. */
size_t zmq_resp_head_close(const char *head, size_t len, char *out);

/* For a head zmq_resp_head_parse accepted, on a protocol that cannot carry
 * it verbatim: calls on_field for each field but the hop-by-hop ones
 * (Connection, Keep-Alive, Transfer-Encoding, Upgrade, Proxy-Connection)
 * and Content-Length, which the protocol frames itself; the value without
 * surrounding blanks. Stops at a non-zero return, which it returns. */
int zmq_resp_head_fields(const char *head, size_t len,
                         int (*on_field)(void *ctx, const char *name,
                                         size_t nl, const char *value,
                                         size_t vl),
                         void *ctx);

#endif
