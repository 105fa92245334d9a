/* The people-facing pages' building blocks: escaping keeps caller values text, cookies
 * are read and written with the attributes security.md T14 asks for, the CSRF check
 * accepts only two equal well-formed tokens, and the page's policy allows nothing but
 * its own style and posting back (plus one checked origin). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "gateway/webpage.h"

static void test_escape(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 1024);
    assert_int_equal(kl_webpage_escape(&b, "<script>alert('x')</script> & \"q\""), 0);
    assert_string_equal(b.data,
                        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
    kl_buf_reset(&b);
    assert_int_equal(kl_webpage_escape(&b, "plain"), 0);
    assert_string_equal(b.data, "plain");
    assert_int_equal(kl_webpage_escape(&b, NULL), 0);
    kl_buf_free(&b);
    kl_buf_init(&b, 4);
    assert_int_equal(kl_webpage_escape(&b, "<<"), KL_ETOOBIG);
    kl_buf_free(&b);
}

static void test_cookie_find(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(kl_webpage_cookie_find("a=1; kl_csrf=abc; b=2", "kl_csrf", v, sizeof(v)), 0);
    assert_string_equal(v, "abc");
    /* A name that merely ends or starts like the one asked for is another cookie. */
    assert_int_equal(kl_webpage_cookie_find("xkl_csrf=1;kl_csrfx=2", "kl_csrf", v, sizeof(v)),
                     KL_ENOTFOUND);
    assert_int_equal(kl_webpage_cookie_find("kl_csrf=\"q\"", "kl_csrf", v, sizeof(v)), 0);
    assert_string_equal(v, "q");
    assert_int_equal(kl_webpage_cookie_find("kl_csrf=first; kl_csrf=second", "kl_csrf", v, 64), 0);
    assert_string_equal(v, "first");
    assert_int_equal(kl_webpage_cookie_find("kl_csrf", "kl_csrf", v, sizeof(v)), KL_ENOTFOUND);
    assert_int_equal(kl_webpage_cookie_find(NULL, "kl_csrf", v, sizeof(v)), KL_ENOTFOUND);
    assert_int_equal(kl_webpage_cookie_find("kl_csrf=0123456789", "kl_csrf", v, 5), KL_ETOOBIG);
}

static void test_cookie_header(void **state)
{
    (void)state;
    char h[256];
    assert_int_equal(kl_webpage_cookie_header(h, sizeof(h), "kl_session", "abc", 3600), 0);
    assert_string_equal(h, "kl_session=abc; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600");
    assert_int_equal(kl_webpage_cookie_header(h, sizeof(h), "kl_csrf", "x", -1), 0);
    assert_string_equal(h, "kl_csrf=x; Path=/; Secure; HttpOnly; SameSite=Lax");
    assert_int_equal(kl_webpage_cookie_header(h, sizeof(h), "kl_session", "", 0), 0);
    assert_string_equal(h, "kl_session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
    /* A value that would add an attribute or a second cookie is refused. */
    assert_int_equal(kl_webpage_cookie_header(h, sizeof(h), "a", "v; Domain=evil", -1), KL_EINVAL);
    assert_int_equal(kl_webpage_cookie_header(h, sizeof(h), "a=b", "v", -1), KL_EINVAL);
    assert_int_equal(kl_webpage_cookie_header(h, 10, "kl_session", "abc", -1), KL_ETOOBIG);
}

static void test_csrf(void **state)
{
    (void)state;
    char a[KL_WEBPAGE_TOKEN_LEN + 1], b[KL_WEBPAGE_TOKEN_LEN + 1];
    assert_int_equal(kl_webpage_token(a), 0);
    assert_int_equal(kl_webpage_token(b), 0);
    assert_int_equal(strlen(a), KL_WEBPAGE_TOKEN_LEN);
    assert_true(kl_webpage_token_valid(a));
    assert_string_not_equal(a, b);
    assert_true(kl_webpage_csrf_equal(a, a));
    assert_false(kl_webpage_csrf_equal(a, b));
    assert_false(kl_webpage_csrf_equal(a, NULL));
    assert_false(kl_webpage_csrf_equal(NULL, a));
    assert_false(kl_webpage_csrf_equal("", ""));
    /* Equal but not tokens (an attacker's own short value in both places). */
    assert_false(kl_webpage_csrf_equal("x", "x"));
    char c[KL_WEBPAGE_TOKEN_LEN + 1];
    memcpy(c, a, sizeof(c));
    c[5] = '!';
    assert_false(kl_webpage_token_valid(c));
    assert_false(kl_webpage_csrf_equal(c, c));
}

static void test_csp(void **state)
{
    (void)state;
    char p[1024];
    assert_int_equal(kl_webpage_csp(p, sizeof(p), NULL), 0);
    assert_non_null(strstr(p, "default-src 'none'"));
    assert_non_null(strstr(p, "style-src 'sha256-"));
    assert_non_null(strstr(p, "form-action 'self';"));
    assert_non_null(strstr(p, "frame-ancestors 'none'"));
    assert_null(strstr(p, "unsafe"));
    assert_null(strstr(p, "script-src")); /* only the form_post page runs a script */
    assert_int_equal(kl_webpage_csp(p, sizeof(p), "http://127.0.0.1:4000"), 0);
    assert_non_null(strstr(p, "form-action 'self' http://127.0.0.1:4000;"));
    /* Anything that could add a directive or a source is refused. */
    assert_int_equal(kl_webpage_csp(p, sizeof(p), "https://a.example; script-src *"), KL_EINVAL);
    assert_int_equal(kl_webpage_csp(p, sizeof(p), "https://a.example *"), KL_EINVAL);
    assert_int_equal(kl_webpage_csp(p, sizeof(p), "javascript:x"), KL_EINVAL);
    assert_int_equal(kl_webpage_csp(p, 20, NULL), KL_ETOOBIG);
}

static void test_origin(void **state)
{
    (void)state;
    char o[128];
    assert_int_equal(kl_webpage_origin("http://127.0.0.1:4000/cb?x=1", o, sizeof(o)), 0);
    assert_string_equal(o, "http://127.0.0.1:4000");
    assert_int_equal(kl_webpage_origin("https://app.example", o, sizeof(o)), 0);
    assert_string_equal(o, "https://app.example");
    assert_int_equal(kl_webpage_origin("https://u@evil.example/", o, sizeof(o)), KL_EINVAL);
    assert_int_equal(kl_webpage_origin("ms-app://x", o, sizeof(o)), KL_EINVAL);
    assert_int_equal(kl_webpage_origin("https:///x", o, sizeof(o)), KL_EINVAL);
}

static void test_render(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 64 * 1024);
    assert_int_equal(kl_webpage_render(&b, "Sign <in>", "<p>hi</p>"), 0);
    assert_non_null(strstr(b.data, "<meta name=\"viewport\""));
    assert_non_null(strstr(b.data, "<h1>Sign &lt;in&gt;</h1>"));
    assert_non_null(strstr(b.data, "<p>hi</p>"));
    assert_null(strstr(b.data, "<script"));
    assert_null(strstr(b.data, "http")); /* no external asset of any kind */
    assert_non_null(strstr(b.data, "<style>"));
    kl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),        cmocka_unit_test(test_cookie_find),
        cmocka_unit_test(test_cookie_header), cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_csp),           cmocka_unit_test(test_origin),
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
