/* The token service's endpoints (see sts.h). The token endpoint checks, in this order:
 * method, tenant, form, grant_type, client_id, scope (resource; client_credentials
 * only), the client, its credential (check_client_credential: the one place a new kind
 * of credential is added; a public client presents none, and only to a user grant), the
 * service principal being enabled; then client_credentials signs a v1 access token with
 * the snapshot's current key, and a user grant is handed to its handler
 * (sts_internal.h). Every refusal is Entra's error body with its AADSTS code. */
#include "gateway/gateway_sts.h"

#include <event2/event.h>

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/devicecode.h"
#include "gateway/discovery.h"
#include "gateway/held.h"
#include "gateway/refreshq.h"
#include "gateway/sts_internal.h"
#include "gateway/authorize.h"
#include "crypto/jws.h"
#include "gateway/clientaddr.h"
#include "policy/appcreds.h"
#include "policy/jwks.h"
#include "policy/signins.h"
#include "policy/sts.h"
#include "token/assertion.h"
#include "token/bearer.h"
#include "token/claims.h"
#include "token/form.h"
#include "token/mint.h"
#include "token/throttle.h"

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#define TENANT_NAME "keyless" /* KL_STORE_TENANT_DISPLAY_NAME: the tenant by name */
/* The ADFS-style authority of the default tenant: MSAL (Python, and the az CLI on it)
 * skips Microsoft's instance discovery only for an authority whose tenant is "adfs". */
#define ADFS_SEGMENT "adfs"
#define MAX_TENANT_SEG 64
#define MAX_ECHO 256 /* longest caller value echoed in an error description */

static void audit(const kl_sts_audit *a, kl_http_req *r, bool ok, int code, const char *reason,
                  const char *corr)
{
    if (!a || !a->s->signins)
        return;
    char src[KL_MAX_NETRULE_TEXT + 1];
    kl_clientaddr_text(a->s->trusted_proxies, r, src, sizeof(src));
    kl_store_signin rec = {.at = kl_now_unix(),
                           .client_id = (char *)(a->client_id ? a->client_id : ""),
                           .principal_id = (char *)a->principal_id,
                           .credential = (char *)(a->credential ? a->credential : "none"),
                           .resource = (char *)a->resource,
                           .source = src,
                           .success = ok,
                           .error_code = code,
                           .reason = (char *)reason,
                           .correlation_id = (char *)corr};
    kl_signins_record(a->s->signins, &rec);
}

/* The resources a client may ask a token for (scope "{resource}/.default"). */
static const char *const known_resources[] = {
    "https://cognitiveservices.azure.com", /* the data plane */
    "https://management.azure.com",        /* the control plane (ARM) */
    "https://management.core.windows.net", /* ARM's older audience */
    "https://graph.microsoft.com",         /* the Graph-shaped directory */
};

bool kl_sts_known_resource(const char *res, size_t n)
{
    /* Compared without regard to case and to one trailing slash, as Entra matches an
     * application ID URI; the token's aud keeps what was asked for. */
    size_t cmp = n > 0 && res[n - 1] == '/' ? n - 1 : n;
    for (size_t i = 0; i < sizeof(known_resources) / sizeof(known_resources[0]); i++)
        if (kl_str_ieqn(res, cmp, known_resources[i], strlen(known_resources[i])))
            return true;
    return false;
}

typedef enum sts_route {
    STS_NONE = 0,
    STS_DISCOVERY_V2,
    STS_DISCOVERY_V1,
    STS_KEYS_V2,
    STS_KEYS_V1,
    STS_TOKEN_V2,
    STS_TOKEN_V1,
    STS_DEVICECODE_V2,
    STS_DEVICECODE_V1,
    STS_REVOKE,
    STS_AUTHORIZE, /* v1 and v2: authorize.c tells them apart */
    STS_LOGOUT     /* v1 and v2 alike */
} sts_route;

static const struct {
    const char *suffix;
    sts_route route;
} suffixes[] = {
    {"/v2.0/.well-known/openid-configuration", STS_DISCOVERY_V2},
    {"/.well-known/openid-configuration", STS_DISCOVERY_V1},
    {"/discovery/v2.0/keys", STS_KEYS_V2},
    {"/discovery/keys", STS_KEYS_V1},
    {"/oauth2/v2.0/token", STS_TOKEN_V2},
    {"/oauth2/token", STS_TOKEN_V1},
    {"/oauth2/v2.0/devicecode", STS_DEVICECODE_V2},
    {"/oauth2/devicecode", STS_DEVICECODE_V1},
    {"/oauth2/v2.0/revoke", STS_REVOKE},
    {"/oauth2/v2.0/authorize", STS_AUTHORIZE},
    {"/oauth2/authorize", STS_AUTHORIZE},
    {"/oauth2/v2.0/logout", STS_LOGOUT},
    {"/oauth2/logout", STS_LOGOUT},
};

/* ------------------------------------------------------------------ lifecycle */

int kl_gateway_sts_new(const kl_gateway_sts_cfg *cfg, kl_gateway_sts **out)
{
    *out = NULL;
    if (!cfg || !cfg->holder || !cfg->keys || !cfg->public_base_url)
        return KL_EINVAL;
    kl_gateway_sts *s = calloc(1, sizeof(*s));
    if (!s)
        return KL_ENOMEM;
    size_t n = strlen(cfg->public_base_url);
    while (n > 0 && cfg->public_base_url[n - 1] == '/')
        n--;
    if (!(s->base = kl_strndup(cfg->public_base_url, n))) {
        free(s);
        return KL_ENOMEM;
    }
    s->holder = cfg->holder;
    s->keys = cfg->keys;
    s->lifetime_s = cfg->token_lifetime_s > 0 ? cfg->token_lifetime_s : KL_TOKEN_DEFAULT_LIFETIME_S;
    s->signins = cfg->signins;
    s->trusted_proxies = cfg->trusted_proxies;
    s->store = cfg->store;
    s->https = (kl_jwks_https){.egress = cfg->egress, .ca_file = cfg->federation_ca_file};
    int err = kl_throttle_new(KL_THROTTLE_DEFAULT_ENTRIES, &s->throttle);
    if (!err)
        err = kl_throttle_new(KL_THROTTLE_DEFAULT_ENTRIES, &s->pw_throttle);
    if (!err)
        err = kl_devicecode_new(cfg->device_code_lifetime_s, &s->devicecode);
    if (!err && cfg->egress)
        err = kl_jwks_new(kl_jwks_https_fetch, &s->https, &s->jwks);
    if (!err && cfg->store)
        err = kl_refreshq_new(cfg->refresh_store ? cfg->refresh_store : cfg->store, &s->refreshq);
    if (err) {
        kl_gateway_sts_free(s);
        return err;
    }
    *out = s;
    return 0;
}

void kl_gateway_sts_free(kl_gateway_sts *s)
{
    if (!s)
        return;
    free(s->base);
    kl_throttle_free(s->throttle);
    kl_throttle_free(s->pw_throttle);
    kl_refreshq_free(s->refreshq);
    kl_devicecode_free(s->devicecode);
    kl_jwks_free(s->jwks);
    free(s);
}

void kl_gateway_sts_thread_fini(kl_gateway_sts *s, struct event_base *base)
{
    if (s)
        kl_refreshq_cancel(s->refreshq, base);
}

int kl_gateway_sts_issuer(const char *tid, char *out, size_t outlen)
{
    return kl_claims_issuer_v1(tid, out, outlen);
}

/* ------------------------------------------------------------------ routing */

static bool tenant_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
}

/* Splits path into its route and tenant segment (tenant[0..*tlen) points into path). */
static sts_route parse_path(const char *path, const char **tenant, size_t *tlen)
{
    if (!path || path[0] != '/')
        return STS_NONE;
    const char *t = path + 1;
    size_t n = 0;
    while (t[n] && t[n] != '/')
        n++;
    if (n == 0 || n > MAX_TENANT_SEG)
        return STS_NONE;
    for (size_t i = 0; i < n; i++)
        if (!tenant_char(t[i]))
            return STS_NONE;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (kl_str_ieq(t + n, suffixes[i].suffix)) {
            *tenant = t;
            *tlen = n;
            return suffixes[i].route;
        }
    }
    return STS_NONE;
}

bool kl_gateway_sts_matches(const char *path)
{
    const char *t;
    size_t n;
    return parse_path(path, &t, &n) != STS_NONE;
}

/* The tenant id when seg names this tenant (its GUID, either case, or its name). */
static bool tenant_matches(const kl_snapshot *snap, const char *seg, size_t n)
{
    const char *tid = kl_snapshot_tenant_id(snap);
    if (!tid[0])
        return false;
    /* "organizations" and "common" are Entra's multi-tenant authorities (the default of
     * DeviceCodeCredential and InteractiveBrowserCredential); keyless has one tenant, so
     * they name it, and every document and token names the tenant's GUID. */
    return kl_str_ieqn(seg, n, tid, strlen(tid)) ||
           kl_str_ieqn(seg, n, TENANT_NAME, sizeof(TENANT_NAME) - 1) ||
           kl_str_ieqn(seg, n, "organizations", sizeof("organizations") - 1) ||
           kl_str_ieqn(seg, n, "common", sizeof("common") - 1);
}

/* ------------------------------------------------------------------ answers */

const char *kl_sts_echo(const char *v)
{
    if (!v)
        return "";
    size_t n = strnlen(v, MAX_ECHO + 1);
    if (n > MAX_ECHO)
        return "(too long)";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e || v[i] == '\'')
            return "(invalid)";
    return v;
}

void kl_sts_correlation_id(kl_http_req *r, char out[KL_UUID_LEN + 1])
{
    const char *cands[] = {kl_http_req_query_param(r, "client-request-id"),
                           kl_http_req_header(r, "client-request-id"),
                           kl_http_req_header(r, "x-ms-client-request-id")};
    for (size_t i = 0; i < 3; i++) {
        if (cands[i] && kl_uuid_valid(cands[i], strlen(cands[i]))) {
            snprintf(out, KL_UUID_LEN + 1, "%s", cands[i]);
            for (char *p = out; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            return;
        }
    }
    if (kl_uuid_v4(out) != 0)
        snprintf(out, KL_UUID_LEN + 1, "00000000-0000-0000-0000-000000000000");
}

void kl_sts_no_store(kl_http_req *r)
{
    kl_http_set_header(r, "Cache-Control", "no-store, no-cache");
    kl_http_set_header(r, "Pragma", "no-cache");
}

void kl_sts_audit_ok(const kl_sts_audit *a, kl_http_req *r, const char *corr)
{
    audit(a, r, true, 0, "", corr);
}

/* held.h's callbacks for a JSON error body. */
static void held_send_json(kl_http_req *r, int status, void *body, size_t len)
{
    (void)len;
    kl_http_respond_json(r, status, body); /* the server owns it now */
}

static void held_drop_json(void *body)
{
    json_decref(body);
}

/* Entra's error body: error, error_description ("AADSTS<code>: <text>\r\nTrace ID:
 * ...\r\nCorrelation ID: ...\r\nTimestamp: ..."), error_codes, timestamp, trace_id,
 * correlation_id, error_uri; sent after delay_ms when that is not 0. */
static void verror(const kl_sts_audit *a, kl_http_req *r, uint32_t delay_ms, int status,
                   const char *error, int code, const char *fmt, va_list ap)
{
    char text[1024], desc[1400], trace[KL_UUID_LEN + 1], corr[KL_UUID_LEN + 1], ts[32], uri[96];
    vsnprintf(text, sizeof(text), fmt, ap);
    if (kl_uuid_v4(trace) != 0)
        snprintf(trace, sizeof(trace), "00000000-0000-0000-0000-000000000000");
    kl_sts_correlation_id(r, corr);
    time_t now = (time_t)kl_now_unix();
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
    snprintf(desc, sizeof(desc),
             "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", code, text,
             trace, corr, ts);
    snprintf(uri, sizeof(uri), "https://login.microsoftonline.com/error?code=%d", code);
    char codestr[16];
    snprintf(codestr, sizeof(codestr), "%d", code);
    kl_http_req_log_field(r, "sts_error", error);
    audit(a, r, false, code, text, corr);
    kl_http_req_log_field(r, "aadsts", codestr);
    kl_sts_no_store(r);
    kl_http_set_header(r, "x-ms-request-id", trace);
    kl_http_set_header(r, "client-request-id", corr);
    json_t *body = json_pack("{s:s,s:s,s:[i],s:s,s:s,s:s,s:s}", "error", error, "error_description",
                             desc, "error_codes", code, "timestamp", ts, "trace_id", trace,
                             "correlation_id", corr, "error_uri", uri);
    if (delay_ms > 0 && body &&
        kl_held_answer(r, delay_ms, status, body, 0, held_send_json, held_drop_json) == 0)
        return;
    /* No delay asked, or no timer to be had: answering now only loses the slowdown. */
    kl_http_respond_json(r, status, body);
}

void kl_sts_unavailable(const kl_sts_audit *a, kl_http_req *r)
{
    kl_sts_error(a, r, 503, "temporarily_unavailable", 90033,
                 "A transient error has occurred. Please try again.");
}

void kl_sts_error(const kl_sts_audit *a, kl_http_req *r, int status, const char *error, int code,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(a, r, 0, status, error, code, fmt, ap);
    va_end(ap);
}

void kl_sts_error_later(const kl_sts_audit *a, kl_http_req *r, uint32_t delay_ms, int status,
                        const char *error, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(a, r, delay_ms, status, error, code, fmt, ap);
    va_end(ap);
}

static void unknown_tenant(const kl_sts_audit *a, kl_http_req *r, const char *seg, size_t n,
                           bool token)
{
    char t[MAX_TENANT_SEG + 1];
    snprintf(t, sizeof(t), "%.*s", (int)n, seg);
    kl_sts_error(a, r, 400, token ? "invalid_request" : "invalid_tenant", 90002,
                 "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are "
                 "signing into the correct cloud. Check with your subscription administrator, this "
                 "may happen if there are no active subscriptions for the tenant.",
                 t);
}

/* ------------------------------------------------------------------ JWKS */

static void jwks(kl_http_req *r, const kl_snapshot *snap)
{
    kl_http_respond_json(r, 200, kl_sts_jwks(kl_snapshot_sts(snap), kl_now_unix(), NULL));
}

/* ------------------------------------------------------------------ token endpoint */

/* What the client presented and what was decided about it. */
typedef struct sts_client {
    const char *client_id;        /* from the form, or from Basic */
    const char *basic_secret;     /* from client_secret_basic, else NULL */
    const kl_principal *sp;       /* the client's service principal */
    int appidacr;                 /* 1 secret, 2 certificate (set on success) */
    const char *cred_type;        /* "client_secret", ... (for the log) */
    char key_id[KL_UUID_LEN + 1]; /* the credential that matched, when known */
    const char *token_endpoint;   /* this endpoint's URL: a client assertion's aud */
    bool not_counted; /* refused for a reason of ours (503), not a failed authentication */
} sts_client;

/* Entra's answer for a refused client assertion: invalid_client, 401, the reason's
 * AADSTS code; the text says what was wrong with the assertion, never which part of a
 * credential matched. */
static void assertion_refused(const kl_sts_audit *a, kl_http_req *r, const sts_client *c,
                              kl_assertion_reason why)
{
    const char *app = c->sp->app_id;
    switch (why) {
    case KL_ASSERTION_MALFORMED:
        kl_sts_error(a, r, 401, "invalid_client", 50027,
                     "JWT token is invalid or malformed (client assertion for app '%s').", app);
        return;
    case KL_ASSERTION_NO_CERT:
    case KL_ASSERTION_BAD_SIGNATURE:
    case KL_ASSERTION_CERT_EXPIRED:
    case KL_ASSERTION_KEY_UNKNOWN:
        kl_sts_error(a, r, 401, "invalid_client", 700027,
                     "Client assertion failed signature validation: no valid registered credential "
                     "of app '%s' signed it (%s).",
                     app, kl_assertion_reason_str(why));
        return;
    case KL_ASSERTION_AUDIENCE:
        kl_sts_error(a, r, 401, "invalid_client", 700023,
                     "Client assertion audience claim does not match Realm issuer: the aud must be "
                     "'%s'.",
                     c->token_endpoint);
        return;
    case KL_ASSERTION_SUBJECT:
        kl_sts_error(a, r, 401, "invalid_client", 700021,
                     "Client assertion application identifier doesn't match 'client_id' parameter: "
                     "iss and sub must be '%s'.",
                     app);
        return;
    case KL_ASSERTION_LIFETIME:
        /* Said in minutes, as Entra does; the number comes from the limit itself. */
        _Static_assert(KL_ASSERTION_MAX_LIFETIME_S % 60 == 0, "said in whole minutes");
        kl_sts_error(a, r, 401, "invalid_client", 700024,
                     "Client assertion is not within its valid time range (at most %d minutes, "
                     "not expired, not yet valid).",
                     KL_ASSERTION_MAX_LIFETIME_S / 60);
        return;
    case KL_ASSERTION_REPLAYED:
        kl_sts_error(a, r, 401, "invalid_client", 50013,
                     "Assertion is invalid: this client assertion (its jti) was already used.");
        return;
    case KL_ASSERTION_FED_ISSUER:
        kl_sts_error(a, r, 401, "invalid_client", 700211,
                     "No matching federated identity record found for presented assertion issuer "
                     "(app '%s').",
                     app);
        return;
    case KL_ASSERTION_FED_AUDIENCE:
        kl_sts_error(a, r, 401, "invalid_client", 700212,
                     "No matching federated identity record found for presented assertion audience "
                     "(app '%s').",
                     app);
        return;
    case KL_ASSERTION_FED_SUBJECT:
        kl_sts_error(a, r, 401, "invalid_client", 700213,
                     "No matching federated identity record found for presented assertion subject "
                     "(app '%s').",
                     app);
        return;
    default: kl_sts_unavailable(a, r); return;
    }
}

typedef struct issuer_keys {
    kl_jwks *jwks;
    kl_jwks_set *hold; /* released after the check */
    int64_t now;
} issuer_keys;

static const kl_jws_key *issuer_key(void *ctx, const char *issuer, const char *kid)
{
    issuer_keys *k = ctx;
    const kl_jws_key *key = NULL;
    if (!k->jwks || k->hold)
        return NULL;
    return kl_jwks_key(k->jwks, issuer, kid, k->now, &k->hold, &key) == 0 ? key : NULL;
}

/* True for an assertion naming a certificate (x5t, x5t#S256 or x5c); otherwise it is
 * an external issuer's token for a federated credential. */
static bool names_certificate(const char *tok, size_t n)
{
    json_t *h = NULL;
    if (kl_jws_peek_header(tok, n, &h) != KL_JWS_OK)
        return true; /* malformed either way: the certificate check says so */
    bool cert =
        json_object_get(h, "x5t") || json_object_get(h, "x5t#S256") || json_object_get(h, "x5c");
    json_decref(h);
    return cert;
}

/* A client assertion (certificate or federated): true with appidacr 2, or answered. */
static bool check_assertion(kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r,
                            const kl_snapshot *snap, const kl_form *f, const char *assertion,
                            size_t alen, sts_client *c, int64_t now)
{
    const char *type = kl_form_get(f, "client_assertion_type", NULL);
    if (!type || strcmp(type, JWT_BEARER) != 0) {
        kl_sts_error(a, r, 400, "invalid_request", 90014,
                     "The request body must contain the parameter 'client_assertion_type' with the "
                     "value '" JWT_BEARER "'.");
        return false;
    }
    const kl_appcreds *ac = kl_snapshot_appcreds(snap);
    kl_assertion_reason why;
    const char *key_id = NULL;
    if (names_certificate(assertion, alen)) {
        c->cred_type = "client_assertion_certificate";
        if (!s->store) {
            c->not_counted = true;
            why = KL_ASSERTION_UNAVAILABLE;
        } else {
            why = kl_appcreds_check_assertion(ac, s->store, c->sp->app_id, assertion, alen,
                                              c->token_endpoint, now, &key_id);
        }
    } else {
        c->cred_type = "client_assertion_federated";
        size_t n = 0;
        const kl_federated_cred *fics = kl_appcreds_federated(ac, c->sp->app_id, &n);
        const kl_federated_cred *used = NULL;
        issuer_keys ik = {.jwks = s->jwks, .now = now};
        why = kl_assertion_check_federated(c->sp->app_id, assertion, alen, fics, n, now, issuer_key,
                                           &ik, &used);
        kl_jwks_set_release(ik.hold);
        if (why == KL_ASSERTION_OK)
            key_id = used->id;
    }
    if (why == KL_ASSERTION_UNAVAILABLE)
        c->not_counted = true;
    if (why != KL_ASSERTION_OK) {
        kl_http_req_log_field(r, "assertion_refused", kl_assertion_reason_str(why));
        a->credential = c->cred_type;
        assertion_refused(a, r, c, why);
        return false;
    }
    a->credential = c->cred_type;
    c->appidacr = 2;
    if (key_id)
        snprintf(c->key_id, sizeof(c->key_id), "%s", key_id);
    return true;
}

/* Checks the client's credential and answers the refusal itself (returning false).
 * This is where another kind of client credential (a client assertion) plugs in: it
 * decides appidacr and cred_type, or answers with Entra's error. */
static bool check_client_credential(kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r,
                                    const kl_snapshot *snap, const kl_form *f, sts_client *c,
                                    int64_t now)
{
    size_t slen = 0;
    const char *secret = kl_form_get(f, "client_secret", &slen);
    const char *assertion = kl_form_get(f, "client_assertion", NULL);
    if (c->basic_secret) {
        if (secret || assertion) {
            kl_sts_error(a, r, 400, "invalid_request", 90014,
                         "The request uses more than one client authentication method.");
            return false;
        }
        secret = c->basic_secret;
        slen = strlen(secret);
    }
    if (secret && assertion) {
        kl_sts_error(a, r, 400, "invalid_request", 90014,
                     "The request uses more than one client authentication method.");
        return false;
    }
    if (assertion)
        return check_assertion(a, s, r, snap, f, assertion, strlen(assertion), c, now);
    if (!secret || slen == 0) {
        kl_sts_error(a, r, 401, "invalid_client", 7000218,
                     "The request body must contain the following parameter: 'client_assertion' or "
                     "'client_secret'.");
        return false;
    }
    c->cred_type = "client_secret";
    a->credential = c->cred_type;
    switch (kl_sts_check_secret(kl_snapshot_sts(snap), s->keys, c->sp->app_id, secret, slen, now,
                                c->key_id)) {
    case KL_STS_SECRET_OK: c->appidacr = 1; return true;
    case KL_STS_SECRET_EXPIRED:
        kl_sts_error(a, r, 401, "invalid_client", 7000222,
                     "The provided client secret keys for app '%s' are expired. Visit the Azure "
                     "portal to create new keys for your app: https://aka.ms/NewClientSecret, or "
                     "consider using certificate credentials for added security: "
                     "https://aka.ms/certCreds.",
                     c->sp->app_id);
        return false;
    case KL_STS_SECRET_WRONG: break;
    }
    kl_sts_error(
        a, r, 401, "invalid_client", 7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app '%s'.",
        c->sp->app_id);
    return false;
}

/* client_secret_basic: "Basic base64(urlencode(id) ':' urlencode(secret))" (RFC 6749
 * 2.3.1). Fills *basic (parsed as a form so the halves are percent-decoded). Returns
 * 0 when there is no Basic header, 1 when parsed, -1 (answered) when malformed. */
static int parse_basic(const kl_sts_audit *a, kl_http_req *r, kl_form **basic)
{
    const char *h = kl_http_req_header(r, "authorization");
    *basic = NULL;
    if (!h || !kl_str_ieqn(h, strlen(h) < 6 ? strlen(h) : 6, "basic ", 6))
        return 0;
    const char *v = h + 6;
    while (*v == ' ')
        v++;
    size_t n = strlen(v);
    unsigned char *dec = malloc(n + 4);
    char *form = malloc(n + 64);
    int rc = -1;
    if (!dec || !form)
        goto out;
    int dl = kl_b64_decode(v, n, dec, n + 4);
    if (dl <= 0 || memchr(dec, '\0', (size_t)dl) || !memchr(dec, ':', (size_t)dl))
        goto out;
    const char *colon = memchr(dec, ':', (size_t)dl);
    size_t il = (size_t)(colon - (const char *)dec);
    int fl = snprintf(form, n + 64, "client_id=%.*s&client_secret=%.*s", (int)il, dec,
                      (int)((size_t)dl - il - 1), colon + 1);
    if (fl > 0 && kl_form_parse(form, (size_t)fl, basic, NULL, 0) == KL_FORM_OK)
        rc = 1;
out:
    if (dec) {
        OPENSSL_cleanse(dec, n + 4);
        free(dec);
    }
    if (form) {
        OPENSSL_cleanse(form, n + 64);
        free(form);
    }
    if (rc < 0)
        kl_sts_error(a, r, 401, "invalid_client", 7000215,
                     "Invalid client secret provided: the Authorization header is not valid "
                     "client_secret_basic.");
    return rc;
}

/* The resource of "{resource}/.default" (or a v1 "resource"), as requested, in out.
 * Answers the refusal and returns false. */
static bool pick_resource(const kl_sts_audit *a, kl_http_req *r, const kl_form *f, bool v1,
                          const char *tid, char *out, size_t outlen)
{
    const char *scope = kl_form_get(f, "scope", NULL);
    const char *resource = v1 ? kl_form_get(f, "resource", NULL) : NULL;
    size_t n;
    if (resource && *resource) {
        n = strlen(resource);
    } else {
        if (!scope || !*scope) {
            kl_sts_error(a, r, 400, "invalid_request", 900144,
                         "The request body must contain the following parameter: '%s'.",
                         v1 ? "resource" : "scope");
            return false;
        }
        static const char suffix[] = "/.default";
        size_t sl = strlen(scope), xl = sizeof(suffix) - 1;
        if (strchr(scope, ' ') || sl <= xl || strcmp(scope + sl - xl, suffix) != 0) {
            kl_sts_error(a, r, 400, "invalid_scope", 70011,
                         "The provided value for the input parameter 'scope' is not valid. The "
                         "scope %s is not valid.",
                         kl_sts_echo(scope));
            return false;
        }
        resource = scope;
        n = sl - xl;
    }
    if (kl_sts_known_resource(resource, n) && n < outlen) {
        memcpy(out, resource, n);
        out[n] = '\0';
        return true;
    }
    char shown[MAX_ECHO + 1];
    snprintf(shown, sizeof(shown), "%.*s", (int)(n < MAX_ECHO ? n : MAX_ECHO), resource);
    kl_sts_error(a, r, 400, "invalid_resource", 500011,
                 "The resource principal named %s was not found in the tenant named %s. This can "
                 "happen if the application has not been installed by the administrator of the "
                 "tenant or consented to by any user in the tenant. You might have sent your "
                 "authentication request to the wrong tenant.",
                 kl_sts_echo(shown), tid);
    return false;
}

/* True if v can stand in a JSON string as it is: printable ASCII without '"' or '\\'. */
static bool json_plain(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e || *v == '"' || *v == '\\')
            return false;
    return true;
}

/* Signs the access token and answers 200. */
static void issue(const kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap,
                  const sts_client *c, const char *resource, bool v1, int64_t now)
{
    const char *tid = kl_snapshot_tenant_id(snap);
    const kl_jws_key *key = kl_sts_signing_key(kl_snapshot_sts(snap), now);
    char iss[160];
    char *tok = NULL, *body = NULL;
    size_t cap = 0, body_len = 0;
    if (!key) {
        kl_log(KL_LOG_ERROR, "sts_no_signing_key", NULL);
        kl_sts_unavailable(a, r);
        return;
    }
    kl_gateway_sts_issuer(tid, iss, sizeof(iss));
    kl_claims_access in = {.aud = resource,
                           .iss = iss,
                           .tid = tid,
                           .appid = c->sp->app_id,
                           .oid = c->sp->object_id,
                           .appidacr = c->appidacr,
                           .now = now,
                           .lifetime = s->lifetime_s};
    int err = kl_mint_access(key, &in, &tok);
    if (err) {
        kl_log(KL_LOG_ERROR, "sts_sign_failed", "error", kl_err_str(err), NULL);
        kl_sts_error(a, r, 500, "server_error", 90033,
                     "A transient error has occurred. Please try again.");
        goto out;
    }
    /* Written directly rather than through a JSON tree: the token is base64url and dots,
     * the numbers ours, and the resource one of known_resources as the client spelled it
     * (json_plain checks); this is every token's answer. */
    cap = strlen(tok) + strlen(resource) + 256;
    body = malloc(cap);
    if (!body || !json_plain(resource)) {
        kl_sts_error(a, r, 500, "server_error", 90033,
                     "A transient error has occurred. Please try again.");
        goto out;
    }
    long long life = (long long)s->lifetime_s;
    int bn = snprintf(body, cap,
                      "{\"token_type\":\"Bearer\",\"expires_in\":%lld,\"ext_expires_in\":%lld,"
                      "\"access_token\":\"%s\"",
                      life, life, tok);
    if (bn > 0 && (size_t)bn < cap && v1) /* Entra's v1 endpoint adds these, as strings */
        bn += snprintf(body + bn, cap - (size_t)bn,
                       ",\"expires_on\":\"%lld\",\"not_before\":\"%lld\",\"resource\":\"%s\"",
                       (long long)(now + s->lifetime_s), (long long)now, resource);
    if (bn <= 0 || (size_t)bn + 1 >= cap) {
        kl_sts_error(a, r, 500, "server_error", 90033,
                     "A transient error has occurred. Please try again.");
        goto out;
    }
    body[bn++] = '}';
    body_len = (size_t)bn;
    char corr[KL_UUID_LEN + 1];
    kl_sts_correlation_id(r, corr);
    kl_sts_no_store(r);
    kl_http_set_header(r, "client-request-id", corr);
    kl_http_req_log_field(r, "client_id", c->sp->app_id);
    kl_http_req_log_field(r, "credential", c->cred_type);
    kl_http_req_log_field(r, "kid", kl_jws_key_kid(key));
    audit(a, r, true, 0, "", corr);
    kl_http_respond(r, 200, "application/json", body, body_len);
out:
    if (body) {
        OPENSSL_cleanse(body, cap);
        free(body);
    }
    if (tok) {
        OPENSSL_cleanse(tok, strlen(tok));
        free(tok);
    }
}

static bool form_content_type(kl_http_req *r)
{
    const char *ct = kl_http_req_header(r, "content-type");
    static const char want[] = "application/x-www-form-urlencoded";
    return ct && kl_str_ieqn(ct, strlen(ct) < sizeof(want) - 1 ? strlen(ct) : sizeof(want) - 1,
                             want, sizeof(want) - 1);
}

/* The user grants (sts_internal.h), each answering the request itself once the client
 * is authenticated. */
typedef void (*grant_fn)(kl_sts_grant *g);

static const struct {
    const char *name;
    grant_fn fn;
} user_grants[] = {
    {"password", kl_usertoken_password},
    {"refresh_token", kl_usertoken_refresh},
    {"authorization_code", kl_authorize_redeem},
    {"device_code", kl_devicecode_redeem},
    {"urn:ietf:params:oauth:grant-type:device_code", kl_devicecode_redeem},
};

static grant_fn find_user_grant(const char *grant)
{
    for (size_t i = 0; i < sizeof(user_grants) / sizeof(user_grants[0]); i++)
        if (strcmp(grant, user_grants[i].name) == 0)
            return user_grants[i].fn;
    return NULL;
}

/* The form of a token-service POST in *f: answered (false) when it is not one. */
static bool read_form(kl_sts_audit *a, kl_http_req *r, kl_form **f)
{
    size_t blen = 0;
    const unsigned char *b = kl_http_req_body(r, &blen);
    char dup[64] = "";
    kl_form_reason fr = form_content_type(r)
                            ? kl_form_parse((const char *)b, blen, f, dup, sizeof(dup))
                            : kl_form_parse("", 0, f, NULL, 0);
    if (fr == KL_FORM_DUPLICATE) {
        kl_sts_error(a, r, 400, "invalid_request", 90015,
                     "The request contains the parameter '%s' more than once.", kl_sts_echo(dup));
        return false;
    }
    if (fr != KL_FORM_OK) {
        kl_sts_error(a, r, 400, "invalid_request", 900144,
                     "The request body must be application/x-www-form-urlencoded (%s).",
                     kl_form_reason_str(fr));
        return false;
    }
    return true;
}

/* One request's client authentication, in two steps around the resource check of
 * client_credentials (whose order of refusals clients see): client_begin (who the
 * client says it is, and the throttle), then client_prove (its credential). client_end
 * counts a failure and frees what begin kept. */
typedef struct client_auth {
    sts_client c;
    kl_form *basic;                     /* client_secret_basic, parsed */
    char addr[KL_MAX_NETRULE_TEXT + 1]; /* the caller's (gateway/clientaddr.h) */
    size_t addr_len, client_len;
    bool counting, failed; /* a failed client authentication to count */
} client_auth;

static bool client_begin(kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r, const kl_form *f,
                         client_auth *ca)
{
    if (parse_basic(a, r, &ca->basic) < 0)
        return false;
    sts_client *c = &ca->c;
    c->client_id = kl_form_get(f, "client_id", NULL);
    if (ca->basic) {
        const char *bid = kl_form_get(ca->basic, "client_id", NULL);
        if (c->client_id && strcmp(c->client_id, bid) != 0) {
            kl_sts_error(a, r, 400, "invalid_request", 90014,
                         "The client_id in the body and in the Authorization header differ.");
            return false;
        }
        c->client_id = bid;
        c->basic_secret = kl_form_get(ca->basic, "client_secret", NULL);
    }
    a->client_id = c->client_id;
    if (!c->client_id || !*c->client_id) {
        kl_sts_error(a, r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'client_id'.");
        return false;
    }
    /* Throttling (security.md T9) is decided before any credential is looked at, by
     * client id and by the caller's address: the connection's, or the one a trusted
     * proxy names (gateway/clientaddr.h); a header from anyone else counts for nothing. */
    kl_clientaddr_text(s->trusted_proxies, r, ca->addr, sizeof(ca->addr));
    ca->addr_len = strlen(ca->addr);
    ca->client_len = strnlen(c->client_id, KL_MAX_PRINCIPAL_ID + 1);
    int64_t retry = 0;
    if (kl_throttle_check(s->throttle, c->client_id, ca->client_len, ca->addr, ca->addr_len,
                          (int64_t)kl_now_mono_ms(), &retry) == KL_EPERM) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)retry);
        kl_http_set_header(r, "Retry-After", ra);
        kl_http_req_log_field(r, "throttled", "client_authentication");
        kl_sts_error(a, r, 429, "temporarily_unavailable", 90055,
                     "Too many failed attempts to authenticate this client. Retry after %lld "
                     "seconds.",
                     (long long)retry);
        return false;
    }
    ca->counting = true;
    return true;
}

/* user_flow: a user grant or a revocation, where a public client presents no
 * credential (appidacr 0); otherwise (client_credentials) every client proves itself. */
static bool client_prove(kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r,
                         const kl_snapshot *snap, const kl_form *f, bool user_flow, client_auth *ca,
                         int64_t now)
{
    sts_client *c = &ca->c;
    const char *tid = kl_snapshot_tenant_id(snap);
    /* Only an application's service principal signs in with client credentials: a
     * managed identity's client id is useless here (design T2). */
    c->sp = kl_uuid_valid(c->client_id, strlen(c->client_id))
                ? kl_snapshot_principal_by_app_id(snap, c->client_id)
                : NULL;
    if (!c->sp || c->sp->type != KL_PRINCIPAL_SERVICE_PRINCIPAL) {
        ca->failed = true;
        kl_sts_error(a, r, 400, "unauthorized_client", 700016,
                     "Application with identifier '%s' was not found in the directory '%s'. This "
                     "can happen if the application has not been installed by the administrator of "
                     "the tenant or consented to by any user in the tenant. You may have sent your "
                     "authentication request to the wrong tenant.",
                     kl_sts_echo(c->client_id), tid);
        return false;
    }
    a->principal_id = c->sp->object_id;
    if (user_flow && kl_appcreds_public_client(kl_snapshot_appcreds(snap), c->sp->app_id)) {
        /* A public client cannot keep a secret, so whatever it sends is no proof; Entra
         * refuses the request rather than ignore the credential. */
        if (c->basic_secret || kl_form_get(f, "client_secret", NULL) ||
            kl_form_get(f, "client_assertion", NULL)) {
            kl_sts_error(a, r, 401, "invalid_client", 700025,
                         "Client is public so neither 'client_assertion' nor 'client_secret' "
                         "should be presented.");
            return false;
        }
        c->appidacr = 0;
        c->cred_type = "none";
    } else {
        if (!check_client_credential(a, s, r, snap, f, c, now)) {
            ca->failed = !c->not_counted;
            return false;
        }
        /* Only a proven credential vouches for the address (a public client proves
         * nothing). */
        kl_throttle_succeeded(s->throttle, c->client_id, ca->client_len, ca->addr, ca->addr_len,
                              (int64_t)kl_now_mono_ms());
    }
    if (!c->sp->enabled) {
        kl_sts_error(a, r, 400, "unauthorized_client", 7000112, "Application '%s'(%s) is disabled.",
                     c->sp->app_id, kl_sts_echo(c->sp->display_name));
        return false;
    }
    return true;
}

static void client_end(kl_gateway_sts *s, client_auth *ca)
{
    if (ca->counting && ca->failed)
        kl_throttle_failed(s->throttle, ca->c.client_id, ca->client_len, ca->addr, ca->addr_len,
                           (int64_t)kl_now_mono_ms());
    kl_form_free(ca->basic);
}

/* realm: the path segment of the endpoint posted to (the tenant id, or ADFS_SEGMENT), so
 * that a client assertion's aud is this endpoint's URL. */
static void token(kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap,
                  bool v1, const char *realm)
{
    kl_form *f = NULL;
    client_auth ca = {0};
    char resource[512], endpoint[KL_MAX_URL];
    int64_t now = kl_now_unix();
    const char *tid = kl_snapshot_tenant_id(snap);
    if (!read_form(a, r, &f))
        goto out;
    const char *grant = kl_form_get(f, "grant_type", NULL);
    if (!grant || !*grant) {
        kl_sts_error(a, r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'grant_type'.");
        goto out;
    }
    bool app_grant = strcmp(grant, "client_credentials") == 0;
    grant_fn user_grant = app_grant ? NULL : find_user_grant(grant);
    if (!app_grant && !user_grant) {
        kl_sts_error(a, r, 400, "unsupported_grant_type", 70003,
                     "The app requested an unsupported grant type '%s'.", kl_sts_echo(grant));
        goto out;
    }
    if (!client_begin(a, s, r, f, &ca))
        goto out;
    snprintf(endpoint, sizeof(endpoint), "%s/%s/oauth2%s/token", s->base, realm, v1 ? "" : "/v2.0");
    ca.c.token_endpoint = endpoint;
    /* A user grant's resource comes from its scope (kl_sts_scope_parse), checked by
     * the grant once it knows which scope was granted. */
    if (app_grant) {
        if (!pick_resource(a, r, f, v1, tid, resource, sizeof(resource)))
            goto out;
        a->resource = resource;
    }
    if (!client_prove(a, s, r, snap, f, !app_grant, &ca, now))
        goto out;
    if (app_grant) {
        issue(a, s, r, snap, &ca.c, resource, v1, now);
    } else {
        kl_http_req_log_field(r, "grant_type", grant);
        kl_sts_grant g = {.a = a,
                          .s = s,
                          .r = r,
                          .snap = snap,
                          .f = f,
                          .client = ca.c.sp,
                          .appidacr = ca.c.appidacr,
                          .v1 = v1,
                          .now = now};
        user_grant(&g);
    }
out:
    client_end(s, &ca);
    kl_form_free(f);
}

/* Token revocation (RFC 7009) for refresh tokens: the token's whole family is revoked.
 * The client authenticates as for a user grant (a public client by its client_id
 * alone) and may revoke only its own tokens; an unknown token is answered 200, as the
 * RFC asks, so the answer says nothing about which tokens exist. */
static void revoke(kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap,
                   const char *realm)
{
    kl_form *f = NULL;
    client_auth ca = {0};
    char endpoint[KL_MAX_URL];
    a->credential = "revocation";
    if (!read_form(a, r, &f))
        goto out;
    const char *tok = kl_form_get(f, "token", NULL);
    if (!tok || !*tok) {
        kl_sts_error(a, r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'token'.");
        goto out;
    }
    if (!client_begin(a, s, r, f, &ca))
        goto out;
    snprintf(endpoint, sizeof(endpoint), "%s/%s/oauth2/v2.0/revoke", s->base, realm);
    ca.c.token_endpoint = endpoint;
    if (!client_prove(a, s, r, snap, f, true, &ca, kl_now_unix()))
        goto out;
    kl_sts_grant g = {.a = a,
                      .s = s,
                      .r = r,
                      .snap = snap,
                      .f = f,
                      .client = ca.c.sp,
                      .appidacr = ca.c.appidacr,
                      .now = kl_now_unix()};
    kl_usertoken_revoke(&g);
out:
    client_end(s, &ca);
    kl_form_free(f);
}

/* The ADFS-style authority (/adfs/...) of the default tenant: the v1 routes, plus its
 * discovery document under /adfs/v2.0/ too, because MSAL Python compares the tenant
 * "adfs" case-sensitively there (an authority ending in /ADFS asks for that path). */
static void adfs_handle(kl_sts_audit *a, kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap,
                        sts_route rt)
{
    const char *tid = kl_snapshot_tenant_id(snap);
    if (!tid[0]) {
        unknown_tenant(a, r, ADFS_SEGMENT, sizeof(ADFS_SEGMENT) - 1, a != NULL);
        return;
    }
    switch (rt) {
    case STS_DISCOVERY_V1:
    case STS_DISCOVERY_V2: kl_discovery_adfs(s->base, ADFS_SEGMENT, r, tid); break;
    case STS_KEYS_V1: jwks(r, snap); break;
    case STS_TOKEN_V1: token(a, s, r, snap, true, ADFS_SEGMENT); break;
    case STS_DEVICECODE_V1: kl_devicecode_issue(s, r, snap, true); break;
    case STS_AUTHORIZE: kl_authorize_handle(s, r, snap); break;
    case STS_LOGOUT: kl_authorize_logout(s, r, snap); break;
    default: /* the v2 routes */
        kl_http_respond_error(r, 404, "NotFound", "The requested resource does not exist.");
        break;
    }
}

void kl_gateway_sts_handle(kl_gateway_sts *s, kl_http_req *r)
{
    const char *seg = NULL;
    size_t n = 0;
    sts_route rt = parse_path(kl_http_req_path(r), &seg, &n);
    kl_http_req_set_route(r, KL_ROUTE_STS);
    const char *m = kl_http_req_method(r);
    bool is_token = rt == STS_TOKEN_V1 || rt == STS_TOKEN_V2 || rt == STS_REVOKE;
    bool is_post = is_token || rt == STS_DEVICECODE_V1 || rt == STS_DEVICECODE_V2;
    kl_sts_audit audit_rec = {.s = s};
    kl_sts_audit *a = is_token ? &audit_rec : NULL;
    if (rt == STS_NONE) {
        kl_http_respond_error(r, 404, "NotFound", "The requested resource does not exist.");
        return;
    }
    if (rt != STS_AUTHORIZE && /* GET, and its form's POST */
        (is_post ? strcmp(m, "POST") != 0 : (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0))) {
        kl_http_set_header(r, "Allow", is_post ? "POST" : "GET, HEAD");
        if (is_post)
            kl_sts_error(a, r, 405, "invalid_request", 900561,
                         "The endpoint only accepts POST requests. Received a %s request.",
                         kl_sts_echo(m));
        else
            kl_http_respond_error(r, 405, "MethodNotAllowed", "Use GET.");
        return;
    }
    kl_snapshot *snap = kl_snapshot_acquire(s->holder);
    if (!snap) {
        kl_sts_unavailable(a, r);
        return;
    }
    if (kl_str_ieqn(seg, n, ADFS_SEGMENT, sizeof(ADFS_SEGMENT) - 1)) {
        adfs_handle(a, s, r, snap, rt);
        goto out;
    }
    if (!tenant_matches(snap, seg, n)) {
        unknown_tenant(is_token ? a : NULL, r, seg, n, is_post);
        goto out;
    }
    const char *tid = kl_snapshot_tenant_id(snap);
    switch (rt) {
    case STS_DISCOVERY_V2: kl_discovery_tenant(s->base, r, tid, true); break;
    case STS_DISCOVERY_V1: kl_discovery_tenant(s->base, r, tid, false); break;
    case STS_KEYS_V2:
    case STS_KEYS_V1: jwks(r, snap); break;
    case STS_TOKEN_V2: token(a, s, r, snap, false, tid); break;
    case STS_TOKEN_V1: token(a, s, r, snap, true, tid); break;
    case STS_DEVICECODE_V2: kl_devicecode_issue(s, r, snap, false); break;
    case STS_DEVICECODE_V1: kl_devicecode_issue(s, r, snap, true); break;
    case STS_REVOKE: revoke(a, s, r, snap, tid); break;
    case STS_AUTHORIZE: kl_authorize_handle(s, r, snap); break;
    case STS_LOGOUT: kl_authorize_logout(s, r, snap); break;
    case STS_NONE: break;
    }
out:
    kl_snapshot_release(snap);
}
