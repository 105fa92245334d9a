/* What the Microsoft Graph v1.0 handlers (graph_apps.c, graph_users.c, graph_groups.c)
 * share: the $filter they serve, Graph's not-found and last-Owner refusals, the reading
 * of a string member of a request body, and the deletion of a user or group. */
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "directory/directory.h"
#include "directory/users.h"
#include "mgmt/internal.h"

bool kl_mgmt_graph_eq_filter(kl_mgmt_call *c, kl_arm_filter_term *terms, const char *const *props,
                             size_t nprops, const char *usage, const char **values)
{
    for (size_t i = 0; i < nprops; i++)
        values[i] = NULL;
    size_t n = 0;
    if (!kl_mgmt_filter_terms(c, "Request_UnsupportedQuery", terms, &n))
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < nprops && (terms[i].call || !kl_str_ieq(terms[i].name, props[k]) || values[k]))
            k++;
        if (k == nprops) {
            kl_mgmt_fail(c, 400, "Request_UnsupportedQuery", "Unsupported filter: use %s.", usage);
            return false;
        }
        values[k] = terms[i].value;
    }
    return true;
}

void kl_mgmt_graph_not_found(kl_mgmt_call *c, const char *id)
{
    kl_mgmt_fail(c, 404, "Request_ResourceNotFound",
                 "Resource '%s' does not exist or one of its queried reference-property objects "
                 "are not present.",
                 id);
}

void kl_mgmt_graph_last_owner(kl_mgmt_call *c)
{
    kl_mgmt_fail(c, 409, "LastOwnerCannotBeRemoved",
                 "The change would leave no enabled principal with the Owner role at scope '/'. "
                 "Assign Owner at '/' to another principal first.");
}

const char *kl_mgmt_graph_body_string(const json_t *o, const char *key, bool *present)
{
    const json_t *v = json_object_get(o, key);
    if (present)
        *present = v && !json_is_null(v);
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

bool kl_mgmt_graph_display_name(kl_mgmt_call *c, const char *name)
{
    if (name && kl_directory_valid_name(name, strlen(name), KL_USERS_MAX_DISPLAY_NAME))
        return true;
    kl_mgmt_fail(c, 400, "Request_BadRequest",
                 "Property displayName is required: 1-%d characters without control characters.",
                 KL_USERS_MAX_DISPLAY_NAME);
    return false;
}

void kl_mgmt_graph_delete_principal(kl_mgmt_call *c, const char *object_id, const char *named,
                                    const char *what, const char *event)
{
    int err = kl_store_delete_principal(c->m->store, object_id);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, named);
    else if (err == KL_EPERM)
        kl_mgmt_graph_last_owner(c);
    else if (err)
        kl_mgmt_fail_internal(c, err, what);
    else {
        kl_mgmt_log_change(c, event, object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
}
