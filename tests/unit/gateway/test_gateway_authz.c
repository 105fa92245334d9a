/* Data-plane authorization of signed-in principals: a real SQLite store, a real
 * snapshot, Azure's role semantics at the account scope, and the PermissionDenied text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "directory/directory.h"
#include "gateway/gateway_authz.h"
#include "policy/build.h"
#include "policy/snapshot.h"
#include "rbac/builtin.h"
#include "store/store.h"

#define SUB "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
#define ACCT_A SUB "/providers/Microsoft.CognitiveServices/accounts/alpha"
#define ACCT_B SUB "/providers/Microsoft.CognitiveServices/accounts/alphabet"
#define OPENAI_USER "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"

typedef struct fx {
    char dir[64];
    kl_store *st;
    kl_keys *keys;
    kl_store_application *app;
} fx;

static void put_account(kl_store *st, const char *id, const char *name)
{
    kl_store_account a = {0};
    a.id = (char *)id;
    a.subscription = "00000000-0000-0000-0000-000000000000";
    a.resource_group = "rg";
    a.name = (char *)name;
    a.location = "local";
    a.kind = "OpenAI";
    a.sku = "{\"name\":\"S0\"}";
    a.tags = "{}";
    a.properties = "{}";
    a.etag = "e";
    a.created_at = a.modified_at = 1;
    assert_int_equal(kl_store_put_account(st, &a, NULL, 0, NULL), 0);
}

static void assign(kl_store *st, const char *name, const char *scope, const char *principal,
                   const char *role)
{
    kl_store_role_assignment ra = {0};
    ra.name = (char *)name;
    ra.scope = (char *)scope;
    ra.principal_id = (char *)principal;
    ra.role_id = (char *)role;
    ra.created_at = ra.updated_at = 1;
    assert_int_equal(kl_store_put_role_assignment(st, &ra, true, NULL), 0);
}

static kl_snapshot *snap(fx *f)
{
    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    return s;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kl-authz-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/k.db", f->dir);
    assert_int_equal(kl_store_open_sqlite(path, &f->st), 0);
    unsigned char kek[32] = {1, 2, 3};
    assert_int_equal(kl_keys_from_bytes(kek, sizeof(kek), &f->keys), 0);
    put_account(f->st, ACCT_A, "alpha");
    put_account(f->st, ACCT_B, "alphabet");
    assert_int_equal(kl_directory_create_application(f->st, "inference-app", &f->app), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kl_store_application_free(f->app);
    kl_store_close(f->st);
    kl_keys_free(f->keys);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_role_at_account_only(void **state)
{
    fx *f = *state;
    const char *sp = f->app->sp_object_id;
    char msg[512];
    kl_snapshot *s = snap(f);
    const kl_account *a = kl_snapshot_account(s, "alpha", 5);
    const kl_account *b = kl_snapshot_account(s, "alphabet", 8);
    assert_non_null(a);
    assert_non_null(b);
    /* No assignment yet: a known principal is denied with Azure's text. */
    assert_int_equal(kl_gateway_authorize(s, sp, KL_GW_ROUTE_CHAT, false, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_DENY);
    char want[512];
    snprintf(want, sizeof(want),
             "The principal `%s` lacks the required data action "
             "`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action` "
             "to perform `POST /openai/deployments/{deployment-id}/chat/completions` operation.",
             sp);
    assert_string_equal(msg, want);
    kl_snapshot_release(s);

    assign(f->st, "11111111-1111-4111-8111-111111111111", ACCT_A, sp, OPENAI_USER);
    s = snap(f);
    a = kl_snapshot_account(s, "alpha", 5);
    b = kl_snapshot_account(s, "alphabet", 8);
    assert_int_equal(kl_gateway_authorize(s, sp, KL_GW_ROUTE_CHAT, false, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_ALLOW);
    assert_int_equal(kl_gateway_authorize(s, sp, KL_GW_ROUTE_EMBEDDINGS, true, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_ALLOW);
    assert_int_equal(kl_gateway_authorize(s, sp, KL_GW_ROUTE_MODELS, true, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_ALLOW);
    /* An account whose name merely starts with the assigned one is not covered. */
    assert_int_equal(kl_gateway_authorize(s, sp, KL_GW_ROUTE_CHAT, true, b, msg, sizeof(msg)),
                     KL_GW_AUTHZ_DENY);
    assert_non_null(strstr(msg, "`POST /openai/v1/chat/completions`"));
    kl_snapshot_release(s);

    /* Disabling the principal takes effect with the next snapshot. */
    assert_int_equal(kl_store_set_principal_enabled(f->st, sp, false), 0);
    s = snap(f);
    a = kl_snapshot_account(s, "alpha", 5);
    assert_int_equal(kl_gateway_authorize(s, sp, KL_GW_ROUTE_CHAT, false, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_NO_PRINCIPAL);
    kl_snapshot_release(s);
}

static void test_owner_has_no_data_actions(void **state)
{
    fx *f = *state;
    char msg[512];
    kl_snapshot *s = snap(f);
    const char *admin = kl_snapshot_admin_principal(s);
    assert_non_null(admin);
    const kl_account *a = kl_snapshot_account(s, "alpha", 5);
    /* The local administrator owns "/", and Owner's "*" is not a data action. */
    assert_int_equal(kl_gateway_authorize(s, admin, KL_GW_ROUTE_CHAT, false, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_DENY);
    assert_int_equal(kl_gateway_authorize(s, "6f1c0f4e-0000-4000-8000-000000000000",
                                          KL_GW_ROUTE_CHAT, false, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_NO_PRINCIPAL);
    /* An operation without a data action is never allowed. */
    assert_int_equal(kl_gateway_authorize(s, admin, KL_GW_ROUTE_NONE, false, a, msg, sizeof(msg)),
                     KL_GW_AUTHZ_DENY);
    kl_snapshot_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_role_at_account_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_has_no_data_actions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
