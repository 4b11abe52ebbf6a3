#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_event.h"
#include "mk_test.h"

/* A registered object: the event first, then test bookkeeping. */
struct probe {
    struct mk_event ev;
    int calls;
    uint32_t last;
    int peer;           /* other end, for the tests that need it */
};

static void on_probe(struct mk_event *ev, uint32_t events)
{
    struct probe *p = (struct probe *) ev;
    p->calls++;
    p->last = events;
}

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

MK_TEST(backend_name)
{
    CHECK_EQ_STR(mk_event_backend(), "epoll");
}

MK_TEST(read_edge_triggered)
{
    struct mk_event_loop *loop = mk_event_loop_create(16);
    struct probe p;
    int fds[2];
    char buf[16];

    CHECK(loop != NULL);
    CHECK(pipe(fds) == 0);
    nonblock(fds[0]);
    memset(&p, 0, sizeof(p));
    CHECK(mk_event_add(loop, &p.ev, fds[0], MK_EVENT_READ, on_probe) == 0);
    CHECK(p.ev.fd == fds[0] && p.ev.mask == MK_EVENT_READ);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 0), 0);
    CHECK_EQ_INT(p.calls, 0);
    CHECK(write(fds[1], "ab", 2) == 2);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(p.calls, 1);
    CHECK(p.last == MK_EVENT_READ);
    /* data left unread, but no new edge: no second report */
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 50), 0);
    CHECK_EQ_INT(p.calls, 1);
    /* new data makes a new edge */
    CHECK(write(fds[1], "c", 1) == 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(p.calls, 2);
    CHECK(read(fds[0], buf, sizeof(buf)) == 3);
    /* after del, nothing more */
    CHECK(mk_event_del(loop, &p.ev) == 0);
    CHECK(p.ev.mask == 0);
    CHECK(mk_event_del(loop, &p.ev) == 0);          /* twice is fine */
    CHECK(write(fds[1], "d", 1) == 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 50), 0);
    CHECK_EQ_INT(p.calls, 2);
    close(fds[0]);
    close(fds[1]);
    mk_event_loop_destroy(loop);
}

MK_TEST(level_triggered)
{
    struct mk_event_loop *loop = mk_event_loop_create(16);
    struct probe p;
    int fds[2];
    char c;

    CHECK(pipe(fds) == 0);
    memset(&p, 0, sizeof(p));
    CHECK(mk_event_add(loop, &p.ev, fds[0], MK_EVENT_READ | MK_EVENT_LEVEL,
                       on_probe) == 0);
    CHECK(write(fds[1], "x", 1) == 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(p.calls, 3);
    CHECK(read(fds[0], &c, 1) == 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 20), 0);
    CHECK_EQ_INT(p.calls, 3);
    mk_event_del(loop, &p.ev);
    close(fds[0]);
    close(fds[1]);
    mk_event_loop_destroy(loop);
}

MK_TEST(write_mod_and_close)
{
    struct mk_event_loop *loop = mk_event_loop_create(16);
    struct probe p;
    int sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    memset(&p, 0, sizeof(p));
    CHECK(mk_event_add(loop, &p.ev, sv[0], MK_EVENT_READ, on_probe) == 0);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 20), 0);
    /* a socket with buffer room is writable at once */
    CHECK(mk_event_mod(loop, &p.ev, MK_EVENT_READ | MK_EVENT_WRITE) == 0);
    CHECK(p.ev.mask == (MK_EVENT_READ | MK_EVENT_WRITE));
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK(p.last == MK_EVENT_WRITE);
    /* back to READ only: the writable state is not reported any more */
    CHECK(mk_event_mod(loop, &p.ev, MK_EVENT_READ) == 0);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 20), 0);
    /* mod to nothing unregisters */
    CHECK(mk_event_mod(loop, &p.ev, 0) == 0);
    CHECK(p.ev.mask == 0);
    CHECK(send(sv[1], "x", 1, 0) == 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 20), 0);
    /* mod on an unregistered event registers it again */
    CHECK(mk_event_mod(loop, &p.ev, MK_EVENT_READ | MK_EVENT_LEVEL) == 0);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK(p.last == MK_EVENT_READ);
    /* peer hang-up: CLOSE with READ and WRITE */
    CHECK(mk_event_mod(loop, &p.ev, MK_EVENT_READ) == 0);
    close(sv[1]);
    p.last = 0;
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK(p.last == (MK_EVENT_CLOSE | MK_EVENT_READ | MK_EVENT_WRITE));
    CHECK(mk_event_add(loop, &p.ev, sv[0], 0, on_probe) == -1);
    mk_event_del(loop, &p.ev);
    close(sv[0]);
    mk_event_loop_destroy(loop);
}

/* Every probe, when called, deletes all the others; only one of them may
 * run in the batch although all were ready when the loop woke. */
#define NPROBES 8
static struct probe probes[NPROBES];
static struct mk_event_loop *del_loop;
static int del_calls;

static void on_delete_others(struct mk_event *ev, uint32_t events)
{
    int i;

    del_calls++;
    for (i = 0; i < NPROBES; i++) {
        if (&probes[i].ev != ev) {
            mk_event_del(del_loop, &probes[i].ev);
            /* what an owner freeing its object would leave behind */
            probes[i].ev.handler = NULL;
        }
    }
}

MK_TEST(del_inside_batch)
{
    int sv[NPROBES][2];
    int i;

    del_loop = mk_event_loop_create(64);
    for (i = 0; i < NPROBES; i++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) == 0);
        CHECK(send(sv[i][1], "x", 1, 0) == 1);
        memset(&probes[i], 0, sizeof(probes[i]));
        CHECK(mk_event_add(del_loop, &probes[i].ev, sv[i][0], MK_EVENT_READ,
                           on_delete_others) == 0);
    }
    CHECK_EQ_INT(mk_event_loop_run_once(del_loop, 1000), 1);
    CHECK_EQ_INT(del_calls, 1);
    /* no stale reports come later either */
    CHECK_EQ_INT(mk_event_loop_run_once(del_loop, 20), 0);
    CHECK_EQ_INT(del_calls, 1);
    for (i = 0; i < NPROBES; i++) {
        mk_event_del(del_loop, &probes[i].ev);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    mk_event_loop_destroy(del_loop);
}

/* Deleting an event outside a batch and re-adding it must work. */
MK_TEST(del_and_readd)
{
    struct mk_event_loop *loop = mk_event_loop_create(4);
    struct probe p;
    int fds[2];

    CHECK(pipe(fds) == 0);
    memset(&p, 0, sizeof(p));
    CHECK(mk_event_add(loop, &p.ev, fds[0], MK_EVENT_READ, on_probe) == 0);
    CHECK(mk_event_del(loop, &p.ev) == 0);
    CHECK(mk_event_add(loop, &p.ev, fds[0], MK_EVENT_READ, on_probe) == 0);
    CHECK(write(fds[1], "x", 1) == 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(p.calls, 1);
    mk_event_del(loop, &p.ev);
    close(fds[0]);
    close(fds[1]);
    mk_event_loop_destroy(loop);
}

static void *wake_later(void *arg)
{
    usleep(100000);
    mk_event_loop_wakeup(arg);
    return NULL;
}

MK_TEST(wakeup_from_thread)
{
    struct mk_event_loop *loop = mk_event_loop_create(4);
    pthread_t th;
    uint64_t t0, t1;

    /* nothing registered, no timer: only the wake-up can end the wait */
    t0 = mk_clock_monotonic_ms();
    CHECK(pthread_create(&th, NULL, wake_later, loop) == 0);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 10000), 0);
    t1 = mk_clock_monotonic_ms();
    pthread_join(th, NULL);
    CHECK(t1 - t0 >= 90);
    CHECK(t1 - t0 < 5000);
    /* the wake-up was consumed: the next wait is a real wait */
    t0 = mk_clock_monotonic_ms();
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 50), 0);
    CHECK(mk_clock_monotonic_ms() - t0 >= 45);
    /* a wake-up sent before the wait is not lost */
    mk_event_loop_wakeup(loop);
    mk_event_loop_wakeup(loop);
    t0 = mk_clock_monotonic_ms();
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 10000), 0);
    CHECK(mk_clock_monotonic_ms() - t0 < 5000);
    mk_event_loop_destroy(loop);
}

static int fire_order[4];
static int fired;
static uint64_t fire_at[4];

static void on_timer(struct mk_timer *t, void *data)
{
    fire_order[fired] = (int) (long) data;
    fire_at[fired] = mk_clock_monotonic_ms();
    fired++;
}

MK_TEST(timers_in_order)
{
    struct mk_event_loop *loop = mk_event_loop_create(4);
    struct mk_timer_heap *heap = mk_event_loop_timers(loop);
    struct mk_timer t[3];
    uint64_t start;
    int loops = 0;

    start = mk_clock_monotonic_ms();
    CHECK(mk_event_loop_now(loop) <= start);
    mk_timer_init(&t[0], on_timer, (void *) 30L);
    mk_timer_init(&t[1], on_timer, (void *) 10L);
    mk_timer_init(&t[2], on_timer, (void *) 20L);
    mk_timer_arm(heap, &t[0], start + 90);
    mk_timer_arm(heap, &t[1], start + 30);
    mk_timer_arm(heap, &t[2], start + 60);
    /* -1 = no limit: the loop must still wake for each timer */
    while (fired < 3 && loops < 100) {
        CHECK(mk_event_loop_run_once(loop, -1) == 0);
        loops++;
    }
    CHECK_EQ_INT(fired, 3);
    CHECK_EQ_INT(fire_order[0], 10);
    CHECK_EQ_INT(fire_order[1], 20);
    CHECK_EQ_INT(fire_order[2], 30);
    CHECK(fire_at[0] >= start + 30);
    CHECK(fire_at[1] >= start + 60);
    CHECK(fire_at[2] >= start + 90);
    CHECK(fire_at[2] < start + 2000);
    CHECK(loops <= 10);               /* slept, did not spin */
    CHECK(mk_event_loop_now(loop) >= start + 90);
    /* max_wait shorter than the timer: returns without firing it */
    mk_timer_arm(heap, &t[0], mk_clock_monotonic_ms() + 500);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 10), 0);
    CHECK_EQ_INT(fired, 3);
    mk_timer_disarm(heap, &t[0]);
    mk_event_loop_destroy(loop);
}

/* Deferred calls: after the batch, before sleeping, once per pair. */
static int deferred_calls[2];
static int filler_calls;

static void on_deferred(void *arg)
{
    deferred_calls[(int) (long) arg]++;
}

static void on_filler(void *arg)
{
    (void) arg;
    filler_calls++;
}

/* A deferred call that defers two more: this run's calls all run once,
 * and the new ones wait for the next run (none overwrites a pending one). */
static struct mk_event_loop *redefer_loop;
static int redefer_order[8], redefer_n;

static void on_redefer_leaf(void *arg)
{
    if (redefer_n < 8) {
        redefer_order[redefer_n++] = (int) (long) arg;
    }
}

static void on_redefer(void *arg)
{
    on_redefer_leaf(arg);
    CHECK(mk_event_loop_defer(redefer_loop, on_redefer_leaf, (void *) 10L) == 0);
    CHECK(mk_event_loop_defer(redefer_loop, on_redefer_leaf, (void *) 11L) == 0);
}

MK_TEST(defer_from_a_deferred_call)
{
    redefer_loop = mk_event_loop_create(8);
    CHECK(mk_event_loop_defer(redefer_loop, on_redefer, (void *) 1L) == 0);
    CHECK(mk_event_loop_defer(redefer_loop, on_redefer_leaf, (void *) 2L) == 0);
    CHECK(mk_event_loop_defer(redefer_loop, on_redefer_leaf, (void *) 3L) == 0);
    mk_event_loop_flush(redefer_loop);
    CHECK_EQ_INT(redefer_n, 3);
    CHECK_EQ_INT(redefer_order[0], 1);
    CHECK_EQ_INT(redefer_order[1], 2);
    CHECK_EQ_INT(redefer_order[2], 3);
    mk_event_loop_flush(redefer_loop);
    CHECK_EQ_INT(redefer_n, 5);
    CHECK_EQ_INT(redefer_order[3], 10);
    CHECK_EQ_INT(redefer_order[4], 11);
    mk_event_loop_destroy(redefer_loop);
}

MK_TEST(defer_runs_once_per_pair)
{
    struct mk_event_loop *loop = mk_event_loop_create(8);
    long i;

    CHECK(mk_event_loop_defer(loop, on_deferred, (void *) 0L) == 0);
    CHECK(mk_event_loop_defer(loop, on_deferred, (void *) 0L) == 0);
    CHECK(mk_event_loop_defer(loop, on_deferred, (void *) 1L) == 0);
    CHECK_EQ_INT(deferred_calls[0], 0);
    /* they run before the wait, so a long wait cannot make them late */
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 0), 0);
    CHECK_EQ_INT(deferred_calls[0], 1);
    CHECK_EQ_INT(deferred_calls[1], 1);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 0), 0);
    CHECK_EQ_INT(deferred_calls[0], 1);
    /* a full set refuses (the caller then calls fn itself) */
    for (i = 0; i < 1000; i++) {
        if (mk_event_loop_defer(loop, on_filler, (void *) i) < 0) {
            break;
        }
    }
    CHECK(i > 0 && i < 1000);
    /* destroy runs what is still pending */
    mk_event_loop_destroy(loop);
    CHECK_EQ_INT(filler_calls, (int) i);
}

int main(void)
{
    RUN(backend_name);
    RUN(read_edge_triggered);
    RUN(level_triggered);
    RUN(write_mod_and_close);
    RUN(del_inside_batch);
    RUN(del_and_readd);
    RUN(wakeup_from_thread);
    RUN(timers_in_order);
    RUN(defer_runs_once_per_pair);
    RUN(defer_from_a_deferred_call);
    return mk_test_done();
}
