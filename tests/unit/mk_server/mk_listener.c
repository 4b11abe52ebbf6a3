/* Listen lines: the address, then at most one network layer and one
 * protocol=NAME in either order (defaults: no layer named, which the
 * loaded plain-socket layer serves, and http/1.1). */
#include <string.h>

#include "mk_test.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_server.h"

static struct mk_listen l;
static char err[256];

static int parse(const char *value)
{
    mk_mem_free(l.layer);
    mk_mem_free(l.proto_name);
    err[0] = '\0';
    return mk_listen_parse(value, &l, err, sizeof(err));
}

MK_TEST(defaults)
{
    CHECK_EQ_INT(parse("127.0.0.1:8080"), 0);
    CHECK_EQ_STR(l.text, "127.0.0.1:8080");
    CHECK(l.layer == NULL);
    CHECK_EQ_STR(l.proto_name, "http/1.1");
}

MK_TEST(layer_and_protocol_in_either_order)
{
    CHECK_EQ_INT(parse("8080 tls"), 0);
    CHECK_EQ_STR(l.layer, "tls");
    CHECK_EQ_STR(l.proto_name, "http/1.1");
    CHECK_EQ_INT(parse("8080 protocol=toy"), 0);
    CHECK(l.layer == NULL);
    CHECK_EQ_STR(l.proto_name, "toy");
    CHECK_EQ_INT(parse("[::1]:8080\ttls  protocol=h2c"), 0);
    CHECK_EQ_STR(l.text, "[::1]:8080");
    CHECK_EQ_STR(l.layer, "tls");
    CHECK_EQ_STR(l.proto_name, "h2c");
    CHECK_EQ_INT(parse("8080 protocol=h2c tls"), 0);
    CHECK_EQ_STR(l.layer, "tls");
    CHECK_EQ_STR(l.proto_name, "h2c");
}

MK_TEST(options_refused)
{
    static const char *bad[] = {
        "8080 liana tls", "8080 protocol=a protocol=b", "8080 protocol=",
        "8080 tls liana protocol=a", NULL
    };
    size_t i;

    for (i = 0; bad[i]; i++) {
        CHECK_EQ_INT(parse(bad[i]), -1);
        CHECK(strstr(err, "expected [ADDR:]PORT [LAYER] [protocol=NAME]"));
    }
}

int main(void)
{
    RUN(defaults);
    RUN(layer_and_protocol_in_either_order);
    RUN(options_refused);
    mk_mem_free(l.layer);
    mk_mem_free(l.proto_name);
    return mk_test_done();
}
