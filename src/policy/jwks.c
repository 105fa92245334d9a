/* External issuers' key cache (see jwks.h). */
#include "policy/jwks.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"

struct kl_jwks_set {
    atomic_long refs;
    kl_jws_key *keys[KL_MAX_KEYRING_KEYS];
    size_t n;
};

typedef struct issuer_rec {
    char *issuer;
    kl_jwks_set *set;   /* NULL until a fetch succeeded */
    int64_t fetched_at; /* last successful fetch */
    int64_t tried_at;   /* last attempt, successful or not */
    int64_t used_at;    /* for eviction */
} issuer_rec;

struct kl_jwks {
    pthread_mutex_t mu;
    kl_jwks_fetch_fn fetch;
    void *ctx;
    issuer_rec recs[KL_MAX_JWKS_ISSUERS];
    size_t n;
};

static void set_free(kl_jwks_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        kl_jws_key_free(s->keys[i]);
    free(s);
}

void kl_jwks_set_release(kl_jwks_set *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        set_free(s);
}

int kl_jwks_new(kl_jwks_fetch_fn fetch, void *ctx, kl_jwks **out)
{
    if (!fetch || !out)
        return KL_EINVAL;
    kl_jwks *j = calloc(1, sizeof(*j));
    if (!j)
        return KL_ENOMEM;
    pthread_mutex_init(&j->mu, NULL);
    j->fetch = fetch;
    j->ctx = ctx;
    *out = j;
    return 0;
}

void kl_jwks_free(kl_jwks *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++) {
        free(j->recs[i].issuer);
        kl_jwks_set_release(j->recs[i].set);
    }
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static json_t *fetch_json(kl_jwks *j, const char *url)
{
    char *body = NULL;
    size_t len = 0;
    if (j->fetch(j->ctx, url, &body, &len) != 0)
        return NULL;
    json_t *o =
        len <= KL_MAX_JWKS_BYTES ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(body);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* The algorithms a JWK may verify: its "alg" when given (RS256, PS256, ES256), else
 * by key type. 0 for anything else. */
static unsigned jwk_algs(const json_t *k)
{
    const char *alg = json_string_value(json_object_get(k, "alg"));
    const char *kty = json_string_value(json_object_get(k, "kty"));
    if (alg)
        return strcmp(alg, "RS256") == 0   ? KL_JWS_RS256
               : strcmp(alg, "PS256") == 0 ? KL_JWS_PS256
               : strcmp(alg, "ES256") == 0 ? KL_JWS_ES256
                                           : 0;
    if (kty && strcmp(kty, "RSA") == 0)
        return KL_JWS_RS256;
    if (kty && strcmp(kty, "EC") == 0)
        return KL_JWS_ES256;
    return 0;
}

/* Discovery, then the JWKS: a new set with one reference, or NULL (logged). */
static kl_jwks_set *fetch_set(kl_jwks *j, const char *issuer)
{
    char url[KL_MAX_URL + 64];
    size_t il = strlen(issuer);
    while (il > 0 && issuer[il - 1] == '/')
        il--;
    snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)il, issuer);
    json_t *disc = fetch_json(j, url), *jwks = NULL;
    kl_jwks_set *s = NULL;
    const char *why = "discovery document unavailable or not JSON";
    if (!disc)
        goto out;
    const char *diss = json_string_value(json_object_get(disc, "issuer"));
    const char *uri = json_string_value(json_object_get(disc, "jwks_uri"));
    why = "discovery names another issuer";
    if (!diss || strcmp(diss, issuer) != 0)
        goto out;
    why = "jwks_uri missing or not https";
    if (!uri || !kl_str_istarts(uri, "https://") || strlen(uri) > KL_MAX_URL)
        goto out;
    why = "JWKS unavailable or not JSON";
    if (!(jwks = fetch_json(j, uri)))
        goto out;
    const json_t *keys = json_object_get(jwks, "keys");
    why = "JWKS without keys";
    if (!json_is_array(keys) || !(s = calloc(1, sizeof(*s))))
        goto out;
    atomic_init(&s->refs, 1);
    size_t i;
    const json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *use = json_string_value(json_object_get(k, "use"));
        unsigned algs = jwk_algs(k);
        kl_jws_key *key = NULL;
        if (s->n == KL_MAX_KEYRING_KEYS || (use && strcmp(use, "sig") != 0) || !algs ||
            !json_is_string(json_object_get(k, "kid")) || kl_jws_key_from_jwk(k, algs, &key))
            continue; /* one unusable key does not spoil the others */
        s->keys[s->n++] = key;
    }
out:
    if (!s)
        kl_log(KL_LOG_WARN, "jwks_fetch_failed", "issuer", issuer, "reason", why, NULL);
    json_decref(disc);
    json_decref(jwks);
    return s;
}

static const kl_jws_key *set_find(const kl_jwks_set *s, const char *kid)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(kl_jws_key_kid(s->keys[i]), kid) == 0)
            return s->keys[i];
    return NULL;
}

/* The record of issuer, made (evicting the least recently used) if needed. */
static issuer_rec *record(kl_jwks *j, const char *issuer, int64_t now)
{
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->recs[i].issuer, issuer) == 0)
            return &j->recs[i];
    issuer_rec *r = NULL;
    if (j->n < KL_MAX_JWKS_ISSUERS) {
        r = &j->recs[j->n];
    } else {
        r = &j->recs[0];
        for (size_t i = 1; i < j->n; i++)
            if (j->recs[i].used_at < r->used_at)
                r = &j->recs[i];
        free(r->issuer);
        kl_jwks_set_release(r->set);
    }
    memset(r, 0, sizeof(*r));
    if (!(r->issuer = kl_strndup(issuer, strlen(issuer))))
        return NULL;
    if (r == &j->recs[j->n])
        j->n++;
    r->used_at = now;
    r->tried_at = INT64_MIN / 2;
    return r;
}

int kl_jwks_key(kl_jwks *j, const char *issuer, const char *kid, int64_t now, kl_jwks_set **hold,
                const kl_jws_key **key)
{
    if (hold)
        *hold = NULL;
    if (key)
        *key = NULL;
    if (!j || !issuer || !kid || !hold || !key)
        return KL_EINVAL;
    if (!kl_str_istarts(issuer, "https://") || strlen(issuer) > KL_MAX_URL)
        return KL_EINVAL;
    int err = 0;
    pthread_mutex_lock(&j->mu);
    issuer_rec *r = record(j, issuer, now);
    if (!r) {
        err = KL_ENOMEM;
        goto out;
    }
    r->used_at = now;
    bool stale = !r->set || now - r->fetched_at >= KL_JWKS_MAX_AGE_S;
    bool missing = !set_find(r->set, kid);
    if ((stale || missing) && now - r->tried_at >= KL_JWKS_MIN_REFRESH_S) {
        r->tried_at = now;
        kl_jwks_set *s = fetch_set(j, issuer);
        if (s) {
            kl_jwks_set_release(r->set);
            r->set = s;
            r->fetched_at = now;
        }
    }
    const kl_jws_key *k = set_find(r->set, kid);
    if (!k) {
        err = r->set ? KL_ENOTFOUND : KL_EIO;
        goto out;
    }
    atomic_fetch_add_explicit(&r->set->refs, 1, memory_order_relaxed);
    *hold = r->set;
    *key = k;
out:
    pthread_mutex_unlock(&j->mu);
    return err;
}

/* ---------------------------------------------------------------- transport */

int kl_jwks_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : KL_EINTERNAL;
}

typedef struct fetch_buf {
    char *data;
    size_t len;
    bool too_big;
} fetch_buf;

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    fetch_buf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > KL_MAX_JWKS_BYTES) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    char *nd = realloc(b->data, b->len + n + 1);
    if (!nd)
        return 0;
    b->data = nd;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

typedef struct sock_ctx {
    const kl_egress *eg;
    char host[256];
    bool refused;
} sock_ctx;

/* Every address curl is about to connect to passes the egress policy first. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    sock_ctx *s = arg;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        kl_egress_check(s->eg, s->host, (const struct sockaddr *)&a->addr) != KL_EGRESS_ALLOWED) {
        s->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

int kl_jwks_https_fetch(void *ctx, const char *url, char **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    if (!ctx || !url || !kl_str_istarts(url, "https://"))
        return KL_EINVAL;
    const kl_jwks_https *hc = ctx;
    if (!hc->egress)
        return KL_EINVAL;
    sock_ctx sc = {.eg = hc->egress};
    /* The host as written, for the allowlist's names. */
    const char *h = url + strlen("https://");
    size_t hl = strcspn(h, "/:?#");
    if (hl == 0 || hl >= sizeof(sc.host) || memchr(h, '@', hl))
        return KL_EINVAL;
    memcpy(sc.host, h, hl);
    fetch_buf b = {0};
    long status = 0;
    CURL *c = curl_easy_init();
    if (!c)
        return KL_ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)KL_JWKS_FETCH_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)KL_MAX_JWKS_BYTES);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &sc);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    if (hc->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, hc->ca_file);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    int err = 0;
    if (b.too_big)
        err = KL_ETOOBIG;
    else if (rc != CURLE_OK || status != 200 || !b.data)
        err = KL_EIO;
    if (sc.refused)
        kl_log(KL_LOG_WARN, "jwks_egress_refused", "host", sc.host, NULL);
    if (err) {
        free(b.data);
        return err;
    }
    *body = b.data;
    *len = b.len;
    return 0;
}
