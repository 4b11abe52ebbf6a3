/*
 * The schema's inherited keys (MK_CONF_INHERIT, mk_conf_apply_inherit): a
 * per-site section against a global one, as the server applies a plugin's
 * [NAME] of a site file against [NAME] of <name>.conf.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mk_test.h"
#include "mk_core/mk_rconf.h"

struct g_conf {
    long long hops;
    int on;
    uint64_t bytes;
    uint64_t ms;
    int mode;
    char *name;
};

/* A site struct need not mirror the global one: only each inherited
 * field's type must match its global twin. */
struct s_conf {
    uint64_t ms;
    char *own;
    long long hops;
    int mode;
    uint64_t bytes;
    int on;
};

static const struct mk_conf_key g_keys[] = {
    MK_CONF_INT("Hops", struct g_conf, hops, "10", 0, 32),
    MK_CONF_BOOL("On", struct g_conf, on, "off"),
    MK_CONF_SIZE("Bytes", struct g_conf, bytes, "1M", 4096, 0),
    MK_CONF_TIME("Wait", struct g_conf, ms, "3s", 10, 3600 * 1000LL),
    MK_CONF_ENUM("Mode", struct g_conf, mode, "a", "a|b|c"),
    MK_CONF_STR("Name", struct g_conf, name, "x"),
    MK_CONF_END
};

static const struct mk_conf_key s_keys[] = {
    MK_CONF_INHERIT("Wait", struct s_conf, ms),
    MK_CONF_STR("Own", struct s_conf, own, "mine"),
    MK_CONF_INHERIT("hops", struct s_conf, hops),   /* names are caseless */
    MK_CONF_INHERIT("Mode", struct s_conf, mode),
    MK_CONF_INHERIT("Bytes", struct s_conf, bytes),
    MK_CONF_INHERIT("On", struct s_conf, on),
    MK_CONF_END
};

static char err[512];
static struct g_conf g;
static struct s_conf sc;

/* Applies `global` to g, then `site` (NULL: no site section) to sc. */
static int apply(const char *global, const char *site)
{
    struct mk_rconf *gr, *sr = NULL;
    int ret;

    mk_conf_release(g_keys, &g);
    mk_conf_release(s_keys, &sc);
    memset(&g, 0, sizeof(g));
    memset(&sc, 0, sizeof(sc));
    err[0] = '\0';
    gr = mk_rconf_parse("g.conf", global, strlen(global), err, sizeof(err));
    if (gr == NULL ||
        mk_conf_apply(mk_rconf_section_next(gr, "G", NULL), g_keys, &g, err,
                      sizeof(err)) != 0) {
        mk_rconf_destroy(gr);
        return -2;
    }
    if (site != NULL) {
        sr = mk_rconf_parse("s.conf", site, strlen(site), err, sizeof(err));
        if (sr == NULL) {
            mk_rconf_destroy(gr);
            return -2;
        }
    }
    ret = mk_conf_apply_inherit(sr ? mk_rconf_section_next(sr, "G", NULL)
                                   : NULL, s_keys, &sc, g_keys, &g, err,
                                sizeof(err));
    mk_rconf_destroy(gr);
    mk_rconf_destroy(sr);
    return ret;
}

MK_TEST(absent_keys_take_the_global_defaults)
{
    CHECK_EQ_INT(apply("[G]\n", "[G]\n"), 0);
    CHECK_EQ_INT(sc.hops, 10);
    CHECK_EQ_INT(sc.on, 0);
    CHECK_EQ_INT(sc.bytes, 1 << 20);
    CHECK_EQ_INT(sc.ms, 3000);
    CHECK_EQ_INT(sc.mode, 0);
    CHECK_EQ_STR(sc.own, "mine");
    /* no site section at all: the same */
    CHECK_EQ_INT(apply("[G]\n", NULL), 0);
    CHECK_EQ_INT(sc.hops, 10);
    CHECK_EQ_INT(sc.ms, 3000);
}

MK_TEST(absent_keys_take_the_configured_global_values)
{
    CHECK_EQ_INT(apply("[G]\n    Hops 3\n    On yes\n    Bytes 64K\n"
                       "    Wait 250ms\n    Mode c\n", "[G]\n    Own o\n"), 0);
    CHECK_EQ_INT(sc.hops, 3);
    CHECK_EQ_INT(sc.on, 1);
    CHECK_EQ_INT(sc.bytes, 64 * 1024);
    CHECK_EQ_INT(sc.ms, 250);
    CHECK_EQ_INT(sc.mode, 2);
    CHECK_EQ_STR(sc.own, "o");
}

MK_TEST(present_keys_override_and_leave_the_global_alone)
{
    CHECK_EQ_INT(apply("[G]\n    Hops 3\n    Mode c\n",
                       "[G]\n    Hops 0\n    On on\n    Bytes 8K\n"
                       "    Wait 1m\n    Mode B\n"), 0);
    CHECK_EQ_INT(sc.hops, 0);               /* 0 is a value, not "unset" */
    CHECK_EQ_INT(sc.on, 1);
    CHECK_EQ_INT(sc.bytes, 8192);
    CHECK_EQ_INT(sc.ms, 60000);
    CHECK_EQ_INT(sc.mode, 1);
    CHECK_EQ_INT(g.hops, 3);
    CHECK_EQ_INT(g.mode, 2);
}

MK_TEST(present_keys_are_checked_like_the_global_key)
{
    CHECK_EQ_INT(apply("[G]\n", "[G]\n    Hops 33\n"), -1);
    CHECK_EQ_STR(err, "s.conf:2: hops: 33 out of range 0..32");
    CHECK_EQ_INT(apply("[G]\n", "[G]\n\n    Hops -1\n"), -1);
    CHECK_EQ_STR(err, "s.conf:3: hops: -1 out of range 0..32");
    CHECK_EQ_INT(apply("[G]\n", "[G]\n    Bytes 1K\n"), -1);
    CHECK_EQ_STR(err, "s.conf:2: Bytes: 1K is below the minimum 4K");
    CHECK_EQ_INT(apply("[G]\n", "[G]\n    Wait 2h\n"), -1);
    CHECK_EQ_STR(err, "s.conf:2: Wait: 2h out of range 10ms..1h");
    CHECK_EQ_INT(apply("[G]\n", "[G]\n    Mode d\n"), -1);
    CHECK_EQ_STR(err, "s.conf:2: Mode: \"d\" is not one of a|b|c");
    CHECK_EQ_INT(apply("[G]\n", "[G]\n    On maybe\n"), -1);
    CHECK(strncmp(err, "s.conf:2: On: \"maybe\" is not a boolean", 38) == 0);
    CHECK_EQ_INT(apply("[G]\n", "[G]\n    Wait 1s\n    Wait 2s\n"), -1);
    CHECK_EQ_STR(err, "s.conf:3: Wait: given twice (first at line 2)");
    CHECK_EQ_INT(apply("[G]\n", "[G]\n    Name y\n"), -1);
    CHECK_EQ_STR(err, "s.conf:2: Name: unknown key in [G]");
    /* the global key keeps its own bounds too */
    CHECK_EQ_INT(apply("[G]\n    Hops 40\n", "[G]\n"), -2);
    CHECK_EQ_STR(err, "g.conf:2: Hops: 40 out of range 0..32");
    /* a failed apply leaves nothing allocated behind */
    CHECK(sc.own == NULL);
}

static const struct mk_conf_key bad_missing[] = {
    MK_CONF_INHERIT("Nope", struct s_conf, hops),
    MK_CONF_END
};

static const struct mk_conf_key bad_string[] = {
    MK_CONF_INHERIT("Name", struct s_conf, own),
    MK_CONF_END
};

MK_TEST(plugin_mistakes_are_refused)
{
    struct s_conf s;

    memset(&s, 0, sizeof(s));
    CHECK(mk_conf_apply_inherit(NULL, bad_missing, &s, g_keys, &g, err,
                                sizeof(err)) == -1);
    CHECK_EQ_STR(err, "Nope: inherits a global key that does not exist");
    CHECK(mk_conf_apply_inherit(NULL, bad_string, &s, g_keys, &g, err,
                                sizeof(err)) == -1);
    CHECK_EQ_STR(err, "Name: a string, list or custom key cannot be "
                 "inherited");
    /* no global section to inherit from */
    CHECK(mk_conf_apply(NULL, s_keys, &s, err, sizeof(err)) == -1);
    CHECK_EQ_STR(err, "Wait: inherits a global key that does not exist");
    CHECK(mk_conf_apply_inherit(NULL, s_keys, &s, g_keys, NULL, err,
                                sizeof(err)) == -1);
    CHECK(s.own == NULL);
}

int main(void)
{
    RUN(absent_keys_take_the_global_defaults);
    RUN(absent_keys_take_the_configured_global_values);
    RUN(present_keys_override_and_leave_the_global_alone);
    RUN(present_keys_are_checked_like_the_global_key);
    RUN(plugin_mistakes_are_refused);
    mk_conf_release(g_keys, &g);
    mk_conf_release(s_keys, &sc);
    return mk_test_done();
}
