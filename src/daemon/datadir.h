/* The data directory as a held resource: opened once (never through a symbolic link),
 * checked to belong to keylessd's effective user and to sit under directories nobody
 * else can rewrite, and locked so that a second keylessd refuses to share it. */
#ifndef KL_DAEMON_DATADIR_H
#define KL_DAEMON_DATADIR_H

#include <stddef.h>
#include <sys/types.h>

typedef struct kl_datadir kl_datadir;

/* Opens the directory at path (absolute), creating it 0700 when missing, and takes an
 * exclusive lock on it for the life of the handle. Refuses (KL_EPERM, or KL_EIO when the
 * system said no) with one sentence in err naming the path and what to do, when:
 *  - path is a symbolic link or not a directory;
 *  - it is owned by another uid than the effective one;
 *  - its parent is writable by group or others (sticky bit or not) or is owned by
 *    neither root nor the effective uid;
 *  - a directory further up is owned by neither root nor the effective uid, or is
 *    writable by group or others without the sticky bit;
 *  - another process holds the lock (KL_ECONFLICT).
 * A directory we own that group or others can reach is tightened to 0700.
 * On success *out is owned by the caller (kl_datadir_close). */
int kl_datadir_open(const char *path, kl_datadir **out, char *err, size_t errlen);

/* The directory's descriptor (O_DIRECTORY), for openat() and friends; owned by d. */
int kl_datadir_fd(const kl_datadir *d);

/* Checks the entry name (relative to the directory, e.g. "kek" or "tls/ca.key") if it
 * exists: it must not be a symbolic link, must be of file type `type` (S_IFREG, S_IFDIR
 * or S_IFSOCK) and must be owned by the effective uid. Intermediate components are
 * looked up without following links either. A missing entry is fine (returns 0).
 * Otherwise KL_EPERM with one sentence in err. */
int kl_datadir_check(const kl_datadir *d, const char *name, mode_t type, char *err, size_t errlen);

/* Releases the lock and the descriptor. NULL is fine. */
void kl_datadir_close(kl_datadir *d);

#endif
