/* Small helpers shared by every component: GUIDs, time, base64url, hex, hashing for
 * log correlation, constant-time comparison. */
#ifndef KL_COMMON_UTIL_H
#define KL_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KL_UUID_LEN 36

/* Writes a random (v4) GUID, lower case, NUL-terminated, into out[37]. 0 or KL_ECRYPTO. */
int kl_uuid_v4(char out[KL_UUID_LEN + 1]);

/* n random bytes for an identifier that must be unique and unguessable but is no secret
 * (GUIDs, a token's uti): served from a per-thread pool the CSPRNG refills, because one
 * RAND_bytes call costs as much as a few hundred bytes from it. Never for keys, secrets
 * or nonces. 0 or KL_ECRYPTO. */
int kl_random_id(void *out, size_t n);
/* True if s[0..n) is a GUID in 8-4-4-4-12 hex form (either case). */
bool kl_uuid_valid(const char *s, size_t n);
/* kl_uuid_valid of a NUL-terminated s; false for NULL. */
bool kl_uuid_valid_str(const char *s);

/* Milliseconds on the monotonic clock; and seconds since the epoch. */
uint64_t kl_now_mono_ms(void);
uint64_t kl_now_mono_us(void);
int64_t kl_now_unix(void);
/* Writes an ISO 8601 UTC time like 2026-11-28T10:04:13.000Z into out (>= 25 bytes). */
void kl_time_iso8601(int64_t unix_seconds, char *out, size_t outlen);

/* base64url without padding. Encode writes a NUL-terminated string and returns its
 * length, or a negative kl_err if out is too small (needs 4*ceil(n/3)+1). Decode accepts
 * input without padding, returns decoded length or a negative kl_err. */
int kl_b64url_encode(const void *in, size_t n, char *out, size_t outlen);
int kl_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outlen);
/* Standard base64 with padding, same conventions. */
int kl_b64_encode(const void *in, size_t n, char *out, size_t outlen);
int kl_b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen);

/* Lower-case hex; out needs 2n+1 bytes. */
void kl_hex_encode(const void *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1 if c is not one. */
int kl_hex_digit(unsigned char c);

/* Constant-time equality of two byte strings (lengths are not secret). */
bool kl_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* ASCII case-insensitive comparisons. */
bool kl_str_ieq(const char *a, const char *b);
bool kl_str_ieqn(const char *a, size_t alen, const char *b, size_t blen);
bool kl_str_istarts(const char *s, const char *prefix);

/* Duplicates s[0..n) with a NUL; NULL on allocation failure. */
char *kl_strndup(const char *s, size_t n);

/* ASCII case folding, the one rule for names, ids, scopes and host names: only 'A'-'Z'
 * change, never by locale, so every node and both store engines fold alike. */
static inline char kl_ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}
/* dst[0..n) = the lower case of src[0..n), then dst[n] = '\0' (dst may be src). */
void kl_ascii_lower_copy(char *dst, const char *src, size_t n);
/* s lower-cased where it stands; NULL is fine. */
void kl_ascii_lower_inplace(char *s);
/* <0, 0 or >0 as a sorts before, with or after b when both are lower-cased. */
int kl_ascii_icmp(const char *a, const char *b);
/* A lower-cased malloc'd copy of s; NULL for NULL s or when out of memory. */
char *kl_ascii_lower_dup(const char *s);
/* FNV-1a of the lower case of s[0..n), continuing from h (start at KL_FNV_BASIS): the
 * hash of the case-insensitive lookup tables (accounts, principals, identities). */
#define KL_FNV_BASIS 0xcbf29ce484222325ULL
static inline uint64_t kl_fnv_lower(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)kl_ascii_lower(s[i]);
        h *= 0x100000001b3ULL;
    }
    return h;
}

#endif
