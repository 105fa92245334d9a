/* Internal to policy/: the two pieces of storage every snapshot builder shares, a
 * doubling array for staged rows and the slot array of an open-addressing index. Used
 * while a snapshot is built only, never on a request's path. */
#ifndef KL_POLICY_TABLES_H
#define KL_POLICY_TABLES_H

#include <stddef.h>
#include <stdint.h>

/* Makes room in *arr (of *cap elements of elem bytes, n in use) for one more element,
 * doubling its capacity (16 at first) when it is full; *arr and *cap change only on
 * success. KL_ETOOBIG past UINT32_MAX / 4 elements (indexes are kept as uint32_t + 1),
 * KL_ENOMEM. */
int kl_tables_grow(void **arr, size_t *cap, size_t n, size_t elem);

/* A zeroed index of at least twice as many slots as n entries (a power of two, >= 8), so
 * probe sequences stay short: *tab (caller frees) and *mask = slots - 1. KL_ETOOBIG past
 * UINT32_MAX / 4 entries, KL_ENOMEM. */
int kl_tables_new(size_t n, uint32_t **tab, size_t *mask);

#endif
