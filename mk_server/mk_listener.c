/*
 * Listening sockets. `Listen [ADDR:]PORT [LAYER]` lines become sockets:
 * one per worker in reuseport mode (SO_REUSEPORT, the kernel spreads
 * connections), one in fair mode. A reload hands the same descriptors to
 * the new generation, so no connection waiting in a backlog is lost and
 * ports below 1024 keep working after privileges were dropped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_server.h"

#define MK_LISTEN_BACKLOG 1024

struct mk_kernel_features {
    int reuseport;
    int fastopen;
    int defer_accept;
};

static struct mk_kernel_features features;
static int features_probed;

static int probe(int level, int opt, int value)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok;

    if (fd < 0) {
        return 0;
    }
    ok = setsockopt(fd, level, opt, &value, sizeof(value)) == 0;
    close(fd);
    return ok;
}

static void features_probe(void)
{
    if (features_probed) {
        return;
    }
    features_probed = 1;
#ifdef SO_REUSEPORT
    features.reuseport = probe(SOL_SOCKET, SO_REUSEPORT, 1);
#endif
#ifdef TCP_FASTOPEN
    features.fastopen = probe(IPPROTO_TCP, TCP_FASTOPEN, 256);
#endif
#ifdef TCP_DEFER_ACCEPT
    features.defer_accept = probe(IPPROTO_TCP, TCP_DEFER_ACCEPT, 1);
#endif
}

void mk_listeners_log_features(void)
{
    features_probe();
    mk_info("kernel: SO_REUSEPORT %s, TCP_FASTOPEN %s, TCP_DEFER_ACCEPT %s",
            features.reuseport ? "yes" : "no",
            features.fastopen ? "yes" : "no",
            features.defer_accept ? "yes" : "no");
}

int mk_listener_reuseport_available(void)
{
    features_probe();
    return features.reuseport;
}

/* "2001", "127.0.0.1:2001", "[::1]:2001", "*:2001", "[::]:2001",
 * "[fe80::1%eth0]:2001" + layer */
/* After the address: at most one LAYER word and one protocol=NAME, in
 * any order (default: the plain-socket layer, resolved by mk_config.c once
 * the plugins are loaded, and http/1.1). */
static int listen_options(const char *value, const char *p,
                          struct mk_listen *out, char *err, size_t errlen)
{
    const char *layer = NULL, *proto = "http/1.1";
    int have_layer = 0, have_proto = 0;
    char words[2][64];
    size_t n;

    while (p && *p) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        n = strcspn(p, " \t");
        if (n == 0) {
            break;
        }
        if (n > 9 && strncmp(p, "protocol=", 9) == 0 && !have_proto &&
            n - 9 < sizeof(words[1])) {
            memcpy(words[1], p + 9, n - 9);
            words[1][n - 9] = '\0';
            proto = words[1];
            have_proto = 1;
        }
        else if (strncmp(p, "protocol=", 9) != 0 && !have_layer &&
                 n < sizeof(words[0])) {
            memcpy(words[0], p, n);
            words[0][n] = '\0';
            layer = words[0];
            have_layer = 1;
        }
        else {
            snprintf(err, errlen, "\"%s\": expected [ADDR:]PORT [LAYER] "
                     "[protocol=NAME]", value);
            return -1;
        }
        p += n;
    }
    out->layer = layer ? mk_mem_strdup(layer) : NULL;
    out->proto_name = mk_mem_strdup(proto);
    if ((layer && !out->layer) || !out->proto_name) {
        mk_mem_free(out->layer);
        mk_mem_free(out->proto_name);
        out->layer = out->proto_name = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int mk_listen_parse(const char *value, struct mk_listen *out,
                    char *err, size_t errlen)
{
    char addr[64] = "0.0.0.0";
    const char *p = value, *port_s, *sp;
    size_t alen, plen;
    char *end;
    long port;

    memset(out, 0, sizeof(*out));
    sp = strpbrk(p, " \t");
    plen = sp ? (size_t) (sp - p) : strlen(p);
    if (plen == 0 || plen >= sizeof(out->text)) {
        snprintf(err, errlen, "\"%s\": expected [ADDR:]PORT [LAYER] "
                 "[protocol=NAME]", value);
        return -1;
    }
    memcpy(out->text, p, plen);
    out->text[plen] = '\0';

    if (out->text[0] == '[') {
        const char *rb = strchr(out->text, ']');
        if (!rb || rb[1] != ':') {
            snprintf(err, errlen, "\"%s\": IPv6 address must be written "
                     "[ADDR]:PORT", out->text);
            return -1;
        }
        alen = (size_t) (rb - out->text - 1);
        if (alen >= sizeof(addr)) {
            goto bad_addr;
        }
        memcpy(addr, out->text + 1, alen);
        addr[alen] = '\0';
        port_s = rb + 2;
    }
    else if ((port_s = strrchr(out->text, ':')) != NULL) {
        alen = (size_t) (port_s - out->text);
        if (alen >= sizeof(addr)) {
            goto bad_addr;
        }
        memcpy(addr, out->text, alen);
        addr[alen] = '\0';
        if (strcmp(addr, "*") == 0) {
            strcpy(addr, "0.0.0.0");
        }
        port_s++;
    }
    else {
        port_s = out->text;
    }
    errno = 0;
    port = strtol(port_s, &end, 10);
    if (*port_s == '\0' || *end != '\0' || errno || port < 1 || port > 65535) {
        snprintf(err, errlen, "\"%s\": port must be 1..65535", out->text);
        return -1;
    }
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &out->addr;
        char *scope = strchr(addr, '%');
        /* a link-local address needs its interface: [fe80::1%eth0]:80 */
        if (scope) {
            *scope++ = '\0';
            in6->sin6_scope_id = if_nametoindex(scope);
            if (!in6->sin6_scope_id) {
                snprintf(err, errlen, "\"%s\": no network interface \"%s\"",
                         out->text, scope);
                return -1;
            }
        }
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1) {
            goto bad_addr;
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t) port);
        out->addrlen = sizeof(*in6);
    }
    else {
        struct sockaddr_in *in = (struct sockaddr_in *) &out->addr;
        if (inet_pton(AF_INET, addr, &in->sin_addr) != 1) {
            goto bad_addr;
        }
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t) port);
        out->addrlen = sizeof(*in);
    }

    return listen_options(value, sp, out, err, errlen);

bad_addr:
    snprintf(err, errlen, "\"%s\": \"%s\" is not a numeric IPv4 or IPv6 "
             "address", out->text, addr);
    return -1;
}

static int listen_socket(const struct mk_listen *l, int reuseport,
                         uint64_t defer_s, char *err, size_t errlen)
{
    int fd, on = 1;

    fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", l->text, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
#ifdef SO_REUSEPORT
    if (reuseport &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0) {
        snprintf(err, errlen, "%s: SO_REUSEPORT: %s", l->text, strerror(errno));
        goto error;
    }
#endif
    if (l->addr.ss_family == AF_INET6) {
        /* [::] and 0.0.0.0 are separate Listen lines, never implicit */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    /* accepted sockets inherit TCP_NODELAY: one syscall per listener, not
     * per connection */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
#ifdef TCP_DEFER_ACCEPT
    if (features.defer_accept) {
        int secs = (int) (defer_s ? defer_s : 1);
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
    }
#endif
#ifdef TCP_FASTOPEN
    if (features.fastopen) {
        int qlen = 256;
        setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen));
    }
#endif
    if (bind(fd, (const struct sockaddr *) &l->addr, l->addrlen) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", l->text,
                 strerror(errno));
        goto error;
    }
    if (listen(fd, MK_LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "%s: listen: %s", l->text, strerror(errno));
        goto error;
    }
    return fd;

error:
    close(fd);
    return -1;
}

static int listen_same(const struct mk_listen *a, const struct mk_listen *b)
{
    return a->addrlen == b->addrlen &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0 &&
           strcmp(a->layer, b->layer) == 0;
}

/* Takes the socket of slot `s` from the previous generation if it listened
 * on the same address the same way; marks it taken there (-1). */
static int listen_take(struct mk_server *prev, const struct mk_listen *l,
                       int s, int reuseport)
{
    size_t i;
    int fd;

    if (!prev || (prev->conf.scheduler == MK_SCHED_REUSEPORT) != reuseport) {
        return -1;
    }
    for (i = 0; i < prev->listen_count; i++) {
        struct mk_listen *pl = &prev->listens[i];
        if (listen_same(pl, l) && s < pl->slots && pl->fds[s] >= 0) {
            fd = pl->fds[s];
            return fd;
        }
    }
    return -1;
}

int mk_listeners_open(struct mk_server *srv, struct mk_server *prev,
                      char *err, size_t errlen)
{
    int reuseport = srv->conf.scheduler == MK_SCHED_REUSEPORT;
    size_t i;
    int s;

    features_probe();
    for (i = 0; i < srv->listen_count; i++) {
        struct mk_listen *l = &srv->listens[i];
        l->slots = reuseport ? srv->worker_count : 1;
        l->fds = mk_mem_alloc((size_t) l->slots * sizeof(int));
        if (!l->fds) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (s = 0; s < l->slots; s++) {
            l->fds[s] = listen_take(prev, l, s, reuseport);
        }
        for (s = 0; s < l->slots; s++) {
            if (l->fds[s] >= 0) {
                continue;
            }
            l->fds[s] = listen_socket(l, reuseport,
                                      srv->conf.header_timeout / 1000,
                                      err, errlen);
            if (l->fds[s] < 0) {
                return -1;      /* the caller closes what was opened */
            }
        }
    }
    return 0;
}

static int fd_in_use(const struct mk_server *cur, int fd)
{
    size_t i;
    int s;

    for (i = 0; cur && i < cur->listen_count; i++) {
        for (s = 0; s < cur->listens[i].slots; s++) {
            if (cur->listens[i].fds && cur->listens[i].fds[s] == fd) {
                return 1;
            }
        }
    }
    return 0;
}

/* Closes old's sockets that cur did not take over (cur may be NULL). */
void mk_listeners_close_unused(struct mk_server *old, struct mk_server *cur)
{
    size_t i;
    int s;

    for (i = 0; i < old->listen_count; i++) {
        struct mk_listen *l = &old->listens[i];
        for (s = 0; l->fds && s < l->slots; s++) {
            if (l->fds[s] >= 0 && !fd_in_use(cur, l->fds[s])) {
                close(l->fds[s]);
            }
            l->fds[s] = -1;
        }
    }
}

/* The new generation runs: it owns the sockets it took over, so the old
 * one must not close them when it is freed. */
void mk_listeners_commit(struct mk_server *cur, struct mk_server *old)
{
    size_t i;
    int s;

    for (i = 0; i < old->listen_count; i++) {
        struct mk_listen *l = &old->listens[i];
        for (s = 0; l->fds && s < l->slots; s++) {
            if (l->fds[s] >= 0 && fd_in_use(cur, l->fds[s])) {
                l->fds[s] = -1;
            }
        }
    }
}
