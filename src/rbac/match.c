/* Compiled action patterns: each pattern is lower-cased once and split at its stars, so a
 * check is a few length tests and memcmp/memmem calls with no allocation. */
#include "rbac/match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "common/limits.h"
#include "rbac/ascii.h"

typedef struct pat {
    uint32_t off;    /* into the matcher's character block */
    uint32_t len;    /* pattern length */
    uint32_t head;   /* literal bytes before the first '*' (== len without a star) */
    uint32_t tail;   /* literal bytes after the last '*' */
    uint32_t minlen; /* shortest action this pattern can match */
    bool star;
} pat;

struct kl_rbac_matcher {
    size_t n;
    bool all;    /* some pattern is a lone "*" */
    pat *pats;   /* n entries, inside this allocation */
    char *chars; /* lower-cased patterns, back to back, inside this allocation */
};

static bool printable(char c)
{
    return c > 0x20 && c < 0x7f;
}

int kl_rbac_pattern_check(const char *pattern)
{
    if (!pattern || !pattern[0])
        return KL_EINVAL;
    size_t n = strnlen(pattern, KL_MAX_ACTION + 1);
    if (n > KL_MAX_ACTION)
        return KL_ETOOBIG;
    for (size_t i = 0; i < n; i++)
        if (!printable(pattern[i]))
            return KL_EINVAL;
    return 0;
}

int kl_rbac_action_normalize(const char *action, char *out, size_t *len)
{
    return kl_rbac_lc_name_copy(action, KL_MAX_ACTION, out, len);
}

/* A star whose neighbours are both '/' may also stand for nothing at all, the two slashes
 * then collapsing into one; p[i] is the star. */
static bool collapsible(const char *p, size_t len, size_t i)
{
    return i > 0 && p[i - 1] == '/' && i + 1 < len && p[i + 1] == '/';
}

static void compile_one(const char *src, char *dst, pat *pt, uint32_t off)
{
    size_t len = strlen(src);
    size_t stars = 0, folds = 0, first = len, last = len;
    for (size_t i = 0; i < len; i++) {
        dst[i] = kl_ascii_lower(src[i]);
        if (src[i] == '*') {
            if (first == len)
                first = i;
            last = i;
            stars++;
        }
    }
    for (size_t i = 0; i < len; i++)
        if (dst[i] == '*' && collapsible(dst, len, i))
            folds++;
    pt->off = off;
    pt->len = (uint32_t)len;
    pt->star = stars > 0;
    pt->head = (uint32_t)first;
    pt->tail = stars ? (uint32_t)(len - last - 1) : 0;
    pt->minlen = (uint32_t)(len - stars - folds);
}

int kl_rbac_matcher_new(const char *const *patterns, size_t n, kl_rbac_matcher **out)
{
    *out = NULL;
    if (n > KL_MAX_ROLE_PATTERNS)
        return KL_ETOOBIG;
    if (n && !patterns)
        return KL_EINVAL;
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = kl_rbac_pattern_check(patterns[i]);
        if (rc)
            return rc;
        chars += strlen(patterns[i]);
    }
    /* One block: header, pattern table, characters. */
    size_t size = sizeof(kl_rbac_matcher) + n * sizeof(pat) + chars + 1;
    kl_rbac_matcher *m = calloc(1, size);
    if (!m)
        return KL_ENOMEM;
    m->n = n;
    m->pats = (pat *)(m + 1);
    m->chars = (char *)(m->pats + n);
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        compile_one(patterns[i], m->chars + off, &m->pats[i], off);
        if (m->pats[i].len == 1 && m->chars[off] == '*')
            m->all = true;
        off += m->pats[i].len;
    }
    *out = m;
    return 0;
}

void kl_rbac_matcher_free(kl_rbac_matcher *m)
{
    free(m);
}

size_t kl_rbac_matcher_count(const kl_rbac_matcher *m)
{
    return m ? m->n : 0;
}

/* Glob match of one pattern with stars. The literal pieces between stars are placed
 * left to right at their earliest position; that is optimal because a piece that ends
 * sooner leaves every later piece at least as much room. */
static bool match_star(const char *p, const pat *pt, const char *s, size_t slen)
{
    size_t plen = pt->len, tail = pt->tail;
    if (slen < pt->minlen)
        return false;
    if (memcmp(s, p, pt->head) != 0)
        return false;
    if (memcmp(s + slen - tail, p + plen - tail, tail) != 0)
        return false;
    size_t cur = pt->head; /* bytes of s consumed */
    size_t i = pt->head;   /* p[i] is a star */
    for (;;) {
        bool fold = collapsible(p, plen, i);
        size_t from = fold ? cur - 1 : cur;
        const char *piece = p + i + 1;
        const char *next = memchr(piece, '*', plen - (i + 1));
        if (!next) /* the tail, already compared; it must not start before 'from' */
            return slen - tail >= from;
        size_t plen_piece = (size_t)(next - piece);
        size_t k = (size_t)(next - p);
        /* The tail may share its leading '/' with this piece if the last star folds. */
        size_t end = slen - tail + (collapsible(p, plen, plen - tail - 1) ? 1 : 0);
        if (end > slen)
            end = slen;
        if (plen_piece) {
            if (end < from || end - from < plen_piece)
                return false;
            const char *at = memmem(s + from, end - from, piece, plen_piece);
            if (!at)
                return false;
            cur = (size_t)(at - s) + plen_piece;
        } else {
            cur = from;
        }
        i = k;
    }
}

bool kl_rbac_matcher_match(const kl_rbac_matcher *m, const char *action_lc, size_t len)
{
    if (!m)
        return false;
    if (m->all)
        return true;
    for (size_t i = 0; i < m->n; i++) {
        const pat *pt = &m->pats[i];
        const char *p = m->chars + pt->off;
        if (!pt->star) {
            if (pt->len == len && memcmp(p, action_lc, len) == 0)
                return true;
        } else if (match_star(p, pt, action_lc, len)) {
            return true;
        }
    }
    return false;
}
