/* Unit tests of the store against real databases (SQLite files in fresh temporary
 * directories, or PostgreSQL: see engine.h): migrations, CRUD, uniqueness, cascades,
 * durability across reopen, file modes and hostile names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "store/store.h"
#include "engine.h"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "store");
}

static void reopen(fixture *f)
{
    kl_store_close(f->st);
    f->st = NULL;
    assert_int_equal(test_store_open(f->path, &f->st), 0);
}

static kl_store_account make_account(char *idbuf, size_t idlen, const char *sub, const char *rg,
                                     const char *name)
{
    snprintf(idbuf, idlen,
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.CognitiveServices/"
             "accounts/%s",
             sub, rg, name);
    kl_store_account a = {0};
    a.id = idbuf;
    a.subscription = (char *)sub;
    a.resource_group = (char *)rg;
    a.name = (char *)name;
    a.location = "local";
    a.kind = "OpenAI";
    a.sku = "{\"name\":\"S0\"}";
    a.tags = "{}";
    a.properties = "{}";
    a.etag = "etag-1";
    a.created_at = 1000;
    a.modified_at = 1000;
    return a;
}

static kl_store_key make_key(int slot, unsigned char fill, const char *sealed)
{
    kl_store_key k = {0};
    k.slot = slot;
    k.sealed = (char *)sealed;
    memset(k.index, fill, sizeof(k.index));
    k.created_at = 1000;
    return k;
}

static void put_simple(fixture *f, const char *sub, const char *rg, const char *name,
                       unsigned char fill)
{
    char id[512];
    kl_store_account a = make_account(id, sizeof(id), sub, rg, name);
    kl_store_key keys[2] = {make_key(1, fill, "sealed-1"),
                            make_key(2, (unsigned char)(fill + 1), "sealed-2")};
    bool created = false;
    assert_int_equal(kl_store_put_account(f->st, &a, keys, 2, &created), 0);
    assert_true(created);
}

/* ------------------------------------------------------------------ tests */

static void test_file_mode_and_pragmas(void **state)
{
    SQLITE_ONLY();
    fixture *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    put_simple(f, "sub", "rg", "demo", 1);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* journal_mode is persistent in the file for WAL. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_existing_file_tightened(void **state)
{
    SQLITE_ONLY();
    fixture *f = *state;
    char p[160];
    snprintf(p, sizeof(p), "%s/loose.db", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(chmod(p, 0644), 0);
    kl_store *st = NULL;
    assert_int_equal(kl_store_open_sqlite(p, &st), 0);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    kl_store_close(st);
}

static void test_not_a_database(void **state)
{
    SQLITE_ONLY();
    fixture *f = *state;
    char p[160];
    snprintf(p, sizeof(p), "%s/junk.db", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("this is certainly not an sqlite database file, but it is long enough to look like "
          "one to a careless reader of headers",
          fp);
    fclose(fp);
    kl_store *st = NULL;
    assert_int_equal(kl_store_open_sqlite(p, &st), KL_EIO);
    assert_null(st);
    assert_int_equal(kl_store_open_sqlite(NULL, &st), KL_EINVAL);
}

static void test_migrations_idempotent(void **state)
{
    fixture *f = *state;
    int v1 = 0, v2 = 0;
    assert_int_equal(kl_store_schema_version(f->st, &v1), 0);
    assert_true(v1 >= 1);
    /* One row per migration this build knows (version numbers may leave gaps). */
    long long rows = raw_int(f->path, "SELECT count(*) FROM schema_version");
    assert_int_equal(v1, test_migration_last_version());
    assert_int_equal(rows, test_migration_count());
    reopen(f);
    reopen(f);
    assert_int_equal(kl_store_schema_version(f->st, &v2), 0);
    assert_int_equal(v1, v2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_version"), rows);
    assert_int_equal(raw_int(f->path, test_pg() ? "SELECT count(*) FROM pg_tables WHERE tablename "
                                                  "IN ('accounts','account_keys','deployments')"
                                                : "SELECT count(*) FROM sqlite_master WHERE type = "
                                                  "'table' AND name IN ('accounts','account_keys',"
                                                  "'deployments')"),
                     3);
}

static void test_newer_schema_refused(void **state)
{
    fixture *f = *state;
    kl_store_close(f->st);
    f->st = NULL;
    assert_int_equal(
        raw_exec(f->path, "INSERT INTO schema_version (version, applied_at) VALUES (9999, 0)"), 0);
    kl_store *st = NULL;
    assert_int_equal(test_store_open(f->path, &st), KL_ECONFLICT);
    assert_null(st);
    assert_int_equal(raw_exec(f->path, "DELETE FROM schema_version WHERE version = 9999"), 0);
    assert_int_equal(test_store_open(f->path, &f->st), 0);
}

static void test_account_crud(void **state)
{
    fixture *f = *state;
    char id[512];
    kl_store_account a = make_account(id, sizeof(id), "sub1", "RG-One", "Demo");
    kl_store_key keys[2] = {make_key(1, 0x11, "s1"), make_key(2, 0x22, "s2")};
    bool created = false;
    assert_int_equal(kl_store_put_account(f->st, &a, keys, 2, &created), 0);
    assert_true(created);

    kl_store_account *got = NULL;
    assert_int_equal(kl_store_get_account(f->st, "dEMO", &got), 0);
    assert_string_equal(got->id, id);
    assert_string_equal(got->name, "Demo");
    assert_string_equal(got->subscription, "sub1");
    assert_string_equal(got->resource_group, "RG-One");
    assert_string_equal(got->location, "local");
    assert_string_equal(got->kind, "OpenAI");
    assert_string_equal(got->sku, "{\"name\":\"S0\"}");
    assert_string_equal(got->etag, "etag-1");
    assert_false(got->disable_local_auth);
    assert_int_equal(got->created_at, 1000);
    kl_store_account_free(got);

    /* Update through an id that differs only in case. */
    char id2[512];
    kl_store_account b = make_account(id2, sizeof(id2), "SUB1", "rg-one", "demo");
    b.location = "elsewhere";
    b.kind = "AIServices";
    b.tags = "{\"env\":\"test\"}";
    b.disable_local_auth = true;
    b.etag = "etag-2";
    b.created_at = 5000;
    b.modified_at = 5000;
    kl_store_key other = make_key(1, 0x99, "never");
    assert_int_equal(kl_store_put_account(f->st, &b, &other, 1, &created), 0);
    assert_false(created);
    assert_int_equal(kl_store_get_account(f->st, "demo", &got), 0);
    assert_string_equal(got->id, id); /* casing as created */
    assert_string_equal(got->location, "elsewhere");
    assert_string_equal(got->kind, "AIServices");
    assert_string_equal(got->tags, "{\"env\":\"test\"}");
    assert_true(got->disable_local_auth);
    assert_string_equal(got->etag, "etag-2");
    assert_int_equal(got->created_at, 1000);
    assert_int_equal(got->modified_at, 5000);
    kl_store_account_free(got);

    /* Keys were not touched by the update. */
    kl_store_key *ks = NULL;
    size_t nk = 0;
    assert_int_equal(kl_store_get_account_keys(f->st, "DEMO", &ks, &nk), 0);
    assert_int_equal(nk, 2);
    assert_int_equal(ks[0].slot, 1);
    assert_string_equal(ks[0].sealed, "s1");
    assert_int_equal(ks[0].index[0], 0x11);
    assert_int_equal(ks[1].slot, 2);
    assert_string_equal(ks[1].sealed, "s2");
    kl_store_keys_free(ks, nk);

    assert_int_equal(kl_store_get_account(f->st, "nope", &got), KL_ENOTFOUND);
    assert_null(got);
    assert_int_equal(kl_store_delete_account(f->st, "DeMo"), 0);
    assert_int_equal(kl_store_get_account(f->st, "demo", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_delete_account(f->st, "demo"), KL_ENOTFOUND);
}

static void test_list_filters(void **state)
{
    fixture *f = *state;
    put_simple(f, "s1", "g1", "bravo", 0x10);
    put_simple(f, "s1", "g1", "Alpha", 0x20);
    put_simple(f, "s1", "g2", "charlie", 0x30);
    put_simple(f, "s2", "g1", "delta", 0x40);

    kl_store_account **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_accounts(f->st, NULL, NULL, &l, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(l[0]->name, "Alpha");
    assert_string_equal(l[1]->name, "bravo");
    kl_store_accounts_free(l, n);

    assert_int_equal(kl_store_list_accounts(f->st, "S1", NULL, &l, &n), 0);
    assert_int_equal(n, 3);
    kl_store_accounts_free(l, n);

    assert_int_equal(kl_store_list_accounts(f->st, "s1", "G1", &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0]->name, "Alpha");
    assert_string_equal(l[1]->name, "bravo");
    kl_store_accounts_free(l, n);

    assert_int_equal(kl_store_list_accounts(f->st, "s3", NULL, &l, &n), 0);
    assert_int_equal(n, 0);
    kl_store_accounts_free(l, n);
}

static void test_unique_name_across_groups(void **state)
{
    fixture *f = *state;
    put_simple(f, "s1", "g1", "Demo", 0x10);
    char id[512];
    kl_store_account a = make_account(id, sizeof(id), "s2", "g9", "dEmO");
    a.location = "other";
    kl_store_key keys[2] = {make_key(1, 0x50, "x"), make_key(2, 0x51, "y")};
    bool created = true;
    assert_int_equal(kl_store_put_account(f->st, &a, keys, 2, &created), KL_ECONFLICT);
    kl_store_account *got = NULL;
    assert_int_equal(kl_store_get_account(f->st, "demo", &got), 0);
    assert_string_equal(got->subscription, "s1");
    assert_string_equal(got->location, "local");
    kl_store_account_free(got);
    /* The refused keys were not written either. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM account_keys"), 2);
}

static void test_keys(void **state)
{
    fixture *f = *state;
    put_simple(f, "s", "g", "acct", 0x10);
    kl_store_key k2 = make_key(2, 0x77, "new-2");
    assert_int_equal(kl_store_regenerate_account_key(f->st, "ACCT", &k2), 0);
    kl_store_key *ks = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_get_account_keys(f->st, "acct", &ks, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ks[0].sealed, "sealed-1");
    assert_int_equal(ks[0].index[5], 0x10);
    assert_string_equal(ks[1].sealed, "new-2");
    assert_int_equal(ks[1].index[5], 0x77);
    kl_store_keys_free(ks, n);

    /* An index already used by another slot is refused and nothing changes. */
    kl_store_key dup = make_key(1, 0x77, "dup");
    assert_int_equal(kl_store_regenerate_account_key(f->st, "acct", &dup), KL_ECONFLICT);
    assert_int_equal(kl_store_get_account_keys(f->st, "acct", &ks, &n), 0);
    assert_string_equal(ks[0].sealed, "sealed-1");
    kl_store_keys_free(ks, n);

    /* Both at once. */
    kl_store_key both[2] = {make_key(2, 0xa2, "b2"), make_key(1, 0xa1, "b1")};
    assert_int_equal(kl_store_set_account_keys(f->st, "acct", both, 2), 0);
    assert_int_equal(kl_store_get_account_keys(f->st, "acct", &ks, &n), 0);
    assert_string_equal(ks[0].sealed, "b1");
    assert_string_equal(ks[1].sealed, "b2");
    kl_store_keys_free(ks, n);

    kl_store_key bad = make_key(3, 0xb0, "bad");
    assert_int_equal(kl_store_regenerate_account_key(f->st, "acct", &bad), KL_EINVAL);
    kl_store_key same[2] = {make_key(1, 0xc1, "c1"), make_key(1, 0xc2, "c2")};
    assert_int_equal(kl_store_set_account_keys(f->st, "acct", same, 2), KL_EINVAL);
    kl_store_key nosealed = make_key(1, 0xd0, NULL);
    assert_int_equal(kl_store_regenerate_account_key(f->st, "acct", &nosealed), KL_EINVAL);
    assert_int_equal(kl_store_regenerate_account_key(f->st, "missing", &k2), KL_ENOTFOUND);
    assert_int_equal(kl_store_get_account_keys(f->st, "missing", &ks, &n), KL_ENOTFOUND);
}

static int64_t last_used_of(fixture *f, const char *account, int slot)
{
    kl_store_key *ks = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_get_account_keys(f->st, account, &ks, &n), 0);
    int64_t v = -1;
    for (size_t i = 0; i < n; i++)
        if (ks[i].slot == slot)
            v = ks[i].last_used;
    kl_store_keys_free(ks, n);
    return v;
}

static int load_key_usage(void *arg, const char *account_name, const kl_store_key *k)
{
    (void)account_name;
    if (k->slot == 1)
        *(int64_t *)arg = k->last_used;
    return 0;
}

/* Key usage: recorded by index, only ever forward, without moving the generation;
 * kept across reopen, reset when the slot is written, never carried to a new key. */
static void test_key_usage(void **state)
{
    fixture *f = *state;
    put_simple(f, "s", "g", "acct", 0x10);
    assert_int_equal(last_used_of(f, "acct", 1), 0);
    int64_t gen0 = 0, gen1 = 0;
    assert_int_equal(kl_store_generation(f->st, &gen0), 0);
    kl_store_key_usage u[2];
    memset(u, 0, sizeof(u));
    memset(u[0].index, 0x10, 32);
    u[0].day = 20000 * 86400LL;
    memset(u[1].index, 0x99, 32); /* no such key: changes nothing */
    u[1].day = 20000 * 86400LL;
    assert_int_equal(kl_store_record_key_usage(f->st, u, 2), 0);
    assert_int_equal(last_used_of(f, "acct", 1), 20000 * 86400LL);
    assert_int_equal(last_used_of(f, "acct", 2), 0);
    assert_int_equal(kl_store_generation(f->st, &gen1), 0);
    assert_int_equal(gen1, gen0);
    /* An older day does not move it back; a newer one moves it on. */
    u[0].day = 19999 * 86400LL;
    assert_int_equal(kl_store_record_key_usage(f->st, u, 1), 0);
    assert_int_equal(last_used_of(f, "acct", 1), 20000 * 86400LL);
    u[0].day = 20001 * 86400LL;
    assert_int_equal(kl_store_record_key_usage(f->st, u, 1), 0);
    assert_int_equal(last_used_of(f, "acct", 1), 20001 * 86400LL);
    reopen(f);
    assert_int_equal(last_used_of(f, "acct", 1), 20001 * 86400LL);
    int64_t seen = -1;
    kl_store_visitor v = {.arg = &seen, .key = load_key_usage};
    assert_int_equal(kl_store_load_all(f->st, &v), 0);
    assert_int_equal(seen, 20001 * 86400LL);
    /* Regenerating resets the slot; a late batch for the old key leaves the new one. */
    kl_store_key k1 = make_key(1, 0x55, "new-1");
    assert_int_equal(kl_store_regenerate_account_key(f->st, "acct", &k1), 0);
    assert_int_equal(last_used_of(f, "acct", 1), 0);
    u[0].day = 20002 * 86400LL;
    assert_int_equal(kl_store_record_key_usage(f->st, u, 1), 0);
    assert_int_equal(last_used_of(f, "acct", 1), 0);
    assert_int_equal(kl_store_record_key_usage(f->st, NULL, 0), 0);
    assert_int_equal(kl_store_record_key_usage(f->st, NULL, 1), KL_EINVAL);
}

/* networkAcls live in their own column: written, read back, replaced, removed. */
static void test_network_acls(void **state)
{
    fixture *f = *state;
    char id[512];
    kl_store_account a = make_account(id, sizeof(id), "s", "g", "net");
    a.network_acls = "{\"defaultAction\":\"Deny\",\"ipRules\":[{\"value\":\"10.0.0.0/8\"}]}";
    assert_int_equal(kl_store_put_account(f->st, &a, NULL, 0, NULL), 0);
    kl_store_account *got = NULL;
    assert_int_equal(kl_store_get_account(f->st, "net", &got), 0);
    assert_string_equal(got->network_acls, a.network_acls);
    kl_store_account_free(got);
    a.network_acls = NULL;
    assert_int_equal(kl_store_put_account(f->st, &a, NULL, 0, NULL), 0);
    assert_int_equal(kl_store_get_account(f->st, "net", &got), 0);
    assert_null(got->network_acls);
    kl_store_account_free(got);
    a.network_acls = "[1]";
    assert_int_equal(kl_store_put_account(f->st, &a, NULL, 0, NULL), KL_EINVAL);
}

static kl_store_deployment make_dep(const char *name, const char *backend, const char *url,
                                    const char *cred)
{
    kl_store_deployment d = {0};
    d.name = (char *)name;
    d.sku = "{\"name\":\"Standard\",\"capacity\":1}";
    d.model = "{\"format\":\"OpenAI\",\"name\":\"gpt-4o-mini\",\"version\":\"1\"}";
    d.backend = (char *)backend;
    if (strcmp(backend, "upstream") == 0) {
        d.upstream_url = (char *)url;
        d.upstream_model = "llama3";
        d.credential_sealed = (char *)cred;
    }
    d.created_at = 2000;
    d.modified_at = 2000;
    return d;
}

static void test_deployments(void **state)
{
    fixture *f = *state;
    put_simple(f, "s", "g", "acct", 0x10);
    bool created = false;
    kl_store_deployment d = make_dep("chat", "echo", NULL, NULL);
    assert_int_equal(kl_store_put_deployment(f->st, "ACCT", &d, false, &created), 0);
    assert_true(created);
    kl_store_deployment u = make_dep("Up", "upstream", "http://127.0.0.1:8000/v1", "sealed-cred");
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &u, false, &created), 0);
    assert_true(created);

    kl_store_deployment *got = NULL;
    assert_int_equal(kl_store_get_deployment(f->st, "Acct", "Up", &got), 0);
    assert_string_equal(got->account_name, "acct");
    assert_string_equal(got->backend, "upstream");
    assert_string_equal(got->upstream_url, "http://127.0.0.1:8000/v1");
    assert_string_equal(got->upstream_model, "llama3");
    assert_string_equal(got->credential_sealed, "sealed-cred");
    kl_store_deployment_free(got);
    /* Deployment names are case-sensitive. */
    assert_int_equal(kl_store_get_deployment(f->st, "acct", "up", &got), KL_ENOTFOUND);

    /* Same URL, no credential given, keep requested: the credential stays. */
    kl_store_deployment u2 = make_dep("Up", "upstream", "http://127.0.0.1:8000/v1", NULL);
    u2.created_at = 9999;
    u2.modified_at = 3000;
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &u2, true, &created), 0);
    assert_false(created);
    assert_int_equal(kl_store_get_deployment(f->st, "acct", "Up", &got), 0);
    assert_string_equal(got->credential_sealed, "sealed-cred");
    assert_int_equal(got->created_at, 2000);
    assert_int_equal(got->modified_at, 3000);
    kl_store_deployment_free(got);

    /* A new URL never inherits the old credential. */
    kl_store_deployment u3 = make_dep("Up", "upstream", "http://10.0.0.1:9000/v1", NULL);
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &u3, true, &created), 0);
    assert_int_equal(kl_store_get_deployment(f->st, "acct", "Up", &got), 0);
    assert_null(got->credential_sealed);
    kl_store_deployment_free(got);

    /* Switching to echo clears the upstream fields. */
    kl_store_deployment u4 = make_dep("Up", "upstream", "http://10.0.0.1:9000/v1", "c2");
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &u4, false, NULL), 0);
    kl_store_deployment e = make_dep("Up", "echo", NULL, NULL);
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &e, true, NULL), 0);
    assert_int_equal(kl_store_get_deployment(f->st, "acct", "Up", &got), 0);
    assert_string_equal(got->backend, "echo");
    assert_null(got->upstream_url);
    assert_null(got->credential_sealed);
    kl_store_deployment_free(got);

    kl_store_deployment **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_deployments(f->st, "acct", &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0]->name, "Up"); /* byte order: upper case first */
    assert_string_equal(l[1]->name, "chat");
    kl_store_deployments_free(l, n);

    assert_int_equal(kl_store_delete_deployment(f->st, "acct", "chat"), 0);
    assert_int_equal(kl_store_delete_deployment(f->st, "acct", "chat"), KL_ENOTFOUND);
    assert_int_equal(kl_store_delete_deployment(f->st, "missing", "chat"), KL_ENOTFOUND);
    assert_int_equal(kl_store_list_deployments(f->st, "missing", &l, &n), KL_ENOTFOUND);
    assert_int_equal(kl_store_put_deployment(f->st, "missing", &d, false, NULL), KL_ENOTFOUND);

    /* Inconsistent backends are refused before touching the database. */
    kl_store_deployment bad = make_dep("bad", "echo", NULL, NULL);
    bad.upstream_url = "http://x";
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &bad, false, NULL), KL_EINVAL);
    bad = make_dep("bad", "ftp", NULL, NULL);
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &bad, false, NULL), KL_EINVAL);
    bad = make_dep("bad", "upstream", NULL, NULL);
    assert_int_equal(kl_store_put_deployment(f->st, "acct", &bad, false, NULL), KL_EINVAL);
}

static void test_delete_cascades(void **state)
{
    fixture *f = *state;
    put_simple(f, "s", "g", "gone", 0x10);
    put_simple(f, "s", "g", "kept", 0x40);
    kl_store_deployment d = make_dep("d1", "echo", NULL, NULL);
    assert_int_equal(kl_store_put_deployment(f->st, "gone", &d, false, NULL), 0);
    kl_store_deployment d2 = make_dep("d2", "upstream", "https://example.test/v1", "c");
    assert_int_equal(kl_store_put_deployment(f->st, "gone", &d2, false, NULL), 0);
    assert_int_equal(kl_store_put_deployment(f->st, "kept", &d, false, NULL), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM deployments"), 3);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM account_keys"), 4);

    assert_int_equal(kl_store_delete_account(f->st, "GONE"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM deployments"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM account_keys"), 2);
    kl_store_deployment *got = NULL;
    assert_int_equal(kl_store_get_deployment(f->st, "gone", "d1", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_get_deployment(f->st, "kept", "d1", &got), 0);
    kl_store_deployment_free(got);

    /* The name is free again, with fresh keys allowed to reuse nothing. */
    put_simple(f, "other", "g", "gone", 0x60);
}

static void test_survives_reopen(void **state)
{
    fixture *f = *state;
    put_simple(f, "s", "g", "durable", 0x10);
    kl_store_deployment d = make_dep("dep", "upstream", "http://127.0.0.1:1/v1", "cred");
    assert_int_equal(kl_store_put_deployment(f->st, "durable", &d, false, NULL), 0);
    reopen(f);
    kl_store_account *a = NULL;
    assert_int_equal(kl_store_get_account(f->st, "durable", &a), 0);
    assert_string_equal(a->resource_group, "g");
    kl_store_account_free(a);
    kl_store_deployment *got = NULL;
    assert_int_equal(kl_store_get_deployment(f->st, "durable", "dep", &got), 0);
    assert_string_equal(got->credential_sealed, "cred");
    kl_store_deployment_free(got);
    kl_store_key *ks = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_get_account_keys(f->st, "durable", &ks, &n), 0);
    assert_int_equal(n, 2);
    kl_store_keys_free(ks, n);
}

static void test_sql_metacharacters_literal(void **state)
{
    fixture *f = *state;
    const char *evil = "x'); DROP TABLE accounts; --";
    put_simple(f, "s'--", "g\"; DELETE FROM account_keys;", evil, 0x10);
    put_simple(f, "s", "g", "plain", 0x30);
    kl_store_account *a = NULL;
    assert_int_equal(kl_store_get_account(f->st, evil, &a), 0);
    assert_string_equal(a->name, evil);
    assert_string_equal(a->subscription, "s'--");
    kl_store_account_free(a);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM accounts"), 2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM account_keys"), 4);
    kl_store_deployment d = make_dep("a%_*'\"", "echo", NULL, NULL);
    assert_int_equal(kl_store_put_deployment(f->st, evil, &d, false, NULL), 0);
    kl_store_deployment *got = NULL;
    /* A LIKE-style pattern must not match anything else. */
    assert_int_equal(kl_store_get_deployment(f->st, evil, "a%", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_get_deployment(f->st, evil, "a%_*'\"", &got), 0);
    kl_store_deployment_free(got);
    kl_store_account **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_accounts(f->st, "' OR 1=1 --", NULL, &l, &n), 0);
    assert_int_equal(n, 0);
    kl_store_accounts_free(l, n);
}

typedef struct walk {
    int accounts, keys, deployments;
    char last_account[64];
    int stop_after;
} walk;

static int on_account(void *arg, const kl_store_account *a)
{
    walk *w = arg;
    /* Ordered by lower-case name. */
    assert_true(strcasecmp(w->last_account, a->name) < 0);
    snprintf(w->last_account, sizeof(w->last_account), "%s", a->name);
    w->accounts++;
    if (w->stop_after && w->accounts == w->stop_after)
        return 42;
    return 0;
}

static int on_key(void *arg, const char *account, const kl_store_key *k)
{
    walk *w = arg;
    assert_non_null(account);
    assert_true(k->slot == 1 || k->slot == 2);
    assert_non_null(k->sealed);
    w->keys++;
    return 0;
}

static int on_deployment(void *arg, const kl_store_deployment *d)
{
    walk *w = arg;
    assert_non_null(d->account_name);
    assert_non_null(d->name);
    w->deployments++;
    return 0;
}

static void test_load_all(void **state)
{
    fixture *f = *state;
    put_simple(f, "s", "g", "Bbb", 0x10);
    put_simple(f, "s", "g", "aaa", 0x20);
    put_simple(f, "s", "h", "ccc", 0x30);
    kl_store_deployment d = make_dep("d", "echo", NULL, NULL);
    assert_int_equal(kl_store_put_deployment(f->st, "aaa", &d, false, NULL), 0);
    assert_int_equal(kl_store_put_deployment(f->st, "ccc", &d, false, NULL), 0);

    walk w = {0};
    kl_store_visitor v = {
        .arg = &w, .account = on_account, .key = on_key, .deployment = on_deployment};
    assert_int_equal(kl_store_load_all(f->st, &v), 0);
    assert_int_equal(w.accounts, 3);
    assert_int_equal(w.keys, 6);
    assert_int_equal(w.deployments, 2);

    walk w2 = {.stop_after = 2};
    v.arg = &w2;
    assert_int_equal(kl_store_load_all(f->st, &v), 42);
    assert_int_equal(w2.accounts, 2);
    assert_int_equal(w2.keys, 0);

    /* The store is still usable (the read transaction was closed). */
    put_simple(f, "s", "g", "ddd", 0x40);
}

static void test_bad_inputs(void **state)
{
    fixture *f = *state;
    char id[512];
    kl_store_account a = make_account(id, sizeof(id), "s", "g", "n");
    a.location = NULL;
    assert_int_equal(kl_store_put_account(f->st, &a, NULL, 0, NULL), KL_EINVAL);
    a = make_account(id, sizeof(id), "s", "g", "n");
    a.sku = "{not json";
    assert_int_equal(kl_store_put_account(f->st, &a, NULL, 0, NULL), KL_EINVAL);
    a = make_account(id, sizeof(id), "s", "g", "n");
    kl_store_key three[3] = {make_key(1, 1, "a"), make_key(2, 2, "b"), make_key(1, 3, "c")};
    assert_int_equal(kl_store_put_account(f->st, &a, three, 3, NULL), KL_EINVAL);
    assert_int_equal(kl_store_put_account(NULL, &a, NULL, 0, NULL), KL_EINVAL);
    assert_int_equal(kl_store_get_account(f->st, NULL, NULL), KL_EINVAL);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM accounts"), 0);
    /* NULL sku/tags/properties default to empty objects. */
    a.sku = NULL;
    a.tags = NULL;
    a.properties = NULL;
    assert_int_equal(kl_store_put_account(f->st, &a, NULL, 0, NULL), 0);
    kl_store_account *got = NULL;
    assert_int_equal(kl_store_get_account(f->st, "n", &got), 0);
    assert_string_equal(got->tags, "{}");
    kl_store_account_free(got);
    kl_store_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_mode_and_pragmas, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_existing_file_tightened, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_account_crud, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unique_name_across_groups, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_key_usage, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_network_acls, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deployments, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascades, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sql_metacharacters_literal, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_load_all, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, setup, test_store_fixture_teardown),
    };
    return cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);
}
