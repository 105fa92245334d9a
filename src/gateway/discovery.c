/* The token service's OpenID Connect discovery documents (see discovery.h). */
#include "gateway/discovery.h"

#include <jansson.h>
#include <stdio.h>

#include "gateway/gateway_sts.h"

void kl_discovery_tenant(const char *base, kl_http_req *r, const char *tid, bool v2)
{
    char issuer[160], authz[700], token[700], keys[700], devcode[700], logout[700], userinfo[700],
        revoke[700];
    const char *v = v2 ? "/v2.0" : "";
    if (v2)
        snprintf(issuer, sizeof(issuer), "%s/%s/v2.0", base, tid);
    else
        kl_gateway_sts_issuer(tid, issuer, sizeof(issuer));
    snprintf(authz, sizeof(authz), "%s/%s/oauth2%s/authorize", base, tid, v);
    snprintf(token, sizeof(token), "%s/%s/oauth2%s/token", base, tid, v);
    snprintf(keys, sizeof(keys), "%s/%s/discovery%s/keys", base, tid, v);
    snprintf(devcode, sizeof(devcode), "%s/%s/oauth2%s/devicecode", base, tid, v);
    snprintf(logout, sizeof(logout), "%s/%s/oauth2%s/logout", base, tid, v);
    snprintf(userinfo, sizeof(userinfo), "%s/oidc/userinfo", base);
    /* Not in Entra's document: keyless revokes refresh tokens (RFC 7009), on the v2.0
     * path for both versions, and says where as RFC 8414 names it. */
    snprintf(revoke, sizeof(revoke), "%s/%s/oauth2/v2.0/revoke", base, tid);
    json_t *doc = json_pack(
        "{s:s,s:[sss],s:s,s:[sss],s:[s],s:[s],s:[sss],s:[ssss],s:s,s:b,s:s,s:s,s:s,s:b,s:b,"
        "s:s,s:n,s:s,s:[sssssssss]}",
        "token_endpoint", token, "token_endpoint_auth_methods_supported", "client_secret_post",
        "private_key_jwt", "client_secret_basic", "jwks_uri", keys, "response_modes_supported",
        "query", "fragment", "form_post", "subject_types_supported", "pairwise",
        "id_token_signing_alg_values_supported", "RS256", "response_types_supported", "code",
        "id_token", "code id_token", "scopes_supported", "openid", "profile", "email",
        "offline_access", "issuer", issuer, "request_uri_parameter_supported", 0,
        "userinfo_endpoint", userinfo, "authorization_endpoint", authz,
        "device_authorization_endpoint", devcode, "http_logout_supported", 1,
        "frontchannel_logout_supported", 1, "end_session_endpoint", logout, "tenant_region_scope",
        "cloud_instance_name", "keyless", "claims_supported", "sub", "iss", "aud", "exp", "iat",
        "nbf", "tid", "oid", "ver");
    if (doc)
        json_object_set_new(doc, "revocation_endpoint", json_string(revoke));
    kl_http_respond_json(r, 200, doc);
}

/* The ADFS-style document (MS-OIDCE): every endpoint under /adfs, no v2.0 paths, and
 * access_token_issuer, which ADFS adds because its access tokens' issuer differs from
 * the OIDC issuer. Both name the v1 issuer of the default tenant here: the tokens are
 * the same v1 tokens the tenant's own endpoints sign, and no id_token is ever issued. */
void kl_discovery_adfs(const char *base, const char *segment, kl_http_req *r, const char *tid)
{
    char issuer[160], authz[700], token[700], keys[700], devcode[700], logout[700], userinfo[700];
    const char *b = base, *a = segment;
    kl_gateway_sts_issuer(tid, issuer, sizeof(issuer));
    snprintf(authz, sizeof(authz), "%s/%s/oauth2/authorize", b, a);
    snprintf(token, sizeof(token), "%s/%s/oauth2/token", b, a);
    snprintf(keys, sizeof(keys), "%s/%s/discovery/keys", b, a);
    snprintf(devcode, sizeof(devcode), "%s/%s/oauth2/devicecode", b, a);
    snprintf(logout, sizeof(logout), "%s/%s/oauth2/logout", b, a);
    snprintf(userinfo, sizeof(userinfo), "%s/%s/userinfo", b, a);
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[sss],s:[ss],s:[s],s:[sss],s:[s],s:[s],s:[sss],"
        "s:[ssss],s:[sssssssss],s:b,s:b,s:b}",
        "issuer", issuer, "access_token_issuer", issuer, "authorization_endpoint", authz,
        "token_endpoint", token, "jwks_uri", keys, "device_authorization_endpoint", devcode,
        "end_session_endpoint", logout, "userinfo_endpoint", userinfo,
        "token_endpoint_auth_methods_supported", "client_secret_post", "client_secret_basic",
        "private_key_jwt", "token_endpoint_auth_signing_alg_values_supported", "RS256", "PS256",
        "grant_types_supported", "client_credentials", "response_modes_supported", "query",
        "fragment", "form_post", "subject_types_supported", "pairwise",
        "id_token_signing_alg_values_supported", "RS256", "response_types_supported", "code",
        "id_token", "code id_token", "scopes_supported", "openid", "profile", "email",
        "offline_access", "claims_supported", "sub", "iss", "aud", "exp", "iat", "nbf", "tid",
        "oid", "ver", "microsoft_multi_refresh_token", 0, "frontchannel_logout_supported", 1,
        "http_logout_supported", 1);
    kl_http_respond_json(r, 200, doc);
}
