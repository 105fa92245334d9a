/* Group commit of refresh-token rotations (see refreshq.h). */
#include "gateway/refreshq.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"

typedef struct job {
    struct job *next_job;
    kl_store_refresh_rotation rot; /* its strings owned by the job */
    int64_t now;
    struct event *ev; /* on the caller's loop: runs done */
    kl_refreshq_done done;
    void *arg;
} job;

struct kl_refreshq {
    kl_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail; /* FIFO: rotations of one chain keep their order */
    size_t queued;
    bool stop;
    int64_t pruned_at; /* writer thread only */
};

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->rot.next.family_id);
    free(j->rot.next.user_oid);
    free(j->rot.next.client_id);
    free(j->rot.next.scope);
    free(j->rot.next.session_id);
    OPENSSL_cleanse(&j->rot, sizeof(j->rot));
    if (j->ev)
        event_free(j->ev);
    free(j);
}

/* On the caller's loop: the result is in, hand it over. */
static void job_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job *j = arg;
    j->done(j->arg, j->rot.result);
    job_free(j);
}

static void *writer(void *arg)
{
    kl_refreshq *q = arg;
    kl_store_refresh_rotation *batch = calloc(KL_MAX_REFRESH_BATCH, sizeof(*batch));
    job **jobs = calloc(KL_MAX_REFRESH_BATCH, sizeof(*jobs));
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        if (!q->head && q->stop) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        /* Whatever queued while the last commit ran: the batch grows with the load. */
        size_t n = 0;
        while (q->head && n < (batch && jobs ? KL_MAX_REFRESH_BATCH : 1)) {
            job *j = q->head;
            q->head = j->next_job;
            if (!q->head)
                q->tail = NULL;
            q->queued--;
            if (jobs)
                jobs[n] = j;
            n++;
            if (!jobs) { /* no memory for a batch: one at a time */
                (void)kl_store_refresh_rotate_batch(q->st, &j->rot, 1, j->now);
                event_active(j->ev, EV_TIMEOUT, 1);
            }
        }
        size_t left = q->queued;
        pthread_mutex_unlock(&q->mu);
        if (!jobs || !batch)
            continue;
        if (kl_log_enabled(KL_LOG_DEBUG)) { /* how the batches grow with the load */
            char nb[24], lb[24];
            snprintf(nb, sizeof(nb), "%zu", n);
            snprintf(lb, sizeof(lb), "%zu", left);
            kl_log(KL_LOG_DEBUG, "refresh_batch", "rotations", nb, "queued", lb, NULL);
        }
        for (size_t i = 0; i < n; i++)
            batch[i] = jobs[i]->rot;
        /* One "now" for the batch: the newest submission's (all are within a commit). */
        int64_t now = 0;
        for (size_t i = 0; i < n; i++)
            if (jobs[i]->now > now)
                now = jobs[i]->now;
        int err = kl_store_refresh_rotate_batch(q->st, batch, n, now);
        if (err)
            kl_log(KL_LOG_ERROR, "refresh_batch_failed", "error", kl_err_str(err), NULL);
        for (size_t i = 0; i < n; i++) {
            jobs[i]->rot.result = batch[i].result;
            /* The job belongs to its loop from here on. */
            event_active(jobs[i]->ev, EV_TIMEOUT, 1);
        }
        /* Expired tokens go, at most once per KL_REFRESH_PRUNE_S, after the answers are
         * on their way; on any node, since the store is shared. */
        if (now - q->pruned_at >= KL_REFRESH_PRUNE_S) {
            q->pruned_at = now;
            if (kl_store_refresh_prune(q->st, now) != 0)
                kl_log(KL_LOG_WARN, "refresh_prune_failed", NULL);
        }
    }
    free(batch);
    free(jobs);
    return NULL;
}

int kl_refreshq_new(kl_store *st, kl_refreshq **out)
{
    *out = NULL;
    if (!st)
        return KL_EINVAL;
    kl_refreshq *q = calloc(1, sizeof(*q));
    if (!q)
        return KL_ENOMEM;
    q->st = st;
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q);
        return KL_ENOMEM;
    }
    if (pthread_cond_init(&q->cv, NULL) != 0) {
        pthread_mutex_destroy(&q->mu);
        free(q);
        return KL_ENOMEM;
    }
    if (pthread_create(&q->thread, NULL, writer, q) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return KL_EINTERNAL;
    }
    *out = q;
    return 0;
}

void kl_refreshq_free(kl_refreshq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static char *dup_or_null(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

int kl_refreshq_submit(kl_refreshq *q, struct event_base *base,
                       const unsigned char old[KL_STORE_REFRESH_HASH_LEN],
                       const unsigned char next_hash[KL_STORE_REFRESH_HASH_LEN],
                       const kl_store_refresh *next, int64_t now, kl_refreshq_done done, void *arg)
{
    if (!q || !base || !old || !next_hash || !next || !done)
        return KL_EINVAL;
    job *j = calloc(1, sizeof(*j));
    if (!j)
        return KL_ENOMEM;
    bool fail = false;
    memcpy(j->rot.old, old, KL_STORE_REFRESH_HASH_LEN);
    memcpy(j->rot.next_hash, next_hash, KL_STORE_REFRESH_HASH_LEN);
    j->rot.next = *next;
    j->rot.next.family_id = dup_or_null(next->family_id, &fail);
    j->rot.next.user_oid = dup_or_null(next->user_oid, &fail);
    j->rot.next.client_id = dup_or_null(next->client_id, &fail);
    j->rot.next.scope = dup_or_null(next->scope, &fail);
    j->rot.next.session_id = dup_or_null(next->session_id, &fail);
    j->rot.result = KL_EINTERNAL;
    j->now = now;
    j->done = done;
    j->arg = arg;
    j->ev = event_new(base, -1, 0, job_due, j);
    if (fail || !j->ev) {
        job_free(j);
        return KL_ENOMEM;
    }
    int err = 0;
    pthread_mutex_lock(&q->mu);
    if (q->stop)
        err = KL_EUNAVAIL;
    else if (q->queued >= KL_MAX_REFRESH_QUEUE)
        err = KL_EUNAVAIL;
    else {
        if (q->tail)
            q->tail->next_job = j;
        else
            q->head = j;
        q->tail = j;
        q->queued++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (err)
        job_free(j);
    return err;
}
