/* Unit tests of what the two engines add around the tables: store URLs (a password in
 * one is refused, an unknown scheme is refused, an unreachable server is told apart),
 * the generation every committed change moves, several processes migrating one
 * PostgreSQL database at once, and the watcher that tells a node about another node's
 * change. Runs on SQLite and, under tests/lib/pg-server, on PostgreSQL (engine.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "engine.h"
#include "store/store.h"

#define SUB "00000000-0000-0000-0000-000000000000"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "eng");
}

static void put_account(kl_store *st, const char *name, unsigned char fill)
{
    char id[256];
    snprintf(id, sizeof(id),
             "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
             "accounts/%s",
             name);
    kl_store_account a = {.id = id,
                          .subscription = SUB,
                          .resource_group = "rg",
                          .name = (char *)name,
                          .location = "local",
                          .kind = "OpenAI",
                          .etag = "e",
                          .created_at = 1,
                          .modified_at = 1};
    kl_store_key k = {.slot = 1, .sealed = "sealed", .created_at = 1};
    memset(k.index, fill, sizeof(k.index));
    assert_int_equal(kl_store_put_account(st, &a, &k, 1, NULL), 0);
}

/* Passwords come from PGPASSFILE or the environment, never from the URL (which ends
 * up on command lines and in unit files). */
static void test_url_with_password_refused(void **state)
{
    (void)state;
    kl_store *st = NULL;
    assert_int_equal(kl_store_open("postgres://keyless:hunter2@127.0.0.1:1/db", &st), KL_EINVAL);
    assert_null(st);
    assert_int_equal(kl_store_open("postgresql://127.0.0.1:1/db?password=hunter2", &st), KL_EINVAL);
    assert_null(st);
}

static void test_url_unknown_scheme_refused(void **state)
{
    (void)state;
    kl_store *st = NULL;
    assert_int_equal(kl_store_open("mysql://127.0.0.1/db", &st), KL_EINVAL);
    assert_int_equal(kl_store_open("sqlite:", &st), KL_EINVAL);
    assert_null(st);
}

/* Nothing listens on port 1: the open fails as unavailable, not as a bad URL. */
static void test_unreachable_server(void **state)
{
    (void)state;
    kl_store *st = NULL;
    assert_int_equal(
        kl_store_open("postgres://keyless@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", &st),
        KL_EUNAVAIL);
    assert_null(st);
}

/* Each committed change adds exactly one; a refused change adds nothing. */
static void test_generation_moves_with_commits(void **state)
{
    fixture *f = *state;
    int64_t g0 = 0, g1 = 0, g2 = 0;
    assert_int_equal(kl_store_generation(f->st, &g0), 0);
    put_account(f->st, "one", 1);
    assert_int_equal(kl_store_generation(f->st, &g1), 0);
    assert_int_equal(g1, g0 + 1);
    assert_int_equal(kl_store_delete_account(f->st, "missing"), KL_ENOTFOUND);
    assert_int_equal(kl_store_generation(f->st, &g2), 0);
    assert_int_equal(g2, g1);
    assert_int_equal(kl_store_delete_account(f->st, "one"), 0);
    assert_int_equal(kl_store_generation(f->st, &g2), 0);
    assert_int_equal(g2, g1 + 1);
}

typedef struct opener {
    const char *path;
    int err;
} opener;

static void *open_one(void *arg)
{
    opener *o = arg;
    kl_store *st = NULL;
    o->err = test_store_open(o->path, &st);
    kl_store_close(st);
    return NULL;
}

/* Nodes starting together against a fresh database: every one opens, each migration
 * is applied once, and there is one tenant. */
static void test_concurrent_first_start(void **state)
{
    fixture *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/fresh.db", f->dir);
    enum { N = 4 };
    pthread_t t[N];
    opener o[N];
    for (int i = 0; i < N; i++) {
        o[i] = (opener){path, -100};
        assert_int_equal(pthread_create(&t[i], NULL, open_one, &o[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(o[i].err, 0);
    }
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_version"), test_migration_count());
    assert_int_equal(raw_int(path, "SELECT count(*) FROM tenant"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM principals"), 1);
    char p[192];
    const char *files[] = {"fresh.db", "fresh.db-wal", "fresh.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
        unlink(p);
    }
}

typedef struct watched {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    int failures; /* the first this many calls report the change as not applied */
} watched;

static int on_change(void *arg)
{
    watched *w = arg;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    int rc = w->calls <= w->failures ? KL_EUNAVAIL : 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Waits until more than `after` calls were seen, or ms pass; returns the count. */
static int wait_calls(watched *w, int after, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (w->calls <= after && pthread_cond_timedwait(&w->cv, &w->mu, &dl) == 0)
        ;
    int n = w->calls;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* A change committed through another connection (another node) reaches the watcher
 * of this one within a second. */
static void test_watch_sees_other_node(void **state)
{
    POSTGRES_ONLY();
    fixture *f = *state;
    watched w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    kl_store *other = NULL;
    assert_int_equal(test_store_open(f->path, &other), 0);
    assert_int_equal(kl_store_watch(f->st, on_change, &w), 0);
    uint64_t t0 = kl_now_mono_ms();
    put_account(other, "elsewhere", 7);
    assert_int_equal(wait_calls(&w, 0, 1000), 1);
    assert_true(kl_now_mono_ms() - t0 <= 1000);
    assert_true(kl_store_reachable(f->st));
    kl_store_close(other);
}

/* A change the callback could not apply is offered again on the next wake-up without
 * any further commit, until the callback succeeds, and then no more. */
static void test_watch_retries_failed_apply(void **state)
{
    POSTGRES_ONLY();
    fixture *f = *state;
    watched w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 2};
    kl_store *other = NULL;
    assert_int_equal(test_store_open(f->path, &other), 0);
    assert_int_equal(kl_store_watch(f->st, on_change, &w), 0);
    put_account(other, "elsewhere", 7);
    assert_int_equal(wait_calls(&w, 0, 2000), 1);
    assert_int_equal(wait_calls(&w, 1, 4 * KL_STORE_POLL_MS), 2);
    assert_int_equal(wait_calls(&w, 2, 4 * KL_STORE_POLL_MS), 3);
    /* Applied: nothing more to offer. */
    assert_int_equal(wait_calls(&w, 3, 4 * KL_STORE_POLL_MS), 3);
    kl_store_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_with_password_refused),
        cmocka_unit_test(test_url_unknown_scheme_refused),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test_setup_teardown(test_generation_moves_with_commits, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_start, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_watch_sees_other_node, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_watch_retries_failed_apply, setup,
                                        test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
