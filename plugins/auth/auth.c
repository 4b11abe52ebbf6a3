/*
 * auth: HTTP Basic authentication per location, at stage 20.
 *
 *     [AUTH]                         (in a site file; one per location)
 *         Location /private
 *         Realm    Staff only
 *         Users    private.users     # made with tremolo-passwd
 *
 * Users files are read once per configuration generation (conf_check);
 * requests never touch the disk. Verification uses crypt_r(3) (libxcrypt)
 * and compares the result in constant time.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mk_core/mk_base64.h"
#include "mk_core/mk_clock.h"
#include "mk_core/mk_mem.h"
#include "mk_core/mk_rconf.h"
#include "mk_server/mk_plugin.h"
#include "plugins/auth/auth.h"

#define AUTH_USERS_FILE_MAX   (16 << 20)
#define AUTH_CACHE_SLOTS      128
#define AUTH_CACHE_VALUE_MAX  256       /* longer headers are not cached */
#define AUTH_CACHE_TTL_MS     60000

struct auth_vconf {
    char *location;
    char *realm;
    struct mk_conf_list users_file;    /* a LIST to know its file:line */
    /* set by vhost_check and conf_check */
    size_t loc_len;
    char *challenge;                   /* the WWW-Authenticate value */
    struct mk_hash *users;
    uint64_t id;                       /* unique per load, keys the cache */
};

/*
 * Successful verifications, per worker thread. crypt is slow on purpose
 * (tens of ms for SHA-512 at default rounds, more for yescrypt) and a
 * keep-alive client resends the same header on every request; without a
 * cache one browser page with 30 assets would burn a core for a second.
 * The cache is direct-mapped and bounded (AUTH_CACHE_SLOTS), keyed by the
 * vconf's load id and the exact header value (compared in full, not just
 * by hash), and an entry lives AUTH_CACHE_TTL_MS, so a password removed by
 * a reload stops working at once (new id) and nothing is shared between
 * threads. Failures are never cached.
 */
struct auth_cache_entry {
    uint64_t id;
    uint64_t expires_ms;
    size_t len;
    char value[AUTH_CACHE_VALUE_MAX];
};

struct auth_worker {
    struct crypt_data crypt;            /* ~32 KiB: not for the stack */
    struct auth_cache_entry cache[AUTH_CACHE_SLOTS];
};

static __thread struct auth_worker *auth_tls;
static uint64_t auth_next_id;

/* Verified against when the user is unknown, so that the response time
 * does not tell which user names exist. */
static const char auth_dummy_hash[] =
    "$6$tremolodummysalt$c3wztLQLMZAG8lR2b1M1YyA7TDcb1DZBD5wyR9hDkpiNvPoHwu"
    "X8llZ8KuLEk10.JlHp7S7P.zfZ..OBlNBOy0";

static const char auth_body[] =
    "<html><head><title>401 Unauthorized</title></head>\n"
    "<body><h1>401 Unauthorized</h1></body></html>\n";

extern const struct mk_plugin mk_plugin_auth;

/*
 * Location and Realm are CUSTOM keys so that a bad value is reported by
 * the schema with its `file:line: Key:` (vhost_check has no position).
 */
static int auth_parse_location(const char *value, void *field,
                               char *err, size_t errlen)
{
    size_t len = strlen(value);
    char *loc;

    if (value[0] != '/') {
        mk_str_printf(err, errlen, "\"%s\": must start with '/'", value);
        return -1;
    }
    /* "/private/" protects the same tree as "/private". */
    while (len > 1 && value[len - 1] == '/')
        len--;
    loc = mk_mem_strndup(value, len);
    if (!loc) {
        mk_str_printf(err, errlen, "out of memory");
        return -1;
    }
    mk_mem_free(*(char **) field);
    *(char **) field = loc;
    return 0;
}

/* The realm goes inside a quoted-string: no quote, backslash or control
 * byte, so that no escaping has to be undone by clients. */
static int auth_parse_realm(const char *value, void *field,
                            char *err, size_t errlen)
{
    size_t i;
    char *realm;

    for (i = 0; value[i]; i++) {
        unsigned char ch = (unsigned char) value[i];

        if (ch == '"' || ch == '\\' || ch < 0x20 || ch == 0x7f) {
            mk_str_printf(err, errlen, "\"%s\": no quotes, backslashes or "
                          "control characters", value);
            return -1;
        }
    }
    realm = mk_mem_strdup(value);
    if (!realm) {
        mk_str_printf(err, errlen, "out of memory");
        return -1;
    }
    mk_mem_free(*(char **) field);
    *(char **) field = realm;
    return 0;
}

static const struct mk_conf_key auth_vhost_keys[] = {
    MK_CONF_CUSTOM("Location", struct auth_vconf, location, NULL,
                   auth_parse_location, MK_CONF_REQUIRED),
    MK_CONF_CUSTOM("Realm", struct auth_vconf, realm, "Restricted",
                   auth_parse_realm, 0),
    { "Users", MK_CONF_T_LIST, offsetof(struct auth_vconf, users_file), NULL,
      0, 0, NULL, NULL, MK_CONF_MULTI | MK_CONF_REQUIRED },
    MK_CONF_END
};

static int auth_ct_equal(const char *a, size_t alen, const char *b,
                         size_t blen)
{
    volatile unsigned char diff = (unsigned char) (alen != blen);
    size_t i, n = alen < blen ? alen : blen;

    for (i = 0; i < n; i++)
        diff |= (unsigned char) (a[i] ^ b[i]);
    return diff == 0;
}

static int auth_vhost_check(void *vconf, struct mk_vhost *vh,
                            char *err, size_t errlen)
{
    struct auth_vconf *vc = vconf;
    size_t len;

    if (vc->users_file.count > 1) {
        mk_str_printf(err, errlen, "%s:%d: Users: given twice (one users "
                      "file per [AUTH] section; first at line %d)",
                      vc->users_file.files[1], vc->users_file.lines[1],
                      vc->users_file.lines[0]);
        return -1;
    }
    vc->loc_len = strlen(vc->location);
    len = strlen(vc->realm) + 40;
    vc->challenge = mk_mem_alloc(len);
    if (!vc->challenge) {
        mk_str_printf(err, errlen, "out of memory");
        return -1;
    }
    mk_str_printf(vc->challenge, len, "Basic realm=\"%s\", charset=\"UTF-8\"",
                  vc->realm);
    return 0;
}

static void auth_vhost_release(void *vconf)
{
    struct auth_vconf *vc = vconf;

    /* CUSTOM fields are ours to free; the core frees the Users list. */
    mk_mem_free(vc->location);
    mk_mem_free(vc->realm);
    mk_mem_free(vc->challenge);
    vc->location = vc->realm = vc->challenge = NULL;
    auth_users_destroy(vc->users);
    vc->users = NULL;
}

/* Reads the whole file into a NUL-terminated buffer. */
static char *auth_file_read(const char *path, size_t *len, const char **why)
{
    struct stat st;
    char *data = NULL;
    ssize_t n = 0;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *why = NULL;
    if (fd < 0 || fstat(fd, &st) < 0)
        goto error;
    if (!S_ISREG(st.st_mode) || st.st_size > AUTH_USERS_FILE_MAX) {
        *why = S_ISREG(st.st_mode) ? "file too large" : "not a regular file";
        goto error;
    }
    data = mk_mem_alloc((size_t) st.st_size + 1);
    if (!data)
        goto error;
    while (got < (size_t) st.st_size) {
        n = read(fd, data + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;          /* shrank while reading: parse what we have */
        got += (size_t) n;
    }
    if (n < 0)
        goto error;
    data[got] = '\0';
    *len = got;
    close(fd);
    return data;

error:
    if (!*why)
        *why = strerror(errno ? errno : ENOMEM);
    mk_mem_free(data);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int auth_vconf_load(struct auth_vconf *vc, struct mk_server *srv,
                           char *err, size_t errlen)
{
    char path[4096];
    const char *why;
    char *data;
    size_t len = 0;

    mk_server_path(srv, vc->users_file.values[0], path, sizeof(path));
    data = auth_file_read(path, &len, &why);
    if (!data) {
        mk_str_printf(err, errlen, "%s:%d: Users: %s: %s",
                      vc->users_file.files[0], vc->users_file.lines[0], path,
                      why);
        return -1;
    }
    vc->users = auth_users_parse(path, data, len, err, errlen);
    mk_mem_free(data);
    if (!vc->users)
        return -1;
    vc->id = __atomic_add_fetch(&auth_next_id, 1, __ATOMIC_RELAXED);
    return 0;
}

/*
 * Users files are loaded here rather than in `init`: conf_check runs while
 * the generation is parsed, so `tremolo -t` reports a bad users file and a
 * reload with one keeps the running configuration.
 */
static int auth_conf_check(void *conf, struct mk_server *srv,
                           char *err, size_t errlen)
{
    struct mk_vhost *vh = NULL;
    void **confs;
    size_t i, count;

    while ((vh = mk_server_vhost_next(srv, vh)) != NULL) {
        confs = mk_vhost_plugin_confs(vh, &mk_plugin_auth, &count);
        for (i = 0; confs && i < count; i++) {
            if (auth_vconf_load(confs[i], srv, err, errlen) < 0)
                return -1;
        }
    }
    return 0;
}

static void auth_worker_exit(void *conf, struct mk_worker *w)
{
    if (auth_tls)
        explicit_bzero(auth_tls, sizeof(*auth_tls));
    mk_mem_free(auth_tls);
    auth_tls = NULL;
}

static struct auth_cache_entry *auth_cache_slot(uint64_t id, struct mk_ptr v)
{
    uint64_t h = 1469598103934665603ULL ^ id;    /* FNV-1a */
    size_t i;

    for (i = 0; i < v.len; i++)
        h = (h ^ (unsigned char) v.data[i]) * 1099511628211ULL;
    return &auth_tls->cache[h % AUTH_CACHE_SLOTS];
}

/* The header compare is constant-time too: a cached value is a valid
 * credential, and a timing oracle on it would leak it byte by byte. */
static int auth_cache_hit(const struct auth_cache_entry *e, uint64_t id,
                          struct mk_ptr v, uint64_t now)
{
    return e->id == id && e->expires_ms > now &&
           auth_ct_equal(e->value, e->len, v.data, v.len);
}

/* Verifies "Basic base64(user:password)" against vc's users. */
static int auth_verify(const struct auth_vconf *vc, struct mk_ptr v)
{
    char cred[AUTH_CREDENTIALS_MAX + 1];
    const char *hash, *out, *colon;
    long n;
    int ok = 0;

    if (v.len < 7 || !mk_str_case_eq(v.data, 6, "Basic ", 6))
        return 0;
    v = mk_ptr_trim(mk_ptr_make(v.data + 6, v.len - 6));
    n = mk_base64_decode(v.data, v.len, cred, AUTH_CREDENTIALS_MAX);
    /* A NUL would end the password early for crypt: "pw\0junk" must not
     * pass as "pw". */
    if (n <= 0 || memchr(cred, '\0', (size_t) n))
        goto out;
    cred[n] = '\0';
    colon = memchr(cred, ':', (size_t) n);
    if (!colon)
        goto out;
    hash = mk_hash_get(vc->users, cred, (size_t) (colon - cred));
    out = crypt_r(colon + 1, hash ? hash : auth_dummy_hash, &auth_tls->crypt);
    ok = hash && out && out[0] != '*' &&
         auth_ct_equal(out, strlen(out), hash, strlen(hash));
out:
    explicit_bzero(cred, sizeof(cred));
    return ok;
}

static int auth_check(const struct auth_vconf *vc, struct mk_ptr v)
{
    struct auth_cache_entry *e;
    uint64_t now;

    v = mk_ptr_trim(v);
    if (v.len == 0)
        return 0;
    if (!auth_tls) {
        auth_tls = mk_mem_zalloc(sizeof(*auth_tls));
        if (!auth_tls)
            return -1;
    }
    now = mk_clock_monotonic_ms();
    e = auth_cache_slot(vc->id, v);
    if (auth_cache_hit(e, vc->id, v, now))
        return 1;
    if (!auth_verify(vc, v))
        return 0;
    if (v.len <= AUTH_CACHE_VALUE_MAX) {
        e->id = vc->id;
        e->expires_ms = now + AUTH_CACHE_TTL_MS;
        e->len = v.len;
        memcpy(e->value, v.data, v.len);
    }
    return 1;
}

/* The most specific [AUTH] whose Location covers the path, or NULL. */
static const struct auth_vconf *auth_find(struct mk_stream *r)
{
    const struct auth_vconf *best = NULL, *vc;
    const char *path = mk_request_clean_path(r);
    void **confs;
    size_t i, count = 0;

    if (!path || !mk_request_vhost(r))
        return NULL;
    confs = mk_vhost_plugin_confs(mk_request_vhost(r), &mk_plugin_auth,
                                  &count);
    for (i = 0; confs && i < count; i++) {
        vc = confs[i];
        if (auth_location_match(vc->location, vc->loc_len, path) &&
            (!best || vc->loc_len > best->loc_len))
            best = vc;
    }
    return best;
}

static int auth_on_request(void *conf, struct mk_stream *r)
{
    const struct auth_vconf *vc = auth_find(r);
    int ret;

    if (!vc)
        return MK_STAGE_NEXT;
    ret = auth_check(vc, mk_request_header(r, "Authorization"));
    if (ret > 0)
        return MK_STAGE_NEXT;
    if (ret < 0) {
        mk_response_error(r, 500);
        return MK_STAGE_HANDLED;
    }
    mk_response_status(r, 401);
    /* A failing call has already marked the connection for closing; the
     * request is answered either way. */
    if (mk_response_header(r, "WWW-Authenticate", vc->challenge) == 0 &&
        mk_response_header(r, "Content-Type", "text/html; charset=utf-8")
            == 0) {
        mk_response_content_length(r, (int64_t) sizeof(auth_body) - 1);
        if (mk_response_send_head(r) == 0)
            mk_response_write(r, auth_body, sizeof(auth_body) - 1,
                              MK_WRITE_STATIC);
    }
    mk_response_end(r);
    return MK_STAGE_HANDLED;
}

MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_auth = {
    .abi             = MK_PLUGIN_ABI,
    .name            = "auth",
    .description     = "HTTP Basic authentication per location",
    .vhost_keys      = auth_vhost_keys,
    .vhost_conf_size = sizeof(struct auth_vconf),
    .vhost_check     = auth_vhost_check,
    .vhost_release   = auth_vhost_release,
    .conf_check      = auth_conf_check,
    .worker_exit     = auth_worker_exit,
    .on_request      = auth_on_request,
};
