#ifndef ZMQ_GUARD_H
#define ZMQ_GUARD_H

/*
 * The node guard: Tremolo listens on a NULL-mechanism `tcp://` Bind itself
 * and relays each node connection to its ROUTER, which listens on a
 * private abstract Unix socket instead (`ipc://@tremolo-PID-N`, accepting
 * this process only). On the way in it reads the ZMTP frame headers
 * (zmq_zmtp.h) and closes a connection that announces a frame above
 * MaxFrameSize, a command frame above 8 KiB or a message of more than 3
 * frames, before libzmq holds those bytes: libzmq keeps an unfinished
 * multipart message whole and out of the application's sight, so it
 * cannot bound one itself. libzmq still speaks all of ZMTP.
 *
 * It also reads the identity each peer claims in its first frame and
 * warns (once a minute per endpoint and identity) when another relayed
 * connection to the same endpoint holds it: the ROUTER, without
 * ZMQ_ROUTER_HANDOVER, would never read the second peer.
 *
 * CURVE endpoints are not relayed: a peer without an allowed key never
 * gets past the handshake (the ZAP handler refuses it) and ZMQ_MAXMSGSIZE
 * bounds each handshake frame; after it, the MORE flag travels encrypted.
 * `ipc://` endpoints are left to their file mode.
 *
 * Threads: create, listen and destroy run in the master thread while the
 * gateway thread is not running; start and close run in the thread whose
 * event loop carries the relay (the gateway thread).
 */
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "mk_core/mk_event.h"

/* The listen queue of a relayed Bind and of its ROUTER's private
 * endpoint: nodes reconnecting together after a reload must not find
 * either full (the kernel caps it at somaxconn). */
#define ZMQ_GUARD_BACKLOG 1024

struct zmq_guard;

enum zmq_guard_endpoint {
    ZMQ_GUARD_REFUSED = -1,            /* a tcp:// form the guard cannot bind */
    ZMQ_GUARD_DIRECT = 0,              /* not tcp://: libzmq binds it */
    ZMQ_GUARD_TCP = 1,                 /* relayed */
};

/* Classifies a Bind value; for ZMQ_GUARD_REFUSED `why` says what to write
 * instead. Accepted: tcp://ADDRESS:PORT where ADDRESS is `*` (every IPv4
 * interface), an IPv4 address, an IPv6 address in brackets or a host name
 * (its first IPv4 address, as libzmq binds it); PORT is a fixed number. */
enum zmq_guard_endpoint zmq_guard_endpoint_kind(const char *endpoint,
                                                char *why, size_t whylen);

/* frame_max: MaxFrameSize; conns_max: NodeConnections, the relayed
 * connections open at once (past it a new one is closed at accept). NULL
 * when out of memory. */
struct zmq_guard *zmq_guard_create(uint64_t frame_max, size_t conns_max);
/*
 * `NodeGuard native`: the guard terminates each node connection itself
 * (zmq_zmtps.h) instead of relaying it to the ROUTER, and hands every
 * whole message to `message`: node `id` on ROUTER `router`, its n frames
 * (1..3, [sid, type, body] when well-formed) as messages the callee may
 * share (zmq_msg_copy) but not close. Called before zmq_guard_listen.
 */
typedef void (*zmq_guard_message_fn)(void *ctx, int router,
                                     const uint8_t *id, size_t id_len,
                                     zmq_msg_t *parts, size_t n);
void zmq_guard_set_native(struct zmq_guard *g, zmq_guard_message_fn fn,
                          void *ctx);
/* Writes what native connections buffered (gateway thread, before it
 * waits: the end of each batch). */
void zmq_guard_flush(struct zmq_guard *g);
/* Reads on from native connections that used their read budget in the
 * last wake-up; 1 while some still have more (the loop must not sleep). */
int  zmq_guard_resume(struct zmq_guard *g);
/* Whether ROUTER `router`'s Bind is served natively (gateway thread). */
int  zmq_guard_is_native(const struct zmq_guard *g, int router);
/* [sid, type, body] to node `id` connected natively to ROUTER `router`:
 * buffered, written at zmq_guard_flush or when the buffer passes
 * 64 KiB. 0, or -1 with errno EHOSTUNREACH (no such connection, as
 * ROUTER_MANDATORY says it) or EAGAIN (bytes not yet written out exceed
 * `limit` with this message: the node's NodeQueueLimit). */
int  zmq_guard_send(struct zmq_guard *g, int router, const void *id,
                    size_t id_len, const void *sid, size_t sid_len,
                    const char *type, const void *body, size_t body_len,
                    size_t limit);

/* Listens on a tcp:// endpoint for ROUTER `router` and writes the private ipc:// endpoint its
 * ROUTER must bind to into `ipc`. -1 with errno set (EADDRINUSE...), or
 * with `err` filled for a name that does not resolve. */
int  zmq_guard_listen(struct zmq_guard *g, const char *endpoint, int router,
                      char *ipc, size_t ipclen, char *err, size_t errlen);
/* Starts accepting in `loop`. */
int  zmq_guard_start(struct zmq_guard *g, struct mk_event_loop *loop);
/* Closes the listeners and every relayed connection (reload, stop): nodes
 * reconnect by themselves. Safe to call more than once. */
void zmq_guard_close(struct zmq_guard *g);
void zmq_guard_destroy(struct zmq_guard *g);

#endif
