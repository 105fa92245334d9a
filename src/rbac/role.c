/* Custom role definitions: the checks a role must pass before the store keeps it or an
 * index compiles it, and the assignable-scope test for new assignments. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "rbac/builtin.h"
#include "rbac/match.h"
#include "rbac/rbac.h"
#include "rbac/scope.h"

/* Text without control characters, 1..max bytes (or empty/NULL when allowed). */
static bool text_ok(const char *s, size_t max, bool allow_empty)
{
    if (!s)
        return allow_empty;
    size_t n = strnlen(s, max + 1);
    if (n > max || (!n && !allow_empty))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static int list_check(const char *const *list, size_t n, const char *what, char *err, size_t errlen)
{
    if (n > KL_MAX_ROLE_PATTERNS)
        return kl_err_say(err, errlen, KL_ETOOBIG, "too many %s", what);
    if (n && !list)
        return kl_err_say(err, errlen, KL_EINVAL, "%s missing", what);
    for (size_t i = 0; i < n; i++) {
        int rc = kl_rbac_pattern_check(list[i]);
        if (rc)
            return kl_err_say(err, errlen, rc, "invalid entry in %s", what);
    }
    return 0;
}

int kl_rbac_role_validate(const kl_rbac_role_def *r, char *err, size_t errlen)
{
    int rc;
    if (!r || r->builtin)
        return kl_err_say(err, errlen, KL_EINVAL, "not a custom role");
    if (!r->id || !kl_uuid_valid(r->id, strlen(r->id)))
        return kl_err_say(err, errlen, KL_EINVAL, "role id must be a GUID");
    if (kl_rbac_builtin_find(r->id))
        return kl_err_say(err, errlen, KL_ECONFLICT, "role id %s belongs to a built-in role",
                          r->id);
    if (!text_ok(r->name, KL_MAX_ROLE_NAME, false))
        return kl_err_say(err, errlen, KL_EINVAL, "invalid role name");
    if (kl_rbac_builtin_find_name(r->name))
        return kl_err_say(err, errlen, KL_ECONFLICT, "role name '%s' belongs to a built-in role",
                          r->name);
    if (!text_ok(r->description, KL_MAX_ROLE_DESCRIPTION, true))
        return kl_err_say(err, errlen, KL_EINVAL, "invalid role description");
    if ((rc = list_check(r->actions, r->n_actions, "actions", err, errlen)) ||
        (rc = list_check(r->not_actions, r->n_not_actions, "notActions", err, errlen)) ||
        (rc = list_check(r->data_actions, r->n_data_actions, "dataActions", err, errlen)) ||
        (rc =
             list_check(r->not_data_actions, r->n_not_data_actions, "notDataActions", err, errlen)))
        return rc;
    if (r->n_assignable_scopes == 0 || !r->assignable_scopes)
        return kl_err_say(err, errlen, KL_EINVAL, "assignableScopes must not be empty");
    if (r->n_assignable_scopes > KL_MAX_ASSIGNABLE_SCOPES)
        return kl_err_say(err, errlen, KL_ETOOBIG, "too many assignableScopes");
    for (size_t i = 0; i < r->n_assignable_scopes; i++) {
        kl_scope sc;
        const char *s = r->assignable_scopes[i];
        if (!s)
            return kl_err_say(err, errlen, KL_EINVAL, "invalid assignable scope");
        if ((rc = kl_scope_parse(s, strlen(s), &sc)))
            return kl_err_say(err, errlen, rc, "invalid assignable scope");
    }
    return 0;
}

bool kl_rbac_role_assignable_at(const kl_rbac_role_def *r, const char *scope)
{
    if (!r || !scope)
        return false;
    kl_scope target, a;
    if (kl_scope_parse(scope, strlen(scope), &target))
        return false;
    for (size_t i = 0; i < r->n_assignable_scopes; i++) {
        const char *s = r->assignable_scopes[i];
        if (s && !kl_scope_parse(s, strlen(s), &a) && kl_scope_covers(&a, &target))
            return true;
    }
    return false;
}
