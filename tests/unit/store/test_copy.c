/* Unit tests of the store copy (keyless store migrate, store_copy.c) on both engines
 * (engine.h): every table and column of a freshly migrated store is either copied or
 * left out with a reason, so a migration that adds one cannot be forgotten by the copy;
 * and what a sign-in in progress or a replay rule depends on survives a copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"
#include "engine.h"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "copy");
}

/* Every (table, column) of the schema, from the engine's own catalogue. */
#define SCHEMA_SQLITE                                                                              \
    "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "                     \
    "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1, 2"
#define SCHEMA_PG                                                                                  \
    "SELECT table_name, column_name FROM information_schema.columns "                              \
    "WHERE table_schema = 'public' ORDER BY 1, 2"

/* Checks one column; returns 1 (and says which) when the copy does not know it. */
static int unknown(const char *table, const char *column)
{
    kl_store_copy_fate t = kl_store_copy_fate_of(table, NULL);
    if (t == KL_STORE_COPY_LEFT_OUT)
        return 0;
    if (t == KL_STORE_COPY_COPIED && kl_store_copy_fate_of(table, column) == KL_STORE_COPY_COPIED)
        return 0;
    fprintf(stderr,
            "test: %s.%s is in the schema but neither copied nor listed as not copied in "
            "src/store/store_copy.c\n",
            table, column);
    return 1;
}

/* A migration that adds a table or a column must say what store migrate does with it. */
static void test_schema_covered(void **state)
{
    fixture *f = *state;
    int missing = 0, seen = 0;
    if (test_pg()) {
        char db[80];
        test_db_name(f->path, db, sizeof(db));
        PGconn *c = test_pg_connect(db);
        PGresult *r = PQexec(c, SCHEMA_PG);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        for (int i = 0; i < PQntuples(r); i++, seen++)
            missing += unknown(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, SCHEMA_SQLITE, -1, &s, NULL), SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW && ++seen)
            missing += unknown((const char *)sqlite3_column_text(s, 0),
                               (const char *)sqlite3_column_text(s, 1));
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    assert_true(seen > 100); /* the catalogue query did see the schema */
    assert_int_equal(missing, 0);
    /* And the answer is not "everything": a name the schema lacks is unknown. */
    assert_int_equal(kl_store_copy_fate_of("no_such_table", NULL), KL_STORE_COPY_UNKNOWN);
    assert_int_equal(kl_store_copy_fate_of("device_codes", "no_such_column"),
                     KL_STORE_COPY_UNKNOWN);
}

static void fill(unsigned char h[32], unsigned char v)
{
    memset(h, v, 32);
}

#define CLIENT "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#define USER "00000000-0000-4000-8000-000000000001"
#define SESSION "00000000-0000-4000-8000-000000000002"

/* A replay cache entry, an authorization code, a browser session and device codes made
 * on one store are all there, and still good exactly once, on its copy. */
static void test_live_signins_survive(void **state)
{
    fixture *f = *state;
    kl_store *to = NULL;
    char dir[64], path[128];
    assert_int_equal(test_store_dir_open("copyto", dir, sizeof(dir), path, sizeof(path), &to), 0);
    const int64_t now = 1000;
    unsigned char code[32], cookie[32], dc[32], spent[32];
    fill(code, 1);
    fill(cookie, 2);
    fill(dc, 3);
    fill(spent, 4);

    assert_int_equal(kl_store_use_jti(f->st, CLIENT, "jti-1", now + 600, now), 0);
    kl_store_authcode ac = {.client_id = CLIENT,
                            .user_oid = USER,
                            .redirect_uri = "http://localhost:8400",
                            .scope = "openid profile",
                            .code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                            .session_id = SESSION,
                            .auth_time = now,
                            .created_at = now,
                            .expires_at = now + 600};
    assert_int_equal(kl_store_put_authcode(f->st, code, &ac, now), 0);
    kl_store_session ss = {.id = SESSION,
                           .user_oid = USER,
                           .auth_time = now,
                           .created_at = now,
                           .expires_at = now + 3600};
    assert_int_equal(kl_store_put_session(f->st, cookie, &ss, now), 0);
    kl_store_devicecode d = {.user_code = "BCDFGHJK",
                             .client_addr = "127.0.0.1",
                             .client_id = CLIENT,
                             .scope = "openid",
                             .created_at = now,
                             .expires_at = now + 900};
    assert_int_equal(
        kl_store_devicecode_create(f->st, dc, &d, 86400, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL), 0);
    /* A device code already approved and redeemed before the move stays spent. */
    d.user_code = "BCDFGHJL";
    assert_int_equal(
        kl_store_devicecode_create(f->st, spent, &d, 86400, KL_MAX_DEVICE_CODES_PER_ADDRESS, NULL),
        0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "BCDFGHJL", USER, SESSION, now, now), 0);
    assert_int_equal(kl_store_devicecode_redeem(f->st, spent, now + 1), 0);

    int64_t rows = 0;
    assert_int_equal(kl_store_copy(f->st, to, &rows), 0);
    assert_true(rows > 0);

    /* The spent assertion id is refused after the move: no replay window opens. */
    assert_int_equal(kl_store_use_jti(to, CLIENT, "jti-1", now + 600, now + 10), KL_EEXIST);
    assert_int_equal(kl_store_use_jti(to, CLIENT, "jti-2", now + 600, now + 10), 0);

    kl_store_authcode *got = NULL;
    assert_int_equal(kl_store_redeem_authcode(to, code, now + 10, &got), 0);
    assert_string_equal(got->user_oid, USER);
    assert_string_equal(got->code_challenge, ac.code_challenge);
    assert_null(got->nonce);
    kl_store_authcode_free(got);
    got = NULL;
    assert_int_equal(kl_store_redeem_authcode(to, code, now + 11, &got), KL_ECONFLICT);

    kl_store_session *s = NULL;
    assert_int_equal(kl_store_get_session(to, cookie, now + 10, &s), 0);
    assert_string_equal(s->id, SESSION);
    kl_store_session_free(s);

    kl_store_devicecode *dv = NULL;
    assert_int_equal(kl_store_devicecode_poll(to, dc, now + 10, 5, &dv), 0);
    assert_int_equal(kl_store_dc_status_of(dv), KL_STORE_DC_PENDING);
    assert_string_equal(dv->user_code, "BCDFGHJK");
    assert_string_equal(dv->client_addr, "127.0.0.1");
    kl_store_devicecode_free(dv);
    assert_int_equal(kl_store_devicecode_decide(to, "BCDFGHJK", USER, SESSION, now + 20, now + 20),
                     0);
    assert_int_equal(kl_store_devicecode_redeem(to, dc, now + 30), 0);
    assert_int_equal(kl_store_devicecode_redeem(to, spent, now + 30), KL_ECONFLICT);

    test_store_dir_close(to, dir);
}

/* A destination that already holds anything but its own first start's rows is refused,
 * and keeps what it had: here, only a spent assertion id. */
static void test_used_destination_refused(void **state)
{
    fixture *f = *state;
    kl_store *to = NULL;
    char dir[64], path[128];
    assert_int_equal(test_store_dir_open("copyused", dir, sizeof(dir), path, sizeof(path), &to), 0);
    const int64_t now = 1000;
    assert_int_equal(kl_store_use_jti(f->st, CLIENT, "jti-src", now + 600, now), 0);
    assert_int_equal(kl_store_use_jti(to, CLIENT, "jti-dst", now + 600, now), 0);
    int64_t rows = 0;
    assert_int_equal(kl_store_copy(f->st, to, &rows), KL_ECONFLICT);
    assert_int_equal(kl_store_use_jti(to, CLIENT, "jti-dst", now + 600, now + 1), KL_EEXIST);
    assert_int_equal(kl_store_use_jti(to, CLIENT, "jti-src", now + 600, now + 1), 0);
    test_store_dir_close(to, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_covered, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_live_signins_survive, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_used_destination_refused, setup,
                                        test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
