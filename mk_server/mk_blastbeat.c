/*
 * The BlastBeat .ini reader (spec 8.1), strict where BlastBeat was lenient
 * (spec 10.20): every value is checked when it is read, an unknown option
 * is an error rather than a silently ignored typo, and a configuration
 * BlastBeat would have crashed on is refused. mk_bb_opts is BlastBeat's
 * options: the reader checks against it, the translator
 * (mk_blastbeat_conf.c) writes them as the core or a plugin declares.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <net/if.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "mk_server/mk_blastbeat.h"

#define G MK_BB_GLOBAL
#define V MK_BB_VHOST

/* BlastBeat's options in spec order: the reader lists them in this order
 * in its messages. The core writes its own (section set); every other
 * option is written by the plugins that declare it (mk_blastbeat_plan.c),
 * `needs` only words the refusal when no plugin does. */
const struct mk_bb_opt mk_bb_opts[] = {
    /* key            where multi kind        section   native    default */
    { "bind",              G | V, 1, MK_BB_LISTEN, "SERVER", "Listen", NULL,
      NULL },
    { "uid",               G, 0, MK_BB_USER, "SERVER", "User", "nobody",
      NULL },
    { "gid",               G, 0, MK_BB_GROUP, "SERVER", "Group", "nogroup",
      NULL },
    { "timeout",           G, 0, MK_BB_SECONDS_INT, "SERVER",
      "KeepAliveTimeout", "1800", NULL },
    { "writequeue-buffer", G, 0, MK_BB_BYTES, "SERVER", "WriteQueueLimit",
      "8388608", NULL },
    { "max-headers",       G, 0, MK_BB_COUNT_POS, "SERVER", "MaxHeaders",
      "64", NULL },
    { "alias",             V, 1, MK_BB_WORD, "HOST", NULL, NULL, NULL },
    /* plugins' options          kind           needs */
    { "zmq",        G, 1, MK_BB_ENDPOINT,    NULL, NULL, NULL, "zmq" },
    { "ping-freq",  G, 0, MK_BB_SECONDS,     NULL, NULL, NULL, "zmq" },
    { "stats-freq", G, 0, MK_BB_SECONDS,     NULL, NULL, NULL, "zmq" },
    { "max-hops",   G, 0, MK_BB_COUNT,       NULL, NULL, NULL, "zmq" },
    { "sessions",   G, 0, MK_BB_COUNT_POS,   NULL, NULL, NULL, "zmq" },
    { "node",       V, 1, MK_BB_WORD,        NULL, NULL, NULL, "zmq" },
    { "zmq",        V, 1, MK_BB_ENDPOINT,    NULL, NULL, NULL, "zmq" },
    { "sessions",   V, 0, MK_BB_COUNT,       NULL, NULL, NULL, "zmq" },
    { "timeout",    V, 0, MK_BB_SECONDS_INT, NULL, NULL, NULL, "zmq" },
    { "bind-ssl",   G | V, 1, MK_BB_LISTEN,  NULL, NULL, NULL, "tls" },
    { "certificate", V, 0, MK_BB_PATH,       NULL, NULL, NULL, "tls" },
    { "key",        V, 0, MK_BB_PATH,        NULL, NULL, NULL, "tls" },
    { "memory",     G, 0, MK_BB_BYTES,       NULL, NULL, NULL, "limits" },
    { "cache",      V, 0, MK_BB_MIB,         NULL, NULL, NULL, "cache" },
    { "bandwidth",  V, 0, MK_BB_KBITS,       NULL, NULL, NULL, "bandwidth" },
    { NULL, 0, 0, 0, NULL, NULL, NULL, NULL }
};

#define BB_OPT_COUNT (sizeof(mk_bb_opts) / sizeof(mk_bb_opts[0]) - 1)
#define BB_FILE_MAX (16 * 1024 * 1024)

const struct mk_bb_opt *mk_bb_opt_find(const char *key, unsigned where)
{
    const struct mk_bb_opt *o;

    for (o = mk_bb_opts; o->key; o++) {
        if ((o->where & where) && strcmp(o->key, key) == 0) {
            return o;
        }
    }
    return NULL;
}

/* "known: a, b, c" for the options of one section kind. */
static void bb_known(unsigned where, char *out, size_t outlen)
{
    const struct mk_bb_opt *o;
    size_t n = 0;

    out[0] = '\0';
    for (o = mk_bb_opts; o->key && n < outlen; o++) {
        if ((o->where & where) && mk_bb_opt_find(o->key, where) == o) {
            n += (size_t) snprintf(out + n, outlen - n, "%s%s", n ? ", " : "",
                                   o->key);
        }
    }
}

/* ---- Values --------------------------------------------------------------- */

/* BlastBeat writes IPv6 without brackets ("::1:8080", "fe80::1%eth0:80"):
 * the port follows the last colon. Brackets are accepted too. */
static int bb_listen(const char *v, char *out, size_t outlen, char *err,
                     size_t errlen)
{
    char addr[128], scope[IF_NAMESIZE + 1] = "";
    const char *sp = strpbrk(v, " \t"), *colon, *pct;
    struct in6_addr a6;
    struct in_addr a4;
    long long port, prio;
    size_t alen, hlen = sp ? (size_t) (sp - v) : strlen(v);

    colon = hlen ? memrchr(v, ':', hlen) : NULL;
    if (!colon || colon == v || hlen >= sizeof(addr)) {
        return mk_str_fail(err, errlen, "\"%s\": expected ADDR:PORT [PRIORITY]",
                           v);
    }
    memcpy(addr, colon + 1, hlen - (size_t) (colon - v) - 1);
    addr[hlen - (size_t) (colon - v) - 1] = '\0';
    if (mk_conf_parse_int(addr, 1, 65535, &port, err, errlen) < 0) {
        return mk_str_fail(err, errlen, "\"%s\": port must be 1..65535", v);
    }
    alen = (size_t) (colon - v);
    if (v[0] == '[' && v[alen - 1] == ']') {
        v++;
        alen -= 2;
    }
    memcpy(addr, v, alen);
    addr[alen] = '\0';
    if (sp && mk_conf_parse_int(sp + strspn(sp, " \t"), 0, 1 << 30, &prio,
                                err, errlen) < 0) {
        return mk_str_fail(err, errlen, "\"%s\": PRIORITY must be a whole "
                           "number", v);
    }
    if (inet_pton(AF_INET, addr, &a4) == 1) {
        snprintf(out, outlen, "%s:%lld", addr, port);
        return 0;
    }
    pct = strchr(addr, '%');
    if (pct) {
        snprintf(scope, sizeof(scope), "%s", pct + 1);
        addr[pct - addr] = '\0';
        if (!scope[0] || strlen(pct + 1) > IF_NAMESIZE ||
            !if_nametoindex(scope)) {
            return mk_str_fail(err, errlen, "\"%s\": no network interface "
                               "\"%s\"", v, pct + 1);
        }
    }
    if (inet_pton(AF_INET6, addr, &a6) != 1) {
        return mk_str_fail(err, errlen, "\"%s\": \"%s\" is not a numeric IPv4 "
                           "or IPv6 address", v, addr);
    }
    snprintf(out, outlen, "[%s%s%s]:%lld", addr, scope[0] ? "%" : "", scope,
             port);
    return 0;
}

static int bb_seconds(const char *v, char *out, size_t outlen, char *err,
                      size_t errlen)
{
    char *end;
    double s;

    errno = 0;
    s = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(s)) {
        return mk_str_fail(err, errlen, "\"%s\" is not a number of seconds", v);
    }
    if (s < 0.01 || s > 86400.0 * 365) {
        return mk_str_fail(err, errlen, "\"%s\" must be between 0.01 and "
                           "31536000 seconds", v);
    }
    snprintf(out, outlen, "%lldms", (long long) (s * 1000 + 0.5));
    return 0;
}

static int bb_user(const struct mk_bb_opt *o, const char *v, char *out,
                   size_t outlen, char *err, size_t errlen)
{
    long long id;
    char why[128];
    int numeric = mk_conf_parse_int(v, 0, 0xFFFFFFFFLL, &id, why,
                                    sizeof(why)) == 0;
    const char *name = NULL;

    /* spec 10.20: an unknown name must never leave the server root */
    if (o->kind == MK_BB_USER) {
        struct passwd *pw = numeric ? getpwuid((uid_t) id) : getpwnam(v);
        name = pw ? pw->pw_name : NULL;
    }
    else {
        struct group *gr = numeric ? getgrgid((gid_t) id) : getgrnam(v);
        name = gr ? gr->gr_name : NULL;
    }
    if (!name) {
        return mk_str_fail(err, errlen, "no such %s \"%s\"",
                           o->kind == MK_BB_USER ? "user" : "group", v);
    }
    snprintf(out, outlen, "%s", name);
    return 0;
}

/* `ini` is the .ini's path: relative files are relative to its folder. */
static int bb_path(const char *v, const char *ini, char *out, size_t outlen)
{
    const char *slash = strrchr(ini, '/');
    char dir[4096] = ".", real[4096];

    if (v[0] == '/') {
        snprintf(out, outlen, "%s", v);
        return 0;
    }
    if (slash) {
        snprintf(dir, sizeof(dir), "%.*s", (int) (slash - ini), ini);
    }
    snprintf(out, outlen, "%s/%s", realpath(dir[0] ? dir : "/", real)
                                   ? real : dir, v);
    return 0;
}

int mk_bb_convert(const struct mk_bb_opt *o, const char *v, const char *ini,
                  char *out, size_t outlen, char *err, size_t errlen)
{
    long long n;
    uint64_t u;

    if (!v[0]) {
        return mk_str_fail(err, errlen, "needs a value");
    }
    switch (o->kind) {
    case MK_BB_LISTEN:
        return bb_listen(v, out, outlen, err, errlen);
    case MK_BB_ENDPOINT:
        if (!strstr(v, "://") || strstr(v, "://") == v || strpbrk(v, " \t")) {
            return mk_str_fail(err, errlen, "\"%s\" is not a ZeroMQ endpoint "
                               "(e.g. tcp://127.0.0.1:5000)", v);
        }
        break;
    case MK_BB_WORD:
        if (strpbrk(v, " \t")) {
            return mk_str_fail(err, errlen, "\"%s\": one word expected", v);
        }
        break;
    case MK_BB_SECONDS:
        return bb_seconds(v, out, outlen, err, errlen);
    case MK_BB_SECONDS_INT:
    case MK_BB_COUNT:
    case MK_BB_COUNT_POS:
    case MK_BB_MIB:
    case MK_BB_KBITS:
        if (mk_conf_parse_int(v, o->kind == MK_BB_COUNT_POS ||
                              (o->kind == MK_BB_SECONDS_INT &&
                               (o->where & MK_BB_GLOBAL)) ? 1 : 0,
                              1LL << 31, &n, err, errlen) < 0) {
            return -1;
        }
        snprintf(out, outlen, "%lld%s", n, o->kind == MK_BB_SECONDS_INT ? "s"
                 : o->kind == MK_BB_MIB ? "M" : "");
        return 0;
    case MK_BB_BYTES:
        /* spec 8.2: BlastBeat's source takes bytes, whatever its README
         * says; units make the intent explicit (2000M, 2G) */
        if (mk_conf_parse_size(v, &u, err, errlen) < 0) {
            return -1;
        }
        if (u == 0) {
            return mk_str_fail(err, errlen, "must be more than 0 bytes");
        }
        snprintf(out, outlen, "%llu", (unsigned long long) u);
        return 0;
    case MK_BB_USER:
    case MK_BB_GROUP:
        return bb_user(o, v, out, outlen, err, errlen);
    case MK_BB_PATH:
        return bb_path(v, ini, out, outlen);
    }
    snprintf(out, outlen, "%s", v);
    return 0;
}

/* ---- Sections --------------------------------------------------------- */

static struct mk_bb_section *bb_vhost(struct mk_bb *bb, const char *name,
                                      int line)
{
    struct mk_bb_section *grown;
    size_t i;

    for (i = 0; i < bb->vhost_count; i++) {
        if (strcmp(bb->vhosts[i].name, name) == 0) {
            return &bb->vhosts[i];               /* same NAME: one vhost */
        }
    }
    grown = mk_mem_realloc(bb->vhosts, (bb->vhost_count + 1) * sizeof(*grown));
    if (!grown) {
        return NULL;
    }
    bb->vhosts = grown;
    grown = &bb->vhosts[bb->vhost_count];
    memset(grown, 0, sizeof(*grown));
    grown->name = mk_mem_strdup(name);
    grown->opts = mk_mem_zalloc(BB_OPT_COUNT * sizeof(*grown->opts));
    grown->line = line;
    bb->vhost_count++;
    return grown->name && grown->opts ? grown : NULL;
}

static int bb_store(struct mk_bb_section *s, const struct mk_bb_opt *o,
                    const char *value, int line)
{
    struct mk_bb_values *vs = &s->opts[o - mk_bb_opts];
    struct mk_bb_value *grown;
    char *copy = mk_mem_strdup(value);

    if (!copy) {
        return -1;
    }
    if (!o->multi && vs->count) {
        mk_mem_free(vs->v[0].value);             /* the last value wins */
        vs->v[0].value = copy;
        vs->v[0].line = line;
        return 0;
    }
    grown = mk_mem_realloc(vs->v, (vs->count + 1) * sizeof(*grown));
    if (!grown) {
        mk_mem_free(copy);
        return -1;
    }
    vs->v = grown;
    vs->v[vs->count].value = copy;
    vs->v[vs->count].line = line;
    vs->count++;
    return 0;
}

/* `key = value` in [blastbeat] (vhost NULL) or [blastbeat:vhost]. */
static int bb_entry(struct mk_bb *bb, const char *vhost, int vline, int line,
                    const char *key, const char *value, char *err,
                    size_t errlen)
{
    unsigned where = vhost ? MK_BB_VHOST : MK_BB_GLOBAL;
    const struct mk_bb_opt *o = mk_bb_opt_find(key, where);
    struct mk_bb_section *s = &bb->global;
    char known[512], out[4096], why[512];

    if (!o) {
        bb_known(where, known, sizeof(known));
        if (mk_bb_opt_find(key, where ^ (MK_BB_GLOBAL | MK_BB_VHOST))) {
            return mk_str_fail(err, errlen, "%s:%d: %s: not an option of %s "
                               "(there: %s)", bb->path, line, key,
                               vhost ? "[blastbeat:NAME]" : "[blastbeat]",
                               known);
        }
        return mk_str_fail(err, errlen, "%s:%d: %s: unknown option (%s "
                           "options: %s)", bb->path, line, key,
                           vhost ? "[blastbeat:NAME]" : "[blastbeat]", known);
    }
    if (mk_bb_convert(o, value, bb->path, out, sizeof(out), why,
                      sizeof(why)) < 0) {
        return mk_str_fail(err, errlen, "%s:%d: %s: %s", bb->path, line, key,
                           why);
    }
    if (vhost && !(s = bb_vhost(bb, vhost, vline))) {
        return mk_str_fail(err, errlen, "%s:%d: out of memory", bb->path, line);
    }
    if (bb_store(s, o, value, line) < 0) {
        return mk_str_fail(err, errlen, "%s:%d: out of memory", bb->path, line);
    }
    return 0;
}

/* ---- Lines ------------------------------------------------------------ */

struct bb_reader {
    struct mk_bb *bb;
    int in_bb;                  /* inside [blastbeat] or [blastbeat:NAME] */
    char *vhost;                /* NAME of the open vhost section, or NULL */
    int vline;
    int seen_section;
};

static int bb_header(struct bb_reader *rd, struct mk_ptr p, int line,
                     char *err, size_t errlen)
{
    struct mk_bb *bb = rd->bb;

    if (p.data[p.len - 1] != ']') {
        return mk_str_fail(err, errlen, "%s:%d: unterminated section header",
                           bb->path, line);
    }
    mk_mem_free(rd->vhost);
    rd->vhost = NULL;
    rd->seen_section = 1;
    p = mk_ptr_make(p.data + 1, p.len - 2);
    rd->in_bb = p.len >= 9 && memcmp(p.data, "blastbeat", 9) == 0 &&
                (p.len == 9 || p.data[9] == ':');
    if (!rd->in_bb) {
        return 0;                            /* another program's section */
    }
    if (p.len == 9) {
        if (!bb->global.line) {
            bb->global.line = line;
        }
        return 0;
    }
    if (p.len == 10 || memchr(p.data, ' ', p.len) ||
        memchr(p.data, '\t', p.len)) {
        return mk_str_fail(err, errlen, "%s:%d: [%.*s]: a vhost NAME is one "
                           "host name, optionally with :PORT", bb->path, line,
                           (int) p.len, p.data);
    }
    rd->vhost = mk_mem_alloc(p.len - 9);
    if (!rd->vhost) {
        return mk_str_fail(err, errlen, "%s:%d: out of memory", bb->path, line);
    }
    memcpy(rd->vhost, p.data + 10, p.len - 10);
    rd->vhost[p.len - 10] = '\0';
    rd->vline = line;
    return 0;
}

static int bb_line(struct bb_reader *rd, const char *start, size_t n, int line,
                   char *err, size_t errlen)
{
    struct mk_ptr p = mk_ptr_trim(mk_ptr_make(start, n)), key, value;
    const char *eq;
    char k[256], *v;
    int ret;

    while (p.len && p.data[p.len - 1] == '\r') {
        p = mk_ptr_trim(mk_ptr_make(p.data, p.len - 1));
    }
    if (p.len == 0 || p.data[0] == ';' || p.data[0] == '#') {
        return 0;
    }
    if (memchr(p.data, '\0', p.len)) {
        return mk_str_fail(err, errlen, "%s:%d: NUL byte in line",
                           rd->bb->path, line);
    }
    if (p.data[0] == '[') {
        return bb_header(rd, p, line, err, errlen);
    }
    if (rd->seen_section && !rd->in_bb) {
        return 0;
    }
    eq = memchr(p.data, '=', p.len);
    if (!eq || !rd->seen_section) {
        return mk_str_fail(err, errlen, "%s:%d: expected %s", rd->bb->path,
                           line, rd->seen_section ? "key = value"
                           : "a [blastbeat] or [blastbeat:NAME] section");
    }
    key = mk_ptr_trim(mk_ptr_make(p.data, (size_t) (eq - p.data)));
    value = mk_ptr_trim(mk_ptr_make(eq + 1,
                                    (size_t) (p.data + p.len - (eq + 1))));
    if (key.len == 0 || key.len >= sizeof(k)) {
        return mk_str_fail(err, errlen, "%s:%d: expected key = value",
                           rd->bb->path, line);
    }
    memcpy(k, key.data, key.len);
    k[key.len] = '\0';
    v = mk_mem_alloc(value.len + 1);
    if (!v) {
        return mk_str_fail(err, errlen, "%s:%d: out of memory", rd->bb->path,
                           line);
    }
    memcpy(v, value.data, value.len);
    v[value.len] = '\0';
    ret = bb_entry(rd->bb, rd->vhost, rd->vline, line, k, v, err, errlen);
    mk_mem_free(v);
    return ret;
}

/* ---- Whole-file checks ------------------------------------------------- */

static size_t bb_count(const struct mk_bb *bb, const char *key)
{
    const struct mk_bb_opt *g = mk_bb_opt_find(key, MK_BB_GLOBAL);
    const struct mk_bb_opt *v = mk_bb_opt_find(key, MK_BB_VHOST);
    size_t i, n = g ? bb->global.opts[g - mk_bb_opts].count : 0;

    for (i = 0; v && i < bb->vhost_count; i++) {
        n += bb->vhosts[i].opts[v - mk_bb_opts].count;
    }
    return n;
}

static int bb_check(const struct mk_bb *bb, char *err, size_t errlen)
{
    const struct mk_bb_opt *node = mk_bb_opt_find("node", MK_BB_VHOST);
    const struct mk_bb_opt *vzmq = mk_bb_opt_find("zmq", MK_BB_VHOST);
    const struct mk_bb_opt *gzmq = mk_bb_opt_find("zmq", MK_BB_GLOBAL);
    size_t i;

    if (bb_count(bb, "bind") + bb_count(bb, "bind-ssl") == 0) {
        return mk_str_fail(err, errlen, "%s: no bind or bind-ssl in any "
                           "section: there would be nothing to listen on",
                           bb->path);
    }
    if (bb_count(bb, "zmq") == 0) {
        return mk_str_fail(err, errlen, "%s: no zmq in any section: nodes "
                           "would have no endpoint to connect to", bb->path);
    }
    if (bb->vhost_count == 0) {
        return mk_str_fail(err, errlen, "%s: no [blastbeat:NAME] section: no "
                           "vhost to serve", bb->path);
    }
    /* spec 1.4: BlastBeat crashes at the first ping of an unclaimed node */
    for (i = 0; !bb->global.opts[gzmq - mk_bb_opts].count &&
                i < bb->vhost_count; i++) {
        const struct mk_bb_section *s = &bb->vhosts[i];
        if (s->opts[node - mk_bb_opts].count &&
            !s->opts[vzmq - mk_bb_opts].count) {
            return mk_str_fail(err, errlen, "%s:%d: [blastbeat:%s]: no zmq "
                               "router claims this vhost's nodes: add zmq = "
                               "ENDPOINT here or in [blastbeat]", bb->path,
                               s->line, s->name);
        }
    }
    return 0;
}

/* ---- Public ----------------------------------------------------------- */

struct mk_bb *mk_bb_parse(const char *path, const char *data, size_t len,
                          char *err, size_t errlen)
{
    struct bb_reader rd = { 0 };
    size_t pos = 0;
    int line = 0;

    if (len > BB_FILE_MAX) {
        mk_str_fail(err, errlen, "%s: larger than 16 MiB", path);
        return NULL;
    }
    rd.bb = mk_mem_zalloc(sizeof(*rd.bb));
    if (!rd.bb || !(rd.bb->path = mk_mem_strdup(path)) ||
        !(rd.bb->global.opts = mk_mem_zalloc(BB_OPT_COUNT *
                                             sizeof(*rd.bb->global.opts)))) {
        mk_str_fail(err, errlen, "%s: out of memory", path);
        goto error;
    }
    while (pos < len) {
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t) (nl - start) : len - pos;

        pos += n + (nl != NULL);
        line++;
        if (bb_line(&rd, start, n, line, err, errlen) < 0) {
            goto error;
        }
    }
    if (bb_check(rd.bb, err, errlen) < 0) {
        goto error;
    }
    mk_mem_free(rd.vhost);
    return rd.bb;

error:
    mk_mem_free(rd.vhost);
    mk_bb_destroy(rd.bb);
    return NULL;
}

static void bb_section_release(struct mk_bb_section *s)
{
    size_t i, k;

    for (i = 0; s->opts && i < BB_OPT_COUNT; i++) {
        for (k = 0; k < s->opts[i].count; k++) {
            mk_mem_free(s->opts[i].v[k].value);
        }
        mk_mem_free(s->opts[i].v);
    }
    mk_mem_free(s->opts);
    mk_mem_free(s->name);
}

void mk_bb_destroy(struct mk_bb *bb)
{
    size_t i;

    if (!bb) {
        return;
    }
    bb_section_release(&bb->global);
    for (i = 0; i < bb->vhost_count; i++) {
        bb_section_release(&bb->vhosts[i]);
    }
    mk_mem_free(bb->vhosts);
    mk_mem_free(bb->path);
    mk_mem_free(bb);
}
