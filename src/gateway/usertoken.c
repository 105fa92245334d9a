/* Tokens for users (see usertoken.h and sts_internal.h). */
#include "gateway/usertoken.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/directory.h"
#include "directory/lockout.h"
#include "gateway/clientaddr.h"
#include "gateway/refreshq.h"
#include "policy/sts.h"
#include "token/claims.h"
#include "token/mint.h"

#define DEFAULT_SUFFIX "/.default"

/* The OpenID Connect scopes a user flow may add to its one resource. */
static const char *const oidc_scopes[] = {"openid", "profile", "email", "offline_access"};

int kl_sts_scope_parse(const char *scope, char *resource, size_t cap, bool *openid, bool *offline)
{
    if (!scope || !resource || cap == 0)
        return KL_EINVAL;
    bool found = false, oi = false, off = false;
    const char *p = scope;
    resource[0] = '\0';
    while (*p) {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        size_t n = (size_t)(p - w);
        if (n == 0)
            break;
        bool oidc = false;
        for (size_t i = 0; i < sizeof(oidc_scopes) / sizeof(oidc_scopes[0]); i++) {
            if (n == strlen(oidc_scopes[i]) && memcmp(w, oidc_scopes[i], n) == 0) {
                oidc = true;
                oi |= i == 0;
                off |= i == 3;
            }
        }
        if (oidc)
            continue;
        size_t xl = sizeof(DEFAULT_SUFFIX) - 1;
        if (found || n <= xl || memcmp(w + n - xl, DEFAULT_SUFFIX, xl) != 0 ||
            !kl_sts_known_resource(w, n - xl))
            return KL_EINVAL;
        if (n - xl >= cap)
            return KL_ETOOBIG;
        memcpy(resource, w, n - xl);
        resource[n - xl] = '\0';
        found = true;
    }
    if (!found)
        return KL_EINVAL;
    if (openid)
        *openid = oi;
    if (offline)
        *offline = off;
    return 0;
}

/* ------------------------------------------------------------------ refresh tokens */

/* The stored form of a refresh token: SHA-256 of the text (256 random bits: nothing to
 * gain from a keyed hash, and every node computes it alike). */
static int refresh_hash(const char *tok, size_t n, unsigned char out[KL_STORE_REFRESH_HASH_LEN])
{
    unsigned int len = 0;
    return EVP_Digest(tok, n, out, &len, EVP_sha256(), NULL) == 1 &&
                   len == KL_STORE_REFRESH_HASH_LEN
               ? 0
               : KL_ECRYPTO;
}

/* A new refresh token (base64url of KL_REFRESH_TOKEN_BYTES random bytes) and its hash. */
static int refresh_new(char out[KL_MAX_REFRESH_TOKEN],
                       unsigned char hash[KL_STORE_REFRESH_HASH_LEN])
{
    unsigned char rnd[KL_REFRESH_TOKEN_BYTES];
    int err = kl_random_id(rnd, sizeof(rnd));
    if (!err && kl_b64url_encode(rnd, sizeof(rnd), out, KL_MAX_REFRESH_TOKEN) < 0)
        err = KL_ECRYPTO;
    OPENSSL_cleanse(rnd, sizeof(rnd));
    if (!err)
        err = refresh_hash(out, strlen(out), hash);
    return err;
}

/* ------------------------------------------------------------------ issuing */

static void transient(kl_sts_grant *g, int status)
{
    kl_sts_error(g->a, g->r, status, status == 503 ? "temporarily_unavailable" : "server_error",
                 90033, "A transient error has occurred. Please try again.");
}

/* The OpenID Connect id_token (v2 shape on both endpoints: MSAL reads tid, oid, sub,
 * preferred_username and name from it for the account it caches). */
static int id_token(kl_sts_grant *g, const kl_jws_key *key, const kl_principal *user,
                    const char *upn, const kl_sts_user *u, char **out)
{
    char iss[KL_MAX_URL];
    const char *tid = kl_snapshot_tenant_id(g->snap);
    snprintf(iss, sizeof(iss), "%s/%s/v2.0", g->s->base, tid);
    int64_t life = g->s->lifetime_s;
    json_t *c = json_pack(
        "{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "aud", g->client->app_id, "iss", iss,
        "iat", (json_int_t)g->now, "nbf", (json_int_t)g->now, "exp", (json_int_t)(g->now + life),
        "name", user->display_name ? user->display_name : "", "oid", user->object_id,
        "preferred_username", upn, "sub", user->object_id, "tid", tid, "ver", "2.0");
    if (!c)
        return KL_ENOMEM;
    int err = 0;
    if (u->nonce && json_object_set_new(c, "nonce", json_string(u->nonce)))
        err = KL_EINVAL;
    if (!err && u->auth_time > 0 &&
        json_object_set_new(c, "auth_time", json_integer((json_int_t)u->auth_time)))
        err = KL_ENOMEM;
    if (!err)
        err = kl_mint_json(key, c, out);
    json_decref(c);
    return err;
}

/* client_info: base64url of {"uid":oid,"utid":tid}, MSAL's key for the account. */
static int client_info(const char *oid, const char *tid, char *out, size_t cap)
{
    char raw[200];
    int n = snprintf(raw, sizeof(raw), "{\"uid\":\"%s\",\"utid\":\"%s\"}", oid, tid);
    if (n < 0 || (size_t)n >= sizeof(raw))
        return KL_ETOOBIG;
    return kl_b64url_encode(raw, (size_t)n, out, cap) < 0 ? KL_ETOOBIG : 0;
}

/* Answers a refresh token the store refused (err from kl_store_refresh_rotate or
 * _create, not 0). */
static void rotation_refused(const kl_sts_audit *a, kl_http_req *r, int err)
{
    switch (err) {
    case KL_EEXIST:
        kl_http_req_log_field(r, "refresh_reuse", "family_revoked");
        kl_sts_error(a, r, 400, "invalid_grant", 70008,
                     "The provided refresh token was already used. It and every refresh token "
                     "issued from the same sign-in are revoked; the user must sign in again.");
        return;
    case KL_EPERM:
    case KL_ENOTFOUND:
        kl_sts_error(a, r, 400, "invalid_grant", 50173,
                     "The provided grant has expired due to it being revoked, a fresh auth token "
                     "is needed. The user must sign in again.");
        return;
    default:
        kl_log(KL_LOG_ERROR, "refresh_store_failed", "error", kl_err_str(err), NULL);
        kl_sts_error(a, r, err == KL_EUNAVAIL ? 503 : 500,
                     err == KL_EUNAVAIL ? "temporarily_unavailable" : "server_error", 90033,
                     "A transient error has occurred. Please try again.");
        return;
    }
}

/* The new refresh token's record: a rotation keeps u's family; otherwise family is a
 * new id the caller drew. */
static kl_store_refresh refresh_record(const kl_sts_grant *g, const kl_sts_user *u,
                                       const char *family)
{
    return (kl_store_refresh){.family_id = (char *)(u->rotate_from ? u->family_id : family),
                              .user_oid = (char *)u->user_oid,
                              .client_id = (char *)g->client->app_id,
                              .scope = (char *)u->scope,
                              .session_id = (char *)u->session_id,
                              .created_at = g->now,
                              .expires_at = g->now + KL_REFRESH_TOKEN_LIFETIME_S};
}

/* Stores the new refresh token now: a rotation of u->rotate_from (same family, the old
 * one spent in the same transaction), or a new family. Answers a refusal and returns
 * false. */
static bool store_refresh(kl_sts_grant *g, const kl_sts_user *u,
                          const unsigned char hash[KL_STORE_REFRESH_HASH_LEN])
{
    char family[KL_UUID_LEN + 1];
    if (!u->rotate_from && kl_uuid_v4(family) != 0) {
        transient(g, 500);
        return false;
    }
    kl_store_refresh rec = refresh_record(g, u, family);
    int err = u->rotate_from
                  ? kl_store_refresh_rotate(g->s->store, u->rotate_from, hash, &rec, g->now)
                  : kl_store_refresh_create(g->s->store, hash, &rec);
    if (err)
        rotation_refused(g->a, g->r, err);
    return err == 0;
}

/* The 200 of a user grant: body text (the caller keeps and wipes it). */
static void answer_tokens(const kl_sts_audit *a, kl_http_req *r, const char *client_id,
                          const char *user_oid, const char *kid, const char *text)
{
    char corr[KL_UUID_LEN + 1];
    kl_sts_correlation_id(r, corr);
    kl_sts_no_store(r);
    kl_http_set_header(r, "client-request-id", corr);
    kl_http_req_log_field(r, "client_id", client_id);
    kl_http_req_log_field(r, "user", user_oid);
    kl_http_req_log_field(r, "kid", kid);
    kl_sts_audit_ok(a, r, corr);
    kl_http_respond(r, 200, "application/json", text, strlen(text));
}

/* A refresh answer waiting for its rotation to commit (group commit, refreshq.h): what
 * the answer needs, owned, since the request's form and snapshot are gone by then. */
typedef struct pending {
    kl_http_req *r; /* NULL once the client went away */
    kl_sts_audit a;
    char *client_id, *principal_id, *resource, *user_oid, *kid, *text;
} pending;

static void pending_free(pending *p)
{
    if (!p)
        return;
    if (p->text) {
        OPENSSL_cleanse(p->text, strlen(p->text));
        free(p->text);
    }
    free(p->client_id);
    free(p->principal_id);
    free(p->resource);
    free(p->user_oid);
    free(p->kid);
    free(p);
}

static void pending_aborted(void *arg)
{
    ((pending *)arg)->r = NULL; /* the rotation still completes; nobody gets the answer */
}

static void pending_done(void *arg, int result)
{
    pending *p = arg;
    if (p->r) {
        kl_http_req_on_abort(p->r, NULL, NULL);
        if (result == 0)
            answer_tokens(&p->a, p->r, p->client_id, p->user_oid, p->kid, p->text);
        else
            rotation_refused(&p->a, p->r, result);
    }
    pending_free(p);
}

/* Hands the rotation to the group-commit writer; the answer (text, taken on success)
 * goes out when it is decided. false: not queued (nothing answered; the caller rotates
 * now). */
static bool defer_rotation(kl_sts_grant *g, const kl_sts_user *u,
                           const unsigned char hash[KL_STORE_REFRESH_HASH_LEN],
                           const char *user_oid, const char *kid, char **text)
{
    pending *p = calloc(1, sizeof(*p));
    struct event_base *base = kl_http_req_base(g->r);
    if (!p || !base)
        goto fail;
    p->r = g->r;
    p->a = (kl_sts_audit){.s = g->s, .credential = g->a->credential};
    if (!(p->client_id = strdup(g->client->app_id)) || !(p->user_oid = strdup(user_oid)) ||
        !(p->kid = strdup(kid)) ||
        (g->a->principal_id && !(p->principal_id = strdup(g->a->principal_id))) ||
        (g->a->resource && !(p->resource = strdup(g->a->resource))))
        goto fail;
    p->a.client_id = p->client_id;
    p->a.principal_id = p->principal_id;
    p->a.resource = p->resource;
    kl_store_refresh rec = refresh_record(g, u, NULL);
    if (kl_refreshq_submit(g->s->refreshq, base, u->rotate_from, hash, &rec, g->now, pending_done,
                           p) != 0)
        goto fail;
    p->text = *text;
    *text = NULL;
    kl_http_req_on_abort(g->r, pending_aborted, p);
    return true;
fail:
    pending_free(p);
    return false;
}

void kl_sts_issue_user(kl_sts_grant *g, const kl_sts_user *u)
{
    char resource[KL_MAX_URL], iss[160], ci[400], rt[KL_MAX_REFRESH_TOKEN];
    unsigned char rt_hash[KL_STORE_REFRESH_HASH_LEN];
    char *tok = NULL, *idt = NULL, *text = NULL;
    json_t *body = NULL;
    kl_store_user *su = NULL;
    bool openid = false, offline = false;
    rt[0] = '\0';
    const char *tid = kl_snapshot_tenant_id(g->snap);
    const kl_principal *user = u->user_oid ? kl_snapshot_principal(g->snap, u->user_oid) : NULL;
    if (!user || user->type != KL_PRINCIPAL_USER) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50034,
                     "The user account does not exist in the directory. To sign into this "
                     "application, the account must be added to the directory.");
        goto out;
    }
    g->a->principal_id = user->object_id;
    if (!user->enabled) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50057,
                     "The user account is disabled. The account has been disabled by an "
                     "administrator.");
        goto out;
    }
    if (!u->scope || strlen(u->scope) > KL_MAX_SCOPE_TEXT ||
        kl_sts_scope_parse(u->scope, resource, sizeof(resource), &openid, &offline) != 0) {
        kl_sts_error(g->a, g->r, 400, "invalid_scope", 70011,
                     "The provided value for the input parameter 'scope' is not valid. The "
                     "scope %s is not valid.",
                     kl_sts_echo(u->scope));
        goto out;
    }
    g->a->resource = resource;
    /* The user principal name is not in the snapshot (only what RBAC needs is). */
    int err = u->upn ? 0 : kl_store_get_user(g->s->store, user->object_id, &su);
    const char *upn = u->upn ? u->upn : su ? su->upn : NULL;
    if (err == KL_ENOTFOUND) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50034,
                     "The user account does not exist in the directory.");
        goto out;
    }
    if (err) {
        transient(g, err == KL_EUNAVAIL ? 503 : 500);
        goto out;
    }
    const kl_jws_key *key = kl_sts_signing_key(kl_snapshot_sts(g->snap), g->now);
    if (!key) {
        kl_log(KL_LOG_ERROR, "sts_no_signing_key", NULL);
        transient(g, 503);
        goto out;
    }
    kl_claims_issuer_v1(tid, iss, sizeof(iss));
    kl_claims_access in = {.aud = resource,
                           .iss = iss,
                           .tid = tid,
                           .appid = g->client->app_id,
                           .oid = user->object_id,
                           .appidacr = g->appidacr,
                           .now = g->now,
                           .lifetime = g->s->lifetime_s,
                           .upn = upn,
                           .name = user->display_name,
                           .scp = "user_impersonation",
                           .amr = u->amr ? u->amr : "pwd"};
    if ((err = kl_mint_access(key, &in, &tok)) ||
        (openid && (err = id_token(g, key, user, upn, u, &idt))) ||
        (err = client_info(user->object_id, tid, ci, sizeof(ci))) ||
        (offline && (err = refresh_new(rt, rt_hash)))) {
        kl_log(KL_LOG_ERROR, "sts_sign_failed", "error", kl_err_str(err), NULL);
        transient(g, 500);
        goto out;
    }
    long long life = (long long)g->s->lifetime_s;
    body = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "token_type", "Bearer", "scope", u->scope,
                     "expires_in", (json_int_t)life, "ext_expires_in", (json_int_t)life,
                     "access_token", tok, "client_info", ci);
    if (body && offline)
        json_object_set_new(body, "refresh_token", json_string(rt));
    if (body && idt)
        json_object_set_new(body, "id_token", json_string(idt));
    if (body && g->v1) { /* Entra's v1 endpoint adds these, as strings */
        char eo[24], nb[24];
        snprintf(eo, sizeof(eo), "%lld", (long long)g->now + life);
        snprintf(nb, sizeof(nb), "%lld", (long long)g->now);
        json_object_set_new(body, "expires_on", json_string(eo));
        json_object_set_new(body, "not_before", json_string(nb));
        json_object_set_new(body, "resource", json_string(resource));
    }
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        transient(g, 500);
        goto out;
    }
    /* Last, once nothing else can refuse: a rotation spends the old token, through the
     * group-commit writer when there is one (the answer goes out when it commits). */
    if (offline && u->rotate_from && g->s->refreshq &&
        defer_rotation(g, u, rt_hash, user->object_id, kl_jws_key_kid(key), &text))
        goto out;
    if (offline && !store_refresh(g, u, rt_hash))
        goto out;
    answer_tokens(g->a, g->r, g->client->app_id, user->object_id, kl_jws_key_kid(key), text);
out:
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    if (body) /* the tokens in it are bearer credentials, but jansson owns its copies */
        json_decref(body);
    if (tok) {
        OPENSSL_cleanse(tok, strlen(tok));
        free(tok);
    }
    if (idt) {
        OPENSSL_cleanse(idt, strlen(idt));
        free(idt);
    }
    OPENSSL_cleanse(rt, sizeof(rt));
    kl_store_user_free(su);
}

/* ------------------------------------------------------------------ password grant */

static bool password_grant_enabled(kl_sts_grant *g, int *err)
{
    kl_store_tenant *t = NULL;
    *err = kl_store_get_tenant(g->s->store, &t);
    bool on = !*err && t->password_grant;
    kl_store_tenant_free(t);
    return on;
}

void kl_usertoken_password(kl_sts_grant *g)
{
    char addr[KL_MAX_NETRULE_TEXT + 1], resource[KL_MAX_URL];
    bool openid = false, offline = false;
    int err = 0;
    g->a->credential = "password";
    if (!g->s->store) {
        transient(g, 503);
        return;
    }
    if (!password_grant_enabled(g, &err)) {
        if (err) {
            transient(g, err == KL_EUNAVAIL ? 503 : 500);
            return;
        }
        /* Entra has no per-tenant switch for ROPC; the grant is simply not offered here
         * until an administrator turns it on (PATCH /keyless/tenantSettings). */
        kl_sts_error(g->a, g->r, 400, "unsupported_grant_type", 70003,
                     "The app requested an unsupported grant type 'password'. The password "
                     "grant is disabled in this tenant (tenant setting passwordGrantEnabled).");
        return;
    }
    size_t pw_len = 0;
    const char *upn = kl_form_get(g->f, "username", NULL);
    const char *pw = kl_form_get(g->f, "password", &pw_len);
    const char *scope = kl_form_get(g->f, "scope", NULL);
    const char *missing = !upn || !*upn       ? "username"
                          : !pw || !pw_len    ? "password"
                          : !scope || !*scope ? "scope"
                                              : NULL;
    if (missing) {
        kl_sts_error(g->a, g->r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: '%s'.", missing);
        return;
    }
    /* A bad scope is refused before any password work. */
    if (strlen(scope) > KL_MAX_SCOPE_TEXT ||
        kl_sts_scope_parse(scope, resource, sizeof(resource), &openid, &offline) != 0) {
        kl_sts_error(g->a, g->r, 400, "invalid_scope", 70011,
                     "The provided value for the input parameter 'scope' is not valid. The "
                     "scope %s is not valid.",
                     kl_sts_echo(scope));
        return;
    }
    kl_clientaddr_text(g->s->trusted_proxies, g->r, addr, sizeof(addr));
    size_t al = strlen(addr);
    int64_t retry = 0;
    /* Keyed by the caller's address alone (gateway/clientaddr.h: the connection's, or
     * the one a trusted proxy names), before Argon2 runs (security.md T9): an
     * address that keeps failing, whatever names it tries, is slowed down (after
     * KL_THROTTLE_BACKOFF_AFTER failures) and then refused for the window, so it cannot
     * spend the node's CPU on hashes. Each name's own lockout is the store's (lockout.h). */
    if (kl_throttle_check(g->s->pw_throttle, addr, al, addr, al, (int64_t)kl_now_mono_ms(),
                          &retry) == KL_EPERM) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)retry);
        kl_http_set_header(g->r, "Retry-After", ra);
        kl_http_req_log_field(g->r, "throttled", "password");
        kl_sts_error(g->a, g->r, 429, "temporarily_unavailable", 90055,
                     "Too many failed sign-in attempts from this address. Retry after %lld "
                     "seconds.",
                     (long long)retry);
        return;
    }
    kl_lockout_result res = KL_LOCKOUT_WRONG;
    uint32_t delay = 0;
    kl_lockout_user who = {0};
    err = kl_lockout_verify_password(g->s->store, upn, pw, pw_len, g->now, &res, &delay, &who);
    if (err) {
        transient(g, err == KL_EUNAVAIL ? 503 : 500);
        return;
    }
    kl_http_req_log_field(g->r, "password", kl_lockout_result_name(res));
    switch (res) {
    case KL_LOCKOUT_OK: break;
    case KL_LOCKOUT_WRONG:
        kl_throttle_failed(g->s->pw_throttle, addr, al, addr, al, (int64_t)kl_now_mono_ms());
        kl_sts_error_later(g->a, g->r, delay, 400, "invalid_grant", 50126,
                           "Error validating credentials due to invalid username or password.");
        return;
    case KL_LOCKOUT_LOCKED:
        kl_throttle_failed(g->s->pw_throttle, addr, al, addr, al, (int64_t)kl_now_mono_ms());
        kl_sts_error_later(g->a, g->r, delay, 400, "invalid_grant", 50053,
                           "Your account is locked because the user name or password was wrong "
                           "too many times. Try again later.");
        return;
    case KL_LOCKOUT_DISABLED:
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50057,
                     "The user account is disabled. The account has been disabled by an "
                     "administrator.");
        return;
    }
    /* No kl_throttle_succeeded: one good password must not wipe out an address's
     * failures with other names. */
    if (who.force_change) {
        /* The password grant has no page to change it on, as in Entra. */
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50055,
                     "The password is expired: the user must change it before signing in with "
                     "the password grant.");
        return;
    }
    kl_sts_user u = {.user_oid = who.object_id, .scope = scope, .amr = "pwd", .auth_time = g->now};
    kl_sts_issue_user(g, &u);
}

/* ------------------------------------------------------------------ refresh_token grant */

/* The scope of a refreshed token: the resource asked now (or the one granted before)
 * with the OpenID scopes granted at sign-in, which a refresh cannot add to. */
static int refresh_scope(const char *granted, const char *asked, char *out, size_t cap)
{
    char res_old[KL_MAX_URL], res_new[KL_MAX_URL];
    bool oi = false, off = false;
    if (kl_sts_scope_parse(granted, res_old, sizeof(res_old), &oi, &off) != 0)
        return KL_EINVAL;
    const char *res = res_old;
    if (asked && *asked) {
        if (strlen(asked) > KL_MAX_SCOPE_TEXT ||
            kl_sts_scope_parse(asked, res_new, sizeof(res_new), NULL, NULL) != 0)
            return KL_EINVAL;
        res = res_new;
    }
    int n = snprintf(out, cap, "%s/.default%s%s", res, oi ? " openid profile" : "",
                     off ? " offline_access" : "");
    return n < 0 || (size_t)n >= cap ? KL_ETOOBIG : 0;
}

void kl_usertoken_refresh(kl_sts_grant *g)
{
    unsigned char hash[KL_STORE_REFRESH_HASH_LEN];
    char scope[KL_MAX_SCOPE_TEXT + 64];
    kl_store_refresh *rec = NULL;
    g->a->credential = "refresh_token";
    size_t n = 0;
    const char *tok = kl_form_get(g->f, "refresh_token", &n);
    if (!tok || n == 0) {
        kl_sts_error(g->a, g->r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'refresh_token'.");
        return;
    }
    if (!g->s->store) {
        transient(g, 503);
        return;
    }
    int err = n > KL_MAX_REFRESH_TOKEN ? KL_ENOTFOUND : refresh_hash(tok, n, hash);
    if (!err)
        err = kl_store_refresh_get(g->s->store, hash, &rec);
    if (err == KL_ENOTFOUND) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 9002313,
                     "Invalid request. Request is malformed or invalid: the refresh token is not "
                     "one this tenant issued.");
        goto out;
    }
    if (err) {
        transient(g, err == KL_EUNAVAIL ? 503 : 500);
        goto out;
    }
    /* A token is bound to the client it was issued to (RFC 6749 6). */
    if (!kl_str_ieq(rec->client_id, g->client->app_id)) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 70000,
                     "The provided value for the 'refresh_token' is not valid: it was issued to "
                     "another client.");
        goto out;
    }
    g->a->principal_id = rec->user_oid;
    if (rec->revoked) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50173,
                     "The provided grant has expired due to it being revoked, a fresh auth token "
                     "is needed. The user must sign in again.");
        goto out;
    }
    if (rec->used_at) {
        /* Reuse (security.md T15): the family goes, whoever holds its newest token. */
        (void)kl_store_refresh_revoke_family(g->s->store, rec->family_id);
        kl_http_req_log_field(g->r, "refresh_reuse", "family_revoked");
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 70008,
                     "The provided refresh token was already used. It and every refresh token "
                     "issued from the same sign-in are revoked; the user must sign in again.");
        goto out;
    }
    if (rec->expires_at <= g->now) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 700082,
                     "The refresh token has expired due to inactivity. The token was issued on "
                     "%lld and was inactive for %lld days.",
                     (long long)rec->created_at, (long long)(KL_REFRESH_TOKEN_LIFETIME_S / 86400));
        goto out;
    }
    if (refresh_scope(rec->scope, kl_form_get(g->f, "scope", NULL), scope, sizeof(scope)) != 0) {
        kl_sts_error(g->a, g->r, 400, "invalid_scope", 70011,
                     "The provided value for the input parameter 'scope' is not valid. The "
                     "scope %s is not valid.",
                     kl_sts_echo(kl_form_get(g->f, "scope", NULL)));
        goto out;
    }
    kl_sts_user u = {.user_oid = rec->user_oid,
                     .scope = scope,
                     .amr = "pwd",
                     .session_id = rec->session_id,
                     .family_id = rec->family_id,
                     .rotate_from = hash,
                     .upn = rec->upn};
    kl_sts_issue_user(g, &u);
out:
    kl_store_refresh_free(rec);
    OPENSSL_cleanse(hash, sizeof(hash));
}

/* ------------------------------------------------------------------ revocation */

void kl_usertoken_revoke(kl_sts_grant *g)
{
    unsigned char hash[KL_STORE_REFRESH_HASH_LEN];
    kl_store_refresh *rec = NULL;
    size_t n = 0;
    const char *tok = kl_form_get(g->f, "token", &n);
    if (!g->s->store) {
        transient(g, 503);
        return;
    }
    /* Anything that cannot be one of our refresh tokens (an access token, say) is
     * "unknown": RFC 7009 answers 200 and does nothing. */
    int err =
        !tok || n == 0 || n > KL_MAX_REFRESH_TOKEN ? KL_ENOTFOUND : refresh_hash(tok, n, hash);
    if (!err)
        err = kl_store_refresh_get(g->s->store, hash, &rec);
    if (!err && !kl_str_ieq(rec->client_id, g->client->app_id)) {
        kl_sts_error(g->a, g->r, 400, "unauthorized_client", 70000,
                     "The token was not issued to this client, which may not revoke it.");
        goto out;
    }
    if (!err) {
        g->a->principal_id = rec->user_oid;
        err = kl_store_refresh_revoke_family(g->s->store, rec->family_id);
    }
    if (err && err != KL_ENOTFOUND) {
        transient(g, err == KL_EUNAVAIL ? 503 : 500);
        goto out;
    }
    kl_http_req_log_field(g->r, "revoked", err ? "unknown_token" : "family");
    char corr[KL_UUID_LEN + 1];
    kl_sts_correlation_id(g->r, corr);
    kl_sts_no_store(g->r);
    kl_http_set_header(g->r, "client-request-id", corr);
    kl_sts_audit_ok(g->a, g->r, corr);
    kl_http_respond(g->r, 200, "application/json", "{}", 2);
out:
    OPENSSL_cleanse(hash, sizeof(hash));
    kl_store_refresh_free(rec);
}
