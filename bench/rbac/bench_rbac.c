/* Latency of kl_rbac_check with 10, 10,000 and 100,000 role assignments spread over
 * 10,000 principals; then of a check through groups as the data plane makes it
 * (kl_snapshot_rbac_check with the principal's precomputed groups) with
 * 10,000 groups nested 5 deep, every principal a member at the deepest level and the
 * assignments on the top groups, against the same check with the assignments on the
 * principals themselves (no groups), timed in the same interleaved rounds. Each check is timed on
 * its own with CLOCK_MONOTONIC; the cost of the timing itself (an empty timed call, measured the
 * same way in the same run) is printed and subtracted. The sizes are timed in interleaved rounds,
 * so a change in machine load during the run hits all of them alike. Prints p50/p99 per size and
 * the ratio of the largest size to the smallest: a flat index keeps that ratio near 1. A benchmark,
 * not a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "policy/snapshot.h"
#include "policy/snapshot_builder.h"
#include "rbac/builtin.h"
#include "rbac/rbac.h"

#define NPRINCIPALS 10000
#define NSUBS 10
#define RGS_PER_SUB 10
#define ACCOUNTS_PER_RG 10
#define NCHECKS 200000 /* per size */
#define ROUNDS 20
/* Distinct prepared checks, cycled: enough that principals come from the whole population
 * and the index is reached as a server would reach it. Each check's input is copied into
 * a local buffer before it is timed, as a server authorises a request it has just parsed;
 * so the index, not the input, decides the cost. */
#define NSPECS 65536
#define SCOPE_MAX 256
#define NGROUPS 10000
#define GROUP_DEPTH 5
#define NCHAINS (NGROUPS / GROUP_DEPTH)

typedef struct spec {
    const char *principal;
    const char *action;
    bool data;
    char scope[SCOPE_MAX + 64];
} spec;

/* A check's input as a request handler holds it. */
typedef struct input {
    char principal[40];
    char action[128];
    char scope[SCOPE_MAX + 64];
    bool data;
} input;

typedef struct world {
    char (*principals)[40];
    char (*subs)[40];
    char (*scopes)[SCOPE_MAX]; /* per assignment */
    char (*ids)[48];
    kl_rbac_assignment *as;
} world;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void guid(char out[40])
{
    uint64_t a = rng(), b = rng();
    snprintf(out, 40, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
             (unsigned long long)(b & 0xffffffffffffULL));
}

static void account_scope(const world *w, unsigned sub, unsigned rg, unsigned acct, char *out)
{
    snprintf(out, SCOPE_MAX,
             "/subscriptions/%s/resourceGroups/rg-%02u/providers/Microsoft.CognitiveServices/"
             "accounts/acct-%02u-%02u-%02u",
             w->subs[sub], rg, sub, rg, acct);
}

static const char *const roles[] = {
    KL_ROLE_OPENAI_USER, KL_ROLE_OPENAI_USER,    KL_ROLE_OPENAI_USER, KL_ROLE_OPENAI_CONTRIBUTOR,
    KL_ROLE_CS_USER,     KL_ROLE_CS_CONTRIBUTOR, KL_ROLE_READER,      KL_ROLE_CONTRIBUTOR,
};

static const struct {
    const char *action;
    bool data;
} actions[] = {
    {"Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action", true},
    {"Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action", true},
    {"Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action", true},
    {"Microsoft.CognitiveServices/accounts/OpenAI/responses/write", true},
    {"Microsoft.CognitiveServices/accounts/listKeys/action", false},
    {"Microsoft.CognitiveServices/accounts/deployments/write", false},
    {"Microsoft.CognitiveServices/accounts/deployments/read", false},
};
#define NACTIONS (sizeof(actions) / sizeof(actions[0]))

/* Assignment i belongs to principal i % NPRINCIPALS; a fifth sit on subscriptions, a
 * third on resource groups, the rest on accounts. */
static void make_assignments(world *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned sub = (unsigned)(rng() % NSUBS), rg = (unsigned)(rng() % RGS_PER_SUB),
                 acct = (unsigned)(rng() % ACCOUNTS_PER_RG);
        unsigned kind = (unsigned)(rng() % 15);
        if (kind < 3)
            snprintf(w->scopes[i], SCOPE_MAX, "/subscriptions/%s", w->subs[sub]);
        else if (kind < 8)
            snprintf(w->scopes[i], SCOPE_MAX, "/subscriptions/%s/resourceGroups/rg-%02u",
                     w->subs[sub], rg);
        else
            account_scope(w, sub, rg, acct, w->scopes[i]);
        snprintf(w->ids[i], sizeof(w->ids[i]), "ra-%08zu", i);
        w->as[i] =
            (kl_rbac_assignment){w->ids[i], w->principals[i % NPRINCIPALS],
                                 roles[rng() % (sizeof(roles) / sizeof(roles[0]))], w->scopes[i]};
    }
}

/* Checks by principals that hold assignments; half of them aimed under one of that
 * principal's own assignments (mostly allowed), half anywhere (mostly denied). */
static void make_specs(const world *w, size_t n, spec *specs)
{
    size_t holders = n < NPRINCIPALS ? n : NPRINCIPALS;
    for (size_t k = 0; k < NSPECS; k++) {
        spec *s = &specs[k];
        size_t p = (size_t)(rng() % holders);
        s->principal = w->principals[p];
        size_t a = (size_t)(rng() % NACTIONS);
        s->action = actions[a].action;
        s->data = actions[a].data;
        char acct[SCOPE_MAX];
        account_scope(w, (unsigned)(rng() % NSUBS), (unsigned)(rng() % RGS_PER_SUB),
                      (unsigned)(rng() % ACCOUNTS_PER_RG), acct);
        if (rng() % 2) {
            size_t per = n / NPRINCIPALS ? n / NPRINCIPALS : 1;
            size_t i = p + NPRINCIPALS * (size_t)(rng() % per);
            if (i >= n)
                i = p;
            if (strstr(w->scopes[i], "/accounts/"))
                snprintf(acct, sizeof(acct), "%s", w->scopes[i]);
        }
        snprintf(s->scope, sizeof(s->scope), "%s/deployments/dep-%u", acct, (unsigned)(rng() % 4));
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t pct(const uint32_t *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i];
}

/* Stands in for a check when measuring the timer; kept out of line. */
static __attribute__((noinline)) int empty_call(const void *ix, const input *s, kl_rbac_decision *d)
{
    __asm__ volatile("" : : "r"(ix), "r"(s), "r"(d) : "memory");
    return 0;
}

static int timed_check(const void *ix, const input *s, kl_rbac_decision *d)
{
    return kl_rbac_check(ix, s->principal, s->action, s->data, s->scope, d);
}

typedef int (*call_fn)(const void *, const input *, kl_rbac_decision *);

static void load(input *in, const spec *s)
{
    snprintf(in->principal, sizeof(in->principal), "%s", s->principal);
    snprintf(in->action, sizeof(in->action), "%s", s->action);
    memcpy(in->scope, s->scope, sizeof(in->scope));
    in->data = s->data;
}

/* The same for the check through groups: the principal is found in the snapshot first
 * (untimed: the data plane resolves the token's principal once, groups or not), then
 * kl_snapshot_rbac_check, with the principal and its precomputed groups, is timed. */
static void run_snapshot(const kl_snapshot *snap, const spec *specs, uint32_t *ns, size_t from,
                         size_t count, size_t *allowed)
{
    kl_rbac_decision d;
    input in;
    for (size_t i = from; i < from + count + 2000; i++) {
        bool warm = i < from + 2000; /* warm code paths first, untimed */
        load(&in, &specs[(warm ? i : i - 2000) % NSPECS]);
        const kl_principal *p = kl_snapshot_principal(snap, in.principal);
        if (!p) {
            fprintf(stderr, "principal missing from the snapshot\n");
            exit(1);
        }
        uint64_t t0 = now_ns();
        int rc = kl_snapshot_rbac_check(snap, p, in.action, in.data, in.scope, &d);
        uint64_t t1 = now_ns();
        if (rc) {
            fprintf(stderr, "check failed: %s\n", kl_err_str(rc));
            exit(1);
        }
        if (!warm) {
            *allowed += d.allowed;
            ns[i - 2000] = (uint32_t)(t1 - t0);
        }
    }
}

/* Times checks [from, from + count) of a size's run into ns[]. */
static void run(call_fn fn, const void *ix, const spec *specs, uint32_t *ns, size_t from,
                size_t count, size_t *allowed)
{
    kl_rbac_decision d;
    input in;
    for (size_t i = 0; i < 2000; i++) { /* warm code paths and the roles for this index */
        load(&in, &specs[(from + i) % NSPECS]);
        fn(ix, &in, &d);
    }
    for (size_t i = from; i < from + count; i++) {
        load(&in, &specs[i % NSPECS]);
        uint64_t t0 = now_ns();
        int rc = fn(ix, &in, &d);
        uint64_t t1 = now_ns();
        if (rc) {
            fprintf(stderr, "check failed: %s\n", kl_err_str(rc));
            exit(1);
        }
        *allowed += d.allowed;
        ns[i] = (uint32_t)(t1 - t0);
    }
}

#define NSIZES 3
static const size_t sizes[NSIZES] = {10, 10000, 100000};

/* A snapshot of the principals and n assignments; with_groups: NGROUPS groups in chains
 * GROUP_DEPTH deep, principal p a member of the deepest group of chain p % NCHAINS, and
 * each assignment moved from its principal to the top group of that principal's chain. */
static kl_snapshot *make_snapshot(const world *w, size_t n, bool with_groups, double *build_ms)
{
    static char groups[NGROUPS][40];
    kl_snapshot_builder *b = kl_snapshot_builder_new();
    kl_rbac_assignment *as = calloc(n, sizeof(*as));
    kl_rbac_index *ix = NULL;
    kl_snapshot *s = NULL;
    char err[256];
    int rc = b && as ? 0 : KL_ENOMEM;
    for (size_t i = 0; !rc && i < NPRINCIPALS; i++)
        rc = kl_snapshot_builder_principal(b, w->principals[i], NULL, KL_PRINCIPAL_USER, "user",
                                           true);
    for (size_t i = 0; !rc && with_groups && i < NGROUPS; i++) {
        guid(groups[i]);
        rc = kl_snapshot_builder_principal(b, groups[i], NULL, KL_PRINCIPAL_GROUP, "group", true);
    }
    /* Chain c is groups[c * GROUP_DEPTH + 0 (deepest) .. + GROUP_DEPTH - 1 (top)]. */
    for (size_t c = 0; !rc && with_groups && c < NCHAINS; c++)
        for (size_t l = 0; !rc && l + 1 < GROUP_DEPTH; l++)
            rc = kl_snapshot_builder_group_member(b, groups[c * GROUP_DEPTH + l + 1],
                                                  groups[c * GROUP_DEPTH + l]);
    for (size_t i = 0; !rc && with_groups && i < NPRINCIPALS; i++)
        rc = kl_snapshot_builder_group_member(b, groups[(i % NCHAINS) * GROUP_DEPTH],
                                              w->principals[i]);
    for (size_t i = 0; !rc && i < n; i++) {
        as[i] = w->as[i];
        if (with_groups)
            as[i].principal_id =
                groups[((i % NPRINCIPALS) % NCHAINS) * GROUP_DEPTH + GROUP_DEPTH - 1];
    }
    uint64_t t0 = now_ns();
    if (!rc)
        rc = kl_rbac_index_build(NULL, 0, as, n, &ix, err, sizeof(err));
    if (!rc) {
        rc = kl_snapshot_builder_rbac(b, ix);
        if (!rc)
            rc = kl_snapshot_builder_finish(b, &s);
    }
    *build_ms = (double)(now_ns() - t0) / 1e6;
    if (rc) {
        fprintf(stderr, "snapshot build failed: %s\n", kl_err_str(rc));
        exit(1);
    }
    kl_snapshot_builder_free(b);
    free(as);
    return s;
}

/* The check through groups against the same check without them (see the top). */
static void bench_groups(world *w, uint32_t base)
{
    const size_t n = 10000;
    kl_snapshot *snap[2];
    double build_ms[2];
    spec *specs = calloc(NSPECS, sizeof(spec));
    uint32_t *ns[2] = {calloc(NCHECKS, sizeof(uint32_t)), calloc(NCHECKS, sizeof(uint32_t))};
    size_t allowed[2] = {0, 0};
    if (!specs || !ns[0] || !ns[1])
        exit(1);
    make_assignments(w, n);
    make_specs(w, n, specs);
    snap[0] = make_snapshot(w, n, false, &build_ms[0]);
    snap[1] = make_snapshot(w, n, true, &build_ms[1]);
    const kl_principal *deep = kl_snapshot_principal(snap[1], w->principals[0]);
    printf("\nthrough groups: %d groups nested %d deep, each principal a member at the deepest "
           "level, %zu assignments on the top groups (a check carries the principal and %zu "
           "group(s): those holding assignments); baseline: the same assignments on the "
           "principals\n",
           NGROUPS, GROUP_DEPTH, n, deep ? deep->n_groups : 0);
    const size_t per = NCHECKS / ROUNDS;
    for (size_t r = 0; r < ROUNDS; r++)
        for (size_t k = 0; k < 2; k++)
            run_snapshot(snap[k], specs, ns[k], r * per, per, &allowed[k]);
    static const char *const what[2] = {"no groups", "5 deep"};
    printf("%12s %10s %10s %10s %10s %10s %9s\n", "membership", "build ms", "p50 ns", "p90 ns",
           "p99 ns", "p99.9 ns", "allowed");
    uint32_t p50[2], p99[2];
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < NCHECKS; i++)
            ns[k][i] = ns[k][i] > base ? ns[k][i] - base : 0;
        qsort(ns[k], NCHECKS, sizeof(uint32_t), cmp_u32);
        p50[k] = pct(ns[k], NCHECKS, 0.5);
        p99[k] = pct(ns[k], NCHECKS, 0.99);
        printf("%12s %10.1f %10u %10u %10u %10u %8.1f%%\n", what[k], build_ms[k], p50[k],
               pct(ns[k], NCHECKS, 0.9), p99[k], pct(ns[k], NCHECKS, 0.999),
               100.0 * (double)allowed[k] / NCHECKS);
        kl_snapshot_release(snap[k]);
        free(ns[k]);
    }
    printf("ratio 5 deep/no groups: p50 %.2f, p99 %.2f (target: p99 < 1000 ns, ratio < 2)\n",
           p50[0] ? (double)p50[1] / p50[0] : 0.0, p99[0] ? (double)p99[1] / p99[0] : 0.0);
    free(specs);
}

int main(void)
{
    world w;
    w.principals = calloc(NPRINCIPALS, sizeof(*w.principals));
    w.subs = calloc(NSUBS, sizeof(*w.subs));
    w.scopes = calloc(sizes[NSIZES - 1], sizeof(*w.scopes));
    w.ids = calloc(sizes[NSIZES - 1], sizeof(*w.ids));
    w.as = calloc(sizes[NSIZES - 1], sizeof(*w.as));
    spec *specs[NSIZES];
    uint32_t *ns[NSIZES];
    kl_rbac_index *ix[NSIZES];
    double build_ms[NSIZES];
    size_t allowed[NSIZES] = {0};
    if (!w.principals || !w.subs || !w.scopes || !w.ids || !w.as)
        return 1;
    for (size_t i = 0; i < NPRINCIPALS; i++)
        guid(w.principals[i]);
    for (size_t i = 0; i < NSUBS; i++)
        guid(w.subs[i]);

    /* The indexes copy what they need, so one assignment buffer serves all sizes. */
    for (size_t k = 0; k < NSIZES; k++) {
        size_t n = sizes[k];
        specs[k] = calloc(NSPECS, sizeof(spec));
        ns[k] = calloc(NCHECKS, sizeof(uint32_t));
        if (!specs[k] || !ns[k])
            return 1;
        make_assignments(&w, n);
        char err[256];
        uint64_t t0 = now_ns();
        int rc = kl_rbac_index_build(NULL, 0, w.as, n, &ix[k], err, sizeof(err));
        build_ms[k] = (double)(now_ns() - t0) / 1e6;
        if (rc) {
            fprintf(stderr, "build failed: %s: %s\n", kl_err_str(rc), err);
            return 1;
        }
        make_specs(&w, n, specs[k]);
    }

    /* Baseline: the timer around an empty call. */
    size_t unused = 0;
    run(empty_call, NULL, specs[0], ns[0], 0, NCHECKS, &unused);
    qsort(ns[0], NCHECKS, sizeof(uint32_t), cmp_u32);
    uint32_t base = pct(ns[0], NCHECKS, 0.5);
    printf("rbac check latency: %d checks per size in %d interleaved rounds, %d principals\n",
           NCHECKS, ROUNDS, NPRINCIPALS);
    printf("timer baseline (empty timed call): p50 %u ns, p99 %u ns; subtracted below\n", base,
           pct(ns[0], NCHECKS, 0.99));

    const size_t per = NCHECKS / ROUNDS;
    for (size_t r = 0; r < ROUNDS; r++)
        for (size_t k = 0; k < NSIZES; k++)
            run(timed_check, ix[k], specs[k], ns[k], r * per, per, &allowed[k]);

    printf("%12s %10s %10s %10s %10s %10s %9s\n", "assignments", "build ms", "p50 ns", "p90 ns",
           "p99 ns", "p99.9 ns", "allowed");
    uint32_t p50[NSIZES], p99[NSIZES];
    for (size_t k = 0; k < NSIZES; k++) {
        for (size_t i = 0; i < NCHECKS; i++)
            ns[k][i] = ns[k][i] > base ? ns[k][i] - base : 0;
        qsort(ns[k], NCHECKS, sizeof(uint32_t), cmp_u32);
        p50[k] = pct(ns[k], NCHECKS, 0.5);
        p99[k] = pct(ns[k], NCHECKS, 0.99);
        printf("%12zu %10.1f %10u %10u %10u %10u %8.1f%%\n", sizes[k], build_ms[k], p50[k],
               pct(ns[k], NCHECKS, 0.9), p99[k], pct(ns[k], NCHECKS, 0.999),
               100.0 * (double)allowed[k] / NCHECKS);
        kl_rbac_index_free(ix[k]);
        free(specs[k]);
        free(ns[k]);
    }
    size_t last = NSIZES - 1;
    printf("ratio %zu/%zu assignments: p50 %.2f, p99 %.2f (target: p99 < 1000 ns, ratio < 2)\n",
           sizes[last], sizes[0], p50[0] ? (double)p50[last] / p50[0] : 0.0,
           p99[0] ? (double)p99[last] / p99[0] : 0.0);
    bench_groups(&w, base);
    free(w.principals);
    free(w.subs);
    free(w.scopes);
    free(w.ids);
    free(w.as);
    return 0;
}
