/* Times a full snapshot rebuild (kl_policy_build: read everything, build every index)
 * against the store named on the command line, several times, and prints the median
 * and the slowest in milliseconds. Used by bench/revocation/run beside the time a
 * change takes to be in force. A benchmark, not a test. */
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "crypto/keys.h"
#include "policy/build.h"
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
    double ms[RUNS];
    for (int i = 0; i < RUNS; i++) {
        kl_snapshot *s = NULL;
        uint64_t t0 = kl_now_mono_us();
        if (kl_policy_build(st, keys, &s) != 0) {
            fprintf(stderr, "bench_rebuild: build failed\n");
            return 1;
        }
        ms[i] = (double)(kl_now_mono_us() - t0) / 1000.0;
        kl_snapshot_release(s);
    }
    qsort(ms, RUNS, sizeof(ms[0]), cmp);
    printf("%.1f %.1f\n", ms[RUNS / 2], ms[RUNS - 1]);
    kl_store_close(st);
    kl_keys_free(keys);
    return 0;
}
