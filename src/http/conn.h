/* One client connection of the HTTP server (private to src/http/): accepting it, its
 * bufferevent callbacks and timeouts, feeding its input to the parser, handing requests
 * to the handler one at a time, and closing it (lingeringly after a refusal). */
#ifndef KL_HTTP_CONN_H
#define KL_HTTP_CONN_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "http/parser.h"
#include "http/server.h"
#include "http/server_impl.h"

typedef enum kl_http_conn_state {
    KL_CONN_IDLE = 0, /* waiting for the first byte of a request */
    KL_CONN_READING,  /* parsing a request */
    KL_CONN_HANDLING, /* the handler owns the request */
    KL_CONN_CLOSING,  /* flushing the last response, then close */
    KL_CONN_LINGER    /* response sent after a refusal: discard input briefly, then close */
} kl_http_conn_state;

typedef struct kl_http_conn {
    kl_http_thread *t;
    kl_http_listener *ls;
    struct bufferevent *bev;
    kl_http_parser parser;
    kl_http_conn_state state;
    kl_http_req *req; /* owned; the one request being read or answered */
    struct event *timer;
    struct event *resume; /* resumes parsing of pipelined input, without recursion */
    struct event *flush;  /* moves a streaming answer's pending bytes to the socket */
    long peer_uid;
    struct sockaddr_storage peer; /* TCP: the client's address (ss_family 0 when unknown) */
    bool admin_ok;
    bool keep_alive;
    bool linger;     /* refused with input unread: close lingeringly */
    bool peer_eof;   /* the client half-closed: answer what is buffered, then close */
    size_t lingered; /* bytes discarded while lingering */
    struct kl_http_conn *next, *prev;
} kl_http_conn;

/* evconnlistener callbacks (arg: a kl_http_accept_arg). A TCP connection records its
 * peer's address; a Unix one its peer's uid, and a peer other than root or the daemon's
 * own user gets a JSON 403 and the connection closes. When the thread is draining, at
 * KL_MAX_CONNECTIONS, or out of memory, the socket is closed at once. */
void kl_http_conn_accept_tcp(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int socklen, void *arg);
void kl_http_conn_accept_unix(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int socklen, void *arg);
/* Closes c at once: an unfinished request's abort callback runs (and its access-log line
 * is written), then the request, the socket and c are freed. When the thread is draining
 * and this was its last connection, the thread's loop is told to stop. */
void kl_http_conn_free(kl_http_conn *c);
/* Called when the last byte of r's answer has been queued: records metrics and the
 * access log, frees r, then either closes the connection (after the output is written)
 * or makes it ready for the next request (parsed from the event loop, not from here). */
void kl_http_conn_finish(kl_http_req *r);

#endif
