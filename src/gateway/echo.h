/* The built-in echo model: answers chat, completions and embeddings deterministically
 * from the request itself, so clients and tests can exercise the whole data plane with
 * no model server. Pure functions from a validated request body (kl_gateway_body_validate)
 * to response bytes; the SSE stream is produced one event at a time so the caller can
 * stop when the client reads slowly.
 *
 *   chat         content = text of the last "user" message (string, or the "text" parts
 *                of an array, concatenated)
 *   completions  text = prompt (string, or the first element of an array if a string)
 *   embeddings   one 16-dimension unit vector per input, from SHA-256 of the input
 *                (a string's UTF-8 bytes; a token array's compact JSON)
 *   usage        prompt_tokens = whitespace-separated words of all input (each token of a
 *                token array counts one), completion_tokens = words of the output. */
#ifndef KL_GATEWAY_ECHO_H
#define KL_GATEWAY_ECHO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "gateway/route.h"

#define KL_ECHO_DIMENSIONS 16

typedef struct kl_echo_opts {
    const char *model; /* "model" in responses; required */
    const char *id;    /* response id; NULL: "chatcmpl-"/"cmpl-" + 24 random hex digits */
    int64_t created;   /* unix seconds; 0: now */
} kl_echo_opts;

/* Non-streaming answers, appended to out as compact JSON. req must have passed
 * kl_gateway_body_validate for the same operation. 0, KL_EINVAL (req not valid),
 * KL_ENOMEM or KL_ETOOBIG (out's maximum). */
int kl_echo_chat(const json_t *req, const kl_echo_opts *o, kl_buf *out);
int kl_echo_completions(const json_t *req, const kl_echo_opts *o, kl_buf *out);
int kl_echo_embeddings(const json_t *req, const kl_echo_opts *o, kl_buf *out);

/* Streaming (chat and completions). Events, each "data: <json>\n\n": for chat first a
 * chunk with delta {"role":"assistant","content":""}; then one chunk per word of the
 * answer, with the whitespace that follows it (leading whitespace goes with the first
 * word, so the deltas concatenate to the exact answer; a word longer than
 * KL_MAX_ECHO_DELTA bytes is split over several chunks at UTF-8 character boundaries,
 * so no event is larger than about six times that); then an empty delta with
 * finish_reason "stop"; then, if stream_options.include_usage, a usage chunk with
 * choices []; then "data: [DONE]". */
typedef struct kl_echo_stream kl_echo_stream;

/* kind is KL_GW_ROUTE_CHAT or KL_GW_ROUTE_COMPLETIONS. Takes its own reference to req
 * and copies what it needs from o. 0, KL_EINVAL or KL_ENOMEM; *out freed with
 * kl_echo_stream_free. */
int kl_echo_stream_new(kl_gateway_route_kind kind, json_t *req, const kl_echo_opts *o,
                       kl_echo_stream **out);
/* Appends the next event to out: returns 1 if one was appended, 0 once the stream is
 * complete (nothing appended), or a negative kl_err. */
int kl_echo_stream_next(kl_echo_stream *s, kl_buf *out);
void kl_echo_stream_free(kl_echo_stream *s);

/* Convenience: runs a whole stream, calling cb once per event (bytes valid during the
 * call). Stops early with cb's value if it returns non-zero. */
int kl_echo_stream_all(kl_gateway_route_kind kind, json_t *req, const kl_echo_opts *o,
                       int (*cb)(const char *event, size_t len, void *arg), void *arg);

/* Whitespace-separated words in s[0..n) (ASCII whitespace). */
size_t kl_echo_count_words(const char *s, size_t n);

/* The 16-dimension unit vector of msg[0..n): SHA-256, 16 big-endian 16-bit values
 * mapped to [-1, 1), normalised. */
void kl_echo_vector(const void *msg, size_t n, float out[KL_ECHO_DIMENSIONS]);

#endif
