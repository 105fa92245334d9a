/* Unit tests of the snapshot's directory and RBAC part, built from a real SQLite store:
 * principals by object id and client id, the tenant, the compiled index answering the
 * way the control plane asks, and a check made right after a rebuild seeing an
 * assignment that was just added or removed (the T7 property). */
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
#include <unistd.h>

#include "../token/certgen.h"
#include "common/err.h"
#include "common/util.h"
#include "crypto/keys.h"
#include "directory/directory.h"
#include "policy/build.h"
#include "policy/policy_role.h"
#include "policy/snapshot.h"
#include "policy/snapshot_builder.h"
#include "rbac/builtin.h"
#include "store/store.h"
#include "fixture.h"

#define SUB "/subscriptions/00000000-0000-0000-0000-000000000000"
#define RG SUB "/resourceGroups/rg"
#define ACCT RG "/providers/Microsoft.CognitiveServices/accounts/demo"
#define READ "Microsoft.CognitiveServices/accounts/read"
#define WRITE "Microsoft.CognitiveServices/accounts/write"
#define LIST_KEYS "Microsoft.CognitiveServices/accounts/listKeys/action"
#define CHAT "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"
#define CUSTOM "5b1f0c7e-0000-4000-8000-00000000abcd"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    kl_keys *keys;
    kl_snapshot_holder *h;
    char tenant[KL_UUID_LEN + 1];
    char admin[KL_UUID_LEN + 1];
    kl_store_application *app;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_store_open(f->dir, f->path, "/tmp/kl-snaprbac-XXXXXX", &f->st);
    f->keys = test_keys_with(0x17);
    f->h = kl_snapshot_holder_new();
    assert_non_null(f->h);
    kl_store_tenant *t = NULL;
    assert_int_equal(kl_store_get_tenant(f->st, &t), 0);
    snprintf(f->tenant, sizeof(f->tenant), "%s", t->tenant_id);
    snprintf(f->admin, sizeof(f->admin), "%s", t->admin_object_id);
    kl_store_tenant_free(t);
    assert_int_equal(kl_directory_create_application(f->st, "worker", &f->app), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_store_application_free(f->app);
    kl_snapshot_holder_free(f->h);
    kl_store_close(f->st);
    kl_keys_free(f->keys);
    test_store_remove(f->dir);
    free(f);
    return 0;
}

/* Rebuilds, publishes and answers one control-plane check against what is now current,
 * the way a request would. */
static bool check_now(fixture *f, const char *principal, const char *action, bool data,
                      const char *scope)
{
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    assert_non_null(s);
    kl_rbac_decision d;
    int err = kl_rbac_check(kl_snapshot_rbac(s), principal, action, data, scope, &d);
    kl_snapshot_release(s);
    return err == 0 && d.allowed;
}

static void rebuild(fixture *f)
{
    assert_int_equal(kl_policy_rebuild(f->st, f->keys, f->h), 0);
}

static void assign(fixture *f, const char *name, const char *scope, const char *principal,
                   const char *role, bool builtin)
{
    kl_store_role_assignment ra = {.name = (char *)name,
                                   .scope = (char *)scope,
                                   .principal_id = (char *)principal,
                                   .role_id = (char *)role,
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, builtin, NULL), 0);
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 32);
}

/* ------------------------------------------------------------------ tests */

static void test_directory_lookups(void **state)
{
    fixture *f = *state;
    rebuild(f);
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    assert_string_equal(kl_snapshot_tenant_id(s), f->tenant);
    assert_string_equal(kl_snapshot_admin_principal(s), f->admin);

    const kl_principal *admin = kl_snapshot_principal(s, f->admin);
    assert_non_null(admin);
    assert_int_equal(admin->type, KL_PRINCIPAL_USER);
    assert_null(admin->app_id);
    assert_true(admin->enabled);
    assert_string_equal(admin->display_name, "keyless local administrator");

    /* The service principal, by object id in either case and by client id. */
    char sp[KL_UUID_LEN + 1], app_id[KL_UUID_LEN + 1];
    snprintf(sp, sizeof(sp), "%s", f->app->sp_object_id);
    snprintf(app_id, sizeof(app_id), "%s", f->app->app_id);
    upper(sp);
    upper(app_id);
    const kl_principal *p = kl_snapshot_principal(s, sp);
    assert_non_null(p);
    assert_int_equal(p->type, KL_PRINCIPAL_SERVICE_PRINCIPAL);
    assert_string_equal(p->object_id, f->app->sp_object_id);
    assert_string_equal(p->app_id, f->app->app_id);
    assert_ptr_equal(kl_snapshot_principal_by_app_id(s, app_id), p);
    /* The application object is not a principal; unknown and hostile keys find nothing. */
    assert_null(kl_snapshot_principal(s, f->app->object_id));
    assert_null(kl_snapshot_principal_by_app_id(s, f->admin));
    assert_null(kl_snapshot_principal(s, ""));
    assert_null(kl_snapshot_principal(s, NULL));
    assert_null(kl_snapshot_principal(NULL, f->admin));
    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(kl_snapshot_principal(s, big));
    assert_null(kl_snapshot_rbac(NULL));
    assert_string_equal(kl_snapshot_tenant_id(NULL), "");
    kl_snapshot_release(s);
}

static void test_bootstrap_owner(void **state)
{
    fixture *f = *state;
    rebuild(f);
    /* Owner of "/" may do any control-plane action anywhere, but no data action. */
    assert_true(check_now(f, f->admin, WRITE, false, "/"));
    assert_true(check_now(f, f->admin, LIST_KEYS, false, ACCT));
    assert_true(check_now(f, f->admin, "microsoft.directory/applications/create", false, "/"));
    assert_false(check_now(f, f->admin, CHAT, true, ACCT));
    /* Nobody else holds anything yet. */
    assert_false(check_now(f, f->app->sp_object_id, READ, false, ACCT));
}

static void test_change_visible_to_next_check(void **state)
{
    fixture *f = *state;
    const char *sp = f->app->sp_object_id;
    rebuild(f);
    assert_false(check_now(f, sp, READ, false, ACCT));

    assign(f, "0a000000-0000-4000-8000-000000000001", RG, sp, KL_ROLE_READER, true);
    rebuild(f);
    assert_true(check_now(f, sp, READ, false, ACCT));
    assert_false(check_now(f, sp, WRITE, false, ACCT));
    assert_false(check_now(f, sp, READ, false, SUB "/resourceGroups/rg2"));

    assign(f, "0a000000-0000-4000-8000-000000000002", ACCT, sp, KL_ROLE_OPENAI_USER, true);
    rebuild(f);
    assert_true(check_now(f, sp, CHAT, true, ACCT "/deployments/chat"));

    /* Removed: the very next check after the rebuild is a deny. */
    assert_int_equal(kl_store_delete_role_assignment(f->st, "0a000000-0000-4000-8000-000000000001"),
                     0);
    rebuild(f);
    assert_false(check_now(f, sp, READ, false, SUB "/resourceGroups/rg/providers/X.Y/z/w"));
    /* The OpenAI User role at the account still reads there (its actions include
     * Microsoft.CognitiveServices/STAR/read). */
    assert_true(check_now(f, sp, READ, false, ACCT));

    /* Disabled: its assignments are left out of the index. */
    bool off = false, on = true;
    assert_int_equal(kl_store_update_application(f->st, f->app->object_id, NULL, &off), 0);
    rebuild(f);
    assert_false(check_now(f, sp, CHAT, true, ACCT));
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    assert_false(kl_snapshot_principal(s, sp)->enabled);
    kl_snapshot_release(s);
    assert_int_equal(kl_store_update_application(f->st, f->app->object_id, NULL, &on), 0);
    rebuild(f);
    assert_true(check_now(f, sp, CHAT, true, ACCT));

    /* Deleted with its application: gone from the snapshot and the index. */
    assert_int_equal(kl_store_delete_application(f->st, f->app->object_id), 0);
    rebuild(f);
    assert_false(check_now(f, sp, CHAT, true, ACCT));
    s = kl_snapshot_acquire(f->h);
    assert_null(kl_snapshot_principal(s, sp));
    kl_snapshot_release(s);
}

static void test_custom_role(void **state)
{
    fixture *f = *state;
    const char *sp = f->app->sp_object_id;
    kl_store_role_definition rd = {
        .role_id = CUSTOM,
        .role_name = "Key Lister",
        .description = "lists keys",
        .assignable_scopes = "[\"" SUB "\"]",
        .permissions = "[{\"actions\":[\"Microsoft.CognitiveServices/accounts/listKeys/action\"],"
                       "\"notActions\":[],\"dataActions\":[],\"notDataActions\":[]}]",
        .created_at = 1,
        .updated_at = 1};
    assert_int_equal(kl_store_put_role_definition(f->st, &rd, NULL), 0);
    assign(f, "0b000000-0000-4000-8000-000000000001", RG, sp, CUSTOM, false);
    rebuild(f);
    assert_true(check_now(f, sp, LIST_KEYS, false, ACCT));
    assert_false(check_now(f, sp, READ, false, ACCT));

    kl_snapshot *s = kl_snapshot_acquire(f->h);
    const kl_rbac_role_def *def = kl_rbac_index_role(kl_snapshot_rbac(s), CUSTOM);
    assert_non_null(def);
    assert_string_equal(def->name, "Key Lister");
    assert_false(def->builtin);
    assert_int_equal(def->n_assignable_scopes, 1);
    kl_snapshot_release(s);

    /* A role row changed behind the store's back (bad JSON) is left out, and with it its
     * assignments: the snapshot still builds and grants less, never more. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE role_definitions SET permissions = 'nonsense'", NULL, NULL, NULL),
        SQLITE_OK);
    rebuild(f);
    assert_false(check_now(f, sp, LIST_KEYS, false, ACCT));
    assert_true(check_now(f, f->admin, LIST_KEYS, false, ACCT));
    s = kl_snapshot_acquire(f->h);
    assert_null(kl_rbac_index_role(kl_snapshot_rbac(s), CUSTOM));
    kl_snapshot_release(s);
    /* And an assignment outside its role's assignable scopes. */
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE role_definitions SET permissions = "
                                  "'[{\"actions\":[\"*\"]}]', assignable_scopes = "
                                  "'[\"/subscriptions/other\"]'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    rebuild(f);
    assert_false(check_now(f, sp, LIST_KEYS, false, ACCT));
    assert_true(check_now(f, f->admin, LIST_KEYS, false, ACCT));
}

static void test_role_json(void **state)
{
    (void)state;
    json_t *perm =
        json_loads("[{\"actions\":[\"a/b/read\",\"c/*\"],\"dataActions\":null}]", 0, NULL);
    json_t *scopes = json_loads("[\"/\",\"/subscriptions/s\"]", 0, NULL);
    kl_policy_role r;
    char why[128];
    assert_int_equal(kl_policy_role_decode(CUSTOM, "n", "", perm, scopes, &r, why, sizeof(why)), 0);
    assert_int_equal(r.def.n_actions, 2);
    assert_int_equal(r.def.n_data_actions, 0);
    assert_int_equal(r.def.n_assignable_scopes, 2);
    assert_string_equal(r.def.actions[1], "c/*");
    assert_int_equal(kl_rbac_role_validate(&r.def, why, sizeof(why)), 0);
    json_t *out = kl_policy_role_permissions_json(&r.def);
    char *text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "[{\"actions\":[\"a/b/read\",\"c/*\"],\"dataActions\":[],"
                              "\"notActions\":[],\"notDataActions\":[]}]");
    free(text);
    json_decref(out);
    kl_policy_role_clear(&r);
    json_decref(perm);

    /* Shapes that are refused, each with a reason. */
    const char *bad[] = {"[]",
                         "{}",
                         "[{\"actions\":\"x\"}]",
                         "[{\"actions\":[1]}]",
                         "[{\"actions\":[]},{\"actions\":[]}]",
                         "[7]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *p = json_loads(bad[i], 0, NULL);
        assert_non_null(p);
        why[0] = '\0';
        assert_int_equal(kl_policy_role_decode(CUSTOM, "n", "", p, scopes, &r, why, sizeof(why)),
                         KL_EINVAL);
        assert_true(strlen(why) > 0);
        json_decref(p);
    }
    json_decref(scopes);
}

static void test_builder(void **state)
{
    (void)state;
    kl_snapshot *s = NULL;
    kl_snapshot_builder *b = kl_snapshot_builder_new();
    assert_int_equal(kl_snapshot_builder_principal(b, "AAAAAAAA-0000-4000-8000-000000000001", NULL,
                                                   KL_PRINCIPAL_GROUP, "g", true),
                     0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), 0);
    /* No index handed in: the built-ins alone, never NULL. */
    assert_non_null(kl_snapshot_rbac(s));
    assert_int_equal(kl_rbac_index_assignment_count(kl_snapshot_rbac(s)), 0);
    assert_non_null(kl_snapshot_principal(s, "aaaaaaaa-0000-4000-8000-000000000001"));
    assert_string_equal(kl_snapshot_tenant_id(s), "");
    assert_null(kl_snapshot_admin_principal(s));
    kl_snapshot_release(s);

    /* Duplicate object ids or client ids are refused. */
    assert_int_equal(kl_snapshot_builder_principal(b, "aaaaaaaa-0000-4000-8000-000000000001", NULL,
                                                   KL_PRINCIPAL_USER, "u", true),
                     0);
    assert_int_equal(kl_snapshot_builder_principal(b, "AAAAAAAA-0000-4000-8000-000000000001", NULL,
                                                   KL_PRINCIPAL_USER, "u", true),
                     0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), KL_EEXIST);
    assert_null(s);
    assert_int_equal(kl_snapshot_builder_principal(b, "aaaaaaaa-0000-4000-8000-000000000001",
                                                   "bbbbbbbb-0000-4000-8000-000000000001",
                                                   KL_PRINCIPAL_SERVICE_PRINCIPAL, "a", true),
                     0);
    assert_int_equal(kl_snapshot_builder_principal(b, "aaaaaaaa-0000-4000-8000-000000000002",
                                                   "BBBBBBBB-0000-4000-8000-000000000001",
                                                   KL_PRINCIPAL_MANAGED_IDENTITY, "b", true),
                     0);
    assert_int_equal(kl_snapshot_builder_finish(b, &s), KL_EEXIST);
    assert_int_equal(kl_snapshot_builder_principal(b, NULL, NULL, KL_PRINCIPAL_USER, "x", true),
                     KL_EINVAL);
    assert_int_equal(kl_snapshot_builder_rbac(b, NULL), KL_EINVAL);
    kl_snapshot_builder_free(b);
}

/* A certificate stored for an application is in the next snapshot, parsed, under its
 * client id; a row that does not parse is left out without failing the build; removing
 * the certificate removes it from the next snapshot. */
static void test_app_certificates(void **state)
{
    fixture *f = *state;
    test_cert c;
    assert_int_equal(test_cert_make(&c, 2048, -10, 1000), 0);
    char sha1[41];
    memset(sha1, 'A', 40);
    sha1[40] = '\0';
    kl_store_key_credential good = {.key_id = "00000000-0000-4000-8000-0000000000c1",
                                    .display_name = "CN=test",
                                    .thumbprint_sha1 = sha1,
                                    .thumbprint_sha256 = c.x5t_s256,
                                    .cert = c.b64,
                                    .start_at = 10,
                                    .end_at = 20,
                                    .created_at = 1};
    kl_store_key_credential bad = good;
    bad.key_id = "00000000-0000-4000-8000-0000000000c2";
    bad.thumbprint_sha1 = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    bad.cert = "bm90IGEgY2VydA==";
    const kl_store_key_credential *set[] = {&good, &bad};
    assert_int_equal(kl_store_set_key_credentials(f->st, f->app->object_id, set, 2), 0);
    kl_store_federated_credential fc = {.id = "00000000-0000-4000-8000-0000000000f1",
                                        .name = "k8s",
                                        .issuer = "https://oidc.example",
                                        .subject = "sa",
                                        .audiences = "[\"api://AzureADTokenExchange\"]",
                                        .created_at = 1};
    assert_int_equal(kl_store_create_federated_credential(f->st, f->app->app_id, &fc), 0);
    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    size_t n = 0;
    const kl_federated_cred *fs =
        kl_appcreds_federated(kl_snapshot_appcreds(s), f->app->app_id, &n);
    assert_int_equal(n, 1);
    assert_string_equal(fs[0].issuer, "https://oidc.example");
    assert_string_equal(fs[0].audiences[0], "api://AzureADTokenExchange");
    const kl_client_cert *cs = kl_appcreds_certs(kl_snapshot_appcreds(s), f->app->app_id, &n);
    assert_int_equal(n, 1);
    assert_string_equal(kl_jws_key_x5t_s256(cs[0].key), c.x5t_s256);
    assert_int_equal(cs[0].not_before, 10);
    assert_int_equal(cs[0].not_after, 20);
    kl_snapshot_release(s);
    assert_int_equal(kl_store_set_key_credentials(f->st, f->app->object_id, NULL, 0), 0);
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    assert_null(kl_appcreds_certs(kl_snapshot_appcreds(s), f->app->app_id, &n));
    kl_snapshot_release(s);
    test_cert_free(&c);
}

/* The token endpoint's call: a registered certificate's assertion is accepted once; the
 * same jti again is refused through the store. */
static void test_check_assertion_spends_jti(void **state)
{
    fixture *f = *state;
    test_cert c;
    assert_int_equal(test_cert_make(&c, 2048, -10, 1000), 0);
    int64_t now = kl_now_unix();
    kl_store_key_credential k = {.key_id = "00000000-0000-4000-8000-0000000000c9",
                                 .display_name = "CN=test",
                                 .thumbprint_sha1 = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
                                 .thumbprint_sha256 = c.x5t_s256,
                                 .cert = c.b64,
                                 .start_at = now - 10,
                                 .end_at = now + 1000,
                                 .created_at = now};
    const kl_store_key_credential *set[] = {&k};
    assert_int_equal(kl_store_set_key_credentials(f->st, f->app->object_id, set, 1), 0);
    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    const char *ep = "https://127.0.0.1/t/oauth2/v2.0/token";
    json_t *h = json_pack("{s:s, s:s}", "alg", "PS256", "x5t#S256", c.x5t_s256);
    json_t *cl = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "aud", ep, "iss", f->app->app_id,
                           "sub", f->app->app_id, "exp", (json_int_t)(now + 600), "nbf",
                           (json_int_t)now, "jti", "once");
    char *tok = test_sign(c.pkey, true, h, cl);
    const char *kid = NULL;
    const kl_appcreds *ac = kl_snapshot_appcreds(s);
    assert_int_equal(
        kl_appcreds_check_assertion(ac, f->st, f->app->app_id, tok, strlen(tok), ep, now, &kid),
        KL_ASSERTION_OK);
    assert_string_equal(kid, k.key_id);
    assert_int_equal(
        kl_appcreds_check_assertion(ac, f->st, f->app->app_id, tok, strlen(tok), ep, now, &kid),
        KL_ASSERTION_REPLAYED);
    assert_null(kid);
    /* Still refused after its exp while the clock skew would let it pass: the jti is
     * remembered that long (pruning by exp alone would have forgotten it). */
    assert_int_equal(kl_appcreds_check_assertion(ac, f->st, f->app->app_id, tok, strlen(tok), ep,
                                                 now + 600 + KL_TOKEN_CLOCK_SKEW_S / 2, NULL),
                     KL_ASSERTION_REPLAYED);
    /* Another client with the same token: not its certificate. */
    assert_int_equal(kl_appcreds_check_assertion(ac, f->st, "00000000-0000-4000-8000-000000000077",
                                                 tok, strlen(tok), ep, now, NULL),
                     KL_ASSERTION_NO_CERT);
    free(tok);
    json_decref(h);
    json_decref(cl);
    kl_snapshot_release(s);
    test_cert_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_directory_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_visible_to_next_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_assertion_spends_jti, setup, teardown),
        cmocka_unit_test(test_role_json),
        cmocka_unit_test(test_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
