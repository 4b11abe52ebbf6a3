/* Unit tests: mandril's CIDR parser and first-match rule evaluation. */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "mk_test.h"
#include "plugins/mandril/mandril_cidr.c"

static struct mk_conn_addr addr_of(const char *s)
{
    struct mk_conn_addr a;

    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, s, a.addr) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, s, a.addr) == 1)
        a.family = AF_INET6;
    else
        a.family = AF_UNIX;
    return a;
}

static int matches(const char *cidr, const char *peer)
{
    struct mandril_rule rule;
    struct mk_conn_addr a = addr_of(peer);
    char err[128];

    if (mandril_cidr_parse(cidr, &rule, err, sizeof(err)) < 0)
        return -1;
    return mandril_rule_match(&rule, &a);
}

static int parse_error(const char *cidr, char *err, size_t errlen)
{
    struct mandril_rule rule;

    return mandril_cidr_parse(cidr, &rule, err, errlen);
}

MK_TEST(ipv4_cidr)
{
    CHECK_EQ_INT(matches("10.0.0.0/8", "10.1.2.3"), 1);
    CHECK_EQ_INT(matches("10.0.0.0/8", "11.0.0.0"), 0);
    CHECK_EQ_INT(matches("10.0.0.0/8", "9.255.255.255"), 0);
    CHECK_EQ_INT(matches("192.168.1.0/25", "192.168.1.127"), 1);
    CHECK_EQ_INT(matches("192.168.1.0/25", "192.168.1.128"), 0);
    CHECK_EQ_INT(matches("192.168.1.7", "192.168.1.7"), 1);
    CHECK_EQ_INT(matches("192.168.1.7", "192.168.1.8"), 0);
    CHECK_EQ_INT(matches("192.168.1.7/32", "192.168.1.7"), 1);
    CHECK_EQ_INT(matches("0.0.0.0/0", "203.0.113.9"), 1);
    /* host bits past the prefix are ignored */
    CHECK_EQ_INT(matches("10.9.9.9/8", "10.200.0.1"), 1);
    CHECK_EQ_INT(matches("172.16.0.0/12", "172.31.255.255"), 1);
    CHECK_EQ_INT(matches("172.16.0.0/12", "172.32.0.0"), 0);
}

MK_TEST(ipv6_cidr)
{
    CHECK_EQ_INT(matches("2001:db8::/32", "2001:db8:1::5"), 1);
    CHECK_EQ_INT(matches("2001:db8::/32", "2001:db9::1"), 0);
    CHECK_EQ_INT(matches("::1", "::1"), 1);
    CHECK_EQ_INT(matches("::1", "::2"), 0);
    CHECK_EQ_INT(matches("fe80::/10", "febf::1"), 1);
    CHECK_EQ_INT(matches("fe80::/10", "fec0::1"), 0);
    CHECK_EQ_INT(matches("::/0", "2001:db8::1"), 1);
    /* families never cross, except through the mapped range */
    CHECK_EQ_INT(matches("2001:db8::/32", "10.0.0.1"), 0);
    CHECK_EQ_INT(matches("10.0.0.0/8", "2001:db8::1"), 0);
    CHECK_EQ_INT(matches("::/0", "10.0.0.1"), 0);
}

MK_TEST(ipv4_mapped)
{
    CHECK_EQ_INT(matches("127.0.0.1", "::ffff:127.0.0.1"), 1);
    CHECK_EQ_INT(matches("10.0.0.0/8", "::ffff:10.20.30.40"), 1);
    CHECK_EQ_INT(matches("10.0.0.0/8", "::ffff:11.20.30.40"), 0);
    /* a mapped rule is an IPv4 rule */
    CHECK_EQ_INT(matches("::ffff:10.0.0.0/104", "10.3.3.3"), 1);
    CHECK_EQ_INT(matches("::ffff:10.0.0.0/104", "11.3.3.3"), 0);
    CHECK_EQ_INT(matches("::ffff:1.2.3.4", "1.2.3.4"), 1);
    /* IPv6 rules never match a mapped peer */
    CHECK_EQ_INT(matches("::/0", "::ffff:1.2.3.4"), 0);
}

MK_TEST(all_and_unix)
{
    CHECK_EQ_INT(matches("all", "10.0.0.1"), 1);
    CHECK_EQ_INT(matches("all", "::1"), 1);
    CHECK_EQ_INT(matches("all", "unix"), 1);
    CHECK_EQ_INT(matches("0.0.0.0/0", "unix"), 0);
}

MK_TEST(bad_values)
{
    char err[128];

    CHECK_EQ_INT(parse_error("10.0.0.0/33", err, sizeof(err)), -1);
    CHECK_EQ_STR(err, "\"10.0.0.0/33\": prefix length out of range");
    CHECK_EQ_INT(parse_error("2001:db8::/129", err, sizeof(err)), -1);
    CHECK_EQ_STR(err, "\"2001:db8::/129\": prefix length out of range");
    CHECK_EQ_INT(parse_error("10.0.0.0/", err, sizeof(err)), -1);
    CHECK_EQ_STR(err, "\"10.0.0.0/\": bad prefix length");
    CHECK_EQ_INT(parse_error("10.0.0.0/-1", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("10.0.0.0/8/8", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("10.0.0.0/ 8", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("10.0.0", err, sizeof(err)), -1);
    CHECK(strstr(err, "\"10.0.0\": not an IPv4/IPv6 address") == err);
    CHECK_EQ_INT(parse_error("256.0.0.1", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("/8", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("ALL", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("example.com", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("[::1]", err, sizeof(err)), -1);
    CHECK_EQ_INT(parse_error("10.0.0.0/32", err, sizeof(err)), 0);
    CHECK_EQ_INT(parse_error("::/128", err, sizeof(err)), 0);
}

MK_TEST(first_match_wins)
{
    struct mandril_conf conf;
    struct mk_conn_addr a;
    char err[128];

    memset(&conf, 0, sizeof(conf));
    CHECK_EQ_INT(mandril_rules_add(&conf.rules, "10.1.0.0/16", 0,
                                   err, sizeof(err)), 0);
    CHECK_EQ_INT(mandril_rules_add(&conf.rules, "10.0.0.0/8", 1,
                                   err, sizeof(err)), 0);
    CHECK_EQ_INT(mandril_rules_add(&conf.rules, "all", 0,
                                   err, sizeof(err)), 0);
    CHECK_EQ_INT(mandril_rules_add(&conf.rules, "bogus", 1,
                                   err, sizeof(err)), -1);
    CHECK_EQ_INT(conf.rules.count, 3);

    a = addr_of("10.1.2.3");
    CHECK_EQ_INT(mandril_decide(&conf, &a), 0);
    a = addr_of("10.2.2.3");
    CHECK_EQ_INT(mandril_decide(&conf, &a), 1);
    a = addr_of("::ffff:10.2.2.3");
    CHECK_EQ_INT(mandril_decide(&conf, &a), 1);
    a = addr_of("192.0.2.1");
    CHECK_EQ_INT(mandril_decide(&conf, &a), 0);
    mandril_rules_release(&conf.rules);
    CHECK_EQ_INT(conf.rules.count, 0);
}

MK_TEST(default_policy)
{
    struct mandril_conf conf;
    struct mk_conn_addr a = addr_of("192.0.2.1");
    char err[128];

    memset(&conf, 0, sizeof(conf));
    CHECK_EQ_INT(mandril_decide(&conf, &a), 1);
    conf.def_deny = 1;
    CHECK_EQ_INT(mandril_decide(&conf, &a), 0);
    CHECK_EQ_INT(mandril_rules_add(&conf.rules, "192.0.2.0/24", 1,
                                   err, sizeof(err)), 0);
    CHECK_EQ_INT(mandril_decide(&conf, &a), 1);
    a = addr_of("192.0.3.1");
    CHECK_EQ_INT(mandril_decide(&conf, &a), 0);
    mandril_rules_release(&conf.rules);
}

int main(void)
{
    RUN(ipv4_cidr);
    RUN(ipv6_cidr);
    RUN(ipv4_mapped);
    RUN(all_and_unix);
    RUN(bad_values);
    RUN(first_match_wins);
    RUN(default_policy);
    return mk_test_done();
}
