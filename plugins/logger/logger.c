/*
 * logger: the access log, written at stage 40 (on_done).
 *
 *     [LOGGER]                       (logger.conf, and per site file)
 *         AccessLog logs/access.log  # PATH, "-" (stdout) or "off"
 *         Format    combined         # combined | json
 *
 * Each line is one write(2) on an O_APPEND descriptor, so lines from many
 * workers never interleave in a file. Files are opened by the master in
 * `init` and reopened on SIGUSR1 (`on_reopen`) for log rotation.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_rconf.h"
#include "mk_server/mk_plugin.h"
#include "plugins/logger/logger.h"

/* An open access log. `fd` never changes once opened (see
 * logger_file_reopen), so workers read it without synchronisation. */
struct logger_file {
    int fd;
    int is_open;                 /* we own fd (not stdout) */
    int write_failed;            /* warned already; reset on reopen */
    char path[4096];
};

struct logger_conf {
    char *access_log;
    int format;
    struct logger_file file;
};

/* A site's [LOGGER]: NULL AccessLog / format 0 inherit the global one. */
struct logger_vconf {
    char *access_log;
    int format;
    struct logger_file file;
};

extern const struct mk_plugin mk_plugin_logger;

static int logger_parse_format(const char *value, void *field,
                               char *err, size_t errlen)
{
    int *format = field;

    if (strcmp(value, "combined") == 0)
        *format = LOGGER_FORMAT_COMBINED;
    else if (strcmp(value, "json") == 0)
        *format = LOGGER_FORMAT_JSON;
    else {
        mk_str_printf(err, errlen, "\"%s\": expected combined or json", value);
        return -1;
    }
    return 0;
}

static const struct mk_conf_key logger_keys[] = {
    MK_CONF_STR("AccessLog", struct logger_conf, access_log, "off"),
    MK_CONF_CUSTOM("Format", struct logger_conf, format, "combined",
                   logger_parse_format, 0),
    MK_CONF_END
};

static const struct mk_conf_key logger_vhost_keys[] = {
    MK_CONF_STR("AccessLog", struct logger_vconf, access_log, NULL),
    MK_CONF_CUSTOM("Format", struct logger_vconf, format, NULL,
                   logger_parse_format, 0),
    MK_CONF_END
};

static int logger_is_off(const char *path)
{
    return !path || path[0] == '\0' || strcmp(path, "off") == 0;
}

static int logger_file_open(struct logger_file *f, const char *path,
                            struct mk_server *srv)
{
    f->fd = -1;
    f->is_open = 0;
    f->write_failed = 0;
    if (strcmp(path, "-") == 0) {
        f->fd = STDOUT_FILENO;
        return 0;
    }
    mk_server_path(srv, path, f->path, sizeof(f->path));
    f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (f->fd < 0) {
        mk_err("logger: %s: cannot open access log: %s", f->path,
               strerror(errno));
        return -1;
    }
    f->is_open = 1;
    return 0;
}

/*
 * Rotation while workers write: the new file is opened on a spare fd and
 * dup'ed over the old fd NUMBER. dup2/dup3 swap the file behind the number
 * atomically; a write(2) already running keeps its reference to the old
 * file and completes there, later writes go to the new one. So the number
 * workers hold never dangles and is never reused by an unrelated open(),
 * with no grace period, no leaked descriptor and no lock on the hot path.
 */
static void logger_file_reopen(struct logger_file *f)
{
    int fd;

    if (!f->is_open)
        return;
    fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        mk_err("logger: %s: cannot reopen access log (still writing to the "
               "old file): %s", f->path, strerror(errno));
        return;
    }
#ifdef __linux__
    if (dup3(fd, f->fd, O_CLOEXEC) < 0)
#else
    if (dup2(fd, f->fd) < 0 || fcntl(f->fd, F_SETFD, FD_CLOEXEC) < 0)
#endif
        mk_err("logger: %s: cannot reopen access log: %s", f->path,
               strerror(errno));
    close(fd);
    __atomic_store_n(&f->write_failed, 0, __ATOMIC_RELAXED);
}

static void logger_file_close(struct logger_file *f)
{
    if (f->is_open)
        close(f->fd);
    f->is_open = 0;
    f->fd = -1;
}

static void logger_file_write(struct logger_file *f, const char *line,
                              size_t len)
{
    ssize_t n;

    do {
        n = write(f->fd, line, len);
    } while (n < 0 && errno == EINTR);
    /* A short write is not retried: a second write could land after
     * another worker's line. Warn once per file, not once per request. */
    if ((n < 0 || (size_t) n != len) &&
        !__atomic_exchange_n(&f->write_failed, 1, __ATOMIC_RELAXED))
        mk_err("logger: %s: write failed: %s",
               f->is_open ? f->path : "stdout",
               n < 0 ? strerror(errno) : "short write");
}

/* The site's first [LOGGER] section, or NULL. */
static struct logger_vconf *logger_vhost_conf(const struct mk_vhost *vh)
{
    size_t count = 0;
    void **confs;

    if (!vh)
        return NULL;
    confs = mk_vhost_plugin_confs(vh, &mk_plugin_logger, &count);
    return confs && count > 0 ? confs[0] : NULL;
}

static int logger_init(void *conf, struct mk_server *srv)
{
    struct logger_conf *lc = conf;
    struct mk_vhost *vh = NULL;
    struct logger_vconf *vc;

    lc->file.fd = -1;
    if (!logger_is_off(lc->access_log) &&
        logger_file_open(&lc->file, lc->access_log, srv) < 0)
        return -1;
    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        vc = logger_vhost_conf(vh);
        if (!vc)
            continue;
        vc->file.fd = -1;
        if (vc->access_log && !logger_is_off(vc->access_log) &&
            logger_file_open(&vc->file, vc->access_log, srv) < 0)
            return -1;     /* files opened so far close in conf_release */
    }
    return 0;
}

static void logger_on_reopen(void *conf, struct mk_server *srv)
{
    struct logger_conf *lc = conf;
    struct mk_vhost *vh = NULL;
    struct logger_vconf *vc;

    logger_file_reopen(&lc->file);
    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        vc = logger_vhost_conf(vh);
        if (vc)
            logger_file_reopen(&vc->file);
    }
}

static void logger_exit(void *conf, struct mk_server *srv)
{
    struct logger_conf *lc = conf;
    struct mk_vhost *vh = NULL;
    struct logger_vconf *vc;

    logger_file_close(&lc->file);
    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        vc = logger_vhost_conf(vh);
        if (vc)
            logger_file_close(&vc->file);
    }
}

/* Also reached when init failed half-way and exit never ran. */
static void logger_conf_release(void *conf)
{
    logger_file_close(&((struct logger_conf *) conf)->file);
}

static void logger_vhost_release(void *vconf)
{
    logger_file_close(&((struct logger_vconf *) vconf)->file);
}

/*
 * remote_user is the name from the Basic credentials, but only when the
 * response is not a 401: the auth plugin answers 401 to unknown users and
 * wrong passwords, so any other status means the credentials were either
 * accepted or not required. The password is never decoded.
 */
static void logger_entry_fill(struct logger_entry *e, struct mk_stream *r,
                              char *user, size_t userlen)
{
    const struct mk_http_request_head *head = mk_request_head(r);
    const char *buf = mk_request_buf(r);
    size_t ulen;

    memset(e, 0, sizeof(*e));
    e->time = mk_clock_unix();
    e->remote_addr = mk_conn_peer_str(mk_request_conn(r));
    e->status = mk_response_get_status(r);
    e->bytes = mk_response_bytes(r);
    e->request_time_ms = mk_clock_monotonic_ms() - mk_request_start_ms(r);
    if (!head || !buf)
        return;
    e->method = mk_http_span_ptr(buf, head->method_name);
    e->target = mk_http_span_ptr(buf, head->target);
    e->protocol = mk_request_protocol(r);
    e->referer = mk_request_header(r, "Referer");
    e->user_agent = mk_request_header(r, "User-Agent");
    e->host = mk_request_header(r, "Host");
    if (e->status != 401) {
        ulen = logger_basic_user(mk_request_header(r, "Authorization"),
                                 user, userlen);
        e->user = mk_ptr_make(user, ulen);
    }
}

static void logger_on_done(void *conf, struct mk_stream *r)
{
    struct logger_conf *lc = conf;
    struct logger_vconf *vc = logger_vhost_conf(mk_request_vhost(r));
    struct logger_file *file = &lc->file;
    int format = lc->format;
    struct logger_entry e;
    char user[256];
    char line[LOGGER_LINE_MAX];
    size_t len;

    if (vc && vc->access_log)
        file = &vc->file;
    if (vc && vc->format != LOGGER_FORMAT_INHERIT)
        format = vc->format;
    if (file->fd < 0)
        return;
    logger_entry_fill(&e, r, user, sizeof(user));
    if (format == LOGGER_FORMAT_JSON)
        len = logger_format_json(&e, line);
    else
        len = logger_format_combined(&e, line);
    logger_file_write(file, line, len);
}

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_logger = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "logger",
    .description     = "access log (combined or JSON lines)",
    .conf_keys       = logger_keys,
    .conf_size       = sizeof(struct logger_conf),
    .conf_release    = logger_conf_release,
    .vhost_keys      = logger_vhost_keys,
    .vhost_conf_size = sizeof(struct logger_vconf),
    .vhost_release   = logger_vhost_release,
    .init            = logger_init,
    .exit            = logger_exit,
    .on_reopen       = logger_on_reopen,
    .on_done         = logger_on_done,
};
