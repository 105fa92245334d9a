/* Unit tests of the identity block (mgmt/identity.c) without HTTP: what a PUT or PATCH may
 * say (types, userAssignedIdentities keys and values, limits) and the member shown for a
 * resource's identities; and the name rules of sites, VMs and user-assigned identities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "mgmt/arm.h"
#include "mgmt/identity.h"

#define UAMI                                                                                       \
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"                      \
    "userAssignedIdentities/"

static int parse(const char *text, bool patch, kl_identity_input *in, kl_arm_error *e)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    int err = kl_identity_parse(j, patch, in, e);
    json_decref(j);
    return err;
}

static void test_types(void **state)
{
    (void)state;
    kl_identity_input in;
    kl_arm_error e;
    assert_int_equal(kl_identity_parse(NULL, false, &in, &e), 0);
    assert_false(in.given);
    assert_int_equal(parse("{\"type\":\"systemassigned\"}", false, &in, &e), 0);
    assert_true(in.given && in.system && !in.user);
    kl_identity_input_free(&in);
    assert_int_equal(parse("{\"type\":\"UserAssigned ,SystemAssigned\"}", false, &in, &e), 0);
    assert_true(in.system && in.user);
    kl_identity_input_free(&in);
    assert_int_equal(parse("{\"type\":\"None\"}", false, &in, &e), 0);
    assert_true(in.given && !in.system && !in.user);
    kl_identity_input_free(&in);
    static const char *const bad[] = {
        "{}",
        "{\"type\":\"\"}",
        "{\"type\":\"SystemAssigned,SystemAssigned\"}",
        "{\"type\":\"None,UserAssigned\"}",
        "{\"type\":\"SystemAssigned,\"}",
        "{\"type\":7}",
        "{\"type\":\"System Assigned\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], false, &in, &e), KL_EINVAL);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "InvalidRequestContent");
        assert_false(in.given);
    }
}

static void test_user_assigned_map(void **state)
{
    (void)state;
    kl_identity_input in;
    kl_arm_error e;
    /* Fixed words respelled, names kept. */
    assert_int_equal(
        parse("{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"/SUBSCRIPTIONS/"
              "s/resourcegroups/rg/providers/microsoft.managedidentity/"
              "USERASSIGNEDIDENTITIES/Api\":{\"principalId\":\"ignored\"}}}",
              false, &in, &e),
        0);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.ids[0], UAMI "Api");
    assert_false(in.removed[0]);
    kl_identity_input_free(&in);
    /* null detaches on a PATCH only. */
    const char *nul =
        "{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"" UAMI "aaa\":null}}";
    assert_int_equal(parse(nul, true, &in, &e), 0);
    assert_true(in.removed[0]);
    kl_identity_input_free(&in);
    assert_int_equal(parse(nul, false, &in, &e), KL_EINVAL);
    /* Not an identity id; a map on a type without UserAssigned; twice. */
    assert_int_equal(
        parse("{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"/subscriptions/s/"
              "resourceGroups/rg/providers/Microsoft.Web/sites/w\":{}}}",
              false, &in, &e),
        KL_EINVAL);
    assert_int_equal(parse("{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"" UAMI
                           "aaa/x\":{}}}",
                           false, &in, &e),
                     KL_EINVAL);
    assert_int_equal(parse("{\"type\":\"SystemAssigned\",\"userAssignedIdentities\":{\"" UAMI
                           "aaa\":{}}}",
                           false, &in, &e),
                     KL_EINVAL);
    assert_string_equal(e.code, "FailedIdentityOperation");
    assert_int_equal(
        parse("{\"type\":\"SystemAssigned\",\"userAssignedIdentities\":{}}", false, &in, &e), 0);
    kl_identity_input_free(&in);
    assert_int_equal(parse("{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"" UAMI
                           "aaa\":{},\"" UAMI "AAA\":{}}}",
                           false, &in, &e),
                     KL_EINVAL);
    assert_int_equal(
        parse("{\"type\":\"UserAssigned\",\"userAssignedIdentities\":[]}", false, &in, &e),
        KL_EINVAL);
    /* More than a resource may carry. */
    json_t *map = json_object();
    for (int i = 0; i <= KL_MAX_HOST_USER_IDENTITIES; i++) {
        char k[256];
        snprintf(k, sizeof(k), UAMI "id%d", i);
        json_object_set_new(map, k, json_object());
    }
    json_t *v = json_pack("{s:s, s:o}", "type", "UserAssigned", "userAssignedIdentities", map);
    assert_int_equal(kl_identity_parse(v, false, &in, &e), KL_EINVAL);
    json_decref(v);
}

static void test_identity_json(void **state)
{
    (void)state;
    kl_store_identity sys = {.resource_id = "/x/sites/w", .object_id = "o1", .client_id = "c1"};
    kl_store_identity u = {
        .resource_id = UAMI "a", .user_assigned = true, .object_id = "o2", .client_id = "c2"};
    kl_store_identity *both[] = {&sys, &u};
    json_t *o = NULL;
    assert_int_equal(kl_identity_json(both, 0, "t", &o), 0);
    assert_null(o);
    assert_int_equal(kl_identity_json(both, 2, "t", &o), 0);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"principalId\":\"o1\",\"tenantId\":\"t\",\"type\":\"SystemAssigned, "
                           "UserAssigned\",\"userAssignedIdentities\":{\"" UAMI
                           "a\":{\"clientId\":\"c2\",\"principalId\":\"o2\"}}}");
    free(s);
    json_decref(o);
    assert_int_equal(kl_identity_json(both + 1, 1, "t", &o), 0);
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"" UAMI
                           "a\":{\"clientId\":\"c2\",\"principalId\":\"o2\"}}}");
    free(s);
    json_decref(o);
}

static void test_name_rules(void **state)
{
    (void)state;
    assert_true(kl_arm_valid_site_name("web-1", 5));
    assert_false(kl_arm_valid_site_name("-web", 4));
    assert_false(kl_arm_valid_site_name("w", 1));
    assert_false(kl_arm_valid_site_name("a_b", 3));
    assert_true(kl_arm_valid_vm_name("v", 1));
    assert_true(kl_arm_valid_vm_name("host_1.a", 8));
    assert_false(kl_arm_valid_vm_name("host.", 5));
    assert_false(kl_arm_valid_vm_name("_h", 2));
    assert_false(kl_arm_valid_vm_name("a..b", 4));
    assert_true(kl_arm_valid_identity_name("api-id_1", 8));
    assert_false(kl_arm_valid_identity_name("ab", 2));
    assert_false(kl_arm_valid_identity_name("-abc", 4));
    char longest[KL_MAX_NAME + 2];
    memset(longest, 'a', sizeof(longest));
    assert_true(kl_arm_valid_identity_name(longest, KL_MAX_NAME));
    assert_false(kl_arm_valid_identity_name(longest, KL_MAX_NAME + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_user_assigned_map),
        cmocka_unit_test(test_identity_json),
        cmocka_unit_test(test_name_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
