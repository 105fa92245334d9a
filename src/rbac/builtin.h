/* Azure's built-in roles that matter to keyless, with Azure's GUIDs, names, descriptions
 * and permission lists, so scripts and templates written for Azure work unchanged.
 * Static data: built-in roles cannot be changed or deleted. */
#ifndef KL_RBAC_BUILTIN_H
#define KL_RBAC_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/ids.h"
#include "rbac/rbac.h"

#define KL_ROLE_OPENAI_USER "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
#define KL_ROLE_OPENAI_CONTRIBUTOR "a001fd3d-188f-4b5d-821b-7da978bf7442"
#define KL_ROLE_CS_USER "a97b65f3-24c7-4388-baec-2e87135dc908"
#define KL_ROLE_CS_CONTRIBUTOR "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68"
#define KL_ROLE_CS_USAGES_READER "bba48692-92b0-4667-a9ad-c31c7b334ac2"
#define KL_ROLE_OWNER KL_ROLE_OWNER_ID
#define KL_ROLE_CONTRIBUTOR "b24988ac-6180-42a0-ab88-20f7382dd24c"
#define KL_ROLE_READER "acdd72a7-3385-48ef-bd42-f606fba81ae7"
#define KL_ROLE_USER_ACCESS_ADMIN "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
#define KL_ROLE_RBAC_ADMIN "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
#define KL_ROLE_MI_OPERATOR "f1a07417-d97a-45cb-824c-7a7467783830"
#define KL_ROLE_MI_CONTRIBUTOR "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59"

/* All built-in roles, in a fixed order; *n gets the count. Never NULL. */
const kl_rbac_role_def *kl_rbac_builtin_roles(size_t *n);

/* A built-in by GUID, or by a role definition id ending in "/roleDefinitions/{guid}",
 * case-insensitive; NULL if none. */
const kl_rbac_role_def *kl_rbac_builtin_find(const char *role_definition_id);

/* A built-in by roleName, case-insensitive; NULL if none. */
const kl_rbac_role_def *kl_rbac_builtin_find_name(const char *role_name);

/* Extracts the GUID from a bare GUID or an id ending in "/roleDefinitions/{guid}" (either
 * case). On success *guid points into id (36 bytes, not NUL-terminated unless id ends
 * there). 0 or KL_EINVAL. */
int kl_rbac_role_guid(const char *role_definition_id, const char **guid);

#endif
