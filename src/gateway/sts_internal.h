/* What the token endpoint's grants share, private to src/gateway: the token service's
 * state, the sign-in log record of one request, Entra's error answer, and the one path by
 * which every user grant (password, refresh token, authorization code, device code)
 * turns a signed-in user into tokens. gateway_sts.c parses the request, authenticates the client
 * and dispatches on grant_type; the grant handlers only prove which user signed in. */
#ifndef KL_GATEWAY_STS_INTERNAL_H
#define KL_GATEWAY_STS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "crypto/keys.h"
#include "gateway/gateway_sts.h"
#include "http/server.h"
#include "policy/jwks.h"
#include "policy/snapshot.h"
#include "store/store.h"
#include "token/form.h"
#include "token/throttle.h"

struct kl_signins;

struct kl_gateway_sts {
    kl_snapshot_holder *holder;
    const kl_keys *keys;
    char *base; /* public base URL without a trailing '/' */
    int64_t lifetime_s;
    kl_store *store;       /* borrowed: spent assertion jtis, users, refresh tokens */
    kl_throttle *throttle; /* owned: failed client authentication, per node */
    /* owned: password attempts per source address, per node, decided before any
     * Argon2 work so that one address cannot spend the node's CPU (security.md T9) */
    kl_throttle *pw_throttle;
    kl_jwks *jwks;              /* owned: federated issuers' keys; NULL without an egress policy */
    kl_jwks_https https;        /* the transport's context (borrowed pointers) */
    struct kl_signins *signins; /* may be NULL */
    /* owned: group commit of refresh-token rotations; NULL without a store */
    struct kl_refreshq *refreshq;
    struct kl_devicecode *devicecode; /* owned: the device-code flow's per-node state */
    /* borrowed: --trusted-proxy; NULL: the TCP peer is always the caller. Every
     * per-address rule keys on kl_clientaddr_text(trusted_proxies, ...). */
    const kl_netrules *trusted_proxies;
};

/* What the sign-in log records of one token request, filled in as it is checked.
 * Strings are borrowed for the request. */
typedef struct kl_sts_audit {
    kl_gateway_sts *s;
    const char *client_id;
    const char *principal_id; /* the client's, or the user's once a user grant proved one */
    const char *credential;   /* "client_secret", "password", "refresh_token", ... */
    const char *resource;
} kl_sts_audit;

/* Entra's error body (error, error_description "AADSTS<code>: <text>\r\nTrace ID: ...
 * \r\nCorrelation ID: ...\r\nTimestamp: ...", error_codes, timestamp, trace_id,
 * correlation_id, error_uri) with status, recorded in the sign-in log when a is not NULL
 * (NULL: not a token request). Answers r; r is gone afterwards. */
__attribute__((format(printf, 6, 7))) void kl_sts_error(const kl_sts_audit *a, kl_http_req *r,
                                                        int status, const char *error, int code,
                                                        const char *fmt, ...);

/* kl_sts_error's 503 temporarily_unavailable (AADSTS90033, "A transient error has
 * occurred. Please try again."): the store or the snapshot could not serve the request,
 * and the client may retry. */
void kl_sts_unavailable(const kl_sts_audit *a, kl_http_req *r);

/* kl_sts_error held for delay_ms before it is sent (a failed password: lockout.h's
 * delay). The answer is composed and logged now and sent by a timer on r's event
 * base, so no worker waits; if the client goes away first the answer is dropped.
 * delay_ms 0 answers at once. */
__attribute__((format(printf, 7, 8))) void kl_sts_error_later(const kl_sts_audit *a, kl_http_req *r,
                                                              uint32_t delay_ms, int status,
                                                              const char *error, int code,
                                                              const char *fmt, ...);

/* A caller's value fit to quote in a description: v itself when it is printable ASCII
 * without a quote and at most 256 bytes, else "(invalid)" or "(too long)"; "" for NULL. */
const char *kl_sts_echo(const char *v);

/* The correlation id of r: its client-request-id (query, then header) when it is a
 * GUID, lower-cased, else a new one. */
void kl_sts_correlation_id(kl_http_req *r, char out[KL_UUID_LEN + 1]);

/* Records a successful token request in the sign-in log (a may be NULL). */
void kl_sts_audit_ok(const kl_sts_audit *a, kl_http_req *r, const char *corr);

/* Cache-Control: no-store and Pragma: no-cache, on every token answer. */
void kl_sts_no_store(kl_http_req *r);

/* The resources a client may ask a token for (scope "{resource}/.default"): true when
 * res[0..n) names one (without regard to case or one trailing slash). */
bool kl_sts_known_resource(const char *res, size_t n);

/* One token request for a user grant, after the client has been authenticated:
 * public clients presented no credential (appidacr 0), confidential ones did (1 or 2). */
typedef struct kl_sts_grant {
    kl_sts_audit *a;
    kl_gateway_sts *s;
    kl_http_req *r;
    const kl_snapshot *snap;
    const kl_form *f;           /* the request's form */
    const kl_principal *client; /* the client's service principal (app) */
    int appidacr;               /* 0 public, 1 secret, 2 certificate */
    bool v1;                    /* /oauth2/token rather than /oauth2/v2.0/token */
    int64_t now;
} kl_sts_grant;

/* What a grant proved: which user signed in, and with what. */
typedef struct kl_sts_user {
    const char *user_oid;   /* the user's object id */
    const char *scope;      /* the scopes granted, space-separated, as the client asked them
                               at authorize/devicecode time (e.g.
                               "https://cognitiveservices.azure.com/.default openid profile
                               offline_access") */
    const char *amr;        /* "pwd" */
    const char *nonce;      /* copied into the id_token; NULL when none */
    const char *session_id; /* the browser or device sign-in session; NULL for ROPC */
    int64_t auth_time;      /* when the user typed the password */
    /* Set by the refresh_token grant only: the family the new refresh token joins (a
     * rotation keeps the family). NULL: a new family. */
    const char *family_id;
    /* Set by the refresh_token grant only: the SHA-256 of the token being redeemed,
     * spent in the same transaction that stores its successor. */
    const unsigned char *rotate_from;
    /* The user's principal name when the grant already read it (NULL: read from the
     * store). */
    const char *upn;
} kl_sts_user;

/* Checks the user (present in the snapshot, a user, enabled), the scope's resource (one
 * of the known resources' /.default, plus openid, profile, email, offline_access), then
 * signs the access token (v1: scp "user_impersonation", name, upn, amr, oid, sub, tid,
 * appid, appidacr ...), the id_token when openid was asked, client_info, and a new
 * refresh token (new family, or u->family_id) when offline_access was asked, and
 * answers 200 — or answers the refusal in Entra's shape (invalid_grant 50034/50057 for
 * an unknown or disabled user, invalid_scope 70011, 503/500 for the store or signing). */
void kl_sts_issue_user(kl_sts_grant *g, const kl_sts_user *u);

/* Splits a space-separated scope list: the resource (without "/.default") into
 * resource[0..cap), whether openid and offline_access were asked. KL_EINVAL when there
 * is not exactly one known resource, or an unknown scope; KL_ETOOBIG when the resource
 * does not fit. Used at authorize/devicecode time so that a bad scope is refused before
 * the user signs in. */
int kl_sts_scope_parse(const char *scope, char *resource, size_t cap, bool *openid, bool *offline);

/* The grant handlers (token endpoint, grant_type dispatch in gateway_sts.c). Each answers r. */
void kl_authorize_redeem(kl_sts_grant *g);   /* grant_type=authorization_code (authorize.c) */
void kl_devicecode_redeem(kl_sts_grant *g);  /* grant_type=device_code and
                                                urn:ietf:params:oauth:grant-type:device_code
                                                (devicecode.c) */
void kl_usertoken_password(kl_sts_grant *g); /* grant_type=password (usertoken.c) */
void kl_usertoken_refresh(kl_sts_grant *g);  /* grant_type=refresh_token (usertoken.c) */
/* POST /{tenant}/oauth2/v2.0/revoke (RFC 7009), once the client is authenticated as for
 * a user grant: revokes the family of the refresh token in the form's "token" when it
 * was issued to g->client; 200 for an unknown token; 400 unauthorized_client for
 * another client's. */
void kl_usertoken_revoke(kl_sts_grant *g);

/* Applications for user flows, from the snapshot (policy/appcreds.h), ac being
 * kl_snapshot_appcreds(snap):
 *  - kl_appcreds_public_client(ac, app_id): the app is a public client (no credential;
 *    appidacr 0). The token endpoint has already applied it when a grant runs.
 *  - kl_appcreds_redirect_ok(ac, app_id, uri): uri is one of the app's redirect URIs
 *    (exact match; for a public client, http://localhost, http://127.0.0.1 and
 *    http://[::1] URIs also match on any port, RFC 8252 7.3).
 *  - KL_APPCREDS_AZURE_CLI_APP_ID and the other well-known developer clients are public
 *    clients with loopback redirect URIs in every snapshot (not stored).
 * Store side (store/store.h): kl_store_refresh_revoke_session(st, session_id) revokes
 * every refresh token of a sign-in session (sign-out); kl_sts_user.session_id is what
 * a grant passes for it. */

#endif
