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
 *   mk_blastbeat.c        the strict .ini reader and its option table
 *   mk_blastbeat_conf.c   the translation into native files, and the load
 */
#include <stddef.h>

#include "mk_server/mk_server.h"

/* Where an option may appear. */
#define MK_BB_GLOBAL 0x1               /* [blastbeat] */
#define MK_BB_VHOST  0x2               /* [blastbeat:NAME] */

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

/* One row: an .ini option, where it may appear, and the native key it
 * becomes. An option with two effects has two rows (the first one checks
 * the value). A plugin's option names the plugin: it is accepted only if
 * that plugin can be loaded, and the plugin is then loaded. */
struct mk_bb_opt {
    const char *key;
    unsigned where;
    int multi;                          /* repeatable: every value counts */
    enum mk_bb_kind kind;
    const char *plugin;                 /* owner of `section`; NULL: core */
    const char *section;                /* native section */
    const char *native;                 /* native key; NULL: special */
    const char *def;                    /* BlastBeat's default, or NULL */
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
void mk_bb_free(struct mk_bb *bb);

/* Checks `value` for option `o` and writes its native form into out
 * (files relative to the folder of `ini`). Returns 0, or -1 with a reason
 * (no file:line) in err. */
int mk_bb_convert(const struct mk_bb_opt *o, const char *value,
                  const char *ini, char *out, size_t outlen,
                  char *err, size_t errlen);

/* The row of `key` valid in `where`, or NULL. */
const struct mk_bb_opt *mk_bb_opt_find(const char *key, unsigned where);

/* Writes tremolo.conf, plugins.load and sites/NNNN.conf into `dir`.
 * Plugin options are checked against what mk_plugin_find finds in
 * `plugin_dir`. Returns 0, or -1 with `path:line: key: reason`. */
int mk_bb_write(const struct mk_bb *bb, const char *dir,
                const char *plugin_dir, char *err, size_t errlen);

/* Reads `ini`, translates it into a private temporary directory, loads
 * that like `-c` would and removes the directory again. */
struct mk_server *mk_bb_server_load(const char *ini,
                                    const struct mk_overrides *ov,
                                    char *err, size_t errlen);

#endif
