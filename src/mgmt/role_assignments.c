/* Microsoft.Authorization/roleAssignments at any scope: create (checked at the
 * assignment's own scope, so nobody grants above where they hold roleAssignments/write),
 * read, delete and list with Azure's $filter. Every change is one store transaction
 * followed by a snapshot rebuild, so the very next check sees it. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "directory/directory.h"
#include "mgmt/internal.h"
#include "mgmt/roles.h"
#include "rbac/scope.h"

/* The ARM principalType for a store type string. */
static const char *arm_type(const char *store_type)
{
    kl_principal_type t;
    return kl_directory_principal_type_parse(store_type, &t) ? "Unknown"
                                                             : kl_directory_principal_type_arm(t);
}

static json_t *assignment_json(const kl_store_role_assignment *ra)
{
    return kl_roles_assignment_json(ra, arm_type(ra->principal_type));
}

static void not_found(kl_mgmt_call *c)
{
    kl_mgmt_fail(c, 404, "RoleAssignmentNotFound", "The role assignment '%s' is not found.",
                 c->names.role_assignment);
}

/* The assignment the path names, if it exists at the path's scope. 0, KL_ENOTFOUND, or
 * another error (answered 500). */
static int find_assignment(kl_mgmt_call *c, kl_store_role_assignment **out)
{
    *out = NULL;
    kl_store_role_assignment *ra = NULL;
    int err = kl_store_get_role_assignment(c->m->store, c->names.role_assignment, &ra);
    if (err == 0 && !kl_str_ieq(ra->scope, c->names.scope)) {
        /* It lives at another scope: from here, it does not exist (and this caller was
         * authorised at this scope, not at that one). */
        kl_store_role_assignment_free(ra);
        ra = NULL;
        err = KL_ENOTFOUND;
    }
    if (err && err != KL_ENOTFOUND)
        kl_mgmt_fail_internal(c, err, "get_role_assignment");
    *out = ra;
    return err;
}

/* ---------------------------------------------------------------- create */

void kl_mgmt_role_assignment_put(kl_mgmt_call *c)
{
    kl_assignment_input in;
    kl_arm_error e = {0};
    const char *scope = c->names.scope;
    int err = kl_roles_parse_assignment(c->body, kl_mgmt_tenant(c), &in, &e);
    if (err == KL_ENOMEM) {
        kl_mgmt_fail_internal(c, err, "parse_role_assignment");
        return;
    }
    if (err) {
        kl_mgmt_reply_error(c, &e);
        return;
    }
    const kl_rbac_role_def *role = kl_rbac_index_role(kl_snapshot_rbac(c->snap), in.role_id);
    const kl_principal *p = kl_snapshot_principal(c->snap, in.principal_id);
    if (!role) {
        kl_mgmt_fail(c, 400, "RoleDefinitionDoesNotExist",
                     "The specified role definition with ID '%s' does not exist.", in.role_id);
        goto out;
    }
    if (!p) {
        kl_mgmt_principal_not_found(c, in.principal_id);
        goto out;
    }
    if (in.principal_type[0] &&
        !kl_str_ieq(in.principal_type, kl_directory_principal_type_arm(p->type))) {
        kl_mgmt_fail(c, 400, "UnmatchedPrincipalType",
                     "The PrincipalId '%s' has type '%s', which is different from specified "
                     "PrincipalType '%s'.",
                     in.principal_id, kl_directory_principal_type_arm(p->type), in.principal_type);
        goto out;
    }
    if (!kl_rbac_role_assignable_at(role, scope)) {
        kl_mgmt_fail(c, 400, "RoleAssignmentScopeNotAssignable",
                     "The role '%s' is not available to be assigned at the requested scope "
                     "'%s': it lies outside the role's assignableScopes.",
                     role->name, scope);
        goto out;
    }
    int64_t now = kl_now_unix();
    kl_store_role_assignment ra = {.name = c->names.role_assignment,
                                   .scope = (char *)scope,
                                   .principal_id = in.principal_id,
                                   .role_id = in.role_id,
                                   .description = in.description,
                                   .created_at = now,
                                   .updated_at = now,
                                   .created_by = c->caller,
                                   .updated_by = c->caller};
    bool created = false;
    err = kl_store_put_role_assignment(c->m->store, &ra, role->builtin, &created);
    switch (err) {
    case 0: break;
    case KL_ENOTFOUND: kl_mgmt_principal_not_found(c, in.principal_id); goto out;
    case KL_EINVAL:
        kl_mgmt_fail(c, 400, "RoleDefinitionDoesNotExist",
                     "The specified role definition with ID '%s' does not exist.", in.role_id);
        goto out;
    case KL_ECONFLICT:
        kl_mgmt_fail(c, 400, "RoleAssignmentUpdateNotPermitted",
                     "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                     "updated.");
        goto out;
    case KL_EEXIST:
        kl_mgmt_fail(c, 409, "RoleAssignmentExists", "The role assignment already exists.");
        goto out;
    default: kl_mgmt_fail_internal(c, err, "put_role_assignment"); goto out;
    }
    kl_mgmt_log_change(c, created ? "role_assignment_created" : "role_assignment_updated",
                       c->names.role_assignment);
    kl_mgmt_applied(c);
    kl_store_role_assignment *got = NULL;
    if (find_assignment(c, &got) == KL_ENOTFOUND)
        kl_mgmt_fail_internal(c, KL_ENOTFOUND, "get_role_assignment");
    else if (got)
        kl_mgmt_reply_json(c, 201, assignment_json(got)); /* Azure answers 201 to a re-PUT */
    kl_store_role_assignment_free(got);
out:
    kl_roles_assignment_input_free(&in);
}

/* ---------------------------------------------------------------- read, delete */

void kl_mgmt_role_assignment_get(kl_mgmt_call *c)
{
    kl_store_role_assignment *ra = NULL;
    int err = find_assignment(c, &ra);
    if (err == KL_ENOTFOUND)
        not_found(c);
    else if (!err)
        kl_mgmt_reply_json(c, 200, assignment_json(ra));
    kl_store_role_assignment_free(ra);
}

void kl_mgmt_role_assignment_delete(kl_mgmt_call *c)
{
    kl_store_role_assignment *ra = NULL;
    int err = find_assignment(c, &ra);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_reply_empty(c, 204);
        return;
    }
    if (err)
        return;
    json_t *body = assignment_json(ra);
    err = kl_store_delete_role_assignment(c->m->store, ra->name);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_reply_empty(c, 204);
    } else if (err == KL_EPERM) {
        kl_mgmt_fail(c, 409, "LastOwnerCannotBeRemoved",
                     "This is the last Owner role assignment at scope '/' of an enabled "
                     "principal; assign Owner at '/' to another principal first.");
    } else if (err) {
        kl_mgmt_fail_internal(c, err, "delete_role_assignment");
    } else {
        kl_mgmt_log_change(c, "role_assignment_deleted", ra->name);
        kl_mgmt_applied(c);
        kl_mgmt_reply_json(c, 200, body);
        body = NULL;
    }
    json_decref(body);
    kl_store_role_assignment_free(ra);
}

/* ---------------------------------------------------------------- list */

typedef struct assignment_filter {
    bool at_scope;         /* atScope(): at and above only */
    const char *principal; /* principalId eq or assignedTo(); NULL = any */
    bool with_groups;      /* assignedTo(): the principal's groups' assignments too */
} assignment_filter;

static bool parse_assignment_filter(kl_mgmt_call *c, kl_arm_filter_term *terms,
                                    assignment_filter *f)
{
    memset(f, 0, sizeof(*f));
    size_t n = 0;
    if (!kl_mgmt_filter_terms(c, "InvalidFilterInQueryString", terms, &n))
        return false;
    for (size_t i = 0; i < n; i++) {
        kl_arm_filter_term *t = &terms[i];
        /* assignedTo('{id}') is what `az role assignment list --assignee X
         * --include-groups` sends: the principal's assignments and those of its groups
         * (transitively, as the snapshot's closure has them). */
        bool principal_term = (!t->call && kl_str_ieq(t->name, "principalId")) ||
                              (t->call && t->has_arg && kl_str_ieq(t->name, "assignedTo"));
        if (t->call && !t->has_arg && kl_str_ieq(t->name, "atScope") && !f->at_scope) {
            f->at_scope = true;
        } else if (principal_term && !f->principal && kl_uuid_valid(t->value, strlen(t->value))) {
            kl_arm_lower(t->value);
            f->principal = t->value;
            f->with_groups = t->call;
        } else {
            kl_mgmt_fail(c, 400, "InvalidFilterInQueryString",
                         "The filter is not supported: use atScope(), principalId eq '{id}' or "
                         "assignedTo('{id}'), joined by 'and'.");
            return false;
        }
    }
    return true;
}

void kl_mgmt_role_assignments_list(kl_mgmt_call *c)
{
    kl_arm_filter_term terms[KL_ARM_MAX_FILTER_TERMS];
    assignment_filter f;
    if (!parse_assignment_filter(c, terms, &f))
        return;
    kl_scope at;
    if (kl_scope_parse(c->names.scope, strlen(c->names.scope), &at)) {
        kl_mgmt_fail_internal(c, KL_EINTERNAL, "scope");
        return;
    }
    kl_store_role_assignment **list = NULL;
    size_t n = 0;
    const kl_principal *p = f.with_groups ? kl_snapshot_principal(c->snap, f.principal) : NULL;
    bool groups = p && p->n_groups > 0;
    int err = kl_store_list_role_assignments(c->m->store, groups ? NULL : f.principal, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_role_assignments");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++) {
        kl_scope sc;
        if ((groups && !kl_mgmt_principal_or_group(p, list[i]->principal_id)) ||
            kl_scope_parse(list[i]->scope, strlen(list[i]->scope), &sc))
            continue;
        /* Azure's semantics: at and above the scope (inherited), and below it unless
         * atScope() was asked for. */
        bool keep = kl_scope_covers(&sc, &at) || (!f.at_scope && kl_scope_covers(&at, &sc));
        if (keep && json_array_append_new(items, assignment_json(list[i]))) {
            json_decref(items);
            items = NULL;
        }
    }
    kl_store_role_assignments_free(list, n);
    kl_mgmt_reply_value(c, items);
}
