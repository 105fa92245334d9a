/* JWS compact serialization with RS256/PS256/ES256 on OpenSSL 3 EVP. The header is
 * parsed strictly (jansson with duplicate names refused), the key is found by kid, and
 * the key (never the header) decides the algorithm; the payload is parsed only after the
 * signature verified. */
#include "crypto/jws.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"

#define P256_COORD 32     /* bytes in a P-256 coordinate, and in r and s */
#define THUMBPRINT_B64 43 /* base64url of a SHA-256 digest */
#define X5T_B64 27        /* base64url of a SHA-1 digest */
#define B64_CAP(n) (4 * (((n) + 2) / 3) + 1)

struct kl_jws_key {
    EVP_PKEY *pkey;
    bool priv;     /* holds a private key (can sign) */
    unsigned algs; /* kl_jws_alg bits this key may be used with */
    char kid[KL_MAX_JWS_KID + 1];
    char x5t_s256[THUMBPRINT_B64 + 1]; /* "" unless loaded from a certificate */
};

struct kl_jws_keyring {
    uint64_t generation;
    size_t count;
    kl_jws_key *keys[KL_MAX_KEYRING_KEYS]; /* owned copies sharing the EVP_PKEY */
};

static const char *const reason_names[KL_JWS_REASON_COUNT] = {
    [KL_JWS_OK] = "ok",
    [KL_JWS_EMPTY] = "empty",
    [KL_JWS_TOO_BIG] = "too_big",
    [KL_JWS_NOT_COMPACT] = "not_compact",
    [KL_JWS_BAD_BASE64] = "bad_base64",
    [KL_JWS_BAD_JSON] = "bad_json",
    [KL_JWS_DUPLICATE_MEMBER] = "duplicate_member",
    [KL_JWS_ALG_MISSING] = "alg_missing",
    [KL_JWS_ALG_NONE] = "alg_none",
    [KL_JWS_ALG_HMAC] = "alg_hmac",
    [KL_JWS_ALG_UNSUPPORTED] = "alg_unsupported",
    [KL_JWS_CRIT] = "crit",
    [KL_JWS_KID_MISSING] = "kid_missing",
    [KL_JWS_KID_BAD] = "kid_bad",
    [KL_JWS_KID_UNKNOWN] = "kid_unknown",
    [KL_JWS_ALG_MISMATCH] = "alg_mismatch",
    [KL_JWS_BAD_SIGNATURE] = "bad_signature",
};

const char *kl_jws_reason_str(kl_jws_reason r)
{
    if ((unsigned)r >= KL_JWS_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

const char *kl_jws_alg_name(kl_jws_alg alg)
{
    switch (alg) {
    case KL_JWS_RS256: return "RS256";
    case KL_JWS_PS256: return "PS256";
    case KL_JWS_ES256: return "ES256";
    }
    return NULL;
}

static bool b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool kid_wellformed(const char *s, size_t n)
{
    if (n == 0 || n > KL_MAX_JWS_KID)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!b64url_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* ---- Keys ---------------------------------------------------------------------------- */

static bool is_p256(EVP_PKEY *pkey)
{
    char name[64];
    size_t len = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
        return false;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                       &len) != 1)
        return false;
    return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0;
}

/* Whether algs is a non-empty set that fits the key's type and size. */
static bool algs_fit(EVP_PKEY *pkey, unsigned algs)
{
    const unsigned rsa = KL_JWS_RS256 | KL_JWS_PS256;
    if (algs == 0)
        return false;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA)
        return (algs & ~rsa) == 0 && EVP_PKEY_get_bits(pkey) >= KL_MIN_RSA_BITS &&
               EVP_PKEY_get_bits(pkey) <= KL_MAX_RSA_BITS;
    if (is_p256(pkey))
        return algs == KL_JWS_ES256;
    return false;
}

/* base64url of a big number: unpadded for RSA (n, e), left-padded to width for EC. */
static int bn_b64(EVP_PKEY *pkey, const char *param, int width, char **out)
{
    BIGNUM *bn = NULL;
    unsigned char *bin = NULL;
    char *s = NULL;
    int rc = KL_ECRYPTO;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        goto out;
    int len = width ? width : BN_num_bytes(bn);
    if (len <= 0 || len > 1024)
        goto out;
    rc = KL_ENOMEM;
    bin = malloc((size_t)len);
    s = malloc(B64_CAP((size_t)len));
    if (!bin || !s)
        goto out;
    rc = KL_ECRYPTO;
    if (BN_bn2binpad(bn, bin, len) != len)
        goto out;
    if (kl_b64url_encode(bin, (size_t)len, s, B64_CAP((size_t)len)) < 0)
        goto out;
    *out = s;
    s = NULL;
    rc = 0;
out:
    free(s);
    free(bin);
    BN_free(bn);
    return rc;
}

/* The public members of the JWK in RFC 7638's required set, as a new object whose
 * lexicographic member order (jansson keeps insertion order) is the thumbprint input. */
static json_t *required_members(EVP_PKEY *pkey)
{
    char *a = NULL, *b = NULL;
    json_t *o = NULL;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        if (bn_b64(pkey, OSSL_PKEY_PARAM_RSA_E, 0, &a) ||
            bn_b64(pkey, OSSL_PKEY_PARAM_RSA_N, 0, &b))
            goto out;
        o = json_pack("{s:s, s:s, s:s}", "e", a, "kty", "RSA", "n", b);
    } else {
        if (bn_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_X, P256_COORD, &a) ||
            bn_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, P256_COORD, &b))
            goto out;
        o = json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", a, "y", b);
    }
out:
    free(a);
    free(b);
    return o;
}

/* base64url of a digest into out[0..cap); the encoder needs room for padding it strips. */
static int b64_digest(const unsigned char *md, size_t n, char *out, size_t cap)
{
    char tmp[B64_CAP(SHA256_DIGEST_LENGTH)];
    int k = n <= SHA256_DIGEST_LENGTH ? kl_b64url_encode(md, n, tmp, sizeof(tmp)) : -1;
    if (k < 0 || (size_t)k >= cap)
        return KL_EINTERNAL;
    memcpy(out, tmp, (size_t)k + 1);
    return 0;
}

static int thumbprint(EVP_PKEY *pkey, char out[THUMBPRINT_B64 + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    int rc = KL_ENOMEM;
    json_t *o = required_members(pkey);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!s)
        goto out;
    SHA256((const unsigned char *)s, strlen(s), md);
    rc = b64_digest(md, sizeof(md), out, THUMBPRINT_B64 + 1);
out:
    free(s);
    json_decref(o);
    return rc;
}

int kl_jws_key_thumbprint(const kl_jws_key *k, char out[44])
{
    return thumbprint(k->pkey, out);
}

/* Takes ownership of pkey (freed on failure). kid NULL means the RFC 7638 thumbprint. */
static int key_wrap(EVP_PKEY *pkey, bool priv, unsigned algs, const char *kid, kl_jws_key **out)
{
    int rc = KL_EINVAL;
    kl_jws_key *k = NULL;
    if (!algs_fit(pkey, algs))
        goto out;
    rc = KL_ENOMEM;
    k = calloc(1, sizeof(*k));
    if (!k)
        goto out;
    k->pkey = pkey;
    pkey = NULL;
    k->priv = priv;
    k->algs = algs;
    if (kid) {
        size_t n = strlen(kid);
        rc = KL_EINVAL;
        if (!kid_wellformed(kid, n))
            goto out;
        memcpy(k->kid, kid, n + 1);
    } else if ((rc = thumbprint(k->pkey, k->kid)) != 0) {
        goto out;
    }
    *out = k;
    k = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    kl_jws_key_free(k);
    return rc;
}

int kl_jws_key_generate(kl_jws_alg alg, kl_jws_key **out)
{
    EVP_PKEY *pkey = NULL;
    if (alg == KL_JWS_RS256 || alg == KL_JWS_PS256)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)KL_MIN_RSA_BITS);
    else if (alg == KL_JWS_ES256)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else
        return KL_EINVAL;
    if (!pkey)
        return KL_ECRYPTO;
    return key_wrap(pkey, true, alg, NULL, out);
}

int kl_jws_key_from_pem(const char *pem, size_t n, unsigned algs, kl_jws_key **out)
{
    if (n > INT32_MAX)
        return KL_ETOOBIG;
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    if (!bio)
        return KL_ENOMEM;
    bool priv = true;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!pkey) {
        priv = false;
        (void)BIO_reset(bio);
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    if (!pkey)
        return KL_EINVAL;
    return key_wrap(pkey, priv, algs, NULL, out);
}

int kl_jws_key_from_cert_der(const unsigned char *der, size_t n, unsigned algs, kl_jws_key **out)
{
    const unsigned char *p = der;
    unsigned char md[SHA256_DIGEST_LENGTH];
    char x5t[X5T_B64 + 1];
    kl_jws_key *k = NULL;
    if (n == 0 || n > KL_MAX_TOKEN_BYTES)
        return KL_EINVAL;
    X509 *cert = d2i_X509(NULL, &p, (long)n);
    if (!cert || p != der + n) {
        X509_free(cert);
        return KL_EINVAL;
    }
    EVP_PKEY *pkey = X509_get_pubkey(cert);
    X509_free(cert);
    if (!pkey)
        return KL_EINVAL;
    SHA1(der, n, md);
    if (b64_digest(md, SHA_DIGEST_LENGTH, x5t, sizeof(x5t)) != 0) {
        EVP_PKEY_free(pkey);
        return KL_EINTERNAL;
    }
    int rc = key_wrap(pkey, false, algs, x5t, &k);
    if (rc)
        return rc;
    SHA256(der, n, md);
    if (b64_digest(md, sizeof(md), k->x5t_s256, sizeof(k->x5t_s256)) != 0) {
        kl_jws_key_free(k);
        return KL_EINTERNAL;
    }
    *out = k;
    return 0;
}

/* Decodes the base64url string member name of o into a malloc'd buffer. */
static int jwk_bytes(const json_t *o, const char *name, unsigned char **out, size_t *n)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return KL_EINVAL;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    for (size_t i = 0; i < len; i++) {
        if (!b64url_char((unsigned char)s[i]))
            return KL_EINVAL;
    }
    unsigned char *b = malloc(len / 4 * 3 + 3);
    if (!b)
        return KL_ENOMEM;
    int k = kl_b64url_decode(s, len, b, len / 4 * 3 + 3);
    if (k <= 0) {
        free(b);
        return KL_EINVAL;
    }
    *out = b;
    *n = (size_t)k;
    return 0;
}

int kl_jws_key_from_jwk(const json_t *jwk, unsigned algs, kl_jws_key **out)
{
    unsigned char *a = NULL, *b = NULL, *pt = NULL;
    size_t an = 0, bn = 0;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *nn = NULL, *ee = NULL;
    const char *kid = NULL;
    int rc = KL_EINVAL;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const json_t *kidv = json_object_get(jwk, "kid");
    if (!json_is_object(jwk) || !kty)
        goto out;
    if (kidv) {
        if (!json_is_string(kidv))
            goto out;
        kid = json_string_value(kidv);
    }
    rc = KL_ENOMEM;
    if (!(bld = OSSL_PARAM_BLD_new()))
        goto out;
    if (strcmp(kty, "RSA") == 0) {
        if ((rc = jwk_bytes(jwk, "n", &a, &an)) || (rc = jwk_bytes(jwk, "e", &b, &bn)))
            goto out;
        rc = KL_ECRYPTO;
        nn = BN_bin2bn(a, (int)an, NULL);
        ee = BN_bin2bn(b, (int)bn, NULL);
        if (!nn || !ee || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, nn) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ee))
            goto out;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        rc = KL_EINVAL;
        if (!crv || strcmp(crv, "P-256") != 0)
            goto out;
        if ((rc = jwk_bytes(jwk, "x", &a, &an)) || (rc = jwk_bytes(jwk, "y", &b, &bn)))
            goto out;
        rc = KL_EINVAL;
        if (an != P256_COORD || bn != P256_COORD)
            goto out;
        rc = KL_ENOMEM;
        if (!(pt = malloc(1 + 2 * P256_COORD)))
            goto out;
        pt[0] = 0x04; /* uncompressed point */
        memcpy(pt + 1, a, P256_COORD);
        memcpy(pt + 1 + P256_COORD, b, P256_COORD);
        rc = KL_ECRYPTO;
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * P256_COORD))
            goto out;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else {
        rc = KL_EINVAL;
        goto out;
    }
    rc = KL_ECRYPTO;
    if (!ctx || !(params = OSSL_PARAM_BLD_to_param(bld)))
        goto out;
    rc = KL_EINVAL;
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    rc = key_wrap(pkey, false, algs, kid, out);
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(nn);
    BN_free(ee);
    free(a);
    free(b);
    free(pt);
    return rc;
}

int kl_jws_key_private_pem(const kl_jws_key *k, char **pem, size_t *n)
{
    BIO *bio = NULL;
    BUF_MEM *mem = NULL;
    int rc = KL_EINVAL;
    if (!k->priv)
        goto out;
    rc = KL_ENOMEM;
    if (!(bio = BIO_new(BIO_s_secmem())))
        goto out;
    rc = KL_ECRYPTO;
    if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    BIO_get_mem_ptr(bio, &mem);
    rc = KL_ENOMEM;
    if (!mem || !(*pem = kl_strndup(mem->data, mem->length)))
        goto out;
    *n = mem->length;
    rc = 0;
out:
    BIO_free(bio); /* a secure-heap BIO wipes its buffer */
    return rc;
}

void kl_jws_key_free(kl_jws_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *kl_jws_key_kid(const kl_jws_key *k)
{
    return k->kid;
}

const char *kl_jws_key_x5t_s256(const kl_jws_key *k)
{
    return k->x5t_s256;
}

unsigned kl_jws_key_algs(const kl_jws_key *k)
{
    return k->algs;
}

json_t *kl_jws_key_public_jwk(const kl_jws_key *k)
{
    json_t *o = required_members(k->pkey);
    if (!o)
        return NULL;
    const char *alg = kl_jws_alg_name((kl_jws_alg)k->algs);
    if (json_object_set_new(o, "use", json_string("sig")) ||
        json_object_set_new(o, "kid", json_string(k->kid)) ||
        json_object_set_new(o, "x5t", json_string(k->kid)) ||
        (alg && json_object_set_new(o, "alg", json_string(alg)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- Signing and verifying bytes ------------------------------------------------------ */

static int digest_init(EVP_MD_CTX *mctx, EVP_PKEY *pkey, kl_jws_alg alg, bool sign)
{
    EVP_PKEY_CTX *pctx = NULL;
    int ok = sign ? EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, pkey)
                  : EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, pkey);
    if (ok != 1)
        return KL_ECRYPTO;
    if (alg == KL_JWS_PS256) {
        /* RFC 7518 3.5: MGF1 with SHA-256 (OpenSSL's default is the message digest) and a
         * salt as long as the digest, exactly. */
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)
            return KL_ECRYPTO;
    } else if (alg == KL_JWS_RS256) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
            return KL_ECRYPTO;
    }
    return 0;
}

static int sign_bytes(const kl_jws_key *k, kl_jws_alg alg, const void *msg, size_t n,
                      unsigned char *sig, size_t *siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    ECDSA_SIG *es = NULL;
    size_t len = 0;
    int rc = KL_ENOMEM;
    if (!mctx)
        goto out;
    if ((rc = digest_init(mctx, k->pkey, alg, true)) != 0)
        goto out;
    rc = KL_ECRYPTO;
    if (EVP_DigestSign(mctx, NULL, &len, msg, n) != 1)
        goto out;
    rc = KL_ENOMEM;
    if (!(der = malloc(len)))
        goto out;
    rc = KL_ECRYPTO;
    if (EVP_DigestSign(mctx, der, &len, msg, n) != 1)
        goto out;
    if (alg == KL_JWS_ES256) {
        /* OpenSSL writes DER; JWS wants r || s, each left-padded to 32 bytes. */
        const unsigned char *p = der;
        if (!(es = d2i_ECDSA_SIG(NULL, &p, (long)len)) ||
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, P256_COORD) != P256_COORD ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + P256_COORD, P256_COORD) != P256_COORD)
            goto out;
        *siglen = 2 * P256_COORD;
    } else {
        if (len > KL_MAX_JWS_SIG)
            goto out;
        memcpy(sig, der, len);
        *siglen = len;
    }
    rc = 0;
out:
    ECDSA_SIG_free(es);
    free(der);
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* True only if sig verifies over msg with alg under pkey. */
static bool verify_bytes(EVP_PKEY *pkey, kl_jws_alg alg, const void *msg, size_t n,
                         const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    bool ok = false;
    if (!mctx || digest_init(mctx, pkey, alg, false) != 0)
        goto out;
    if (alg == KL_JWS_ES256) {
        /* Exactly r || s; the DER form OpenSSL wants is built here. */
        if (siglen != 2 * P256_COORD)
            goto out;
        r = BN_bin2bn(sig, P256_COORD, NULL);
        s = BN_bin2bn(sig + P256_COORD, P256_COORD, NULL);
        if (!r || !s || !(es = ECDSA_SIG_new()) || ECDSA_SIG_set0(es, r, s) != 1)
            goto out;
        r = s = NULL;
        int dlen = i2d_ECDSA_SIG(es, &der);
        if (dlen <= 0)
            goto out;
        ok = EVP_DigestVerify(mctx, der, (size_t)dlen, msg, n) == 1;
    } else {
        if (siglen != (size_t)EVP_PKEY_get_size(pkey))
            goto out;
        ok = EVP_DigestVerify(mctx, sig, siglen, msg, n) == 1;
    }
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    return ok;
}

static int sign_rs256(void *ctx, const void *msg, size_t n, unsigned char *sig, size_t *len)
{
    return sign_bytes(ctx, KL_JWS_RS256, msg, n, sig, len);
}

static int sign_ps256(void *ctx, const void *msg, size_t n, unsigned char *sig, size_t *len)
{
    return sign_bytes(ctx, KL_JWS_PS256, msg, n, sig, len);
}

static int sign_es256(void *ctx, const void *msg, size_t n, unsigned char *sig, size_t *len)
{
    return sign_bytes(ctx, KL_JWS_ES256, msg, n, sig, len);
}

int kl_jws_key_signer(const kl_jws_key *k, kl_jws_alg alg, kl_jws_signer *s)
{
    if (!k->priv || !kl_jws_alg_name(alg) || !(k->algs & alg))
        return KL_EINVAL;
    s->sign = alg == KL_JWS_RS256 ? sign_rs256 : alg == KL_JWS_PS256 ? sign_ps256 : sign_es256;
    s->ctx = (void *)k; /* only read by sign_bytes */
    s->alg = alg;
    s->kid = k->kid;
    return 0;
}

int kl_jws_sign_compact(const kl_jws_signer *s, const void *payload, size_t n, char **out)
{
    unsigned char sig[KL_MAX_JWS_SIG];
    size_t siglen = 0;
    char *tok = NULL;
    int rc = KL_EINVAL;
    const char *alg = kl_jws_alg_name(s->alg);
    if (!alg || !s->kid || !kid_wellformed(s->kid, strlen(s->kid)))
        goto out;
    /* An empty payload would be an empty segment, which verification refuses. */
    if (n == 0)
        goto out;
    rc = KL_ETOOBIG;
    if (n > KL_MAX_TOKEN_BYTES)
        goto out;
    /* Written directly: the kid is base64url characters only (kid_wellformed) and the
     * algorithm a name of ours, so nothing needs escaping. */
    char hdr[64 + 2 * KL_MAX_JWS_KID];
    int hn =
        snprintf(hdr, sizeof(hdr), "{\"typ\":\"JWT\",\"alg\":\"%s\",\"kid\":\"%s\",\"x5t\":\"%s\"}",
                 alg, s->kid, s->kid);
    rc = KL_EINTERNAL;
    if (hn < 0 || (size_t)hn >= sizeof(hdr))
        goto out;
    rc = KL_ENOMEM;
    size_t hl = (size_t)hn;
    size_t cap = B64_CAP(hl) + B64_CAP(n) + B64_CAP(KL_MAX_JWS_SIG) + 2;
    if (!(tok = malloc(cap)))
        goto out;
    rc = KL_EINTERNAL;
    int a = kl_b64url_encode(hdr, hl, tok, cap);
    if (a < 0)
        goto out;
    tok[a] = '.';
    int b = kl_b64url_encode(payload, n, tok + a + 1, cap - (size_t)a - 1);
    if (b < 0)
        goto out;
    size_t signed_len = (size_t)a + 1 + (size_t)b;
    if ((rc = s->sign(s->ctx, tok, signed_len, sig, &siglen)) != 0)
        goto out;
    rc = KL_EINTERNAL;
    if (siglen == 0 || siglen > KL_MAX_JWS_SIG)
        goto out;
    tok[signed_len] = '.';
    int c = kl_b64url_encode(sig, siglen, tok + signed_len + 1, cap - signed_len - 1);
    if (c < 0)
        goto out;
    rc = KL_ETOOBIG;
    if (signed_len + 1 + (size_t)c > KL_MAX_TOKEN_BYTES)
        goto out;
    *out = tok;
    tok = NULL;
    rc = 0;
out:
    free(tok);
    return rc;
}

/* ---- Key ring ------------------------------------------------------------------------ */

int kl_jws_keyring_new(uint64_t generation, kl_jws_keyring **out)
{
    kl_jws_keyring *r = calloc(1, sizeof(*r));
    if (!r)
        return KL_ENOMEM;
    r->generation = generation;
    *out = r;
    return 0;
}

int kl_jws_keyring_add(kl_jws_keyring *r, const kl_jws_key *k)
{
    for (size_t i = 0; i < r->count; i++) {
        if (strcmp(r->keys[i]->kid, k->kid) == 0)
            return KL_EEXIST;
    }
    if (r->count >= KL_MAX_KEYRING_KEYS)
        return KL_ETOOBIG;
    kl_jws_key *c = calloc(1, sizeof(*c));
    if (!c)
        return KL_ENOMEM;
    *c = *k;
    c->priv = false; /* the ring only verifies; the shared EVP_PKEY is never used to sign */
    if (EVP_PKEY_up_ref(k->pkey) != 1) {
        free(c);
        return KL_ECRYPTO;
    }
    r->keys[r->count++] = c;
    return 0;
}

uint64_t kl_jws_keyring_generation(const kl_jws_keyring *r)
{
    return r->generation;
}

size_t kl_jws_keyring_count(const kl_jws_keyring *r)
{
    return r->count;
}

const kl_jws_key *kl_jws_keyring_key(const kl_jws_keyring *r, size_t i)
{
    return i < r->count ? r->keys[i] : NULL;
}

void kl_jws_keyring_free(kl_jws_keyring *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        kl_jws_key_free(r->keys[i]);
    free(r);
}

/* ---- Parsing and verification -------------------------------------------------------- */

/* A token split into its segments, with header and payload decoded. */
typedef struct parsed {
    const char *seg[3];
    size_t len[3];
    unsigned char *payload; /* decoded payload bytes, owned */
    size_t payload_len;
    unsigned char sig[KL_MAX_JWS_SIG];
    size_t sig_len;
    json_t *header;
    kl_jws_alg alg; /* the header's alg, known to be one we support */
} parsed;

static void parsed_free(parsed *p)
{
    free(p->payload);
    json_decref(p->header);
}

static kl_jws_reason decode_seg(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
    unsigned char *b = malloc(n / 4 * 3 + 3);
    if (!b)
        return KL_JWS_BAD_BASE64; /* callers see a refusal, never a crash */
    int k = kl_b64url_decode(s, n, b, n / 4 * 3 + 3);
    if (k < 0) {
        free(b);
        return KL_JWS_BAD_BASE64;
    }
    *out = b;
    *outlen = (size_t)k;
    return KL_JWS_OK;
}

static kl_jws_reason parse_object(const unsigned char *b, size_t n, json_t **out)
{
    json_error_t err;
    json_t *o = json_loadb((const char *)b, n, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        return json_error_code(&err) == json_error_duplicate_key ? KL_JWS_DUPLICATE_MEMBER
                                                                 : KL_JWS_BAD_JSON;
    if (!json_is_object(o)) {
        json_decref(o);
        return KL_JWS_BAD_JSON;
    }
    *out = o;
    return KL_JWS_OK;
}

static kl_jws_reason check_alg(const json_t *header, kl_jws_alg *alg)
{
    const json_t *a = json_object_get(header, "alg");
    if (!json_is_string(a))
        return KL_JWS_ALG_MISSING;
    const char *s = json_string_value(a);
    if (strcasecmp(s, "none") == 0)
        return KL_JWS_ALG_NONE;
    if (strncasecmp(s, "HS", 2) == 0)
        return KL_JWS_ALG_HMAC;
    if (strcmp(s, "RS256") == 0)
        *alg = KL_JWS_RS256;
    else if (strcmp(s, "PS256") == 0)
        *alg = KL_JWS_PS256;
    else if (strcmp(s, "ES256") == 0)
        *alg = KL_JWS_ES256;
    else
        return KL_JWS_ALG_UNSUPPORTED;
    /* RFC 7515 4.1.11: an extension we do not understand must make the token invalid. */
    if (json_object_get(header, "crit"))
        return KL_JWS_CRIT;
    return KL_JWS_OK;
}

/* Shape, base64url, header JSON and alg; the payload is decoded but not parsed. */
static kl_jws_reason parse_token(const char *tok, size_t n, parsed *p)
{
    unsigned char *hdr = NULL;
    size_t hdr_len = 0, start = 0, k = 0;
    kl_jws_reason r;
    memset(p, 0, sizeof(*p));
    if (n == 0)
        return KL_JWS_EMPTY;
    if (n > KL_MAX_TOKEN_BYTES)
        return KL_JWS_TOO_BIG;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && tok[i] != '.')
            continue;
        if (k == 3)
            return KL_JWS_NOT_COMPACT;
        p->seg[k] = tok + start;
        p->len[k] = i - start;
        if (p->len[k] == 0)
            return KL_JWS_NOT_COMPACT;
        k++;
        start = i + 1;
    }
    if (k != 3)
        return KL_JWS_NOT_COMPACT;
    for (size_t s = 0; s < 3; s++) {
        for (size_t i = 0; i < p->len[s]; i++) {
            if (!b64url_char((unsigned char)p->seg[s][i]))
                return KL_JWS_BAD_BASE64;
        }
    }
    /* The signature's size is bounded before decoding: anything longer cannot verify. */
    int sl = kl_b64url_decode(p->seg[2], p->len[2], p->sig, sizeof(p->sig));
    if (sl == KL_ETOOBIG)
        return KL_JWS_BAD_SIGNATURE;
    if (sl <= 0)
        return KL_JWS_BAD_BASE64;
    p->sig_len = (size_t)sl;
    if ((r = decode_seg(p->seg[0], p->len[0], &hdr, &hdr_len)) != KL_JWS_OK)
        return r;
    r = decode_seg(p->seg[1], p->len[1], &p->payload, &p->payload_len);
    if (r == KL_JWS_OK)
        r = parse_object(hdr, hdr_len, &p->header);
    free(hdr);
    if (r == KL_JWS_OK)
        r = check_alg(p->header, &p->alg);
    return r;
}

/* Checks alg against k, the signature, then parses the payload into v. */
static kl_jws_reason finish(const kl_jws_key *k, parsed *p, kl_jws_verified *v)
{
    json_t *payload = NULL;
    if (!(k->algs & p->alg))
        return KL_JWS_ALG_MISMATCH;
    size_t signed_len = p->len[0] + 1 + p->len[1];
    if (!verify_bytes(k->pkey, p->alg, p->seg[0], signed_len, p->sig, p->sig_len))
        return KL_JWS_BAD_SIGNATURE;
    kl_jws_reason r = parse_object(p->payload, p->payload_len, &payload);
    if (r != KL_JWS_OK)
        return r;
    v->header = p->header;
    p->header = NULL;
    v->payload = payload;
    v->alg = p->alg;
    memcpy(v->kid, k->kid, strlen(k->kid) + 1);
    return KL_JWS_OK;
}

kl_jws_reason kl_jws_verify(const kl_jws_keyring *r, const char *tok, size_t n, kl_jws_verified *v)
{
    parsed p;
    const kl_jws_key *key = NULL;
    memset(v, 0, sizeof(*v));
    kl_jws_reason res = parse_token(tok, n, &p);
    if (res != KL_JWS_OK)
        goto out;
    const json_t *kid = json_object_get(p.header, "kid");
    res = KL_JWS_KID_MISSING;
    if (!json_is_string(kid))
        goto out;
    const char *ks = json_string_value(kid);
    size_t kl = json_string_length(kid);
    res = KL_JWS_KID_BAD;
    if (!kid_wellformed(ks, kl))
        goto out;
    for (size_t i = 0; i < r->count; i++) {
        if (strcmp(r->keys[i]->kid, ks) == 0)
            key = r->keys[i];
    }
    res = KL_JWS_KID_UNKNOWN;
    if (!key)
        goto out;
    res = finish(key, &p, v);
out:
    parsed_free(&p);
    return res;
}

kl_jws_reason kl_jws_verify_with_key(const kl_jws_key *k, const char *tok, size_t n,
                                     kl_jws_verified *v)
{
    parsed p;
    memset(v, 0, sizeof(*v));
    kl_jws_reason res = parse_token(tok, n, &p);
    if (res == KL_JWS_OK)
        res = finish(k, &p, v);
    parsed_free(&p);
    return res;
}

kl_jws_reason kl_jws_peek_header(const char *tok, size_t n, json_t **header)
{
    parsed p;
    *header = NULL;
    kl_jws_reason res = parse_token(tok, n, &p);
    if (res == KL_JWS_OK) {
        *header = p.header;
        p.header = NULL;
    }
    parsed_free(&p);
    return res;
}

void kl_jws_verified_clear(kl_jws_verified *v)
{
    json_decref(v->header);
    json_decref(v->payload);
    memset(v, 0, sizeof(*v));
}
