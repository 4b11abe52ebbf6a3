#ifndef MK_SERVER_MASTER_H
#define MK_SERVER_MASTER_H

#include "mk_server/mk_server.h"

/* Runs the server until stopped; returns the process exit code. With
 * bb_ini (-b) the configuration is that BlastBeat .ini, not conf_path. */
int mk_master_run(const char *conf_path, const char *bb_ini,
                  const struct mk_overrides *ov, int daemon);
/* -t: loads the configuration, prints the verdict, returns the exit code. */
int mk_master_check(const char *conf_path, const char *bb_ini,
                    const struct mk_overrides *ov);

#endif
