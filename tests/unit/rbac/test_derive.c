/* Derived indexes (kl_rbac_index_derive): after any chain of derives, the index gives
 * the same answer as a full build over the same assignments for every principal, scope
 * and action; it outlives the index it was derived from; it refuses assignments of
 * principals it does not replace and grows only to its limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/limits.h"
#include "rbac/builtin.h"
#include "rbac/rbac.h"

#define NP 40  /* principals */
#define NS 28  /* scopes */
#define MAXA 6 /* assignments per principal, beyond the wide one */

#define CHAT "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"
#define LIST_KEYS "Microsoft.CognitiveServices/accounts/listKeys/action"
#define ACCT_READ "Microsoft.CognitiveServices/accounts/read"
#define ASG_WRITE "Microsoft.Authorization/roleAssignments/write"

static const char *const roles[] = {KL_ROLE_OPENAI_USER, KL_ROLE_OWNER, KL_ROLE_READER,
                                    KL_ROLE_CONTRIBUTOR, KL_ROLE_CS_USER};
static const struct {
    const char *action;
    bool data;
} actions[] = {{CHAT, true}, {LIST_KEYS, false}, {ACCT_READ, false}, {ASG_WRITE, false}};

typedef struct world {
    char principal[NP][40];
    char scope[NS][160];
    /* Each principal's assignments: scope and role indexes, and a stable id. */
    size_t n[NP];
    int sc[NP][NS + MAXA], ro[NP][NS + MAXA];
    char id[NP][NS + MAXA][40];
    unsigned seq;
    uint64_t rng;
} world;

static uint32_t next(world *w)
{
    w->rng = w->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(w->rng >> 33);
}

static void world_init(world *w, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->rng = seed;
    for (int p = 0; p < NP; p++)
        snprintf(w->principal[p], sizeof(w->principal[p]), "00000000-0000-4000-8000-%012d", p);
    int k = 0;
    snprintf(w->scope[k++], sizeof(w->scope[0]), "/");
    for (int s = 0; s < 2; s++) {
        snprintf(w->scope[k++], sizeof(w->scope[0]), "/subscriptions/s%d", s);
        for (int g = 0; g < 4; g++) {
            snprintf(w->scope[k++], sizeof(w->scope[0]), "/subscriptions/s%d/resourceGroups/g%d", s,
                     g);
            snprintf(w->scope[k++], sizeof(w->scope[0]),
                     "/subscriptions/s%d/resourceGroups/g%d/providers/"
                     "Microsoft.CognitiveServices/accounts/a%d",
                     s, g, g);
            snprintf(w->scope[k++], sizeof(w->scope[0]),
                     "/subscriptions/s%d/resourceGroups/g%d/providers/"
                     "Microsoft.CognitiveServices/accounts/a%d/deployments/d",
                     s, g, g);
        }
    }
    assert_true(k <= NS);
    for (; k < NS; k++)
        snprintf(w->scope[k], sizeof(w->scope[0]), "/subscriptions/s9/resourceGroups/x%d", k);
}

/* Gives principal p a fresh random set of assignments (possibly none); principal 0
 * always gets one at every scope, so that it spills out of its inline record. */
static void reassign(world *w, int p)
{
    size_t n = p == 0 ? NS : next(w) % (MAXA + 1);
    w->n[p] = 0;
    for (size_t i = 0; i < n; i++) {
        int sc = p == 0 ? (int)i : (int)(next(w) % NS);
        int ro = (int)(next(w) % (sizeof(roles) / sizeof(roles[0])));
        bool dup = false;
        for (size_t j = 0; j < w->n[p]; j++)
            dup |= w->sc[p][j] == sc && w->ro[p][j] == ro;
        if (dup)
            continue;
        size_t k = w->n[p]++;
        w->sc[p][k] = sc;
        w->ro[p][k] = ro;
        snprintf(w->id[p][k], sizeof(w->id[p][k]), "a-%u", ++w->seq);
    }
}

/* The assignments of the principals in which[0..nw) (all when which is NULL). */
static size_t collect(const world *w, const int *which, size_t nw, kl_rbac_assignment *out)
{
    size_t n = 0;
    for (size_t i = 0; i < (which ? nw : NP); i++) {
        int p = which ? which[i] : (int)i;
        for (size_t k = 0; k < w->n[p]; k++)
            out[n++] = (kl_rbac_assignment){.id = w->id[p][k],
                                            .principal_id = w->principal[p],
                                            .role_definition_id = roles[w->ro[p][k]],
                                            .scope = w->scope[w->sc[p][k]]};
    }
    return n;
}

static kl_rbac_index *full(const world *w)
{
    static kl_rbac_assignment as[NP * (NS + MAXA)];
    size_t n = collect(w, NULL, 0, as);
    kl_rbac_index *ix = NULL;
    char why[256];
    assert_int_equal(kl_rbac_index_build(NULL, 0, as, n, &ix, why, sizeof(why)), 0);
    return ix;
}

static kl_rbac_index *derive(kl_rbac_index *old, const world *w, const int *which, size_t nw)
{
    kl_rbac_assignment as[8 * (NS + MAXA)];
    const char *ps[8];
    assert_true(nw <= 8);
    for (size_t i = 0; i < nw; i++)
        ps[i] = w->principal[which[i]];
    size_t n = collect(w, which, nw, as);
    kl_rbac_index *ix = NULL;
    char why[256];
    int rc = kl_rbac_index_derive(old, ps, nw, as, n, &ix, why, sizeof(why));
    if (rc)
        fail_msg("derive: %s", why);
    return ix;
}

/* Same answer for every principal (and one unknown), every scope and a child of it,
 * every action; and the same count. */
static void assert_same(const kl_rbac_index *a, const kl_rbac_index *b, const world *w)
{
    assert_int_equal(kl_rbac_index_assignment_count(a), kl_rbac_index_assignment_count(b));
    for (int p = 0; p <= NP; p++) {
        const char *pid = p < NP ? w->principal[p] : "00000000-0000-4000-8000-ffffffffffff";
        for (int s = 0; s < NS; s++) {
            char child[200];
            snprintf(child, sizeof(child), "%s%sproviders/X.Y/z/q", w->scope[s],
                     strcmp(w->scope[s], "/") ? "/" : "");
            const char *targets[2] = {w->scope[s], child};
            for (int t = 0; t < 2; t++)
                for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
                    kl_rbac_decision da, db;
                    assert_int_equal(
                        kl_rbac_check(a, pid, actions[k].action, actions[k].data, targets[t], &da),
                        0);
                    assert_int_equal(
                        kl_rbac_check(b, pid, actions[k].action, actions[k].data, targets[t], &db),
                        0);
                    if (da.allowed != db.allowed)
                        fail_msg("principal %d, %s, %s: derived %d, full %d", p, targets[t],
                                 actions[k].action, da.allowed, db.allowed);
                }
        }
    }
}

/* A chain of derives, each replacing one to three principals (some with nothing, some
 * overridden again), agrees with a full build after every step, including across a
 * principal and its groups. */
static void test_derive_matches_full_build(void **state)
{
    (void)state;
    static world w;
    world_init(&w, 42);
    for (int p = 0; p < NP; p++)
        reassign(&w, p);
    kl_rbac_index *cur = full(&w);
    for (int step = 0; step < 60; step++) {
        int which[3];
        size_t nw = 1 + next(&w) % 3;
        for (size_t i = 0; i < nw; i++) {
            which[i] = (int)(next(&w) % NP);
            for (size_t j = 0; j < i; j++)
                if (which[j] == which[i])
                    which[i] = (which[i] + 1) % NP; /* distinct enough for the test */
        }
        if (step % 7 == 0)
            which[0] = 0; /* the spilled principal */
        for (size_t i = 0; i < nw; i++)
            reassign(&w, which[i]);
        if (step % 5 == 0)
            w.n[which[0]] = 0; /* left with nothing: hides everything the base had */
        kl_rbac_index *d = derive(cur, &w, which, nw);
        kl_rbac_index_free(cur); /* the derived index keeps what it shares */
        cur = d;
        kl_rbac_index *f = full(&w);
        assert_same(cur, f, &w);
        const char *group[2] = {w.principal[3], w.principal[which[0]]};
        kl_rbac_decision da, db;
        assert_int_equal(kl_rbac_check_principals(cur, group, 2, CHAT, true, w.scope[4], &da), 0);
        assert_int_equal(kl_rbac_check_principals(f, group, 2, CHAT, true, w.scope[4], &db), 0);
        assert_int_equal(da.allowed, db.allowed);
        kl_rbac_index_free(f);
    }
    size_t na = 0;
    assert_true(kl_rbac_index_overlay(cur, &na) > 0);
    kl_rbac_index_free(cur);
}

/* The grant behind an allow names the overriding assignment, and stays readable after
 * every other reference is gone. */
static void test_grant_from_overlay(void **state)
{
    (void)state;
    kl_rbac_assignment base[] = {{"a1", "p1", KL_ROLE_READER, "/subscriptions/s"},
                                 {"a2", "p2", KL_ROLE_OPENAI_USER, "/subscriptions/s"}};
    kl_rbac_index *ix = NULL, *d = NULL;
    assert_int_equal(kl_rbac_index_build(NULL, 0, base, 2, &ix, NULL, 0), 0);
    const char *p1[] = {"P1"};
    kl_rbac_assignment now[] = {
        {"a3", "p1", KL_ROLE_OPENAI_USER, "/subscriptions/s/resourceGroups/g"}};
    assert_int_equal(kl_rbac_index_derive(ix, p1, 1, now, 1, &d, NULL, 0), 0);
    kl_rbac_index_free(ix);
    kl_rbac_decision dec;
    assert_int_equal(kl_rbac_check(d, "p1", ACCT_READ, false, "/subscriptions/s", &dec), 0);
    assert_false(dec.allowed); /* a1 is gone */
    assert_int_equal(kl_rbac_check(d, "p1", CHAT, true,
                                   "/subscriptions/s/resourceGroups/g/providers/X.Y/z/q", &dec),
                     0);
    assert_true(dec.allowed);
    kl_rbac_grant g;
    assert_true(kl_rbac_decision_grant(&dec, &g));
    assert_string_equal(g.assignment_id, "a3");
    assert_int_equal(kl_rbac_check(d, "p2", CHAT, true, "/subscriptions/s", &dec), 0);
    assert_true(dec.allowed);
    assert_int_equal(kl_rbac_index_assignment_count(d), 2);
    kl_rbac_index_free(d);
}

/* An assignment of a principal not being replaced is refused; so is an overlay past
 * its limit (the caller then builds in full). */
static void test_derive_refusals(void **state)
{
    (void)state;
    kl_rbac_index *ix = NULL, *d = NULL;
    assert_int_equal(kl_rbac_index_build(NULL, 0, NULL, 0, &ix, NULL, 0), 0);
    const char *p1[] = {"p1"};
    kl_rbac_assignment other[] = {{"a1", "p2", KL_ROLE_READER, "/"}};
    assert_int_equal(kl_rbac_index_derive(ix, p1, 1, other, 1, &d, NULL, 0), KL_EINVAL);
    assert_null(d);
    static char names[KL_RBAC_MAX_OVERLAY_PRINCIPALS + 1][24];
    static const char *many[KL_RBAC_MAX_OVERLAY_PRINCIPALS + 1];
    for (size_t i = 0; i <= KL_RBAC_MAX_OVERLAY_PRINCIPALS; i++) {
        snprintf(names[i], sizeof(names[i]), "p%zu", i);
        many[i] = names[i];
    }
    assert_int_equal(
        kl_rbac_index_derive(ix, many, KL_RBAC_MAX_OVERLAY_PRINCIPALS, NULL, 0, &d, NULL, 0), 0);
    kl_rbac_index *d2 = NULL;
    const char *last[] = {many[KL_RBAC_MAX_OVERLAY_PRINCIPALS]};
    assert_int_equal(kl_rbac_index_derive(d, last, 1, NULL, 0, &d2, NULL, 0), KL_ETOOBIG);
    assert_null(d2);
    assert_int_equal(kl_rbac_index_overlay(d, NULL), KL_RBAC_MAX_OVERLAY_PRINCIPALS);
    kl_rbac_index_free(d);
    kl_rbac_index_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive_matches_full_build),
        cmocka_unit_test(test_grant_from_overlay),
        cmocka_unit_test(test_derive_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
