/* greet, the example of docs/plugin-api.md (shown there whole, built and
 * run by the tests only): stage 30 answers the Greeting, upper-cased by a
 * stream filter where Shout is on; stage 40 logs every finished response. */
#include <ctype.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_plugin.h"

struct greet_conf { char *greeting; int shout; };
struct greet_site { int shout; };

static const struct mk_conf_key greet_keys[] = {
    MK_CONF_STR("Greeting", struct greet_conf, greeting, "hello"),
    MK_CONF_BOOL("Shout", struct greet_conf, shout, "off"), MK_CONF_END
};
static const struct mk_conf_key greet_site_keys[] = {   /* [GREET] of a site */
    MK_CONF_INHERIT("Shout", struct greet_site, shout), MK_CONF_END
};

/* Sees greet_content's pieces only: MK_WRITE_COPY memory, then the end. */
static int greet_shout(struct mk_filter_link *l, struct mk_piece *p)
{
    char *up;

    if (p->type == MK_PIECE_MEM) {
        if (!(up = mk_mem_alloc(p->len + 1))) {
            return -1;                      /* fails the connection */
        }
        for (size_t i = 0; i < p->len; i++) {
            up[i] = (char) toupper(((const unsigned char *) p->data)[i]);
        }
        p->data = up;
        p->flags = MK_WRITE_FREE;           /* the core frees it once sent */
    }
    return mk_filter_pass(l, p);
}

static const struct mk_filter greet_filters[] = {
    { "greet-shout", 50, greet_shout, NULL }, { NULL, 0, NULL, NULL }
};

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_greet;

static int greet_content(void *conf, struct mk_stream *r)
{
    struct greet_conf *gc = conf;
    size_t n, len = strlen(gc->greeting);
    void **site = mk_vhost_plugin_confs(mk_request_vhost(r),
                                        &mk_plugin_greet, &n);

    if ((n ? ((struct greet_site *) site[0])->shout : gc->shout) &&
        mk_stream_filter_attach(r, &greet_filters[0], NULL) < 0) {
        return MK_STAGE_CLOSE;
    }
    mk_response_status(r, 200);
    mk_response_header(r, "Content-Type", "text/plain");
    mk_response_content_length(r, (int64_t) len);
    mk_response_write(r, gc->greeting, len, MK_WRITE_COPY);
    mk_response_end(r);                     /* r may be gone from here on */
    return MK_STAGE_HANDLED;
}

static void greet_done(void *conf, struct mk_stream *r)  /* every response */
{
    struct mk_ptr path = mk_request_path(r);

    mk_info("greet: %.*s %d %llu bytes%s", (int) path.len, path.data,
            mk_response_get_status(r),
            (unsigned long long) mk_response_bytes(r),
            mk_response_ended(r) ? "" : ", failed");
}

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_greet = {
    .abi = MK_PLUGIN_ABI, .name = "greet", .filters = greet_filters,
    .conf_keys = greet_keys, .conf_size = sizeof(struct greet_conf),
    .vhost_keys = greet_site_keys,
    .vhost_conf_size = sizeof(struct greet_site),
    .on_content = greet_content, .on_done = greet_done,
};
