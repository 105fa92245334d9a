/* Internal to mgmt/: the Microsoft.Authorization bodies (api-version 2022-04-01) — role
 * definitions and role assignments as clients PUT them (validated) and as we answer —
 * without any HTTP, so the exact shapes and refusals are unit-tested. */
#ifndef KL_MGMT_ROLES_H
#define KL_MGMT_ROLES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "mgmt/arm.h"
#include "rbac/rbac.h"
#include "store/store.h"

#define KL_ARM_ROLE_DEFINITION_TYPE "Microsoft.Authorization/roleDefinitions"
#define KL_ARM_ROLE_ASSIGNMENT_TYPE "Microsoft.Authorization/roleAssignments"
/* createdOn/updatedOn of the built-in roles (static data without a history). */
#define KL_ARM_BUILTIN_ROLE_TIME "2015-02-02T21:55:09.000Z"

/* "{scope}/providers/Microsoft.Authorization/{kind}/{name}" with the root scope written
 * as "" (so "/providers/..."), into out. KL_ETOOBIG if it does not fit. */
int kl_roles_authz_id(const char *scope, const char *kind, const char *name, char *out,
                      size_t outlen);
/* The roleDefinitionId an assignment at scope shows for role_guid: subscription-scoped
 * ("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}") when
 * scope lies in a subscription, else "/providers/Microsoft.Authorization/...". */
int kl_roles_assignment_definition_id(const char *scope, const char *role_guid, char *out,
                                      size_t outlen);

/* A role definition as ARM shows it at scope (the id echoes the request scope).
 * Built-ins carry KL_ARM_BUILTIN_ROLE_TIME; custom roles their stored times. NULL on
 * allocation failure. */
json_t *kl_roles_definition_json(const kl_rbac_role_def *def, const char *scope, int64_t created_at,
                                 int64_t updated_at);

/* A validated custom role PUT. Strings malloc'd; JSON values owned (one reference). */
typedef struct kl_role_input {
    char *name;
    char *description;         /* "" when absent */
    json_t *assignable_scopes; /* canonical scopes */
    json_t *permissions;       /* [{actions, notActions, dataActions, notDataActions}] */
} kl_role_input;

/* Validates a role definition PUT body {"properties":{"roleName","description",
 * "assignableScopes","permissions"}} for the role role_id (a lower-case GUID) created at
 * request_scope (canonical). Errors, with e set:
 *   KL_EPERM     400 BuiltInRoleCannotBeModified (role_id is a built-in's)
 *   KL_ECONFLICT 409 RoleDefinitionWithSameNameExists (a built-in has the name)
 *   KL_EINVAL    400 InvalidRoleDefinition (empty name, no permissions, bad action,
 *                invalid/empty assignableScopes or one outside request_scope, ...)
 *   KL_ENOMEM */
int kl_roles_parse_definition(const json_t *body, const char *role_id, const char *request_scope,
                              kl_role_input *in, kl_arm_error *e);
void kl_roles_definition_input_free(kl_role_input *in);

/* A validated role assignment PUT. */
typedef struct kl_assignment_input {
    char role_id[KL_UUID_LEN + 1];      /* lower-case role GUID */
    char principal_id[KL_UUID_LEN + 1]; /* lower-case object id */
    char principal_type[32];            /* canonical spelling of the given type, "" when absent */
    char *description;                  /* malloc'd, or NULL when absent/null */
} kl_assignment_input;

/* Validates {"properties":{"roleDefinitionId","principalId","principalType"?,
 * "description"?}}. roleDefinitionId is a bare GUID or "{scope}/providers/
 * Microsoft.Authorization/roleDefinitions/{guid}" with any valid scope. Conditions and
 * delegated identities are refused (not supported). tenant names the directory in the
 * PrincipalNotFound message. 0, KL_ENOMEM, or KL_EINVAL with e set: 400
 * InvalidRequestContent, InvalidRoleDefinitionId, PrincipalNotFound (not a GUID). */
int kl_roles_parse_assignment(const json_t *body, const char *tenant, kl_assignment_input *in,
                              kl_arm_error *e);
void kl_roles_assignment_input_free(kl_assignment_input *in);

/* A role assignment as ARM shows it. principal_type is the ARM spelling (managed
 * identities are "ServicePrincipal"). NULL on allocation failure. */
json_t *kl_roles_assignment_json(const kl_store_role_assignment *ra, const char *principal_type);

#endif
