/*
 * msgprobe: a plugin for the integration tests (never shipped) that
 * registers node message types the way the websocket plugin will: a
 * `websocket` message from a node is written to the client as
 * "[websocket:BODY]", so a test sees which connection got which message,
 * sent to the session itself or routed to a group or `@sid`.
 */
#include <string.h>

#include "mk_server/mk_plugin.h"

static void msgprobe_on_message(void *conf, struct mk_session *s,
                                const char *type, const void *body,
                                size_t len, uint64_t share)
{
    struct mk_conn *c = mk_session_conn(s);

    (void) conf;
    (void) share;
    mk_conn_write(c, "[", 1, MK_WRITE_STATIC);
    mk_conn_write(c, type, strlen(type), MK_WRITE_COPY);
    mk_conn_write(c, ":", 1, MK_WRITE_STATIC);
    mk_conn_write(c, body, len, MK_WRITE_COPY);
    mk_conn_write(c, "]", 1, MK_WRITE_STATIC);
}

static const struct mk_msg_type msgprobe_types[] = {
    { "websocket", msgprobe_on_message },
    { NULL, NULL }
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_msgprobe = {
    .abi       = MK_PLUGIN_ABI,
    .name      = "msgprobe",
    .msg_types = msgprobe_types,
};
