/* Node registry: admission by exact name or glob, least-connection choice
 * with ties to the first listed, liveness (OFF after 3 x ping), spawn once,
 * bounded memory against identity cycling. */
#include <string.h>

#include "mk_test.h"
#include "plugins/zmq/zmq_nodes.c"

static int pings, spawns, offs;
static void on_ping(void *ctx, struct zmq_node *n) { pings++; }
static void on_spawn(void *ctx, struct zmq_node *n) { spawns++; }
static void on_off(void *ctx, struct zmq_node *n) { offs++; }
static const struct zmq_tick_ops ops = { on_ping, on_spawn, on_off, NULL };

static struct zmq_node *seen(struct zmq_nodes *ns, int router, const char *id,
                             uint64_t now)
{
    int up;
    return zmq_nodes_seen(ns, router, id, strlen(id), now, &up);
}

MK_TEST(exact_and_glob_admission)
{
    struct zmq_nodes ns;
    int up = 0;

    CHECK(zmq_nodes_init(&ns, 100) == 0);
    CHECK(zmq_nodes_add_pattern(&ns, 0, "node1", 3000) == 0);
    CHECK(zmq_nodes_add_pattern(&ns, 0, "web-*", 3000) == 1);
    CHECK(zmq_nodes_add_pattern(&ns, 0, "node1", 3000) == 0);   /* shared */
    CHECK_EQ_INT(ns.count, 1);           /* exact names exist at once */
    CHECK(zmq_nodes_seen(&ns, 0, "node1", 5, 1000, &up) != NULL && up);
    CHECK(zmq_nodes_seen(&ns, 0, "node1", 5, 1001, &up) != NULL && !up);
    CHECK(seen(&ns, 0, "web-a", 1000) != NULL);
    CHECK(seen(&ns, 0, "db-a", 1000) == NULL);            /* refused */
    CHECK(seen(&ns, 1, "web-a", 1000) == NULL);           /* other ROUTER */
    CHECK(zmq_nodes_seen(&ns, 0, "web-\0x", 6, 1000, &up) == NULL);
    CHECK_EQ_INT(ns.count, 2);
    zmq_nodes_release(&ns);
}

MK_TEST(least_connections_ties_to_first_listed)
{
    struct zmq_nodes ns;
    size_t idx[2];
    struct zmq_site_nodes site = { idx, 2 };
    struct zmq_node *a, *b, *ex[1];

    zmq_nodes_init(&ns, 100);
    idx[0] = (size_t) zmq_nodes_add_pattern(&ns, 0, "b", 3000);
    idx[1] = (size_t) zmq_nodes_add_pattern(&ns, 0, "a", 3000);
    CHECK(zmq_nodes_pick(&ns, &site, NULL, 0) == NULL);   /* all OFF */
    a = seen(&ns, 0, "a", 10);
    b = seen(&ns, 0, "b", 10);
    CHECK(zmq_nodes_pick(&ns, &site, NULL, 0) == b);      /* listed first */
    b->load = 2;
    a->load = 1;
    CHECK(zmq_nodes_pick(&ns, &site, NULL, 0) == a);
    a->load = 2;
    CHECK(zmq_nodes_pick(&ns, &site, NULL, 0) == b);      /* tie: first */
    ex[0] = b;
    CHECK(zmq_nodes_pick(&ns, &site, ex, 1) == a);        /* retry */
    ex[0] = a;
    b->available = 0;
    CHECK(zmq_nodes_pick(&ns, &site, ex, 1) == NULL);
    zmq_nodes_release(&ns);
}

MK_TEST(glob_candidates_in_admission_order)
{
    struct zmq_nodes ns;
    size_t idx[1];
    struct zmq_site_nodes site = { idx, 1 };
    struct zmq_node *x, *y;

    zmq_nodes_init(&ns, 100);
    idx[0] = (size_t) zmq_nodes_add_pattern(&ns, 0, "*", 3000);
    y = seen(&ns, 0, "y", 5);
    x = seen(&ns, 0, "x", 6);
    CHECK(zmq_nodes_pick(&ns, &site, NULL, 0) == y);
    y->load = 1;
    CHECK(zmq_nodes_pick(&ns, &site, NULL, 0) == x);
    zmq_nodes_release(&ns);
}

MK_TEST(liveness_ping_off_spawn_forget)
{
    struct zmq_nodes ns;
    struct zmq_node *n, *g;

    zmq_nodes_init(&ns, 100);
    zmq_nodes_add_pattern(&ns, 0, "n", 3000);
    zmq_nodes_add_pattern(&ns, 0, "g*", 3000);
    pings = spawns = offs = 0;
    zmq_nodes_tick(&ns, 1000, &ops);     /* first tick at 1 s */
    CHECK_EQ_INT(pings, 1);                    /* never seen: pinged */
    CHECK_EQ_INT(spawns, 1);
    n = seen(&ns, 0, "n", 1000);
    g = seen(&ns, 0, "g1", 1000);
    zmq_nodes_tick(&ns, 2000, &ops);     /* fresh: no ping */
    CHECK_EQ_INT(pings, 1);
    CHECK_EQ_INT(spawns, 2);                   /* g1 gets its spawn once */
    zmq_nodes_tick(&ns, 4000, &ops);     /* 3 s silent: ping */
    CHECK_EQ_INT(pings, 3);
    CHECK(n->available && offs == 0);
    zmq_nodes_tick(&ns, 10001, &ops);    /* > 9 s silent: OFF */
    CHECK(!n->available && !g->available);
    CHECK_EQ_INT(offs, 2);
    CHECK_EQ_INT(spawns, 2);                   /* never again */
    zmq_nodes_tick(&ns, 40000, &ops);    /* > 30 s: g1 forgotten */
    CHECK_EQ_INT(ns.count, 1);
    CHECK(zmq_nodes_get(&ns, 0, "g1", 2) == NULL);
    CHECK(zmq_nodes_get(&ns, 0, "n", 1) == n); /* configured: kept */
    zmq_nodes_release(&ns);
}

MK_TEST(max_nodes_bounds_identity_cycling)
{
    struct zmq_nodes ns;
    char id[16];
    int i, admitted = 0;

    zmq_nodes_init(&ns, 50);
    zmq_nodes_add_pattern(&ns, 0, "*", 3000);
    for (i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "evil%d", i);
        admitted += seen(&ns, 0, id, 1) != NULL;
    }
    CHECK_EQ_INT(admitted, 50);
    CHECK_EQ_INT(ns.count, 50);
    zmq_nodes_release(&ns);
}

MK_TEST(ping_freq_is_the_shortest_of_the_listing_sites)
{
    struct zmq_nodes ns;
    struct zmq_node *a, *w, *o;

    zmq_nodes_init(&ns, 100);
    zmq_nodes_add_pattern(&ns, 0, "a", 3000);
    zmq_nodes_add_pattern(&ns, 0, "w*", 5000);
    a = zmq_nodes_get(&ns, 0, "a", 1);
    CHECK(a && a->ping_ms == 3000);
    zmq_nodes_add_pattern(&ns, 0, "a", 1000);    /* a faster site lists it */
    CHECK(a->ping_ms == 1000);
    zmq_nodes_add_pattern(&ns, 0, "a", 2000);    /* a slower one does not */
    CHECK(a->ping_ms == 1000);
    w = seen(&ns, 0, "w1", 10);
    CHECK(w && w->ping_ms == 5000);
    zmq_nodes_add_pattern(&ns, 0, "*", 500);     /* admits and speeds both */
    CHECK(w->ping_ms == 500 && a->ping_ms == 500);
    o = seen(&ns, 0, "other", 10);
    CHECK(o && o->ping_ms == 500);
    zmq_nodes_add_pattern(&ns, 1, "*", 100);     /* other ROUTER: no effect */
    CHECK(w->ping_ms == 500);
    pings = offs = 0;
    zmq_nodes_tick(&ns, 600, &ops);              /* silent 590 ms >= 500 */
    CHECK_EQ_INT(pings, 3);
    zmq_nodes_tick(&ns, 1700, &ops);             /* > 3 x 500: seen ones OFF */
    CHECK_EQ_INT(offs, 2);
    CHECK(!w->available && !o->available);
    zmq_nodes_release(&ns);
}

int main(void)
{
    RUN(exact_and_glob_admission);
    RUN(least_connections_ties_to_first_listed);
    RUN(glob_candidates_in_admission_order);
    RUN(liveness_ping_off_spawn_forget);
    RUN(max_nodes_bounds_identity_cycling);
    RUN(ping_freq_is_the_shortest_of_the_listing_sites);
    return mk_test_done();
}
