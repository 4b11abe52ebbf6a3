/*
 * mandril: CIDR parsing and matching, kept apart from the plugin glue so
 * that unit tests reach it without a running server.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/mandril/mandril.h"

static const uint8_t mandril_v4_mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static void mandril_mask(uint8_t *addr, size_t bytes, unsigned prefix)
{
    size_t i;

    for (i = 0; i < bytes; i++) {
        if (prefix >= 8) {
            prefix -= 8;
            continue;
        }
        addr[i] &= (uint8_t) (0xff00u >> prefix);
        prefix = 0;
    }
}

static int mandril_prefix_parse(const char *value, const char *s,
                                unsigned max, unsigned *out,
                                char *err, size_t errlen)
{
    uint64_t v;

    if (mk_str_to_u64(s, strlen(s), &v) < 0 || strlen(s) > 3) {
        mk_str_printf(err, errlen, "\"%s\": bad prefix length", value);
        return -1;
    }
    if (v > max) {
        mk_str_printf(err, errlen, "\"%s\": prefix length out of range",
                      value);
        return -1;
    }
    *out = (unsigned) v;
    return 0;
}

int mandril_cidr_parse(const char *value, struct mandril_rule *rule,
                       char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(value, '/');
    size_t hlen = slash ? (size_t) (slash - value) : strlen(value);
    unsigned prefix;

    memset(rule->addr, 0, sizeof(rule->addr));
    if (strcmp(value, "all") == 0) {
        rule->family = MANDRIL_ANY;
        rule->prefix = 0;
        return 0;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        goto bad_address;
    memcpy(host, value, hlen);
    host[hlen] = '\0';

    if (inet_pton(AF_INET, host, rule->addr) == 1) {
        rule->family = MANDRIL_IPV4;
        prefix = 32;
        if (slash && mandril_prefix_parse(value, slash + 1, 32, &prefix,
                                          err, errlen) < 0)
            return -1;
    }
    else if (inet_pton(AF_INET6, host, rule->addr) == 1) {
        rule->family = MANDRIL_IPV6;
        prefix = 128;
        if (slash && mandril_prefix_parse(value, slash + 1, 128, &prefix,
                                          err, errlen) < 0)
            return -1;
        /* ::ffff:a.b.c.d/N (N >= 96) is an IPv4 rule in disguise. */
        if (prefix >= 96 &&
            memcmp(rule->addr, mandril_v4_mapped, 12) == 0) {
            memmove(rule->addr, rule->addr + 12, 4);
            memset(rule->addr + 4, 0, 12);
            rule->family = MANDRIL_IPV4;
            prefix -= 96;
        }
    }
    else {
        goto bad_address;
    }
    /* 10.1.2.3/8 means 10.0.0.0/8: clearing the host bits lets matching
     * compare whole bytes without masking the rule each time. */
    mandril_mask(rule->addr, rule->family == MANDRIL_IPV4 ? 4 : 16, prefix);
    rule->prefix = (uint8_t) prefix;
    return 0;

bad_address:
    mk_str_printf(err, errlen,
                  "\"%s\": not an IPv4/IPv6 address, CIDR or \"all\"", value);
    return -1;
}

int mandril_rules_add(struct mandril_rules *rules, const char *value,
                      int allow, char *err, size_t errlen)
{
    struct mandril_rule rule;
    struct mandril_rule *grown;

    if (mandril_cidr_parse(value, &rule, err, errlen) < 0)
        return -1;
    rule.allow = allow ? 1 : 0;
    grown = mk_mem_realloc(rules->rules,
                           (rules->count + 1) * sizeof(*grown));
    if (!grown) {
        mk_str_printf(err, errlen, "out of memory");
        return -1;
    }
    grown[rules->count++] = rule;
    rules->rules = grown;
    return 0;
}

void mandril_rules_release(struct mandril_rules *rules)
{
    mk_mem_free(rules->rules);
    rules->rules = NULL;
    rules->count = 0;
}

static int mandril_bits_match(const uint8_t *a, const uint8_t *net,
                              unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;

    if (memcmp(a, net, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return (a[whole] & (uint8_t) (0xff00u >> rest)) == net[whole];
}

int mandril_rule_match(const struct mandril_rule *rule,
                       const struct mk_conn_addr *peer)
{
    const uint8_t *v4 = NULL;

    if (rule->family == MANDRIL_ANY)
        return 1;
    if (peer->family == AF_INET)
        v4 = peer->addr;
    else if (peer->family == AF_INET6 &&
             memcmp(peer->addr, mandril_v4_mapped, 12) == 0)
        v4 = peer->addr + 12;

    if (rule->family == MANDRIL_IPV4)
        return v4 && mandril_bits_match(v4, rule->addr, rule->prefix);
    /* An IPv6 rule never matches a mapped IPv4 peer: mapped ranges were
     * turned into IPv4 rules at parse time. */
    return peer->family == AF_INET6 && !v4 &&
           mandril_bits_match(peer->addr, rule->addr, rule->prefix);
}

int mandril_decide(const struct mandril_conf *conf,
                   const struct mk_conn_addr *peer)
{
    size_t i;

    for (i = 0; i < conf->rules.count; i++) {
        if (mandril_rule_match(&conf->rules.rules[i], peer))
            return conf->rules.rules[i].allow;
    }
    return !conf->def_deny;
}
