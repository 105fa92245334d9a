/* Microsoft.Authorization/roleDefinitions at any scope: the built-in roles (static,
 * visible everywhere, never changed) and custom roles (kept in the store, visible where
 * one of their assignable scopes covers or lies under the request scope). Changing or
 * deleting a custom role needs the action at each of its current assignable scopes too,
 * so nobody narrows or removes a role they hold no authority over. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "mgmt/internal.h"
#include "mgmt/roles.h"
#include "policy/policy_role.h"
#include "rbac/builtin.h"
#include "rbac/scope.h"

#define RD_WRITE "Microsoft.Authorization/roleDefinitions/write"
#define RD_DELETE "Microsoft.Authorization/roleDefinitions/delete"

static void not_found(kl_mgmt_call *c)
{
    kl_mgmt_fail(c, 404, "RoleDefinitionDoesNotExist",
                 "The specified role definition with ID '%s' does not exist.",
                 c->names.role_definition);
}

/* True if one of def's assignable scopes covers scope or lies under it. */
static bool visible_at(const kl_rbac_role_def *def, const char *scope)
{
    kl_scope at, a;
    if (kl_scope_parse(scope, strlen(scope), &at))
        return false;
    for (size_t i = 0; i < def->n_assignable_scopes; i++) {
        const char *s = def->assignable_scopes[i];
        if (!kl_scope_parse(s, strlen(s), &a) &&
            (kl_scope_covers(&a, &at) || kl_scope_covers(&at, &a)))
            return true;
    }
    return false;
}

/* Reads the custom role c names, decoded into *role (pointing into *row). 0,
 * KL_ENOTFOUND, or another error (answered with 500). */
static int load_custom(kl_mgmt_call *c, kl_store_role_definition **row, kl_policy_role *role)
{
    *row = NULL;
    memset(role, 0, sizeof(*role));
    int err = kl_store_get_role_definition(c->m->store, c->names.role_definition, row);
    if (!err)
        err = kl_policy_role_from_store(*row, role, NULL, 0);
    if (err && err != KL_ENOTFOUND)
        kl_mgmt_fail_internal(c, err, "get_role_definition");
    if (err) {
        kl_store_role_definition_free(*row);
        *row = NULL;
    }
    return err;
}

static json_t *custom_json(const kl_store_role_definition *row, const kl_policy_role *role,
                           const char *scope)
{
    return kl_roles_definition_json(&role->def, scope, row->created_at, row->updated_at);
}

/* ---------------------------------------------------------------- list */

typedef struct role_filter {
    const char *name; /* roleName eq; NULL = any */
    int type;         /* -1 any, 0 custom, 1 built-in */
} role_filter;

static bool parse_role_filter(kl_mgmt_call *c, kl_arm_filter_term *terms, role_filter *f)
{
    f->name = NULL;
    f->type = -1;
    size_t n = 0;
    if (!kl_mgmt_filter_terms(c, "InvalidFilterInQueryString", terms, &n))
        return false;
    for (size_t i = 0; i < n; i++) {
        const kl_arm_filter_term *t = &terms[i];
        if (!t->call && kl_str_ieq(t->name, "roleName") && !f->name) {
            f->name = t->value;
        } else if (!t->call && kl_str_ieq(t->name, "type") && f->type < 0 &&
                   (kl_str_ieq(t->value, "CustomRole") || kl_str_ieq(t->value, "BuiltInRole"))) {
            f->type = kl_str_ieq(t->value, "BuiltInRole");
        } else {
            kl_mgmt_fail(c, 400, "InvalidFilterInQueryString",
                         "The filter is not supported: use roleName eq '{name}' or "
                         "type eq 'BuiltInRole'|'CustomRole'.");
            return false;
        }
    }
    return true;
}

static bool keeps(const role_filter *f, const kl_rbac_role_def *def)
{
    return (!f->name || kl_str_ieq(f->name, def->name)) &&
           (f->type < 0 || f->type == (int)def->builtin);
}

void kl_mgmt_role_definitions_list(kl_mgmt_call *c)
{
    kl_arm_filter_term terms[KL_ARM_MAX_FILTER_TERMS];
    role_filter f;
    if (!parse_role_filter(c, terms, &f))
        return;
    kl_store_role_definition **rows = NULL;
    size_t nrows = 0;
    int err = kl_store_list_role_definitions(c->m->store, &rows, &nrows);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_role_definitions");
        return;
    }
    json_t *items = json_array();
    size_t nb = 0;
    const kl_rbac_role_def *builtins = kl_rbac_builtin_roles(&nb);
    for (size_t i = 0; items && i < nb; i++) {
        if (keeps(&f, &builtins[i]) &&
            json_array_append_new(items,
                                  kl_roles_definition_json(&builtins[i], c->names.scope, 0, 0))) {
            json_decref(items);
            items = NULL;
        }
    }
    for (size_t i = 0; items && i < nrows; i++) {
        kl_policy_role role;
        if (kl_policy_role_from_store(rows[i], &role, NULL, 0))
            continue; /* left out of the snapshot too (logged there) */
        if (keeps(&f, &role.def) && visible_at(&role.def, c->names.scope) &&
            json_array_append_new(items, custom_json(rows[i], &role, c->names.scope))) {
            json_decref(items);
            items = NULL;
        }
        kl_policy_role_clear(&role);
    }
    kl_store_role_definitions_free(rows, nrows);
    json_t *body = items ? json_pack("{s:o}", "value", items) : NULL;
    kl_mgmt_reply_json(c, 200, body);
}

/* ---------------------------------------------------------------- one */

void kl_mgmt_role_definition_get(kl_mgmt_call *c)
{
    const kl_rbac_role_def *b = kl_rbac_builtin_find(c->names.role_definition);
    if (b) {
        kl_mgmt_reply_json(c, 200, kl_roles_definition_json(b, c->names.scope, 0, 0));
        return;
    }
    kl_store_role_definition *row = NULL;
    kl_policy_role role;
    int err = load_custom(c, &row, &role);
    if (err == KL_ENOTFOUND || (!err && !visible_at(&role.def, c->names.scope)))
        not_found(c);
    else if (!err)
        kl_mgmt_reply_json(c, 200, custom_json(row, &role, c->names.scope));
    kl_policy_role_clear(&role);
    kl_store_role_definition_free(row);
}

/* Authorises action at each of def's assignable scopes (answering 403 on the first
 * that is denied). */
static bool authorize_scopes(kl_mgmt_call *c, const kl_rbac_role_def *def, const char *action)
{
    for (size_t i = 0; i < def->n_assignable_scopes; i++)
        if (!kl_mgmt_authorize(c, action, def->assignable_scopes[i]))
            return false;
    return true;
}

/* True if every assignment of role_id lies under one of the (canonical) scopes; else
 * answers 409. false with a 500 on a store error. */
static bool assignments_stay_covered(kl_mgmt_call *c, const char *role_id, const json_t *scopes)
{
    kl_store_role_assignment **list = NULL;
    size_t n = 0;
    int err = kl_store_list_role_assignments(c->m->store, NULL, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_role_assignments");
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (strcmp(list[i]->role_id, role_id) != 0)
            continue;
        bool covered = false;
        size_t j;
        const json_t *s;
        json_array_foreach(scopes, j, s)
        {
            bool cov = false;
            if (!covered && kl_scope_covers_str(json_string_value(s), list[i]->scope, &cov) == 0)
                covered = cov;
        }
        ok = covered;
    }
    kl_store_role_assignments_free(list, n);
    if (!ok)
        kl_mgmt_fail(c, 409, "RoleDefinitionHasAssignments",
                     "The role definition has assignments at scopes its new assignableScopes "
                     "do not cover; delete those assignments first.");
    return ok;
}

void kl_mgmt_role_definition_put(kl_mgmt_call *c)
{
    kl_role_input in = {0};
    kl_arm_error e = {0};
    kl_store_role_definition *old = NULL, *row = NULL;
    kl_policy_role old_role = {0}, role = {0};
    char *scopes = NULL, *perms = NULL;
    int err = kl_roles_parse_definition(c->body, c->names.role_definition, c->names.scope, &in, &e);
    if (err == KL_ENOMEM) {
        kl_mgmt_fail_internal(c, err, "parse_role_definition");
        return;
    }
    if (err) {
        kl_mgmt_reply_error(c, &e);
        return;
    }
    err = load_custom(c, &old, &old_role);
    if (err && err != KL_ENOTFOUND)
        goto out;
    if (!err && (!authorize_scopes(c, &old_role.def, RD_WRITE) ||
                 !assignments_stay_covered(c, c->names.role_definition, in.assignable_scopes)))
        goto out;
    scopes = json_dumps(in.assignable_scopes, JSON_COMPACT);
    perms = json_dumps(in.permissions, JSON_COMPACT);
    if (!scopes || !perms) {
        kl_mgmt_fail_internal(c, KL_ENOMEM, "put_role_definition");
        goto out;
    }
    int64_t now = kl_now_unix();
    kl_store_role_definition rd = {.role_id = c->names.role_definition,
                                   .role_name = in.name,
                                   .description = in.description,
                                   .assignable_scopes = scopes,
                                   .permissions = perms,
                                   .created_at = now,
                                   .updated_at = now};
    bool created = false;
    err = kl_store_put_role_definition(c->m->store, &rd, &created);
    if (err == KL_ECONFLICT) {
        kl_mgmt_fail(c, 409, "RoleDefinitionWithSameNameExists",
                     "A role definition cannot be updated with a name that already exists.");
        goto out;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "put_role_definition");
        goto out;
    }
    kl_mgmt_log_change(c, created ? "role_definition_created" : "role_definition_updated",
                       c->names.role_definition);
    kl_mgmt_applied(c);
    err = load_custom(c, &row, &role);
    if (err == KL_ENOTFOUND)
        kl_mgmt_fail_internal(c, err, "get_role_definition");
    else if (!err)
        kl_mgmt_reply_json(c, created ? 201 : 200, custom_json(row, &role, c->names.scope));
out:
    free(scopes);
    free(perms);
    kl_policy_role_clear(&old_role);
    kl_policy_role_clear(&role);
    kl_store_role_definition_free(old);
    kl_store_role_definition_free(row);
    kl_roles_definition_input_free(&in);
}

void kl_mgmt_role_definition_delete(kl_mgmt_call *c)
{
    if (kl_rbac_builtin_find(c->names.role_definition)) {
        kl_mgmt_fail(c, 400, "BuiltInRoleCannotBeModified",
                     "The role definition '%s' is a built-in role and cannot be modified or "
                     "deleted.",
                     c->names.role_definition);
        return;
    }
    kl_store_role_definition *row = NULL;
    kl_policy_role role;
    int err = load_custom(c, &row, &role);
    if (err == KL_ENOTFOUND || (!err && !visible_at(&role.def, c->names.scope))) {
        kl_mgmt_reply_empty(c, 204);
        goto out;
    }
    if (err || !authorize_scopes(c, &role.def, RD_DELETE))
        goto out;
    /* The body is rendered before the row goes. */
    json_t *body = custom_json(row, &role, c->names.scope);
    err = kl_store_delete_role_definition(c->m->store, c->names.role_definition);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_reply_empty(c, 204);
    } else if (err == KL_ECONFLICT) {
        kl_mgmt_fail(c, 409, "RoleDefinitionHasAssignments",
                     "There are existing role assignments referencing role '%s'; delete them "
                     "first.",
                     c->names.role_definition);
    } else if (err) {
        kl_mgmt_fail_internal(c, err, "delete_role_definition");
    } else {
        kl_mgmt_log_change(c, "role_definition_deleted", c->names.role_definition);
        kl_mgmt_applied(c);
        kl_mgmt_reply_json(c, 200, body);
        body = NULL;
    }
    json_decref(body);
out:
    kl_policy_role_clear(&role);
    kl_store_role_definition_free(row);
}
