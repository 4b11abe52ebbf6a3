#ifndef TREMOLO_PLUGIN_AUTH_H
#define TREMOLO_PLUGIN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "mk_core/mk_hash.h"
#include "mk_core/mk_rconf.h"

/* Longest "user:password" accepted in an Authorization header. */
#define AUTH_CREDENTIALS_MAX  512
/* Longest user name tremolo-passwd and the users file accept. */
#define AUTH_USER_MAX         255


/* Is `user` acceptable in a users file (non-empty, at most AUTH_USER_MAX
 * bytes, no ':' and no control bytes or blanks)? */
int  auth_user_valid(const char *user, size_t len);

/* Does `path` fall under `loc` ("/" or a prefix without trailing '/') on a
 * segment boundary: /private matches /private and /private/x, not
 * /privateer? */
int  auth_location_match(const char *loc, size_t loclen, const char *path);

/*
 * Parses a users file's contents: lines `user:hash`, blank lines and lines
 * starting with '#' ignored. Accepted hashes: $6$ (SHA-512), $5$ (SHA-256),
 * $y$ (yescrypt). Returns a map user -> hash (values mk_mem_strdup'ed; free
 * with auth_users_destroy), or NULL with `name:line: reason` in err.
 */
struct mk_hash *auth_users_parse(const char *name, const char *data,
                                 size_t len, char *err, size_t errlen);
void auth_users_destroy(struct mk_hash *users);

/*
 * tremolo-passwd's edit: copies the file `in` with user's line replaced by
 * `user:hash` (appended if absent), or removed when hash is NULL. Other
 * lines are kept verbatim. Returns 1 if the user had a line, 0 if not, -1
 * when out of memory; *out is mk_mem_alloc'ed.
 */
int auth_passwd_update(const char *in, size_t len, const char *user,
                       const char *hash, char **out, size_t *outlen);

#endif
