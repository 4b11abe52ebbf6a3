/*
 * Node authentication beyond identity (spec section 0): ZeroMQ CURVE on
 * every ROUTER, and a ZAP handler (RFC 27) in the gateway thread that
 * accepts only node public keys listed in `CurveKeys`. libzmq does the
 * cryptography; this file only loads keys and answers ZAP requests.
 */
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

#define ZMQ_CURVE_KEY_LEN 32
#define ZMQ_CURVE_Z85_LEN 40

/* CurveKeys: one Z85 public key per line (40 characters), optionally
 * followed by blanks and a comment such as the node's name; '#' lines and
 * blank lines are skipped. */
static int curve_load_keys(struct zmq_gw *gw, const char *path, char *err,
                           size_t errlen)
{
    char line[512], z85[ZMQ_CURVE_Z85_LEN + 1];
    uint8_t key[ZMQ_CURVE_KEY_LEN];
    FILE *f = fopen(path, "r");
    int lineno = 0, count = 0;

    if (!f) {
        return mk_str_fail(err, errlen, "CurveKeys %s: cannot open", path);
    }
    while (fgets(line, sizeof(line), f)) {
        char *p = line;
        size_t n;

        lineno++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0') {
            continue;
        }
        n = strcspn(p, " \t\r\n");
        if (n != ZMQ_CURVE_Z85_LEN) {
            fclose(f);
            return mk_str_fail(err, errlen, "%s:%d: expected a 40-character "
                               "Z85 public key", path, lineno);
        }
        memcpy(z85, p, n);
        z85[n] = '\0';
        if (!zmq_z85_decode(key, z85) ||
            mk_hash_set(gw->curve_allowed, (const char *) key,
                        ZMQ_CURVE_KEY_LEN, gw) < 0) {
            fclose(f);
            return mk_str_fail(err, errlen, "%s:%d: not a Z85 key", path,
                               lineno);
        }
        count++;
    }
    fclose(f);
    mk_info("zmq: CURVE on, %d node key(s) allowed", count);
    return 0;
}

int zmq_curve_setup(struct zmq_gw *gw, const struct zmq_conf *conf,
                    char *err, size_t errlen)
{
    if (!conf->curve) {
        return 0;
    }
    gw->curve_allowed = mk_hash_create(16, 0);
    if (!gw->curve_allowed) {
        return mk_str_fail(err, errlen, "zmq: out of memory");
    }
    if (curve_load_keys(gw, conf->curve_keys, err, errlen) < 0) {
        return -1;
    }
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
 * code, status text, user id, metadata]. */
void zmq_curve_handle(struct zmq_gw *gw)
{
    zmq_msg_t parts[8];
    int n = 0, more = 1, ok = 0;
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
        zmq_msg_size(&parts[6]) == ZMQ_CURVE_KEY_LEN &&
        mk_hash_get(gw->curve_allowed, zmq_msg_data(&parts[6]),
                    ZMQ_CURVE_KEY_LEN)) {
        ok = 1;
    }
    status = ok ? "200" : "400";
    zmq_send(gw->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(gw->zap, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]),
             ZMQ_SNDMORE);
    zmq_send(gw->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(gw->zap, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
    zmq_send(gw->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(gw->zap, "", 0, 0);
    if (!ok) {
        mk_info("zmq: refused a node whose CURVE key is not in CurveKeys");
    }
    while (n > 0) {
        zmq_msg_close(&parts[--n]);
    }
}

void zmq_curve_release(struct zmq_gw *gw)
{
    if (gw->zap) {
        zmq_close(gw->zap);
        gw->zap = NULL;
    }
    if (gw->curve_allowed) {
        mk_hash_destroy(gw->curve_allowed, NULL);
        gw->curve_allowed = NULL;
    }
}
