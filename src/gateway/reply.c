/* Error answers of the data plane. The texts are Azure's own (see
 * docs/data-plane.md); clients and their error classes depend on them. The bodies come
 * from one table so that their exact shapes can be tested without a server. */
#include "gateway/reply.h"

#include <stdio.h>

#include "common/limits.h"

typedef struct err_def {
    int status;
    const char *code; /* NULL: the token-shaped body {"statusCode","message"} */
    const char *message;
} err_def;

static const err_def errors[KL_GW_ERR__COUNT] = {
    [KL_GW_ERR_KEY_DENIED] = {401, "401",
                              "Access denied due to invalid subscription key or wrong API "
                              "endpoint. Make sure to provide a valid key for an active "
                              "subscription and use a correct regional API endpoint for your "
                              "resource."},
    [KL_GW_ERR_TOKEN_DENIED] = {401, NULL,
                                "Unauthorized. Access token is missing, invalid, audience is "
                                "incorrect (https://cognitiveservices.azure.com), or have "
                                "expired."},
    [KL_GW_ERR_KEY_DISABLED] = {403, "AuthenticationTypeDisabled",
                                "Key based authentication is disabled for this resource."},
    [KL_GW_ERR_NOT_FOUND] = {404, "404", "Resource not found"},
    [KL_GW_ERR_DEPLOYMENT_NOT_FOUND] = {404, "DeploymentNotFound",
                                        "The API deployment for this resource does not exist. If "
                                        "you created the deployment within the last 5 minutes, "
                                        "please wait a moment and try again."},
    [KL_GW_ERR_BAD_REQUEST] = {400, "BadRequest", "The request is not valid."},
    [KL_GW_ERR_BAD_GATEWAY] = {502, "BadGateway", "The model server could not be reached."},
    [KL_GW_ERR_GATEWAY_TIMEOUT] = {504, "GatewayTimeout",
                                   "The model server did not answer in time."},
    [KL_GW_ERR_EGRESS_REFUSED] = {502, "BadGateway",
                                  "The model server's address is not allowed by this "
                                  "service's egress policy."},
    [KL_GW_ERR_INTERNAL] = {500, "InternalServerError", "The request could not be served."},
    [KL_GW_ERR_UNAVAILABLE] = {503, "ServiceUnavailable",
                               "The service is starting; try again shortly."},
    [KL_GW_ERR_CHANGE_PENDING] = {503, "ServiceUnavailable",
                                  "A recent change to this resource has not been applied yet; "
                                  "requests to it are refused until it is. Try again shortly."},
    [KL_GW_ERR_DEPLOYMENT_UNAVAILABLE] = {503, "DeploymentUnavailable",
                                          "The deployment cannot be served: its upstream "
                                          "credential could not be opened. Update the "
                                          "deployment with its credential to restore it."},
    [KL_GW_ERR_API_VERSION] = {400, "BadRequest", "API version not supported"},
    [KL_GW_ERR_PUBLIC_DISABLED] = {403, "403",
                                   "Public access is disabled. Please configure private "
                                   "endpoint."},
    [KL_GW_ERR_NETWORK_DENIED] = {403, "403",
                                  "Access denied due to Virtual Network/Firewall rules."},
};

int kl_gateway_error_body(kl_gateway_error e, const kl_gateway_body_err *be, json_t **body)
{
    *body = NULL;
    if ((unsigned)e >= KL_GW_ERR__COUNT)
        e = KL_GW_ERR_INTERNAL;
    const err_def *d = &errors[e];
    if (!d->code) {
        *body = json_pack("{s:i,s:s}", "statusCode", d->status, "message", d->message);
        return d->status;
    }
    const char *msg = d->message;
    if (e == KL_GW_ERR_BAD_REQUEST && be && be->message[0])
        msg = be->message;
    json_t *err = json_pack("{s:s,s:s}", "code", d->code, "message", msg);
    if (err && e == KL_GW_ERR_BAD_REQUEST && be && be->param) {
        json_object_set_new(err, "param", json_string(be->param));
        json_object_set_new(err, "type", json_string("invalid_request_error"));
    }
    *body = err ? json_pack("{s:o}", "error", err) : NULL;
    return d->status;
}

static void reply(kl_http_req *r, kl_gateway_error e, const kl_gateway_body_err *be)
{
    json_t *body;
    int status = kl_gateway_error_body(e, be, &body);
    kl_http_respond_json(r, status, body);
}

void kl_gateway_reply_public_disabled(kl_http_req *r)
{
    reply(r, KL_GW_ERR_PUBLIC_DISABLED, NULL);
}

void kl_gateway_reply_network_denied(kl_http_req *r)
{
    reply(r, KL_GW_ERR_NETWORK_DENIED, NULL);
}

void kl_gateway_reply_key_denied(kl_http_req *r)
{
    reply(r, KL_GW_ERR_KEY_DENIED, NULL);
}

void kl_gateway_reply_token_denied(kl_http_req *r)
{
    reply(r, KL_GW_ERR_TOKEN_DENIED, NULL);
}

void kl_gateway_reply_key_disabled(kl_http_req *r)
{
    reply(r, KL_GW_ERR_KEY_DISABLED, NULL);
}

void kl_gateway_reply_not_found(kl_http_req *r)
{
    reply(r, KL_GW_ERR_NOT_FOUND, NULL);
}

void kl_gateway_reply_deployment_not_found(kl_http_req *r)
{
    reply(r, KL_GW_ERR_DEPLOYMENT_NOT_FOUND, NULL);
}

void kl_gateway_reply_bad_request(kl_http_req *r, const kl_gateway_body_err *e)
{
    reply(r, KL_GW_ERR_BAD_REQUEST, e);
}

void kl_gateway_reply_api_version_unsupported(kl_http_req *r)
{
    reply(r, KL_GW_ERR_API_VERSION, NULL);
}

void kl_gateway_reply_bad_gateway(kl_http_req *r)
{
    reply(r, KL_GW_ERR_BAD_GATEWAY, NULL);
}

void kl_gateway_reply_gateway_timeout(kl_http_req *r)
{
    reply(r, KL_GW_ERR_GATEWAY_TIMEOUT, NULL);
}

void kl_gateway_reply_egress_refused(kl_http_req *r)
{
    reply(r, KL_GW_ERR_EGRESS_REFUSED, NULL);
}

void kl_gateway_reply_internal(kl_http_req *r)
{
    reply(r, KL_GW_ERR_INTERNAL, NULL);
}

void kl_gateway_reply_unavailable(kl_http_req *r)
{
    reply(r, KL_GW_ERR_UNAVAILABLE, NULL);
}

void kl_gateway_reply_change_pending(kl_http_req *r)
{
    kl_http_set_header(r, "Retry-After", KL_SNAPSHOT_RETRY_AFTER);
    reply(r, KL_GW_ERR_CHANGE_PENDING, NULL);
}

void kl_gateway_reply_deployment_unavailable(kl_http_req *r)
{
    reply(r, KL_GW_ERR_DEPLOYMENT_UNAVAILABLE, NULL);
}
