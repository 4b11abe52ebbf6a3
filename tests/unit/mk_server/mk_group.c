/* Unit tests for mk_server/mk_group.c: join/leave/echo/noecho, names per
 * scope (vhost), the per-session and per-scope caps, routing order, joins
 * from several threads at once, and a fan-out batched by owning worker
 * (sessions on worker threads of their own, real event loops). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "mk_test.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_plugin.h"
#include "mk_server/mk_server.h"
#include "mk_server/mk_session.h"

static const int scope_a, scope_b;       /* two vhosts */

static void sid_of(uint8_t *sid, int n)
{
    memset(sid, 0, MK_SESSION_SID_LEN);
    memcpy(sid, &n, sizeof(n));
}

/* Routes record the first byte of each recipient's sid, in order. */
static char route_log[64];

static void log_member(void *ctx, const uint8_t *sid)
{
    size_t n = strlen(route_log);

    (void) ctx;
    route_log[n] = (char) ('0' + sid[0]);
    route_log[n + 1] = '\0';
}

static int route(const void *scope, const char *name, const uint8_t *from)
{
    route_log[0] = '\0';
    return mk_group_route(scope, name, strlen(name), from, log_member, NULL);
}

MK_TEST(join_leave_echo_noecho)
{
    uint8_t s1[16], s2[16], s3[16];

    sid_of(s1, 1);
    sid_of(s2, 2);
    sid_of(s3, 3);
    CHECK_EQ_INT(route(&scope_a, "room", s1), -1);       /* no such group */
    CHECK_EQ_INT(mk_group_join(&scope_a, s1, "room", 4, 10, 10), MK_GROUP_JOINED);
    CHECK_EQ_INT(mk_group_join(&scope_a, s2, "room", 4, 10, 10), MK_GROUP_JOINED);
    CHECK_EQ_INT(mk_group_join(&scope_a, s3, "room", 4, 10, 10), MK_GROUP_JOINED);
    CHECK_EQ_INT(mk_group_join(&scope_a, s3, "room", 4, 10, 10), MK_GROUP_JOINED);
    CHECK_EQ_INT(mk_group_session_count(s3), 1);         /* again: no-op */
    /* others in join order, then the sender (echo is on at first) */
    CHECK_EQ_INT(route(&scope_a, "room", s2), 3);
    CHECK_EQ_STR(route_log, "132");
    CHECK(mk_group_echo(&scope_a, s2, "room", 4, 0) == 0);
    CHECK_EQ_INT(route(&scope_a, "room", s2), 2);
    CHECK_EQ_STR(route_log, "13");
    CHECK(mk_group_echo(&scope_a, s2, "room", 4, 1) == 0);
    CHECK_EQ_INT(route(&scope_a, "room", s2), 3);
    /* the default for future joins: s1's next group starts with echo off */
    CHECK(mk_group_echo(&scope_a, s1, NULL, 0, 0) == 0);
    CHECK_EQ_INT(mk_group_join(&scope_a, s1, "quiet", 5, 10, 10), MK_GROUP_JOINED);
    CHECK_EQ_INT(route(&scope_a, "quiet", s1), 0);
    CHECK_EQ_INT(route(&scope_a, "room", s1), 3);        /* kept its echo */
    mk_group_leave(&scope_a, s2, "room", 4);
    CHECK_EQ_INT(route(&scope_a, "room", NULL), 2);
    CHECK_EQ_STR(route_log, "13");
    mk_group_leave(&scope_a, s2, "room", 4);             /* not a member */
    CHECK_EQ_INT(mk_group_count(&scope_a), 2);
    mk_group_leave_all(s1);
    mk_group_leave_all(s3);
    mk_group_leave_all(s2);
    CHECK_EQ_INT(mk_group_count(&scope_a), 0);
    CHECK_EQ_INT(route(&scope_a, "room", NULL), -1);     /* gone with the last */
    CHECK_EQ_INT(mk_group_count(NULL), 0);
}

MK_TEST(names_are_per_scope_and_checked)
{
    uint8_t s1[16], s2[16];
    char longname[MK_GROUP_NAME_MAX + 1];

    sid_of(s1, 1);
    sid_of(s2, 2);
    CHECK_EQ_INT(mk_group_join(&scope_a, s1, "room", 4, 10, 10), 0);
    CHECK_EQ_INT(mk_group_join(&scope_b, s2, "room", 4, 10, 10), 0);
    CHECK_EQ_INT(route(&scope_a, "room", NULL), 1);
    CHECK_EQ_STR(route_log, "1");
    CHECK_EQ_INT(route(&scope_b, "room", NULL), 1);
    CHECK_EQ_STR(route_log, "2");
    CHECK_EQ_INT(mk_group_count(NULL), 2);
    memset(longname, 'x', sizeof(longname));
    CHECK_EQ_INT(mk_group_join(&scope_a, s1, longname, sizeof(longname), 10,
                               10), -1);
    CHECK_EQ_INT(mk_group_join(&scope_a, s1, "", 0, 10, 10), -1);
    CHECK_EQ_INT(mk_group_join(&scope_a, s1, longname, MK_GROUP_NAME_MAX, 10,
                               10), 0);
    mk_group_leave_all(s1);
    mk_group_leave_all(s2);
    CHECK_EQ_INT(mk_group_count(NULL), 0);
}

MK_TEST(caps_per_session_and_per_scope)
{
    uint8_t s1[16], s2[16];
    char name[16];
    int i;

    sid_of(s1, 1);
    sid_of(s2, 2);
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        CHECK_EQ_INT(mk_group_join(&scope_a, s1, name, strlen(name), 4, 3),
                     i < 3 ? MK_GROUP_JOINED : MK_GROUP_FULL_SESSION);
    }
    CHECK_EQ_INT(mk_group_session_count(s1), 3);
    CHECK_EQ_INT(mk_group_join(&scope_a, s2, "g9", 2, 4, 3), MK_GROUP_JOINED);
    /* the scope holds 4 groups: a fifth is refused, an existing one not */
    CHECK_EQ_INT(mk_group_join(&scope_a, s2, "g10", 3, 4, 3),
                 MK_GROUP_FULL_SCOPE);
    CHECK_EQ_INT(mk_group_join(&scope_a, s2, "g0", 2, 4, 3), MK_GROUP_JOINED);
    CHECK_EQ_INT(mk_group_count(&scope_a), 4);
    /* another scope has its own count; a cap of 0 allows none */
    CHECK_EQ_INT(mk_group_join(&scope_b, s2, "g10", 3, 4, 3), MK_GROUP_JOINED);
    CHECK_EQ_INT(mk_group_join(&scope_b, s1, "g11", 3, 0, 3),
                 MK_GROUP_FULL_SESSION);
    /* s2 is in 3 groups, in two scopes: its cap counts them all */
    CHECK_EQ_INT(mk_group_join(&scope_a, s2, "g1", 2, 4, 3),
                 MK_GROUP_FULL_SESSION);
    mk_group_leave(&scope_a, s1, "g1", 2);               /* room again */
    CHECK_EQ_INT(mk_group_join(&scope_a, s1, "g10", 3, 4, 3), MK_GROUP_JOINED);
    mk_group_leave_all(s1);
    mk_group_leave_all(s2);
    CHECK_EQ_INT(mk_group_count(NULL), 0);
}

static void count_member(void *ctx, const uint8_t *sid)
{
    (void) sid;
    ++*(int *) ctx;
}

static void *join_leave_many(void *arg)
{
    uint8_t sid[16];
    int i, base = *(int *) arg;

    for (i = 0; i < 2000; i++) {
        sid_of(sid, base + i % 50);
        mk_group_join(&scope_a, sid, "hall", 4, 100, 100);
        if (i % 3 == 0) {
            mk_group_leave(&scope_a, sid, "hall", 4);
        }
    }
    return NULL;
}

MK_TEST(threads_join_and_leave_at_once)
{
    int bases[2] = { 1000, 2000 };
    pthread_t t[2];
    uint8_t sid[16];
    int i, n, counted = 0;

    for (i = 0; i < 2; i++) {
        CHECK(pthread_create(&t[i], NULL, join_leave_many, &bases[i]) == 0);
    }
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    n = mk_group_route(&scope_a, "hall", 4, NULL, count_member, &counted);
    CHECK(n > 0 && n <= 100 && counted == n);
    for (i = 0; i < 50; i++) {
        sid_of(sid, 1000 + i);
        mk_group_leave_all(sid);
        sid_of(sid, 2000 + i);
        mk_group_leave_all(sid);
    }
    CHECK_EQ_INT(mk_group_count(NULL), 0);
}

/* ---- Fan-out by owning worker ---------------------------------------- */

#define FAN_SESSIONS 3
#define WAIT_ROUNDS 5000                 /* x 1 ms: a bounded wait */

/* A worker thread owning FAN_SESSIONS sessions; once told, it delivers
 * the batches mk_group_fanout gave it and records what its sessions got. */
struct fworker {
    struct mk_worker w;
    struct mk_server srv;
    pthread_t thread;
    uint8_t sids[FAN_SESSIONS][MK_SESSION_SID_LEN];
    atomic_int ready, go;
    uint8_t batch[8 * MK_SESSION_SID_LEN];
    size_t batch_n;
    int batches;                         /* how many it was handed */
    size_t taken;
    int got;
    uint64_t share;
    char order[8];                       /* index of each session served */
};

static void fw_on_message(void *data, struct mk_session *s, const char *type,
                          size_t tlen, const void *body, size_t len,
                          uint64_t share)
{
    struct fworker *fw = mk_session_owner_data(s);
    int k;

    (void) type;
    (void) tlen;
    (void) body;
    (void) len;
    for (k = 0; k < FAN_SESSIONS; k++) {
        if (memcmp(fw->sids[k], mk_session_sid(s), MK_SESSION_SID_LEN) == 0) {
            fw->order[fw->got++] = (char) ('0' + k);
        }
    }
    fw->share = share;
    (void) data;
}

static const struct mk_session_owner fw_owner = {
    .on_message = fw_on_message,
};

static void *fw_main(void *arg)
{
    struct fworker *fw = arg;
    struct mk_session *s[FAN_SESSIONS] = { NULL };
    int i;

    fw->w.loop = mk_event_loop_create(16);
    if (!fw->w.loop || mk_session_worker_start(&fw->w) < 0) {
        return NULL;
    }
    for (i = 0; i < FAN_SESSIONS; i++) {
        s[i] = mk_session_create(&fw->srv, NULL, &fw_owner, fw);
        if (s[i]) {
            memcpy(fw->sids[i], mk_session_sid(s[i]), MK_SESSION_SID_LEN);
        }
    }
    atomic_store(&fw->ready, 1);
    for (i = 0; i < WAIT_ROUNDS && !atomic_load(&fw->go); i++) {
        usleep(1000);
    }
    fw->taken = mk_group_deliver(fw->batch, fw->batch_n, "push", 4, "hi", 2,
                                 77);
    for (i = 0; i < FAN_SESSIONS; i++) {
        mk_session_destroy(s[i]);
    }
    mk_session_worker_stop(&fw->w);
    mk_event_loop_destroy(fw->w.loop);
    return NULL;
}

static struct fworker fan_w[2];

static void fan_batch(void *ctx, int worker, const uint8_t *sids, size_t n)
{
    struct fworker *fw = &fan_w[worker - 4];

    (void) ctx;
    fw->batches++;
    if (n <= 8) {
        memcpy(fw->batch, sids, n * MK_SESSION_SID_LEN);
        fw->batch_n = n;
    }
}

static int fan_out(const uint8_t *from)
{
    int i, n;

    for (i = 0; i < 2; i++) {
        fan_w[i].batches = 0;
        fan_w[i].batch_n = 0;
    }
    n = mk_group_fanout(&scope_b, "fan", 3, from, fan_batch, NULL);
    CHECK(fan_w[0].batches <= 1 && fan_w[1].batches <= 1);  /* once each */
    return n;
}

MK_TEST(fanout_batches_by_worker_each_once)
{
    uint8_t gone[16];
    int i, k;

    memset(fan_w, 0, sizeof(fan_w));
    for (i = 0; i < 2; i++) {
        fan_w[i].w.id = 4 + i;
        CHECK(pthread_create(&fan_w[i].thread, NULL, fw_main,
                             &fan_w[i]) == 0);
    }
    for (i = 0; i < WAIT_ROUNDS && !(atomic_load(&fan_w[0].ready) &&
                                     atomic_load(&fan_w[1].ready)); i++) {
        usleep(1000);
    }
    CHECK(atomic_load(&fan_w[0].ready) && atomic_load(&fan_w[1].ready));
    /* joins alternate between the workers; a member with no session */
    for (k = 0; k < FAN_SESSIONS; k++) {
        for (i = 0; i < 2; i++) {
            CHECK_EQ_INT(mk_group_join(&scope_b, fan_w[i].sids[k], "fan", 3,
                                       10, 10), MK_GROUP_JOINED);
        }
    }
    sid_of(gone, 9);
    CHECK_EQ_INT(mk_group_join(&scope_b, gone, "fan", 3, 10, 10),
                 MK_GROUP_JOINED);
    CHECK_EQ_INT(mk_group_fanout(&scope_b, "nope", 4, NULL, fan_batch, NULL),
                 -1);
    /* echo on (the default): the sender last, in its worker's batch */
    CHECK_EQ_INT(fan_out(fan_w[0].sids[0]), 6);
    CHECK_EQ_INT(fan_w[0].batch_n, 3);
    CHECK_EQ_INT(fan_w[1].batch_n, 3);
    CHECK(memcmp(fan_w[0].batch + 2 * MK_SESSION_SID_LEN, fan_w[0].sids[0],
                 MK_SESSION_SID_LEN) == 0);
    /* noecho: the sender is left out */
    CHECK(mk_group_echo(&scope_b, fan_w[0].sids[0], "fan", 3, 0) == 0);
    CHECK_EQ_INT(fan_out(fan_w[0].sids[0]), 5);
    CHECK_EQ_INT(fan_w[0].batch_n, 2);
    CHECK_EQ_INT(fan_w[1].batch_n, 3);
    /* each worker delivers its own batch to its own sessions */
    for (i = 0; i < 2; i++) {
        atomic_store(&fan_w[i].go, 1);
        pthread_join(fan_w[i].thread, NULL);
    }
    CHECK_EQ_INT((int) fan_w[0].taken, 2);
    CHECK_EQ_STR(fan_w[0].order, "12");
    CHECK_EQ_INT((int) fan_w[1].taken, 3);
    CHECK_EQ_STR(fan_w[1].order, "012");
    CHECK(fan_w[0].share == 77 && fan_w[1].share == 77);
    /* sessions gone: their members get nothing, the group still exists */
    CHECK_EQ_INT(fan_out(NULL), 0);
    CHECK_EQ_INT(fan_w[0].batches + fan_w[1].batches, 0);
    for (k = 0; k < FAN_SESSIONS; k++) {
        for (i = 0; i < 2; i++) {
            mk_group_leave_all(fan_w[i].sids[k]);
        }
    }
    mk_group_leave_all(gone);
    CHECK_EQ_INT(mk_group_count(NULL), 0);
}

int main(void)
{
    RUN(join_leave_echo_noecho);
    RUN(names_are_per_scope_and_checked);
    RUN(caps_per_session_and_per_scope);
    RUN(threads_join_and_leave_at_once);
    RUN(fanout_batches_by_worker_each_once);
    return mk_test_done();
}
