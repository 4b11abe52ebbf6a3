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

MK_TEST(site_keys_override_the_global_ones)
{
    struct ws_conf wc;
    struct ws_vconf vc;
    char err[256];

    memset(&wc, 0, sizeof(wc));
    wc.max_message = 1 << 20;
    wc.ping_interval = 30000;
    wc.idle_timeout = 120000;
    wc.send_queue = 1 << 20;
    wc.close_timeout = 5000;
    wc.window_bits = 15;
    wc.mem_level = 8;
    wc.context_takeover = 1;
    wc.deflate_memory = 64 << 20;
    ws_settings_global(&wc);
    CHECK_EQ_INT(wc.set.slow_reader_code, 1013);

    memset(&vc, 0, sizeof(vc));                  /* nothing set: inherit */
    CHECK(ws_site_check(&wc, &vc, "a", err, sizeof(err)) == 0);
    CHECK_EQ_INT(vc.set.max_message, 1 << 20);
    CHECK_EQ_INT(vc.set.ping_interval, 30000);
    CHECK_EQ_INT(vc.set.deflate, 0);
    CHECK_EQ_INT(vc.set.policy.window_bits, 15);

    /* PingInterval 0 and IdleTimeout 0 are real values, not "unset" */
    CHECK(ws_site_time("0", &vc.ping_interval, err, sizeof(err)) == 0);
    CHECK(ws_site_time("0", &vc.idle_timeout, err, sizeof(err)) == 0);
    CHECK(ws_site_size("64K", &vc.max_message, err, sizeof(err)) == 0);
    CHECK(ws_site_bool("on", &vc.deflate, err, sizeof(err)) == 0);
    CHECK(ws_site_bits("10", &vc.window_bits, err, sizeof(err)) == 0);
    CHECK(ws_site_code("1008", &vc.slow_reader, err, sizeof(err)) == 0);
    CHECK(ws_site_binary("websocket/binary", &vc.binary_type, err,
                         sizeof(err)) == 0);
    CHECK(ws_site_check(&wc, &vc, "a", err, sizeof(err)) == 0);
    CHECK_EQ_INT(vc.set.ping_interval, 0);
    CHECK_EQ_INT(vc.set.idle_timeout, 0);
    CHECK_EQ_INT(vc.set.max_message, 64 * 1024);
    CHECK_EQ_INT(vc.set.deflate, 1);
    CHECK_EQ_INT(vc.set.policy.window_bits, 10);
    CHECK_EQ_INT(vc.set.policy.mem_level, 8);    /* still inherited */
    CHECK_EQ_INT(vc.set.slow_reader_code, 1008);
    CHECK_EQ_INT(vc.set.binary_type, 1);

    /* bad values name the problem */
    CHECK(ws_site_code("1011", &vc.slow_reader, err, sizeof(err)) < 0);
    CHECK(strstr(err, "1013 or 1008") != NULL);
    CHECK(ws_site_bits("8", &vc.window_bits, err, sizeof(err)) < 0);
    CHECK(ws_site_level("10", &vc.mem_level, err, sizeof(err)) < 0);
    CHECK(ws_site_binary("binary", &vc.binary_type, err, sizeof(err)) < 0);
    CHECK(ws_site_size("0", &vc.max_message, err, sizeof(err)) == 0);
    CHECK(ws_site_check(&wc, &vc, "a", err, sizeof(err)) < 0);
    CHECK(strstr(err, "MaxMessageSize") != NULL);
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
