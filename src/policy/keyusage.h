/* When each API key was last used, at day resolution, without touching the store on the
 * request path: each key has a cell (found through the snapshot's account) whose day the
 * gateway raises with one relaxed atomic load (and, the first time on a given day, one
 * compare-and-swap). The control thread writes the cells that moved to the store in one
 * batch every KL_KEYUSAGE_FLUSH_MS and at a clean stop; a crash loses at most the days
 * recorded since the last batch.
 *
 * Cells are keyed by the key's index, so a regenerated key (a new index) starts with a
 * new, unused cell. A cell is shared by every snapshot that holds the key (counted
 * references) and is freed by a flush once no snapshot holds it and its day is written. */
#ifndef KL_POLICY_KEYUSAGE_H
#define KL_POLICY_KEYUSAGE_H

#include <stdint.h>

#include "store/store.h"

typedef struct kl_keyusage kl_keyusage;
typedef struct kl_keyusage_cell kl_keyusage_cell;

/* 0 or KL_ENOMEM. */
int kl_keyusage_new(kl_keyusage **out);
/* Frees every cell; no snapshot may hold one any more. NULL is fine. */
void kl_keyusage_free(kl_keyusage *u);

/* The cell of the key with this index, with a new reference (kl_keyusage_cell_release),
 * created if needed; stored_day (unix seconds of a day's start, 0 = never) is what the
 * store says, and raises the cell's day if it is later. NULL on allocation failure.
 * For the snapshot builder (serialised with flushes by the registry's lock). */
kl_keyusage_cell *kl_keyusage_cell_get(kl_keyusage *u, const unsigned char index[32],
                                       int64_t stored_day);
/* Drops a reference; any thread. NULL is fine. */
void kl_keyusage_cell_release(kl_keyusage_cell *c);

/* The hot path: the key was used at unix time now. No lock, no allocation; NULL is
 * fine (a snapshot built without a registry). */
void kl_keyusage_touch(kl_keyusage_cell *c, int64_t now);
/* The start of the last day the key was used, as known on this node; 0 if never. */
int64_t kl_keyusage_day(const kl_keyusage_cell *c);
/* The same by index, for keys the caller has no cell of (0 if none is known). */
int64_t kl_keyusage_day_of(kl_keyusage *u, const unsigned char index[32]);

/* Writes every cell whose day moved since its last write to st in one transaction
 * (kl_store_record_key_usage), then frees the cells no snapshot holds. On a store error
 * the cells stay unwritten and the next flush tries again. *written (may be NULL) gets
 * the number of keys written. 0 or the store's error. */
int kl_keyusage_flush(kl_keyusage *u, kl_store *st, size_t *written);

#endif
