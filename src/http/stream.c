/* Streamed answers (chunked transfer encoding): what a handler writes within one loop
 * iteration leaves as one piece, bounded by KL_MAX_OUTPUT_BUFFER, and an answer that could
 * not be written whole never ends as if it were complete (http/server.h). */
#include "http/stream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "http/conn.h"
#include "http/req.h"
#include "http/respond.h"

int kl_http_stream_flush(kl_http_req *r)
{
    if (!r->pend.len)
        return 0;
    if (kl_http_respond_queue(r->conn, &r->pend) != 0) {
        r->stream_failed = true;
        return KL_ENOMEM;
    }
    return 0;
}

int kl_http_stream_begin(kl_http_req *r, int status, const char *content_type)
{
    if (r->responded)
        return KL_EINVAL;
    r->streaming = true;
    if (kl_http_respond_head(r, status, content_type, "Transfer-Encoding: chunked", NULL, 0,
                             true) != 0)
        r->stream_failed = true; /* the handler's writes fail, its end aborts */
    event_active(r->conn->flush, EV_TIMEOUT, 1);
    return 0;
}

int kl_http_stream_write(kl_http_req *r, const void *data, size_t len)
{
    if (!r->streaming || r->finished || r->stream_failed)
        return KL_EIO;
    /* A HEAD answer has headers only; what a handler streams is not sent. */
    if (len == 0 || strcmp(r->method, "HEAD") == 0)
        return 0;
    char head[24];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", len);
    /* The output buffer's bound, on purpose: producers stop at half of it (the drain
     * callback resumes them), so only a producer that ignores backpressure, or a single
     * piece that could never fit, gets here. Its answer cannot be delivered whole. */
    size_t queued = kl_http_stream_pending(r);
    size_t need = (size_t)hn + len + 2;
    if (queued > KL_MAX_OUTPUT_BUFFER || need > KL_MAX_OUTPUT_BUFFER - queued) {
        r->stream_failed = true;
        return KL_ETOOBIG;
    }
    int rc = kl_buf_append(&r->pend, head, (size_t)hn);
    if (!rc)
        rc = kl_buf_append(&r->pend, data, len);
    if (!rc)
        rc = kl_buf_append(&r->pend, "\r\n", 2);
    if (rc) {
        r->stream_failed = true;
        return rc;
    }
    /* Sent at the end of this loop iteration, together with whatever else the handler
     * streams meanwhile; large bursts go at once. */
    if (r->pend.len >= KL_STREAM_FLUSH_BYTES)
        return kl_http_stream_flush(r);
    event_active(r->conn->flush, EV_TIMEOUT, 1);
    return 0;
}

void kl_http_stream_end(kl_http_req *r)
{
    if (!r->streaming || r->finished)
        return;
    if (!r->stream_failed && strcmp(r->method, "HEAD") != 0 &&
        kl_buf_append(&r->pend, KL_HTTP_STREAM_END, sizeof(KL_HTTP_STREAM_END) - 1) != 0)
        r->stream_failed = true;
    if (!r->stream_failed)
        kl_http_stream_flush(r);
    if (r->stream_failed) {
        kl_http_stream_abort(r);
        return;
    }
    kl_http_conn_finish(r);
}

void kl_http_stream_abort(kl_http_req *r)
{
    if (r->finished)
        return;
    /* The handler asked for this: it is not called back. What was queued but not yet
     * written is dropped with the connection; the client sees a body without its end. */
    r->abort_cb = NULL;
    r->drain_cb = NULL;
    kl_http_conn_free(r->conn);
}

size_t kl_http_stream_pending(const kl_http_req *r)
{
    return evbuffer_get_length(bufferevent_get_output(r->conn->bev)) + r->pend.len;
}
