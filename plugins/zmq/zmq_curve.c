/*
 * Node authentication beyond identity (spec section 0): ZeroMQ CURVE on
 * every ROUTER, and a ZAP handler (RFC 27) in the gateway thread that
 * accepts only node public keys listed in `CurveKeys`, each for the node
 * identities listed with it. libzmq does the cryptography; this file
 * answers ZAP requests and checks the identity of every node message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

/* Keys with no identity list: one warning for the file, with the first. */
static void curve_warn_any(const struct zmq_curve_keys *ks, const char *path)
{
    size_t i, any = 0;
    int first = 0;

    for (i = 0; i < ks->count; i++) {
        if (ks->keys[i].count == 0 && any++ == 0) {
            first = ks->keys[i].line;
        }
    }
    if (any) {
        mk_warn("zmq: %s:%d: %zu key(s) with no identity list may claim any "
                "node's identity: list the identities each may use after "
                "it, or `*` for any", path, first, any);
    }
}

int zmq_curve_setup(struct zmq_gw *gw, const struct zmq_conf *conf,
                    char *err, size_t errlen)
{
    if (!conf->curve) {
        return 0;
    }
    if (zmq_curve_keys_load(&gw->curve_keys, conf->curve_keys, err,
                            errlen) < 0) {
        return -1;
    }
    mk_info("zmq: CURVE on, %zu node key(s) allowed", gw->curve_keys.count);
    curve_warn_any(&gw->curve_keys, conf->curve_keys);
    /* libzmq asks the handler bound here, in the same context */
    gw->zap = zmq_socket(gw->ctx, ZMQ_REP);
    if (!gw->zap || zmq_bind(gw->zap, "inproc://zeromq.zap.01") < 0) {
        return mk_str_fail(err, errlen, "zmq: ZAP handler: %s",
                           zmq_strerror(zmq_errno()));
    }
    return 0;
}

int zmq_curve_socket(struct zmq_gw *gw, const struct zmq_conf *conf,
                     void *router, char *err, size_t errlen)
{
    int on = 1;

    if (!conf->curve) {
        return 0;
    }
    if (zmq_setsockopt(router, ZMQ_CURVE_SERVER, &on, sizeof(on)) < 0 ||
        zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, conf->curve_secret,
                       ZMQ_CURVE_Z85_LEN) < 0) {
        return mk_str_fail(err, errlen, "zmq: CurveSecretKey: %s",
                           zmq_strerror(zmq_errno()));
    }
    return 0;
}

/* One ZAP request: [version, request id, domain, address, identity,
 * mechanism, credentials...]; the reply is [version, request id, status
 * code, status text, user id, metadata]. The request's identity is our
 * own socket's, not the node's (which libzmq learns later in the
 * handshake), so the key's identity list cannot be checked here: the user
 * id names the key, libzmq attaches it to every message of that
 * connection, and zmq_curve_permits checks each one. */
void zmq_curve_handle(struct zmq_gw *gw)
{
    zmq_msg_t parts[8];
    int n = 0, more = 1, ok = 0;
    long idx;
    char uid[24] = "";
    const char *status;

    while (more && n < 8) {
        zmq_msg_init(&parts[n]);
        if (zmq_msg_recv(&parts[n], gw->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&parts[n]);
            break;
        }
        more = zmq_msg_more(&parts[n]);
        n++;
    }
    if (n < 2) {
        while (n > 0) {
            zmq_msg_close(&parts[--n]);
        }
        return;
    }
    if (n == 7 && zmq_msg_size(&parts[5]) == 5 &&
        memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&parts[6]) == ZMQ_CURVE_KEY_LEN) {
        idx = zmq_curve_keys_find(&gw->curve_keys, zmq_msg_data(&parts[6]));
        if (idx >= 0) {
            mk_str_printf(uid, sizeof(uid), "%ld", idx);
            ok = 1;
        }
    }
    status = ok ? "200" : "400";
    zmq_send(gw->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(gw->zap, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]),
             ZMQ_SNDMORE);
    zmq_send(gw->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(gw->zap, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
    zmq_send(gw->zap, uid, strlen(uid), ZMQ_SNDMORE);
    zmq_send(gw->zap, "", 0, 0);
    if (!ok) {
        mk_info("zmq: refused a node whose CURVE key is not in CurveKeys");
    }
    while (n > 0) {
        zmq_msg_close(&parts[--n]);
    }
}

int zmq_curve_permits(const struct zmq_gw *gw, const zmq_msg_t *msg,
                      const char *id, size_t len)
{
    const char *uid;
    char *end;
    unsigned long idx;

    if (!gw->conf->curve) {
        return 1;
    }
    if (!msg) {
        return 0;                      /* no libzmq metadata: no key */
    }
    uid = zmq_msg_gets(msg, "User-Id");
    if (!uid) {
        return 0;
    }
    errno = 0;
    idx = strtoul(uid, &end, 10);
    if (errno || end == uid || *end != '\0' ||
        idx >= gw->curve_keys.count) {
        return 0;
    }
    return zmq_curve_key_permits(&gw->curve_keys.keys[idx], id, len);
}

void zmq_curve_release(struct zmq_gw *gw)
{
    if (gw->zap) {
        zmq_close(gw->zap);
        gw->zap = NULL;
    }
    zmq_curve_keys_release(&gw->curve_keys);
}
