/* The snapshot's application credentials (see appcreds.h): certificates parsed into
 * verification keys once per snapshot, kept in one array sorted by client id. */
#include "policy/appcreds.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"

typedef struct entry {
    char *app_id; /* lower case */
    char *key_id;
    unsigned char *der;
    kl_jws_key *key;
    size_t order; /* insertion order, so a client's certificates keep theirs */
    kl_client_cert pub;
} entry;

struct kl_appcreds_builder {
    entry *e;
    size_t n, cap;
};

struct kl_appcreds {
    entry *e; /* sorted by (app_id, order) */
    size_t n;
    kl_client_cert *certs; /* certs[i] = e[i].pub, contiguous for kl_appcreds_certs */
};

static void entry_clear(entry *x)
{
    free(x->app_id);
    free(x->key_id);
    free(x->der);
    kl_jws_key_free(x->key);
    memset(x, 0, sizeof(*x));
}

kl_appcreds_builder *kl_appcreds_builder_new(void)
{
    return calloc(1, sizeof(kl_appcreds_builder));
}

void kl_appcreds_builder_free(kl_appcreds_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        entry_clear(&b->e[i]);
    free(b->e);
    free(b);
}

int kl_appcreds_builder_cert(kl_appcreds_builder *b, const char *app_id, const char *key_id,
                             const char *cert_b64, int64_t start_s, int64_t end_s)
{
    if (!b || !app_id || !key_id || !cert_b64)
        return KL_EINVAL;
    size_t bl = strlen(cert_b64);
    if (bl == 0 || bl > 4 * ((KL_MAX_APP_CERT_DER + 2) / 3))
        return KL_EINVAL;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        entry *ne = realloc(b->e, cap * sizeof(*ne));
        if (!ne)
            return KL_ENOMEM;
        b->e = ne;
        b->cap = cap;
    }
    entry x = {0};
    int err = 0;
    size_t dl = bl / 4 * 3 + 3;
    if (!(x.der = malloc(dl)) || !(x.app_id = kl_strndup(app_id, strlen(app_id))) ||
        !(x.key_id = kl_strndup(key_id, strlen(key_id)))) {
        err = KL_ENOMEM;
        goto fail;
    }
    for (char *p = x.app_id; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    int got = kl_b64_decode(cert_b64, bl, x.der, dl);
    if (got <= 0) {
        err = KL_EINVAL;
        goto fail;
    }
    if ((err = kl_jws_key_from_cert_der(x.der, (size_t)got, KL_JWS_RS256 | KL_JWS_PS256, &x.key)))
        goto fail;
    x.order = b->n;
    x.pub = (kl_client_cert){.key = x.key,
                             .der = x.der,
                             .der_len = (size_t)got,
                             .not_before = start_s,
                             .not_after = end_s,
                             .key_id = x.key_id};
    b->e[b->n++] = x;
    return 0;
fail:
    entry_clear(&x);
    return err == KL_ENOMEM ? KL_ENOMEM : KL_EINVAL;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->app_id, y->app_id);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

int kl_appcreds_builder_finish(kl_appcreds_builder *b, kl_appcreds **out)
{
    if (!b || !out)
        return KL_EINVAL;
    *out = NULL;
    kl_appcreds *ac = calloc(1, sizeof(*ac));
    if (!ac)
        return KL_ENOMEM;
    if (b->n && !(ac->certs = calloc(b->n, sizeof(*ac->certs)))) {
        free(ac);
        return KL_ENOMEM;
    }
    qsort(b->e, b->n, sizeof(*b->e), cmp_entry);
    ac->e = b->e;
    ac->n = b->n;
    /* The keys and DER moved with the entries; the public views point into them. */
    for (size_t i = 0; i < ac->n; i++)
        ac->certs[i] = ac->e[i].pub;
    b->e = NULL;
    b->n = b->cap = 0;
    *out = ac;
    return 0;
}

void kl_appcreds_free(kl_appcreds *ac)
{
    if (!ac)
        return;
    for (size_t i = 0; i < ac->n; i++)
        entry_clear(&ac->e[i]);
    free(ac->e);
    free(ac->certs);
    free(ac);
}

const kl_client_cert *kl_appcreds_certs(const kl_appcreds *ac, const char *client_id, size_t *n)
{
    *n = 0;
    if (!ac || !client_id || ac->n == 0)
        return NULL;
    char lk[KL_MAX_PRINCIPAL_ID + 1];
    size_t cl = strnlen(client_id, sizeof(lk));
    if (cl >= sizeof(lk))
        return NULL;
    for (size_t i = 0; i <= cl; i++)
        lk[i] = (client_id[i] >= 'A' && client_id[i] <= 'Z') ? (char)(client_id[i] - 'A' + 'a')
                                                              : client_id[i];
    /* First entry with app_id >= lk. */
    size_t lo = 0, hi = ac->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ac->e[mid].app_id, lk) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < ac->n && strcmp(ac->e[end].app_id, lk) == 0)
        end++;
    *n = end - lo;
    return *n ? &ac->certs[lo] : NULL;
}
