/* Fuzz target for the base64 and base64url codecs (common/util.h): decoding never reads
 * or writes out of bounds, accepts each value in exactly one (canonical) spelling, and
 * encoding then decoding gives back the bytes. Buffers are sized exactly, so ASan sees
 * any write past the length the caller passed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

typedef int (*decode_fn)(const char *, size_t, unsigned char *, size_t);
typedef int (*encode_fn)(const void *, size_t, char *, size_t);

static size_t enc_size(size_t n)
{
    return 4 * ((n + 2) / 3) + 1;
}

static size_t strip_pad(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    return n;
}

/* Decodes in; if it is accepted, re-encodes and compares with the input. */
static void check_decode(const char *in, size_t n, decode_fn dec, encode_fn enc, bool padded)
{
    size_t cap = n / 4 * 3 + 3;
    unsigned char *out = malloc(cap);
    CHECK(out);
    int k = dec(in, n, out, cap);
    CHECK(k >= 0 || k == KL_EINVAL);
    if (k < 0) {
        free(out);
        return;
    }
    size_t body = strip_pad(in, n);
    CHECK((size_t)k == body * 3 / 4);

    /* An exact-size buffer works; one byte less is refused, never overrun. */
    unsigned char *exact = malloc((size_t)k + 1);
    CHECK(exact);
    CHECK(dec(in, n, exact, (size_t)k) == k);
    CHECK(memcmp(exact, out, (size_t)k) == 0);
    if (k > 0)
        CHECK(dec(in, n, exact, (size_t)k - 1) == KL_ETOOBIG);
    free(exact);

    /* Canonical: encoding the result spells the input again (padding aside, and a
     * padded input must carry exactly the padding the encoder writes). */
    size_t es = enc_size((size_t)k);
    char *re = malloc(es);
    CHECK(re);
    int m = enc(out, (size_t)k, re, es);
    CHECK(m >= 0 && (size_t)m < es && re[m] == '\0');
    size_t rbody = strip_pad(re, (size_t)m);
    CHECK(rbody == body && memcmp(re, in, body) == 0);
    if (padded && n != body)
        CHECK((size_t)m == n && memcmp(re, in, n) == 0);
    if (!padded)
        CHECK((size_t)m == rbody);
    free(re);
    free(out);
}

/* Encodes arbitrary bytes and decodes them back. */
static void check_roundtrip(const uint8_t *data, size_t size, decode_fn dec, encode_fn enc,
                            bool padded)
{
    size_t es = enc_size(size);
    char *e = malloc(es);
    CHECK(e);
    if (es > 1)
        CHECK(enc(data, size, e, es - 1) == KL_ETOOBIG);
    int m = enc(data, size, e, es);
    CHECK(m >= 0 && (size_t)m < es && strlen(e) == (size_t)m);
    if (padded)
        CHECK((size_t)m == es - 1);
    unsigned char *d = malloc(size + 1);
    CHECK(d);
    int k = dec(e, (size_t)m, d, size);
    CHECK(k >= 0 && (size_t)k == size && memcmp(d, data, size) == 0);
    if (padded) {
        /* Padding is optional on input. */
        k = dec(e, strip_pad(e, (size_t)m), d, size);
        CHECK(k >= 0 && (size_t)k == size && memcmp(d, data, size) == 0);
    }
    free(d);
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so reading past it is caught. */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    check_decode(in, size, kl_b64url_decode, kl_b64url_encode, false);
    check_decode(in, size, kl_b64_decode, kl_b64_encode, true);
    free(in);
    check_roundtrip(data, size, kl_b64url_decode, kl_b64url_encode, false);
    check_roundtrip(data, size, kl_b64_decode, kl_b64_encode, true);
    return 0;
}
