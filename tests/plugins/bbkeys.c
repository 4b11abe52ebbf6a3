/*
 * bbkeys: a plugin for the tests of `tremolo -b` (never shipped) that
 * translates two BlastBeat options no shipped plugin writes yet, the way
 * the cache and limits plugins will: `cache` (MiB, per vhost) into its
 * site section's Size, and `memory` (bytes, global) into its Memory, with
 * a default of its own. Loading it is all it needs: it has no callbacks.
 */
#include "mk_server/mk_plugin.h"

struct bbkeys_conf {
    uint64_t memory;
};

struct bbkeys_vconf {
    uint64_t size;
};

static const struct mk_conf_key bbkeys_keys[] = {
    MK_CONF_SIZE("Memory", struct bbkeys_conf, memory, "0", 0, 0),
    MK_CONF_END
};

static const struct mk_conf_key bbkeys_vhost_keys[] = {
    MK_CONF_SIZE("Size", struct bbkeys_vconf, size, "0", 0, 0),
    MK_CONF_END
};

static const struct mk_bb_key bbkeys_ini_keys[] = {
    { "memory", MK_BB_GLOBAL, "Memory", "1G", 0 },
    { "cache",  MK_BB_VHOST,  "Size",   NULL, 0 },
    { NULL, 0, NULL, NULL, 0 }
};

static const struct mk_bb_ini bbkeys_ini = {
    .keys = bbkeys_ini_keys,
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_bbkeys = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "bbkeys",
    .description     = "test: translates BlastBeat's cache and memory",
    .conf_keys       = bbkeys_keys,
    .conf_size       = sizeof(struct bbkeys_conf),
    .vhost_keys      = bbkeys_vhost_keys,
    .vhost_conf_size = sizeof(struct bbkeys_vconf),
    .bb_ini          = &bbkeys_ini,
};
