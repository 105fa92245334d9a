/* The control plane on the public listener: bearer tokens only (mgmt.h). A token is
 * checked in the order ARM checks it: present, well-formed, signed by a key of our ring
 * (the algorithm from the key), then its claims (times, audience, issuer, tenant). The
 * principal's presence and state are checked by the dispatcher against the snapshot
 * the call is authorised on. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/limits.h"
#include "common/util.h"
#include "mgmt/internal.h"
#include "policy/sts.h"
#include "token/bearer.h"
#include "token/claims.h"

/* The application id of Microsoft Graph, which Graph's challenge names as client_id. */
#define GRAPH_APP_ID "00000003-0000-0000-c000-000000000000"
#define MAX_ECHO 256 /* longest token claim repeated in a refusal */

static const char *const arm_audiences[] = {"https://management.azure.com",
                                            "https://management.core.windows.net"};
static const char *const graph_audiences[] = {"https://graph.microsoft.com"};

typedef enum refusal {
    REFUSE_NONE = 0,
    REFUSE_MISSING,  /* no Authorization header */
    REFUSE_FORMAT,   /* not "Bearer <token>", or two Authorization headers */
    REFUSE_INVALID,  /* signature, shape or a claim other than those below */
    REFUSE_EXPIRED,  /* exp passed (beyond the skew) */
    REFUSE_AUDIENCE, /* a token for another resource */
    REFUSE_TENANT,   /* another issuer or tenant */
} refusal;

typedef struct verdict {
    refusal why;
    const char *reason;       /* for the access log */
    char claim[MAX_ECHO + 1]; /* REFUSE_AUDIENCE: aud; REFUSE_TENANT: iss ("" when unsafe) */
    int64_t exp;              /* REFUSE_EXPIRED */
    kl_claims_principal who;  /* REFUSE_NONE */
} verdict;

static bool is_graph_path(const char *path)
{
    return kl_str_istarts(path, "/v1.0") && (path[5] == '\0' || path[5] == '/');
}

/* A claim's string value, if it is safe to repeat inside a quoted header parameter and a
 * JSON message: printable ASCII without quotes or backslashes, at most MAX_ECHO. */
static void safe_claim(const json_t *payload, const char *name, char out[MAX_ECHO + 1])
{
    out[0] = '\0';
    const json_t *v = json_object_get(payload, name);
    if (!json_is_string(v) || json_string_length(v) > MAX_ECHO)
        return;
    const char *s = json_string_value(v);
    for (size_t i = 0; s[i]; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return;
    snprintf(out, MAX_ECHO + 1, "%s", s);
}

static void check(const kl_snapshot *snap, kl_http_req *r, bool graph, verdict *v)
{
    memset(v, 0, sizeof(*v));
    const char *h = kl_http_req_header(r, "authorization");
    if (kl_http_req_header_count(r, "authorization") > 1) {
        v->why = REFUSE_FORMAT;
        v->reason = "two_authorization_headers";
        return;
    }
    if (!h || !*h) {
        v->why = REFUSE_MISSING;
        v->reason = "missing";
        return;
    }
    const char *tok;
    size_t n;
    if (!kl_bearer_split(h, &tok, &n)) {
        v->why = REFUSE_FORMAT;
        v->reason = "not_bearer";
        return;
    }
    if (n > KL_MAX_TOKEN_BYTES) {
        v->why = REFUSE_INVALID;
        v->reason = "too_long";
        return;
    }
    int64_t now = kl_now_unix();
    kl_jws_verified jv;
    kl_jws_reason jr = kl_sts_verify(kl_snapshot_sts(snap), tok, n, now, &jv);
    if (jr != KL_JWS_OK) {
        v->why = REFUSE_INVALID;
        v->reason = kl_jws_reason_str(jr);
        return;
    }
    const char *tid = kl_snapshot_tenant_id(snap);
    char iss[160];
    kl_claims_issuer_v1(tid, iss, sizeof(iss));
    kl_claims_expect e = {.audiences = graph ? graph_audiences : arm_audiences,
                          .n_audiences = graph ? 1 : 2,
                          .issuer = iss,
                          .tid = tid,
                          .now = now};
    kl_claims_reason cr = kl_claims_check_access(jv.payload, &e, &v->who);
    v->reason = kl_claims_reason_str(cr);
    switch (cr) {
    case KL_CLAIMS_OK: v->why = REFUSE_NONE; break;
    case KL_CLAIMS_EXPIRED:
        v->why = REFUSE_EXPIRED;
        v->exp = json_integer_value(json_object_get(jv.payload, "exp"));
        break;
    case KL_CLAIMS_AUDIENCE:
        v->why = REFUSE_AUDIENCE;
        safe_claim(jv.payload, "aud", v->claim);
        break;
    case KL_CLAIMS_ISSUER:
    case KL_CLAIMS_TENANT:
        v->why = REFUSE_TENANT;
        safe_claim(jv.payload, "iss", v->claim);
        break;
    default: v->why = REFUSE_INVALID; break;
    }
    kl_jws_verified_clear(&jv);
}

/* ARM writes times in its messages as "1/2/2026 3:04:05 PM" (UTC). */
static void arm_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outlen, "?");
        return;
    }
    int h12 = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
    snprintf(out, outlen, "%d/%d/%d %d:%02d:%02d %s", tm.tm_mon + 1, tm.tm_mday, tm.tm_year + 1900,
             h12, tm.tm_min, tm.tm_sec, tm.tm_hour < 12 ? "AM" : "PM");
}

static void refuse_arm(kl_mgmt *m, kl_http_req *r, const kl_snapshot *snap, const verdict *v)
{
    kl_mgmt_call c = {.m = m, .r = r};
    const char *tid = kl_snapshot_tenant_id(snap);
    char msg[1024];
    const char *code = "InvalidAuthenticationToken";
    const char *desc = NULL; /* the challenge's error_description; NULL: msg */
    switch (v->why) {
    case REFUSE_MISSING:
        code = "AuthenticationFailed";
        snprintf(msg, sizeof(msg), "Authentication failed. The 'Authorization' header is missing.");
        desc = "The authentication failed because of missing 'Authorization' header.";
        break;
    case REFUSE_FORMAT:
        code = "AuthenticationFailed";
        snprintf(msg, sizeof(msg),
                 "Authentication failed. The 'Authorization' header is provided in an invalid "
                 "format.");
        desc = "The authentication failed because of invalid 'Authorization' header.";
        break;
    case REFUSE_EXPIRED: {
        char at[48], now[48];
        arm_time(v->exp, at, sizeof(at));
        arm_time(kl_now_unix(), now, sizeof(now));
        code = "ExpiredAuthenticationToken";
        snprintf(msg, sizeof(msg),
                 "The access token expiry UTC time '%s' is earlier than current UTC time '%s'.", at,
                 now);
        break;
    }
    case REFUSE_AUDIENCE:
        code = "InvalidAuthenticationTokenAudience";
        snprintf(msg, sizeof(msg),
                 "The access token has been obtained for wrong audience or resource '%s'. It "
                 "should exactly match with one of the allowed audiences "
                 "'https://management.core.windows.net/','https://management.core.windows.net',"
                 "'https://management.azure.com/','https://management.azure.com'.",
                 v->claim);
        break;
    case REFUSE_TENANT:
        code = "InvalidAuthenticationTokenTenant";
        snprintf(msg, sizeof(msg),
                 "The access token is from the wrong issuer '%s'. It must match the tenant "
                 "'https://sts.windows.net/%s/' associated with this subscription. Please use "
                 "the authority (URL) '%s/%s' to get the token.",
                 v->claim, tid, m->public_base_url, tid);
        break;
    case REFUSE_INVALID:
    case REFUSE_NONE: snprintf(msg, sizeof(msg), "The access token is invalid."); break;
    }
    char challenge[1400];
    snprintf(challenge, sizeof(challenge),
             "Bearer authorization_uri=\"%s/%s\", error=\"invalid_token\", "
             "error_description=\"%s\"",
             m->public_base_url, tid, desc ? desc : msg);
    kl_http_set_header(r, "WWW-Authenticate", challenge);
    kl_mgmt_fail(&c, 401, code, "%s", msg);
}

/* Graph answers every token refusal with InvalidAuthenticationToken and a short reason. */
static void refuse_graph(kl_mgmt *m, kl_http_req *r, const kl_snapshot *snap, const verdict *v)
{
    kl_mgmt_call c = {.m = m, .r = r};
    const char *msg = "Access token validation failure.";
    switch (v->why) {
    case REFUSE_MISSING: msg = "Access token is empty."; break;
    case REFUSE_FORMAT:
        msg = "Access token validation failure. Invalid authorization header.";
        break;
    case REFUSE_EXPIRED: msg = "Lifetime validation failed, the token is expired."; break;
    case REFUSE_AUDIENCE: msg = "Access token validation failure. Invalid audience."; break;
    case REFUSE_TENANT: msg = "Access token validation failure. Invalid issuer."; break;
    case REFUSE_INVALID:
    case REFUSE_NONE: break;
    }
    char challenge[512];
    snprintf(challenge, sizeof(challenge),
             "Bearer realm=\"\", authorization_uri=\"%s/%s/oauth2/authorize\", "
             "client_id=\"" GRAPH_APP_ID "\"",
             m->public_base_url, kl_snapshot_tenant_id(snap));
    kl_http_set_header(r, "WWW-Authenticate", challenge);
    kl_mgmt_fail(&c, 401, "InvalidAuthenticationToken", "%s", msg);
}

void kl_mgmt_refuse_token(kl_mgmt_call *c)
{
    verdict v = {.why = REFUSE_INVALID};
    (is_graph_path(kl_http_req_path(c->r)) ? refuse_graph : refuse_arm)(c->m, c->r, c->snap, &v);
}

/* Checks the request's token on the current snapshot; answers and returns false on a
 * refusal. */
static bool authenticate(kl_mgmt *m, kl_http_req *r, verdict *v)
{
    kl_http_req_set_route(r, KL_ROUTE_MGMT);
    kl_snapshot *snap = kl_snapshot_acquire(m->holder);
    if (!snap) {
        kl_http_respond_error(r, 503, "ServiceUnavailable", "The service is starting.");
        return false;
    }
    bool graph = is_graph_path(kl_http_req_path(r));
    check(snap, r, graph, v);
    if (v->why != REFUSE_NONE) {
        kl_http_req_auth_failed(r, v->why == REFUSE_MISSING ? KL_AUTHFAIL_MISSING
                                                            : KL_AUTHFAIL_INVALID_TOKEN);
        kl_http_req_log_field(r, "token_refused", v->reason);
        (graph ? refuse_graph : refuse_arm)(m, r, snap, v);
    }
    kl_snapshot_release(snap);
    return v->why == REFUSE_NONE;
}

kl_http_verdict kl_mgmt_vet_bearer(kl_mgmt *m, kl_http_req *r)
{
    verdict v;
    return authenticate(m, r, &v) ? KL_HTTP_CONTINUE : KL_HTTP_ANSWERED;
}

void kl_mgmt_handle_bearer(kl_mgmt *m, kl_http_req *r)
{
    verdict v;
    if (!authenticate(m, r, &v))
        return;
    kl_http_req_log_field(r, "auth", "token");
    kl_http_req_log_field(r, "client_id", v.who.appid);
    kl_mgmt_caller caller = {.object_id = v.who.oid,
                             .client = v.who.upn[0] ? v.who.upn : v.who.appid};
    kl_mgmt_dispatch(m, r, &caller);
}
