/* The key-encryption key and its HKDF subkeys: loading the KEK from the environment or
 * from DIR/kek (created on first start), deriving the sealing key and the pepper, and the
 * keyed hash every secret lookup goes through. */
#include "crypto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"

#define KEK_LEN KL_KEK_BYTES
#define KEK_FILE "kek"
#define SUBKEY_LEN 32
#define SEAL_INFO "keyless seal v1"
#define PEPPER_INFO "keyless pepper v1"

struct kl_keys {
    unsigned char seal_key[SUBKEY_LEN];
    unsigned char pepper[SUBKEY_LEN];
    /* HMAC-SHA-256 already keyed with the pepper. Each kl_keys_hmac call duplicates it, so
     * the hot path never fetches an algorithm and concurrent callers never share state. */
    EVP_MAC *mac;
    EVP_MAC_CTX *hmac_tmpl;
};

static int hkdf_sha256(const unsigned char *ikm, size_t ikm_len, const char *info,
                       unsigned char *out, size_t outlen)
{
    int rc = KL_ECRYPTO;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = NULL;
    if (!kdf)
        goto out;
    kctx = EVP_KDF_CTX_new(kdf);
    if (!kctx)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(kctx, out, outlen, params) != 1)
        goto out;
    rc = 0;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

int kl_keys_from_bytes(const unsigned char *kek, size_t len, kl_keys **out)
{
    int rc = KL_EINVAL;
    kl_keys *k = NULL;
    *out = NULL;
    if (!kek || len != KEK_LEN)
        goto out;
    rc = KL_ENOMEM;
    k = calloc(1, sizeof(*k));
    if (!k)
        goto out;
    rc = hkdf_sha256(kek, len, SEAL_INFO, k->seal_key, sizeof(k->seal_key));
    if (rc)
        goto out;
    rc = hkdf_sha256(kek, len, PEPPER_INFO, k->pepper, sizeof(k->pepper));
    if (rc)
        goto out;
    rc = KL_ECRYPTO;
    k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!k->mac)
        goto out;
    k->hmac_tmpl = EVP_MAC_CTX_new(k->mac);
    if (!k->hmac_tmpl)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(k->hmac_tmpl, k->pepper, sizeof(k->pepper), params) != 1)
        goto out;
    *out = k;
    k = NULL;
    rc = 0;
out:
    kl_keys_free(k);
    return rc;
}

/* Reads exactly n bytes; a short file is an error, not a smaller key. */
static int read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return KL_EIO;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const unsigned char *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, buf + put, n - put);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return KL_EIO;
        put += (size_t)w;
    }
    return 0;
}

/* Opens name relative to dir_fd (AT_FDCWD for a path given by the operator) and checks it
 * before trusting it: not a symbolic link (O_NOFOLLOW: a link could point anywhere; a key
 * kept elsewhere is named by its own path, --kek-file, or goes through KEYLESS_KEK), a
 * regular file owned by the effective uid, no group or other permission bits, exactly
 * KEK_LEN bytes. */
static int read_kek_at(int dir_fd, const char *name, unsigned char kek[KEK_LEN])
{
    int rc = KL_EIO;
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? KL_ENOTFOUND : errno == ELOOP ? KL_EPERM : KL_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto out;
    rc = KL_EPERM;
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)))
        goto out;
    rc = KL_EINVAL;
    if (st.st_size != KEK_LEN)
        goto out;
    rc = read_full(fd, kek, KEK_LEN);
    if (rc)
        goto out;
    /* The size was checked above, but the file could have grown since. */
    unsigned char extra;
    ssize_t r = read(fd, &extra, 1);
    if (r != 0)
        rc = r < 0 ? KL_EIO : KL_EINVAL;
out:
    close(fd);
    return rc;
}

/* Creates dir_fd/kek with fresh random bytes. The bytes go to a private temporary file
 * first and are linked into place, so a crash never leaves a short kek and two starting
 * processes cannot both win: linkat() fails with EEXIST for the loser, which then reads
 * the winner's. */
static int create_kek_file(int dir_fd)
{
    int rc = KL_EIO;
    unsigned char kek[KEK_LEN];
    unsigned char rnd[8];
    char tmp[64];
    char hex[sizeof(rnd) * 2 + 1];
    int fd = -1;
    bool created = false;

    if (RAND_bytes(kek, sizeof(kek)) != 1 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        rc = KL_ECRYPTO;
        goto out;
    }
    kl_hex_encode(rnd, sizeof(rnd), hex);
    int len = snprintf(tmp, sizeof(tmp), ".kek.%s.tmp", hex);
    if (len < 0 || (size_t)len >= sizeof(tmp)) {
        rc = KL_EINVAL;
        goto out;
    }
    fd = openat(dir_fd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    created = true;
    if (write_full(fd, kek, sizeof(kek)) != 0 || fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (linkat(dir_fd, tmp, dir_fd, KEK_FILE, 0) != 0) {
        rc = errno == EEXIST ? KL_EEXIST : KL_EIO;
        goto out;
    }
    fsync(dir_fd);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlinkat(dir_fd, tmp, 0);
    OPENSSL_cleanse(kek, sizeof(kek));
    return rc;
}

static int load_from_env(const char *env_b64, unsigned char kek[KEK_LEN])
{
    /* One spare byte so a longer value is seen as the wrong size, not as too big. */
    unsigned char buf[KEK_LEN + 3];
    size_t n = strlen(env_b64);
    if (n == 0 || n > 64)
        return KL_EINVAL;
    int len = kl_b64_decode(env_b64, n, buf, sizeof(buf));
    int rc = 0;
    if (len != KEK_LEN)
        rc = KL_EINVAL;
    else
        memcpy(kek, buf, KEK_LEN);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int kl_keys_load(int dir_fd, const char *env_b64, kl_keys **out)
{
    int rc = KL_EINVAL;
    unsigned char kek[KEK_LEN];
    *out = NULL;

    if (env_b64) {
        rc = load_from_env(env_b64, kek);
        if (rc)
            goto out;
    } else {
        if (dir_fd < 0)
            goto out;
        rc = read_kek_at(dir_fd, KEK_FILE, kek);
        if (rc == KL_ENOTFOUND) {
            rc = create_kek_file(dir_fd);
            if (rc && rc != KL_EEXIST)
                goto out;
            rc = read_kek_at(dir_fd, KEK_FILE, kek);
        }
        if (rc)
            goto out;
    }
    rc = kl_keys_from_bytes(kek, sizeof(kek), out);
out:
    OPENSSL_cleanse(kek, sizeof(kek));
    return rc;
}

int kl_keys_load_file(const char *path, kl_keys **out)
{
    unsigned char kek[KEK_LEN];
    *out = NULL;
    if (!path || !*path)
        return KL_EINVAL;
    int rc = read_kek_at(AT_FDCWD, path, kek);
    if (!rc)
        rc = kl_keys_from_bytes(kek, sizeof(kek), out);
    OPENSSL_cleanse(kek, sizeof(kek));
    return rc;
}

void kl_keys_free(kl_keys *k)
{
    if (!k)
        return;
    EVP_MAC_CTX_free(k->hmac_tmpl);
    EVP_MAC_free(k->mac);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

int kl_keys_hmac(const kl_keys *k, const char *label, const void *msg, size_t n,
                 unsigned char out[32])
{
    int rc = KL_EINVAL;
    EVP_MAC_CTX *ctx = NULL;
    if (!k || !label || (!msg && n))
        goto out;
    rc = KL_ECRYPTO;
    ctx = EVP_MAC_CTX_dup(k->hmac_tmpl);
    if (!ctx)
        goto out;
    static const unsigned char sep = 0x00;
    size_t outlen = 0;
    if (EVP_MAC_update(ctx, (const unsigned char *)label, strlen(label)) != 1 ||
        EVP_MAC_update(ctx, &sep, 1) != 1 || (n && EVP_MAC_update(ctx, msg, n) != 1) ||
        EVP_MAC_final(ctx, out, &outlen, 32) != 1 || outlen != 32)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

const unsigned char *kl_keys_seal_key(const kl_keys *k)
{
    return k->seal_key;
}
