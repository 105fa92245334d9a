/* Fuzz target for the token endpoint's form parser (token/form.h). Checks: a refusal
 * returns no form; an accepted form has at most KL_MAX_FORM_PARAMS parameters with
 * non-empty, distinct, bounded names; every parameter is found by name with its value;
 * a decoded '+' comes only from "%2B"; and percent-encoding the parsed form again and re-parsing
 * gives the same parameters. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "token/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* Appends s percent-encoded (unreserved characters kept) at *o. */
static void encode(const char *s, char *out, size_t *o)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            out[(*o)++] = (char)*p;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[*p >> 4];
            out[(*o)++] = hex[*p & 15];
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    kl_form *f = NULL;
    kl_form_reason r = kl_form_parse(in, size, &f, NULL, 0);
    CHECK(r >= KL_FORM_OK && r < KL_FORM_REASON_COUNT);
    CHECK((r == KL_FORM_OK) == (f != NULL));
    if (!f) {
        free(in);
        return 0;
    }
    size_t count = kl_form_count(f);
    CHECK(count <= KL_MAX_FORM_PARAMS);
    /* A decoded '+' can only come from "%2B": a raw '+' is a space. */
    size_t enc_plus = 0, dec_plus = 0;
    for (size_t i = 0; i + 2 < size; i++)
        enc_plus += in[i] == '%' && in[i + 1] == '2' && (in[i + 2] == 'B' || in[i + 2] == 'b');
    for (size_t i = 0; i < count; i++) {
        for (const char *p = kl_form_name(f, i); *p; p++)
            dec_plus += *p == '+';
        for (const char *p = kl_form_value(f, i); *p; p++)
            dec_plus += *p == '+';
    }
    CHECK(dec_plus == enc_plus);
    /* Re-encoding at most triples each byte; plus separators. */
    char *again = malloc(3 * size + 2 * count + 1);
    CHECK(again);
    size_t o = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = kl_form_name(f, i), *value = kl_form_value(f, i);
        size_t vlen = 0;
        CHECK(name[0] != '\0' && strlen(name) <= KL_MAX_FORM_NAME);
        CHECK(kl_form_get(f, name, &vlen) == value && vlen == strlen(value));
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(kl_form_name(f, k), name) != 0);
        if (i)
            again[o++] = '&';
        encode(name, again, &o);
        again[o++] = '=';
        encode(value, again, &o);
    }
    kl_form *g = NULL;
    if (o <= KL_MAX_FORM_BYTES) {
        CHECK(kl_form_parse(again, o, &g, NULL, 0) == KL_FORM_OK);
        CHECK(kl_form_count(g) == count);
        for (size_t i = 0; i < count; i++) {
            CHECK(strcmp(kl_form_name(g, i), kl_form_name(f, i)) == 0);
            CHECK(strcmp(kl_form_value(g, i), kl_form_value(f, i)) == 0);
        }
        kl_form_free(g);
    }
    free(again);
    kl_form_free(f);
    free(in);
    return 0;
}
