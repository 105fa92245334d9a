/* Fuzz target for the JWS parser and verifier (crypto/jws.h). The first byte picks a
 * mode: 0 feeds the rest as a token to kl_jws_verify and kl_jws_peek_header against a
 * fixed key ring; 1 signs the rest as a payload with that ring's key and verifies it, so
 * the payload parser (reached only after a good signature) is fuzzed too. Checks: every
 * answer is a defined reason, a refusal leaves nothing behind, peek and verify agree on
 * the header checks, and a payload verifies exactly when strict JSON parsing accepts an
 * object. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "crypto/jws.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* A throwaway P-256 test key (not used anywhere else), fixed so that seeds can carry
 * valid signatures; its kid is the RFC 7638 thumbprint. */
static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxE4Tq8Hjz7Q8b0u+\n"
    "gfuNSOVD83UKuRDXwHQ94Jkrgt+hRANCAARY1O8cqHKYCY6iesx/x//+LJPF0IGc\n"
    "mqGqzD4iZz0OvwrdWGhElOtGmNmdBDwmxmUV10q3bNGBMPrSVpJty5im\n"
    "-----END PRIVATE KEY-----\n";

static kl_jws_key *key;
static kl_jws_keyring *ring;
static kl_jws_signer signer;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    CHECK(kl_jws_key_from_pem(test_key_pem, sizeof(test_key_pem) - 1, KL_JWS_ES256, &key) == 0);
    CHECK(kl_jws_keyring_new(1, &ring) == 0);
    CHECK(kl_jws_keyring_add(ring, key) == 0);
    CHECK(kl_jws_key_signer(key, KL_JWS_ES256, &signer) == 0);
    return 0;
}

static bool is_empty(const kl_jws_verified *v)
{
    return !v->header && !v->payload && v->kid[0] == '\0';
}

static void fuzz_token(const char *tok, size_t n)
{
    kl_jws_verified v;
    json_t *h = NULL;
    kl_jws_reason r = kl_jws_verify(ring, tok, n, &v);
    CHECK(r >= KL_JWS_OK && r < KL_JWS_REASON_COUNT);
    kl_jws_reason p = kl_jws_peek_header(tok, n, &h);
    CHECK((p == KL_JWS_OK) == (h != NULL));
    /* Peek stops after the header checks; verify starts with the same ones. */
    if (p != KL_JWS_OK)
        CHECK(r == p);
    if (r == KL_JWS_OK) {
        CHECK(p == KL_JWS_OK);
        CHECK(json_is_object(v.header) && json_is_object(v.payload));
        CHECK(v.alg == KL_JWS_ES256 && strcmp(v.kid, kl_jws_key_kid(key)) == 0);
        CHECK(strcmp(json_string_value(json_object_get(v.header, "alg")), "ES256") == 0);
    } else {
        CHECK(is_empty(&v));
    }
    kl_jws_verified_clear(&v);
    json_decref(h);
}

static void fuzz_payload(const char *payload, size_t n)
{
    char *tok = NULL;
    int rc = kl_jws_sign_compact(&signer, payload, n, &tok);
    if (n == 0) {
        CHECK(rc == KL_EINVAL);
        return;
    }
    if (rc == KL_ETOOBIG)
        return;
    CHECK(rc == 0);
    kl_jws_verified v;
    kl_jws_reason r = kl_jws_verify(ring, tok, strlen(tok), &v);
    json_error_t err;
    json_t *ref = json_loadb(payload, n, JSON_REJECT_DUPLICATES, &err);
    if (json_is_object(ref)) {
        CHECK(r == KL_JWS_OK);
        CHECK(json_equal(ref, v.payload));
    } else {
        CHECK(r == KL_JWS_BAD_JSON || r == KL_JWS_DUPLICATE_MEMBER);
        CHECK(is_empty(&v));
    }
    json_decref(ref);
    kl_jws_verified_clear(&v);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* A private copy of exactly size - 1 bytes, so reading past it is caught. */
    size_t n = size - 1;
    char *in = malloc(n ? n : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, n);
    if (data[0] & 1)
        fuzz_payload(in, n);
    else
        fuzz_token(in, n);
    free(in);
    return 0;
}
