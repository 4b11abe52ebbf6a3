/*
 * auth: the pure parts (users files, location prefixes, the
 * tremolo-passwd edit), shared by the plugin and the tool and reachable by
 * unit tests without libcrypt or a server.
 */
#include <string.h>

#include "mk_core/mk_hash.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_string.h"
#include "plugins/auth/auth.h"

int auth_user_valid(const char *user, size_t len)
{
    size_t i;

    if (len == 0 || len > AUTH_USER_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) user[i];

        if (ch == ':' || ch <= ' ' || ch == 0x7f)
            return 0;
    }
    return 1;
}

int auth_location_match(const char *loc, size_t loclen, const char *path)
{
    if (loclen == 1 && loc[0] == '/')
        return 1;
    if (strncmp(path, loc, loclen) != 0)
        return 0;
    return path[loclen] == '\0' || path[loclen] == '/';
}

/* "$6$salt$hash", "$6$rounds=N$salt$hash", "$y$params$salt$hash": a known
 * prefix, at least three '$', a non-empty hash part, no blanks. */
static const char *auth_hash_check(const char *hash, size_t len)
{
    size_t i, dollars = 0;

    if (len < 4 || (memcmp(hash, "$6$", 3) != 0 &&
                    memcmp(hash, "$5$", 3) != 0 &&
                    memcmp(hash, "$y$", 3) != 0))
        return "unsupported hash type (accepted: $6$ SHA-512, $5$ SHA-256, "
               "$y$ yescrypt; create users with tremolo-passwd)";
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) hash[i];

        if (ch <= ' ' || ch >= 0x7f)
            return "malformed hash (blank or control byte)";
        if (ch == '$')
            dollars++;
    }
    if (dollars < 3 || hash[len - 1] == '$')
        return "malformed hash";
    return NULL;
}

static int auth_users_line(struct mk_hash *users, const char *line,
                           size_t len, const char **reason)
{
    const char *colon = memchr(line, ':', len);
    char *hash;

    if (!colon) {
        *reason = "expected user:hash";
        return -1;
    }
    if (!auth_user_valid(line, (size_t) (colon - line))) {
        *reason = "bad user name (empty, too long, blank or control byte)";
        return -1;
    }
    *reason = auth_hash_check(colon + 1, len - (size_t) (colon - line) - 1);
    if (*reason)
        return -1;
    if (mk_hash_get(users, line, (size_t) (colon - line))) {
        *reason = "user listed twice";
        return -1;
    }
    hash = mk_mem_strndup(colon + 1, len - (size_t) (colon - line) - 1);
    if (!hash || mk_hash_set(users, line, (size_t) (colon - line), hash) < 0) {
        mk_mem_free(hash);
        *reason = "out of memory";
        return -1;
    }
    return 0;
}

struct mk_hash *auth_users_parse(const char *name, const char *data,
                                 size_t len, char *err, size_t errlen)
{
    struct mk_hash *users = mk_hash_create(16, 0);
    const char *p = data, *end = data + len, *nl, *reason = "out of memory";
    size_t llen;
    int line = 0;

    if (!users)
        goto error;
    while (p < end) {
        line++;
        nl = memchr(p, '\n', (size_t) (end - p));
        llen = nl ? (size_t) (nl - p) : (size_t) (end - p);
        if (llen > 0 && p[llen - 1] == '\r')
            llen--;
        if (memchr(p, '\0', llen)) {
            reason = "NUL byte";
            goto error;
        }
        if (llen > 0 && p[0] != '#' &&
            auth_users_line(users, p, llen, &reason) < 0)
            goto error;
        p += (nl ? (size_t) (nl - p) + 1 : (size_t) (end - p));
    }
    return users;

error:
    mk_str_printf(err, errlen, "%s:%d: %s", name, line, reason);
    auth_users_destroy(users);
    return NULL;
}

void auth_users_destroy(struct mk_hash *users)
{
    if (users)
        mk_hash_destroy(users, mk_mem_free);
}

/* Does the line (no '\n') belong to user? */
static int auth_line_is_user(const char *line, size_t len, const char *user,
                             size_t ulen)
{
    return len > ulen && line[ulen] == ':' && memcmp(line, user, ulen) == 0;
}

int auth_passwd_update(const char *in, size_t len, const char *user,
                       const char *hash, char **out, size_t *outlen)
{
    size_t ulen = strlen(user), hlen = hash ? strlen(hash) : 0;
    size_t cap = len + ulen + hlen + 4, n = 0, llen;
    const char *p = in, *end = in + len, *nl;
    int found = 0;
    char *buf = mk_mem_alloc(cap);

    if (!buf)
        return -1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t) (end - p));
        llen = nl ? (size_t) (nl - p) : (size_t) (end - p);
        if (auth_line_is_user(p, llen, user, ulen)) {
            /* Replace the first line of the user; drop any later one so
             * the file never holds two passwords for one name. */
            if (hash && !found) {
                n += (size_t) mk_str_printf(buf + n, cap - n, "%s:%s\n",
                                            user, hash);
            }
            found = 1;
        }
        else {
            memcpy(buf + n, p, llen);
            n += llen;
            buf[n++] = '\n';
        }
        p += nl ? llen + 1 : llen;
    }
    if (hash && !found)
        n += (size_t) mk_str_printf(buf + n, cap - n, "%s:%s\n", user, hash);
    *out = buf;
    *outlen = n;
    return found;
}
