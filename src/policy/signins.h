/* The sign-in log's writer: worker threads hand it records (copied, never a secret)
 * without blocking, and a thread of its own appends them to the store in batches. The
 * queue is bounded (KL_MAX_SIGNIN_QUEUE): when the store cannot keep up, records are
 * dropped and counted rather than slowing sign-ins down. */
#ifndef KL_POLICY_SIGNINS_H
#define KL_POLICY_SIGNINS_H

#include <stdint.h>

#include "store/store.h"

typedef struct kl_signins kl_signins;

/* Starts the writer on st (borrowed; must outlive kl_signins_stop). */
int kl_signins_start(kl_store *st, kl_signins **out);
/* Writes what is queued, stops the thread and frees. NULL is fine. */
void kl_signins_stop(kl_signins *l);
/* Queues a copy of s (any thread, never blocks on the store). NULL l is fine. */
void kl_signins_record(kl_signins *l, const kl_store_signin *s);
/* Records dropped because the queue was full. */
uint64_t kl_signins_dropped(kl_signins *l);

#endif
