/*
 * Fuzz target for the http2 plugin (plugins/http2): the input is what a
 * client sends after the connection preface.
 *
 * The plugin's sources are #included, so the connection runs exactly as in
 * the server: h2_on_start() makes the nghttp2 server session with the
 * plugin's own options (h2_session_new: no automatic window updates,
 * max_settings, max_outbound_ack, the library's reset-rate and
 * CONTINUATION limits) and callbacks (h2_callbacks: the flood counts,
 * header accounting, streams onto mk_stream), and submits its SETTINGS
 * from the [HTTP2] defaults, resolved by the plugin's own conf_check from
 * its own key table. Only the world around it is hand-built, as in
 * tests/unit/mk_server/mk_conn.c and mk_stream.c: a worker with its event
 * loop, a plain listener whose protocol is h2 (as after the preface), a
 * socketpair for the connection, and one content handler that answers
 * "/big" with 200 KB (flow control, zero windows), "/hold" never (streams
 * open at close) and anything else with 2 bytes; request bodies are read
 * and dropped.
 *
 * Per input: preface + input are written to the client's end while the
 * worker loop runs, then the client half-closes and the loop runs until
 * the connection is gone; one that still waits (zero windows, a held
 * stream) has its deadline passed, then is closed as a stopping worker
 * does, and must then be gone. The server's output must be frames (cut
 * only where a failed connection stopped it), start with the plugin's
 * SETTINGS, never hold PUSH_PROMISE nor an even stream id (Push off: the
 * server opens no stream); ASan/LSan see the rest (every stream and
 * buffer freed at close).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mk_core/mk_event.h"
#include "mk_core/mk_hash.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "plugins/http2/http2.c"
#include "plugins/http2/h2_conn.c"
#include "plugins/http2/h2_stream.c"
#include "fuzz_util.h"

#define FUZZ_OUT_MAX   (1 << 20)       /* server bytes kept for the checks */
#define FUZZ_SPINS     256             /* loop passes before giving up */

static const char fuzz_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/* FUZZ_H2_TRACE=1 in the environment: the server's frames on stderr, to
 * read what a crashing input did. */
static int fuzz_trace;

/* ---- The content handler ------------------------------------------------ */

static char fuzz_big[200 * 1024];

static int fuzz_app_content(void *conf, struct mk_stream *r)
{
    const char *path = mk_request_clean_path(r);

    (void) conf;
    if (strcmp(path, "/hold") == 0) {
        return MK_STAGE_HANDLED;       /* answered never: open at close */
    }
    mk_response_status(r, 200);
    mk_response_header(r, "Content-Type", "text/plain");
    if (strcmp(path, "/big") == 0) {
        mk_response_content_length(r, sizeof(fuzz_big));
        mk_response_write(r, fuzz_big, sizeof(fuzz_big), MK_WRITE_STATIC);
    }
    else {
        mk_response_content_length(r, 2);
        mk_response_write(r, "ok", 2, MK_WRITE_STATIC);
    }
    mk_response_end(r);
    return MK_STAGE_HANDLED;
}

static int fuzz_app_body(void *conf, struct mk_stream *r, const char *data,
                         size_t len)
{
    (void) conf;
    (void) r;
    (void) data;
    (void) len;
    return 0;
}

static const struct mk_plugin fuzz_app = {
    .abi = MK_PLUGIN_ABI, .name = "app", .on_content = fuzz_app_content,
    .on_body = fuzz_app_body,
};

/* ---- The world: a server, a listener, a worker -------------------------- */

static ssize_t fuzz_io_read(struct mk_conn *c, void *buf, size_t len)
{
    ssize_t n = read(mk_conn_fd(c), buf, len);

    if (n < 0) {
        return errno == EAGAIN ? MK_IO_AGAIN : MK_IO_ERROR;
    }
    return n;
}

static ssize_t fuzz_io_writev(struct mk_conn *c, const struct iovec *iov,
                              int iovcnt)
{
    ssize_t n = writev(mk_conn_fd(c), iov, iovcnt);

    if (n < 0) {
        return errno == EAGAIN ? MK_IO_AGAIN : MK_IO_ERROR;
    }
    return n;
}

static const struct mk_net_io fuzz_io = {
    .name = "fuzz", .read = fuzz_io_read, .writev = fuzz_io_writev,
};

static struct mk_server fuzz_srv;
static struct mk_plugin_inst fuzz_insts[2];
static struct h2_conf fuzz_h2;
static void **fuzz_site_confs[2];
static size_t fuzz_site_counts[2];
static struct mk_vhost fuzz_vhost;
static struct mk_listen fuzz_listen;
static struct mk_worker fuzz_worker;

static void fuzz_world_init(void)
{
    char err[256];

    memset(fuzz_big, 'b', sizeof(fuzz_big));
    /* [HTTP2] with every key at its default, resolved by the plugin */
    FUZZ_CHECK(mk_conf_apply(NULL, h2_keys, &fuzz_h2, err, sizeof(err)) == 0);
    FUZZ_CHECK(h2_conf_check(&fuzz_h2, &fuzz_srv, err, sizeof(err)) == 0);

    fuzz_insts[0] = (struct mk_plugin_inst) {
        .p = &mk_plugin_http2, .conf = &fuzz_h2, .index = 0 };
    fuzz_insts[1] = (struct mk_plugin_inst) { .p = &fuzz_app, .index = 1 };
    fuzz_srv.plugins = fuzz_insts;
    fuzz_srv.plugin_count = 2;
    fuzz_srv.conf.write_queue_limit = 1 << 20;
    fuzz_srv.conf.send_timeout = 60000;
    fuzz_srv.conf.max_request_body = 1 << 20;
    mk_http_limits_default(&fuzz_srv.limits);

    fuzz_vhost.handler = 1;
    fuzz_vhost.srv = &fuzz_srv;
    fuzz_vhost.plugin_confs = fuzz_site_confs;     /* no site [HTTP2] */
    fuzz_vhost.plugin_conf_counts = fuzz_site_counts;
    fuzz_srv.default_vhost = &fuzz_vhost;
    fuzz_srv.vhost_names = mk_hash_create(4, 0);   /* no names: default */
    FUZZ_CHECK(fuzz_srv.vhost_names != NULL);

    fuzz_listen.io = &fuzz_io;
    fuzz_listen.proto = &h2_proto;                 /* the preface came */
    fuzz_listen.default_vhost = &fuzz_vhost;

    fuzz_worker.srv = &fuzz_srv;
    fuzz_worker.loop = mk_event_loop_create(16);
    FUZZ_CHECK(fuzz_worker.loop != NULL);
    mk_list_init(&fuzz_worker.conns);
    mk_list_init(&fuzz_worker.closed);
    mk_list_init(&fuzz_worker.posted);
    mk_list_init(&fuzz_worker.free_streams);
}

/* Closed connections are freed after the batch, as the worker does. */
static void fuzz_free_closed(void)
{
    while (!mk_list_is_empty(&fuzz_worker.closed)) {
        struct mk_conn *c = mk_list_entry(fuzz_worker.closed.next,
                                          struct mk_conn, _head);
        mk_list_del(&c->_head);
        mk_conn_destroy(c);
    }
}

/* ---- The client's end --------------------------------------------------- */

struct fuzz_out {
    uint8_t *buf;
    size_t len;
    int eof;
};

static void fuzz_drain(int peer, struct fuzz_out *o)
{
    uint8_t tmp[16384];
    ssize_t n;

    while ((n = read(peer, tmp, sizeof(tmp))) > 0) {
        size_t take = (size_t) n;
        if (o->len + take > FUZZ_OUT_MAX) {
            take = FUZZ_OUT_MAX - o->len;
        }
        memcpy(o->buf + o->len, tmp, take);
        o->len += take;
    }
    if (n == 0) {
        o->eof = 1;
    }
}

/* One pass of the worker: I/O events, posted work, frees. */
static void fuzz_turn(int peer, struct fuzz_out *o)
{
    mk_event_loop_run_once(fuzz_worker.loop, 0);
    mk_worker_run_posted(&fuzz_worker);
    fuzz_free_closed();
    fuzz_drain(peer, o);
}

/* Worker passes until the connection is gone (or FUZZ_SPINS). */
static void fuzz_settle(int peer, struct fuzz_out *o)
{
    int spins;

    for (spins = 0; spins < FUZZ_SPINS &&
         !mk_list_is_empty(&fuzz_worker.conns); spins++) {
        fuzz_turn(peer, o);
    }
}

/* The server's bytes: frames (a cut only in the last one, which a failed
 * connection may leave), the plugin's SETTINGS first, no PUSH_PROMISE and
 * no even stream id (Push off), no unknown frame type. */
static void fuzz_check_output(const struct fuzz_out *o)
{
    size_t pos = 0;
    int first = 1;

    if (o->len == 0) {
        return;                        /* e.g. closed before writing */
    }
    while (pos + 9 <= o->len) {
        uint32_t len = (uint32_t) o->buf[pos] << 16 |
                       (uint32_t) o->buf[pos + 1] << 8 | o->buf[pos + 2];
        uint8_t type = o->buf[pos + 3];
        uint32_t sid = ((uint32_t) o->buf[pos + 5] << 24 |
                        (uint32_t) o->buf[pos + 6] << 16 |
                        (uint32_t) o->buf[pos + 7] << 8 | o->buf[pos + 8]) &
                       0x7fffffffu;

        if (fuzz_trace) {
            fprintf(stderr, "server: type %u flags 0x%02x stream %u len %u\n",
                    type, o->buf[pos + 4], sid, len);
        }
        FUZZ_CHECK(type <= NGHTTP2_CONTINUATION);
        FUZZ_CHECK(type != NGHTTP2_PUSH_PROMISE);
        FUZZ_CHECK(sid == 0 || (sid & 1) == 1);
        if (first) {
            /* our SETTINGS, with the configured values */
            FUZZ_CHECK(type == NGHTTP2_SETTINGS && sid == 0 && len % 6 == 0);
            if (pos + 9 + len <= o->len) {
                size_t i;
                int streams = 0, list = 0;
                for (i = 0; i < len; i += 6) {
                    const uint8_t *e = o->buf + pos + 9 + i;
                    uint16_t id = (uint16_t) (e[0] << 8 | e[1]);
                    uint32_t v = (uint32_t) e[2] << 24 |
                                 (uint32_t) e[3] << 16 |
                                 (uint32_t) e[4] << 8 | e[5];
                    if (id == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) {
                        streams = v == fuzz_h2.set.max_streams;
                    }
                    if (id == NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE) {
                        list = v == fuzz_h2.set.max_header_list;
                    }
                }
                FUZZ_CHECK(streams && list);
            }
            first = 0;
        }
        pos += 9 + len;
    }
}

/* ---- One input ---------------------------------------------------------- */

static void fuzz_one(const uint8_t *data, size_t size, struct fuzz_out *o)
{
    struct sockaddr sa = { .sa_family = AF_UNIX };
    struct mk_conn *c;
    size_t off = 0, total = sizeof(fuzz_preface) - 1 + size;
    uint8_t *in;
    int sv[2], spins, closed = 0;

    in = mk_mem_alloc(total);
    if (!in) {
        return;
    }
    memcpy(in, fuzz_preface, sizeof(fuzz_preface) - 1);
    memcpy(in + sizeof(fuzz_preface) - 1, data, size);
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    FUZZ_CHECK(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) == 0);
    FUZZ_CHECK(fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK) == 0);
    c = mk_conn_create(&fuzz_srv, &fuzz_listen, sv[0], &sa);
    FUZZ_CHECK(c != NULL);
    mk_conn_start(&fuzz_worker, c);

    /* the client writes what the socket takes while the server runs */
    for (spins = 0; off < total && spins < 64 * FUZZ_SPINS; spins++) {
        ssize_t n = write(sv[1], in + off, total - off);
        if (n > 0) {
            off += (size_t) n;
        }
        else if (n < 0 && errno != EAGAIN) {
            break;                     /* the server closed */
        }
        fuzz_turn(sv[1], o);
        if (mk_list_is_empty(&fuzz_worker.conns)) {
            closed = 1;
            break;
        }
    }
    mk_mem_free(in);
    /* what the server does with it, then the client's FIN */
    for (spins = 0; !closed && spins < 8; spins++) {
        fuzz_turn(sv[1], o);
    }
    shutdown(sv[1], SHUT_WR);
    fuzz_settle(sv[1], o);
    /* The client's FIN lets streams finish: responses still waiting (a
     * zero window, a window never reopened) wait for the connection's
     * deadline, which passes here as WindowTimeout or SendTimeout would;
     * a stream its handler holds ("/hold") lasts until the worker stops. */
    if (!mk_list_is_empty(&fuzz_worker.conns)) {
        c = mk_list_entry(fuzz_worker.conns.next, struct mk_conn, _head);
        if (c->deadline) {
            c->deadline = 1;
            c->timer.cb(&c->timer, c->timer.data);
        }
        fuzz_settle(sv[1], o);
    }
    if (!mk_list_is_empty(&fuzz_worker.conns)) {
        c = mk_list_entry(fuzz_worker.conns.next, struct mk_conn, _head);
        mk_conn_close(c, 0);
        fuzz_settle(sv[1], o);
    }
    FUZZ_CHECK(mk_list_is_empty(&fuzz_worker.conns));
    fuzz_drain(sv[1], o);
    fuzz_check_output(o);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct fuzz_out o = { 0 };

    if (!ready) {
        fuzz_trace = getenv("FUZZ_H2_TRACE") != NULL;
        fuzz_world_init();
        ready = 1;
    }
    o.buf = mk_mem_alloc(FUZZ_OUT_MAX);
    if (!o.buf) {
        return 0;
    }
    fuzz_one(data, size, &o);
    mk_mem_free(o.buf);
    return 0;
}
