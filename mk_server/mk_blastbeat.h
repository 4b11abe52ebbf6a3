#ifndef MK_SERVER_BLASTBEAT_H
#define MK_SERVER_BLASTBEAT_H

/*
 * Private to mk_server: `tremolo -b FILE.ini` reads a BlastBeat .ini file
 * (spec section 8) and translates it into Tremolo's own configuration
 * files, which the normal loader (mk_server_load) then reads. The .ini is
 * never a second configuration model: every setting ends up as a native
 * key, and the generated files carry `#line` directives so that any error
 * the native loader reports names the .ini file and line.
 *
 *   mk_blastbeat.c        the strict .ini reader and BlastBeat's options
 *   mk_blastbeat_plan.c   who translates each option: the core or the
 *                         plugins that declare it (mk_plugin.h, bb_ini)
 *   mk_blastbeat_conf.c   the translation into native files, and the load
 */
#include <stddef.h>

#include "mk_server/mk_server.h"

/* How a value is checked, and how it is written as a native value. */
enum mk_bb_kind {
    MK_BB_LISTEN,      /* ADDR:PORT [PRIORITY] -> "ADDR:PORT" / "[V6]:PORT" */
    MK_BB_ENDPOINT,    /* scheme://address, as libzmq takes it */
    MK_BB_WORD,        /* one word: a node identity, a host name */
    MK_BB_SECONDS,     /* float seconds > 0 -> "Nms" */
    MK_BB_SECONDS_INT, /* whole seconds > 0 -> "Ns" (vhost: 0 = global) */
    MK_BB_COUNT,       /* whole number >= 0 */
    MK_BB_COUNT_POS,   /* whole number > 0 */
    MK_BB_BYTES,       /* bytes; K/M/G units accepted; > 0 */
    MK_BB_MIB,         /* whole MiB -> "NM"; 0 = off */
    MK_BB_KBITS,       /* whole kbit/s; 0 = unlimited */
    MK_BB_USER,        /* user name or uid -> user name */
    MK_BB_GROUP,       /* group name or gid -> group name */
    MK_BB_PATH,        /* file, relative to the .ini's directory */
};

/* One BlastBeat option (spec 8.2, 8.3): where it may appear and how its
 * value is read, so that the reader checks every value before any plugin
 * is looked at. An option the core translates names its native section
 * and key; the others are translated by whichever plugins declare them. */
struct mk_bb_opt {
    const char *key;
    unsigned where;                     /* MK_BB_GLOBAL | MK_BB_VHOST */
    int multi;                          /* repeatable: every value counts */
    enum mk_bb_kind kind;
    const char *section;                /* core's native section, or NULL */
    const char *native;                 /* native key; NULL: special */
    const char *def;                    /* BlastBeat's default, or NULL */
    /* A plugin's option: the plugin the refusal names when no plugin
     * this build can find declares it (BlastBeat's feature; none is
     * loaded or looked up by this name). */
    const char *needs;
};

extern const struct mk_bb_opt mk_bb_opts[];

/* One occurrence of an option. */
struct mk_bb_value {
    char *value;                        /* trimmed, as written */
    int line;
};

struct mk_bb_values {
    struct mk_bb_value *v;
    size_t count;
};

/* [blastbeat], or every [blastbeat:NAME] section with the same NAME. */
struct mk_bb_section {
    char *name;                         /* NULL for [blastbeat] */
    int line;                           /* the first header's line */
    struct mk_bb_values *opts;          /* indexed like mk_bb_opts */
};

struct mk_bb {
    char *path;                         /* as given: messages name it */
    struct mk_bb_section global;
    struct mk_bb_section *vhosts;       /* in order of first appearance */
    size_t vhost_count;
};

/* Reads an .ini file held in memory (`path` names it in messages). Every
 * value is checked; an unknown option, a bad value or a config BlastBeat
 * would have crashed on is an error `path:line: key: reason`. */
struct mk_bb *mk_bb_parse(const char *path, const char *data, size_t len,
                          char *err, size_t errlen);
void mk_bb_destroy(struct mk_bb *bb);

/* Checks `value` for option `o` and writes its native form into out
 * (files relative to the folder of `ini`). Returns 0, or -1 with a reason
 * (no file:line) in err. */
int mk_bb_convert(const struct mk_bb_opt *o, const char *value,
                  const char *ini, char *out, size_t outlen,
                  char *err, size_t errlen);

/* The row of `key` valid in `where`, or NULL. */
const struct mk_bb_opt *mk_bb_opt_find(const char *key, unsigned where);

/* One way an option is written: by the core, by a plugin that declares
 * it, or (section NULL) by nobody, which refuses a value. */
struct mk_bb_row {
    const struct mk_bb_opt *opt;        /* its values: opts[opt - mk_bb_opts] */
    unsigned where;
    const struct mk_plugin *plugin;     /* NULL: the core or nobody */
    const char *section;                /* native section */
    const char *native;                 /* native key; NULL: special */
    const char *def;
    unsigned flags;                     /* MK_BB_REQUIRED */
};

/* Who translates what, from the plugins one walk found. Rows: the core's
 * in option order, then each plugin's in its declaration order (plugins
 * in the order of their first option in mk_bb_opts, whatever the build's
 * layout), then the options nobody translates. */
struct mk_bb_plan {
    struct mk_bb_row *rows;
    size_t nrows;
    const struct mk_plugin **plugins;   /* that declare bb_ini */
    char (*sections)[64];               /* their [NAME]s, upper-cased */
    size_t nplugins;
    const struct mk_plugin *handler;    /* MK_BB_HANDLER, or NULL */
    const struct mk_plugin *plain_io;   /* MK_PLUGIN_NETWORK_PLAIN, or NULL */
};

/* Walks the plugins mk_plugin_find finds in `plugin_dir`. Returns 0, or
 * -1 with a reason (a plugin declaring an option BlastBeat lacks). */
int mk_bb_plan_init(struct mk_bb_plan *plan, const char *plugin_dir,
                    char *err, size_t errlen);
void mk_bb_plan_release(struct mk_bb_plan *plan);
/* The first row writing option `o` in `where`. */
const struct mk_bb_row *mk_bb_plan_row(const struct mk_bb_plan *plan,
                                       const struct mk_bb_opt *o,
                                       unsigned where);

/* Writes tremolo.conf, plugins.load and sites/NNNN.conf into `dir`.
 * Plugin options are translated by the plugins mk_plugin_find finds in
 * `plugin_dir`. Returns 0, or -1 with `path:line: key: reason`. */
int mk_bb_write(const struct mk_bb *bb, const char *dir,
                const char *plugin_dir, char *err, size_t errlen);

/* Reads `ini`, translates it into a private temporary directory, loads
 * that like `-c` would and removes the directory again. */
struct mk_server *mk_bb_server_load(const char *ini,
                                    const struct mk_overrides *ov,
                                    char *err, size_t errlen);

#endif
