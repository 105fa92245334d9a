/* Checks against a compiled RBAC index (layout in index_priv.h): one probe per level
 * of the target scope, whatever the number of assignments. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "rbac/builtin.h"
#include "rbac/index_priv.h"
#include "rbac/scope.h"
#include "rbac/scope_priv.h"

/* --- checks --- */

static const pentry *pair_find(const kl_rbac_index *ix, uint64_t key, uint32_t pidx, uint32_t sid)
{
    for (size_t i = key & (ix->paircap - 1);; i = (i + 1) & (ix->paircap - 1)) {
        const pair *p = &ix->pairs[i];
        if (!p->principal)
            return NULL;
        if (p->principal == pidx + 1 && p->e.scope == sid)
            return &p->e;
    }
}

static bool role_grants(const role *r, int allow, const char *act, size_t alen)
{
    return kl_rbac_matcher_match(r->m[allow], act, alen) &&
           !kl_rbac_matcher_match(r->m[allow + 1], act, alen);
}

/* The assignment of pair e that grants the action, or NONE. */
static uint32_t pair_grants(const kl_rbac_index *ix, const pentry *e, int allow, const char *act,
                            size_t alen)
{
    if (!e->multi)
        return role_grants(&ix->roles[e->a], allow, act, alen) ? e->b : NONE;
    for (uint32_t k = 0; k < e->b; k++) {
        const ref *rf = &ix->refs[e->a + k];
        if (role_grants(&ix->roles[rf->role], allow, act, alen))
            return rf->asg;
    }
    return NONE;
}

/* The pair of principal slot ps at scope id sid, or NULL. */
static const pentry *principal_pair(const kl_rbac_index *ix, const pslot *ps, uint64_t ph,
                                    uint64_t shash, uint32_t sid)
{
    if (ps->npairs != SPILLED) {
        for (uint16_t k = 0; k < ps->npairs; k++)
            if (ps->pairs[k].scope == sid)
                return &ps->pairs[k];
        return NULL;
    }
    if (!(ps->filter & filter_bit(sid)))
        return NULL;
    return pair_find(ix, pair_key(ph, shash), (uint32_t)(ps - ix->ptab), sid);
}

static void decision_init(kl_rbac_decision *d, const char *action, bool data, const char *scope)
{
    memset(d, 0, sizeof(*d));
    d->action = action;
    d->scope = scope;
    d->data_action = data;
}

int kl_rbac_check_principals(const kl_rbac_index *ix, const char *const *principal_ids, size_t n,
                             const char *action, bool data_action, const char *scope,
                             kl_rbac_decision *out)
{
    int rc;
    if (!out)
        return KL_EINVAL;
    decision_init(out, action, data_action, scope);
    if (!ix || !principal_ids || !action || !scope || n == 0)
        return KL_EINVAL;
    if (n > KL_MAX_CHECK_PRINCIPALS)
        return KL_ETOOBIG;
    char p[KL_MAX_PRINCIPAL_ID + 1];
    size_t plen;
    uint64_t ph[KL_MAX_CHECK_PRINCIPALS];
    /* Start fetching the principals' records; parsing the scope and action hides that. */
    for (size_t i = 0; i < n; i++) {
        if ((rc = principal_lower(principal_ids[i], p, &plen)))
            return rc;
        ph[i] = hash_bytes(p, plen, ix->seed);
        const kl_rbac_index *t = ix->base ? ix->base : ix; /* most principals are there */
        const char *rec = (const char *)&t->ptab[ph[i] & (t->pcap - 1)];
        __builtin_prefetch(rec);
        __builtin_prefetch(rec + 64);
        __builtin_prefetch(rec + 128);
    }
    char sc[KL_MAX_SCOPE + 1];
    uint16_t lv[KL_MAX_SCOPE_DEPTH];
    size_t slen, nl;
    if ((rc = kl_scope_parse_lower(scope, strnlen(scope, KL_MAX_SCOPE + 2), sc, &slen, lv, &nl)))
        return rc;
    char act[KL_MAX_ACTION + 1];
    size_t alen;
    if ((rc = kl_rbac_action_normalize(action, act, &alen)))
        return rc;
    /* Which levels of the target scope hold any assignment at all. */
    uint64_t sh[KL_MAX_SCOPE_DEPTH];
    uint32_t sid[2][KL_MAX_SCOPE_DEPTH];
    uint32_t present[2] = {0, 0};
    /* Table set 0 is ix; for a derived index, set 1 is its base (same seed). */
    const kl_rbac_index *const set[2] = {ix, ix->base};
    scope_hashes(ix->seed, sc, lv, nl, sh);
    for (int t = 0; t < 2 && set[t]; t++)
        for (size_t l = 0; l < nl; l++)
            if ((sid[t][l] = scope_find(set[t], sh[l], sc, lv[l])) != NONE)
                present[t] |= 1u << l;
    if (!(present[0] | present[1]))
        return 0;
    const int allow = data_action ? M_DATA : M_ACTIONS; /* its Not* list follows it */
    for (size_t i = 0; i < n; i++) {
        principal_lower(principal_ids[i], p, &plen);
        int t = 0;
        const pslot *ps = principal_slot(ix, ph[i], p, plen);
        if (!ps->p && ix->base) /* not overridden: the base answers for it */
            ps = principal_slot(set[t = 1], ph[i], p, plen);
        if (!ps->p)
            continue;
        const kl_rbac_index *ti = set[t];
        /* Deepest level first, so the reason names the closest assignment. */
        for (uint32_t cand = ps->levels & present[t]; cand;) {
            unsigned l = 31u - (unsigned)__builtin_clz(cand);
            cand &= ~(1u << l);
            const pentry *e = principal_pair(ti, ps, ph[i], sh[l], sid[t][l]);
            if (!e)
                continue;
            uint32_t hit = pair_grants(ti, e, allow, act, alen);
            if (hit != NONE) {
                out->allowed = true;
                out->grant = &ti->asgs[hit];
                return 0;
            }
        }
    }
    return 0;
}

int kl_rbac_check(const kl_rbac_index *ix, const char *principal_id, const char *action,
                  bool data_action, const char *scope, kl_rbac_decision *out)
{
    const char *ids[1] = {principal_id};
    return kl_rbac_check_principals(ix, ids, 1, action, data_action, scope, out);
}

bool kl_rbac_decision_grant(const kl_rbac_decision *d, kl_rbac_grant *g)
{
    if (!d || !d->allowed || !d->grant)
        return false;
    const asg *a = d->grant;
    g->assignment_id = a->id;
    g->principal_id = a->principal;
    g->assignment_scope = a->scope;
    g->role_id = a->role->id;
    g->role_name = a->role->name;
    return true;
}

int kl_rbac_decision_reason(const kl_rbac_decision *d, char *buf, size_t len)
{
    const char *what = d->data_action ? "data action " : "";
    const char *action = d->action ? d->action : "(none)";
    const char *scope = d->scope ? d->scope : "(none)";
    kl_rbac_grant g;
    if (kl_rbac_decision_grant(d, &g))
        return snprintf(buf, len, "role assignment %s (role '%s', %s) at %s grants %s%s to %s",
                        g.assignment_id, g.role_name, g.role_id, g.assignment_scope, what, action,
                        g.principal_id);
    return snprintf(buf, len, "no role assignment grants %s%s at %s", what, action, scope);
}

const kl_rbac_role_def *kl_rbac_index_role(const kl_rbac_index *ix, const char *id)
{
    const char *g;
    if (!ix || kl_rbac_role_guid(id, &g))
        return NULL;
    const role *r = role_find(ix, g);
    return r ? r->def : NULL;
}

size_t kl_rbac_index_role_count(const kl_rbac_index *ix)
{
    return ix ? ix->nroles : 0;
}

bool kl_rbac_index_holds(const kl_rbac_index *ix, const char *principal_id)
{
    char p[KL_MAX_PRINCIPAL_ID + 1];
    size_t n = 0;
    if (!ix || principal_lower(principal_id, p, &n))
        return false;
    uint64_t h = hash_bytes(p, n, ix->seed);
    const pslot *s = principal_slot(ix, h, p, n);
    if (!s->p && ix->base) /* not overridden: the base answers for it */
        s = principal_slot(ix->base, h, p, n);
    return s->p && s->levels != 0;
}

size_t kl_rbac_index_assignment_count(const kl_rbac_index *ix)
{
    if (!ix)
        return 0;
    return ix->base ? ix->base->nasgs - ix->base_hidden + ix->nasgs : ix->nasgs;
}
