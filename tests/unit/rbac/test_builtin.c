/* Every built-in role against a table of (action, plane, expected) drawn from Azure's
 * documentation of that role, evaluated through a real index: one principal per role,
 * assigned at a subscription, checked on resources below it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "rbac/builtin.h"
#include "rbac/match.h"
#include "rbac/rbac.h"

#define SUB "/subscriptions/00000000-0000-0000-0000-000000000001"
#define ACCOUNT SUB "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct"
#define DEPLOYMENT ACCOUNT "/deployments/gpt-4o"
#define UAMI SUB "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"

/* Control-plane actions. */
#define LIST_KEYS "Microsoft.CognitiveServices/accounts/listKeys/action"
#define REGEN_KEY "Microsoft.CognitiveServices/accounts/regenerateKey/action"
#define ACCT_READ "Microsoft.CognitiveServices/accounts/read"
#define ACCT_WRITE "Microsoft.CognitiveServices/accounts/write"
#define ACCT_DELETE "Microsoft.CognitiveServices/accounts/delete"
#define DEP_READ "Microsoft.CognitiveServices/accounts/deployments/read"
#define DEP_WRITE "Microsoft.CognitiveServices/accounts/deployments/write"
#define DEP_DELETE "Microsoft.CognitiveServices/accounts/deployments/delete"
#define USAGES "Microsoft.CognitiveServices/locations/usages/read"
#define RA_READ "Microsoft.Authorization/roleAssignments/read"
#define RA_WRITE "Microsoft.Authorization/roleAssignments/write"
#define RA_DELETE "Microsoft.Authorization/roleAssignments/delete"
#define RD_WRITE "Microsoft.Authorization/roleDefinitions/write"
#define ELEVATE "Microsoft.Authorization/elevateAccess/Action"
#define RG_READ "Microsoft.Resources/subscriptions/resourceGroups/read"
#define RG_WRITE "Microsoft.Resources/subscriptions/resourceGroups/write"
#define ARM_DEPLOY "Microsoft.Resources/deployments/write"
#define SUPPORT "Microsoft.Support/supportTickets/write"
#define SUB_CANCEL "Microsoft.Subscription/cancel/action"
#define VM_READ "Microsoft.Compute/virtualMachines/read"
#define VM_WRITE "Microsoft.Compute/virtualMachines/write"
#define UAMI_READ "Microsoft.ManagedIdentity/userAssignedIdentities/read"
#define UAMI_WRITE "Microsoft.ManagedIdentity/userAssignedIdentities/write"
#define UAMI_DELETE "Microsoft.ManagedIdentity/userAssignedIdentities/delete"
#define UAMI_ASSIGN "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
#define FIC_WRITE                                                                                  \
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
#define REVOKE "Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action"

/* Data-plane actions. */
#define OAI "Microsoft.CognitiveServices/accounts/OpenAI/"
#define CHAT OAI "deployments/chat/completions/action"
#define COMPLETIONS OAI "deployments/completions/action"
#define EMBEDDINGS OAI "deployments/embeddings/action"
#define REALTIME OAI "deployments/realtime/action"
#define IMAGES OAI "images/generations/action"
#define VIDEO OAI "video/generations/jobs/action"
#define RESPONSES OAI "responses/write"
#define ASSISTANTS OAI "assistants/threads/write"
#define FILES_READ OAI "files/read"
#define FILES_WRITE OAI "files/write"
#define STORED_READ OAI "stored-completions/read"
#define FINE_TUNE OAI "fine-tunes/write"
#define FT_DEPLOY OAI "fine-tunes-deployments/write"
#define SPEECH "Microsoft.CognitiveServices/accounts/SpeechServices/speechrest/write"
#define IMPERSONATE                                                                                \
    "Microsoft.CognitiveServices/accounts/AIServices/agents/endpoints/UserIdentityImpersonation/"  \
    "action"
#define BLOB_READ "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"

enum { CTL = 0, DATA = 1 };
enum { DENY = 0, ALLOW = 1 };

typedef struct row {
    const char *role;
    const char *action;
    int data;
    int expect;
    const char *scope;
} row;

static const row table[] = {
    /* Cognitive Services OpenAI User: Entra inference, reads; no keys, no deployments. */
    {KL_ROLE_OPENAI_USER, CHAT, DATA, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_USER, COMPLETIONS, DATA, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_USER, EMBEDDINGS, DATA, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_USER, REALTIME, DATA, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_USER, IMAGES, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_USER, VIDEO, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_USER, RESPONSES, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_USER, ASSISTANTS, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_USER, FILES_READ, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_USER, FILES_WRITE, DATA, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_USER, STORED_READ, DATA, DENY, ACCOUNT}, /* notDataActions */
    {KL_ROLE_OPENAI_USER, FINE_TUNE, DATA, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_USER, SPEECH, DATA, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_USER, LIST_KEYS, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_USER, REGEN_KEY, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_USER, ACCT_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_USER, DEP_READ, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_USER, DEP_WRITE, CTL, DENY, DEPLOYMENT},
    {KL_ROLE_OPENAI_USER, ACCT_WRITE, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_USER, RA_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_USER, RA_WRITE, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_USER, RG_READ, CTL, DENY, SUB "/resourceGroups/rg"},

    /* Cognitive Services OpenAI Contributor: + deployments and fine-tuning; no keys, no
     * new accounts. */
    {KL_ROLE_OPENAI_CONTRIBUTOR, CHAT, DATA, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, STORED_READ, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, FINE_TUNE, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, FILES_WRITE, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, SPEECH, DATA, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, DEP_WRITE, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, DEP_DELETE, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, DEP_READ, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, LIST_KEYS, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, REGEN_KEY, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, ACCT_WRITE, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, ACCT_DELETE, CTL, DENY, ACCOUNT},
    {KL_ROLE_OPENAI_CONTRIBUTOR, RA_WRITE, CTL, DENY, ACCOUNT},

    /* Cognitive Services User: every Cognitive Services data action but three, and
     * listKeys. */
    {KL_ROLE_CS_USER, CHAT, DATA, ALLOW, DEPLOYMENT},
    {KL_ROLE_CS_USER, SPEECH, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_CS_USER, STORED_READ, DATA, ALLOW, ACCOUNT},
    {KL_ROLE_CS_USER, IMPERSONATE, DATA, DENY, ACCOUNT},
    {KL_ROLE_CS_USER, FT_DEPLOY, DATA, DENY, ACCOUNT},
    {KL_ROLE_CS_USER, BLOB_READ, DATA, DENY, ACCOUNT},
    {KL_ROLE_CS_USER, LIST_KEYS, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CS_USER, REGEN_KEY, CTL, DENY, ACCOUNT},
    {KL_ROLE_CS_USER, ACCT_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CS_USER, DEP_WRITE, CTL, DENY, DEPLOYMENT},
    {KL_ROLE_CS_USER, ACCT_WRITE, CTL, DENY, ACCOUNT},
    {KL_ROLE_CS_USER, RG_READ, CTL, ALLOW, SUB "/resourceGroups/rg"},
    {KL_ROLE_CS_USER, SUPPORT, CTL, ALLOW, SUB},
    {KL_ROLE_CS_USER, RA_WRITE, CTL, DENY, ACCOUNT},

    /* Cognitive Services Contributor: accounts, keys, deployments; no Entra inference. */
    {KL_ROLE_CS_CONTRIBUTOR, LIST_KEYS, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CS_CONTRIBUTOR, REGEN_KEY, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CS_CONTRIBUTOR, ACCT_WRITE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CS_CONTRIBUTOR, ACCT_DELETE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CS_CONTRIBUTOR, DEP_WRITE, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_CS_CONTRIBUTOR, DEP_DELETE, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_CS_CONTRIBUTOR, USAGES, CTL, ALLOW, SUB},
    {KL_ROLE_CS_CONTRIBUTOR, RA_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CS_CONTRIBUTOR, RA_WRITE, CTL, DENY, ACCOUNT},
    {KL_ROLE_CS_CONTRIBUTOR, RG_READ, CTL, ALLOW, SUB "/resourceGroups/rg"},
    {KL_ROLE_CS_CONTRIBUTOR, RG_WRITE, CTL, DENY, SUB "/resourceGroups/rg"},
    {KL_ROLE_CS_CONTRIBUTOR, VM_WRITE, CTL, DENY, SUB},
    {KL_ROLE_CS_CONTRIBUTOR, CHAT, DATA, DENY, DEPLOYMENT},
    {KL_ROLE_CS_CONTRIBUTOR, EMBEDDINGS, DATA, DENY, DEPLOYMENT},

    /* Cognitive Services Usages Reader: quota only. */
    {KL_ROLE_CS_USAGES_READER, USAGES, CTL, ALLOW, SUB},
    {KL_ROLE_CS_USAGES_READER, ACCT_READ, CTL, DENY, ACCOUNT},
    {KL_ROLE_CS_USAGES_READER, LIST_KEYS, CTL, DENY, ACCOUNT},
    {KL_ROLE_CS_USAGES_READER, CHAT, DATA, DENY, DEPLOYMENT},

    /* Owner: every control action, no data action. */
    {KL_ROLE_OWNER, VM_WRITE, CTL, ALLOW, SUB},
    {KL_ROLE_OWNER, ACCT_WRITE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_OWNER, LIST_KEYS, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_OWNER, REGEN_KEY, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_OWNER, RA_WRITE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_OWNER, RD_WRITE, CTL, ALLOW, SUB},
    {KL_ROLE_OWNER, ELEVATE, CTL, ALLOW, SUB},
    {KL_ROLE_OWNER, CHAT, DATA, DENY, DEPLOYMENT},
    {KL_ROLE_OWNER, BLOB_READ, DATA, DENY, SUB},

    /* Contributor: everything but authorization writes and a few listed actions. */
    {KL_ROLE_CONTRIBUTOR, VM_WRITE, CTL, ALLOW, SUB},
    {KL_ROLE_CONTRIBUTOR, ACCT_WRITE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CONTRIBUTOR, LIST_KEYS, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CONTRIBUTOR, DEP_WRITE, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_CONTRIBUTOR, RA_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_CONTRIBUTOR, RA_WRITE, CTL, DENY, ACCOUNT},
    {KL_ROLE_CONTRIBUTOR, RA_DELETE, CTL, DENY, ACCOUNT},
    {KL_ROLE_CONTRIBUTOR, RD_WRITE, CTL, DENY, SUB},
    {KL_ROLE_CONTRIBUTOR, ELEVATE, CTL, DENY, SUB},
    {KL_ROLE_CONTRIBUTOR, SUB_CANCEL, CTL, DENY, SUB},
    {KL_ROLE_CONTRIBUTOR, CHAT, DATA, DENY, DEPLOYMENT},

    /* Reader: reads only. */
    {KL_ROLE_READER, VM_READ, CTL, ALLOW, SUB},
    {KL_ROLE_READER, ACCT_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_READER, DEP_READ, CTL, ALLOW, DEPLOYMENT},
    {KL_ROLE_READER, RA_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_READER, VM_WRITE, CTL, DENY, SUB},
    {KL_ROLE_READER, LIST_KEYS, CTL, DENY, ACCOUNT},
    {KL_ROLE_READER, DEP_WRITE, CTL, DENY, DEPLOYMENT},
    {KL_ROLE_READER, CHAT, DATA, DENY, DEPLOYMENT},
    {KL_ROLE_READER, FILES_READ, DATA, DENY, ACCOUNT},

    /* User Access Administrator: reads plus all of Microsoft.Authorization. */
    {KL_ROLE_USER_ACCESS_ADMIN, RA_WRITE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_USER_ACCESS_ADMIN, RA_DELETE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_USER_ACCESS_ADMIN, RD_WRITE, CTL, ALLOW, SUB},
    {KL_ROLE_USER_ACCESS_ADMIN, ELEVATE, CTL, ALLOW, SUB},
    {KL_ROLE_USER_ACCESS_ADMIN, VM_READ, CTL, ALLOW, SUB},
    {KL_ROLE_USER_ACCESS_ADMIN, VM_WRITE, CTL, DENY, SUB},
    {KL_ROLE_USER_ACCESS_ADMIN, LIST_KEYS, CTL, DENY, ACCOUNT},
    {KL_ROLE_USER_ACCESS_ADMIN, SUPPORT, CTL, ALLOW, SUB},
    {KL_ROLE_USER_ACCESS_ADMIN, CHAT, DATA, DENY, DEPLOYMENT},

    /* Role Based Access Control Administrator: role assignments only. */
    {KL_ROLE_RBAC_ADMIN, RA_WRITE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_RBAC_ADMIN, RA_DELETE, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_RBAC_ADMIN, RA_READ, CTL, ALLOW, ACCOUNT},
    {KL_ROLE_RBAC_ADMIN, RD_WRITE, CTL, DENY, SUB},
    {KL_ROLE_RBAC_ADMIN, ELEVATE, CTL, DENY, SUB},
    {KL_ROLE_RBAC_ADMIN, VM_WRITE, CTL, DENY, SUB},
    {KL_ROLE_RBAC_ADMIN, LIST_KEYS, CTL, DENY, ACCOUNT},
    {KL_ROLE_RBAC_ADMIN, CHAT, DATA, DENY, DEPLOYMENT},

    /* Managed Identity Operator: read and assign user-assigned identities. */
    {KL_ROLE_MI_OPERATOR, UAMI_READ, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_OPERATOR, UAMI_ASSIGN, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_OPERATOR, UAMI_WRITE, CTL, DENY, UAMI},
    {KL_ROLE_MI_OPERATOR, UAMI_DELETE, CTL, DENY, UAMI},
    {KL_ROLE_MI_OPERATOR, FIC_WRITE, CTL, DENY, UAMI},
    {KL_ROLE_MI_OPERATOR, RG_READ, CTL, ALLOW, SUB "/resourceGroups/rg"},
    {KL_ROLE_MI_OPERATOR, ARM_DEPLOY, CTL, ALLOW, SUB "/resourceGroups/rg"},
    {KL_ROLE_MI_OPERATOR, VM_WRITE, CTL, DENY, SUB},
    {KL_ROLE_MI_OPERATOR, ACCT_READ, CTL, DENY, ACCOUNT},

    /* Managed Identity Contributor: create, read, update, delete; not assign. */
    {KL_ROLE_MI_CONTRIBUTOR, UAMI_READ, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, UAMI_WRITE, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, UAMI_DELETE, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, FIC_WRITE, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, REVOKE, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, UAMI_ASSIGN, CTL, DENY, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, RA_READ, CTL, ALLOW, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, RA_WRITE, CTL, DENY, UAMI},
    {KL_ROLE_MI_CONTRIBUTOR, CHAT, DATA, DENY, DEPLOYMENT},
};

static const char *const expected_ids[] = {
    KL_ROLE_OPENAI_USER,       KL_ROLE_OPENAI_CONTRIBUTOR,
    KL_ROLE_CS_USER,           KL_ROLE_CS_CONTRIBUTOR,
    KL_ROLE_CS_USAGES_READER,  KL_ROLE_OWNER,
    KL_ROLE_CONTRIBUTOR,       KL_ROLE_READER,
    KL_ROLE_USER_ACCESS_ADMIN, KL_ROLE_RBAC_ADMIN,
    KL_ROLE_MI_OPERATOR,       KL_ROLE_MI_CONTRIBUTOR,
};
#define NROLES (sizeof(expected_ids) / sizeof(expected_ids[0]))

static void test_definitions(void **state)
{
    (void)state;
    size_t n;
    const kl_rbac_role_def *b = kl_rbac_builtin_roles(&n);
    assert_int_equal(n, NROLES);
    static const struct {
        const char *id, *name;
    } names[] = {
        {KL_ROLE_OPENAI_USER, "Cognitive Services OpenAI User"},
        {KL_ROLE_OPENAI_CONTRIBUTOR, "Cognitive Services OpenAI Contributor"},
        {KL_ROLE_CS_USER, "Cognitive Services User"},
        {KL_ROLE_CS_CONTRIBUTOR, "Cognitive Services Contributor"},
        {KL_ROLE_CS_USAGES_READER, "Cognitive Services Usages Reader"},
        {KL_ROLE_OWNER, "Owner"},
        {KL_ROLE_CONTRIBUTOR, "Contributor"},
        {KL_ROLE_READER, "Reader"},
        {KL_ROLE_USER_ACCESS_ADMIN, "User Access Administrator"},
        {KL_ROLE_RBAC_ADMIN, "Role Based Access Control Administrator"},
        {KL_ROLE_MI_OPERATOR, "Managed Identity Operator"},
        {KL_ROLE_MI_CONTRIBUTOR, "Managed Identity Contributor"},
    };
    for (size_t i = 0; i < NROLES; i++) {
        const kl_rbac_role_def *r = kl_rbac_builtin_find(names[i].id);
        assert_non_null(r);
        assert_string_equal(r->name, names[i].name);
        assert_true(r->builtin);
        assert_true(kl_uuid_valid(r->id, strlen(r->id)));
        assert_non_null(r->description);
        assert_true(strlen(r->description) > 10);
        assert_int_equal(r->n_assignable_scopes, 1);
        assert_string_equal(r->assignable_scopes[0], "/");
        assert_ptr_equal(kl_rbac_builtin_find_name(names[i].name), r);
        const char *const *lists[] = {r->actions, r->not_actions, r->data_actions,
                                      r->not_data_actions};
        size_t counts[] = {r->n_actions, r->n_not_actions, r->n_data_actions,
                           r->n_not_data_actions};
        for (int l = 0; l < 4; l++)
            for (size_t k = 0; k < counts[l]; k++)
                assert_int_equal(kl_rbac_pattern_check(lists[l][k]), 0);
        /* Ids and names are unique within the table. */
        for (size_t j = 0; j < n; j++)
            if (&b[j] != r) {
                assert_true(strcmp(b[j].id, r->id) != 0);
                assert_true(strcasecmp(b[j].name, r->name) != 0);
            }
    }
    /* Lookup by full id and in any case; a role GUID inside other text is not one. */
    assert_ptr_equal(kl_rbac_builtin_find("/subscriptions/s/providers/Microsoft.Authorization/"
                                          "roleDefinitions/8E3AF657-A8FF-443C-A75C-2FE8C4BCB635"),
                     kl_rbac_builtin_find(KL_ROLE_OWNER));
    assert_ptr_equal(
        kl_rbac_builtin_find("/providers/Microsoft.Authorization/roledefinitions/" KL_ROLE_READER),
        kl_rbac_builtin_find(KL_ROLE_READER));
    assert_null(
        kl_rbac_builtin_find("/providers/Microsoft.Authorization/roleAssignments/" KL_ROLE_OWNER));
    assert_null(kl_rbac_builtin_find("00000000-0000-0000-0000-000000000000"));
    assert_null(kl_rbac_builtin_find(NULL));
    assert_ptr_equal(kl_rbac_builtin_find_name("OWNER"), kl_rbac_builtin_find(KL_ROLE_OWNER));
    assert_null(kl_rbac_builtin_find_name("Owners"));

    /* Exact permission counts of the current definitions, so an accidental edit shows. */
    const kl_rbac_role_def *u = kl_rbac_builtin_find(KL_ROLE_OPENAI_USER);
    assert_int_equal(u->n_actions, 3);
    assert_int_equal(u->n_data_actions, 16);
    assert_int_equal(u->n_not_data_actions, 1);
    const kl_rbac_role_def *c = kl_rbac_builtin_find(KL_ROLE_CONTRIBUTOR);
    assert_int_equal(c->n_not_actions, 11);
    const kl_rbac_role_def *csu = kl_rbac_builtin_find(KL_ROLE_CS_USER);
    assert_int_equal(csu->n_actions, 14);
    assert_int_equal(csu->n_not_data_actions, 3);
    assert_int_equal(kl_rbac_builtin_find(KL_ROLE_CS_CONTRIBUTOR)->n_actions, 18);
    assert_int_equal(kl_rbac_builtin_find(KL_ROLE_OPENAI_CONTRIBUTOR)->n_actions, 11);
}

static void test_role_table(void **state)
{
    (void)state;
    kl_rbac_assignment as[NROLES];
    char principals[NROLES][40], ids[NROLES][40];
    for (size_t i = 0; i < NROLES; i++) {
        snprintf(principals[i], sizeof(principals[i]), "principal-%zu", i);
        snprintf(ids[i], sizeof(ids[i]), "assignment-%zu", i);
        as[i] = (kl_rbac_assignment){ids[i], principals[i], expected_ids[i], SUB};
    }
    kl_rbac_index *ix = NULL;
    char err[256];
    assert_int_equal(kl_rbac_index_build(NULL, 0, as, NROLES, &ix, err, sizeof(err)), 0);
    size_t failures = 0;
    for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
        const row *r = &table[t];
        size_t i = 0;
        while (strcmp(expected_ids[i], r->role) != 0)
            i++;
        kl_rbac_decision d;
        assert_int_equal(kl_rbac_check(ix, principals[i], r->action, r->data == DATA, r->scope, &d),
                         0);
        if (d.allowed != (r->expect == ALLOW)) {
            print_error("%s: %s %s at %s: expected %s\n", kl_rbac_builtin_find(r->role)->name,
                        r->data ? "data" : "control", r->action, r->scope,
                        r->expect ? "allow" : "deny");
            failures++;
        } else if (d.allowed) {
            kl_rbac_grant g;
            assert_true(kl_rbac_decision_grant(&d, &g));
            assert_string_equal(g.role_id, r->role);
            assert_string_equal(g.assignment_id, ids[i]);
        }
    }
    assert_int_equal(failures, 0);
    /* Every role has rows, both allowing and denying. */
    for (size_t i = 0; i < NROLES; i++) {
        int allows = 0, denies = 0;
        for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++)
            if (strcmp(table[t].role, expected_ids[i]) == 0) {
                if (table[t].expect)
                    allows++;
                else
                    denies++;
            }
        assert_true(allows > 0);
        assert_true(denies > 0);
    }
    kl_rbac_index_free(ix);
}

static void test_builtins_immutable(void **state)
{
    (void)state;
    static const char *const acts[] = {"*"};
    static const char *const root[] = {"/"};
    kl_rbac_role_def r = {KL_ROLE_READER, "My Reader", "",   false, acts, 1, NULL, 0,
                          NULL,           0,           NULL, 0,     root, 1};
    kl_rbac_index *ix = NULL;
    char err[256];
    /* A custom role cannot take a built-in's id... */
    assert_int_equal(kl_rbac_index_build(&r, 1, NULL, 0, &ix, err, sizeof(err)), KL_ECONFLICT);
    assert_null(ix);
    assert_non_null(strstr(err, "built-in"));
    /* ...in any case, nor through a full id... */
    r.id = "ACDD72A7-3385-48EF-BD42-F606FBA81AE7";
    assert_int_equal(kl_rbac_index_build(&r, 1, NULL, 0, &ix, err, sizeof(err)), KL_ECONFLICT);
    /* ...nor a built-in's name, */
    r.id = "11111111-2222-3333-4444-555555555555";
    r.name = "reader";
    assert_int_equal(kl_rbac_index_build(&r, 1, NULL, 0, &ix, err, sizeof(err)), KL_ECONFLICT);
    /* ...nor claim to be built in. */
    r.name = "My Reader";
    r.builtin = true;
    assert_int_equal(kl_rbac_index_build(&r, 1, NULL, 0, &ix, err, sizeof(err)), KL_EINVAL);
    r.builtin = false;
    assert_int_equal(kl_rbac_index_build(&r, 1, NULL, 0, &ix, err, sizeof(err)), 0);
    /* The built-in is untouched and both are there. */
    const kl_rbac_role_def *reader = kl_rbac_index_role(ix, KL_ROLE_READER);
    assert_non_null(reader);
    assert_true(reader->builtin);
    assert_string_equal(reader->actions[0], "*/read");
    assert_string_equal(kl_rbac_index_role(ix, "11111111-2222-3333-4444-555555555555")->name,
                        "My Reader");
    assert_int_equal(kl_rbac_index_role_count(ix), NROLES + 1);
    kl_rbac_index_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_definitions),
        cmocka_unit_test(test_role_table),
        cmocka_unit_test(test_builtins_immutable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
