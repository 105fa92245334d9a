/* The store's life cycle (see store.h): opening a database through its driver, bringing
 * its schema forward with the numbered migrations, and walking everything for the
 * snapshot builder. The tables themselves live in store_accounts.c, store_directory.c
 * and store_rbac.c. */
#include "store/store.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "common/limits.h"
#include "store/db.h"
#include "store/db_pg.h"
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
    /* A migration may rewrite a whole table, however large the store has grown: no
     * statement bound. The lock bound stays, so that a migration stuck behind another
     * node's reader fails instead of queueing every reader behind its own lock. */
    if ((err = kl_q_unbounded(st)))
        return kl_q_end(st, err);
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

/* Takes ownership of db: on failure it is closed. url (PostgreSQL) is copied. */
static int open_with(const kl_db_driver *drv, kl_db *db, const char *url, kl_store **out)
{
    kl_store *st = calloc(1, sizeof(*st));
    if (!st) {
        drv->close(db);
        return KL_ENOMEM;
    }
    st->drv = drv;
    st->db = db;
    st->wake[0] = st->wake[1] = -1;
    atomic_init(&st->reachable, true);
    atomic_init(&st->stop, false);
    atomic_init(&st->own_gen, -1);
    st->loaded_version = -1;
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        drv->close(db);
        free(st);
        return KL_ENOMEM;
    }
    int err = (url && !(st->url = strdup(url))) ? KL_ENOMEM : 0;
    if (!err)
        err = migrate(st);
    st->gen_ready = true;
    if (!err)
        err = kl_store_seed_directory(st);
    if (!err && drv->data_version && drv->data_version(db, &st->loaded_version) != 0)
        st->loaded_version = -1;
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
    return open_with(&kl_db_sqlite_driver, db, NULL, out);
}

int kl_store_open(const char *url, kl_store **out)
{
    if (!url || !out || strnlen(url, KL_MAX_STORE_URL + 1) > KL_MAX_STORE_URL)
        return KL_EINVAL;
    *out = NULL;
    if (strncmp(url, "sqlite:", 7) == 0 && url[7])
        return kl_store_open_sqlite(url + 7, out);
    if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0) {
        kl_log(KL_LOG_ERROR, "store_url_invalid", "reason",
               "the store URL must start with sqlite: or postgres://", NULL);
        return KL_EINVAL;
    }
    kl_db *db = NULL;
    int err = kl_db_pg_open(url, &db);
    if (err)
        return err;
    return open_with(&kl_db_pg_driver, db, url, out);
}

const char *kl_store_engine(const kl_store *st)
{
    return st->drv->engine;
}

void kl_store_close(kl_store *st)
{
    if (!st)
        return;
    if (st->watching) {
        atomic_store(&st->stop, true);
        ssize_t w = write(st->wake[1], "x", 1);
        (void)w; /* the thread also sees stop at its next poll timeout */
        pthread_join(st->watcher, NULL);
    }
    if (st->wake[0] >= 0)
        close(st->wake[0]);
    if (st->wake[1] >= 0)
        close(st->wake[1]);
    if (st->url) {
        /* The URL may name a user and host: not a secret, but not left behind either. */
        OPENSSL_cleanse(st->url, strlen(st->url));
        free(st->url);
    }
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
    st->loaded_version = -1;
    if (st->drv->data_version && st->drv->data_version(st->db, &st->loaded_version) != 0)
        st->loaded_version = -1;
    if (v->generation) {
        int64_t gen = 0;
        err = kl_q_int(st, "SELECT generation FROM store_generation WHERE id = 1", KL_NOARGS, &gen);
        if (!err)
            err = v->generation(v->arg, gen);
    }
    if (!err)
        err = kl_store_load_accounts(st, v);
    if (!err)
        err = kl_store_load_directory(st, v);
    if (!err)
        err = kl_store_load_rbac(st, v);
    if (!err)
        err = kl_store_load_appcreds(st, v);
    if (!err)
        err = kl_store_load_sts(st, v);
    if (!err)
        err = kl_store_load_identities(st, v);
    if (!err)
        err = kl_store_load_identity_headers(st, v);
    if (!err)
        err = kl_store_load_groups(st, v);
    return kl_q_end(st, err);
}

/* ---------------------------------------------------------------- KEK check value */

int kl_store_get_kek_check(kl_store *st, char **sealed)
{
    if (!st || !sealed)
        return KL_EINVAL;
    kl_q_lock(st);
    int err = kl_q_text(st, "SELECT sealed FROM kek_check WHERE id = 1", KL_NOARGS, sealed);
    kl_q_unlock(st);
    return err;
}

int kl_store_put_kek_check(kl_store *st, const char *sealed)
{
    if (!st || !sealed)
        return KL_EINVAL;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    err = kl_q_exec(st,
                    "INSERT INTO kek_check (id, sealed) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
                    KL_ARGS(kl_vt(sealed)), NULL);
    return kl_q_end(st, err);
}

/* ---------------------------------------------------------------- change propagation */

int kl_store_generation(kl_store *st, int64_t *gen)
{
    if (!st || !gen)
        return KL_EINVAL;
    kl_q_lock(st);
    int err = kl_q_int(st, "SELECT generation FROM store_generation WHERE id = 1", KL_NOARGS, gen);
    kl_q_note_reachable(st, err);
    kl_q_unlock(st);
    return err;
}

bool kl_store_reachable(const kl_store *st)
{
    return st && atomic_load(&st->reachable);
}

/* Waits up to KL_STORE_POLL_MS for a notification (fd >= 0) or the stop signal. */
static void wait_event(kl_store *st, int fd)
{
    struct pollfd p[2] = {{.fd = st->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    (void)poll(p, fd >= 0 ? 2 : 1, KL_STORE_POLL_MS);
}

static void *watch_main(void *arg)
{
    kl_store *st = arg;
    kl_pg_listener *l = NULL;
    int64_t seen = st->watch_seen;
    bool was_reachable = true;
    bool pending = false; /* another node's change that changed() could not apply yet */
    while (!atomic_load(&st->stop)) {
        if (!l && kl_db_pg_listen_open(st->url, &l) != 0)
            l = NULL;
        wait_event(st, l ? kl_db_pg_listen_socket(l) : -1);
        if (atomic_load(&st->stop))
            break;
        bool notified = false;
        if (l && kl_db_pg_listen_drain(l, &notified) != 0) {
            kl_db_pg_listen_close(l);
            l = NULL;
        }
        /* The generation is read on every wake-up, notified or not: that is what
         * catches a notification lost with a dropped connection. */
        int64_t gen = 0;
        int err = kl_store_generation(st, &gen);
        bool reachable = err == 0;
        if (reachable != was_reachable)
            kl_log(reachable ? KL_LOG_INFO : KL_LOG_WARN,
                   reachable ? "store_reachable" : "store_unreachable", "reason",
                   reachable ? "catching up" : "serving the last snapshot; writes answer 503",
                   NULL);
        was_reachable = reachable;
        if (reachable && gen != seen) {
            seen = gen;
            if (gen != atomic_load(&st->own_gen))
                pending = true;
        }
        /* A failed apply is retried on every wake-up, even after this node's own
         * commits: the caller fails closed until one succeeds. */
        if (reachable && pending)
            pending = st->changed(st->changed_arg) != 0;
    }
    kl_db_pg_listen_close(l);
    return NULL;
}

int kl_store_watch(kl_store *st, int (*changed)(void *arg), void *arg)
{
    if (!st || !changed || st->watching)
        return KL_EINVAL;
    if (!st->url)
        return 0; /* SQLite: this process is the only writer */
    if (pipe2(st->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        return KL_ENOMEM;
    st->changed = changed;
    st->changed_arg = arg;
    /* Read before the thread starts, so a change committed right after this call is
     * seen as a change (-1 if unreachable now: the first successful look counts). */
    st->watch_seen = -1;
    (void)kl_store_generation(st, &st->watch_seen);
    if (pthread_create(&st->watcher, NULL, watch_main, st) != 0)
        return KL_ENOMEM;
    st->watching = true;
    return 0;
}
