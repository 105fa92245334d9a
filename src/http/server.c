/* The HTTP server's listeners and threads: N workers serve the TCP listeners (one event
 * base each, SO_REUSEPORT), one control thread serves the Unix-socket listeners (the
 * control plane may block there); start and graceful stop. Connections are conn.c's,
 * parsing parser.c's, requests req.c's, answers respond.c's and stream.c's. */
#include "http/server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "http/conn.h"
#include "http/parser.h"
#include "http/server_impl.h"

#define MAX_LISTENERS KL_HTTP_MAX_LISTENERS
#define MAX_WORKERS KL_HTTP_MAX_WORKERS

/* --------------------------------------------------------------- server setup */

kl_http_server *kl_http_server_new(const kl_http_server_cfg *cfg)
{
    if (!cfg || !cfg->handler || cfg->workers < 1 || cfg->workers > MAX_WORKERS)
        return NULL;
    kl_http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (s->cfg.write_timeout_ms <= 0)
        s->cfg.write_timeout_ms = KL_WRITE_TIMEOUT_MS;
    if (s->cfg.body_timeout_ms <= 0)
        s->cfg.body_timeout_ms = KL_BODY_TIMEOUT_MS;
    s->workers = calloc((size_t)cfg->workers, sizeof(kl_http_thread));
    if (!s->workers) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < MAX_LISTENERS; i++)
        for (int w = 0; w < MAX_WORKERS; w++)
            s->listeners[i].fds[w] = -1;
    /* Process-wide, idempotent set-up of the libraries the server relies on. */
    evthread_use_pthreads();
    kl_http_parser_setup();
    return s;
}

/* Parses "a.b.c.d:port", "[v6]:port" or "localhost:port" (port 0 allowed). */
static int parse_hostport(const char *hp, struct sockaddr_storage *ss, socklen_t *sslen)
{
    memset(ss, 0, sizeof(*ss));
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp)
        return KL_EINVAL;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!end || *end || end == colon + 1 || port < 0 || port > 65535)
        return KL_EINVAL;
    char host[64];
    size_t hl = (size_t)(colon - hp);
    if (hp[0] == '[') {
        if (hl < 3 || hp[hl - 1] != ']' || hl - 2 >= sizeof(host))
            return KL_EINVAL;
        memcpy(host, hp + 1, hl - 2);
        host[hl - 2] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return KL_EINVAL;
        *sslen = sizeof(*s6);
        return 0;
    }
    if (hl >= sizeof(host))
        return KL_EINVAL;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    if (!strcmp(host, "localhost"))
        memcpy(host, "127.0.0.1", 10);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return KL_EINVAL;
    *sslen = sizeof(*s4);
    return 0;
}

static int bind_tcp(const struct sockaddr_storage *ss, socklen_t sslen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, sslen) != 0 || listen(fd, KL_LISTEN_BACKLOG) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_tcp(kl_http_server *s, const char *hostport, SSL_CTX *tls, kl_face face,
                      bool is_private, int *bound_port);

int kl_http_server_listen_tcp(kl_http_server *s, const char *hostport, SSL_CTX *tls, kl_face face,
                              int *bound_port)
{
    return listen_tcp(s, hostport, tls, face, false, bound_port);
}

int kl_http_server_listen_private(kl_http_server *s, const char *hostport, SSL_CTX *tls,
                                  int *bound_port)
{
    return listen_tcp(s, hostport, tls, KL_FACE_PUBLIC, true, bound_port);
}

static int listen_tcp(kl_http_server *s, const char *hostport, SSL_CTX *tls, kl_face face,
                      bool is_private, int *bound_port)
{
    if (s->nlisteners >= MAX_LISTENERS)
        return KL_ETOOBIG;
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_hostport(hostport, &ss, &sslen) != 0)
        return KL_EINVAL;
    kl_http_listener *ls = &s->listeners[s->nlisteners];
    for (int w = 0; w < s->cfg.workers; w++) {
        int fd = bind_tcp(&ss, sslen);
        if (fd < 0) {
            int err = errno;
            for (int j = 0; j < w; j++) {
                close(ls->fds[j]);
                ls->fds[j] = -1;
            }
            kl_log(KL_LOG_ERROR, "listen_failed", "address", hostport, "reason", strerror(err),
                   NULL);
            return KL_EIO;
        }
        ls->fds[w] = fd;
        if (w == 0) {
            /* Port 0: every other worker binds the port the kernel chose. */
            struct sockaddr_storage got;
            socklen_t gl = sizeof(got);
            getsockname(fd, (struct sockaddr *)&got, &gl);
            int port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                                 : ntohs(((struct sockaddr_in *)&got)->sin_port);
            if (ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
            else
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
            if (bound_port)
                *bound_port = port;
        }
    }
    ls->is_unix = false;
    ls->is_private = is_private;
    ls->face = face;
    if (tls) {
        SSL_CTX_up_ref(tls);
        ls->tls = tls;
    }
    s->nlisteners++;
    return 0;
}

int kl_http_server_tcp_addr(const kl_http_server *s, int i, struct sockaddr_storage *out)
{
    for (int j = 0; j < s->nlisteners; j++) {
        const kl_http_listener *ls = &s->listeners[j];
        if (ls->is_unix || i-- > 0)
            continue;
        socklen_t len = sizeof(*out);
        memset(out, 0, sizeof(*out));
        if (ls->fds[0] < 0)
            return KL_EIO;
        return getsockname(ls->fds[0], (struct sockaddr *)out, &len) == 0 ? 0 : KL_EIO;
    }
    return KL_ENOTFOUND;
}

int kl_http_server_listen_unix(kl_http_server *s, const char *path, kl_face face)
{
    if (s->nlisteners >= MAX_LISTENERS)
        return KL_ETOOBIG;
    kl_http_listener *ls = &s->listeners[s->nlisteners];
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path))
        return KL_ETOOBIG;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return KL_EEXIST;
        unlink(path); /* a stale socket from an earlier run */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return KL_EIO;
    /* The socket file is created 0600 from the start: no window where others can connect. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc != 0 || listen(fd, KL_ADMIN_LISTEN_BACKLOG) != 0) {
        close(fd);
        return KL_EIO;
    }
    ls->is_unix = true;
    ls->face = face;
    ls->fds[0] = fd;
    snprintf(ls->path, sizeof(ls->path), "%s", path);
    s->nlisteners++;
    return 0;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_http_thread *t = arg;
    t->draining = true;
    for (int i = 0; i < MAX_LISTENERS; i++) {
        if (t->listeners[i]) {
            evconnlistener_free(t->listeners[i]);
            t->listeners[i] = NULL;
        }
    }
    /* Idle keep-alive connections go now; busy ones close after their response. */
    kl_http_conn *c = t->conns;
    while (c) {
        kl_http_conn *next = c->next;
        if (c->state == KL_CONN_IDLE)
            kl_http_conn_free(c);
        c = next;
        if (!t->conns)
            break;
    }
    if (t->nconns == 0) {
        event_base_loopbreak(t->base);
        return;
    }
    struct timeval tv = {t->server->grace_ms / 1000, (t->server->grace_ms % 1000) * 1000};
    evtimer_add(t->grace_ev, &tv);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_http_thread *t = arg;
    event_base_loopbreak(t->base);
}

static void *thread_main(void *arg)
{
    kl_http_thread *t = arg;
    kl_http_server *s = t->server;
    if (s->cfg.thread_init)
        t->state = s->cfg.thread_init(t->index, t->base, s->cfg.thread_arg);
    event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
    /* Whatever is still open after the grace period is cut off. libevent closes a freed
     * connection's socket from the loop, so one more turn of it lets those clients see
     * the end now rather than when the base is freed, which may wait for thread_fini
     * below to settle work other threads still do for this loop. Every component's
     * per-thread state still exists for whatever else that turn runs. */
    bool cut = t->conns != NULL;
    while (t->conns)
        kl_http_conn_free(t->conns);
    if (cut)
        event_base_loop(t->base, EVLOOP_NONBLOCK);
    if (s->cfg.thread_fini)
        s->cfg.thread_fini(t->state, t->base, s->cfg.thread_arg);
    return NULL;
}

static int thread_setup(kl_http_server *s, kl_http_thread *t, int index)
{
    t->server = s;
    t->index = index;
    if (RAND_bytes(t->id_seed, sizeof(t->id_seed)) != 1)
        return KL_ECRYPTO;
    /* The changelist folds the enable/disable churn of a request (read off while
     * handling, write on while flushing, the upstream connection's own toggles) into at
     * most one epoll_ctl per descriptor per loop iteration. */
    struct event_config *ec = event_config_new();
    if (!ec)
        return KL_ENOMEM;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    t->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!t->base)
        return KL_ENOMEM;
    t->stop_ev = event_new(t->base, -1, 0, stop_cb, t);
    t->grace_ev = evtimer_new(t->base, grace_cb, t);
    if (!t->stop_ev || !t->grace_ev)
        return KL_ENOMEM;
    for (int i = 0; i < s->nlisteners; i++) {
        kl_http_listener *ls = &s->listeners[i];
        bool mine = ls->is_unix ? index < 0 : index >= 0;
        if (!mine)
            continue;
        int fd = ls->is_unix ? ls->fds[0] : ls->fds[index];
        t->accept_args[i].t = t;
        t->accept_args[i].ls = ls;
        t->listeners[i] = evconnlistener_new(
            t->base, ls->is_unix ? kl_http_conn_accept_unix : kl_http_conn_accept_tcp,
            &t->accept_args[i], LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (!t->listeners[i])
            return KL_EIO;
        if (ls->is_unix)
            ls->fds[0] = -1;
        else
            ls->fds[index] = -1;
    }
    return 0;
}

int kl_http_server_start(kl_http_server *s)
{
    int rc = thread_setup(s, &s->control, -1);
    if (rc)
        return rc;
    for (int w = 0; w < s->cfg.workers; w++) {
        rc = thread_setup(s, &s->workers[w], w);
        if (rc)
            return rc;
    }
    if (pthread_create(&s->control.thread, NULL, thread_main, &s->control) != 0)
        return KL_EIO;
    s->control.started = true;
    for (int w = 0; w < s->cfg.workers; w++) {
        if (pthread_create(&s->workers[w].thread, NULL, thread_main, &s->workers[w]) != 0)
            return KL_EIO;
        s->workers[w].started = true;
    }
    return 0;
}

void kl_http_server_stop(kl_http_server *s, int grace_ms)
{
    if (atomic_exchange(&s->stopping, true))
        return;
    s->grace_ms = grace_ms;
    for (int w = 0; w < s->cfg.workers; w++)
        if (s->workers[w].started)
            event_active(s->workers[w].stop_ev, EV_TIMEOUT, 1);
    if (s->control.started)
        event_active(s->control.stop_ev, EV_TIMEOUT, 1);
    for (int w = 0; w < s->cfg.workers; w++)
        if (s->workers[w].started) {
            pthread_join(s->workers[w].thread, NULL);
            s->workers[w].started = false;
        }
    if (s->control.started) {
        pthread_join(s->control.thread, NULL);
        s->control.started = false;
    }
}

static void thread_free(kl_http_thread *t)
{
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (t->listeners[i])
            evconnlistener_free(t->listeners[i]);
    if (t->stop_ev)
        event_free(t->stop_ev);
    if (t->grace_ev)
        event_free(t->grace_ev);
    if (t->base)
        event_base_free(t->base);
}

void kl_http_server_free(kl_http_server *s)
{
    if (!s)
        return;
    kl_http_server_stop(s, 0);
    for (int w = 0; w < s->cfg.workers; w++)
        thread_free(&s->workers[w]);
    thread_free(&s->control);
    for (int i = 0; i < s->nlisteners; i++) {
        kl_http_listener *ls = &s->listeners[i];
        for (int w = 0; w < MAX_WORKERS; w++)
            if (ls->fds[w] >= 0)
                close(ls->fds[w]);
        if (ls->is_unix && ls->path[0])
            unlink(ls->path);
        if (ls->tls)
            SSL_CTX_free(ls->tls);
    }
    free(s->workers);
    free(s);
}
