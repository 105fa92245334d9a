/* Unit tests of the store's launch secrets (identity_headers) against real databases
 * (SQLite files, or PostgreSQL: see engine.h): created for a site, renewed without a new
 * hash, revoked, owned by one site, gone with their site, lapsed leases left out of
 * load_all and swept by the next write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"
#include "engine.h"

#define RG "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
#define SITES RG "/providers/Microsoft.Web/sites/"
#define L1 "0b2c3d4e-0000-4000-8000-000000000001"
#define L2 "0b2c3d4e-0000-4000-8000-000000000002"
#define NOW 1800000000

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
} fixture;

static void put_site(kl_store *st, const char *name)
{
    char id[256];
    snprintf(id, sizeof(id), SITES "%s", name);
    kl_store_compute c = {.kind = KL_STORE_COMPUTE_SITE,
                          .id = id,
                          .subscription = "00000000-0000-0000-0000-000000000000",
                          .resource_group = "rg",
                          .name = (char *)name,
                          .location = "local",
                          .tags = "{}",
                          .properties = "{}",
                          .etag = "e",
                          .created_at = NOW,
                          .modified_at = NOW};
    assert_int_equal(kl_store_put_compute(st, &c, NULL, NULL), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(
        test_store_dir_open("ih", f->dir, sizeof(f->dir), f->path, sizeof(f->path), &f->st), 0);
    put_site(f->st, "web");
    put_site(f->st, "api");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_store_dir_close(f->st, f->dir);
    free(f);
    return 0;
}

/* What load_all hands the snapshot. */
typedef struct seen {
    size_t n;
    char site[4][64];
    unsigned char hash[4][32];
    int64_t expires[4];
} seen;

static int on_header(void *arg, const kl_store_identity_header *h)
{
    seen *s = arg;
    assert_true(s->n < 4);
    snprintf(s->site[s->n], sizeof(s->site[0]), "%s", h->site_name);
    memcpy(s->hash[s->n], h->hash, 32);
    s->expires[s->n] = h->expires_at;
    s->n++;
    return 0;
}

static seen load(kl_store *st)
{
    seen s = {0};
    kl_store_visitor v = {.arg = &s, .identity_header = on_header};
    assert_int_equal(kl_store_load_all(st, &v), 0);
    return s;
}

static void hash_of(unsigned char h[32], unsigned char fill)
{
    memset(h, fill, 32);
}

static void test_create_renew_revoke(void **state)
{
    fixture *f = *state;
    unsigned char h1[32], h2[32];
    hash_of(h1, 1);
    hash_of(h2, 2);
    int64_t now = kl_now_unix();
    bool created = false;
    assert_int_equal(
        kl_store_put_identity_header(f->st, SITES "WEB", L1, h1, now, now + 900, &created), 0);
    assert_true(created);
    seen s = load(f->st);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.site[0], "web");
    assert_memory_equal(s.hash[0], h1, 32);
    assert_int_equal(s.expires[0], now + 900);
    /* Renewed: the lease moves, the hash stays whatever is passed. */
    assert_int_equal(
        kl_store_put_identity_header(f->st, SITES "web", L1, h2, now + 1, now + 1800, &created), 0);
    assert_false(created);
    s = load(f->st);
    assert_int_equal(s.n, 1);
    assert_memory_equal(s.hash[0], h1, 32);
    assert_int_equal(s.expires[0], now + 1800);
    /* A launch id is one site's. */
    assert_int_equal(
        kl_store_put_identity_header(f->st, SITES "api", L1, h2, now, now + 900, &created),
        KL_EEXIST);
    assert_int_equal(kl_store_delete_identity_header(f->st, SITES "api", L1), KL_ENOTFOUND);
    /* Unknown site; a VM's id is not a site. */
    assert_int_equal(
        kl_store_put_identity_header(f->st, SITES "nope", L2, h2, now, now + 900, &created),
        KL_ENOTFOUND);
    assert_int_equal(kl_store_delete_identity_header(f->st, SITES "web", L1), 0);
    assert_int_equal(load(f->st).n, 0);
    assert_int_equal(kl_store_delete_identity_header(f->st, SITES "web", L1), KL_ENOTFOUND);
    /* Bad input. */
    assert_int_equal(kl_store_put_identity_header(f->st, SITES "web", "not-a-guid", h1, now,
                                                  now + 900, &created),
                     KL_EINVAL);
    assert_int_equal(kl_store_put_identity_header(f->st, SITES "web", L2, h1, now, now, &created),
                     KL_EINVAL);
}

static void test_lapsed_and_site_deleted(void **state)
{
    fixture *f = *state;
    unsigned char h1[32], h2[32];
    hash_of(h1, 1);
    hash_of(h2, 2);
    int64_t now = kl_now_unix();
    bool created = false;
    /* A lease that ended a while ago (written as if long past): never loaded. */
    assert_int_equal(
        kl_store_put_identity_header(f->st, SITES "web", L1, h1, now - 100, now - 1, &created), 0);
    assert_int_equal(load(f->st).n, 0);
    /* The next write sweeps it, so its hash is free again. */
    assert_int_equal(
        kl_store_put_identity_header(f->st, SITES "web", L2, h1, now, now + 900, &created), 0);
    assert_true(created);
    assert_int_equal(kl_store_delete_identity_header(f->st, SITES "web", L1), KL_ENOTFOUND);
    assert_int_equal(
        kl_store_put_identity_header(f->st, SITES "api", L1, h2, now, now + 900, &created), 0);
    assert_int_equal(load(f->st).n, 2);
    /* The site goes, and its launch secrets with it. */
    assert_int_equal(kl_store_delete_compute(f->st, KL_STORE_COMPUTE_SITE, "web"), 0);
    seen s = load(f->st);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.site[0], "api");
    /* A new site of the same name does not inherit them. */
    put_site(f->st, "web");
    assert_int_equal(load(f->st).n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_renew_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lapsed_and_site_deleted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
