/* The store's thin database driver: open, prepare, bind, step, column, transaction, for
 * SQLite and PostgreSQL behind one table of functions, so that every query and
 * migration of the store is written once. SQL handed to a driver uses SQLite's
 * numbered placeholders (?1, ?2, ...) and a portable subset of SQL; the PostgreSQL
 * driver translates placeholders to $N and, in migrations only, the few type names
 * that differ (see db_pg.c). Internal to store/. */
#ifndef KL_STORE_DB_H
#define KL_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kl_db kl_db;     /* one connection (driver-specific) */
typedef struct kl_stmt kl_stmt; /* one prepared statement (driver-specific) */

/* A bound value. Text and blobs are borrowed: they must outlive the statement's
 * steps. A NULL text (s == NULL) binds SQL NULL typed as text. */
typedef enum kl_vtype { KL_V_TEXT, KL_V_INT, KL_V_NULLINT, KL_V_BLOB } kl_vtype;
typedef struct kl_val {
    kl_vtype t;
    const char *s;
    int64_t i;
    const void *b;
    size_t n; /* blob length */
} kl_val;

static inline kl_val kl_vt(const char *s)
{
    return (kl_val){.t = KL_V_TEXT, .s = s};
}
static inline kl_val kl_vi(int64_t i)
{
    return (kl_val){.t = KL_V_INT, .i = i};
}
static inline kl_val kl_vnull_int(void)
{
    return (kl_val){.t = KL_V_NULLINT};
}
static inline kl_val kl_vb(const void *b, size_t n)
{
    return (kl_val){.t = KL_V_BLOB, .b = b, .n = n};
}

/* Results of kl_db_driver.step. */
#define KL_DB_DONE 0
#define KL_DB_ROW 1

/* One engine. Every function returns 0 or a kl_err unless said otherwise; errors map
 * unique violations to KL_ECONFLICT, other constraint violations to KL_EINVAL, a lost
 * or refused connection to KL_EUNAVAIL and anything else to KL_EIO (logged without
 * bound values). */
typedef struct kl_db_driver {
    const char *engine; /* "sqlite" | "postgres" */
    /* Prepares one statement; *out owned by the caller (finalize). */
    int (*prepare)(kl_db *db, const char *sql, kl_stmt **out);
    /* Binds value i (1-based) before the first step. */
    int (*bind)(kl_stmt *s, int i, kl_val v);
    /* KL_DB_ROW, KL_DB_DONE or a negative kl_err. */
    int (*step)(kl_stmt *s);
    /* Columns of the current row (0-based). Text is valid until the next step. */
    bool (*col_null)(kl_stmt *s, int i);
    const char *(*col_text)(kl_stmt *s, int i, size_t *len);
    int64_t (*col_int)(kl_stmt *s, int i);
    /* Copies a blob column into out when it is exactly n bytes; KL_EINTERNAL if not. */
    int (*col_blob)(kl_stmt *s, int i, unsigned char *out, size_t n);
    /* Rows changed by the statement (after it is done). */
    int64_t (*changes)(kl_stmt *s);
    void (*finalize)(kl_stmt *s);
    /* Runs a script of statements without parameters (migrations). */
    int (*script)(kl_db *db, const char *sql);
    /* A write transaction is serialised against every other writer of the store (all
     * nodes); a read transaction sees one committed state throughout. */
    int (*begin)(kl_db *db, bool write);
    int (*commit)(kl_db *db);
    void (*rollback)(kl_db *db);
    void (*close)(kl_db *db);
    /* Announces a committed change to the other nodes (NULL: a single-node engine).
     * Called inside the write transaction, so it is delivered only on COMMIT. */
    int (*notify)(kl_db *db);
    /* A value that changes whenever another connection commits to the database (NULL:
     * the engine cannot tell). SQLite's data_version: it catches writes made around the
     * store (a shell, a restore), which log no change and so need a full build. */
    int (*data_version)(kl_db *db, int64_t *v);
    /* Whether the connection to the database is up (NULL: always, a local file). A call
     * that gave up on a lock or statement bound failed with KL_EUNAVAIL on a connection
     * that is still up: the store is busy, not unreachable. */
    bool (*connected)(kl_db *db);
    /* Lifts the statement bound for the rest of the current transaction (NULL: the
     * engine has none), for long work an operator asked for: migrations, copies. */
    int (*unbounded)(kl_db *db);
} kl_db_driver;

extern const kl_db_driver kl_db_sqlite_driver;

/* Opens the SQLite file at path (created 0600, WAL, synchronous=FULL, foreign keys).
 * *out owned by the caller (driver close). */
int kl_db_sqlite_open(const char *path, kl_db **out);

#endif
