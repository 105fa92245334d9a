/* The SQLite driver of the store (see db.h): one connection to a private file, WAL with
 * synchronous=FULL for durability, BEGIN IMMEDIATE for writers. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "store/db.h"

struct kl_db {
    sqlite3 *db;
};

struct kl_stmt {
    kl_db *db;
    sqlite3_stmt *s;
};

static int map_rc(sqlite3 *db, int rc, const char *what)
{
    int primary = rc & 0xff;
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY: return KL_ECONFLICT;
    default: break;
    }
    if (primary == SQLITE_CONSTRAINT)
        return KL_EINVAL;
    if (primary == SQLITE_NOMEM)
        return KL_ENOMEM;
    if (primary == SQLITE_BUSY) {
        /* Another connection (a backup tool, a shell) held the file's lock for longer
         * than KL_STORE_LOCK_TIMEOUT_MS: unavailable for now, as PostgreSQL's lock
         * timeout is, so that the caller answers 503 and the client retries. */
        kl_log(KL_LOG_WARN, "store_busy", "op", what, "sqlite", db ? sqlite3_errmsg(db) : "open",
               NULL);
        return KL_EUNAVAIL;
    }
    /* SQLite's messages name tables and constraints, never bound values. */
    kl_log(KL_LOG_ERROR, "store_error", "op", what, "sqlite", db ? sqlite3_errmsg(db) : "open",
           NULL);
    return KL_EIO;
}

static int sq_prepare(kl_db *db, const char *sql, kl_stmt **out)
{
    *out = NULL;
    kl_stmt *st = calloc(1, sizeof(*st));
    if (!st)
        return KL_ENOMEM;
    int rc = sqlite3_prepare_v3(db->db, sql, -1, 0, &st->s, NULL);
    if (rc != SQLITE_OK) {
        free(st);
        return map_rc(db->db, rc, "prepare");
    }
    st->db = db;
    *out = st;
    return 0;
}

static int sq_bind(kl_stmt *s, int i, kl_val v)
{
    int rc = SQLITE_OK;
    switch (v.t) {
    case KL_V_TEXT:
        rc = v.s ? sqlite3_bind_text(s->s, i, v.s, -1, SQLITE_STATIC) : sqlite3_bind_null(s->s, i);
        break;
    case KL_V_INT: rc = sqlite3_bind_int64(s->s, i, v.i); break;
    case KL_V_NULLINT: rc = sqlite3_bind_null(s->s, i); break;
    case KL_V_BLOB: rc = sqlite3_bind_blob(s->s, i, v.b, (int)v.n, SQLITE_STATIC); break;
    }
    return rc == SQLITE_OK ? 0 : KL_ENOMEM;
}

static int sq_step(kl_stmt *s)
{
    int rc = sqlite3_step(s->s);
    if (rc == SQLITE_ROW)
        return KL_DB_ROW;
    if (rc == SQLITE_DONE)
        return KL_DB_DONE;
    return map_rc(s->db->db, rc, "step");
}

static bool sq_col_null(kl_stmt *s, int i)
{
    return sqlite3_column_type(s->s, i) == SQLITE_NULL;
}

static const char *sq_col_text(kl_stmt *s, int i, size_t *len)
{
    const char *t = (const char *)sqlite3_column_text(s->s, i);
    *len = t ? (size_t)sqlite3_column_bytes(s->s, i) : 0;
    return t;
}

static int64_t sq_col_int(kl_stmt *s, int i)
{
    return sqlite3_column_int64(s->s, i);
}

static int sq_col_blob(kl_stmt *s, int i, unsigned char *out, size_t n)
{
    const void *b = sqlite3_column_blob(s->s, i);
    if (!b || (size_t)sqlite3_column_bytes(s->s, i) != n)
        return KL_EINTERNAL;
    memcpy(out, b, n);
    return 0;
}

static int64_t sq_changes(kl_stmt *s)
{
    return sqlite3_changes64(s->db->db);
}

static void sq_finalize(kl_stmt *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->s);
    free(s);
}

static int sq_script(kl_db *db, const char *sql)
{
    int err = 0;
    while (!err && sql && *sql) {
        sqlite3_stmt *s = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v3(db->db, sql, -1, 0, &s, &tail);
        if (rc != SQLITE_OK)
            return map_rc(db->db, rc, "script");
        if (s) { /* NULL for trailing whitespace */
            while ((rc = sqlite3_step(s)) == SQLITE_ROW)
                ;
            if (rc != SQLITE_DONE)
                err = map_rc(db->db, rc, "script");
            sqlite3_finalize(s);
        }
        sql = tail;
    }
    return err;
}

static int sq_begin(kl_db *db, bool write)
{
    return sq_script(db, write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

static int sq_commit(kl_db *db)
{
    return sq_script(db, "COMMIT");
}

static void sq_rollback(kl_db *db)
{
    if (!sqlite3_get_autocommit(db->db))
        (void)sq_script(db, "ROLLBACK");
}

static void sq_close(kl_db *db)
{
    if (!db)
        return;
    if (db->db)
        sqlite3_close_v2(db->db);
    free(db);
}

static int sq_data_version(kl_db *db, int64_t *v)
{
    kl_stmt *s = NULL;
    int err = sq_prepare(db, "PRAGMA data_version", &s);
    if (!err && (err = sq_step(s)) == KL_DB_ROW) {
        *v = sq_col_int(s, 0);
        err = 0;
    } else if (!err) {
        err = KL_EIO;
    }
    sq_finalize(s);
    return err;
}

const kl_db_driver kl_db_sqlite_driver = {
    .engine = "sqlite",
    .prepare = sq_prepare,
    .bind = sq_bind,
    .step = sq_step,
    .col_null = sq_col_null,
    .col_text = sq_col_text,
    .col_int = sq_col_int,
    .col_blob = sq_col_blob,
    .changes = sq_changes,
    .finalize = sq_finalize,
    .script = sq_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
    .data_version = sq_data_version,
};

/* Creates the file 0600 before SQLite sees it (SQLite would use the umask), and
 * tightens an existing one; the -wal and -shm files inherit this mode. */
static int prepare_file(const char *path)
{
    /* An existing database is never opened here: closing any descriptor of a file drops
     * every POSIX lock this process holds on it, so an open-and-close while another
     * connection of this process has the database open (the refresh-token writer's own
     * connection, a second store) would silently cancel that connection's locks
     * (SQLite's "how to corrupt", section 2.2). It is checked by name instead. */
    struct stat sb;
    int err = 0;
    if (lstat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode))
            err = KL_EIO;
        else if ((sb.st_mode & 077) != 0 && chmod(path, 0600) != 0)
            err = KL_EIO;
    } else if (errno == ENOENT) {
        /* A new file: no connection can hold locks on it yet. */
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno != EEXIST) {
            kl_log(KL_LOG_ERROR, "store_open_failed", "path", path, "reason", strerror(errno),
                   NULL);
            return KL_EIO;
        }
        if (fd >= 0)
            close(fd);
        else
            return prepare_file(path); /* created meanwhile by another process */
    } else {
        kl_log(KL_LOG_ERROR, "store_open_failed", "path", path, "reason", strerror(errno), NULL);
        return KL_EIO;
    }
    if (err)
        kl_log(KL_LOG_ERROR, "store_open_failed", "path", path, "reason", "not a private file",
               NULL);
    return err;
}

int kl_db_sqlite_open(const char *path, kl_db **out)
{
    *out = NULL;
    int err = prepare_file(path);
    if (err)
        return err;
    kl_db *db = calloc(1, sizeof(*db));
    if (!db)
        return KL_ENOMEM;
    int rc = sqlite3_open_v2(
        path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        err = map_rc(db->db, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(db->db, 1);
    /* How long a writer waits for another connection's lock (another process opening
     * the same file, e.g. a backup tool) before the change fails. */
    sqlite3_busy_timeout(db->db, KL_STORE_LOCK_TIMEOUT_MS);
    /* Nothing but this code should be able to corrupt the file or run schema code. */
    sqlite3_db_config(db->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);

    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v3(db->db, "PRAGMA journal_mode=WAL", -1, 0, &s, NULL);
    if (rc != SQLITE_OK) {
        err = map_rc(db->db, rc, "journal_mode");
        goto out;
    }
    rc = sqlite3_step(s);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        err = rc == SQLITE_ROW ? KL_EIO : map_rc(db->db, rc, "journal_mode");
        kl_log(KL_LOG_ERROR, "store_open_failed", "path", path, "reason", "WAL unavailable", NULL);
        goto out;
    }
    if ((err = sq_script(db, "PRAGMA synchronous=FULL")) ||
        (err = sq_script(db, "PRAGMA foreign_keys=ON")))
        goto out;
out:
    if (err) {
        sq_close(db);
        return err;
    }
    *out = db;
    return 0;
}
