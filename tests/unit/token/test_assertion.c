/* Client assertions signed by registered certificates, with certificates made by OpenSSL
 * in the test: RS256 + x5t and PS256 + x5t#S256 (what ClientCertificateCredential
 * sends) accepted, x5c matched against registered certificates, and every refusal with
 * its reason and AADSTS code; the jti is spent only by an otherwise valid assertion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "certgen.h"
#include "common/err.h"
#include "token/assertion.h"

#define CLIENT "6f1f3c3e-6c1b-4b7e-9d55-0a0d2a4c9e11"
#define ENDPOINT "https://127.0.0.1:8443/7c2d0a4e-2b1f-4c3d-9e8f-1a2b3c4d5e6f/oauth2/v2.0/token"

typedef struct fx {
    test_cert a, b, other; /* a and b registered; other not */
    kl_jws_key *ka, *kb;
    kl_client_cert certs[2];
    int64_t now;
    int uses;          /* calls of use_jti */
    int use_result;    /* what use_jti answers */
    char last_jti[64]; /* what it was asked to spend */
    int64_t last_exp;
} fx;

static int use_jti(void *ctx, const char *client_id, const char *jti, int64_t exp)
{
    fx *f = ctx;
    assert_string_equal(client_id, CLIENT);
    f->uses++;
    snprintf(f->last_jti, sizeof(f->last_jti), "%s", jti);
    f->last_exp = exp;
    return f->use_result;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_int_equal(test_cert_make(&f->a, 2048, -3600, 86400), 0);
    assert_int_equal(test_cert_make(&f->b, 2048, -3600, 86400), 0);
    assert_int_equal(test_cert_make(&f->other, 2048, -3600, 86400), 0);
    assert_int_equal(
        kl_jws_key_from_cert_der(f->a.der, f->a.der_len, KL_JWS_RS256 | KL_JWS_PS256, &f->ka), 0);
    assert_int_equal(
        kl_jws_key_from_cert_der(f->b.der, f->b.der_len, KL_JWS_RS256 | KL_JWS_PS256, &f->kb), 0);
    f->now = (int64_t)time(NULL);
    f->certs[0] =
        (kl_client_cert){f->ka, f->a.der, f->a.der_len, f->now - 3600, f->now + 86400, "key-a"};
    f->certs[1] =
        (kl_client_cert){f->kb, f->b.der, f->b.der_len, f->now - 3600, f->now + 86400, "key-b"};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kl_jws_key_free(f->ka);
    kl_jws_key_free(f->kb);
    test_cert_free(&f->a);
    test_cert_free(&f->b);
    test_cert_free(&f->other);
    free(f);
    return 0;
}

/* MSAL's claims: exp = now + 600, nbf = iat = now. */
static json_t *claims(const fx *f, const char *aud, const char *iss, const char *sub, int64_t life,
                      const char *jti)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "aud", aud, "iss", iss, "sub", sub,
                     "exp", (json_int_t)(f->now + life), "nbf", (json_int_t)f->now, "iat",
                     (json_int_t)f->now, "jti", jti);
}

static kl_assertion_reason check(fx *f, const char *tok)
{
    const kl_client_cert *used = NULL;
    kl_assertion_reason r = kl_assertion_check_cert(CLIENT, tok, strlen(tok), ENDPOINT, f->certs, 2,
                                                    f->now, use_jti, f, &used);
    if (r == KL_ASSERTION_OK)
        assert_non_null(used);
    else
        assert_null(used);
    return r;
}

/* Signs with key under header h and the standard claims (jti "j-1"); returns the check. */
static kl_assertion_reason sign_check(fx *f, EVP_PKEY *key, bool pss, json_t *h)
{
    json_t *c = claims(f, ENDPOINT, CLIENT, CLIENT, 600, "j-1");
    char *tok = test_sign(key, pss, h, c);
    kl_assertion_reason r = check(f, tok);
    free(tok);
    json_decref(c);
    json_decref(h);
    return r;
}

static void test_accepted_forms(void **state)
{
    fx *f = *state;
    /* PS256 with x5t#S256: ClientCertificateCredential. */
    assert_int_equal(sign_check(f, f->b.pkey, true,
                                json_pack("{s:s, s:s, s:s}", "alg", "PS256", "typ", "JWT",
                                          "x5t#S256", f->b.x5t_s256)),
                     KL_ASSERTION_OK);
    assert_int_equal(f->uses, 1);
    assert_string_equal(f->last_jti, "j-1");
    assert_int_equal(f->last_exp, f->now + 600 + KL_TOKEN_CLOCK_SKEW_S); /* exp + skew */
    /* RS256 with x5t (SHA-1). */
    assert_int_equal(
        sign_check(f, f->a.pkey, false,
                   json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "x5t", f->a.x5t)),
        KL_ASSERTION_OK);
    /* With x5c (sendCertificateChain), alone or with a thumbprint of the same cert. */
    assert_int_equal(
        sign_check(f, f->a.pkey, true, json_pack("{s:s, s:[s]}", "alg", "PS256", "x5c", f->a.b64)),
        KL_ASSERTION_OK);
    assert_int_equal(sign_check(f, f->b.pkey, true,
                                json_pack("{s:s, s:s, s:[s]}", "alg", "PS256", "x5t#S256",
                                          f->b.x5t_s256, "x5c", f->b.b64)),
                     KL_ASSERTION_OK);
    const kl_client_cert *used = NULL;
    json_t *h = json_pack("{s:s, s:s}", "alg", "PS256", "x5t#S256", f->b.x5t_s256);
    json_t *c = claims(f, ENDPOINT, CLIENT, CLIENT, 600, "j-2");
    char *tok = test_sign(f->b.pkey, true, h, c);
    assert_int_equal(kl_assertion_check_cert(CLIENT, tok, strlen(tok), ENDPOINT, f->certs, 2,
                                             f->now, use_jti, f, &used),
                     KL_ASSERTION_OK);
    assert_ptr_equal(used, &f->certs[1]);
    free(tok);
    json_decref(h);
    json_decref(c);
}

static void test_certificate_refusals(void **state)
{
    fx *f = *state;
    /* Not registered: by thumbprint or by x5c. */
    assert_int_equal(
        sign_check(f, f->other.pkey, true,
                   json_pack("{s:s, s:s}", "alg", "PS256", "x5t#S256", f->other.x5t_s256)),
        KL_ASSERTION_NO_CERT);
    assert_int_equal(sign_check(f, f->other.pkey, true,
                                json_pack("{s:s, s:[s]}", "alg", "PS256", "x5c", f->other.b64)),
                     KL_ASSERTION_NO_CERT);
    /* No name at all; names that disagree. */
    assert_int_equal(sign_check(f, f->a.pkey, false, json_pack("{s:s}", "alg", "RS256")),
                     KL_ASSERTION_NO_CERT);
    assert_int_equal(sign_check(f, f->a.pkey, false,
                                json_pack("{s:s, s:s, s:s}", "alg", "RS256", "x5t", f->a.x5t,
                                          "x5t#S256", f->b.x5t_s256)),
                     KL_ASSERTION_NO_CERT);
    assert_int_equal(sign_check(f, f->a.pkey, true,
                                json_pack("{s:s, s:s, s:[s]}", "alg", "PS256", "x5t#S256",
                                          f->a.x5t_s256, "x5c", f->b.b64)),
                     KL_ASSERTION_NO_CERT);
    /* A registered thumbprint, signed by another key. */
    assert_int_equal(sign_check(f, f->other.pkey, true,
                                json_pack("{s:s, s:s}", "alg", "PS256", "x5t#S256", f->a.x5t_s256)),
                     KL_ASSERTION_BAD_SIGNATURE);
    /* PKCS#1 v1.5 bytes labelled PS256, and PSS labelled RS256. */
    assert_int_equal(sign_check(f, f->a.pkey, false,
                                json_pack("{s:s, s:s}", "alg", "PS256", "x5t#S256", f->a.x5t_s256)),
                     KL_ASSERTION_BAD_SIGNATURE);
    assert_int_equal(
        sign_check(f, f->a.pkey, true, json_pack("{s:s, s:s}", "alg", "RS256", "x5t", f->a.x5t)),
        KL_ASSERTION_BAD_SIGNATURE);
    /* Other algorithms are not certificate signatures at all. */
    assert_int_equal(
        sign_check(f, f->a.pkey, false, json_pack("{s:s, s:s}", "alg", "ES256", "x5t", f->a.x5t)),
        KL_ASSERTION_MALFORMED);
    assert_int_equal(
        sign_check(f, f->a.pkey, false, json_pack("{s:s, s:s}", "alg", "HS256", "x5t", f->a.x5t)),
        KL_ASSERTION_MALFORMED);
    assert_int_equal(
        sign_check(f, f->a.pkey, false, json_pack("{s:s, s:s}", "alg", "none", "x5t", f->a.x5t)),
        KL_ASSERTION_MALFORMED);
    /* Outside the certificate's dates. */
    f->certs[0].not_after = f->now - 1;
    assert_int_equal(
        sign_check(f, f->a.pkey, false, json_pack("{s:s, s:s}", "alg", "RS256", "x5t", f->a.x5t)),
        KL_ASSERTION_CERT_EXPIRED);
    f->certs[0].not_after = f->now + 86400;
    f->certs[0].not_before = f->now + 1;
    assert_int_equal(
        sign_check(f, f->a.pkey, false, json_pack("{s:s, s:s}", "alg", "RS256", "x5t", f->a.x5t)),
        KL_ASSERTION_CERT_EXPIRED);
    assert_int_equal(f->uses, 0); /* nothing above spent a jti */
}

static kl_assertion_reason claims_check(fx *f, json_t *c)
{
    json_t *h = json_pack("{s:s, s:s}", "alg", "PS256", "x5t#S256", f->a.x5t_s256);
    char *tok = test_sign(f->a.pkey, true, h, c);
    kl_assertion_reason r = check(f, tok);
    free(tok);
    json_decref(h);
    json_decref(c);
    return r;
}

static void test_claim_refusals(void **state)
{
    fx *f = *state;
    assert_int_equal(
        claims_check(f, claims(f, "https://elsewhere/token", CLIENT, CLIENT, 600, "j")),
        KL_ASSERTION_AUDIENCE);
    assert_int_equal(claims_check(f, claims(f, ENDPOINT, "someone-else", CLIENT, 600, "j")),
                     KL_ASSERTION_SUBJECT);
    assert_int_equal(claims_check(f, claims(f, ENDPOINT, CLIENT, "someone-else", 600, "j")),
                     KL_ASSERTION_SUBJECT);
    assert_int_equal(claims_check(f, claims(f, ENDPOINT, CLIENT, CLIENT, 601, "j")),
                     KL_ASSERTION_LIFETIME);
    json_t *old = claims(f, ENDPOINT, CLIENT, CLIENT, 600, "j");
    json_object_set_new(old, "exp", json_integer(f->now - KL_TOKEN_CLOCK_SKEW_S - 1));
    json_object_set_new(old, "nbf", json_integer(f->now - KL_TOKEN_CLOCK_SKEW_S - 500));
    json_object_set_new(old, "iat", json_integer(f->now - KL_TOKEN_CLOCK_SKEW_S - 500));
    assert_int_equal(claims_check(f, old), KL_ASSERTION_LIFETIME);
    json_t *nojti = claims(f, ENDPOINT, CLIENT, CLIENT, 600, "j");
    json_object_del(nojti, "jti");
    assert_int_equal(claims_check(f, nojti), KL_ASSERTION_MALFORMED);
    assert_int_equal(f->uses, 0);
    const char *junk = "not.a.jwt";
    assert_int_equal(check(f, junk), KL_ASSERTION_MALFORMED);
    assert_int_equal(check(f, ""), KL_ASSERTION_MALFORMED);
}

static void test_jti(void **state)
{
    fx *f = *state;
    f->use_result = KL_EEXIST;
    assert_int_equal(claims_check(f, claims(f, ENDPOINT, CLIENT, CLIENT, 600, "seen")),
                     KL_ASSERTION_REPLAYED);
    f->use_result = KL_EUNAVAIL;
    assert_int_equal(claims_check(f, claims(f, ENDPOINT, CLIENT, CLIENT, 600, "later")),
                     KL_ASSERTION_UNAVAILABLE);
    assert_int_equal(f->uses, 2);
}

static void test_codes(void **state)
{
    (void)state;
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_NO_CERT), 700027);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_BAD_SIGNATURE), 700027);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_AUDIENCE), 700023);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_SUBJECT), 700021);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_LIFETIME), 700024);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_MALFORMED), 50027);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_REPLAYED), 50013);
    assert_string_equal(kl_assertion_reason_str(KL_ASSERTION_REPLAYED), "replayed");
    assert_string_equal(kl_assertion_reason_str(KL_ASSERTION_REASON_COUNT), "unknown");
}

/* ---- federated credentials: an external issuer's tokens ---- */

#define ISSUER "https://oidc.cluster.example"
#define SUBJECT "system:serviceaccount:prod:api"
#define AUD "api://AzureADTokenExchange"

typedef struct issuer_keys {
    const kl_jws_key *key; /* the issuer's only key, kid "k1" */
    int calls;
} issuer_keys;

static const kl_jws_key *issuer_key(void *ctx, const char *issuer, const char *kid)
{
    issuer_keys *k = ctx;
    k->calls++;
    return (strcmp(issuer, ISSUER) == 0 && strcmp(kid, "k1") == 0) ? k->key : NULL;
}

static kl_assertion_reason fed_check(fx *f, EVP_PKEY *signer, const char *alg, const char *kid,
                                     json_t *claims_obj)
{
    kl_jws_key *ik = NULL;
    assert_int_equal(kl_jws_key_from_cert_der(f->a.der, f->a.der_len, KL_JWS_RS256, &ik), 0);
    issuer_keys keys = {.key = ik};
    static const char *const auds[] = {AUD};
    kl_federated_cred fics[] = {
        {"fic-ci", "https://ci.example", "repo:x", auds, 1},
        {"fic-k8s", ISSUER, SUBJECT, auds, 1},
    };
    json_t *h =
        kid ? json_pack("{s:s, s:s}", "alg", alg, "kid", kid) : json_pack("{s:s}", "alg", alg);
    char *tok = test_sign(signer, strcmp(alg, "PS256") == 0, h, claims_obj);
    const kl_federated_cred *used = NULL;
    kl_assertion_reason r = kl_assertion_check_federated(CLIENT, tok, strlen(tok), fics, 2, f->now,
                                                         issuer_key, &keys, &used);
    if (r == KL_ASSERTION_OK)
        assert_ptr_equal(used, &fics[1]);
    else
        assert_null(used);
    free(tok);
    json_decref(h);
    json_decref(claims_obj);
    kl_jws_key_free(ik);
    return r;
}

static json_t *k8s_claims(const fx *f, const char *iss, const char *sub, const char *aud,
                          int64_t nbf, int64_t exp)
{
    return json_pack("{s:s, s:s, s:[s], s:I, s:I, s:I}", "iss", iss, "sub", sub, "aud", aud, "exp",
                     (json_int_t)(f->now + exp), "nbf", (json_int_t)(f->now + nbf), "iat",
                     (json_int_t)(f->now + nbf));
}

static void test_federated(void **state)
{
    fx *f = *state;
    EVP_PKEY *k = f->a.pkey;
    assert_int_equal(fed_check(f, k, "RS256", "k1", k8s_claims(f, ISSUER, SUBJECT, AUD, -60, 3600)),
                     KL_ASSERTION_OK);
    /* Presented again: fine (no jti rule for federated tokens). */
    assert_int_equal(fed_check(f, k, "RS256", "k1", k8s_claims(f, ISSUER, SUBJECT, AUD, -60, 3600)),
                     KL_ASSERTION_OK);
    assert_int_equal(fed_check(f, k, "RS256", "k1",
                               k8s_claims(f, "https://evil.example", SUBJECT, AUD, -60, 3600)),
                     KL_ASSERTION_FED_ISSUER);
    assert_int_equal(
        fed_check(f, k, "RS256", "k1", k8s_claims(f, ISSUER, SUBJECT, "other", -60, 3600)),
        KL_ASSERTION_FED_AUDIENCE);
    assert_int_equal(
        fed_check(f, k, "RS256", "k1",
                  k8s_claims(f, ISSUER, "system:serviceaccount:dev:api", AUD, -60, 3600)),
        KL_ASSERTION_FED_SUBJECT);
    assert_int_equal(fed_check(f, k, "RS256", "k2", k8s_claims(f, ISSUER, SUBJECT, AUD, -60, 3600)),
                     KL_ASSERTION_KEY_UNKNOWN);
    assert_int_equal(
        fed_check(f, f->other.pkey, "RS256", "k1", k8s_claims(f, ISSUER, SUBJECT, AUD, -60, 3600)),
        KL_ASSERTION_BAD_SIGNATURE);
    /* The algorithm is the key's: PS256 against an RS256 key is refused. */
    assert_int_equal(fed_check(f, k, "PS256", "k1", k8s_claims(f, ISSUER, SUBJECT, AUD, -60, 3600)),
                     KL_ASSERTION_BAD_SIGNATURE);
    assert_int_equal(
        fed_check(f, k, "RS256", "k1",
                  k8s_claims(f, ISSUER, SUBJECT, AUD, -7200, -KL_TOKEN_CLOCK_SKEW_S - 1)),
        KL_ASSERTION_LIFETIME);
    assert_int_equal(fed_check(f, k, "RS256", "k1",
                               k8s_claims(f, ISSUER, SUBJECT, AUD, -60, KL_TOKEN_MAX_LIFETIME_S)),
                     KL_ASSERTION_LIFETIME);
    assert_int_equal(fed_check(f, k, "RS256", NULL, k8s_claims(f, ISSUER, SUBJECT, AUD, -60, 3600)),
                     KL_ASSERTION_MALFORMED);
    assert_int_equal(fed_check(f, k, "none", "k1", k8s_claims(f, ISSUER, SUBJECT, AUD, -60, 3600)),
                     KL_ASSERTION_MALFORMED);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_FED_ISSUER), 700211);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_FED_AUDIENCE), 700212);
    assert_int_equal(kl_assertion_reason_aadsts(KL_ASSERTION_FED_SUBJECT), 700213);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepted_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jti, setup, teardown),
        cmocka_unit_test(test_codes),
        cmocka_unit_test_setup_teardown(test_federated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
