/* Identity selection (see idselect.h). */
#include "imds/idselect.h"

#include <string.h>

#include "common/util.h"

static bool same(const char *have, const char *value, size_t len)
{
    return have && kl_str_ieqn(have, strlen(have), value, len);
}

static bool matches(const kl_mi *mi, kl_idsel_kind kind, const char *value, size_t len)
{
    switch (kind) {
    case KL_IDSEL_CLIENT_ID: return same(mi->client_id, value, len);
    case KL_IDSEL_OBJECT_ID: return same(mi->object_id, value, len);
    case KL_IDSEL_RESOURCE_ID: return mi->user_assigned && same(mi->resource_id, value, len);
    case KL_IDSEL_DEFAULT: break;
    }
    return false;
}

kl_idsel_result kl_idselect_pick(const kl_compute *c, kl_idsel_rule rule, kl_idsel_kind kind,
                                 const char *value, size_t len, const kl_mi **out)
{
    *out = NULL;
    if (!c)
        return KL_IDSEL_NOT_FOUND;
    if (kind == KL_IDSEL_DEFAULT) {
        if (c->system) {
            *out = c->system;
            return KL_IDSEL_OK;
        }
        if (rule == KL_IDSEL_RULE_APPSERVICE || c->n_user == 0)
            return KL_IDSEL_NOT_FOUND;
        if (c->n_user > 1)
            return KL_IDSEL_MULTIPLE;
        *out = c->user[0];
        return KL_IDSEL_OK;
    }
    if (!value || len == 0)
        return KL_IDSEL_NOT_FOUND;
    if (c->system && matches(c->system, kind, value, len)) {
        *out = c->system;
        return KL_IDSEL_OK;
    }
    for (size_t i = 0; i < c->n_user; i++) {
        if (matches(c->user[i], kind, value, len)) {
            *out = c->user[i];
            return KL_IDSEL_OK;
        }
    }
    return KL_IDSEL_NOT_FOUND;
}
