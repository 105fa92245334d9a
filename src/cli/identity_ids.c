/* The pure parts of the managed-identity commands; see identity_ids.h. */
#include "cli/identity_ids.h"

#include <string.h>

#include "cli/authz.h"
#include "common/err.h"
#include "common/util.h"

static const kl_cli_resource_type TYPES[] = {
    {"Microsoft.Web/sites", KL_CLI_WEB_API_VERSION, "site"},
    {"Microsoft.Compute/virtualMachines", KL_CLI_VM_API_VERSION, "vm"},
    {"Microsoft.CognitiveServices/accounts", "2024-10-01", "account"},
};

#define UAMI_TYPE "Microsoft.ManagedIdentity/userAssignedIdentities"

/* True if id is /subscriptions/{s}/resourceGroups/{g}/providers/{provider}/{name}. */
static bool is_id_of(const char *id, const char *provider)
{
    const char *p = id;
    static const char *const fixed[] = {"subscriptions", NULL, "resourceGroups", NULL, "providers"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (*p != '/')
            return false;
        p++;
        size_t n = strcspn(p, "/");
        if (n == 0 || (fixed[i] && !kl_str_ieqn(p, n, fixed[i], strlen(fixed[i]))))
            return false;
        p += n;
    }
    size_t pl = strlen(provider);
    if (*p != '/' || !kl_str_ieqn(p + 1, strnlen(p + 1, pl), provider, pl))
        return false;
    p += 1 + pl;
    return *p == '/' && p[1] && !strchr(p + 1, '/');
}

const kl_cli_resource_type *kl_cli_resource_kind(const char *id)
{
    for (size_t i = 0; id && i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (is_id_of(id, TYPES[i].provider))
            return &TYPES[i];
    return NULL;
}

int kl_cli_identity_id(const char *x, const char *sub, const char *rg, kl_buf *out)
{
    char why[128];
    if (x[0] == '/')
        return (kl_cli_scope_check(x, why, sizeof(why)) == 0 && is_id_of(x, UAMI_TYPE))
                   ? kl_buf_append_str(out, x)
                   : KL_EINVAL;
    if (!kl_cli_scope_segment_ok(x, strlen(x)) || !kl_cli_scope_segment_ok(sub, strlen(sub)) ||
        !kl_cli_scope_segment_ok(rg, strlen(rg)))
        return KL_EINVAL;
    return kl_buf_appendf(out, "/subscriptions/%s/resourceGroups/%s/providers/" UAMI_TYPE "/%s",
                          sub, rg, x);
}

static const char *type_of(bool system, bool user)
{
    return system && user ? "SystemAssigned, UserAssigned"
           : system       ? "SystemAssigned"
           : user         ? "UserAssigned"
                          : "None";
}

int kl_cli_identity_patch(const json_t *current, const char *uami, bool add, json_t **body,
                          bool *changes)
{
    *body = NULL;
    *changes = false;
    const char *t = json_string_value(json_object_get(current, "type"));
    bool system = t && strstr(t, "SystemAssigned");
    const json_t *map = json_object_get(current, "userAssignedIdentities");
    size_t n_user = json_is_object(map) ? json_object_size(map) : 0;
    bool has = false;
    const char *key;
    json_t *v;
    if (uami && n_user)
        json_object_foreach((json_t *)map, key, v)
        {
            has = has || kl_str_ieq(key, uami);
        }
    json_t *ident = NULL;
    if (!uami) {
        if (system == add)
            return 0;
        /* The user-assigned ones stay: a PATCH that names none keeps them. */
        ident = json_pack("{s:s}", "type", type_of(add, n_user > 0));
    } else if (add) {
        if (has)
            return 0;
        ident = json_pack("{s:s, s:{s:{}}}", "type", type_of(system, true),
                          "userAssignedIdentities", uami);
    } else {
        if (!has)
            return 0;
        /* null detaches it; when it was the last one the type says so instead. */
        ident = n_user > 1 ? json_pack("{s:s, s:{s:n}}", "type", type_of(system, true),
                                       "userAssignedIdentities", uami)
                           : json_pack("{s:s}", "type", type_of(system, false));
    }
    if (!ident || !(*body = json_pack("{s:o}", "identity", ident)))
        return KL_ENOMEM;
    *changes = true;
    return 0;
}
