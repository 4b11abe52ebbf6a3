/*
 * Virtual hosts (mk_server/mk_vhost.c) on the real loaded generation of
 * tests/unit/fixtures/config/good: Host matching (exact, `*.suffix`, case,
 * names written with a port), each listener's default site, the 421 case
 * (a site that is not served on the listener) and locations (longest
 * prefix first, on path-segment boundaries). Runs from tests/unit/.
 */
#include <string.h>

#include "mk_test.h"
#include "config_plugins.h"

static char err[1024];
static struct mk_server *srv;
static struct mk_vhost *site_a, *site_b, *site_c;

/* The site for `host` (NULL: no Host header) on listener `i`. */
static struct mk_vhost *lookup(size_t i, const char *host)
{
    return mk_server_vhost_lookup(srv, &srv->listens[i], host,
                                  host ? strlen(host) : 0);
}

MK_TEST(host_length_drops_the_port)
{
    CHECK_EQ_INT(mk_vhost_host_len("www.a.test:8080"), 10);
    CHECK_EQ_INT(mk_vhost_host_len("a.test"), 6);
    CHECK_EQ_INT(mk_vhost_host_len("[::1]:80"), 5);
    CHECK_EQ_INT(mk_vhost_host_len("a.test:"), 7);      /* no port digits */
    CHECK_EQ_INT(mk_vhost_host_len("8080"), 4);         /* all digits */
    CHECK_EQ_INT(mk_vhost_host_len(":80"), 3);          /* no host before */
}

MK_TEST(names)
{
    CHECK_EQ_STR(mk_vhost_name(site_a), "a.test");
    CHECK_EQ_INT(site_a->name_count, 2);
    /* a name keeps its port as written (SERVER_PORT for nodes) */
    CHECK_EQ_STR(site_a->names[1], "www.a.test:8080");
    CHECK_EQ_STR(mk_vhost_name(site_b), "*.b.test");
    CHECK(mk_server_vhost_next(srv, NULL) == site_a);
    CHECK(mk_server_vhost_next(srv, site_a) == site_b);
    CHECK(mk_server_vhost_next(srv, site_c) == NULL);
}

MK_TEST(exact_and_wildcard_matching)
{
    CHECK(mk_server_vhost_match(srv, "a.test", 6) == site_a);
    CHECK(mk_server_vhost_match(srv, "A.Test", 6) == site_a);
    /* a name written with :8080 matches the Host without its port */
    CHECK(mk_server_vhost_match(srv, "www.a.test", 10) == site_a);
    CHECK(mk_server_vhost_match(srv, "c.test", 6) == site_c);
    /* `*.b.test` matches any name ending in `.b.test`, not b.test itself */
    CHECK(mk_server_vhost_match(srv, "x.b.test", 8) == site_b);
    CHECK(mk_server_vhost_match(srv, "deep.x.B.TEST", 13) == site_b);
    CHECK(mk_server_vhost_match(srv, "b.test", 6) == NULL);
    CHECK(mk_server_vhost_match(srv, "xb.test", 7) == NULL);
    CHECK(mk_server_vhost_match(srv, "a.tes", 5) == NULL);
    CHECK(mk_server_vhost_match(srv, "a.testx", 7) == NULL);
    /* the length given is what counts, not a NUL */
    CHECK(mk_server_vhost_match(srv, "a.test:8080", 6) == site_a);
}

MK_TEST(default_site_per_listener)
{
    /* :8080 serves a (Default on) and c; :8443 is reserved by b */
    CHECK(srv->listens[0].default_vhost == site_a);
    CHECK(srv->listens[1].default_vhost == site_b);
    CHECK(!srv->listens[0].reserved);
    CHECK(srv->listens[1].reserved);
    CHECK(lookup(0, NULL) == site_a);                 /* no Host */
    CHECK(lookup(0, "unknown.test") == site_a);
    CHECK(lookup(1, NULL) == site_b);
    CHECK(lookup(1, "unknown.test") == site_b);
    CHECK(lookup(1, "b.test") == site_b);             /* unmatched: default */
}

MK_TEST(misdirected_is_null)
{
    /* a site that exists but is not served on this listener: 421 */
    CHECK(lookup(0, "x.b.test") == NULL);
    CHECK(lookup(1, "a.test") == NULL);
    CHECK(lookup(1, "c.test") == NULL);
    /* and served where it belongs */
    CHECK(lookup(0, "c.test") == site_c);
    CHECK(lookup(0, "WWW.A.TEST") == site_a);
    CHECK(lookup(1, "x.b.test") == site_b);
}

MK_TEST(location_longest_prefix)
{
    const struct mk_location *loc;
    int hello = 1;                      /* plugin index of "hello" */

    CHECK_EQ_INT(site_a->handler, -1);  /* the site itself: static */
    CHECK_EQ_INT(site_b->handler, hello);
    CHECK_EQ_INT(site_a->location_count, 3);
    loc = mk_vhost_location(site_a, "/app/static/x.css");
    CHECK(loc != NULL && loc->handler == -1 &&
          strcmp(loc->prefix, "/app/static") == 0);
    loc = mk_vhost_location(site_a, "/app/static");
    CHECK(loc != NULL && loc->handler == -1);
    loc = mk_vhost_location(site_a, "/app/x");
    CHECK(loc != NULL && loc->handler == hello &&
          strcmp(loc->prefix, "/app") == 0);
    loc = mk_vhost_location(site_a, "/app");
    CHECK(loc != NULL && loc->handler == hello);
    loc = mk_vhost_location(site_a, "/app/staticx");  /* not /app/static */
    CHECK(loc != NULL && strcmp(loc->prefix, "/app") == 0);
    /* a prefix ends on a segment boundary */
    CHECK(mk_vhost_location(site_a, "/application") == NULL);
    /* a prefix written with its slash needs it */
    loc = mk_vhost_location(site_a, "/x/y");
    CHECK(loc != NULL && strcmp(loc->prefix, "/x/") == 0);
    CHECK(mk_vhost_location(site_a, "/x") == NULL);
    CHECK(mk_vhost_location(site_a, "/") == NULL);
    CHECK(mk_vhost_location(site_c, "/app") == NULL);
}

int main(void)
{
    srv = load_fixture("good", NULL, err, sizeof(err));
    CHECK(srv != NULL && srv->vhost_count == 3);
    if (srv == NULL || srv->vhost_count != 3) {
        fprintf(stderr, "error: %s\n", err);
        return mk_test_done();
    }
    site_a = srv->vhosts[0];
    site_b = srv->vhosts[1];
    site_c = srv->vhosts[2];
    RUN(host_length_drops_the_port);
    RUN(names);
    RUN(exact_and_wildcard_matching);
    RUN(default_site_per_listener);
    RUN(misdirected_is_null);
    RUN(location_longest_prefix);
    mk_server_destroy(srv);
    return mk_test_done();
}
