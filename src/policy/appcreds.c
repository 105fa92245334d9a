/* The snapshot's application credentials (see appcreds.h): certificates parsed into
 * verification keys once per snapshot, kept in one array sorted by client id. */
#include "policy/appcreds.h"

#include <jansson.h>
#include <stddef.h>
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

typedef struct fed_entry {
    char *app_id; /* lower case */
    char *id, *issuer, *subject;
    char **audiences;
    size_t n_audiences;
    size_t order;
} fed_entry;

struct kl_appcreds_builder {
    entry *e;
    size_t n, cap;
    fed_entry *f;
    size_t nf, capf;
};

struct kl_appcreds {
    entry *e; /* sorted by (app_id, order) */
    size_t n;
    kl_client_cert *certs; /* certs[i] = e[i].pub, contiguous for kl_appcreds_certs */
    fed_entry *f;          /* sorted by (app_id, order) */
    size_t nf;
    kl_federated_cred *feds; /* feds[i] views f[i] */
};

static void fed_clear(fed_entry *x)
{
    free(x->app_id);
    free(x->id);
    free(x->issuer);
    free(x->subject);
    for (size_t i = 0; i < x->n_audiences; i++)
        free(x->audiences[i]);
    free(x->audiences);
    memset(x, 0, sizeof(*x));
}

static void lower_in_place(char *p)
{
    for (; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

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
    for (size_t i = 0; i < b->nf; i++)
        fed_clear(&b->f[i]);
    free(b->f);
    free(b);
}

int kl_appcreds_builder_federated(kl_appcreds_builder *b, const char *app_id, const char *id,
                                  const char *issuer, const char *subject,
                                  const char *audiences_json)
{
    if (!b || !app_id || !id || !issuer || !subject || !audiences_json)
        return KL_EINVAL;
    json_t *a = json_loads(audiences_json, 0, NULL);
    if (!json_is_array(a)) {
        json_decref(a);
        return KL_EINVAL;
    }
    if (b->nf == b->capf) {
        size_t cap = b->capf ? 2 * b->capf : 16;
        fed_entry *nf = realloc(b->f, cap * sizeof(*nf));
        if (!nf) {
            json_decref(a);
            return KL_ENOMEM;
        }
        b->f = nf;
        b->capf = cap;
    }
    fed_entry x = {0};
    int err = 0;
    size_t na = json_array_size(a);
    if (!(x.app_id = kl_strndup(app_id, strlen(app_id))) || !(x.id = kl_strndup(id, strlen(id))) ||
        !(x.issuer = kl_strndup(issuer, strlen(issuer))) ||
        !(x.subject = kl_strndup(subject, strlen(subject))) ||
        (na && !(x.audiences = calloc(na, sizeof(char *)))))
        err = KL_ENOMEM;
    for (size_t i = 0; !err && i < na; i++) {
        const char *v = json_string_value(json_array_get(a, i));
        if (!v)
            err = KL_EINVAL;
        else if (!(x.audiences[x.n_audiences++] = kl_strndup(v, strlen(v))))
            err = KL_ENOMEM;
    }
    json_decref(a);
    if (err) {
        fed_clear(&x);
        return err;
    }
    lower_in_place(x.app_id);
    x.order = b->nf;
    b->f[b->nf++] = x;
    return 0;
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
    lower_in_place(x.app_id);
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

static int cmp_fed(const void *a, const void *b)
{
    const fed_entry *x = a, *y = b;
    int c = strcmp(x->app_id, y->app_id);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
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
    if ((b->n && !(ac->certs = calloc(b->n, sizeof(*ac->certs)))) ||
        (b->nf && !(ac->feds = calloc(b->nf, sizeof(*ac->feds))))) {
        free(ac->certs);
        free(ac);
        return KL_ENOMEM;
    }
    if (b->nf)
        qsort(b->f, b->nf, sizeof(*b->f), cmp_fed);
    ac->f = b->f;
    ac->nf = b->nf;
    for (size_t i = 0; i < ac->nf; i++)
        ac->feds[i] = (kl_federated_cred){.id = ac->f[i].id,
                                          .issuer = ac->f[i].issuer,
                                          .subject = ac->f[i].subject,
                                          .audiences = (const char *const *)ac->f[i].audiences,
                                          .n_audiences = ac->f[i].n_audiences};
    b->f = NULL;
    b->nf = b->capf = 0;
    if (b->n)
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
    for (size_t i = 0; i < ac->nf; i++)
        fed_clear(&ac->f[i]);
    free(ac->f);
    free(ac->feds);
    free(ac);
}

/* Lower-cases client_id into lk; false if it does not fit. */
static bool lower_key(const char *client_id, char lk[KL_MAX_PRINCIPAL_ID + 1])
{
    size_t cl = strnlen(client_id, KL_MAX_PRINCIPAL_ID + 1);
    if (cl > KL_MAX_PRINCIPAL_ID)
        return false;
    for (size_t i = 0; i <= cl; i++)
        lk[i] = (client_id[i] >= 'A' && client_id[i] <= 'Z') ? (char)(client_id[i] - 'A' + 'a')
                                                             : client_id[i];
    return true;
}

/* The run [*first, *first + return) of elements of base[0..n) (each `size` bytes, its
 * app id the char * at offset `off`) whose app id is lk; they are sorted by app id. */
static size_t run_of(const void *base, size_t n, size_t size, size_t off, const char *lk,
                     size_t *first)
{
    const unsigned char *b = base;
#define APP_AT(i) (*(char *const *)(b + (i)*size + off))
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(APP_AT(mid), lk) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < n && strcmp(APP_AT(end), lk) == 0)
        end++;
#undef APP_AT
    *first = lo;
    return end - lo;
}

const kl_client_cert *kl_appcreds_certs(const kl_appcreds *ac, const char *client_id, size_t *n)
{
    char lk[KL_MAX_PRINCIPAL_ID + 1];
    size_t first = 0;
    *n = 0;
    if (!ac || !client_id || ac->n == 0 || !lower_key(client_id, lk))
        return NULL;
    *n = run_of(ac->e, ac->n, sizeof(entry), offsetof(entry, app_id), lk, &first);
    return *n ? &ac->certs[first] : NULL;
}

const kl_federated_cred *kl_appcreds_federated(const kl_appcreds *ac, const char *client_id,
                                               size_t *n)
{
    char lk[KL_MAX_PRINCIPAL_ID + 1];
    size_t first = 0;
    *n = 0;
    if (!ac || !client_id || ac->nf == 0 || !lower_key(client_id, lk))
        return NULL;
    *n = run_of(ac->f, ac->nf, sizeof(fed_entry), offsetof(fed_entry, app_id), lk, &first);
    return *n ? &ac->feds[first] : NULL;
}

typedef struct jti_ctx {
    kl_store *st;
    int64_t now;
} jti_ctx;

static int use_jti(void *ctx, const char *client_id, const char *jti, int64_t exp)
{
    const jti_ctx *j = ctx;
    return kl_store_use_jti(j->st, client_id, jti, exp, j->now);
}

kl_assertion_reason kl_appcreds_check_assertion(const kl_appcreds *ac, kl_store *st,
                                                const char *client_id, const char *tok, size_t len,
                                                const char *token_endpoint_url, int64_t now_s,
                                                const char **key_id)
{
    if (key_id)
        *key_id = NULL;
    if (!st || !client_id)
        return KL_ASSERTION_MALFORMED;
    size_t n = 0;
    const kl_client_cert *certs = kl_appcreds_certs(ac, client_id, &n);
    const kl_client_cert *used = NULL;
    jti_ctx j = {.st = st, .now = now_s};
    kl_assertion_reason r = kl_assertion_check_cert(client_id, tok, len, token_endpoint_url, certs,
                                                    n, now_s, use_jti, &j, &used);
    if (r == KL_ASSERTION_OK && key_id)
        *key_id = used->key_id;
    return r;
}
