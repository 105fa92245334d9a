/* Unit tests of the snapshot: built from a real SQLite store with real sealed values,
 * looked up the way the gateway does, published and read concurrently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "crypto/apikey.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "policy/build.h"
#include "policy/snapshot.h"
#include "policy/snapshot_builder.h"
#include "store/store.h"
#include "fixture.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    kl_keys *keys;
    char demo_key1[KL_APIKEY_LEN + 1];
    char demo_key2[KL_APIKEY_LEN + 1];
} fixture;

static void make_key(fixture *f, const char *account_id, int slot, char out[KL_APIKEY_LEN + 1],
                     kl_store_key *k)
{
    assert_int_equal(kl_apikey_generate(out), 0);
    char aad[512];
    char lower[400];
    size_t n = strlen(account_id);
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)((account_id[i] >= 'A' && account_id[i] <= 'Z') ? account_id[i] + 32
                                                                         : account_id[i]);
    snprintf(aad, sizeof(aad), "apikey:%s:%d", lower, slot);
    memset(k, 0, sizeof(*k));
    k->slot = slot;
    assert_int_equal(kl_seal(f->keys, aad, out, strlen(out), &k->sealed), 0);
    assert_int_equal(kl_apikey_index(f->keys, out, strlen(out), k->index), 0);
    k->created_at = 1;
}

static void put_account(fixture *f, const char *sub, const char *rg, const char *name, bool dla,
                        char key1[KL_APIKEY_LEN + 1], char key2[KL_APIKEY_LEN + 1])
{
    char id[400];
    snprintf(id, sizeof(id),
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.CognitiveServices/"
             "accounts/%s",
             sub, rg, name);
    kl_store_account a = {.id = id,
                          .subscription = (char *)sub,
                          .resource_group = (char *)rg,
                          .name = (char *)name,
                          .location = "local",
                          .kind = "OpenAI",
                          .etag = "e",
                          .disable_local_auth = dla,
                          .created_at = 1,
                          .modified_at = 1};
    char k1[KL_APIKEY_LEN + 1], k2[KL_APIKEY_LEN + 1];
    kl_store_key keys[2];
    make_key(f, id, 1, key1 ? key1 : k1, &keys[0]);
    make_key(f, id, 2, key2 ? key2 : k2, &keys[1]);
    assert_int_equal(kl_store_put_account(f->st, &a, keys, 2, NULL), 0);
    free(keys[0].sealed);
    free(keys[1].sealed);
}

static void put_deployment(fixture *f, const char *account, const char *name, const char *url,
                           const char *credential, const char *seal_url)
{
    kl_store_deployment d = {.name = (char *)name,
                             .model = "{\"format\":\"OpenAI\",\"name\":\"gpt-4o-mini\"}",
                             .backend = url ? "upstream" : "echo",
                             .upstream_url = (char *)url,
                             .upstream_model = url ? "llama3" : NULL,
                             .created_at = 1,
                             .modified_at = 1};
    char *sealed = NULL;
    if (credential) {
        char aad[KL_POLICY_AAD_MAX];
        assert_int_equal(
            kl_policy_credential_aad(account, name, seal_url ? seal_url : url, aad, sizeof(aad)),
            0);
        assert_int_equal(kl_seal(f->keys, aad, credential, strlen(credential), &sealed), 0);
        d.credential_sealed = sealed;
    }
    assert_int_equal(kl_store_put_deployment(f->st, account, &d, false, NULL), 0);
    free(sealed);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_store_open(f->dir, f->path, "/tmp/kl-snap-XXXXXX", &f->st);
    f->keys = test_keys_with(0x42);

    put_account(f, "sub", "rg", "Demo", false, f->demo_key1, f->demo_key2);
    put_account(f, "sub", "rg2", "other", true, NULL, NULL);
    put_deployment(f, "Demo", "chat", NULL, NULL, NULL);
    put_deployment(f, "Demo", "Alpha", NULL, NULL, NULL);
    put_deployment(f, "demo", "up", "http://127.0.0.1:8000/v1", "sk-secret", NULL);
    put_deployment(f, "other", "chat", "https://example.test/v1", NULL, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_store_close(f->st);
    kl_keys_free(f->keys);
    test_store_remove(f->dir);
    free(f);
    return 0;
}

static void index_of(fixture *f, const char *key, unsigned char out[32])
{
    assert_int_equal(kl_apikey_index(f->keys, key, strlen(key), out), 0);
}

/* ------------------------------------------------------------------ tests */

static void test_lookups(void **state)
{
    fixture *f = *state;
    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    assert_non_null(s);
    assert_int_equal(kl_snapshot_generation(s), 0);

    const kl_account *a = kl_snapshot_account(s, "dEmO", 4);
    assert_non_null(a);
    assert_string_equal(a->name, "Demo");
    assert_string_equal(a->subscription, "sub");
    assert_string_equal(a->resource_group, "rg");
    assert_string_equal(a->location, "local");
    assert_false(a->disable_local_auth);
    assert_string_equal(a->id, "/subscriptions/sub/resourceGroups/rg/providers/"
                               "Microsoft.CognitiveServices/accounts/Demo");
    /* Length-bounded: a prefix of a name is not the name. */
    assert_null(kl_snapshot_account(s, "Demox", 3));
    assert_non_null(kl_snapshot_account(s, "Demox", 4));
    assert_null(kl_snapshot_account(s, "nobody", 6));
    assert_null(kl_snapshot_account(s, NULL, 4));
    assert_null(kl_snapshot_account(NULL, "Demo", 4));
    const kl_account *o = kl_snapshot_account(s, "OTHER", 5);
    assert_non_null(o);
    assert_true(o->disable_local_auth);

    const kl_deployment *d = kl_snapshot_deployment(s, a, "chat", 4);
    assert_non_null(d);
    assert_ptr_equal(d->account, a);
    assert_int_equal(d->backend, KL_BACKEND_ECHO);
    assert_string_equal(d->model_name, "gpt-4o-mini");
    assert_null(d->upstream_url);
    assert_null(d->upstream_credential);
    assert_null(kl_snapshot_deployment(s, a, "Chat", 4)); /* case-sensitive */
    assert_null(kl_snapshot_deployment(s, a, "cha", 3));
    assert_null(kl_snapshot_deployment(s, NULL, "chat", 4));

    const kl_deployment *u = kl_snapshot_deployment(s, a, "up", 2);
    assert_non_null(u);
    assert_int_equal(u->backend, KL_BACKEND_UPSTREAM);
    assert_string_equal(u->upstream_url, "http://127.0.0.1:8000/v1");
    assert_string_equal(u->upstream_model, "llama3");
    assert_string_equal(u->upstream_credential, "sk-secret");

    const kl_deployment *oc = kl_snapshot_deployment(s, o, "chat", 4);
    assert_non_null(oc);
    assert_ptr_not_equal(oc, d);
    assert_ptr_equal(oc->account, o);
    assert_null(oc->upstream_credential);

    const kl_deployment *const *list = NULL;
    assert_int_equal(kl_snapshot_deployments(s, a, &list), 3);
    assert_string_equal(list[0]->name, "Alpha");
    assert_string_equal(list[1]->name, "chat");
    assert_string_equal(list[2]->name, "up");
    assert_int_equal(kl_snapshot_deployments(s, o, &list), 1);
    assert_int_equal(kl_snapshot_deployments(s, NULL, &list), 0);
    assert_null(list);

    unsigned char idx[32];
    const kl_account *ka = NULL;
    int slot = 0;
    index_of(f, f->demo_key1, idx);
    assert_true(kl_snapshot_key_lookup(s, idx, &ka, &slot));
    assert_ptr_equal(ka, a);
    assert_int_equal(slot, 1);
    index_of(f, f->demo_key2, idx);
    assert_true(kl_snapshot_key_lookup(s, idx, &ka, &slot));
    assert_int_equal(slot, 2);
    /* Same 8-byte prefix, different tail: must miss. */
    idx[31] ^= 1;
    assert_false(kl_snapshot_key_lookup(s, idx, &ka, &slot));
    char other[KL_APIKEY_LEN + 1];
    assert_int_equal(kl_apikey_generate(other), 0);
    index_of(f, other, idx);
    assert_false(kl_snapshot_key_lookup(s, idx, &ka, &slot));
    assert_false(kl_snapshot_key_lookup(s, NULL, &ka, &slot));

    /* An account pointer from another snapshot is not accepted. */
    kl_snapshot *s2 = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s2), 0);
    assert_null(kl_snapshot_deployment(s2, a, "chat", 4));
    const kl_account *a2 = kl_snapshot_account(s2, "demo", 4);
    assert_non_null(kl_snapshot_deployment(s2, a2, "chat", 4));
    /* Nor a pointer into the middle of a record. */
    assert_null(kl_snapshot_deployment(s2, (const kl_account *)((const char *)a2 + 1), "chat", 4));
    kl_snapshot_release(s2);
    kl_snapshot_release(s);
}

static void test_empty_store(void **state)
{
    (void)state;
    char dir[64], path[128];
    kl_store *st = NULL;
    test_store_open(dir, path, "/tmp/kl-snap-empty-XXXXXX", &st);
    fixture *f = *state;
    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(st, f->keys, &s), 0);
    assert_null(kl_snapshot_account(s, "demo", 4));
    unsigned char idx[32] = {0};
    assert_false(kl_snapshot_key_lookup(s, idx, NULL, NULL));
    kl_snapshot_release(s);
    kl_store_close(st);
    test_store_remove(dir);
}

static void test_tampered_credential_unavailable(void **state)
{
    fixture *f = *state;
    /* Sealed for another URL: the stored row's URL does not match the aad. That row alone
     * is unservable; everything else is built as usual. */
    put_deployment(f, "demo", "moved", "http://10.9.9.9/v1", "sk-x", "http://127.0.0.1:8000/v1");
    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    const kl_account *a = kl_snapshot_account(s, "demo", 4);
    const kl_deployment *moved = kl_snapshot_deployment(s, a, "moved", 5);
    assert_non_null(moved);
    assert_int_equal(moved->backend, KL_BACKEND_UNAVAILABLE);
    assert_null(moved->upstream_credential);
    assert_null(moved->upstream_url);
    assert_string_equal(moved->model_name, "gpt-4o-mini");
    const kl_deployment *up = kl_snapshot_deployment(s, a, "up", 2);
    assert_int_equal(up->backend, KL_BACKEND_UPSTREAM);
    assert_string_equal(up->upstream_credential, "sk-secret");
    unsigned char idx[32];
    index_of(f, f->demo_key1, idx);
    assert_true(kl_snapshot_key_lookup(s, idx, NULL, NULL));
    kl_snapshot_release(s);

    /* A wrong KEK opens no credential: every credentialed deployment is unavailable, the
     * ones without a credential are served. */
    kl_keys *wrong = test_keys_with(0x43);
    assert_int_equal(kl_policy_build(f->st, wrong, &s), 0);
    kl_keys_free(wrong);
    a = kl_snapshot_account(s, "demo", 4);
    assert_int_equal(kl_snapshot_deployment(s, a, "up", 2)->backend, KL_BACKEND_UNAVAILABLE);
    assert_int_equal(kl_snapshot_deployment(s, a, "chat", 4)->backend, KL_BACKEND_ECHO);
    const kl_account *o = kl_snapshot_account(s, "other", 5);
    assert_int_equal(kl_snapshot_deployment(s, o, "chat", 4)->backend, KL_BACKEND_UPSTREAM);
    kl_snapshot_release(s);
}

/* Runs one statement on the fixture's database through a connection of its own, the
 * way an operator's tool (or damage) changes rows behind the daemon's back. */
static void raw_sql(fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

#define DEMO_ID                                                                                    \
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/Demo"
#define OTHER_ID                                                                                   \
    "/subscriptions/sub/resourceGroups/rg2/providers/Microsoft.CognitiveServices/accounts/other"

static void test_fence_covers(void **state)
{
    (void)state;
    kl_snapshot_holder *h = kl_snapshot_holder_new();
    kl_fence *f = NULL;
    uint64_t g0 = 0, g = 0;
    assert_null(kl_snapshot_acquire_fenced(h, &f, &g0));
    assert_null(f);
    assert_false(kl_snapshot_fenced(h));
    assert_false(kl_snapshot_fence_covers(NULL, DEMO_ID));

    kl_snapshot_fence(h, "/subscriptions/SUB/resourceGroups/rg/");
    assert_true(kl_snapshot_fenced(h));
    assert_int_not_equal(kl_snapshot_fence_generation(h), g0);
    kl_snapshot_release(kl_snapshot_acquire_fenced(h, &f, &g));
    assert_int_equal(g, kl_snapshot_fence_generation(h));
    assert_non_null(f);
    assert_true(kl_snapshot_fence_covers(f, DEMO_ID));              /* below, other case */
    assert_true(kl_snapshot_fence_covers(f, "/subscriptions/sub")); /* above */
    assert_true(kl_snapshot_fence_covers(f, "/subscriptions/sub/resourcegroups/RG")); /* equal */
    assert_true(kl_snapshot_fence_covers(f, "/"));
    assert_false(kl_snapshot_fence_covers(f, OTHER_ID)); /* a sibling group */
    assert_false(kl_snapshot_fence_covers(
        f, "/subscriptions/sub/resourceGroups/rg2")); /* a prefix, not a segment */
    assert_false(kl_snapshot_fence_covers(f, "/subscriptions/sub2"));
    kl_snapshot_fence_release(f);

    /* Fences add up; "/" covers everything. */
    kl_snapshot_fence(h, OTHER_ID);
    kl_snapshot_release(kl_snapshot_acquire_fenced(h, &f, &g));
    assert_true(kl_snapshot_fence_covers(f, OTHER_ID));
    assert_true(kl_snapshot_fence_covers(f, DEMO_ID));
    assert_false(kl_snapshot_fence_covers(f, "/subscriptions/sub2"));
    kl_snapshot_fence_release(f);
    kl_snapshot_fence(h, "/");
    kl_snapshot_release(kl_snapshot_acquire_fenced(h, &f, &g));
    assert_true(kl_snapshot_fence_covers(f, "/subscriptions/sub2/resourceGroups/x"));
    kl_snapshot_fence_release(f);
    kl_snapshot_holder_free(h);

    /* Past KL_MAX_FENCED_SCOPES scopes, everything is fenced (the check stays short). */
    h = kl_snapshot_holder_new();
    char scope[64];
    for (int i = 0; i < KL_MAX_FENCED_SCOPES; i++) {
        snprintf(scope, sizeof(scope), "/subscriptions/s%d", i);
        kl_snapshot_fence(h, scope);
    }
    kl_snapshot_release(kl_snapshot_acquire_fenced(h, &f, &g));
    assert_true(kl_snapshot_fence_covers(f, "/subscriptions/s0/resourceGroups/x"));
    assert_false(kl_snapshot_fence_covers(f, "/subscriptions/other"));
    kl_snapshot_fence_release(f);
    kl_snapshot_fence(h, "/subscriptions/one-more");
    kl_snapshot_release(kl_snapshot_acquire_fenced(h, &f, &g));
    assert_true(kl_snapshot_fence_covers(f, "/subscriptions/other"));
    kl_snapshot_fence_release(f);
    kl_snapshot_holder_free(h);
}

static void test_apply_fences_until_built(void **state)
{
    fixture *f = *state;
    kl_snapshot_holder *h = kl_snapshot_holder_new();
    kl_policy *p = NULL;
    assert_int_equal(kl_policy_new(f->st, f->keys, h, &p), 0);
    assert_int_equal(kl_policy_apply(p, NULL), 0);
    assert_int_equal(kl_snapshot_holder_generation(h), 1);

    /* Two accounts of one name: no snapshot can say which is meant, so none is built. */
    raw_sql(f, "UPDATE accounts SET name = 'demo' WHERE name = 'other'");
    /* Key1 of Demo is regenerated (saved); the build fails: Demo is fenced, the old
     * snapshot stays, and the other account is not touched. */
    char fresh[KL_APIKEY_LEN + 1];
    kl_store_key k;
    make_key(f, DEMO_ID, 1, fresh, &k);
    assert_int_equal(kl_store_regenerate_account_key(f->st, "demo", &k), 0);
    free(k.sealed);
    uint64_t fg = kl_snapshot_fence_generation(h);
    assert_int_equal(kl_policy_apply(p, DEMO_ID), KL_EEXIST);
    assert_int_equal(kl_snapshot_holder_generation(h), 1);
    assert_true(kl_snapshot_fenced(h));
    assert_int_not_equal(kl_snapshot_fence_generation(h), fg);
    kl_fence *fe = NULL;
    uint64_t g = 0;
    kl_snapshot *s = kl_snapshot_acquire_fenced(h, &fe, &g);
    assert_true(kl_snapshot_fence_covers(fe, DEMO_ID));
    assert_false(kl_snapshot_fence_covers(fe, OTHER_ID));
    kl_snapshot_fence_release(fe);
    kl_snapshot_release(s);

    /* A retry that still fails keeps the fence (scope NULL adds none). */
    assert_int_equal(kl_policy_apply(p, NULL), KL_EEXIST);
    assert_true(kl_snapshot_fenced(h));

    /* Repaired: the next build publishes and lifts the fence with the same swap. */
    raw_sql(f, "UPDATE accounts SET name = 'other' WHERE name_lower = 'other'");
    fg = kl_snapshot_fence_generation(h);
    assert_int_equal(kl_policy_apply(p, NULL), 0);
    assert_int_equal(kl_snapshot_holder_generation(h), 2);
    assert_false(kl_snapshot_fenced(h));
    assert_int_not_equal(kl_snapshot_fence_generation(h), fg);
    s = kl_snapshot_acquire_fenced(h, &fe, &g);
    assert_null(fe);
    unsigned char idx[32];
    index_of(f, f->demo_key1, idx);
    assert_false(kl_snapshot_key_lookup(s, idx, NULL, NULL));
    index_of(f, fresh, idx);
    assert_true(kl_snapshot_key_lookup(s, idx, NULL, NULL));
    kl_snapshot_release(s);
    kl_policy_free(p);
    kl_snapshot_holder_free(h);
}

static void test_publish_and_old_reference(void **state)
{
    fixture *f = *state;
    kl_snapshot_holder *h = kl_snapshot_holder_new();
    assert_non_null(h);
    assert_null(kl_snapshot_acquire(h));
    assert_int_equal(kl_snapshot_holder_generation(h), 0);

    assert_int_equal(kl_policy_rebuild(f->st, f->keys, h), 0);
    assert_int_equal(kl_snapshot_holder_generation(h), 1);
    kl_snapshot *old = kl_snapshot_acquire(h);
    assert_non_null(old);
    assert_int_equal(kl_snapshot_generation(old), 1);
    const kl_account *oa = kl_snapshot_account(old, "demo", 4);
    const kl_deployment *od = kl_snapshot_deployment(old, oa, "up", 2);
    assert_non_null(od);

    /* Regenerate Key1, delete the account's upstream deployment, publish. */
    unsigned char old_idx[32];
    index_of(f, f->demo_key1, old_idx);
    char fresh[KL_APIKEY_LEN + 1];
    kl_store_key k;
    make_key(f,
             "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
             "accounts/Demo",
             1, fresh, &k);
    assert_int_equal(kl_store_regenerate_account_key(f->st, "demo", &k), 0);
    free(k.sealed);
    assert_int_equal(kl_store_delete_deployment(f->st, "demo", "up"), 0);
    assert_int_equal(kl_policy_rebuild(f->st, f->keys, h), 0);
    assert_int_equal(kl_snapshot_holder_generation(h), 2);

    kl_snapshot *cur = kl_snapshot_acquire(h);
    assert_int_equal(kl_snapshot_generation(cur), 2);
    assert_false(kl_snapshot_key_lookup(cur, old_idx, NULL, NULL));
    unsigned char new_idx[32];
    index_of(f, fresh, new_idx);
    int slot = 0;
    assert_true(kl_snapshot_key_lookup(cur, new_idx, NULL, &slot));
    assert_int_equal(slot, 1);
    const kl_account *ca = kl_snapshot_account(cur, "demo", 4);
    assert_null(kl_snapshot_deployment(cur, ca, "up", 2));

    /* The old reference still sees its own world, unchanged and readable. */
    assert_int_equal(kl_snapshot_generation(old), 1);
    assert_true(kl_snapshot_key_lookup(old, old_idx, NULL, NULL));
    assert_string_equal(od->upstream_credential, "sk-secret");
    assert_string_equal(oa->name, "Demo");

    kl_snapshot_retain(cur);
    kl_snapshot_release(cur);
    kl_snapshot_release(cur);
    kl_snapshot_release(old);

    /* A failed rebuild leaves the current snapshot in place. */
    assert_int_equal(kl_policy_rebuild(f->st, NULL, h), KL_EINVAL);
    assert_int_equal(kl_snapshot_holder_generation(h), 2);
    kl_snapshot_holder_free(h);
}

typedef struct reader_arg {
    kl_snapshot_holder *h;
    atomic_int *stop;
    unsigned char idx[32];
    long iterations;
    int failures;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *r = p;
    uint64_t last = 0;
    while (!atomic_load(r->stop)) {
        kl_snapshot *s = kl_snapshot_acquire(r->h);
        if (!s) {
            r->failures++;
            continue;
        }
        uint64_t g = kl_snapshot_generation(s);
        if (g < last)
            r->failures++;
        last = g;
        const kl_account *a = kl_snapshot_account(s, "demo", 4);
        const kl_account *ka = NULL;
        if (!a || !kl_snapshot_key_lookup(s, r->idx, &ka, NULL) || ka != a ||
            !kl_snapshot_deployment(s, a, "chat", 4))
            r->failures++;
        /* Hold some references across publishes. */
        if (r->iterations % 7 == 0) {
            kl_snapshot_retain(s);
            sched_yield();
            kl_snapshot_release(s);
        }
        kl_snapshot_release(s);
        r->iterations++;
    }
    return NULL;
}

static void test_concurrent_publish(void **state)
{
    fixture *f = *state;
    kl_snapshot_holder *h = kl_snapshot_holder_new();
    assert_int_equal(kl_policy_rebuild(f->st, f->keys, h), 0);
    atomic_int stop = 0;
    reader_arg ra[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&ra[i], 0, sizeof(ra[i]));
        ra[i].h = h;
        ra[i].stop = &stop;
        index_of(f, f->demo_key2, ra[i].idx);
        assert_int_equal(pthread_create(&t[i], NULL, reader, &ra[i]), 0);
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kl_policy_rebuild(f->st, f->keys, h), 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ra[i].failures, 0);
        assert_true(ra[i].iterations > 0);
    }
    assert_int_equal(kl_snapshot_holder_generation(h), 1001);
    kl_snapshot_holder_free(h);
}

static void test_builder_rejects(void **state)
{
    (void)state;
    unsigned char idx[32];
    memset(idx, 7, sizeof(idx));
    kl_snapshot *s = NULL;

    /* Two accounts whose names differ only in case. */
    kl_snapshot_builder *b = kl_snapshot_builder_new();
    assert_int_equal(kl_snapshot_builder_account(b, "/a", "Dup", "s", "g", "l", false), 0);
    assert_int_equal(kl_snapshot_builder_account(b, "/b", "dUP", "s", "g", "l", false), 0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), KL_EEXIST);
    assert_null(s);
    kl_snapshot_builder_free(b);

    /* A key or deployment of an unknown account. */
    b = kl_snapshot_builder_new();
    assert_int_equal(kl_snapshot_builder_account(b, "/a", "acct", "s", "g", "l", false), 0);
    assert_int_equal(kl_snapshot_builder_key(b, "ghost", 1, idx), 0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), KL_EINTERNAL);
    kl_snapshot_builder_free(b);
    b = kl_snapshot_builder_new();
    assert_int_equal(kl_snapshot_builder_account(b, "/a", "acct", "s", "g", "l", false), 0);
    assert_int_equal(
        kl_snapshot_builder_deployment(b, "ghost", "d", NULL, KL_BACKEND_ECHO, NULL, NULL, NULL),
        0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), KL_EINTERNAL);
    kl_snapshot_builder_free(b);

    /* The same key index twice, the same deployment twice. */
    b = kl_snapshot_builder_new();
    assert_int_equal(kl_snapshot_builder_account(b, "/a", "acct", "s", "g", "l", false), 0);
    assert_int_equal(kl_snapshot_builder_key(b, "acct", 1, idx), 0);
    assert_int_equal(kl_snapshot_builder_key(b, "ACCT", 2, idx), 0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), KL_EEXIST);
    kl_snapshot_builder_free(b);
    b = kl_snapshot_builder_new();
    assert_int_equal(kl_snapshot_builder_account(b, "/a", "acct", "s", "g", "l", false), 0);
    assert_int_equal(kl_snapshot_builder_deployment(b, "acct", "d", NULL, KL_BACKEND_UPSTREAM,
                                                    "http://h", "m", "secret"),
                     0);
    assert_int_equal(
        kl_snapshot_builder_deployment(b, "acct", "d", NULL, KL_BACKEND_ECHO, NULL, NULL, NULL), 0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), KL_EEXIST);
    kl_snapshot_builder_free(b);

    /* Inconsistent inputs are refused when added. */
    b = kl_snapshot_builder_new();
    assert_int_equal(kl_snapshot_builder_key(b, "acct", 3, idx), KL_EINVAL);
    assert_int_equal(kl_snapshot_builder_deployment(b, "acct", "d", NULL, KL_BACKEND_ECHO,
                                                    "http://h", NULL, NULL),
                     KL_EINVAL);
    assert_int_equal(
        kl_snapshot_builder_deployment(b, "acct", "d", NULL, KL_BACKEND_UPSTREAM, NULL, "m", NULL),
        KL_EINVAL);
    assert_int_equal(kl_snapshot_builder_account(b, "/a", "", "s", "g", "l", false), KL_EINVAL);

    /* Many accounts, deployments spread over them: every one found, lists in order. */
    char name[32], dep[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "acct-%03d", i);
        assert_int_equal(kl_snapshot_builder_account(b, name, name, "s", "g", "l", i % 2), 0);
    }
    for (int i = 299; i >= 0; i--) {
        snprintf(name, sizeof(name), "ACCT-%03d", i);
        for (int d = 4; d >= 0; d--) {
            snprintf(dep, sizeof(dep), "dep-%d", d);
            assert_int_equal(kl_snapshot_builder_deployment(b, name, dep, NULL, KL_BACKEND_ECHO,
                                                            NULL, NULL, NULL),
                             0);
        }
        memset(idx, 0, sizeof(idx));
        memcpy(idx, &i, sizeof(i));
        idx[31] = 1;
        assert_int_equal(kl_snapshot_builder_key(b, name, 1, idx), 0);
    }
    assert_int_equal(kl_snapshot_builder_finish(b, &s), 0);
    kl_snapshot_builder_free(b);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "Acct-%03d", i);
        const kl_account *a = kl_snapshot_account(s, name, strlen(name));
        assert_non_null(a);
        assert_int_equal(a->disable_local_auth, i % 2);
        const kl_deployment *const *list = NULL;
        assert_int_equal(kl_snapshot_deployments(s, a, &list), 5);
        for (int d = 0; d < 5; d++) {
            snprintf(dep, sizeof(dep), "dep-%d", d);
            assert_string_equal(list[d]->name, dep);
            assert_ptr_equal(list[d]->account, a);
            assert_ptr_equal(kl_snapshot_deployment(s, a, dep, strlen(dep)), list[d]);
        }
        memset(idx, 0, sizeof(idx));
        memcpy(idx, &i, sizeof(i));
        idx[31] = 1;
        const kl_account *ka = NULL;
        int slot = 0;
        assert_true(kl_snapshot_key_lookup(s, idx, &ka, &slot));
        assert_ptr_equal(ka, a);
        assert_int_equal(slot, 1);
    }
    kl_snapshot_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_credential_unavailable, setup, teardown),
        cmocka_unit_test(test_fence_covers),
        cmocka_unit_test_setup_teardown(test_apply_fences_until_built, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_and_old_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_publish, setup, teardown),
        cmocka_unit_test(test_builder_rejects),
    };
    return cmocka_run_group_tests_name("policy_snapshot", tests, NULL, NULL);
}
