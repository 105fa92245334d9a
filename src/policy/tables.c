/* Storage the snapshot builders share (see tables.h): staged rows grow by doubling, and
 * every lookup index is an open-addressing table of uint32_t slots (index + 1, 0 empty). */
#include "policy/tables.h"

#include <stdlib.h>

#include "common/err.h"

int kl_tables_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > UINT32_MAX / 4)
        return KL_ETOOBIG;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return KL_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

int kl_tables_new(size_t n, uint32_t **tab, size_t *mask)
{
    if (n > UINT32_MAX / 4)
        return KL_ETOOBIG;
    size_t size = 8;
    while (size < 2 * n)
        size *= 2;
    *tab = calloc(size, sizeof(uint32_t));
    if (!*tab)
        return KL_ENOMEM;
    *mask = size - 1;
    return 0;
}
