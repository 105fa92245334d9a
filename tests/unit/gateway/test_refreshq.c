/* Unit tests of the refresh-token group commit (gateway/refreshq.h) on a SQLite store: a
 * loop that stops settles its rotations with kl_refreshq_cancel (each done runs exactly
 * once, before it returns, and says what the store holds: committed whole or never
 * written; decided ones keep their result), other loops' rotations are untouched, and
 * the queue then frees without waiting on anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "gateway/refreshq.h"
#include "store/store.h"

#define ROTATIONS 64 /* per loop: enough that some are usually still queued at a cancel */
#define NEXT 1000    /* token n rotates into token n + NEXT */
#define NOW 1000

typedef struct fixture {
    char dir[64], path[96];
    kl_store *st;
    kl_refreshq *q;
} fixture;

typedef struct answer {
    int calls;
    int result;
    int *delivered; /* the loop's count of answers */
} answer;

static void hash_of(unsigned char h[KL_STORE_REFRESH_HASH_LEN], int n)
{
    memset(h, 0, KL_STORE_REFRESH_HASH_LEN);
    h[0] = (unsigned char)(n & 0xff);
    h[1] = (unsigned char)(n >> 8);
    h[31] = 0x5a;
}

static kl_store_refresh rec(const char *family)
{
    return (kl_store_refresh){.family_id = (char *)family,
                              .user_oid = "00000000-0000-4000-8000-000000000001",
                              .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                              .scope = "https://cognitiveservices.azure.com/.default",
                              .created_at = 100,
                              .expires_at = 100000};
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kl-refreshq-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/keyless.db", f->dir);
    assert_int_equal(kl_store_open_sqlite(f->path, &f->st), 0);
    /* Tokens 0..2*ROTATIONS-1, each the start of a family of its own. */
    for (int n = 0; n < 2 * ROTATIONS; n++) {
        char family[40];
        snprintf(family, sizeof(family), "00000000-0000-4000-8000-%012d", n);
        unsigned char h[KL_STORE_REFRESH_HASH_LEN];
        hash_of(h, n);
        kl_store_refresh r = rec(family);
        assert_int_equal(kl_store_refresh_create(f->st, h, &r), 0);
    }
    assert_int_equal(kl_refreshq_new(f->st, &f->q), 0);
    evthread_use_pthreads();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_refreshq_free(f->q); /* every loop settled or ran: nothing to wait for */
    kl_store_close(f->st);
    char p[128];
    const char *files[] = {"keyless.db", "keyless.db-wal", "keyless.db-shm"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void done(void *arg, int result)
{
    answer *a = arg;
    a->calls++;
    a->result = result;
    (*a->delivered)++;
}

/* Submits rotations first..first+n-1 from base. */
static void submit(fixture *f, struct event_base *base, int first, int n, answer *a, int *delivered)
{
    for (int i = 0; i < n; i++) {
        unsigned char old[KL_STORE_REFRESH_HASH_LEN], next[KL_STORE_REFRESH_HASH_LEN];
        hash_of(old, first + i);
        hash_of(next, first + i + NEXT);
        kl_store_refresh r = rec(NULL);
        a[i] = (answer){.result = 1, .delivered = delivered};
        assert_int_equal(kl_refreshq_submit(f->q, base, old, next, &r, NOW, done, &a[i]), 0);
    }
}

/* Each answer is what the store holds: 0 and the old token spent with its successor
 * stored, or KL_EUNAVAIL and neither. */
static void assert_all_or_nothing(fixture *f, int first, const answer *a, int *committed)
{
    for (int i = 0; i < ROTATIONS; i++) {
        assert_int_equal(a[i].calls, 1);
        kl_store_refresh *old = NULL, *next = NULL;
        unsigned char h[KL_STORE_REFRESH_HASH_LEN];
        hash_of(h, first + i);
        assert_int_equal(kl_store_refresh_get(f->st, h, &old), 0);
        hash_of(h, first + i + NEXT);
        int got = kl_store_refresh_get(f->st, h, &next);
        if (a[i].result == 0) {
            (*committed)++;
            assert_int_equal(old->used_at, NOW);
            assert_int_equal(got, 0);
        } else {
            assert_int_equal(a[i].result, KL_EUNAVAIL);
            assert_int_equal(old->used_at, 0);
            assert_int_equal(got, KL_ENOTFOUND);
        }
        kl_store_refresh_free(old);
        kl_store_refresh_free(next);
    }
}

static void test_cancel_settles_every_rotation(void **state)
{
    fixture *f = *state;
    struct event_base *base = event_base_new(), *other = event_base_new();
    assert_non_null(base);
    assert_non_null(other);
    answer a[ROTATIONS], marker;
    int delivered = 0, other_delivered = 0;
    /* The first half is decided but not delivered: the queue is in order, so once a
     * rotation submitted after them from another loop is answered, they are too. */
    submit(f, base, 0, ROTATIONS / 2, a, &delivered);
    submit(f, other, ROTATIONS, 1, &marker, &other_delivered);
    while (other_delivered < 1)
        assert_int_equal(event_base_loop(other, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY), 0);
    assert_int_equal(marker.result, 0);
    assert_int_equal(delivered, 0);
    /* The second half is queued (or being committed) when the loop stops. */
    submit(f, base, ROTATIONS / 2, ROTATIONS / 2, a + ROTATIONS / 2, &delivered);
    /* The loop never ran: every answer arrives inside the cancel, on this thread. */
    kl_refreshq_cancel(f->q, base);
    assert_int_equal(delivered, ROTATIONS);
    for (int i = 0; i < ROTATIONS / 2; i++)
        assert_int_equal(a[i].result, 0);
    int committed = 0;
    assert_all_or_nothing(f, 0, a, &committed);
    /* Nothing of q is left on the loop. */
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
    assert_int_equal(delivered, ROTATIONS);
    event_base_free(base);
    event_base_free(other);
    print_message("%d of the last %d rotations committed before the cancel\n",
                  committed - ROTATIONS / 2, ROTATIONS / 2);
}

static void test_cancel_leaves_other_loops_alone(void **state)
{
    fixture *f = *state;
    struct event_base *a_base = event_base_new(), *b_base = event_base_new();
    assert_non_null(a_base);
    assert_non_null(b_base);
    answer a[ROTATIONS], b[ROTATIONS];
    int a_delivered = 0, b_delivered = 0;
    submit(f, a_base, 0, ROTATIONS, a, &a_delivered);
    submit(f, b_base, ROTATIONS, ROTATIONS, b, &b_delivered);
    kl_refreshq_cancel(f->q, a_base);
    assert_int_equal(a_delivered, ROTATIONS);
    event_base_free(a_base);
    assert_int_equal(b_delivered, 0); /* b's loop has not run */
    /* b's rotations are all committed and delivered on b's loop as it runs. */
    while (b_delivered < ROTATIONS)
        assert_int_equal(event_base_loop(b_base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY), 0);
    for (int i = 0; i < ROTATIONS; i++)
        assert_int_equal(b[i].result, 0);
    int committed = 0;
    assert_all_or_nothing(f, ROTATIONS, b, &committed);
    assert_int_equal(committed, ROTATIONS);
    committed = 0;
    assert_all_or_nothing(f, 0, a, &committed);
    event_base_free(b_base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_settles_every_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_leaves_other_loops_alone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
