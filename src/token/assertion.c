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
    /* Entra's "No matching federated identity record found for presented assertion
     * issuer / audience / subject". */
    [KL_ASSERTION_FED_ISSUER] = {"federated_issuer", 700211},
    [KL_ASSERTION_FED_AUDIENCE] = {"federated_audience", 700212},
    [KL_ASSERTION_FED_SUBJECT] = {"federated_subject", 700213},
    [KL_ASSERTION_KEY_UNKNOWN] = {"issuer_key_unknown", 700027},
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
        const kl_client_cert *c =
            (json_is_array(x5c) && v) ? by_x5c(certs, n, v, json_string_length(leaf)) : NULL;
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
    res =
        from_claims(kl_claims_check_assertion(v.payload, client_id, token_endpoint_url, now_s, &a));
    if (res != KL_ASSERTION_OK)
        goto out;
    /* Last, so that only a valid assertion spends its jti: nobody can burn a client's
     * jti with an assertion that fails any other check. */
    /* Remembered as long as the assertion would still pass the time check: until exp
     * plus the clock skew we allow, or it could be replayed in that margin. */
    int err = use_jti(ctx, client_id, a.jti, a.exp + KL_TOKEN_CLOCK_SKEW_S);
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

/* ---------------------------------------------------------------- federated */

/* The payload of tok, parsed but not verified (it only chooses which issuer's key to
 * try); NULL if it is not a JSON object. */
static json_t *peek_payload(const char *tok, size_t len)
{
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d1 || !d2)
        return NULL;
    size_t pl = (size_t)(d2 - d1 - 1);
    unsigned char *buf = malloc(pl / 4 * 3 + 3);
    json_t *j = NULL;
    int got = buf ? kl_b64url_decode(d1 + 1, pl, buf, pl / 4 * 3 + 3) : -1;
    if (got > 0)
        j = json_loadb((const char *)buf, (size_t)got, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static bool aud_has(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    const json_t *a;
    json_array_foreach(aud, i, a) if (json_is_string(a) &&
                                      strcmp(json_string_value(a), want) == 0) return true;
    return false;
}

kl_assertion_reason kl_assertion_check_federated(const char *client_id, const char *tok, size_t len,
                                                 const kl_federated_cred *fics, size_t n,
                                                 int64_t now_s, kl_assertion_issuer_key_fn key_fn,
                                                 void *key_ctx, const kl_federated_cred **used)
{
    if (used)
        *used = NULL;
    if (!client_id || !tok || !key_fn || (n && !fics))
        return KL_ASSERTION_MALFORMED;
    json_t *hdr = NULL, *peek = NULL;
    kl_jws_verified v = {0};
    kl_assertion_reason res = KL_ASSERTION_OK;
    if (kl_jws_peek_header(tok, len, &hdr) != KL_JWS_OK || !(peek = peek_payload(tok, len))) {
        res = KL_ASSERTION_MALFORMED;
        goto out;
    }
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    const char *iss = json_string_value(json_object_get(peek, "iss"));
    if (!kid || !kid[0] || !iss || !iss[0]) {
        res = KL_ASSERTION_MALFORMED;
        goto out;
    }
    bool known_issuer = false;
    for (size_t i = 0; i < n && !known_issuer; i++)
        known_issuer = strcmp(fics[i].issuer, iss) == 0;
    if (!known_issuer) {
        res = KL_ASSERTION_FED_ISSUER;
        goto out;
    }
    const kl_jws_key *key = key_fn(key_ctx, iss, kid);
    if (!key) {
        res = KL_ASSERTION_KEY_UNKNOWN;
        goto out;
    }
    kl_jws_reason jr = kl_jws_verify_with_key(key, tok, len, &v);
    if (jr == KL_JWS_BAD_SIGNATURE || jr == KL_JWS_ALG_MISMATCH) {
        res = KL_ASSERTION_BAD_SIGNATURE;
        goto out;
    }
    if (jr != KL_JWS_OK) {
        res = KL_ASSERTION_MALFORMED;
        goto out;
    }
    /* From here on only the verified payload counts. */
    const json_t *p = v.payload;
    const char *viss = json_string_value(json_object_get(p, "iss"));
    const char *sub = json_string_value(json_object_get(p, "sub"));
    const json_t *aud = json_object_get(p, "aud");
    const json_t *exp = json_object_get(p, "exp"), *nbf = json_object_get(p, "nbf");
    const json_t *iat = json_object_get(p, "iat");
    if (!viss || !sub || !(json_is_string(aud) || json_is_array(aud)) || !json_is_integer(exp) ||
        (nbf && !json_is_integer(nbf)) || (iat && !json_is_integer(iat))) {
        res = KL_ASSERTION_MALFORMED;
        goto out;
    }
    int64_t e = json_integer_value(exp);
    int64_t start = nbf ? json_integer_value(nbf) : iat ? json_integer_value(iat) : e;
    if (now_s >= e + KL_TOKEN_CLOCK_SKEW_S || now_s + KL_TOKEN_CLOCK_SKEW_S < start ||
        e - start > KL_TOKEN_MAX_LIFETIME_S || e < start) {
        res = KL_ASSERTION_LIFETIME;
        goto out;
    }
    /* The most specific miss wins: issuer, then audience, then subject. */
    res = KL_ASSERTION_FED_ISSUER;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fics[i].issuer, viss) != 0)
            continue;
        bool aud_ok = false;
        for (size_t a = 0; a < fics[i].n_audiences && !aud_ok; a++)
            aud_ok = aud_has(aud, fics[i].audiences[a]);
        if (!aud_ok) {
            if (res == KL_ASSERTION_FED_ISSUER)
                res = KL_ASSERTION_FED_AUDIENCE;
            continue;
        }
        if (strcmp(fics[i].subject, sub) != 0) {
            res = KL_ASSERTION_FED_SUBJECT;
            continue;
        }
        res = KL_ASSERTION_OK;
        if (used)
            *used = &fics[i];
        break;
    }
out:
    json_decref(hdr);
    json_decref(peek);
    kl_jws_verified_clear(&v);
    return res;
}
