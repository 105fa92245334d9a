/* Reads back, from the store's own connection, the SQLite settings its durability rests
 * on (store.h promises WAL with synchronous=FULL and foreign keys on): a change to any of
 * them fails here, whether or not a crash test happens to catch it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/query.h"
#include "store/store.h"

/* PRAGMA synchronous reads back as a number: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
#define SQLITE_SYNCHRONOUS_FULL 2

/* The single value PRAGMA name returns on the store's connection, as text. */
static void pragma_text(kl_store *st, const char *name, char *out, size_t n)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA %s", name);
    char *v = NULL;
    kl_q_lock(st);
    int err = kl_q_text(st, sql, KL_NOARGS, &v);
    kl_q_unlock(st);
    assert_int_equal(err, 0);
    assert_non_null(v);
    snprintf(out, n, "%s", v);
    free(v);
}

static void check_settings(kl_store *st)
{
    char v[32];
    pragma_text(st, "journal_mode", v, sizeof(v));
    assert_string_equal(v, "wal");
    pragma_text(st, "synchronous", v, sizeof(v));
    assert_int_equal(strtol(v, NULL, 10), SQLITE_SYNCHRONOUS_FULL);
    pragma_text(st, "foreign_keys", v, sizeof(v));
    assert_string_equal(v, "1");
}

static void test_durability_settings_on_create_and_reopen(void **state)
{
    (void)state;
    char dir[] = "/tmp/kl-pragmas-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], wal[80], shm[80];
    snprintf(path, sizeof(path), "%s/keyless.db", dir);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);

    kl_store *st = NULL;
    assert_int_equal(kl_store_open_sqlite(path, &st), 0);
    check_settings(st);
    kl_store_close(st);
    /* synchronous and foreign_keys belong to the connection, not the file: a reopened
     * store must set them again. */
    st = NULL;
    assert_int_equal(kl_store_open_sqlite(path, &st), 0);
    check_settings(st);
    kl_store_close(st);

    unlink(wal);
    unlink(shm);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durability_settings_on_create_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
