/* The snapshot's token-service state and the signing key plan: which key signs and
 * which are published as time passes (a scheduled key takes over without a rebuild, a
 * retired key is unknown to verification), revoked and tampered rows left out, client
 * secrets matched in constant time with their validity window, and when the rotation
 * timer adds a key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "crypto/jws.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "fixture.h"
#include "policy/signing.h"
#include "policy/sts.h"

/* A store row for a fresh key; the caller frees kid and sealed. */
static kl_store_signing_key row(const kl_keys *keys, int64_t created, int64_t active,
                                int64_t retire)
{
    kl_jws_key *k = NULL;
    char *pem = NULL, aad[200];
    size_t n = 0;
    kl_store_signing_key r = {
        .alg = "RS256", .created_at = created, .active_at = active, .retire_at = retire};
    assert_int_equal(kl_jws_key_generate(KL_JWS_RS256, &k), 0);
    assert_int_equal(kl_jws_key_private_pem(k, &pem, &n), 0);
    assert_int_equal(kl_sts_key_aad(kl_jws_key_kid(k), aad, sizeof(aad)), 0);
    assert_int_equal(kl_seal(keys, aad, pem, n, &r.sealed), 0);
    r.kid = strdup(kl_jws_key_kid(k));
    OPENSSL_cleanse(pem, n);
    free(pem);
    kl_jws_key_free(k);
    return r;
}

static char *sign_with(const kl_jws_key *k)
{
    kl_jws_signer s;
    char *tok = NULL;
    static const char payload[] = "{\"x\":1}";
    assert_int_equal(kl_jws_key_signer(k, KL_JWS_RS256, &s), 0);
    assert_int_equal(kl_jws_sign_compact(&s, payload, sizeof(payload) - 1, &tok), 0);
    return tok;
}

static void test_keys_by_time(void **state)
{
    (void)state;
    kl_keys *keys = test_keys_with(7);
    kl_store_signing_key a = row(keys, 100, 100, 2000), b = row(keys, 900, 1000, 0),
                         c = row(keys, 100, 100, 0);
    c.revoked_at = 500;
    kl_sts *s = NULL;
    assert_int_equal(kl_sts_new(&s), 0);
    assert_int_equal(kl_sts_add_key(s, keys, &a), 0);
    assert_int_equal(kl_sts_add_key(s, keys, &b), 0);
    assert_int_equal(kl_sts_add_key(s, keys, &c), 0); /* revoked: left out */
    /* A row whose sealed key was made for another kid does not open. */
    kl_store_signing_key bad = b;
    bad.kid = a.kid;
    assert_int_equal(kl_sts_add_key(s, keys, &bad), KL_ECRYPTO);
    assert_int_equal(kl_sts_finish(s), 0);

    assert_string_equal(kl_jws_key_kid(kl_sts_signing_key(s, 500)), a.kid);
    assert_string_equal(kl_jws_key_kid(kl_sts_signing_key(s, 1000)), b.kid); /* took over */
    assert_int_equal(kl_sts_published(s, 500), 2);                           /* b ahead */
    assert_int_equal(kl_sts_published(s, 2000), 1);                          /* a retired */
    json_t *jwks = kl_sts_jwks(s, 2000, NULL);
    assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
    json_decref(jwks);

    char *tok = sign_with(kl_sts_signing_key(s, 500));
    kl_jws_verified v;
    assert_int_equal(kl_sts_verify(s, tok, strlen(tok), 1999, &v), KL_JWS_OK);
    kl_jws_verified_clear(&v);
    assert_int_equal(kl_sts_verify(s, tok, strlen(tok), 2000, &v), KL_JWS_KID_UNKNOWN);
    free(tok);
    kl_sts_free(s);
    kl_store_signing_key *rows[] = {&a, &b, &c};
    for (size_t i = 0; i < 3; i++) {
        free(rows[i]->kid);
        free(rows[i]->sealed);
    }
    kl_keys_free(keys);
}

static void test_secrets(void **state)
{
    (void)state;
    kl_keys *keys = test_keys_with(7);
    kl_sts *s = NULL;
    static const char app[] = "aaaaaaaa-0000-4000-8000-000000000001";
    static const char other[] = "bbbbbbbb-0000-4000-8000-000000000001";
    kl_store_app_secret live = {.app_id = (char *)app,
                                .key_id = "11111111-0000-4000-8000-000000000001",
                                .start_at = 100,
                                .end_at = 1000};
    kl_store_app_secret old = {.app_id = (char *)app,
                               .key_id = "11111111-0000-4000-8000-000000000002",
                               .start_at = 0,
                               .end_at = 50};
    kl_store_app_secret theirs = {.app_id = (char *)other,
                                  .key_id = "11111111-0000-4000-8000-000000000003",
                                  .start_at = 0,
                                  .end_at = 1000};
    assert_int_equal(kl_sts_secret_hash(keys, "live-secret", 11, live.hash), 0);
    assert_int_equal(kl_sts_secret_hash(keys, "old-secret", 10, old.hash), 0);
    assert_int_equal(kl_sts_secret_hash(keys, "their-secret", 12, theirs.hash), 0);
    assert_int_equal(kl_sts_new(&s), 0);
    assert_int_equal(kl_sts_add_secret(s, &theirs), 0);
    assert_int_equal(kl_sts_add_secret(s, &live), 0);
    assert_int_equal(kl_sts_add_secret(s, &old), 0);
    assert_int_equal(kl_sts_finish(s), 0);
    char kid[KL_UUID_LEN + 1];
    assert_int_equal(kl_sts_check_secret(s, keys, app, "live-secret", 11, 500, kid),
                     KL_STS_SECRET_OK);
    assert_string_equal(kid, live.key_id);
    assert_int_equal(kl_sts_check_secret(s, keys, "AAAAAAAA-0000-4000-8000-000000000001",
                                         "live-secret", 11, 500, kid),
                     KL_STS_SECRET_OK);
    assert_int_equal(kl_sts_check_secret(s, keys, app, "live-secret", 11, 1000, kid),
                     KL_STS_SECRET_EXPIRED);
    assert_int_equal(kl_sts_check_secret(s, keys, app, "live-secret", 11, 99, kid),
                     KL_STS_SECRET_WRONG);
    assert_int_equal(kl_sts_check_secret(s, keys, app, "old-secret", 10, 500, kid),
                     KL_STS_SECRET_EXPIRED);
    assert_int_equal(kl_sts_check_secret(s, keys, app, "live-secreT", 11, 500, kid),
                     KL_STS_SECRET_WRONG);
    assert_string_equal(kid, "");
    /* Another application's secret is no good. */
    assert_int_equal(kl_sts_check_secret(s, keys, app, "their-secret", 12, 500, kid),
                     KL_STS_SECRET_WRONG);
    kl_sts_free(s);
    kl_keys_free(keys);
}

static void test_plan(void **state)
{
    (void)state;
    kl_signing_cfg cfg = {.rotation_s = 30 * 86400, .lead_s = 600, .token_lifetime_s = 3600};
    kl_store_signing_key k1 = {.kid = "k1", .active_at = 1000},
                         k2 = {.kid = "k2", .active_at = 5000};
    kl_store_signing_key *one[] = {&k1}, *two[] = {&k1, &k2};
    int64_t due = 1000 + cfg.rotation_s - cfg.lead_s;
    assert_int_equal(kl_signing_plan(NULL, 0, 1000, &cfg), KL_SIGNING_FIRST);
    assert_int_equal(kl_signing_plan(one, 1, due - 1, &cfg), KL_SIGNING_NOTHING);
    assert_int_equal(kl_signing_plan(one, 1, due, &cfg), KL_SIGNING_SCHEDULED);
    /* A pending key: nothing more until it signs. */
    k2.active_at = due + cfg.lead_s;
    assert_int_equal(kl_signing_plan(two, 2, due + 1, &cfg), KL_SIGNING_NOTHING);
    /* Revoked or retired keys do not count. */
    k1.revoked_at = 5;
    assert_int_equal(kl_signing_plan(one, 1, 2000, &cfg), KL_SIGNING_FIRST);
    k1.revoked_at = 0;
    k1.retire_at = 1500;
    assert_int_equal(kl_signing_plan(one, 1, 2000, &cfg), KL_SIGNING_FIRST);
}

/* The timer's work on a real store: the first key, nothing while the signer is young,
 * a key published lead_s ahead when it is due (the old one retiring after the last
 * token it may sign), nothing more while that key is pending; the snapshot's state built
 * from those rows switches signers at the new key's active_at without a rebuild. */
static void test_tick_on_a_store(void **state)
{
    (void)state;
    char dir[64], path[128];
    kl_store *st = NULL;
    test_store_open(dir, path, "/tmp/kl-tick-XXXXXX", &st);
    kl_keys *keys = test_keys_with(7);
    kl_signing_cfg cfg = {
        .rotation_s = 86400, .lead_s = 600, .token_lifetime_s = 3600, .alg = KL_JWS_RS256};
    int64_t t0 = 1000000;
    bool added = false;
    assert_int_equal(kl_signing_tick(st, keys, &cfg, t0, &added), 0);
    assert_true(added);
    assert_int_equal(kl_signing_tick(st, keys, &cfg, t0 + 3600, &added), 0);
    assert_false(added);
    int64_t due = t0 + cfg.rotation_s - cfg.lead_s;
    assert_int_equal(kl_signing_tick(st, keys, &cfg, due, &added), 0);
    assert_true(added);
    assert_int_equal(kl_signing_tick(st, keys, &cfg, due + 1, &added), 0);
    assert_false(added);

    kl_store_signing_key **rows = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_signing_keys(st, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0]->retire_at, due + cfg.lead_s + cfg.token_lifetime_s + 300);
    assert_int_equal(rows[1]->active_at, due + cfg.lead_s);
    kl_sts *s = NULL;
    assert_int_equal(kl_sts_new(&s), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(kl_sts_add_key(s, keys, rows[i]), 0);
    assert_int_equal(kl_sts_finish(s), 0);
    assert_string_equal(kl_jws_key_kid(kl_sts_signing_key(s, due)), rows[0]->kid);
    assert_int_equal(kl_sts_published(s, due), 2); /* the new key is in JWKS ahead */
    assert_string_equal(kl_jws_key_kid(kl_sts_signing_key(s, due + cfg.lead_s)), rows[1]->kid);
    assert_int_equal(kl_sts_published(s, rows[0]->retire_at), 1);
    kl_sts_free(s);
    kl_store_signing_keys_free(rows, n);
    kl_keys_free(keys);
    kl_store_close(st);
    test_store_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_by_time),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_tick_on_a_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
