/*
 * tremolo -b: the BlastBeat .ini reader (every option, every error with
 * its line, merging, multi-values, comments, IPv6) and the translation
 * into native files, read back as text and loaded by mk_server_load.
 * Plugins are stand-ins registered as built-ins: a zmq with every key the
 * mapping targets (and one without them), liana, and a tls, each declaring
 * the .ini options of the real plugin (its *_ini.c, included here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mk_test.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_blastbeat.h"
#include "plugins/tls/tls_ini.c"
#include "plugins/zmq/zmq_ini.c"
#include "tests/plugins/bbkeys.c"

/* ---- Stand-in plugins ----------------------------------------------------- */

struct fake_conf {
    struct mk_conf_list list;
    char *s;
};

#define FAKE_LIST(n) MK_CONF_LIST(n, struct fake_conf, list)
#define FAKE_STR(n)  MK_CONF_STR(n, struct fake_conf, s, NULL)

static const struct mk_conf_key zmq_full_keys[] = {
    FAKE_LIST("Bind"), FAKE_STR("PingFreq"), FAKE_STR("NodeTimeout"),
    FAKE_STR("MaxHops"), FAKE_STR("Sessions"), FAKE_STR("StatsFreq"),
    MK_CONF_END
};
static const struct mk_conf_key zmq_full_vkeys[] = {
    FAKE_LIST("Node"), FAKE_STR("Bind"), FAKE_STR("Sessions"),
    FAKE_STR("NodeTimeout"), MK_CONF_END
};
static const struct mk_conf_key zmq_old_keys[] = {
    FAKE_LIST("Bind"), FAKE_STR("PingFreq"), FAKE_STR("NodeTimeout"),
    FAKE_STR("MaxHops"), MK_CONF_END
};
static const struct mk_conf_key zmq_old_vkeys[] = {
    FAKE_LIST("Node"), MK_CONF_END
};
static const struct mk_conf_key tls_vkeys[] = {
    FAKE_STR("Certificate"), FAKE_STR("Key"), MK_CONF_END
};

static int fake_content(void *conf, struct mk_stream *r)
{
    (void) conf;
    (void) r;
    return 0;
}

static ssize_t fake_read(struct mk_conn *c, void *buf, size_t len)
{
    (void) c;
    (void) buf;
    (void) len;
    return 0;
}

static ssize_t fake_writev(struct mk_conn *c, const struct iovec *iov, int n)
{
    (void) c;
    (void) iov;
    (void) n;
    return 0;
}

static const struct mk_net_io fake_io = {
    .name = "liana", .read = fake_read, .writev = fake_writev,
};

static const struct mk_plugin liana = {
    .abi = MK_PLUGIN_ABI, .name = "liana",
    .flags = MK_PLUGIN_NETWORK | MK_PLUGIN_NETWORK_PLAIN, .net_io = &fake_io,
};
static const struct mk_plugin tls = {
    .abi = MK_PLUGIN_ABI, .name = "tls", .flags = MK_PLUGIN_NETWORK,
    .net_io = &fake_io, .vhost_keys = tls_vkeys,
    .vhost_conf_size = sizeof(struct fake_conf), .bb_ini = &tls_ini,
};
static const struct mk_plugin zmq_full = {
    .abi = MK_PLUGIN_ABI, .name = "zmq", .conf_keys = zmq_full_keys,
    .conf_size = sizeof(struct fake_conf), .vhost_keys = zmq_full_vkeys,
    .vhost_conf_size = sizeof(struct fake_conf), .on_content = fake_content,
    .bb_ini = &zmq_ini,
};
static const struct mk_plugin zmq_old = {
    .abi = MK_PLUGIN_ABI, .name = "zmq", .conf_keys = zmq_old_keys,
    .conf_size = sizeof(struct fake_conf), .vhost_keys = zmq_old_vkeys,
    .vhost_conf_size = sizeof(struct fake_conf), .on_content = fake_content,
    .bb_ini = &zmq_ini,
};

/* What comes with the handler (the websocket plugin's declaration) */
static const struct mk_bb_ini companion_ini = {
    .flags = MK_BB_WITH_HANDLER
};
static const struct mk_plugin companion = {
    .abi = MK_PLUGIN_ABI, .name = "companion", .bb_ini = &companion_ini,
};
/* A declaration of an option BlastBeat does not have */
static const struct mk_bb_key bogus_keys[] = {
    { "zmq-endpoint", MK_BB_GLOBAL, "Bind", NULL, 0 },
    { NULL, 0, NULL, NULL, 0 }
};
static const struct mk_bb_ini bogus_ini = { .keys = bogus_keys };
static const struct mk_plugin bogus = {
    .abi = MK_PLUGIN_ABI, .name = "bogus", .bb_ini = &bogus_ini,
};

static const struct mk_plugin *const with_all[] = {
    &liana, &zmq_full, &tls, NULL
};
static const struct mk_plugin *const with_old_zmq[] = {
    &liana, &zmq_old, NULL
};
/* tls before zmq, a companion and the test plugin translating cache and
 * memory */
static const struct mk_plugin *const with_bbkeys[] = {
    &liana, &tls, &companion, &zmq_full, &mk_plugin_bbkeys, NULL
};
static const struct mk_plugin *const with_bogus[] = {
    &liana, &zmq_full, &bogus, NULL
};
static const struct mk_plugin *const without_bbkeys[] = {
    &liana, &zmq_full, NULL
};

/* ---- Helpers ---------------------------------------------------------------- */

static char err[1024];

#define MINIMAL \
    "[blastbeat]\n" \
    "bind = 127.0.0.1:8080\n" \
    "zmq = tcp://127.0.0.1:5000\n" \
    "\n" \
    "[blastbeat:127.0.0.1:8080]\n" \
    "node = node1\n" \
    "alias = localhost:8080\n"

static struct mk_bb *parse(const char *text)
{
    err[0] = '\0';
    return mk_bb_parse("bb.ini", text, strlen(text), err, sizeof(err));
}

static void expect_error(const char *text, const char *msg)
{
    struct mk_bb *bb = parse(text);

    CHECK(bb == NULL);
    if (!strstr(err, msg)) {
        fprintf(stderr, "expected \"%s\" in \"%s\"\n", msg, err);
        CHECK(0);
    }
    mk_bb_destroy(bb);
}

static const struct mk_bb_values *values(const struct mk_bb_section *s,
                                         const char *key)
{
    unsigned where = s->name ? MK_BB_VHOST : MK_BB_GLOBAL;
    return &s->opts[mk_bb_opt_find(key, where) - mk_bb_opts];
}

static const char *value(const struct mk_bb_section *s, const char *key,
                         size_t i)
{
    const struct mk_bb_values *vs = values(s, key);
    return i < vs->count ? vs->v[i].value : NULL;
}

static void cleanup(const char *dir)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* Translates `text` into a fresh directory with the plugins found in
 * `plugin_dir` too; returns the directory (static) or NULL. */
static const char *translate_in(const char *text, const char *plugin_dir)
{
    static char dir[64];
    struct mk_bb *bb = parse(text);
    int ret;

    if (!bb) {
        return NULL;
    }
    snprintf(dir, sizeof(dir), "/tmp/tremolo-bb-test-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    ret = mk_bb_write(bb, dir, plugin_dir, err, sizeof(err));
    mk_bb_destroy(bb);
    if (ret < 0) {
        cleanup(dir);
        return NULL;
    }
    return dir;
}

/* Translates `text` with the built-in plugins only. */
static const char *translate(const char *text)
{
    return translate_in(text, "/nonexistent");
}

/* translate() that must succeed: a failure is a failed check with why */
static const char *translate_ok(const char *text)
{
    const char *dir = translate(text);

    CHECK(dir != NULL);
    if (!dir) {
        fprintf(stderr, "translate: %s\n", err);
    }
    return dir;
}

static char *slurp(const char *dir, const char *name)
{
    static char buf[16384];
    char path[256];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (!f) {
        buf[0] = '\0';
        return buf;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* `needle` (may span lines) is in file `name` of `dir`. */
static void expect_in(const char *dir, const char *name, const char *needle)
{
    const char *text = slurp(dir, name);

    if (!strstr(text, needle)) {
        fprintf(stderr, "%s: expected \"%s\" in:\n%s\n", name, needle, text);
        CHECK(0);
        return;
    }
    CHECK(1);
}

static void expect_not_in(const char *dir, const char *name,
                          const char *needle)
{
    CHECK(strstr(slurp(dir, name), needle) == NULL);
}

/* ---- Reader ------------------------------------------------------------------ */

MK_TEST(minimal_example)
{
    struct mk_bb *bb = parse(MINIMAL);

    CHECK(bb != NULL);
    if (!bb) {
        return;
    }
    CHECK_EQ_STR(value(&bb->global, "bind", 0), "127.0.0.1:8080");
    CHECK_EQ_INT(values(&bb->global, "bind")->v[0].line, 2);
    CHECK_EQ_STR(value(&bb->global, "zmq", 0), "tcp://127.0.0.1:5000");
    CHECK_EQ_INT(bb->global.line, 1);
    CHECK_EQ_INT(bb->vhost_count, 1);
    CHECK_EQ_STR(bb->vhosts[0].name, "127.0.0.1:8080");
    CHECK_EQ_INT(bb->vhosts[0].line, 5);
    CHECK_EQ_STR(value(&bb->vhosts[0], "node", 0), "node1");
    CHECK_EQ_STR(value(&bb->vhosts[0], "alias", 0), "localhost:8080");
    mk_bb_destroy(bb);
}

MK_TEST(syntax)
{
    struct mk_bb *bb = parse(
        "; BlastBeat comment\n"
        "# another\n"
        "  [blastbeat]  \r\n"
        "\tbind=127.0.0.1:80\t\r\n"
        "zmq = tcp://127.0.0.1:5000?a=b\n"      /* split at the first = */
        "ping-freq = 1\n"
        "ping-freq = 0.25\n"                    /* the last value wins */
        "[uwsgi]\n"
        "anything = goes here\n"                /* other sections: ignored */
        "no equals sign either\n"
        "[blastbeat:a.example]\n"
        "node = n1\n"
        "node = n2\n"                           /* multi-valued, in order */
        "[blastbeat:b.example]\n"
        "node = m\n"
        "[blastbeat:a.example]\n"               /* the same NAME merges */
        "node = n3\n"
        "alias = a2.example\n"
        "alias = a3.example\n"
        "[blastbeat:empty.example]\n");         /* no key: no vhost */

    CHECK(bb != NULL);
    if (!bb) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_STR(value(&bb->global, "bind", 0), "127.0.0.1:80");
    CHECK_EQ_STR(value(&bb->global, "zmq", 0), "tcp://127.0.0.1:5000?a=b");
    CHECK_EQ_STR(value(&bb->global, "ping-freq", 0), "0.25");
    CHECK_EQ_INT(values(&bb->global, "ping-freq")->count, 1);
    CHECK_EQ_INT(values(&bb->global, "ping-freq")->v[0].line, 7);
    CHECK_EQ_INT(bb->vhost_count, 2);
    CHECK_EQ_STR(bb->vhosts[0].name, "a.example");
    CHECK_EQ_INT(bb->vhosts[0].line, 11);
    CHECK_EQ_INT(values(&bb->vhosts[0], "node")->count, 3);
    CHECK_EQ_STR(value(&bb->vhosts[0], "node", 2), "n3");
    CHECK_EQ_INT(values(&bb->vhosts[0], "node")->v[2].line, 17);
    CHECK_EQ_STR(value(&bb->vhosts[0], "alias", 1), "a3.example");
    CHECK_EQ_STR(bb->vhosts[1].name, "b.example");
    mk_bb_destroy(bb);
}

MK_TEST(every_option_accepted)
{
    struct mk_bb *bb = parse(
        "[blastbeat]\n"
        "bind = 127.0.0.1:80 5\n"
        "bind-ssl = 127.0.0.1:443\n"
        "zmq = tcp://127.0.0.1:5000\n"
        "ping-freq = 3.0\n"
        "stats-freq = 60\n"
        "uid = root\n"
        "gid = 0\n"
        "max-hops = 0\n"
        "sessions = 10\n"
        "timeout = 5\n"
        "writequeue-buffer = 1M\n"
        "memory = 2G\n"
        "max-headers = 64\n"
        "[blastbeat:x]\n"
        "node = n\n"
        "alias = y\n"
        "bind = 127.0.0.2:80\n"
        "bind-ssl = 127.0.0.2:443\n"
        "certificate = x.pem\n"
        "key = x.key\n"
        "sessions = 0\n"
        "cache = 16\n"
        "timeout = 0\n"
        "bandwidth = 1000\n"
        "zmq = ipc:///tmp/x\n");

    CHECK(bb != NULL);
    if (!bb) {
        fprintf(stderr, "%s\n", err);
    }
    mk_bb_destroy(bb);
}

MK_TEST(errors_name_the_line)
{
    /* keys are case-sensitive, and an unknown key is not a silent typo */
    expect_error("[blastbeat]\nBind = 127.0.0.1:80\n",
                 "bb.ini:2: Bind: unknown option ([blastbeat] options: bind, ");
    expect_error("[blastbeat]\nping-frequency = 3\n",
                 "bb.ini:2: ping-frequency: unknown option");
    expect_error("[blastbeat:x]\nnodes = a\n",
                 "bb.ini:2: nodes: unknown option ([blastbeat:NAME] options: "
                 "bind, alias, node, zmq, sessions, timeout, bind-ssl, "
                 "certificate, key, cache, bandwidth)");
    expect_error("[blastbeat]\nnode = a\n",
                 "bb.ini:2: node: not an option of [blastbeat]");
    expect_error("[blastbeat]\ncertificate = a.pem\n",
                 "bb.ini:2: certificate: not an option of [blastbeat]");
    expect_error("[blastbeat:x]\nping-freq = 3\n",
                 "bb.ini:2: ping-freq: not an option of [blastbeat:NAME]");
    /* values */
    expect_error("[blastbeat]\n\nping-freq = 0\n",
                 "bb.ini:3: ping-freq: \"0\" must be between 0.01 and");
    expect_error("[blastbeat]\nping-freq = fast\n",
                 "bb.ini:2: ping-freq: \"fast\" is not a number of seconds");
    expect_error("[blastbeat]\nping-freq = 3s\n",
                 "bb.ini:2: ping-freq: \"3s\" is not a number of seconds");
    expect_error("[blastbeat]\nstats-freq = nan\n",
                 "bb.ini:2: stats-freq: \"nan\" is not a number");
    expect_error("[blastbeat]\ntimeout = 0\n", "bb.ini:2: timeout: ");
    expect_error("[blastbeat]\ntimeout = 10x\n", "bb.ini:2: timeout: ");
    expect_error("[blastbeat:v]\ntimeout = -1\n", "bb.ini:2: timeout: ");
    expect_error("[blastbeat]\nmax-hops = -1\n", "bb.ini:2: max-hops: ");
    expect_error("[blastbeat]\nsessions = 0\n", "bb.ini:2: sessions: ");
    expect_error("[blastbeat]\nsessions = many\n", "bb.ini:2: sessions: ");
    expect_error("[blastbeat]\nmax-headers = 0\n", "bb.ini:2: max-headers: ");
    expect_error("[blastbeat]\nwritequeue-buffer = 0\n",
                 "bb.ini:2: writequeue-buffer: must be more than 0 bytes");
    expect_error("[blastbeat]\nmemory = lots\n", "bb.ini:2: memory: ");
    expect_error("[blastbeat]\nuid = no-such-user-here\n",
                 "bb.ini:2: uid: no such user \"no-such-user-here\"");
    expect_error("[blastbeat]\ngid = no-such-group-here\n",
                 "bb.ini:2: gid: no such group \"no-such-group-here\"");
    expect_error("[blastbeat]\nuid = 4000000000\n", "bb.ini:2: uid: no such");
    expect_error("[blastbeat]\nzmq = 127.0.0.1:5000\n",
                 "bb.ini:2: zmq: \"127.0.0.1:5000\" is not a ZeroMQ endpoint");
    expect_error("[blastbeat]\nbind =\n", "bb.ini:2: bind: needs a value");
    expect_error("[blastbeat:x]\nnode = a b\n",
                 "bb.ini:2: node: \"a b\": one word expected");
    /* listeners */
    expect_error("[blastbeat]\nbind = 127.0.0.1\n",
                 "bb.ini:2: bind: \"127.0.0.1\": expected ADDR:PORT");
    expect_error("[blastbeat]\nbind = localhost:80\n",
                 "bb.ini:2: bind: \"localhost:80\": \"localhost\" is not a "
                 "numeric IPv4 or IPv6 address");
    expect_error("[blastbeat]\nbind = 127.0.0.1:70000\n",
                 "bb.ini:2: bind: \"127.0.0.1:70000\": port must be 1..65535");
    /* no inline comments: "; web" is part of the value */
    expect_error("[blastbeat]\nbind = 127.0.0.1:80 ; web\n",
                 "bb.ini:2: bind: \"127.0.0.1:80 ; web\": PRIORITY must be a "
                 "whole number");
    expect_error("[blastbeat]\nbind = fe80::1%no-such-if0:80\n",
                 "no network interface \"no-such-if0\"");
    /* syntax */
    expect_error("[blastbeat\n", "bb.ini:1: unterminated section header");
    expect_error("bind = 1\n", "bb.ini:1: expected a [blastbeat] or "
                 "[blastbeat:NAME] section");
    expect_error("[blastbeat]\nbind\n", "bb.ini:2: expected key = value");
    expect_error("[blastbeat]\n= x\n", "bb.ini:2: expected key = value");
    expect_error("[blastbeat:]\n", "bb.ini:1: [blastbeat:]: a vhost NAME");
    expect_error("[blastbeat:a b]\n", "bb.ini:1: [blastbeat:a b]: a vhost");
}

MK_TEST(whole_file_checks)
{
    expect_error("[blastbeat]\nzmq = tcp://127.0.0.1:1\n[blastbeat:x]\n"
                 "node = a\n", "bb.ini: no bind or bind-ssl in any section");
    expect_error("[blastbeat]\nbind = 127.0.0.1:1\n[blastbeat:x]\nnode = a\n",
                 "bb.ini: no zmq in any section");
    expect_error("[blastbeat]\nbind = 127.0.0.1:1\nzmq = tcp://127.0.0.1:1\n",
                 "bb.ini: no [blastbeat:NAME] section");
    /* spec 1.4: only another vhost has a router, nobody claims x's nodes */
    expect_error("[blastbeat]\nbind = 127.0.0.1:1\n"
                 "[blastbeat:y]\nnode = b\nzmq = tcp://127.0.0.1:2\n"
                 "[blastbeat:x]\nnode = a\n",
                 "bb.ini:6: [blastbeat:x]: no zmq router claims this vhost's "
                 "nodes");
}

MK_TEST(ipv6_binds)
{
    static const struct { const char *in, *out; } cases[] = {
        { "::1:8080", "[::1]:8080" },               /* BlastBeat failed it */
        { "::1:8080 3", "[::1]:8080" },             /* PRIORITY ignored */
        { "[::1]:8080", "[::1]:8080" },
        { "fe80::1%lo:8085", "[fe80::1%lo]:8085" },
        { "::ffff:127.0.0.1:80", "[::ffff:127.0.0.1]:80" },
        { "0.0.0.0:80", "0.0.0.0:80" },
    };
    const struct mk_bb_opt *o = mk_bb_opt_find("bind", MK_BB_GLOBAL);
    char out[128];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ_INT(mk_bb_convert(o, cases[i].in, "bb.ini", out, sizeof(out),
                                   err, sizeof(err)), 0);
        CHECK_EQ_STR(out, cases[i].out);
    }
    CHECK_EQ_INT(mk_bb_convert(o, ":::80", "bb.ini", out, sizeof(out), err,
                               sizeof(err)), 0);
    CHECK_EQ_STR(out, "[::]:80");                   /* every IPv6 address */
    CHECK_EQ_INT(mk_bb_convert(o, "1:2:3:80", "bb.ini", out, sizeof(out), err,
                               sizeof(err)), -1);
}

MK_TEST(units)
{
    static const struct { const char *key, *in, *out; } cases[] = {
        { "ping-freq", "3.0", "3000ms" }, { "ping-freq", "0.5", "500ms" },
        { "stats-freq", "60", "60000ms" }, { "timeout", "1800", "1800s" },
        { "writequeue-buffer", "8388608", "8388608" },
        { "writequeue-buffer", "8M", "8388608" },
        /* a bare number is bytes, as BlastBeat's source takes it */
        { "memory", "2147483648", "2147483648" },
        { "memory", "2000M", "2097152000" }, { "memory", "2G", "2147483648" },
        { "max-headers", "64", "64" }, { "uid", "0", "root" },
    };
    char out[128];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct mk_bb_opt *o = mk_bb_opt_find(cases[i].key, MK_BB_GLOBAL);
        CHECK_EQ_INT(mk_bb_convert(o, cases[i].in, "bb.ini", out, sizeof(out),
                                   err, sizeof(err)), 0);
        CHECK_EQ_STR(out, cases[i].out);
    }
    CHECK_EQ_INT(mk_bb_convert(mk_bb_opt_find("cache", MK_BB_VHOST), "16",
                               "bb.ini", out, sizeof(out), err, sizeof(err)), 0);
    CHECK_EQ_STR(out, "16M");
    CHECK_EQ_INT(mk_bb_convert(mk_bb_opt_find("certificate", MK_BB_VHOST),
                               "c.pem", "/etc/bb/bb.ini", out, sizeof(out),
                               err, sizeof(err)), 0);
    CHECK_EQ_STR(out, "/etc/bb/c.pem");
}

/* ---- Translation --------------------------------------------------------- */

MK_TEST(translate_minimal)
{
    const char *dir;

    mk_plugin_set_builtins(with_all);
    dir = translate_ok(MINIMAL);
    if (!dir) {
        return;
    }
    expect_in(dir, "plugins.load", "[PLUGINS]\n    Load liana\n    Load zmq\n");
    expect_in(dir, "tremolo.conf", "#line 1 \"bb.ini\"\n[SERVER]\n"
              "#line 2 \"bb.ini\"\n    Listen 127.0.0.1:8080\n");
    /* BlastBeat's defaults, in native units */
    expect_in(dir, "tremolo.conf", "    KeepAliveTimeout 1800s\n");
    expect_in(dir, "tremolo.conf", "    WriteQueueLimit 8388608\n");
    expect_in(dir, "tremolo.conf", "    MaxHeaders 64\n");
    expect_in(dir, "tremolo.conf", "[ZMQ]\n#line 3 \"bb.ini\"\n"
              "    Bind tcp://127.0.0.1:5000\n");
    expect_in(dir, "tremolo.conf", "    PingFreq 3000ms\n");
    expect_in(dir, "tremolo.conf", "    StatsFreq 60000ms\n");
    expect_in(dir, "tremolo.conf", "    MaxHops 10\n");
    expect_in(dir, "tremolo.conf", "    Sessions 10000\n");
    expect_in(dir, "tremolo.conf", "    NodeTimeout 1800s\n");
    if (geteuid() == 0) {
        expect_in(dir, "tremolo.conf", "    User nobody\n");
        expect_in(dir, "tremolo.conf", "    Group nogroup\n");
    }
    else {
        expect_not_in(dir, "tremolo.conf", "User");
    }
    expect_in(dir, "sites/0000.conf", "#line 5 \"bb.ini\"\n[HOST]\n"
              "#line 5 \"bb.ini\"\n    ServerName 127.0.0.1:8080 "
              "localhost:8080\n");
    expect_in(dir, "sites/0000.conf", "    Handler zmq\n");
    expect_in(dir, "sites/0000.conf", "    Listen 127.0.0.1:8080\n");
    expect_in(dir, "sites/0000.conf", "[ZMQ]\n#line 6 \"bb.ini\"\n"
              "    Node node1\n");
    cleanup(dir);
}

MK_TEST(translate_listeners)
{
    const char *dir;

    mk_plugin_set_builtins(with_all);
    dir = translate_ok("[blastbeat]\n"
                    "bind = 127.0.0.1:1001\n"
                    "zmq = tcp://127.0.0.1:5000\n"
                    "[blastbeat:own]\n"
                    "node = a\n"
                    "bind = 127.0.0.1:1002\n"
                    "[blastbeat:shared]\n"
                    "node = b\n"
                    "[blastbeat:both]\n"
                    "node = c\n"
                    "bind = 127.0.0.1:1001\n"
                    "bind = 127.0.0.1:1002\n"
                    "zmq = tcp://127.0.0.1:5001\n"
                    "sessions = 5\n"
                    "timeout = 30\n");
    if (!dir) {
        return;
    }
    expect_in(dir, "tremolo.conf", "    Listen 127.0.0.1:1001\n"
              "#line 6 \"bb.ini\"\n    Listen 127.0.0.1:1002\n");
    /* a vhost with binds is served only there */
    expect_in(dir, "sites/0000.conf", "    Listen 127.0.0.1:1002\n");
    expect_not_in(dir, "sites/0000.conf", "1001");
    /* a vhost without binds: every shared listener, not the private one */
    expect_in(dir, "sites/0001.conf", "    Listen 127.0.0.1:1001\n");
    expect_not_in(dir, "sites/0001.conf", "1002");
    expect_in(dir, "sites/0002.conf", "#line 11 \"bb.ini\"\n"
              "    Listen 127.0.0.1:1001\n#line 12 \"bb.ini\"\n"
              "    Listen 127.0.0.1:1002\n");
    expect_in(dir, "sites/0002.conf", "    Bind tcp://127.0.0.1:5001\n");
    expect_in(dir, "sites/0002.conf", "    Sessions 5\n");
    expect_in(dir, "sites/0002.conf", "    NodeTimeout 30s\n");
    cleanup(dir);
}

MK_TEST(translate_plugin_options)
{
    const char *dir;

    mk_plugin_set_builtins(with_all);
    dir = translate_ok("[blastbeat]\n"
                    "bind-ssl = 127.0.0.1:443\n"
                    "zmq = tcp://127.0.0.1:5000\n"
                    "[blastbeat:x]\n"
                    "certificate = /etc/x.pem\n"
                    "key = x.key\n");
    if (!dir) {
        return;
    }
    expect_in(dir, "plugins.load", "    Load liana\n    Load tls\n"
              "    Load zmq\n");
    expect_in(dir, "tremolo.conf", "    Listen 127.0.0.1:443 tls\n");
    expect_in(dir, "sites/0000.conf", "[TLS]\n#line 5 \"bb.ini\"\n"
              "    Certificate /etc/x.pem\n");
    cleanup(dir);

    CHECK(translate("[blastbeat]\nbind-ssl = 127.0.0.1:443\n"
                    "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\nnode = a\n")
          == NULL);
    CHECK_EQ_STR(err, "bb.ini:4: [blastbeat:x]: served on a bind-ssl "
                 "listener, so certificate and key are required");

    /* plugins that are not built: the option is refused, naming both */
    mk_plugin_set_builtins(with_old_zmq);
    CHECK(translate("[blastbeat]\nbind = 127.0.0.1:80\n"
                    "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\n"
                    "bind-ssl = 127.0.0.1:443\n") == NULL);
    CHECK_EQ_STR(err, "bb.ini:5: bind-ssl: needs the tls plugin, which is not "
                 "available in this build");
    CHECK(translate("[blastbeat]\nbind = 127.0.0.1:80\nmemory = 2G\n"
                    "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\nnode = a\n")
          == NULL);
    CHECK_EQ_STR(err, "bb.ini:3: memory: needs the limits plugin, which is "
                 "not available in this build");
    CHECK(translate("[blastbeat]\nbind = 127.0.0.1:80\n"
                    "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\ncache = 8\n")
          == NULL);
    CHECK_EQ_STR(err, "bb.ini:5: cache: needs the cache plugin, which is not "
                 "available in this build");
    CHECK(translate("[blastbeat]\nbind = 127.0.0.1:80\n"
                    "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\n"
                    "bandwidth = 8\n") == NULL);
    CHECK_EQ_STR(err, "bb.ini:5: bandwidth: needs the bandwidth plugin, "
                 "which is not available in this build");
    /* 0 is BlastBeat's "off": it needs no plugin */
    dir = translate_ok("[blastbeat]\nbind = 127.0.0.1:80\n"
                    "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\ncache = 0\n"
                    "bandwidth = 0\n");
    if (dir) {
        expect_not_in(dir, "plugins.load", "cache");
        cleanup(dir);
    }
}

MK_TEST(translate_with_an_older_zmq)
{
    const char *dir;

    /* defaults for keys the zmq plugin lacks are left out ... */
    mk_plugin_set_builtins(with_old_zmq);
    dir = translate_ok(MINIMAL);
    if (!dir) {
        return;
    }
    expect_not_in(dir, "tremolo.conf", "Sessions");
    expect_not_in(dir, "tremolo.conf", "StatsFreq");
    expect_in(dir, "tremolo.conf", "    PingFreq 3000ms\n");
    cleanup(dir);
    /* ... values given for them are refused */
    CHECK(translate(MINIMAL "sessions = 3\n") == NULL);
    CHECK_EQ_STR(err, "bb.ini:8: sessions: needs the zmq plugin's per-site "
                 "Sessions setting, which this build does not have");
    CHECK(translate(MINIMAL "[blastbeat]\nstats-freq = 5\n") == NULL);
    CHECK_EQ_STR(err, "bb.ini:9: stats-freq: needs the zmq plugin's "
                 "StatsFreq setting, which this build does not have");
    /* vhost sessions = 0 means unlimited: nothing to write, no error */
    dir = translate_ok(MINIMAL "sessions = 0\n");
    if (dir) {
        cleanup(dir);
    }
}

MK_TEST(translate_host_collisions)
{
    const char *dir;

    mk_plugin_set_builtins(with_all);
    CHECK(translate("[blastbeat]\nbind = 127.0.0.1:80\n"
                    "zmq = tcp://127.0.0.1:5000\n"
                    "[blastbeat:a:8080]\nnode = x\n"
                    "[blastbeat:b]\nnode = y\nalias = A:9090\n") == NULL);
    CHECK_EQ_STR(err, "bb.ini:8: [blastbeat:b]: host name \"A:9090\" collides "
                 "with \"a:8080\" of [blastbeat:a:8080] (line 4): Tremolo "
                 "matches Host without its port and ignoring case");
    /* one vhost may name the same host with two ports */
    dir = translate_ok("[blastbeat]\nbind = 127.0.0.1:80\n"
                    "zmq = tcp://127.0.0.1:5000\n"
                    "[blastbeat:a:8080]\nnode = x\nalias = a:9090\n");
    if (dir) {
        cleanup(dir);
    }
}

/* ---- Options declared by plugins ----------------------------------------- */

MK_TEST(translate_declared_options)
{
    const char *dir, *site;

    /* the test plugin declares cache: its site section gets the value in
     * native units, and the plugin is loaded */
    mk_plugin_set_builtins(with_bbkeys);
    dir = translate_ok(MINIMAL "cache = 16\n[blastbeat]\nmemory = 3G\n");
    if (!dir) {
        return;
    }
    expect_in(dir, "sites/0000.conf", "[BBKEYS]\n#line 8 \"bb.ini\"\n"
              "    Size 16M\n");
    expect_in(dir, "tremolo.conf", "[BBKEYS]\n#line 10 \"bb.ini\"\n"
              "    Memory 3221225472\n");
    /* the handler's companion right after it */
    expect_in(dir, "plugins.load", "[PLUGINS]\n    Load liana\n    Load zmq\n"
              "    Load companion\n    Load bbkeys\n");
    cleanup(dir);
    /* its default, when the .ini has none, loads it too */
    dir = translate_ok(MINIMAL);
    if (dir) {
        expect_in(dir, "tremolo.conf", "[BBKEYS]\n#line 1 \"bb.ini\"\n"
                  "    Memory 1073741824\n");
        expect_in(dir, "plugins.load", "    Load companion\n"
                  "    Load bbkeys\n");
        expect_not_in(dir, "sites/0000.conf", "BBKEYS");
        cleanup(dir);
    }
    /* an option nobody declares is refused as before */
    CHECK(translate(MINIMAL "bandwidth = 8\n") == NULL);
    CHECK_EQ_STR(err, "bb.ini:8: bandwidth: needs the bandwidth plugin, "
                 "which is not available in this build");
    /* sections follow BlastBeat's option order, not the plugins' order */
    dir = translate_ok("[blastbeat]\nbind-ssl = 127.0.0.1:443\n"
                       "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\n"
                       "certificate = x.pem\nkey = x.key\nnode = n\n");
    if (dir) {
        site = slurp(dir, "sites/0000.conf");
        CHECK(strstr(site, "[ZMQ]") != NULL && strstr(site, "[TLS]") != NULL
              && strstr(site, "[ZMQ]") < strstr(site, "[TLS]"));
        expect_in(dir, "plugins.load", "    Load liana\n    Load tls\n"
                  "    Load zmq\n");
        cleanup(dir);
    }
}

MK_TEST(translate_bad_declaration)
{
    mk_plugin_set_builtins(with_bogus);
    CHECK(translate(MINIMAL) == NULL);
    CHECK_EQ_STR(err, "plugin bogus: bb_ini: zmq-endpoint in [blastbeat]: "
                 "BlastBeat has no such option there");
}

/* The test plugins' directory of this build: beside tests/unit. */
static const char *test_plugin_dir(void)
{
    static char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 16);
    char *slash;

    CHECK(n > 0);
    dir[n > 0 ? n : 0] = '\0';
    slash = strrchr(dir, '/');
    if (slash) {
        strcpy(slash, "/../plugins");
    }
    return dir;
}

MK_TEST(translate_shared_object_plugin)
{
    char path[4200];
    const char *dir;

    /* tremolo-bbkeys.so in the plugin directory, not built in */
    mk_plugin_set_builtins(without_bbkeys);
    snprintf(path, sizeof(path), "%s/tremolo-bbkeys.so", test_plugin_dir());
    CHECK_EQ_INT(access(path, R_OK), 0);
    CHECK(translate(MINIMAL "cache = 2\n") == NULL);
    CHECK_EQ_STR(err, "bb.ini:8: cache: needs the cache plugin, which is not "
                 "available in this build");
    dir = translate_in(MINIMAL "cache = 2\n", test_plugin_dir());
    CHECK(dir != NULL);
    if (!dir) {
        fprintf(stderr, "translate: %s\n", err);
        return;
    }
    expect_in(dir, "sites/0000.conf", "[BBKEYS]\n#line 8 \"bb.ini\"\n"
              "    Size 2M\n");
    expect_in(dir, "plugins.load", "    Load zmq\n    Load bbkeys\n");
    cleanup(dir);
}

/* ---- Through the native loader ---------------------------------------- */

static struct mk_server *load(const char *text)
{
    char path[] = "/tmp/tremolo-bb-ini-XXXXXX";
    struct mk_server *srv;
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
    close(fd);
    err[0] = '\0';
    srv = mk_bb_server_load(path, NULL, err, sizeof(err));
    /* messages name the .ini as given; here: the temporary path */
    if (!srv && strncmp(err, path, strlen(path)) == 0) {
        memmove(err, err + strlen(path), strlen(err + strlen(path)) + 1);
    }
    unlink(path);
    return srv;
}

MK_TEST(native_loader)
{
    char tmp[] = "/tmp/tremolo-bb-tmpdir-XXXXXX";
    struct mk_server *srv;

    mk_plugin_set_builtins(with_all);
    CHECK(mkdtemp(tmp) != NULL);
    setenv("TMPDIR", tmp, 1);
    srv = load(MINIMAL);
    CHECK(srv != NULL);
    if (!srv) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_INT(srv->listen_count, 1);
    CHECK_EQ_INT(srv->vhost_count, 1);
    CHECK_EQ_STR(mk_vhost_name(srv->vhosts[0]), "127.0.0.1:8080");
    CHECK_EQ_INT(srv->conf.keepalive_timeout, 1800 * 1000);
    CHECK_EQ_INT(srv->conf.write_queue_limit, 8388608);
    CHECK_EQ_INT(srv->conf.max_headers, 64);
    mk_server_destroy(srv);

    /* what only the native loader checks still names the .ini line */
    CHECK(load("[blastbeat]\nbind = 127.0.0.1:80\nwritequeue-buffer = 1000\n"
               "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\nnode = a\n")
          == NULL);
    CHECK_EQ_STR(err, ":3: WriteQueueLimit: 1000 is below the minimum 64K");
    CHECK(load("[blastbeat]\nbind = 127.0.0.1:80\nmax-headers = 500\n"
               "zmq = tcp://127.0.0.1:5000\n[blastbeat:x]\nnode = a\n")
          == NULL);
    CHECK(strncmp(err, ":3: MaxHeaders: 500 out of range", 32) == 0);
    /* no translated configuration is left behind */
    CHECK_EQ_INT(rmdir(tmp), 0);
    unsetenv("TMPDIR");
}

MK_TEST(native_loader_declared_options)
{
    const struct bbkeys_conf *conf;
    struct bbkeys_vconf **vconfs;
    struct mk_server *srv;
    size_t count = 0;

    /* the plugin that declares cache and memory is loaded with them */
    mk_plugin_set_builtins(with_bbkeys);
    srv = load(MINIMAL "cache = 16\n[blastbeat]\nmemory = 3G\n");
    CHECK(srv != NULL);
    if (!srv) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    conf = mk_server_plugin_conf(srv, &mk_plugin_bbkeys);
    CHECK(conf != NULL);
    CHECK(conf && conf->memory == 3ULL << 30);
    vconfs = (struct bbkeys_vconf **) mk_vhost_plugin_confs(srv->vhosts[0],
                                                            &mk_plugin_bbkeys,
                                                            &count);
    CHECK_EQ_INT(count, 1);
    CHECK(count == 1 && vconfs[0]->size == 16ULL << 20);
    mk_server_destroy(srv);
}

int main(void)
{
    RUN(minimal_example);
    RUN(syntax);
    RUN(every_option_accepted);
    RUN(errors_name_the_line);
    RUN(whole_file_checks);
    RUN(ipv6_binds);
    RUN(units);
    RUN(translate_minimal);
    RUN(translate_listeners);
    RUN(translate_plugin_options);
    RUN(translate_with_an_older_zmq);
    RUN(translate_host_collisions);
    RUN(translate_declared_options);
    RUN(translate_bad_declaration);
    RUN(translate_shared_object_plugin);
    RUN(native_loader);
    RUN(native_loader_declared_options);
    return mk_test_done();
}
