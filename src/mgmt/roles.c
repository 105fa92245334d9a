/* Microsoft.Authorization bodies: role definitions and role assignments in and out (see
 * roles.h). Refusals use Azure's codes; nothing a client sent is echoed unless it is a
 * validated GUID. */
#include "mgmt/roles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "policy/policy_role.h"
#include "rbac/builtin.h"
#include "rbac/scope.h"

#define AUTHZ_PROVIDER "/providers/Microsoft.Authorization"

int kl_roles_authz_id(const char *scope, const char *kind, const char *name, char *out,
                      size_t outlen)
{
    const char *prefix = (!scope || strcmp(scope, "/") == 0) ? "" : scope;
    int n = snprintf(out, outlen, "%s" AUTHZ_PROVIDER "/%s/%s", prefix, kind, name);
    return (n < 0 || (size_t)n >= outlen) ? KL_ETOOBIG : 0;
}

int kl_roles_assignment_definition_id(const char *scope, const char *role_guid, char *out,
                                      size_t outlen)
{
    static const char subs[] = "/subscriptions/";
    size_t prefix = 0;
    if (scope && kl_str_istarts(scope, subs)) {
        const char *end = strchr(scope + sizeof(subs) - 1, '/');
        prefix = end ? (size_t)(end - scope) : strlen(scope);
    }
    int n = snprintf(out, outlen, "%.*s" AUTHZ_PROVIDER "/roleDefinitions/%s", (int)prefix,
                     prefix ? scope : "", role_guid);
    return (n < 0 || (size_t)n >= outlen) ? KL_ETOOBIG : 0;
}

/* ---------------------------------------------------------------- role definitions */

/* o with p as its "properties" when ok says every member was set; otherwise, or when
 * that set fails, NULL with both freed. Takes o and p (either may be NULL when !ok). */
static json_t *with_properties(json_t *o, json_t *p, bool ok)
{
    if (ok && json_object_set_new(o, "properties", p) == 0)
        return o;
    if (!ok)
        json_decref(p);
    json_decref(o);
    return NULL;
}

json_t *kl_roles_definition_json(const kl_rbac_role_def *def, const char *scope, int64_t created_at,
                                 int64_t updated_at)
{
    char id[KL_MAX_SCOPE + 128];
    if (kl_roles_authz_id(scope, "roleDefinitions", def->id, id, sizeof(id)))
        return NULL;
    json_t *o = json_object();
    json_t *p = json_object();
    bool ok =
        o && p && !kl_arm_json_set(o, "id", json_string(id)) &&
        !kl_arm_json_set(o, "name", json_string(def->id)) &&
        !kl_arm_json_set(o, "type", json_string(KL_ARM_ROLE_DEFINITION_TYPE)) &&
        !kl_arm_json_set(p, "roleName", json_string(def->name)) &&
        !kl_arm_json_set(p, "type", json_string(def->builtin ? "BuiltInRole" : "CustomRole")) &&
        !kl_arm_json_set(p, "description", json_string(def->description ? def->description : "")) &&
        !kl_arm_json_set(p, "assignableScopes", kl_policy_role_scopes_json(def)) &&
        !kl_arm_json_set(p, "permissions", kl_policy_role_permissions_json(def)) &&
        !kl_arm_json_set(p, "createdOn",
                         def->builtin ? json_string(KL_ARM_BUILTIN_ROLE_TIME)
                                      : kl_arm_json_time(created_at)) &&
        !kl_arm_json_set(p, "updatedOn",
                         def->builtin ? json_string(KL_ARM_BUILTIN_ROLE_TIME)
                                      : kl_arm_json_time(updated_at)) &&
        !kl_arm_json_set(p, "createdBy", json_null()) &&
        !kl_arm_json_set(p, "updatedBy", json_null());
    return with_properties(o, p, ok);
}

void kl_roles_definition_input_free(kl_role_input *in)
{
    if (!in)
        return;
    free(in->name);
    free(in->description);
    json_decref(in->assignable_scopes);
    json_decref(in->permissions);
    memset(in, 0, sizeof(*in));
}

static int invalid_role(kl_arm_error *e, const char *why)
{
    kl_arm_error_set(e, 400, "InvalidRoleDefinition", "The role definition is invalid: %s.", why);
    return KL_EINVAL;
}

/* Canonical assignable scopes, each at or below request_scope, duplicates dropped. */
static int parse_assignable_scopes(const json_t *v, const char *request_scope, json_t **out,
                                   kl_arm_error *e)
{
    *out = NULL;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return invalid_role(e, "assignableScopes must be a non-empty array of scopes");
    if (json_array_size(v) > KL_MAX_ASSIGNABLE_SCOPES)
        return invalid_role(e, "assignableScopes has too many entries");
    json_t *list = json_array();
    if (!list)
        return KL_ENOMEM;
    kl_scope above;
    if (kl_scope_parse(request_scope, strlen(request_scope), &above)) {
        json_decref(list);
        return invalid_role(e, "the request scope is invalid");
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        char canon[KL_MAX_SCOPE + 1];
        kl_arm_error ignore;
        kl_scope sc;
        const char *s = json_string_value(item);
        if (!s || json_string_length(item) == 0 ||
            kl_arm_canonical_scope(s, json_string_length(item), canon, &ignore) ||
            strlen(s) != json_string_length(item) || kl_scope_parse(canon, strlen(canon), &sc)) {
            json_decref(list);
            return invalid_role(e, "an assignable scope is not a valid scope");
        }
        if (!kl_scope_covers(&above, &sc)) {
            json_decref(list);
            return invalid_role(e, "every assignable scope must lie at or below the scope the "
                                   "role is created at");
        }
        bool dup = false;
        size_t j;
        const json_t *have;
        json_array_foreach(list, j, have)
        {
            dup = dup || kl_str_ieq(json_string_value(have), canon);
        }
        if (!dup && json_array_append_new(list, json_string(canon))) {
            json_decref(list);
            return KL_ENOMEM;
        }
    }
    *out = list;
    return 0;
}

/* 1..max bytes without control characters. */
static bool plain_text(const char *s, size_t len, size_t max)
{
    if (!s || len == 0 || len > max || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int kl_roles_parse_definition(const json_t *body, const char *role_id, const char *request_scope,
                              kl_role_input *in, kl_arm_error *e)
{
    memset(in, 0, sizeof(*in));
    kl_policy_role role = {0};
    int err = 0;
    if (kl_rbac_builtin_find(role_id)) {
        kl_arm_error_set(e, 400, "BuiltInRoleCannotBeModified",
                         "The role definition '%s' is a built-in role and cannot be modified "
                         "or deleted.",
                         role_id);
        return KL_EPERM;
    }
    const json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props))
        return invalid_role(e, "properties is required");
    const json_t *name = json_object_get(props, "roleName");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return invalid_role(e, "roleName is required");
    if (!plain_text(json_string_value(name), json_string_length(name), KL_MAX_ROLE_NAME))
        return invalid_role(
            e, "roleName must be at most " KL_STR(KL_MAX_ROLE_NAME) " characters without control "
                                                                    "characters");
    const json_t *desc = json_object_get(props, "description");
    if (desc && !json_is_null(desc) &&
        (!json_is_string(desc) ||
         (json_string_length(desc) > 0 &&
          !plain_text(json_string_value(desc), json_string_length(desc), KL_MAX_ROLE_DESCRIPTION))))
        return invalid_role(e, "description must be a string of at most " KL_STR(
                                   KL_MAX_ROLE_DESCRIPTION) " characters");
    const json_t *type = json_object_get(props, "type");
    if (type && !json_is_null(type) &&
        (!json_is_string(type) || json_string_length(type) != strlen("CustomRole") ||
         !kl_str_ieq(json_string_value(type), "CustomRole")))
        return invalid_role(e, "type must be CustomRole");

    in->name = strdup(json_string_value(name));
    in->description = strdup(json_is_string(desc) ? json_string_value(desc) : "");
    if (!in->name || !in->description) {
        err = KL_ENOMEM;
        goto out;
    }
    if ((err = parse_assignable_scopes(json_object_get(props, "assignableScopes"), request_scope,
                                       &in->assignable_scopes, e)))
        goto out;
    char why[160] = "";
    err = kl_policy_role_decode(role_id, in->name, in->description,
                                json_object_get(props, "permissions"), in->assignable_scopes, &role,
                                why, sizeof(why));
    if (err == KL_EINVAL) {
        err = invalid_role(e, why);
        goto out;
    }
    if (err)
        goto out;
    if (role.def.n_actions == 0 && role.def.n_data_actions == 0) {
        err = invalid_role(e, "permissions grant nothing: give at least one action or data "
                              "action");
        goto out;
    }
    err = kl_rbac_role_validate(&role.def, why, sizeof(why));
    if (err == KL_ECONFLICT) {
        kl_arm_error_set(e, 409, "RoleDefinitionWithSameNameExists",
                         "A role definition cannot be updated with a name that already exists: "
                         "a built-in role has this name.");
        goto out;
    }
    if (err) {
        err = invalid_role(e, why);
        goto out;
    }
    if (!(in->permissions = kl_policy_role_permissions_json(&role.def)))
        err = KL_ENOMEM;
out:
    kl_policy_role_clear(&role);
    if (err)
        kl_roles_definition_input_free(in);
    return err;
}

/* ---------------------------------------------------------------- role assignments */

void kl_roles_assignment_input_free(kl_assignment_input *in)
{
    if (!in)
        return;
    free(in->description);
    memset(in, 0, sizeof(*in));
}

static int bad_content(kl_arm_error *e, const char *what)
{
    kl_arm_error_set(e, 400, "InvalidRequestContent",
                     "The request content was invalid and could not be deserialized: %s.", what);
    return KL_EINVAL;
}

/* A bare GUID, or "{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
 * where scope is empty or valid. */
static bool role_definition_ref(const char *s, size_t len, char guid[KL_UUID_LEN + 1])
{
    static const char tail[] = AUTHZ_PROVIDER "/roleDefinitions/";
    const size_t tl = sizeof(tail) - 1;
    if (!s || strlen(s) != len || len > KL_MAX_SCOPE + tl + KL_UUID_LEN)
        return false;
    const char *g = s;
    if (!kl_uuid_valid(s, len)) {
        if (len < tl + KL_UUID_LEN)
            return false;
        g = s + len - KL_UUID_LEN;
        size_t prefix = len - KL_UUID_LEN - tl;
        if (!kl_uuid_valid(g, KL_UUID_LEN) || !kl_str_ieqn(s + prefix, tl, tail, tl))
            return false;
        kl_scope sc;
        if (prefix > 0 && kl_scope_parse(s, prefix, &sc))
            return false;
    }
    memcpy(guid, g, KL_UUID_LEN);
    guid[KL_UUID_LEN] = '\0';
    kl_arm_lower(guid);
    return true;
}

static const char *const principal_types[] = {"User", "Group", "ServicePrincipal", "ForeignGroup",
                                              "Device"};

int kl_roles_parse_assignment(const json_t *body, const char *tenant, kl_assignment_input *in,
                              kl_arm_error *e)
{
    memset(in, 0, sizeof(*in));
    const json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props))
        return bad_content(e, "properties is required");

    const json_t *rd = json_object_get(props, "roleDefinitionId");
    if (!json_is_string(rd))
        return bad_content(e, "properties.roleDefinitionId is required");
    if (!role_definition_ref(json_string_value(rd), json_string_length(rd), in->role_id)) {
        kl_arm_error_set(e, 400, "InvalidRoleDefinitionId",
                         "The role definition ID is not valid: use the role's GUID or "
                         "{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}.");
        return KL_EINVAL;
    }

    const json_t *pid = json_object_get(props, "principalId");
    if (!json_is_string(pid))
        return bad_content(e, "properties.principalId is required");
    const char *p = json_string_value(pid);
    if (!kl_uuid_valid(p, json_string_length(pid))) {
        kl_arm_error_set(e, 400, "PrincipalNotFound",
                         "Principal does not exist in the directory %s: principalId must be an "
                         "object id (GUID).",
                         tenant ? tenant : "");
        return KL_EINVAL;
    }
    memcpy(in->principal_id, p, KL_UUID_LEN + 1);
    kl_arm_lower(in->principal_id);

    const json_t *pt = json_object_get(props, "principalType");
    if (pt && !json_is_null(pt)) {
        const char *t = json_string_value(pt);
        if (t && strlen(t) != json_string_length(pt))
            t = NULL;
        for (size_t i = 0; t && i < sizeof(principal_types) / sizeof(principal_types[0]); i++)
            if (kl_str_ieq(t, principal_types[i]))
                snprintf(in->principal_type, sizeof(in->principal_type), "%s", principal_types[i]);
        if (!in->principal_type[0])
            return bad_content(e, "properties.principalType must be User, Group, ServicePrincipal, "
                                  "ForeignGroup or Device");
    }

    static const char *const unsupported[] = {"condition", "conditionVersion",
                                              "delegatedManagedIdentityResourceId"};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        const json_t *v = json_object_get(props, unsupported[i]);
        if (v && !json_is_null(v)) {
            kl_arm_error_set(e, 400, "InvalidRequestContent",
                             "properties.%s is not supported by keyless; leave it out.",
                             unsupported[i]);
            return KL_EINVAL;
        }
    }

    const json_t *desc = json_object_get(props, "description");
    if (desc && !json_is_null(desc)) {
        if (!json_is_string(desc) || (json_string_length(desc) > 0 &&
                                      !plain_text(json_string_value(desc), json_string_length(desc),
                                                  KL_ARM_MAX_ASSIGNMENT_DESCRIPTION)))
            return bad_content(
                e, "properties.description must be a string of at most " KL_STR(
                       KL_ARM_MAX_ASSIGNMENT_DESCRIPTION) " "
                                                          "characters without control characters");
        if (!(in->description = strdup(json_string_value(desc))))
            return KL_ENOMEM;
    }
    return 0;
}

json_t *kl_roles_assignment_json(const kl_store_role_assignment *ra, const char *principal_type)
{
    char id[KL_MAX_SCOPE + 128], rdid[256];
    if (kl_roles_authz_id(ra->scope, "roleAssignments", ra->name, id, sizeof(id)) ||
        kl_roles_assignment_definition_id(ra->scope, ra->role_id, rdid, sizeof(rdid)))
        return NULL;
    json_t *o = json_object();
    json_t *p = json_object();
    bool ok = o && p && !kl_arm_json_set(o, "id", json_string(id)) &&
              !kl_arm_json_set(o, "name", json_string(ra->name)) &&
              !kl_arm_json_set(o, "type", json_string(KL_ARM_ROLE_ASSIGNMENT_TYPE)) &&
              !kl_arm_json_set(p, "roleDefinitionId", json_string(rdid)) &&
              !kl_arm_json_set(p, "principalId", json_string(ra->principal_id)) &&
              !kl_arm_json_set(p, "principalType", json_string(principal_type)) &&
              !kl_arm_json_set(p, "scope", json_string(ra->scope)) &&
              !kl_arm_json_set(p, "description", kl_arm_json_string_or_null(ra->description)) &&
              !kl_arm_json_set(p, "condition", json_null()) &&
              !kl_arm_json_set(p, "conditionVersion", json_null()) &&
              !kl_arm_json_set(p, "createdOn", kl_arm_json_time(ra->created_at)) &&
              !kl_arm_json_set(p, "updatedOn", kl_arm_json_time(ra->updated_at)) &&
              !kl_arm_json_set(p, "createdBy", kl_arm_json_string_or_null(ra->created_by)) &&
              !kl_arm_json_set(p, "updatedBy", kl_arm_json_string_or_null(ra->updated_by)) &&
              !kl_arm_json_set(p, "delegatedManagedIdentityResourceId", json_null());
    return with_properties(o, p, ok);
}
