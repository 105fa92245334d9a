/* The bytes of an upstream exchange, without any I/O: the request as one contiguous
 * buffer, and the response framed by http_parser (content-length, chunked and
 * close-delimited bodies, 1xx interim answers skipped) with the few headers the gateway
 * passes back captured on the way. Kept apart from the connection handling so that the
 * exact bytes can be unit-tested. */
#ifndef KL_GATEWAY_UPSTREAM_WIRE_H
#define KL_GATEWAY_UPSTREAM_WIRE_H

#include <http_parser.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/upstream.h"

/* Builds "POST <uri> HTTP/1.1", Host, Content-Type: application/json, Accept,
 * Content-Length, "Authorization: Bearer <credential>" (only if credential is non-NULL
 * and non-empty), the blank line and body serialised compactly in insertion order, in
 * one malloc'd buffer (*out, *out_len; the caller frees it, after OPENSSL_cleanse when
 * a credential is in it). size_hint is the expected size of the serialised body: a good
 * guess saves a second serialisation. 0, KL_EINVAL (CR, LF or NUL in a header value,
 * body not serialisable) or KL_ENOMEM; *out is NULL on error. */
int kl_upstream_request_build(const kl_upstream_target *t, const char *accept,
                              const char *credential, const json_t *body, size_t size_hint,
                              char **out, size_t *out_len);

/* Captured response headers: index 0 is Content-Type, the others are passed back to the
 * client as they are (rate limits and retry hints). Names are lower case. */
#define KL_UPSTREAM_RESP_NHEADERS 9
extern const char *const kl_upstream_resp_names[KL_UPSTREAM_RESP_NHEADERS];
/* Room for the captured values together; a value that does not fit is dropped. */
#define KL_UPSTREAM_RESP_CAPTURE 1024

typedef struct kl_upstream_resp kl_upstream_resp;

typedef struct kl_upstream_resp_cb {
    /* The final (non-1xx) head is complete: status and captured headers are readable. */
    int (*head)(void *arg, const kl_upstream_resp *rp);
    /* Body bytes, de-chunked, in order; data points into the fed buffer. */
    int (*body)(void *arg, const char *data, size_t len);
} kl_upstream_resp_cb;
/* Either callback may return a negative kl_err: parsing stops and feed returns it. */

struct kl_upstream_resp {
    http_parser parser;
    const kl_upstream_resp_cb *cb; /* borrowed */
    void *arg;
    int status;          /* of the final answer, once its head is complete */
    bool head_done;      /* the final answer's head is complete */
    bool complete;       /* the whole answer has been parsed */
    bool keep_alive;     /* once complete: the connection may carry another request */
    int err;             /* first error (limits, callbacks) */
    size_t header_bytes; /* names and values of the current head */
    int header_count;
    uint64_t body_bytes;
    bool in_value; /* the last header callback was for a value */
    int cur;       /* captured header whose value is being read, or -1 */
    size_t name_len;
    char name[32]; /* the header name being read (only short names can be captured) */
    uint16_t off[KL_UPSTREAM_RESP_NHEADERS];
    bool have[KL_UPSTREAM_RESP_NHEADERS];
    size_t cap_len;
    char cap[KL_UPSTREAM_RESP_CAPTURE]; /* NUL-terminated values */
};

/* Prepares rp for one response; cb and arg are borrowed. Allocates nothing. */
void kl_upstream_resp_init(kl_upstream_resp *rp, const kl_upstream_resp_cb *cb, void *arg);
/* Parses len bytes of the response (len 0: the peer closed the connection), running the
 * callbacks. *consumed receives the bytes used: less than len once the answer is
 * complete (what follows is not part of it). Returns 1 when the answer is complete, 0
 * when more bytes are needed, KL_ETOOBIG (over a limit in common/limits.h: header bytes
 * or count, body bytes), KL_EINVAL (malformed: not HTTP, status below 100, 101), KL_EIO
 * (the connection closed before the answer was complete) or a callback's error. */
int kl_upstream_resp_feed(kl_upstream_resp *rp, const char *data, size_t len, size_t *consumed);
/* The captured value of header i (0 <= i < KL_UPSTREAM_RESP_NHEADERS), first occurrence,
 * trailing blanks removed; NULL if absent. Stable once the final head is complete. */
const char *kl_upstream_resp_value(const kl_upstream_resp *rp, size_t i);

#endif
