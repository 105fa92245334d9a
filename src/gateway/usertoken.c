/* Tokens for users (see usertoken.h and sts_internal.h). */
#include "gateway/usertoken.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/directory.h"
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

void kl_sts_issue_user(kl_sts_grant *g, const kl_sts_user *u)
{
    char resource[KL_MAX_URL];
    char iss[160];
    char *tok = NULL;
    json_t *body = NULL;
    bool openid = false, offline = false;
    const char *tid = kl_snapshot_tenant_id(g->snap);
    const kl_principal *user = u->user_oid ? kl_snapshot_principal(g->snap, u->user_oid) : NULL;
    if (!user || user->type != KL_PRINCIPAL_USER) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50034,
                     "The user account does not exist in the directory.");
        return;
    }
    g->a->principal_id = user->object_id;
    if (!user->enabled) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50057, "The user account is disabled.");
        return;
    }
    if (kl_sts_scope_parse(u->scope, resource, sizeof(resource), &openid, &offline) != 0) {
        kl_sts_error(g->a, g->r, 400, "invalid_scope", 70011,
                     "The provided value for the input parameter 'scope' is not valid. The "
                     "scope %s is not valid.",
                     kl_sts_echo(u->scope));
        return;
    }
    g->a->resource = resource;
    const kl_jws_key *key = kl_sts_signing_key(kl_snapshot_sts(g->snap), g->now);
    if (!key) {
        kl_sts_error(g->a, g->r, 503, "temporarily_unavailable", 90033,
                     "A transient error has occurred. Please try again.");
        return;
    }
    kl_claims_issuer_v1(tid, iss, sizeof(iss));
    kl_claims_access in = {.aud = resource,
                           .iss = iss,
                           .tid = tid,
                           .appid = g->client->app_id,
                           .oid = user->object_id,
                           .appidacr = g->appidacr,
                           .now = g->now,
                           .lifetime = g->s->lifetime_s};
    if (kl_mint_access(key, &in, &tok) != 0) {
        kl_sts_error(g->a, g->r, 500, "server_error", 90033,
                     "A transient error has occurred. Please try again.");
        return;
    }
    body = json_pack("{s:s,s:I,s:I,s:s,s:s}", "token_type", "Bearer", "expires_in",
                     (json_int_t)g->s->lifetime_s, "ext_expires_in", (json_int_t)g->s->lifetime_s,
                     "access_token", tok, "scope", u->scope);
    char corr[KL_UUID_LEN + 1];
    kl_sts_correlation_id(g->r, corr);
    kl_sts_no_store(g->r);
    kl_http_set_header(g->r, "client-request-id", corr);
    kl_sts_audit_ok(g->a, g->r, corr);
    kl_http_respond_json(g->r, 200, body);
    OPENSSL_cleanse(tok, strlen(tok));
    free(tok);
}

void kl_usertoken_password(kl_sts_grant *g)
{
    kl_sts_error(g->a, g->r, 400, "unsupported_grant_type", 70003,
                 "The app requested an unsupported grant type 'password'.");
}

void kl_usertoken_refresh(kl_sts_grant *g)
{
    kl_sts_error(g->a, g->r, 400, "unsupported_grant_type", 70003,
                 "The app requested an unsupported grant type 'refresh_token'.");
}
