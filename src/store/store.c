/* The store's life cycle (see store.h): opening a database through its driver, bringing
 * its schema forward with the numbered migrations, and walking everything for the
 * snapshot builder. The tables themselves live in store_accounts.c, store_directory.c
 * and store_rbac.c. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "store/db.h"
#include "store/migrations.h"
#include "store/query.h"

/* ---------------------------------------------------------------- migrate */

/* Applies migration m unless it is already recorded, in one write transaction (writers
 * are serialised, so several processes starting at once apply each migration once). */
static int apply_migration(kl_store *st, const kl_store_migration *m, bool *applied)
{
    int64_t one = 0;
    *applied = false;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    err = kl_q_int(st, "SELECT 1 FROM schema_version WHERE version = ?1",
                   KL_ARGS(kl_vi(m->version)), &one);
    if (err == 0)
        return kl_q_end(st, 0);
    if (err != KL_ENOTFOUND)
        return kl_q_end(st, err);
    if (!(err = st->drv->script(st->db, m->sql)))
        err = kl_q_exec(st, "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
                        KL_ARGS(kl_vi(m->version), kl_vi(kl_now_unix())), NULL);
    err = kl_q_end(st, err);
    *applied = err == 0;
    return err;
}

static int migrate(kl_store *st)
{
    size_t n = 0;
    const kl_store_migration *m = kl_store_migrations(&n);
    int64_t have = 0;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    err = st->drv->script(st->db, "CREATE TABLE IF NOT EXISTS schema_version ("
                                  " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    if (!err)
        err =
            kl_q_int(st, "SELECT coalesce(max(version), 0) FROM schema_version", KL_NOARGS, &have);
    if ((err = kl_q_end(st, err)))
        return err;
    if (n > 0 && have > m[n - 1].version) {
        char v[24], known[24];
        snprintf(v, sizeof(v), "%lld", (long long)have);
        snprintf(known, sizeof(known), "%d", m[n - 1].version);
        kl_log(KL_LOG_ERROR, "store_schema_too_new", "schema", v, "known", known, "reason",
               "the store was migrated by a newer keylessd; run that version", NULL);
        return KL_ECONFLICT;
    }
    for (size_t i = 0; i < n; i++) {
        bool applied = false;
        if ((err = apply_migration(st, &m[i], &applied)))
            return err;
        if (applied) {
            char v[16];
            snprintf(v, sizeof(v), "%d", m[i].version);
            kl_log(KL_LOG_INFO, "store_migrated", "version", v, "what", m[i].what, NULL);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- open and close */

/* Takes ownership of db: on failure it is closed. */
static int open_with(const kl_db_driver *drv, kl_db *db, kl_store **out)
{
    kl_store *st = calloc(1, sizeof(*st));
    if (!st) {
        drv->close(db);
        return KL_ENOMEM;
    }
    st->drv = drv;
    st->db = db;
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        drv->close(db);
        free(st);
        return KL_ENOMEM;
    }
    int err = migrate(st);
    if (!err)
        err = kl_q_seed_directory(st);
    if (err) {
        kl_store_close(st);
        return err;
    }
    *out = st;
    return 0;
}

int kl_store_open_sqlite(const char *path, kl_store **out)
{
    if (!path || !out)
        return KL_EINVAL;
    *out = NULL;
    kl_db *db = NULL;
    int err = kl_db_sqlite_open(path, &db);
    if (err)
        return err;
    return open_with(&kl_db_sqlite_driver, db, out);
}

void kl_store_close(kl_store *st)
{
    if (!st)
        return;
    if (st->db)
        st->drv->close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

int kl_store_schema_version(kl_store *st, int *version)
{
    if (!st || !version)
        return KL_EINVAL;
    int64_t v = 0;
    kl_q_lock(st);
    int err = kl_q_int(st, "SELECT coalesce(max(version), 0) FROM schema_version", KL_NOARGS, &v);
    kl_q_unlock(st);
    if (!err)
        *version = (int)v;
    return err;
}

/* ---------------------------------------------------------------- load everything */

int kl_store_load_all(kl_store *st, const kl_store_visitor *v)
{
    if (!st || !v)
        return KL_EINVAL;
    /* One read transaction: it sees one committed state throughout. */
    int err = kl_q_begin(st, false);
    if (err)
        return err;
    err = kl_q_load_accounts(st, v);
    if (!err)
        err = kl_q_load_directory(st, v);
    if (!err)
        err = kl_q_load_rbac(st, v);
    return kl_q_end(st, err);
}
