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

/* Where a job is; it leaves the live list when done runs (or is cancelled). */
typedef enum job_state {
    JOB_QUEUED,  /* in the FIFO: not in the store yet, can still be withdrawn */
    JOB_WRITING, /* in the writer's batch: the store decides it now */
    JOB_DECIDED, /* result in, its event active on the caller's loop */
} job_state;

typedef struct job {
    struct job *next_job;              /* FIFO */
    struct job *live_prev, *live_next; /* every job not yet delivered */
    job_state state;                   /* under the queue's mu */
    kl_store_refresh_rotation rot;     /* its strings owned by the job */
    int64_t now;
    kl_refreshq *q;
    struct event_base *base; /* the caller's loop */
    struct event *ev;        /* on base: runs done */
    kl_refreshq_done done;
    void *arg;
} job;

struct kl_refreshq {
    kl_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* the writer waits here for work */
    pthread_cond_t settled; /* a batch was decided, or the last job delivered */
    job *head, *tail;       /* FIFO: rotations of one chain keep their order */
    size_t queued;
    job *live; /* every job submitted and not yet delivered, any state */
    bool stop;
    int64_t pruned_at; /* writer thread only */
};

static void live_unlink(kl_refreshq *q, job *j)
{
    if (j->live_prev)
        j->live_prev->live_next = j->live_next;
    else
        q->live = j->live_next;
    if (j->live_next)
        j->live_next->live_prev = j->live_prev;
    j->live_prev = j->live_next = NULL;
}

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
    kl_refreshq *q = j->q;
    pthread_mutex_lock(&q->mu);
    live_unlink(q, j);
    if (q->stop && !q->live)
        pthread_cond_broadcast(&q->settled);
    pthread_mutex_unlock(&q->mu);
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
            j->state = JOB_WRITING;
            if (jobs)
                jobs[n] = j;
            n++;
            if (!jobs) { /* no memory for a batch: one at a time */
                (void)kl_store_refresh_rotate_batch(q->st, &j->rot, 1, j->now);
                j->state = JOB_DECIDED;
                event_active(j->ev, EV_TIMEOUT, 1);
                pthread_cond_broadcast(&q->settled);
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
        /* Under mu, so that a loop being cancelled either sees a job still writing (and
         * waits) or decided with its event active (and takes it back). */
        pthread_mutex_lock(&q->mu);
        for (size_t i = 0; i < n; i++) {
            jobs[i]->rot.result = batch[i].result;
            jobs[i]->state = JOB_DECIDED;
            event_active(jobs[i]->ev, EV_TIMEOUT, 1);
        }
        pthread_cond_broadcast(&q->settled);
        pthread_mutex_unlock(&q->mu);
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
    if (pthread_cond_init(&q->settled, NULL) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return KL_ENOMEM;
    }
    if (pthread_create(&q->thread, NULL, writer, q) != 0) {
        pthread_cond_destroy(&q->settled);
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
    /* Deliveries still due touch q: their loops (running, by the contract) finish them.
     * A loop that broke the contract hangs the caller here rather than corrupting. */
    pthread_mutex_lock(&q->mu);
    while (q->live)
        pthread_cond_wait(&q->settled, &q->mu);
    pthread_mutex_unlock(&q->mu);
    pthread_cond_destroy(&q->settled);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

void kl_refreshq_cancel(kl_refreshq *q, struct event_base *base)
{
    if (!q || !base)
        return;
    job *mine = NULL;
    pthread_mutex_lock(&q->mu);
    /* Withdrawn before the writer sees them: these rotations never reach the store. */
    job *keep = NULL, *keep_tail = NULL;
    for (job *j = q->head, *next; j; j = next) {
        next = j->next_job;
        j->next_job = NULL;
        if (j->base != base) {
            if (keep_tail)
                keep_tail->next_job = j;
            else
                keep = j;
            keep_tail = j;
            continue;
        }
        q->queued--;
        j->rot.result = KL_EUNAVAIL;
        j->state = JOB_DECIDED;
    }
    q->head = keep;
    q->tail = keep_tail;
    /* A commit in progress is waited for, not guessed at: its rotations are decided by
     * the store alone (bounded by the store's own timeouts). */
    for (;;) {
        bool writing = false;
        for (job *j = q->live; j && !writing; j = j->live_next)
            writing = j->base == base && j->state == JOB_WRITING;
        if (!writing)
            break;
        pthread_cond_wait(&q->settled, &q->mu);
    }
    /* Everything of base is decided now; its events are taken back (the loop is not
     * running, so none of them is being delivered meanwhile). */
    for (job *j = q->live, *next; j; j = next) {
        next = j->live_next;
        if (j->base != base)
            continue;
        event_del(j->ev);
        live_unlink(q, j);
        j->live_next = mine;
        mine = j;
    }
    if (q->stop && !q->live)
        pthread_cond_broadcast(&q->settled);
    pthread_mutex_unlock(&q->mu);
    while (mine) {
        job *j = mine;
        mine = j->live_next;
        j->done(j->arg, j->rot.result);
        job_free(j);
    }
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
    j->q = q;
    j->base = base;
    j->state = JOB_QUEUED;
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
        j->live_next = q->live;
        if (q->live)
            q->live->live_prev = j;
        q->live = j;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (err)
        job_free(j);
    return err;
}
