/*
 * hooks: a test plugin (never shipped) for the hooks the next plugins
 * need (tests/integration/test_core_hooks.py):
 *
 * - a protocol "hooks-line" (ALPN "x-hooks", preferred over http/1.1):
 *   answers each input line with "hooks-line plain|tls: LINE\n". A
 *   listener selects it with `Listen ... protocol=hooks-line`; a TLS
 *   client by offering "x-hooks".
 * - per-stream accounting: counts the streams it admits and sees closed,
 *   refuses a request carrying X-Hooks-Refuse (503), and logs the totals
 *   at exit ("hooks: admitted=A closed=C refused=R").
 * - stream filters "hooks-a2b" (order 10) and "hooks-b2c" (order 20)
 *   that rewrite body bytes, attached at stage 20 in the order an
 *   X-Hooks-Filters header lists them (the declared order must win);
 *   file pieces are read and passed on as memory.
 * - a stream filter "hooks-hold" (order 30, X-Hooks-Filters: hold) that
 *   holds the whole body and its end, then releases them from a timer.
 * - a connection filter "hooks-pace" (with [HOOKS] Pace N > 0, attached at
 *   stage 10) that holds every byte and releases N bytes per 2 ms tick,
 *   logging "hooks-pace: released B bytes in K slices, held up to H" when
 *   the connection closes.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_timer.h"
#include "mk_server/mk_plugin.h"

struct hooks_conf {
    long long pace;
};

struct hooks_pace {
    struct mk_filter_link *link;
    struct mk_timer timer;
    struct mk_timer_heap *heap;
    struct mk_event_loop *loop;
    size_t released, slices, max_held;
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_hooks;

static atomic_int hooks_admitted, hooks_closed, hooks_refused;

/* ---- Protocol --------------------------------------------------------- */

static void hooks_line_start(struct mk_conn *c)
{
    mk_conn_timeout(c, 10000);
}

static int hooks_line_read(struct mk_conn *c)
{
    struct mk_ptr in = mk_conn_input(c);
    const char *nl;
    char out[512];
    size_t n;

    while (in.len && (nl = memchr(in.data, '\n', in.len)) != NULL) {
        n = mk_str_printf(out, sizeof(out), "hooks-line %s: %.*s\n",
                          mk_conn_is_secure(c) ? "tls" : "plain",
                          (int) (nl - in.data), in.data);
        if (mk_conn_write(c, out, n, MK_WRITE_COPY) < 0) {
            return MK_PROTO_CLOSE;
        }
        mk_conn_consume(c, (size_t) (nl - in.data) + 1);
        in = mk_conn_input(c);
    }
    return mk_conn_is_eof(c) ? MK_PROTO_CLOSE : MK_PROTO_OK;
}

static int hooks_line_timeout(struct mk_conn *c)
{
    return MK_PROTO_CLOSE;
}

static const struct mk_proto hooks_line_proto = {
    .name       = "hooks-line",
    .on_start   = hooks_line_start,
    .on_read    = hooks_line_read,
    .on_timeout = hooks_line_timeout,
};

static const struct mk_proto_decl hooks_protos[] = {
    { "hooks-line", "x-hooks", 5, &hooks_line_proto, NULL },
    { NULL, NULL, 0, NULL, NULL }
};

/* ---- Accounting ------------------------------------------------------- */

static int hooks_stream_open(void *conf, struct mk_stream *r)
{
    if (mk_request_header(r, "X-Hooks-Refuse").data) {
        atomic_fetch_add(&hooks_refused, 1);
        return 503;
    }
    atomic_fetch_add(&hooks_admitted, 1);
    return 0;
}

static void hooks_stream_close(void *conf, struct mk_stream *r)
{
    atomic_fetch_add(&hooks_closed, 1);
}

static void hooks_exit(void *conf, struct mk_server *srv)
{
    mk_info("hooks: admitted=%d closed=%d refused=%d",
            atomic_load(&hooks_admitted), atomic_load(&hooks_closed),
            atomic_load(&hooks_refused));
}

/* ---- Stream filters: byte rewriting ------------------------------------ */

static int hooks_rewrite(struct mk_filter_link *l, struct mk_piece *p,
                         char from, char to)
{
    struct mk_piece q = *p;
    char *buf;
    size_t i;

    if (p->type == MK_PIECE_END || p->len == 0) {
        return mk_filter_pass(l, p);
    }
    buf = mk_mem_alloc(p->len);
    if (!buf) {
        return -1;
    }
    if (p->type == MK_PIECE_FILE) {
        if (pread(p->fd, buf, p->len, p->offset) != (ssize_t) p->len) {
            mk_mem_free(buf);
            return -1;
        }
        if (p->close_fd) {
            close(p->fd);
        }
    }
    else {
        memcpy(buf, p->data, p->len);
        if (p->type == MK_PIECE_MEM && (p->flags & MK_WRITE_FREE)) {
            mk_mem_free((void *) p->data);
        }
    }
    for (i = 0; i < p->len; i++) {
        buf[i] = buf[i] == from ? to : buf[i];
    }
    q.type = MK_PIECE_MEM;
    q.data = buf;
    q.flags = MK_WRITE_FREE;
    return mk_filter_pass(l, &q);
}

static int hooks_a2b(struct mk_filter_link *l, struct mk_piece *p)
{
    return hooks_rewrite(l, p, 'a', 'b');
}

static int hooks_b2c(struct mk_filter_link *l, struct mk_piece *p)
{
    return hooks_rewrite(l, p, 'b', 'c');
}

/* ---- Stream filter: hold everything, release from a timer --------------- */

struct hooks_hold {
    struct mk_filter_link *link;
    struct mk_timer timer;
    struct mk_timer_heap *heap;
    struct mk_event_loop *loop;
};

static void hooks_hold_tick(struct mk_timer *t, void *data)
{
    struct hooks_hold *hh = data;

    mk_filter_release(hh->link, SIZE_MAX);
}

static int hooks_hold_piece(struct mk_filter_link *l, struct mk_piece *p)
{
    struct hooks_hold *hh = mk_filter_data(l);

    hh->link = l;
    if (mk_filter_hold(l, p) < 0) {
        return -1;
    }
    if (p->type == MK_PIECE_END) {
        mk_timer_arm(hh->heap, &hh->timer, mk_event_loop_now(hh->loop) + 1);
    }
    return 0;
}

static void hooks_hold_detach(struct mk_filter_link *l)
{
    struct hooks_hold *hh = mk_filter_data(l);

    mk_timer_disarm(hh->heap, &hh->timer);
    mk_mem_free(hh);
}

static int hooks_hold_attach(struct mk_stream *r, const struct mk_filter *f)
{
    struct hooks_hold *hh = mk_mem_zalloc(sizeof(*hh));

    if (!hh) {
        return -1;
    }
    hh->loop = mk_worker_loop(mk_conn_worker(mk_request_conn(r)));
    hh->heap = mk_event_loop_timers(hh->loop);
    mk_timer_init(&hh->timer, hooks_hold_tick, hh);
    if (mk_stream_filter_attach(r, f, hh) < 0) {
        mk_mem_free(hh);
        return -1;
    }
    return 0;
}

/* ---- Connection filter: pacing ------------------------------------------ */

static void hooks_pace_tick(struct mk_timer *t, void *data)
{
    struct hooks_pace *hp = data;
    const struct hooks_conf *conf = mk_server_plugin_conf(
        mk_conn_server(mk_filter_conn(hp->link)), &mk_plugin_hooks);
    long n = mk_filter_release(hp->link, (size_t) conf->pace);

    if (n > 0) {
        hp->released += (size_t) n;
        hp->slices++;
    }
    if (n >= 0 && mk_filter_held(hp->link) > 0) {
        mk_timer_arm(hp->heap, &hp->timer, mk_event_loop_now(hp->loop) + 2);
    }
}

static int hooks_pace_piece(struct mk_filter_link *l, struct mk_piece *p)
{
    struct hooks_pace *hp = mk_filter_data(l);

    hp->link = l;
    if (mk_filter_hold(l, p) < 0) {
        return -1;
    }
    if (mk_filter_held(l) > hp->max_held) {
        hp->max_held = mk_filter_held(l);
    }
    if (!mk_timer_is_armed(&hp->timer)) {
        mk_timer_arm(hp->heap, &hp->timer, mk_event_loop_now(hp->loop) + 2);
    }
    return 0;
}

static void hooks_pace_detach(struct mk_filter_link *l)
{
    struct hooks_pace *hp = mk_filter_data(l);

    mk_timer_disarm(hp->heap, &hp->timer);
    if (hp->slices) {
        mk_info("hooks-pace: released %zu bytes in %zu slices, held up to "
                "%zu", hp->released, hp->slices, hp->max_held);
    }
    mk_mem_free(hp);
}

/* Declared out of run order: `order` decides, not the array or the
 * attachment order. */
static const struct mk_filter hooks_filters[] = {
    { "hooks-b2c", 20, hooks_b2c, NULL },
    { "hooks-pace", 100, hooks_pace_piece, hooks_pace_detach },
    { "hooks-a2b", 10, hooks_a2b, NULL },
    { "hooks-hold", 30, hooks_hold_piece, hooks_hold_detach },
    { NULL, 0, NULL, NULL }
};

static int hooks_accept(void *conf, struct mk_conn *c)
{
    const struct hooks_conf *hc = conf;
    struct hooks_pace *hp;

    if (hc->pace <= 0) {
        return MK_STAGE_NEXT;
    }
    hp = mk_mem_zalloc(sizeof(*hp));
    if (!hp) {
        return MK_STAGE_CLOSE;
    }
    hp->loop = mk_worker_loop(mk_conn_worker(c));
    hp->heap = mk_event_loop_timers(hp->loop);
    mk_timer_init(&hp->timer, hooks_pace_tick, hp);
    if (mk_conn_filter_attach(c, &hooks_filters[1], hp) < 0) {
        mk_mem_free(hp);
        return MK_STAGE_CLOSE;
    }
    return MK_STAGE_NEXT;
}

static int hooks_request(void *conf, struct mk_stream *r)
{
    struct mk_ptr want = mk_request_header(r, "X-Hooks-Filters");
    size_t i;

    for (i = 0; i + 3 <= want.len; i++) {
        const struct mk_filter *f = NULL;
        if (memcmp(want.data + i, "b2c", 3) == 0) {
            f = &hooks_filters[0];
        }
        else if (memcmp(want.data + i, "a2b", 3) == 0) {
            f = &hooks_filters[2];
        }
        if (f && mk_stream_filter_attach(r, f, NULL) < 0) {
            return MK_STAGE_CLOSE;
        }
        if (i + 4 <= want.len && memcmp(want.data + i, "hold", 4) == 0 &&
            hooks_hold_attach(r, &hooks_filters[3]) < 0) {
            return MK_STAGE_CLOSE;
        }
    }
    return MK_STAGE_NEXT;
}

static const struct mk_conf_key hooks_keys[] = {
    MK_CONF_INT("Pace", struct hooks_conf, pace, "0", 0, 1 << 20),
    MK_CONF_END
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_hooks = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "hooks",
    .description     = "test plugin: protocol registry, filters, accounting",
    .conf_keys       = hooks_keys,
    .conf_size       = sizeof(struct hooks_conf),
    .exit            = hooks_exit,
    .on_accept       = hooks_accept,
    .on_request      = hooks_request,
    .protos          = hooks_protos,
    .filters         = hooks_filters,
    .on_stream_open  = hooks_stream_open,
    .on_stream_close = hooks_stream_close,
};
