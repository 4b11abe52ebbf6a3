/*
 * Fuzz target for the configuration reader and the typed schema: the input
 * is read as a config file; when it parses, every section is applied to a
 * schema that has a key of every type, every value goes through every value
 * parser, and everything is freed again (ASan/LSan check the rest).
 *
 * @include is real: it runs in a scratch directory holding a few small
 * files (one includes itself, one fans out), and inputs whose @include
 * pattern holds a '/' are skipped so the fuzzer cannot wander the host's
 * filesystem (globbing /proc would be slow and nondeterministic).
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_rconf.h"

struct fz_ports {
    int count;
    long long sum;
};

struct fz_conf {
    char *name;
    long long workers;
    long long offset;
    long long any;
    int flag;
    uint64_t size;
    uint64_t timeout;
    int mode;
    struct mk_conf_list list;
    struct fz_ports listen;
    struct fz_ports once;
    char *req;
};

static int fz_parse_port(const char *value, void *field, char *err,
                         size_t errlen)
{
    struct fz_ports *p = field;
    const char *colon = strrchr(value, ':');
    long long n;

    if (mk_conf_parse_int(colon != NULL ? colon + 1 : value, 1, 65535, &n,
                          err, errlen) != 0) {
        return -1;
    }
    p->count++;
    p->sum += n;
    return 0;
}

static const struct mk_conf_key fz_keys[] = {
    MK_CONF_STR("Name", struct fz_conf, name, "tremolo"),
    MK_CONF_INT("Workers", struct fz_conf, workers, "0", 0, 1024),
    MK_CONF_INT("Offset", struct fz_conf, offset, "-1", -100, 0),
    MK_CONF_INT("Any", struct fz_conf, any, NULL, 0, 0),
    MK_CONF_BOOL("KeepAlive", struct fz_conf, flag, "on"),
    MK_CONF_SIZE("MaxRequestBody", struct fz_conf, size, "16M", 512, 1LL << 32),
    MK_CONF_TIME("Timeout", struct fz_conf, timeout, "5s", 0, 0),
    MK_CONF_ENUM("Scheduler", struct fz_conf, mode, "reuseport",
                 "reuseport|fair|x"),
    MK_CONF_LIST("IndexFiles", struct fz_conf, list),
    MK_CONF_CUSTOM("Listen", struct fz_conf, listen, "2001", fz_parse_port,
                   MK_CONF_MULTI),
    MK_CONF_CUSTOM("Once", struct fz_conf, once, NULL, fz_parse_port, 0),
    { "Required", MK_CONF_T_STR, offsetof(struct fz_conf, req), NULL, 0, 0,
      NULL, NULL, MK_CONF_REQUIRED },
    MK_CONF_END
};

/* A per-site table against fz_keys: inherited keys of each kind the
 * schema lets inherit, beside a key of its own. */
struct fz_site {
    uint64_t timeout;
    char *name;
    long long offset;
    int mode;
    uint64_t size;
    int flag;
};

static const struct mk_conf_key fz_site_keys[] = {
    MK_CONF_INHERIT("Timeout", struct fz_site, timeout),
    MK_CONF_STR("Name", struct fz_site, name, "site"),
    MK_CONF_INHERIT("Offset", struct fz_site, offset),
    MK_CONF_INHERIT("Scheduler", struct fz_site, mode),
    MK_CONF_INHERIT("MaxRequestBody", struct fz_site, size),
    MK_CONF_INHERIT("KeepAlive", struct fz_site, flag),
    MK_CONF_END
};

static char fz_dir[] = "/tmp/tremolo-fuzz-rconf-XXXXXX";
static int fz_home = -1;            /* the fuzzer's own working directory */

static void fz_write(const char *name, const char *text)
{
    FILE *f = fopen(name, "w");

    if (f == NULL) {
        perror(name);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

static void fz_cleanup(void)
{
    if (chdir(fz_dir) == 0) {
        unlink("a.conf");
        unlink("loop.conf");
        unlink("fan.inc");
        if (fchdir(fz_home) == 0) {
            rmdir(fz_dir);
        }
    }
}

/* The scratch directory is entered only around each parse: libFuzzer opens
 * the corpus and dictionary by the relative paths it was given. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fz_home < 0 || mkdtemp(fz_dir) == NULL || chdir(fz_dir) != 0) {
        perror("config_reader: scratch dir");
        abort();
    }
    fz_write("a.conf", "[A]\n    Workers 4\n    IndexFiles a b\n");
    fz_write("loop.conf", "[LOOP]\n    Name x\n@include loop.conf\n");
    fz_write("fan.inc", "@include a.conf\n@include a.conf\n@include fan.inc\n");
    if (fchdir(fz_home) != 0) {
        abort();
    }
    atexit(fz_cleanup);
    return 0;
}

/* The section again, as a site's against the applied global `g`: an
 * absent inherited key must come out as g's value. */
static void fz_site_apply(const struct mk_rconf_section *s,
                          const struct fz_conf *g)
{
    struct fz_site site;
    char err[256];

    memset(&site, 0, sizeof(site));
    if (mk_conf_apply_inherit(s, fz_site_keys, &site, fz_keys, g, err,
                              sizeof(err)) != 0) {
        if (site.name != NULL) {
            abort();                  /* a failed apply must clean up */
        }
        return;
    }
    if (mk_rconf_get(s, "Timeout") == NULL && site.timeout != g->timeout) {
        abort();
    }
    if (mk_rconf_get(s, "Scheduler") == NULL && site.mode != g->mode) {
        abort();
    }
    mk_conf_release(fz_site_keys, &site);
}

/* Does any line start with "@include" and name a path with a '/'? */
static int fz_escapes(const uint8_t *data, size_t size)
{
    size_t i = 0;

    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t end = nl != NULL ? (size_t) (nl - data) : size;

        if (end - i >= 8 && memcmp(data + i, "@include", 8) == 0 &&
            memchr(data + i, '/', end - i) != NULL) {
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

static void fz_values(const char *v)
{
    char err[128];
    long long i;
    uint64_t u;
    int b;

    mk_conf_parse_int(v, 0, 0, &i, err, sizeof(err));
    mk_conf_parse_int(v, -5, 5, &i, err, sizeof(err));
    mk_conf_parse_bool(v, &b, err, sizeof(err));
    mk_conf_parse_size(v, &u, err, sizeof(err));
    mk_conf_parse_time(v, &u, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mk_rconf *conf;
    struct mk_rconf_section *s = NULL;
    struct mk_list *h, *eh;
    struct fz_conf out;
    char err[256];

    if (fz_escapes(data, size)) {
        return 0;
    }
    err[0] = '\0';
    if (chdir(fz_dir) != 0) {
        abort();
    }
    conf = mk_rconf_parse("fuzz.conf", (const char *) data, size, err,
                          sizeof(err));
    if (fchdir(fz_home) != 0) {
        abort();
    }
    if (conf == NULL) {
        /* A failure must always say why, on one line. */
        if (err[0] == '\0' || strchr(err, '\n') != NULL) {
            abort();
        }
        return 0;
    }
    mk_list_foreach(h, &conf->sections) {
        s = mk_list_entry(h, struct mk_rconf_section, _head);
        memset(&out, 0, sizeof(out));
        if (mk_conf_apply(s, fz_keys, &out, err, sizeof(err)) == 0) {
            fz_site_apply(s, &out);
            mk_conf_release(fz_keys, &out);
        }
        else if (out.name != NULL || out.list.count != 0) {
            abort();                  /* a failed apply must clean up */
        }
        mk_list_foreach(eh, &s->entries) {
            struct mk_rconf_entry *e = mk_list_entry(eh, struct mk_rconf_entry,
                                                     _head);
            fz_values(e->value);
        }
        mk_rconf_get(s, "Workers");
    }
    for (s = NULL; (s = mk_rconf_section_next(conf, "server", s)) != NULL;) {
        continue;
    }
    memset(&out, 0, sizeof(out));
    mk_conf_apply(NULL, fz_keys, &out, err, sizeof(err));
    mk_conf_release(fz_keys, &out);
    mk_rconf_destroy(conf);
    return 0;
}
