/* Unit tests for mk_server/mk_msg_types.c: the node message-type registry
 * built from the loaded plugins' descriptors. */
#include <string.h>

#include "mk_test.h"
#include "mk_server/mk_msg_types.c"

static char got[64];
static void *got_conf;
static uint64_t got_share;

static void on_ws(void *conf, struct mk_session *s, const char *type,
                  const void *body, size_t len, uint64_t share)
{
    (void) s;
    got_conf = conf;
    got_share = share;
    snprintf(got, sizeof(got), "%s=%.*s", type, (int) len,
             (const char *) body);
}

static const struct mk_msg_type ws_types[] = {
    { "websocket", on_ws }, { "socket.io/event", on_ws }, { NULL, NULL }
};
static const struct mk_msg_type cache_types[] = {
    { "cache", on_ws }, { NULL, NULL }
};
static const struct mk_msg_type clash_types[] = {
    { "websocket", on_ws }, { NULL, NULL }
};
static const struct mk_plugin p_ws = { .name = "ws", .msg_types = ws_types };
static const struct mk_plugin p_cache = { .name = "cache",
                                          .msg_types = cache_types };
static const struct mk_plugin p_none = { .name = "none" };
static const struct mk_plugin p_clash = { .name = "clash",
                                          .msg_types = clash_types };

MK_TEST(lookup_and_delivery)
{
    struct mk_plugin_inst insts[3] = {
        { &p_none, NULL, 0 }, { &p_ws, (void *) 0x1, 1 },
        { &p_cache, (void *) 0x2, 2 },
    };
    struct mk_server srv;
    struct mk_session s;
    char err[256] = "";

    memset(&srv, 0, sizeof(srv));
    memset(&s, 0, sizeof(s));
    srv.plugins = insts;
    srv.plugin_count = 3;
    CHECK(mk_msg_types_build(&srv, err, sizeof(err)) == 0);
    CHECK_EQ_INT(srv.msg_type_count, 3);
    CHECK(mk_server_handles_msg(&srv, "websocket", 9));
    CHECK(mk_server_handles_msg(&srv, "cache", 5));
    CHECK(!mk_server_handles_msg(&srv, "websocke", 8));   /* exact length */
    CHECK(!mk_server_handles_msg(&srv, "push", 4));
    s.srv = &srv;
    CHECK(mk_session_deliver(&s, "websocket", 9, "hi", 2, 7) == 0);
    CHECK_EQ_STR(got, "websocket=hi");
    CHECK(got_conf == (void *) 0x1);                      /* its own conf */
    CHECK_EQ_INT(got_share, 7);                           /* passed through */
    CHECK(mk_session_deliver(&s, "push", 4, "x", 1, 0) == -1);
    mk_mem_free(srv.msg_types);
}

static void on_owner(void *data, struct mk_session *s, const char *type,
                     size_t tlen, const void *body, size_t len,
                     uint64_t share)
{
    (void) s;
    (void) share;
    snprintf(got, sizeof(got), "%s:%.*s=%.*s", (const char *) data,
             (int) tlen, type, (int) len, (const char *) body);
}

MK_TEST(a_type_no_plugin_takes_goes_to_the_owner)
{
    static const struct mk_session_owner owner = { .on_message = on_owner };
    struct mk_plugin_inst insts[1] = { { &p_ws, (void *) 0x1, 0 } };
    struct mk_server srv;
    struct mk_session s;
    char err[64];

    memset(&srv, 0, sizeof(srv));
    memset(&s, 0, sizeof(s));
    srv.plugins = insts;
    srv.plugin_count = 1;
    CHECK(mk_msg_types_build(&srv, err, sizeof(err)) == 0);
    s.srv = &srv;
    s.owner = &owner;
    s.owner_data = "sio";
    CHECK(mk_session_deliver(&s, "push", 4, "x", 1, 0) == 0);
    CHECK_EQ_STR(got, "sio:push=x");
    CHECK(mk_session_deliver(&s, "websocket", 9, "y", 1, 0) == 0);
    CHECK_EQ_STR(got, "websocket=y");                     /* plugin first */
    mk_mem_free(srv.msg_types);
}

MK_TEST(two_plugins_claiming_a_type_is_an_error)
{
    struct mk_plugin_inst insts[2] = {
        { &p_ws, NULL, 0 }, { &p_clash, NULL, 1 },
    };
    struct mk_server srv;
    char err[256] = "";

    memset(&srv, 0, sizeof(srv));
    srv.plugins = insts;
    srv.plugin_count = 2;
    CHECK(mk_msg_types_build(&srv, err, sizeof(err)) == -1);
    CHECK(strstr(err, "ws and clash") && strstr(err, "\"websocket\""));
    mk_mem_free(srv.msg_types);
}

MK_TEST(no_types_no_table)
{
    struct mk_plugin_inst insts[1] = { { &p_none, NULL, 0 } };
    struct mk_server srv;
    char err[64];

    memset(&srv, 0, sizeof(srv));
    srv.plugins = insts;
    srv.plugin_count = 1;
    CHECK(mk_msg_types_build(&srv, err, sizeof(err)) == 0);
    CHECK(srv.msg_types == NULL && !mk_server_handles_msg(&srv, "cache", 5));
}

int main(void)
{
    RUN(lookup_and_delivery);
    RUN(a_type_no_plugin_takes_goes_to_the_owner);
    RUN(two_plugins_claiming_a_type_is_an_error);
    RUN(no_types_no_table);
    return mk_test_done();
}
