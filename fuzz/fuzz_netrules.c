/* Fuzz target for the network-rule parsers (policy/netrules.h): rules come from the
 * control plane, addresses from X-Forwarded-For. Checks: an accepted rule is a range
 * with first <= last whose ends both match the set compiled from it, and whose first
 * address, printed and parsed again, is itself; an accepted address prints and parses
 * back to itself and matches the set of itself; and compiling any prefix of the input's
 * rules (split on newlines) gives a set agreeing with a plain scan of them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/limits.h"
#include "policy/netrules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static int cmp(const kl_netaddr *a, const kl_netaddr *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    return a->lo != b->lo ? (a->lo < b->lo ? -1 : 1) : 0;
}

static bool in_any(const kl_netrange *r, size_t n, const kl_netaddr *a)
{
    for (size_t i = 0; i < n; i++)
        if (cmp(&r[i].first, a) <= 0 && cmp(a, &r[i].last) <= 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    kl_netrange one;
    if (kl_netrules_parse(s, size, &one) == 0) {
        CHECK(cmp(&one.first, &one.last) <= 0);
        kl_netrules *nr = NULL;
        CHECK(kl_netrules_compile(&one, 1, &nr) == 0);
        CHECK(kl_netrules_match(nr, &one.first) && kl_netrules_match(nr, &one.last));
        kl_netrules_free(nr);
        char text[64];
        kl_netaddr back;
        kl_netaddr_format(&one.first, text, sizeof(text));
        CHECK(kl_netaddr_parse(text, strlen(text), &back) == 0 && cmp(&back, &one.first) == 0);
    }
    kl_netaddr a;
    if (kl_netaddr_parse(s, size, &a) == 0) {
        char text[64];
        kl_netaddr back;
        kl_netaddr_format(&a, text, sizeof(text));
        CHECK(kl_netaddr_parse(text, strlen(text), &back) == 0 && cmp(&back, &a) == 0);
        kl_netrange r = {a, a};
        kl_netrules *nr = NULL;
        CHECK(kl_netrules_compile(&r, 1, &nr) == 0 && kl_netrules_match(nr, &a));
        kl_netrules_free(nr);
    }

    /* Many rules, one a line; every accepted one goes into the set. */
    enum { MAX = 64 };
    kl_netrange r[MAX];
    size_t n = 0;
    for (size_t i = 0, start = 0; i <= size && n < MAX; i++) {
        if (i == size || s[i] == '\n') {
            if (kl_netrules_parse(s + start, i - start, &r[n]) == 0)
                n++;
            start = i + 1;
        }
    }
    kl_netrules *nr = NULL;
    CHECK(kl_netrules_compile(r, n, &nr) == 0);
    CHECK(kl_netrules_ranges(nr) <= n);
    for (size_t i = 0; i < n; i++) {
        kl_netaddr probes[4] = {r[i].first, r[i].last, r[i].first, r[i].last};
        probes[2].lo--;
        probes[3].lo++;
        for (int p = 0; p < 4; p++)
            CHECK(kl_netrules_match(nr, &probes[p]) == in_any(r, n, &probes[p]));
    }
    kl_netrules_free(nr);
    return 0;
}
