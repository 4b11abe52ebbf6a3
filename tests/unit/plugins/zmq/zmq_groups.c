/* Groups as the gateway applies them (issue 10, point 8): a hostile
 * node's joins are bounded per session (GroupsPerSession) and per site
 * (Groups), refusals are counted, and a routed `msg` hands every recipient
 * the sender's own bytes. The groups are mk_server's (mk_group.c, tested
 * in tests/unit/mk_server/mk_group.c); the gateway's sends are stubbed:
 * they record who got what. */
#include <string.h>

#include "mk_test.h"
#include "plugins/zmq/zmq_msg.c"
#include "plugins/zmq/zmq_groups.c"
#include "plugins/zmq/zmq_wire.c"

static struct {
    const struct zmq_node *node[16];
    uint8_t sid[16][ZMQ_SID_LEN];
    zmq_msg_t *body[16];
    int count;
} sends;

int zmq_gw_send(struct zmq_gw *gw, struct zmq_node *n, const uint8_t *sid,
                const char *type, zmq_msg_t *body)
{
    if (sends.count < 16 && strcmp(type, "msg") == 0) {
        sends.node[sends.count] = n;
        memcpy(sends.sid[sends.count], sid, ZMQ_SID_LEN);
        sends.body[sends.count++] = body;
    }
    return 0;
}


struct world {
    struct zmq_conf conf;
    struct zmq_vconf site;
    struct zmq_gw gw;
    struct zmq_node node;
    struct zmq_binding b[3];
};

static void world_init(struct world *w, long long per_site,
                       long long per_session)
{
    int i;

    memset(w, 0, sizeof(*w));
    w->site.groups = per_site;
    w->site.session_groups = per_session;
    w->gw.conf = &w->conf;
    w->gw.bindings = mk_hash_create(16, 0);
    memcpy(w->node.id, "n1", 2);
    w->node.id_len = 2;
    for (i = 0; i < 3; i++) {
        struct zmq_binding *b = &w->b[i];
        memset(b->sid, 'a' + i, ZMQ_SID_LEN);
        b->node = &w->node;
        b->vc = &w->site;
        mk_hash_set(w->gw.bindings, (const char *) b->sid, ZMQ_SID_LEN, b);
    }
    sends.count = 0;
}

static void world_release(struct world *w)
{
    int i;

    for (i = 0; i < 3; i++) {
        mk_group_leave_all(w->b[i].sid);
        CHECK_EQ_INT(mk_group_session_count(w->b[i].sid), 0);
    }
    CHECK_EQ_INT(mk_group_count(&w->site), 0);
    CHECK_EQ_INT(mk_group_count(NULL), 0);
    mk_hash_destroy(w->gw.bindings, NULL);
}

/* A node message of `type` from binding b, with `body`. */
static int from_node(struct world *w, struct zmq_binding *b, const char *type,
                     const char *body, zmq_msg_t *frame)
{
    struct zmq_frame frames[4] = {
        { "n1", 2 }, { b->sid, ZMQ_SID_LEN }, { type, strlen(type) },
        { body, strlen(body) },
    };
    struct zmq_node_msg m;

    CHECK(zmq_msg_check(frames, 4, 0, &m) == ZMQ_REJECT_NONE);
    return zmq_groups_message(&w->gw, b, &m, frame);
}

static void count_member(void *ctx, const uint8_t *sid)
{
    (void) sid;
    ++*(int *) ctx;
}

static int group_exists(struct zmq_vconf *site, const char *name)
{
    int n = 0;

    return mk_group_route(site, name, strlen(name), NULL, count_member,
                          &n) >= 0;
}

static int join(struct world *w, struct zmq_binding *b, const char *name)
{
    return from_node(w, b, "join", name, NULL);
}

MK_TEST(sixty_thousand_joins_stop_at_the_session_cap)
{
    struct world w;
    char name[16], route[24];
    int i;

    world_init(&w, 1000000, 1000);
    for (i = 0; i < 60000; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        CHECK_EQ_INT(join(&w, &w.b[0], name), 0);     /* refused, not fatal */
    }
    CHECK_EQ_INT(mk_group_session_count(w.b[0].sid), 1000);
    CHECK_EQ_INT(mk_group_count(&w.site), 1000);
    CHECK_EQ_INT(w.gw.groups_refused, 59000);
    /* joining a group again costs nothing and counts nothing */
    for (i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        CHECK_EQ_INT(join(&w, &w.b[0], name), 0);
    }
    CHECK_EQ_INT(mk_group_session_count(w.b[0].sid), 1000);
    CHECK_EQ_INT(w.gw.groups_refused, 59000);
    /* g999 reaches its member (echo on); g1000 does not exist */
    snprintf(route, sizeof(route), "g%d:msg", 999);
    from_node(&w, &w.b[0], route, "in", NULL);
    snprintf(route, sizeof(route), "g%d:msg", 1000);
    from_node(&w, &w.b[0], route, "out", NULL);
    CHECK_EQ_INT(sends.count, 1);
    /* leaving makes room for another */
    CHECK_EQ_INT(from_node(&w, &w.b[0], "leave", "g5", NULL), 0);
    CHECK_EQ_INT(join(&w, &w.b[0], "late"), 0);
    CHECK_EQ_INT(mk_group_session_count(w.b[0].sid), 1000);
    CHECK(group_exists(&w.site, "late"));
    CHECK(!group_exists(&w.site, "g5"));
    world_release(&w);
}

MK_TEST(the_site_cap_counts_groups_not_members)
{
    struct world w;
    char name[16];
    int i;

    world_init(&w, 10, 1000);
    for (i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "room%d", i);
        CHECK_EQ_INT(join(&w, &w.b[0], name), 0);
    }
    CHECK_EQ_INT(join(&w, &w.b[1], "room10"), 0);    /* an 11th: refused */
    CHECK(!group_exists(&w.site, "room10"));
    CHECK_EQ_INT(join(&w, &w.b[1], "room3"), 0);     /* an existing one: in */
    CHECK_EQ_INT(mk_group_session_count(w.b[1].sid), 1);
    CHECK_EQ_INT(mk_group_count(&w.site), 10);
    mk_group_leave_all(w.b[0].sid);                  /* room3 stays (b[1]) */
    CHECK_EQ_INT(mk_group_count(&w.site), 1);
    CHECK_EQ_INT(join(&w, &w.b[1], "room10"), 0);
    CHECK_EQ_INT(mk_group_count(&w.site), 2);
    world_release(&w);
}

MK_TEST(routed_msg_shares_the_senders_bytes)
{
    struct world w;
    zmq_msg_t frame;
    int i;

    world_init(&w, 100, 100);
    for (i = 0; i < 3; i++) {
        CHECK_EQ_INT(join(&w, &w.b[i], "room"), 0);
    }
    CHECK_EQ_INT(from_node(&w, &w.b[2], "noecho", "room", NULL), 0);
    zmq_msg_init_size(&frame, 4096);
    CHECK_EQ_INT(from_node(&w, &w.b[2], "room:msg", "x", &frame), 0);
    CHECK_EQ_INT(sends.count, 2);                    /* b[2] has echo off */
    for (i = 0; i < sends.count; i++) {
        CHECK(sends.body[i] == &frame);              /* the same bytes */
        CHECK(memcmp(sends.sid[i], w.b[2].sid, ZMQ_SID_LEN) != 0);
    }
    zmq_msg_close(&frame);
    CHECK_EQ_INT(from_node(&w, &w.b[0], "join", "@bad", NULL), -1);
    world_release(&w);
}

/* What each worker's inbox received: wires, their recipients, payload. */
struct inbox_log {
    int wires;
    int sids;
    const void *data;
    uint64_t share;
};

static void on_worker_inbox(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    struct inbox_log *log = ch->data;
    struct zmq_wire *w = (struct zmq_wire *) msg;

    log->wires++;
    log->sids += (int) w->nsids;
    log->data = zmq_msg_data(&w->payload);
    log->share = w->share;
    CHECK(w->kind == ZMQ_WIRE_FANOUT && w->routed);
    zmq_wire_destroy(w);
}

/* mk_server batches a group's members by worker (tests/unit/mk_server/
 * mk_group.c); here each batch becomes one wire on its worker's inbox,
 * sharing the node's bytes and the fan-out's id, and `@sid` is a batch of
 * one on the recipient's worker. */
MK_TEST(a_batch_is_one_wire_on_its_workers_inbox)
{
    struct zmq_worker zw[2];
    struct zmq_worker *workers[3] = { &zw[0], &zw[1], NULL };
    struct inbox_log log[2];
    struct zmq_frame frames[4];
    struct zmq_node_msg m;
    struct groups_fan fan;
    uint8_t pair[2 * ZMQ_SID_LEN];
    struct world w;
    zmq_msg_t frame;
    int i;

    world_init(&w, 100, 100);
    memset(zw, 0, sizeof(zw));
    memset(log, 0, sizeof(log));
    w.gw.loop = mk_event_loop_create(16);
    w.gw.nworkers = 3;                   /* worker 2 gave its inbox back */
    w.gw.workers = workers;
    for (i = 0; i < 2; i++) {
        CHECK(mk_channel_init(&zw[i].inbox, w.gw.loop, on_worker_inbox,
                              &log[i]) == 0);
    }
    w.b[0].worker = 0;
    w.b[1].worker = 1;
    w.b[2].worker = 1;
    zmq_msg_init_size(&frame, 4096);
    frames[0] = (struct zmq_frame) { "n1", 2 };
    frames[1] = (struct zmq_frame) { w.b[0].sid, ZMQ_SID_LEN };
    frames[2] = (struct zmq_frame) { "room:websocket", 14 };
    frames[3] = (struct zmq_frame) { zmq_msg_data(&frame), 4096 };
    CHECK(zmq_msg_check(frames, 4, 0, &m) == ZMQ_REJECT_NONE);
    fan = (struct groups_fan) { &w.gw, &m, &frame, 42 };
    memcpy(pair, w.b[1].sid, ZMQ_SID_LEN);
    memcpy(pair + ZMQ_SID_LEN, w.b[2].sid, ZMQ_SID_LEN);
    groups_batch(&fan, 0, w.b[0].sid, 1);
    groups_batch(&fan, 1, pair, 2);
    groups_batch(&fan, 2, pair, 2);      /* nobody to take it */
    groups_batch(&fan, 7, pair, 2);      /* no such worker */
    mk_event_loop_flush(w.gw.loop);      /* the deferred wake-ups */
    for (i = 0; i < 2; i++) {
        mk_channel_flush(&zw[i].inbox);
    }
    CHECK_EQ_INT(log[0].wires, 1);
    CHECK_EQ_INT(log[0].sids, 1);
    CHECK_EQ_INT(log[1].wires, 1);
    CHECK_EQ_INT(log[1].sids, 2);
    CHECK(log[0].data == zmq_msg_data(&frame));      /* the node's bytes */
    CHECK(log[1].data == zmq_msg_data(&frame));
    CHECK(log[0].share == 42 && log[1].share == 42);
    /* `@sid` of the same site: one wire on the recipient's worker */
    m.route.kind = ZMQ_ROUTE_SID;
    m.route.name = (const char *) w.b[2].sid;
    m.route.name_len = ZMQ_SID_LEN;
    zmq_groups_fanout(&w.gw, &w.b[0], &m, &frame);
    m.route.name = (const char *) w.b[0].sid;        /* never the sender */
    zmq_groups_fanout(&w.gw, &w.b[0], &m, &frame);
    mk_event_loop_flush(w.gw.loop);
    for (i = 0; i < 2; i++) {
        mk_channel_flush(&zw[i].inbox);
        mk_channel_release(&zw[i].inbox);
    }
    CHECK_EQ_INT(log[0].wires, 1);
    CHECK_EQ_INT(log[1].wires, 2);
    CHECK_EQ_INT(log[1].sids, 3);
    zmq_msg_close(&frame);
    mk_event_loop_destroy(w.gw.loop);
    world_release(&w);
}

int main(void)
{
    RUN(sixty_thousand_joins_stop_at_the_session_cap);
    RUN(the_site_cap_counts_groups_not_members);
    RUN(routed_msg_shares_the_senders_bytes);
    RUN(a_batch_is_one_wire_on_its_workers_inbox);
    return mk_test_done();
}
