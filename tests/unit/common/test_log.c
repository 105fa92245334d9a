/* The logger: fields that come from the network (paths, methods, names) are escaped,
 * never dropped, and a whole line is still one JSON object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

/* kl_log_string(in, n) must give a JSON string whose value is exactly want. */
static void expect_escaped(const char *in, size_t n, const char *want)
{
    json_t *j = kl_log_string(in, n);
    assert_non_null(j);
    assert_true(json_is_string(j));
    assert_string_equal(json_string_value(j), want);
    assert_int_equal(json_string_length(j), strlen(want));
    json_decref(j);
}

static void test_valid_utf8_is_kept(void **state)
{
    (void)state;
    expect_escaped("/openai/deployments/chat", 24, "/openai/deployments/chat");
    expect_escaped("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15,
                   "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    expect_escaped("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"); /* U+10FFFF, the last */
    expect_escaped("", 0, "");
    expect_escaped(NULL, 0, "");
}

static void test_invalid_bytes_are_escaped(void **state)
{
    (void)state;
    /* The path of issue 6: the field used to vanish from the access log. */
    expect_escaped("/\xff\xfe", 3, "/\\xff\\xfe");
    expect_escaped("\xc0\xaf", 2, "\\xc0\\xaf");                   /* overlong '/' */
    expect_escaped("\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf");          /* overlong, 3 bytes */
    expect_escaped("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");          /* a surrogate */
    expect_escaped("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
    expect_escaped("a\xe2\x82", 3, "a\\xe2\\x82");                 /* cut short at the end */
    expect_escaped("\xe2\x82z", 3, "\\xe2\\x82z");                 /* cut short by ASCII */
    expect_escaped("\x80", 1, "\\x80");                            /* a lone continuation */
    expect_escaped("a\0b", 3, "a\\x00b");                          /* NUL cannot hide the tail */
}

static void test_backslash_is_doubled_so_escapes_are_unambiguous(void **state)
{
    (void)state;
    /* A client that sends the four characters \xff must not look like one who sent 0xff. */
    expect_escaped("\\xff", 4, "\\\\xff");
    expect_escaped("a\\b\xff", 4, "a\\\\b\\xff");
}

static void test_control_bytes_are_escaped_by_the_writer(void **state)
{
    (void)state;
    json_t *o = json_object();
    json_object_set_new(o, "path", kl_log_string("/x\fy\t\x01", 6));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    assert_non_null(s);
    assert_string_equal(s, "{\"path\":\"/x\\fy\\t\\u0001\"}");
    free(s);
    json_decref(o);
}

/* Runs kl_log with stderr on a pipe and returns the line it wrote (caller frees). */
static char *capture_line(const char *value)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    kl_log(KL_LOG_INFO, "test", "value", value, NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char *buf = calloc(1, 4096);
    assert_non_null(buf);
    ssize_t n = read(fds[0], buf, 4095);
    close(fds[0]);
    assert_true(n > 0);
    return buf;
}

static void test_kl_log_keeps_a_non_utf8_field(void **state)
{
    (void)state;
    char *line = capture_line("/\xff\xfe");
    json_error_t err;
    json_t *j = json_loads(line, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "value")), "/\\xff\\xfe");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "test");
    json_decref(j);
    free(line);
}

static void test_secret_buffer_grows_and_reserves_exactly(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init_secret(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kl_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 1000; i++)
        assert_memory_equal(b.data + i * 10, "0123456789", 10);
    kl_buf_free(&b);
    assert_null(b.data);

    kl_buf r;
    kl_buf_init_secret(&r, 100);
    assert_int_equal(kl_buf_reserve(&r, 101), KL_ETOOBIG);
    assert_int_equal(kl_buf_reserve(&r, 100), 0);
    assert_int_equal(r.cap, 101); /* exactly the body and its NUL */
    char *at = r.data;
    assert_int_equal(kl_buf_append(&r, "x", 1), 0);
    assert_ptr_equal(r.data, at); /* no move within the reservation */
    kl_buf_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_utf8_is_kept),
        cmocka_unit_test(test_invalid_bytes_are_escaped),
        cmocka_unit_test(test_backslash_is_doubled_so_escapes_are_unambiguous),
        cmocka_unit_test(test_control_bytes_are_escaped_by_the_writer),
        cmocka_unit_test(test_kl_log_keeps_a_non_utf8_field),
        cmocka_unit_test(test_secret_buffer_grows_and_reserves_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
