/*
 * BlastBeat's gateway options (spec 8.2, 8.3) as `tremolo -b` writes them
 * into [ZMQ] of tremolo.conf and of each site. The core checks the values
 * and converts their units (seconds become "3000ms"); the defaults are
 * BlastBeat's, not this plugin's own.
 */
#include "mk_server/mk_plugin.h"

#define G MK_BB_GLOBAL
#define V MK_BB_VHOST

static const struct mk_bb_key zmq_ini_keys[] = {
    { "zmq",        G, "Bind",        NULL,    0 },
    { "ping-freq",  G, "PingFreq",    "3.0",   0 },
    { "stats-freq", G, "StatsFreq",   "60.0",  0 },
    { "max-hops",   G, "MaxHops",     "10",    0 },
    { "sessions",   G, "Sessions",    "10000", 0 },
    { "timeout",    G, "NodeTimeout", "1800",  0 },
    { "node",       V, "Node",        NULL,    0 },
    { "zmq",        V, "Bind",        NULL,    0 },
    { "sessions",   V, "Sessions",    NULL,    0 },
    { "timeout",    V, "NodeTimeout", NULL,    0 },
    { NULL, 0, NULL, NULL, 0 }
};

/* Every translated site is answered by nodes, through this plugin. */
const struct mk_bb_ini zmq_ini = {
    .keys  = zmq_ini_keys,
    .flags = MK_BB_HANDLER,
};
