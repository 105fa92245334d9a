/* The echo model and request bodies: exact JSON answers (content echo, usage word
 * counts, 16-dimension unit vectors from SHA-256), refusals of malformed bodies, and the
 * SSE stream's framing and chunk sequence as the openai SDK needs it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "gateway/body.h"
#include "gateway/echo.h"
#include "gateway/sse.h"

static const kl_echo_opts OPTS = {.model = "gpt-4o-mini", .id = "ID-1", .created = 1700000000};

static json_t *parse(const char *s)
{
    json_t *j = NULL;
    kl_gateway_body_err e;
    assert_int_equal(kl_gateway_body_parse((const unsigned char *)s, strlen(s), &j, &e), 0);
    return j;
}

static json_t *valid(kl_gateway_route_kind kind, const char *s)
{
    json_t *j = parse(s);
    kl_gateway_body_err e;
    assert_int_equal(kl_gateway_body_validate(kind, j, &e), 0);
    return j;
}

typedef int (*echo_fn)(const json_t *, const kl_echo_opts *, kl_buf *);

static char *run(echo_fn fn, const json_t *req, const kl_echo_opts *o)
{
    kl_buf b;
    kl_buf_init(&b, 1 << 20);
    assert_int_equal(fn(req, o, &b), 0);
    return kl_buf_steal(&b);
}

static void expect_answer(echo_fn fn, kl_gateway_route_kind kind, const char *req, const char *want)
{
    json_t *j = valid(kind, req);
    char *got = run(fn, j, &OPTS);
    assert_string_equal(got, want);
    free(got);
    json_decref(j);
}

/* ------------------------------------------------------------------ chat */

static void test_chat_exact(void **state)
{
    (void)state;
    expect_answer(kl_echo_chat, KL_GW_ROUTE_CHAT,
                  "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"be nice\"},"
                  "{\"role\":\"user\",\"content\":\"hello there  world\"}]}",
                  "{\"id\":\"ID-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
                  "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                  "\"assistant\",\"content\":\"hello there  world\"},\"logprobs\":null,"
                  "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,"
                  "\"completion_tokens\":3,\"total_tokens\":8}}");
}

static void test_chat_last_user_and_parts(void **state)
{
    (void)state;
    /* The last user message counts, even with an assistant turn after it; array
     * content contributes its text parts only, concatenated. */
    expect_answer(kl_echo_chat, KL_GW_ROUTE_CHAT,
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"first question\"},"
                  "{\"role\":\"assistant\",\"content\":\"an answer\"},"
                  "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},"
                  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/y.png\"}},"
                  "{\"type\":\"text\",\"text\":\"world\"}]},"
                  "{\"role\":\"assistant\",\"content\":null}]}",
                  "{\"id\":\"ID-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
                  "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                  "\"assistant\",\"content\":\"Hello world\"},\"logprobs\":null,"
                  "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":6,"
                  "\"completion_tokens\":2,\"total_tokens\":8}}");
    /* No user message: empty answer. */
    expect_answer(kl_echo_chat, KL_GW_ROUTE_CHAT,
                  "{\"messages\":[{\"role\":\"system\",\"content\":\"only a system prompt\"}]}",
                  "{\"id\":\"ID-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
                  "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                  "\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                  "\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":0,\"total_tokens\":4}}");
}

static void test_chat_unicode_and_random_id(void **state)
{
    (void)state;
    json_t *j = valid(
        KL_GW_ROUTE_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"gr\\u00fc\\u00dfe \\ud83d\\ude00\"}]}");
    kl_echo_opts o = {.model = "m"};
    char *got = run(kl_echo_chat, j, &o);
    json_t *r = json_loads(got, 0, NULL);
    assert_non_null(r);
    const char *id = json_string_value(json_object_get(r, "id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), strlen("chatcmpl-") + 24);
    assert_memory_equal(id, "chatcmpl-", 9);
    for (size_t i = 9; i < strlen(id); i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    assert_true(json_integer_value(json_object_get(r, "created")) > 1700000000);
    const json_t *msg =
        json_object_get(json_array_get(json_object_get(r, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "gr\xc3\xbc\xc3\x9f"
                                                                            "e \xf0\x9f\x98\x80");
    json_decref(r);
    free(got);
    json_decref(j);
}

/* ------------------------------------------------------------------ completions */

static void test_completions_exact(void **state)
{
    (void)state;
    expect_answer(kl_echo_completions, KL_GW_ROUTE_COMPLETIONS,
                  "{\"model\":\"x\",\"prompt\":\"Say this is a test\"}",
                  "{\"id\":\"ID-1\",\"object\":\"text_completion\",\"created\":1700000000,"
                  "\"model\":\"gpt-4o-mini\",\"choices\":[{\"text\":\"Say this is a test\","
                  "\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{"
                  "\"prompt_tokens\":5,\"completion_tokens\":5,\"total_tokens\":10}}");
    /* Array prompt: the first element is echoed, every element is counted. */
    expect_answer(kl_echo_completions, KL_GW_ROUTE_COMPLETIONS,
                  "{\"prompt\":[\"first one\",\"second\"]}",
                  "{\"id\":\"ID-1\",\"object\":\"text_completion\",\"created\":1700000000,"
                  "\"model\":\"gpt-4o-mini\",\"choices\":[{\"text\":\"first one\",\"index\":0,"
                  "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
                  "\"completion_tokens\":2,\"total_tokens\":5}}");
    /* A token prompt has no text; each token counts one. */
    expect_answer(kl_echo_completions, KL_GW_ROUTE_COMPLETIONS, "{\"prompt\":[1,2,3]}",
                  "{\"id\":\"ID-1\",\"object\":\"text_completion\",\"created\":1700000000,"
                  "\"model\":\"gpt-4o-mini\",\"choices\":[{\"text\":\"\",\"index\":0,"
                  "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
                  "\"completion_tokens\":0,\"total_tokens\":3}}");
}

/* ------------------------------------------------------------------ embeddings */

/* SHA-256("abc") from FIPS 180-2, turned into the vector independently of the code. */
static void abc_vector(double v[16])
{
    static const unsigned char h[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                        0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                        0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    double norm = 0;
    for (int i = 0; i < 16; i++) {
        v[i] = ((double)((h[2 * i] << 8) | h[2 * i + 1]) - 32768.0) / 32768.0;
        norm += v[i] * v[i];
    }
    for (int i = 0; i < 16; i++)
        v[i] /= sqrt(norm);
}

static json_t *embed(const char *req)
{
    json_t *j = valid(KL_GW_ROUTE_EMBEDDINGS, req);
    char *got = run(kl_echo_embeddings, j, &OPTS);
    json_t *r = json_loads(got, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(r);
    free(got);
    json_decref(j);
    return r;
}

static void test_embeddings_vector(void **state)
{
    (void)state;
    double want[16];
    abc_vector(want);
    json_t *r = embed("{\"model\":\"e\",\"input\":\"abc\"}");
    assert_string_equal(json_string_value(json_object_get(r, "object")), "list");
    assert_string_equal(json_string_value(json_object_get(r, "model")), "gpt-4o-mini");
    const json_t *data = json_object_get(r, "data");
    assert_int_equal(json_array_size(data), 1);
    const json_t *e0 = json_array_get(data, 0);
    assert_string_equal(json_string_value(json_object_get(e0, "object")), "embedding");
    assert_int_equal(json_integer_value(json_object_get(e0, "index")), 0);
    const json_t *vec = json_object_get(e0, "embedding");
    assert_int_equal(json_array_size(vec), 16);
    double norm = 0;
    for (size_t i = 0; i < 16; i++) {
        double x = json_real_value(json_array_get(vec, i));
        assert_true(fabs(x - want[i]) < 1e-6);
        norm += x * x;
    }
    assert_true(fabs(norm - 1.0) < 1e-5);
    const json_t *usage = json_object_get(r, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 1);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 1);
    json_decref(r);

    float a[16], b[16], c[16];
    kl_echo_vector("abc", 3, a);
    kl_echo_vector("abc", 3, b);
    kl_echo_vector("abd", 3, c);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
}

static void test_embeddings_many_and_base64(void **state)
{
    (void)state;
    json_t *r = embed("{\"input\":[\"abc\",\"two words\"]}");
    const json_t *data = json_object_get(r, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "index")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "usage"), "prompt_tokens")), 3);
    const json_t *v1 = json_object_get(json_array_get(data, 1), "embedding");

    /* base64: little-endian float32, the same values. */
    json_t *rb = embed("{\"input\":[\"abc\",\"two words\"],\"encoding_format\":\"base64\"}");
    const char *b64 = json_string_value(
        json_object_get(json_array_get(json_object_get(rb, "data"), 1), "embedding"));
    assert_non_null(b64);
    unsigned char raw[64];
    assert_int_equal(kl_b64_decode(b64, strlen(b64), raw, sizeof(raw)), 64);
    for (size_t i = 0; i < 16; i++) {
        uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
        float f;
        memcpy(&f, &u, sizeof(f));
        assert_true(fabs((double)f - json_real_value(json_array_get(v1, i))) < 1e-7);
    }
    json_decref(rb);
    json_decref(r);

    /* One token array is one input; an array of token arrays is several. */
    r = embed("{\"input\":[1,2,3]}");
    assert_int_equal(json_array_size(json_object_get(r, "data")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "usage"), "prompt_tokens")), 3);
    json_decref(r);
    r = embed("{\"input\":[[1,2],[3]]}");
    assert_int_equal(json_array_size(json_object_get(r, "data")), 2);
    json_decref(r);
}

/* ------------------------------------------------------------------ bodies */

static void expect_refused(kl_gateway_route_kind kind, const char *s, int rc, const char *param)
{
    json_t *j = NULL;
    kl_gateway_body_err e;
    int got = kl_gateway_body_parse((const unsigned char *)s, strlen(s), &j, &e);
    if (got == 0) {
        got = kl_gateway_body_validate(kind, j, &e);
        json_decref(j);
    } else {
        assert_null(j);
    }
    assert_int_equal(got, rc);
    assert_true(e.message[0] != '\0');
    if (param) {
        assert_non_null(e.param);
        assert_string_equal(e.param, param);
    } else {
        assert_null(e.param);
    }
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 7 + 16);
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        memcpy(s + n, "{\"a\":", 5);
        n += 5;
    }
    s[n++] = '1';
    for (int i = 0; i < depth; i++)
        s[n++] = '}';
    s[n] = '\0';
    return s;
}

static void test_invalid_bodies(void **state)
{
    (void)state;
    expect_refused(KL_GW_ROUTE_CHAT, "", KL_EINVAL, NULL);
    expect_refused(KL_GW_ROUTE_CHAT, "not json", KL_EINVAL, NULL);
    expect_refused(KL_GW_ROUTE_CHAT, "[1,2]", KL_EINVAL, NULL);
    expect_refused(KL_GW_ROUTE_CHAT, "\"s\"", KL_EINVAL, NULL);
    expect_refused(KL_GW_ROUTE_CHAT, "{\"messages\":[]", KL_EINVAL, NULL);
    expect_refused(KL_GW_ROUTE_CHAT, "{\"a\":1,\"a\":2}", KL_EINVAL, NULL);
    expect_refused(KL_GW_ROUTE_CHAT, "{\"a\":\"\\u0000\"}", KL_EINVAL, NULL);
    expect_refused(KL_GW_ROUTE_CHAT, "{}", KL_EINVAL, "messages");
    expect_refused(KL_GW_ROUTE_CHAT, "{\"messages\":\"hi\"}", KL_EINVAL, "messages");
    expect_refused(KL_GW_ROUTE_CHAT, "{\"messages\":{}}", KL_EINVAL, "messages");
    expect_refused(KL_GW_ROUTE_CHAT, "{\"messages\":[]}", KL_EINVAL, "messages");
    expect_refused(KL_GW_ROUTE_CHAT, "{\"messages\":[1]}", KL_EINVAL, "messages");
    expect_refused(KL_GW_ROUTE_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", KL_EINVAL, "messages");
    expect_refused(KL_GW_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
                   KL_EINVAL, "messages");
    expect_refused(KL_GW_ROUTE_CHAT,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
                   KL_EINVAL, "stream");
    expect_refused(KL_GW_ROUTE_CHAT,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":1}",
                   KL_EINVAL, "stream_options");
    expect_refused(KL_GW_ROUTE_CHAT,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":7}", KL_EINVAL,
                   "model");
    expect_refused(KL_GW_ROUTE_COMPLETIONS, "{\"model\":\"m\"}", KL_EINVAL, "prompt");
    expect_refused(KL_GW_ROUTE_COMPLETIONS, "{\"prompt\":{}}", KL_EINVAL, "prompt");
    expect_refused(KL_GW_ROUTE_EMBEDDINGS, "{\"model\":\"m\"}", KL_EINVAL, "input");
    expect_refused(KL_GW_ROUTE_EMBEDDINGS, "{\"input\":5}", KL_EINVAL, "input");
    expect_refused(KL_GW_ROUTE_EMBEDDINGS, "{\"input\":[]}", KL_EINVAL, "input");
    expect_refused(KL_GW_ROUTE_EMBEDDINGS, "{\"input\":[\"a\",{}]}", KL_EINVAL, "input");
    expect_refused(KL_GW_ROUTE_EMBEDDINGS, "{\"input\":\"a\",\"encoding_format\":\"hex\"}",
                   KL_EINVAL, "encoding_format");

    /* Depth: 100 levels refused before parsing; the limit itself is fine. */
    char *deep = nested(100);
    expect_refused(KL_GW_ROUTE_CHAT, deep, KL_ETOOBIG, NULL);
    free(deep);
    deep = nested(65);
    expect_refused(KL_GW_ROUTE_CHAT, deep, KL_ETOOBIG, NULL);
    free(deep);
    deep = nested(64);
    json_t *j = NULL;
    kl_gateway_body_err e;
    assert_int_equal(kl_gateway_body_parse((const unsigned char *)deep, strlen(deep), &j, &e), 0);
    json_decref(j);
    free(deep);
    /* Brackets inside strings do not count. */
    assert_int_equal(kl_gateway_json_depth((const unsigned char *)"{\"a\":\"[[[{{\\\"[\"}", 16), 1);
}

static void test_word_count(void **state)
{
    (void)state;
    assert_int_equal(kl_echo_count_words("", 0), 0);
    assert_int_equal(kl_echo_count_words("   \t\n", 5), 0);
    assert_int_equal(kl_echo_count_words("one", 3), 1);
    assert_int_equal(kl_echo_count_words(" one  two\tthree\nfour ", 21), 4);
}

/* ------------------------------------------------------------------ streaming */

typedef struct events {
    char *ev[64];
    size_t n;
} events;

static int collect(const char *event, size_t len, void *arg)
{
    events *e = arg;
    assert_true(e->n < 64);
    e->ev[e->n++] = kl_strndup(event, len);
    return 0;
}

static void events_free(events *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->ev[i]);
}

/* Checks the framing and returns the parsed payload (NULL for [DONE]). */
static json_t *event_json(const char *ev)
{
    size_t n = strlen(ev);
    assert_true(n > 8);
    assert_memory_equal(ev, "data: ", 6);
    assert_memory_equal(ev + n - 2, "\n\n", 2);
    assert_null(memchr(ev, '\n', n - 2)); /* one line per event */
    if (strcmp(ev, "data: [DONE]\n\n") == 0)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb(ev + 6, n - 8, JSON_REJECT_DUPLICATES, &je);
    assert_non_null(j);
    return j;
}

static void test_chat_stream(void **state)
{
    (void)state;
    json_t *req = valid(KL_GW_ROUTE_CHAT,
                        "{\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"  hello big\\nworld \"}]}");
    events e = {0};
    assert_int_equal(kl_echo_stream_all(KL_GW_ROUTE_CHAT, req, &OPTS, collect, &e), 0);
    /* role, 3 words, finish, usage, [DONE] */
    assert_int_equal(e.n, 7);
    kl_buf text;
    kl_buf_init(&text, 1024);
    for (size_t i = 0; i < e.n; i++) {
        json_t *j = event_json(e.ev[i]);
        if (i == e.n - 1) {
            assert_null(j);
            break;
        }
        assert_string_equal(json_string_value(json_object_get(j, "id")), "ID-1");
        assert_string_equal(json_string_value(json_object_get(j, "object")),
                            "chat.completion.chunk");
        assert_int_equal(json_integer_value(json_object_get(j, "created")), 1700000000);
        assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-4o-mini");
        const json_t *choices = json_object_get(j, "choices");
        if (i == 5) {
            assert_int_equal(json_array_size(choices), 0);
            const json_t *u = json_object_get(j, "usage");
            assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 3);
            assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 3);
            assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 6);
            json_decref(j);
            continue;
        }
        assert_int_equal(json_array_size(choices), 1);
        const json_t *c = json_array_get(choices, 0);
        assert_true(json_is_integer(json_object_get(c, "index")));
        assert_int_equal(json_integer_value(json_object_get(c, "index")), 0);
        const json_t *delta = json_object_get(c, "delta");
        assert_true(json_is_object(delta));
        const json_t *fr = json_object_get(c, "finish_reason");
        if (i == 0) {
            assert_string_equal(json_string_value(json_object_get(delta, "role")), "assistant");
            assert_string_equal(json_string_value(json_object_get(delta, "content")), "");
            assert_true(json_is_null(fr));
        } else if (i == 4) {
            assert_int_equal(json_object_size(delta), 0);
            assert_string_equal(json_string_value(fr), "stop");
        } else {
            assert_true(json_is_null(fr));
            assert_null(json_object_get(delta, "role"));
            const json_t *piece = json_object_get(delta, "content");
            assert_true(json_is_string(piece));
            kl_buf_append(&text, json_string_value(piece), json_string_length(piece));
        }
        json_decref(j);
    }
    /* The deltas rebuild the answer exactly; each is a word plus what follows it. */
    assert_string_equal(text.data, "  hello big\nworld ");
    assert_string_equal(e.ev[1], "data: {\"id\":\"ID-1\",\"object\":\"chat.completion.chunk\","
                                 "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":"
                                 "[{\"index\":0,\"delta\":{\"content\":\"  hello \"},\"logprobs\":"
                                 "null,\"finish_reason\":null}]}\n\n");
    assert_string_equal(e.ev[e.n - 1], "data: [DONE]\n\n");
    kl_buf_free(&text);
    events_free(&e);
    json_decref(req);
}

/* A word longer than KL_MAX_ECHO_DELTA goes out in several events, each cut on a UTF-8
 * character boundary (a cut inside "\u00e9" would make the event fail to encode). */
static void test_stream_splits_long_words(void **state)
{
    (void)state;
    kl_buf word;
    kl_buf_init(&word, 1 << 20);
    assert_int_equal(kl_buf_append(&word, "a", 1), 0);
    while (word.len < 2 * KL_MAX_ECHO_DELTA + 100)
        assert_int_equal(kl_buf_append(&word, "\xc3\xa9", 2), 0);
    json_t *req = json_pack("{s:b,s:[{s:s,s:s%}]}", "stream", 1, "messages", "role", "user",
                            "content", word.data, word.len);
    assert_non_null(req);
    kl_echo_stream *st = NULL;
    assert_int_equal(kl_echo_stream_new(KL_GW_ROUTE_CHAT, req, &OPTS, &st), 0);
    kl_buf ev, text;
    kl_buf_init(&ev, 1 << 20);
    kl_buf_init(&text, 1 << 20);
    size_t pieces = 0;
    int rc;
    while ((rc = kl_echo_stream_next(st, &ev)) == 1) {
        json_t *j = event_json(ev.data);
        const json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        const json_t *piece = json_object_get(json_object_get(c, "delta"), "content");
        if (json_is_string(piece) && json_string_length(piece) > 0) {
            assert_true(json_string_length(piece) <= KL_MAX_ECHO_DELTA);
            kl_buf_append(&text, json_string_value(piece), json_string_length(piece));
            pieces++;
        }
        json_decref(j);
        kl_buf_reset(&ev);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(pieces, 3);
    assert_int_equal(text.len, word.len);
    assert_memory_equal(text.data, word.data, word.len);
    kl_echo_stream_free(st);
    kl_buf_free(&ev);
    kl_buf_free(&text);
    kl_buf_free(&word);
    json_decref(req);
}

static void test_chat_stream_without_usage(void **state)
{
    (void)state;
    json_t *req = valid(KL_GW_ROUTE_CHAT,
                        "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    events e = {0};
    assert_int_equal(kl_echo_stream_all(KL_GW_ROUTE_CHAT, req, &OPTS, collect, &e), 0);
    assert_int_equal(e.n, 4); /* role, "hi", finish, [DONE] */
    for (size_t i = 0; i < e.n; i++) {
        json_t *j = event_json(e.ev[i]);
        if (j)
            assert_null(json_object_get(j, "usage"));
        json_decref(j);
    }
    assert_string_equal(e.ev[3], "data: [DONE]\n\n");
    events_free(&e);
    json_decref(req);

    /* An empty answer still has role, finish and [DONE]. */
    req = valid(KL_GW_ROUTE_CHAT,
                "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}");
    e = (events){0};
    assert_int_equal(kl_echo_stream_all(KL_GW_ROUTE_CHAT, req, &OPTS, collect, &e), 0);
    assert_int_equal(e.n, 3);
    events_free(&e);
    json_decref(req);
}

static void test_completions_stream(void **state)
{
    (void)state;
    json_t *req = valid(KL_GW_ROUTE_COMPLETIONS, "{\"stream\":true,\"prompt\":\"a b\"}");
    events e = {0};
    assert_int_equal(kl_echo_stream_all(KL_GW_ROUTE_COMPLETIONS, req, &OPTS, collect, &e), 0);
    assert_int_equal(e.n, 4); /* "a ", "b", finish, [DONE] */
    const char *want[] = {"a ", "b", ""};
    for (size_t i = 0; i < 3; i++) {
        json_t *j = event_json(e.ev[i]);
        assert_string_equal(json_string_value(json_object_get(j, "object")), "text_completion");
        const json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        assert_string_equal(json_string_value(json_object_get(c, "text")), want[i]);
        assert_int_equal(json_integer_value(json_object_get(c, "index")), 0);
        if (i == 2)
            assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "stop");
        else
            assert_true(json_is_null(json_object_get(c, "finish_reason")));
        json_decref(j);
    }
    assert_string_equal(e.ev[3], "data: [DONE]\n\n");
    events_free(&e);
    json_decref(req);
}

static void test_sse_framing(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 1024);
    assert_int_equal(kl_sse_event(&b, "{\"a\":1}", 7), 0);
    assert_string_equal(b.data, "data: {\"a\":1}\n\n");
    kl_buf_reset(&b);
    assert_int_equal(kl_sse_event(&b, "a\nb\r\nc", 6), 0);
    assert_string_equal(b.data, "data: a\ndata: b\ndata: c\n\n");
    kl_buf_reset(&b);
    assert_int_equal(kl_sse_event(&b, "x\n", 2), 0);
    assert_string_equal(b.data, "data: x\ndata: \n\n");
    kl_buf_reset(&b);
    assert_int_equal(kl_sse_done(&b), 0);
    assert_string_equal(b.data, "data: [DONE]\n\n");
    kl_buf_reset(&b);
    json_t *j = json_pack("{s:s,s:i}", "k", "line\nbreak", "n", 2);
    assert_int_equal(kl_sse_json(&b, j), 0);
    assert_string_equal(b.data, "data: {\"k\":\"line\\nbreak\",\"n\":2}\n\n");
    json_decref(j);
    kl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_exact),
        cmocka_unit_test(test_chat_last_user_and_parts),
        cmocka_unit_test(test_chat_unicode_and_random_id),
        cmocka_unit_test(test_completions_exact),
        cmocka_unit_test(test_embeddings_vector),
        cmocka_unit_test(test_embeddings_many_and_base64),
        cmocka_unit_test(test_invalid_bodies),
        cmocka_unit_test(test_word_count),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_chat_stream_without_usage),
        cmocka_unit_test(test_stream_splits_long_words),
        cmocka_unit_test(test_completions_stream),
        cmocka_unit_test(test_sse_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
