/* _tremolo: the C runtime for Python nodes (shared declarations).
 *
 * One job per file: module.c (module, decode_uwsgi), uwsgi_walk.c (the
 * packet walker, no Python), uwsgi.c (packet -> dict), asgi.c (the ASGI
 * scope), asgi_http.c (the ASGI HTTP request cycle run eagerly), node.c
 * (sockets, ping/pong, announce, recv/send), zmtp.c (ZMTP 3.0 framing,
 * no Python), zmtp_link.c (an endpoint spoken natively), input.c
 * (wsgi.input), response.c (head encoding and response framing), wsgi.c
 * (the serve loop, start_response, write(), result iteration). */
#ifndef TREMOLO_EXT_H
#define TREMOLO_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <zmq.h>

#define TX_SID_LEN       16
#define TX_ANNOUNCE_NS   1000000000LL   /* tremolo_node.ANNOUNCE_AFTER */
#define TX_POLL_MS       100            /* stop() latency bound */

/* ---- uwsgi.c ---------------------------------------------------------- */
/* Decode a gateway uwsgi packet (spec 2.2) into a new dict of str -> str;
 * NULL with ValueError on a malformed packet. */
PyObject *tx_uwsgi_decode(const char *p, size_t len);

/* ---- asgi.c ----------------------------------------------------------- */
/* asgi_scope(env, asgi, state=None): tremolo_asgi.build_scope in C */
PyObject *tx_asgi_scope(PyObject *mod, PyObject *args);
/* The same on C arguments (env and asgi dicts, state a dict or None). */
PyObject *tx_asgi_build(PyObject *env, PyObject *state, PyObject *asgi);

/* ---- node.c ----------------------------------------------------------- */
struct tx_msg {
    zmq_msg_t frame[3];
    int       index;           /* endpoint the message came through */
};

struct tx_link;

typedef struct {
    PyObject_HEAD
    void            *ctx;      /* NULL when no endpoint uses libzmq */
    void           **socks;    /* per endpoint: a libzmq DEALER or NULL */
    struct tx_link **links;    /* per endpoint: native ZMTP or NULL */
    int              nsocks;   /* endpoints */
    int              next;     /* round-robin start */
    int             *fds;      /* ZMQ_FD per socket; epfd for a native one */
    int              epfd;     /* epoll set of the native links' sockets */
    int              linger;   /* ms, for the native links */
    int              link_err; /* a link has an error to log */
    int64_t         *heard;    /* monotonic ns of the last message per socket */
    atomic_int       stop;
    int              closed;
    pthread_mutex_t  lock;     /* socket operations: recv may run unlocked
                                * from the GIL in another thread */
    char            *scratch;  /* head + body of a one-message response */
    size_t           scratch_cap;
} TxNode;

extern PyTypeObject TxNode_Type;

/* Without the GIL: wait up to timeout_ms (-1 forever) for one message
 * that is not a ping; 1 = got one (caller closes it with tx_msg_close),
 * 0 = timeout or stop, -1 = zmq error (errno set; EINTR for a signal). */
int  tx_node_next(TxNode *n, int timeout_ms, struct tx_msg *m);
void tx_msg_close(struct tx_msg *m);
/* Without the GIL: send [sid, type, body]; 0 or -1 (errno). */
int  tx_node_send(TxNode *n, int index, const void *sid, size_t sidlen,
                  const void *type, size_t typelen,
                  const void *body, size_t bodylen);
/* With the GIL: the same, releasing it around the send; 0 or -1 with a
 * Python exception set. */
int  tx_node_send_py(TxNode *n, int index, const char *sid, const char *type,
                     const void *body, size_t bodylen);
/* Two pieces as one body frame (head + body), through n->scratch. */
int  tx_node_send2_py(TxNode *n, int index, const char *sid, const char *type,
                      const void *a, size_t alen, const void *b, size_t blen);
/* With the GIL, never waiting: 1 sent, 0 the queue is full (or another
 * thread holds the socket), -1 with a Python exception set. */
int  tx_node_try_send2(TxNode *n, int index, const char *sid,
                       const char *type, const void *a, size_t alen,
                       const void *b, size_t blen, int batch);
/* With the GIL, never waiting: 1 = a message (close it with
 * tx_msg_close), 0 = none ready, -1 = a Python exception set. */
int  tx_node_recv_nowait(TxNode *n, struct tx_msg *m);
/* (sid, type, body, index) of m, which it closes. */
PyObject *tx_msg_tuple(struct tx_msg *m);
/* With the GIL: 1 when a message may be waiting. A ZMQ_FD is
 * edge-triggered and a send may take its edge, so a loop that sends
 * outside its drain asks this after sending. */
int  tx_node_readable(TxNode *n);

/* ---- asgi_http.c ------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    TxNode   *node;
    PyObject *server;        /* tremolo_asgi.ASGINode: _send_later, _kick */
    PyObject *app, *asgi, *state, *live, *reasons, *loop, *cancelled;
    PyObject *inboxes;       /* sid -> the Inbox of its WebSocket */
    PyObject *statuses;      /* int -> "200 OK", made as codes are used */
    int       pumping;       /* inside pump(): it reads on after sends */
    int       paused;        /* set by ASGINode: not draining (backpressure),
                              * so sends are not held for a batch */
} TxEngine;

extern PyTypeObject TxEngine_Type, TxCycle_Type, TxReady_Type, TxInbox_Type;
/* an awaitable already done with `value` (a new reference; NULL passes) */
PyObject *tx_ready(PyObject *value);
/* the shared awaitable already done with None (a send's) */
PyObject *tx_ready_none(void);
/* after a send outside pump(): wake the pump if a message may wait */
int tx_engine_sent(TxEngine *e);

/* ---- asgi_ws.c -------------------------------------------------------- */
/* A `websocket` / `websocket/binary` message: put in its session's Inbox
 * (1), or not a session the engine knows (0, m untouched), -1 error. */
int tx_engine_ws_message(TxEngine *e, struct tx_msg *m);
PyObject *tx_engine_ws_send(TxEngine *e, PyObject *args);

/* ---- input.c ---------------------------------------------------------- */
extern PyTypeObject TxInput_Type;
/* A wsgi.input over body (a bytes object, referenced). */
PyObject *tx_input_new(PyObject *body);

/* ---- response.c ------------------------------------------------------- */
enum tx_mode { TX_MODE_UNSET, TX_MODE_LENGTH, TX_MODE_CHUNKED, TX_MODE_CLOSE,
               TX_MODE_NONE };
enum tx_proto { TX_PROTO_OTHER, TX_PROTO_10, TX_PROTO_11 };

typedef struct TxResponse TxResponse;

/* How a response's messages leave: tx_resp_emit_wait (WSGI: waits for a
 * full queue without the GIL) or the ASGI cycle's (never waits). `b` is
 * appended to `a` in one body frame when blen > 0. 0, or -1 with a Python
 * exception set. */
typedef int (*tx_emit_fn)(TxResponse *r, const char *type, const void *a,
                          size_t alen, const void *b, size_t blen);

struct TxResponse {
    PyObject_HEAD
    TxNode      *node;         /* borrowed: lives as long as the loop */
    char         sid[TX_SID_LEN];
    int          index;
    int          head_method;  /* REQUEST_METHOD is HEAD */
    enum tx_proto proto;
    int          client_keepalive;
    PyObject    *status;       /* str or NULL */
    PyObject    *headers;      /* list or NULL */
    int          sent_headers; /* the head is decided (and maybe held) */
    int          head_flushed; /* the head went out */
    enum tx_mode mode;
    int          persistent;
    char        *head;         /* encoded head, held for one message */
    size_t       head_len;
    size_t       head_cap;
    int          active;       /* 0 once the request is over */
    tx_emit_fn   emit;
};

extern PyTypeObject TxResponse_Type;

/* Decide the framing, encode the head and hold it; known < 0: unknown. */
int  tx_resp_send_headers(TxResponse *r, Py_ssize_t known);
/* One body piece per the framing (head + piece in one message if held). */
int  tx_resp_send(TxResponse *r, const void *data, size_t len);
int  tx_resp_flush_head(TxResponse *r);
int  tx_resp_finish(TxResponse *r);
void tx_resp_reset(TxResponse *r);
int  tx_resp_emit_wait(TxResponse *r, const char *type, const void *a,
                       size_t alen, const void *b, size_t blen);
/* The request facts the framing needs: HEAD, the protocol, and whether
 * the client keeps the connection (raw values, NULL when absent). */
void tx_resp_request(TxResponse *r, const char *method, Py_ssize_t mlen,
                     const char *proto, Py_ssize_t plen,
                     const char *conn, Py_ssize_t clen);
int  tx_token_in(const char *value, Py_ssize_t len, const char *token);

/* ---- wsgi.c ----------------------------------------------------------- */
PyObject *tx_serve_wsgi(TxNode *n, PyObject *args, PyObject *kwds);

/* ---- shared constants (module.c) -------------------------------------- */
extern const char *tx_reason(int code);

#endif
