/*
 * tremolo-passwd: creates and edits the users files of the auth plugin.
 *
 *     tremolo-passwd [-c] FILE USER    set USER's password (-c: new file)
 *     tremolo-passwd -D FILE USER      delete USER
 *
 * The password is read from stdin (one line), or asked twice without echo
 * when stdin is a terminal. Hashes are SHA-512 crypt ($6$) with a salt from
 * the system's random source. The file is replaced atomically (temporary
 * file + rename), mode 0640, so the server never reads a half-written file.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "mk_core/mk_mem.h"
#include "plugins/auth/auth.h"

#define PASSWD_MAX        1024
#define PASSWD_FILE_MAX   (16 << 20)

static int passwd_usage(void)
{
    fprintf(stderr,
            "usage: tremolo-passwd [-c] FILE USER   set USER's password\n"
            "       tremolo-passwd -D FILE USER     delete USER\n"
            "  -c  create FILE (or truncate it)\n"
            "The password is read from stdin, or prompted for twice on a "
            "terminal.\n");
    return 1;
}

/* One line from fp without its line end; -1 on EOF, error or overflow. */
static int passwd_read_line(FILE *fp, char *buf, size_t size)
{
    size_t len;

    if (!fgets(buf, (int) size, fp))
        return -1;
    len = strcspn(buf, "\r\n");
    if (buf[len] == '\0' && len == size - 1 && !feof(fp))
        return -1;                        /* longer than the buffer */
    buf[len] = '\0';
    return 0;
}

static int passwd_prompt(const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    int ret;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) < 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= (tcflag_t) ~ECHO;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        return -1;
    ret = passwd_read_line(stdin, buf, size);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return ret;
}

static int passwd_get(char *pw, size_t size)
{
    char again[PASSWD_MAX];
    int ok;

    if (!isatty(STDIN_FILENO)) {
        if (passwd_read_line(stdin, pw, size) < 0) {
            fprintf(stderr, "tremolo-passwd: no password on stdin (or "
                    "longer than %d bytes)\n", PASSWD_MAX - 2);
            return -1;
        }
    }
    else {
        if (passwd_prompt("New password: ", pw, size) < 0 ||
            passwd_prompt("Re-type new password: ", again, sizeof(again)) < 0) {
            fprintf(stderr, "tremolo-passwd: cannot read the password\n");
            return -1;
        }
        ok = strcmp(pw, again) == 0;
        explicit_bzero(again, sizeof(again));
        if (!ok) {
            fprintf(stderr, "tremolo-passwd: passwords do not match\n");
            return -1;
        }
    }
    if (pw[0] == '\0') {
        fprintf(stderr, "tremolo-passwd: empty password refused\n");
        return -1;
    }
    return 0;
}

static int passwd_hash(const char *pw, char *out, size_t size)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = mk_mem_zalloc(sizeof(*cd));
    const char *h;
    int ret = -1;

    if (!cd) {
        fprintf(stderr, "tremolo-passwd: out of memory\n");
        return -1;
    }
    /* NULL random bytes: libxcrypt reads the OS random source itself. */
    if (!crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt))) {
        fprintf(stderr, "tremolo-passwd: cannot make a salt: %s\n",
                strerror(errno));
        goto out;
    }
    h = crypt_r(pw, salt, cd);
    if (!h || h[0] == '*' || strlen(h) >= size) {
        fprintf(stderr, "tremolo-passwd: hashing failed\n");
        goto out;
    }
    strcpy(out, h);
    ret = 0;
out:
    explicit_bzero(cd, sizeof(*cd));
    mk_mem_free(cd);
    return ret;
}

/* The current contents, or an empty buffer when creating. */
static char *passwd_load(const char *file, int create, size_t *len)
{
    char *data = NULL;
    FILE *fp;
    long size;

    *len = 0;
    if (create)
        return mk_mem_zalloc(1);
    fp = fopen(file, "rb");
    if (!fp) {
        fprintf(stderr, "tremolo-passwd: %s: %s%s\n", file, strerror(errno),
                errno == ENOENT ? " (use -c to create it)" : "");
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) < 0 || (size = ftell(fp)) < 0 ||
        size > PASSWD_FILE_MAX || fseek(fp, 0, SEEK_SET) < 0) {
        fprintf(stderr, "tremolo-passwd: %s: cannot read (or too large)\n",
                file);
        goto out;
    }
    data = mk_mem_alloc((size_t) size + 1);
    if (!data || fread(data, 1, (size_t) size, fp) != (size_t) size) {
        fprintf(stderr, "tremolo-passwd: %s: read failed\n", file);
        mk_mem_free(data);
        data = NULL;
        goto out;
    }
    *len = (size_t) size;
out:
    fclose(fp);
    return data;
}

/* Writes data to FILE.XXXXXX beside FILE, then renames it over FILE. */
static int passwd_store(const char *file, const char *data, size_t len)
{
    size_t plen = strlen(file) + 8;
    char *tmp = mk_mem_alloc(plen);
    size_t off = 0;
    ssize_t n;
    int fd = -1, created = 0;

    if (!tmp)
        goto error;
    snprintf(tmp, plen, "%s.XXXXXX", file);
    fd = mkstemp(tmp);
    if (fd < 0)
        goto error;
    created = 1;
    if (fchmod(fd, 0640) < 0)
        goto error;
    while (off < len) {
        n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto error;
        off += (size_t) n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        goto error;
    }
    fd = -1;
    if (rename(tmp, file) < 0)
        goto error;
    mk_mem_free(tmp);
    return 0;

error:
    fprintf(stderr, "tremolo-passwd: %s: cannot write: %s\n", file,
            strerror(errno));
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    mk_mem_free(tmp);
    return -1;
}

int main(int argc, char **argv)
{
    char pw[PASSWD_MAX], hash[CRYPT_OUTPUT_SIZE];
    int opt, create = 0, delete = 0, found, ret = 1;
    char *old = NULL, *out = NULL;
    const char *file, *user;
    size_t len, outlen;

    while ((opt = getopt(argc, argv, "cD")) != -1) {
        if (opt == 'c')
            create = 1;
        else if (opt == 'D')
            delete = 1;
        else
            return passwd_usage();
    }
    if (argc - optind != 2 || (create && delete))
        return passwd_usage();
    file = argv[optind];
    user = argv[optind + 1];
    if (!auth_user_valid(user, strlen(user))) {
        fprintf(stderr, "tremolo-passwd: bad user name \"%s\": 1 to %d bytes,"
                " no ':', blanks or control characters\n", user,
                AUTH_USER_MAX);
        return 1;
    }
    old = passwd_load(file, create, &len);
    if (!old)
        return 1;
    if (!delete && (passwd_get(pw, sizeof(pw)) < 0 ||
                    passwd_hash(pw, hash, sizeof(hash)) < 0))
        goto out;
    found = auth_passwd_update(old, len, user, delete ? NULL : hash,
                               &out, &outlen);
    if (found < 0) {
        fprintf(stderr, "tremolo-passwd: out of memory\n");
        goto out;
    }
    if (delete && !found) {
        fprintf(stderr, "tremolo-passwd: %s: no user \"%s\"\n", file, user);
        goto out;
    }
    if (passwd_store(file, out, outlen) < 0)
        goto out;
    fprintf(stderr, "%s user %s\n", delete ? "Deleted" :
            found ? "Updated" : "Added", user);
    ret = 0;
out:
    explicit_bzero(pw, sizeof(pw));
    mk_mem_free(old);
    mk_mem_free(out);
    return ret;
}
