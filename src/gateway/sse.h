/* Server-sent events framing for the streams the gateway produces itself (the echo
 * backend). Every event is "data: <payload>\n\n": the openai SDK yields nothing for
 * events that are not ended by a blank line. Upstream streams are never re-framed; their
 * bytes pass through as they arrive. */
#ifndef KL_GATEWAY_SSE_H
#define KL_GATEWAY_SSE_H

#include <jansson.h>
#include <stddef.h>

#include "common/buf.h"

/* Appends one event carrying data[0..len). A payload with line breaks becomes several
 * "data:" lines of one event (the SSE rule), so a client rebuilds it exactly. 0 or a
 * kl_err from the buffer. */
int kl_sse_event(kl_buf *out, const char *data, size_t len);
/* Appends one event whose payload is j serialised compactly (keys in insertion order). */
int kl_sse_json(kl_buf *out, const json_t *j);
/* Appends the terminating "data: [DONE]\n\n". */
int kl_sse_done(kl_buf *out);

#endif
