/* Token throughput on one thread: issuing (claims + RS256/ES256 signature), verifying
 * (signature + claims), and a verified-token cache hit, each beside the raw OpenSSL
 * operation it is built on (EVP sign/verify of the same number of bytes), measured in the
 * same run. A benchmark, not a test: it never fails on a slow machine. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "crypto/argon2id.h"
#include "crypto/jws.h"
#include "token/claims.h"
#include "token/tokcache.h"

#define RUN_US 2000000 /* each measurement runs this long */

#define TID "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define ISS "https://sts.windows.net/" TID "/"
#define AUD "https://cognitiveservices.azure.com"

static void die(const char *what)
{
    fprintf(stderr, "bench_sts: %s failed\n", what);
    exit(1);
}

static char *issue(const kl_jws_signer *s, int64_t now)
{
    kl_claims_access in = {.aud = AUD,
                           .iss = ISS,
                           .tid = TID,
                           .appid = "0b2c3d4e-0000-4000-8000-000000000001",
                           .oid = "0b2c3d4e-0000-4000-8000-000000000002",
                           .appidacr = 1,
                           .now = now};
    /* The token endpoint's path: the claim set written as text, then signed. */
    static char p[KL_MAX_ACCESS_CLAIMS];
    size_t n = 0;
    char *tok = NULL;
    if (kl_claims_write_access(&in, p, sizeof(p), &n))
        die("claims");
    if (kl_jws_sign_compact(s, p, n, &tok))
        die("sign");
    return tok;
}

typedef struct ctx {
    const kl_jws_keyring *ring;
    const kl_jws_signer *signer;
    kl_tokcache *cache;
    EVP_PKEY *pkey;
    const char *tok;
    size_t tok_len;
    unsigned char sig[512];
    size_t sig_len;
    int64_t now;
} ctx;

typedef void (*op_fn)(ctx *c);

static double per_second(op_fn op, ctx *c)
{
    uint64_t start = kl_now_mono_us(), n = 0, now;
    do {
        for (int i = 0; i < 16; i++)
            op(c);
        n += 16;
        now = kl_now_mono_us();
    } while (now - start < RUN_US);
    return (double)n * 1e6 / (double)(now - start);
}

static void op_issue(ctx *c)
{
    free(issue(c->signer, c->now));
}

static void op_verify(ctx *c)
{
    static const char *const auds[] = {AUD};
    kl_claims_expect e = {.audiences = auds, .n_audiences = 1, .issuer = ISS, .now = c->now};
    kl_jws_verified v;
    kl_claims_principal who;
    if (kl_jws_verify(c->ring, c->tok, c->tok_len, &v) != KL_JWS_OK ||
        kl_claims_check_access(v.payload, &e, &who) != KL_CLAIMS_OK)
        die("verify");
    kl_jws_verified_clear(&v);
}

static void op_cache(ctx *c)
{
    kl_claims_principal who;
    if (kl_tokcache_get(c->cache, c->tok, c->tok_len, c->now, 1, 1, &who) != 0)
        die("cache");
}

static void op_raw_sign(ctx *c)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    size_t len = sizeof(c->sig);
    if (!m || EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, c->pkey) != 1 ||
        EVP_DigestSign(m, c->sig, &len, (const unsigned char *)c->tok, c->tok_len - 344) != 1)
        die("raw sign");
    c->sig_len = len;
    EVP_MD_CTX_free(m);
}

static void op_raw_verify(ctx *c)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, c->pkey) != 1 ||
        EVP_DigestVerify(m, c->sig, c->sig_len, (const unsigned char *)c->tok, c->tok_len - 344) !=
            1)
        die("raw verify");
    EVP_MD_CTX_free(m);
}

static void run_alg(kl_jws_alg alg)
{
    kl_jws_key *k = NULL;
    kl_jws_keyring *ring = NULL;
    kl_jws_signer s;
    ctx c = {0};
    if (kl_jws_key_generate(alg, &k) || kl_jws_keyring_new(1, &ring) ||
        kl_jws_keyring_add(ring, k) || kl_jws_key_signer(k, alg, &s) ||
        kl_tokcache_new(4096, &c.cache))
        die("setup");
    c.ring = ring;
    c.signer = &s;
    c.now = kl_now_unix();
    char *tok = issue(&s, c.now);
    c.tok = tok;
    c.tok_len = strlen(tok);
    static const char *const auds[] = {AUD};
    kl_claims_expect e = {.audiences = auds, .n_audiences = 1, .issuer = ISS, .now = c.now};
    kl_jws_verified v;
    kl_claims_principal who;
    if (kl_jws_verify(ring, tok, c.tok_len, &v) || kl_claims_check_access(v.payload, &e, &who))
        die("first verify");
    kl_jws_verified_clear(&v);
    kl_tokcache_put(c.cache, tok, c.tok_len, 1, 1, &who);

    double issue_s = per_second(op_issue, &c);
    double verify_s = per_second(op_verify, &c);
    double cache_s = per_second(op_cache, &c);
    printf("%s (token %zu bytes)\n", kl_jws_alg_name(alg), c.tok_len);
    printf("  issue  (claims + sign)        %10.0f tokens/s\n", issue_s);
    printf("  verify (signature + claims)   %10.0f tokens/s\n", verify_s);
    printf("  cache hit (SHA-256 + lookup)  %10.0f tokens/s\n", cache_s);
    if (alg == KL_JWS_RS256) {
        /* The OpenSSL baseline on the same key: what the token code adds is the gap. */
        char *pem = NULL;
        size_t n = 0;
        if (kl_jws_key_private_pem(k, &pem, &n))
            die("pem");
        BIO *bio = BIO_new_mem_buf(pem, (int)n);
        c.pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        free(pem);
        if (!c.pkey)
            die("pkey");
        double raw_sign = per_second(op_raw_sign, &c);
        double raw_verify = per_second(op_raw_verify, &c);
        printf("  OpenSSL EVP RSA-2048 sign     %10.0f /s  (issue/raw = %.2f)\n", raw_sign,
               issue_s / raw_sign);
        printf("  OpenSSL EVP RSA-2048 verify   %10.0f /s  (verify/raw = %.2f)\n", raw_verify,
               verify_s / raw_verify);
        EVP_PKEY_free(c.pkey);
    }
    free(tok);
    kl_tokcache_free(c.cache);
    kl_jws_keyring_free(ring);
    kl_jws_key_free(k);
}

static void op_argon2id(ctx *c)
{
    kl_argon2id h;
    (void)c;
    if (kl_argon2id_hash("correct horse battery staple", 28, &h))
        die("argon2id");
}

/* The password grant's cost: one Argon2id hash with the stored parameters per sign-in
 * (kl_argon2id_verify does the same work as kl_argon2id_hash). */
static void run_argon2id(void)
{
    ctx c = {0};
    uint64_t start = kl_now_mono_us(), n = 0, now;
    do {
        op_argon2id(&c);
        n++;
        now = kl_now_mono_us();
    } while (now - start < RUN_US);
    printf("Argon2id (t=%d, m=%d KiB, p=%d) on one thread  %10.1f hashes/s\n", KL_ARGON2_T_COST,
           KL_ARGON2_M_COST, KL_ARGON2_PARALLELISM, (double)n * 1e6 / (double)(now - start));
}

int main(int argc, char **argv)
{
    /* bench_sts argon2id: only the hash rate (bench/sts/run prints it beside the
     * password grant's rate). */
    if (argc > 1 && strcmp(argv[1], "argon2id") == 0) {
        run_argon2id();
        return 0;
    }
    run_alg(KL_JWS_RS256);
    run_alg(KL_JWS_ES256);
    run_argon2id();
    return 0;
}
