/* Streamed (chunked) answers, the part private to src/http/: the connection moves what a
 * handler streamed to the socket once per loop iteration. */
#ifndef KL_HTTP_STREAM_H
#define KL_HTTP_STREAM_H

#include "http/server.h"

/* Hands r's streamed bytes not yet queued to the connection's output as one piece. 0, or
 * KL_ENOMEM: the bytes are lost and the stream has failed (it can only end by closing). */
int kl_http_stream_flush(kl_http_req *r);

#endif
