/* The engine the store tests run on: SQLite files by default, or PostgreSQL when
 * KL_TEST_PG names a server (host:port, superuser "keyless"; tests/lib/pg-server run
 * starts one). On PostgreSQL each store "path" becomes a database of its own, made
 * from the path, so every test still owns its state, and reopening a path reopens the
 * same database. raw_int and raw_exec go around the store on a connection of their
 * own, on either engine. */
#ifndef KL_TEST_STORE_ENGINE_H
#define KL_TEST_STORE_ENGINE_H

#include <dirent.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/migrations.h"
#include "store/store.h"

/* How many migrations this build knows: a store opened by it has applied all of them. */
static inline long long test_migration_count(void)
{
    size_t n = 0;
    (void)kl_store_migrations(&n);
    return (long long)n;
}

/* The schema version a store opened by this build reports: the last migration's number
 * (numbers may leave gaps for migrations other branches add). */
static inline int test_migration_last_version(void)
{
    size_t n = 0;
    const kl_store_migration *m = kl_store_migrations(&n);
    return n ? m[n - 1].version : 0;
}

static inline const char *test_pg(void)
{
    const char *hp = getenv("KL_TEST_PG");
    return hp && hp[0] ? hp : NULL;
}

/* Skips the calling test on PostgreSQL (it checks something only SQLite has). */
#define SQLITE_ONLY()                                                                              \
    do {                                                                                           \
        if (test_pg())                                                                             \
            skip();                                                                                \
    } while (0)

/* Skips the calling test on SQLite (it checks something only several nodes have). */
#define POSTGRES_ONLY()                                                                            \
    do {                                                                                           \
        if (!test_pg())                                                                            \
            skip();                                                                                \
    } while (0)

/* The database a path stands for: "t_" and the path's letters and digits. */
static inline void test_db_name(const char *path, char *out, size_t outlen)
{
    size_t j = 0;
    if (outlen < 3)
        return;
    out[j++] = 't';
    out[j++] = '_';
    for (const char *p = path; *p && j + 1 < outlen && j < 60; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
            out[j++] = *p;
        else if (*p >= 'A' && *p <= 'Z')
            out[j++] = (char)(*p - 'A' + 'a');
    out[j] = '\0';
}

static inline void test_pg_url(const char *db, char *out, size_t outlen)
{
    snprintf(out, outlen, "postgres://keyless@%s/%s?sslmode=disable", test_pg(), db);
}

static inline PGconn *test_pg_connect(const char *db)
{
    char url[512];
    test_pg_url(db, url, sizeof(url));
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "test: cannot connect to %s: %s", url, PQerrorMessage(c));
        abort();
    }
    return c;
}

/* Opens the store for path on the engine under test, creating its database. */
static inline int test_store_open(const char *path, kl_store **st)
{
    if (!test_pg())
        return kl_store_open_sqlite(path, st);
    char db[80], url[512], sql[160];
    test_db_name(path, db, sizeof(db));
    PGconn *c = test_pg_connect("postgres");
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    PGresult *r = PQexec(c, sql); /* already there on reopen: fine */
    PQclear(r);
    PQfinish(c);
    test_pg_url(db, url, sizeof(url));
    return kl_store_open(url, st);
}

/* Empties dir (the store's file and what SQLite keeps beside it) and removes it. */
static inline void test_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* The fixture every store test starts from: makes a fresh directory /tmp/kl-<tag>-XXXXXX
 * into dir, names the store's file keyless.db in it into path (on PostgreSQL, the path
 * the test's database is named after: keep tag distinct per test file) and opens the
 * store there into *st. 0 on success; KL_EIO if the names do not fit or the directory
 * cannot be made; else test_store_open's error. */
static inline int test_store_dir_open(const char *tag, char *dir, size_t dirlen, char *path,
                                      size_t pathlen, kl_store **st)
{
    int n = snprintf(dir, dirlen, "/tmp/kl-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= dirlen || !mkdtemp(dir))
        return KL_EIO;
    n = snprintf(path, pathlen, "%s/keyless.db", dir);
    if (n < 0 || (size_t)n >= pathlen)
        return KL_EIO;
    return test_store_open(path, st);
}

/* Undoes test_store_dir_open: closes st and removes dir with all in it. */
static inline void test_store_dir_close(kl_store *st, const char *dir)
{
    kl_store_close(st);
    test_dir_remove(dir);
}

/* The fixture most store tests share: a store of their own in a fresh directory
 * (test_store_dir_open), and a counter that makes GUIDs distinct (test_next_guid). */
typedef struct test_store_fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    unsigned seq;
} test_store_fixture;

/* For a cmocka setup: *state becomes a test_store_fixture whose store is open in
 * /tmp/kl-<tag>-XXXXXX. Returns 0, or -1 (cmocka then fails the test) when it cannot. */
static inline int test_store_fixture_setup(void **state, const char *tag)
{
    test_store_fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    int err = test_store_dir_open(tag, f->dir, sizeof(f->dir), f->path, sizeof(f->path), &f->st);
    if (err) {
        fprintf(stderr, "test: cannot open a store for %s: %d\n", tag, err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* For a cmocka teardown: undoes test_store_fixture_setup. */
static inline int test_store_fixture_teardown(void **state)
{
    test_store_fixture *f = *state;
    test_store_dir_close(f->st, f->dir);
    free(f);
    return 0;
}

/* A fresh GUID-shaped name, distinct per call on the same counter. */
static inline void test_next_guid(unsigned *seq, char out[KL_UUID_LEN + 1])
{
    snprintf(out, KL_UUID_LEN + 1, "00000000-0000-4000-8000-%012u", ++*seq);
}

static inline long long raw_int(const char *path, const char *sql)
{
    long long v = -1;
    if (test_pg()) {
        char db[80];
        test_db_name(path, db, sizeof(db));
        PGconn *c = test_pg_connect(db);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Runs sql around the store; 0 on success. */
static inline int raw_exec(const char *path, const char *sql)
{
    int rc = -1;
    if (test_pg()) {
        char db[80];
        test_db_name(path, db, sizeof(db));
        PGconn *c = test_pg_connect(db);
        PGresult *r = PQexec(c, sql);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
        PQclear(r);
        PQfinish(c);
        return rc;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    sqlite3_close(db);
    return rc;
}

#endif
