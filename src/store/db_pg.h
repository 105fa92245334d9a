/* The PostgreSQL driver of the store and its change listener (see db.h). Internal to
 * store/. */
#ifndef KL_STORE_DB_PG_H
#define KL_STORE_DB_PG_H

#include <stdbool.h>

#include "store/db.h"

/* The NOTIFY channel on which every committed change is announced. */
#define KL_PG_CHANNEL "keyless_store"

extern const kl_db_driver kl_db_pg_driver;

/* KL_EINVAL (logged, without values) if url is not a libpq connection string or URL, or
 * if it carries a password (passwords come from PGPASSFILE or PGPASSWORD only). */
int kl_db_pg_check_url(const char *url);
/* Connects to url (libpq's own parameters: sslmode, sslrootcert, ...). *out owned by
 * the caller (driver close). KL_EINVAL (bad URL), KL_EUNAVAIL (cannot connect). */
int kl_db_pg_open(const char *url, kl_db **out);

/* A second connection that LISTENs on KL_PG_CHANNEL. */
typedef struct kl_pg_listener kl_pg_listener;
/* Connects and LISTENs. KL_EUNAVAIL if the server cannot be reached. */
int kl_db_pg_listen_open(const char *url, kl_pg_listener **out);
/* The socket to wait on for readability. */
int kl_db_pg_listen_socket(kl_pg_listener *l);
/* Reads what arrived; *notified tells whether any notification did. KL_EUNAVAIL when
 * the connection is lost (close it and open a new one). */
int kl_db_pg_listen_drain(kl_pg_listener *l, bool *notified);
/* NULL is fine. */
void kl_db_pg_listen_close(kl_pg_listener *l);

#endif
