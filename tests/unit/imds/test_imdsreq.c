/* Token-request queries: what msal-node sends in both styles, each refusal in its order,
 * the selector names of each style, and encoding tricks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/limits.h"
#include "imds/imdsreq.h"

#define RES "resource=https%3A%2F%2Fcognitiveservices.azure.com"

static kl_imdsreq_err parse(kl_imdsreq_style st, const char *q, kl_imdsreq *out)
{
    kl_imdsreq_err e = kl_imdsreq_parse(st, q, strlen(q), out);
    assert_true((e == KL_IMDSREQ_OK) == (out->query != NULL));
    return e;
}

static kl_imdsreq_err err_of(kl_imdsreq_style st, const char *q)
{
    kl_imdsreq r;
    kl_imdsreq_err e = parse(st, q, &r);
    kl_imdsreq_free(&r);
    return e;
}

static void test_msal_imds(void **state)
{
    (void)state;
    kl_imdsreq r;
    assert_int_equal(parse(KL_IMDSREQ_IMDS, "api-version=2018-02-01&" RES, &r), KL_IMDSREQ_OK);
    assert_string_equal(r.resource, "https://cognitiveservices.azure.com");
    assert_int_equal(r.resource_len, strlen("https://cognitiveservices.azure.com"));
    assert_int_equal(r.sel, KL_IDSEL_DEFAULT);
    assert_null(r.sel_name);
    kl_imdsreq_free(&r);
    assert_int_equal(parse(KL_IMDSREQ_IMDS,
                           "api-version=2018-02-01&" RES "&msi_res_id=%2Fsubscriptions%2Fs"
                           "&client-request-id=x&xms_cc=cp1",
                           &r),
                     KL_IMDSREQ_OK);
    assert_int_equal(r.sel, KL_IDSEL_RESOURCE_ID);
    assert_string_equal(r.sel_value, "/subscriptions/s");
    kl_imdsreq_free(&r);
}

static void test_msal_appservice(void **state)
{
    (void)state;
    kl_imdsreq r;
    assert_int_equal(
        parse(KL_IMDSREQ_APPSERVICE, "api-version=2019-08-01&" RES "&principal_id=abc", &r),
        KL_IMDSREQ_OK);
    assert_int_equal(r.sel, KL_IDSEL_OBJECT_ID);
    assert_string_equal(r.sel_name, "principal_id");
    kl_imdsreq_free(&r);
    /* principal_id is App Service's word, msi_res_id IMDS's: elsewhere they are unknown
     * parameters, ignored like any other. */
    assert_int_equal(parse(KL_IMDSREQ_IMDS, "api-version=2018-02-01&" RES "&principal_id=x", &r),
                     KL_IMDSREQ_OK);
    assert_int_equal(r.sel, KL_IDSEL_DEFAULT);
    kl_imdsreq_free(&r);
    assert_int_equal(
        parse(KL_IMDSREQ_APPSERVICE, "api-version=2019-08-01&" RES "&msi_res_id=x", &r),
        KL_IMDSREQ_OK);
    assert_int_equal(r.sel, KL_IDSEL_DEFAULT);
    kl_imdsreq_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, ""), KL_IMDSREQ_NO_API_VERSION);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, RES), KL_IMDSREQ_NO_API_VERSION);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=&" RES), KL_IMDSREQ_NO_API_VERSION);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2017-12-01&" RES),
                     KL_IMDSREQ_BAD_API_VERSION);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=latest&" RES),
                     KL_IMDSREQ_BAD_API_VERSION);
    assert_int_equal(err_of(KL_IMDSREQ_APPSERVICE, "api-version=2017-09-01&" RES),
                     KL_IMDSREQ_BAD_API_VERSION);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2021-02-01-preview&" RES), KL_IMDSREQ_OK);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01"), KL_IMDSREQ_NO_RESOURCE);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&resource="),
                     KL_IMDSREQ_NO_RESOURCE);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&" RES "&client_id=a&"
                                             "object_id=b"),
                     KL_IMDSREQ_MANY_SELECTORS);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&" RES "&msi_res_id=a&"
                                             "mi_res_id=a"),
                     KL_IMDSREQ_MANY_SELECTORS);
    assert_int_equal(
        err_of(KL_IMDSREQ_APPSERVICE, "api-version=2019-08-01&" RES "&principal_id=a&object_id=a"),
        KL_IMDSREQ_MANY_SELECTORS);
}

static void test_encoding_tricks(void **state)
{
    (void)state;
    /* A repeated parameter is refused, whichever copy a proxy would have used. */
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&" RES "&" RES),
                     KL_IMDSREQ_BAD_QUERY);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&" RES "&client_id=a&"
                                             "client_id=b"),
                     KL_IMDSREQ_BAD_QUERY);
    /* Bad escapes, a decoded NUL. */
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&resource=%zz"),
                     KL_IMDSREQ_BAD_QUERY);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&resource=a%00b"),
                     KL_IMDSREQ_BAD_QUERY);
    /* CR LF (header injection), a space, a non-ASCII byte in the resource. */
    assert_int_equal(err_of(KL_IMDSREQ_IMDS,
                            "api-version=2018-02-01&resource=https%3A%2F%2Fx%0D%0ASet-"
                            "Cookie%3A%20a"),
                     KL_IMDSREQ_BAD_RESOURCE);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&resource=a+b"),
                     KL_IMDSREQ_BAD_RESOURCE);
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&resource=%C3%A9"),
                     KL_IMDSREQ_BAD_RESOURCE);
    /* A percent-encoded parameter name is the same name. */
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, "api-version=2018-02-01&" RES "&%72esource=x"),
                     KL_IMDSREQ_BAD_QUERY);
}

static void test_limits(void **state)
{
    (void)state;
    char q[KL_MAX_MI_QUERY + 64];
    int n = snprintf(q, sizeof(q), "api-version=2018-02-01&resource=");
    memset(q + n, 'a', KL_MAX_MI_RESOURCE);
    q[n + KL_MAX_MI_RESOURCE] = '\0';
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, q), KL_IMDSREQ_OK);
    q[n + KL_MAX_MI_RESOURCE] = 'a';
    q[n + KL_MAX_MI_RESOURCE + 1] = '\0';
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, q), KL_IMDSREQ_BAD_RESOURCE);
    n = snprintf(q, sizeof(q), "api-version=2018-02-01&%s&client_id=", RES);
    memset(q + n, 'a', KL_MAX_MI_SELECTOR + 1);
    q[n + KL_MAX_MI_SELECTOR + 1] = '\0';
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, q), KL_IMDSREQ_BAD_SELECTOR);
    memset(q, 'a', KL_MAX_MI_QUERY + 1);
    q[KL_MAX_MI_QUERY + 1] = '\0';
    assert_int_equal(err_of(KL_IMDSREQ_IMDS, q), KL_IMDSREQ_BAD_QUERY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msal_imds), cmocka_unit_test(test_msal_appservice),
        cmocka_unit_test(test_refusals),  cmocka_unit_test(test_encoding_tricks),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
