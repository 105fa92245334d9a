/* The SQLite implementation of the store (see store.h): one connection, serialised by a
 * mutex, every change in one BEGIN IMMEDIATE ... COMMIT, every value bound as a
 * parameter. Durability comes from WAL with synchronous=FULL. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "store/migrations.h"
#include "store/sqlite_internal.h"

/* How long a writer waits for another connection's lock (another process opening the
 * same file, e.g. a backup tool) before the change fails. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* ---------------------------------------------------------------- helpers */

int kl_sq_map_rc(sqlite3 *db, int rc, const char *what)
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
    /* SQLite's messages name tables and constraints, never bound values. */
    kl_log(KL_LOG_ERROR, "store_error", "op", what, "sqlite", db ? sqlite3_errmsg(db) : "open",
           NULL);
    return KL_EIO;
}

void kl_sq_lock(kl_store *st)
{
    pthread_mutex_lock(&st->mu);
}

void kl_sq_unlock(kl_store *st)
{
    pthread_mutex_unlock(&st->mu);
}

char *kl_sq_lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        o[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    o[n] = '\0';
    return o;
}

int kl_sq_prepare(kl_store *st, const char *sql, sqlite3_stmt **stmt)
{
    int rc = sqlite3_prepare_v3(st->db, sql, -1, 0, stmt, NULL);
    if (rc != SQLITE_OK) {
        *stmt = NULL;
        return kl_sq_map_rc(st->db, rc, "prepare");
    }
    return 0;
}

/* Runs a constant statement (no parameters) to completion, ignoring any rows. */
int kl_sq_exec(kl_store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st, sql, &s);
    if (err)
        return err;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, sql);
    sqlite3_finalize(s);
    return err;
}

int kl_sq_begin(kl_store *st, bool write)
{
    return kl_sq_exec(st, write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

/* Ends the transaction: COMMIT when err is 0 (the change is acknowledged only if this
 * succeeds), ROLLBACK otherwise. Returns the final result. */
int kl_sq_end(kl_store *st, int err)
{
    if (err == 0) {
        err = kl_sq_exec(st, "COMMIT");
        if (err == 0)
            return 0;
    }
    if (!sqlite3_get_autocommit(st->db))
        (void)kl_sq_exec(st, "ROLLBACK");
    return err;
}

int kl_sq_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    int rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
    return rc == SQLITE_OK ? 0 : KL_ENOMEM;
}

int kl_sq_bind_int(sqlite3_stmt *s, int i, int64_t v)
{
    return sqlite3_bind_int64(s, i, v) == SQLITE_OK ? 0 : KL_ENOMEM;
}

/* Steps a statement expected to produce no rows. */
int kl_sq_step_done(kl_store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_ROW)
        return KL_EINTERNAL;
    return kl_sq_map_rc(st->db, rc, what);
}

/* Copies a text column; a NULL column gives NULL with 0, a failed copy KL_ENOMEM. */
int kl_sq_col_dup(sqlite3_stmt *s, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t)
        return KL_ENOMEM;
    int n = sqlite3_column_bytes(s, i);
    char *c = malloc((size_t)n + 1);
    if (!c)
        return KL_ENOMEM;
    memcpy(c, t, (size_t)n);
    c[n] = '\0';
    *out = c;
    return 0;
}

/* True if s is NULL (when allowed) or the text of a JSON object. */
static bool json_object_text(const char *s, bool null_ok)
{
    if (!s)
        return null_ok;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

static void free_secret_str(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Looks up an account's surrogate key by name; KL_ENOTFOUND if none. */
static int account_pk(kl_store *st, const char *name, int64_t *pk)
{
    sqlite3_stmt *s = NULL;
    char *lname = kl_sq_lower_dup(name);
    int err =
        lname ? kl_sq_prepare(st, "SELECT pk FROM accounts WHERE name_lower = ?1", &s) : KL_ENOMEM;
    if (err)
        goto out;
    if ((err = kl_sq_bind_text(s, 1, lname)))
        goto out;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *pk = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        err = KL_ENOTFOUND;
    else
        err = kl_sq_map_rc(st->db, rc, "account_pk");
out:
    sqlite3_finalize(s);
    free(lname);
    return err;
}

/* ---------------------------------------------------------------- open and migrate */

static int migrate(kl_store *st)
{
    size_t n = 0;
    const kl_store_migration *m = kl_store_migrations(&n);
    sqlite3_stmt *s = NULL;
    int err = kl_sq_exec(st, "CREATE TABLE IF NOT EXISTS schema_version ("
                             " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    if (err)
        return err;

    if ((err = kl_sq_prepare(st, "SELECT coalesce(max(version), 0) FROM schema_version", &s)))
        return err;
    int rc = sqlite3_step(s);
    int64_t have = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    s = NULL;
    if (have < 0)
        return kl_sq_map_rc(st->db, rc, "schema_version");
    if (n > 0 && have > m[n - 1].version) {
        kl_log(KL_LOG_ERROR, "store_schema_too_new", NULL);
        return KL_ECONFLICT;
    }

    for (size_t i = 0; i < n; i++) {
        if ((err = kl_sq_begin(st, true)))
            return err;
        /* Re-checked inside the write transaction: another process may have migrated
         * the same file meanwhile. */
        bool applied = false;
        if ((err = kl_sq_prepare(st, "SELECT 1 FROM schema_version WHERE version = ?1", &s)))
            goto fail;
        if ((err = kl_sq_bind_int(s, 1, m[i].version)))
            goto fail;
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            applied = true;
        else if (rc != SQLITE_DONE) {
            err = kl_sq_map_rc(st->db, rc, "schema_version");
            goto fail;
        }
        sqlite3_finalize(s);
        s = NULL;
        if (!applied) {
            const char *sql = m[i].sql;
            while (sql && *sql) {
                const char *tail = NULL;
                rc = sqlite3_prepare_v3(st->db, sql, -1, 0, &s, &tail);
                if (rc != SQLITE_OK) {
                    err = kl_sq_map_rc(st->db, rc, "migration");
                    goto fail;
                }
                if (s) { /* NULL for trailing whitespace */
                    if ((err = kl_sq_step_done(st, s, "migration")))
                        goto fail;
                    sqlite3_finalize(s);
                    s = NULL;
                }
                sql = tail;
            }
            if ((err = kl_sq_prepare(st,
                                     "INSERT INTO schema_version (version, applied_at) "
                                     "VALUES (?1, ?2)",
                                     &s)))
                goto fail;
            if ((err = kl_sq_bind_int(s, 1, m[i].version)) ||
                (err = kl_sq_bind_int(s, 2, time(NULL))) ||
                (err = kl_sq_step_done(st, s, "migration")))
                goto fail;
            sqlite3_finalize(s);
            s = NULL;
        }
        if ((err = kl_sq_end(st, 0)))
            return err;
        if (!applied) {
            char v[16];
            snprintf(v, sizeof(v), "%d", m[i].version);
            kl_log(KL_LOG_INFO, "store_migrated", "version", v, "what", m[i].what, NULL);
        }
    }
    return 0;
fail:
    sqlite3_finalize(s);
    return kl_sq_end(st, err ? err : KL_EINTERNAL);
}

/* Creates the file 0600 before SQLite sees it (SQLite would use the umask), and
 * tightens an existing one; the -wal and -shm files inherit this mode. */
static int prepare_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        kl_log(KL_LOG_ERROR, "store_open_failed", "path", path, "reason", strerror(errno), NULL);
        return KL_EIO;
    }
    int err = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        err = KL_EIO;
    else if ((sb.st_mode & 077) != 0 && fchmod(fd, 0600) != 0)
        err = KL_EIO;
    close(fd);
    if (err)
        kl_log(KL_LOG_ERROR, "store_open_failed", "path", path, "reason", "not a private file",
               NULL);
    return err;
}

int kl_store_open_sqlite(const char *path, kl_store **out)
{
    if (!path || !out)
        return KL_EINVAL;
    *out = NULL;
    int err = prepare_file(path);
    if (err)
        return err;
    kl_store *st = calloc(1, sizeof(*st));
    if (!st)
        return KL_ENOMEM;
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return KL_ENOMEM;
    }
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        err = kl_sq_map_rc(st->db, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    /* Nothing but this code should be able to corrupt the file or run schema code. */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);

    sqlite3_stmt *s = NULL;
    if ((err = kl_sq_prepare(st, "PRAGMA journal_mode=WAL", &s)))
        goto out;
    rc = sqlite3_step(s);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        err = rc == SQLITE_ROW ? KL_EIO : kl_sq_map_rc(st->db, rc, "journal_mode");
        kl_log(KL_LOG_ERROR, "store_open_failed", "path", path, "reason", "WAL unavailable", NULL);
        goto out;
    }
    if ((err = kl_sq_exec(st, "PRAGMA synchronous=FULL")) ||
        (err = kl_sq_exec(st, "PRAGMA foreign_keys=ON")))
        goto out;
    kl_sq_lock(st);
    err = migrate(st);
    if (!err)
        err = kl_sq_seed_directory(st);
    kl_sq_unlock(st);
out:
    if (err) {
        kl_store_close(st);
        return err;
    }
    *out = st;
    return 0;
}

void kl_store_close(kl_store *st)
{
    if (!st)
        return;
    if (st->db)
        sqlite3_close_v2(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

int kl_store_schema_version(kl_store *st, int *version)
{
    if (!st || !version)
        return KL_EINVAL;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st, "SELECT coalesce(max(version), 0) FROM schema_version", &s);
    if (!err) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            *version = sqlite3_column_int(s, 0);
        else
            err = kl_sq_map_rc(st->db, rc, "schema_version");
    }
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    return err;
}

/* ---------------------------------------------------------------- accounts */

#define ACCOUNT_COLS                                                                               \
    "id, subscription, resource_group, name, location, kind, sku, tags, properties, "              \
    "disable_local_auth, etag, created_at, modified_at"

static int read_account(sqlite3_stmt *s, kl_store_account **out)
{
    kl_store_account *a = calloc(1, sizeof(*a));
    if (!a)
        return KL_ENOMEM;
    int err = 0;
    if ((err = kl_sq_col_dup(s, 0, &a->id)) || (err = kl_sq_col_dup(s, 1, &a->subscription)) ||
        (err = kl_sq_col_dup(s, 2, &a->resource_group)) || (err = kl_sq_col_dup(s, 3, &a->name)) ||
        (err = kl_sq_col_dup(s, 4, &a->location)) || (err = kl_sq_col_dup(s, 5, &a->kind)) ||
        (err = kl_sq_col_dup(s, 6, &a->sku)) || (err = kl_sq_col_dup(s, 7, &a->tags)) ||
        (err = kl_sq_col_dup(s, 8, &a->properties)) || (err = kl_sq_col_dup(s, 10, &a->etag))) {
        kl_store_account_free(a);
        return err;
    }
    a->disable_local_auth = sqlite3_column_int(s, 9) != 0;
    a->created_at = sqlite3_column_int64(s, 11);
    a->modified_at = sqlite3_column_int64(s, 12);
    *out = a;
    return 0;
}

static int check_keys(const kl_store_key *keys, size_t n)
{
    if (n > 2 || (n > 0 && !keys))
        return KL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if ((keys[i].slot != 1 && keys[i].slot != 2) || !keys[i].sealed)
            return KL_EINVAL;
        if (i == 1 && keys[0].slot == keys[1].slot)
            return KL_EINVAL;
    }
    return 0;
}

/* Writes key slots (insert or replace) inside the caller's transaction. */
static int write_keys(kl_store *st, int64_t pk, const kl_store_key *keys, size_t n)
{
    sqlite3_stmt *s = NULL;
    int err =
        kl_sq_prepare(st,
                      "INSERT INTO account_keys (account_pk, slot, sealed, key_index, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account_pk, slot) DO UPDATE SET "
                      "sealed = excluded.sealed, key_index = excluded.key_index, "
                      "created_at = excluded.created_at",
                      &s);
    for (size_t i = 0; !err && i < n; i++) {
        sqlite3_reset(s);
        if ((err = kl_sq_bind_int(s, 1, pk)) || (err = kl_sq_bind_int(s, 2, keys[i].slot)) ||
            (err = kl_sq_bind_text(s, 3, keys[i].sealed)))
            break;
        if (sqlite3_bind_blob(s, 4, keys[i].index, 32, SQLITE_STATIC) != SQLITE_OK) {
            err = KL_ENOMEM;
            break;
        }
        if ((err = kl_sq_bind_int(s, 5, keys[i].created_at)))
            break;
        err = kl_sq_step_done(st, s, "write_keys");
    }
    sqlite3_finalize(s);
    return err;
}

int kl_store_put_account(kl_store *st, const kl_store_account *a, const kl_store_key *keys,
                         size_t n_keys, bool *created)
{
    if (!st || !a || !a->id || !a->subscription || !a->resource_group || !a->name || !a->location ||
        !a->kind || !a->etag || check_keys(keys, n_keys))
        return KL_EINVAL;
    const char *sku = a->sku ? a->sku : "{}";
    const char *tags = a->tags ? a->tags : "{}";
    const char *props = a->properties ? a->properties : "{}";
    if (!json_object_text(sku, false) || !json_object_text(tags, false) ||
        !json_object_text(props, false))
        return KL_EINVAL;
    char *lname = kl_sq_lower_dup(a->name);
    char *lid = kl_sq_lower_dup(a->id);
    sqlite3_stmt *s = NULL;
    bool was_created = false;
    int err = (lname && lid) ? 0 : KL_ENOMEM;
    if (err)
        goto out_free;

    kl_sq_lock(st);
    if ((err = kl_sq_begin(st, true)))
        goto out_unlock;
    if ((err = kl_sq_prepare(st, "SELECT pk, id_lower FROM accounts WHERE name_lower = ?1", &s)) ||
        (err = kl_sq_bind_text(s, 1, lname)))
        goto out_txn;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        int64_t pk = sqlite3_column_int64(s, 0);
        const char *have = (const char *)sqlite3_column_text(s, 1);
        if (!have || strcmp(have, lid) != 0) {
            err = KL_ECONFLICT;
            goto out_txn;
        }
        sqlite3_finalize(s);
        s = NULL;
        if ((err =
                 kl_sq_prepare(st,
                               "UPDATE accounts SET location = ?1, kind = ?2, sku = ?3, tags = ?4, "
                               "properties = ?5, disable_local_auth = ?6, etag = ?7, "
                               "modified_at = ?8 WHERE pk = ?9",
                               &s)))
            goto out_txn;
        if ((err = kl_sq_bind_text(s, 1, a->location)) || (err = kl_sq_bind_text(s, 2, a->kind)) ||
            (err = kl_sq_bind_text(s, 3, sku)) || (err = kl_sq_bind_text(s, 4, tags)) ||
            (err = kl_sq_bind_text(s, 5, props)) ||
            (err = kl_sq_bind_int(s, 6, a->disable_local_auth)) ||
            (err = kl_sq_bind_text(s, 7, a->etag)) ||
            (err = kl_sq_bind_int(s, 8, a->modified_at)) || (err = kl_sq_bind_int(s, 9, pk)))
            goto out_txn;
        err = kl_sq_step_done(st, s, "update_account");
    } else if (rc == SQLITE_DONE) {
        sqlite3_finalize(s);
        s = NULL;
        if ((err =
                 kl_sq_prepare(st,
                               "INSERT INTO accounts (id, id_lower, subscription, resource_group, "
                               "name, name_lower, location, kind, sku, tags, properties, "
                               "disable_local_auth, etag, created_at, modified_at) VALUES "
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                               &s)))
            goto out_txn;
        if ((err = kl_sq_bind_text(s, 1, a->id)) || (err = kl_sq_bind_text(s, 2, lid)) ||
            (err = kl_sq_bind_text(s, 3, a->subscription)) ||
            (err = kl_sq_bind_text(s, 4, a->resource_group)) ||
            (err = kl_sq_bind_text(s, 5, a->name)) || (err = kl_sq_bind_text(s, 6, lname)) ||
            (err = kl_sq_bind_text(s, 7, a->location)) || (err = kl_sq_bind_text(s, 8, a->kind)) ||
            (err = kl_sq_bind_text(s, 9, sku)) || (err = kl_sq_bind_text(s, 10, tags)) ||
            (err = kl_sq_bind_text(s, 11, props)) ||
            (err = kl_sq_bind_int(s, 12, a->disable_local_auth)) ||
            (err = kl_sq_bind_text(s, 13, a->etag)) ||
            (err = kl_sq_bind_int(s, 14, a->created_at)) ||
            (err = kl_sq_bind_int(s, 15, a->modified_at)))
            goto out_txn;
        if ((err = kl_sq_step_done(st, s, "insert_account")))
            goto out_txn;
        int64_t pk = sqlite3_last_insert_rowid(st->db);
        err = write_keys(st, pk, keys, n_keys);
        was_created = true;
    } else {
        err = kl_sq_map_rc(st->db, rc, "put_account");
    }
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out_unlock:
    kl_sq_unlock(st);
out_free:
    free(lname);
    free(lid);
    if (!err && created)
        *created = was_created;
    return err;
}

int kl_store_get_account(kl_store *st, const char *name, kl_store_account **out)
{
    if (!st || !name || !out)
        return KL_EINVAL;
    *out = NULL;
    char *lname = kl_sq_lower_dup(name);
    if (!lname)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st, "SELECT " ACCOUNT_COLS " FROM accounts WHERE name_lower = ?1", &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, lname))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = read_account(s, out);
        else if (rc == SQLITE_DONE)
            err = KL_ENOTFOUND;
        else
            err = kl_sq_map_rc(st->db, rc, "get_account");
    }
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    free(lname);
    return err;
}

/* Appends p to a growable pointer array. */
int kl_sq_push(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void **g = realloc(*arr, ncap * sizeof(void *));
        if (!g)
            return KL_ENOMEM;
        *arr = g;
        *cap = ncap;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

int kl_store_list_accounts(kl_store *st, const char *subscription, const char *resource_group,
                           kl_store_account ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    void **arr = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err =
        kl_sq_prepare(st,
                      "SELECT " ACCOUNT_COLS " FROM accounts WHERE "
                      "(?1 IS NULL OR subscription = ?1 COLLATE NOCASE) AND "
                      "(?2 IS NULL OR resource_group = ?2 COLLATE NOCASE) ORDER BY name_lower",
                      &s);
    if (err || (err = kl_sq_bind_text(s, 1, subscription)) ||
        (err = kl_sq_bind_text(s, 2, resource_group)))
        goto out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_account *a = NULL;
        if ((err = read_account(s, &a)))
            goto out;
        if ((err = kl_sq_push(&arr, &cnt, &cap, a))) {
            kl_store_account_free(a);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "list_accounts");
out:
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    if (err) {
        kl_store_accounts_free((kl_store_account **)arr, cnt);
        return err;
    }
    *out = (kl_store_account **)arr;
    *n = cnt;
    return 0;
}

int kl_store_delete_account(kl_store *st, const char *name)
{
    if (!st || !name)
        return KL_EINVAL;
    char *lname = kl_sq_lower_dup(name);
    if (!lname)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    char *id_lower = NULL;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, true);
    if (err)
        goto out;
    /* Role assignments at the account or below go first (they name it only by scope);
     * keys and deployments go with it through ON DELETE CASCADE. */
    if ((err = kl_sq_prepare(st, "SELECT id_lower FROM accounts WHERE name_lower = ?1", &s)) ||
        (err = kl_sq_bind_text(s, 1, lname)))
        goto out_txn;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        err = KL_ENOTFOUND;
        goto out_txn;
    }
    if (rc != SQLITE_ROW) {
        err = kl_sq_map_rc(st->db, rc, "delete_account");
        goto out_txn;
    }
    if ((err = kl_sq_col_dup(s, 0, &id_lower)) || !id_lower) {
        err = err ? err : KL_EINTERNAL;
        goto out_txn;
    }
    sqlite3_finalize(s);
    s = NULL;
    if ((err = kl_sq_delete_assignments_under(st, id_lower)))
        goto out_txn;
    if (!(err = kl_sq_prepare(st, "DELETE FROM accounts WHERE name_lower = ?1", &s)) &&
        !(err = kl_sq_bind_text(s, 1, lname)) &&
        !(err = kl_sq_step_done(st, s, "delete_account")) && sqlite3_changes(st->db) == 0)
        err = KL_ENOTFOUND;
out_txn:
    sqlite3_finalize(s);
    free(id_lower);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    free(lname);
    return err;
}

/* ---------------------------------------------------------------- keys */

int kl_store_set_account_keys(kl_store *st, const char *name, const kl_store_key *keys, size_t n)
{
    if (!st || !name || n == 0 || check_keys(keys, n))
        return KL_EINVAL;
    kl_sq_lock(st);
    int64_t pk = 0;
    int err = kl_sq_begin(st, true);
    if (err)
        goto out;
    if (!(err = account_pk(st, name, &pk)))
        err = write_keys(st, pk, keys, n);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    return err;
}

int kl_store_regenerate_account_key(kl_store *st, const char *name, const kl_store_key *k)
{
    return kl_store_set_account_keys(st, name, k, 1);
}

static int read_key(sqlite3_stmt *s, int col, kl_store_key *k)
{
    memset(k, 0, sizeof(*k));
    k->slot = sqlite3_column_int(s, col);
    int err = kl_sq_col_dup(s, col + 1, &k->sealed);
    if (err)
        return err;
    const void *b = sqlite3_column_blob(s, col + 2);
    if (!b || sqlite3_column_bytes(s, col + 2) != 32)
        return KL_EINTERNAL;
    memcpy(k->index, b, 32);
    k->created_at = sqlite3_column_int64(s, col + 3);
    return 0;
}

int kl_store_get_account_keys(kl_store *st, const char *name, kl_store_key **out, size_t *n)
{
    if (!st || !name || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    kl_store_key *keys = calloc(2, sizeof(*keys));
    if (!keys)
        return KL_ENOMEM;
    size_t cnt = 0;
    sqlite3_stmt *s = NULL;
    int64_t pk = 0;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, false);
    if (err)
        goto out;
    if ((err = account_pk(st, name, &pk)))
        goto out_txn;
    if ((err = kl_sq_prepare(st,
                             "SELECT slot, sealed, key_index, created_at FROM account_keys "
                             "WHERE account_pk = ?1 ORDER BY slot",
                             &s)) ||
        (err = kl_sq_bind_int(s, 1, pk)))
        goto out_txn;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && cnt < 2) {
        if ((err = read_key(s, 0, &keys[cnt])))
            goto out_txn;
        cnt++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = kl_sq_map_rc(st->db, rc, "get_keys");
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    if (err) {
        kl_store_keys_free(keys, 2);
        return err;
    }
    *out = keys;
    *n = cnt;
    return 0;
}

/* ---------------------------------------------------------------- deployments */

#define DEPLOYMENT_COLS                                                                            \
    "a.name, d.name, d.sku, d.model, d.backend, d.upstream_url, d.upstream_model, "                \
    "d.credential_sealed, d.created_at, d.modified_at"

static int read_deployment(sqlite3_stmt *s, kl_store_deployment **out)
{
    kl_store_deployment *d = calloc(1, sizeof(*d));
    if (!d)
        return KL_ENOMEM;
    int err;
    if ((err = kl_sq_col_dup(s, 0, &d->account_name)) || (err = kl_sq_col_dup(s, 1, &d->name)) ||
        (err = kl_sq_col_dup(s, 2, &d->sku)) || (err = kl_sq_col_dup(s, 3, &d->model)) ||
        (err = kl_sq_col_dup(s, 4, &d->backend)) || (err = kl_sq_col_dup(s, 5, &d->upstream_url)) ||
        (err = kl_sq_col_dup(s, 6, &d->upstream_model)) ||
        (err = kl_sq_col_dup(s, 7, &d->credential_sealed))) {
        kl_store_deployment_free(d);
        return err;
    }
    d->created_at = sqlite3_column_int64(s, 8);
    d->modified_at = sqlite3_column_int64(s, 9);
    *out = d;
    return 0;
}

static bool deployment_valid(const kl_store_deployment *d)
{
    if (!d->name || !d->backend || !json_object_text(d->sku, true) ||
        !json_object_text(d->model, true))
        return false;
    if (strcmp(d->backend, "echo") == 0)
        return !d->upstream_url && !d->upstream_model && !d->credential_sealed;
    if (strcmp(d->backend, "upstream") == 0)
        return d->upstream_url && d->upstream_model;
    return false;
}

int kl_store_put_deployment(kl_store *st, const char *account_name, const kl_store_deployment *d,
                            bool keep_credential, bool *created)
{
    if (!st || !account_name || !d || !deployment_valid(d))
        return KL_EINVAL;
    sqlite3_stmt *s = NULL;
    int64_t pk = 0;
    bool exists = false;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, true);
    if (err)
        goto out;
    if ((err = account_pk(st, account_name, &pk)))
        goto out_txn;
    if ((err = kl_sq_prepare(st, "SELECT 1 FROM deployments WHERE account_pk = ?1 AND name = ?2",
                             &s)) ||
        (err = kl_sq_bind_int(s, 1, pk)) || (err = kl_sq_bind_text(s, 2, d->name)))
        goto out_txn;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        exists = true;
    else if (rc != SQLITE_DONE) {
        err = kl_sq_map_rc(st->db, rc, "put_deployment");
        goto out_txn;
    }
    sqlite3_finalize(s);
    s = NULL;
    /* The stored credential is kept only for the same upstream URL, so that changing
     * where requests go never sends the old credential to the new place. */
    if ((err = kl_sq_prepare(
             st,
             "INSERT INTO deployments (account_pk, name, sku, model, backend, "
             "upstream_url, upstream_model, credential_sealed, created_at, "
             "modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
             "ON CONFLICT (account_pk, name) DO UPDATE SET sku = excluded.sku, "
             "model = excluded.model, backend = excluded.backend, "
             "upstream_url = excluded.upstream_url, "
             "upstream_model = excluded.upstream_model, "
             "credential_sealed = CASE WHEN ?11 AND excluded.credential_sealed IS NULL "
             "AND excluded.backend = 'upstream' AND deployments.backend = 'upstream' "
             "AND deployments.upstream_url = excluded.upstream_url "
             "THEN deployments.credential_sealed ELSE excluded.credential_sealed END, "
             "modified_at = excluded.modified_at",
             &s)))
        goto out_txn;
    if ((err = kl_sq_bind_int(s, 1, pk)) || (err = kl_sq_bind_text(s, 2, d->name)) ||
        (err = kl_sq_bind_text(s, 3, d->sku)) || (err = kl_sq_bind_text(s, 4, d->model)) ||
        (err = kl_sq_bind_text(s, 5, d->backend)) ||
        (err = kl_sq_bind_text(s, 6, d->upstream_url)) ||
        (err = kl_sq_bind_text(s, 7, d->upstream_model)) ||
        (err = kl_sq_bind_text(s, 8, d->credential_sealed)) ||
        (err = kl_sq_bind_int(s, 9, d->created_at)) ||
        (err = kl_sq_bind_int(s, 10, d->modified_at)) ||
        (err = kl_sq_bind_int(s, 11, keep_credential)))
        goto out_txn;
    err = kl_sq_step_done(st, s, "put_deployment");
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    if (!err && created)
        *created = !exists;
    return err;
}

int kl_store_get_deployment(kl_store *st, const char *account_name, const char *name,
                            kl_store_deployment **out)
{
    if (!st || !account_name || !name || !out)
        return KL_EINVAL;
    *out = NULL;
    char *lname = kl_sq_lower_dup(account_name);
    if (!lname)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st,
                            "SELECT " DEPLOYMENT_COLS " FROM deployments d JOIN accounts a "
                            "ON a.pk = d.account_pk WHERE a.name_lower = ?1 AND d.name = ?2",
                            &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, lname)) && !(err = kl_sq_bind_text(s, 2, name))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = read_deployment(s, out);
        else if (rc == SQLITE_DONE)
            err = KL_ENOTFOUND;
        else
            err = kl_sq_map_rc(st->db, rc, "get_deployment");
    }
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    free(lname);
    return err;
}

int kl_store_list_deployments(kl_store *st, const char *account_name, kl_store_deployment ***out,
                              size_t *n)
{
    if (!st || !account_name || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    void **arr = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *s = NULL;
    int64_t pk = 0;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, false);
    if (err)
        goto out;
    if ((err = account_pk(st, account_name, &pk)))
        goto out_txn;
    if ((err = kl_sq_prepare(st,
                             "SELECT " DEPLOYMENT_COLS " FROM deployments d JOIN accounts a "
                             "ON a.pk = d.account_pk WHERE d.account_pk = ?1 ORDER BY d.name",
                             &s)) ||
        (err = kl_sq_bind_int(s, 1, pk)))
        goto out_txn;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_deployment *d = NULL;
        if ((err = read_deployment(s, &d)))
            goto out_txn;
        if ((err = kl_sq_push(&arr, &cnt, &cap, d))) {
            kl_store_deployment_free(d);
            goto out_txn;
        }
    }
    if (rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "list_deployments");
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    if (err) {
        kl_store_deployments_free((kl_store_deployment **)arr, cnt);
        return err;
    }
    *out = (kl_store_deployment **)arr;
    *n = cnt;
    return 0;
}

int kl_store_delete_deployment(kl_store *st, const char *account_name, const char *name)
{
    if (!st || !account_name || !name)
        return KL_EINVAL;
    sqlite3_stmt *s = NULL;
    int64_t pk = 0;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, true);
    if (err)
        goto out;
    if ((err = account_pk(st, account_name, &pk)))
        goto out_txn;
    if (!(err = kl_sq_prepare(st, "DELETE FROM deployments WHERE account_pk = ?1 AND name = ?2",
                              &s)) &&
        !(err = kl_sq_bind_int(s, 1, pk)) && !(err = kl_sq_bind_text(s, 2, name)) &&
        !(err = kl_sq_step_done(st, s, "delete_deployment")) && sqlite3_changes(st->db) == 0)
        err = KL_ENOTFOUND;
    sqlite3_finalize(s);
    s = NULL;
    /* The deployment's ARM id, lower-cased, is the scope its assignments sit at. */
    if (!err &&
        !(err = kl_sq_prepare(st,
                              "SELECT id_lower || '/deployments/' || lower(?2) "
                              "FROM accounts WHERE pk = ?1",
                              &s)) &&
        !(err = kl_sq_bind_int(s, 1, pk)) && !(err = kl_sq_bind_text(s, 2, name))) {
        char *dep_scope = NULL;
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = kl_sq_col_dup(s, 0, &dep_scope);
        else
            err = rc == SQLITE_DONE ? KL_EINTERNAL : kl_sq_map_rc(st->db, rc, "delete_deployment");
        if (!err && dep_scope)
            err = kl_sq_delete_assignments_under(st, dep_scope);
        free(dep_scope);
    }
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    return err;
}

/* ---------------------------------------------------------------- load everything */

static int load_accounts(kl_store *st, const kl_store_visitor *v)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st, "SELECT " ACCOUNT_COLS " FROM accounts ORDER BY name_lower", &s);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_account *a = NULL;
        if ((err = read_account(s, &a)))
            break;
        err = v->account(v->arg, a);
        kl_store_account_free(a);
    }
    if (!err && rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "load_accounts");
    sqlite3_finalize(s);
    return err;
}

static int load_keys(kl_store *st, const kl_store_visitor *v)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st,
                            "SELECT a.name, k.slot, k.sealed, k.key_index, k.created_at "
                            "FROM account_keys k JOIN accounts a ON a.pk = k.account_pk "
                            "ORDER BY a.name_lower, k.slot",
                            &s);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_key k;
        if ((err = read_key(s, 1, &k))) {
            free_secret_str(k.sealed);
            break;
        }
        const char *acct = (const char *)sqlite3_column_text(s, 0);
        err = acct ? v->key(v->arg, acct, &k) : KL_ENOMEM;
        free_secret_str(k.sealed);
    }
    if (!err && rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "load_keys");
    sqlite3_finalize(s);
    return err;
}

static int load_deployments(kl_store *st, const kl_store_visitor *v)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st,
                            "SELECT " DEPLOYMENT_COLS " FROM deployments d JOIN accounts a "
                            "ON a.pk = d.account_pk ORDER BY a.name_lower, d.name",
                            &s);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_deployment *d = NULL;
        if ((err = read_deployment(s, &d)))
            break;
        err = v->deployment(v->arg, d);
        kl_store_deployment_free(d);
    }
    if (!err && rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "load_deployments");
    sqlite3_finalize(s);
    return err;
}

int kl_store_load_all(kl_store *st, const kl_store_visitor *v)
{
    if (!st || !v)
        return KL_EINVAL;
    kl_sq_lock(st);
    /* One read transaction: in WAL mode it sees one committed state throughout. */
    int err = kl_sq_begin(st, false);
    if (err)
        goto out;
    if (v->account)
        err = load_accounts(st, v);
    if (!err && v->key)
        err = load_keys(st, v);
    if (!err && v->deployment)
        err = load_deployments(st, v);
    if (!err)
        err = kl_sq_load_directory(st, v);
    if (!err)
        err = kl_sq_load_rbac(st, v);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    return err;
}

/* ---------------------------------------------------------------- freeing */

void kl_store_account_free(kl_store_account *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->subscription);
    free(a->resource_group);
    free(a->name);
    free(a->location);
    free(a->kind);
    free(a->sku);
    free(a->tags);
    free(a->properties);
    free(a->etag);
    free(a);
}

void kl_store_accounts_free(kl_store_account **a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        kl_store_account_free(a[i]);
    free(a);
}

void kl_store_keys_free(kl_store_key *k, size_t n)
{
    if (!k)
        return;
    for (size_t i = 0; i < n; i++)
        free_secret_str(k[i].sealed);
    OPENSSL_cleanse(k, n * sizeof(*k));
    free(k);
}

void kl_store_deployment_free(kl_store_deployment *d)
{
    if (!d)
        return;
    free(d->account_name);
    free(d->name);
    free(d->sku);
    free(d->model);
    free(d->backend);
    free(d->upstream_url);
    free(d->upstream_model);
    free_secret_str(d->credential_sealed);
    free(d);
}

void kl_store_deployments_free(kl_store_deployment **d, size_t n)
{
    if (!d)
        return;
    for (size_t i = 0; i < n; i++)
        kl_store_deployment_free(d[i]);
    free(d);
}
