/* libkl-crashsim.so: an LD_PRELOAD shim that lets a test simulate a power cut.
 *
 * A process killed with SIGKILL leaves the kernel's page cache intact, so everything it
 * wrote survives whether or not it ever called fsync/fdatasync. This shim remembers, for
 * every regular file under KL_CRASHSIM_DIR, what each write since the file's last sync
 * overwrote: before a write (write, pwrite, pwrite64, ftruncate, ftruncate64) reaches the
 * file, the bytes it replaces are appended to an undo journal in KL_CRASHSIM_JOURNAL; a
 * successful fsync or fdatasync of the file deletes its journal (all of it is now on
 * disk). After the process dies, tests/lib/crashsim.mjs replays the journals backwards
 * and truncates each file to its size at its last sync: what is left is what a disk
 * would hold after a power cut at the moment of the kill.
 *
 * Journal file "<path below KL_CRASHSIM_DIR, '/' as '%'>.undo", little-endian:
 *   header: "KLUNDO1\n", u64 size of the file at its last sync, u32 path length, path
 *   record: u32 magic 0x4b4c5552 ("KLUR"), u64 offset, u32 length, length bytes,
 *           u32 magic again (a record cut short by the kill is ignored: the write it
 *           guards was not made yet, because the record is written first)
 * Not modelled: directory entries (a file created since the last directory sync still
 * exists), writes through mmap, writev/pwritev, and files written by libc internally
 * (stdio): those count as durable. SQLite's -shm file is skipped: SQLite rebuilds it
 * from the WAL when the first connection opens the database.
 *
 * This is a test tool preloaded into keylessd by the Node harness; it is not linked into
 * anything keyless ships. Its state is process-wide by nature (it stands in for libc). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define CRASHSIM_MAX_FILES 64
#define CRASHSIM_COPY_CHUNK 65536
#define CRASHSIM_RECORD_MAGIC 0x4b4c5552u

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef int (*sync_fn)(int);
typedef int (*truncate_fn)(int, off_t);
typedef int (*truncate64_fn)(int, off64_t);
typedef int (*unlink_fn)(const char *);

/* One watched path this process has written: the file now there, and its open journal. */
typedef struct crash_file {
    char path[PATH_MAX];
    dev_t dev;
    ino_t ino;
    int journal; /* -1 when no journal is open (nothing written since the last sync) */
} crash_file;

typedef struct crash_state {
    pthread_mutex_t mu;
    bool ready;
    char dir[PATH_MAX];     /* watched directory, with a trailing '/' */
    char journal[PATH_MAX]; /* where the undo journals go */
    size_t n_files;
    crash_file files[CRASHSIM_MAX_FILES];
    write_fn real_write;
    pwrite_fn real_pwrite;
    pwrite64_fn real_pwrite64;
    sync_fn real_fsync;
    sync_fn real_fdatasync;
    truncate_fn real_ftruncate;
    truncate64_fn real_ftruncate64;
    unlink_fn real_unlink;
} crash_state;

static crash_state g = {.mu = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t g_resolved = PTHREAD_ONCE_INIT;

/* Stops the process: a shim that cannot keep its journal would make a test pass that
 * should fail, so it never carries on silently. */
static void crash_fatal(const char *what)
{
    static const char prefix[] = "kl-crashsim: fatal: ";
    if (g.real_write != NULL) {
        g.real_write(2, prefix, sizeof(prefix) - 1);
        g.real_write(2, what, strlen(what));
        g.real_write(2, "\n", 1);
    }
    abort();
}

static void crash_resolve(void)
{
    g.real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    g.real_pwrite = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    g.real_pwrite64 = (pwrite64_fn)dlsym(RTLD_NEXT, "pwrite64");
    g.real_fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    g.real_fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    g.real_ftruncate = (truncate_fn)dlsym(RTLD_NEXT, "ftruncate");
    g.real_ftruncate64 = (truncate64_fn)dlsym(RTLD_NEXT, "ftruncate64");
    g.real_unlink = (unlink_fn)dlsym(RTLD_NEXT, "unlink");
    if (!g.real_write || !g.real_pwrite || !g.real_pwrite64 || !g.real_fsync || !g.real_fdatasync ||
        !g.real_ftruncate || !g.real_ftruncate64 || !g.real_unlink)
        crash_fatal("cannot find the libc functions it wraps");
}

/* Another library's constructor may write before ours ran: every wrapper resolves the
 * real functions first, and only journals once the configuration is read. */
#define RESOLVE() pthread_once(&g_resolved, crash_resolve)

__attribute__((constructor)) static void crash_init(void)
{
    RESOLVE();
    const char *dir = getenv("KL_CRASHSIM_DIR");
    const char *journal = getenv("KL_CRASHSIM_JOURNAL");
    if (dir == NULL || journal == NULL)
        return; /* preloaded without a configuration: a plain pass-through */
    char real[PATH_MAX];
    if (realpath(dir, real) == NULL)
        crash_fatal("KL_CRASHSIM_DIR does not exist");
    int n = snprintf(g.dir, sizeof(g.dir), "%s/", real);
    if (n < 0 || (size_t)n >= sizeof(g.dir))
        crash_fatal("KL_CRASHSIM_DIR is too long");
    n = snprintf(g.journal, sizeof(g.journal), "%s", journal);
    if (n < 0 || (size_t)n >= sizeof(g.journal))
        crash_fatal("KL_CRASHSIM_JOURNAL is too long");
    g.ready = true;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = g.real_write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            crash_fatal("cannot write an undo journal");
        p += w;
        len -= (size_t)w;
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static bool watched_path(const char *path)
{
    return strncmp(path, g.dir, strlen(g.dir)) == 0 && !ends_with(path, "-shm");
}

static void journal_name(const char *path, char *out, size_t n)
{
    char rel[PATH_MAX];
    snprintf(rel, sizeof(rel), "%s", path + strlen(g.dir));
    for (char *c = rel; *c; c++)
        if (*c == '/')
            *c = '%';
    int w = snprintf(out, n, "%s/%s.undo", g.journal, rel);
    if (w < 0 || (size_t)w >= n)
        crash_fatal("journal path too long");
}

/* Forgets what was recorded for f (its journal on disk and the open one). */
static void drop_journal(crash_file *f)
{
    char name[PATH_MAX];
    journal_name(f->path, name, sizeof(name));
    if (g.real_unlink(name) != 0 && errno != ENOENT)
        crash_fatal("cannot drop an undo journal");
    if (f->journal >= 0)
        close(f->journal);
    f->journal = -1;
}

static crash_file *find_path(const char *path)
{
    for (size_t i = 0; i < g.n_files; i++)
        if (strcmp(g.files[i].path, path) == 0)
            return &g.files[i];
    return NULL;
}

/* The entry for fd's file, or NULL when fd is not a watched regular file. Files are
 * known by path (inode numbers are reused as files come and go); a path now holding
 * another file than before starts afresh. Caller holds g.mu. */
static crash_file *lookup(int fd, struct stat *st)
{
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode))
        return NULL;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n < 0)
        crash_fatal("cannot name an open file");
    path[n] = '\0';
    if (!watched_path(path))
        return NULL;
    crash_file *f = find_path(path);
    if (f != NULL && (f->dev != st->st_dev || f->ino != st->st_ino)) {
        drop_journal(f);
        f->dev = st->st_dev;
        f->ino = st->st_ino;
    }
    if (f != NULL)
        return f;
    if (g.n_files == CRASHSIM_MAX_FILES)
        crash_fatal("too many files");
    f = &g.files[g.n_files++];
    snprintf(f->path, sizeof(f->path), "%s", path);
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->journal = -1;
    return f;
}

/* Opens f's journal, starting it (header: the file's size now, which is its size at
 * the last sync since nothing was written after it) when there is none yet. */
static void journal_open(crash_file *f, const struct stat *st)
{
    if (f->journal >= 0) {
        /* Another process may have synced the file (and so removed the journal). */
        struct stat js;
        if (fstat(f->journal, &js) == 0 && js.st_nlink > 0)
            return;
        close(f->journal);
        f->journal = -1;
    }
    char name[PATH_MAX];
    journal_name(f->path, name, sizeof(name));
    int j = open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j < 0)
        crash_fatal("cannot open an undo journal");
    struct stat js;
    if (fstat(j, &js) != 0)
        crash_fatal("cannot stat an undo journal");
    if (js.st_size == 0) {
        /* One write() for the whole header, as for records: a kill lands before or
         * after it in practice, and the reader takes a torn header for "nothing
         * recorded yet" (the write it was to guard had not started). */
        uint64_t size = (uint64_t)st->st_size;
        uint32_t len = (uint32_t)strlen(f->path);
        char hdr[8 + sizeof(size) + sizeof(len) + PATH_MAX];
        memcpy(hdr, "KLUNDO1\n", 8);
        memcpy(hdr + 8, &size, sizeof(size));
        memcpy(hdr + 8 + sizeof(size), &len, sizeof(len));
        memcpy(hdr + 8 + sizeof(size) + sizeof(len), f->path, len);
        write_all(j, hdr, 8 + sizeof(size) + sizeof(len) + len);
    }
    f->journal = j;
}

/* Records what [off, off + len) of fd's file holds now, before it is overwritten. Only
 * bytes inside the current size are recorded: the final truncation undoes the rest. */
static void record_preimage(crash_file *f, int fd, const struct stat *st, off_t off, size_t len)
{
    journal_open(f, st);
    if (off >= st->st_size || len == 0)
        return;
    uint64_t avail = (uint64_t)(st->st_size - off);
    uint32_t n = (uint32_t)(len < avail ? len : avail);
    if ((uint64_t)n != (len < avail ? (uint64_t)len : avail))
        crash_fatal("write too large");
    char *old = malloc(n);
    if (old == NULL)
        crash_fatal("out of memory");
    /* A write-only descriptor cannot be read: read through a read-only one instead. */
    int rfd = fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_ACCMODE) == O_WRONLY) {
        char link[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        rfd = open(link, O_RDONLY | O_CLOEXEC);
        if (rfd < 0)
            crash_fatal("cannot reopen a write-only file to read it");
    }
    uint32_t got = 0;
    while (got < n) {
        ssize_t r = pread(rfd, old + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            crash_fatal("cannot read the bytes a write replaces");
        got += (uint32_t)r;
    }
    if (rfd != fd)
        close(rfd);
    uint32_t magic = CRASHSIM_RECORD_MAGIC;
    uint64_t o = (uint64_t)off;
    /* One write() per record keeps a kill from landing inside the record in practice;
     * the trailing magic catches it when it does. */
    size_t total = 4 + 8 + 4 + (size_t)n + 4;
    char *rec = malloc(total);
    if (rec == NULL)
        crash_fatal("out of memory");
    memcpy(rec, &magic, 4);
    memcpy(rec + 4, &o, 8);
    memcpy(rec + 12, &n, 4);
    memcpy(rec + 16, old, n);
    memcpy(rec + 16 + n, &magic, 4);
    write_all(f->journal, rec, total);
    free(rec);
    free(old);
}

/* After a successful sync of fd's file: everything written so far is on disk. */
static void forget_journal(int fd)
{
    struct stat st;
    crash_file *f = lookup(fd, &st);
    if (f != NULL)
        drop_journal(f);
}

/* Runs before a write of len bytes at off (or, off < 0, at fd's position). */
static void before_write(int fd, off_t off, size_t len)
{
    struct stat st;
    crash_file *f = lookup(fd, &st);
    if (f == NULL)
        return;
    if (off < 0) {
        int fl = fcntl(fd, F_GETFL);
        off = (fl >= 0 && (fl & O_APPEND)) ? st.st_size : lseek(fd, 0, SEEK_CUR);
        if (off < 0)
            crash_fatal("cannot find a file position");
    }
    record_preimage(f, fd, &st, off, len);
}

static void before_truncate(int fd, off_t size)
{
    struct stat st;
    crash_file *f = lookup(fd, &st);
    if (f == NULL)
        return;
    if (size < st.st_size)
        record_preimage(f, fd, &st, size, (size_t)(st.st_size - size));
    else
        journal_open(f, &st);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    RESOLVE();
    if (!g.ready)
        return g.real_write(fd, buf, len);
    pthread_mutex_lock(&g.mu);
    before_write(fd, -1, len);
    ssize_t r = g.real_write(fd, buf, len);
    pthread_mutex_unlock(&g.mu);
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    RESOLVE();
    if (!g.ready)
        return g.real_pwrite(fd, buf, len, off);
    pthread_mutex_lock(&g.mu);
    before_write(fd, off, len);
    ssize_t r = g.real_pwrite(fd, buf, len, off);
    pthread_mutex_unlock(&g.mu);
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
    RESOLVE();
    if (!g.ready)
        return g.real_pwrite64(fd, buf, len, off);
    pthread_mutex_lock(&g.mu);
    before_write(fd, off, len);
    ssize_t r = g.real_pwrite64(fd, buf, len, off);
    pthread_mutex_unlock(&g.mu);
    return r;
}

int ftruncate(int fd, off_t size)
{
    RESOLVE();
    if (!g.ready)
        return g.real_ftruncate(fd, size);
    pthread_mutex_lock(&g.mu);
    before_truncate(fd, size);
    int r = g.real_ftruncate(fd, size);
    pthread_mutex_unlock(&g.mu);
    return r;
}

int ftruncate64(int fd, off64_t size)
{
    RESOLVE();
    if (!g.ready)
        return g.real_ftruncate64(fd, size);
    pthread_mutex_lock(&g.mu);
    before_truncate(fd, size);
    int r = g.real_ftruncate64(fd, size);
    pthread_mutex_unlock(&g.mu);
    return r;
}

int fsync(int fd)
{
    RESOLVE();
    if (!g.ready)
        return g.real_fsync(fd);
    pthread_mutex_lock(&g.mu);
    int r = g.real_fsync(fd);
    if (r == 0)
        forget_journal(fd);
    pthread_mutex_unlock(&g.mu);
    return r;
}

int fdatasync(int fd)
{
    RESOLVE();
    if (!g.ready)
        return g.real_fdatasync(fd);
    pthread_mutex_lock(&g.mu);
    int r = g.real_fdatasync(fd);
    if (r == 0)
        forget_journal(fd);
    pthread_mutex_unlock(&g.mu);
    return r;
}

/* Removing a file is a directory operation, which this shim counts as durable: the
 * file's journal goes with it (SQLite deletes its WAL this way at a clean close). */
int unlink(const char *path)
{
    RESOLVE();
    if (!g.ready)
        return g.real_unlink(path);
    pthread_mutex_lock(&g.mu);
    char real[PATH_MAX];
    bool known = realpath(path, real) != NULL;
    int r = g.real_unlink(path);
    if (r == 0 && known && watched_path(real)) {
        crash_file *f = find_path(real);
        if (f != NULL) {
            drop_journal(f);
        } else {
            char name[PATH_MAX];
            journal_name(real, name, sizeof(name));
            g.real_unlink(name);
        }
    }
    pthread_mutex_unlock(&g.mu);
    return r;
}
