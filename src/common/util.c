/* Shared helpers; see util.h for contracts. */
#include "common/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

/* Bytes taken from the CSPRNG per refill of a thread's identifier pool. */
#define ID_POOL_BYTES 512

int kl_random_id(void *out, size_t n)
{
    /* Per thread, so no lock; refilled when spent or when the process is a fork of the
     * one that filled it (a child must not repeat its parent's identifiers). */
    static _Thread_local unsigned char pool[ID_POOL_BYTES];
    static _Thread_local size_t left;
    static _Thread_local pid_t owner;
    if (n > sizeof(pool))
        return RAND_bytes(out, (int)n) == 1 ? 0 : KL_ECRYPTO;
    pid_t pid = getpid();
    if (left < n || owner != pid) {
        if (RAND_bytes(pool, sizeof(pool)) != 1) {
            left = 0;
            return KL_ECRYPTO;
        }
        left = sizeof(pool);
        owner = pid;
    }
    memcpy(out, pool + sizeof(pool) - left, n);
    left -= n;
    return 0;
}

int kl_uuid_v4(char out[KL_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (kl_random_id(b, sizeof(b)) != 0)
        return KL_ECRYPTO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
    return 0;
}

bool kl_uuid_valid(const char *s, size_t n)
{
    if (!s || n != KL_UUID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

uint64_t kl_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t kl_now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t kl_now_unix(void)
{
    return (int64_t)time(NULL);
}

void kl_time_iso8601(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

int kl_b64_encode(const void *in, size_t n, char *out, size_t outlen)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (outlen < need || n > (size_t)1 << 30)
        return KL_ETOOBIG;
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return len;
}

int kl_b64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
    int len = kl_b64_encode(in, n, out, outlen);
    if (len < 0)
        return len;
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return len;
}

static int b64_val(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* One decoder for both alphabets; padding is optional but must be correct if present. */
static int b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen, bool url)
{
    size_t pad = 0;
    while (n > 0 && in[n - 1] == '=') {
        n--;
        pad++;
    }
    /* Padding is optional, but when present it must complete the last quantum. */
    if (pad && (pad > 2 || (n + pad) % 4 != 0))
        return KL_EINVAL;
    if (n % 4 == 1)
        return KL_EINVAL;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > outlen)
        return KL_ETOOBIG;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)in[i], url);
        if (v < 0)
            return KL_EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, so each value has exactly one encoding. */
    if (bits && (acc & ((1u << bits) - 1)))
        return KL_EINVAL;
    return (int)o;
}

int kl_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
    return b64_decode(in, n, out, outlen, true);
}

int kl_b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
    return b64_decode(in, n, out, outlen, false);
}

void kl_hex_encode(const void *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int kl_hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool kl_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

bool kl_str_ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

bool kl_str_ieqn(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

bool kl_str_istarts(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

char *kl_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void kl_ascii_lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = kl_ascii_lower(src[i]);
    dst[n] = '\0';
}

void kl_ascii_lower_inplace(char *s)
{
    for (; s && *s; s++)
        *s = kl_ascii_lower(*s);
}

char *kl_ascii_lower_dup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (c)
        kl_ascii_lower_copy(c, s, n);
    return c;
}

int kl_ascii_icmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)kl_ascii_lower(*a), y = (unsigned char)kl_ascii_lower(*b);
        if (x != y || !x)
            return (int)x - (int)y;
    }
}

bool kl_uuid_valid_str(const char *s)
{
    return s && kl_uuid_valid(s, strlen(s));
}
