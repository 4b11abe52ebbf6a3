/*
 * The node guard (zmq_guard.h): a TCP listener per relayed Bind and a
 * byte relay per node connection, in the gateway thread's event loop.
 * Bytes are copied as they come; only the node's direction is read, by
 * zmq_zmtp.c, and only its frame headers and the head of its first frame
 * (the identity it claims). Each connection has two fixed
 * buffers: while one side cannot take more, the other is not read
 * (backpressure), so a connection never holds more than 2 x
 * ZMQ_GUARD_BUF here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_hash.h"
#include "mk_core/mk_list.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/zmq/zmq_guard.h"
#include "plugins/zmq/zmq_zmtp.h"
#include "plugins/zmq/zmq_zmtps.h"

/* One read carries many small node messages; larger bodies take a few
 * reads each. Per direction, per connection. */
#define ZMQ_GUARD_BUF (16 * 1024)
#define ZMQ_GUARD_LOG_MS 1000
/* A duplicate identity is logged once a minute per identity, in a table
 * of this many: a node restarting in a loop writes one line a minute. */
#define ZMQ_GUARD_DUP_LOG_MS (60 * 1000)
#define ZMQ_GUARD_DUP_SLOTS 16
/* native: what is buffered for a node is written out at the end of the
 * gateway's batch, or at once past this */
#define ZMQ_GUARD_FLUSH_AT (64 * 1024)
/* native: an output buffer this large is given back once it is empty */
#define ZMQ_GUARD_OUT_KEEP (256 * 1024)
#define ZMQ_GUARD_ROUTERS 64
/* native: bytes read from one node per gateway wake-up, as the ROUTER
 * drains a batch at a time: the workers get what it carried before the
 * node's next bytes are read (zmq_guard_resume) */
#define ZMQ_GUARD_READ_BUDGET (256 * 1024)

struct guard_listener {
    struct mk_event ev;                /* first member */
    struct zmq_guard *guard;
    struct sockaddr_un ipc;            /* the ROUTER's private endpoint */
    socklen_t ipc_len;
    const char *endpoint;              /* borrowed from the configuration */
    int router;                        /* its ROUTER's index */
    struct mk_hash *ids;               /* native: identity -> guard_native */
    struct mk_list _head;
};

/* A node connection the guard serves itself (NodeGuard native). */
struct guard_native {
    struct mk_event ev;                /* first member */
    struct zmq_guard *guard;
    const struct guard_listener *listener;
    struct sockaddr_storage peer;
    int registered;                    /* its identity is in listener->ids */
    int duplicate;                     /* closed for a live identity */
    int writing;                       /* WRITE interest is registered */
    int flushing;                      /* on guard->flushq */
    int backlogged;                    /* on guard->backlog */
    unsigned nparts;                   /* parts[] initialised */
    zmq_msg_t parts[ZMQ_ZMTP_PARTS_MAX];
    uint8_t *out;                      /* bytes for the node */
    size_t out_off, out_len, out_cap;
    struct mk_list _head;              /* guard->natives or guard->dead_natives */
    struct mk_list _flush;
    struct mk_list _backlog;
    struct zmq_zmtps z;
    uint8_t in[ZMQ_GUARD_BUF];
};

struct guard_end {
    struct mk_event ev;                /* first member */
    struct guard_conn *conn;
    uint8_t *buf;                      /* read here, for the other end */
    size_t off, len;
    unsigned readable : 1;             /* more may be waiting in the socket */
    unsigned hup : 1;                  /* the peer hung up: read to the end */
    unsigned eof : 1;
    unsigned writing : 1;              /* WRITE interest is registered */
};

struct guard_conn {
    struct guard_end node;             /* the TCP connection */
    struct guard_end router;           /* to the ROUTER's private endpoint */
    struct zmq_guard *guard;
    struct zmq_zmtp zmtp;
    const struct guard_listener *listener;
    int id_checked;                    /* its identity was compared */
    struct sockaddr_storage peer;
    struct mk_list _head;
    uint8_t bufs[2][ZMQ_GUARD_BUF];    /* one allocation per connection */
};

struct zmq_guard {
    struct mk_event_loop *loop;
    struct mk_list listeners;
    struct mk_list conns;
    struct mk_list dead;               /* closed, freed after the batch */
    struct mk_list natives;            /* native connections */
    struct mk_list dead_natives;
    struct mk_list flushq;             /* natives with output to write */
    struct mk_list backlog;            /* natives read up to their budget */
    zmq_guard_message_fn native_fn;    /* non-NULL: NodeGuard native */
    void *native_ctx;
    struct guard_listener *by_router[ZMQ_GUARD_ROUTERS];
    uint64_t native_log[ZMQ_ZMTPS_OWNER + 1];
    int reaping;                       /* a reap is deferred */
    uint64_t frame_max;
    size_t nconns, conns_max;          /* relayed now; NodeConnections */
    uint64_t refused;                  /* connections closed for their frames */
    uint64_t failed;                   /* connections that could not be relayed */
    uint64_t over_cap;                 /* refused at NodeConnections */
    /* by verdict; [ZMQ_ZMTP_OK]: connections that could not be relayed */
    uint64_t last_log[ZMQ_ZMTP_MALFORMED + 1];
    uint64_t dup_ids;                  /* peers that claimed a live identity */
    struct {
        uint64_t hash, at;             /* FNV-1a of endpoint and identity */
    } dup_log[ZMQ_GUARD_DUP_SLOTS];
};

/* Distinct private endpoints for every generation of the process: a
 * reload binds new ROUTERs while libzmq may still hold the old names. */
static atomic_uint guard_serial;

/* ---- Endpoints --------------------------------------------------------- */

struct guard_addr {
    char host[256];
    int family;                        /* AF_INET, AF_INET6; AF_UNSPEC: a name */
    int any;                           /* the host was `*` */
    uint16_t port;
};

static int guard_parse_port(const char *s, struct guard_addr *a)
{
    char *end;
    long port;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    port = strtol(s, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        return -1;
    }
    a->port = (uint16_t) port;
    return 0;
}

static int guard_set_host(struct guard_addr *a, const char *host, size_t len)
{
    if (len == 0 || len >= sizeof(a->host)) {
        return -1;
    }
    memcpy(a->host, host, len);
    a->host[len] = '\0';
    return 0;
}

/* A host name as DNS spells it; anything else is no name we resolve. */
static int guard_is_hostname(const char *h)
{
    for (; *h; h++) {
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
              (*h >= '0' && *h <= '9') || *h == '-' || *h == '.')) {
            return 0;
        }
    }
    return 1;
}

/* "tcp://HOST:PORT" -> a; 0, or -1 with `why` set. */
static int guard_parse(const char *endpoint, struct guard_addr *a, char *why,
                       size_t whylen)
{
    const char *rest = endpoint + 6, *colon;
    uint8_t bin[16];

    memset(a, 0, sizeof(*a));
    if (strchr(rest, ';')) {
        return mk_str_fail(why, whylen, "a source address (;) is for "
                           "connecting, not for binding");
    }
    if (rest[0] == '[') {
        colon = strchr(rest, ']');
        if (!colon || colon[1] != ':' ||
            guard_set_host(a, rest + 1, (size_t) (colon - rest - 1)) < 0 ||
            inet_pton(AF_INET6, a->host, bin) != 1) {
            return mk_str_fail(why, whylen, "expected tcp://[IPv6 address]"
                               ":PORT");
        }
        a->family = AF_INET6;
        colon++;
    }
    else {
        colon = strrchr(rest, ':');
        if (!colon || guard_set_host(a, rest, (size_t) (colon - rest)) < 0) {
            return mk_str_fail(why, whylen, "expected tcp://ADDRESS:PORT");
        }
        if (strchr(a->host, ':')) {
            return mk_str_fail(why, whylen, "an IPv6 address goes in "
                               "brackets: tcp://[ADDRESS]:PORT");
        }
        if (strcmp(a->host, "*") == 0) {
            a->any = 1;
            a->family = AF_INET;       /* libzmq binds IPv4 only, too */
        }
        else if (inet_pton(AF_INET, a->host, bin) == 1) {
            a->family = AF_INET;
        }
        else if (if_nametoindex(a->host) != 0) {
            return mk_str_fail(why, whylen, "%s is a network interface: the "
                               "node guard binds addresses, give the "
                               "interface's address", a->host);
        }
        else if (!guard_is_hostname(a->host)) {
            return mk_str_fail(why, whylen, "%s is neither an address nor a "
                               "host name", a->host);
        }
        else {
            a->family = AF_UNSPEC;
        }
    }
    if (guard_parse_port(colon + 1, a) < 0) {
        return mk_str_fail(why, whylen, "the node guard needs a fixed port "
                           "(1-65535)");
    }
    return 0;
}

enum zmq_guard_endpoint zmq_guard_endpoint_kind(const char *endpoint,
                                                char *why, size_t whylen)
{
    struct guard_addr a;

    if (strncmp(endpoint, "tcp://", 6) != 0) {
        return ZMQ_GUARD_DIRECT;
    }
    return guard_parse(endpoint, &a, why, whylen) < 0 ? ZMQ_GUARD_REFUSED
                                                      : ZMQ_GUARD_TCP;
}

/* The address to bind; a host name resolves to its first IPv4 address,
 * as libzmq (ZMQ_IPV6 off) binds it. */
static int guard_resolve(const struct guard_addr *a,
                         struct sockaddr_storage *ss, socklen_t *len,
                         char *err, size_t errlen)
{
    struct sockaddr_in *in = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    struct addrinfo hints, *res;
    int rc;

    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET6) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        inet_pton(AF_INET6, a->host, &in6->sin6_addr);
        *len = sizeof(*in6);
        return 0;
    }
    in->sin_family = AF_INET;
    in->sin_port = htons(a->port);
    *len = sizeof(*in);
    if (a->any) {
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (a->family == AF_INET) {
        inet_pton(AF_INET, a->host, &in->sin_addr);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(a->host, NULL, &hints, &res);
    if (rc != 0) {
        return mk_str_fail(err, errlen, "%s: %s", a->host, gai_strerror(rc));
    }
    in->sin_addr = ((struct sockaddr_in *) res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/* ---- Lifecycle ---------------------------------------------------------- */

struct zmq_guard *zmq_guard_create(uint64_t frame_max, size_t conns_max)
{
    struct zmq_guard *g = mk_mem_zalloc(sizeof(*g));

    if (!g) {
        return NULL;
    }
    mk_list_init(&g->listeners);
    mk_list_init(&g->conns);
    mk_list_init(&g->dead);
    mk_list_init(&g->natives);
    mk_list_init(&g->dead_natives);
    mk_list_init(&g->flushq);
    mk_list_init(&g->backlog);
    g->frame_max = frame_max;
    g->conns_max = conns_max;
    return g;
}

static int guard_socket(const struct guard_addr *a,
                        const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    int one = 1, off = 0, saved;

    if (fd < 0) {
        return -1;
    }
    /* a reload rebinds while the old generation's connections linger */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        /* [::] takes IPv4 nodes too, as libzmq with ZMQ_IPV6 binds it */
        (a->family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) ||
        bind(fd, (const struct sockaddr *) ss, len) < 0 ||
        listen(fd, ZMQ_GUARD_BACKLOG) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

void zmq_guard_set_native(struct zmq_guard *g, zmq_guard_message_fn fn,
                          void *ctx)
{
    g->native_fn = fn;
    g->native_ctx = ctx;
}

int zmq_guard_listen(struct zmq_guard *g, const char *endpoint, int router,
                     char *ipc, size_t ipclen, char *err, size_t errlen)
{
    struct guard_listener *l = NULL;
    struct sockaddr_storage ss;
    struct guard_addr a;
    socklen_t len;
    int fd, n;

    err[0] = '\0';
    if (guard_parse(endpoint, &a, err, errlen) < 0 ||
        guard_resolve(&a, &ss, &len, err, errlen) < 0) {
        errno = EINVAL;
        return -1;
    }
    l = mk_mem_zalloc(sizeof(*l));
    if (!l) {
        errno = ENOMEM;
        return -1;
    }
    if (router < 0 || router >= ZMQ_GUARD_ROUTERS ||
        (g->native_fn && !(l->ids = mk_hash_create(64, 0)))) {
        mk_mem_free(l);
        errno = router < 0 || router >= ZMQ_GUARD_ROUTERS ? EINVAL : ENOMEM;
        return -1;
    }
    fd = guard_socket(&a, &ss, len);
    if (fd < 0) {
        if (l->ids) {
            mk_hash_destroy(l->ids, NULL);
        }
        mk_mem_free(l);
        return -1;
    }
    l->router = router;
    g->by_router[router] = l;
    l->ev.fd = fd;
    l->guard = g;
    l->endpoint = endpoint;
    l->ipc.sun_family = AF_UNIX;
    /* abstract namespace: no file to clean up, gone with the process */
    n = snprintf(l->ipc.sun_path + 1, sizeof(l->ipc.sun_path) - 1,
                 "tremolo-%ld-%u", (long) getpid(),
                 atomic_fetch_add(&guard_serial, 1));
    l->ipc_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 +
                              (size_t) n);
    snprintf(ipc, ipclen, "ipc://@%s", l->ipc.sun_path + 1);
    mk_list_add(&l->_head, &g->listeners);
    return 0;
}

static void guard_on_accept(struct mk_event *ev, uint32_t events);

int zmq_guard_start(struct zmq_guard *g, struct mk_event_loop *loop)
{
    struct mk_list *it;

    g->loop = loop;
    mk_list_foreach(it, &g->listeners) {
        struct guard_listener *l = mk_list_entry(it, struct guard_listener,
                                                 _head);
        if (mk_event_add(loop, &l->ev, l->ev.fd, MK_EVENT_READ,
                         guard_on_accept) < 0) {
            mk_err("zmq: cannot watch %s: %s", l->endpoint, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void guard_conn_close(struct guard_conn *c);
static void guard_native_close(struct guard_native *c);

static void guard_reap(void *arg)
{
    struct zmq_guard *g = arg;

    g->reaping = 0;
    while (!mk_list_is_empty(&g->dead)) {
        struct guard_conn *c = mk_list_entry(g->dead.next, struct guard_conn,
                                             _head);
        mk_list_del(&c->_head);
        mk_mem_free(c);
    }
    while (!mk_list_is_empty(&g->dead_natives)) {
        struct guard_native *c = mk_list_entry(g->dead_natives.next,
                                               struct guard_native, _head);
        mk_list_del(&c->_head);
        mk_mem_free(c);
    }
}

void zmq_guard_close(struct zmq_guard *g)
{
    g->reaping = 1;                    /* freed here, nothing deferred */
    while (!mk_list_is_empty(&g->listeners)) {
        struct guard_listener *l = mk_list_entry(g->listeners.next,
                                                 struct guard_listener, _head);
        if (g->loop) {
            mk_event_del(g->loop, &l->ev);
        }
        close(l->ev.fd);
        mk_list_del(&l->_head);
        if (l->router >= 0 && l->router < ZMQ_GUARD_ROUTERS) {
            g->by_router[l->router] = NULL;
        }
        /* the natives' identities go with it: they look no more */
        if (l->ids) {
            mk_hash_destroy(l->ids, NULL);
        }
        mk_mem_free(l);
    }
    while (!mk_list_is_empty(&g->natives)) {
        struct guard_native *c = mk_list_entry(g->natives.next,
                                               struct guard_native, _head);
        c->registered = 0;
        guard_native_close(c);
    }
    while (!mk_list_is_empty(&g->conns)) {
        guard_conn_close(mk_list_entry(g->conns.next, struct guard_conn,
                                       _head));
    }
    guard_reap(g);
}

void zmq_guard_destroy(struct zmq_guard *g)
{
    if (g) {
        zmq_guard_close(g);
        mk_mem_free(g);
    }
}

/* ---- Relay -------------------------------------------------------------- */

static const char *guard_peer(const struct sockaddr_storage *peer_ss,
                              char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (peer_ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) peer_ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    }
    else if (peer_ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) peer_ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, len, "%s port %u", host, port);
    return buf;
}

/* Counted always, logged at most once a second per reason: a peer that
 * reconnects in a loop must not flood the log. */
static int guard_log_due(struct zmq_guard *g, enum zmq_zmtp_verdict why)
{
    uint64_t now = mk_clock_monotonic_ms();

    if (g->last_log[why] && now - g->last_log[why] < ZMQ_GUARD_LOG_MS) {
        return 0;
    }
    g->last_log[why] = now;
    return 1;
}

static void guard_refuse(struct guard_conn *c)
{
    struct zmq_guard *g = c->guard;
    char peer[80];

    g->refused++;
    if (guard_log_due(g, c->zmtp.verdict)) {
        mk_warn("zmq: [fd %d] closed the node connection from %s: %s, "
                "at frame %llu (%llu connection(s) closed so far)",
                c->node.ev.fd, guard_peer(&c->peer, peer, sizeof(peer)),
                zmq_zmtp_verdict_name(c->zmtp.verdict),
                (unsigned long long) c->zmtp.frames,
                (unsigned long long) g->refused);
    }
}

/* Printable ASCII as is; anything else, the quote and the backslash as
 * \xHH, so that the log line reads back unambiguously. */
static void guard_identity_text(const uint8_t *id, size_t len, char *buf,
                                size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        if (id[i] >= 0x20 && id[i] < 0x7f && id[i] != '\'' &&
            id[i] != '\\') {
            if (o + 1 >= size) {
                break;
            }
            buf[o++] = (char) id[i];
            continue;
        }
        if (o + 4 >= size) {
            break;
        }
        buf[o++] = '\\';
        buf[o++] = 'x';
        buf[o++] = hex[id[i] >> 4];
        buf[o++] = hex[id[i] & 15];
    }
    buf[o] = '\0';
}

static uint64_t guard_fnv(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;

    while (len--) {
        h = (h ^ *b++) * 0x100000001b3ULL;
    }
    return h;
}

/* Once a minute per endpoint and identity; the oldest slot gives way. */
static int guard_dup_log_due(struct zmq_guard *g, uint64_t hash)
{
    uint64_t now = mk_clock_monotonic_ms();
    size_t i, oldest = 0;

    for (i = 0; i < ZMQ_GUARD_DUP_SLOTS; i++) {
        if (g->dup_log[i].at && g->dup_log[i].hash == hash) {
            if (now - g->dup_log[i].at < ZMQ_GUARD_DUP_LOG_MS) {
                return 0;
            }
            g->dup_log[i].at = now;
            return 1;
        }
        if (g->dup_log[i].at < g->dup_log[oldest].at) {
            oldest = i;
        }
    }
    g->dup_log[oldest].hash = hash;
    g->dup_log[oldest].at = now;
    return 1;
}

/*
 * The peer's first frame named its identity: if another relayed
 * connection to the same endpoint holds it, libzmq's ROUTER (without
 * ZMQ_ROUTER_HANDOVER, as Tremolo sets it) keeps routing to the first
 * and never reads this one, which then waits without a word. Say so.
 */
static void guard_check_identity(struct guard_conn *c)
{
    struct zmq_guard *g = c->guard;
    struct mk_list *head;
    const uint8_t *id, *other_id;
    size_t len, other_len;
    char text[ZMQ_ZMTP_IDENTITY_MAX * 4 + 1], peer[80];

    c->id_checked = 1;
    id = zmq_zmtp_identity(&c->zmtp, &len);
    if (!id) {
        return;
    }
    mk_list_foreach(head, &g->conns) {
        struct guard_conn *o = mk_list_entry(head, struct guard_conn, _head);

        if (o == c || o->listener != c->listener) {
            continue;
        }
        other_id = zmq_zmtp_identity(&o->zmtp, &other_len);
        if (other_id && other_len == len && memcmp(other_id, id, len) == 0) {
            break;
        }
    }
    if (head == &g->conns) {
        return;
    }
    g->dup_ids++;
    if (!guard_dup_log_due(g, guard_fnv(guard_fnv(0xcbf29ce484222325ULL,
                                                  &c->listener,
                                                  sizeof(c->listener)),
                                        id, len))) {
        return;
    }
    guard_identity_text(id, len, text, sizeof(text));
    mk_warn("zmq: a second peer claims node identity '%s' on %s: it will "
            "get no requests; give each node process its own identity "
            "([fd %d] from %s; %llu such connection(s) so far)", text,
            c->listener->endpoint, c->node.ev.fd,
            guard_peer(&c->peer, peer, sizeof(peer)),
            (unsigned long long) g->dup_ids);
}

static void guard_conn_close(struct guard_conn *c)
{
    struct zmq_guard *g = c->guard;

    /* mk_event_del drops both ends' later reports of this batch; the
     * memory goes once the batch is over */
    mk_event_del(g->loop, &c->node.ev);
    mk_event_del(g->loop, &c->router.ev);
    close(c->node.ev.fd);
    close(c->router.ev.fd);
    mk_list_del(&c->_head);
    mk_list_add(&c->_head, &g->dead);
    g->nconns--;
    if (!g->reaping) {
        g->reaping = mk_event_loop_defer(g->loop, guard_reap, g) == 0;
    }
}

static int guard_want_write(struct guard_conn *c, struct guard_end *e,
                            int on)
{
    if (e->writing == (unsigned) on) {
        return 0;
    }
    e->writing = on ? 1 : 0;
    return mk_event_mod(c->guard->loop, &e->ev,
                        MK_EVENT_READ | (on ? MK_EVENT_WRITE : 0));
}

/*
 * Moves bytes from `from` to `to` until `from` has no more, `to` takes no
 * more (then WRITE interest on `to` resumes it) or `from` ended. Returns
 * -1 when the connection must close.
 */
static int guard_pump(struct guard_conn *c, struct guard_end *from,
                      struct guard_end *to)
{
    ssize_t n;

    for (;;) {
        if (from->len) {
            n = send(to->ev.fd, from->buf + from->off, from->len,
                     MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno != EAGAIN) {
                return -1;
            }
            if (n > 0) {
                from->off += (size_t) n;
                from->len -= (size_t) n;
            }
            if (from->len) {
                return guard_want_write(c, to, 1);
            }
            from->off = 0;
        }
        if (guard_want_write(c, to, 0) < 0) {
            return -1;
        }
        if (from->eof || !from->readable) {
            return 0;
        }
        n = recv(from->ev.fd, from->buf, ZMQ_GUARD_BUF, 0);
        if (n > 0) {
            if (from == &c->node &&
                zmq_zmtp_feed(&c->zmtp, from->buf, (size_t) n) != ZMQ_ZMTP_OK) {
                guard_refuse(c);
                return -1;
            }
            if (!c->id_checked &&
                c->zmtp.id_state != ZMQ_ZMTP_ID_PENDING) {
                guard_check_identity(c);
            }
            from->len = (size_t) n;
            /* a short read emptied the socket: data arriving later is a
             * new edge, so the read that would say EAGAIN is saved */
            if (n < ZMQ_GUARD_BUF && !from->hup) {
                from->readable = 0;
            }
            continue;
        }
        if (n == 0) {
            from->eof = 1;
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN) {
            from->readable = 0;
            return 0;
        }
        return -1;
    }
}

static void guard_on_event(struct mk_event *ev, uint32_t events)
{
    struct guard_end *e = (struct guard_end *) ev;
    struct guard_conn *c = e->conn;
    struct guard_end *other = e == &c->node ? &c->router : &c->node;

    if (events & MK_EVENT_CLOSE) {
        e->hup = 1;
    }
    if (events & MK_EVENT_READ) {
        e->readable = 1;
    }
    if (((events & MK_EVENT_WRITE) && e->writing &&
         guard_pump(c, other, e) < 0) ||
        guard_pump(c, e, other) < 0) {
        guard_conn_close(c);
        return;
    }
    /* libzmq closing its side ends the connection at once; a node's last
     * bytes still reach libzmq first, as they would without the relay */
    if (c->router.eof || (c->node.eof && c->node.len == 0)) {
        guard_conn_close(c);
    }
}

static void guard_end_init(struct guard_end *e, struct guard_conn *c,
                           uint8_t *buf)
{
    memset(e, 0, sizeof(*e));
    e->ev.fd = -1;
    e->conn = c;
    e->buf = buf;
    e->readable = 1;
}

static void guard_native_open(struct guard_listener *l, int fd,
                              const struct sockaddr_storage *peer);

static void guard_conn_open(struct guard_listener *l, int fd,
                            const struct sockaddr_storage *peer)
{
    struct zmq_guard *g = l->guard;
    struct guard_conn *c = NULL;
    int up = -1, one = 1;

    /* Each relayed connection costs three descriptors and two buffers:
     * past the cap a peer cannot make the server hold more of either. */
    if (g->nconns >= g->conns_max) {
        g->over_cap++;
        if (guard_log_due(g, ZMQ_ZMTP_OK)) {
            mk_warn("zmq: [fd %d] refused a node connection to %s: "
                    "NodeConnections (%zu) reached (%llu such so far)", fd,
                    l->endpoint, g->conns_max,
                    (unsigned long long) g->over_cap);
        }
        close(fd);
        return;
    }
    if (l->ids) {
        guard_native_open(l, fd, peer);
        return;
    }
    c = mk_mem_alloc(sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        goto error;
    }
    guard_end_init(&c->node, c, c->bufs[0]);
    guard_end_init(&c->router, c, c->bufs[1]);
    c->guard = g;
    c->listener = l;
    c->id_checked = 0;
    c->peer = *peer;
    zmq_zmtp_init(&c->zmtp, g->frame_max, ZMQ_ZMTP_COMMAND_MAX,
                  ZMQ_ZMTP_PARTS_MAX);
    /* libzmq's listener is in this process and accepts at once; with its
     * backlog full (EAGAIN) this node is dropped and reconnects */
    up = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (up < 0 ||
        connect(up, (const struct sockaddr *) &l->ipc, l->ipc_len) < 0) {
        goto error;
    }
    /* what libzmq sets on the TCP connections it accepts */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (mk_event_add(g->loop, &c->node.ev, fd, MK_EVENT_READ,
                     guard_on_event) < 0 ||
        mk_event_add(g->loop, &c->router.ev, up, MK_EVENT_READ,
                     guard_on_event) < 0) {
        goto error;
    }
    mk_list_add(&c->_head, &g->conns);
    g->nconns++;
    return;

error:
    g->failed++;
    if (guard_log_due(g, ZMQ_ZMTP_OK)) {
        mk_warn("zmq: [fd %d] cannot relay a node connection to %s: %s "
                "(%llu such so far)", fd, l->endpoint, strerror(errno),
                (unsigned long long) g->failed);
    }
    if (c) {
        mk_event_del(g->loop, &c->node.ev);
        mk_event_del(g->loop, &c->router.ev);
    }
    close(fd);
    if (up >= 0) {
        close(up);
    }
    mk_mem_free(c);
}

/* Edge-triggered: when accept fails for want of descriptors (EMFILE), the
 * connection waits in the backlog until the next one arrives, and the
 * loop does not spin on it. */
static void guard_on_accept(struct mk_event *ev, uint32_t events)
{
    struct guard_listener *l = (struct guard_listener *) ev;
    struct sockaddr_storage peer;
    socklen_t len;
    int fd;

    (void) events;
    for (;;) {
        len = sizeof(peer);
        memset(&peer, 0, sizeof(peer));
        fd = accept4(l->ev.fd, (struct sockaddr *) &peer, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            guard_conn_open(l, fd, &peer);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            l->guard->failed++;
            if (guard_log_due(l->guard, ZMQ_ZMTP_OK)) {
                mk_warn("zmq: cannot accept a node connection on %s: %s",
                        l->endpoint, strerror(errno));
            }
        }
        return;
    }
}

/* ---- Native (NodeGuard native) ------------------------------------------ */

static void guard_native_refuse(struct guard_native *c)
{
    struct zmq_guard *g = c->guard;
    enum zmq_zmtps_verdict v = c->z.verdict;
    uint64_t now = mk_clock_monotonic_ms();
    char peer[80];

    g->refused++;
    if (g->native_log[v] && now - g->native_log[v] < ZMQ_GUARD_LOG_MS) {
        return;
    }
    g->native_log[v] = now;
    mk_warn("zmq: [fd %d] closed the node connection from %s to %s: %s, "
            "at frame %llu (%llu connection(s) closed so far)", c->ev.fd,
            guard_peer(&c->peer, peer, sizeof(peer)), c->listener->endpoint,
            zmq_zmtps_verdict_name(v), (unsigned long long) c->z.frames,
            (unsigned long long) g->refused);
}

static void guard_native_parts_close(struct guard_native *c)
{
    while (c->nparts > 0) {
        zmq_msg_close(&c->parts[--c->nparts]);
    }
}

/* The node is gone for the gateway as for libzmq's ROUTER: no message;
 * its pings go unanswered and its sends fail with EHOSTUNREACH. */
static void guard_native_close(struct guard_native *c)
{
    struct zmq_guard *g = c->guard;

    if (c->registered) {
        mk_hash_del(c->listener->ids, (const char *) c->z.id, c->z.id_len);
        c->registered = 0;
    }
    if (c->flushing) {
        mk_list_del(&c->_flush);
        c->flushing = 0;
    }
    if (c->backlogged) {
        mk_list_del(&c->_backlog);
        c->backlogged = 0;
    }
    mk_event_del(g->loop, &c->ev);
    close(c->ev.fd);
    c->ev.fd = -1;
    guard_native_parts_close(c);
    mk_mem_free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = c->out_cap = 0;
    mk_list_del(&c->_head);
    mk_list_add(&c->_head, &g->dead_natives);
    g->nconns--;
    if (!g->reaping) {
        g->reaping = mk_event_loop_defer(g->loop, guard_reap, g) == 0;
    }
}

/* Writes what is buffered; -1 when the connection must close. */
static int guard_native_flush(struct guard_native *c)
{
    ssize_t n;
    int want;

    while (c->out_len > 0) {
        n = send(c->ev.fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN) {
            return -1;
        }
        if (n <= 0) {
            break;
        }
        c->out_off += (size_t) n;
        c->out_len -= (size_t) n;
    }
    if (c->out_len == 0) {
        c->out_off = 0;
        if (c->out_cap > ZMQ_GUARD_OUT_KEEP) {
            mk_mem_free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
    }
    want = c->out_len > 0;
    if (want != c->writing) {
        c->writing = want;
        if (mk_event_mod(c->guard->loop, &c->ev,
                         MK_EVENT_READ | (want ? MK_EVENT_WRITE : 0)) < 0) {
            return -1;
        }
    }
    return 0;
}

void zmq_guard_flush(struct zmq_guard *g)
{
    if (!g) {
        return;
    }
    while (!mk_list_is_empty(&g->flushq)) {
        struct guard_native *c = mk_list_entry(g->flushq.next,
                                               struct guard_native, _flush);
        mk_list_del(&c->_flush);
        c->flushing = 0;
        if (c->ev.fd < 0) {
            continue;
        }
        if (guard_native_flush(c) < 0) {
            guard_native_close(c);
        }
    }
}

/* Appends bytes for the node; written at the end of the batch. */
static int guard_native_put(struct guard_native *c, const void *p,
                            size_t len)
{
    struct zmq_guard *g = c->guard;
    size_t need = c->out_off + c->out_len + len, cap;
    uint8_t *out;

    if (need > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len);
            c->out_off = 0;
            need = c->out_len + len;
        }
        if (need > c->out_cap) {
            cap = c->out_cap ? c->out_cap : 4096;
            while (cap < need) {
                cap *= 2;
            }
            out = mk_mem_realloc(c->out, cap);
            if (!out) {
                errno = ENOMEM;
                return -1;
            }
            c->out = out;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_off + c->out_len, p, len);
    c->out_len += len;
    if (!c->flushing && !c->writing) {
        c->flushing = 1;
        mk_list_add(&c->_flush, &g->flushq);
    }
    return 0;
}

static uint8_t *guard_native_frame(void *ctx, unsigned idx, uint64_t size)
{
    static uint8_t none;
    struct guard_native *c = ctx;
    uint8_t *data;

    if (idx >= ZMQ_ZMTP_PARTS_MAX || idx != c->nparts ||
        size > SIZE_MAX / 2 ||
        zmq_msg_init_size(&c->parts[idx], (size_t) size) < 0) {
        return NULL;
    }
    c->nparts++;
    data = zmq_msg_data(&c->parts[idx]);
    return data ? data : &none;
}

static int guard_native_message(void *ctx, unsigned n)
{
    struct guard_native *c = ctx;
    struct zmq_guard *g = c->guard;

    g->native_fn(g->native_ctx, c->listener->router, c->z.id, c->z.id_len,
                 c->parts, n);
    guard_native_parts_close(c);
    return 0;
}

/* The first connection keeps an identity, as libzmq's ROUTER without
 * ZMQ_ROUTER_HANDOVER does; a second one is closed, and said once a
 * minute per endpoint and identity. */
static int guard_native_ready(void *ctx)
{
    struct guard_native *c = ctx;
    struct zmq_guard *g = c->guard;
    char text[ZMQ_ZMTP_IDENTITY_MAX * 4 + 1], peer[80];

    if (!mk_hash_get(c->listener->ids, (const char *) c->z.id,
                     c->z.id_len)) {
        if (mk_hash_set(c->listener->ids, (const char *) c->z.id,
                        c->z.id_len, c) < 0) {
            return -1;
        }
        c->registered = 1;
        return 0;
    }
    c->duplicate = 1;
    g->dup_ids++;
    if (guard_dup_log_due(g, guard_fnv(guard_fnv(0xcbf29ce484222325ULL,
                                                 &c->listener,
                                                 sizeof(c->listener)),
                                       c->z.id, c->z.id_len))) {
        guard_identity_text(c->z.id, c->z.id_len, text, sizeof(text));
        mk_warn("zmq: a second peer claims node identity '%s' on %s: "
                "closed; give each node process its own identity "
                "([fd %d] from %s; %llu such connection(s) so far)", text,
                c->listener->endpoint, c->ev.fd,
                guard_peer(&c->peer, peer, sizeof(peer)),
                (unsigned long long) g->dup_ids);
    }
    return -1;
}

static int guard_native_reply(void *ctx, const uint8_t *p, size_t len)
{
    return guard_native_put(ctx, p, len);
}

static const struct zmq_zmtps_ops guard_native_ops = {
    guard_native_frame, guard_native_message, guard_native_ready,
    guard_native_reply,
};

/* Reads up to the budget; past it the connection waits on the backlog
 * for the next wake-up (zmq_guard_resume). */
static void guard_native_read(struct guard_native *c)
{
    size_t budget = ZMQ_GUARD_READ_BUDGET;
    ssize_t n;

    for (;;) {
        if (budget == 0) {
            if (!c->backlogged) {
                c->backlogged = 1;
                mk_list_add(&c->_backlog, &c->guard->backlog);
            }
            return;
        }
        n = recv(c->ev.fd, c->in, sizeof(c->in), 0);
        if (n > 0) {
            budget -= (size_t) n < budget ? (size_t) n : budget;
            if (zmq_zmtps_feed(&c->z, c->in, (size_t) n, &guard_native_ops,
                               c) != ZMQ_ZMTPS_OK) {
                if (!c->duplicate) {
                    guard_native_refuse(c);
                }
                guard_native_close(c);
                return;
            }
            if ((size_t) n < sizeof(c->in)) {
                return;                /* emptied: the next data is an edge */
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        guard_native_close(c);         /* EOF or error */
        return;
    }
}

static void guard_native_on_event(struct mk_event *ev, uint32_t events)
{
    struct guard_native *c = (struct guard_native *) ev;

    if ((events & MK_EVENT_WRITE) && c->writing &&
        guard_native_flush(c) < 0) {
        guard_native_close(c);
        return;
    }
    if ((events & (MK_EVENT_READ | MK_EVENT_CLOSE)) && !c->backlogged) {
        guard_native_read(c);
    }
}

int zmq_guard_resume(struct zmq_guard *g)
{
    struct mk_list todo;

    if (!g || mk_list_is_empty(&g->backlog)) {
        return 0;
    }
    /* this round's connections only: one that uses its budget again goes
     * back on the backlog for the next round */
    mk_list_init(&todo);
    while (!mk_list_is_empty(&g->backlog)) {
        struct mk_list *it = g->backlog.next;
        mk_list_del(it);
        mk_list_add(it, &todo);
    }
    while (!mk_list_is_empty(&todo)) {
        struct guard_native *c = mk_list_entry(todo.next, struct guard_native,
                                               _backlog);
        mk_list_del(&c->_backlog);
        c->backlogged = 0;
        guard_native_read(c);
    }
    return !mk_list_is_empty(&g->backlog);
}

static void guard_native_open(struct guard_listener *l, int fd,
                              const struct sockaddr_storage *peer)
{
    struct zmq_guard *g = l->guard;
    struct guard_native *c = mk_mem_zalloc(sizeof(*c));
    uint8_t hello[128];
    size_t len;
    int one = 1;

    if (!c) {
        g->failed++;
        close(fd);
        return;
    }
    c->guard = g;
    c->listener = l;
    c->peer = *peer;
    zmq_zmtps_init(&c->z, g->frame_max, ZMQ_ZMTP_COMMAND_MAX);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (mk_event_add(g->loop, &c->ev, fd, MK_EVENT_READ,
                     guard_native_on_event) < 0) {
        g->failed++;
        close(fd);
        mk_mem_free(c);
        return;
    }
    mk_list_add(&c->_head, &g->natives);
    g->nconns++;
    /* the greeting and READY go at once: the peer needs no more of ours */
    len = zmq_zmtps_hello(hello, sizeof(hello));
    if (guard_native_put(c, hello, len) < 0) {
        guard_native_close(c);
    }
}

int zmq_guard_is_native(const struct zmq_guard *g, int router)
{
    return g && g->native_fn && router >= 0 && router < ZMQ_GUARD_ROUTERS &&
           g->by_router[router] && g->by_router[router]->ids;
}

int zmq_guard_send(struct zmq_guard *g, int router, const void *id,
                   size_t id_len, const void *sid, size_t sid_len,
                   const char *type, const void *body, size_t body_len,
                   size_t limit)
{
    struct guard_listener *l = g->by_router[router];
    struct guard_native *c = l && l->ids ? mk_hash_get(l->ids, id, id_len)
                                         : NULL;
    size_t type_len = strlen(type), hl;
    uint8_t hdr[9];

    if (!c) {
        errno = EHOSTUNREACH;
        return -1;
    }
    if (c->out_len > 0 && c->out_len + body_len > limit) {
        errno = EAGAIN;
        return -1;
    }
    hl = zmq_zmtps_header(hdr, sid_len, 1);
    if (guard_native_put(c, hdr, hl) < 0 ||
        (sid_len && guard_native_put(c, sid, sid_len) < 0)) {
        return -1;
    }
    hl = zmq_zmtps_header(hdr, type_len, 1);
    if (guard_native_put(c, hdr, hl) < 0 ||
        guard_native_put(c, type, type_len) < 0) {
        return -1;
    }
    hl = zmq_zmtps_header(hdr, body_len, 0);
    if (guard_native_put(c, hdr, hl) < 0 ||
        (body_len && guard_native_put(c, body, body_len) < 0)) {
        return -1;
    }
    /* a failed write is left for the end of the batch to close: the
     * caller may be handling this very connection's message */
    if (c->out_len >= ZMQ_GUARD_FLUSH_AT && !c->writing && c->flushing &&
        guard_native_flush(c) == 0 && c->out_len == 0) {
        mk_list_del(&c->_flush);
        c->flushing = 0;
    }
    return 0;
}
