/* Error answers of the data plane. The texts are Azure's own (see
 * docs/data-plane.md); clients and their error classes depend on them. */
#include "gateway/reply.h"

#include <stdio.h>

void kl_gateway_reply_key_denied(kl_http_req *r)
{
    kl_http_respond_error(
        r, 401, "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.");
}

void kl_gateway_reply_token_denied(kl_http_req *r)
{
    json_t *j = json_pack("{s:i,s:s}", "statusCode", 401, "message",
                          "Unauthorized. Access token is missing, invalid, audience is incorrect "
                          "(https://cognitiveservices.azure.com), or have expired.");
    kl_http_respond_json(r, 401, j);
}

void kl_gateway_reply_key_disabled(kl_http_req *r)
{
    kl_http_respond_error(r, 403, "AuthenticationTypeDisabled",
                          "Key based authentication is disabled for this resource.");
}

void kl_gateway_reply_not_found(kl_http_req *r)
{
    kl_http_respond_error(r, 404, "404", "Resource not found");
}

void kl_gateway_reply_deployment_not_found(kl_http_req *r)
{
    kl_http_respond_error(r, 404, "DeploymentNotFound",
                          "The API deployment for this resource does not exist. If you created "
                          "the deployment within the last 5 minutes, please wait a moment and "
                          "try again.");
}

void kl_gateway_reply_bad_request(kl_http_req *r, const kl_gateway_body_err *e)
{
    const char *msg = e && e->message[0] ? e->message : "The request is not valid.";
    json_t *err = json_pack("{s:s,s:s}", "code", "BadRequest", "message", msg);
    if (err && e && e->param) {
        json_object_set_new(err, "param", json_string(e->param));
        json_object_set_new(err, "type", json_string("invalid_request_error"));
    }
    kl_http_respond_json(r, 400, err ? json_pack("{s:o}", "error", err) : NULL);
}

void kl_gateway_reply_bad_gateway(kl_http_req *r)
{
    kl_http_respond_error(r, 502, "BadGateway", "The model server could not be reached.");
}

void kl_gateway_reply_gateway_timeout(kl_http_req *r)
{
    kl_http_respond_error(r, 504, "GatewayTimeout", "The model server did not answer in time.");
}

void kl_gateway_reply_internal(kl_http_req *r)
{
    kl_http_respond_error(r, 500, "InternalServerError", "The request could not be served.");
}

void kl_gateway_reply_unavailable(kl_http_req *r)
{
    kl_http_respond_error(r, 503, "ServiceUnavailable",
                          "The service is starting; try again shortly.");
}
