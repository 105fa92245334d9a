/* Unit tests of the store's bounds on waiting (limits.h), on both engines (engine.h):
 * a write behind a writers' lock that is never let go gives up with KL_EUNAVAIL after
 * KL_STORE_LOCK_TIMEOUT_MS instead of waiting for ever, the store stays reachable (busy
 * is not down) and writes again once the lock is gone; on PostgreSQL the store URL's
 * options override the bounds, and migrations' transactions lift the statement bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"
#include "engine.h"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "bounds");
}

/* Another writer of the same store that takes the writers' lock and keeps it: a node
 * whose transaction stopped answering, or a tool holding the SQLite file. */
typedef struct holder {
    PGconn *pg;
    sqlite3 *lite;
} holder;

static void hold(holder *h, const char *path)
{
    memset(h, 0, sizeof(*h));
    if (test_pg()) {
        char db[80];
        test_db_name(path, db, sizeof(db));
        h->pg = test_pg_connect(db);
        /* The key is the store's writers' (PG_WRITE_LOCK_KEY in src/store/db_pg.c). */
        PGresult *r = PQexec(h->pg, "BEGIN; SELECT pg_advisory_xact_lock(30506865001702259)");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
        return;
    }
    assert_int_equal(sqlite3_open_v2(path, &h->lite, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h->lite, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
}

static void let_go(holder *h)
{
    if (h->pg) {
        PQclear(PQexec(h->pg, "ROLLBACK"));
        PQfinish(h->pg);
    }
    if (h->lite) {
        (void)sqlite3_exec(h->lite, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(h->lite);
    }
    memset(h, 0, sizeof(*h));
}

/* One store write (a device code) on a thread of its own, so that the test can stop
 * waiting for it. */
typedef struct writer {
    kl_store *st;
    unsigned char hash[32];
    char user_code[16];
    int err;
    uint64_t took_ms;
    bool done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} writer;

static void *write_main(void *arg)
{
    writer *w = arg;
    kl_store_devicecode d = {.user_code = w->user_code,
                             .client_addr = "192.0.2.1",
                             .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                             .scope = "openid",
                             .created_at = 1000,
                             .expires_at = 1900};
    uint64_t t0 = kl_now_mono_ms();
    int err = kl_store_devicecode_create(w->st, w->hash, &d, 86400, KL_MAX_DEVICE_CODES_PER_ADDRESS,
                                         NULL);
    pthread_mutex_lock(&w->mu);
    w->err = err;
    w->took_ms = kl_now_mono_ms() - t0;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Runs one write of st while h holds the writers' lock, and waits for it at most
 * wait_ms. Returns whether it returned by then; if not, the lock is let go first so the
 * write can finish. *err and *took_ms get its result and duration. */
static bool write_within(kl_store *st, holder *h, const char *user_code, unsigned char fill,
                         uint64_t wait_ms, int *err, uint64_t *took_ms)
{
    writer w = {.st = st};
    snprintf(w.user_code, sizeof(w.user_code), "%s", user_code);
    memset(w.hash, fill, sizeof(w.hash));
    pthread_mutex_init(&w.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cv, &ca);
    pthread_condattr_destroy(&ca);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(wait_ms / 1000);
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_main, &w), 0);
    pthread_mutex_lock(&w.mu);
    int rc = 0;
    while (!w.done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w.cv, &w.mu, &until);
    bool in_time = w.done;
    pthread_mutex_unlock(&w.mu);
    if (!in_time)
        let_go(h); /* the bound did not hold: free the writer, then fail */
    pthread_join(t, NULL);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    *err = w.err;
    *took_ms = w.took_ms;
    return in_time;
}

/* The bound the store applies by default: a write behind a lock that is never let go
 * returns KL_EUNAVAIL after KL_STORE_LOCK_TIMEOUT_MS (SQLite's busy timeout,
 * PostgreSQL's lock_timeout on the advisory lock), leaves the store reachable, and the
 * next write after the lock is gone succeeds on the same connection. */
static void test_write_gives_up_on_a_held_lock(void **state)
{
    fixture *f = *state;
    holder h;
    hold(&h, f->path);
    int err = 0;
    uint64_t took = 0;
    bool in_time =
        write_within(f->st, &h, "BCDFGHJA", 1, 3 * KL_STORE_LOCK_TIMEOUT_MS, &err, &took);
    let_go(&h);
    assert_true(in_time);
    assert_int_equal(err, KL_EUNAVAIL);
    assert_true(took >= KL_STORE_LOCK_TIMEOUT_MS * 9 / 10);
    assert_true(kl_store_reachable(f->st));
    kl_store_devicecode d = {.user_code = "BCDFGHJB",
                             .client_addr = "192.0.2.1",
                             .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                             .scope = "openid",
                             .created_at = 1000,
                             .expires_at = 1900};
    unsigned char hash[32];
    memset(hash, 2, sizeof(hash));
    assert_int_equal(
        kl_store_devicecode_create(f->st, hash, &d, 86400, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL),
        0);
}

/* The operator's override: options=-c lock_timeout=... in the store URL wins over ours
 * (here shorter, 300 ms). */
static void test_url_overrides_the_bound(void **state)
{
    POSTGRES_ONLY();
    fixture *f = *state;
    char db[80], url[512];
    test_db_name(f->path, db, sizeof(db));
    snprintf(url, sizeof(url),
             "postgres://keyless@%s/%s?sslmode=disable&options=-c%%20lock_timeout%%3D300",
             test_pg(), db);
    kl_store *st = NULL;
    assert_int_equal(kl_store_open(url, &st), 0);
    holder h;
    hold(&h, f->path);
    int err = 0;
    uint64_t took = 0;
    bool in_time = write_within(st, &h, "BCDFGHJC", 3, 10 * 300, &err, &took);
    let_go(&h);
    kl_store_close(st);
    assert_true(in_time);
    assert_int_equal(err, KL_EUNAVAIL);
    assert_true(took >= 270 && took < KL_STORE_LOCK_TIMEOUT_MS);
}

static char *show(kl_store *st, const char *sql)
{
    char *v = NULL;
    assert_int_equal(kl_q_text(st, sql, KL_NOARGS, &v), 0);
    return v;
}

/* The session's bounds are ours (limits.h); a transaction that lifts the statement
 * bound (migrations, copies) has none until it ends, and keeps the lock bound. */
static void test_session_bounds(void **state)
{
    POSTGRES_ONLY();
    fixture *f = *state;
    assert_int_equal(kl_q_begin(f->st, false), 0);
    char *lock = show(f->st, "SELECT setting FROM pg_settings WHERE name = 'lock_timeout'");
    char *stmt = show(f->st, "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'");
    assert_int_equal(kl_q_unbounded(f->st), 0);
    char *lifted = show(f->st, "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'");
    char *lock_lifted = show(f->st, "SELECT setting FROM pg_settings WHERE name = 'lock_timeout'");
    assert_int_equal(kl_q_end(f->st, 0), 0);
    assert_int_equal(kl_q_begin(f->st, false), 0);
    char *after = show(f->st, "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'");
    assert_int_equal(kl_q_end(f->st, 0), 0);
    assert_string_equal(lock, KL_STR(KL_STORE_LOCK_TIMEOUT_MS)); /* in ms */
    assert_string_equal(stmt, KL_STR(KL_STORE_STATEMENT_TIMEOUT_MS));
    assert_string_equal(lifted, "0");
    assert_string_equal(lock_lifted, lock);
    assert_string_equal(after, stmt);
    free(lock);
    free(stmt);
    free(lifted);
    free(lock_lifted);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_gives_up_on_a_held_lock, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_url_overrides_the_bound, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_session_bounds, setup, test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
