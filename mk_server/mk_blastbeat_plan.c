/*
 * tremolo -b: who writes each BlastBeat option. The core writes its own
 * options (mk_bb_opts rows with a section); every other option is written
 * by the plugins that declare it in their descriptor (bb_ini), found by
 * walking every plugin the loader can find. mk_server names none of them:
 * a plugin that is built translates its options, one that is not leaves
 * them refused.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "mk_server/mk_blastbeat.h"

static size_t bb_opt_count(void)
{
    size_t n = 0;

    while (mk_bb_opts[n].key) {
        n++;
    }
    return n;
}

/* mk_plugin_foreach: collects the plugins that declare bb_ini, and the
 * network layer of plain sockets. */
static int bb_plan_collect(const struct mk_plugin *p, void *data)
{
    struct mk_bb_plan *plan = data;
    const struct mk_plugin **grown;

    if ((p->flags & MK_PLUGIN_NETWORK_PLAIN) && !plan->plain_io) {
        plan->plain_io = p;
    }
    if (!p->bb_ini) {
        return 0;
    }
    grown = mk_mem_realloc(plan->plugins,
                           (plan->nplugins + 1) * sizeof(*grown));
    if (!grown) {
        return -1;
    }
    plan->plugins = grown;
    plan->plugins[plan->nplugins++] = p;
    return 0;
}

/* The rank of a plugin: its first option in mk_bb_opts order, so that the
 * plugins' sections come in the same order whether they are built in or
 * found as shared objects. Checks its declarations on the way. */
static int bb_plan_rank(const struct mk_plugin *p, size_t *rank, char *err,
                        size_t errlen)
{
    const struct mk_bb_key *k;
    const struct mk_bb_opt *o;
    unsigned w;

    *rank = bb_opt_count();
    for (k = p->bb_ini->keys; k && k->key; k++) {
        for (w = MK_BB_GLOBAL; w <= MK_BB_VHOST; w <<= 1) {
            if (!(k->where & w)) {
                continue;
            }
            o = mk_bb_opt_find(k->key, w);
            if (!o || (!k->native) != (o->kind == MK_BB_LISTEN)) {
                return mk_str_fail(err, errlen, "plugin %s: bb_ini: %s in %s: "
                                   "%s", p->name, k->key, w == MK_BB_GLOBAL
                                   ? "[blastbeat]" : "[blastbeat:NAME]",
                                   !o ? "BlastBeat has no such option there"
                                   : "only an address option has no native "
                                   "key");
            }
            if ((size_t) (o - mk_bb_opts) < *rank) {
                *rank = (size_t) (o - mk_bb_opts);
            }
        }
    }
    return 0;
}

/* Orders plan->plugins by rank (stable: the walk's order among equals). */
static int bb_plan_sort(struct mk_bb_plan *plan, char *err, size_t errlen)
{
    size_t *rank = mk_mem_zalloc((plan->nplugins + 1) * sizeof(*rank));
    size_t i, j, r;
    const struct mk_plugin *p;

    if (!rank) {
        return mk_str_fail(err, errlen, "out of memory");
    }
    for (i = 0; i < plan->nplugins; i++) {
        if (bb_plan_rank(plan->plugins[i], &r, err, errlen) < 0) {
            mk_mem_free(rank);
            return -1;
        }
        p = plan->plugins[i];
        for (j = i; j > 0 && rank[j - 1] > r; j--) {
            rank[j] = rank[j - 1];
            plan->plugins[j] = plan->plugins[j - 1];
        }
        rank[j] = r;
        plan->plugins[j] = p;
    }
    mk_mem_free(rank);
    return 0;
}

static struct mk_bb_row *bb_plan_add(struct mk_bb_plan *plan,
                                     const struct mk_bb_opt *o, unsigned where)
{
    struct mk_bb_row *r = &plan->rows[plan->nrows++];

    memset(r, 0, sizeof(*r));
    r->opt = o;
    r->where = where;
    return r;
}

/* Plugin i's rows: one per declared option and section kind. */
static void bb_plan_plugin_rows(struct mk_bb_plan *plan, size_t i)
{
    const struct mk_plugin *p = plan->plugins[i];
    const struct mk_bb_key *k;
    struct mk_bb_row *r;
    unsigned w;
    size_t c;

    for (c = 0; p->name[c] && c + 1 < sizeof(plan->sections[i]); c++) {
        plan->sections[i][c] = (char) toupper((unsigned char) p->name[c]);
    }
    plan->sections[i][c] = '\0';
    for (k = p->bb_ini->keys; k && k->key; k++) {
        for (w = MK_BB_GLOBAL; w <= MK_BB_VHOST; w <<= 1) {
            if (k->where & w) {
                r = bb_plan_add(plan, mk_bb_opt_find(k->key, w), w);
                r->plugin = p;
                r->section = plan->sections[i];
                r->native = k->native;
                r->def = k->def;
                r->flags = k->flags;
            }
        }
    }
}

/* The rows: the core's, each plugin's, then what nobody writes. */
static int bb_plan_rows(struct mk_bb_plan *plan, char *err, size_t errlen)
{
    const struct mk_bb_opt *o;
    const struct mk_bb_key *k;
    struct mk_bb_row *r;
    size_t i, n = 2 * bb_opt_count();
    unsigned w;

    for (i = 0; i < plan->nplugins; i++) {
        for (k = plan->plugins[i]->bb_ini->keys; k && k->key; k++) {
            n += 2;
        }
    }
    plan->rows = mk_mem_alloc(n * sizeof(*plan->rows));
    plan->sections = mk_mem_alloc((plan->nplugins + 1) *
                                  sizeof(*plan->sections));
    if (!plan->rows || !plan->sections) {
        return mk_str_fail(err, errlen, "out of memory");
    }
    for (o = mk_bb_opts; o->key; o++) {
        if (o->section) {
            r = bb_plan_add(plan, o, o->where);
            r->section = o->section;
            r->native = o->native;
            r->def = o->def;
        }
    }
    for (i = 0; i < plan->nplugins; i++) {
        bb_plan_plugin_rows(plan, i);
    }
    for (o = mk_bb_opts; o->key; o++) {
        for (w = MK_BB_GLOBAL; w <= MK_BB_VHOST; w <<= 1) {
            if ((o->where & w) && !mk_bb_plan_row(plan, o, w)) {
                bb_plan_add(plan, o, w);
            }
        }
    }
    return 0;
}

int mk_bb_plan_init(struct mk_bb_plan *plan, const char *plugin_dir,
                    char *err, size_t errlen)
{
    size_t i;
    unsigned f;

    memset(plan, 0, sizeof(*plan));
    if (mk_plugin_foreach(plugin_dir, bb_plan_collect, plan) < 0) {
        mk_str_fail(err, errlen, "out of memory");
        goto error;
    }
    if (bb_plan_sort(plan, err, errlen) < 0 ||
        bb_plan_rows(plan, err, errlen) < 0) {
        goto error;
    }
    for (i = 0; i < plan->nplugins; i++) {
        f = plan->plugins[i]->bb_ini->flags;
        if ((f & MK_BB_HANDLER) && !plan->handler) {
            plan->handler = plan->plugins[i];
        }
    }
    return 0;

error:
    mk_bb_plan_release(plan);
    return -1;
}

void mk_bb_plan_release(struct mk_bb_plan *plan)
{
    mk_mem_free(plan->rows);
    mk_mem_free(plan->sections);
    mk_mem_free(plan->plugins);
    memset(plan, 0, sizeof(*plan));
}

const struct mk_bb_row *mk_bb_plan_row(const struct mk_bb_plan *plan,
                                       const struct mk_bb_opt *o,
                                       unsigned where)
{
    size_t i;

    for (i = 0; i < plan->nrows; i++) {
        if (plan->rows[i].opt == o && (plan->rows[i].where & where)) {
            return &plan->rows[i];
        }
    }
    return NULL;
}
