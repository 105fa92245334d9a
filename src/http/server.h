/* The HTTP/1.1 server every face of keylessd is served by: libevent bufferevents (with
 * OpenSSL for TLS), one event base per worker thread, http_parser for framing, and the
 * limits in common/limits.h. Every refusal the server makes itself (malformed request,
 * oversized header or body, timeouts) is a JSON body {"error":{"code","message"}}.
 * Request heads and bodies held in memory are charged to one budget shared by every
 * worker (KL_MAX_BUFFERED_REQUEST_BYTES); a request that would exceed it is refused with
 * 503 ServerBusy and Retry-After. Buffers that held request bytes are wiped before they
 * are freed (they carry api-key headers and form bodies).
 *
 * Requests on a connection are handled one at a time (pipelined requests wait). A
 * handler may answer at once or later (asynchronously, from the same worker thread):
 * the request stays valid until it is answered or aborted.
 *
 * Implemented in modules (their private headers are in this folder): server.c
 * (listeners, threads, start and stop), conn.c (connections), parser.c (framing and the
 * server's refusals), req.c (requests and their accessors), respond.c (whole answers)
 * and stream.c (streamed answers). */
#ifndef KL_HTTP_SERVER_H
#define KL_HTTP_SERVER_H

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/metrics.h"

/* Which face a listener serves; handlers route on it. */
typedef enum kl_face {
    KL_FACE_PUBLIC = 0, /* TLS: gateway, token service, control plane (bearer only) */
    KL_FACE_IMDS,       /* loopback plain HTTP: managed identity endpoint */
    KL_FACE_ADMIN,      /* Unix socket: control plane, root-equivalent */
    KL_FACE_METRICS     /* optional plain listener for /metrics */
} kl_face;

typedef struct kl_http_server kl_http_server;
typedef struct kl_http_req kl_http_req;

typedef void (*kl_http_handler_fn)(kl_http_req *req, void *arg);

/* What a headers hook decided about a request. */
typedef enum kl_http_verdict {
    KL_HTTP_CONTINUE = 0, /* read the body, then call the handler */
    KL_HTTP_ANSWERED      /* the hook answered the request (a refusal) */
} kl_http_verdict;
/* Called on the worker thread as soon as a request's headers are complete and checked,
 * before any byte of its body is read, so that a request that will be refused (a bad
 * credential, an unknown route) never has its body buffered. Everything but the body
 * can be read. To refuse, the hook answers with kl_http_respond* (a complete answer,
 * never a stream) and returns KL_HTTP_ANSWERED; the server then closes the connection
 * without reading the body (lingering: what the client still sends is discarded
 * unbuffered for a short while, so the answer is not lost to a reset). Otherwise it
 * returns KL_HTTP_CONTINUE without answering, and the handler runs once the body is in. */
typedef kl_http_verdict (*kl_http_headers_fn)(kl_http_req *req, void *arg);
/* Called once per worker thread at start (index 0..n-1, or -1 for the control thread)
 * so components can build per-thread state on that thread's event base. Returns the
 * per-thread pointer that kl_http_req_thread_state() gives back. */
typedef void *(*kl_http_thread_init_fn)(int index, struct event_base *base, void *arg);
/* Called once per thread, on it, when its loop has stopped for good and its connections
 * are closed (their abort callbacks have run), before base is freed: where components
 * that deliver onto base from other threads settle what is still due (gateway/refreshq.h),
 * since nothing runs on base afterwards. */
typedef void (*kl_http_thread_fini_fn)(void *state, struct event_base *base, void *arg);

typedef struct kl_http_server_cfg {
    int workers;                   /* worker threads for TCP listeners (>= 1) */
    kl_http_handler_fn handler;    /* called for every complete request */
    kl_http_headers_fn on_headers; /* may be NULL; gets handler_arg */
    void *handler_arg;
    kl_http_thread_init_fn thread_init; /* may be NULL */
    kl_http_thread_fini_fn thread_fini; /* may be NULL */
    void *thread_arg;
    kl_metrics *metrics; /* may be NULL */
    bool access_log;     /* one JSON "request" log line per request */
    /* A client that takes no byte of a pending response for this long is disconnected
     * (ms; <= 0: KL_WRITE_TIMEOUT_MS). */
    int write_timeout_ms;
    /* A request body not complete this long after its headers gets a 408 (ms; <= 0:
     * KL_BODY_TIMEOUT_MS). */
    int body_timeout_ms;
} kl_http_server_cfg;

/* Creates a server; nothing listens until kl_http_server_start. NULL on failure. */
kl_http_server *kl_http_server_new(const kl_http_server_cfg *cfg);

/* Adds a TCP listener on "host:port" (IPv4, or [IPv6]:port). tls may be NULL (plain);
 * the server takes a reference to it. Every worker listens (SO_REUSEPORT). Returns 0 or
 * a kl_err; on success *bound_port receives the actual port (for port 0). */
int kl_http_server_listen_tcp(kl_http_server *s, const char *hostport, SSL_CTX *tls, kl_face face,
                              int *bound_port);
/* Adds a private listener (--private-listen): the public face on another address, whose
 * requests kl_http_req_private reports, so that an account closed to the public network
 * still answers there. Otherwise as kl_http_server_listen_tcp. */
int kl_http_server_listen_private(kl_http_server *s, const char *hostport, SSL_CTX *tls,
                                  int *bound_port);
/* The address the i-th TCP listener (0-based, in the order added; Unix listeners not
 * counted) is bound to, port included: what the daemon must never proxy to. Call it before
 * kl_http_server_start (the sockets then pass to the workers). 0, KL_EIO, or KL_ENOTFOUND
 * past the last listener. */
int kl_http_server_tcp_addr(const kl_http_server *s, int i, struct sockaddr_storage *out);
/* Adds a Unix-socket listener served by the control thread. The socket file is created
 * 0600; each connection's peer credentials are read (SO_PEERCRED) and only uid 0 or the
 * daemon's own uid is served (others get a JSON 403 and the connection closes). */
int kl_http_server_listen_unix(kl_http_server *s, const char *path, kl_face face);

/* Starts the worker threads and the control thread. 0 or a kl_err. */
int kl_http_server_start(kl_http_server *s);
/* Graceful stop: closes listeners, lets in-flight requests finish (up to grace_ms),
 * joins the threads. Safe to call from a signal-handling thread (not a worker). */
void kl_http_server_stop(kl_http_server *s, int grace_ms);
/* Stops the server (as kl_http_server_stop with no grace) if it runs, closes its
 * listeners (removing Unix socket files) and frees it. NULL is ignored. */
void kl_http_server_free(kl_http_server *s);

/* --- request accessors (valid until the request is answered or aborted) --- */
/* The method as http_parser names it ("GET", "POST", ...). */
const char *kl_http_req_method(const kl_http_req *r);
/* The path with duplicate slashes collapsed and a trailing slash removed ("/" stays);
 * not percent-decoded. */
const char *kl_http_req_path(const kl_http_req *r);
/* The request target's path exactly as sent (before '?' or '#', nothing collapsed or
 * decoded), not NUL-terminated: *len bytes. For checks that must see what the
 * normalised path hides (e.g. "//" inside an ARM scope). */
const char *kl_http_req_raw_path(const kl_http_req *r, size_t *len);
/* Raw query string without '?', or "" if none. */
const char *kl_http_req_query(const kl_http_req *r);
/* Decoded value of the first query parameter called name (case-sensitive), or NULL. */
const char *kl_http_req_query_param(kl_http_req *r, const char *name);
/* Value of the first header called name (case-insensitive), or NULL. */
const char *kl_http_req_header(const kl_http_req *r, const char *name);
/* Number of headers called name (to detect duplicates). */
int kl_http_req_header_count(const kl_http_req *r, const char *name);
/* The request body, *len bytes (never NULL; empty before the body is read, as in the
 * headers hook). Owned by the request. */
const unsigned char *kl_http_req_body(const kl_http_req *r, size_t *len);
/* The face of the listener the request came in on. */
kl_face kl_http_req_face(const kl_http_req *r);
/* True for Unix-socket connections whose peer passed the uid check. */
bool kl_http_req_is_admin(const kl_http_req *r);
/* The TCP peer's address (AF_INET or AF_INET6), or NULL (Unix sockets). */
const struct sockaddr *kl_http_req_peer(const kl_http_req *r);
/* True for requests that came through a private listener. */
bool kl_http_req_private(const kl_http_req *r);
/* Peer uid on Unix sockets; -1 otherwise. */
long kl_http_req_peer_uid(const kl_http_req *r);
/* The client's address as text ("127.0.0.1", "::1"; "unix" for the admin socket) in
 * out; "" when it cannot be told. */
void kl_http_req_peer_addr(const kl_http_req *r, char *out, size_t outlen);
/* A per-request GUID, also sent back as the x-ms-request-id and apim-request-id headers. */
const char *kl_http_req_id(const kl_http_req *r);
/* The event base of the worker thread serving the request: where an asynchronous
 * handler schedules the rest of its work. */
struct event_base *kl_http_req_base(const kl_http_req *r);
/* What cfg.thread_init returned for the thread serving the request (NULL without one). */
void *kl_http_req_thread_state(const kl_http_req *r);
/* Labels the request for metrics (default KL_ROUTE_OTHER). */
void kl_http_req_set_route(kl_http_req *r, kl_route route);
/* Records an authentication failure for metrics and the access log. */
void kl_http_req_auth_failed(kl_http_req *r, kl_auth_fail kind);
/* Adds a field to this request's access-log line (value copied). Never a secret. */
void kl_http_req_log_field(kl_http_req *r, const char *key, const char *value);

/* --- answering --- */
/* Adds a response header (copied). Content-Length, Transfer-Encoding, Connection and
 * Date are the server's own and are ignored here. */
void kl_http_set_header(kl_http_req *r, const char *name, const char *value);
/* Sends a complete response; the request is finished and must not be used again. A 204
 * or 304 carries no body; the answer to HEAD carries the headers only. Does nothing if
 * the request was already answered. Out of memory, the connection is closed instead. */
void kl_http_respond(kl_http_req *r, int status, const char *content_type, const void *body,
                     size_t len);
/* Sends body as application/json; takes ownership of body. A NULL body (what json_pack
 * gives for text that is not UTF-8) or one that cannot be serialised gets the server's
 * own JSON 500 instead. */
void kl_http_respond_json(kl_http_req *r, int status, json_t *body);
/* Sends {"error":{"code":code,"message":message}} as application/json. */
void kl_http_respond_error(kl_http_req *r, int status, const char *code, const char *message);

/* Streaming (chunked transfer encoding). The bytes queued to the client (see
 * kl_http_stream_pending) never exceed KL_MAX_OUTPUT_BUFFER: a producer stops once more
 * than half of it is queued and resumes from kl_http_req_on_drain. Any failed write makes
 * the stream unrecoverable: whatever the handler does next, it ends with the connection
 * closed and no terminating chunk, so the client sees the answer is incomplete. A
 * truncated answer never looks complete. After end or abort the request is gone. */

/* Queues the status line and headers (sent with the first chunk, at the latest at the
 * end of this loop iteration). 0, or KL_EINVAL if the request was already answered (or
 * begun). Out of memory it still returns 0: the stream has then failed, so every write
 * returns KL_EIO and end acts as abort. */
int kl_http_stream_begin(kl_http_req *r, int status, const char *content_type);
/* Queues len bytes as one chunk (nothing for len 0, or for an answer to HEAD). Returns 0;
 * KL_EIO if the stream was never begun, already failed or ended; KL_ETOOBIG if the chunk
 * would take the queued bytes past KL_MAX_OUTPUT_BUFFER (so no single write may be near
 * the bound); KL_ENOMEM if memory ran out. Every error but KL_EIO makes the stream fail
 * (see above). */
int kl_http_stream_write(kl_http_req *r, const void *data, size_t len);
/* Finishes the response with the terminating chunk, unless a write failed (then it acts
 * as abort). Does nothing if the stream was never begun or is already over. */
void kl_http_stream_end(kl_http_req *r);
/* Closes the connection at once without the terminating chunk (bytes still queued are
 * dropped) for an answer that cannot be completed, such as a model server failing
 * mid-stream; the abort callback is not called. Does nothing if the request is finished. */
void kl_http_stream_abort(kl_http_req *r);
/* Bytes queued to the client but not yet written (for backpressure). */
size_t kl_http_stream_pending(const kl_http_req *r);
/* cb runs when the queued output drops below half of KL_MAX_OUTPUT_BUFFER. */
void kl_http_req_on_drain(kl_http_req *r, void (*cb)(void *arg), void *arg);
/* cb runs if the connection dies before the response is finished; afterwards the
 * request is gone and must not be touched (the server frees it after cb returns). */
void kl_http_req_on_abort(kl_http_req *r, void (*cb)(void *arg), void *arg);

#endif
