/* The built-in role table. Definitions follow Azure's current published versions
 * (azure-docs built-in-roles/ai-machine-learning, privileged, general and identity
 * pages, and the role JSON Azure returns); when Microsoft changes a role, change it here
 * and in the test table in tests/unit/rbac/test_builtin.c. */
#include "rbac/builtin.h"

#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LIST(a) a, N(a)
#define NONE NULL, 0

static const char *const root_scope[] = {"/"};

/* --- Cognitive Services OpenAI User --- */
static const char *const oai_user_actions[] = {
    "Microsoft.CognitiveServices/*/read",
    "Microsoft.Authorization/roleAssignments/read",
    "Microsoft.Authorization/roleDefinitions/read",
};
static const char *const oai_user_data[] = {
    "Microsoft.CognitiveServices/accounts/OpenAI/*/read",
    "Microsoft.CognitiveServices/accounts/OpenAI/engines/completions/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/engines/search/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/engines/generate/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/audio/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/search/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/completions/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/realtime/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/extensions/chat/completions/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/images/generations/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/video/generations/*/action",
    "Microsoft.CognitiveServices/accounts/OpenAI/video/generations/*/delete",
    "Microsoft.CognitiveServices/accounts/OpenAI/assistants/*",
    "Microsoft.CognitiveServices/accounts/OpenAI/responses/*",
};
static const char *const oai_user_not_data[] = {
    "Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read",
};

/* --- Cognitive Services OpenAI Contributor --- */
static const char *const oai_contrib_actions[] = {
    "Microsoft.CognitiveServices/*/read",
    "Microsoft.CognitiveServices/accounts/deployments/write",
    "Microsoft.CognitiveServices/accounts/deployments/delete",
    "Microsoft.CognitiveServices/accounts/raiPolicies/read",
    "Microsoft.CognitiveServices/accounts/raiPolicies/write",
    "Microsoft.CognitiveServices/accounts/raiPolicies/delete",
    "Microsoft.CognitiveServices/accounts/commitmentplans/read",
    "Microsoft.CognitiveServices/accounts/commitmentplans/write",
    "Microsoft.CognitiveServices/accounts/commitmentplans/delete",
    "Microsoft.Authorization/roleAssignments/read",
    "Microsoft.Authorization/roleDefinitions/read",
};
static const char *const oai_contrib_data[] = {
    "Microsoft.CognitiveServices/accounts/OpenAI/*",
};

/* --- Cognitive Services User --- */
static const char *const cs_user_actions[] = {
    "Microsoft.CognitiveServices/*/read",
    "Microsoft.CognitiveServices/accounts/listkeys/action",
    "Microsoft.CognitiveServices/accounts/projects/connections/listsecrets/action",
    "Microsoft.Insights/alertRules/read",
    "Microsoft.Insights/diagnosticSettings/read",
    "Microsoft.Insights/logDefinitions/read",
    "Microsoft.Insights/metricdefinitions/read",
    "Microsoft.Insights/metrics/read",
    "Microsoft.ResourceHealth/availabilityStatuses/read",
    "Microsoft.Resources/deployments/operations/read",
    "Microsoft.Resources/subscriptions/operationresults/read",
    "Microsoft.Resources/subscriptions/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
};
static const char *const cs_user_data[] = {
    "Microsoft.CognitiveServices/*",
};
static const char *const cs_user_not_data[] = {
    /* clang-format off */
    "Microsoft.CognitiveServices/accounts/AIServices/agents/endpoints/UserIdentityImpersonation/action",
    /* clang-format on */
    "Microsoft.CognitiveServices/accounts/OpenAI/fine-tunes-deployments/write",
    "Microsoft.CognitiveServices/accounts/AIServices/fine_tuning_deployments/write",
};

/* --- Cognitive Services Contributor --- */
static const char *const cs_contrib_actions[] = {
    "Microsoft.Authorization/*/read",
    "Microsoft.CognitiveServices/*",
    "Microsoft.Features/features/read",
    "Microsoft.Features/providers/features/read",
    "Microsoft.Features/providers/features/register/action",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Insights/diagnosticSettings/*",
    "Microsoft.Insights/logDefinitions/read",
    "Microsoft.Insights/metricdefinitions/read",
    "Microsoft.Insights/metrics/read",
    "Microsoft.ResourceHealth/availabilityStatuses/read",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/deployments/operations/read",
    "Microsoft.Resources/subscriptions/operationresults/read",
    "Microsoft.Resources/subscriptions/read",
    "Microsoft.Resources/subscriptions/resourcegroups/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
};

/* --- Cognitive Services Usages Reader --- */
static const char *const cs_usages_actions[] = {
    "Microsoft.CognitiveServices/locations/usages/read",
};

/* --- Owner, Contributor, Reader --- */
static const char *const all_actions[] = {"*"};
static const char *const contrib_not_actions[] = {
    "Microsoft.Authorization/*/Delete",
    "Microsoft.Authorization/*/Write",
    "Microsoft.Authorization/elevateAccess/Action",
    "Microsoft.Blueprint/blueprintAssignments/write",
    "Microsoft.Blueprint/blueprintAssignments/delete",
    "Microsoft.Compute/galleries/share/action",
    "Microsoft.Purview/consents/write",
    "Microsoft.Purview/consents/delete",
    "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
    "Microsoft.Subscription/cancel/action",
    "Microsoft.Subscription/enable/action",
};
static const char *const read_actions[] = {"*/read"};

/* --- User Access Administrator, Role Based Access Control Administrator --- */
static const char *const uaa_actions[] = {
    "*/read",
    "Microsoft.Authorization/*",
    "Microsoft.Support/*",
};
static const char *const rbac_admin_actions[] = {
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleAssignments/delete",
    "*/read",
    "Microsoft.Support/*",
};

/* --- Managed Identity Operator, Managed Identity Contributor --- */
static const char *const mi_operator_actions[] = {
    "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Support/*",
};
static const char *const mi_contrib_actions[] = {
    "Microsoft.ManagedIdentity/userAssignedIdentities/read",
    "Microsoft.ManagedIdentity/userAssignedIdentities/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
    "Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action",
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Support/*",
};

static const kl_rbac_role_def builtins[] = {
    {KL_ROLE_OPENAI_USER, "Cognitive Services OpenAI User",
     "Ability to view files, models, deployments. Readers can't make any changes They can "
     "inference and create images",
     true, LIST(oai_user_actions), NONE, LIST(oai_user_data), LIST(oai_user_not_data),
     LIST(root_scope)},
    {KL_ROLE_OPENAI_CONTRIBUTOR, "Cognitive Services OpenAI Contributor",
     "Full access including the ability to fine-tune, deploy and generate text", true,
     LIST(oai_contrib_actions), NONE, LIST(oai_contrib_data), NONE, LIST(root_scope)},
    {KL_ROLE_CS_USER, "Cognitive Services User",
     "Lets you read and list keys of Cognitive Services.", true, LIST(cs_user_actions), NONE,
     LIST(cs_user_data), LIST(cs_user_not_data), LIST(root_scope)},
    {KL_ROLE_CS_CONTRIBUTOR, "Cognitive Services Contributor",
     "Lets you create, read, update, delete and manage keys of Cognitive Services.", true,
     LIST(cs_contrib_actions), NONE, NONE, NONE, LIST(root_scope)},
    {KL_ROLE_CS_USAGES_READER, "Cognitive Services Usages Reader",
     "Minimal permission to view Cognitive Services usages.", true, LIST(cs_usages_actions), NONE,
     NONE, NONE, LIST(root_scope)},
    {KL_ROLE_OWNER, "Owner",
     "Grants full access to manage all resources, including the ability to assign roles in "
     "Azure RBAC.",
     true, LIST(all_actions), NONE, NONE, NONE, LIST(root_scope)},
    {KL_ROLE_CONTRIBUTOR, "Contributor",
     "Grants full access to manage all resources, but does not allow you to assign roles in "
     "Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
     true, LIST(all_actions), LIST(contrib_not_actions), NONE, NONE, LIST(root_scope)},
    {KL_ROLE_READER, "Reader", "View all resources, but does not allow you to make any changes.",
     true, LIST(read_actions), NONE, NONE, NONE, LIST(root_scope)},
    {KL_ROLE_USER_ACCESS_ADMIN, "User Access Administrator",
     "Lets you manage user access to Azure resources.", true, LIST(uaa_actions), NONE, NONE, NONE,
     LIST(root_scope)},
    {KL_ROLE_RBAC_ADMIN, "Role Based Access Control Administrator",
     "Manage access to Azure resources by assigning roles using Azure RBAC. This role does "
     "not allow you to manage access using other ways, such as Azure Policy.",
     true, LIST(rbac_admin_actions), NONE, NONE, NONE, LIST(root_scope)},
    {KL_ROLE_MI_OPERATOR, "Managed Identity Operator", "Read and Assign User Assigned Identity",
     true, LIST(mi_operator_actions), NONE, NONE, NONE, LIST(root_scope)},
    {KL_ROLE_MI_CONTRIBUTOR, "Managed Identity Contributor",
     "Create, Read, Update, and Delete User Assigned Identity", true, LIST(mi_contrib_actions),
     NONE, NONE, NONE, LIST(root_scope)},
};

const kl_rbac_role_def *kl_rbac_builtin_roles(size_t *n)
{
    *n = N(builtins);
    return builtins;
}

int kl_rbac_role_guid(const char *id, const char **guid)
{
    *guid = NULL;
    if (!id)
        return KL_EINVAL;
    size_t n = strlen(id);
    if (kl_uuid_valid(id, n)) {
        *guid = id;
        return 0;
    }
    static const char marker[] = "/roleDefinitions/";
    size_t m = sizeof(marker) - 1;
    if (n < m + KL_UUID_LEN)
        return KL_EINVAL;
    const char *g = id + n - KL_UUID_LEN;
    if (strncasecmp(g - m, marker, m) != 0 || !kl_uuid_valid(g, KL_UUID_LEN))
        return KL_EINVAL;
    *guid = g;
    return 0;
}

const kl_rbac_role_def *kl_rbac_builtin_find(const char *id)
{
    const char *g;
    if (kl_rbac_role_guid(id, &g))
        return NULL;
    for (size_t i = 0; i < N(builtins); i++)
        if (strncasecmp(builtins[i].id, g, KL_UUID_LEN) == 0)
            return &builtins[i];
    return NULL;
}

const kl_rbac_role_def *kl_rbac_builtin_find_name(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N(builtins); i++)
        if (strcasecmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}
