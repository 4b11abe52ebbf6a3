/*
 * The ROUTER sockets nodes connect to: their options (ROUTER_MANDATORY,
 * MAXMSGSIZE from MaxFrameSize, CURVE), the node guard's private endpoint
 * in front of a relayed tcp:// Bind, and binding with a short retry while
 * a reload's old generation lets go of the address. Runs in the master,
 * before the gateway thread starts.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_string.h"
#include "plugins/zmq/zmq.h"

/* A tcp:// Bind the node guard relays: the guard listens on it, and the
 * ROUTER on a private endpoint only this process may connect to, so no
 * peer bypasses the guard. */
static int routers_guard_listen(struct zmq_gw *gw, void *s,
                                const struct zmq_conf *conf, int i,
                                char *ipc, size_t ipclen, char *err,
                                size_t errlen)
{
    uint64_t t0 = mk_clock_monotonic_ms();
    int backlog = ZMQ_GUARD_BACKLOG, rc;
    pid_t self = getpid();
    char why[256];

    /* the old generation closes its listener before it hands over */
    while ((rc = zmq_guard_listen(gw->guard, conf->endpoints[i], i, ipc, ipclen,
                                  why, sizeof(why))) < 0 &&
           errno == EADDRINUSE && mk_clock_monotonic_ms() - t0 < 1000) {
        usleep(10 * 1000);
    }
    if (rc < 0) {
        return mk_str_fail(err, errlen, "%s:%d: Bind: %s: %s",
                           conf->endpoint_files[i], conf->endpoint_lines[i],
                           conf->endpoints[i], why[0] ? why : strerror(errno));
    }
    if (zmq_setsockopt(s, ZMQ_IPC_FILTER_PID, &self, sizeof(self)) < 0 ||
        zmq_setsockopt(s, ZMQ_BACKLOG, &backlog, sizeof(backlog)) < 0) {
        return mk_str_fail(err, errlen, "zmq: node guard: %s",
                           zmq_strerror(errno));
    }
    return 0;
}

int zmq_gw_bind_router(struct zmq_gw *gw, const struct zmq_conf *conf, int i,
                       char *err, size_t errlen)
{
    /* MANDATORY: a send to a node that is gone or at its high-water mark
     * fails instead of being dropped silently, so a request is failed and
     * a body is held back (spec 1.6 FIX, 6.1.7) */
    int linger = 0, mandatory = 1, ipv6 = 1, rc;
    /* libzmq refuses a frame as soon as its header announces more than
     * this, and closes the connection: the frame is never received */
    int64_t maxmsg = conf->max_frame > INT64_MAX - ZMQ_CURVE_FRAME_OVERHEAD
                     ? -1 : (int64_t) conf->max_frame +
                            (conf->curve ? ZMQ_CURVE_FRAME_OVERHEAD : 0);
    const char *endpoint = conf->endpoints[i];
    uint64_t t0 = mk_clock_monotonic_ms();
    void *s = zmq_socket(gw->ctx, ZMQ_ROUTER);
    char ipc[128], why[256];

    if (!s) {
        return mk_str_fail(err, errlen, "zmq: socket: %s", zmq_strerror(errno));
    }
    gw->routers[gw->nrouters++] = s;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof(mandatory));
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    if (zmq_curve_socket(gw, conf, s, err, errlen) < 0) {
        return -1;
    }
    if (gw->guard &&
        zmq_guard_endpoint_kind(endpoint, why, sizeof(why)) == ZMQ_GUARD_TCP) {
        if (routers_guard_listen(gw, s, conf, i, ipc, sizeof(ipc), err,
                                 errlen) < 0) {
            return -1;
        }
        endpoint = ipc;
    }
    else if (strncmp(endpoint, "tcp://[", 7) == 0) {
        zmq_setsockopt(s, ZMQ_IPV6, &ipv6, sizeof(ipv6));
    }
    /* after a reload libzmq releases the old socket asynchronously */
    while ((rc = zmq_bind(s, endpoint)) < 0 &&
           zmq_errno() == EADDRINUSE && mk_clock_monotonic_ms() - t0 < 1000) {
        usleep(10 * 1000);
    }
    if (rc < 0) {
        return mk_str_fail(err, errlen, "%s:%d: Bind: %s: %s",
                           conf->endpoint_files[i], conf->endpoint_lines[i],
                           conf->endpoints[i], zmq_strerror(errno));
    }
    mk_info("zmq: nodes connect to %s%s", conf->endpoints[i],
            endpoint != ipc ? "" :
            conf->node_guard == ZMQ_GUARD_NATIVE ? " (node guard native)"
                                                 : " (node guard on)");
    return 0;
}
