/* Unit tests: the websocket plugin's opening-handshake helpers (RFC 6455
 * 4.2: the accept key, token lists) and how a site's [WEBSOCKET] keys
 * override websocket.conf's. */
#include <string.h>

#include "mk_test.h"
#include "plugins/websocket/ws.c"
#include "plugins/websocket/ws_conn.c"
#include "plugins/websocket/ws_deflate.c"
#include "plugins/websocket/ws_frame.c"
#include "plugins/websocket/ws_utf8.c"

static struct mk_ptr ptr(const char *s)
{
    struct mk_ptr p = { (char *) s, strlen(s) };
    return p;
}

MK_TEST(accept_key_rfc_example)
{
    char out[32];

    /* RFC 6455 1.3 */
    CHECK(ws_accept_key(ptr("dGhlIHNhbXBsZSBub25jZQ=="), out,
                        sizeof(out)) == 0);
    CHECK_EQ_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* not 16 bytes, not base64 */
    CHECK(ws_accept_key(ptr("dGhlIHNhbXBsZSBub25j"), out, sizeof(out)) < 0);
    CHECK(ws_accept_key(ptr("dGhlIHNhbXBsZSBub25jZQ=!"), out,
                        sizeof(out)) < 0);
    CHECK(ws_accept_key(ptr("AAAAAAAAAAAAAAAAAAAAAAAAAAAA"), out,
                        sizeof(out)) < 0);
}

MK_TEST(token_lists)
{
    CHECK(ws_list_has(ptr("websocket"), "websocket"));
    CHECK(ws_list_has(ptr("WebSocket"), "websocket"));
    CHECK(ws_list_has(ptr("keep-alive, Upgrade"), "upgrade"));
    CHECK(ws_list_has(ptr("Upgrade,keep-alive"), "upgrade"));
    CHECK(!ws_list_has(ptr("upgrade-insecure"), "upgrade"));
    CHECK(!ws_list_has(ptr("keep-alive"), "upgrade"));
    CHECK(!ws_list_has(ptr(""), "upgrade"));
    CHECK(ws_list_has_exact(ptr("chat, superchat"), "superchat", 9));
    CHECK(ws_list_has_exact(ptr("chat, superchat"), "chat", 4));
    CHECK(!ws_list_has_exact(ptr("chat, superchat"), "Chat", 4));
    CHECK(!ws_list_has_exact(ptr("chat, superchat"), "super", 5));
    CHECK(!ws_list_has_exact(ptr("chat"), "", 0));
}

/* websocket.conf's [WEBSOCKET] (`global`) then a site's (`site`), both
 * through the schema as the server applies them; 0 or -1 with err set. */
static int ws_apply(const char *global, const char *site, struct ws_conf *wc,
                    struct ws_conf *vc, char *err, size_t errlen)
{
    struct mk_rconf *g = mk_rconf_parse("websocket.conf", global,
                                        strlen(global), err, errlen);
    struct mk_rconf *v = mk_rconf_parse("site.conf", site, strlen(site), err,
                                        errlen);
    int ret = -1;

    memset(wc, 0, sizeof(*wc));
    memset(vc, 0, sizeof(*vc));
    if (g && v &&
        mk_conf_apply(mk_rconf_section_next(g, "WEBSOCKET", NULL), ws_keys,
                      wc, err, errlen) == 0 &&
        mk_conf_apply_inherit(mk_rconf_section_next(v, "WEBSOCKET", NULL),
                              ws_vhost_keys, vc, ws_keys, wc, err,
                              errlen) == 0) {
        ws_settings_resolve(wc);
        ws_settings_resolve(vc);
        ret = 0;
    }
    mk_rconf_destroy(g);
    mk_rconf_destroy(v);
    return ret;
}

MK_TEST(site_keys_override_the_global_ones)
{
    struct ws_conf wc, vc;
    char err[256];

    /* nothing set in the site: every value is websocket.conf's */
    CHECK(ws_apply("[WEBSOCKET]\n    PingInterval 10s\n    Deflate on\n",
                   "[WEBSOCKET]\n", &wc, &vc, err, sizeof(err)) == 0);
    CHECK_EQ_INT(wc.set.slow_reader_code, 1013);
    CHECK_EQ_INT(vc.set.max_message, 1 << 20);
    CHECK_EQ_INT(vc.set.ping_interval, 10000);
    CHECK_EQ_INT(vc.set.idle_timeout, 120000);
    CHECK_EQ_INT(vc.set.deflate, 1);
    CHECK_EQ_INT(vc.set.policy.window_bits, 15);
    CHECK_EQ_INT(vc.set.deflate_memory, 64 << 20);

    /* PingInterval 0 and IdleTimeout 0 are real values, not "unset" */
    CHECK(ws_apply("[WEBSOCKET]\n",
                   "[WEBSOCKET]\n    PingInterval 0\n    IdleTimeout 0\n"
                   "    MaxMessageSize 64K\n    Deflate on\n"
                   "    DeflateWindowBits 10\n    SlowReaderCode 1008\n"
                   "    BinaryMessages websocket/binary\n",
                   &wc, &vc, err, sizeof(err)) == 0);
    CHECK_EQ_INT(vc.set.ping_interval, 0);
    CHECK_EQ_INT(vc.set.idle_timeout, 0);
    CHECK_EQ_INT(vc.set.max_message, 64 * 1024);
    CHECK_EQ_INT(vc.set.deflate, 1);
    CHECK_EQ_INT(vc.set.policy.window_bits, 10);
    CHECK_EQ_INT(vc.set.policy.mem_level, 8);    /* still inherited */
    CHECK_EQ_INT(vc.set.slow_reader_code, 1008);
    CHECK_EQ_INT(vc.set.binary_type, 1);
    CHECK_EQ_INT(wc.set.slow_reader_code, 1013); /* the global is untouched */

    /* bad values are refused as websocket.conf refuses them, at file:line */
    CHECK(ws_apply("[WEBSOCKET]\n", "[WEBSOCKET]\n    SlowReaderCode 1011\n",
                   &wc, &vc, err, sizeof(err)) < 0);
    CHECK_EQ_STR(err, "site.conf:2: SlowReaderCode: \"1011\" is not one of "
                 "1013|1008");
    CHECK(ws_apply("[WEBSOCKET]\n", "[WEBSOCKET]\n    DeflateWindowBits 8\n",
                   &wc, &vc, err, sizeof(err)) < 0);
    CHECK_EQ_STR(err, "site.conf:2: DeflateWindowBits: 8 out of range 9..15");
    CHECK(ws_apply("[WEBSOCKET]\n", "[WEBSOCKET]\n\n    MaxMessageSize 0\n",
                   &wc, &vc, err, sizeof(err)) < 0);
    CHECK_EQ_STR(err, "site.conf:3: MaxMessageSize: 0 is below the minimum 1");
    CHECK(ws_apply("[WEBSOCKET]\n", "[WEBSOCKET]\n    SendQueueLimit 1K\n",
                   &wc, &vc, err, sizeof(err)) < 0);
    CHECK_EQ_STR(err, "site.conf:2: SendQueueLimit: 1K is below the minimum "
                 "4K");
}

MK_TEST(deflate_budget)
{
    struct ws_settings set;
    struct ws_deflate_params p = { 0, 0, 15, 15 };
    atomic_size_t used;
    size_t need = ws_deflate_memory_peak(&p, 8), got;

    memset(&set, 0, sizeof(set));
    set.policy.mem_level = 8;
    set.deflate_memory = need * 2 + need / 2;    /* room for two */
    atomic_init(&used, 0);
    CHECK((got = ws_deflate_reserve(&set, &used, &p)) == need);
    CHECK(ws_deflate_reserve(&set, &used, &p) == need);
    CHECK(ws_deflate_reserve(&set, &used, &p) == 0);    /* over budget */
    CHECK_EQ_INT(atomic_load(&used), 2 * need);
    atomic_fetch_sub(&used, got);
    CHECK(ws_deflate_reserve(&set, &used, &p) == need);
}

int main(void)
{
    RUN(accept_key_rfc_example);
    RUN(token_lists);
    RUN(site_keys_override_the_global_ones);
    RUN(deflate_budget);
    return mk_test_done();
}
