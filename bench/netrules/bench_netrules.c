/* Cost of one network-rule check (kl_netrules_match) against an account's compiled
 * ipRules, for 1, 100, 1,000 and 4,096 random IPv4 /24 rules: nanoseconds per lookup
 * over a stream of random caller addresses (half inside some rule). Run by
 * bench/gateway/run beside the end-to-end numbers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/limits.h"
#include "policy/netrules.h"

static uint64_t state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void)
{
    static const size_t sizes[] = {1, 100, 1000, KL_MAX_NETWORK_RULES};
    enum { N_ADDR = 1 << 16, ROUNDS = 200 };
    kl_netaddr *addrs = malloc(N_ADDR * sizeof(*addrs));
    kl_netrange *r = malloc(KL_MAX_NETWORK_RULES * sizeof(*r));
    if (!addrs || !r)
        return 1;
    printf("%-8s %10s %12s\n", "rules", "ranges", "ns/lookup");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        for (size_t i = 0; i < n; i++) {
            char text[32];
            uint32_t v = (uint32_t)rnd();
            int len = snprintf(text, sizeof(text), "%u.%u.%u.0/24", v >> 24, (v >> 16) & 255,
                               (v >> 8) & 255);
            if (kl_netrules_parse(text, (size_t)len, &r[i]) != 0)
                return 1;
        }
        kl_netrules *nr = NULL;
        if (kl_netrules_compile(r, n, &nr) != 0)
            return 1;
        for (size_t i = 0; i < N_ADDR; i++) {
            /* Half the callers inside a rule, half anywhere. */
            addrs[i] = (i & 1) ? r[rnd() % n].first : (kl_netaddr){0, 0xffff00000000ULL};
            addrs[i].lo |= (i & 1) ? (rnd() & 0xff) : (rnd() & 0xffffffffULL);
        }
        size_t hits = 0;
        double t0 = now_ns();
        for (int k = 0; k < ROUNDS; k++)
            for (size_t i = 0; i < N_ADDR; i++)
                hits += kl_netrules_match(nr, &addrs[i]);
        double per = (now_ns() - t0) / ((double)ROUNDS * N_ADDR);
        printf("%-8zu %10zu %12.1f   (%zu%% matched)\n", n, kl_netrules_ranges(nr), per,
               hits * 100 / ((size_t)ROUNDS * N_ADDR));
        kl_netrules_free(nr);
    }
    free(addrs);
    free(r);
    return 0;
}
