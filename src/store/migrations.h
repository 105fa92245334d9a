/* The numbered schema migrations of the store (both engines). A schema change is a new entry
 * at the end of the list, never an edit of an applied one: a database records the
 * highest version applied and is brought forward one transaction per migration. */
#ifndef KL_STORE_MIGRATIONS_H
#define KL_STORE_MIGRATIONS_H

#include <stddef.h>

typedef struct kl_store_migration {
    int version;      /* 1, 2, 3, ... in order, no gaps */
    const char *what; /* one line, for the log */
    const char *sql;  /* one or more statements, no parameters */
} kl_store_migration;

/* The migrations in order; *n receives their number. Static data, never freed. */
const kl_store_migration *kl_store_migrations(size_t *n);

#endif
