/* _tremolo.Node: one DEALER per endpoint with the node name as
 * ZMQ_IDENTITY, the unsolicited pong at start, pong for every ping, a pong
 * again after ANNOUNCE_AFTER of silence from a front end (as
 * tremolo_node.Node does), and the [sid, type, body] receive and send.
 * A tcp:// or ipc:// endpoint is spoken natively in the calling thread
 * (zmtp_link.c); other forms, or all with TREMOLO_NODE_LIBZMQ=1, use a
 * libzmq DEALER. */
#include "tremolo_ext.h"
#include "zmtp_link.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum node_mode {
    NODE_SEND_NOW,             /* never wait: EAGAIN when full */
    NODE_SEND_WAIT,            /* libzmq waits; a native link says EAGAIN */
    NODE_SEND_FORCE,           /* a pong: libzmq waits; native never refuses */
    NODE_SEND_BATCH            /* as NOW; native may hold it for the batch */
};

static const void *node_join(TxNode *n, const void *a, size_t alen,
                             const void *b, size_t blen, size_t *len);
static void node_log(TxNode *n);
static void node_start(TxNode *n);

static int64_t node_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A DEALER takes or refuses a message at its first frame (its
 * high-water mark counts whole messages), so the other two never wait.
 * 0, or -1 with errno (EAGAIN: the queue is full). Lock held. */
static int node_send_locked(TxNode *n, int index, const void *sid,
                            size_t sidlen, const void *type, size_t typelen,
                            const void *body, size_t bodylen,
                            enum node_mode mode)
{
    void *s = n->socks[index];
    int first = mode == NODE_SEND_NOW || mode == NODE_SEND_BATCH
                ? ZMQ_DONTWAIT : 0;

    if (n->links[index] != NULL) {
        int rc = tx_link_send(n->links[index], sid, sidlen, type, typelen,
                              body, bodylen,
                              mode == NODE_SEND_FORCE ? TX_LINK_FORCE
                              : mode == NODE_SEND_BATCH ? TX_LINK_BATCH : 0);
        if (rc == 0) {
            errno = EAGAIN;
        }
        return rc == 1 ? 0 : -1;
    }

    if (zmq_send(s, sid, sidlen, ZMQ_SNDMORE | first) < 0 ||
        zmq_send(s, type, typelen, ZMQ_SNDMORE) < 0 ||
        zmq_send(s, body, bodylen, 0) < 0) {
        return -1;
    }
    return 0;
}

/*
 * With the GIL held: the send, if it can go at once. Letting the GIL go
 * and taking it back costs more than a send that does not wait (a
 * hello-world ASGI node sends twice per request), so the GIL is released
 * only for a send that must wait: the node's queue is full, or another
 * thread holds the socket lock (it may wait in recv for 100 ms).
 * 1: sent; 0: not tried or would wait; -1: error (errno).
 */
static int node_send_now(TxNode *n, int index, const void *sid,
                         size_t sidlen, const void *type, size_t typelen,
                         const void *body, size_t bodylen,
                         enum node_mode mode)
{
    int rc;

    if (pthread_mutex_trylock(&n->lock) != 0) {
        return 0;
    }
    if (n->closed) {
        pthread_mutex_unlock(&n->lock);
        errno = ENOTSOCK;
        return -1;
    }
    rc = node_send_locked(n, index, sid, sidlen, type, typelen, body,
                          bodylen, mode);
    pthread_mutex_unlock(&n->lock);
    if (rc < 0) {
        return errno == EAGAIN ? 0 : -1;
    }
    return 1;
}

/* With the GIL held: send, letting the GIL go only to wait. 0, or -1
 * with errno. `mode` NODE_SEND_BATCH lets a native link hold it while
 * input already read waits (the caller's loop drains to the end). */
static int node_send_gil(TxNode *n, int index, const void *sid,
                         size_t sidlen, const void *type, size_t typelen,
                         const void *body, size_t bodylen,
                         enum node_mode mode)
{
    int rc = node_send_now(n, index, sid, sidlen, type, typelen, body,
                           bodylen, mode);

    if (rc != 0) {
        return rc > 0 ? 0 : -1;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = tx_node_send(n, index, sid, sidlen, type, typelen, body, bodylen);
    Py_END_ALLOW_THREADS
    return rc;
}

int tx_node_send(TxNode *n, int index, const void *sid, size_t sidlen,
                 const void *type, size_t typelen,
                 const void *body, size_t bodylen)
{
    int rc;

    pthread_mutex_lock(&n->lock);
    for (;;) {
        struct tx_link *l;
        struct pollfd pfd;
        int wait;
        int64_t now;

        if (n->closed) {
            pthread_mutex_unlock(&n->lock);
            errno = ENOTSOCK;
            return -1;
        }
        rc = node_send_locked(n, index, sid, sidlen, type, typelen, body,
                              bodylen, NODE_SEND_WAIT);
        l = n->links[index];
        if (rc == 0 || errno != EAGAIN || l == NULL) {
            break;
        }
        /* a native link's queue is full: wait for it to move */
        now = node_now();
        tx_link_drive(l, now);
        tx_link_wait(l, now, &pfd.fd, &pfd.events, &wait);
        pfd.revents = 0;
        pthread_mutex_unlock(&n->lock);
        poll(pfd.fd >= 0 ? &pfd : NULL, pfd.fd >= 0 ? 1 : 0, wait);
        pthread_mutex_lock(&n->lock);
        /* the loop's top looks at closed first: close() may have freed l */
    }
    pthread_mutex_unlock(&n->lock);
    return rc;
}

int tx_node_send_py(TxNode *n, int index, const char *sid, const char *type,
                    const void *body, size_t bodylen)
{
    node_log(n);
    /* the WSGI loop's responses: it drains with tx_node_next, whose end
     * of input writes the batch */
    if (node_send_gil(n, index, sid, TX_SID_LEN, type, strlen(type), body,
                      bodylen, NODE_SEND_BATCH) < 0) {
        PyErr_Format(PyExc_OSError, "zmq_send: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int tx_node_send2_py(TxNode *n, int index, const char *sid, const char *type,
                     const void *a, size_t alen, const void *b, size_t blen)
{
    size_t len;
    const void *data = node_join(n, a, alen, b, blen, &len);

    return data == NULL ? -1 : tx_node_send_py(n, index, sid, type, data, len);
}

/* head + body in n->scratch, or a alone when blen is 0 */
static const void *node_join(TxNode *n, const void *a, size_t alen,
                             const void *b, size_t blen, size_t *len)
{
    size_t need = alen + blen;

    *len = alen;
    if (blen == 0) {
        return a;
    }
    if (need > n->scratch_cap) {
        size_t cap = need < 4096 ? 4096 : need;
        char *p = realloc(n->scratch, cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        n->scratch = p;
        n->scratch_cap = cap;
    }
    memcpy(n->scratch, a, alen);
    memcpy(n->scratch + alen, b, blen);
    *len = need;
    return n->scratch;
}

int tx_node_try_send2(TxNode *n, int index, const char *sid,
                      const char *type, const void *a, size_t alen,
                      const void *b, size_t blen, int batch)
{
    size_t len;
    const void *data = node_join(n, a, alen, b, blen, &len);
    int rc;

    if (data == NULL) {
        return -1;
    }
    /* the ASGI engine's sends, made while it drains: they may leave
     * together at the end of the batch */
    rc = node_send_now(n, index, sid, TX_SID_LEN, type, strlen(type), data,
                       len, batch ? NODE_SEND_BATCH : NODE_SEND_NOW);
    if (rc < 0) {
        PyErr_Format(PyExc_OSError, "zmq_send: %s", zmq_strerror(errno));
    }
    return rc;
}

void tx_msg_close(struct tx_msg *m)
{
    for (int i = 0; i < 3; i++) {
        zmq_msg_close(&m->frame[i]);
    }
}

/* A whole message m from socket i: a ping is answered here and dropped
 * (0); anything else is the caller's (1). Lock held. */
static int node_deliver(TxNode *n, int i, struct tx_msg *m)
{
    if (zmq_msg_size(&m->frame[1]) == 4 &&
        memcmp(zmq_msg_data(&m->frame[1]), "ping", 4) == 0) {
        node_send_locked(n, i, zmq_msg_data(&m->frame[0]),
                         zmq_msg_size(&m->frame[0]), "pong", 4, "", 0,
                         NODE_SEND_FORCE);
        tx_msg_close(m);
        return 0;
    }
    m->index = i;
    return 1;
}

/* One whole message from socket i, or 0 when none is ready. Messages that
 * are not 3 frames are dropped; pings are answered here. Lock held. */
static int node_try(TxNode *n, int i, struct tx_msg *m, int64_t now)
{
    void *s = n->socks[i];
    zmq_msg_t extra;
    int more, nframes;

    if (n->links[i] != NULL) {
        while (tx_link_recv(n->links[i], m, &n->heard[i], now) > 0) {
            if (node_deliver(n, i, m)) {
                return 1;
            }
        }
        return 0;
    }
    for (;;) {
        for (int k = 0; k < 3; k++) {
            zmq_msg_init(&m->frame[k]);
        }
        nframes = 0;
        more = 1;
        while (more) {
            zmq_msg_t *f = nframes < 3 ? &m->frame[nframes] : &extra;
            if (nframes >= 3) {
                zmq_msg_init(&extra);
            }
            if (zmq_msg_recv(f, s, ZMQ_DONTWAIT) < 0) {
                if (nframes >= 3) {
                    zmq_msg_close(&extra);
                }
                tx_msg_close(m);
                if (nframes == 0 && (errno == EAGAIN || errno == EINTR)) {
                    return 0;
                }
                return nframes == 0 ? -1 : 0;
            }
            more = zmq_msg_more(f);
            if (nframes >= 3) {
                zmq_msg_close(&extra);
            }
            nframes++;
        }
        n->heard[i] = now;
        if (nframes != 3) {
            tx_msg_close(m);           /* the protocol is exactly 3 frames */
            continue;
        }
        if (node_deliver(n, i, m)) {
            return 1;
        }
    }
}

static void node_announce(TxNode *n, int64_t now)
{
    for (int i = 0; i < n->nsocks; i++) {
        if (now - n->heard[i] >= TX_ANNOUNCE_NS) {
            node_send_locked(n, i, "", 0, "pong", 4, "", 0, NODE_SEND_FORCE);
            n->heard[i] = now;
        }
    }
}

/* Every native link: a due reconnect, the handshake, queued output. */
static void node_drive(TxNode *n, int64_t now)
{
    for (int i = 0; i < n->nsocks; i++) {
        if (n->links[i] != NULL) {
            tx_link_drive(n->links[i], now);
        }
    }
}

/* With the GIL: say once why a native link dropped its connection. */
static void node_log(TxNode *n)
{
    char lines[4][200];
    int count = 0;

    if (!n->link_err) {
        return;
    }
    pthread_mutex_lock(&n->lock);
    n->link_err = 0;
    for (int i = 0; i < n->nsocks && n->links != NULL; i++) {
        const char *e = n->links[i] ? tx_link_error(n->links[i]) : NULL;
        if (e != NULL && count < 4) {
            snprintf(lines[count++], sizeof(lines[0]),
                     "tremolo node: %.80s: %.80s; reconnecting\n",
                     tx_link_endpoint(n->links[i]), e);
        }
    }
    pthread_mutex_unlock(&n->lock);
    for (int k = 0; k < count; k++) {
        PySys_WriteStderr("%s", lines[k]);
    }
}

static int node_nowait(TxNode *n, struct tx_msg *m)
{
    int64_t now = node_now();
    int rc = 0;

    pthread_mutex_lock(&n->lock);
    if (n->closed) {
        pthread_mutex_unlock(&n->lock);
        return 0;
    }
    node_drive(n, now);
    node_announce(n, now);
    for (int k = 0; k < n->nsocks; k++) {
        int i = (n->next + k) % n->nsocks;
        rc = node_try(n, i, m, now);
        if (rc != 0) {
            if (rc > 0) {
                n->next = (i + 1) % n->nsocks;   /* fairness between fronts */
            }
            break;
        }
    }
    if (rc == 0) {
        for (int i = 0; i < n->nsocks; i++) {
            if (n->links[i] != NULL) {
                tx_link_uncork(n->links[i]);     /* the batch is over */
            }
        }
    }
    pthread_mutex_unlock(&n->lock);
    return rc;
}

/* Something may be readable on a socket whose ZMQ_FD edge was consumed
 * by a send (ZMQ_EVENTS is exact). Lock held. */
static int node_pending(TxNode *n)
{
    for (int i = 0; i < n->nsocks; i++) {
        int ev = 0;
        size_t len = sizeof(ev);

        if (n->links[i] != NULL) {
            if (tx_link_buffered(n->links[i])) {
                return 1;
            }
            continue;
        }
        if (zmq_getsockopt(n->socks[i], ZMQ_EVENTS, &ev, &len) == 0 &&
            (ev & ZMQ_POLLIN)) {
            return 1;
        }
    }
    return 0;
}

int tx_node_readable(TxNode *n)
{
    int rc;

    if (pthread_mutex_trylock(&n->lock) != 0) {
        return 1;                      /* another thread is on it: look */
    }
    rc = n->closed ? 0 : node_pending(n);
    pthread_mutex_unlock(&n->lock);
    return rc;
}

int tx_node_next(TxNode *n, int timeout_ms, struct tx_msg *m)
{
    int64_t deadline = timeout_ms < 0 ? 0
                       : node_now() + (int64_t) timeout_ms * 1000000LL;
    struct pollfd fds[16];
    struct pollfd *pf = n->nsocks <= 16 ? fds
                        : malloc(sizeof(*pf) * (size_t) n->nsocks);
    int rc, nfds;

    if (pf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        int wait = TX_POLL_MS, busy;

        rc = node_nowait(n, m);
        if (rc != 0 || atomic_load(&n->stop)) {
            break;
        }
        if (timeout_ms >= 0) {
            int64_t left = deadline - node_now();
            if (left <= 0) {
                rc = 0;
                break;
            }
            if (left / 1000000LL < wait) {
                wait = (int) (left / 1000000LL) + 1;
            }
        }
        /* poll(2) on the ZMQ_FDs, not zmq_poll: it touches no socket, so a
         * send from another thread may run meanwhile. */
        pthread_mutex_lock(&n->lock);
        busy = n->closed ? -1 : node_pending(n);
        nfds = n->nsocks;
        for (int i = 0; i < nfds; i++) {
            pf[i].fd = n->fds[i];
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        pthread_mutex_unlock(&n->lock);
        if (busy < 0) {
            rc = 0;
            break;
        }
        if (busy) {
            continue;
        }
        if (poll(pf, (nfds_t) nfds, wait) < 0 && errno == EINTR) {
            rc = -1;
            break;
        }
    }
    if (pf != fds) {
        free(pf);
    }
    return rc;
}

/* ---- Python type ------------------------------------------------------ */

static int Node_init(TxNode *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"identity", "endpoints", "linger_ms", NULL};
    PyObject *identity, *endpoints, *seq = NULL, *idb = NULL;
    int linger = 1000;
    Py_ssize_t count;
    char *id;
    Py_ssize_t idlen;
    const char *env = getenv("TREMOLO_NODE_LIBZMQ");
    int use_libzmq = env != NULL && strcmp(env, "1") == 0;

    if (self->socks != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Node is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|i:Node", kwlist,
                                     &identity, &endpoints, &linger)) {
        return -1;
    }
    if (PyUnicode_Check(identity)) {
        idb = PyUnicode_AsUTF8String(identity);
    }
    else {
        idb = PyBytes_FromObject(identity);
    }
    if (idb == NULL) {
        return -1;
    }
    PyBytes_AsStringAndSize(idb, &id, &idlen);
    if (idlen == 0 || idlen > 255) {
        PyErr_SetString(PyExc_ValueError,
                        "the node identity must be 1..255 bytes");
        goto error;
    }
    if (PyUnicode_Check(endpoints) || PyBytes_Check(endpoints)) {
        seq = PyTuple_Pack(1, endpoints);
    }
    else {
        seq = PySequence_Fast(endpoints, "endpoints must be a sequence");
    }
    if (seq == NULL) {
        goto error;
    }
    count = PySequence_Fast_GET_SIZE(seq);
    if (count == 0) {
        PyErr_SetString(PyExc_ValueError, "at least one endpoint is needed");
        goto error;
    }
    self->linger = linger;
    self->socks = calloc((size_t) count, sizeof(void *));
    self->links = calloc((size_t) count, sizeof(struct tx_link *));
    self->heard = calloc((size_t) count, sizeof(int64_t));
    self->fds = calloc((size_t) count, sizeof(int));
    if (self->socks == NULL || self->links == NULL || self->heard == NULL ||
        self->fds == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *ep = PySequence_Fast_GET_ITEM(seq, i);
        const char *eps;
        void *s;

        if (PyBytes_Check(ep)) {
            eps = PyBytes_AS_STRING(ep);
        }
        else if ((eps = PyUnicode_AsUTF8(ep)) == NULL) {
            goto error;
        }
        self->nsocks = (int) i + 1;
        if (!use_libzmq) {
            int rc;
            if (self->epfd < 0 &&
                (self->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
                PyErr_SetFromErrno(PyExc_OSError);
                goto error;
            }
            rc = tx_link_create(&self->links[i], eps, id, (size_t) idlen,
                                self->epfd, &self->link_err);
            if (rc < 0) {
                PyErr_NoMemory();
                goto error;
            }
            if (rc == 0) {
                self->fds[i] = self->epfd;
                continue;
            }
        }
        if (self->ctx == NULL && (self->ctx = zmq_ctx_new()) == NULL) {
            PyErr_Format(PyExc_OSError, "zmq_ctx_new: %s", zmq_strerror(errno));
            goto error;
        }
        s = zmq_socket(self->ctx, ZMQ_DEALER);
        if (s == NULL) {
            PyErr_Format(PyExc_OSError, "zmq_socket: %s", zmq_strerror(errno));
            goto error;
        }
        self->socks[i] = s;
        {
            size_t fdlen = sizeof(int);
            if (zmq_getsockopt(s, ZMQ_FD, &self->fds[i], &fdlen) < 0) {
                PyErr_Format(PyExc_OSError, "ZMQ_FD: %s", zmq_strerror(errno));
                goto error;
            }
        }
        /* The identity is the node's only credential (spec 1.1): set it
         * before connect or libzmq picks a random one. */
        if (zmq_setsockopt(s, ZMQ_ROUTING_ID, id, (size_t) idlen) < 0 ||
            zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
            zmq_connect(s, eps) < 0) {
            PyErr_Format(PyExc_ValueError, "%s: %s", eps, zmq_strerror(errno));
            goto error;
        }
    }
    /* Unsolicited pong: usable before the gateway's first ping (2.3). */
    {
        int64_t now = node_now();
        for (int i = 0; i < self->nsocks; i++) {
            node_send_locked(self, i, "", 0, "pong", 4, "", 0,
                             NODE_SEND_FORCE);
            self->heard[i] = now;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    node_start(self);
    Py_END_ALLOW_THREADS
    Py_DECREF(seq);
    Py_DECREF(idb);
    self->closed = 0;
    return 0;

error:
    Py_XDECREF(seq);
    Py_XDECREF(idb);
    for (int i = 0; i < self->nsocks; i++) {
        int zero = 0;
        if (self->socks[i] != NULL) {
            zmq_setsockopt(self->socks[i], ZMQ_LINGER, &zero, sizeof(zero));
            zmq_close(self->socks[i]);
            self->socks[i] = NULL;
        }
        tx_link_destroy(self->links[i]);
        self->links[i] = NULL;
    }
    if (self->ctx != NULL) {
        zmq_ctx_term(self->ctx);
        self->ctx = NULL;
    }
    self->closed = 1;
    return -1;
}

static PyObject *Node_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    TxNode *self = (TxNode *) type->tp_alloc(type, 0);

    if (self != NULL) {
        pthread_mutex_init(&self->lock, NULL);
        atomic_init(&self->stop, 0);
        self->epfd = -1;
        self->closed = 1;              /* until __init__ succeeds */
    }
    return (PyObject *) self;
}

/* Without the GIL: start connecting, and give a peer that is there a
 * moment (TX_START_MS at most) to finish the handshake, so that the
 * first pong goes out even before the node's first recv, as libzmq's
 * I/O thread would send it. A peer not listening refuses at once. */
#define TX_START_MS 200

static void node_start(TxNode *n)
{
    int64_t deadline = node_now() + TX_START_MS * 1000000LL;

    for (;;) {
        struct pollfd pf[16];
        int npf = 0, wait = TX_POLL_MS;
        int64_t now = node_now();

        node_drive(n, now);
        for (int i = 0; i < n->nsocks && npf < 16; i++) {
            int w;
            if (n->links[i] == NULL || !tx_link_starting(n->links[i])) {
                continue;
            }
            tx_link_wait(n->links[i], now, &pf[npf].fd, &pf[npf].events, &w);
            pf[npf].revents = 0;
            if (pf[npf].fd >= 0) {
                npf++;
            }
        }
        if (npf == 0 || now >= deadline) {
            return;
        }
        if ((deadline - now) / 1000000LL + 1 < wait) {
            wait = (int) ((deadline - now) / 1000000LL) + 1;
        }
        poll(pf, (nfds_t) npf, wait);
    }
}

/* Without the GIL: write what the native links still hold, for up to the
 * linger period (forever when negative), as zmq_ctx_term does. */
static void node_linger(TxNode *n)
{
    int64_t deadline = node_now() + (int64_t) n->linger * 1000000LL;

    for (;;) {
        struct pollfd pf[16];
        int npf = 0, wait = TX_POLL_MS, pending = 0;
        int64_t now = node_now();

        pthread_mutex_lock(&n->lock);
        for (int i = 0; i < n->nsocks; i++) {
            struct tx_link *l = n->links[i];
            int w;
            if (l == NULL) {
                continue;
            }
            tx_link_uncork(l);
            tx_link_drive(l, now);
            if (!tx_link_unsent(l)) {
                continue;
            }
            pending = 1;
            if (npf < 16) {
                tx_link_wait(l, now, &pf[npf].fd, &pf[npf].events, &w);
                pf[npf].revents = 0;
                if (w < wait) {
                    wait = w;
                }
                if (pf[npf].fd >= 0) {
                    npf++;
                }
            }
        }
        pthread_mutex_unlock(&n->lock);
        if (!pending) {
            return;
        }
        if (n->linger >= 0) {
            int64_t left = deadline - now;
            if (left <= 0) {
                return;
            }
            if (left / 1000000LL + 1 < wait) {
                wait = (int) (left / 1000000LL) + 1;
            }
        }
        poll(npf > 0 ? pf : NULL, (nfds_t) npf, wait);
    }
}

static void node_close(TxNode *n)
{
    void *ctx;
    int native = 0;

    pthread_mutex_lock(&n->lock);
    if (n->closed) {
        pthread_mutex_unlock(&n->lock);
        return;
    }
    n->closed = 1;
    atomic_store(&n->stop, 1);
    for (int i = 0; i < n->nsocks; i++) {
        if (n->socks[i] != NULL) {
            zmq_close(n->socks[i]);
            n->socks[i] = NULL;
        }
        native |= n->links[i] != NULL;
    }
    ctx = n->ctx;
    n->ctx = NULL;
    pthread_mutex_unlock(&n->lock);
    if (native || ctx != NULL) {
        Py_BEGIN_ALLOW_THREADS
        if (native && n->linger != 0) {
            node_linger(n);
        }
        if (ctx != NULL) {
            zmq_ctx_term(ctx);       /* waits for the linger period */
        }
        Py_END_ALLOW_THREADS
    }
    pthread_mutex_lock(&n->lock);
    for (int i = 0; i < n->nsocks; i++) {
        tx_link_destroy(n->links[i]);
        n->links[i] = NULL;
    }
    n->nsocks = 0;
    pthread_mutex_unlock(&n->lock);
}

static void Node_dealloc(TxNode *self)
{
    node_close(self);
    free(self->socks);
    free(self->links);
    free(self->heard);
    free(self->fds);
    free(self->scratch);
    if (self->epfd >= 0) {
        close(self->epfd);         /* kept open until here: filenos() */
    }
    pthread_mutex_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *) self);
}

static int node_ready(TxNode *n)
{
    if (n->closed) {
        PyErr_SetString(PyExc_ValueError, "the node is closed");
        return -1;
    }
    return 0;
}

PyObject *tx_msg_tuple(struct tx_msg *m)
{
    PyObject *t = Py_BuildValue("(y#y#y#i)",
        (const char *) zmq_msg_data(&m->frame[0]),
        (Py_ssize_t) zmq_msg_size(&m->frame[0]),
        (const char *) zmq_msg_data(&m->frame[1]),
        (Py_ssize_t) zmq_msg_size(&m->frame[1]),
        (const char *) zmq_msg_data(&m->frame[2]),
        (Py_ssize_t) zmq_msg_size(&m->frame[2]), m->index);

    tx_msg_close(m);
    return t;
}

static PyObject *Node_recv(TxNode *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout_ms", NULL};
    struct tx_msg m;
    int timeout = -1, rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i:recv", kwlist, &timeout)) {
        return NULL;
    }
    if (node_ready(self) < 0) {
        return NULL;
    }
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        rc = tx_node_next(self, timeout, &m);
        Py_END_ALLOW_THREADS
        node_log(self);
        if (rc > 0) {
            return tx_msg_tuple(&m);
        }
        if (rc == 0) {
            Py_RETURN_NONE;
        }
        if (errno != EINTR) {
            return PyErr_Format(PyExc_OSError, "zmq: %s", zmq_strerror(errno));
        }
        if (PyErr_CheckSignals() < 0) {
            return NULL;
        }
        if (timeout >= 0) {
            /* a signal cut the wait short: report a timeout rather than
             * wait the whole period again */
            Py_RETURN_NONE;
        }
    }
}

int tx_node_recv_nowait(TxNode *n, struct tx_msg *m)
{
    int rc;

    if (node_ready(n) < 0) {
        return -1;
    }
    rc = node_nowait(n, m);
    node_log(n);
    if (rc < 0) {
        if (errno == EINTR) {
            return 0;
        }
        PyErr_Format(PyExc_OSError, "zmq: %s", zmq_strerror(errno));
    }
    return rc;
}

static PyObject *Node_recv_nowait(TxNode *self, PyObject *unused)
{
    struct tx_msg m;
    int rc = tx_node_recv_nowait(self, &m);

    if (rc > 0) {
        return tx_msg_tuple(&m);
    }
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Node_send(TxNode *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sid", "type", "body", "index", "wait",
                             "batch", NULL};
    Py_buffer sid, type, body;
    int index = 0, wait = 1, batch = 0, rc;
    enum node_mode mode;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*y*|ipp:send", kwlist,
                                     &sid, &type, &body, &index, &wait,
                                     &batch)) {
        return NULL;
    }
    /* batch: a native link may hold the message while input it has read
     * waits, as the WSGI loop's responses (the caller drains until
     * recv/recv_nowait finds nothing, which writes the batch, or calls
     * flush) */
    mode = batch ? NODE_SEND_BATCH : NODE_SEND_NOW;
    if (node_ready(self) < 0) {
        rc = -2;
    }
    else if (index < 0 || index >= self->nsocks) {
        PyErr_SetString(PyExc_IndexError, "no endpoint with that index");
        rc = -2;
    }
    else if (!wait) {
        rc = node_send_now(self, index, sid.buf, (size_t) sid.len, type.buf,
                           (size_t) type.len, body.buf, (size_t) body.len,
                           mode);
        if (rc == 0) {
            PyErr_SetString(PyExc_BlockingIOError, "the node's queue is full");
            rc = -2;
        }
        else if (rc < 0) {
            PyErr_Format(PyExc_OSError, "zmq_send: %s", zmq_strerror(errno));
        }
    }
    else {
        rc = node_send_gil(self, index, sid.buf, (size_t) sid.len, type.buf,
                           (size_t) type.len, body.buf, (size_t) body.len,
                           mode);
        if (rc < 0) {
            PyErr_Format(PyExc_OSError, "zmq_send: %s", zmq_strerror(errno));
        }
    }
    PyBuffer_Release(&sid);
    PyBuffer_Release(&type);
    PyBuffer_Release(&body);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Node_flush(TxNode *self, PyObject *unused)
{
    (void) unused;
    if (node_ready(self) < 0) {
        return NULL;
    }
    pthread_mutex_lock(&self->lock);
    for (int i = 0; i < self->nsocks; i++) {
        if (self->links[i] != NULL) {
            tx_link_uncork(self->links[i]);
        }
    }
    pthread_mutex_unlock(&self->lock);
    Py_RETURN_NONE;
}

static PyObject *Node_readable(TxNode *self, PyObject *unused)
{
    (void) unused;
    if (node_ready(self) < 0) {
        return NULL;
    }
    return PyBool_FromLong(tx_node_readable(self));
}

static PyObject *Node_filenos(TxNode *self, PyObject *unused)
{
    PyObject *list;

    if (node_ready(self) < 0) {
        return NULL;
    }
    list = PyList_New(self->nsocks);
    if (list == NULL) {
        return NULL;
    }
    for (int i = 0; i < self->nsocks; i++) {
        PyObject *o = PyLong_FromLong(self->fds[i]);
        if (o == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, o);
    }
    return list;
}

static PyObject *Node_stop(TxNode *self, PyObject *unused)
{
    atomic_store(&self->stop, 1);
    Py_RETURN_NONE;
}

static PyObject *Node_close(TxNode *self, PyObject *unused)
{
    node_close(self);
    Py_RETURN_NONE;
}

static PyObject *Node_enter(TxNode *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *Node_exit(TxNode *self, PyObject *args)
{
    node_close(self);
    Py_RETURN_NONE;
}

static PyObject *Node_serve_wsgi(TxNode *self, PyObject *args, PyObject *kwds)
{
    if (node_ready(self) < 0) {
        return NULL;
    }
    return tx_serve_wsgi(self, args, kwds);
}

static PyObject *Node_batch_sends(TxNode *self, void *closure)
{
    (void) self;
    (void) closure;
    Py_RETURN_TRUE;
}

static PyGetSetDef Node_getset[] = {
    {"batch_sends", (getter) Node_batch_sends, NULL,
     "True: send() takes batch=True (tremolo_node.RawNode has it too).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyMethodDef Node_methods[] = {
    {"filenos", (PyCFunction) Node_filenos, METH_NOARGS,
     "filenos() -> one fd per endpoint to watch for input, the same for "
     "the node's life: the node's epoll fd for a native endpoint (the "
     "same fd for all of them; level-triggered), its ZMQ_FD for a libzmq "
     "one (edge-triggered). After a wake-up, after a "
     "send, and now and then (reconnects, queued output), drain with "
     "recv_nowait() until None."},
    {"recv", (PyCFunction) (void (*)(void)) Node_recv,
     METH_VARARGS | METH_KEYWORDS,
     "recv(timeout_ms=-1) -> (sid, type, body, index) or None on timeout or "
     "after stop(). The GIL is released while waiting."},
    {"recv_nowait", (PyCFunction) Node_recv_nowait, METH_NOARGS,
     "recv_nowait() -> (sid, type, body, index) or None."},
    {"flush", (PyCFunction) Node_flush, METH_NOARGS,
     "flush(): write what batched sends left in the buffers (a loop that\n"
     "stops draining, for backpressure, calls it)."},
    {"readable", (PyCFunction) Node_readable, METH_NOARGS,
     "readable() -> bool: a message may be waiting (ask after a send:\n"
     "the ZMQ_FDs are edge-triggered)."},
    {"send", (PyCFunction) (void (*)(void)) Node_send,
     METH_VARARGS | METH_KEYWORDS,
     "send(sid, type, body, index=0, wait=True, batch=False): one\n"
     "[sid, type, body] message; wait=False raises BlockingIOError instead\n"
     "of waiting for a full queue. batch=True lets a native endpoint hold\n"
     "it while input already read waits: the sends made while a loop\n"
     "drains leave in one write when recv()/recv_nowait() finds no more\n"
     "input, or at flush()."},
    {"serve_wsgi", (PyCFunction) (void (*)(void)) Node_serve_wsgi,
     METH_VARARGS | METH_KEYWORDS,
     "serve_wsgi(app, max_body=64 MiB): run the WSGI app until stop()."},
    {"stop", (PyCFunction) Node_stop, METH_NOARGS,
     "stop(): make recv() and serve_wsgi() return (thread and signal safe)."},
    {"close", (PyCFunction) Node_close, METH_NOARGS,
     "close(): close the sockets (after the linger period)."},
    {"__enter__", (PyCFunction) Node_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction) Node_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}
};

PyTypeObject TxNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_tremolo.Node",
    .tp_basicsize = sizeof(TxNode),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Node(identity, endpoints, linger_ms=1000): one DEALER per "
              "endpoint, all with the node name as identity.",
    .tp_new = Node_new,
    .tp_init = (initproc) Node_init,
    .tp_dealloc = (destructor) Node_dealloc,
    .tp_methods = Node_methods,
    .tp_getset = Node_getset,
};
