/* Effective access: Azure's permissions list (what the caller holds at a scope, one
 * entry per role assignment that applies there) and checkAccess, a keyless extension
 * that answers "may this principal do this action at this scope, and why" from the
 * same snapshot the enforcement uses. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "mgmt/internal.h"
#include "mgmt/roles.h"
#include "policy/policy_role.h"
#include "rbac/match.h"
#include "rbac/scope.h"

void kl_mgmt_permissions_list(kl_mgmt_call *c)
{
    kl_scope at;
    if (kl_scope_parse(c->names.scope, strlen(c->names.scope), &at)) {
        kl_mgmt_fail_internal(c, KL_EINTERNAL, "scope");
        return;
    }
    json_t *items = json_array();
    const kl_principal *p = kl_snapshot_principal(c->snap, c->caller);
    /* A disabled principal holds nothing, so it is shown nothing. */
    if (items && p && p->enabled) {
        kl_store_role_assignment **list = NULL;
        size_t n = 0;
        /* Its own assignments and its groups' (one list, kept by principal below). */
        int err =
            kl_store_list_role_assignments(c->m->store, p->n_groups ? NULL : c->caller, &list, &n);
        if (err) {
            json_decref(items);
            kl_mgmt_fail_internal(c, err, "list_role_assignments");
            return;
        }
        const kl_rbac_index *ix = kl_snapshot_rbac(c->snap);
        for (size_t i = 0; items && i < n; i++) {
            kl_scope sc;
            const kl_rbac_role_def *role = kl_rbac_index_role(ix, list[i]->role_id);
            if (!kl_mgmt_principal_or_group(p, list[i]->principal_id) || !role ||
                kl_scope_parse(list[i]->scope, strlen(list[i]->scope), &sc) ||
                !kl_scope_covers(&sc, &at))
                continue;
            if (json_array_append_new(items, kl_policy_role_permission_json(role))) {
                json_decref(items);
                items = NULL;
            }
        }
        kl_store_role_assignments_free(list, n);
    }
    kl_mgmt_reply_value(c, items);
}

bool kl_mgmt_principal_or_group(const kl_principal *p, const char *object_id)
{
    if (!p || !object_id)
        return false;
    if (kl_str_ieq(p->object_id, object_id))
        return true;
    for (size_t i = 0; i < p->n_groups; i++)
        if (kl_str_ieq(p->groups[i], object_id))
            return true;
    return false;
}

void kl_mgmt_check_access(kl_mgmt_call *c)
{
    const json_t *pid = json_object_get(c->body, "principalId");
    const json_t *act = json_object_get(c->body, "action");
    const json_t *sc = json_object_get(c->body, "scope");
    const json_t *data = json_object_get(c->body, "dataAction");
    char principal[KL_UUID_LEN + 1], scope[KL_MAX_SCOPE + 1], lc[KL_MAX_ACTION + 1];
    size_t lclen = 0;
    kl_arm_error e = {0};
    if (!json_is_string(pid) || !kl_uuid_valid(json_string_value(pid), json_string_length(pid))) {
        kl_mgmt_fail(c, 400, "InvalidRequestContent",
                     "principalId is required and must be an object id (GUID).");
        return;
    }
    if (!json_is_string(act) || strlen(json_string_value(act)) != json_string_length(act) ||
        kl_rbac_action_normalize(json_string_value(act), lc, &lclen)) {
        kl_mgmt_fail(c, 400, "InvalidRequestContent",
                     "action is required: an action such as "
                     "Microsoft.CognitiveServices/accounts/listKeys/action, without wildcards.");
        return;
    }
    if (!json_is_string(sc) ||
        kl_arm_canonical_scope(json_string_value(sc), json_string_length(sc), scope, &e) ||
        strlen(json_string_value(sc)) != json_string_length(sc) || json_string_length(sc) == 0) {
        kl_arm_error_set(&e, 400, "InvalidScope",
                         "scope is required and must be a valid ARM scope ('/', a subscription, "
                         "resource group or resource id).");
        kl_mgmt_reply_error(c, &e);
        return;
    }
    if (data && !json_is_null(data) && !json_is_boolean(data)) {
        kl_mgmt_fail(c, 400, "InvalidRequestContent", "dataAction must be a boolean.");
        return;
    }
    memcpy(principal, json_string_value(pid), KL_UUID_LEN + 1);
    kl_arm_lower(principal);
    const char *action = json_string_value(act);
    bool data_action = json_is_true(data);

    /* Anyone may ask about themselves; asking about someone else reveals their access,
     * which is what roleAssignments/read at that scope already shows. */
    if (strcmp(principal, c->caller) != 0 && !kl_mgmt_authorize(c, c->route->action, scope))
        return;
    const kl_principal *p = kl_snapshot_principal(c->snap, principal);
    if (!p) {
        kl_mgmt_principal_not_found(c, principal);
        return;
    }

    kl_rbac_decision d = {0};
    char reason[KL_MAX_SCOPE + KL_MAX_ACTION + 256];
    char asg_id[KL_MAX_SCOPE + 128], role_id[256];
    bool have_ids = false;
    if (!p->enabled) {
        snprintf(reason, sizeof(reason), "principal %s is disabled: it is granted nothing",
                 principal);
    } else {
        int err = kl_snapshot_rbac_check(c->snap, p, action, data_action, scope, &d);
        if (err) {
            kl_mgmt_fail(c, 400, "InvalidRequestContent", "The action or scope is malformed.");
            return;
        }
        kl_rbac_decision_reason(&d, reason, sizeof(reason));
        kl_rbac_grant g;
        have_ids = kl_rbac_decision_grant(&d, &g) && g.assignment_scope && g.assignment_id &&
                   g.role_id &&
                   kl_roles_authz_id(g.assignment_scope, "roleAssignments", g.assignment_id, asg_id,
                                     sizeof(asg_id)) == 0 &&
                   kl_roles_assignment_definition_id(g.assignment_scope, g.role_id, role_id,
                                                     sizeof(role_id)) == 0;
    }
    json_t *body = json_object();
    if (body && (json_object_set_new(body, "allowed", json_boolean(d.allowed && p->enabled)) ||
                 json_object_set_new(body, "reason", json_string(reason)) ||
                 json_object_set_new(body, "roleAssignmentId",
                                     kl_arm_json_string_or_null(have_ids ? asg_id : NULL)) ||
                 json_object_set_new(body, "roleDefinitionId",
                                     kl_arm_json_string_or_null(have_ids ? role_id : NULL)))) {
        json_decref(body);
        body = NULL;
    }
    kl_mgmt_reply_json(c, 200, body);
}
