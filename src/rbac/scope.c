/* ARM scope grammar (see scope.h). One pass validates, lower-cases and splits the input
 * into segments with a byte table; a second pass over the few segments applies the
 * grammar. The check path needs only the lower-cased form; the canonical form is the
 * input with the fixed words respelled (same lengths), so both come from the same pass. */
#include "rbac/scope.h"

#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "rbac/ascii.h"
#include "rbac/scope_priv.h"

/* A valid scope of KL_MAX_SCOPE_DEPTH levels has far fewer segments than this (two per
 * level, plus "providers/{namespace}" pairs); more means too deep. */
#define MAX_SEGS (4 * KL_MAX_SCOPE_DEPTH)

typedef struct seg {
    uint16_t off, len;
} seg;

/* Validates in[0..len) (in[0] == '/', no trailing '/'), writes it lower-cased to
 * lc[0..len] and records the segments after the leading '/'. The byte loop has no
 * data-dependent branch: it notes every byte's position and advances past it only for
 * a '/', so a scope's many slashes cost no mispredictions. */
static int tokenize(const char *in, size_t len, char *lc, seg *segs, size_t *nsegs)
{
    uint16_t slash[KL_MAX_SCOPE + 1];
    size_t ns = 0;
    unsigned char bad = 0;
    lc[0] = '/';
    lc[len] = '\0';
    *nsegs = 0;
    if (len == 1)
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char v = kl_rbac_lc_scope[(unsigned char)in[i]];
        lc[i] = (char)v;
        bad |= (unsigned char)(v == 0);
        slash[ns] = (uint16_t)i;
        ns += v == '/';
    }
    if (bad)
        return KL_EINVAL;
    slash[ns++] = (uint16_t)len; /* the end closes the last segment */
    if (ns > MAX_SEGS)
        return KL_ETOOBIG;
    size_t start = 1;
    for (size_t k = 0; k < ns; k++) {
        size_t end = slash[k];
        /* Empty segments ("//") and "." or ".." (any all-dot name) are refused. */
        if (end == start)
            return KL_EINVAL;
        if (lc[start] == '.') {
            size_t j = start;
            while (j < end && lc[j] == '.')
                j++;
            if (j == end)
                return KL_EINVAL;
        }
        segs[k].off = (uint16_t)start;
        segs[k].len = (uint16_t)(end - start);
        start = end + 1;
    }
    *nsegs = ns;
    return 0;
}

typedef struct grammar {
    const char *lc; /* lower-cased input */
    const seg *segs;
    size_t nsegs;
    char *canon; /* NULL, or the canonical copy whose fixed words get respelled */
    uint16_t *level_len;
    size_t nlevels;
} grammar;

static bool word(const grammar *g, size_t i, const char *lower)
{
    size_t n = strlen(lower);
    return i < g->nsegs && g->segs[i].len == n && memcmp(g->lc + g->segs[i].off, lower, n) == 0;
}

static void respell(grammar *g, size_t i, const char *spelling)
{
    if (g->canon)
        memcpy(g->canon + g->segs[i].off, spelling, g->segs[i].len);
}

/* A level ends with segment i (the name just read). */
static int level(grammar *g, size_t i)
{
    if (g->nlevels >= KL_MAX_SCOPE_DEPTH)
        return KL_ETOOBIG;
    g->level_len[g->nlevels++] = (uint16_t)(g->segs[i].off + g->segs[i].len);
    return 0;
}

static int parse_segments(grammar *g)
{
    int rc;
    size_t i = 0, n = g->nsegs;
    g->level_len[0] = 1; /* "/" */
    g->nlevels = 1;
    if (n == 0)
        return 0;
    if (word(g, 0, "subscriptions")) {
        if (n < 2)
            return KL_EINVAL;
        respell(g, 0, "subscriptions");
        if ((rc = level(g, 1)))
            return rc;
        i = 2;
        if (word(g, i, "resourcegroups")) {
            if (i + 1 >= n)
                return KL_EINVAL;
            respell(g, i, "resourceGroups");
            if ((rc = level(g, i + 1)))
                return rc;
            i += 2;
        }
    }
    /* providers/{ns}/{type}/{name}[/{type}/{name}...], again after a name for extension
     * resources. */
    while (i < n) {
        if (!word(g, i, "providers") || i + 3 >= n)
            return KL_EINVAL;
        respell(g, i, "providers");
        i += 2; /* the word and the namespace */
        do {
            if (i + 1 >= n || word(g, i, "providers"))
                return KL_EINVAL;
            if ((rc = level(g, i + 1)))
                return rc;
            i += 2;
        } while (i < n && !word(g, i, "providers"));
    }
    return 0;
}

/* Shared front end: checks the frame, strips one trailing '/', tokenizes and parses.
 * *len is updated to the scope's length without the slash. */
static int parse(const char *in, size_t *len, char *lc, char *canon, uint16_t *level_len,
                 size_t *nlevels)
{
    int rc;
    size_t n = *len;
    if (!in || n == 0 || in[0] != '/')
        return KL_EINVAL;
    if (n > 1 && in[n - 1] == '/') {
        n--;
        if (in[n - 1] == '/')
            return KL_EINVAL;
    }
    if (n > KL_MAX_SCOPE)
        return KL_ETOOBIG;
    seg segs[MAX_SEGS];
    grammar g = {.lc = lc, .segs = segs, .canon = canon, .level_len = level_len};
    if ((rc = tokenize(in, n, lc, segs, &g.nsegs)))
        return rc;
    if (canon) {
        memcpy(canon, in, n);
        canon[n] = '\0';
    }
    if ((rc = parse_segments(&g)))
        return rc;
    *len = n;
    *nlevels = g.nlevels;
    return 0;
}

int kl_scope_parse_lower(const char *in, size_t len, char *out, size_t *outlen, uint16_t *level_len,
                         size_t *nlevels)
{
    int rc = parse(in, &len, out, NULL, level_len, nlevels);
    if (rc)
        return rc;
    *outlen = len;
    return 0;
}

int kl_scope_parse(const char *in, size_t len, kl_scope *out)
{
    if (!out)
        return KL_EINVAL;
    char lc[KL_MAX_SCOPE + 1];
    int rc = parse(in, &len, lc, out->text, out->level_len, &out->nlevels);
    if (rc) {
        out->text[0] = '\0';
        out->len = 0;
        out->nlevels = 0;
        return rc;
    }
    out->len = len;
    return 0;
}

bool kl_scope_equal(const kl_scope *a, const kl_scope *b)
{
    return a->len == b->len && strncasecmp(a->text, b->text, a->len) == 0;
}

bool kl_scope_covers(const kl_scope *above, const kl_scope *below)
{
    if (above->nlevels == 0 || below->nlevels < above->nlevels)
        return false;
    /* 'above' must be one of below's levels: same length as that level and equal text. */
    size_t n = below->level_len[above->nlevels - 1];
    return n == above->len && strncasecmp(above->text, below->text, n) == 0;
}

int kl_scope_covers_str(const char *above, const char *below, bool *covers)
{
    *covers = false;
    if (!above || !below)
        return KL_EINVAL;
    kl_scope a, b;
    int rc = kl_scope_parse(above, strlen(above), &a);
    if (!rc)
        rc = kl_scope_parse(below, strlen(below), &b);
    if (rc)
        return rc;
    *covers = kl_scope_covers(&a, &b);
    return 0;
}
