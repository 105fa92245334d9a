/* Writing an answer's head (private to src/http/), shared by whole answers (respond.c) and
 * streamed ones (stream.c). */
#ifndef KL_HTTP_RESPOND_H
#define KL_HTTP_RESPOND_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "http/conn.h"
#include "http/server.h"

/* Writes r's status line, headers and the first body bytes (body may be NULL/0) as one
 * contiguous piece, so that over TLS a small response is one record and one write().
 * framing: the Content-Length or Transfer-Encoding line (without CRLF). defer: the piece
 * goes into r->pend, to leave with the first streamed bytes. 0, or KL_ENOMEM (nothing
 * was queued; the connection will close). */
int kl_http_respond_head(kl_http_req *r, int status, const char *content_type, const char *framing,
                         const void *body, size_t len, bool defer);
/* Hands b's bytes to c's output without copying them; b is left empty. 0, or KL_ENOMEM
 * (the bytes are dropped). */
int kl_http_respond_queue(kl_http_conn *c, kl_buf *b);

#endif
