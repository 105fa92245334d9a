/* What the policy tests share: a real SQLite store in a directory of its own (so each
 * test owns its state and removes it), and a key set from a fixed KEK. */
#ifndef KL_TEST_POLICY_FIXTURE_H
#define KL_TEST_POLICY_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "store/store.h"

/* Makes a directory from tmpl ("/tmp/kl-x-XXXXXX") in dir, and opens (migrating) the
 * store path = dir/keyless.db in it as *st. Fails the test on any error. */
static inline void test_store_open(char dir[64], char path[128], const char *tmpl, kl_store **st)
{
    snprintf(dir, 64, "%s", tmpl);
    assert_non_null(mkdtemp(dir));
    snprintf(path, 128, "%s/keyless.db", dir);
    assert_int_equal(kl_store_open_sqlite(path, st), 0);
}

/* Removes dir and every file in it (the database and its -wal and -shm); the store in
 * it is closed first. */
static inline void test_store_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* A key set whose KEK is 32 bytes of fill; the caller frees it (kl_keys_free). */
static inline kl_keys *test_keys_with(unsigned char fill)
{
    unsigned char kek[32];
    memset(kek, fill, sizeof(kek));
    kl_keys *k = NULL;
    assert_int_equal(kl_keys_from_bytes(kek, sizeof(kek), &k), 0);
    return k;
}

#endif
