/* Form parser: an MSAL client-credentials body, decoding rules, duplicates and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "token/form.h"

static kl_form_reason parse(const char *s)
{
    kl_form *f = NULL;
    kl_form_reason r = kl_form_parse(s, strlen(s), &f, NULL, 0);
    assert_true((r == KL_FORM_OK) == (f != NULL));
    kl_form_free(f);
    return r;
}

static void test_msal_body(void **state)
{
    (void)state;
    const char *body = "client_id=0b2c3d4e-0000-4000-8000-000000000001"
                       "&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default"
                       "&grant_type=client_credentials"
                       "&x-client-SKU=msal.js.node&x-client-VER=2.16.2"
                       "&x-ms-lib-capability=retry-after,+h429"
                       "&client_secret=a%2Bb%3D%26c+d~"
                       "&client-request-id=2a4c9b8e-1f3d-4e5a-9b7c-6d8e0f1a2b3c";
    kl_form *f = NULL;
    assert_int_equal(kl_form_parse(body, strlen(body), &f, NULL, 0), KL_FORM_OK);
    assert_int_equal(kl_form_count(f), 8);
    size_t len = 0;
    assert_string_equal(kl_form_get(f, "scope", &len),
                        "https://cognitiveservices.azure.com/.default");
    assert_int_equal(len, strlen("https://cognitiveservices.azure.com/.default"));
    assert_string_equal(kl_form_get(f, "client_secret", NULL), "a+b=&c d~");
    assert_string_equal(kl_form_get(f, "x-ms-lib-capability", NULL), "retry-after, h429");
    assert_null(kl_form_get(f, "Scope", NULL));
    assert_null(kl_form_get(f, "password", NULL));
    assert_string_equal(kl_form_name(f, 0), "client_id");
    assert_string_equal(kl_form_value(f, 2), "client_credentials");
    kl_form_free(f);
}

static void test_empty_and_bare(void **state)
{
    (void)state;
    kl_form *f = NULL;
    assert_int_equal(kl_form_parse("", 0, &f, NULL, 0), KL_FORM_OK);
    assert_int_equal(kl_form_count(f), 0);
    kl_form_free(f);
    /* A name without '=' has an empty value; an empty value is kept as "". */
    assert_int_equal(kl_form_parse("a&b=", 4, &f, NULL, 0), KL_FORM_OK);
    assert_string_equal(kl_form_get(f, "a", NULL), "");
    assert_string_equal(kl_form_get(f, "b", NULL), "");
    kl_form_free(f);
    assert_int_equal(parse("=x"), KL_FORM_EMPTY_NAME);
    assert_int_equal(parse("a=1&&b=2"), KL_FORM_EMPTY_NAME);
    assert_int_equal(parse("a=1&"), KL_FORM_EMPTY_NAME);
    assert_int_equal(parse("&a=1"), KL_FORM_EMPTY_NAME);
}

static void test_encoding(void **state)
{
    (void)state;
    assert_int_equal(parse("a=%4"), KL_FORM_BAD_ENCODING);
    assert_int_equal(parse("a=%zz"), KL_FORM_BAD_ENCODING);
    assert_int_equal(parse("a=%00"), KL_FORM_BAD_ENCODING);
    assert_int_equal(parse("a%00=1"), KL_FORM_BAD_ENCODING);
    assert_int_equal(parse("a=b c"), KL_FORM_BAD_ENCODING);       /* raw space */
    assert_int_equal(parse("a=b\nc"), KL_FORM_BAD_ENCODING);      /* raw control byte */
    assert_int_equal(parse("a=\xc3\xa9"), KL_FORM_BAD_ENCODING);  /* raw non-ASCII */
    assert_int_equal(parse("a=%C3%A9"), KL_FORM_OK);              /* é, encoded */
    assert_int_equal(parse("a=%C3"), KL_FORM_BAD_ENCODING);       /* truncated UTF-8 */
    assert_int_equal(parse("a=%C0%AF"), KL_FORM_BAD_ENCODING);    /* overlong '/' */
    assert_int_equal(parse("a=%ED%A0%80"), KL_FORM_BAD_ENCODING); /* a surrogate */
    kl_form *f = NULL;
    const char *s = "a=%2b%2B+%25";
    assert_int_equal(kl_form_parse(s, strlen(s), &f, NULL, 0), KL_FORM_OK);
    assert_string_equal(kl_form_get(f, "a", NULL), "++ %");
    kl_form_free(f);
    /* The body need not be NUL-terminated: only n bytes are read. */
    assert_int_equal(kl_form_parse("a=1&b=2", 3, &f, NULL, 0), KL_FORM_OK);
    assert_int_equal(kl_form_count(f), 1);
    kl_form_free(f);
}

static void test_duplicate(void **state)
{
    (void)state;
    char name[8];
    kl_form *f = NULL;
    const char *s = "grant_type=client_credentials&client_id=a&client_id=b";
    assert_int_equal(kl_form_parse(s, strlen(s), &f, name, sizeof(name)), KL_FORM_DUPLICATE);
    assert_null(f);
    assert_string_equal(name, "client_");
    /* Equal after decoding is the same parameter. */
    assert_int_equal(parse("scope=a&sc%6Fpe=b"), KL_FORM_DUPLICATE);
    assert_int_equal(parse("scope=a&Scope=b"), KL_FORM_OK);
}

static void test_limits(void **state)
{
    (void)state;
    size_t cap = KL_MAX_FORM_BYTES + 64;
    char *b = malloc(cap);
    assert_non_null(b);
    /* KL_MAX_FORM_PARAMS parameters pass; one more does not. */
    size_t n = 0;
    for (int i = 0; i < KL_MAX_FORM_PARAMS; i++)
        n += (size_t)snprintf(b + n, cap - n, "%sp%d=1", i ? "&" : "", i);
    assert_int_equal(parse(b), KL_FORM_OK);
    snprintf(b + n, cap - n, "&extra=1");
    assert_int_equal(parse(b), KL_FORM_TOO_MANY);
    /* A value of KL_MAX_FORM_VALUE bytes passes; one more does not. */
    memcpy(b, "v=", 2);
    memset(b + 2, 'x', KL_MAX_FORM_VALUE + 1);
    b[2 + KL_MAX_FORM_VALUE] = '\0';
    assert_int_equal(parse(b), KL_FORM_OK);
    b[2 + KL_MAX_FORM_VALUE] = 'x';
    b[3 + KL_MAX_FORM_VALUE] = '\0';
    assert_int_equal(parse(b), KL_FORM_TOO_BIG);
    /* Names likewise. */
    memset(b, 'n', KL_MAX_FORM_NAME + 1);
    memcpy(b + KL_MAX_FORM_NAME + 1, "=1", 3);
    assert_int_equal(parse(b), KL_FORM_TOO_BIG);
    memcpy(b + KL_MAX_FORM_NAME, "=1", 3);
    assert_int_equal(parse(b), KL_FORM_OK);
    /* The whole body. */
    kl_form *f = NULL;
    memset(b, 'a', KL_MAX_FORM_BYTES + 1);
    assert_int_equal(kl_form_parse(b, KL_MAX_FORM_BYTES + 1, &f, NULL, 0), KL_FORM_TOO_BIG);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msal_body), cmocka_unit_test(test_empty_and_bare),
        cmocka_unit_test(test_encoding),  cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
