/*
 * The master thread: after start-up it only handles signals.
 *   HUP       reload: build a new generation (config, plugins, workers) on
 *             the same listening sockets; the old workers drain and exit.
 *             A config error keeps the running generation.
 *   TERM/INT  graceful stop: stop accepting, finish in-flight requests,
 *             exit within DrainTimeout.
 *   QUIT      fast stop.
 *   USR1      reopen log files.
 * Signals are blocked in every thread and taken here with sigtimedwait, so
 * no handler runs in async-signal context.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_core/mk_clock.h"
#include "mk_core/mk_event.h"
#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_server/mk_blastbeat.h"
#include "mk_server/mk_master.h"
#include "mk_server/mk_server.h"

#define MK_MAX_OLD_GENERATIONS 16

struct master {
    struct mk_server *cur;
    struct mk_server *old[MK_MAX_OLD_GENERATIONS];
    size_t n_old;
    const struct mk_overrides *ov;
    const char *bb_ini;               /* -b: re-translated at each reload */
    char pid_file[4096];
};

/* One configuration path: a BlastBeat .ini is translated into native
 * files and read by mk_server_load like any other. */
static struct mk_server *master_load(const char *conf_path, const char *bb_ini,
                                     const struct mk_overrides *ov,
                                     char *err, size_t errlen)
{
    if (bb_ini) {
        return mk_bb_server_load(bb_ini, ov, err, errlen);
    }
    return mk_server_load(conf_path, ov, err, errlen);
}

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            mk_warn("cannot raise the open-files limit: %s", strerror(errno));
        }
    }
}

static int open_error_log(struct mk_server *srv)
{
    char path[4096];
    const char *p = srv->conf.error_log;

    mk_log_set_level((enum mk_log_level) srv->conf.log_level_index);
    if (!p[0] || strcmp(p, "-") == 0) {
        return mk_log_open(NULL);
    }
    if (mk_log_open(mk_server_path(srv, p, path, sizeof(path))) < 0) {
        fprintf(stderr, "tremolo: ErrorLog %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* User and Group: the group is User's own unless Group names another; a
 * Group alone replaces every group but keeps the user. Unknown names are
 * errors: Tremolo never silently stays root. */
static int drop_privileges(const char *user, const char *group)
{
    struct passwd *pw = NULL;
    struct group *gr = NULL;
    gid_t gid;

    if (!user[0] && !group[0]) {
        return 0;
    }
    if (geteuid() != 0) {
        mk_warn("User/Group %s%s%s ignored: not started as root", user,
                user[0] && group[0] ? ":" : "", group);
        return 0;
    }
    if (user[0] && !(pw = getpwnam(user))) {
        mk_err("User %s: no such user", user);
        return -1;
    }
    if (group[0] && !(gr = getgrnam(group))) {
        mk_err("Group %s: no such group", group);
        return -1;
    }
    gid = gr ? gr->gr_gid : pw->pw_gid;
    if ((pw ? initgroups(pw->pw_name, gid) : setgroups(1, &gid)) < 0 ||
        setgid(gid) < 0 || (pw && setuid(pw->pw_uid) < 0)) {
        mk_err("User %s Group %s: cannot switch: %s", user, group,
               strerror(errno));
        return -1;
    }
    mk_info("running as user %s, group %s", pw ? pw->pw_name : "(unchanged)",
            gr ? gr->gr_name : "(the user's)");
    return 0;
}

static int daemonize(void)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0) {
        return -1;
    }
    if (pid > 0) {
        _exit(0);
    }
    setsid();
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);     /* ErrorLog - is lost when detached */
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    return 0;
}

static int write_pid_file(struct master *m)
{
    char path[4096];
    FILE *f;

    if (!m->cur->conf.pid_file[0]) {
        return 0;
    }
    mk_server_path(m->cur, m->cur->conf.pid_file, path, sizeof(path));
    f = fopen(path, "w");
    if (!f) {
        mk_err("PidFile %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%d\n", (int) getpid());
    fclose(f);
    snprintf(m->pid_file, sizeof(m->pid_file), "%s", path);
    return 0;
}

static void log_started(struct mk_server *srv)
{
    size_t i;

    mk_info("tremolo/%s started: workers: %d, scheduler: %s, event loop: %s",
            TREMOLO_VERSION, srv->worker_count,
            srv->conf.scheduler == MK_SCHED_FAIR ? "fair" : "reuseport",
            mk_event_backend());
    for (i = 0; i < srv->listen_count; i++) {
        mk_info("listening on %s (%s)", srv->listens[i].text,
                srv->listens[i].layer);
    }
}

/* Starts a loaded generation: plugins then workers. */
static int generation_start(struct mk_server *srv, char *err, size_t errlen)
{
    if (mk_plugins_init(srv, err, errlen) < 0) {
        return -1;
    }
    if (mk_workers_start(srv, err, errlen) < 0) {
        mk_workers_stop_now(srv);
        mk_workers_join(srv);
        mk_plugins_exit(srv);
        return -1;
    }
    return 0;
}

static void generation_end(struct mk_server *srv, struct mk_server *cur)
{
    mk_workers_join(srv);
    mk_plugins_exit(srv);
    mk_listeners_close_unused(srv, cur);
    mk_server_destroy(srv);
}

static void master_reload(struct master *m)
{
    char err[1024] = "";
    struct mk_server *next;

    if (m->n_old == MK_MAX_OLD_GENERATIONS) {
        mk_err("reload refused: %zu older configurations are still draining",
               m->n_old);
        return;
    }
    next = master_load(m->cur->conf_path, m->bb_ini, m->ov, err, sizeof(err));
    if (!next) {
        mk_err("reload failed, keeping the running configuration: %s", err);
        return;
    }
    if (mk_listeners_open(next, m->cur, err, sizeof(err)) < 0 ||
        generation_start(next, err, sizeof(err)) < 0) {
        mk_err("reload failed, keeping the running configuration: %s", err);
        mk_listeners_close_unused(next, m->cur);
        mk_server_destroy(next);
        return;
    }
    mk_listeners_commit(next, m->cur);
    mk_workers_drain(m->cur, m->cur->conf.reload_drain_timeout);
    m->old[m->n_old++] = m->cur;
    m->cur = next;
    if (open_error_log(next) < 0) {
        mk_err("ErrorLog of the new configuration cannot be opened");
    }
    log_started(next);
    mk_info("configuration reloaded");
}

static void master_reap(struct master *m)
{
    size_t i = 0;

    while (i < m->n_old) {
        if (mk_workers_done(m->old[i])) {
            generation_end(m->old[i], m->cur);
            m->old[i] = m->old[--m->n_old];
            continue;
        }
        i++;
    }
}

/* Every generation's workers took the listening sockets out of their
 * loops; older generations share those sockets with the current one. */
static int master_left_listeners(struct master *m)
{
    size_t i;

    for (i = 0; i < m->n_old; i++) {
        if (!mk_workers_left_listeners(m->old[i])) {
            return 0;
        }
    }
    return mk_workers_left_listeners(m->cur);
}

/* Stops everything; with a drain deadline (ms) or at once (0). */
static void master_stop(struct master *m, int graceful)
{
    uint64_t limit = m->cur->conf.drain_timeout;
    uint64_t start = mk_clock_monotonic_ms();
    size_t i;

    if (graceful) {
        mk_info("stopping: finishing requests in flight (DrainTimeout %llu ms)",
                (unsigned long long) limit);
        mk_workers_drain(m->cur, limit);
        for (i = 0; i < m->n_old; i++) {
            mk_workers_drain(m->old[i], limit);
        }
    }
    else {
        mk_info("stopping now");
        mk_workers_stop_now(m->cur);
        for (i = 0; i < m->n_old; i++) {
            mk_workers_stop_now(m->old[i]);
        }
    }
    /* Refuse new clients at once: closed listening sockets make the kernel
     * reset connection attempts instead of queueing them for nobody. The
     * acceptor (fair mode) stops by itself; workers must first take the
     * sockets out of their loops. */
    while (!master_left_listeners(m) &&
           mk_clock_monotonic_ms() - start < 1000) {
        usleep(1000);
    }
    mk_listeners_close_unused(m->cur, NULL);
    /* workers enforce the deadline; this is only a safety net */
    while (!mk_workers_done(m->cur) || m->n_old > 0) {
        master_reap(m);
        if (mk_clock_monotonic_ms() - start > limit + 2000) {
            mk_workers_stop_now(m->cur);
            for (i = 0; i < m->n_old; i++) {
                mk_workers_stop_now(m->old[i]);
            }
        }
        usleep(20 * 1000);
    }
    generation_end(m->cur, NULL);
    m->cur = NULL;
}

int mk_master_run(const char *conf_path, const char *bb_ini,
                  const struct mk_overrides *ov, int daemon)
{
    struct master m = { .ov = ov, .bb_ini = bb_ini };
    char err[1024] = "";
    sigset_t set;
    siginfo_t si;
    struct timespec tick = { 0, 200 * 1000 * 1000 };
    int sig, running = 1, graceful = 1;

    m.cur = master_load(conf_path, bb_ini, ov, err, sizeof(err));
    if (!m.cur) {
        fprintf(stderr, "tremolo: %s\n", err);
        return 1;
    }
    if (open_error_log(m.cur) < 0) {
        goto fail;
    }
    raise_nofile();
    if (mk_listeners_open(m.cur, NULL, err, sizeof(err)) < 0) {
        mk_err("%s", err);
        if (isatty(STDERR_FILENO) || strcmp(m.cur->conf.error_log, "-") != 0) {
            fprintf(stderr, "tremolo: %s\n", err);
        }
        goto fail;
    }
    if ((daemon && daemonize() < 0) || drop_privileges(m.cur->conf.user, m.cur->conf.group) < 0 ||
        write_pid_file(&m) < 0) {
        goto fail;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);

    if (mk_clock_start() < 0) {
        mk_err("cannot start the clock thread");
        goto fail;
    }
    mk_listeners_log_features();
    if (generation_start(m.cur, err, sizeof(err)) < 0) {
        mk_err("%s", err);
        goto fail;
    }
    log_started(m.cur);

    while (running) {
        sig = sigtimedwait(&set, &si, &tick);
        switch (sig) {
        case SIGHUP:
            mk_info("SIGHUP: reloading the configuration");
            master_reload(&m);
            break;
        case SIGUSR1:
            mk_log_reopen();
            mk_plugins_reopen(m.cur);
            mk_info("SIGUSR1: log files reopened");
            break;
        case SIGTERM:
        case SIGINT:
            running = 0;
            break;
        case SIGQUIT:
            running = 0;
            graceful = 0;
            break;
        default:
            break;
        }
        master_reap(&m);
        if (running && mk_workers_done(m.cur)) {
            mk_err("every worker has stopped: exiting");
            running = 0;
        }
    }
    master_stop(&m, graceful);
    mk_clock_stop();
    if (m.pid_file[0]) {
        unlink(m.pid_file);
    }
    mk_info("exiting");
    mk_log_close();
    return 0;

fail:
    if (m.cur) {
        mk_listeners_close_unused(m.cur, NULL);
        mk_server_destroy(m.cur);
    }
    return 1;
}

int mk_master_check(const char *conf_path, const char *bb_ini,
                    const struct mk_overrides *ov)
{
    char err[1024] = "";
    struct mk_server *srv = master_load(conf_path, bb_ini, ov, err,
                                        sizeof(err));

    if (!srv) {
        fprintf(stderr, "tremolo: %s\n", err);
        fprintf(stderr, "tremolo: configuration file %s test failed\n",
                bb_ini ? bb_ini : conf_path);
        return 1;
    }
    printf("tremolo: configuration file %s test is successful\n",
           bb_ini ? bb_ini : srv->conf_path);
    mk_server_destroy(srv);
    return 0;
}
