/* The protocol registry: the core's HTTP/1.1 and the plugins' protocols,
 * duplicates refused (by name and by ALPN id), lookup by name for the
 * listeners, ALPN ids in preference order, and switching a connection to
 * the protocol of an ALPN id. */
#include <string.h>

#include "mk_test.h"
#include "mk_server/mk_conn.h"

static int dummy_read(struct mk_conn *c)
{
    return MK_PROTO_OK;
}

static int closed;

static void counting_close(struct mk_conn *c)
{
    closed++;
}

static const struct mk_proto proto_a = { .name = "a", .on_read = dummy_read };
static const struct mk_proto proto_b = { .name = "b", .on_read = dummy_read,
                                         .on_close = counting_close };

static const struct mk_proto_decl decls_one[] = {
    { "h2c", NULL, 9, &proto_a, NULL },             /* no ALPN: never offered */
    { "toy", "x-toy", 0, &proto_b, NULL },          /* ties with http/1.1 */
    { NULL, NULL, 0, NULL, NULL }
};
static const struct mk_proto_decl decls_two[] = {
    { "h2", "h2", 10, &proto_a, NULL },
    { "old", "x-old", -1, &proto_a, NULL },
    { NULL, NULL, 0, NULL, NULL }
};

static struct mk_plugin plugin_one = { .name = "one", .protos = decls_one };
static struct mk_plugin plugin_two = { .name = "two", .protos = decls_two };
static struct mk_plugin_inst insts[2];
static struct mk_listen listens[2];
static struct mk_server srv;
static char err[256];

static int build(const struct mk_plugin *p0, const struct mk_plugin *p1,
                 const char *l0, const char *l1)
{
    mk_proto_registry_release(&srv);
    memset(&srv, 0, sizeof(srv));
    memset(insts, 0, sizeof(insts));
    memset(listens, 0, sizeof(listens));
    insts[0].p = p0;
    insts[1].p = p1;
    srv.plugins = insts;
    srv.plugin_count = p1 ? 2 : 1;
    listens[0].proto_name = (char *) l0;
    listens[1].proto_name = (char *) l1;
    strcpy(listens[0].text, "127.0.0.1:1");
    strcpy(listens[1].text, "127.0.0.1:2");
    srv.listens = listens;
    srv.listen_count = 2;
    err[0] = '\0';
    return mk_proto_registry_build(&srv, err, sizeof(err));
}

MK_TEST(lookup_by_name_and_listeners)
{
    CHECK_EQ_INT(build(&plugin_one, &plugin_two, "http/1.1", "toy"), 0);
    CHECK(listens[0].proto == &mk_http_proto);
    CHECK(listens[1].proto == &proto_b);
    CHECK(mk_proto_find(&srv, "h2c")->proto == &proto_a);
    CHECK(mk_proto_find(&srv, "http/1.1")->proto == &mk_http_proto);
    CHECK(mk_proto_find(&srv, "nope") == NULL);
}

MK_TEST(alpn_ids_by_preference_then_load_order)
{
    const char *const *ids;

    CHECK_EQ_INT(build(&plugin_one, &plugin_two, "http/1.1", "http/1.1"), 0);
    ids = mk_server_alpn_ids(&srv);
    CHECK_EQ_STR(ids[0], "h2");               /* 10 */
    CHECK_EQ_STR(ids[1], "http/1.1");         /* 0, the core first */
    CHECK_EQ_STR(ids[2], "x-toy");            /* 0, loaded after */
    CHECK_EQ_STR(ids[3], "x-old");            /* -1 */
    CHECK(ids[4] == NULL);
    /* the core alone still offers http/1.1 */
    CHECK_EQ_INT(build(&plugin_two, NULL, "http/1.1", "http/1.1"), 0);
    CHECK_EQ_STR(mk_server_alpn_ids(&srv)[1], "http/1.1");
}

MK_TEST(duplicates_refused)
{
    static const struct mk_proto_decl same_name[] = {
        { "toy", "x-other", 0, &proto_a, NULL }, { NULL, NULL, 0, NULL, NULL }
    };
    static const struct mk_proto_decl same_alpn[] = {
        { "h2-too", "h2", 0, &proto_a, NULL }, { NULL, NULL, 0, NULL, NULL }
    };
    static const struct mk_proto_decl core_name[] = {
        { "http/1.1", NULL, 0, &proto_a, NULL }, { NULL, NULL, 0, NULL, NULL }
    };
    struct mk_plugin p_name = { .name = "dupname", .protos = same_name };
    struct mk_plugin p_alpn = { .name = "dupalpn", .protos = same_alpn };
    struct mk_plugin p_core = { .name = "dupcore", .protos = core_name };

    CHECK_EQ_INT(build(&plugin_one, &p_name, "http/1.1", "http/1.1"), -1);
    CHECK_EQ_STR(err, "protocol \"toy\" is registered by one and by "
                 "dupname: load one of them");
    CHECK_EQ_INT(build(&plugin_two, &p_alpn, "http/1.1", "http/1.1"), -1);
    CHECK_EQ_STR(err, "ALPN id \"h2\" is registered by two (h2) and by "
                 "dupalpn (h2-too): load one of them");
    CHECK_EQ_INT(build(&p_core, NULL, "http/1.1", "http/1.1"), -1);
    CHECK_EQ_STR(err, "protocol \"http/1.1\" is registered by the core and "
                 "by dupcore: load one of them");
}

MK_TEST(unknown_listener_protocol_refused)
{
    CHECK_EQ_INT(build(&plugin_one, NULL, "http/1.1", "h2"), -1);
    CHECK_EQ_STR(err, "Listen 127.0.0.1:2: protocol \"h2\" is not registered "
                 "by the core or a loaded plugin");
}

MK_TEST(select_by_alpn_switches_and_releases)
{
    struct mk_conn c;

    CHECK_EQ_INT(build(&plugin_one, &plugin_two, "http/1.1", "http/1.1"), 0);
    memset(&c, 0, sizeof(c));
    c.srv = &srv;
    c.proto = &proto_b;
    c.proto_data = &c;
    closed = 0;
    CHECK_EQ_INT(mk_conn_select_proto(&c, "x-toy", 5), 0);  /* already */
    CHECK_EQ_INT(closed, 0);
    CHECK(c.proto_data == &c);
    CHECK_EQ_INT(mk_conn_select_proto(&c, "h2", 2), 0);
    CHECK_EQ_INT(closed, 1);                  /* the old one let go */
    CHECK(c.proto == &proto_a && c.proto_data == NULL);
    CHECK_EQ_INT(mk_conn_select_proto(&c, "h2c", 3), -1);  /* no ALPN id */
    CHECK_EQ_INT(mk_conn_select_proto(&c, "h", 1), -1);    /* no prefixes */
    CHECK(c.proto == &proto_a);
}

int main(void)
{
    RUN(lookup_by_name_and_listeners);
    RUN(alpn_ids_by_preference_then_load_order);
    RUN(duplicates_refused);
    RUN(unknown_listener_protocol_refused);
    RUN(select_by_alpn_switches_and_releases);
    mk_proto_registry_release(&srv);
    return mk_test_done();
}
