/*
 * Fuzz target for tremolo -b: the input is read as a BlastBeat .ini
 * (mk_server/mk_blastbeat.c); when it parses, it is translated into native
 * files in a scratch directory (mk_blastbeat_conf.c) with stand-in zmq,
 * liana and tls plugins registered (declaring the real plugins' .ini
 * options), and every generated file must then
 * read back through the native reader (the #line directives included).
 * A failure must say why on one line; ASan/LSan check the rest.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_rconf.h"
#include "mk_server/mk_blastbeat.h"
#include "plugins/tls/tls_ini.c"
#include "plugins/zmq/zmq_ini.c"
#include "fuzz_util.h"


struct fz_conf {
    struct mk_conf_list list;
};

static const struct mk_conf_key fz_zmq_keys[] = {
    MK_CONF_LIST("Bind", struct fz_conf, list),
    MK_CONF_LIST("PingFreq", struct fz_conf, list),
    MK_CONF_LIST("Sessions", struct fz_conf, list),
    MK_CONF_LIST("NodeTimeout", struct fz_conf, list),
    MK_CONF_LIST("Node", struct fz_conf, list),
    MK_CONF_END
};

static ssize_t fz_read(struct mk_conn *c, void *buf, size_t len)
{
    (void) c;
    (void) buf;
    (void) len;
    return 0;
}

static ssize_t fz_writev(struct mk_conn *c, const struct iovec *iov, int n)
{
    (void) c;
    (void) iov;
    (void) n;
    return 0;
}

static const struct mk_net_io fz_io = {
    .name = "fz", .read = fz_read, .writev = fz_writev,
};
static const struct mk_plugin fz_liana = {
    .abi = MK_PLUGIN_ABI, .name = "liana",
    .flags = MK_PLUGIN_NETWORK | MK_PLUGIN_NETWORK_PLAIN, .net_io = &fz_io,
};
static const struct mk_plugin fz_tls = {
    .abi = MK_PLUGIN_ABI, .name = "tls", .flags = MK_PLUGIN_NETWORK,
    .net_io = &fz_io, .vhost_keys = fz_zmq_keys, .bb_ini = &tls_ini,
};
static const struct mk_plugin fz_zmq = {
    .abi = MK_PLUGIN_ABI, .name = "zmq", .conf_keys = fz_zmq_keys,
    .vhost_keys = fz_zmq_keys, .bb_ini = &zmq_ini,
};
static const struct mk_plugin *const fz_builtins[] = {
    &fz_liana, &fz_zmq, &fz_tls, NULL
};

/* Every generated file reads back; then it is removed. */
static void fz_check_dir(const char *dir)
{
    char path[512], err[512];
    struct mk_rconf *rc;
    struct dirent *de;
    DIR *d;

    d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR) {
            fz_check_dir(path);
            continue;
        }
        if (strcmp(de->d_name, "mime.types") != 0) {
            rc = mk_rconf_open(path, err, sizeof(err));
            FUZZ_CHECK(rc != NULL);
            mk_rconf_destroy(rc);
        }
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a tmpfs where there is one: every parsed input writes a few files */
    char err[1024], dir[64];
    struct mk_bb *bb;

    mk_plugin_set_builtins(fz_builtins);
    err[0] = '\0';
    bb = mk_bb_parse("fuzz.ini", (const char *) data, size, err, sizeof(err));
    if (!bb) {
        FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s/tremolo-fuzz-bb-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    err[0] = '\0';
    if (mk_bb_write(bb, dir, "/nonexistent", err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    }
    fz_check_dir(dir);
    mk_bb_destroy(bb);
    return 0;
}
