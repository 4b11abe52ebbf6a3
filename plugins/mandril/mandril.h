#ifndef TREMOLO_PLUGIN_MANDRIL_H
#define TREMOLO_PLUGIN_MANDRIL_H

#include <stddef.h>
#include <stdint.h>

#include "mk_server/mk_plugin.h"

/*
 * One Allow/Deny rule. IPv4 rules (and IPv6 rules inside ::ffff:0:0/96)
 * are stored as IPv4 so that IPv4-mapped peers match them. Host bits past
 * the prefix are cleared at parse time, so matching is a plain compare.
 */
#define MANDRIL_ANY   0          /* "all": every peer, AF_UNIX included */
#define MANDRIL_IPV4  4
#define MANDRIL_IPV6  6

struct mandril_rule {
    uint8_t addr[16];
    uint8_t family;              /* MANDRIL_ANY, MANDRIL_IPV4, MANDRIL_IPV6 */
    uint8_t prefix;              /* bits: 0..32 or 0..128 */
    uint8_t allow;               /* 1 Allow, 0 Deny */
};

/* The rules in the order written; both keys append to the same list. */
struct mandril_rules {
    size_t count;
    struct mandril_rule *rules;
};

struct mandril_conf {
    struct mandril_rules rules;
    int def_deny;                /* Default: 0 allow, 1 deny */
    int log_denied;
};

/* Parses "all", "ADDR" or "ADDR/PREFIX" into *rule (allow left untouched).
 * Returns 0, or -1 with a reason naming the value in err. */
int  mandril_cidr_parse(const char *value, struct mandril_rule *rule,
                        char *err, size_t errlen);
/* Appends a parsed rule; 0 or -1 (out of memory, reason in err). */
int  mandril_rules_add(struct mandril_rules *rules, const char *value,
                       int allow, char *err, size_t errlen);
void mandril_rules_release(struct mandril_rules *rules);
/* Does the peer fall in the rule? */
int  mandril_rule_match(const struct mandril_rule *rule,
                        const struct mk_conn_addr *peer);
/* 1 allow, 0 deny: the first matching rule decides, else the default. */
int  mandril_decide(const struct mandril_conf *conf,
                    const struct mk_conn_addr *peer);

#endif
