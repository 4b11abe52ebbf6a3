#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_channel.h"
#include "mk_core/mk_clock.h"
#include "mk_core/mk_list.h"
#include "mk_test.h"

struct item {
    int producer;
    int seq;
    struct mk_channel_msg msg;       /* deliberately not first */
};

#define PRODUCERS 4
#define PER_PRODUCER 100000

static struct item *items[PRODUCERS];
static int next_seq[PRODUCERS];
static long received;
static long out_of_order;
static long duplicates;
static int handler_calls;

static void on_item(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    struct item *it = mk_container_of(msg, struct item, msg);

    if (it->seq < next_seq[it->producer]) {
        duplicates++;
    }
    else if (it->seq != next_seq[it->producer]) {
        out_of_order++;
    }
    next_seq[it->producer] = it->seq + 1;
    received++;
}

static struct mk_channel chan;

static void *producer(void *arg)
{
    int id = (int) (long) arg;
    int i;

    for (i = 0; i < PER_PRODUCER; i++) {
        items[id][i].producer = id;
        items[id][i].seq = i;
        mk_channel_push(&chan, &items[id][i].msg);
    }
    return NULL;
}

MK_TEST(four_producers)
{
    struct mk_event_loop *loop = mk_event_loop_create(16);
    pthread_t th[PRODUCERS];
    uint64_t deadline;
    long i;

    CHECK(mk_channel_init(&chan, loop, on_item, NULL) == 0);
    for (i = 0; i < PRODUCERS; i++) {
        items[i] = calloc(PER_PRODUCER, sizeof(struct item));
        CHECK(pthread_create(&th[i], NULL, producer, (void *) i) == 0);
    }
    deadline = mk_clock_monotonic_ms() + 60000;
    while (received < (long) PRODUCERS * PER_PRODUCER &&
           mk_clock_monotonic_ms() < deadline) {
        int n = mk_event_loop_run_once(loop, 1000);
        if (n < 0) {
            break;
        }
        handler_calls += n;
    }
    for (i = 0; i < PRODUCERS; i++) {
        pthread_join(th[i], NULL);
    }
    /* nothing extra arrives afterwards */
    mk_event_loop_run_once(loop, 50);
    CHECK_EQ_INT(received, (long) PRODUCERS * PER_PRODUCER);
    CHECK_EQ_INT(out_of_order, 0);
    CHECK_EQ_INT(duplicates, 0);
    for (i = 0; i < PRODUCERS; i++) {
        CHECK_EQ_INT(next_seq[i], PER_PRODUCER);
        free(items[i]);
    }
    /* bursts are coalesced: far fewer wake-ups than messages */
    CHECK(handler_calls < (long) PRODUCERS * PER_PRODUCER / 2);
    printf("  %d handler calls for %d messages\n", handler_calls,
           PRODUCERS * PER_PRODUCER);
    mk_channel_release(&chan);
    mk_event_loop_destroy(loop);
}

/* Single thread: pushes before the loop runs and from inside the handler. */
static int chain_left;
static struct item chain_items[10];

static void on_chain(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    received++;
    if (chain_left > 0) {
        chain_left--;
        mk_channel_push(ch, &chain_items[chain_left].msg);
    }
}

MK_TEST(push_from_handler)
{
    struct mk_event_loop *loop = mk_event_loop_create(16);
    struct mk_channel ch;
    struct item first;
    int rounds = 0;

    received = 0;
    chain_left = 10;
    CHECK(mk_channel_init(&ch, loop, on_chain, &first) == 0);
    CHECK(ch.data == &first);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 10), 0);
    mk_channel_push(&ch, &first.msg);
    while (received < 11 && rounds++ < 50) {
        mk_event_loop_run_once(loop, 1000);
    }
    CHECK_EQ_INT(received, 11);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 20), 0);
    mk_channel_release(&ch);
    mk_event_loop_destroy(loop);
}

/*
 * A producer preempted between its exchange of `head` and the link from
 * the previous node leaves the chain broken. Simulate it by doing the first
 * step by hand: the consumer must not lose the messages behind the gap and
 * must pick them up once the link appears, with no further push to wake it.
 */
static int got[4];
static void on_mark(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    struct item *it = mk_container_of(msg, struct item, msg);
    got[it->seq]++;
    received++;
}

MK_TEST(broken_link_is_retried)
{
    struct mk_event_loop *loop = mk_event_loop_create(16);
    struct mk_channel ch;
    struct item it[4];
    struct mk_channel_msg *prev;
    int i;

    memset(it, 0, sizeof(it));
    for (i = 0; i < 4; i++) {
        it[i].seq = i;
    }
    received = 0;
    CHECK(mk_channel_init(&ch, loop, on_mark, NULL) == 0);
    mk_channel_push(&ch, &it[0].msg);
    mk_channel_push(&ch, &it[1].msg);
    /* half a push of 2: 1 -> 2 is not linked yet */
    atomic_store(&it[2].msg.next, NULL);
    prev = atomic_exchange(&ch.head, &it[2].msg);
    CHECK(prev == &it[1].msg);
    /* a full push of 3 behind it */
    mk_channel_push(&ch, &it[3].msg);
    for (i = 0; i < 5; i++) {
        mk_event_loop_run_once(loop, 100);
    }
    /* 0 is out; 1 cannot be handed out before its successor is known */
    CHECK_EQ_INT(got[0], 1);
    CHECK_EQ_INT(got[1] + got[2] + got[3], 0);
    /* the producer resumes: complete the link, and nothing else */
    atomic_store(&prev->next, &it[2].msg);
    for (i = 0; i < 5 && received < 4; i++) {
        mk_event_loop_run_once(loop, 1000);
    }
    for (i = 0; i < 4; i++) {
        CHECK_EQ_INT(got[i], 1);
    }
    /* and the channel is quiet and usable again */
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 20), 0);
    mk_channel_push(&ch, &it[0].msg);
    CHECK_EQ_INT(mk_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(got[0], 2);
    mk_channel_release(&ch);
    mk_event_loop_destroy(loop);
}

/* A deferred push wakes the consumer when the producer's loop is done with
 * its batch: a burst arrives as one batch, and none is lost. */
static void on_batch(struct mk_channel *ch, struct mk_channel_msg *msg)
{
    received++;
}

MK_TEST(deferred_push_wakes_after_the_batch)
{
    struct mk_event_loop *consumer = mk_event_loop_create(16);
    struct mk_event_loop *producer = mk_event_loop_create(16);
    struct mk_channel ch;
    struct item it[3];
    int i;

    received = 0;
    CHECK(mk_channel_init(&ch, consumer, on_batch, NULL) == 0);
    for (i = 0; i < 3; i++) {
        mk_channel_push_deferred(&ch, &it[i].msg, producer);
    }
    /* queued, but nobody woke the consumer yet */
    CHECK_EQ_INT(mk_event_loop_run_once(consumer, 20), 0);
    CHECK_EQ_INT(received, 0);
    /* the producer's loop sends the wake-up before it would sleep */
    mk_event_loop_run_once(producer, 0);
    CHECK_EQ_INT(mk_event_loop_run_once(consumer, 1000), 1);
    CHECK_EQ_INT(received, 3);
    /* a producer loop destroyed with a wake-up owed still sends it */
    mk_channel_push_deferred(&ch, &it[0].msg, producer);
    mk_event_loop_destroy(producer);
    CHECK_EQ_INT(mk_event_loop_run_once(consumer, 1000), 1);
    CHECK_EQ_INT(received, 4);
    /* and immediate pushes still work after deferred ones */
    mk_channel_push(&ch, &it[1].msg);
    CHECK_EQ_INT(mk_event_loop_run_once(consumer, 1000), 1);
    CHECK_EQ_INT(received, 5);
    mk_channel_release(&ch);
    mk_event_loop_destroy(consumer);
}

/* A consumer that leaves: mk_event_loop_flush sends the wake-ups its own
 * loop still owes, and mk_channel_flush hands over what is queued without
 * any wake-up (more than one batch of it). */
MK_TEST(flush_on_the_way_out)
{
    struct mk_event_loop *consumer = mk_event_loop_create(16);
    struct mk_event_loop *producer = mk_event_loop_create(16);
    struct mk_channel ch, other;
    static struct item many[5000];
    int i;

    received = 0;
    CHECK(mk_channel_init(&ch, consumer, on_batch, NULL) == 0);
    CHECK(mk_channel_init(&other, consumer, on_batch, NULL) == 0);
    mk_channel_push_deferred(&other, &many[0].msg, producer);
    mk_event_loop_flush(producer);          /* owed: sent without a batch */
    CHECK_EQ_INT(mk_event_loop_run_once(consumer, 1000), 1);
    CHECK_EQ_INT(received, 1);
    for (i = 0; i < 5000; i++) {
        mk_channel_push_deferred(&ch, &many[i].msg, producer);
    }
    received = 0;
    mk_channel_flush(&ch);
    CHECK_EQ_INT(received, 5000);
    mk_channel_flush(&ch);                  /* empty: nothing, no block */
    CHECK_EQ_INT(received, 5000);
    mk_event_loop_flush(producer);          /* before the fd goes */
    mk_channel_release(&ch);
    mk_channel_release(&other);
    mk_event_loop_destroy(producer);
    mk_event_loop_destroy(consumer);
}

int main(void)
{
    RUN(four_producers);
    RUN(push_from_handler);
    RUN(broken_link_is_retried);
    RUN(deferred_push_wakes_after_the_batch);
    RUN(flush_on_the_way_out);
    return mk_test_done();
}
