/* Client assertions signed by a registered certificate (see assertion.h). Nothing in
 * the header is trusted until the signature verifies: x5t / x5t#S256 / x5c only choose
 * which registered certificate to try, and each must agree with the one chosen. */
#include "token/assertion.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

static const struct {
    const char *name;
    int aadsts;
} reasons[KL_ASSERTION_REASON_COUNT] = {
    [KL_ASSERTION_OK] = {"ok", 0},
    [KL_ASSERTION_MALFORMED] = {"malformed", 50027},
    [KL_ASSERTION_NO_CERT] = {"certificate_not_registered", 700027},
    [KL_ASSERTION_BAD_SIGNATURE] = {"bad_signature", 700027},
    [KL_ASSERTION_CERT_EXPIRED] = {"certificate_expired", 700027},
    /* Entra: 700023 "Client assertion audience claim does not match Realm issuer",
     * 700021 "Client assertion application identifier doesn't match 'client_id'",
     * 700024 "Client assertion is not within its valid time range". */
    [KL_ASSERTION_AUDIENCE] = {"audience", 700023},
    [KL_ASSERTION_SUBJECT] = {"subject", 700021},
    [KL_ASSERTION_LIFETIME] = {"lifetime", 700024},
    [KL_ASSERTION_REPLAYED] = {"replayed", 50013},
    [KL_ASSERTION_UNAVAILABLE] = {"jti_store_unavailable", 0},
};

const char *kl_assertion_reason_str(kl_assertion_reason r)
{
    return (r >= 0 && r < KL_ASSERTION_REASON_COUNT) ? reasons[r].name : "unknown";
}

int kl_assertion_reason_aadsts(kl_assertion_reason r)
{
    return (r >= 0 && r < KL_ASSERTION_REASON_COUNT) ? reasons[r].aadsts : 0;
}

/* The registered certificate whose DER is the standard-base64 b64, or NULL. */
static const kl_client_cert *by_x5c(const kl_client_cert *certs, size_t n, const char *b64,
                                    size_t bl)
{
    if (bl == 0 || bl > 4 * ((KL_MAX_APP_CERT_DER + 2) / 3))
        return NULL;
    size_t cap = bl / 4 * 3 + 3;
    unsigned char *der = malloc(cap);
    const kl_client_cert *found = NULL;
    int got = der ? kl_b64_decode(b64, bl, der, cap) : -1;
    for (size_t i = 0; got > 0 && i < n && !found; i++)
        if (certs[i].der_len == (size_t)got && memcmp(certs[i].der, der, (size_t)got) == 0)
            found = &certs[i];
    free(der);
    return found;
}

/* Picks the certificate the header names. Every name present must name the same one;
 * a name of the wrong type, or one naming nothing registered, gives NULL. */
static const kl_client_cert *pick_cert(const json_t *hdr, const kl_client_cert *certs, size_t n)
{
    const json_t *s256 = json_object_get(hdr, "x5t#S256"), *s1 = json_object_get(hdr, "x5t");
    const json_t *x5c = json_object_get(hdr, "x5c");
    const kl_client_cert *pick = NULL;
    if (s256) {
        const char *v = json_string_value(s256);
        for (size_t i = 0; v && i < n && !pick; i++)
            if (strcmp(kl_jws_key_x5t_s256(certs[i].key), v) == 0)
                pick = &certs[i];
        if (!pick)
            return NULL;
    }
    if (s1) {
        const char *v = json_string_value(s1);
        const kl_client_cert *c = NULL;
        for (size_t i = 0; v && i < n && !c; i++)
            if (strcmp(kl_jws_key_kid(certs[i].key), v) == 0)
                c = &certs[i];
        if (!c || (pick && c != pick))
            return NULL;
        pick = c;
    }
    if (x5c) {
        /* The leaf comes first (RFC 7515 4.1.6); it must be a registered certificate
         * itself: we trust no chain to a CA. */
        const json_t *leaf = json_array_get(x5c, 0);
        const char *v = json_string_value(leaf);
        const kl_client_cert *c = (json_is_array(x5c) && v)
                                      ? by_x5c(certs, n, v, json_string_length(leaf))
                                      : NULL;
        if (!c || (pick && c != pick))
            return NULL;
        pick = c;
    }
    return pick;
}

static kl_assertion_reason from_claims(kl_claims_reason r)
{
    switch (r) {
    case KL_CLAIMS_OK: return KL_ASSERTION_OK;
    case KL_CLAIMS_AUDIENCE: return KL_ASSERTION_AUDIENCE;
    case KL_CLAIMS_SUBJECT: return KL_ASSERTION_SUBJECT;
    case KL_CLAIMS_EXPIRED:
    case KL_CLAIMS_NOT_YET_VALID:
    case KL_CLAIMS_IAT_FUTURE:
    case KL_CLAIMS_LIFETIME: return KL_ASSERTION_LIFETIME;
    default: return KL_ASSERTION_MALFORMED;
    }
}

kl_assertion_reason kl_assertion_check_cert(const char *client_id, const char *tok, size_t len,
                                            const char *token_endpoint_url,
                                            const kl_client_cert *certs, size_t n, int64_t now_s,
                                            kl_assertion_use_jti_fn use_jti, void *ctx,
                                            const kl_client_cert **used_cert)
{
    if (used_cert)
        *used_cert = NULL;
    if (!client_id || !tok || !token_endpoint_url || !use_jti || (n && !certs))
        return KL_ASSERTION_MALFORMED;
    json_t *hdr = NULL;
    kl_jws_verified v = {0};
    kl_assertion_reason res = KL_ASSERTION_OK;
    if (kl_jws_peek_header(tok, len, &hdr) != KL_JWS_OK) {
        res = KL_ASSERTION_MALFORMED;
        goto out;
    }
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "PS256") != 0)) {
        res = KL_ASSERTION_MALFORMED; /* certificates sign with RS256 or PS256 only */
        goto out;
    }
    const kl_client_cert *cert = pick_cert(hdr, certs, n);
    if (!cert) {
        res = KL_ASSERTION_NO_CERT;
        goto out;
    }
    if (now_s < cert->not_before || now_s > cert->not_after) {
        res = KL_ASSERTION_CERT_EXPIRED;
        goto out;
    }
    kl_jws_reason jr = kl_jws_verify_with_key(cert->key, tok, len, &v);
    if (jr == KL_JWS_BAD_SIGNATURE || jr == KL_JWS_ALG_MISMATCH) {
        res = KL_ASSERTION_BAD_SIGNATURE;
        goto out;
    }
    if (jr != KL_JWS_OK) {
        res = KL_ASSERTION_MALFORMED;
        goto out;
    }
    kl_claims_assertion a;
    res = from_claims(kl_claims_check_assertion(v.payload, client_id, token_endpoint_url, now_s, &a));
    if (res != KL_ASSERTION_OK)
        goto out;
    /* Last, so that only a valid assertion spends its jti: nobody can burn a client's
     * jti with an assertion that fails any other check. */
    int err = use_jti(ctx, client_id, a.jti, a.exp);
    if (err == KL_EEXIST)
        res = KL_ASSERTION_REPLAYED;
    else if (err)
        res = KL_ASSERTION_UNAVAILABLE;
    else if (used_cert)
        *used_cert = cert;
out:
    json_decref(hdr);
    kl_jws_verified_clear(&v);
    return res;
}
