/* Claims: the v1 access-token claim set we build, each way an access token's claims are
 * refused at the gateway (expired, not yet valid, wrong audience, wrong issuer, another
 * tenant's token, wrong types), and client-assertion checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "token/claims.h"

#define NOW 1800000000
#define TID "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define OTHER_TID "11111111-2222-3333-4444-555555555555"
#define ISS "https://sts.windows.net/" TID "/"
#define AUD "https://cognitiveservices.azure.com"
#define APPID "0b2c3d4e-0000-4000-8000-000000000001"
#define OID "0b2c3d4e-0000-4000-8000-000000000002"
#define TOKEN_EP "https://login.example/" TID "/oauth2/v2.0/token"

static const char *const audiences[] = {AUD};

static json_t *good_token(void)
{
    kl_claims_access in = {.aud = AUD,
                           .iss = ISS,
                           .tid = TID,
                           .appid = APPID,
                           .oid = OID,
                           .appidacr = 2,
                           .now = NOW,
                           .lifetime = 0};
    json_t *o = NULL;
    assert_int_equal(kl_claims_build_access(&in, &o), 0);
    return o;
}

static kl_claims_reason check(const json_t *p, int64_t now)
{
    kl_claims_expect e = {
        .audiences = audiences, .n_audiences = 1, .issuer = ISS, .tid = TID, .now = now};
    return kl_claims_check_access(p, &e, NULL);
}

static void test_build_shape(void **state)
{
    (void)state;
    json_t *o = good_token();
    const char *keys[] = {"aud", "iss",   "iat", "nbf", "exp", "appid", "appidacr",
                          "idp", "idtyp", "oid", "sub", "tid", "uti",   "ver"};
    assert_int_equal(json_object_size(o), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(o, keys[i]));
    assert_string_equal(json_string_value(json_object_get(o, "ver")), "1.0");
    assert_string_equal(json_string_value(json_object_get(o, "appidacr")), "2");
    assert_string_equal(json_string_value(json_object_get(o, "idtyp")), "app");
    assert_string_equal(json_string_value(json_object_get(o, "idp")), ISS);
    assert_string_equal(json_string_value(json_object_get(o, "sub")), OID);
    assert_int_equal(json_integer_value(json_object_get(o, "exp")),
                     NOW + KL_TOKEN_DEFAULT_LIFETIME_S);
    assert_int_equal(json_integer_value(json_object_get(o, "nbf")), NOW);
    assert_int_equal(json_string_length(json_object_get(o, "uti")), 22);
    /* Two tokens never share a uti. */
    json_t *o2 = good_token();
    assert_string_not_equal(json_string_value(json_object_get(o, "uti")),
                            json_string_value(json_object_get(o2, "uti")));
    json_decref(o2);
    json_decref(o);
}

/* A managed identity's token names the identity's ARM id (xms_mirid), as Azure's do; other
 * tokens carry no xms_mirid at all. */
static void test_build_mirid(void **state)
{
    (void)state;
    static const char mirid[] = "/subscriptions/s/resourcegroups/g/providers/"
                                "Microsoft.ManagedIdentity/userAssignedIdentities/app";
    kl_claims_access in = {.aud = AUD,
                           .iss = ISS,
                           .tid = TID,
                           .appid = APPID,
                           .oid = OID,
                           .appidacr = 2,
                           .now = NOW,
                           .lifetime = 86400,
                           .xms_mirid = mirid};
    json_t *o = NULL;
    assert_int_equal(kl_claims_build_access(&in, &o), 0);
    assert_string_equal(json_string_value(json_object_get(o, "xms_mirid")), mirid);
    assert_int_equal(json_integer_value(json_object_get(o, "exp")), NOW + 86400);
    json_decref(o);
    json_t *plain = good_token();
    assert_null(json_object_get(plain, "xms_mirid"));
    json_decref(plain);
    in.xms_mirid = "";
    o = NULL;
    assert_int_equal(kl_claims_build_access(&in, &o), KL_EINVAL);
    assert_null(o);
}

static void test_build_refuses(void **state)
{
    (void)state;
    json_t *o = NULL;
    kl_claims_access in = {
        .aud = AUD, .iss = ISS, .tid = TID, .appid = APPID, .oid = OID, .appidacr = 3, .now = NOW};
    assert_int_equal(kl_claims_build_access(&in, &o), KL_EINVAL);
    in.appidacr = 1;
    in.lifetime = KL_TOKEN_MAX_LIFETIME_S + 1;
    assert_int_equal(kl_claims_build_access(&in, &o), KL_EINVAL);
    in.lifetime = 60;
    in.oid = "";
    assert_int_equal(kl_claims_build_access(&in, &o), KL_EINVAL);
    assert_null(o);
}

static void test_valid(void **state)
{
    (void)state;
    json_t *o = good_token();
    kl_claims_principal who;
    kl_claims_expect e = {
        .audiences = audiences, .n_audiences = 1, .issuer = ISS, .tid = TID, .now = NOW + 10};
    assert_int_equal(kl_claims_check_access(o, &e, &who), KL_CLAIMS_OK);
    assert_string_equal(who.oid, OID);
    assert_string_equal(who.tid, TID);
    assert_string_equal(who.appid, APPID);
    assert_string_equal(who.upn, "");
    assert_int_equal(who.exp, NOW + KL_TOKEN_DEFAULT_LIFETIME_S);
    json_decref(o);
}

/* A user's upn is handed on (ARM's 403 names it); one of the wrong type or over
 * KL_MAX_UPN refuses the token. */
static void test_upn(void **state)
{
    (void)state;
    json_t *o = good_token();
    kl_claims_principal who;
    kl_claims_expect e = {
        .audiences = audiences, .n_audiences = 1, .issuer = ISS, .tid = TID, .now = NOW + 10};
    json_object_set_new(o, "upn", json_string("ann@example.com"));
    assert_int_equal(kl_claims_check_access(o, &e, &who), KL_CLAIMS_OK);
    assert_string_equal(who.upn, "ann@example.com");
    char longest[KL_MAX_UPN + 2];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[KL_MAX_UPN] = '\0';
    json_object_set_new(o, "upn", json_string(longest));
    assert_int_equal(kl_claims_check_access(o, &e, &who), KL_CLAIMS_OK);
    assert_int_equal(strlen(who.upn), KL_MAX_UPN);
    longest[KL_MAX_UPN] = 'a';
    longest[KL_MAX_UPN + 1] = '\0';
    json_object_set_new(o, "upn", json_string(longest));
    assert_int_equal(kl_claims_check_access(o, &e, &who), KL_CLAIMS_BAD_VALUE);
    json_object_set_new(o, "upn", json_integer(1));
    assert_int_equal(kl_claims_check_access(o, &e, &who), KL_CLAIMS_BAD_TYPE);
    json_decref(o);
}

static void test_expired(void **state)
{
    (void)state;
    json_t *o = good_token();
    int64_t exp = NOW + KL_TOKEN_DEFAULT_LIFETIME_S;
    /* Within the skew it still passes; at exp + skew it does not. */
    assert_int_equal(check(o, exp + KL_TOKEN_CLOCK_SKEW_S - 1), KL_CLAIMS_OK);
    assert_int_equal(check(o, exp + KL_TOKEN_CLOCK_SKEW_S), KL_CLAIMS_EXPIRED);
    json_decref(o);
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    json_t *o = good_token();
    assert_int_equal(check(o, NOW - KL_TOKEN_CLOCK_SKEW_S), KL_CLAIMS_OK);
    assert_int_equal(check(o, NOW - KL_TOKEN_CLOCK_SKEW_S - 1), KL_CLAIMS_NOT_YET_VALID);
    /* nbf in the past but iat in the future. */
    json_object_set_new(o, "nbf", json_integer(NOW - 1000));
    json_object_set_new(o, "iat", json_integer(NOW + 1000));
    assert_int_equal(check(o, NOW), KL_CLAIMS_IAT_FUTURE);
    json_decref(o);
}

static void test_audience(void **state)
{
    (void)state;
    json_t *o = good_token();
    json_object_set_new(o, "aud", json_string(AUD "/"));
    assert_int_equal(check(o, NOW), KL_CLAIMS_OK);
    json_object_set_new(o, "aud", json_string("https://management.azure.com"));
    assert_int_equal(check(o, NOW), KL_CLAIMS_AUDIENCE);
    json_object_set_new(o, "aud", json_string(AUD "//"));
    assert_int_equal(check(o, NOW), KL_CLAIMS_AUDIENCE);
    json_object_set_new(o, "aud", json_pack("[s]", AUD));
    assert_int_equal(check(o, NOW), KL_CLAIMS_BAD_TYPE);
    json_decref(o);
}

static void test_issuer_and_tenant(void **state)
{
    (void)state;
    json_t *o = good_token();
    json_object_set_new(o, "iss", json_string("https://sts.windows.net/" TID));
    assert_int_equal(check(o, NOW), KL_CLAIMS_ISSUER);
    json_decref(o);
    /* Another tenant's token, signed by a key we trust: its issuer names that tenant. */
    kl_claims_access in = {.aud = AUD,
                           .iss = "https://sts.windows.net/" OTHER_TID "/",
                           .tid = OTHER_TID,
                           .appid = APPID,
                           .oid = OID,
                           .appidacr = 1,
                           .now = NOW};
    assert_int_equal(kl_claims_build_access(&in, &o), 0);
    assert_int_equal(check(o, NOW), KL_CLAIMS_ISSUER);
    /* Right issuer, wrong tid. */
    json_object_set_new(o, "iss", json_string(ISS));
    assert_int_equal(check(o, NOW), KL_CLAIMS_TENANT);
    json_decref(o);
}

static void test_types(void **state)
{
    (void)state;
    json_t *o = good_token();
    json_object_set_new(o, "exp", json_real(NOW + 100.5));
    assert_int_equal(check(o, NOW), KL_CLAIMS_BAD_TYPE);
    json_object_set_new(o, "exp", json_string("1800003600"));
    assert_int_equal(check(o, NOW), KL_CLAIMS_BAD_TYPE);
    json_object_del(o, "exp");
    assert_int_equal(check(o, NOW), KL_CLAIMS_MISSING);
    json_decref(o);
    o = good_token();
    json_object_set_new(o, "oid", json_integer(5));
    assert_int_equal(check(o, NOW), KL_CLAIMS_BAD_TYPE);
    json_object_del(o, "oid");
    assert_int_equal(check(o, NOW), KL_CLAIMS_MISSING);
    json_decref(o);
    o = good_token();
    json_object_set_new(o, "ver", json_string("2.0"));
    assert_int_equal(check(o, NOW), KL_CLAIMS_BAD_VALUE);
    json_decref(o);
    o = good_token();
    json_object_set_new(o, "exp", json_integer(NOW + KL_TOKEN_MAX_LIFETIME_S + 1));
    assert_int_equal(check(o, NOW), KL_CLAIMS_LIFETIME);
    json_decref(o);
}

/* An MSAL-shaped assertion. */
static json_t *assertion(int64_t nbf, int64_t exp)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:I, s:s}", "aud", TOKEN_EP, "exp", (json_int_t)exp,
                     "iss", APPID, "jti", "6f0b2c1e-9a4d-4c6b-8f3e-2d1c0b9a8f7e", "nbf",
                     (json_int_t)nbf, "sub", APPID);
}

static void test_assertion_valid(void **state)
{
    (void)state;
    json_t *a = assertion(NOW, NOW + 600);
    kl_claims_assertion out;
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW + 5, &out), KL_CLAIMS_OK);
    assert_string_equal(out.jti, "6f0b2c1e-9a4d-4c6b-8f3e-2d1c0b9a8f7e");
    assert_int_equal(out.exp, NOW + 600);
    /* aud as an array containing the endpoint (RFC 7523 allows it). */
    json_object_set_new(a, "aud", json_pack("[s,s]", "https://other", TOKEN_EP));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_OK);
    json_decref(a);
}

static void test_assertion_refusals(void **state)
{
    (void)state;
    json_t *a = assertion(NOW, NOW + KL_ASSERTION_MAX_LIFETIME_S + 1);
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_LIFETIME);
    json_decref(a);
    a = assertion(NOW, NOW + 600);
    assert_int_equal(kl_claims_check_assertion(a, "someone-else", TOKEN_EP, NOW, NULL),
                     KL_CLAIMS_SUBJECT);
    assert_int_equal(
        kl_claims_check_assertion(a, APPID, "https://login.example/x/token", NOW, NULL),
        KL_CLAIMS_AUDIENCE);
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW + 600 + 300, NULL),
                     KL_CLAIMS_EXPIRED);
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW - 301, NULL),
                     KL_CLAIMS_NOT_YET_VALID);
    json_object_set_new(a, "sub", json_string("x"));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_SUBJECT);
    json_decref(a);
    /* No nbf and no iat: the lifetime cannot be bounded. */
    a = assertion(NOW, NOW + 600);
    json_object_del(a, "nbf");
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_MISSING);
    /* With iat instead it passes, and iat bounds the lifetime. */
    json_object_set_new(a, "iat", json_integer(NOW));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_OK);
    json_object_set_new(a, "iat", json_integer(NOW - 100));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_LIFETIME);
    json_decref(a);
    /* jti: missing, empty, too long. */
    a = assertion(NOW, NOW + 600);
    json_object_del(a, "jti");
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_MISSING);
    json_object_set_new(a, "jti", json_string(""));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_BAD_VALUE);
    char *big = malloc(KL_MAX_JTI + 2);
    memset(big, 'j', KL_MAX_JTI + 1);
    big[KL_MAX_JTI + 1] = '\0';
    json_object_set_new(a, "jti", json_string(big));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_BAD_VALUE);
    big[KL_MAX_JTI] = '\0';
    json_object_set_new(a, "jti", json_string(big));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_OK);
    free(big);
    json_object_set_new(a, "aud", json_integer(1));
    assert_int_equal(kl_claims_check_assertion(a, APPID, TOKEN_EP, NOW, NULL), KL_CLAIMS_BAD_TYPE);
    json_decref(a);
}

/* The claim set as text: a '"' or '\\' in a value is escaped (the text parses back to the
 * same value), a value that is not printable ASCII is refused, and a buffer too small
 * says so. */
static void test_write_text(void **state)
{
    (void)state;
    kl_claims_access in = {.aud = "https://x.example/a\"b\\c",
                           .iss = ISS,
                           .tid = TID,
                           .appid = APPID,
                           .oid = OID,
                           .appidacr = 1,
                           .now = NOW};
    char buf[KL_MAX_ACCESS_CLAIMS];
    size_t n = 0;
    assert_int_equal(kl_claims_write_access(&in, buf, sizeof(buf), &n), 0);
    json_error_t jerr;
    json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "aud")), in.aud);
    assert_int_equal(json_integer_value(json_object_get(o, "exp")), NOW + 3600);
    assert_memory_equal(buf, "{\"aud\":", 7); /* Entra's member order, aud first */
    json_decref(o);
    assert_int_equal(kl_claims_write_access(&in, buf, 40, &n), KL_ETOOBIG);
    in.aud = "https://x.example/\xc3\xa9";
    assert_int_equal(kl_claims_write_access(&in, buf, sizeof(buf), &n), KL_EINVAL);
    in.aud = "https://x.example/\n";
    assert_int_equal(kl_claims_write_access(&in, buf, sizeof(buf), &n), KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_shape),
        cmocka_unit_test(test_build_refuses),
        cmocka_unit_test(test_build_mirid),
        cmocka_unit_test(test_write_text),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_upn),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_issuer_and_tenant),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_assertion_valid),
        cmocka_unit_test(test_assertion_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
