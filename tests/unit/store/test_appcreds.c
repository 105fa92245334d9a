/* Unit tests of the store's application-credential tables on both engines (engine.h):
 * certificates set as a whole (kept by keyId, removed by omission, cascaded with their
 * application, duplicates and limits refused) and loaded for the snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "store/store.h"
#include "engine.h"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "appc");
}

static void create_app(fixture *f, const char *name, char oid[KL_UUID_LEN + 1],
                       char app[KL_UUID_LEN + 1])
{
    char sp[KL_UUID_LEN + 1];
    test_next_guid(&f->seq, oid);
    test_next_guid(&f->seq, app);
    test_next_guid(&f->seq, sp);
    kl_store_application a = {.object_id = oid,
                              .app_id = app,
                              .display_name = (char *)name,
                              .sp_object_id = sp,
                              .enabled = true,
                              .created_at = 5};
    assert_int_equal(kl_store_create_application(f->st, &a), 0);
}

typedef struct row {
    char key_id[KL_UUID_LEN + 1];
    char sha1[41];
    char sha256[44];
    kl_store_key_credential k;
} row;

static void make_row(fixture *f, row *r, unsigned n, int64_t created)
{
    test_next_guid(&f->seq, r->key_id);
    snprintf(r->sha1, sizeof(r->sha1), "%040u", n);
    snprintf(r->sha256, sizeof(r->sha256), "%043u", n);
    r->k = (kl_store_key_credential){.key_id = r->key_id,
                                     .display_name = "CN=test",
                                     .thumbprint_sha1 = r->sha1,
                                     .thumbprint_sha256 = r->sha256,
                                     .cert = "MIIB",
                                     .start_at = 100,
                                     .end_at = 200,
                                     .created_at = created};
}

static size_t count(fixture *f, const char *app)
{
    kl_store_key_credential **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_key_credentials(f->st, app, &l, &n), 0);
    kl_store_key_credentials_free(l, n);
    return n;
}

static void test_set_keep_remove(void **state)
{
    fixture *f = *state;
    char oid[37], app[37];
    create_app(f, "certs", oid, app);
    row a, b, c;
    make_row(f, &a, 1, 10);
    make_row(f, &b, 2, 11);
    make_row(f, &c, 3, 12);
    const kl_store_key_credential *set1[] = {&a.k, &b.k};
    assert_int_equal(kl_store_set_key_credentials(f->st, oid, set1, 2), 0);
    kl_store_key_credential **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_key_credentials(f->st, app, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0]->key_id, a.key_id);
    assert_string_equal(l[0]->app_id, app);
    assert_string_equal(l[0]->thumbprint_sha1, a.sha1);
    assert_string_equal(l[0]->thumbprint_sha256, a.sha256);
    assert_string_equal(l[0]->cert, "MIIB");
    assert_int_equal(l[0]->start_at, 100);
    assert_int_equal(l[0]->end_at, 200);
    assert_string_equal(l[1]->key_id, b.key_id);
    kl_store_key_credentials_free(l, n);

    /* b kept (even with other fields: a kept row is not rewritten), a dropped, c added. */
    b.k.display_name = "changed";
    const kl_store_key_credential *set2[] = {&b.k, &c.k};
    assert_int_equal(kl_store_set_key_credentials(f->st, app, set2, 2), 0);
    assert_int_equal(kl_store_list_key_credentials(f->st, oid, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0]->key_id, b.key_id);
    assert_string_equal(l[0]->display_name, "CN=test");
    assert_string_equal(l[1]->key_id, c.key_id);
    kl_store_key_credentials_free(l, n);

    assert_int_equal(kl_store_set_key_credentials(f->st, oid, NULL, 0), 0);
    assert_int_equal(count(f, oid), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM app_key_credentials"), 0);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    char oid[37], app[37], oid2[37], app2[37], ghost[37];
    create_app(f, "one", oid, app);
    create_app(f, "two", oid2, app2);
    test_next_guid(&f->seq, ghost);
    row a, b;
    make_row(f, &a, 1, 10);
    make_row(f, &b, 1, 11); /* same thumbprint as a */
    const kl_store_key_credential *dup[] = {&a.k, &b.k};
    assert_int_equal(kl_store_set_key_credentials(f->st, oid, dup, 2), KL_EEXIST);
    const kl_store_key_credential *one[] = {&a.k};
    assert_int_equal(kl_store_set_key_credentials(f->st, ghost, one, 1), KL_ENOTFOUND);
    assert_int_equal(kl_store_set_key_credentials(f->st, oid, one, 1), 0);
    /* The same keyId on another application. */
    assert_int_equal(kl_store_set_key_credentials(f->st, oid2, one, 1), KL_EEXIST);
    assert_int_equal(count(f, oid2), 0);
    assert_int_equal(count(f, oid), 1);
    row many[KL_MAX_APP_KEY_CREDENTIALS + 1];
    const kl_store_key_credential *pm[KL_MAX_APP_KEY_CREDENTIALS + 1];
    for (unsigned i = 0; i <= KL_MAX_APP_KEY_CREDENTIALS; i++) {
        make_row(f, &many[i], 100 + i, 20);
        pm[i] = &many[i].k;
    }
    assert_int_equal(kl_store_set_key_credentials(f->st, oid2, pm, KL_MAX_APP_KEY_CREDENTIALS + 1),
                     KL_ETOOBIG);
    assert_int_equal(kl_store_set_key_credentials(f->st, oid2, pm, KL_MAX_APP_KEY_CREDENTIALS), 0);
    row bad;
    make_row(f, &bad, 9, 1);
    bad.k.end_at = bad.k.start_at;
    const kl_store_key_credential *pb[] = {&bad.k};
    assert_int_equal(kl_store_set_key_credentials(f->st, oid, pb, 1), KL_EINVAL);
    assert_int_equal(count(f, oid), 1);
    assert_int_equal(kl_store_list_key_credentials(
                         f->st, ghost, &(kl_store_key_credential **){NULL}, &(size_t){0}),
                     KL_ENOTFOUND);
}

typedef struct seen {
    char app_id[8][37];
    size_t n;
} seen;

static int on_cred(void *arg, const kl_store_key_credential *k)
{
    seen *s = arg;
    if (s->n < 8)
        snprintf(s->app_id[s->n++], 37, "%s", k->app_id);
    return 0;
}

static void test_cascade_and_load(void **state)
{
    fixture *f = *state;
    char oid[37], app[37], oid2[37], app2[37];
    create_app(f, "gone", oid, app);
    create_app(f, "stays", oid2, app2);
    row a, b;
    make_row(f, &a, 1, 10);
    make_row(f, &b, 2, 10);
    const kl_store_key_credential *pa[] = {&a.k}, *pb[] = {&b.k};
    assert_int_equal(kl_store_set_key_credentials(f->st, oid, pa, 1), 0);
    assert_int_equal(kl_store_set_key_credentials(f->st, oid2, pb, 1), 0);
    seen s = {0};
    kl_store_visitor v = {.arg = &s, .key_credential = on_cred};
    assert_int_equal(kl_store_load_all(f->st, &v), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(kl_store_delete_application(f->st, oid), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM app_key_credentials"), 1);
    memset(&s, 0, sizeof(s));
    assert_int_equal(kl_store_load_all(f->st, &v), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.app_id[0], app2);
}

/* A jti is spent once per client until its exp, on a shared table, without moving the
 * generation (other nodes must not rebuild for it). */
static void test_use_jti(void **state)
{
    fixture *f = *state;
    int64_t gen0 = 0, gen1 = 0;
    assert_int_equal(kl_store_generation(f->st, &gen0), 0);
    assert_int_equal(kl_store_use_jti(f->st, "Client-A", "jti-1", 1000, 500), 0);
    assert_int_equal(kl_store_use_jti(f->st, "client-a", "jti-1", 1000, 600), KL_EEXIST);
    assert_int_equal(kl_store_use_jti(f->st, "client-b", "jti-1", 1000, 600), 0);
    assert_int_equal(kl_store_use_jti(f->st, "client-a", "JTI-1", 1000, 600), 0);
    /* Another handle on the same database (another node) sees it spent. */
    kl_store *other = NULL;
    assert_int_equal(test_store_open(f->path, &other), 0);
    assert_int_equal(kl_store_use_jti(other, "client-a", "jti-1", 1000, 700), KL_EEXIST);
    kl_store_close(other);
    assert_int_equal(kl_store_generation(f->st, &gen1), 0);
    assert_int_equal(gen1, gen0);
    /* After its exp the row is pruned by the next use. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM assertion_jtis"), 3);
    assert_int_equal(kl_store_use_jti(f->st, "client-c", "jti-9", 3000, 1001), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM assertion_jtis"), 1);
    assert_int_equal(kl_store_use_jti(f->st, "client-a", "", 1000, 1), KL_EINVAL);
    char big[KL_MAX_JTI + 2];
    memset(big, 'j', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kl_store_use_jti(f->st, "client-a", big, 1000, 1), KL_EINVAL);
}

static void test_federated(void **state)
{
    fixture *f = *state;
    char oid[37], app[37], id1[37], id2[37];
    create_app(f, "fed", oid, app);
    test_next_guid(&f->seq, id1);
    test_next_guid(&f->seq, id2);
    kl_store_federated_credential a = {.id = id1,
                                       .name = "Main",
                                       .issuer = "https://i",
                                       .subject = "s1",
                                       .audiences = "[\"x\"]",
                                       .created_at = 1};
    assert_int_equal(kl_store_create_federated_credential(f->st, app, &a), 0);
    kl_store_federated_credential dup_name = a;
    dup_name.id = id2;
    dup_name.name = "MAIN";
    dup_name.subject = "s2";
    assert_int_equal(kl_store_create_federated_credential(f->st, oid, &dup_name), KL_EEXIST);
    kl_store_federated_credential dup_pair = a;
    dup_pair.id = id2;
    dup_pair.name = "other";
    assert_int_equal(kl_store_create_federated_credential(f->st, oid, &dup_pair), KL_EEXIST);
    dup_pair.subject = "s2";
    assert_int_equal(kl_store_create_federated_credential(f->st, oid, &dup_pair), 0);
    kl_store_federated_credential **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_federated_credentials(f->st, oid, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0]->name, "Main");
    assert_string_equal(l[0]->app_id, app);
    assert_null(l[0]->description);
    kl_store_federated_credentials_free(l, n);
    kl_store_federated_credential upd = {.issuer = "https://i", .subject = "s2", .audiences = "[]"};
    assert_int_equal(kl_store_update_federated_credential(f->st, oid, id1, &upd), KL_EEXIST);
    upd.subject = "s3";
    upd.description = "d";
    assert_int_equal(kl_store_update_federated_credential(f->st, oid, id1, &upd), 0);
    assert_int_equal(kl_store_delete_federated_credential(f->st, oid, id2), 0);
    assert_int_equal(kl_store_delete_federated_credential(f->st, oid, id2), KL_ENOTFOUND);
    assert_int_equal(kl_store_list_federated_credentials(f->st, app, &l, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(l[0]->subject, "s3");
    assert_string_equal(l[0]->description, "d");
    kl_store_federated_credentials_free(l, n);
    assert_int_equal(kl_store_delete_application(f->st, oid), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM app_federated_credentials"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_keep_remove, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_cascade_and_load, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_use_jti, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_federated, setup, test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
