/* Identity selection: Azure's default rules (system-assigned, else the only user-assigned
 * one, else "multiple"; App Service: system-assigned only), each selector, case, and an
 * ARM id never selecting a system-assigned identity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "imds/idselect.h"

#define VM_ID "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm1"
#define UA1_ID                                                                                     \
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/"                       \
    "userAssignedIdentities/a"
#define UA2_ID                                                                                     \
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/"                       \
    "userAssignedIdentities/b"

static const kl_mi sys = {.object_id = "00000000-0000-4000-8000-00000000000a",
                          .client_id = "00000000-0000-4000-8000-00000000000b",
                          .resource_id = VM_ID,
                          .user_assigned = false};
static const kl_mi ua1 = {.object_id = "00000000-0000-4000-8000-0000000000a1",
                          .client_id = "00000000-0000-4000-8000-0000000000c1",
                          .resource_id = UA1_ID,
                          .user_assigned = true};
static const kl_mi ua2 = {.object_id = "00000000-0000-4000-8000-0000000000a2",
                          .client_id = "00000000-0000-4000-8000-0000000000c2",
                          .resource_id = UA2_ID,
                          .user_assigned = true};
static const kl_mi *const both[] = {&ua1, &ua2};
static const kl_mi *const one[] = {&ua1};

static kl_compute vm(const kl_mi *system, const kl_mi *const *user, size_t n)
{
    return (kl_compute){.kind = KL_COMPUTE_VM,
                        .id = VM_ID,
                        .name = "vm1",
                        .system = system,
                        .user = user,
                        .n_user = n};
}

static kl_idsel_result pick(const kl_compute *c, kl_idsel_rule rule, kl_idsel_kind k, const char *v,
                            const kl_mi **out)
{
    return kl_idselect_pick(c, rule, k, v, v ? strlen(v) : 0, out);
}

static void test_default_imds(void **state)
{
    (void)state;
    const kl_mi *got = NULL;
    kl_compute c = vm(&sys, both, 2);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_DEFAULT, NULL, &got), KL_IDSEL_OK);
    assert_ptr_equal(got, &sys);
    c = vm(NULL, one, 1);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_DEFAULT, NULL, &got), KL_IDSEL_OK);
    assert_ptr_equal(got, &ua1);
    c = vm(NULL, both, 2);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_DEFAULT, NULL, &got), KL_IDSEL_MULTIPLE);
    assert_null(got);
    c = vm(NULL, NULL, 0);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_DEFAULT, NULL, &got),
                     KL_IDSEL_NOT_FOUND);
    assert_int_equal(pick(NULL, KL_IDSEL_RULE_IMDS, KL_IDSEL_DEFAULT, NULL, &got),
                     KL_IDSEL_NOT_FOUND);
}

static void test_default_appservice(void **state)
{
    (void)state;
    const kl_mi *got = NULL;
    kl_compute c = vm(&sys, one, 1);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_APPSERVICE, KL_IDSEL_DEFAULT, NULL, &got), KL_IDSEL_OK);
    assert_ptr_equal(got, &sys);
    /* App Service never falls back to a user-assigned identity, even the only one. */
    c = vm(NULL, one, 1);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_APPSERVICE, KL_IDSEL_DEFAULT, NULL, &got),
                     KL_IDSEL_NOT_FOUND);
}

static void test_selectors(void **state)
{
    (void)state;
    const kl_mi *got = NULL;
    kl_compute c = vm(&sys, both, 2);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_CLIENT_ID, ua2.client_id, &got),
                     KL_IDSEL_OK);
    assert_ptr_equal(got, &ua2);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_CLIENT_ID, sys.client_id, &got),
                     KL_IDSEL_OK);
    assert_ptr_equal(got, &sys);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_OBJECT_ID, ua1.object_id, &got),
                     KL_IDSEL_OK);
    assert_ptr_equal(got, &ua1);
    /* GUIDs and ARM ids compare without regard to case. */
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_CLIENT_ID,
                          "00000000-0000-4000-8000-0000000000C2", &got),
                     KL_IDSEL_OK);
    assert_ptr_equal(got, &ua2);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_APPSERVICE, KL_IDSEL_RESOURCE_ID,
                          "/SUBSCRIPTIONS/s/resourcegroups/G/providers/"
                          "microsoft.managedidentity/userassignedidentities/B",
                          &got),
                     KL_IDSEL_OK);
    assert_ptr_equal(got, &ua2);
}

static void test_not_found(void **state)
{
    (void)state;
    const kl_mi *got = &sys;
    kl_compute c = vm(&sys, one, 1);
    /* The host's own id does not name its system-assigned identity. */
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_RESOURCE_ID, VM_ID, &got),
                     KL_IDSEL_NOT_FOUND);
    assert_null(got);
    /* An identity this host does not carry. */
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_CLIENT_ID, ua2.client_id, &got),
                     KL_IDSEL_NOT_FOUND);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_RESOURCE_ID, UA2_ID, &got),
                     KL_IDSEL_NOT_FOUND);
    /* A client id is not an object id, a prefix is not an id, empty is nothing. */
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_OBJECT_ID, ua1.client_id, &got),
                     KL_IDSEL_NOT_FOUND);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_CLIENT_ID,
                          "00000000-0000-4000-8000-0000000000c", &got),
                     KL_IDSEL_NOT_FOUND);
    assert_int_equal(pick(&c, KL_IDSEL_RULE_IMDS, KL_IDSEL_CLIENT_ID, "", &got),
                     KL_IDSEL_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_imds),
        cmocka_unit_test(test_default_appservice),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
