/* Worker exit against gateway delivery (issue 10, point 10): a worker that
 * stops while the gateway is still answering it must get no write into its
 * freed inbox, nor a late wake-up into the eventfd number it gave back.
 *
 * A real gateway thread runs (no ROUTER traffic: an inproc endpoint nobody
 * joins). Two worker threads start, post `body` pieces for sessions the
 * gateway does not know (each one makes the gateway push an ACK back to
 * that worker, its wake-up deferred to the end of the gateway's batch),
 * take the first answers, post a second wave and stop as soon as the
 * gateway started answering it (its wake-up for this inbox is then
 * pending, to be written at the end of its batch), round after round. After each stop the worker opens an
 * eventfd, which takes the number its inbox just released, and checks
 * that nobody wrote to it. Run under ASan and TSan too (make test). */
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mk_test.h"
#include "mk_server/mk_conn.h"
#include "mk_server/mk_server.h"
#include "plugins/zmq/zmq.c"
#include "plugins/zmq/zmq_curve.c"
#include "plugins/zmq/zmq_curve_keys.c"
#include "plugins/zmq/zmq_gateway.c"
#include "plugins/zmq/zmq_groups.c"
#include "plugins/zmq/zmq_gw_thread.c"
#include "plugins/zmq/zmq_guard.c"
#include "plugins/zmq/zmq_ini.c"
#include "plugins/zmq/zmq_msg.c"
#include "plugins/zmq/zmq_nodes.c"
#include "plugins/zmq/zmq_packet.c"
#include "plugins/zmq/zmq_queue.c"
#include "plugins/zmq/zmq_routers.c"
#include "plugins/zmq/zmq_session.c"
#include "plugins/zmq/zmq_uwsgi.c"
#include "plugins/zmq/zmq_wire.c"
#include "plugins/zmq/zmq_zmtp.c"
#include "plugins/zmq/zmq_zmtps.c"

#define ROUNDS 150
#define PIECES 300

static struct zmq_gw gw;

struct worker_run {
    int id;
    int stale;                       /* wake-ups found in a reused fd */
    int still_listed;                /* gw->workers[id] after the stop */
};

static void post_unknown_pieces(int id, int round)
{
    uint8_t sid[ZMQ_SID_LEN];
    int i;

    for (i = 0; i < PIECES; i++) {
        struct zmq_wire *w;

        memset(sid, 0, sizeof(sid));
        memcpy(sid, &round, sizeof(round));
        memcpy(sid + sizeof(round), &i, sizeof(i));
        w = zmq_wire_create(ZMQ_WIRE_BODY, sid);
        if (!w || zmq_msg_init_size(&w->payload, 1) < 0) {
            mk_mem_free(w);
            continue;
        }
        w->type = ZMQ_MSG_BODY;
        w->worker = id;
        /* woken now, not at the end of a batch this loop never ends */
        mk_channel_push(&gw.inbox, &w->msg);
    }
}

/* The gateway pushed into this worker's inbox (the consumer's own view of
 * the queue; no wake-up needed): bounded by `ms`. */
static void wait_first_push(struct zmq_worker *zw, int ms)
{
    uint64_t end = mk_clock_monotonic_ms() + (uint64_t) ms;

    while (atomic_load(&zw->inbox.head) == zw->inbox.tail &&
           mk_clock_monotonic_ms() < end) {
    }
}

static void *worker_rounds(void *arg)
{
    struct worker_run *run = arg;
    uint64_t count;
    int r, fd;

    for (r = 0; r < ROUNDS; r++) {
        struct mk_worker w;

        memset(&w, 0, sizeof(w));
        w.id = run->id;
        w.loop = mk_event_loop_create(16);
        if (!w.loop || zmq_worker_start(&gw, &w) < 0) {
            run->still_listed++;
            break;
        }
        post_unknown_pieces(run->id, 2 * r);
        mk_event_loop_run_once(w.loop, 1000);  /* the first ACKs came */
        post_unknown_pieces(run->id, 2 * r + 1);
        wait_first_push(zmq_self, 1000);
        zmq_worker_stop(&gw, &w);              /* while more are coming */
        run->still_listed += gw.workers[run->id] != NULL;
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        usleep(500);                 /* a late write has time to land */
        if (read(fd, &count, sizeof(count)) == (ssize_t) sizeof(count)) {
            run->stale++;
        }
        close(fd);
        mk_event_loop_destroy(w.loop);
    }
    return NULL;
}

MK_TEST(workers_stop_while_the_gateway_answers_them)
{
    static struct zmq_conf conf;
    static struct mk_server srv;
    struct worker_run runs[2] = { { .id = 0 }, { .id = 1 } };
    pthread_t th[2];
    char err[256];
    int i;

    conf.ping_freq = 1000;
    conf.max_frame = 1 << 20;
    conf.endpoints[0] = "inproc://handover";
    conf.endpoint_files[0] = "test";
    conf.nendpoints = 1;
    srv.worker_count = 2;
    CHECK(zmq_nodes_init(&gw.nodes, 16) == 0);
    CHECK(zmq_gw_start(&gw, &conf, &srv, err, sizeof(err)) == 0);
    for (i = 0; i < 2; i++) {
        pthread_create(&th[i], NULL, worker_rounds, &runs[i]);
    }
    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(runs[i].stale, 0);
        CHECK_EQ_INT(runs[i].still_listed, 0);
    }
    zmq_gw_stop(&gw);
}

int main(void)
{
    RUN(workers_stop_while_the_gateway_answers_them);
    return mk_test_done();
}
