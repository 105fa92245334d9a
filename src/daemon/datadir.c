/* The data directory: opened without following links, checked to be ours and out of
 * other users' reach, and locked against a second keylessd. Every later open in it goes
 * through the descriptor held here, so the checks are about the directory actually used. */
#include "daemon/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

struct kl_datadir {
    int fd;     /* O_DIRECTORY descriptor; holds the flock */
    char *path; /* as given */
};

static bool writable_by_others(mode_t m)
{
    return (m & (S_IWGRP | S_IWOTH)) != 0;
}

/* Directories above the parent: whoever owns one, or can write one that has no sticky bit,
 * can rename the subtree below it and put a directory of their own in its place. A
 * sticky, world-writable directory such as /tmp is fine this far up: nobody but its owner
 * can rename the entry of ours inside it. */
static int check_ancestors(const char *parent, uid_t me, char *err, size_t errlen)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof(p), "%s", parent);
    if (n < 0 || (size_t)n >= sizeof(p))
        return kl_err_say(err, errlen, KL_EINVAL, "%s: path too long", parent);
    while (strcmp(p, "/") != 0) {
        char *slash = strrchr(p, '/');
        if (!slash)
            break;
        if (slash == p)
            p[1] = '\0';
        else
            *slash = '\0';
        struct stat st;
        if (stat(p, &st) != 0)
            return kl_err_say(err, errlen, KL_EIO, "cannot inspect %s: %s", p, strerror(errno));
        if (st.st_uid != 0 && st.st_uid != me)
            return kl_err_say(err, errlen, KL_EPERM,
                              "%s is owned by uid %u, who could swap the data directory below it; "
                              "use a --data-dir under directories owned by root or uid %u",
                              p, (unsigned)st.st_uid, (unsigned)me);
        if (writable_by_others(st.st_mode) && !(st.st_mode & S_ISVTX))
            return kl_err_say(
                err, errlen, KL_EPERM,
                "%s is writable by other users and not sticky, so they could swap the "
                "data directory below it; use a --data-dir under directories only root "
                "or uid %u can write",
                p, (unsigned)me);
    }
    return 0;
}

/* The immediate parent decides who can create, rename or remove the data directory's
 * name. It must be root's or ours and writable by nobody else, sticky bit or not: in a
 * shared directory like /tmp anyone can take a predictable name before us. */
static int open_parent(const char *path, uid_t me, int *pfd, const char **base, char *err,
                       size_t errlen)
{
    char parent[PATH_MAX];
    char resolved[PATH_MAX];
    *pfd = -1;
    const char *slash = strrchr(path, '/');
    if (!slash || path[0] != '/' || slash[1] == '\0' || !strcmp(slash + 1, ".") ||
        !strcmp(slash + 1, ".."))
        return kl_err_say(
            err, errlen, KL_EINVAL,
            "%s is not a usable data directory path; give --data-dir an absolute path "
            "ending in the directory's name",
            path);
    size_t plen = slash == path ? 1 : (size_t)(slash - path);
    if (plen >= sizeof(parent))
        return kl_err_say(err, errlen, KL_EINVAL, "%s: path too long", path);
    memcpy(parent, path, plen);
    parent[plen] = '\0';
    *base = slash + 1;
    if (!realpath(parent, resolved))
        return kl_err_say(err, errlen, KL_EIO, "cannot open %s: %s; create it first", parent,
                          strerror(errno));
    /* O_PATH: search permission is all this needs (mkdirat, openat, fstat). */
    int fd = open(resolved, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kl_err_say(err, errlen, KL_EIO, "cannot open %s: %s", parent, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = kl_err_say(err, errlen, KL_EIO, "cannot inspect %s: %s", parent, strerror(errno));
    else if (st.st_uid != 0 && st.st_uid != me)
        rc = kl_err_say(
            err, errlen, KL_EPERM,
            "%s (the data directory's parent) is owned by uid %u, who could swap the data "
            "directory; use a parent owned by root or uid %u",
            parent, (unsigned)st.st_uid, (unsigned)me);
    else if (writable_by_others(st.st_mode))
        rc = kl_err_say(
            err, errlen, KL_EPERM,
            "%s (the data directory's parent) is writable by other users, who could swap "
            "the data directory; use a parent only root or uid %u can write",
            parent, (unsigned)me);
    else
        rc = check_ancestors(resolved, me, err, errlen);
    if (rc) {
        close(fd);
        return rc;
    }
    *pfd = fd;
    return 0;
}

int kl_datadir_open(const char *path, kl_datadir **out, char *err, size_t errlen)
{
    int rc;
    int pfd = -1, fd = -1;
    const char *base = NULL;
    uid_t me = geteuid();
    kl_datadir *d = NULL;
    *out = NULL;
    if (!path)
        return KL_EINVAL;
    if ((rc = open_parent(path, me, &pfd, &base, err, errlen)) != 0)
        goto out;
    if (mkdirat(pfd, base, 0700) != 0 && errno != EEXIST) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        struct stat lst;
        if (fstatat(pfd, base, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode))
            rc = kl_err_say(err, errlen, KL_EPERM,
                            "%s is a symbolic link; give --data-dir the real directory", path);
        else if (errno == ENOTDIR)
            rc = kl_err_say(err, errlen, KL_EPERM,
                            "%s is not a directory; give --data-dir a directory", path);
        else
            rc = kl_err_say(err, errlen, KL_EIO, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot inspect %s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_uid != me) {
        rc = kl_err_say(
            err, errlen, KL_EPERM,
            "%s is owned by uid %u, not by uid %u that keylessd runs as; chown it to uid %u "
            "or run keylessd as its owner",
            path, (unsigned)st.st_uid, (unsigned)me, (unsigned)me);
        goto out;
    }
    /* Ours: make it private (and usable by us) rather than refuse. */
    if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0) {
        rc = kl_err_say(err, errlen, KL_EIO, "cannot make %s private (chmod 0700): %s", path,
                        strerror(errno));
        goto out;
    }
    /* Taken before anything in the directory is read or replaced: a second daemon must not
     * unlink the live admin socket or share the listeners. Released by the kernel when the
     * process ends, however it ends. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            rc =
                kl_err_say(err, errlen, KL_ECONFLICT,
                           "%s is in use by another keylessd; stop that one first or give this one "
                           "another --data-dir",
                           path);
        else
            rc = kl_err_say(err, errlen, KL_EIO, "cannot lock %s: %s", path, strerror(errno));
        goto out;
    }
    rc = KL_ENOMEM;
    d = calloc(1, sizeof(*d));
    if (!d || !(d->path = strdup(path)))
        goto out;
    d->fd = fd;
    fd = -1;
    *out = d;
    d = NULL;
    rc = 0;
out:
    if (pfd >= 0)
        close(pfd);
    if (fd >= 0)
        close(fd);
    if (d) {
        free(d->path);
        free(d);
    }
    return rc;
}

int kl_datadir_fd(const kl_datadir *d)
{
    return d->fd;
}

static const char *type_name(mode_t type)
{
    switch (type) {
    case S_IFDIR: return "a directory";
    case S_IFSOCK: return "a socket";
    default: return "a regular file";
    }
}

int kl_datadir_check(const kl_datadir *d, const char *name, mode_t type, char *err, size_t errlen)
{
    char rel[PATH_MAX];
    int n = snprintf(rel, sizeof(rel), "%s", name ? name : "");
    if (!d || n <= 0 || (size_t)n >= sizeof(rel) || rel[0] == '/')
        return KL_EINVAL;
    uid_t me = geteuid();
    int dfd = d->fd;
    int rc = 0;
    char *comp = rel;
    for (;;) {
        char *slash = strchr(comp, '/');
        if (slash)
            *slash = '\0';
        struct stat st;
        if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                rc = kl_err_say(err, errlen, KL_EIO, "cannot inspect %s/%s: %s", d->path, name,
                                strerror(errno));
            break;
        }
        mode_t want = slash ? S_IFDIR : type;
        int upto = slash ? (int)(slash - rel) : (int)strlen(rel);
        char what[2 * PATH_MAX];
        snprintf(what, sizeof(what), "%s/%.*s", d->path, upto, rel);
        if (S_ISLNK(st.st_mode)) {
            rc = kl_err_say(err, errlen, KL_EPERM,
                            "%s is a symbolic link; keylessd opens nothing in its data directory "
                            "through a link: put the real %s there",
                            what, want == S_IFDIR ? "directory" : "file");
            break;
        }
        if ((st.st_mode & S_IFMT) != want) {
            rc =
                kl_err_say(err, errlen, KL_EPERM, "%s is not %s; move it out of the data directory",
                           what, type_name(want));
            break;
        }
        if (st.st_uid != me) {
            rc = kl_err_say(err, errlen, KL_EPERM,
                            "%s is owned by uid %u, not by uid %u that keylessd runs as; if it is "
                            "keylessd's own, chown it to uid %u, else move it away",
                            what, (unsigned)st.st_uid, (unsigned)me, (unsigned)me);
            break;
        }
        if (!slash)
            break;
        /* Descend without following a link, so the next component is looked up in the
         * directory just checked. */
        int next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        *slash = '/';
        if (next < 0) {
            rc = kl_err_say(err, errlen, KL_EIO, "cannot open %s: %s", what, strerror(errno));
            break;
        }
        if (dfd != d->fd)
            close(dfd);
        dfd = next;
        comp = slash + 1;
    }
    if (dfd != d->fd)
        close(dfd);
    return rc;
}

void kl_datadir_close(kl_datadir *d)
{
    if (!d)
        return;
    close(d->fd); /* drops the flock */
    free(d->path);
    free(d);
}
