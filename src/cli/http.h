/* HTTP/1.1 to keylessd with libcurl: over its Unix admin socket, or over TLS to a remote
 * keylessd (after `keyless login`), verifying its certificate. One handle per CLI run,
 * so the requests of one command (GET then PUT) share a connection. Responses are kept
 * in memory up to KL_CLI_MAX_RESPONSE bytes. */
#ifndef KL_CLI_HTTP_H
#define KL_CLI_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define KL_CLI_MAX_RESPONSE (16u * 1024 * 1024)
#define KL_CLI_CONNECT_TIMEOUT_MS 5000L
#define KL_CLI_TOTAL_TIMEOUT_MS 60000L

typedef struct kl_cli_http {
    CURL *curl;            /* owned */
    const char *sock_path; /* borrowed; the admin socket, or NULL when base_url is set */
    const char *base_url;  /* borrowed; https://host:port of a remote keylessd, or NULL */
    const char *ca_file;   /* borrowed; PEM CAs that sign base_url's certificate; NULL:
                              the system's */
    char errbuf[CURL_ERROR_SIZE];
    bool connect_failed; /* the last request found no daemon listening on the socket */
} kl_cli_http;

typedef struct kl_cli_response {
    long status; /* HTTP status; 0 until a response arrived */
    kl_buf body; /* owned; free with kl_cli_response_free (it wipes: bodies may hold keys) */
} kl_cli_response;

/* Prepares a handle for the socket at sock_path. curl_global_init must have been called.
 * Returns 0; KL_ETOOBIG if the path does not fit a Unix socket address (message in err);
 * KL_ENOMEM. */
int kl_cli_http_init(kl_cli_http *h, const char *sock_path, char *err, size_t errlen);
/* Prepares a handle for a remote keylessd at base_url (https:// only: a bearer token
 * never travels in clear), its certificate checked against ca_file (or the system's CAs
 * when NULL) and its name. Both strings must outlive the handle. 0; KL_EINVAL when
 * base_url is not https:// (message in err); KL_ENOMEM. */
int kl_cli_http_init_remote(kl_cli_http *h, const char *base_url, const char *ca_file, char *err,
                            size_t errlen);
void kl_cli_http_free(kl_cli_http *h);

/* One request. */
typedef struct kl_cli_http_msg {
    const char *method;       /* "GET", "PUT", "PATCH", "POST", "DELETE" */
    const char *target;       /* path and query, escaped, starting with '/' */
    const char *content_type; /* of body; NULL: application/json */
    const char *body;         /* NULL: none (POST sends an empty body) */
    size_t body_len;
    const char *bearer; /* access token for "Authorization: Bearer", or NULL */
} kl_cli_http_msg;

/* Sends m (see kl_cli_http_request for the result, err and resp). The header that
 * carries the bearer token is wiped after use. */
int kl_cli_http_send(kl_cli_http *h, const kl_cli_http_msg *m, kl_cli_response *resp, char *err,
                     size_t errlen);

/* Sends method ("GET", "PUT", "POST", "DELETE") to target (a path with its query,
 * already escaped, starting with '/'). body[0..body_len) is sent as application/json
 * when body is not NULL (POST with body NULL sends an empty body). The caller keeps
 * ownership of body. On return resp is initialised (free it with kl_cli_response_free
 * whatever the result).
 * Returns 0 when an HTTP response arrived, whatever its status; KL_EIO when keylessd
 * could not be reached or did not answer in time (a one-line reason naming the socket in
 * err); KL_ETOOBIG when the answer exceeds KL_CLI_MAX_RESPONSE; KL_ENOMEM. */
int kl_cli_http_request(kl_cli_http *h, const char *method, const char *target, const char *body,
                        size_t body_len, kl_cli_response *resp, char *err, size_t errlen);

void kl_cli_response_free(kl_cli_response *r);

/* Explains why the socket at sock_path cannot be connected to ("does not exist", "not a
 * socket", "permission denied", "connection refused"...), into out. Returns true when a
 * fresh connection does succeed (the daemon is there but dropped the earlier one). */
bool kl_cli_http_diagnose(const char *sock_path, char *out, size_t outlen);

/* Appends s with every byte keep refuses percent-encoded (%XX, upper-case hex), the rest
 * as they are. 0 or KL_ENOMEM/KL_ETOOBIG from the buffer. */
int kl_cli_http_append_encoded(kl_buf *out, const char *s, bool (*keep)(unsigned char c));

/* Appends s as one URL path segment: letters, digits and - _ . ( ) are kept, every other
 * byte is percent-encoded, and a segment made only of dots is encoded whole, so no
 * argument can add a path segment, a query or a dot-segment. 0 or a kl_err. */
int kl_cli_append_segment(kl_buf *out, const char *s);

#endif
