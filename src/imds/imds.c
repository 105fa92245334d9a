/* The identity endpoints (see imds.h). Each path checks, in this order, what a caller
 * can get wrong without learning anything: method, forwarding headers, its credential
 * (Metadata: true, or the launch secret), the query; only then is anything looked up:
 * the compute resource, the identity, the resource asked for, and the token. */
#include "imds/imds.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "imds/idselect.h"
#include "imds/imdsreq.h"
#include "imds/mitoken.h"
#include "policy/idheaders.h"
#include "policy/signins.h"
#include "policy/sts.h"

struct kl_imds {
    kl_snapshot_holder *holder;
    const kl_keys *keys;
    char *vm; /* NULL: none */
    kl_mitoken *tokens;
    kl_signins *signins; /* may be NULL */
};

/* The audiences a managed identity may ask a token for (compared without regard to case
 * and to one trailing slash; the token's aud keeps what was asked): the data plane, ARM
 * by both its names, and Graph. */
static const char *const known_resources[] = {
    "https://cognitiveservices.azure.com",
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://graph.microsoft.com",
};

static const char json_ct[] = "application/json; charset=utf-8";

int kl_imds_new(const kl_imds_cfg *cfg, kl_imds **out)
{
    *out = NULL;
    kl_imds *m = calloc(1, sizeof(*m));
    if (!m)
        return KL_ENOMEM;
    m->holder = cfg->holder;
    m->keys = cfg->keys;
    m->signins = cfg->signins;
    int err = 0;
    if (cfg->vm && cfg->vm[0]) {
        size_t n = strlen(cfg->vm);
        if (!(m->vm = malloc(n + 1)))
            err = KL_ENOMEM;
        else
            memcpy(m->vm, cfg->vm, n + 1);
    }
    if (!err)
        err = kl_mitoken_new(cfg->token_lifetime_s ? cfg->token_lifetime_s
                                                   : KL_MI_TOKEN_DEFAULT_LIFETIME_S,
                             &m->tokens);
    if (err) {
        kl_imds_free(m);
        return err;
    }
    *out = m;
    return 0;
}

void kl_imds_free(kl_imds *m)
{
    if (!m)
        return;
    kl_mitoken_free(m->tokens);
    free(m->vm);
    free(m);
}

/* ------------------------------------------------------------------ answers */

typedef enum style { IMDS = 0, APPSERVICE } style;

static void respond_body(kl_http_req *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        static const char oom[] = "{\"error\":\"unknown\",\"error_description\":\"Out of memory\"}";
        kl_http_respond(r, 500, json_ct, oom, sizeof(oom) - 1);
        return;
    }
    kl_http_set_header(r, "Cache-Control", "no-store");
    kl_http_respond(r, status, json_ct, s, strlen(s));
    free(s);
}

/* IMDS's error body: {"error":..., "error_description":...}. */
static void imds_error(kl_http_req *r, int status, const char *error, const char *desc)
{
    kl_http_req_log_field(r, "mi_error", error);
    respond_body(r, status, json_pack("{s:s,s:s}", "error", error, "error_description", desc));
}

/* App Service's error body: {"statusCode":..., "message":..., "correlationId":...}. */
static void appservice_error(kl_http_req *r, int status, const char *message)
{
    kl_http_req_log_field(r, "mi_error", message);
    respond_body(r, status,
                 json_pack("{s:i,s:s,s:s}", "statusCode", status, "message", message,
                           "correlationId", kl_http_req_id(r)));
}

static void fail(kl_http_req *r, style st, int status, const char *error, const char *desc)
{
    if (st == IMDS)
        imds_error(r, status, error, desc);
    else
        appservice_error(r, status, desc);
}

/* The known audience res[0..n) names, in our spelling with the caller's trailing slash
 * (if any), into out; false when it names none. One spelling per audience keeps the
 * token cache from being defeated by case variants (each would cost a signature) and
 * gives the gateway an aud it compares exactly. */
static bool known_resource(const char *res, size_t n, char *out, size_t outlen)
{
    bool slash = n > 0 && res[n - 1] == '/';
    size_t cmp = slash ? n - 1 : n;
    for (size_t i = 0; i < sizeof(known_resources) / sizeof(known_resources[0]); i++) {
        if (kl_str_ieqn(res, cmp, known_resources[i], strlen(known_resources[i]))) {
            int w = snprintf(out, outlen, "%s%s", known_resources[i], slash ? "/" : "");
            return w > 0 && (size_t)w < outlen;
        }
    }
    return false;
}

/* Azure writes xms_mirid with a lower-case "resourcegroups" segment; the rest of the id
 * stays as created. */
static void mirid_of(const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", id);
    static const char seg[] = "/resourcegroups/";
    size_t n = strlen(out), sl = sizeof(seg) - 1;
    for (size_t i = 0; i + sl <= n; i++) {
        if (kl_str_ieqn(out + i, sl, seg, sl)) {
            memcpy(out + i, seg, sl);
            break;
        }
    }
}

/* Answers 200 with the token for mi and the resource asked for. */
static void issue(kl_imds *m, kl_http_req *r, style st, const kl_snapshot *snap, const kl_mi *mi,
                  const char *resource)
{
    int64_t now = kl_now_unix();
    const kl_jws_key *key = kl_sts_signing_key(kl_snapshot_sts(snap), now);
    if (!key) {
        kl_log(KL_LOG_ERROR, "mi_no_signing_key", NULL);
        kl_http_set_header(r, "Retry-After", KL_SNAPSHOT_RETRY_AFTER);
        fail(r, st, 503, "temporarily_unavailable",
             "No signing key is available; try again shortly");
        return;
    }
    char mirid[KL_MAX_SCOPE + 1];
    mirid_of(mi->resource_id, mirid, sizeof(mirid));
    kl_mitoken_req req = {.key = key,
                          .tid = kl_snapshot_tenant_id(snap),
                          .object_id = mi->object_id,
                          .client_id = mi->client_id,
                          .mirid = mirid,
                          .resource = resource};
    kl_mitoken_out tok;
    int err = kl_mitoken_get(m->tokens, &req, now, &tok);
    if (err) {
        kl_log(KL_LOG_ERROR, "mi_sign_failed", "error", kl_err_str(err), NULL);
        fail(r, st, 500, "unknown", "Failed to issue a token for the managed identity");
        return;
    }
    /* Every value below is an id of the snapshot, a number, a known resource (printable
     * ASCII without quotes or backslashes: it matched the list) or the token (base64url
     * and dots), so the body is written directly, as the hot path it is. */
    int64_t left = tok.expires_on - now;
    size_t cap = strlen(tok.access_token) + strlen(mi->client_id) + strlen(resource) + 256;
    char *body = malloc(cap);
    int n = -1;
    if (body && st == IMDS)
        n = snprintf(body, cap,
                     "{\"access_token\":\"%s\",\"client_id\":\"%s\",\"expires_in\":\"%lld\","
                     "\"expires_on\":\"%lld\",\"ext_expires_in\":\"%lld\",\"not_before\":\"%lld\","
                     "\"resource\":\"%s\",\"token_type\":\"Bearer\"}",
                     tok.access_token, mi->client_id, (long long)left, (long long)tok.expires_on,
                     (long long)left, (long long)tok.not_before, resource);
    else if (body)
        n = snprintf(body, cap,
                     "{\"access_token\":\"%s\",\"expires_on\":\"%lld\",\"resource\":\"%s\","
                     "\"token_type\":\"Bearer\",\"client_id\":\"%s\",\"not_before\":\"%lld\"}",
                     tok.access_token, (long long)tok.expires_on, resource, mi->client_id,
                     (long long)tok.not_before);
    if (n < 0 || (size_t)n >= cap) {
        fail(r, st, 500, "unknown", "Failed to issue a token for the managed identity");
    } else {
        kl_http_req_log_field(r, "client_id", mi->client_id);
        kl_http_req_log_field(r, "kid", kl_jws_key_kid(key));
        kl_http_req_log_field(r, "mi_cache", tok.cached ? "hit" : "mint");
        if (!tok.cached && m->signins) {
            char src[64];
            kl_http_req_peer_addr(r, src, sizeof(src));
            kl_store_signin rec = {.at = now,
                                   .client_id = (char *)mi->client_id,
                                   .principal_id = (char *)mi->object_id,
                                   .credential = "managed_identity",
                                   .resource = (char *)resource,
                                   .source = src,
                                   .success = true,
                                   .reason = "",
                                   .correlation_id = (char *)kl_http_req_id(r)};
            kl_signins_record(m->signins, &rec);
        }
        kl_http_set_header(r, "Cache-Control", "no-store");
        kl_http_respond(r, 200, json_ct, body, (size_t)n);
    }
    if (body) {
        OPENSSL_cleanse(body, cap);
        free(body);
    }
    kl_mitoken_out_clear(&tok);
}

/* The request's query parsed for style st; answers the refusal and returns false. */
static bool parse_query(kl_http_req *r, style st, kl_imdsreq *q)
{
    const char *query = kl_http_req_query(r);
    kl_imdsreq_err e = kl_imdsreq_parse(st == IMDS ? KL_IMDSREQ_IMDS : KL_IMDSREQ_APPSERVICE, query,
                                        strlen(query), q);
    if (e == KL_IMDSREQ_OK)
        return true;
    fail(r, st, 400, "invalid_request", kl_imdsreq_err_message(e));
    return false;
}

/* Everything after the caller and its query are accepted: compute resource c (NULL when
 * this node has none of that name), the identity, the resource, the token. */
static void serve(kl_imds *m, kl_http_req *r, style st, const kl_snapshot *snap,
                  const kl_fence *fence, const kl_compute *c, const kl_imdsreq *q)
{
    const kl_mi *mi = NULL;
    kl_idsel_result sel =
        kl_idselect_pick(c, st == IMDS ? KL_IDSEL_RULE_IMDS : KL_IDSEL_RULE_APPSERVICE, q->sel,
                         q->sel_value, q->sel_len, &mi);
    /* A principal the directory no longer has (or has disabled) is no identity. */
    const kl_principal *p = mi ? kl_snapshot_principal(snap, mi->object_id) : NULL;
    if (sel == KL_IDSEL_OK && (!p || !p->enabled || p->type != KL_PRINCIPAL_MANAGED_IDENTITY))
        sel = KL_IDSEL_NOT_FOUND;
    if (sel == KL_IDSEL_MULTIPLE) {
        fail(r, st, 400, "invalid_request",
             "Multiple user assigned identities exist, please specify the clientId / "
             "resourceId of the identity in the token request");
        return;
    }
    if (sel != KL_IDSEL_OK) {
        if (st == IMDS)
            imds_error(r, 400, "invalid_request", "Identity not found");
        else
            appservice_error(r, 400,
                             q->sel == KL_IDSEL_DEFAULT
                                 ? "No system assigned Managed Identity found for this site."
                                 : "No User Assigned or Delegated Managed Identity found for "
                                   "specified ClientId/ResourceId/PrincipalId.");
        return;
    }
    char resource[128];
    if (!known_resource(q->resource, q->resource_len, resource, sizeof(resource))) {
        char desc[KL_MAX_MI_RESOURCE + 512];
        snprintf(desc, sizeof(desc),
                 "AADSTS500011: The resource principal named %s was not found in the tenant "
                 "named %s. This can happen if the application has not been installed by the "
                 "administrator of the tenant or consented to by any user in the tenant. You "
                 "might have sent your authentication request to the wrong tenant.",
                 q->resource, kl_snapshot_tenant_id(snap));
        fail(r, st, 400, "invalid_resource", desc);
        return;
    }
    /* A change to this resource or identity that is saved but not yet built: fail closed
     * rather than hand out a token the change may have revoked (design T19). */
    if (kl_snapshot_fence_covers(fence, c->id) ||
        kl_snapshot_fence_covers(fence, mi->resource_id)) {
        kl_http_set_header(r, "Retry-After", KL_SNAPSHOT_RETRY_AFTER);
        fail(r, st, 503, "temporarily_unavailable",
             "The identity's configuration is being updated; try again shortly");
        return;
    }
    issue(m, r, st, snap, mi, resource);
}

static void imds_token(kl_imds *m, kl_http_req *r)
{
    /* What IMDS demands of every caller (design T3): the header a browser or a tricked
     * server-side fetch does not send, exactly once and exactly "true", and no sign of
     * having come through a proxy. */
    const char *md = kl_http_req_header(r, "Metadata");
    if (kl_http_req_header_count(r, "Metadata") != 1 || !md || strcmp(md, "true") != 0) {
        imds_error(r, 400, "invalid_request", "Required metadata header not specified");
        return;
    }
    if (kl_http_req_header_count(r, "X-Forwarded-For") > 0 ||
        kl_http_req_header_count(r, "Forwarded") > 0) {
        imds_error(r, 400, "invalid_request",
                   "Requests forwarded by a proxy (X-Forwarded-For, Forwarded) are not accepted");
        return;
    }
    kl_imdsreq q;
    if (!parse_query(r, IMDS, &q))
        return;
    kl_fence *fence = NULL;
    uint64_t fence_gen = 0;
    kl_snapshot *snap = kl_snapshot_acquire_fenced(m->holder, &fence, &fence_gen);
    if (!snap) {
        kl_http_set_header(r, "Retry-After", KL_SNAPSHOT_RETRY_AFTER);
        imds_error(r, 503, "temporarily_unavailable", "Not ready");
    } else {
        const kl_compute *vm = m->vm ? kl_snapshot_compute(snap, KL_COMPUTE_VM, m->vm) : NULL;
        serve(m, r, IMDS, snap, fence, vm, &q);
    }
    kl_snapshot_fence_release(fence);
    kl_snapshot_release(snap);
    kl_imdsreq_free(&q);
}

static void appservice_token(kl_imds *m, kl_http_req *r)
{
    if (kl_http_req_header_count(r, "X-Forwarded-For") > 0 ||
        kl_http_req_header_count(r, "Forwarded") > 0) {
        appservice_error(r, 400,
                         "Requests forwarded by a proxy (X-Forwarded-For, Forwarded) are not "
                         "accepted.");
        return;
    }
    kl_fence *fence = NULL;
    uint64_t fence_gen = 0;
    kl_snapshot *snap = kl_snapshot_acquire_fenced(m->holder, &fence, &fence_gen);
    kl_imdsreq q = {0};
    const char *hdr = kl_http_req_header(r, "X-IDENTITY-HEADER");
    size_t hn = hdr ? strlen(hdr) : 0;
    const char *site = NULL;
    unsigned char h[32] = {0};
    if (snap && kl_http_req_header_count(r, "X-IDENTITY-HEADER") == 1 && hn > 0 &&
        hn <= KL_MAX_IDENTITY_HEADER && kl_idheaders_hash(m->keys, hdr, hn, h) == 0)
        site = kl_idheaders_lookup(kl_snapshot_idheaders(snap), h, kl_now_unix());
    OPENSSL_cleanse(h, sizeof(h));
    if (!snap) {
        kl_http_set_header(r, "Retry-After", KL_SNAPSHOT_RETRY_AFTER);
        appservice_error(r, 503, "Not ready.");
        goto out;
    }
    if (!site) {
        /* Missing, repeated, wrong, revoked or lapsed: one answer for all of them. */
        kl_http_req_auth_failed(r, hdr ? KL_AUTHFAIL_INVALID_TOKEN : KL_AUTHFAIL_MISSING);
        appservice_error(r, 401, "Unauthorized.");
        goto out;
    }
    if (!parse_query(r, APPSERVICE, &q))
        goto out;
    kl_http_req_log_field(r, "site", site);
    serve(m, r, APPSERVICE, snap, fence, kl_snapshot_compute(snap, KL_COMPUTE_SITE, site), &q);
out:
    kl_imdsreq_free(&q);
    kl_snapshot_fence_release(fence);
    kl_snapshot_release(snap);
}

/* ------------------------------------------------------------------ routing */

void kl_imds_handle(kl_imds *m, kl_http_req *r)
{
    const char *path = kl_http_req_path(r);
    style st;
    /* The server collapsed "//" and dropped a trailing '/' (MSAL sends
     * /metadata/identity/oauth2/token/ when AZURE_POD_IDENTITY_AUTHORITY_HOST is set). */
    if (!strcmp(path, "/metadata/identity/oauth2/token"))
        st = IMDS;
    else if (kl_str_ieq(path, "/msi/token"))
        st = APPSERVICE; /* Azure's own sample spells it /MSI/token */
    else {
        /* The daemon's 404 on every face. */
        kl_http_respond_error(r, 404, "NotFound", "The requested resource does not exist.");
        return;
    }
    if (strcmp(kl_http_req_method(r), "GET") != 0) {
        kl_http_set_header(r, "Allow", "GET");
        fail(r, st, 405, "invalid_request", "Only GET is supported");
        return;
    }
    if (st == IMDS)
        imds_token(m, r);
    else
        appservice_token(m, r);
}
