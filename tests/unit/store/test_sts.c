/* Unit tests of the token service's tables on both engines (see engine.h): signing keys
 * added only when their mode says so (one first key, one pending rotation), retiring and
 * revoking the earlier keys, client secrets with their limit and cascade, and the
 * sign-in log appended in batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"
#include "engine.h"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "sts");
}

static kl_store_signing_key key(const char *kid, int64_t active)
{
    return (kl_store_signing_key){.kid = (char *)kid,
                                  .alg = "RS256",
                                  .sealed = "v1.x",
                                  .created_at = active,
                                  .active_at = active};
}

static const kl_store_signing_key *find(kl_store_signing_key **k, size_t n, const char *kid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i]->kid, kid) == 0)
            return k[i];
    return NULL;
}

static void test_signing_key_modes(void **state)
{
    fixture *f = *state;
    kl_store_signing_key a = key("a", 100), b = key("b", 100), c = key("c", 1000),
                         d = key("d", 1100), e = key("e", 2000);
    /* One first key, whichever node asks second. */
    assert_int_equal(kl_store_add_signing_key(f->st, &a, KL_STORE_SK_FIRST, 100, 0, 0), 0);
    assert_int_equal(kl_store_add_signing_key(f->st, &b, KL_STORE_SK_FIRST, 100, 0, 0), KL_EEXIST);
    /* A scheduled key retires the others; a second one while it is pending is refused. */
    assert_int_equal(kl_store_add_signing_key(f->st, &c, KL_STORE_SK_SCHEDULED, 400, 5000, 0), 0);
    assert_int_equal(kl_store_add_signing_key(f->st, &d, KL_STORE_SK_SCHEDULED, 500, 6000, 0),
                     KL_EEXIST);
    kl_store_signing_key **k = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_signing_keys(f->st, &k, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(find(k, n, "a")->retire_at, 5000);
    assert_int_equal(find(k, n, "c")->retire_at, 0);
    kl_store_signing_keys_free(k, n);
    /* An operator's rotation with revoke refuses every earlier key at once. */
    assert_int_equal(kl_store_add_signing_key(f->st, &e, KL_STORE_SK_REVOKE, 2000, 0, 0), 0);
    assert_int_equal(kl_store_list_signing_keys(f->st, &k, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(find(k, n, "a")->revoked_at, 2000);
    assert_int_equal(find(k, n, "c")->revoked_at, 2000);
    assert_int_equal(find(k, n, "e")->revoked_at, 0);
    kl_store_signing_keys_free(k, n);
    /* FIRST sees e as usable; pruning deletes rows revoked before the cut. */
    b.active_at = 2100;
    assert_int_equal(kl_store_add_signing_key(f->st, &b, KL_STORE_SK_FIRST, 2100, 0, 0), KL_EEXIST);
    kl_store_signing_key g = key("g", 3000);
    assert_int_equal(kl_store_add_signing_key(f->st, &g, KL_STORE_SK_NOW, 3000, 9000, 2500), 0);
    assert_int_equal(kl_store_list_signing_keys(f->st, &k, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(find(k, n, "e")->retire_at, 9000);
    kl_store_signing_keys_free(k, n);
}

static void test_app_secrets(void **state)
{
    fixture *f = *state;
    kl_store_application app = {.object_id = "00000000-0000-4000-8000-000000000001",
                                .app_id = "00000000-0000-4000-8000-000000000002",
                                .display_name = "app",
                                .sp_object_id = "00000000-0000-4000-8000-000000000003",
                                .enabled = true,
                                .created_at = 1};
    assert_int_equal(kl_store_create_application(f->st, &app), 0);
    kl_store_app_secret s = {
        .display_name = "", .hint = "abc", .start_at = 1, .end_at = 2, .created_at = 1};
    char ids[3][KL_UUID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof(ids[i]), "00000000-0000-4000-8000-0000000001%02d", i);
        s.key_id = ids[i];
        s.hash[0] = (unsigned char)i;
        int want = i < 2 ? 0 : KL_ETOOBIG;
        assert_int_equal(kl_store_add_app_secret(f->st, app.object_id, &s, 2), want);
    }
    assert_int_equal(kl_store_add_app_secret(f->st, "00000000-0000-4000-8000-0000000000ff", &s, 2),
                     KL_ENOTFOUND);
    kl_store_app_secret **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_app_secrets(f->st, app.object_id, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0]->app_id, app.app_id);
    assert_int_equal(l[1]->hash[0], 1);
    kl_store_app_secrets_free(l, n);
    assert_int_equal(kl_store_remove_app_secret(f->st, app.object_id, ids[0]), 0);
    assert_int_equal(kl_store_remove_app_secret(f->st, app.object_id, ids[0]), KL_ENOTFOUND);
    assert_int_equal(kl_store_delete_application(f->st, app.object_id), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM app_secrets"), 0);
}

/* More rows than one INSERT takes (the writer appends in chunks): every row arrives,
 * each with its own values, in order. */
static void test_append_signins(void **state)
{
    fixture *f = *state;
    enum { N = 37 };
    kl_store_signin rows[N];
    char ids[N][40], corr[N][40];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "client-%02d", i);
        snprintf(corr[i], sizeof(corr[i]), "corr-%02d", i);
        rows[i] = (kl_store_signin){.at = 1000 + i,
                                    .client_id = ids[i],
                                    .principal_id = i % 2 ? NULL : "sp",
                                    .credential = "client_secret",
                                    .resource = "https://cognitiveservices.azure.com",
                                    .source = "127.0.0.1",
                                    .success = i % 3 != 0,
                                    .error_code = i % 3 ? 0 : 7000215,
                                    .reason = i % 3 ? "" : "wrong secret",
                                    .correlation_id = corr[i]};
    }
    assert_int_equal(kl_store_append_signins(f->st, rows, N), 0);
    kl_store_signin **l = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_signins(f->st, NULL, false, 100, &l, &n), 0);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        const kl_store_signin *got = l[N - 1 - i]; /* newest first */
        assert_int_equal(got->at, 1000 + i);
        assert_string_equal(got->client_id, ids[i]);
        assert_string_equal(got->correlation_id, corr[i]);
        assert_int_equal(got->success, i % 3 != 0);
        assert_int_equal(got->error_code, i % 3 ? 0 : 7000215);
        if (i % 2)
            assert_null(got->principal_id);
        else
            assert_string_equal(got->principal_id, "sp");
    }
    kl_store_signins_free(l, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signing_key_modes, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_app_secrets, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_append_signins, setup, test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
