/* Group commit of refresh-token rotations: workers hand their rotation to one writer
 * thread and go on serving; the writer runs everything that queued meanwhile as one
 * store transaction (kl_store_refresh_rotate_batch), so a burst of redemptions costs one
 * durable commit rather than one each, and hands each result back to the worker that
 * asked, on that worker's event loop. The sign-in log's writer batches the same way but
 * hands nothing back, so no event loop waits on it (policy/signins.h). */
#ifndef KL_GATEWAY_REFRESHQ_H
#define KL_GATEWAY_REFRESHQ_H

#include <event2/event.h>
#include <stdint.h>

#include "store/store.h"

typedef struct kl_refreshq kl_refreshq;

/* Called on the event loop the rotation was submitted from, once it is decided:
 * result as kl_store_refresh_rotate answers. */
typedef void (*kl_refreshq_done)(void *arg, int result);

/* Starts the writer thread for st (borrowed). KL_ENOMEM, KL_EINTERNAL (no thread). */
int kl_refreshq_new(kl_store *st, kl_refreshq **out);
/* Runs what is queued, stops the thread, waits until every result has been delivered,
 * then frees q. Each loop that submitted must have called kl_refreshq_cancel before it
 * stopped running, or still be running (it delivers what is due); otherwise this waits
 * for ever rather than touch a freed loop. */
void kl_refreshq_free(kl_refreshq *q);

/* Settles every rotation submitted from base, on base's own thread once its loop has
 * stopped for good and before base is freed (the HTTP server's thread_fini): one the
 * writer has not taken yet is withdrawn (never written: done gets KL_EUNAVAIL); one
 * being committed is waited for (as long as the store's own timeouts allow) and done
 * gets the store's answer, as does one decided but not yet delivered. Every done of
 * base runs here, on this thread, before this returns; nothing of q refers to base
 * afterwards. Submitting from base again is not allowed. NULL q is fine. */
void kl_refreshq_cancel(kl_refreshq *q, struct event_base *base);

/* Queues the rotation of old into next_hash / next (strings copied) at now. done(arg,
 * result) runs later on base (the caller's event loop, or in kl_refreshq_cancel on its
 * thread), exactly once, unless this returns an error: KL_EINVAL, KL_ENOMEM, KL_EUNAVAIL (stopping,
 * or the queue is full: KL_MAX_REFRESH_QUEUE). */
int kl_refreshq_submit(kl_refreshq *q, struct event_base *base,
                       const unsigned char old[KL_STORE_REFRESH_HASH_LEN],
                       const unsigned char next_hash[KL_STORE_REFRESH_HASH_LEN],
                       const kl_store_refresh *next, int64_t now, kl_refreshq_done done, void *arg);

#endif
