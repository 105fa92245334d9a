/* The data plane's error answers, in the exact shapes Azure OpenAI uses (clients key on
 * status and error.code). All are application/json. */
#ifndef KL_GATEWAY_REPLY_H
#define KL_GATEWAY_REPLY_H

#include "gateway/body.h"
#include "http/server.h"

typedef enum kl_gateway_error {
    KL_GW_ERR_KEY_DENIED = 0,
    KL_GW_ERR_TOKEN_DENIED,
    KL_GW_ERR_KEY_DISABLED,
    KL_GW_ERR_NOT_FOUND,
    KL_GW_ERR_DEPLOYMENT_NOT_FOUND,
    KL_GW_ERR_BAD_REQUEST,
    KL_GW_ERR_BAD_GATEWAY,
    KL_GW_ERR_GATEWAY_TIMEOUT,
    KL_GW_ERR_EGRESS_REFUSED,
    KL_GW_ERR_INTERNAL,
    KL_GW_ERR_UNAVAILABLE,
    KL_GW_ERR_CHANGE_PENDING,
    KL_GW_ERR_DEPLOYMENT_UNAVAILABLE,
    KL_GW_ERR_API_VERSION,
    KL_GW_ERR_PUBLIC_DISABLED,
    KL_GW_ERR_NETWORK_DENIED,
    KL_GW_ERR__COUNT
} kl_gateway_error;

/* The status and body of an error answer; *body is owned by the caller (NULL only when
 * out of memory). be (may be NULL) supplies the message, param and type of a
 * KL_GW_ERR_BAD_REQUEST. */
int kl_gateway_error_body(kl_gateway_error e, const kl_gateway_body_err *be, json_t **body);

/* 401 {"error":{"code":"401","message":"Access denied due to invalid subscription key..."}} */
void kl_gateway_reply_key_denied(kl_http_req *r);
/* 401 {"statusCode":401,"message":"Unauthorized. Access token is missing, ..."} */
void kl_gateway_reply_token_denied(kl_http_req *r);
/* 403 AuthenticationTypeDisabled (a key sent to an account with disableLocalAuth). */
void kl_gateway_reply_key_disabled(kl_http_req *r);
/* 404 {"error":{"code":"404","message":"Resource not found"}} */
void kl_gateway_reply_not_found(kl_http_req *r);
/* 404 DeploymentNotFound. */
void kl_gateway_reply_deployment_not_found(kl_http_req *r);
/* 400 {"error":{"code":"BadRequest","message":"API version not supported"}} */
void kl_gateway_reply_api_version_unsupported(kl_http_req *r);
/* 400 BadRequest with the body error's message and, when set, "param" and "type". */
void kl_gateway_reply_bad_request(kl_http_req *r, const kl_gateway_body_err *e);
/* 502 BadGateway / 504 GatewayTimeout for upstream failures. */
void kl_gateway_reply_bad_gateway(kl_http_req *r);
void kl_gateway_reply_gateway_timeout(kl_http_req *r);
/* 502 BadGateway when the operator's egress policy refuses the backend's address (no
 * connection was attempted). */
void kl_gateway_reply_egress_refused(kl_http_req *r);
/* 500 / 503 for our own failures. */
void kl_gateway_reply_internal(kl_http_req *r);
void kl_gateway_reply_unavailable(kl_http_req *r);
/* 503 ServiceUnavailable (with Retry-After): a saved change to this account has not been
 * built into the snapshot yet, so nothing of the account is served from the stale one. */
void kl_gateway_reply_change_pending(kl_http_req *r);
/* 403 {"error":{"code":"403","message":"Public access is disabled. Please configure
 * private endpoint."}}: publicNetworkAccess Disabled, not a private listener. */
void kl_gateway_reply_public_disabled(kl_http_req *r);
/* 403 {"error":{"code":"403","message":"Access denied due to Virtual Network/Firewall
 * rules."}}: defaultAction Deny and the caller matches no ipRule. */
void kl_gateway_reply_network_denied(kl_http_req *r);
/* 503 DeploymentUnavailable: the deployment exists but its upstream credential cannot
 * be opened (wrong key-encryption key or a damaged row); setting it again restores it. */
void kl_gateway_reply_deployment_unavailable(kl_http_req *r);

#endif
