/* Unit tests of the store's managed-identity tables against real databases (SQLite files,
 * or PostgreSQL: see engine.h): sites and VMs, the lifecycle of system-assigned identities
 * (created when enabled, deleted with their principal and role assignments when disabled
 * or when their host goes, new ids when enabled again), user-assigned identities (attached
 * to many hosts, surviving detachment and host deletion, detached everywhere when deleted),
 * the root owner rule on those deletions, and what load_all hands the snapshot. */
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

#define OWNER KL_STORE_OWNER_ROLE_ID
#define READER "acdd72a7-3385-48ef-bd42-f606fba81ae7"
#define SUB "/subscriptions/00000000-0000-0000-0000-000000000000"
#define RG SUB "/resourceGroups/rg"
#define SITES RG "/providers/Microsoft.Web/sites/"
#define VMS RG "/providers/Microsoft.Compute/virtualMachines/"
#define UAMIS RG "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
#define ACCT RG "/providers/Microsoft.CognitiveServices/accounts/"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    char admin[KL_UUID_LEN + 1];
    unsigned seq;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(
        test_store_dir_open("mi", f->dir, sizeof(f->dir), f->path, sizeof(f->path), &f->st), 0);
    kl_store_tenant *t = NULL;
    assert_int_equal(kl_store_get_tenant(f->st, &t), 0);
    snprintf(f->admin, sizeof(f->admin), "%s", t->admin_object_id);
    kl_store_tenant_free(t);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_store_dir_close(f->st, f->dir);
    free(f);
    return 0;
}

/* A spec with fresh system ids (whether or not they get used). */
typedef struct spec_buf {
    char oid[KL_UUID_LEN + 1], cid[KL_UUID_LEN + 1];
    kl_store_identity_spec s;
} spec_buf;

static const kl_store_identity_spec *spec(fixture *f, spec_buf *b, bool system,
                                          const char *const *user, size_t n_user)
{
    test_next_guid(&f->seq, b->oid);
    test_next_guid(&f->seq, b->cid);
    b->s = (kl_store_identity_spec){.system = system,
                                    .system_object_id = b->oid,
                                    .system_client_id = b->cid,
                                    .user = user,
                                    .n_user = n_user};
    return &b->s;
}

static int put_compute(fixture *f, const char *kind, const char *id_prefix, const char *name,
                       const kl_store_identity_spec *sp)
{
    char id[256];
    snprintf(id, sizeof(id), "%s%s", id_prefix, name);
    kl_store_compute c = {.kind = (char *)kind,
                          .id = id,
                          .subscription = "00000000-0000-0000-0000-000000000000",
                          .resource_group = "rg",
                          .name = (char *)name,
                          .location = "westeurope",
                          .tags = "{}",
                          .properties = "{}",
                          .etag = "e1",
                          .created_at = 10,
                          .modified_at = 10};
    return kl_store_put_compute(f->st, &c, sp, NULL);
}

static void put_uami(fixture *f, const char *name, char oid[KL_UUID_LEN + 1],
                     char cid[KL_UUID_LEN + 1])
{
    char id[256];
    snprintf(id, sizeof(id), UAMIS "%s", name);
    test_next_guid(&f->seq, oid);
    test_next_guid(&f->seq, cid);
    kl_store_identity i = {.resource_id = id,
                           .subscription = "00000000-0000-0000-0000-000000000000",
                           .resource_group = "rg",
                           .name = (char *)name,
                           .location = "westeurope",
                           .tags = "{\"team\":\"a\"}",
                           .object_id = oid,
                           .client_id = cid,
                           .created_at = 5,
                           .modified_at = 5};
    bool created = false;
    assert_int_equal(kl_store_put_user_identity(f->st, &i, &created), 0);
    assert_true(created);
}

static void assign(fixture *f, const char *scope, const char *principal, const char *role,
                   char out[KL_UUID_LEN + 1])
{
    test_next_guid(&f->seq, out);
    kl_store_role_assignment ra = {.name = out,
                                   .scope = (char *)scope,
                                   .principal_id = (char *)principal,
                                   .role_id = (char *)role,
                                   .created_at = 10,
                                   .updated_at = 10,
                                   .created_by = f->admin,
                                   .updated_by = f->admin};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, true, NULL), 0);
}

static bool assignment_exists(fixture *f, const char *name)
{
    kl_store_role_assignment *ra = NULL;
    int err = kl_store_get_role_assignment(f->st, name, &ra);
    kl_store_role_assignment_free(ra);
    assert_true(err == 0 || err == KL_ENOTFOUND);
    return err == 0;
}

static bool principal_exists(fixture *f, const char *oid)
{
    kl_store_principal *p = NULL;
    int err = kl_store_get_principal(f->st, oid, &p);
    kl_store_principal_free(p);
    assert_true(err == 0 || err == KL_ENOTFOUND);
    return err == 0;
}

/* The host's identities as "S:<oid>" / "U:<oid>" joined by spaces. */
static void host_summary(fixture *f, const char *host_id, char *out, size_t outlen)
{
    kl_store_identity **ids = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_host_identities(f->st, host_id, &ids, &n), 0);
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, outlen - k, "%s%c:%s", i ? " " : "",
                              ids[i]->user_assigned ? 'U' : 'S', ids[i]->object_id);
    kl_store_identities_free(ids, n);
}

static void test_compute_crud(void **state)
{
    fixture *f = *state;
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web1", NULL), 0);
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web2", NULL), 0);
    /* The same name as a VM is another resource. */
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_VM, VMS, "web1", NULL), 0);
    /* A name is unique per kind across the store: another group's web1 conflicts. */
    char other[256];
    snprintf(other, sizeof(other), SUB "/resourceGroups/other/providers/Microsoft.Web/sites/");
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_SITE, other, "WEB1", NULL), KL_ECONFLICT);

    kl_store_compute *c = NULL;
    assert_int_equal(kl_store_get_compute(f->st, KL_STORE_COMPUTE_SITE, "WEB1", &c), 0);
    assert_string_equal(c->id, SITES "web1");
    assert_string_equal(c->kind, "site");
    assert_int_equal(c->created_at, 10);
    kl_store_compute_free(c);

    kl_store_compute **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_computes(f->st, KL_STORE_COMPUTE_SITE, NULL, "RG", &list, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->name, "web1");
    assert_string_equal(list[1]->name, "web2");
    kl_store_computes_free(list, n);
    assert_int_equal(kl_store_list_computes(f->st, KL_STORE_COMPUTE_VM, NULL, NULL, &list, &n), 0);
    assert_int_equal(n, 1);
    kl_store_computes_free(list, n);

    assert_int_equal(kl_store_delete_compute(f->st, KL_STORE_COMPUTE_SITE, "web1"), 0);
    assert_int_equal(kl_store_delete_compute(f->st, KL_STORE_COMPUTE_SITE, "web1"), KL_ENOTFOUND);
    assert_int_equal(kl_store_get_compute(f->st, KL_STORE_COMPUTE_VM, "web1", &c), 0);
    kl_store_compute_free(c);
    /* Not a kind the store knows. */
    assert_int_equal(put_compute(f, "app", SITES, "x", NULL), KL_EINVAL);
}

static void test_system_assigned_lifecycle(void **state)
{
    fixture *f = *state;
    spec_buf b;
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, true, NULL, 0)), 0);
    char first[KL_UUID_LEN + 1];
    snprintf(first, sizeof(first), "%s", b.oid);

    kl_store_identity *id = NULL;
    assert_int_equal(kl_store_get_identity(f->st, SITES "WEB", &id), 0);
    assert_false(id->user_assigned);
    assert_string_equal(id->object_id, first);
    assert_string_equal(id->client_id, b.cid);
    assert_string_equal(id->resource_id, SITES "web");
    kl_store_identity_free(id);
    kl_store_principal *p = NULL;
    assert_int_equal(kl_store_get_principal(f->st, first, &p), 0);
    assert_string_equal(p->type, "ManagedIdentity");
    assert_string_equal(p->app_id, b.cid);
    assert_string_equal(p->display_name, "web");
    assert_null(p->application_id);
    kl_store_principal_free(p);
    /* Only with its identity: not on its own. */
    assert_int_equal(kl_store_delete_principal(f->st, first), KL_ECONFLICT);

    /* Writing the site again with the identity enabled keeps it (the fresh ids go unused). */
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, true, NULL, 0)), 0);
    char sum[512], want[512];
    host_summary(f, SITES "web", sum, sizeof(sum));
    snprintf(want, sizeof(want), "S:%s", first);
    assert_string_equal(sum, want);
    /* And so does a write that does not speak of identities. */
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", NULL), 0);
    host_summary(f, SITES "web", sum, sizeof(sum));
    assert_string_equal(sum, want);

    /* Disabled: the principal and its role assignments, wherever they are, go. */
    char on_rg[37], on_site[37];
    assign(f, RG, first, READER, on_rg);
    assign(f, SITES "web", f->admin, READER, on_site);
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, false, NULL, 0)), 0);
    assert_false(principal_exists(f, first));
    assert_false(assignment_exists(f, on_rg));
    assert_true(assignment_exists(f, on_site));
    host_summary(f, SITES "web", sum, sizeof(sum));
    assert_string_equal(sum, "");
    assert_int_equal(kl_store_get_identity(f->st, SITES "web", &id), KL_ENOTFOUND);

    /* Enabled again: a new identity. */
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, true, NULL, 0)), 0);
    char second[KL_UUID_LEN + 1];
    snprintf(second, sizeof(second), "%s", b.oid);
    assert_string_not_equal(first, second);
    assert_true(principal_exists(f, second));

    /* The site deleted: its identity, the identity's assignments and the assignments at
     * the site go with it. */
    char again[37];
    assign(f, RG, second, READER, again);
    assert_int_equal(kl_store_delete_compute(f->st, KL_STORE_COMPUTE_SITE, "web"), 0);
    assert_false(principal_exists(f, second));
    assert_false(assignment_exists(f, again));
    assert_false(assignment_exists(f, on_site));
}

static void test_user_assigned_lifecycle(void **state)
{
    fixture *f = *state;
    char a_oid[37], a_cid[37], b_oid[37], b_cid[37];
    put_uami(f, "zeta", a_oid, a_cid);
    put_uami(f, "Alpha", b_oid, b_cid);
    const char *both[] = {UAMIS "ZETA", UAMIS "alpha"};
    spec_buf b;
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, true, both, 2)), 0);
    char sys[37];
    snprintf(sys, sizeof(sys), "%s", b.oid);
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_VM, VMS, "vm1", spec(f, &b, false, both, 1)),
                     0);
    /* Accounts carry identities the same way. */
    kl_store_account acc = {.id = ACCT "acc",
                            .subscription = "00000000-0000-0000-0000-000000000000",
                            .resource_group = "rg",
                            .name = "acc",
                            .location = "westeurope",
                            .kind = "OpenAI",
                            .etag = "e",
                            .created_at = 1,
                            .modified_at = 1};
    assert_int_equal(
        kl_store_put_account_ex(f->st, &acc, NULL, 0, spec(f, &b, false, both + 1, 1), NULL), 0);

    /* System first, then the user-assigned ones by lower-case ARM id (alpha < zeta). */
    char sum[512], want[512];
    host_summary(f, SITES "web", sum, sizeof(sum));
    snprintf(want, sizeof(want), "S:%s U:%s U:%s", sys, b_oid, a_oid);
    assert_string_equal(sum, want);

    /* An identity that does not exist: nothing written (the site keeps both). */
    const char *ghost[] = {UAMIS "ghost"};
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, false, ghost, 1)),
        KL_ENOTFOUND);
    host_summary(f, SITES "web", sum, sizeof(sum));
    assert_string_equal(sum, want);
    /* The same identity twice in one spec. */
    const char *twice[] = {UAMIS "zeta", UAMIS "Zeta"};
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, true, twice, 2)),
        KL_EINVAL);

    /* Detached from the site: it still exists, and stays on the VM. */
    assert_int_equal(
        put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, true, both + 1, 1)), 0);
    host_summary(f, SITES "web", sum, sizeof(sum));
    snprintf(want, sizeof(want), "S:%s U:%s", sys, b_oid);
    assert_string_equal(sum, want);
    assert_true(principal_exists(f, a_oid));
    host_summary(f, VMS "vm1", sum, sizeof(sum));
    snprintf(want, sizeof(want), "U:%s", a_oid);
    assert_string_equal(sum, want);

    /* The VM deleted: the identity survives. */
    char grant[37], on_uami[37];
    assign(f, RG, a_oid, READER, grant);
    assert_int_equal(kl_store_delete_compute(f->st, KL_STORE_COMPUTE_VM, "vm1"), 0);
    assert_true(principal_exists(f, a_oid));
    assert_true(assignment_exists(f, grant));
    kl_store_identity *id = NULL;
    assert_int_equal(kl_store_get_identity(f->st, UAMIS "Zeta", &id), 0);
    assert_true(id->user_assigned);
    assert_string_equal(id->client_id, a_cid);
    assert_string_equal(id->tags, "{\"team\":\"a\"}");
    kl_store_identity_free(id);

    /* Deleting alpha detaches it everywhere and takes its role assignments and those at
     * its own scope. */
    assign(f, RG, b_oid, READER, grant);
    assign(f, UAMIS "alpha", f->admin, READER, on_uami);
    assert_int_equal(kl_store_delete_user_identity(f->st, UAMIS "ALPHA"), 0);
    assert_false(principal_exists(f, b_oid));
    assert_false(assignment_exists(f, grant));
    assert_false(assignment_exists(f, on_uami));
    host_summary(f, SITES "web", sum, sizeof(sum));
    snprintf(want, sizeof(want), "S:%s", sys);
    assert_string_equal(sum, want);
    host_summary(f, ACCT "acc", sum, sizeof(sum));
    assert_string_equal(sum, "");
    assert_int_equal(kl_store_delete_user_identity(f->st, UAMIS "alpha"), KL_ENOTFOUND);
    /* A system-assigned identity is not deleted this way. */
    assert_int_equal(kl_store_delete_user_identity(f->st, SITES "web"), KL_ENOTFOUND);

    kl_store_identity **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_user_identities(f->st, NULL, "rg", &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->name, "zeta");
    kl_store_identities_free(list, n);
}

static void test_update_keeps_ids(void **state)
{
    fixture *f = *state;
    char oid[37], cid[37];
    put_uami(f, "id1", oid, cid);
    char oid2[37], cid2[37];
    test_next_guid(&f->seq, oid2);
    test_next_guid(&f->seq, cid2);
    kl_store_identity i = {.resource_id = UAMIS "ID1",
                           .subscription = "00000000-0000-0000-0000-000000000000",
                           .resource_group = "rg",
                           .name = "ID1",
                           .location = "northeurope",
                           .tags = "{}",
                           .object_id = oid2,
                           .client_id = cid2,
                           .created_at = 99,
                           .modified_at = 99};
    bool created = true;
    assert_int_equal(kl_store_put_user_identity(f->st, &i, &created), 0);
    assert_false(created);
    kl_store_identity *got = NULL;
    assert_int_equal(kl_store_get_identity(f->st, UAMIS "id1", &got), 0);
    assert_string_equal(got->object_id, oid);
    assert_string_equal(got->client_id, cid);
    assert_string_equal(got->location, "northeurope");
    assert_string_equal(got->resource_id, UAMIS "id1");
    assert_int_equal(got->created_at, 5);
    assert_int_equal(got->modified_at, 99);
    kl_store_identity_free(got);
    /* Ids in use by another principal. */
    test_next_guid(&f->seq, oid2);
    i.resource_id = UAMIS "id2";
    i.name = "id2";
    i.object_id = oid2;
    i.client_id = cid;
    assert_int_equal(kl_store_put_user_identity(f->st, &i, NULL), KL_EEXIST);
}

static void test_account_delete_takes_identity(void **state)
{
    fixture *f = *state;
    char u_oid[37], u_cid[37];
    put_uami(f, "shared", u_oid, u_cid);
    const char *u[] = {UAMIS "shared"};
    spec_buf b;
    kl_store_account acc = {.id = ACCT "acc",
                            .subscription = "00000000-0000-0000-0000-000000000000",
                            .resource_group = "rg",
                            .name = "acc",
                            .location = "westeurope",
                            .kind = "OpenAI",
                            .etag = "e",
                            .created_at = 1,
                            .modified_at = 1};
    assert_int_equal(kl_store_put_account_ex(f->st, &acc, NULL, 0, spec(f, &b, true, u, 1), NULL),
                     0);
    char sys[37];
    snprintf(sys, sizeof(sys), "%s", b.oid);
    assert_int_equal(kl_store_delete_account(f->st, "acc"), 0);
    assert_false(principal_exists(f, sys));
    assert_true(principal_exists(f, u_oid));
    char sum[256];
    host_summary(f, ACCT "acc", sum, sizeof(sum));
    assert_string_equal(sum, "");
}

/* A system-assigned identity that holds the last Owner of "/" cannot go: neither by
 * disabling it nor by deleting its host. */
static void test_root_owner_rule(void **state)
{
    fixture *f = *state;
    spec_buf b;
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_VM, VMS, "boss", spec(f, &b, true, NULL, 0)),
                     0);
    char sys[37], owner[37];
    snprintf(sys, sizeof(sys), "%s", b.oid);
    assign(f, "/", sys, OWNER, owner);
    kl_store_role_assignment **ras = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_role_assignments(f->st, f->admin, &ras, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(kl_store_delete_role_assignment(f->st, ras[i]->name), 0);
    kl_store_role_assignments_free(ras, n);

    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_VM, VMS, "boss", spec(f, &b, false, NULL, 0)),
                     KL_EPERM);
    assert_int_equal(kl_store_delete_compute(f->st, KL_STORE_COMPUTE_VM, "boss"), KL_EPERM);
    assert_true(principal_exists(f, sys));
    assert_true(assignment_exists(f, owner));
}

typedef struct seen {
    size_t computes, identities, attachments;
    char last_host[256];
} seen;

static int on_compute(void *arg, const kl_store_compute *c)
{
    seen *s = arg;
    assert_string_equal(c->kind, "site");
    s->computes++;
    return 0;
}

static int on_identity(void *arg, const kl_store_identity *i)
{
    seen *s = arg;
    assert_non_null(i->object_id);
    assert_non_null(i->client_id);
    s->identities++;
    return 0;
}

static int on_attachment(void *arg, const char *host, const char *oid)
{
    seen *s = arg;
    assert_non_null(oid);
    snprintf(s->last_host, sizeof(s->last_host), "%s", host);
    s->attachments++;
    return 0;
}

static void test_load_all(void **state)
{
    fixture *f = *state;
    char oid[37], cid[37];
    put_uami(f, "u", oid, cid);
    const char *u[] = {UAMIS "U"};
    spec_buf b;
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "Web", spec(f, &b, true, u, 1)),
                     0);
    seen s = {0};
    kl_store_visitor v = {.arg = &s,
                          .compute = on_compute,
                          .identity = on_identity,
                          .identity_attachment = on_attachment};
    assert_int_equal(kl_store_load_all(f->st, &v), 0);
    assert_int_equal(s.computes, 1);
    assert_int_equal(s.identities, 2);
    assert_int_equal(s.attachments, 1);
    /* Hosts come lower-cased. */
    assert_string_equal(s.last_host, "/subscriptions/00000000-0000-0000-0000-000000000000/"
                                     "resourcegroups/rg/providers/microsoft.web/sites/web");
}

/* A copy of the store (keyless store migrate) keeps identities, hosts and attachments. */
static void test_copy(void **state)
{
    fixture *f = *state;
    char oid[37], cid[37];
    put_uami(f, "u", oid, cid);
    const char *u[] = {UAMIS "u"};
    spec_buf b;
    assert_int_equal(put_compute(f, KL_STORE_COMPUTE_SITE, SITES, "web", spec(f, &b, true, u, 1)),
                     0);
    char path2[192];
    snprintf(path2, sizeof(path2), "%s/copy.db", f->dir);
    kl_store *to = NULL;
    assert_int_equal(test_store_open(path2, &to), 0);
    int64_t rows = 0;
    assert_int_equal(kl_store_copy(f->st, to, &rows), 0);
    kl_store_identity **ids = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_host_identities(to, SITES "web", &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0]->object_id, b.oid);
    assert_string_equal(ids[1]->object_id, oid);
    kl_store_identities_free(ids, n);
    kl_store_close(to);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compute_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_assigned_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_assigned_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_keeps_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_delete_takes_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_owner_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
