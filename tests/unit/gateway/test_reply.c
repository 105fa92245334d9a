/* The data plane's error bodies, byte for byte: clients pick their exception classes
 * and error codes from them (see the design's clients.md §5 and protocols.md §6.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gateway/reply.h"

static void expect(kl_gateway_error e, const kl_gateway_body_err *be, int status, const char *json)
{
    json_t *body = NULL;
    assert_int_equal(kl_gateway_error_body(e, be, &body), status);
    assert_non_null(body);
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, json);
    free(s);
    json_decref(body);
}

static void test_azure_shapes(void **state)
{
    (void)state;
    expect(KL_GW_ERR_KEY_DENIED, NULL, 401,
           "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid subscription "
           "key or wrong API endpoint. Make sure to provide a valid key for an active "
           "subscription and use a correct regional API endpoint for your resource.\"}}");
    /* The token failure has Azure's other, top-level shape. */
    expect(KL_GW_ERR_TOKEN_DENIED, NULL, 401,
           "{\"statusCode\":401,\"message\":\"Unauthorized. Access token is missing, invalid, "
           "audience is incorrect (https://cognitiveservices.azure.com), or have expired.\"}");
    expect(KL_GW_ERR_KEY_DISABLED, NULL, 403,
           "{\"error\":{\"code\":\"AuthenticationTypeDisabled\",\"message\":\"Key based "
           "authentication is disabled for this resource.\"}}");
    expect(KL_GW_ERR_NOT_FOUND, NULL, 404,
           "{\"error\":{\"code\":\"404\",\"message\":\"Resource not found\"}}");
    expect(KL_GW_ERR_DEPLOYMENT_NOT_FOUND, NULL, 404,
           "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"The API deployment for this "
           "resource does not exist. If you created the deployment within the last 5 minutes, "
           "please wait a moment and try again.\"}}");
    expect(KL_GW_ERR_API_VERSION, NULL, 400,
           "{\"error\":{\"code\":\"BadRequest\",\"message\":\"API version not supported\"}}");
    expect(KL_GW_ERR_BAD_GATEWAY, NULL, 502,
           "{\"error\":{\"code\":\"BadGateway\",\"message\":\"The model server could not be "
           "reached.\"}}");
    expect(KL_GW_ERR_GATEWAY_TIMEOUT, NULL, 504,
           "{\"error\":{\"code\":\"GatewayTimeout\",\"message\":\"The model server did not answer "
           "in time.\"}}");
    expect(KL_GW_ERR_EGRESS_REFUSED, NULL, 502,
           "{\"error\":{\"code\":\"BadGateway\",\"message\":\"The model server's address is "
           "not allowed by this service's egress policy.\"}}");
}

/* Ours, not Azure's: refusals that keep a revocation in force (docs/data-plane.md). */
static void test_fail_closed_shapes(void **state)
{
    (void)state;
    expect(KL_GW_ERR_CHANGE_PENDING, NULL, 503,
           "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"A recent change to this "
           "resource has not been applied yet; requests to it are refused until it is. Try "
           "again shortly.\"}}");
    expect(KL_GW_ERR_DEPLOYMENT_UNAVAILABLE, NULL, 503,
           "{\"error\":{\"code\":\"DeploymentUnavailable\",\"message\":\"The deployment "
           "cannot be served: its upstream credential could not be opened. Update the "
           "deployment with its credential to restore it.\"}}");
}

static void test_bad_request_param(void **state)
{
    (void)state;
    kl_gateway_body_err be;
    memset(&be, 0, sizeof(be));
    snprintf(be.message, sizeof(be.message), "'messages' is a required property");
    be.param = "messages";
    expect(KL_GW_ERR_BAD_REQUEST, &be, 400,
           "{\"error\":{\"code\":\"BadRequest\",\"message\":\"'messages' is a required "
           "property\",\"param\":\"messages\",\"type\":\"invalid_request_error\"}}");
    expect(KL_GW_ERR_BAD_REQUEST, NULL, 400,
           "{\"error\":{\"code\":\"BadRequest\",\"message\":\"The request is not valid.\"}}");
    /* An out-of-range value falls back to a 500, never reads past the table. */
    expect((kl_gateway_error)999, NULL, 500,
           "{\"error\":{\"code\":\"InternalServerError\",\"message\":\"The request could not be "
           "served.\"}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_azure_shapes),
        cmocka_unit_test(test_bad_request_param),
        cmocka_unit_test(test_fail_closed_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
