/* Group closures for the snapshot (see groups.h). Each principal's groups are found
 * breadth first over "member of" edges with a visit stamp per group, so the whole
 * closure costs the sum of its sizes, and a cycle (which the store refuses) would
 * still end. */
#include "policy/groups.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "common/limits.h"
#include "common/log.h"

typedef struct edge {
    char *group, *member;
} edge;

struct kl_groups_builder {
    edge *e;
    size_t n, cap;
};

static char *lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    kl_ascii_lower_copy(c, s, n);
    return c;
}

int kl_groups_builder_add(kl_groups_builder **gb, const char *group, const char *member)
{
    if (!gb || !group || !member)
        return KL_EINVAL;
    if (!*gb && !(*gb = calloc(1, sizeof(**gb))))
        return KL_ENOMEM;
    kl_groups_builder *b = *gb;
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        edge *ne = realloc(b->e, ncap * sizeof(*ne));
        if (!ne)
            return KL_ENOMEM;
        b->e = ne;
        b->cap = ncap;
    }
    edge x = {lower_dup(group), lower_dup(member)};
    if (!x.group || !x.member) {
        free(x.group);
        free(x.member);
        return KL_ENOMEM;
    }
    b->e[b->n++] = x;
    return 0;
}

void kl_groups_builder_free(kl_groups_builder *gb)
{
    if (!gb)
        return;
    for (size_t i = 0; i < gb->n; i++) {
        free(gb->e[i].group);
        free(gb->e[i].member);
    }
    free(gb->e);
    free(gb);
}

/* A resolved edge: principal indexes. */
typedef struct link {
    uint32_t member, group;
} link;

static int cmp_link(const void *a, const void *b)
{
    const link *x = a, *y = b;
    if (x->member != y->member)
        return x->member < y->member ? -1 : 1;
    return x->group < y->group ? -1 : x->group > y->group;
}

int kl_groups_finish(kl_groups_builder *gb, kl_principal *principals, size_t n,
                     const kl_rbac_index *ix,
                     const kl_principal *(*find)(const void *ctx, const char *oid), const void *ctx,
                     const char ***ids)
{
    *ids = NULL;
    if (!gb || gb->n == 0 || n == 0)
        return 0;
    int err = 0;
    link *links = malloc(gb->n * sizeof(*links));
    size_t *first = calloc(n + 1, sizeof(*first)); /* links of member i: first[i]..first[i+1] */
    uint32_t *stamp = calloc(n, sizeof(*stamp));
    uint32_t *queue = malloc((KL_MAX_GROUP_MEMBERSHIPS + 1) * sizeof(*queue));
    uint32_t *flat = NULL; /* every closure, one after the other */
    size_t *off = calloc(n + 1, sizeof(*off));
    size_t nl = 0, nflat = 0, capflat = 0;
    if (!links || !first || !stamp || !queue || !off) {
        err = KL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < gb->n; i++) {
        const kl_principal *g = find(ctx, gb->e[i].group);
        const kl_principal *m = find(ctx, gb->e[i].member);
        if (g && m)
            links[nl++] = (link){(uint32_t)(m - principals), (uint32_t)(g - principals)};
    }
    qsort(links, nl, sizeof(*links), cmp_link);
    for (size_t i = 0; i < nl; i++)
        first[links[i].member + 1]++;
    for (size_t i = 0; i < n; i++)
        first[i + 1] += first[i];
    for (size_t i = 0; i < n; i++) {
        off[i] = nflat;
        if (first[i] == first[i + 1])
            continue;
        size_t head = 0, tail = 0;
        bool truncated = false;
        stamp[i] = (uint32_t)i + 1; /* a principal is not its own group */
        queue[tail++] = (uint32_t)i;
        while (head < tail) {
            uint32_t at = queue[head++];
            for (size_t k = first[at]; k < first[at + 1]; k++) {
                uint32_t g = links[k].group;
                if (stamp[g] == (uint32_t)i + 1)
                    continue;
                if (tail > KL_MAX_GROUP_MEMBERSHIPS) {
                    truncated = true;
                    break;
                }
                stamp[g] = (uint32_t)i + 1;
                queue[tail++] = g;
            }
        }
        if (truncated)
            kl_log(KL_LOG_WARN, "group_memberships_truncated", "principal", principals[i].object_id,
                   NULL);
        size_t cnt = tail - 1;
        if (nflat + cnt > capflat) {
            size_t ncap = capflat ? capflat * 2 : 256;
            while (ncap < nflat + cnt)
                ncap *= 2;
            uint32_t *nf = realloc(flat, ncap * sizeof(*nf));
            if (!nf) {
                err = KL_ENOMEM;
                goto out;
            }
            flat = nf;
            capflat = ncap;
        }
        for (size_t k = 1; k < tail; k++)
            if (kl_rbac_index_holds(ix, principals[queue[k]].object_id))
                flat[nflat++] = queue[k];
    }
    off[n] = nflat;
    if (nflat) {
        const char **out = malloc(nflat * sizeof(*out));
        if (!out) {
            err = KL_ENOMEM;
            goto out;
        }
        for (size_t k = 0; k < nflat; k++)
            out[k] = principals[flat[k]].object_id;
        for (size_t i = 0; i < n; i++) {
            principals[i].groups = off[i + 1] > off[i] ? out + off[i] : NULL;
            principals[i].n_groups = off[i + 1] - off[i];
        }
        *ids = out;
    }
out:
    free(links);
    free(first);
    free(stamp);
    free(queue);
    free(flat);
    free(off);
    return err;
}
