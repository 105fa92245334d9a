/* A request as the HTTP server holds it (private to src/http/): filled by the parser
 * (parser.c), read through the accessors of http/server.h (req.c), answered by respond.c
 * and stream.c, and owned by its connection (conn.c) until it is finished. */
#ifndef KL_HTTP_REQ_H
#define KL_HTTP_REQ_H

#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/metrics.h"
#include "common/util.h"
#include "http/server.h"

#define KL_HTTP_STREAM_END "0\r\n\r\n" /* the terminating chunk of a streamed answer */

struct kl_http_conn;

/* One request header: offsets into the request's raw bytes. */
typedef struct kl_http_header {
    size_t name_off, name_len, val_off, val_len;
} kl_http_header;

struct kl_http_req {
    struct kl_http_conn *conn; /* NULL for a request parsed without a connection (fuzzing) */
    /* The daemon-wide request budget raw_charged and body_charged were taken from. */
    atomic_size_t *budget;
    char method[16];
    kl_buf raw; /* url, then header names and values, back to back (secret: api-key) */
    size_t url_len;
    kl_http_header headers[KL_MAX_HEADER_COUNT];
    int nheaders;
    bool last_was_value;
    bool headers_done;         /* after this, header callbacks carry trailers: ignored */
    char *path;                /* normalised, owned */
    char *query;               /* owned, "" if none */
    struct evkeyvalq *qparams; /* lazily parsed */
    kl_buf body;
    /* Bytes taken from the budget for raw and for body; given back when the request is
     * freed. */
    size_t raw_charged, body_charged;
    char id[KL_UUID_LEN + 1];
    uint64_t start_us; /* monotonic, for latency */
    kl_route route;
    bool responded; /* status line has been written */
    bool streaming;
    bool finished;
    /* A streamed byte could not be queued: the answer is incomplete, so it can only end
     * by closing the connection without the terminating chunk (never a clean end). */
    bool stream_failed;
    int status;
    json_t *log_fields;
    /* response headers queued by kl_http_set_header */
    kl_buf resp_headers;
    /* Streamed output not yet handed to the bufferevent: what a handler streams within
     * one loop iteration goes out as one piece (one TLS record, one write). Together with
     * the bufferevent's output it never holds more than KL_MAX_OUTPUT_BUFFER (plus the
     * terminating chunk): see kl_http_stream_write. */
    kl_buf pend;
    void (*drain_cb)(void *);
    void *drain_arg;
    void (*abort_cb)(void *);
    void *abort_arg;
    int auth_fail; /* -1 or kl_auth_fail */
};

/* A new, empty request charging its buffers to *budget (which must outlive it); conn and
 * id are left for the caller to set. NULL if out of memory. Free with kl_http_req_free. */
kl_http_req *kl_http_req_new(atomic_size_t *budget);
/* Wipes and frees r and everything it holds, and gives its charge back to the budget.
 * NULL is ignored. Callbacks are not called: that is the connection's business. */
void kl_http_req_free(kl_http_req *r);
/* Writes r's access-log line (aborted: the connection died before the answer was
 * complete). Consumes the fields added by kl_http_req_log_field. */
void kl_http_req_log_access(kl_http_req *r, bool aborted);

#endif
