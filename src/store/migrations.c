/* Schema of the store, as numbered migrations that both engines run (written in SQLite's
 * words; the PostgreSQL driver translates the few type names that differ). Identifiers that users
 * choose are stored as given; their lower-case form carries the uniqueness constraints, since ARM
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
    {2, "tenant, principals, applications, custom roles and role assignments",
     /* Ids are stored lower-case (GUIDs), so equality is exact. The tenant and the
      * local administrator are inserted by the first-start step in C, which draws their
      * GUIDs from the OS CSPRNG. */
     "CREATE TABLE tenant ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  tenant_id TEXT NOT NULL,"
     "  display_name TEXT NOT NULL,"
     "  admin_object_id TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL"
     ");"
     "CREATE TABLE applications ("
     "  pk INTEGER PRIMARY KEY,"
     "  object_id TEXT NOT NULL UNIQUE,"
     "  app_id TEXT NOT NULL UNIQUE,"
     "  display_name TEXT NOT NULL,"
     "  display_name_lower TEXT NOT NULL UNIQUE,"
     "  created_at INTEGER NOT NULL"
     ");"
     /* An application's service principal goes with it (application_pk cascade); a
      * principal's role assignments go with the principal. */
     "CREATE TABLE principals ("
     "  pk INTEGER PRIMARY KEY,"
     "  object_id TEXT NOT NULL UNIQUE,"
     "  type TEXT NOT NULL CHECK (type IN ('ServicePrincipal', 'ManagedIdentity', 'User',"
     "    'Group')),"
     "  display_name TEXT NOT NULL,"
     "  app_id TEXT UNIQUE,"
     "  application_pk INTEGER UNIQUE REFERENCES applications (pk) ON DELETE CASCADE,"
     "  account_enabled INTEGER NOT NULL CHECK (account_enabled IN (0, 1)),"
     "  created_at INTEGER NOT NULL,"
     "  CHECK ((app_id IS NOT NULL) = (type IN ('ServicePrincipal', 'ManagedIdentity'))),"
     "  CHECK (application_pk IS NULL OR type = 'ServicePrincipal')"
     ");"
     "CREATE TABLE role_definitions ("
     "  pk INTEGER PRIMARY KEY,"
     "  role_id TEXT NOT NULL UNIQUE,"
     "  role_name TEXT NOT NULL,"
     "  role_name_lower TEXT NOT NULL UNIQUE,"
     "  description TEXT NOT NULL,"
     "  assignable_scopes TEXT NOT NULL,"
     "  permissions TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL"
     ");"
     /* role_id names a built-in (static data, no row) or a custom role; the store keeps
      * the custom case consistent itself (no foreign key can reach the built-ins). */
     "CREATE TABLE role_assignments ("
     "  pk INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE,"
     "  scope TEXT NOT NULL,"
     "  scope_lower TEXT NOT NULL,"
     "  principal_pk INTEGER NOT NULL REFERENCES principals (pk) ON DELETE CASCADE,"
     "  role_id TEXT NOT NULL,"
     "  description TEXT,"
     "  created_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL,"
     "  created_by TEXT,"
     "  updated_by TEXT,"
     "  UNIQUE (scope_lower, principal_pk, role_id)"
     ");"
     "CREATE INDEX role_assignments_principal ON role_assignments (principal_pk);"
     "CREATE INDEX role_assignments_role ON role_assignments (role_id);"},
    {3, "the store's generation",
     /* Every committed change adds one, in its own transaction, so that a node (or a
      * process sharing the file) knows whether its snapshot is current. */
     "CREATE TABLE store_generation ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  generation INTEGER NOT NULL"
     ");"
     "INSERT INTO store_generation (id, generation) VALUES (1, 0);"},
    {4, "the key-encryption key's check value",
     /* A value sealed with the cluster's KEK on first start: a node given another KEK
      * fails to open it and refuses to start, before it serves anything. */
     "CREATE TABLE kek_check ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  sealed TEXT NOT NULL"
     ");"},
    {6, "network rules of accounts, and when each key was last used",
     /* network_acls: properties.networkAcls as validated (JSON object text), NULL when the
      * account has none. last_used: the start (unix seconds, UTC) of the last day the key
      * was used, written in batches (policy/keyusage.c); NULL when never. */
     "ALTER TABLE accounts ADD COLUMN network_acls TEXT;"
     "ALTER TABLE account_keys ADD COLUMN last_used INTEGER;"},
};

const kl_store_migration *kl_store_migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}
