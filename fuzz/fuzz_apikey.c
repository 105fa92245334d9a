/* Fuzz target for the API key format check (crypto/apikey.h): any bytes are safe to
 * test, only the documented shape passes, and the checksum catches every single-character
 * typo and every swap of two neighbouring characters in a key that passes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/apikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool is_b62(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* Every change a person is likely to make when copying a key must be caught. */
static void check_typos(const char *key)
{
    char k[KL_APIKEY_LEN];
    const size_t pl = strlen(KL_APIKEY_PREFIX);
    for (size_t i = pl; i < KL_APIKEY_LEN; i++) {
        for (size_t j = 0; j < sizeof(b62) - 1; j++) {
            if (b62[j] == key[i])
                continue;
            memcpy(k, key, KL_APIKEY_LEN);
            k[i] = b62[j];
            CHECK(!kl_apikey_wellformed(k, KL_APIKEY_LEN));
        }
        if (i + 1 < KL_APIKEY_LEN && key[i] != key[i + 1]) {
            memcpy(k, key, KL_APIKEY_LEN);
            k[i] = key[i + 1];
            k[i + 1] = key[i];
            CHECK(!kl_apikey_wellformed(k, KL_APIKEY_LEN));
        }
    }
    /* Truncated or extended copies. */
    CHECK(!kl_apikey_wellformed(key, KL_APIKEY_LEN - 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so a read past the length is caught. */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    if (kl_apikey_wellformed(s, size)) {
        CHECK(size == KL_APIKEY_LEN);
        CHECK(memcmp(s, KL_APIKEY_PREFIX, strlen(KL_APIKEY_PREFIX)) == 0);
        for (size_t i = 0; i < size; i++)
            CHECK(is_b62(s[i]));
        check_typos(s);
    }
    free(s);
    return 0;
}
