/* The HTTP server's own state, shared by its modules (private to src/http/): the server,
 * its listeners, and the threads that serve them (server.c); connections (conn.c) and
 * requests (req.c) point back into it. Callers only see the opaque kl_http_server. */
#ifndef KL_HTTP_SERVER_IMPL_H
#define KL_HTTP_SERVER_IMPL_H

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "common/limits.h"
#include "http/server.h"

#define KL_HTTP_MAX_LISTENERS KL_MAX_HTTP_LISTENERS
#define KL_HTTP_MAX_WORKERS 64

struct kl_http_conn;

typedef struct kl_http_listener {
    bool is_unix;
    bool is_private; /* --private-listen: the account's public network rules do not apply */
    kl_face face;
    SSL_CTX *tls;                 /* referenced; NULL for plain */
    int fds[KL_HTTP_MAX_WORKERS]; /* TCP: one bound socket per worker; Unix: fds[0] */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} kl_http_listener;

typedef struct kl_http_thread kl_http_thread;

/* What an accepting listener's callback is given: the thread it runs on and what it serves. */
typedef struct kl_http_accept_arg {
    kl_http_thread *t;
    kl_http_listener *ls;
} kl_http_accept_arg;

struct kl_http_thread {
    kl_http_server *server;
    int index; /* worker index, or -1 for the control thread */
    struct event_base *base;
    pthread_t thread;
    bool started;
    struct evconnlistener *listeners[KL_HTTP_MAX_LISTENERS];
    kl_http_accept_arg accept_args[KL_HTTP_MAX_LISTENERS];
    void *state;            /* from cfg.thread_init */
    struct event *stop_ev;  /* fired by kl_http_server_stop */
    struct event *grace_ev; /* hard deadline for in-flight requests */
    bool draining;
    int nconns;
    struct kl_http_conn *conns; /* intrusive list, for draining */
    char date[64];              /* cached Date header value */
    unsigned char id_seed[16];  /* random per thread; request ids count up from it */
    uint64_t id_count;
    int64_t date_second;
};

struct kl_http_server {
    kl_http_server_cfg cfg;
    kl_http_listener listeners[KL_HTTP_MAX_LISTENERS];
    int nlisteners;
    kl_http_thread *workers;
    kl_http_thread control;
    int grace_ms;
    atomic_bool stopping;
    /* Bytes of request heads and bodies held by all workers together, as charged by the
     * parser (bounded by KL_MAX_BUFFERED_REQUEST_BYTES). */
    atomic_size_t buffered;
};

#endif
