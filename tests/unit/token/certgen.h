/* Test helper: self-signed RSA certificates made with OpenSSL in the test, and client
 * assertions signed with their keys under any header we choose (so tests can send
 * x5t, x5t#S256, x5c, wrong algorithms and broken signatures). */
#ifndef KL_TEST_CERTGEN_H
#define KL_TEST_CERTGEN_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

typedef struct test_cert {
    EVP_PKEY *pkey;
    unsigned char *der;
    size_t der_len;
    char b64[8192];    /* standard base64 of der */
    char x5t[64];      /* base64url SHA-1 */
    char x5t_s256[64]; /* base64url SHA-256 */
} test_cert;

/* An RSA-`bits` self-signed certificate valid from now + from_s to now + to_s. */
static inline int test_cert_make(test_cert *c, int bits, long from_s, long to_s)
{
    memset(c, 0, sizeof(*c));
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    if (!kc || EVP_PKEY_keygen_init(kc) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(kc, bits) <= 0 ||
        EVP_PKEY_keygen(kc, &c->pkey) <= 0)
        return -1;
    EVP_PKEY_CTX_free(kc);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, c->pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, c->pkey, EVP_sha256()))
        return -1;
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    X509_free(x);
    if (n <= 0)
        return -1;
    c->der = malloc((size_t)n);
    memcpy(c->der, der, (size_t)n);
    c->der_len = (size_t)n;
    OPENSSL_free(der);
    kl_b64_encode(c->der, c->der_len, c->b64, sizeof(c->b64));
    unsigned char md[32];
    EVP_Digest(c->der, c->der_len, md, NULL, EVP_sha1(), NULL);
    kl_b64url_encode(md, 20, c->x5t, sizeof(c->x5t));
    EVP_Digest(c->der, c->der_len, md, NULL, EVP_sha256(), NULL);
    kl_b64url_encode(md, 32, c->x5t_s256, sizeof(c->x5t_s256));
    return 0;
}

static inline void test_cert_free(test_cert *c)
{
    EVP_PKEY_free(c->pkey);
    free(c->der);
    memset(c, 0, sizeof(*c));
}

/* Signs header.payload (both compact JSON given as objects, not consumed) with key:
 * pss selects RSASSA-PSS (SHA-256, salt 32) over PKCS#1 v1.5. Returns a malloc'd token. */
static inline char *test_sign(EVP_PKEY *key, bool pss, const json_t *header, const json_t *payload)
{
    char *h = json_dumps(header, JSON_COMPACT), *p = json_dumps(payload, JSON_COMPACT);
    size_t cap = 4 * (strlen(h) + strlen(p)) + 2048;
    char *tok = malloc(cap);
    int o = kl_b64url_encode(h, strlen(h), tok, cap);
    tok[o++] = '.';
    o += kl_b64url_encode(p, strlen(p), tok + o, cap - (size_t)o);
    unsigned char sig[1024];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    EVP_DigestSignInit(m, &pc, EVP_sha256(), NULL, key);
    if (pss) {
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 32);
        EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256());
    }
    EVP_DigestSign(m, sig, &sl, (const unsigned char *)tok, (size_t)o);
    EVP_MD_CTX_free(m);
    tok[o++] = '.';
    kl_b64url_encode(sig, sl, tok + o, cap - (size_t)o);
    free(h);
    free(p);
    return tok;
}

#endif
