/* External issuers' key cache with a fake transport and explicit clocks: discovery then
 * JWKS, hits without fetching, a refetch on an unknown kid at most once per
 * KL_JWKS_MIN_REFRESH_S, refusals of a discovery naming another issuer or a plain-http
 * jwks_uri, a held key surviving a refresh; a federated assertion checked with it; and
 * the real transport refusing an address the egress policy forbids before connecting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../token/certgen.h"
#include "common/err.h"
#include "common/limits.h"
#include "policy/jwks.h"
#include "token/assertion.h"

#define ISSUER "https://oidc.example"
#define DISCOVERY ISSUER "/.well-known/openid-configuration"
#define JWKS_URI "https://keys.example/jwks"
#define T0 1800000000

typedef struct fake {
    char discovery[1024];
    char jwks[16384];
    int fetches;
    int fail; /* answer KL_EIO */
} fake;

static int fake_fetch(void *ctx, const char *url, char **body, size_t *len)
{
    fake *f = ctx;
    f->fetches++;
    const char *src = NULL;
    if (f->fail)
        return KL_EIO;
    if (strcmp(url, DISCOVERY) == 0)
        src = f->discovery;
    else if (strcmp(url, JWKS_URI) == 0)
        src = f->jwks;
    if (!src)
        return KL_EIO;
    *len = strlen(src);
    *body = strdup(src);
    return 0;
}

/* A JWKS of the public keys of certs[0..n), named kids[i]. */
static void make_jwks(fake *f, test_cert *certs, const char *const *kids, size_t n)
{
    json_t *keys = json_array();
    for (size_t i = 0; i < n; i++) {
        kl_jws_key *k = NULL;
        assert_int_equal(kl_jws_key_from_cert_der(certs[i].der, certs[i].der_len, KL_JWS_RS256, &k),
                         0);
        json_t *jwk = kl_jws_key_public_jwk(k);
        json_object_set_new(jwk, "kid", json_string(kids[i]));
        json_object_del(jwk, "x5t");
        json_array_append_new(keys, jwk);
        kl_jws_key_free(k);
    }
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *s = json_dumps(doc, JSON_COMPACT);
    snprintf(f->jwks, sizeof(f->jwks), "%s", s);
    free(s);
    json_decref(doc);
}

static void set_discovery(fake *f, const char *issuer, const char *jwks_uri)
{
    snprintf(f->discovery, sizeof(f->discovery), "{\"issuer\":\"%s\",\"jwks_uri\":\"%s\"}", issuer,
             jwks_uri);
}

static void test_fetch_hit_refresh(void **state)
{
    (void)state;
    test_cert c1, c2;
    assert_int_equal(test_cert_make(&c1, 2048, -10, 1000), 0);
    assert_int_equal(test_cert_make(&c2, 2048, -10, 1000), 0);
    fake f = {0};
    set_discovery(&f, ISSUER, JWKS_URI);
    const char *k1[] = {"k1"};
    make_jwks(&f, &c1, k1, 1);
    kl_jwks *j = NULL;
    assert_int_equal(kl_jwks_new(fake_fetch, &f, &j), 0);
    kl_jwks_set *hold = NULL;
    const kl_jws_key *key = NULL;
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1", T0, &hold, &key), 0);
    assert_int_equal(f.fetches, 2); /* discovery, then keys */
    assert_string_equal(kl_jws_key_kid(key), "k1");
    kl_jwks_set_release(hold);
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1", T0 + 5, &hold, &key), 0);
    assert_int_equal(f.fetches, 2); /* cached */
    kl_jwks_set_release(hold);

    /* The issuer rotates: k2 appears. The first unknown kid refetches; a second unknown
     * kid within the minimum interval does not. */
    test_cert both[] = {c1, c2};
    const char *k12[] = {"k1", "k2"};
    make_jwks(&f, both, k12, 2);
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1", T0 + KL_JWKS_MIN_REFRESH_S, &hold, &key), 0);
    const kl_jws_key *held = key; /* held across the refresh below */
    assert_int_equal(kl_jwks_key(j, ISSUER, "k2", T0 + KL_JWKS_MIN_REFRESH_S, NULL, &key),
                     KL_EINVAL);
    kl_jwks_set *hold2 = NULL;
    assert_int_equal(kl_jwks_key(j, ISSUER, "k2", T0 + KL_JWKS_MIN_REFRESH_S, &hold2, &key), 0);
    assert_int_equal(f.fetches, 4);
    kl_jwks_set_release(hold2);
    assert_string_equal(kl_jws_key_kid(held), "k1"); /* still valid (the sanitizer run checks) */
    kl_jwks_set_release(hold);
    assert_int_equal(kl_jwks_key(j, ISSUER, "made-up", T0 + KL_JWKS_MIN_REFRESH_S + 1, &hold, &key),
                     KL_ENOTFOUND);
    assert_int_equal(f.fetches, 4); /* within the interval of the last fetch: no refetch */
    assert_null(hold);
    assert_int_equal(kl_jwks_key(j, ISSUER, "made-up", T0 + 2 * KL_JWKS_MIN_REFRESH_S, &hold, &key),
                     KL_ENOTFOUND);
    assert_int_equal(f.fetches, 6);
    /* Old sets are refetched after their maximum age, even for a known kid. */
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1",
                                 T0 + 2 * KL_JWKS_MIN_REFRESH_S + KL_JWKS_MAX_AGE_S, &hold, &key),
                     0);
    assert_int_equal(f.fetches, 8);
    kl_jwks_set_release(hold);
    kl_jwks_free(j);
    test_cert_free(&c1);
    test_cert_free(&c2);
}

static void test_refusals(void **state)
{
    (void)state;
    test_cert c1;
    assert_int_equal(test_cert_make(&c1, 2048, -10, 1000), 0);
    fake f = {0};
    const char *k1[] = {"k1"};
    make_jwks(&f, &c1, k1, 1);
    kl_jwks *j = NULL;
    assert_int_equal(kl_jwks_new(fake_fetch, &f, &j), 0);
    kl_jwks_set *hold = NULL;
    const kl_jws_key *key = NULL;
    /* Discovery naming another issuer (a mix-up), and a plain-http jwks_uri. */
    set_discovery(&f, "https://other.example", JWKS_URI);
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1", T0, &hold, &key), KL_EIO);
    set_discovery(&f, ISSUER, "http://keys.example/jwks");
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1", T0 + KL_JWKS_MIN_REFRESH_S, &hold, &key), KL_EIO);
    /* A failure is not retried at once. */
    set_discovery(&f, ISSUER, JWKS_URI);
    int before = f.fetches;
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1", T0 + KL_JWKS_MIN_REFRESH_S + 1, &hold, &key),
                     KL_EIO);
    assert_int_equal(f.fetches, before);
    assert_int_equal(kl_jwks_key(j, ISSUER, "k1", T0 + 2 * KL_JWKS_MIN_REFRESH_S, &hold, &key), 0);
    kl_jwks_set_release(hold);
    /* A plain-http issuer is never fetched. */
    before = f.fetches;
    assert_int_equal(kl_jwks_key(j, "http://oidc.example", "k1", T0, &hold, &key), KL_EINVAL);
    assert_int_equal(f.fetches, before);
    kl_jwks_free(j);
    test_cert_free(&c1);
}

typedef struct fed_ctx {
    kl_jwks *j;
    kl_jwks_set *hold;
    int64_t now;
} fed_ctx;

static const kl_jws_key *key_from_cache(void *ctx, const char *issuer, const char *kid)
{
    fed_ctx *c = ctx;
    const kl_jws_key *k = NULL;
    return kl_jwks_key(c->j, issuer, kid, c->now, &c->hold, &k) == 0 ? k : NULL;
}

static void test_federated_assertion_with_cache(void **state)
{
    (void)state;
    test_cert c1;
    assert_int_equal(test_cert_make(&c1, 2048, -10, 1000), 0);
    fake f = {0};
    set_discovery(&f, ISSUER, JWKS_URI);
    const char *k1[] = {"k1"};
    make_jwks(&f, &c1, k1, 1);
    fed_ctx fc = {.now = (int64_t)time(NULL)};
    assert_int_equal(kl_jwks_new(fake_fetch, &f, &fc.j), 0);
    static const char *const auds[] = {"api://AzureADTokenExchange"};
    kl_federated_cred fics[] = {{"f1", ISSUER, "sa", auds, 1}};
    json_t *h = json_pack("{s:s, s:s}", "alg", "RS256", "kid", "k1");
    json_t *cl = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", ISSUER, "sub", "sa", "aud", auds[0],
                           "exp", (json_int_t)(fc.now + 3600), "nbf", (json_int_t)(fc.now - 10));
    char *tok = test_sign(c1.pkey, false, h, cl);
    assert_int_equal(kl_assertion_check_federated("client", tok, strlen(tok), fics, 1, fc.now,
                                                  key_from_cache, &fc, NULL),
                     KL_ASSERTION_OK);
    kl_jwks_set_release(fc.hold);
    free(tok);
    json_decref(h);
    json_decref(cl);
    kl_jwks_free(fc.j);
    test_cert_free(&c1);
}

/* The real transport: an address the egress policy refuses is never connected to. */
static void test_https_fetch_egress(void **state)
{
    (void)state;
    kl_egress *eg = NULL;
    assert_int_equal(kl_egress_new(&eg), 0);
    kl_jwks_https hc = {.egress = eg};
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(kl_jwks_https_fetch(&hc, "https://169.254.169.254/metadata", &body, &len),
                     KL_EIO);
    assert_null(body);
    assert_int_equal(kl_jwks_https_fetch(&hc, "http://127.0.0.1/x", &body, &len), KL_EINVAL);
    assert_int_equal(kl_jwks_https_fetch(&hc, "https://user@127.0.0.1/x", &body, &len), KL_EINVAL);
    /* Loopback is allowed by default; nothing listens on port 1. */
    assert_int_equal(kl_jwks_https_fetch(&hc, "https://127.0.0.1:1/x", &body, &len), KL_EIO);
    kl_egress_free(eg);

    /* With an allowlist that leaves loopback out, a listening loopback port is never
     * even connected to. */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(kl_egress_new(&eg), 0);
    hc.egress = eg;
    char err[128];
    assert_int_equal(kl_egress_allow(eg, "10.0.0.0/8", err, sizeof(err)), 0);
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/jwks", (unsigned)ntohs(sa.sin_port));
    assert_int_equal(kl_jwks_https_fetch(&hc, url, &body, &len), KL_EIO);
    assert_int_equal(accept(l, NULL, NULL), -1); /* no connection was made */
    kl_egress_free(eg);
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_hit_refresh),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_federated_assertion_with_cache),
        cmocka_unit_test(test_https_fetch_egress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
