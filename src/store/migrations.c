/* Schema of the SQLite store, as numbered migrations. Identifiers that users choose are
 * stored as given; their lower-case form carries the uniqueness constraints, since ARM
 * names are case-insensitive. JSON columns hold objects checked by the store's code (the
 * schema does not call json_valid(): with trusted_schema off, schema code may only use
 * functions SQLite marks innocuous). */
#include "store/migrations.h"

static const kl_store_migration migrations[] = {
    {1, "accounts, account keys and deployments",
     /* pk is a surrogate key so that children do not repeat the ARM id and so that a
      * later rename of the id's casing touches one row. */
     "CREATE TABLE accounts ("
     "  pk INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL,"
     "  id_lower TEXT NOT NULL UNIQUE,"
     "  subscription TEXT NOT NULL,"
     "  resource_group TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  name_lower TEXT NOT NULL UNIQUE,"
     "  location TEXT NOT NULL,"
     "  kind TEXT NOT NULL,"
     "  sku TEXT NOT NULL,"
     "  tags TEXT NOT NULL,"
     "  properties TEXT NOT NULL,"
     "  disable_local_auth INTEGER NOT NULL CHECK (disable_local_auth IN (0, 1)),"
     "  etag TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  modified_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX accounts_scope ON accounts (subscription COLLATE NOCASE,"
     "  resource_group COLLATE NOCASE);"
     "CREATE TABLE account_keys ("
     "  account_pk INTEGER NOT NULL REFERENCES accounts (pk) ON DELETE CASCADE,"
     "  slot INTEGER NOT NULL CHECK (slot IN (1, 2)),"
     "  sealed TEXT NOT NULL,"
     "  key_index BLOB NOT NULL UNIQUE CHECK (length(key_index) = 32),"
     "  created_at INTEGER NOT NULL,"
     "  PRIMARY KEY (account_pk, slot)"
     ");"
     "CREATE TABLE deployments ("
     "  account_pk INTEGER NOT NULL REFERENCES accounts (pk) ON DELETE CASCADE,"
     "  name TEXT NOT NULL,"
     "  sku TEXT,"
     "  model TEXT,"
     "  backend TEXT NOT NULL CHECK (backend IN ('echo', 'upstream')),"
     "  upstream_url TEXT,"
     "  upstream_model TEXT,"
     "  credential_sealed TEXT,"
     "  created_at INTEGER NOT NULL,"
     "  modified_at INTEGER NOT NULL,"
     "  PRIMARY KEY (account_pk, name),"
     "  CHECK (backend = 'upstream' OR (upstream_url IS NULL AND credential_sealed IS NULL))"
     ");"},
};

const kl_store_migration *kl_store_migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}
