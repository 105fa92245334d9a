/* Unit tests of key usage and of the network check the snapshot carries: a use raises
 * the cell's day (never lowers it), a flush writes only what moved, in one batch, and
 * frees cells no snapshot holds; a snapshot's accounts get their keys' cells and their
 * network rules, and kl_snapshot_network_check judges callers in Azure's order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "policy/keyusage.h"
#include "policy/netrules.h"
#include "policy/snapshot.h"
#include "policy/snapshot_builder.h"
#include "store/store.h"
#include "fixture.h"

#define DAY 86400LL

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    kl_keyusage *u;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_store_open(f->dir, f->path, "/tmp/kl-usage-XXXXXX", &f->st);
    assert_int_equal(kl_keyusage_new(&f->u), 0);
    static const char id[] = "/subscriptions/s/resourceGroups/g/providers/"
                             "Microsoft.CognitiveServices/accounts/acct";
    kl_store_account a = {.id = (char *)id,
                          .subscription = "s",
                          .resource_group = "g",
                          .name = "acct",
                          .location = "local",
                          .kind = "OpenAI",
                          .etag = "e",
                          .created_at = 1,
                          .modified_at = 1};
    kl_store_key k[2] = {{.slot = 1, .sealed = "s1", .created_at = 1},
                         {.slot = 2, .sealed = "s2", .created_at = 1}};
    memset(k[0].index, 0x11, 32);
    memset(k[1].index, 0x22, 32);
    assert_int_equal(kl_store_put_account(f->st, &a, k, 2, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_keyusage_free(f->u);
    kl_store_close(f->st);
    test_store_remove(f->dir);
    free(f);
    return 0;
}

static int64_t stored(fixture *f, int slot)
{
    kl_store_key *ks = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_get_account_keys(f->st, "acct", &ks, &n), 0);
    int64_t v = ks[slot - 1].last_used;
    kl_store_keys_free(ks, n);
    return v;
}

static void test_touch_and_flush(void **state)
{
    fixture *f = *state;
    unsigned char i1[32], i2[32];
    memset(i1, 0x11, 32);
    memset(i2, 0x22, 32);
    kl_keyusage_cell *c1 = kl_keyusage_cell_get(f->u, i1, 0);
    kl_keyusage_cell *c2 = kl_keyusage_cell_get(f->u, i2, 0);
    assert_non_null(c1);
    assert_ptr_equal(kl_keyusage_cell_get(f->u, i1, 0), c1); /* one cell per key */
    kl_keyusage_cell_release(c1);
    size_t n = 99;
    assert_int_equal(kl_keyusage_flush(f->u, f->st, &n), 0);
    assert_int_equal(n, 0); /* nothing used, nothing written */

    kl_keyusage_touch(c1, 20000 * DAY + 3600);
    assert_int_equal(kl_keyusage_day(c1), 20000 * DAY);
    kl_keyusage_touch(c1, 19999 * DAY); /* never backwards */
    assert_int_equal(kl_keyusage_day(c1), 20000 * DAY);
    assert_int_equal(stored(f, 1), 0); /* nothing reaches the store before a flush */
    assert_int_equal(kl_keyusage_flush(f->u, f->st, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(stored(f, 1), 20000 * DAY);
    assert_int_equal(stored(f, 2), 0);
    /* The same day again: nothing to write. A new day: written. */
    kl_keyusage_touch(c1, 20000 * DAY + 7200);
    assert_int_equal(kl_keyusage_flush(f->u, f->st, &n), 0);
    assert_int_equal(n, 0);
    kl_keyusage_touch(c1, 20001 * DAY);
    kl_keyusage_touch(c2, 20001 * DAY);
    assert_int_equal(kl_keyusage_flush(f->u, f->st, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(stored(f, 2), 20001 * DAY);

    /* Held cells stay; released and written ones go. */
    assert_int_equal(kl_keyusage_day_of(f->u, i2), 20001 * DAY);
    kl_keyusage_cell_release(c2);
    assert_int_equal(kl_keyusage_flush(f->u, f->st, &n), 0);
    assert_int_equal(kl_keyusage_day_of(f->u, i2), 0);
    assert_int_equal(kl_keyusage_day_of(f->u, i1), 20001 * DAY);
    /* A cell made again starts from what the store says. */
    c2 = kl_keyusage_cell_get(f->u, i2, stored(f, 2));
    assert_int_equal(kl_keyusage_day(c2), 20001 * DAY);
    assert_int_equal(kl_keyusage_flush(f->u, f->st, &n), 0);
    assert_int_equal(n, 0);
    kl_keyusage_cell_release(c2);
    kl_keyusage_cell_release(c1);
    kl_keyusage_touch(NULL, 1); /* no registry: nothing */
}

/* A released cell whose day is not written yet is written before it goes. */
static void test_unwritten_cell_outlives_release(void **state)
{
    fixture *f = *state;
    unsigned char i1[32];
    memset(i1, 0x11, 32);
    kl_keyusage_cell *c1 = kl_keyusage_cell_get(f->u, i1, 0);
    kl_keyusage_touch(c1, 20005 * DAY);
    kl_keyusage_cell_release(c1);
    size_t n = 0;
    assert_int_equal(kl_keyusage_flush(f->u, f->st, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(stored(f, 1), 20005 * DAY);
}

static void test_snapshot_accounts(void **state)
{
    fixture *f = *state;
    kl_snapshot_builder *b = kl_snapshot_builder_new();
    assert_non_null(b);
    kl_snapshot_builder_keyusage(b, f->u);
    assert_int_equal(kl_snapshot_builder_account(b, "/a/open", "open", "s", "g", "l", false), 0);
    assert_int_equal(kl_snapshot_builder_account(b, "/a/deny", "deny", "s", "g", "l", false), 0);
    assert_int_equal(kl_snapshot_builder_account(b, "/a/closed", "closed", "s", "g", "l", false),
                     0);
    kl_netrange r;
    assert_int_equal(kl_netrules_parse("127.0.0.2", 9, &r), 0);
    kl_netrules *nr = NULL;
    assert_int_equal(kl_netrules_compile(&r, 1, &nr), 0);
    assert_int_equal(kl_snapshot_builder_account_network(b, "DENY", false, true, nr), 0);
    assert_int_equal(kl_snapshot_builder_account_network(b, "closed", true, false, NULL), 0);
    assert_int_equal(kl_snapshot_builder_account_network(b, "missing", true, false, NULL),
                     KL_EINVAL);
    unsigned char idx[32];
    memset(idx, 0x33, 32);
    assert_int_equal(kl_snapshot_builder_key_ex(b, "open", 2, idx, 1234, 20000 * DAY), 0);
    kl_snapshot *s = NULL;
    assert_int_equal(kl_snapshot_builder_finish(b, &s), 0);
    kl_snapshot_builder_free(b);

    const kl_account *open = kl_snapshot_account(s, "open", 4);
    const kl_account *deny = kl_snapshot_account(s, "deny", 4);
    const kl_account *closed = kl_snapshot_account(s, "closed", 6);
    assert_null(open->usage[0]);
    assert_non_null(open->usage[1]);
    assert_int_equal(open->key_created[1], 1234);
    assert_int_equal(kl_keyusage_day(open->usage[1]), 20000 * DAY);
    assert_int_equal(kl_snapshot_account_count(s), 3);

    kl_netaddr in, out;
    assert_int_equal(kl_netaddr_parse("127.0.0.2", 9, &in), 0);
    assert_int_equal(kl_netaddr_parse("127.0.0.3", 9, &out), 0);
    assert_int_equal(kl_snapshot_network_check(open, false, &out), KL_NETWORK_ALLOWED);
    assert_int_equal(kl_snapshot_network_check(open, false, NULL), KL_NETWORK_ALLOWED);
    assert_int_equal(kl_snapshot_network_check(deny, false, &in), KL_NETWORK_ALLOWED);
    assert_int_equal(kl_snapshot_network_check(deny, false, &out), KL_NETWORK_DENIED);
    assert_int_equal(kl_snapshot_network_check(deny, false, NULL), KL_NETWORK_DENIED);
    assert_int_equal(kl_snapshot_network_check(deny, true, &out), KL_NETWORK_ALLOWED);
    assert_int_equal(kl_snapshot_network_check(closed, false, &in), KL_NETWORK_PUBLIC_DISABLED);
    assert_int_equal(kl_snapshot_network_check(closed, true, NULL), KL_NETWORK_ALLOWED);
    /* The snapshot holds its cell: a flush keeps it while the snapshot lives. */
    assert_int_equal(kl_keyusage_flush(f->u, f->st, NULL), 0);
    assert_int_equal(kl_keyusage_day_of(f->u, idx), 20000 * DAY);
    kl_snapshot_release(s);
    assert_int_equal(kl_keyusage_flush(f->u, f->st, NULL), 0);
    assert_int_equal(kl_keyusage_day_of(f->u, idx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_touch_and_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritten_cell_outlives_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_accounts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
