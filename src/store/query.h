/* Internal to store/: the store's connection (a driver and its database), locking and
 * transactions, and the query helpers every table shares: one call runs a statement
 * with its arguments, and a table-driven row mapper turns rows into the typed structs
 * of store.h, so that a table costs a column description rather than bind and column
 * calls. Not for other components. */
#ifndef KL_STORE_QUERY_H
#define KL_STORE_QUERY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "store/db.h"
#include "store/store.h"

struct kl_store {
    const kl_db_driver *drv;
    kl_db *db;
    pthread_mutex_t mu; /* one call at a time on the connection, transactions included */
    bool in_write;      /* inside a write transaction (generation bump on commit) */
    bool gen_ready;     /* migrations done: writes bump the generation */
    atomic_bool reachable;
    char *url; /* PostgreSQL only, for the watcher's own connection */
    /* The watcher (kl_store_watch): its thread, a pipe that wakes it to stop. */
    bool watching;
    pthread_t watcher;
    int wake[2];
    atomic_bool stop;
    int (*changed)(void *arg);
    void *changed_arg;
    int64_t watch_seen; /* the generation when watching started */
    /* The generation of this connection's last commit: the writer rebuilds its own
     * snapshot before it answers, so the watcher need not rebuild again for it. */
    _Atomic int64_t own_gen;
    /* What the current write transaction changed (kl_q_changed), logged to store_changes
     * by kl_q_end; a write that names nothing is logged as 'all'. */
    struct kl_q_change {
        const char *kind; /* static string */
        char *key;        /* owned */
    } changes[KL_STORE_MAX_CHANGED];
    size_t n_changes;
    bool changes_all; /* more than fit, or a copy failed: log 'all' */
    /* The driver's data_version when load_all last read (-1: never, or no such value):
     * load_since asks for a full build when it has moved, i.e. when something wrote the
     * database around the store. */
    int64_t loaded_version;
};

/* The arguments of one statement: KL_ARGS(kl_vt(a), kl_vi(b)) expands to an array and
 * its length. */
#define KL_ARGS(...)                                                                               \
    (const kl_val[]){__VA_ARGS__}, sizeof((const kl_val[]){__VA_ARGS__}) / sizeof(kl_val)
#define KL_NOARGS NULL, 0

/* --- row mapping --- */

typedef enum kl_coltype {
    KL_COL_TEXT,   /* char * (NULL for SQL NULL) */
    KL_COL_SECRET, /* char *, cleansed before free */
    KL_COL_I64,    /* int64_t */
    KL_COL_INT,    /* int */
    KL_COL_BOOL,   /* bool from 0/1 */
    KL_COL_KEY32   /* unsigned char[32] from a 32-byte blob */
} kl_coltype;

typedef struct kl_col {
    kl_coltype t;
    size_t off; /* offsetof the member */
} kl_col;

/* One kl_col: the column type's KL_COL_ suffix (TEXT, I64, ...) and the struct member it
 * fills. */
#define KL_MAP_COL(t, type, member)                                                                \
    {                                                                                              \
        KL_COL_##t, offsetof(type, member)                                                         \
    }

/* A struct of store.h as the columns of a SELECT, in order. */
typedef struct kl_rowmap {
    size_t size; /* sizeof the struct */
    size_t ncols;
    const kl_col *cols;
} kl_rowmap;

#define KL_ROWMAP(type, cols)                                                                      \
    {                                                                                              \
        sizeof(type), sizeof(cols) / sizeof(cols[0]), cols                                         \
    }

/* The maps of the store's structs (defined in query.c). */
extern const kl_rowmap kl_map_account, kl_map_key, kl_map_deployment, kl_map_tenant,
    kl_map_principal, kl_map_application, kl_map_role_definition, kl_map_role_assignment,
    kl_map_signing_key, kl_map_app_secret, kl_map_signin, kl_map_compute, kl_map_identity;

/* Fills obj (zeroed by the caller) from the current row, starting at column first.
 * On error obj may hold partial copies: kl_map_clear frees them. */
int kl_map_row(kl_store *st, kl_stmt *s, const kl_rowmap *m, int first, void *obj);
/* Frees the strings obj owns (secrets cleansed); leaves obj itself. NULL is fine. */
void kl_map_clear(const kl_rowmap *m, void *obj);
/* kl_map_clear, then free(obj). */
void kl_map_free(const kl_rowmap *m, void *obj);
/* Frees an array of n pointers to mapped structs, and the array. */
void kl_map_free_all(const kl_rowmap *m, void **arr, size_t n);

/* --- locking and transactions --- */

void kl_q_lock(kl_store *st);
void kl_q_unlock(kl_store *st);
/* Locks the store and begins a transaction; on failure the store is unlocked again. */
int kl_q_begin(kl_store *st, bool write);
/* A write transaction that does not move the store's generation (nor notify other
 * nodes): for bookkeeping no snapshot reads, such as key usage. End with kl_q_end. */
int kl_q_begin_unannounced(kl_store *st);
/* COMMIT when err is 0 (a change is acknowledged only if this succeeds), else ROLLBACK;
 * then unlocks. Returns the final result. */
int kl_q_end(kl_store *st, int err);
/* The same for a write no snapshot is built from (a used assertion jti): committed
 * without moving the store's generation, so other nodes do not rebuild for it. */
int kl_q_end_unannounced(kl_store *st, int err);

/* Records whether the database was reachable, after a call that returned err: only a
 * KL_EUNAVAIL on a connection that is down counts (a lock or statement bound that was
 * hit is a busy store, not an unreachable one). Called with the store locked. */
void kl_q_note_reachable(kl_store *st, int err);
/* Inside a transaction: lifts the engine's statement bound (KL_STORE_STATEMENT_TIMEOUT_MS)
 * until it ends, for long work an operator asked for. The lock bound stays. */
int kl_q_unbounded(kl_store *st);

/* Records, inside a write transaction, that it changes key of kind (a KL_STORE_CHANGE_*
 * of store.h), so that other nodes apply only that. A write transaction that never
 * calls this is logged as changing everything (kind 'all'), so a write that forgets to
 * say is merely slower to apply, never wrong. Duplicates are dropped; more than
 * KL_STORE_MAX_CHANGED keys, or no memory, also log 'all'. */
void kl_q_changed(kl_store *st, const char *kind, const char *key);

/* --- statements (the caller holds the lock) --- */

/* Runs a statement that returns no rows; *changes (may be NULL) gets the rows changed. */
int kl_q_exec(kl_store *st, const char *sql, const kl_val *args, size_t n, int64_t *changes);
/* Runs a query whose first row's first column is an integer. KL_ENOTFOUND if no row. */
int kl_q_int(kl_store *st, const char *sql, const kl_val *args, size_t n, int64_t *out);
/* Runs a query whose first row's first column is text; *out (caller frees) is NULL for
 * SQL NULL. KL_ENOTFOUND if no row. */
int kl_q_text(kl_store *st, const char *sql, const kl_val *args, size_t n, char **out);
/* Calls each(arg, obj, &kept) for every row mapped by m (from column 0); obj is freed
 * after the call unless each set kept (it took ownership). A non-zero result stops the
 * walk and is returned. */
int kl_q_each(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
              int (*each)(void *arg, void *obj, bool *kept), void *arg);
/* The one row of a query, mapped; KL_ENOTFOUND if none. *out owned by the caller. */
int kl_q_one(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
             void **out);
/* Every row of a query, mapped, as an array of *cnt owned pointers. */
int kl_q_list(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
              void ***out, size_t *cnt);
/* The same three, taking the lock around the call (reads outside a transaction). */
int kl_q_one_locked(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
                    void **out);
int kl_q_list_locked(kl_store *st, const char *sql, const kl_val *args, size_t n,
                     const kl_rowmap *m, void ***out, size_t *cnt);
/* kl_q_one_locked for a query whose one argument ?1 is key lower-cased (the store keeps
 * ids and names lower-case): *out is NULL, or the row (caller frees); KL_ENOTFOUND if
 * none, KL_ENOMEM. */
int kl_q_one_by_lower(kl_store *st, const char *sql, const char *key, const kl_rowmap *m,
                      void **out);

/* ASCII lower-case copy; NULL on allocation failure. Caller frees. */
char *kl_q_lower(const char *s);
/* Whether s is text the store keeps: at most max bytes and no control characters (below
 * 0x20, or 0x7f). NULL and "" pass only when optional. */
bool kl_q_text_ok(const char *s, size_t max, bool optional);

/* --- used by store.c, defined with the tables --- */

/* Creates the tenant, the local administrator and its Owner assignment at "/" if the
 * store has no tenant yet (first start). One write transaction; idempotent. */
int kl_store_seed_directory(kl_store *st);
/* Deletes, inside the caller's write transaction, the role assignments whose scope is
 * scope_lower (a lower-case resource id) or lies below it. */
int kl_store_delete_assignments_under(kl_store *st, const char *scope_lower);
/* Counts the enabled principals' Owner assignments at "/" (the root owner rule). */
int kl_store_root_owner_count(kl_store *st, int64_t *n);
/* KL_EPERM if there were root owners (before > 0) and the transaction's changes left
 * none; the caller then rolls back. */
int kl_store_check_root_owner(kl_store *st, int64_t before);
/* The load_all walkers for each group of tables (inside its transaction). */
int kl_store_load_accounts(kl_store *st, const kl_store_visitor *v);
int kl_store_load_directory(kl_store *st, const kl_store_visitor *v);
int kl_store_load_rbac(kl_store *st, const kl_store_visitor *v);
int kl_store_load_appcreds(kl_store *st, const kl_store_visitor *v);
int kl_store_load_sts(kl_store *st, const kl_store_visitor *v);
int kl_store_load_identities(kl_store *st, const kl_store_visitor *v);

/* Inserts a principal row inside the caller's transaction (application_pk 0 = none);
 * *pk (may be NULL) receives its surrogate key. KL_EEXIST when an id is in use. */
int kl_store_insert_principal(kl_store *st, const char *oid, const char *type, const char *name,
                              const char *app_id, int64_t application_pk, bool enabled,
                              int64_t created_at, int64_t *pk);
/* Sets the identities of the host host_id (a site, VM or account, whose ARM id parts are
 * subscription, resource_group and name) as spec says, inside the caller's write
 * transaction (see kl_store_put_compute); now stamps a new system-assigned identity.
 * The caller checks the root owner rule. */
int kl_store_set_host_identities(kl_store *st, const char *host_id, const char *subscription,
                                 const char *resource_group, const char *name,
                                 const kl_store_identity_spec *spec, int64_t now);
/* Deletes, inside the caller's write transaction, the system-assigned identity of the
 * host whose lower-case ARM id is host_lower (its principal and role assignments) and the
 * host's attachments. The caller checks the root owner rule. */
int kl_store_drop_host_identities(kl_store *st, const char *host_lower);
int kl_store_load_identity_headers(kl_store *st, const kl_store_visitor *v);
int kl_store_load_groups(kl_store *st, const kl_store_visitor *v);

#endif
