/* The echo model: deterministic answers built from the request, as JSON or as an SSE
 * stream generated one event at a time. */
#include "gateway/echo.h"

#include <math.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "gateway/sse.h"

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t kl_echo_count_words(const char *s, size_t n)
{
    size_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < n; i++) {
        bool w = !is_ws((unsigned char)s[i]);
        if (w && !in_word)
            words++;
        in_word = w;
    }
    return words;
}

void kl_echo_vector(const void *msg, size_t n, float out[KL_ECHO_DIMENSIONS])
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    double v[KL_ECHO_DIMENSIONS], norm = 0.0;
    SHA256(msg, n, h);
    for (int i = 0; i < KL_ECHO_DIMENSIONS; i++) {
        int32_t u = (int32_t)((h[2 * i] << 8) | h[2 * i + 1]);
        v[i] = (double)(u - 32768) / 32768.0;
        norm += v[i] * v[i];
    }
    norm = sqrt(norm);
    for (int i = 0; i < KL_ECHO_DIMENSIONS; i++)
        out[i] = norm > 0.0 ? (float)(v[i] / norm) : (i == 0 ? 1.0f : 0.0f);
}

/* ------------------------------------------------------------------ helpers */

static int make_id(const kl_echo_opts *o, const char *prefix, char *out, size_t outlen)
{
    if (o->id) {
        if (strlen(o->id) >= outlen)
            return KL_EINVAL;
        memcpy(out, o->id, strlen(o->id) + 1);
        return 0;
    }
    unsigned char rnd[12];
    char hex[2 * sizeof(rnd) + 1];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return KL_ECRYPTO;
    kl_hex_encode(rnd, sizeof(rnd), hex);
    snprintf(out, outlen, "%s%s", prefix, hex);
    return 0;
}

static int64_t created_of(const kl_echo_opts *o)
{
    return o->created ? o->created : kl_now_unix();
}

/* Appends the text of a message content (string, or the "text" of each part). */
static int content_text(const json_t *c, kl_buf *out)
{
    if (json_is_string(c))
        return kl_buf_append(out, json_string_value(c), json_string_length(c));
    if (!json_is_array(c))
        return 0;
    size_t i;
    const json_t *part;
    json_array_foreach(c, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        const json_t *type = json_object_get(part, "type");
        if (!json_is_string(t))
            continue;
        if (type && !(json_is_string(type) && strcmp(json_string_value(type), "text") == 0))
            continue;
        int rc = kl_buf_append(out, json_string_value(t), json_string_length(t));
        if (rc)
            return rc;
    }
    return 0;
}

/* Words in a message content, counting each part on its own. */
static size_t content_words(const json_t *c)
{
    if (json_is_string(c))
        return kl_echo_count_words(json_string_value(c), json_string_length(c));
    size_t words = 0, i;
    const json_t *part;
    json_array_foreach(c, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            words += kl_echo_count_words(json_string_value(t), json_string_length(t));
    }
    return words;
}

/* The answer and prompt word count of a chat request. */
static int chat_answer(const json_t *req, kl_buf *text, size_t *prompt_words)
{
    const json_t *msgs = json_object_get(req, "messages");
    const json_t *last_user = NULL, *m;
    size_t i;
    if (!json_is_array(msgs))
        return KL_EINVAL;
    *prompt_words = 0;
    json_array_foreach(msgs, i, m)
    {
        const json_t *role = json_object_get(m, "role");
        const json_t *c = json_object_get(m, "content");
        *prompt_words += content_words(c);
        if (json_is_string(role) && strcmp(json_string_value(role), "user") == 0)
            last_user = c;
    }
    return last_user ? content_text(last_user, text) : 0;
}

static size_t prompt_element_words(const json_t *v)
{
    if (json_is_string(v))
        return kl_echo_count_words(json_string_value(v), json_string_length(v));
    if (json_is_integer(v))
        return 1;
    if (json_is_array(v)) {
        size_t words = 0, i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            words += prompt_element_words(e);
        }
        return words;
    }
    return 0;
}

static int completions_answer(const json_t *req, kl_buf *text, size_t *prompt_words)
{
    const json_t *p = json_object_get(req, "prompt");
    if (!json_is_string(p) && !json_is_array(p))
        return KL_EINVAL;
    *prompt_words = prompt_element_words(p);
    const json_t *first = json_is_array(p) ? json_array_get(p, 0) : p;
    if (json_is_string(first))
        return kl_buf_append(text, json_string_value(first), json_string_length(first));
    return 0;
}

static json_t *usage_json(size_t prompt, size_t completion)
{
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)prompt, "completion_tokens",
                     (json_int_t)completion, "total_tokens", (json_int_t)(prompt + completion));
}

static int dump_into(json_t *j, kl_buf *out)
{
    if (!j)
        return KL_ENOMEM;
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s)
        return KL_ENOMEM;
    int rc = kl_buf_append(out, s, strlen(s));
    free(s);
    return rc;
}

/* --------------------------------------------------------------- non-streaming */

int kl_echo_chat(const json_t *req, const kl_echo_opts *o, kl_buf *out)
{
    kl_buf text;
    size_t pw = 0;
    char id[64];
    int rc;
    kl_buf_init(&text, KL_MAX_BODY_BYTES);
    if ((rc = chat_answer(req, &text, &pw)) != 0 || (rc = make_id(o, "chatcmpl-", id, sizeof(id))))
        goto out;
    size_t cw = kl_echo_count_words(text.data ? text.data : "", text.len);
    json_t *content = json_stringn(text.data ? text.data : "", text.len);
    if (!content) {
        rc = KL_EINVAL;
        goto out;
    }
    json_t *j =
        json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:o},s:n,s:s}],s:o}", "id", id, "object",
                  "chat.completion", "created", (json_int_t)created_of(o), "model", o->model,
                  "choices", "index", 0, "message", "role", "assistant", "content", content,
                  "logprobs", "finish_reason", "stop", "usage", usage_json(pw, cw));
    rc = dump_into(j, out);
out:
    kl_buf_free(&text);
    return rc;
}

int kl_echo_completions(const json_t *req, const kl_echo_opts *o, kl_buf *out)
{
    kl_buf text;
    size_t pw = 0;
    char id[64];
    int rc;
    kl_buf_init(&text, KL_MAX_BODY_BYTES);
    if ((rc = completions_answer(req, &text, &pw)) != 0 ||
        (rc = make_id(o, "cmpl-", id, sizeof(id))))
        goto out;
    size_t cw = kl_echo_count_words(text.data ? text.data : "", text.len);
    json_t *t = json_stringn(text.data ? text.data : "", text.len);
    if (!t) {
        rc = KL_EINVAL;
        goto out;
    }
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[{s:o,s:i,s:n,s:s}],s:o}", "id", id, "object",
                          "text_completion", "created", (json_int_t)created_of(o), "model",
                          o->model, "choices", "text", t, "index", 0, "logprobs", "finish_reason",
                          "stop", "usage", usage_json(pw, cw));
    rc = dump_into(j, out);
out:
    kl_buf_free(&text);
    return rc;
}

/* One embedding object for an input (string or token array). */
static json_t *embedding_json(const json_t *input, size_t index, bool base64)
{
    float v[KL_ECHO_DIMENSIONS];
    if (json_is_string(input)) {
        kl_echo_vector(json_string_value(input), json_string_length(input), v);
    } else {
        char *s = json_dumps(input, JSON_COMPACT);
        if (!s)
            return NULL;
        kl_echo_vector(s, strlen(s), v);
        free(s);
    }
    json_t *emb;
    if (base64) {
        /* What the openai SDK asks for by default: little-endian float32, base64. */
        unsigned char raw[KL_ECHO_DIMENSIONS * 4];
        char b64[4 * ((sizeof(raw) + 2) / 3) + 1];
        for (int i = 0; i < KL_ECHO_DIMENSIONS; i++) {
            uint32_t u;
            memcpy(&u, &v[i], sizeof(u));
            raw[4 * i] = (unsigned char)(u & 0xff);
            raw[4 * i + 1] = (unsigned char)((u >> 8) & 0xff);
            raw[4 * i + 2] = (unsigned char)((u >> 16) & 0xff);
            raw[4 * i + 3] = (unsigned char)((u >> 24) & 0xff);
        }
        if (kl_b64_encode(raw, sizeof(raw), b64, sizeof(b64)) < 0)
            return NULL;
        emb = json_string(b64);
    } else {
        emb = json_array();
        for (int i = 0; emb && i < KL_ECHO_DIMENSIONS; i++) {
            if (json_array_append_new(emb, json_real((double)v[i])) != 0) {
                json_decref(emb);
                emb = NULL;
            }
        }
    }
    if (!emb)
        return NULL;
    return json_pack("{s:s,s:I,s:o}", "object", "embedding", "index", (json_int_t)index,
                     "embedding", emb);
}

int kl_echo_embeddings(const json_t *req, const kl_echo_opts *o, kl_buf *out)
{
    const json_t *in = json_object_get(req, "input");
    const json_t *ef = json_object_get(req, "encoding_format");
    bool base64 = json_is_string(ef) && strcmp(json_string_value(ef), "base64") == 0;
    size_t words = 0;
    json_t *data = json_array();
    if (!data)
        return KL_ENOMEM;
    if (!json_is_string(in) && !json_is_array(in)) {
        json_decref(data);
        return KL_EINVAL;
    }
    /* A string or a single token array is one input; otherwise each element is. */
    bool single = json_is_string(in) || json_is_integer(json_array_get(in, 0));
    size_t n = single ? 1 : json_array_size(in);
    for (size_t i = 0; i < n; i++) {
        const json_t *one = single ? in : json_array_get(in, i);
        words += prompt_element_words(one);
        if (json_array_append_new(data, embedding_json(one, i, base64)) != 0) {
            json_decref(data);
            return KL_ENOMEM;
        }
    }
    json_t *j =
        json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model", o->model,
                  "usage", "prompt_tokens", (json_int_t)words, "total_tokens", (json_int_t)words);
    return dump_into(j, out);
}

/* ------------------------------------------------------------------ streaming */

enum { PH_ROLE = 0, PH_WORDS, PH_FINISH, PH_USAGE, PH_DONE, PH_END };

struct kl_echo_stream {
    kl_gateway_route_kind kind;
    json_t *req;
    char *model;
    char id[64];
    int64_t created;
    kl_buf text;
    size_t pos;
    size_t prompt_words, completion_words;
    bool include_usage;
    int phase;
};

int kl_echo_stream_new(kl_gateway_route_kind kind, json_t *req, const kl_echo_opts *o,
                       kl_echo_stream **out)
{
    int rc;
    *out = NULL;
    if (kind != KL_GW_ROUTE_CHAT && kind != KL_GW_ROUTE_COMPLETIONS)
        return KL_EINVAL;
    kl_echo_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return KL_ENOMEM;
    kl_buf_init(&s->text, KL_MAX_BODY_BYTES);
    s->kind = kind;
    s->req = json_incref(req);
    s->model = strdup(o->model ? o->model : "");
    s->created = created_of(o);
    if (!s->model) {
        rc = KL_ENOMEM;
        goto fail;
    }
    rc = make_id(o, kind == KL_GW_ROUTE_CHAT ? "chatcmpl-" : "cmpl-", s->id, sizeof(s->id));
    if (rc)
        goto fail;
    rc = kind == KL_GW_ROUTE_CHAT ? chat_answer(req, &s->text, &s->prompt_words)
                                  : completions_answer(req, &s->text, &s->prompt_words);
    if (rc)
        goto fail;
    s->completion_words = kl_echo_count_words(s->text.data ? s->text.data : "", s->text.len);
    const json_t *so = json_object_get(req, "stream_options");
    s->include_usage = json_is_true(json_object_get(so, "include_usage"));
    s->phase = kind == KL_GW_ROUTE_CHAT ? PH_ROLE : PH_WORDS;
    *out = s;
    return 0;
fail:
    kl_echo_stream_free(s);
    return rc;
}

void kl_echo_stream_free(kl_echo_stream *s)
{
    if (!s)
        return;
    json_decref(s->req);
    free(s->model);
    kl_buf_free(&s->text);
    free(s);
}

/* A chunk with one choice: for chat the delta (owned), for completions the text. */
static json_t *chunk_json(kl_echo_stream *s, json_t *payload, const char *finish)
{
    json_t *fr = finish ? json_string(finish) : json_null();
    if (!payload || !fr) {
        json_decref(payload);
        json_decref(fr);
        return NULL;
    }
    if (s->kind == KL_GW_ROUTE_CHAT)
        return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:o}]}", "id", s->id, "object",
                         "chat.completion.chunk", "created", (json_int_t)s->created, "model",
                         s->model, "choices", "index", 0, "delta", payload, "logprobs",
                         "finish_reason", fr);
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:o,s:i,s:n,s:o}]}", "id", s->id, "object",
                     "text_completion", "created", (json_int_t)s->created, "model", s->model,
                     "choices", "text", payload, "index", 0, "logprobs", "finish_reason", fr);
}

static int emit(json_t *j, kl_buf *out)
{
    if (!j)
        return KL_ENOMEM;
    int rc = kl_sse_json(out, j);
    json_decref(j);
    return rc ? rc : 1;
}

int kl_echo_stream_next(kl_echo_stream *s, kl_buf *out)
{
    const char *t = s->text.data ? s->text.data : "";
    size_t len = s->text.len;
    switch (s->phase) {
    case PH_ROLE:
        s->phase = PH_WORDS;
        return emit(chunk_json(s, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL),
                    out);
    case PH_WORDS:
        if (s->pos < len) {
            size_t i = s->pos;
            while (i < len && is_ws((unsigned char)t[i]))
                i++;
            while (i < len && !is_ws((unsigned char)t[i]))
                i++;
            while (i < len && is_ws((unsigned char)t[i]))
                i++;
            /* A very long word goes out in several events, cut before a UTF-8
             * continuation byte, so that every event stays small whatever the prompt. */
            if (i - s->pos > KL_MAX_ECHO_DELTA) {
                size_t cut = s->pos + KL_MAX_ECHO_DELTA;
                while (cut > s->pos + 1 && ((unsigned char)t[cut] & 0xC0) == 0x80)
                    cut--;
                i = cut;
            }
            json_t *piece = json_stringn(t + s->pos, i - s->pos);
            s->pos = i;
            if (!piece)
                return KL_EINVAL;
            json_t *payload = piece;
            if (s->kind == KL_GW_ROUTE_CHAT) {
                payload = json_pack("{s:o}", "content", piece);
            }
            return emit(chunk_json(s, payload, NULL), out);
        }
        s->phase = PH_FINISH;
        /* fall through */
    case PH_FINISH:
        s->phase = s->include_usage ? PH_USAGE : PH_DONE;
        return emit(
            chunk_json(s, s->kind == KL_GW_ROUTE_CHAT ? json_object() : json_string(""), "stop"),
            out);
    case PH_USAGE:
        s->phase = PH_DONE;
        return emit(
            json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", s->id, "object",
                      s->kind == KL_GW_ROUTE_CHAT ? "chat.completion.chunk" : "text_completion",
                      "created", (json_int_t)s->created, "model", s->model, "choices", "usage",
                      usage_json(s->prompt_words, s->completion_words)),
            out);
    case PH_DONE: {
        s->phase = PH_END;
        int rc = kl_sse_done(out);
        return rc ? rc : 1;
    }
    default: return 0;
    }
}

int kl_echo_stream_all(kl_gateway_route_kind kind, json_t *req, const kl_echo_opts *o,
                       int (*cb)(const char *event, size_t len, void *arg), void *arg)
{
    kl_echo_stream *s = NULL;
    kl_buf ev;
    int rc = kl_echo_stream_new(kind, req, o, &s);
    if (rc)
        return rc;
    kl_buf_init(&ev, 2 * KL_MAX_BODY_BYTES);
    for (;;) {
        kl_buf_reset(&ev);
        rc = kl_echo_stream_next(s, &ev);
        if (rc <= 0)
            break;
        rc = cb(ev.data, ev.len, arg);
        if (rc)
            break;
    }
    kl_buf_free(&ev);
    kl_echo_stream_free(s);
    return rc;
}
