/*
 * mandril: IP allow/deny at stage 10, before a single byte is read.
 *
 *     [MANDRIL]
 *         Deny  10.1.0.0/16
 *         Allow 10.0.0.0/8
 *         Deny  all
 *
 * Rules are tried in the order written and the first match decides, so
 * Allow and Deny are two CUSTOM keys appending to the same list. The check
 * is a walk over a flat array: no allocation, no lock per connection.
 */
#include "mk_core/mk_log.h"
#include "mk_core/mk_rconf.h"
#include "mk_server/mk_plugin.h"
#include "plugins/mandril/mandril.h"

static int mandril_parse_allow(const char *value, void *field,
                               char *err, size_t errlen)
{
    return mandril_rules_add(field, value, 1, err, errlen);
}

static int mandril_parse_deny(const char *value, void *field,
                              char *err, size_t errlen)
{
    return mandril_rules_add(field, value, 0, err, errlen);
}

static const struct mk_conf_key mandril_keys[] = {
    MK_CONF_CUSTOM("Allow", struct mandril_conf, rules, NULL,
                   mandril_parse_allow, MK_CONF_MULTI),
    MK_CONF_CUSTOM("Deny", struct mandril_conf, rules, NULL,
                   mandril_parse_deny, MK_CONF_MULTI),
    MK_CONF_ENUM("Default", struct mandril_conf, def_deny, "allow",
                 "allow|deny"),
    MK_CONF_BOOL("LogDenied", struct mandril_conf, log_denied, "off"),
    MK_CONF_END
};

static void mandril_conf_release(void *conf)
{
    struct mandril_conf *mc = conf;

    mandril_rules_release(&mc->rules);
}

static int mandril_on_accept(void *conf, struct mk_conn *c)
{
    const struct mandril_conf *mc = conf;

    if (!mc || mandril_decide(mc, mk_conn_peer(c)))
        return MK_STAGE_NEXT;
    if (mc->log_denied)
        mk_info("mandril: denied connection from %s", mk_conn_peer_str(c));
    return MK_STAGE_CLOSE;
}

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_mandril = {
    .abi          = MK_PLUGIN_ABI,
    .name         = "mandril",
    .description  = "IP allow/deny rules (CIDR) at connect time",
    .conf_keys    = mandril_keys,
    .conf_size    = sizeof(struct mandril_conf),
    .conf_release = mandril_conf_release,
    .on_accept    = mandril_on_accept,
};
