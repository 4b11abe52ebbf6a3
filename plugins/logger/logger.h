#ifndef TREMOLO_PLUGIN_LOGGER_H
#define TREMOLO_PLUGIN_LOGGER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mk_core/mk_string.h"

/* Format values; 0 in a per-vhost section means "as the global one". */
#define LOGGER_FORMAT_INHERIT   0
#define LOGGER_FORMAT_COMBINED  1
#define LOGGER_FORMAT_JSON      2

/* Longest line written; each text field is cut to LOGGER_FIELD_MAX bytes
 * once escaped, so a line always fits (8 fields at most). */
#define LOGGER_LINE_MAX   16384
#define LOGGER_FIELD_MAX  1800

/* What one access-log line says. Slices may be empty (data NULL). */
struct logger_entry {
    time_t time;
    const char *remote_addr;
    struct mk_ptr user;            /* accepted Basic user, or empty */
    struct mk_ptr method;
    struct mk_ptr target;          /* raw request-target */
    const char *protocol;          /* "HTTP/1.1", "HTTP/2"; NULL: no request */
    int status;
    uint64_t bytes;                /* response body bytes */
    struct mk_ptr referer;
    struct mk_ptr user_agent;
    struct mk_ptr host;
    uint64_t request_time_ms;
};

/* Writes the line, '\n' included, into out (at least LOGGER_LINE_MAX
 * bytes); returns its length. */
size_t logger_format_combined(const struct logger_entry *e, char *out);
size_t logger_format_json(const struct logger_entry *e, char *out);

/* Escapers, exposed for tests: append the escaped form of in[0..len) to
 * out (room for `max` bytes), never splitting an escape; return bytes
 * written. Combined: `"`, `\`, control bytes and bytes >= 0x7f become \xHH.
 * JSON: string-body escaping; valid UTF-8 passes, invalid bytes become
 * \u00HH so that every line stays valid JSON. */
size_t logger_escape_clf(const char *in, size_t len, char *out, size_t max);
size_t logger_escape_json(const char *in, size_t len, char *out, size_t max);

/* The user name of an `Authorization: Basic` value, decoded into out
 * (NUL-terminated); the password part is never kept. Returns the name's
 * length, or 0 if the header is not well-formed Basic credentials. */
size_t logger_basic_user(struct mk_ptr authorization, char *out,
                         size_t outlen);

/* Local time as "10/Oct/2000:13:55:36 -0700" (clf) and
 * "2000-10-10T13:55:36-07:00" (iso), cached per thread for one second. */
void logger_time_format(time_t t, const char **clf, const char **iso);

#endif
