/* The sign-in log's writer (see signins.h). */
#include "policy/signins.h"

#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"

#define BATCH 256

struct kl_signins {
    kl_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kl_store_signin *q; /* ring of KL_MAX_SIGNIN_QUEUE records; owned strings */
    size_t head, len;
    bool stop;
    uint64_t dropped;
};

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void clear(kl_store_signin *s)
{
    free(s->client_id);
    free(s->principal_id);
    free(s->credential);
    free(s->resource);
    free(s->source);
    free(s->reason);
    free(s->correlation_id);
    memset(s, 0, sizeof(*s));
}

static void *writer(void *arg)
{
    kl_signins *l = arg;
    kl_store_signin *batch = calloc(BATCH, sizeof(*batch));
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->len == 0)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->len == 0 && l->stop)
            break;
        /* Let a batch gather: a transaction (and its sync) per record was most of the
         * writer's cost under load, while the log may lag by this much. */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)KL_SIGNIN_LINGER_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!l->stop && l->len < BATCH &&
               pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT) {
        }
        size_t n = 0;
        while (batch && n < BATCH && l->len > 0) {
            batch[n++] = l->q[l->head];
            memset(&l->q[l->head], 0, sizeof(l->q[l->head]));
            l->head = (l->head + 1) % KL_MAX_SIGNIN_QUEUE;
            l->len--;
        }
        pthread_mutex_unlock(&l->mu);
        int err = batch ? kl_store_append_signins(l->st, batch, n) : KL_ENOMEM;
        if (err)
            kl_log(KL_LOG_WARN, "signin_log_write_failed", "error", kl_err_str(err), NULL);
        for (size_t i = 0; i < n; i++)
            clear(&batch[i]);
        pthread_mutex_lock(&l->mu);
        if (!batch)
            break;
    }
    pthread_mutex_unlock(&l->mu);
    free(batch);
    return NULL;
}

int kl_signins_start(kl_store *st, kl_signins **out)
{
    *out = NULL;
    if (!st)
        return KL_EINVAL;
    kl_signins *l = calloc(1, sizeof(*l));
    if (!l || !(l->q = calloc(KL_MAX_SIGNIN_QUEUE, sizeof(*l->q)))) {
        free(l);
        return KL_ENOMEM;
    }
    l->st = st;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the linger's deadline */
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* With every signal blocked, so a daemon's signals go to the thread that waits for
     * them, whichever thread starts this one and whenever it does. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&l->thread, NULL, writer, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        free(l->q);
        free(l);
        return KL_ENOMEM;
    }
    *out = l;
    return 0;
}

void kl_signins_stop(kl_signins *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    for (size_t i = 0; i < KL_MAX_SIGNIN_QUEUE; i++)
        clear(&l->q[i]);
    free(l->q);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

void kl_signins_record(kl_signins *l, const kl_store_signin *s)
{
    if (!l || !s)
        return;
    kl_store_signin c = {.at = s->at,
                         .client_id = dup_opt(s->client_id ? s->client_id : ""),
                         .principal_id = dup_opt(s->principal_id),
                         .credential = dup_opt(s->credential ? s->credential : "none"),
                         .resource = dup_opt(s->resource),
                         .source = dup_opt(s->source ? s->source : ""),
                         .success = s->success,
                         .error_code = s->error_code,
                         .reason = dup_opt(s->reason ? s->reason : ""),
                         .correlation_id = dup_opt(s->correlation_id ? s->correlation_id : "")};
    if (!c.client_id || !c.credential || !c.source || !c.reason || !c.correlation_id) {
        clear(&c);
        return;
    }
    pthread_mutex_lock(&l->mu);
    if (l->len >= KL_MAX_SIGNIN_QUEUE || l->stop) {
        l->dropped++;
        pthread_mutex_unlock(&l->mu);
        clear(&c);
        return;
    }
    l->q[(l->head + l->len) % KL_MAX_SIGNIN_QUEUE] = c;
    l->len++;
    /* The writer waits for a first record, then for a full batch (or its linger): a
     * wake-up for every record in between would cost more than it saves. */
    if (l->len == 1 || l->len == BATCH)
        pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

uint64_t kl_signins_dropped(kl_signins *l)
{
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    uint64_t d = l->dropped;
    pthread_mutex_unlock(&l->mu);
    return d;
}
