/* Throttling of failed client authentication at the token endpoint (security.md T9):
 * failures are counted per client id and per source address in fixed windows of
 * KL_THROTTLE_WINDOW_MS. After KL_THROTTLE_BACKOFF_AFTER failures further attempts are
 * slowed (each must wait 1 s, 2 s, 4 s ... after the last failure, at most
 * KL_THROTTLE_MAX_BACKOFF_MS); at KL_THROTTLE_CLIENT_LIMIT failures for a client id, or
 * KL_THROTTLE_ADDR_LIMIT from an address, every attempt is refused until the window ends.
 *
 * A client that has authenticated from an address makes that (client, address) pair
 * familiar: attempts from it are judged by the pair's own failures (and the address's),
 * never by the client id's, so an attacker failing for someone else's client id from
 * elsewhere cannot lock its owner out; at worst its own address is refused, and only
 * until its window ends.
 *
 * Fixed-size tables (no allocation after kl_throttle_new), one mutex, explicit clocks:
 * counts are per node (issue 8 allows that). Keys are hashed with a per-table random salt,
 * so a caller cannot aim at a slot; when a slot is needed and none is free the entry with
 * the fewest failures nearby is reused, so flooding with new names cannot wipe out a
 * count that is close to its limit. */
#ifndef KL_TOKEN_THROTTLE_H
#define KL_TOKEN_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kl_throttle kl_throttle;

/* A throttle tracking up to cap counters and cap familiar pairs (each rounded up to a
 * power of two). *out is owned by the caller (kl_throttle_free). KL_EINVAL for cap 0 or
 * above KL_MAX_THROTTLE_ENTRIES, KL_ENOMEM, KL_ECRYPTO (no random salt). */
int kl_throttle_new(size_t cap, kl_throttle **out);
void kl_throttle_free(kl_throttle *t);

/* May client_id[0..cl) from addr[0..al) try to authenticate at now_ms? 0 if so;
 * KL_EPERM if not, with *retry_after_s (at least 1) the seconds until it may. Counts
 * nothing. Thread-safe. */
int kl_throttle_check(kl_throttle *t, const char *client_id, size_t cl, const char *addr, size_t al,
                      int64_t now_ms, int64_t *retry_after_s);

/* Records a failed client authentication (wrong secret, bad assertion, unknown client). */
void kl_throttle_failed(kl_throttle *t, const char *client_id, size_t cl, const char *addr,
                        size_t al, int64_t now_ms);

/* Records a successful one: the pair becomes familiar for KL_THROTTLE_FAMILIAR_MS and
 * its own failure count starts again. */
void kl_throttle_succeeded(kl_throttle *t, const char *client_id, size_t cl, const char *addr,
                           size_t al, int64_t now_ms);

#endif
