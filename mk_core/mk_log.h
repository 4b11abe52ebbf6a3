#ifndef MK_CORE_LOG_H
#define MK_CORE_LOG_H

/*
 * Leveled logging to stderr or to an error-log file. Each line is written
 * with one write(2), so lines from several threads never interleave:
 *   2026/11/23 09:00:00 [error] [fd 12] reading request line: too large
 */
enum mk_log_level {
    MK_LOG_ERROR = 0,
    MK_LOG_WARN  = 1,
    MK_LOG_INFO  = 2,
    MK_LOG_DEBUG = 3,
};

void mk_log_set_level(enum mk_log_level level);
enum mk_log_level mk_log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int  mk_log_level_parse(const char *name);
/* Sends lines to `path` (opened O_APPEND|O_CREAT, 0640). NULL or "-" means
 * stderr. Returns 0 or -1 (errno set) and keeps the old target on failure. */
int  mk_log_open(const char *path);
/* Re-opens the current file (USR1, after log rotation). */
int  mk_log_reopen(void);
void mk_log_close(void);

void mk_log_write(enum mk_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define mk_err(...)   mk_log_write(MK_LOG_ERROR, __VA_ARGS__)
#define mk_warn(...)  mk_log_write(MK_LOG_WARN, __VA_ARGS__)
#define mk_info(...)  mk_log_write(MK_LOG_INFO, __VA_ARGS__)
#define mk_debug(...) \
    do { if (mk_log_get_level() >= MK_LOG_DEBUG) \
             mk_log_write(MK_LOG_DEBUG, __VA_ARGS__); } while (0)

#ifdef MK_WITH_TRACE
#define MK_TRACE(...) mk_log_write(MK_LOG_DEBUG, __VA_ARGS__)
#else
#define MK_TRACE(...) do { } while (0)
#endif

#endif
