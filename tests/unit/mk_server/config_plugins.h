#ifndef TESTS_UNIT_CONFIG_PLUGINS_H
#define TESTS_UNIT_CONFIG_PLUGINS_H

/*
 * Built-in plugins for the tests that load a whole generation from
 * tests/unit/fixtures/config/ (mk_config.c, mk_vhost.c): a network layer
 * named "liana" (listeners need one; it never does I/O here) and "hello",
 * a content handler with a global [HELLO] section and per-site [HELLO]
 * sections whose keys inherit the global ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "mk_core/mk_rconf.h"
#include "mk_server/mk_server.h"

struct hello_conf {
    long long count;
    uint64_t wait;
};

/* a site's [HELLO]: laid out differently on purpose */
struct hello_vconf {
    uint64_t wait;
    long long count;
};

static const struct mk_conf_key hello_keys[] = {
    MK_CONF_INT("Count", struct hello_conf, count, "2", 1, 10),
    MK_CONF_TIME("Wait", struct hello_conf, wait, "5s", 10, 60000),
    MK_CONF_END
};

static const struct mk_conf_key hello_vhost_keys[] = {
    MK_CONF_INHERIT("Count", struct hello_vconf, count),
    MK_CONF_INHERIT("Wait", struct hello_vconf, wait),
    MK_CONF_END
};

static int hello_content(void *conf, struct mk_stream *r)
{
    (void) conf;
    (void) r;
    return MK_STAGE_HANDLED;
}

static const struct mk_plugin test_plugin_hello = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "hello",
    .conf_keys       = hello_keys,
    .conf_size       = sizeof(struct hello_conf),
    .vhost_keys      = hello_vhost_keys,
    .vhost_conf_size = sizeof(struct hello_vconf),
    .on_content      = hello_content,
};

static ssize_t fake_read(struct mk_conn *c, void *buf, size_t len)
{
    (void) c;
    (void) buf;
    (void) len;
    return MK_IO_ERROR;
}

static ssize_t fake_writev(struct mk_conn *c, const struct iovec *iov,
                           int iovcnt)
{
    (void) c;
    (void) iov;
    (void) iovcnt;
    return MK_IO_ERROR;
}

static const struct mk_net_io fake_io = {
    .name = "liana", .read = fake_read, .writev = fake_writev,
};

static const struct mk_plugin test_plugin_liana = {
    .abi    = MK_PLUGIN_ABI,
    .name   = "liana",
    .flags  = MK_PLUGIN_NETWORK | MK_PLUGIN_NETWORK_PLAIN,
    .net_io = &fake_io,
};

static const struct mk_plugin *const test_builtins[] = {
    &test_plugin_liana, &test_plugin_hello, NULL
};

#define CONF_FIX "fixtures/config/"

/* Loads fixtures/config/<dir>/tremolo.conf; NULL with err set. */
static struct mk_server *load_fixture(const char *dir,
                                      const struct mk_overrides *ov,
                                      char *err, size_t errlen)
{
    char path[512];

    mk_plugin_set_builtins(test_builtins);
    snprintf(path, sizeof(path), CONF_FIX "%s/tremolo.conf", dir);
    err[0] = '\0';
    return mk_server_load(path, ov, err, errlen);
}

#endif
