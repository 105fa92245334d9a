/* Times a full snapshot rebuild (kl_policy_build: read everything, build every index)
 * against the store named on the command line, several times, and prints the median
 * and the slowest in milliseconds, then the same for deriving the index with one
 * principal's assignments replaced, and for the whole incremental apply after a role
 * assignment write (kl_policy_apply). Used by bench/revocation/run beside the
 * time a change takes to be in force. A benchmark, not a test. */
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "crypto/keys.h"
#include "policy/build.h"
#include "rbac/builtin.h"
#include "rbac/rbac.h"
#include "store/store.h"

#define RUNS 7

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_rebuild STORE-URL\n");
        return 2;
    }
    /* Builds open no sealed value unless a deployment has an upstream credential; the
     * benchmark's store has none, so any KEK will do. */
    unsigned char kek[32] = {0};
    kl_keys *keys = NULL;
    kl_store *st = NULL;
    if (kl_keys_from_bytes(kek, sizeof(kek), &keys) != 0 || kl_store_open(argv[1], &st) != 0) {
        fprintf(stderr, "bench_rebuild: cannot open the store\n");
        return 1;
    }
    double ms[RUNS], dms[RUNS];
    kl_snapshot *last = NULL;
    for (int i = 0; i < RUNS; i++) {
        kl_snapshot *s = NULL;
        uint64_t t0 = kl_now_mono_us();
        if (kl_policy_build(st, keys, &s) != 0) {
            fprintf(stderr, "bench_rebuild: build failed\n");
            return 1;
        }
        ms[i] = (double)(kl_now_mono_us() - t0) / 1000.0;
        kl_snapshot_release(last);
        last = s;
    }
    /* What an incremental apply costs instead: one principal's assignments replaced
     * (here: removed) by deriving the index, in a chain as a node applies changes. */
    kl_rbac_index *ix = (kl_rbac_index *)kl_snapshot_rbac(last);
    kl_rbac_index_retain(ix);
    for (int i = 0; i < RUNS; i++) {
        char p[40];
        snprintf(p, sizeof(p), "00000000-0000-4000-8000-%012x", i + 1);
        const char *ps[1] = {p};
        kl_rbac_index *d = NULL;
        uint64_t t0 = kl_now_mono_us();
        if (kl_rbac_index_derive(ix, ps, 1, NULL, 0, &d, NULL, 0) != 0) {
            fprintf(stderr, "bench_rebuild: derive failed\n");
            return 1;
        }
        dms[i] = (double)(kl_now_mono_us() - t0) / 1000.0;
        kl_rbac_index_free(ix);
        ix = d;
    }
    kl_rbac_index_free(ix);
    kl_snapshot_release(last);
    /* And the whole incremental apply a writing node does after its commit
     * (kl_policy_apply: what changed since its generation, the derive, the publish), for
     * a role assignment written through the store. */
    double ams[RUNS];
    kl_snapshot_holder *h = kl_snapshot_holder_new();
    kl_policy *pol = NULL;
    if (!h || kl_policy_new(st, keys, h, &pol) != 0 || kl_policy_apply(pol, NULL) != 0) {
        fprintf(stderr, "bench_rebuild: first build failed\n");
        return 1;
    }
    for (int i = 0; i < RUNS; i++) {
        char p[40], name[40];
        snprintf(p, sizeof(p), "00000000-0000-4000-8000-%012x", 100 + i);
        snprintf(name, sizeof(name), "20000000-0000-4000-8000-%012llx",
                 (unsigned long long)kl_now_mono_us() + (unsigned)i);
        kl_store_role_assignment ra = {.name = name,
                                       .scope = "/subscriptions/bench-apply",
                                       .principal_id = p,
                                       .role_id = KL_ROLE_READER,
                                       .created_at = 1,
                                       .updated_at = 1};
        if (kl_store_put_role_assignment(st, &ra, true, NULL) != 0) {
            fprintf(stderr, "bench_rebuild: write failed\n");
            return 1;
        }
        uint64_t t0 = kl_now_mono_us();
        if (kl_policy_apply(pol, "/subscriptions/bench-apply") != 0) {
            fprintf(stderr, "bench_rebuild: apply failed\n");
            return 1;
        }
        ams[i] = (double)(kl_now_mono_us() - t0) / 1000.0;
    }
    kl_policy_free(pol);
    kl_snapshot_holder_free(h);
    qsort(ms, RUNS, sizeof(ms[0]), cmp);
    qsort(dms, RUNS, sizeof(dms[0]), cmp);
    qsort(ams, RUNS, sizeof(ams[0]), cmp);
    printf("%.1f %.1f %.3f %.3f %.3f %.3f\n", ms[RUNS / 2], ms[RUNS - 1], dms[RUNS / 2],
           dms[RUNS - 1], ams[RUNS / 2], ams[RUNS - 1]);
    kl_store_close(st);
    kl_keys_free(keys);
    return 0;
}
