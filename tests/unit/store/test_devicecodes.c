/* Unit tests of the device-code table (migration 20) on both engines (engine.h): a code
 * is polled no faster than the gap, decided once and redeemed once; declined and expired
 * codes go nowhere; long-expired ones are pruned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "store/store.h"
#include "engine.h"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "devcodes");
}

static void fill(unsigned char h[32], unsigned char v)
{
    memset(h, v, 32);
}

/* The life of one code: found by its user code, polled no faster than the gap, approved
 * once, redeemed once; an unknown code is unknown everywhere. */
static void test_code_life(void **state)
{
    fixture *f = *state;
    unsigned char h[32], other[32];
    fill(h, 1);
    fill(other, 2);
    kl_store_devicecode d = {.user_code = "BCDFGHJK",
                             .client_addr = "127.0.0.1",
                             .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                             .scope = "https://cognitiveservices.azure.com/.default openid",
                             .created_at = 1000,
                             .expires_at = 1900};
    assert_int_equal(
        kl_store_devicecode_create(f->st, h, &d, 86400, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL), 0);
    /* The same user code (or hash) again is a collision the caller redraws for. */
    assert_int_equal(
        kl_store_devicecode_create(f->st, other, &d, 86400, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL),
        KL_ECONFLICT);
    kl_store_devicecode *got = NULL;
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "BCDFGHJL", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "BCDFGHJK", &got), 0);
    assert_string_equal(got->client_id, d.client_id);
    assert_string_equal(got->scope, d.scope);
    assert_int_equal(kl_store_dc_status_of(got), KL_STORE_DC_PENDING);
    assert_null(got->user_oid);
    kl_store_devicecode_free(got);
    got = NULL;

    /* Polls: the first passes and is stamped; one 3 s later is too fast (min gap 4). */
    assert_int_equal(kl_store_devicecode_poll(f->st, other, 1001, 4, &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1001, 4, &got), 0);
    assert_int_equal(got->last_poll, 1001);
    kl_store_devicecode_free(got);
    got = NULL;
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1004, 4, &got), KL_EPERM);
    assert_null(got);
    /* Not approved yet: nothing to redeem. */
    assert_int_equal(kl_store_devicecode_redeem(f->st, h, 1004), KL_ECONFLICT);

    /* Approved once; a second decision (another tab, another node) loses. */
    assert_int_equal(kl_store_devicecode_decide(f->st, "BCDFGHJK",
                                                "22222222-2222-2222-2222-222222222222",
                                                "33333333-3333-3333-3333-333333333333", 1005, 1005),
                     0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "BCDFGHJK", NULL, NULL, 0, 1006),
                     KL_ECONFLICT);
    assert_int_equal(kl_store_devicecode_decide(f->st, "ZZZZZZZZ", NULL, NULL, 0, 1006),
                     KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1006, 4, &got), 0);
    assert_int_equal(kl_store_dc_status_of(got), KL_STORE_DC_APPROVED);
    assert_string_equal(got->user_oid, "22222222-2222-2222-2222-222222222222");
    assert_string_equal(got->session_id, "33333333-3333-3333-3333-333333333333");
    assert_int_equal(got->auth_time, 1005);
    assert_int_equal(got->redeemed_at, 0);
    kl_store_devicecode_free(got);
    got = NULL;

    /* Redeemed once: the second redemption loses, whoever asks. */
    assert_int_equal(kl_store_devicecode_redeem(f->st, h, 1007), 0);
    assert_int_equal(kl_store_devicecode_redeem(f->st, h, 1008), KL_ECONFLICT);
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1020, 4, &got), 0);
    assert_int_equal(got->redeemed_at, 1007);
    kl_store_devicecode_free(got);
}

/* Declined codes and expired codes cannot be approved or redeemed; codes long expired
 * are pruned when a new one is made. */
static void test_declined_expired_pruned(void **state)
{
    fixture *f = *state;
    unsigned char a[32], b[32], c[32];
    fill(a, 3);
    fill(b, 4);
    fill(c, 5);
    kl_store_devicecode d = {.user_code = "CCCCCCCC",
                             .client_addr = "127.0.0.1",
                             .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                             .scope = "https://cognitiveservices.azure.com/.default",
                             .created_at = 1000,
                             .expires_at = 1900};
    assert_int_equal(
        kl_store_devicecode_create(f->st, a, &d, 100, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL), 0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "CCCCCCCC", NULL, NULL, 0, 1001), 0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "CCCCCCCC",
                                                "22222222-2222-2222-2222-222222222222",
                                                "33333333-3333-3333-3333-333333333333", 1002, 1002),
                     KL_ECONFLICT);
    assert_int_equal(kl_store_devicecode_redeem(f->st, a, 1003), KL_ECONFLICT);

    d.user_code = "DDDDDDDD";
    assert_int_equal(
        kl_store_devicecode_create(f->st, b, &d, 100, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL), 0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "DDDDDDDD",
                                                "22222222-2222-2222-2222-222222222222",
                                                "33333333-3333-3333-3333-333333333333", 1900, 1900),
                     KL_ECONFLICT);

    /* Made at 2100 with keep 100: codes that expired before 2000 go. */
    d.user_code = "FFFFFFFF";
    d.created_at = 2100;
    d.expires_at = 3000;
    assert_int_equal(
        kl_store_devicecode_create(f->st, c, &d, 100, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL), 0);
    kl_store_devicecode *got = NULL;
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "CCCCCCCC", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "DDDDDDDD", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "FFFFFFFF", &got), 0);
    kl_store_devicecode_free(got);
    /* Bad input is refused before the store is asked. */
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "bcdfghjk", &got), KL_EINVAL);
    d.user_code = "SHORT";
    assert_int_equal(
        kl_store_devicecode_create(f->st, a, &d, 100, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL),
        KL_EINVAL);
}

/* The live codes of one address are capped: the next is refused and told when the first
 * expires; another address is served; a declined, a redeemed and an expired code each
 * give their place back. */
static void test_live_codes_per_address(void **state)
{
    fixture *f = *state;
    const int64_t max = 3;
    static const char *const codes[] = {"GGGGGGGA", "GGGGGGGB", "GGGGGGGC", "GGGGGGGD",
                                        "GGGGGGGF", "GGGGGGGH", "GGGGGGGJ", "GGGGGGGK"};
    unsigned char h[8][32];
    kl_store_devicecode d = {.client_addr = "192.0.2.7",
                             .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                             .scope = "openid",
                             .created_at = 1000,
                             .expires_at = 1900};
    for (size_t i = 0; i < 8; i++)
        fill(h[i], (unsigned char)(0x40 + i));
    for (size_t i = 0; i < 3; i++) {
        d.user_code = (char *)codes[i];
        d.created_at = 1000 + (int64_t)i;
        d.expires_at = 1900 + (int64_t)i;
        assert_int_equal(kl_store_devicecode_create(f->st, h[i], &d, 86400, max, NULL), 0);
    }
    int64_t free_at = 0;
    d.user_code = (char *)codes[3];
    d.created_at = 1010;
    d.expires_at = 1910;
    assert_int_equal(kl_store_devicecode_create(f->st, h[3], &d, 86400, max, &free_at), KL_ETOOBIG);
    assert_int_equal(free_at, 1900);
    kl_store_devicecode *got = NULL;
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, codes[3], &got), KL_ENOTFOUND);

    /* Another address is served. */
    d.client_addr = "192.0.2.8";
    assert_int_equal(kl_store_devicecode_create(f->st, h[3], &d, 86400, max, NULL), 0);
    d.client_addr = "192.0.2.7";

    /* Declined: one place back, and only one. */
    assert_int_equal(kl_store_devicecode_decide(f->st, codes[0], NULL, NULL, 0, 1011), 0);
    d.user_code = (char *)codes[4];
    assert_int_equal(kl_store_devicecode_create(f->st, h[4], &d, 86400, max, NULL), 0);
    d.user_code = (char *)codes[5];
    assert_int_equal(kl_store_devicecode_create(f->st, h[5], &d, 86400, max, NULL), KL_ETOOBIG);

    /* Approved is still live; redeemed is not. */
    assert_int_equal(kl_store_devicecode_decide(f->st, codes[1],
                                                "22222222-2222-2222-2222-222222222222",
                                                "33333333-3333-3333-3333-333333333333", 1012, 1012),
                     0);
    assert_int_equal(kl_store_devicecode_create(f->st, h[5], &d, 86400, max, NULL), KL_ETOOBIG);
    assert_int_equal(kl_store_devicecode_redeem(f->st, h[1], 1013), 0);
    assert_int_equal(kl_store_devicecode_create(f->st, h[5], &d, 86400, max, NULL), 0);

    /* Once the oldest has expired, its place is free too. */
    d.user_code = (char *)codes[6];
    assert_int_equal(kl_store_devicecode_create(f->st, h[6], &d, 86400, max, NULL), KL_ETOOBIG);
    d.created_at = 1902;
    d.expires_at = 2802;
    assert_int_equal(kl_store_devicecode_create(f->st, h[6], &d, 86400, max, NULL), 0);
    /* An address is required. */
    d.user_code = (char *)codes[7];
    d.client_addr = "";
    assert_int_equal(kl_store_devicecode_create(f->st, h[7], &d, 86400, max, NULL), KL_EINVAL);
}

typedef struct racer {
    kl_store *st;
    unsigned char hash[32];
    kl_store_devicecode d;
    int err;
} racer;

static void *race_create(void *arg)
{
    racer *r = arg;
    r->err = kl_store_devicecode_create(r->st, r->hash, &r->d, 86400, 2, NULL);
    return NULL;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Several nodes on one PostgreSQL: while another node's writer holds the store's write
 * lock with an uncommitted code for the address, this node's create waits for it and
 * then counts it. A count taken outside the insert's transaction would see one code and
 * let a third through. */
static void test_limit_holds_across_nodes(void **state)
{
    POSTGRES_ONLY();
    fixture *f = *state;
    racer r = {.st = f->st,
               .d = {.user_code = "JJJJJJJB",
                     .client_addr = "192.0.2.9",
                     .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                     .scope = "openid",
                     .created_at = 1000,
                     .expires_at = 1900}};
    unsigned char first[32];
    fill(first, 0x60);
    fill(r.hash, 0x61);
    kl_store_devicecode d = r.d;
    d.user_code = "JJJJJJJA";
    assert_int_equal(kl_store_devicecode_create(f->st, first, &d, 86400, 2, NULL), 0);

    char db[80];
    test_db_name(f->path, db, sizeof(db));
    PGconn *other = test_pg_connect(db), *watch = test_pg_connect(db);
    /* The key is the store's writers' (PG_WRITE_LOCK_KEY in src/store/db_pg.c). */
    PGresult *res = PQexec(
        other, "BEGIN; SELECT pg_advisory_xact_lock(30506865001702259); "
               "INSERT INTO device_codes (code_hash, user_code, client_id, scope, status, "
               "created_at, expires_at, client_addr) VALUES (decode(repeat('62', 32), 'hex'), "
               "'JJJJJJJC', '04b07795-8ddb-461a-bbee-02f9e1bf7b46', 'openid', 'pending', 1000, "
               "1900, '192.0.2.9')");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_create, &r), 0);
    /* Until this node's writer is seen waiting for the lock the other one holds. */
    long long waiting = 0;
    for (double until = mono_s() + 30; waiting < 1 && mono_s() < until;) {
        res = PQexec(watch, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                            "NOT granted");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            waiting = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    res = PQexec(other, "COMMIT");
    PQclear(res);
    pthread_join(t, NULL);
    PQfinish(other);
    PQfinish(watch);
    assert_int_equal(waiting, 1);
    assert_int_equal(r.err, KL_ETOOBIG);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM device_codes WHERE client_addr = "
                                      "'192.0.2.9'"),
                     2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_code_life, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_live_codes_per_address, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_limit_holds_across_nodes, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_declined_expired_pruned, setup,
                                        test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
