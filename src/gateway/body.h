/* Request bodies of the data plane: strict JSON parsing (duplicate keys refused, depth
 * bounded by KL_MAX_JSON_DEPTH before any tree is built) and the per-operation checks
 * every backend relies on, with OpenAI-style error details (message and param). */
#ifndef KL_GATEWAY_BODY_H
#define KL_GATEWAY_BODY_H

#include <jansson.h>
#include <stddef.h>

#include "gateway/route.h"

/* Why a body was refused: message is for the client (never echoes body content beyond
 * a position); param names the offending field, or NULL. */
typedef struct kl_gateway_body_err {
    char message[192];
    const char *param; /* static string or NULL */
} kl_gateway_body_err;

/* Parses body[0..len) into a JSON object. On success *out is a new reference owned by
 * the caller. KL_EINVAL (not JSON, duplicate keys, not an object, empty) or KL_ETOOBIG
 * (nesting deeper than KL_MAX_JSON_DEPTH), with *err filled in. */
int kl_gateway_body_parse(const unsigned char *body, size_t len, json_t **out,
                          kl_gateway_body_err *err);

/* Checks the fields an operation requires: chat "messages" (non-empty array of
 * objects), completions "prompt" (string or array), embeddings "input" (string, or
 * non-empty array of strings / token arrays) and "encoding_format" (float|base64);
 * "stream" must be a boolean and "stream_options" an object when present. 0 or
 * KL_EINVAL with *err filled in. */
int kl_gateway_body_validate(kl_gateway_route_kind kind, const json_t *body,
                             kl_gateway_body_err *err);

/* True if body asks for a streamed answer ("stream": true). */
int kl_gateway_body_stream(const json_t *body);

/* Maximum nesting depth of the JSON text s[0..n) ('[' and '{' outside strings). */
size_t kl_gateway_json_depth(const unsigned char *s, size_t n);

#endif
