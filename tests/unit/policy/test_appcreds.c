/* The snapshot's application certificates: built from stored rows (base64 DER), found by
 * client id without regard to case and in registration order, a bad row refused alone,
 * and the parsed key the one of the certificate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../token/certgen.h"
#include "common/err.h"
#include "policy/appcreds.h"

#define APP1 "6f1f3c3e-6c1b-4b7e-9d55-0a0d2a4c9e11"
#define APP2 "0b7d2f6e-4a6f-4b1e-8f0d-5c3b7a9e2d44"

static void test_build_and_find(void **state)
{
    (void)state;
    test_cert a, b, c;
    assert_int_equal(test_cert_make(&a, 2048, -10, 1000), 0);
    assert_int_equal(test_cert_make(&b, 2048, -10, 1000), 0);
    assert_int_equal(test_cert_make(&c, 2048, -10, 1000), 0);
    kl_appcreds_builder *bld = kl_appcreds_builder_new();
    assert_non_null(bld);
    assert_int_equal(kl_appcreds_builder_cert(bld, APP2, "k-c", c.b64, 5, 6), 0);
    assert_int_equal(kl_appcreds_builder_cert(bld, APP1, "k-b", b.b64, 1, 2), 0);
    assert_int_equal(kl_appcreds_builder_cert(bld, APP1, "k-a", a.b64, 3, 4), 0);
    assert_int_equal(kl_appcreds_builder_cert(bld, APP1, "k-x", "bm90IGEgY2VydA==", 3, 4),
                     KL_EINVAL);
    assert_int_equal(kl_appcreds_builder_cert(bld, APP1, "k-y", "***", 3, 4), KL_EINVAL);
    kl_appcreds *ac = NULL;
    assert_int_equal(kl_appcreds_builder_finish(bld, &ac), 0);
    kl_appcreds_builder_free(bld);

    size_t n = 0;
    const kl_client_cert *cs = kl_appcreds_certs(ac, "6F1F3C3E-6C1B-4B7E-9D55-0A0D2A4C9E11", &n);
    assert_int_equal(n, 2);
    assert_string_equal(cs[0].key_id, "k-b");
    assert_string_equal(kl_jws_key_kid(cs[0].key), b.x5t);
    assert_string_equal(kl_jws_key_x5t_s256(cs[0].key), b.x5t_s256);
    assert_int_equal(cs[0].not_before, 1);
    assert_int_equal(cs[0].not_after, 2);
    assert_int_equal(cs[0].der_len, b.der_len);
    assert_memory_equal(cs[0].der, b.der, b.der_len);
    assert_string_equal(cs[1].key_id, "k-a");
    assert_string_equal(kl_jws_key_x5t_s256(cs[1].key), a.x5t_s256);
    cs = kl_appcreds_certs(ac, APP2, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].key_id, "k-c");
    assert_null(kl_appcreds_certs(ac, "00000000-0000-4000-8000-000000000000", &n));
    assert_int_equal(n, 0);
    assert_null(kl_appcreds_certs(NULL, APP1, &n));
    assert_int_equal(n, 0);
    kl_appcreds_free(ac);
    test_cert_free(&a);
    test_cert_free(&b);
    test_cert_free(&c);
}

static void test_small_key_refused(void **state)
{
    (void)state;
    test_cert w;
    assert_int_equal(test_cert_make(&w, 1024, -10, 1000), 0);
    kl_appcreds_builder *bld = kl_appcreds_builder_new();
    assert_int_equal(kl_appcreds_builder_cert(bld, APP1, "k", w.b64, 1, 2), KL_EINVAL);
    kl_appcreds *ac = NULL;
    assert_int_equal(kl_appcreds_builder_finish(bld, &ac), 0);
    size_t n = 1;
    assert_null(kl_appcreds_certs(ac, APP1, &n));
    assert_int_equal(n, 0);
    kl_appcreds_free(ac);
    kl_appcreds_builder_free(bld);
    test_cert_free(&w);
}

static void test_federated(void **state)
{
    (void)state;
    kl_appcreds_builder *bld = kl_appcreds_builder_new();
    assert_int_equal(kl_appcreds_builder_federated(bld, APP2, "f-3", "https://c", "s3", "[\"a3\"]"),
                     0);
    assert_int_equal(
        kl_appcreds_builder_federated(bld, APP1, "f-1", "https://a", "s1", "[\"a1\",\"a2\"]"), 0);
    assert_int_equal(kl_appcreds_builder_federated(bld, APP1, "f-2", "https://b", "s2", "[]"), 0);
    assert_int_equal(kl_appcreds_builder_federated(bld, APP1, "f-x", "https://b", "s2", "{}"),
                     KL_EINVAL);
    assert_int_equal(kl_appcreds_builder_federated(bld, APP1, "f-y", "https://b", "s2", "[1]"),
                     KL_EINVAL);
    kl_appcreds *ac = NULL;
    assert_int_equal(kl_appcreds_builder_finish(bld, &ac), 0);
    kl_appcreds_builder_free(bld);
    size_t n = 0;
    const kl_federated_cred *fs =
        kl_appcreds_federated(ac, "6F1F3C3E-6C1B-4B7E-9D55-0A0D2A4C9E11", &n);
    assert_int_equal(n, 2);
    assert_string_equal(fs[0].id, "f-1");
    assert_string_equal(fs[0].issuer, "https://a");
    assert_string_equal(fs[0].subject, "s1");
    assert_int_equal(fs[0].n_audiences, 2);
    assert_string_equal(fs[0].audiences[1], "a2");
    assert_string_equal(fs[1].id, "f-2");
    assert_int_equal(fs[1].n_audiences, 0);
    fs = kl_appcreds_federated(ac, APP2, &n);
    assert_int_equal(n, 1);
    assert_string_equal(fs[0].subject, "s3");
    assert_null(kl_appcreds_certs(ac, APP1, &n)); /* no certificates here */
    assert_int_equal(n, 0);
    kl_appcreds_free(ac);
}

/* User sign-in settings: the public-client flag, exact redirect-URI matching, RFC 8252
 * loopback ports for public clients only, and which URIs may be registered. */
static void test_redirect_uris(void **state)
{
    (void)state;
    kl_appcreds_builder *bld = kl_appcreds_builder_new();
    assert_int_equal(kl_appcreds_builder_client(bld, APP1, true, "[\"https://a.example/cb\"]",
                                                "[\"http://localhost\",\"http://127.0.0.1/cb\"]"),
                     0);
    assert_int_equal(
        kl_appcreds_builder_client(bld, APP2, false, "[\"http://localhost/cb\"]", NULL), 0);
    assert_int_equal(kl_appcreds_builder_client(bld, APP2, false, "{}", NULL), KL_EINVAL);
    kl_appcreds *ac = NULL;
    assert_int_equal(kl_appcreds_builder_finish(bld, &ac), 0);
    kl_appcreds_builder_free(bld);
    assert_true(kl_appcreds_public_client(ac, "6F1F3C3E-6C1B-4B7E-9D55-0A0D2A4C9E11"));
    assert_false(kl_appcreds_public_client(ac, APP2));
    assert_true(kl_appcreds_redirect_ok(ac, APP1, "https://a.example/cb"));
    assert_false(kl_appcreds_redirect_ok(ac, APP1, "https://a.example/cb/"));
    assert_false(kl_appcreds_redirect_ok(ac, APP1, "https://a.example:444/cb"));
    assert_false(kl_appcreds_redirect_ok(ac, APP1, "https://a.example/cb#x"));
    /* A public client's loopback URI: any port, same host and path. */
    assert_true(kl_appcreds_redirect_ok(ac, APP1, "http://localhost:53121"));
    assert_true(kl_appcreds_redirect_ok(ac, APP1, "http://localhost:53121/"));
    assert_true(kl_appcreds_redirect_ok(ac, APP1, "http://127.0.0.1:8400/cb"));
    assert_false(kl_appcreds_redirect_ok(ac, APP1, "http://127.0.0.1:8400/other"));
    assert_false(kl_appcreds_redirect_ok(ac, APP1, "http://localhost.evil.example:80"));
    assert_false(kl_appcreds_redirect_ok(ac, APP1, "https://localhost:53121"));
    assert_false(kl_appcreds_redirect_ok(ac, APP1, "http://127.0.0.1:80@evil.example/cb"));
    /* A confidential client's loopback URI matches exactly only. */
    assert_true(kl_appcreds_redirect_ok(ac, APP2, "http://localhost/cb"));
    assert_false(kl_appcreds_redirect_ok(ac, APP2, "http://localhost:9999/cb"));
    assert_false(
        kl_appcreds_redirect_ok(ac, "00000000-0000-0000-0000-000000000000", "http://localhost"));
    kl_appcreds_free(ac);
    static const char *const ok[] = {"https://a.example/cb?x=1", "http://localhost:8400/cb",
                                     "http://127.0.0.1", "http://[::1]:5000/"};
    static const char *const bad[] = {"http://a.example/cb", "https://a.example/#f",
                                      "ftp://localhost",     "https://a b",
                                      "localhost",           "https://"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(kl_appcreds_redirect_uri_check(ok[i], strlen(ok[i])), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kl_appcreds_redirect_uri_check(bad[i], strlen(bad[i])), KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_find),
        cmocka_unit_test(test_small_key_refused),
        cmocka_unit_test(test_federated),
        cmocka_unit_test(test_redirect_uris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
