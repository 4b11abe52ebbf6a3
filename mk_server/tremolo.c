/*
 * tremolo: the command line. Everything else happens in mk_master.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_rconf.h"
#include "mk_server/mk_master.h"

#define MK_MAX_LISTEN_ARGS 64

extern const struct mk_plugin *const mk_plugins_builtin[];   /* generated */

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: tremolo [options]\n"
        "\n"
        "  -c FILE         main configuration file (default conf/tremolo.conf);\n"
        "                  plugins.load and sites/ are read beside it\n"
        "  -b FILE.ini     start from a BlastBeat .ini file instead (its\n"
        "                  options, units and defaults; not with -c)\n"
        "  -l [ADDR:]PORT  listen here instead of the configured Listen lines\n"
        "                  (repeatable; ADDR is IPv4 or [IPv6])\n"
        "  -w N            worker threads (0 = one per CPU core)\n"
        "  -t              check the configuration and exit\n"
        "  -D              run in the background\n"
        "  -V              print the version and exit\n"
        "  -h              this help\n"
        "\n"
        "Signals: HUP reload, TERM/INT graceful stop, QUIT fast stop,\n"
        "USR1 reopen logs. See tremolo(8).\n");
}

int main(int argc, char **argv)
{
    const char *conf = "conf/tremolo.conf", *bb_ini = NULL;
    const char *listen[MK_MAX_LISTEN_ARGS];
    struct mk_overrides ov = { listen, 0, -1 };
    char err[256];
    long long workers;
    int opt, test = 0, daemon = 0, conf_given = 0;

    mk_plugin_set_builtins(mk_plugins_builtin);
    while ((opt = getopt(argc, argv, "c:b:l:w:tDVh")) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            conf_given = 1;
            break;
        case 'b':
            bb_ini = optarg;
            break;
        case 'l':
            if (ov.n_listen == MK_MAX_LISTEN_ARGS) {
                fprintf(stderr, "tremolo: too many -l options\n");
                return 1;
            }
            listen[ov.n_listen++] = optarg;
            break;
        case 'w':
            if (mk_conf_parse_int(optarg, 0, 1024, &workers, err,
                                  sizeof(err)) < 0) {
                fprintf(stderr, "tremolo: -w: %s\n", err);
                return 1;
            }
            ov.workers = workers;
            break;
        case 't':
            test = 1;
            break;
        case 'D':
            daemon = 1;
            break;
        case 'V':
            printf("tremolo/%s\n", TREMOLO_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tremolo: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    if (bb_ini && conf_given) {
        fprintf(stderr, "tremolo: -b and -c exclude each other: the .ini "
                "file is the whole configuration\n");
        return 1;
    }
    if (test) {
        return mk_master_check(conf, bb_ini, &ov);
    }
    return mk_master_run(conf, bb_ini, &ov, daemon);
}
