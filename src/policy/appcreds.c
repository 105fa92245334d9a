/* The snapshot's application credentials (see appcreds.h): certificates parsed into
 * verification keys once per snapshot, kept in one array sorted by client id. */
#include "policy/appcreds.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
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

/* An application's settings for user sign-in: public client, redirect URIs. */
typedef struct client_entry {
    char *app_id; /* lower case */
    bool public_client;
    char **uris;
    size_t n_uris;
} client_entry;

struct kl_appcreds_builder {
    entry *e;
    size_t n, cap;
    fed_entry *f;
    size_t nf, capf;
    client_entry *c;
    size_t nc, capc;
};

struct kl_appcreds {
    entry *e; /* sorted by (app_id, order) */
    size_t n;
    kl_client_cert *certs; /* certs[i] = e[i].pub, contiguous for kl_appcreds_certs */
    fed_entry *f;          /* sorted by (app_id, order) */
    size_t nf;
    kl_federated_cred *feds; /* feds[i] views f[i] */
    client_entry *c;         /* sorted by app_id, one per app */
    size_t nc;
};

static void client_clear(client_entry *x)
{
    free(x->app_id);
    for (size_t i = 0; i < x->n_uris; i++)
        free(x->uris[i]);
    free(x->uris);
    memset(x, 0, sizeof(*x));
}

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
    for (size_t i = 0; i < b->nc; i++)
        client_clear(&b->c[i]);
    free(b->c);
    free(b);
}

/* Appends the strings of the JSON array text list (NULL or "" for none) to x. */
static int add_uris(client_entry *x, const char *list)
{
    if (!list || !*list)
        return 0;
    json_t *a = json_loads(list, 0, NULL);
    int err = 0;
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (!json_is_array(a) || x->n_uris + n > KL_MAX_REDIRECT_URIS * 2)
        err = KL_EINVAL;
    char **nu = err || !n ? NULL : realloc(x->uris, (x->n_uris + n) * sizeof(char *));
    if (!err && n && !nu)
        err = KL_ENOMEM;
    if (nu)
        x->uris = nu;
    for (size_t i = 0; !err && i < n; i++) {
        const char *v = json_string_value(json_array_get(a, i));
        if (!v)
            err = KL_EINVAL;
        else if (!(x->uris[x->n_uris] = kl_strndup(v, strlen(v))))
            err = KL_ENOMEM;
        else
            x->n_uris++;
    }
    json_decref(a);
    return err;
}

int kl_appcreds_builder_client(kl_appcreds_builder *b, const char *app_id, bool public_client,
                               const char *web_redirect_uris, const char *public_redirect_uris)
{
    if (!b || !app_id)
        return KL_EINVAL;
    if (b->nc == b->capc) {
        size_t cap = b->capc ? 2 * b->capc : 16;
        client_entry *nc = realloc(b->c, cap * sizeof(*nc));
        if (!nc)
            return KL_ENOMEM;
        b->c = nc;
        b->capc = cap;
    }
    client_entry x = {.public_client = public_client};
    int err = (x.app_id = kl_strndup(app_id, strlen(app_id))) ? 0 : KL_ENOMEM;
    if (!err)
        err = add_uris(&x, web_redirect_uris);
    if (!err)
        err = add_uris(&x, public_redirect_uris);
    if (err) {
        client_clear(&x);
        return err;
    }
    kl_ascii_lower_inplace(x.app_id);
    b->c[b->nc++] = x;
    return 0;
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
    kl_ascii_lower_inplace(x.app_id);
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
    kl_ascii_lower_inplace(x.app_id);
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

static int cmp_client(const void *a, const void *b)
{
    const client_entry *x = a, *y = b;
    return strcmp(x->app_id, y->app_id);
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
    if (b->nc)
        qsort(b->c, b->nc, sizeof(*b->c), cmp_client);
    ac->c = b->c;
    ac->nc = b->nc;
    b->c = NULL;
    b->nc = b->capc = 0;
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
    for (size_t i = 0; i < ac->nc; i++)
        client_clear(&ac->c[i]);
    free(ac->c);
    free(ac);
}

/* Lower-cases client_id into lk; false if it does not fit. */
static bool lower_key(const char *client_id, char lk[KL_MAX_PRINCIPAL_ID + 1])
{
    size_t cl = strnlen(client_id, KL_MAX_PRINCIPAL_ID + 1);
    if (cl > KL_MAX_PRINCIPAL_ID)
        return false;
    kl_ascii_lower_copy(lk, client_id, cl);
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

static const kl_appcreds_client_info well_known[] = {
    {KL_APPCREDS_AZURE_CLI_APP_ID, "Microsoft Azure CLI"},
    {KL_APPCREDS_AZURE_POWERSHELL_APP_ID, "Microsoft Azure PowerShell"},
    {KL_APPCREDS_VSCODE_APP_ID, "Visual Studio Code"},
};

const kl_appcreds_client_info *kl_appcreds_well_known(size_t *n)
{
    *n = sizeof(well_known) / sizeof(well_known[0]);
    return well_known;
}

int kl_appcreds_well_known_oid(const char *tid, const char *app_id, char out[37])
{
    unsigned char h[32];
    unsigned int hl = 0;
    char in[160];
    int n = snprintf(in, sizeof(in), "keyless well-known client\n%s\n%s", tid ? tid : "",
                     app_id ? app_id : "");
    if (n < 0 || (size_t)n >= sizeof(in) ||
        EVP_Digest(in, (size_t)n, h, &hl, EVP_sha256(), NULL) != 1)
        return KL_ECRYPTO;
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x80); /* RFC 9562 version 8: made by us */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
             h[14], h[15]);
    return 0;
}

static const client_entry *client_of(const kl_appcreds *ac, const char *client_id)
{
    char lk[KL_MAX_PRINCIPAL_ID + 1];
    size_t first = 0;
    if (!ac || !client_id || ac->nc == 0 || !lower_key(client_id, lk))
        return NULL;
    return run_of(ac->c, ac->nc, sizeof(client_entry), offsetof(client_entry, app_id), lk, &first)
               ? &ac->c[first]
               : NULL;
}

bool kl_appcreds_public_client(const kl_appcreds *ac, const char *client_id)
{
    const client_entry *c = client_of(ac, client_id);
    return c && c->public_client;
}

/* A URI split as far as redirect matching needs: scheme, host, port, the rest. */
typedef struct uri_parts {
    const char *scheme, *host, *port, *rest;
    size_t scheme_len, host_len, port_len, rest_len;
} uri_parts;

static bool split_uri(const char *u, uri_parts *p)
{
    memset(p, 0, sizeof(*p));
    const char *sep = strstr(u, "://");
    if (!sep || sep == u)
        return false;
    p->scheme = u;
    p->scheme_len = (size_t)(sep - u);
    const char *h = sep + 3, *end = h;
    while (*end && *end != '/' && *end != '?' && *end != '#')
        end++;
    const char *colon = NULL;
    if (*h == '[') { /* [::1]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return false;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
    }
    p->host = h;
    p->host_len = (size_t)((colon ? colon : end) - h);
    if (colon) {
        p->port = colon + 1;
        p->port_len = (size_t)(end - colon - 1);
        for (size_t i = 0; i < p->port_len; i++)
            if (p->port[i] < '0' || p->port[i] > '9')
                return false;
    }
    p->rest = end;
    p->rest_len = strlen(end);
    return p->host_len > 0;
}

static bool is_loopback_host(const uri_parts *p)
{
    return kl_str_ieqn(p->host, p->host_len, "localhost", 9) ||
           kl_str_ieqn(p->host, p->host_len, "127.0.0.1", 9) ||
           kl_str_ieqn(p->host, p->host_len, "[::1]", 5);
}

/* An empty path and "/" are the same place (a browser sends "/" for either). */
static bool same_rest(const uri_parts *a, const uri_parts *b)
{
    const char *x = a->rest, *y = b->rest;
    size_t xl = a->rest_len, yl = b->rest_len;
    if (xl && x[0] == '/' && (xl == 1 || x[1] == '?')) {
        x++;
        xl--;
    }
    if (yl && y[0] == '/' && (yl == 1 || y[1] == '?')) {
        y++;
        yl--;
    }
    return xl == yl && memcmp(x, y, xl) == 0;
}

bool kl_appcreds_redirect_ok(const kl_appcreds *ac, const char *client_id, const char *uri)
{
    const client_entry *c = client_of(ac, client_id);
    if (!c || !uri)
        return false;
    size_t ul = strnlen(uri, KL_MAX_REDIRECT_URI + 1);
    if (ul > KL_MAX_REDIRECT_URI || memchr(uri, '#', ul))
        return false;
    uri_parts got;
    bool split = split_uri(uri, &got);
    for (size_t i = 0; i < c->n_uris; i++) {
        if (strcmp(c->uris[i], uri) == 0)
            return true;
        /* RFC 8252 7.3: a native app listens on whatever loopback port it could get, so
         * a public client's loopback redirect URI matches on any port. */
        uri_parts reg;
        if (c->public_client && split && split_uri(c->uris[i], &reg) &&
            kl_str_ieqn(reg.scheme, reg.scheme_len, "http", 4) &&
            kl_str_ieqn(got.scheme, got.scheme_len, "http", 4) && is_loopback_host(&reg) &&
            kl_str_ieqn(reg.host, reg.host_len, got.host, got.host_len) && same_rest(&reg, &got))
            return true;
    }
    return false;
}

size_t kl_appcreds_redirect_uris(const kl_appcreds *ac, const char *client_id,
                                 const char *const **uris)
{
    const client_entry *c = client_of(ac, client_id);
    *uris = c ? (const char *const *)c->uris : NULL;
    return c ? c->n_uris : 0;
}

int kl_appcreds_redirect_uri_check(const char *uri, size_t len)
{
    if (!uri || len == 0 || len > KL_MAX_REDIRECT_URI)
        return KL_EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] > 0x7e || uri[i] == '#')
            return KL_EINVAL;
    if (memchr(uri, '\0', len) || strlen(uri) != len)
        return KL_EINVAL;
    uri_parts p;
    if (!split_uri(uri, &p))
        return KL_EINVAL;
    if (kl_str_ieqn(p.scheme, p.scheme_len, "https", 5))
        return 0;
    if (kl_str_ieqn(p.scheme, p.scheme_len, "http", 4) && is_loopback_host(&p))
        return 0;
    return KL_EINVAL;
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
