#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mk_core/mk_log.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"

/*
 * Writers never lock. They load `log_fd` and write one line to it. A file
 * target always lives in the same descriptor number (`own_fd`): re-opening
 * dup2()s the new file onto that number, which the kernel does atomically,
 * so a writer that loaded the fd just before a reopen writes to either the
 * old or the new file, never to a closed or recycled descriptor.
 * `state_lock` only serialises open/reopen/close among themselves.
 */
static atomic_int log_level = MK_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static int own_fd = -1;             /* our file descriptor, or -1 */
static char *log_path;              /* current file, NULL for stderr */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* A log line never exceeds this; longer messages are cut with "...". */
#define MK_LOG_LINE_MAX 4096

void mk_log_set_level(enum mk_log_level level)
{
    atomic_store_explicit(&log_level, (int) level, memory_order_relaxed);
}

enum mk_log_level mk_log_get_level(void)
{
    return (enum mk_log_level) atomic_load_explicit(&log_level,
                                                    memory_order_relaxed);
}

int mk_log_level_parse(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (mk_str_case_eq(name, strlen(name), level_names[i],
                           strlen(level_names[i]))) {
            return (int) i;
        }
    }
    return -1;
}

/* Points `own_fd` at the same open file as `fd` (which is then closed). */
static int mk_log_install(int fd)
{
    if (own_fd < 0) {
        own_fd = fd;
        return 0;
    }
#ifdef __linux__
    if (dup3(fd, own_fd, O_CLOEXEC) < 0) {
        goto error;
    }
#else
    if (dup2(fd, own_fd) < 0) {
        goto error;
    }
    fcntl(own_fd, F_SETFD, FD_CLOEXEC);
#endif
    close(fd);
    return 0;

error:
    close(fd);
    return -1;
}

/* Switches to stderr. `own_fd` is kept as a duplicate of stderr rather than
 * closed, so a writer racing with us still has a valid target. */
static void mk_log_to_stderr(void)
{
    atomic_store(&log_fd, STDERR_FILENO);
    if (own_fd >= 0) {
        dup2(STDERR_FILENO, own_fd);
        fcntl(own_fd, F_SETFD, FD_CLOEXEC);
    }
    mk_mem_free(log_path);
    log_path = NULL;
}

static int mk_log_open_locked(const char *path)
{
    char *copy = NULL;
    int fd;

    if (path != log_path) {
        copy = mk_mem_strdup(path);
        if (copy == NULL) {
            errno = ENOMEM;
            return -1;
        }
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || mk_log_install(fd) != 0) {
        mk_mem_free(copy);
        return -1;
    }
    atomic_store(&log_fd, own_fd);
    if (copy != NULL) {
        mk_mem_free(log_path);
        log_path = copy;
    }
    return 0;
}

int mk_log_open(const char *path)
{
    int ret = 0;

    pthread_mutex_lock(&state_lock);
    if (path == NULL || strcmp(path, "-") == 0) {
        mk_log_to_stderr();
    }
    else {
        ret = mk_log_open_locked(path);
    }
    pthread_mutex_unlock(&state_lock);
    return ret;
}

int mk_log_reopen(void)
{
    int ret = 0;

    pthread_mutex_lock(&state_lock);
    if (log_path != NULL) {
        ret = mk_log_open_locked(log_path);
    }
    pthread_mutex_unlock(&state_lock);
    return ret;
}

void mk_log_close(void)
{
    pthread_mutex_lock(&state_lock);
    mk_log_to_stderr();
    pthread_mutex_unlock(&state_lock);
}

static void mk_log_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;             /* nowhere left to report it */
        }
        buf += n;
        len -= (size_t) n;
    }
}

void mk_log_write(enum mk_log_level level, const char *fmt, ...)
{
    char line[MK_LOG_LINE_MAX];
    struct tm tm;
    time_t now;
    size_t len;
    va_list ap;
    int n;
    int saved_errno = errno;    /* callers often log right before errno use */

    if ((int) level > atomic_load_explicit(&log_level, memory_order_relaxed) ||
        (int) level < 0 || level > MK_LOG_DEBUG) {
        return;
    }
    now = time(NULL);
    localtime_r(&now, &tm);
    n = snprintf(line, sizeof(line), "%04d/%02d/%02d %02d:%02d:%02d [%s] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, level_names[level]);
    len = (size_t) n;
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    if ((size_t) n >= sizeof(line) - len - 1) {
        /* Cut: mark it so a reader knows the line is incomplete. */
        len = sizeof(line) - 1;
        memcpy(line + len - 3, "...", 3);
    }
    else {
        len += (size_t) n;
    }
    line[len++] = '\n';
    mk_log_write_all(atomic_load(&log_fd), line, len);
    errno = saved_errno;
}
