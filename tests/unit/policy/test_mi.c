/* Unit tests of the snapshot's managed identities (kl_snapshot_compute,
 * kl_snapshot_mi_by_client_id), built from a real store: sites and VMs by name in any
 * case, each with its system-assigned identity and its user-assigned ones in ARM-id
 * order, identities by client id in any case, and a rebuild after a deletion that no
 * longer knows what was deleted. And the builder's own refusals. */
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
#include "common/util.h"
#include "crypto/keys.h"
#include "policy/build.h"
#include "policy/mi.h"
#include "policy/snapshot.h"
#include "store/store.h"
#include "fixture.h"

#define RG "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
#define SITES RG "/providers/Microsoft.Web/sites/"
#define VMS RG "/providers/Microsoft.Compute/virtualMachines/"
#define UAMIS RG "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    kl_keys *keys;
    unsigned seq;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_store_open(f->dir, f->path, "/tmp/kl-snapmi-XXXXXX", &f->st);
    f->keys = test_keys_with(0x2a);
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

/* GUIDs with upper-case letters, so the snapshot's lower-casing shows. */
static void next_guid(fixture *f, char out[KL_UUID_LEN + 1])
{
    snprintf(out, KL_UUID_LEN + 1, "ABCDEF00-0000-4000-8000-%012u", ++f->seq);
}

static void put_uami(fixture *f, const char *name, char oid[37], char cid[37])
{
    char id[256];
    snprintf(id, sizeof(id), UAMIS "%s", name);
    next_guid(f, oid);
    next_guid(f, cid);
    kl_store_identity i = {.resource_id = id,
                           .subscription = "00000000-0000-0000-0000-000000000000",
                           .resource_group = "rg",
                           .name = (char *)name,
                           .location = "westeurope",
                           .object_id = oid,
                           .client_id = cid,
                           .created_at = 1,
                           .modified_at = 1};
    assert_int_equal(kl_store_put_user_identity(f->st, &i, NULL), 0);
}

static void put_compute(fixture *f, const char *kind, const char *prefix, const char *name,
                        bool system, const char *const *user, size_t n_user, char oid[37],
                        char cid[37])
{
    char id[256];
    snprintf(id, sizeof(id), "%s%s", prefix, name);
    next_guid(f, oid);
    next_guid(f, cid);
    kl_store_identity_spec sp = {.system = system,
                                 .system_object_id = oid,
                                 .system_client_id = cid,
                                 .user = user,
                                 .n_user = n_user};
    kl_store_compute c = {.kind = (char *)kind,
                          .id = id,
                          .subscription = "00000000-0000-0000-0000-000000000000",
                          .resource_group = "rg",
                          .name = (char *)name,
                          .location = "westeurope",
                          .etag = "e",
                          .created_at = 1,
                          .modified_at = 1};
    assert_int_equal(kl_store_put_compute(f->st, &c, &sp, NULL), 0);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static void test_snapshot_identities(void **state)
{
    fixture *f = *state;
    char z_oid[37], z_cid[37], a_oid[37], a_cid[37];
    put_uami(f, "zeta", z_oid, z_cid);
    put_uami(f, "Alpha", a_oid, a_cid);
    const char *both[] = {UAMIS "zeta", UAMIS "alpha"};
    char s_oid[37], s_cid[37], v_oid[37], v_cid[37];
    put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "Web", true, both, 2, s_oid, s_cid);
    put_compute(f, KL_STORE_COMPUTE_VM, VMS, "host1", false, both, 1, v_oid, v_cid);
    lower(z_oid), lower(z_cid), lower(a_oid), lower(a_cid), lower(s_oid), lower(s_cid);

    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);

    const kl_compute *web = kl_snapshot_compute(s, KL_COMPUTE_SITE, "WEB");
    assert_non_null(web);
    assert_int_equal(web->kind, KL_COMPUTE_SITE);
    assert_string_equal(web->id, SITES "Web");
    assert_string_equal(web->name, "Web");
    assert_non_null(web->system);
    assert_false(web->system->user_assigned);
    assert_string_equal(web->system->object_id, s_oid);
    assert_string_equal(web->system->client_id, s_cid);
    assert_string_equal(web->system->resource_id, SITES "Web");
    /* By lower-case ARM id: alpha before zeta. */
    assert_int_equal(web->n_user, 2);
    assert_string_equal(web->user[0]->object_id, a_oid);
    assert_string_equal(web->user[0]->resource_id, UAMIS "Alpha");
    assert_true(web->user[0]->user_assigned);
    assert_string_equal(web->user[1]->object_id, z_oid);

    /* A site is not a VM, and a VM is not a site. */
    assert_null(kl_snapshot_compute(s, KL_COMPUTE_VM, "web"));
    assert_null(kl_snapshot_compute(s, KL_COMPUTE_SITE, "host1"));
    const kl_compute *vm = kl_snapshot_compute(s, KL_COMPUTE_VM, "Host1");
    assert_non_null(vm);
    assert_null(vm->system);
    assert_int_equal(vm->n_user, 1);
    assert_string_equal(vm->user[0]->client_id, z_cid);
    /* The same identity object, whichever way it is reached. */
    assert_ptr_equal(vm->user[0], web->user[1]);

    char upper[37];
    snprintf(upper, sizeof(upper), "%s", z_cid);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_ptr_equal(kl_snapshot_mi_by_client_id(s, upper), vm->user[0]);
    assert_ptr_equal(kl_snapshot_mi_by_client_id(s, s_cid), web->system);
    /* Object ids are not client ids; unknowns and bad input find nothing. */
    assert_null(kl_snapshot_mi_by_client_id(s, s_oid));
    assert_null(kl_snapshot_mi_by_client_id(s, ""));
    assert_null(kl_snapshot_mi_by_client_id(s, NULL));
    assert_null(kl_snapshot_compute(s, KL_COMPUTE_SITE, NULL));
    assert_null(kl_snapshot_compute(NULL, KL_COMPUTE_SITE, "web"));
    char long_name[200];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_null(kl_snapshot_compute(s, KL_COMPUTE_SITE, long_name));
    /* The principals are there too, as managed identities. */
    const kl_principal *p = kl_snapshot_principal_by_app_id(s, s_cid);
    assert_non_null(p);
    assert_int_equal(p->type, KL_PRINCIPAL_MANAGED_IDENTITY);
    kl_snapshot_release(s);

    /* Deleted: a rebuild knows neither the identity nor its host. */
    assert_int_equal(kl_store_delete_compute(f->st, KL_STORE_COMPUTE_SITE, "web"), 0);
    assert_int_equal(kl_store_delete_user_identity(f->st, UAMIS "zeta"), 0);
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    assert_null(kl_snapshot_compute(s, KL_COMPUTE_SITE, "web"));
    assert_null(kl_snapshot_mi_by_client_id(s, s_cid));
    assert_null(kl_snapshot_mi_by_client_id(s, z_cid));
    vm = kl_snapshot_compute(s, KL_COMPUTE_VM, "host1");
    assert_non_null(vm);
    assert_int_equal(vm->n_user, 0);
    assert_non_null(kl_snapshot_mi_by_client_id(s, a_cid));
    kl_snapshot_release(s);
}

/* Through kl_policy_apply: identity changes are applied (a full build, as their writes log
 * "all"), and a snapshot derived for a role assignment change keeps the identities. */
static void test_applied_and_derived(void **state)
{
    fixture *f = *state;
    kl_snapshot_holder *h = kl_snapshot_holder_new();
    kl_policy *p = NULL;
    assert_non_null(h);
    assert_int_equal(kl_policy_new(f->st, f->keys, h, &p), 0);
    assert_int_equal(kl_policy_apply(p, NULL), 0);
    char oid[37], cid[37], s_oid[37], s_cid[37];
    put_uami(f, "u1", oid, cid);
    const char *u[] = {UAMIS "u1"};
    put_compute(f, KL_STORE_COMPUTE_VM, VMS, "host", true, u, 1, s_oid, s_cid);
    assert_int_equal(kl_policy_apply(p, NULL), 0);
    kl_snapshot *s = kl_snapshot_acquire(h);
    const kl_compute *c = kl_snapshot_compute(s, KL_COMPUTE_VM, "host");
    assert_non_null(c);
    assert_non_null(c->system);
    assert_int_equal(c->n_user, 1);
    uint64_t gen = kl_snapshot_generation(s);
    kl_snapshot_release(s);

    /* A role assignment of the identity: applied by deriving the last snapshot. */
    char name[37];
    next_guid(f, name);
    kl_store_role_assignment ra = {.name = name,
                                   .scope = RG,
                                   .principal_id = oid,
                                   .role_id = "acdd72a7-3385-48ef-bd42-f606fba81ae7",
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, true, NULL), 0);
    assert_int_equal(kl_policy_apply(p, RG), 0);
    s = kl_snapshot_acquire(h);
    assert_true(kl_snapshot_generation(s) > gen);
    size_t na = 0;
    assert_true(kl_rbac_index_overlay(kl_snapshot_rbac(s), &na) > 0); /* it was derived */
    c = kl_snapshot_compute(s, KL_COMPUTE_VM, "HOST");
    assert_non_null(c);
    assert_int_equal(c->n_user, 1);
    assert_non_null(kl_snapshot_mi_by_client_id(s, cid));
    kl_snapshot_release(s);

    /* Deleted: gone from the next snapshot. */
    assert_int_equal(kl_store_delete_user_identity(f->st, UAMIS "u1"), 0);
    assert_int_equal(kl_policy_apply(p, NULL), 0);
    s = kl_snapshot_acquire(h);
    assert_null(kl_snapshot_mi_by_client_id(s, cid));
    assert_int_equal(kl_snapshot_compute(s, KL_COMPUTE_VM, "host")->n_user, 0);
    kl_snapshot_release(s);
    kl_policy_free(p);
    kl_snapshot_holder_free(h);
}

/* A store without any: every lookup answers NULL. */
static void test_none(void **state)
{
    fixture *f = *state;
    kl_snapshot *s = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &s), 0);
    assert_null(kl_snapshot_compute(s, KL_COMPUTE_VM, "x"));
    assert_null(kl_snapshot_mi_by_client_id(s, "00000000-0000-4000-8000-000000000001"));
    kl_snapshot_release(s);
}

static void test_builder_refusals(void **state)
{
    (void)state;
    kl_mi_builder *b = kl_mi_builder_new();
    kl_mi_set *m = NULL;
    assert_non_null(b);
    assert_int_equal(kl_mi_builder_identity(b, "a", "c", "/r1", true), 0);
    assert_int_equal(kl_mi_builder_identity(b, "b", "C", "/r2", true), 0);
    assert_int_equal(kl_mi_builder_finish(b, &m), KL_EEXIST); /* client id twice */
    assert_null(m);
    assert_int_equal(kl_mi_builder_compute(b, KL_COMPUTE_SITE, "/s/x", "x"), 0);
    assert_int_equal(kl_mi_builder_compute(b, KL_COMPUTE_SITE, "/s/X2", "X"), 0);
    assert_int_equal(kl_mi_builder_finish(b, &m), KL_EEXIST); /* a name twice per kind */
    assert_int_equal(kl_mi_builder_identity(b, "", "c", "/r", true), KL_EINVAL);
    assert_int_equal(kl_mi_builder_compute(b, (kl_compute_kind)7, "/s", "s"), KL_EINVAL);
    /* An attachment to an unknown host or identity, or of a system-assigned identity, is
     * left out. */
    assert_int_equal(kl_mi_builder_identity(b, "sys", "c1", "/S/Web", false), 0);
    assert_int_equal(kl_mi_builder_compute(b, KL_COMPUTE_SITE, "/s/web", "web"), 0);
    assert_int_equal(kl_mi_builder_attach(b, "/S/WEB", "sys"), 0);
    assert_int_equal(kl_mi_builder_attach(b, "/s/web", "nobody"), 0);
    assert_int_equal(kl_mi_builder_attach(b, "/s/other", "sys"), 0);
    assert_int_equal(kl_mi_builder_finish(b, &m), 0);
    const kl_compute *c = kl_mi_set_compute(m, KL_COMPUTE_SITE, "WEB");
    assert_non_null(c);
    assert_non_null(c->system);
    assert_string_equal(c->system->object_id, "sys");
    assert_int_equal(c->n_user, 0);
    kl_mi_set_free(m);
    kl_mi_builder_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_identities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_applied_and_derived, setup, teardown),
        cmocka_unit_test(test_builder_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
