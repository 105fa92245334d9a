/* Internal to store/: the SQLite connection and the small helpers every table's code
 * shares (locking, transactions, binding, copying columns), so that the accounts, the
 * directory and the role tables can live in separate files. Not for other components. */
#ifndef KL_STORE_SQLITE_INTERNAL_H
#define KL_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct kl_store {
    sqlite3 *db;
    pthread_mutex_t mu; /* one call at a time on the connection, transactions included */
};

/* Maps an SQLite result to a kl_err: unique/primary-key violations KL_ECONFLICT, other
 * constraints KL_EINVAL, NOMEM KL_ENOMEM, anything else KL_EIO (logged with what). */
int kl_sq_map_rc(sqlite3 *db, int rc, const char *what);
void kl_sq_lock(kl_store *st);
void kl_sq_unlock(kl_store *st);
/* ASCII lower-case copy; NULL on allocation failure. Caller frees. */
char *kl_sq_lower_dup(const char *s);
/* Prepares sql on the connection; *stmt is NULL on failure. */
int kl_sq_prepare(kl_store *st, const char *sql, sqlite3_stmt **stmt);
/* Runs a constant statement (no parameters) to completion, ignoring any rows. */
int kl_sq_exec(kl_store *st, const char *sql);
/* BEGIN IMMEDIATE (write) or BEGIN DEFERRED. */
int kl_sq_begin(kl_store *st, bool write);
/* COMMIT when err is 0 (the change is acknowledged only if this succeeds), else
 * ROLLBACK. Returns the final result. */
int kl_sq_end(kl_store *st, int err);
/* Binds text (NULL binds SQL NULL; the value must outlive the statement's step). */
int kl_sq_bind_text(sqlite3_stmt *s, int i, const char *v);
int kl_sq_bind_int(sqlite3_stmt *s, int i, int64_t v);
/* Steps a statement expected to produce no rows. */
int kl_sq_step_done(kl_store *st, sqlite3_stmt *s, const char *what);
/* Copies a text column; a NULL column gives NULL with 0, a failed copy KL_ENOMEM. */
int kl_sq_col_dup(sqlite3_stmt *s, int i, char **out);
/* Appends p to a growable pointer array. */
int kl_sq_push(void ***arr, size_t *n, size_t *cap, void *p);

/* --- used by sqlite.c, defined in sqlite_directory.c and sqlite_rbac.c --- */

/* Creates the tenant, the local administrator and its Owner assignment at "/" if the
 * store has no tenant yet (first start). One write transaction; idempotent. */
int kl_sq_seed_directory(kl_store *st);
/* Deletes, inside the caller's write transaction, the role assignments whose scope is
 * scope_lower (a lower-case resource id) or lies below it. */
int kl_sq_delete_assignments_under(kl_store *st, const char *scope_lower);
/* Counts the enabled principals' Owner assignments at "/" (the root owner rule). */
int kl_sq_root_owner_count(kl_store *st, int64_t *n);
/* KL_EPERM if there were root owners (before > 0) and the transaction's changes left
 * none; the caller then rolls back. */
int kl_sq_check_root_owner(kl_store *st, int64_t before);
/* The load_all walkers for the directory and role tables (inside its transaction). */
int kl_sq_load_directory(kl_store *st, const kl_store_visitor *v);
int kl_sq_load_rbac(kl_store *st, const kl_store_visitor *v);

#endif
