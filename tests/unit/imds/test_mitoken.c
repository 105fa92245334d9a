/* The managed-identity token cache: the same token while enough of its life is left,
 * with the times it was minted with; a new one near expiry, for another identity,
 * resource or tenant, and under another signing key (revoked or rotated); the claims
 * Azure's managed-identity tokens carry. The clock is the caller's "now". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "imds/mitoken.h"

#define NOW 1800000000
#define LIFE (24 * 3600)
#define TID "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define MIRID "/subscriptions/s/resourcegroups/g/providers/Microsoft.Compute/virtualMachines/v"

static kl_jws_key *k1, *k2;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(kl_jws_key_generate(KL_JWS_RS256, &k1), 0);
    assert_int_equal(kl_jws_key_generate(KL_JWS_RS256, &k2), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kl_jws_key_free(k1);
    kl_jws_key_free(k2);
    return 0;
}

static kl_mitoken_req req(const kl_jws_key *k)
{
    return (kl_mitoken_req){.key = k,
                            .tid = TID,
                            .object_id = "00000000-0000-4000-8000-00000000000a",
                            .client_id = "00000000-0000-4000-8000-00000000000b",
                            .mirid = MIRID,
                            .resource = "https://cognitiveservices.azure.com"};
}

/* Gets a token and returns a copy of its text (caller frees). */
static char *get(kl_mitoken *c, const kl_mitoken_req *r, int64_t now, kl_mitoken_out *o)
{
    assert_int_equal(kl_mitoken_get(c, r, now, o), 0);
    char *t = strdup(o->access_token);
    assert_non_null(t);
    return t;
}

static void test_same_token_until_renewal(void **state)
{
    (void)state;
    kl_mitoken *c = NULL;
    assert_int_equal(kl_mitoken_new(LIFE, &c), 0);
    kl_mitoken_req r = req(k1);
    kl_mitoken_out o;
    char *first = get(c, &r, NOW, &o);
    assert_false(o.cached);
    assert_int_equal(o.not_before, NOW);
    assert_int_equal(o.expires_on, NOW + LIFE);
    kl_mitoken_out_clear(&o);
    /* Later, the same token with the same times: expires_in shrinks. */
    char *again = get(c, &r, NOW + 3600, &o);
    assert_true(o.cached);
    assert_string_equal(again, first);
    assert_int_equal(o.expires_on, NOW + LIFE);
    kl_mitoken_out_clear(&o);
    free(again);
    /* The last moment before the renewal margin, and the first one in it. */
    int64_t margin = KL_MI_TOKEN_RENEW_MARGIN_S < LIFE / 4 ? KL_MI_TOKEN_RENEW_MARGIN_S : LIFE / 4;
    again = get(c, &r, NOW + LIFE - margin - 1, &o);
    assert_string_equal(again, first);
    kl_mitoken_out_clear(&o);
    free(again);
    again = get(c, &r, NOW + LIFE - margin, &o);
    assert_false(o.cached);
    assert_string_not_equal(again, first);
    assert_int_equal(o.expires_on, NOW + LIFE - margin + LIFE);
    kl_mitoken_out_clear(&o);
    free(again);
    uint64_t hits, mints;
    kl_mitoken_stats(c, &hits, &mints);
    assert_int_equal(hits, 2);
    assert_int_equal(mints, 2);
    free(first);
    kl_mitoken_free(c);
}

static void test_keyed_by_everything(void **state)
{
    (void)state;
    kl_mitoken *c = NULL;
    assert_int_equal(kl_mitoken_new(LIFE, &c), 0);
    kl_mitoken_req r = req(k1);
    kl_mitoken_out o;
    char *base = get(c, &r, NOW, &o);
    kl_mitoken_out_clear(&o);
    kl_mitoken_req v[5] = {r, r, r, r, r};
    v[0].key = k2; /* the key that signs now changed: revoked or rotated */
    v[1].resource = "https://management.azure.com/";
    v[2].object_id = "00000000-0000-4000-8000-0000000000ff"; /* re-created identity */
    v[3].mirid = "/subscriptions/s/resourcegroups/g/providers/x/y/other";
    v[4].tid = "11111111-2222-3333-4444-555555555555";
    for (size_t i = 0; i < 5; i++) {
        char *t = get(c, &v[i], NOW + 1, &o);
        assert_false(o.cached);
        assert_string_not_equal(t, base);
        kl_mitoken_out_clear(&o);
        free(t);
    }
    free(base);
    kl_mitoken_free(c);
}

static void test_claims(void **state)
{
    (void)state;
    kl_jws_keyring *ring = NULL;
    assert_int_equal(kl_jws_keyring_new(1, &ring), 0);
    assert_int_equal(kl_jws_keyring_add(ring, k1), 0);
    kl_mitoken *c = NULL;
    assert_int_equal(kl_mitoken_new(LIFE, &c), 0);
    kl_mitoken_req r = req(k1);
    kl_mitoken_out o;
    assert_int_equal(kl_mitoken_get(c, &r, NOW, &o), 0);
    kl_jws_verified v;
    assert_int_equal(kl_jws_verify(ring, o.access_token, strlen(o.access_token), &v), KL_JWS_OK);
    const json_t *p = v.payload;
    assert_string_equal(json_string_value(json_object_get(p, "aud")), r.resource);
    assert_string_equal(json_string_value(json_object_get(p, "iss")),
                        "https://sts.windows.net/" TID "/");
    assert_string_equal(json_string_value(json_object_get(p, "appid")), r.client_id);
    assert_string_equal(json_string_value(json_object_get(p, "oid")), r.object_id);
    assert_string_equal(json_string_value(json_object_get(p, "appidacr")), "2");
    assert_string_equal(json_string_value(json_object_get(p, "idtyp")), "app");
    assert_string_equal(json_string_value(json_object_get(p, "xms_mirid")), MIRID);
    assert_int_equal(json_integer_value(json_object_get(p, "exp")), NOW + LIFE);
    kl_jws_verified_clear(&v);
    kl_mitoken_out_clear(&o);
    kl_mitoken_free(c);
    kl_jws_keyring_free(ring);
}

static void test_refusals(void **state)
{
    (void)state;
    kl_mitoken *c = NULL;
    assert_int_equal(kl_mitoken_new(KL_MI_TOKEN_MIN_LIFETIME_S - 1, &c), KL_EINVAL);
    assert_int_equal(kl_mitoken_new(KL_MI_TOKEN_MAX_LIFETIME_S + 1, &c), KL_EINVAL);
    assert_int_equal(kl_mitoken_new(LIFE, &c), 0);
    kl_mitoken_req r = req(NULL);
    kl_mitoken_out o;
    assert_int_equal(kl_mitoken_get(c, &r, NOW, &o), KL_EINVAL);
    r = req(k1);
    r.resource = "";
    assert_int_equal(kl_mitoken_get(c, &r, NOW, &o), KL_EINVAL);
    assert_null(o.access_token);
    kl_mitoken_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_token_until_renewal),
        cmocka_unit_test(test_keyed_by_everything),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
