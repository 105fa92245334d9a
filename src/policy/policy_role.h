/* Custom role definitions in their JSON form (Azure's "permissions" and
 * "assignableScopes" arrays, as the control plane receives them and the store keeps
 * them) decoded into the evaluator's kl_rbac_role_def, and encoded back. Shared by the
 * snapshot builder and the control plane so that both read a role the same way. */
#ifndef KL_POLICY_ROLE_H
#define KL_POLICY_ROLE_H

#include <jansson.h>
#include <stddef.h>

#include "rbac/rbac.h"
#include "store/store.h"

/* A decoded custom role. def's strings point into json and into the strings passed to
 * kl_policy_role_decode (id, name, description), which must outlive it. */
typedef struct kl_policy_role {
    kl_rbac_role_def def;
    json_t *json;      /* owned: {"permissions":[..],"assignableScopes":[..]} */
    const char **ptrs; /* owned: one array backing def's five lists */
} kl_policy_role;

/* Decodes permissions (an array of exactly one object with optional "actions",
 * "notActions", "dataActions", "notDataActions" arrays of strings; absent or null lists
 * are empty) and assignable_scopes (an array of strings). Both JSON values are only
 * referenced (json_incref). The role is not validated beyond its shape: call
 * kl_rbac_role_validate. 0, KL_ENOMEM, or KL_EINVAL with a short reason in err. */
int kl_policy_role_decode(const char *id, const char *name, const char *description,
                          const json_t *permissions, const json_t *assignable_scopes,
                          kl_policy_role *out, char *err, size_t errlen);
/* The same from a store row (its JSON columns are parsed). */
int kl_policy_role_from_store(const kl_store_role_definition *rd, kl_policy_role *out, char *err,
                              size_t errlen);
void kl_policy_role_clear(kl_policy_role *r);

/* Azure's "permissions" value for def: [{"actions":[..],"notActions":[..],
 * "dataActions":[..],"notDataActions":[..]}]. NULL on allocation failure. */
json_t *kl_policy_role_permissions_json(const kl_rbac_role_def *def);
/* The first element of that array alone (one entry of the permissions API). */
json_t *kl_policy_role_permission_json(const kl_rbac_role_def *def);
/* ["/", ...] for def's assignable scopes. */
json_t *kl_policy_role_scopes_json(const kl_rbac_role_def *def);

#endif
