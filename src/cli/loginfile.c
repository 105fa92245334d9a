/* The login file of the keyless CLI; see loginfile.h. Everything is done relative to an
 * open descriptor of the directory, with O_NOFOLLOW, so a link swapped in between two
 * steps cannot redirect the token elsewhere. */
#include "cli/loginfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"

int kl_cli_login_dir(const char *xdg_config_home, const char *home, char *out, size_t outlen)
{
    int n;
    if (outlen == 0)
        return KL_ETOOBIG;
    out[0] = '\0';
    if (xdg_config_home && xdg_config_home[0] == '/')
        n = snprintf(out, outlen, "%s/keyless", xdg_config_home);
    else if (home && home[0] == '/')
        n = snprintf(out, outlen, "%s/.config/keyless", home);
    else
        return KL_ENOTFOUND;
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return KL_ETOOBIG;
    }
    return 0;
}

void kl_cli_login_clear(kl_cli_login *l)
{
    OPENSSL_cleanse(l, sizeof(*l));
}

/* Copies the string member name of j into out[outlen]; KL_EINVAL when it is missing,
 * not a string, empty (unless may_be_empty) or too long. */
static int take(const json_t *j, const char *name, bool may_be_empty, char *out, size_t outlen,
                char *err, size_t errlen)
{
    const json_t *v = json_object_get(j, name);
    if (!json_is_string(v))
        return kl_err_say(err, errlen, KL_EINVAL, "the login file has no \"%s\"", name);
    size_t n = json_string_length(v);
    if ((n == 0 && !may_be_empty) || n >= outlen || strlen(json_string_value(v)) != n)
        return kl_err_say(err, errlen, KL_EINVAL, "the login file's \"%s\" is not valid", name);
    memcpy(out, json_string_value(v), n + 1);
    return 0;
}

int kl_cli_login_read(const char *dir, kl_cli_login *l, char *err, size_t errlen)
{
    char path[PATH_MAX];
    unsigned char *text = NULL;
    json_t *j = NULL;
    struct stat st;
    size_t len = 0;
    int fd = -1, rc;

    kl_cli_login_clear(l);
    if (snprintf(path, sizeof(path), "%s/%s", dir, KL_CLI_LOGIN_FILE) >= (int)sizeof(path))
        return kl_err_say(err, errlen, KL_EINVAL, "the login file's path is too long");
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return KL_ENOTFOUND;
        if (errno == ELOOP)
            return kl_err_say(err, errlen, KL_EPERM, "%s is a symbolic link; not used", path);
        return kl_err_say(err, errlen, KL_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    /* As ssh does with its keys: a token others could read is not used, and the
     * owner is told, so that the leak gets noticed. */
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        rc = kl_err_say(err, errlen, KL_EPERM,
                        "%s must be a file of yours that only you can read (mode 0600); it is "
                        "not used. Run 'keyless logout' and 'keyless login' again",
                        path);
        goto out;
    }
    if (st.st_size <= 0 || st.st_size > KL_CLI_MAX_LOGIN_FILE) {
        rc = kl_err_say(err, errlen, KL_EINVAL, "%s is not a login file (its size)", path);
        goto out;
    }
    text = OPENSSL_malloc((size_t)st.st_size);
    if (!text) {
        rc = KL_ENOMEM;
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = kl_err_say(err, errlen, KL_EIO, "cannot read %s", path);
            goto out;
        }
        len += (size_t)n;
    }
    j = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        rc = kl_err_say(err, errlen, KL_EINVAL, "%s is not a login file (not a JSON object)", path);
        goto out;
    }
    if ((rc = take(j, "server", false, l->server, sizeof(l->server), err, errlen)) < 0 ||
        (rc = take(j, "tenant", false, l->tenant, sizeof(l->tenant), err, errlen)) < 0 ||
        (rc = take(j, "caFile", true, l->ca_file, sizeof(l->ca_file), err, errlen)) < 0 ||
        (rc = take(j, "refreshToken", false, l->refresh_token, sizeof(l->refresh_token), err,
                   errlen)) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        kl_cli_login_clear(l);
    json_decref(j); /* the CLI's jansson allocator wipes what it frees */
    if (text) {
        OPENSSL_cleanse(text, (size_t)st.st_size);
        OPENSSL_free(text);
    }
    close(fd);
    return rc;
}

/* Makes path a directory with mode 0700 if it is missing. 0 or KL_EIO. */
static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return kl_err_say(err, errlen, KL_EIO, "cannot create %s: %s", path, strerror(errno));
}

/* Opens dir, making it (and its parent) if needed, and checks it is ours and closed to
 * others' writes; takes group and others' access away. The descriptor, or a kl_err. */
static int open_dir(const char *dir, char *err, size_t errlen)
{
    char parent[PATH_MAX];
    struct stat st;
    int rc;
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(parent))
        return kl_err_say(err, errlen, KL_EIO, "the login directory's path is not valid");
    memcpy(parent, dir, n + 1);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if ((rc = make_dir(parent, err, errlen)) < 0)
            return rc;
    }
    if ((rc = make_dir(dir, err, errlen)) < 0)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return kl_err_say(err, errlen, KL_EIO, "cannot open %s: %s", dir, strerror(errno));
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
        close(fd);
        return kl_err_say(err, errlen, KL_EPERM,
                          "%s must be a directory of yours that others cannot write to", dir);
    }
    if ((st.st_mode & 077) && fchmod(fd, 0700) != 0) {
        close(fd);
        return kl_err_say(err, errlen, KL_EIO, "cannot make %s private: %s", dir, strerror(errno));
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return KL_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kl_cli_login_write(const char *dir, const kl_cli_login *l, char *err, size_t errlen)
{
    char tmp[sizeof(KL_CLI_LOGIN_FILE) + 32];
    unsigned char rnd[8];
    char hex[2 * sizeof(rnd) + 1];
    char *text = NULL;
    json_t *j = NULL;
    int dfd = -1, fd = -1, rc;
    bool created = false;

    if ((dfd = open_dir(dir, err, errlen)) < 0)
        return dfd;
    j = json_pack("{s:s, s:s, s:s, s:s}", "server", l->server, "tenant", l->tenant, "caFile",
                  l->ca_file, "refreshToken", l->refresh_token);
    text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    if (!text) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot write the login file (out of memory)");
        goto out;
    }
    if (kl_random_id(rnd, sizeof(rnd)) < 0) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot write the login file (no random bytes)");
        goto out;
    }
    kl_hex_encode(rnd, sizeof(rnd), hex);
    snprintf(tmp, sizeof(tmp), ".%s.%s", KL_CLI_LOGIN_FILE, hex);
    /* O_EXCL: never write into a file that someone else made (or linked) there. */
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc =
            kl_err_say(err, errlen, KL_EIO, "cannot create a file in %s: %s", dir, strerror(errno));
        goto out;
    }
    created = true;
    size_t n = strlen(text);
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, n) < 0 || write_all(fd, "\n", 1) < 0 ||
        fsync(fd) != 0) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot write the login file in %s: %s", dir,
                        strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = kl_err_say(err, errlen, KL_EIO, "cannot write the login file in %s", dir);
        goto out;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, KL_CLI_LOGIN_FILE) != 0) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot replace %s/%s: %s", dir, KL_CLI_LOGIN_FILE,
                        strerror(errno));
        goto out;
    }
    created = false;
    (void)fsync(dfd); /* the rename itself, durable before the old token is spent */
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (created)
        (void)unlinkat(dfd, tmp, 0);
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    json_decref(j);
    close(dfd);
    return rc;
}

int kl_cli_login_remove(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, KL_CLI_LOGIN_FILE) >= (int)sizeof(path))
        return kl_err_say(err, errlen, KL_EIO, "the login file's path is too long");
    if (unlink(path) != 0 && errno != ENOENT)
        return kl_err_say(err, errlen, KL_EIO, "cannot delete %s: %s", path, strerror(errno));
    return 0;
}

int kl_cli_login_lock(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, KL_CLI_LOGIN_LOCK) >= (int)sizeof(path))
        return kl_err_say(err, errlen, KL_EIO, "the lock file's path is too long");
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return kl_err_say(err, errlen, KL_EIO, "cannot open %s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return kl_err_say(err, errlen, KL_EIO, "cannot lock %s: %s", path, strerror(e));
        }
    }
    return fd;
}

void kl_cli_login_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the only descriptor releases the flock */
}
