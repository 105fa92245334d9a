/* KEK loading (file and environment), its permission and size checks, and the keyed hash
 * derived from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "crypto/keys.h"

typedef struct fixture {
    char dir[64];
    char kek[128];
    int dfd; /* the directory, as keylessd holds its data directory */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kl-keys-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->kek, sizeof(f->kek), "%s/kek", f->dir);
    f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->dfd >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->kek);
    rmdir(f->dir);
    close(f->dfd);
    free(f);
    return 0;
}

static void hmac_of(const kl_keys *k, const char *label, const char *msg, unsigned char out[32])
{
    assert_int_equal(kl_keys_hmac(k, label, msg, strlen(msg), out), 0);
}

static void test_file_created_0600_and_stable(void **state)
{
    fixture *f = *state;
    kl_keys *a = NULL, *b = NULL;
    unsigned char ha[32], hb[32];

    assert_int_equal(kl_keys_load(f->dfd, NULL, &a), 0);
    assert_non_null(a);
    struct stat st;
    assert_int_equal(stat(f->kek, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 32);

    /* No temporary file is left behind. */
    char tmpl[160];
    snprintf(tmpl, sizeof(tmpl), "ls -A %s | grep -v '^kek$' | wc -l | grep -qx 0", f->dir);
    assert_int_equal(system(tmpl), 0);

    assert_int_equal(kl_keys_load(f->dfd, NULL, &b), 0);
    hmac_of(a, "apikey", "hello", ha);
    hmac_of(b, "apikey", "hello", hb);
    assert_memory_equal(ha, hb, 32);
    kl_keys_free(a);
    kl_keys_free(b);
}

static void test_file_matches_from_bytes(void **state)
{
    fixture *f = *state;
    unsigned char raw[32];
    assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
    int fd = open(f->kek, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, raw, sizeof(raw)), (ssize_t)sizeof(raw));
    close(fd);

    kl_keys *a = NULL, *b = NULL;
    unsigned char ha[32], hb[32];
    assert_int_equal(kl_keys_load(f->dfd, NULL, &a), 0);
    assert_int_equal(kl_keys_from_bytes(raw, sizeof(raw), &b), 0);
    hmac_of(a, "apikey", "x", ha);
    hmac_of(b, "apikey", "x", hb);
    assert_memory_equal(ha, hb, 32);
    assert_memory_equal(kl_keys_seal_key(a), kl_keys_seal_key(b), 32);
    kl_keys_free(a);
    kl_keys_free(b);
}

static void test_group_readable_refused(void **state)
{
    fixture *f = *state;
    kl_keys *k = NULL;
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), 0);
    kl_keys_free(k);
    k = NULL;

    assert_int_equal(chmod(f->kek, 0644), 0);
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), KL_EPERM);
    assert_null(k);
    assert_int_equal(chmod(f->kek, 0640), 0);
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), KL_EPERM);
    assert_int_equal(chmod(f->kek, 0601), 0);
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), KL_EPERM);
    assert_null(k);
    /* Back to 0600 it loads again: the file itself was not touched. */
    assert_int_equal(chmod(f->kek, 0600), 0);
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), 0);
    kl_keys_free(k);
}

static void test_wrong_size_file_refused(void **state)
{
    fixture *f = *state;
    kl_keys *k = NULL;
    static const size_t sizes[] = {0, 16, 31, 33, 64};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char buf[64] = {1};
        unlink(f->kek);
        int fd = open(f->kek, O_CREAT | O_EXCL | O_WRONLY, 0600);
        assert_true(fd >= 0);
        if (sizes[i])
            assert_int_equal(write(fd, buf, sizes[i]), (ssize_t)sizes[i]);
        close(fd);
        assert_int_equal(kl_keys_load(f->dfd, NULL, &k), KL_EINVAL);
        assert_null(k);
    }
}

/* A kek that is a symbolic link is refused, whatever it points at: a link in the data
 * directory could lead anywhere (a key kept elsewhere goes through KEYLESS_KEK). */
static void test_symlink_refused(void **state)
{
    fixture *f = *state;
    char target[160];
    snprintf(target, sizeof(target), "%s/real", f->dir);
    unsigned char raw[32] = {7};
    int fd = open(target, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, raw, sizeof(raw)), 32);
    close(fd);
    assert_int_equal(symlink(target, f->kek), 0);

    kl_keys *k = NULL;
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), KL_EPERM);
    assert_null(k);
    /* A dangling link is not replaced by a fresh kek either. */
    unlink(target);
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), KL_EPERM);
    assert_null(k);
    struct stat st;
    assert_int_equal(lstat(f->kek, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

/* A kek owned by another user is refused even with mode 0600: that user could have
 * chosen it. (The suite runs as root, which can give a file away.) */
static void test_other_owner_refused(void **state)
{
    fixture *f = *state;
    kl_keys *k = NULL;
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), 0);
    kl_keys_free(k);
    k = NULL;
    if (geteuid() != 0)
        skip();
    assert_int_equal(chown(f->kek, 65534, 65534), 0);
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), KL_EPERM);
    assert_null(k);
    assert_int_equal(chown(f->kek, 0, 0), 0);
    assert_int_equal(kl_keys_load(f->dfd, NULL, &k), 0);
    kl_keys_free(k);
}

static void test_missing_dir(void **state)
{
    (void)state;
    kl_keys *k = NULL;
    assert_true(kl_keys_load(-1, NULL, &k) < 0);
    assert_null(k);
}

static void test_env(void **state)
{
    fixture *f = *state;
    unsigned char raw[32];
    char b64[64];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 7 + 3);
    assert_int_equal(kl_b64_encode(raw, sizeof(raw), b64, sizeof(b64)), 44);

    kl_keys *a = NULL, *b = NULL;
    unsigned char ha[32], hb[32];
    assert_int_equal(kl_keys_load(f->dfd, b64, &a), 0);
    /* The environment wins: no kek file is created. */
    assert_int_equal(access(f->kek, F_OK), -1);
    assert_int_equal(kl_keys_from_bytes(raw, sizeof(raw), &b), 0);
    hmac_of(a, "apikey", "msg", ha);
    hmac_of(b, "apikey", "msg", hb);
    assert_memory_equal(ha, hb, 32);
    kl_keys_free(a);
    kl_keys_free(b);
}

static void test_env_wrong_size(void **state)
{
    (void)state;
    unsigned char raw[48] = {0};
    char b64[80];
    kl_keys *k = NULL;
    static const size_t sizes[] = {16, 31, 33, 48};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_true(kl_b64_encode(raw, sizes[i], b64, sizeof(b64)) > 0);
        assert_int_equal(kl_keys_load(-1, b64, &k), KL_EINVAL);
        assert_null(k);
    }
    assert_int_equal(kl_keys_load(-1, "", &k), KL_EINVAL);
    assert_int_equal(kl_keys_load(-1, "not base64 at all!!", &k), KL_EINVAL);
    assert_null(k);
    assert_int_equal(kl_keys_from_bytes(raw, 31, &k), KL_EINVAL);
    assert_null(k);
}

static void test_hmac_separation(void **state)
{
    (void)state;
    unsigned char raw1[32] = {1}, raw2[32] = {2};
    kl_keys *a = NULL, *b = NULL;
    unsigned char h1[32], h2[32], h3[32], h4[32], h5[32];
    assert_int_equal(kl_keys_from_bytes(raw1, 32, &a), 0);
    assert_int_equal(kl_keys_from_bytes(raw2, 32, &b), 0);

    hmac_of(a, "apikey", "secret", h1);
    hmac_of(a, "client-secret", "secret", h2);
    hmac_of(b, "apikey", "secret", h3);
    hmac_of(a, "apikey", "secreT", h4);
    assert_memory_not_equal(h1, h2, 32);
    assert_memory_not_equal(h1, h3, 32);
    assert_memory_not_equal(h1, h4, 32);

    /* The label is separated from the message: ("ab", "c") and ("a", "bc") differ. */
    hmac_of(a, "ab", "c", h4);
    hmac_of(a, "a", "bc", h5);
    assert_memory_not_equal(h4, h5, 32);

    /* Deterministic, and the empty message is fine. */
    hmac_of(a, "apikey", "secret", h2);
    assert_memory_equal(h1, h2, 32);
    assert_int_equal(kl_keys_hmac(a, "apikey", NULL, 0, h5), 0);
    assert_int_equal(kl_keys_hmac(a, NULL, "x", 1, h5), KL_EINVAL);

    /* The seal key and the pepper are different subkeys. */
    assert_memory_not_equal(kl_keys_seal_key(a), kl_keys_seal_key(b), 32);
    kl_keys_free(a);
    kl_keys_free(b);
    kl_keys_free(NULL);
}

/* Known answer, computed with the openssl command line tool rather than this code:
 *   pepper = openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:000102..1f
 *            -kdfopt info:"keyless pepper v1" HKDF
 *   printf 'apikey\0hello' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<pepper>
 * and the same kdf with info "keyless seal v1" for the sealing key. */
static void test_known_answer(void **state)
{
    (void)state;
    unsigned char raw[32];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)i;
    kl_keys *k = NULL;
    unsigned char h[32];
    char hex[65];
    assert_int_equal(kl_keys_from_bytes(raw, sizeof(raw), &k), 0);
    hmac_of(k, "apikey", "hello", h);
    kl_hex_encode(h, sizeof(h), hex);
    assert_string_equal(hex, "3c7004226ee71ed4282339de5bbb5f16dc74a3d4d2ab2377641d345684d88e0b");
    kl_hex_encode(kl_keys_seal_key(k), 32, hex);
    assert_string_equal(hex, "396fd387bcbe888e60082473cf0f4d0cc8296b69477adef8c1f8e85938f7feba");
    kl_keys_free(k);
}

/* kl_keys is shared by every worker thread: concurrent keyed hashes must not disturb each
 * other. */
typedef struct hmac_job {
    const kl_keys *k;
    unsigned char want[32];
    int bad;
} hmac_job;

static void *hmac_worker(void *p)
{
    hmac_job *j = p;
    unsigned char h[32];
    for (int i = 0; i < 20000; i++) {
        if (kl_keys_hmac(j->k, "apikey", "concurrent", 10, h) != 0 || memcmp(h, j->want, 32))
            j->bad++;
    }
    return NULL;
}

static void test_hmac_concurrent(void **state)
{
    (void)state;
    unsigned char raw[32] = {9};
    kl_keys *k = NULL;
    assert_int_equal(kl_keys_from_bytes(raw, 32, &k), 0);
    hmac_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].k = k;
        jobs[i].bad = 0;
        hmac_of(k, "apikey", "concurrent", jobs[i].want);
        assert_int_equal(pthread_create(&th[i], NULL, hmac_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].bad, 0);
    }
    kl_keys_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_created_0600_and_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_matches_from_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_readable_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_size_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_owner_refused, setup, teardown),
        cmocka_unit_test(test_missing_dir),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test(test_env_wrong_size),
        cmocka_unit_test(test_hmac_separation),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_hmac_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
