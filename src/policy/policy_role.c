/* Custom roles between JSON and the evaluator's role definitions (see role.h). */
#include "policy/policy_role.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

static const char *const list_keys[4] = {"actions", "notActions", "dataActions", "notDataActions"};

void kl_policy_role_clear(kl_policy_role *r)
{
    if (!r)
        return;
    json_decref(r->json);
    free(r->ptrs);
    memset(r, 0, sizeof(*r));
}

/* Checks that v is absent/null or an array of at most KL_MAX_ROLE_PATTERNS strings
 * (max for assignable scopes); returns its size in *n. */
static int string_array(const json_t *v, const char *what, size_t max, size_t *n, char *err,
                        size_t errlen)
{
    *n = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return kl_err_say(err, errlen, KL_EINVAL, "%s must be an array of strings", what);
    if (json_array_size(v) > max)
        return kl_err_say(err, errlen, KL_EINVAL, "%s has more than %zu entries", what, max);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        /* A \u0000 inside would make the C string say less than the JSON does. */
        if (!json_is_string(item) || strlen(json_string_value(item)) != json_string_length(item))
            return kl_err_say(err, errlen, KL_EINVAL, "%s must be an array of strings", what);
    }
    *n = json_array_size(v);
    return 0;
}

int kl_policy_role_decode(const char *id, const char *name, const char *description,
                          const json_t *permissions, const json_t *assignable_scopes,
                          kl_policy_role *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_array(permissions) || json_array_size(permissions) == 0)
        return kl_err_say(err, errlen, KL_EINVAL, "permissions must be a non-empty array");
    if (json_array_size(permissions) > 1)
        return kl_err_say(err, errlen, KL_EINVAL, "only one permissions entry is supported");
    const json_t *perm = json_array_get(permissions, 0);
    if (!json_is_object(perm))
        return kl_err_say(err, errlen, KL_EINVAL, "permissions[0] must be an object");
    size_t counts[5] = {0};
    const json_t *lists[5];
    int rc;
    for (int k = 0; k < 4; k++) {
        lists[k] = json_object_get(perm, list_keys[k]);
        if ((rc = string_array(lists[k], list_keys[k], KL_MAX_ROLE_PATTERNS, &counts[k], err,
                               errlen)))
            return rc;
    }
    if (!json_is_array(assignable_scopes))
        return kl_err_say(err, errlen, KL_EINVAL, "assignableScopes must be an array of strings");
    lists[4] = assignable_scopes;
    if ((rc = string_array(lists[4], "assignableScopes", KL_MAX_ASSIGNABLE_SCOPES, &counts[4], err,
                           errlen)))
        return rc;
    size_t total = counts[0] + counts[1] + counts[2] + counts[3] + counts[4];
    out->ptrs = calloc(total ? total : 1, sizeof(const char *));
    out->json =
        json_pack("{s:O,s:O}", "permissions", permissions, "assignableScopes", assignable_scopes);
    if (!out->ptrs || !out->json) {
        kl_policy_role_clear(out);
        return KL_ENOMEM;
    }
    const char **p = out->ptrs;
    const char *const *starts[5];
    for (int k = 0; k < 5; k++) {
        starts[k] = p;
        for (size_t i = 0; i < counts[k]; i++)
            *p++ = json_string_value(json_array_get(lists[k], i));
    }
    kl_rbac_role_def *d = &out->def;
    d->id = id;
    d->name = name;
    d->description = description;
    d->builtin = false;
    d->actions = starts[0];
    d->n_actions = counts[0];
    d->not_actions = starts[1];
    d->n_not_actions = counts[1];
    d->data_actions = starts[2];
    d->n_data_actions = counts[2];
    d->not_data_actions = starts[3];
    d->n_not_data_actions = counts[3];
    d->assignable_scopes = starts[4];
    d->n_assignable_scopes = counts[4];
    return 0;
}

int kl_policy_role_from_store(const kl_store_role_definition *rd, kl_policy_role *out, char *err,
                              size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *perm =
        rd->permissions ? json_loads(rd->permissions, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *scopes = rd->assignable_scopes
                         ? json_loads(rd->assignable_scopes, JSON_REJECT_DUPLICATES, NULL)
                         : NULL;
    int rc = (perm && scopes) ? kl_policy_role_decode(rd->role_id, rd->role_name, rd->description,
                                                      perm, scopes, out, err, errlen)
                              : kl_err_say(err, errlen, KL_EINVAL, "stored role JSON is malformed");
    json_decref(perm);
    json_decref(scopes);
    return rc;
}

static json_t *string_list(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (json_array_append_new(a, json_string(v[i]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *kl_policy_role_permission_json(const kl_rbac_role_def *def)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    const char *const *v[4] = {def->actions, def->not_actions, def->data_actions,
                               def->not_data_actions};
    size_t n[4] = {def->n_actions, def->n_not_actions, def->n_data_actions,
                   def->n_not_data_actions};
    for (int k = 0; k < 4; k++) {
        json_t *l = string_list(v[k], n[k]);
        if (!l || json_object_set_new(o, list_keys[k], l)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *kl_policy_role_permissions_json(const kl_rbac_role_def *def)
{
    json_t *p = kl_policy_role_permission_json(def);
    json_t *a = p ? json_array() : NULL;
    if (!a || json_array_append_new(a, p)) {
        json_decref(a);
        if (!a)
            json_decref(p);
        return NULL;
    }
    return a;
}

json_t *kl_policy_role_scopes_json(const kl_rbac_role_def *def)
{
    return string_list(def->assignable_scopes, def->n_assignable_scopes);
}
