/* JWS: round trips for RS256 and ES256, every hostile token of the gateway's list with its
 * exact refusal reason, client assertions (PS256/RS256) made with OpenSSL directly and
 * checked against a certificate, JWK export and the RFC 7515 / RFC 7638 known answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "crypto/jws.h"

#define B64CAP(n) (4 * (((n) + 2) / 3) + 1)

typedef struct fixture {
    kl_jws_key *rsa; /* RS256 signing key */
    kl_jws_key *ec;  /* ES256 signing key */
    kl_jws_keyring *ring;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(kl_jws_key_generate(KL_JWS_RS256, &f->rsa), 0);
    assert_int_equal(kl_jws_key_generate(KL_JWS_ES256, &f->ec), 0);
    assert_int_equal(kl_jws_keyring_new(7, &f->ring), 0);
    assert_int_equal(kl_jws_keyring_add(f->ring, f->rsa), 0);
    assert_int_equal(kl_jws_keyring_add(f->ring, f->ec), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_jws_keyring_free(f->ring);
    kl_jws_key_free(f->rsa);
    kl_jws_key_free(f->ec);
    free(f);
    return 0;
}

/* b64url(header) "." b64url(payload) "." b64url(sig), where sig comes from sign() over
 * the first two segments (if sign is set) or is sig[0..siglen). Caller frees. */
static char *assemble(const char *header, const void *payload, size_t plen, const kl_jws_signer *s,
                      const unsigned char *sig, size_t siglen)
{
    size_t hl = strlen(header);
    size_t cap = B64CAP(hl) + B64CAP(plen) + B64CAP(KL_MAX_JWS_SIG) + 4;
    char *t = malloc(cap);
    assert_non_null(t);
    int a = kl_b64url_encode(header, hl, t, cap);
    assert_true(a > 0);
    t[a] = '.';
    int b = kl_b64url_encode(payload, plen, t + a + 1, cap - (size_t)a - 1);
    assert_true(b >= 0);
    size_t off = (size_t)a + 1 + (size_t)b;
    unsigned char buf[KL_MAX_JWS_SIG];
    if (s) {
        assert_int_equal(s->sign(s->ctx, t, off, buf, &siglen), 0);
        sig = buf;
    }
    t[off] = '.';
    assert_true(kl_b64url_encode(sig, siglen, t + off + 1, cap - off - 1) > 0);
    return t;
}

static kl_jws_reason verify_str(const fixture *f, const char *tok)
{
    kl_jws_verified v;
    kl_jws_reason r = kl_jws_verify(f->ring, tok, strlen(tok), &v);
    kl_jws_verified_clear(&v);
    return r;
}

static char *sign_payload(const kl_jws_key *k, kl_jws_alg alg, const char *payload)
{
    kl_jws_signer s;
    char *tok = NULL;
    assert_int_equal(kl_jws_key_signer(k, alg, &s), 0);
    assert_int_equal(kl_jws_sign_compact(&s, payload, strlen(payload), &tok), 0);
    return tok;
}

static void round_trip(const fixture *f, const kl_jws_key *k, kl_jws_alg alg)
{
    const char *payload = "{\"aud\":\"https://cognitiveservices.azure.com\",\"n\":1}";
    char *tok = sign_payload(k, alg, payload);
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify(f->ring, tok, strlen(tok), &v), KL_JWS_OK);
    assert_int_equal(v.alg, alg);
    assert_string_equal(v.kid, kl_jws_key_kid(k));
    assert_string_equal(json_string_value(json_object_get(v.header, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(v.header, "alg")), kl_jws_alg_name(alg));
    assert_string_equal(json_string_value(json_object_get(v.header, "kid")), kl_jws_key_kid(k));
    assert_string_equal(json_string_value(json_object_get(v.header, "x5t")), kl_jws_key_kid(k));
    assert_int_equal(json_integer_value(json_object_get(v.payload, "n")), 1);
    kl_jws_verified_clear(&v);
    assert_null(v.payload);
    /* Every single-character change of the signature segment is refused. */
    char *dot = strrchr(tok, '.');
    char *p = dot + 1 + strlen(dot + 1) / 2;
    *p = *p == 'A' ? 'B' : 'A';
    assert_int_equal(verify_str(f, tok), KL_JWS_BAD_SIGNATURE);
    free(tok);
}

static void test_round_trip_rs256(void **state)
{
    fixture *f = *state;
    assert_int_equal(strlen(kl_jws_key_kid(f->rsa)), 43);
    round_trip(f, f->rsa, KL_JWS_RS256);
}

static void test_round_trip_es256(void **state)
{
    fixture *f = *state;
    round_trip(f, f->ec, KL_JWS_ES256);
}

/* A header naming our RSA key, with alg replaced. */
static char *header_with(const fixture *f, const char *alg)
{
    char *h = malloc(256);
    assert_non_null(h);
    snprintf(h, 256, "{\"typ\":\"JWT\",\"alg\":\"%s\",\"kid\":\"%s\"}", alg,
             kl_jws_key_kid(f->rsa));
    return h;
}

static void test_alg_none(void **state)
{
    fixture *f = *state;
    char *h = header_with(f, "none");
    /* An empty signature segment is not compact; with any signature it is alg none. */
    char *t = assemble(h, "{}", 2, NULL, (const unsigned char *)"x", 1);
    assert_int_equal(verify_str(f, t), KL_JWS_ALG_NONE);
    free(t);
    free(h);
    h = header_with(f, "nOnE");
    t = assemble(h, "{}", 2, NULL, (const unsigned char *)"x", 1);
    assert_int_equal(verify_str(f, t), KL_JWS_ALG_NONE);
    free(t);
    free(h);
}

/* The classic key-confusion attack: HS256 keyed with our public key as published in the
 * JWKS document (all an attacker has). */
static void test_hs256_with_public_key(void **state)
{
    fixture *f = *state;
    json_t *jwk = kl_jws_key_public_jwk(f->rsa);
    char *pub = json_dumps(jwk, JSON_COMPACT);
    assert_non_null(pub);
    json_decref(jwk);
    char *h = header_with(f, "HS256");
    char *t = assemble(h, "{}", 2, NULL, (const unsigned char *)"x", 1);
    char *dot = strrchr(t, '.');
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), pub, (int)strlen(pub), (const unsigned char *)t, (size_t)(dot - t), mac,
         &maclen);
    char *t2 = assemble(h, "{}", 2, NULL, mac, maclen);
    assert_int_equal(verify_str(f, t2), KL_JWS_ALG_HMAC);
    free(pub);
    free(t2);
    free(t);
    free(h);
}

static void test_alg_unsupported_and_mismatch(void **state)
{
    fixture *f = *state;
    const char *payload = "{}";
    /* A genuine RS256 signature presented as PS256 or ES256: the key decides. */
    kl_jws_signer s;
    assert_int_equal(kl_jws_key_signer(f->rsa, KL_JWS_RS256, &s), 0);
    char *h = header_with(f, "PS256");
    char *t = assemble(h, payload, 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_ALG_MISMATCH);
    free(t);
    free(h);
    h = header_with(f, "ES256");
    t = assemble(h, payload, 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_ALG_MISMATCH);
    free(t);
    free(h);
    h = header_with(f, "RS512");
    t = assemble(h, payload, 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_ALG_UNSUPPORTED);
    free(t);
    free(h);
    t = assemble("{\"kid\":\"abc\"}", payload, 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_ALG_MISSING);
    free(t);
    /* An empty payload would make an empty segment: refused when signing. */
    char *none = NULL;
    assert_int_equal(kl_jws_sign_compact(&s, "", 0, &none), KL_EINVAL);
    assert_null(none);
    /* A key cannot sign with an algorithm it does not allow. */
    assert_int_equal(kl_jws_key_signer(f->rsa, KL_JWS_ES256, &s), KL_EINVAL);
}

static void test_kid(void **state)
{
    fixture *f = *state;
    kl_jws_signer s;
    assert_int_equal(kl_jws_key_signer(f->rsa, KL_JWS_RS256, &s), 0);
    char *t = assemble("{\"alg\":\"RS256\",\"kid\":\"nosuchkey\"}", "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_KID_UNKNOWN);
    free(t);
    t = assemble("{\"alg\":\"RS256\",\"kid\":\"../../etc/passwd\"}", "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_KID_BAD);
    free(t);
    t = assemble("{\"alg\":\"RS256\",\"kid\":\"\"}", "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_KID_BAD);
    free(t);
    t = assemble("{\"alg\":\"RS256\",\"kid\":7}", "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_KID_MISSING);
    free(t);
    t = assemble("{\"alg\":\"RS256\"}", "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_KID_MISSING);
    free(t);
    char h[512];
    char longkid[KL_MAX_JWS_KID + 2];
    memset(longkid, 'a', sizeof(longkid) - 1);
    longkid[sizeof(longkid) - 1] = '\0';
    snprintf(h, sizeof(h), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", longkid);
    t = assemble(h, "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_KID_BAD);
    free(t);
}

static void test_crit(void **state)
{
    fixture *f = *state;
    kl_jws_signer s;
    char h[256];
    assert_int_equal(kl_jws_key_signer(f->rsa, KL_JWS_RS256, &s), 0);
    snprintf(h, sizeof(h), "{\"alg\":\"RS256\",\"kid\":\"%s\",\"crit\":[\"exp\"],\"exp\":1}",
             kl_jws_key_kid(f->rsa));
    char *t = assemble(h, "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_CRIT);
    free(t);
}

static void test_shape(void **state)
{
    fixture *f = *state;
    char *tok = sign_payload(f->rsa, KL_JWS_RS256, "{\"a\":1}");
    size_t n = strlen(tok);
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify(f->ring, tok, 0, &v), KL_JWS_EMPTY);
    /* Truncated: without the signature, inside the payload, and short of 6 characters
     * (a whole number of base64 quanta, so only the signature length is wrong). */
    char *dot = strrchr(tok, '.');
    assert_int_equal(kl_jws_verify(f->ring, tok, (size_t)(dot - tok) + 1, &v), KL_JWS_NOT_COMPACT);
    assert_int_equal(kl_jws_verify(f->ring, tok, (size_t)(dot - tok), &v), KL_JWS_NOT_COMPACT);
    assert_int_equal(kl_jws_verify(f->ring, tok, n - 6, &v), KL_JWS_BAD_SIGNATURE);
    assert_int_equal(kl_jws_verify(f->ring, tok, n, &v), KL_JWS_OK);
    kl_jws_verified_clear(&v);
    /* Four segments, and an empty middle one. */
    char *four = malloc(n + 3);
    assert_non_null(four);
    memcpy(four, tok, n);
    memcpy(four + n, ".A", 3);
    assert_int_equal(verify_str(f, four), KL_JWS_NOT_COMPACT);
    free(four);
    assert_int_equal(verify_str(f, "a..b"), KL_JWS_NOT_COMPACT);
    /* Padding and the standard alphabet are not base64url. */
    char *pad = malloc(n + 2);
    assert_non_null(pad);
    memcpy(pad, tok, n);
    memcpy(pad + n, "=", 2);
    assert_int_equal(verify_str(f, pad), KL_JWS_BAD_BASE64);
    pad[1] = '+';
    pad[n] = '\0';
    assert_int_equal(verify_str(f, pad), KL_JWS_BAD_BASE64);
    free(pad);
    free(tok);
}

static void test_oversized(void **state)
{
    fixture *f = *state;
    /* 10 KB of base64: no dots. */
    size_t n = 10 * 1024;
    char *blob = malloc(KL_MAX_TOKEN_BYTES + 2);
    assert_non_null(blob);
    memset(blob, 'A', KL_MAX_TOKEN_BYTES + 1);
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify(f->ring, blob, n, &v), KL_JWS_NOT_COMPACT);
    /* At the limit it is judged on its shape; one byte more is refused unread. */
    blob[100] = '.';
    blob[200] = '.';
    assert_int_equal(kl_jws_verify(f->ring, blob, KL_MAX_TOKEN_BYTES, &v), KL_JWS_BAD_SIGNATURE);
    assert_int_equal(kl_jws_verify(f->ring, blob, KL_MAX_TOKEN_BYTES + 1, &v), KL_JWS_TOO_BIG);
    free(blob);
}

static void test_json(void **state)
{
    fixture *f = *state;
    kl_jws_signer s;
    assert_int_equal(kl_jws_key_signer(f->rsa, KL_JWS_RS256, &s), 0);
    char h[256];
    /* Header: not JSON, not an object, a duplicate member (alg twice: the second would
     * win in a lenient parser). */
    char *t = assemble("{\"alg\":\"RS256\"", "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_BAD_JSON);
    free(t);
    t = assemble("[\"RS256\"]", "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_BAD_JSON);
    free(t);
    snprintf(h, sizeof(h), "{\"alg\":\"none\",\"kid\":\"%s\",\"alg\":\"RS256\"}",
             kl_jws_key_kid(f->rsa));
    t = assemble(h, "{}", 2, &s, NULL, 0);
    assert_int_equal(verify_str(f, t), KL_JWS_DUPLICATE_MEMBER);
    free(t);
    /* Payload, correctly signed by our key: not JSON, duplicate claims (top level and
     * nested), an array, a NUL inside a string. */
    char *tok = sign_payload(f->rsa, KL_JWS_RS256, "not json");
    assert_int_equal(verify_str(f, tok), KL_JWS_BAD_JSON);
    free(tok);
    tok = sign_payload(f->rsa, KL_JWS_RS256, "{\"aud\":\"a\",\"oid\":\"x\",\"aud\":\"b\"}");
    assert_int_equal(verify_str(f, tok), KL_JWS_DUPLICATE_MEMBER);
    free(tok);
    tok = sign_payload(f->rsa, KL_JWS_RS256, "{\"x\":{\"a\":1,\"a\":2}}");
    assert_int_equal(verify_str(f, tok), KL_JWS_DUPLICATE_MEMBER);
    free(tok);
    tok = sign_payload(f->rsa, KL_JWS_RS256, "[1]");
    assert_int_equal(verify_str(f, tok), KL_JWS_BAD_JSON);
    free(tok);
    tok = sign_payload(f->rsa, KL_JWS_RS256, "{\"oid\":\"a\\u0000b\"}");
    assert_int_equal(verify_str(f, tok), KL_JWS_BAD_JSON);
    free(tok);
}

static void test_other_key(void **state)
{
    fixture *f = *state;
    /* Same kid as ours, another key: the signature does not verify. */
    kl_jws_key *other = NULL;
    assert_int_equal(kl_jws_key_generate(KL_JWS_RS256, &other), 0);
    kl_jws_signer s;
    assert_int_equal(kl_jws_key_signer(other, KL_JWS_RS256, &s), 0);
    s.kid = kl_jws_key_kid(f->rsa);
    char *tok = NULL;
    assert_int_equal(kl_jws_sign_compact(&s, "{}", 2, &tok), 0);
    assert_int_equal(verify_str(f, tok), KL_JWS_BAD_SIGNATURE);
    free(tok);
    /* ES256 with a wrong-length signature. */
    char h[256];
    snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kl_jws_key_kid(f->ec));
    unsigned char sig[65] = {1};
    char *t = assemble(h, "{}", 2, NULL, sig, sizeof(sig));
    assert_int_equal(verify_str(f, t), KL_JWS_BAD_SIGNATURE);
    free(t);
    kl_jws_key_free(other);
}

static void test_keyring(void **state)
{
    fixture *f = *state;
    assert_int_equal(kl_jws_keyring_generation(f->ring), 7);
    assert_int_equal(kl_jws_keyring_count(f->ring), 2);
    assert_int_equal(kl_jws_keyring_add(f->ring, f->rsa), KL_EEXIST);
    kl_jws_keyring *r = NULL;
    assert_int_equal(kl_jws_keyring_new(1, &r), 0);
    kl_jws_key *k = NULL;
    assert_int_equal(kl_jws_key_generate(KL_JWS_ES256, &k), 0);
    assert_int_equal(kl_jws_keyring_add(r, k), 0);
    /* The ring keeps its own reference; and it never signs. */
    char *tok = sign_payload(k, KL_JWS_ES256, "{}");
    kl_jws_key_free(k);
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify(r, tok, strlen(tok), &v), KL_JWS_OK);
    kl_jws_verified_clear(&v);
    kl_jws_signer s;
    assert_int_equal(kl_jws_key_signer(kl_jws_keyring_key(r, 0), KL_JWS_ES256, &s), KL_EINVAL);
    free(tok);
    kl_jws_keyring_free(r);
}

static void test_private_pem_round_trip(void **state)
{
    fixture *f = *state;
    char *pem = NULL;
    size_t n = 0;
    assert_int_equal(kl_jws_key_private_pem(f->ec, &pem, &n), 0);
    kl_jws_key *k = NULL;
    assert_int_equal(kl_jws_key_from_pem(pem, n, KL_JWS_ES256, &k), 0);
    assert_string_equal(kl_jws_key_kid(k), kl_jws_key_kid(f->ec));
    /* The wrong algorithm family for the key is refused. */
    kl_jws_key *bad = NULL;
    assert_int_equal(kl_jws_key_from_pem(pem, n, KL_JWS_RS256, &bad), KL_EINVAL);
    assert_int_equal(kl_jws_key_from_pem("junk", 4, KL_JWS_RS256, &bad), KL_EINVAL);
    /* A public-only key has no private PEM. */
    json_t *jwk = kl_jws_key_public_jwk(f->ec);
    kl_jws_key *pub = NULL;
    assert_int_equal(kl_jws_key_from_jwk(jwk, KL_JWS_ES256, &pub), 0);
    json_decref(jwk);
    char *none = NULL;
    size_t nonelen = 0;
    assert_int_equal(kl_jws_key_private_pem(pub, &none, &nonelen), KL_EINVAL);
    kl_jws_key_free(pub);
    char *tok = sign_payload(k, KL_JWS_ES256, "{}");
    assert_int_equal(verify_str(f, tok), KL_JWS_OK);
    free(tok);
    OPENSSL_cleanse(pem, n);
    free(pem);
    kl_jws_key_free(k);
    /* RSA below KL_MIN_RSA_BITS is refused. */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(small);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, small), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    assert_int_equal(kl_jws_key_from_pem(data, (size_t)len, KL_JWS_RS256, &bad), KL_EINVAL);
    BIO_free(bio);
    EVP_PKEY_free(small);
}

static void test_public_jwk(void **state)
{
    fixture *f = *state;
    json_t *j = kl_jws_key_public_jwk(f->rsa);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(j, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(j, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(j, "e")), "AQAB");
    assert_string_equal(json_string_value(json_object_get(j, "kid")), kl_jws_key_kid(f->rsa));
    assert_int_equal(json_string_length(json_object_get(j, "n")), 342); /* 256 bytes */
    assert_null(json_object_get(j, "d"));
    json_decref(j);
    j = kl_jws_key_public_jwk(f->ec);
    assert_string_equal(json_string_value(json_object_get(j, "crv")), "P-256");
    assert_int_equal(json_string_length(json_object_get(j, "x")), 43);
    assert_int_equal(json_string_length(json_object_get(j, "y")), 43);
    assert_null(json_object_get(j, "d"));
    /* Exported and re-imported, it verifies our tokens and keeps the kid. */
    kl_jws_key *pub = NULL;
    assert_int_equal(kl_jws_key_from_jwk(j, KL_JWS_ES256, &pub), 0);
    assert_string_equal(kl_jws_key_kid(pub), kl_jws_key_kid(f->ec));
    char *tok = sign_payload(f->ec, KL_JWS_ES256, "{}");
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify_with_key(pub, tok, strlen(tok), &v), KL_JWS_OK);
    kl_jws_verified_clear(&v);
    free(tok);
    kl_jws_key_free(pub);
    json_decref(j);
}

/* RFC 7638 3.1: the thumbprint of the example RSA key. */
static void test_rfc7638_thumbprint(void **state)
{
    (void)state;
    const char *n =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
        "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf"
        "0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n"
        "91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1j"
        "F44-csFCur-kEgU8awapJzKnqDKgw";
    json_t *jwk =
        json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "n", n, "e", "AQAB", "alg", "RS256");
    kl_jws_key *k = NULL;
    assert_int_equal(kl_jws_key_from_jwk(jwk, KL_JWS_RS256, &k), 0);
    assert_string_equal(kl_jws_key_kid(k), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    char tp[44];
    assert_int_equal(kl_jws_key_thumbprint(k, tp), 0);
    assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    kl_jws_key_free(k);
    /* A JWK kid, if given, must be well-formed. */
    json_object_set_new(jwk, "kid", json_string("a/b"));
    assert_int_equal(kl_jws_key_from_jwk(jwk, KL_JWS_RS256, &k), KL_EINVAL);
    json_decref(jwk);
}

/* An RSA JWK whose modulus is bytes long (top bits set, so exactly 8 * bytes bits). */
static int load_rsa_jwk_of(size_t bytes)
{
    unsigned char *n = malloc(bytes);
    char *b64 = malloc(B64CAP(bytes));
    assert_non_null(n);
    assert_non_null(b64);
    memset(n, 0xff, bytes);
    n[0] = 0xc0;
    assert_true(kl_b64url_encode(n, bytes, b64, B64CAP(bytes)) > 0);
    json_t *jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", b64, "e", "AQAB");
    kl_jws_key *k = NULL;
    int rc = kl_jws_key_from_jwk(jwk, KL_JWS_RS256, &k);
    kl_jws_key_free(k);
    json_decref(jwk);
    free(b64);
    free(n);
    return rc;
}

/* RSA keys from KL_MIN_RSA_BITS to KL_MAX_RSA_BITS; a larger key could never produce a
 * signature that fits KL_MAX_JWS_SIG, so it is refused when loaded. */
static void test_rsa_key_sizes(void **state)
{
    (void)state;
    assert_int_equal(load_rsa_jwk_of(KL_MIN_RSA_BITS / 8), 0);
    assert_int_equal(load_rsa_jwk_of(KL_MIN_RSA_BITS / 8 - 1), KL_EINVAL);
    assert_int_equal(load_rsa_jwk_of(KL_MAX_RSA_BITS / 8), 0);
    assert_int_equal(load_rsa_jwk_of(KL_MAX_RSA_BITS / 8 + 1), KL_EINVAL);
}

/* RFC 7515 A.3: the ES256 example verifies with the example public key; one changed
 * payload character does not. */
static void test_rfc7515_a3(void **state)
{
    (void)state;
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x",
                            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y",
                            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
    kl_jws_key *k = NULL;
    assert_int_equal(kl_jws_key_from_jwk(jwk, KL_JWS_ES256, &k), 0);
    json_decref(jwk);
    char tok[] = "eyJhbGciOiJFUzI1NiJ9."
                 "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc1"
                 "9yb290Ijp0cnVlfQ."
                 "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-"
                 "Kg6NU1Q";
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify_with_key(k, tok, strlen(tok), &v), KL_JWS_OK);
    assert_string_equal(json_string_value(json_object_get(v.payload, "iss")), "joe");
    assert_int_equal(json_integer_value(json_object_get(v.payload, "exp")), 1300819380);
    kl_jws_verified_clear(&v);
    tok[30] = tok[30] == 'A' ? 'B' : 'A';
    assert_int_equal(kl_jws_verify_with_key(k, tok, strlen(tok), &v), KL_JWS_BAD_SIGNATURE);
    kl_jws_key_free(k);
}

/* A self-signed certificate for key, DER in *der (OPENSSL_free). */
static int make_cert(EVP_PKEY *key, unsigned char **der)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"client", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    int n = i2d_X509(x, der);
    X509_free(x);
    return n;
}

/* Signs header.payload with OpenSSL directly (not our signer), as MSAL's Node crypto does. */
static char *openssl_assertion(EVP_PKEY *key, const char *header, const char *payload, bool pss)
{
    size_t hl = strlen(header), pl = strlen(payload);
    size_t cap = B64CAP(hl) + B64CAP(pl) + B64CAP(512) + 4;
    char *t = malloc(cap);
    assert_non_null(t);
    int a = kl_b64url_encode(header, hl, t, cap);
    t[a] = '.';
    int b = kl_b64url_encode(payload, pl, t + a + 1, cap - (size_t)a - 1);
    size_t off = (size_t)a + 1 + (size_t)b;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(m, &pctx, EVP_sha256(), NULL, key), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
    }
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    assert_int_equal(EVP_DigestSign(m, sig, &siglen, (const unsigned char *)t, off), 1);
    EVP_MD_CTX_free(m);
    t[off] = '.';
    kl_b64url_encode(sig, siglen, t + off + 1, cap - off - 1);
    return t;
}

static void test_client_assertion_cert(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(key);
    unsigned char *der = NULL;
    int dn = make_cert(key, &der);
    assert_true(dn > 0);
    kl_jws_key *cert = NULL;
    assert_int_equal(kl_jws_key_from_cert_der(der, (size_t)dn, KL_JWS_RS256 | KL_JWS_PS256, &cert),
                     0);
    /* kid is x5t (SHA-1 of the DER), and x5t#S256 is there for MSAL's PS256 form. */
    unsigned char md[32];
    char want[48];
    SHA1(der, (size_t)dn, md);
    kl_b64url_encode(md, 20, want, sizeof(want));
    assert_string_equal(kl_jws_key_kid(cert), want);
    SHA256(der, (size_t)dn, md);
    kl_b64url_encode(md, 32, want, sizeof(want));
    assert_string_equal(kl_jws_key_x5t_s256(cert), want);

    const char *payload = "{\"aud\":\"https://login.example/t/oauth2/v2.0/token\",\"exp\":1,"
                          "\"iss\":\"c\",\"jti\":\"j\",\"nbf\":0,\"sub\":\"c\"}";
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}", want);
    char *tok = openssl_assertion(key, hdr, payload, true);
    json_t *h = NULL;
    assert_int_equal(kl_jws_peek_header(tok, strlen(tok), &h), KL_JWS_OK);
    assert_string_equal(json_string_value(json_object_get(h, "x5t#S256")), want);
    json_decref(h);
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify_with_key(cert, tok, strlen(tok), &v), KL_JWS_OK);
    assert_int_equal(v.alg, KL_JWS_PS256);
    assert_string_equal(json_string_value(json_object_get(v.payload, "jti")), "j");
    kl_jws_verified_clear(&v);
    free(tok);

    /* The same key with PKCS#1 v1.5 (RS256 + x5t). */
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"%s\"}",
             kl_jws_key_kid(cert));
    tok = openssl_assertion(key, hdr, payload, false);
    assert_int_equal(kl_jws_verify_with_key(cert, tok, strlen(tok), &v), KL_JWS_OK);
    assert_int_equal(v.alg, KL_JWS_RS256);
    kl_jws_verified_clear(&v);
    free(tok);

    /* A PSS signature labelled RS256 does not verify: the label picks nothing unsafe. */
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    tok = openssl_assertion(key, hdr, payload, true);
    assert_int_equal(kl_jws_verify_with_key(cert, tok, strlen(tok), &v), KL_JWS_BAD_SIGNATURE);
    free(tok);

    /* A certificate registered for RS256 only refuses PS256. */
    kl_jws_key *rs_only = NULL;
    assert_int_equal(kl_jws_key_from_cert_der(der, (size_t)dn, KL_JWS_RS256, &rs_only), 0);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"PS256\",\"typ\":\"JWT\"}");
    tok = openssl_assertion(key, hdr, payload, true);
    assert_int_equal(kl_jws_verify_with_key(rs_only, tok, strlen(tok), &v), KL_JWS_ALG_MISMATCH);
    free(tok);

    /* Trailing bytes after the certificate are refused. */
    unsigned char *longer = malloc((size_t)dn + 1);
    memcpy(longer, der, (size_t)dn);
    longer[dn] = 0;
    kl_jws_key *bad = NULL;
    assert_int_equal(kl_jws_key_from_cert_der(longer, (size_t)dn + 1, KL_JWS_RS256, &bad),
                     KL_EINVAL);
    free(longer);
    kl_jws_key_free(rs_only);
    kl_jws_key_free(cert);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

static void test_reason_names(void **state)
{
    (void)state;
    for (int r = 0; r < KL_JWS_REASON_COUNT; r++) {
        assert_non_null(kl_jws_reason_str((kl_jws_reason)r));
        assert_string_not_equal(kl_jws_reason_str((kl_jws_reason)r), "unknown");
    }
    assert_string_equal(kl_jws_reason_str(KL_JWS_ALG_NONE), "alg_none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_rs256),
        cmocka_unit_test(test_round_trip_es256),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs256_with_public_key),
        cmocka_unit_test(test_alg_unsupported_and_mismatch),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_crit),
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_other_key),
        cmocka_unit_test(test_keyring),
        cmocka_unit_test(test_private_pem_round_trip),
        cmocka_unit_test(test_public_jwk),
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_rsa_key_sizes),
        cmocka_unit_test(test_rfc7515_a3),
        cmocka_unit_test(test_client_assertion_cert),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
