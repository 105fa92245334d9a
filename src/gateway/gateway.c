/* The data plane's request path: route, account, authentication (API key now, bearer
 * tokens later), authorization (the operation's data action), deployment, backend.
 * Everything it reads comes from the snapshot; each worker caches one reference and
 * swaps it only when the holder's generation moves. */
#include "gateway/gateway.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/apikey.h"
#include "gateway/body.h"
#include "gateway/clientaddr.h"
#include "gateway/echo.h"
#include "gateway/gateway_authz.h"
#include "gateway/reply.h"
#include "gateway/route.h"
#include "gateway/gateway_sts.h"
#include "gateway/upstream.h"
#include "policy/sts.h"
#include "token/bearer.h"
#include "token/claims.h"
#include "token/tokcache.h"

/* Echo streams are written in batches of about this many bytes. */
#define ECHO_BATCH 16384
/* Verified access tokens remembered per worker. */
#define TOKCACHE_ENTRIES 4096

/* The audience of data-plane tokens (a trailing slash is accepted too). */
static const char *const data_plane_audiences[] = {"https://cognitiveservices.azure.com"};

struct kl_gateway {
    kl_snapshot_holder *holder;
    const kl_keys *keys;
    kl_metrics *metrics;
    char *account_domain; /* NULL: no Host form */
    int upstream_timeout_ms;
    const kl_egress *egress;            /* borrowed */
    const kl_netrules *trusted_proxies; /* borrowed; NULL: X-Forwarded-For ignored */
    SSL_CTX *tls;                       /* client context for https upstreams */
    /* The system CA store is read on the first https handshake, not at start-up: parsing
     * the bundle is most of keylessd's start-up time and only https backends need it. */
    pthread_mutex_t ca_mu;
    bool ca_loaded; /* under ca_mu */
};

typedef struct echo_job echo_job;

typedef struct gw_worker {
    kl_gateway *g;
    struct event_base *base;
    kl_snapshot *snap; /* cached; replaced when the holder's generation changes */
    kl_fence *fence;   /* cached with snap (NULL: nothing fenced) */
    uint64_t fence_gen;
    kl_upstream *up;
    echo_job *jobs;      /* echo streams in flight */
    kl_tokcache *tokens; /* verified bearer tokens, keyed by the snapshot generation */
} gw_worker;

/* Who is calling. Keys are account-wide; tokens will carry an object id for RBAC. */
typedef enum principal_kind { PRINCIPAL_KEY = 1, PRINCIPAL_TOKEN } principal_kind;

typedef struct principal {
    principal_kind kind;
    const kl_account *account; /* the account the credential belongs to */
    int key_slot;              /* 1 or 2 for keys */
    const char *object_id;     /* tokens: the principal's id (points into oid) */
    char oid[KL_MAX_PRINCIPAL_ID + 1];
} principal;

/* ------------------------------------------------------------------ lifecycle */

/* Verifies an upstream's chain against the system store (SSL_CERT_FILE and SSL_CERT_DIR
 * override it, as everywhere in OpenSSL; a private model server's CA goes there), which
 * the first handshake loads. Threads verifying meanwhile wait for it on the mutex, so
 * none verifies against a half-filled store. */
static int verify_upstream_chain(X509_STORE_CTX *xs, void *arg)
{
    kl_gateway *g = arg;
    pthread_mutex_lock(&g->ca_mu);
    if (!g->ca_loaded) {
        g->ca_loaded = true;
        if (X509_STORE_set_default_paths(SSL_CTX_get_cert_store(g->tls)) != 1)
            kl_log(KL_LOG_WARN, "upstream_tls", "detail", "system CA store not loaded", NULL);
    }
    pthread_mutex_unlock(&g->ca_mu);
    return X509_verify_cert(xs);
}

int kl_gateway_new(const kl_gateway_cfg *cfg, kl_gateway **out)
{
    *out = NULL;
    if (!cfg || !cfg->holder || !cfg->keys || !cfg->egress)
        return KL_EINVAL;
    kl_gateway *g = calloc(1, sizeof(*g));
    if (!g)
        return KL_ENOMEM;
    if (pthread_mutex_init(&g->ca_mu, NULL) != 0) {
        free(g);
        return KL_ENOMEM;
    }
    g->holder = cfg->holder;
    g->keys = cfg->keys;
    g->metrics = cfg->metrics;
    g->egress = cfg->egress;
    g->trusted_proxies = cfg->trusted_proxies;
    g->upstream_timeout_ms =
        cfg->upstream_timeout_ms > 0 ? cfg->upstream_timeout_ms : KL_UPSTREAM_TIMEOUT_MS;
    if (cfg->account_domain && *cfg->account_domain) {
        g->account_domain = strdup(cfg->account_domain);
        if (!g->account_domain)
            goto nomem;
    }
    g->tls = SSL_CTX_new(TLS_client_method());
    if (!g->tls) {
        kl_gateway_free(g);
        return KL_ECRYPTO;
    }
    SSL_CTX_set_min_proto_version(g->tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(g->tls, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(g->tls, verify_upstream_chain, g);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(g->tls, alpn, sizeof(alpn) - 1);
    *out = g;
    return 0;
nomem:
    kl_gateway_free(g);
    return KL_ENOMEM;
}

void kl_gateway_free(kl_gateway *g)
{
    if (!g)
        return;
    if (g->tls)
        SSL_CTX_free(g->tls);
    pthread_mutex_destroy(&g->ca_mu);
    free(g->account_domain);
    free(g);
}

/* ------------------------------------------------------------------ echo streams */

struct echo_job {
    gw_worker *w;
    kl_http_req *r;
    kl_snapshot *snap;
    kl_echo_stream *st;
    kl_buf buf;
    echo_job *next, *prev;
};

static void job_free(echo_job *j)
{
    gw_worker *w = j->w;
    if (j->prev)
        j->prev->next = j->next;
    else if (w->jobs == j)
        w->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    kl_echo_stream_free(j->st);
    kl_buf_free(&j->buf);
    if (j->snap)
        kl_snapshot_release(j->snap);
    free(j);
}

static void echo_pump(void *arg);

static void echo_aborted(void *arg)
{
    job_free(arg);
}

/* Writes events until the stream ends or the client falls behind: a batch (at most
 * ECHO_BATCH plus one event of a bounded size, see KL_MAX_ECHO_DELTA) is written only
 * while no more than half of the output buffer is queued, so a big answer is produced
 * as the client takes it and never outgrows KL_MAX_OUTPUT_BUFFER. */
static void echo_pump(void *arg)
{
    echo_job *j = arg;
    for (;;) {
        if (kl_http_stream_pending(j->r) > KL_MAX_OUTPUT_BUFFER / 2) {
            kl_http_req_on_drain(j->r, echo_pump, j);
            return;
        }
        int rc = 1;
        kl_buf_reset(&j->buf);
        while (j->buf.len < ECHO_BATCH && (rc = kl_echo_stream_next(j->st, &j->buf)) == 1)
            ;
        if (rc >= 0 && j->buf.len && kl_http_stream_write(j->r, j->buf.data, j->buf.len) != 0)
            rc = KL_EIO;
        if (rc <= 0) {
            kl_http_req *r = j->r;
            kl_http_req_on_abort(r, NULL, NULL);
            job_free(j);
            /* An answer that could not be produced or queued whole must not look whole. */
            if (rc == 0)
                kl_http_stream_end(r);
            else
                kl_http_stream_abort(r);
            return;
        }
    }
}

static void echo_stream(gw_worker *w, kl_http_req *r, kl_snapshot *snap, kl_gateway_route_kind kind,
                        json_t *body, const kl_echo_opts *o)
{
    echo_job *j = calloc(1, sizeof(*j));
    if (!j || kl_echo_stream_new(kind, body, o, &j->st) != 0) {
        free(j);
        kl_gateway_reply_internal(r);
        return;
    }
    j->w = w;
    j->r = r;
    j->snap = snap;
    kl_snapshot_retain(snap);
    kl_buf_init(&j->buf, 2 * KL_MAX_BODY_BYTES);
    j->next = w->jobs;
    if (w->jobs)
        w->jobs->prev = j;
    w->jobs = j;
    kl_http_set_header(r, "Cache-Control", "no-cache");
    if (kl_http_stream_begin(r, 200, "text/event-stream") != 0) {
        job_free(j);
        kl_gateway_reply_internal(r);
        return;
    }
    kl_http_req_on_abort(r, echo_aborted, j);
    echo_pump(j);
}

static void echo_answer(gw_worker *w, kl_http_req *r, kl_snapshot *snap, const kl_deployment *d,
                        kl_gateway_route_kind kind, json_t *body)
{
    kl_echo_opts o = {.model = d->model_name && *d->model_name ? d->model_name : d->name};
    if (kind != KL_GW_ROUTE_EMBEDDINGS && kl_gateway_body_stream(body)) {
        echo_stream(w, r, snap, kind, body, &o);
        return;
    }
    kl_buf out;
    int rc;
    kl_buf_init(&out, KL_MAX_UPSTREAM_RESPONSE);
    if (kind == KL_GW_ROUTE_CHAT)
        rc = kl_echo_chat(body, &o, &out);
    else if (kind == KL_GW_ROUTE_COMPLETIONS)
        rc = kl_echo_completions(body, &o, &out);
    else
        rc = kl_echo_embeddings(body, &o, &out);
    if (rc)
        kl_gateway_reply_internal(r);
    else
        kl_http_respond(r, 200, "application/json", out.data, out.len);
    kl_buf_free(&out);
}

/* ------------------------------------------------------------------ authentication */

static int authenticate_key(gw_worker *w, kl_http_req *r, const kl_snapshot *snap,
                            const kl_account *acct, const char *key, size_t n, principal *p)
{
    unsigned char idx[32];
    const kl_account *owner = NULL;
    int slot = 0;
    /* Whatever the key, an account with keys disabled says so, and says nothing about
     * whether the key was valid. */
    if (acct->disable_local_auth) {
        kl_http_req_auth_failed(r, KL_AUTHFAIL_KEY_DISABLED);
        kl_gateway_reply_key_disabled(r);
        return -1;
    }
    /* Cheap refusals first: length, then format and checksum, before any hashing. */
    if (n > KL_MAX_TOKEN_BYTES || !kl_apikey_wellformed(key, n)) {
        kl_http_req_auth_failed(r, KL_AUTHFAIL_INVALID_KEY);
        kl_gateway_reply_key_denied(r);
        return -1;
    }
    if (kl_apikey_index(w->g->keys, key, n, idx) != 0) {
        kl_gateway_reply_internal(r);
        return -1;
    }
    bool found = kl_snapshot_key_lookup(snap, idx, &owner, &slot);
    OPENSSL_cleanse(idx, sizeof(idx));
    /* A key of another account is as wrong as an unknown one. */
    if (!found || !owner || (owner != acct && !kl_str_ieq(owner->name, acct->name))) {
        kl_http_req_auth_failed(r, KL_AUTHFAIL_INVALID_KEY);
        kl_gateway_reply_key_denied(r);
        return -1;
    }
    p->kind = PRINCIPAL_KEY;
    p->account = acct;
    p->key_slot = slot;
    /* The day this key was last used: a relaxed load, and a store once a day per key. */
    kl_keyusage_touch(acct->usage[slot == 2 ? 1 : 0], kl_now_unix());
    kl_http_req_log_field(r, "auth", "key");
    kl_http_req_log_field(r, "key", slot == 2 ? "key2" : "key1");
    return 0;
}

static int token_denied(kl_http_req *r, const char *why)
{
    kl_http_req_log_field(r, "token_refused", why);
    kl_http_req_auth_failed(r, KL_AUTHFAIL_INVALID_TOKEN);
    kl_gateway_reply_token_denied(r);
    return -1;
}

/* Bearer tokens (our own Entra-style v1 JWTs): the signature with a key of the
 * snapshot's ring (the algorithm from the key), then the claims: audience the data
 * plane, issuer and tenant ours, times with KL_TOKEN_CLOCK_SKEW_S. A token that passed is
 * remembered under the snapshot's generation, so any change (a revoked key, a disabled
 * principal, a removed role) makes it be checked again on the next request. Whether
 * the principal exists, is enabled and may act is decided by authorize(). */
static int authenticate_token(gw_worker *w, kl_http_req *r, const kl_snapshot *snap,
                              const kl_account *acct, const char *tok, size_t n, principal *p)
{
    (void)acct;
    int64_t now = kl_now_unix();
    uint64_t gen = kl_snapshot_generation(snap);
    kl_claims_principal who;
    if (!w->tokens || kl_tokcache_get(w->tokens, tok, n, now, gen, gen, &who) != 0) {
        kl_jws_verified v;
        kl_jws_reason jr = kl_sts_verify(kl_snapshot_sts(snap), tok, n, now, &v);
        if (jr != KL_JWS_OK)
            return token_denied(r, kl_jws_reason_str(jr));
        const char *tid = kl_snapshot_tenant_id(snap);
        char iss[160];
        kl_gateway_sts_issuer(tid, iss, sizeof(iss));
        kl_claims_expect e = {.audiences = data_plane_audiences,
                              .n_audiences = 1,
                              .issuer = iss,
                              .tid = tid,
                              .now = now};
        kl_claims_reason cr = kl_claims_check_access(v.payload, &e, &who);
        kl_jws_verified_clear(&v);
        if (cr != KL_CLAIMS_OK)
            return token_denied(r, kl_claims_reason_str(cr));
        if (w->tokens)
            kl_tokcache_put(w->tokens, tok, n, gen, gen, &who);
    }
    p->kind = PRINCIPAL_TOKEN;
    p->account = NULL;
    snprintf(p->oid, sizeof(p->oid), "%s", who.oid);
    p->object_id = p->oid;
    kl_http_req_log_field(r, "auth", "token");
    kl_http_req_log_field(r, "principal", p->oid);
    kl_http_req_log_field(r, "client_id", who.appid);
    return 0;
}

/* Establishes who is calling, or answers the request with the refusal and returns -1.
 * The api-key header wins; Authorization: Bearer carries a token, or on /openai/v1 an
 * API key (the plain OpenAI client sends keys that way). */
static int authenticate(gw_worker *w, kl_http_req *r, const kl_gateway_route *rt,
                        const kl_snapshot *snap, const kl_account *acct, principal *p)
{
    memset(p, 0, sizeof(*p));
    const char *key = kl_http_req_header(r, "api-key");
    const char *authz = kl_http_req_header(r, "authorization");
    if (kl_http_req_header_count(r, "api-key") > 1 ||
        kl_http_req_header_count(r, "authorization") > 1) {
        /* Two credentials of one kind: refuse rather than guess which one counts. */
        kl_http_req_auth_failed(r, KL_AUTHFAIL_INVALID_KEY);
        kl_gateway_reply_key_denied(r);
        return -1;
    }
    if (key && *key)
        return authenticate_key(w, r, snap, acct, key, strlen(key), p);
    if (authz && *authz) {
        const char *v;
        size_t n;
        if (!kl_bearer_split(authz, &v, &n) || n > KL_MAX_TOKEN_BYTES) {
            kl_http_req_auth_failed(r, KL_AUTHFAIL_INVALID_TOKEN);
            kl_gateway_reply_token_denied(r);
            return -1;
        }
        if (rt->v1 && kl_apikey_wellformed(v, n))
            return authenticate_key(w, r, snap, acct, v, n, p);
        return authenticate_token(w, r, snap, acct, v, n, p);
    }
    kl_http_req_auth_failed(r, KL_AUTHFAIL_MISSING);
    kl_gateway_reply_key_denied(r);
    return -1;
}

/* ------------------------------------------------------------------ network rules */

/* Applies the account's network rules before any credential is looked at, for keys and
 * tokens alike (Azure answers these before authentication too). A caller whose address
 * cannot be known (gateway/clientaddr.h) matches no rule. Answers and returns -1 on a
 * refusal. */
static int check_network(const kl_gateway *g, kl_http_req *r, const kl_account *acct)
{
    bool priv = kl_http_req_private(r);
    kl_netaddr caller;
    bool known = !priv && acct->default_deny && kl_clientaddr_get(g->trusted_proxies, r, &caller);
    switch (kl_snapshot_network_check(acct, priv, known ? &caller : NULL)) {
    case KL_NETWORK_ALLOWED: return 0;
    case KL_NETWORK_PUBLIC_DISABLED:
        kl_http_req_auth_failed(r, KL_AUTHFAIL_NETWORK);
        kl_http_req_log_field(r, "network", "public_disabled");
        kl_gateway_reply_public_disabled(r);
        return -1;
    case KL_NETWORK_DENIED: break;
    }
    kl_http_req_auth_failed(r, KL_AUTHFAIL_NETWORK);
    kl_http_req_log_field(r, "network", known ? "denied" : "denied_unknown_caller");
    kl_gateway_reply_network_denied(r);
    return -1;
}

/* ------------------------------------------------------------------ authorization */

/* Decides whether p may perform the operation. Every operation names its data action
 * (an unknown one is denied). API keys are account-wide by design and skip RBAC; tokens
 * will be checked against the role assignments in the snapshot. */
static int authorize(gw_worker *w, kl_http_req *r, const kl_gateway_route *rt,
                     const kl_snapshot *snap, const kl_account *acct, const principal *p)
{
    (void)w;
    const char *action = kl_gateway_data_action(rt->kind);
    if (!action) {
        kl_gateway_reply_not_found(r);
        return -1;
    }
    if (p->kind == PRINCIPAL_KEY)
        return p->account == acct ? 0 : (kl_gateway_reply_key_denied(r), -1);
    char msg[512];
    switch (kl_gateway_authorize(snap, p->object_id, rt->kind, rt->v1, acct, msg, sizeof(msg))) {
    case KL_GW_AUTHZ_ALLOW: return 0;
    case KL_GW_AUTHZ_NO_PRINCIPAL:
        kl_http_req_auth_failed(r, KL_AUTHFAIL_INVALID_TOKEN);
        kl_gateway_reply_token_denied(r);
        return -1;
    case KL_GW_AUTHZ_DENY: break;
    }
    kl_http_req_auth_failed(r, KL_AUTHFAIL_FORBIDDEN);
    kl_http_respond_error(r, 401, "PermissionDenied", msg);
    return -1;
}

/* ------------------------------------------------------------------ operations */

/* The cached snapshot and fence, refreshed together when either generation moves. The
 * fence generation is read first: a publish bumps the snapshot's before lifting the
 * fence, so seeing the fence lifted implies seeing the newer snapshot's generation. */
static kl_snapshot *worker_snapshot(gw_worker *w)
{
    uint64_t fgen = kl_snapshot_fence_generation(w->g->holder);
    uint64_t gen = kl_snapshot_holder_generation(w->g->holder);
    if (!w->snap || kl_snapshot_generation(w->snap) != gen || w->fence_gen != fgen) {
        kl_fence *f = NULL;
        uint64_t fg = 0;
        kl_snapshot *s = kl_snapshot_acquire_fenced(w->g->holder, &f, &fg);
        if (s) {
            kl_snapshot_release(w->snap);
            kl_snapshot_fence_release(w->fence);
            w->snap = s;
            w->fence = f;
            w->fence_gen = fg;
        } else {
            kl_snapshot_fence_release(f);
        }
    }
    return w->snap;
}

static const char *display_model(const kl_deployment *d)
{
    return d->model_name && *d->model_name ? d->model_name : d->name;
}

static void list_models(kl_http_req *r, const kl_snapshot *snap, const kl_account *acct,
                        const kl_gateway_route *rt)
{
    const kl_deployment *const *deps = NULL;
    size_t n = kl_snapshot_deployments(snap, acct, &deps);
    json_int_t now = (json_int_t)kl_now_unix();
    if (rt->kind == KL_GW_ROUTE_MODEL) {
        const kl_deployment *d =
            kl_snapshot_deployment(snap, acct, rt->deployment, rt->deployment_len);
        if (!d) {
            kl_gateway_reply_deployment_not_found(r);
            return;
        }
        kl_http_respond_json(r, 200,
                             json_pack("{s:s,s:s,s:I,s:s}", "id", d->name, "object", "model",
                                       "created", now, "owned_by", "keyless"));
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; data && i < n; i++) {
        const kl_deployment *d = deps[i];
        json_t *e;
        if (rt->kind == KL_GW_ROUTE_MODELS)
            e = json_pack("{s:s,s:s,s:I,s:s}", "id", d->name, "object", "model", "created", now,
                          "owned_by", "keyless");
        else
            e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s},s:I,s:I}", "id", d->name, "model",
                          display_model(d), "owner", "organization-owner", "object", "deployment",
                          "status", "succeeded", "scale_settings", "scale_type", "standard",
                          "created_at", now, "updated_at", now);
        if (json_array_append_new(data, e) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    if (!data) {
        kl_gateway_reply_internal(r);
        return;
    }
    json_t *j = rt->kind == KL_GW_ROUTE_MODELS
                    ? json_pack("{s:s,s:o}", "object", "list", "data", data)
                    : json_pack("{s:o,s:s}", "data", data, "object", "list");
    kl_http_respond_json(r, 200, j);
}

static void inference(gw_worker *w, kl_http_req *r, kl_snapshot *snap, const kl_account *acct,
                      const kl_gateway_route *rt)
{
    const kl_deployment *d = NULL;
    json_t *body = NULL;
    kl_gateway_body_err e;
    size_t blen = 0;
    if (!rt->deployment_from_body) {
        d = kl_snapshot_deployment(snap, acct, rt->deployment, rt->deployment_len);
        if (!d) {
            kl_gateway_reply_deployment_not_found(r);
            return;
        }
    }
    const unsigned char *b = kl_http_req_body(r, &blen);
    if (kl_gateway_body_parse(b, blen, &body, &e) != 0) {
        kl_gateway_reply_bad_request(r, &e);
        return;
    }
    if (rt->deployment_from_body) {
        const json_t *m = json_object_get(body, "model");
        if (!json_is_string(m) || json_string_length(m) == 0) {
            snprintf(e.message, sizeof(e.message), "Missing required parameter: 'model'.");
            e.param = "model";
            kl_gateway_reply_bad_request(r, &e);
            goto out;
        }
        d = kl_snapshot_deployment(snap, acct, json_string_value(m), json_string_length(m));
        if (!d) {
            kl_gateway_reply_deployment_not_found(r);
            goto out;
        }
    }
    kl_http_req_log_field(r, "deployment", d->name);
    if (kl_gateway_body_validate(rt->kind, body, &e) != 0) {
        kl_gateway_reply_bad_request(r, &e);
        goto out;
    }
    switch (d->backend) {
    case KL_BACKEND_UPSTREAM:
        kl_http_req_log_field(r, "backend", "upstream");
        kl_upstream_forward(w->up, r, snap, d, rt->kind, body);
        break;
    case KL_BACKEND_ECHO:
        kl_http_req_log_field(r, "backend", "echo");
        echo_answer(w, r, snap, d, rt->kind, body);
        break;
    case KL_BACKEND_UNAVAILABLE:
    default:
        kl_http_req_log_field(r, "backend", "unavailable");
        kl_gateway_reply_deployment_unavailable(r);
        break;
    }
out:
    json_decref(body);
}

bool kl_gateway_matches(kl_gateway *g, kl_http_req *r)
{
    if (kl_http_req_face(r) != KL_FACE_PUBLIC)
        return false;
    return kl_gateway_route_matches(kl_http_req_header(r, "host"), kl_http_req_path(r),
                                    g->account_domain);
}

/* Everything that can be decided from the request head: the operation, the account,
 * who is calling and whether they may. Answers the request with the refusal and returns
 * -1, or returns 0 with *rt, *snap (the worker's cached reference), *acct and *p set. */
static int admit(kl_gateway *g, gw_worker *w, kl_http_req *r, kl_gateway_route *rt,
                 kl_snapshot **snapp, const kl_account **acctp, principal *p)
{
    if (kl_gateway_route_parse(kl_http_req_header(r, "host"), kl_http_req_path(r),
                               kl_http_req_query(r), g->account_domain, rt) != 0) {
        kl_gateway_reply_not_found(r);
        return -1;
    }
    kl_http_req_set_route(r, kl_gateway_metrics_route(rt->kind));
    /* Unknown operations, wrong methods and classic calls without api-version are all
     * "Resource not found", as Azure answers them. */
    if (rt->kind == KL_GW_ROUTE_NONE || strcmp(kl_http_req_method(r), rt->method) != 0 ||
        (rt->api_version_needed && !rt->api_version) || rt->account_len == 0) {
        kl_gateway_reply_not_found(r);
        return -1;
    }
    if (rt->api_version_unsupported) {
        kl_gateway_reply_api_version_unsupported(r);
        return -1;
    }
    if (!w || w->g != g) {
        kl_gateway_reply_internal(r);
        return -1;
    }
    kl_snapshot *snap = worker_snapshot(w);
    if (!snap) {
        kl_gateway_reply_unavailable(r);
        return -1;
    }
    const kl_account *acct = kl_snapshot_account(snap, rt->account, rt->account_len);
    if (!acct) {
        kl_gateway_reply_not_found(r);
        return -1;
    }
    kl_http_req_log_field(r, "account", acct->name);
    /* A saved change to this account (a revoked key, a removed grant) is not in snap:
     * nothing of the account is served from it, not even to a still-valid credential. */
    if (kl_snapshot_fence_covers(w->fence, acct->id)) {
        kl_gateway_reply_change_pending(r);
        return -1;
    }
    if (check_network(g, r, acct) != 0)
        return -1;
    if (authenticate(w, r, rt, snap, acct, p) != 0)
        return -1;
    if (authorize(w, r, rt, snap, acct, p) != 0)
        return -1;
    *snapp = snap;
    *acctp = acct;
    return 0;
}

kl_http_verdict kl_gateway_vet(kl_gateway *g, void *thread_state, kl_http_req *r)
{
    kl_gateway_route rt;
    kl_snapshot *snap;
    const kl_account *acct;
    principal p;
    return admit(g, thread_state, r, &rt, &snap, &acct, &p) == 0 ? KL_HTTP_CONTINUE
                                                                 : KL_HTTP_ANSWERED;
}

void kl_gateway_handle(kl_gateway *g, void *thread_state, kl_http_req *r)
{
    gw_worker *w = thread_state;
    kl_gateway_route rt;
    kl_snapshot *snap;
    const kl_account *acct;
    principal p;
    /* Checked again, though kl_gateway_vet passed the head: the snapshot may have moved
     * on while the body arrived (a key rotated), and the pointers it gave are only
     * good under the snapshot reference held now. */
    if (admit(g, w, r, &rt, &snap, &acct, &p) != 0)
        return;
    switch (rt.kind) {
    case KL_GW_ROUTE_MODELS:
    case KL_GW_ROUTE_MODEL:
    case KL_GW_ROUTE_DEPLOYMENTS: list_models(r, snap, acct, &rt); return;
    default: inference(w, r, snap, acct, &rt); return;
    }
}

/* ------------------------------------------------------------------ workers */

void *kl_gateway_thread_init(kl_gateway *g, struct event_base *base)
{
    if (!g || !base)
        return NULL;
    gw_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->g = g;
    w->base = base;
    kl_upstream_cfg ucfg = {.base = base,
                            .tls = g->tls,
                            .metrics = g->metrics,
                            .egress = g->egress,
                            .timeout_ms = g->upstream_timeout_ms,
                            .connect_timeout_ms = KL_UPSTREAM_CONNECT_TIMEOUT_MS};
    if (kl_upstream_new(&ucfg, &w->up) != 0) {
        free(w);
        return NULL;
    }
    if (kl_tokcache_new(TOKCACHE_ENTRIES, &w->tokens) != 0) {
        kl_upstream_free(w->up);
        free(w);
        return NULL;
    }
    return w;
}

void kl_gateway_thread_fini(kl_gateway *g, void *state)
{
    (void)g;
    gw_worker *w = state;
    if (!w)
        return;
    while (w->jobs) {
        echo_job *j = w->jobs;
        kl_http_req_on_abort(j->r, NULL, NULL);
        kl_http_req_on_drain(j->r, NULL, NULL);
        job_free(j);
    }
    kl_upstream_free(w->up);
    kl_tokcache_free(w->tokens);
    if (w->snap)
        kl_snapshot_release(w->snap);
    kl_snapshot_fence_release(w->fence);
    free(w);
}
