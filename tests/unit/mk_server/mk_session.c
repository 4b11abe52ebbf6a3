/* Unit tests for mk_server/mk_session.c: sids, the backend binding, and a
 * message for a sid routed to the worker that owns it, from another
 * thread and from another worker (real event loops in threads). */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "mk_test.h"
#include "mk_core/mk_hash.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_server.h"
#include "mk_server/mk_session.h"

#define WAIT_ROUNDS 200                  /* x 50 ms: a bounded wait */

/* A worker thread of its own: a loop, a session, what reached it. */
struct tworker {
    struct mk_worker w;
    struct mk_server srv;
    pthread_t thread;
    pthread_t self;                      /* set by the thread itself */
    uint8_t sid[MK_SESSION_SID_LEN];
    atomic_int ready;                    /* sid is published */
    atomic_int got;                      /* messages its owner took */
    atomic_int foreign;                  /* deliveries on another thread */
    int want;
    struct tworker *post_to;             /* posts one message there */
    char last[64];
};

static void tw_on_message(void *data, struct mk_session *s, const char *type,
                          size_t tlen, const void *body, size_t len,
                          uint64_t share)
{
    struct tworker *tw = data;

    if (!pthread_equal(pthread_self(), tw->self)) {
        atomic_fetch_add(&tw->foreign, 1);
    }
    snprintf(tw->last, sizeof(tw->last), "%.*s=%.*s/%llu", (int) tlen, type,
             (int) len, (const char *) body, (unsigned long long) share);
    atomic_fetch_add(&tw->got, 1);
}

static const struct mk_session_owner tw_owner = { .on_message = tw_on_message };

static void *tw_main(void *arg)
{
    struct tworker *tw = arg;
    struct mk_session *s;
    int i;

    tw->self = pthread_self();
    tw->w.loop = mk_event_loop_create(64);
    if (!tw->w.loop || mk_session_worker_start(&tw->w) < 0) {
        return NULL;
    }
    s = mk_session_create(&tw->srv, NULL, &tw_owner, tw);
    if (s) {
        memcpy(tw->sid, mk_session_sid(s), MK_SESSION_SID_LEN);
        atomic_store(&tw->ready, 1);
    }
    if (tw->post_to) {
        for (i = 0; i < WAIT_ROUNDS && !atomic_load(&tw->post_to->ready); i++) {
            mk_event_loop_run_once(tw->w.loop, 50);
        }
        mk_session_post(tw->post_to->sid, "push", 4, "from-worker", 11, 0);
    }
    for (i = 0; i < WAIT_ROUNDS && atomic_load(&tw->got) < tw->want; i++) {
        mk_event_loop_run_once(tw->w.loop, 50);
    }
    mk_session_destroy(s);
    mk_session_worker_stop(&tw->w);
    mk_event_loop_destroy(tw->w.loop);
    return NULL;
}

static void tw_start(struct tworker *tw, int id, int want)
{
    tw->w.id = id;
    tw->want = want;
    CHECK(pthread_create(&tw->thread, NULL, tw_main, tw) == 0);
}

static void tw_wait_ready(struct tworker *tw)
{
    int i;

    for (i = 0; i < WAIT_ROUNDS * 50 && !atomic_load(&tw->ready); i++) {
        usleep(1000);
    }
    CHECK(atomic_load(&tw->ready));
}

MK_TEST(from_another_thread_to_the_owner)
{
    struct tworker a;

    memset(&a, 0, sizeof(a));
    tw_start(&a, 3, 2);
    tw_wait_ready(&a);
    CHECK(mk_session_post(a.sid, "push", 4, "one", 3, 0) == 0);
    CHECK(mk_session_post(a.sid, "cache", 5, "two", 3, 9) == 0);
    pthread_join(a.thread, NULL);
    CHECK_EQ_INT(atomic_load(&a.got), 2);
    CHECK_EQ_INT(atomic_load(&a.foreign), 0);   /* on the owner's thread */
    CHECK_EQ_STR(a.last, "cache=two/9");        /* in order, share kept */
}

MK_TEST(from_another_worker_to_the_owner)
{
    struct tworker a, b;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    b.post_to = &a;
    tw_start(&a, 0, 1);
    tw_start(&b, 1, 0);
    pthread_join(b.thread, NULL);
    pthread_join(a.thread, NULL);
    CHECK_EQ_INT(atomic_load(&a.got), 1);
    CHECK_EQ_INT(atomic_load(&a.foreign), 0);
    CHECK_EQ_STR(a.last, "push=from-worker/0");
    CHECK_EQ_INT(atomic_load(&b.got), 0);       /* not the poster's */
}

/* The test thread acts as a worker for the tests below. */
static struct mk_worker self_worker;
static struct mk_server self_srv;

static void self_start(void)
{
    self_worker.id = 7;
    self_worker.loop = mk_event_loop_create(64);
    CHECK(self_worker.loop != NULL);
    CHECK(mk_session_worker_start(&self_worker) == 0);
}

static void self_stop(void)
{
    mk_session_worker_stop(&self_worker);
    mk_event_loop_destroy(self_worker.loop);
}

MK_TEST(create_gives_unique_16_byte_sids)
{
    static const uint8_t zero[MK_SESSION_SID_LEN];
    struct mk_session *s[1000];
    struct mk_hash *seen = mk_hash_create(2048, 0);
    int i;

    self_start();
    for (i = 0; i < 1000; i++) {
        s[i] = mk_session_create(&self_srv, (struct mk_vhost *) 0x5, NULL,
                                 &s[i]);
        CHECK(s[i] != NULL);
        CHECK(memcmp(mk_session_sid(s[i]), zero, sizeof(zero)) != 0);
        CHECK(mk_hash_set(seen, (const char *) mk_session_sid(s[i]),
                          MK_SESSION_SID_LEN, s[i]) == 0);
    }
    CHECK_EQ_INT(mk_hash_count(seen), 1000);
    CHECK(mk_session_vhost(s[0]) == (struct mk_vhost *) 0x5);
    CHECK_EQ_INT(mk_session_worker_id(s[0]), 7);
    CHECK(mk_session_owner_data(s[1]) == &s[1]);
    CHECK(mk_session_conn(s[0]) == NULL);
    for (i = 0; i < 1000; i++) {
        mk_session_destroy(s[i]);
    }
    mk_hash_destroy(seen, NULL);
    self_stop();
}

MK_TEST(a_message_for_a_gone_sid_is_dropped_and_counted)
{
    struct tworker rec;
    struct mk_session *s;
    uint8_t sid[MK_SESSION_SID_LEN];
    uint64_t before = mk_session_dropped();

    memset(&rec, 0, sizeof(rec));
    rec.self = pthread_self();
    self_start();
    s = mk_session_create(&self_srv, NULL, &tw_owner, &rec);
    memcpy(sid, mk_session_sid(s), sizeof(sid));
    /* queued while it lives, gone when it arrives */
    CHECK(mk_session_post(sid, "push", 4, "late", 4, 0) == 0);
    mk_session_destroy(s);
    mk_event_loop_run_once(self_worker.loop, 50);
    CHECK_EQ_INT(atomic_load(&rec.got), 0);
    CHECK_EQ_INT(mk_session_dropped() - before, 1);
    /* gone before it is posted */
    CHECK(mk_session_post(sid, "push", 4, "never", 5, 0) == -1);
    CHECK_EQ_INT(mk_session_dropped() - before, 2);
    /* a session left open when its worker stops leaves the table too */
    s = mk_session_create(&self_srv, NULL, &tw_owner, &rec);
    memcpy(sid, mk_session_sid(s), sizeof(sid));
    self_stop();
    CHECK(mk_session_post(sid, "push", 4, "gone", 4, 0) == -1);
    CHECK_EQ_INT(mk_session_dropped() - before, 3);
}

MK_TEST(a_type_nobody_takes_is_dropped_and_counted)
{
    struct mk_session *s;
    uint64_t before = mk_session_dropped();

    self_start();
    s = mk_session_create(&self_srv, NULL, NULL, NULL);   /* no owner */
    CHECK(mk_session_post(mk_session_sid(s), "push", 4, "x", 1, 0) == 0);
    mk_event_loop_run_once(self_worker.loop, 50);
    CHECK_EQ_INT(mk_session_dropped() - before, 1);
    mk_session_destroy(s);
    self_stop();
}

static int sent_n;
static char sent_type[32];

static int test_backend_send(void *data, struct mk_session *s,
                             const char *type, const void *body, size_t len)
{
    snprintf(sent_type, sizeof(sent_type), "%s", type);
    return ++sent_n >= 2 ? 1 : 0;       /* full from the second message */
}

static const struct mk_backend test_backend = {
    .name = "test", .send = test_backend_send,
};

MK_TEST(the_backend_carries_any_type_and_holds)
{
    struct mk_session *s;

    CHECK(mk_session_backend_send(NULL, "websocket", "x", 1) == -1);
    self_start();
    s = mk_session_create(&self_srv, NULL, NULL, NULL);
    CHECK(mk_session_backend_send(s, "websocket", "x", 1) == -1);  /* none */
    mk_session_set_backend(s, &test_backend, NULL);
    CHECK(mk_session_backend_send(s, "socket.io/event", "x", 1) == 0);
    CHECK_EQ_STR(sent_type, "socket.io/event");
    CHECK(!mk_session_backend_held(s));
    CHECK(mk_session_backend_send(s, "cache", "y", 1) == 1);
    CHECK(mk_session_backend_held(s));
    mk_session_backend_ready(s);
    CHECK(!mk_session_backend_held(s));
    mk_session_backend_end(s, 0);           /* no connection: unbinds */
    CHECK(mk_session_backend_send(s, "cache", "z", 1) == -1);
    mk_session_destroy(s);
    self_stop();
}

MK_TEST(a_connection_finds_its_session_until_either_goes)
{
    struct mk_session *s, *t;
    struct mk_conn c;

    memset(&c, 0, sizeof(c));
    self_start();
    s = mk_session_create(&self_srv, NULL, NULL, NULL);
    t = mk_session_create(&self_srv, NULL, NULL, NULL);
    mk_session_set_conn(s, &c);
    CHECK(mk_conn_session(&c) == s && mk_session_conn(s) == &c);
    mk_session_set_conn(s, NULL);
    CHECK(mk_conn_session(&c) == NULL && mk_session_conn(s) == NULL);
    mk_session_set_conn(t, &c);
    mk_session_destroy(t);                  /* the connection forgets it */
    CHECK(mk_conn_session(&c) == NULL);
    mk_session_destroy(s);
    self_stop();
}

/* A standalone session's owner hears its backend, and destroying the
 * session releases the backend (socket.io's sessions and the gateway). */
static int owner_ready, owner_end = -1, released;

static void own_ready(void *data, struct mk_session *s)
{
    (void) data;
    (void) s;
    owner_ready++;
}

static void own_end(void *data, struct mk_session *s, int failed)
{
    (void) data;
    (void) s;
    owner_end = failed;
}

static void test_release(void *data, struct mk_session *s)
{
    CHECK(data == (void *) 0x5);
    CHECK(mk_session_find_local(mk_session_sid(s)) == s);  /* still listed */
    released++;
}

static const struct mk_backend releasing_backend = {
    .name = "test", .send = test_backend_send, .release = test_release,
};

MK_TEST(an_owner_hears_its_backend_and_destroy_releases_it)
{
    static const struct mk_session_owner owner = {
        .on_ready = own_ready, .on_end = own_end,
    };
    struct mk_session *s;
    uint8_t sid[MK_SESSION_SID_LEN];

    self_start();
    s = mk_session_create(&self_srv, NULL, &owner, NULL);
    memcpy(sid, mk_session_sid(s), sizeof(sid));
    CHECK(mk_session_find_local(sid) == s);
    mk_session_set_backend(s, &releasing_backend, (void *) 0x5);
    mk_session_backend_ready(s);
    CHECK(owner_ready == 1);
    mk_session_backend_end(s, 1);
    CHECK(owner_end == 1);
    CHECK(released == 0);                   /* bound until the owner says */
    mk_session_destroy(s);
    CHECK(released == 1);
    CHECK(mk_session_find_local(sid) == NULL);
    s = mk_session_create(&self_srv, NULL, &owner, NULL);
    mk_session_set_backend(s, &releasing_backend, (void *) 0x5);
    mk_session_set_backend(s, NULL, NULL);  /* unbound: nothing to release */
    mk_session_destroy(s);
    CHECK(released == 1);
    self_stop();
}

int main(void)
{
    RUN(an_owner_hears_its_backend_and_destroy_releases_it);
    RUN(create_gives_unique_16_byte_sids);
    RUN(from_another_thread_to_the_owner);
    RUN(from_another_worker_to_the_owner);
    RUN(a_message_for_a_gone_sid_is_dropped_and_counted);
    RUN(a_type_nobody_takes_is_dropped_and_counted);
    RUN(the_backend_carries_any_type_and_holds);
    RUN(a_connection_finds_its_session_until_either_goes);
    return mk_test_done();
}
