#ifndef MK_SERVER_SERVER_H
#define MK_SERVER_SERVER_H

/*
 * Private to mk_server: one configuration generation ("struct mk_server"),
 * its virtual hosts, plugins and listeners. A generation is immutable once
 * its workers run; SIGHUP builds a new one and the old one is freed when
 * its last worker has drained (mk_master.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "mk_core/mk_hash.h"
#include "mk_core/mk_rconf.h"
#include "mk_server/mk_http_parser.h"
#include "mk_server/mk_plugin.h"
#include "mk_server/mk_static.h"

enum mk_sched_mode {
    MK_SCHED_REUSEPORT = 0,
    MK_SCHED_FAIR = 1,
};

/* [SERVER] */
struct mk_server_conf {
    struct mk_conf_list listen;
    long long workers;
    int scheduler;
    char *user;
    char *group;
    char *pid_file;
    char *error_log;
    int log_level_index;            /* enum mk_log_level */
    int hide_version;
    int keepalive;
    uint64_t keepalive_timeout;
    long long keepalive_max;
    uint64_t header_timeout;
    uint64_t body_timeout;
    uint64_t send_timeout;
    uint64_t max_request_line;
    uint64_t max_request_head;
    long long max_headers;
    uint64_t max_request_body;
    uint64_t max_discard_body;
    uint64_t write_queue_limit;
    uint64_t drain_timeout;
    uint64_t reload_drain_timeout;
    char *mime_types;
    char *index_files;
    char *plugin_dir;
};

/* One `Listen` line. */
struct mk_listen {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[80];                    /* "127.0.0.1:2001" as configured */
    char *layer;                      /* network plugin name */
    const struct mk_net_io *io;
    const struct mk_proto *proto;     /* spoken first on its connections */
    char *proto_name;                 /* protocol=NAME, default "http/1.1" */
    int *fds;                         /* one per slot (worker or acceptor) */
    int slots;
    int reserved;                     /* named by some site's [HOST] Listen */
    /* Host-less or unknown-Host requests here; NULL: no site is served on
     * this listener (every request is misdirected, 421) */
    struct mk_vhost *default_vhost;
};

struct mk_plugin_inst {
    const struct mk_plugin *p;
    void *conf;                       /* conf_size bytes, or NULL */
    int index;                        /* position in mk_server.plugins */
};

/* A node message type and the plugin that handles it (mk_msg_types.c). */
struct mk_msg_entry {
    const struct mk_msg_type *type;
    struct mk_plugin_inst *plugin;
};

struct mk_location {
    char *prefix;
    size_t len;
    int handler;                      /* plugin index, or -1 = static */
};

struct mk_error_page {
    int status;
    char *body;                       /* file content, read at load */
    size_t len;
    const char *type;
};

struct mk_vhost {
    char **names;                     /* as written; names[0] keeps its :port */
    size_t name_count;
    /* [HOST] Listen: per mk_server.listens index, 1 if this site is served
     * there; NULL: served on every listener no site reserved */
    unsigned char *on_listen;
    int is_default;
    struct mk_static_root root;
    int handler;                      /* plugin index, or -1 = static */
    struct mk_location *locations;    /* longest prefix first */
    size_t location_count;
    struct mk_error_page *error_pages;
    size_t error_page_count;
    /* per plugin index: the [NAME] sections of this site, parsed */
    void ***plugin_confs;
    size_t *plugin_conf_counts;
    const char *file;
    struct mk_server *srv;
};

struct mk_worker;

struct mk_server {
    atomic_int refs;
    struct mk_server_conf conf;
    char *conf_path;
    char *conf_dir;
    struct mk_rconf **rconfs;         /* kept: lists point at their names */
    size_t rconf_count;

    struct mk_plugin_inst *plugins;
    size_t plugin_count;
    /* stage lists: plugins that bind each stage, in load order */
    struct mk_plugin_inst **on_accept, **on_request, **on_done, **on_close;
    size_t n_accept, n_request, n_done, n_close;
    struct mk_msg_entry *msg_types;   /* node message types, by plugin */
    size_t msg_type_count;
    struct mk_proto_entry *protos;    /* protocol registry, load order */
    size_t proto_count;
    const char **alpn_ids;            /* preference order, NULL-ended */
    const struct mk_filter **filters; /* declared filters, run order */
    size_t filter_count;

    struct mk_vhost **vhosts;
    size_t vhost_count;
    struct mk_vhost *default_vhost;
    struct mk_hash *vhost_names;      /* exact names */
    struct mk_listen *listens;
    size_t listen_count;

    struct mk_static_conf static_conf;
    struct mk_http_limits limits;

    int worker_count;
    struct mk_worker *workers;
    pthread_t acceptor;
    int has_acceptor;
    struct mk_event_loop *acceptor_loop;
    void *acceptor_listeners;
    atomic_int acceptor_stop;
    atomic_int acceptor_exited;
    int started;
};

/* mk_config.c: builds a generation from the files. Overrides from the
 * command line replace Listen (when n_listen > 0) and Workers (>= 0). */
struct mk_overrides {
    const char **listen;
    size_t n_listen;
    long long workers;                /* -1: keep the config's */
};
struct mk_server *mk_server_load(const char *conf_path,
                                 const struct mk_overrides *ov,
                                 char *err, size_t errlen);
void mk_server_destroy(struct mk_server *srv);
/* mk_vhost.c */
int  mk_vhosts_load(struct mk_server *srv, char *err, size_t errlen);
void mk_vhost_destroy(struct mk_server *srv, struct mk_vhost *vh);
int  mk_server_keep_rconf(struct mk_server *srv, struct mk_rconf *rc);
/* Length of a ServerName without its `:PORT` suffix: requests are matched
 * on the Host without its port; the port stays in the name for
 * mk_vhost_name() (the zmq plugin's SERVER_PORT). */
size_t mk_vhost_host_len(const char *name);
/* The site for Host `host` (the port already stripped; NULL: no Host) on
 * listener `l`: an exact name, a `*.suffix` name, else the listener's
 * default. NULL when that site is not served on `l` (answer 421). */
struct mk_vhost *mk_server_vhost_lookup(struct mk_server *srv,
                                        const struct mk_listen *l,
                                        const char *host, size_t len);
const struct mk_location *mk_vhost_location(const struct mk_vhost *vh,
                                            const char *path);

/* A registered protocol and the plugin that declared it (NULL: core). */
struct mk_proto_entry {
    const struct mk_proto_decl *decl;
    const struct mk_plugin_inst *plugin;
};

/* mk_proto_registry.c: the protocol table of the core and the loaded
 * plugins, then each listener's first protocol (by its name). */
int  mk_proto_registry_build(struct mk_server *srv, char *err, size_t errlen);
void mk_proto_registry_release(struct mk_server *srv);
const struct mk_proto_decl *mk_proto_find(const struct mk_server *srv,
                                          const char *name);

/* mk_filter.c: the declared filters in run order. */
int  mk_filters_build(struct mk_server *srv, char *err, size_t errlen);
/* The entry points of the write paths, taken only when a chain is
 * attached (c->filters, r->hooks.filters): each does what the function
 * it stands in for would do, through the filters. */
struct mk_filter_chain;
int  mk_filter_conn_write(struct mk_conn *c, const void *data, size_t len,
                          int flags);
int  mk_filter_conn_write_file(struct mk_conn *c, int fd, off_t offset,
                               size_t len, int close_fd);
int  mk_filter_conn_write_shared(struct mk_conn *c, struct mk_shared_buf *sb);
/* The connection's filters (c->filters is set) still hold bytes: the
 * queue is not drained. */
int  mk_filter_conn_holding(const struct mk_conn *c);
int  mk_filter_stream_write(struct mk_stream *r, const void *data, size_t len,
                            int flags);
int  mk_filter_stream_sendfile(struct mk_stream *r, int fd, off_t offset,
                               size_t len, int close_fd);
int  mk_filter_stream_end(struct mk_stream *r);
/* Frees held pieces and detaches every filter (the chain pointer is
 * cleared). */
void mk_filter_chain_destroy(struct mk_filter_chain **chain);

/* mk_stream_hooks.c: a stream's hook state (filters, accounting),
 * embedded in struct mk_stream. init when the stream is taken from the
 * pool; open once its head and site are known (-1: refused and
 * answered: run no stages); close when it is freed. */
struct mk_stream_hooks {
    struct mk_filter_chain *filters;
    int admitted;                     /* every on_stream_open said yes */
};
void mk_stream_hooks_init(struct mk_stream *r);
int  mk_stream_hooks_open(struct mk_stream *r);
void mk_stream_hooks_close(struct mk_stream *r);

/* mk_msg_types.c: the node message types of the loaded plugins */
int  mk_msg_types_build(struct mk_server *srv, char *err, size_t errlen);

/* mk_plugin_loader.c; main() registers the NULL-terminated built-in table */
void mk_plugin_set_builtins(const struct mk_plugin *const *table);
const struct mk_plugin *mk_plugin_find(const char *name_or_path,
                                       const char *plugin_dir,
                                       char *err, size_t errlen);
/* Calls fn for every plugin mk_plugin_find can find: the built-ins in
 * table order, then each tremolo-NAME.so of plugin_dir (sorted by name)
 * that is not built in; a shared object that does not load is skipped (it
 * stays loaded, as mk_plugin_find leaves it). Returns fn's first non-zero
 * result, which ends the walk, or 0. */
int  mk_plugin_foreach(const char *plugin_dir,
                       int (*fn)(const struct mk_plugin *p, void *data),
                       void *data);
int  mk_plugins_init(struct mk_server *srv, char *err, size_t errlen);
void mk_plugins_exit(struct mk_server *srv);
void mk_plugins_reopen(struct mk_server *srv);

/* mk_listener.c: opens (or takes over from `prev`) every listening socket
 * of srv. Sockets of prev that srv does not use are closed by
 * mk_listeners_close_unused when prev is freed; on failure the caller runs
 * mk_listeners_close_unused(srv, prev) to close what srv opened. */
int  mk_listeners_open(struct mk_server *srv, struct mk_server *prev,
                       char *err, size_t errlen);
/* Closes old's sockets that cur does not use (cur may be NULL: all). */
void mk_listeners_close_unused(struct mk_server *old, struct mk_server *cur);
/* cur started: sockets it shares with old now belong to cur alone. */
void mk_listeners_commit(struct mk_server *cur, struct mk_server *old);
void mk_listeners_log_features(void);
int  mk_listener_reuseport_available(void);
int  mk_listen_parse(const char *value, struct mk_listen *out,
                     char *err, size_t errlen);

/* mk_worker.c */
int  mk_workers_start(struct mk_server *srv, char *err, size_t errlen);
/* Graceful: stop accepting, finish in-flight requests, close within
 * `deadline_ms` (0: no deadline). Fast: close everything now. */
void mk_workers_drain(struct mk_server *srv, uint64_t deadline_ms);
void mk_workers_stop_now(struct mk_server *srv);
int  mk_workers_left_listeners(struct mk_server *srv);
/* True once every worker thread of srv has exited (then joined). */
int  mk_workers_done(struct mk_server *srv);
void mk_workers_join(struct mk_server *srv);

/* mk_path.c: percent-decodes and removes dot segments. Returns the length
 * written to out (NUL-terminated), or -1 for an invalid path (bad escape,
 * NUL byte, climbing above the root). */
long mk_path_clean(const char *path, size_t len, char *out, size_t outlen);

#endif
