/* Strict parsing and validation of data-plane request bodies. The depth is measured on
 * the raw bytes first, so a hostile body never makes the parser build a deep tree. */
#include "gateway/body.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

size_t kl_gateway_json_depth(const unsigned char *s, size_t n)
{
    size_t depth = 0, max = 0;
    int in_str = 0, esc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

static int fail(kl_gateway_body_err *err, int rc, const char *param, const char *msg)
{
    snprintf(err->message, sizeof(err->message), "%s", msg);
    err->param = param;
    return rc;
}

int kl_gateway_body_parse(const unsigned char *body, size_t len, json_t **out,
                          kl_gateway_body_err *err)
{
    json_error_t je;
    *out = NULL;
    err->message[0] = '\0';
    err->param = NULL;
    if (!body || len == 0)
        return fail(err, KL_EINVAL, NULL, "The request body must be a JSON object.");
    if (kl_gateway_json_depth(body, len) > KL_MAX_JSON_DEPTH)
        return fail(err, KL_ETOOBIG, NULL, "The request body is nested too deeply.");
    json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(err->message, sizeof(err->message),
                 "The request body is not valid JSON (line %d, column %d).", je.line, je.column);
        return KL_EINVAL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return fail(err, KL_EINVAL, NULL, "The request body must be a JSON object.");
    }
    *out = j;
    return 0;
}

static int check_common(const json_t *body, kl_gateway_body_err *err)
{
    const json_t *st = json_object_get(body, "stream");
    if (st && !json_is_boolean(st) && !json_is_null(st))
        return fail(err, KL_EINVAL, "stream", "Invalid type for 'stream': expected a boolean.");
    const json_t *so = json_object_get(body, "stream_options");
    if (so && !json_is_object(so) && !json_is_null(so))
        return fail(err, KL_EINVAL, "stream_options",
                    "Invalid type for 'stream_options': expected an object.");
    if (so && json_is_object(so)) {
        const json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu) && !json_is_null(iu))
            return fail(err, KL_EINVAL, "stream_options",
                        "Invalid type for 'stream_options.include_usage': expected a boolean.");
    }
    const json_t *m = json_object_get(body, "model");
    if (m && !json_is_string(m))
        return fail(err, KL_EINVAL, "model", "Invalid type for 'model': expected a string.");
    return 0;
}

/* A token list: a non-empty array of integers. */
static int is_token_array(const json_t *a)
{
    if (!json_is_array(a) || json_array_size(a) == 0)
        return 0;
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_integer(v))
            return 0;
    }
    return 1;
}

static int check_chat(const json_t *body, kl_gateway_body_err *err)
{
    const json_t *msgs = json_object_get(body, "messages");
    if (!msgs)
        return fail(err, KL_EINVAL, "messages", "Missing required parameter: 'messages'.");
    if (!json_is_array(msgs))
        return fail(err, KL_EINVAL, "messages",
                    "Invalid type for 'messages': expected an array of objects.");
    if (json_array_size(msgs) == 0)
        return fail(err, KL_EINVAL, "messages",
                    "Invalid 'messages': empty array. Expected an array with minimum length 1.");
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m))
            return fail(err, KL_EINVAL, "messages",
                        "Invalid type for 'messages': expected an array of objects.");
        const json_t *role = json_object_get(m, "role");
        if (!json_is_string(role))
            return fail(err, KL_EINVAL, "messages", "Each message needs a 'role' string.");
        const json_t *c = json_object_get(m, "content");
        if (c && !json_is_string(c) && !json_is_array(c) && !json_is_null(c))
            return fail(err, KL_EINVAL, "messages",
                        "Invalid type for message 'content': expected a string or an array.");
    }
    return 0;
}

static int check_completions(const json_t *body, kl_gateway_body_err *err)
{
    const json_t *p = json_object_get(body, "prompt");
    if (!p)
        return fail(err, KL_EINVAL, "prompt", "Missing required parameter: 'prompt'.");
    if (!json_is_string(p) && !json_is_array(p))
        return fail(err, KL_EINVAL, "prompt",
                    "Invalid type for 'prompt': expected a string or an array.");
    return 0;
}

static int check_embeddings(const json_t *body, kl_gateway_body_err *err)
{
    const json_t *in = json_object_get(body, "input");
    if (!in)
        return fail(err, KL_EINVAL, "input", "Missing required parameter: 'input'.");
    if (json_is_array(in)) {
        if (json_array_size(in) == 0)
            return fail(err, KL_EINVAL, "input",
                        "Invalid 'input': empty array. Expected an array with minimum length 1.");
        if (!is_token_array(in)) {
            size_t i;
            const json_t *v;
            json_array_foreach(in, i, v)
            {
                if (!json_is_string(v) && !is_token_array(v))
                    return fail(err, KL_EINVAL, "input",
                                "Invalid 'input': expected strings or arrays of integers.");
            }
        }
    } else if (!json_is_string(in)) {
        return fail(err, KL_EINVAL, "input",
                    "Invalid type for 'input': expected a string or an array.");
    }
    const json_t *ef = json_object_get(body, "encoding_format");
    if (ef && !json_is_null(ef)) {
        const char *s = json_string_value(ef);
        if (!s || (strcmp(s, "float") != 0 && strcmp(s, "base64") != 0))
            return fail(err, KL_EINVAL, "encoding_format",
                        "Invalid 'encoding_format': expected 'float' or 'base64'.");
    }
    return 0;
}

int kl_gateway_body_validate(kl_gateway_route_kind kind, const json_t *body,
                             kl_gateway_body_err *err)
{
    err->message[0] = '\0';
    err->param = NULL;
    if (!json_is_object(body))
        return fail(err, KL_EINVAL, NULL, "The request body must be a JSON object.");
    int rc = check_common(body, err);
    if (rc)
        return rc;
    switch (kind) {
    case KL_GW_ROUTE_CHAT: return check_chat(body, err);
    case KL_GW_ROUTE_COMPLETIONS: return check_completions(body, err);
    case KL_GW_ROUTE_EMBEDDINGS: return check_embeddings(body, err);
    default: return 0;
    }
}

int kl_gateway_body_stream(const json_t *body)
{
    return json_is_true(json_object_get(body, "stream"));
}
