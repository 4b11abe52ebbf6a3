/*
 * Loading a configuration generation (mk_server_load) from the fixtures in
 * tests/unit/fixtures/config/: a good one with its values in place, each
 * kind of error with its exact `file:line: Key: reason` message, and the
 * command line's -l / -w overrides. Runs from tests/unit/.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mk_test.h"
#include "config_plugins.h"

static char err[1024];

/* `tail` with each '@' replaced by the fixture directory's real path (the
 * server names files by their real paths). */
static void expand(const char *dir, const char *tail, char *out, size_t size)
{
    char path[512], real[PATH_MAX];
    size_t n = 0;

    snprintf(path, sizeof(path), CONF_FIX "%s", dir);
    if (realpath(path, real) == NULL) {
        snprintf(real, sizeof(real), "(no %s)", path);
    }
    for (; *tail != '\0' && n + 1 < size; tail++) {
        if (*tail == '@') {
            n += (size_t) snprintf(out + n, size - n, "%s", real);
            n = n < size ? n : size - 1;
        }
        else {
            out[n++] = *tail;
        }
    }
    out[n] = '\0';
}

/* Loading fixture `dir` fails with exactly `tail` ('@': its directory). */
static void expect_error(const char *dir, const struct mk_overrides *ov,
                         const char *tail)
{
    struct mk_server *srv = load_fixture(dir, ov, err, sizeof(err));
    char want[PATH_MAX * 2 + 512];

    CHECK(srv == NULL);
    mk_server_destroy(srv);
    expand(dir, tail, want, sizeof(want));
    CHECK_EQ_STR(err, want);
}

MK_TEST(good_generation)
{
    struct mk_server *srv = load_fixture("good", NULL, err, sizeof(err));
    const struct hello_conf *hc;

    CHECK(srv != NULL);
    if (srv == NULL) {
        fprintf(stderr, "error: %s\n", err);
        return;
    }
    CHECK_EQ_INT(srv->listen_count, 2);
    CHECK_EQ_STR(srv->listens[0].text, "127.0.0.1:8080");
    CHECK_EQ_STR(srv->listens[1].text, "127.0.0.1:8443");
    CHECK_EQ_STR(srv->listens[0].layer, "liana");
    CHECK(srv->listens[0].io == test_plugin_liana.net_io);
    CHECK_EQ_INT(srv->worker_count, 2);
    CHECK_EQ_INT(srv->conf.keepalive_timeout, 7000);
    CHECK_EQ_INT(srv->conf.max_request_body, 1 << 20);
    CHECK_EQ_INT(srv->conf.header_timeout, 10000);          /* default */
    CHECK_EQ_INT(srv->plugin_count, 2);
    CHECK(srv->plugins[1].p == &test_plugin_hello);
    CHECK_EQ_INT(srv->vhost_count, 3);                      /* a, b, c */
    CHECK(srv->default_vhost == srv->vhosts[0]);
    /* hello.conf sets Count; Wait keeps its built-in default */
    hc = mk_server_plugin_conf(srv, &test_plugin_hello);
    CHECK(hc != NULL);
    if (hc != NULL) {
        CHECK_EQ_INT(hc->count, 5);
        CHECK_EQ_INT(hc->wait, 5000);
    }
    /* ErrorPage read at load, its type from the fixture's mime.types */
    CHECK_EQ_INT(srv->vhosts[0]->error_page_count, 1);
    CHECK_EQ_INT(srv->vhosts[0]->error_pages[0].status, 404);
    CHECK_EQ_INT(srv->vhosts[0]->error_pages[0].len, 5);
    mk_server_destroy(srv);
}

MK_TEST(site_sections_inherit_the_global_section)
{
    struct mk_server *srv = load_fixture("good", NULL, err, sizeof(err));
    struct hello_vconf *vc;
    void **confs;
    size_t count;

    CHECK(srv != NULL);
    if (srv == NULL) {
        return;
    }
    /* a: Wait set, Count from hello.conf */
    confs = mk_vhost_plugin_confs(srv->vhosts[0], &test_plugin_hello, &count);
    CHECK_EQ_INT(count, 1);
    vc = count == 1 ? confs[0] : NULL;
    CHECK(vc != NULL && vc->count == 5 && vc->wait == 250);
    /* b: Count set, Wait from the built-in default of the global key */
    confs = mk_vhost_plugin_confs(srv->vhosts[1], &test_plugin_hello, &count);
    CHECK_EQ_INT(count, 1);
    vc = count == 1 ? confs[0] : NULL;
    CHECK(vc != NULL && vc->count == 9 && vc->wait == 5000);
    /* c: no [HELLO] at all */
    mk_vhost_plugin_confs(srv->vhosts[2], &test_plugin_hello, &count);
    CHECK_EQ_INT(count, 0);
    mk_server_destroy(srv);
}

MK_TEST(server_section_errors)
{
    expect_error("err_server_value", NULL,
                 "@/tremolo.conf:3: Workers: 2000 out of range 0..1024");
    expect_error("err_server_key", NULL,
                 "@/tremolo.conf:3: Colour: unknown key in [SERVER]");
    expect_error("err_line_head", NULL, "@/tremolo.conf:1: MaxRequestLine "
                 "is larger than MaxRequestHead");
    expect_error("no_listen", NULL, "@/tremolo.conf: [SERVER]: Listen is "
                 "required (or give -l)");
    expect_error("err_section", NULL, "@/tremolo.conf:4: unknown section "
                 "[FOO]");
}

MK_TEST(plugin_errors)
{
    expect_error("err_load_twice", NULL,
                 "@/plugins.load:4: Load: plugin liana is loaded twice");
    /* a Listen naming no layer needs a loaded plain-socket layer */
    expect_error("err_no_plain", NULL, "Listen 127.0.0.1:8080: no loaded "
                 "network plugin serves plain sockets (see plugins.load)");
    expect_error("err_load_unknown", NULL, "@/plugins.load:3: Load: no "
                 "plugin \"nosuch\": not built in and no "
                 "/nonexistent/tremolo-nosuch.so");
    expect_error("err_global_value", NULL,
                 "@/hello.conf:3: Count: 11 out of range 1..10");
    /* a site value is bounded by the global key */
    expect_error("err_site_value", NULL,
                 "@/sites/a.conf:5: Wait: 5ms out of range 10ms..1m");
}

MK_TEST(site_errors)
{
    expect_error("err_no_sites", NULL, "no site in @/sites/: at least one "
                 "file with a [HOST] section is required");
    expect_error("err_no_host", NULL, "@/sites/a.conf: no [HOST] section");
    expect_error("err_two_hosts", NULL, "@/sites/a.conf:4: a site file holds "
                 "one [HOST] (first at line 1)");
    expect_error("err_name_used", NULL, "@/sites/b.conf:1: ServerName: "
                 "\"A.TEST\" is already used by @/sites/a.conf");
    expect_error("err_two_defaults", NULL, "@/sites/b.conf: Default: "
                 "@/sites/a.conf is the default site already");
    expect_error("err_handler", NULL, "@/sites/a.conf:1: Handler: \"nope\" "
                 "is neither \"static\" nor a loaded plugin (see "
                 "plugins.load)");
    expect_error("err_docroot", NULL, "@/sites/a.conf:1: [HOST]: "
                 "DocumentRoot is required for the static handler");
    expect_error("err_location", NULL, "@/sites/a.conf:4: [LOCATION]: "
                 "expected [LOCATION /prefix]");
    expect_error("err_host_listen", NULL, "@/sites/a.conf:4: Listen: "
                 "127.0.0.1:9999 is not one of [SERVER] Listen");
}

MK_TEST(command_line_overrides)
{
    const char *listen[] = { "127.0.0.1:9000", "[::1]:9001" };
    const char *bad[] = { "x:0" };
    struct mk_overrides ov = { listen, 2, 3 };
    struct mk_server *srv;

    /* -l replaces a missing Listen, -w the Workers */
    srv = load_fixture("no_listen", &ov, err, sizeof(err));
    CHECK(srv != NULL);
    if (srv != NULL) {
        CHECK_EQ_INT(srv->listen_count, 2);
        CHECK_EQ_STR(srv->listens[0].text, "127.0.0.1:9000");
        CHECK_EQ_STR(srv->listens[1].text, "[::1]:9001");
        CHECK_EQ_INT(srv->worker_count, 3);
        mk_server_destroy(srv);
    }
    /* -w 0: one worker per CPU; -w -1 keeps the file's */
    ov.n_listen = 0;
    ov.workers = 0;
    srv = load_fixture("good", &ov, err, sizeof(err));
    CHECK(srv != NULL && srv->worker_count >= 1);
    mk_server_destroy(srv);
    ov.workers = -1;
    srv = load_fixture("good", &ov, err, sizeof(err));
    CHECK(srv != NULL && srv->worker_count == 2);
    mk_server_destroy(srv);
    /* -l replaces the file's Listen lines: b's [HOST] Listen is gone */
    ov.n_listen = 1;
    expect_error("good", &ov, "@/sites/b.conf:3: Listen: 127.0.0.1:8443 is "
                 "not one of [SERVER] Listen");
    ov.listen = bad;
    expect_error("no_listen", &ov, "-l: \"x:0\": port must be 1..65535");
}

int main(void)
{
    RUN(good_generation);
    RUN(site_sections_inherit_the_global_section);
    RUN(server_section_errors);
    RUN(plugin_errors);
    RUN(site_errors);
    RUN(command_line_overrides);
    return mk_test_done();
}
