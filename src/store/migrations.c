/* Schema of the store, as numbered migrations that both engines run (written in SQLite's
 * words; the PostgreSQL driver translates the few type names that differ). Identifiers that users
 * choose are stored as given; their lower-case form carries the uniqueness constraints, since ARM
 * names are case-insensitive. JSON columns hold objects checked by the store's code (the
 * schema does not call json_valid(): with trusted_schema off, schema code may only use
 * functions SQLite marks innocuous). */
#include "store/migrations.h"

#include "common/ids.h"

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
     "  type TEXT NOT NULL CHECK (type IN ('" KL_PRINCIPAL_TYPE_SP "', '" KL_PRINCIPAL_TYPE_MI
     "', '" KL_PRINCIPAL_TYPE_USER "',"
     "    '" KL_PRINCIPAL_TYPE_GROUP "')),"
     "  display_name TEXT NOT NULL,"
     "  app_id TEXT UNIQUE,"
     "  application_pk INTEGER UNIQUE REFERENCES applications (pk) ON DELETE CASCADE,"
     "  account_enabled INTEGER NOT NULL CHECK (account_enabled IN (0, 1)),"
     "  created_at INTEGER NOT NULL,"
     "  CHECK ((app_id IS NOT NULL) = (type IN ('" KL_PRINCIPAL_TYPE_SP "', '" KL_PRINCIPAL_TYPE_MI
     "'))),"
     "  CHECK (application_pk IS NULL OR type = '" KL_PRINCIPAL_TYPE_SP "')"
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
    {5, "the store's change log",
     /* What each generation changed, written in the same transaction as the change, so
      * that a node can apply only that (kl_store_load_since). kind 'all' means "anything":
      * a full rebuild. The last KL_STORE_CHANGES_KEPT generations are kept. Stores
      * migrated from before this have no rows for older generations: a node that far
      * behind finds the gap and rebuilds in full. */
     "CREATE TABLE store_changes ("
     "  generation INTEGER NOT NULL,"
     "  kind TEXT NOT NULL,"
     "  key TEXT NOT NULL,"
     "  PRIMARY KEY (generation, kind, key)"
     ");"},
    {6, "network rules of accounts, and when each key was last used",
     /* network_acls: properties.networkAcls as validated (JSON object text), NULL when the
      * account has none. last_used: the start (unix seconds, UTC) of the last day the key
      * was used, written in batches (policy/keyusage.c); NULL when never. */
     "ALTER TABLE accounts ADD COLUMN network_acls TEXT;"
     "ALTER TABLE account_keys ADD COLUMN last_used INTEGER;"},
    {7, "signing keys of the token service",
     /* The private key is sealed under the KEK (aad "signing-key:<kid>"). A key is
      * published from created_at, signs from active_at (the newest active key signs),
      * stays published until retire_at (0: not retired; set when a newer key takes over,
      * to the expiry of the last token it may have signed) and is refused at once from
      * revoked_at (0: not revoked). */
     "CREATE TABLE signing_keys ("
     "  kid TEXT PRIMARY KEY,"
     "  alg TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256')),"
     "  sealed TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  active_at INTEGER NOT NULL,"
     "  retire_at INTEGER NOT NULL DEFAULT 0,"
     "  revoked_at INTEGER NOT NULL DEFAULT 0"
     ");"},
    {8, "client secrets of applications",
     /* Only a keyed hash of each secret is kept (HMAC-SHA-256 under the KEK's pepper);
      * hint is its first three characters, as Graph shows them. */
     "CREATE TABLE app_secrets ("
     "  application_pk INTEGER NOT NULL REFERENCES applications (pk) ON DELETE CASCADE,"
     "  key_id TEXT NOT NULL UNIQUE,"
     "  display_name TEXT NOT NULL,"
     "  hint TEXT NOT NULL,"
     "  secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),"
     "  start_at INTEGER NOT NULL,"
     "  end_at INTEGER NOT NULL,"
     "  created_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX app_secrets_app ON app_secrets (application_pk);"},
    {9, "application certificates (keyCredentials)",
     /* A certificate registered for an application: the DER (base64) and what the token
      * endpoint looks it up by, the SHA-1 (x5t) and SHA-256 (x5t#S256) thumbprints. It
      * goes with its application. Public material only: nothing here is secret. */
     "CREATE TABLE app_key_credentials ("
     "  pk INTEGER PRIMARY KEY,"
     "  application_pk INTEGER NOT NULL REFERENCES applications (pk) ON DELETE CASCADE,"
     "  key_id TEXT NOT NULL UNIQUE,"
     "  display_name TEXT NOT NULL,"
     "  thumbprint_sha1 TEXT NOT NULL,"
     "  thumbprint_sha256 TEXT NOT NULL,"
     "  cert TEXT NOT NULL,"
     "  start_at INTEGER NOT NULL,"
     "  end_at INTEGER NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  UNIQUE (application_pk, thumbprint_sha1)"
     ");"
     "CREATE INDEX app_key_credentials_application ON app_key_credentials (application_pk);"},
    {10, "application federated identity credentials",
     /* Trust in an external OIDC issuer's tokens as an application's client assertion:
      * (issuer, subject) names the workload, audiences (a JSON array) what its token
      * must be issued for. Goes with its application. */
     "CREATE TABLE app_federated_credentials ("
     "  pk INTEGER PRIMARY KEY,"
     "  application_pk INTEGER NOT NULL REFERENCES applications (pk) ON DELETE CASCADE,"
     "  id TEXT NOT NULL UNIQUE,"
     "  name TEXT NOT NULL,"
     "  name_lower TEXT NOT NULL,"
     "  issuer TEXT NOT NULL,"
     "  subject TEXT NOT NULL,"
     "  audiences TEXT NOT NULL,"
     "  description TEXT,"
     "  created_at INTEGER NOT NULL,"
     "  UNIQUE (application_pk, name_lower),"
     "  UNIQUE (application_pk, issuer, subject)"
     ");"
     "CREATE INDEX app_federated_credentials_issuer ON app_federated_credentials (issuer, "
     "subject);"},
    {11, "spent client-assertion ids",
     /* Every accepted client assertion's jti until its exp, so that no node accepts it
      * again (security.md T6). Rows past exp are pruned as new ones arrive. Not part of
      * any snapshot: writes here do not move the store's generation. */
     "CREATE TABLE assertion_jtis ("
     "  client_id TEXT NOT NULL,"
     "  jti TEXT NOT NULL,"
     "  exp INTEGER NOT NULL,"
     "  PRIMARY KEY (client_id, jti)"
     ");"
     "CREATE INDEX assertion_jtis_exp ON assertion_jtis (exp);"},
    {12, "the sign-in log",
     /* Every token the token service issued or refused: who, with which client and
      * credential type, from where, and why it was refused. Never a secret. Written
      * outside the store's generation (a sign-in is not a change of policy). */
     "CREATE TABLE signin_log ("
     "  pk INTEGER PRIMARY KEY,"
     "  at INTEGER NOT NULL,"
     "  client_id TEXT NOT NULL,"
     "  principal_id TEXT,"
     "  credential TEXT NOT NULL,"
     "  resource TEXT,"
     "  source TEXT NOT NULL,"
     "  success INTEGER NOT NULL CHECK (success IN (0, 1)),"
     "  error_code INTEGER NOT NULL,"
     "  reason TEXT NOT NULL,"
     "  correlation_id TEXT NOT NULL"
     ");"
     "CREATE INDEX signin_log_at ON signin_log (at);"},
    {13, "managed identities and the compute resources that carry them",
     /* Sites and VMs (Microsoft.Web/sites, Microsoft.Compute/virtualMachines): a name is
      * unique per kind across the store, as account names are, because workloads and
      * hosts are named by it (keyless run --site, keylessd --vm).
      *
      * A managed identity is a principal of type ManagedIdentity (no application, no
      * credential) with what ties it to ARM: user-assigned, the resource of its own
      * (resource_id); system-assigned, the resource that enabled it (its host), so a
      * host has at most one. The row goes with its principal, and so do its role
      * assignments and its attachments. Hosts (sites, VMs, accounts) name user-assigned
      * identities by attachment; host_id_lower carries no foreign key because hosts live
      * in several tables: the store deletes a host's attachments with the host. */
     "CREATE TABLE compute_resources ("
     "  pk INTEGER PRIMARY KEY,"
     "  kind TEXT NOT NULL CHECK (kind IN ('site', 'vm')),"
     "  id TEXT NOT NULL,"
     "  id_lower TEXT NOT NULL UNIQUE,"
     "  subscription TEXT NOT NULL,"
     "  resource_group TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  name_lower TEXT NOT NULL,"
     "  location TEXT NOT NULL,"
     "  tags TEXT NOT NULL,"
     "  properties TEXT NOT NULL,"
     "  etag TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  modified_at INTEGER NOT NULL,"
     "  UNIQUE (kind, name_lower)"
     ");"
     "CREATE TABLE managed_identities ("
     "  pk INTEGER PRIMARY KEY,"
     "  principal_pk INTEGER NOT NULL UNIQUE REFERENCES principals (pk) ON DELETE CASCADE,"
     "  user_assigned INTEGER NOT NULL CHECK (user_assigned IN (0, 1)),"
     "  resource_id TEXT NOT NULL,"
     "  resource_id_lower TEXT NOT NULL UNIQUE,"
     "  subscription TEXT NOT NULL,"
     "  resource_group TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  location TEXT NOT NULL,"
     "  tags TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  modified_at INTEGER NOT NULL"
     ");"
     "CREATE TABLE identity_attachments ("
     "  host_id_lower TEXT NOT NULL,"
     "  identity_pk INTEGER NOT NULL REFERENCES managed_identities (pk) ON DELETE CASCADE,"
     "  PRIMARY KEY (host_id_lower, identity_pk)"
     ");"
     "CREATE INDEX identity_attachments_identity ON identity_attachments (identity_pk);"},
    {15, "launch secrets of App-Service-style identity endpoints",
     /* One row per launch (keyless run): the secret is kept only as its keyed hash (the
      * pepper's "identity-header" HMAC), so a copy of the database reveals no header. It
      * goes with its site, and lapses at expires_at unless the launch renews it. */
     "CREATE TABLE identity_headers ("
     "  id TEXT PRIMARY KEY,"
     "  compute_pk INTEGER NOT NULL REFERENCES compute_resources (pk) ON DELETE CASCADE,"
     "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX identity_headers_compute ON identity_headers (compute_pk);"},
    {16, "users: sign-in names, password hashes, and failed sign-ins",
     /* A user is a principal of type User with a row here. The password is kept only as
      * an Argon2id hash (standard base64) with its own salt and parameters (so they can
      * be raised later);
      * NULL when none is set. signin_failures is keyed by the lower-case user principal
      * name as typed, existing or not, so that lockouts look alike for names that
      * exist and names that do not; it is bookkeeping no snapshot reads and is written
      * without moving the store's generation. */
     "CREATE TABLE users ("
     "  principal_pk INTEGER NOT NULL PRIMARY KEY REFERENCES principals (pk) ON DELETE CASCADE,"
     "  upn TEXT NOT NULL,"
     "  upn_lower TEXT NOT NULL UNIQUE,"
     "  pw_hash TEXT,"
     "  pw_salt TEXT,"
     "  pw_t INTEGER NOT NULL DEFAULT 0,"
     "  pw_m INTEGER NOT NULL DEFAULT 0,"
     "  pw_p INTEGER NOT NULL DEFAULT 0,"
     "  force_change INTEGER NOT NULL DEFAULT 0 CHECK (force_change IN (0, 1)),"
     "  password_changed_at INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE TABLE signin_failures ("
     "  upn_lower TEXT PRIMARY KEY,"
     "  failures INTEGER NOT NULL,"
     "  first_at INTEGER NOT NULL,"
     "  last_at INTEGER NOT NULL,"
     "  locked_until INTEGER NOT NULL"
     ");"
     "CREATE INDEX signin_failures_last ON signin_failures (last_at);"},
    {17, "security groups and their members",
     /* A group is a principal of type Group with a row here; members are principals of
      * any type (groups included: nesting). Both ends cascade, so deleting a principal
      * takes it out of every group and deleting a group empties it. */
     "CREATE TABLE security_groups ("
     "  principal_pk INTEGER NOT NULL PRIMARY KEY REFERENCES principals (pk) ON DELETE CASCADE,"
     "  mail_nickname TEXT NOT NULL,"
     "  description TEXT"
     ");"
     "CREATE TABLE group_members ("
     "  group_pk INTEGER NOT NULL REFERENCES security_groups (principal_pk) ON DELETE CASCADE,"
     "  member_pk INTEGER NOT NULL REFERENCES principals (pk) ON DELETE CASCADE,"
     "  created_at INTEGER NOT NULL,"
     "  PRIMARY KEY (group_pk, member_pk)"
     ");"
     "CREATE INDEX group_members_member ON group_members (member_pk);"},
    {18, "user sign-in: public clients, redirect URIs, the password-grant setting, refresh tokens",
     /* Redirect URIs are Graph's two lists (web.redirectUris, publicClient.redirectUris)
      * as JSON arrays of strings; public_client is Graph's isFallbackPublicClient. The
      * password grant (ROPC) is off unless the tenant turns it on. */
     "ALTER TABLE applications ADD COLUMN public_client INTEGER NOT NULL DEFAULT 0"
     "  CHECK (public_client IN (0, 1));"
     "ALTER TABLE applications ADD COLUMN web_redirect_uris TEXT NOT NULL DEFAULT '[]';"
     "ALTER TABLE applications ADD COLUMN public_redirect_uris TEXT NOT NULL DEFAULT '[]';"
     "ALTER TABLE tenant ADD COLUMN password_grant INTEGER NOT NULL DEFAULT 0"
     "  CHECK (password_grant IN (0, 1));"
     /* A refresh token is kept only as the SHA-256 of the opaque token (256 random bits:
      * a keyed hash adds nothing against guessing), so a copy of the database yields
      * none. A family is every token rotated from one sign-in; revoking it (reuse of a
      * spent token, sign-out, a password reset) refuses all of them. Redeeming marks
      * used_at once (UPDATE ... WHERE used_at = 0): a second presentation, on any
      * node, is reuse. Neither table is read by snapshots: writes do not move the
      * generation. */
     "CREATE TABLE refresh_families ("
     "  family_id TEXT PRIMARY KEY,"
     "  user_oid TEXT NOT NULL,"
     "  client_id TEXT NOT NULL,"
     "  session_id TEXT,"
     "  created_at INTEGER NOT NULL,"
     "  revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))"
     ");"
     "CREATE INDEX refresh_families_user ON refresh_families (user_oid);"
     "CREATE INDEX refresh_families_session ON refresh_families (session_id);"
     "CREATE TABLE refresh_tokens ("
     "  hash BLOB PRIMARY KEY CHECK (length(hash) = 32),"
     "  family_id TEXT NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,"
     "  user_oid TEXT NOT NULL,"
     "  client_id TEXT NOT NULL,"
     "  scope TEXT NOT NULL,"
     "  session_id TEXT,"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL,"
     "  used_at INTEGER NOT NULL DEFAULT 0,"
     "  revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))"
     ");"
     "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);"
     "CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);"},
    {19, "browser sign-in: authorization codes and sign-in sessions",
     /* Both hold only the SHA-256 of the secret the browser or client carries (the code,
      * the kl_session cookie), so a copy of the database signs nobody in. They are
      * bookkeeping no snapshot reads: written without moving the store's generation. A
      * code is redeemed by the one UPDATE that finds used_at NULL, on any node. A session
      * has a public id (a GUID: refresh tokens and sign-out name it) besides its cookie. */
     "CREATE TABLE auth_codes ("
     "  code_hash BLOB PRIMARY KEY CHECK (length(code_hash) = 32),"
     "  client_id TEXT NOT NULL,"
     "  user_oid TEXT NOT NULL,"
     "  redirect_uri TEXT NOT NULL,"
     "  scope TEXT NOT NULL,"
     "  code_challenge TEXT,"
     "  nonce TEXT,"
     "  session_id TEXT,"
     "  auth_time INTEGER NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL,"
     "  used_at INTEGER"
     ");"
     "CREATE INDEX auth_codes_expires ON auth_codes (expires_at);"
     "CREATE TABLE signin_sessions ("
     "  id TEXT PRIMARY KEY,"
     "  cookie_hash BLOB NOT NULL UNIQUE CHECK (length(cookie_hash) = 32),"
     "  user_oid TEXT NOT NULL,"
     "  auth_time INTEGER NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL,"
     "  revoked_at INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX signin_sessions_expires ON signin_sessions (expires_at);"},
    {20, "device codes",
     /* One row per device-code sign-in (gateway/devicecode.c). The device_code itself is
      * kept only as its SHA-256 (it is 32 random bytes, so an unkeyed hash is enough):
      * a copy of the database cannot poll for anyone's tokens. user_code is stored
      * normalised (upper case, no '-') and unique, so the verification page finds it by
      * equality. The status moves pending -> approved or declined once; redeemed_at is
      * set at most once (UPDATE ... WHERE redeemed_at IS NULL), which is what makes a
      * code good for one token answer across nodes. last_poll (unix seconds) carries
      * the too-fast rule between nodes. Bookkeeping no snapshot reads: written without
      * moving the store's generation. */
     "CREATE TABLE device_codes ("
     "  code_hash BLOB PRIMARY KEY CHECK (length(code_hash) = 32),"
     "  user_code TEXT NOT NULL UNIQUE,"
     "  client_id TEXT NOT NULL,"
     "  scope TEXT NOT NULL,"
     "  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'declined')),"
     "  user_oid TEXT,"
     "  session_id TEXT,"
     "  auth_time INTEGER NOT NULL DEFAULT 0,"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL,"
     "  last_poll INTEGER NOT NULL DEFAULT 0,"
     "  redeemed_at INTEGER,"
     "  CHECK (status = 'pending' OR status = 'declined' OR (user_oid IS NOT NULL AND"
     "    session_id IS NOT NULL))"
     ");"
     "CREATE INDEX device_codes_expires ON device_codes (expires_at);"},
    {21, "the source address of each device code",
     /* The address that asked for the code (as the daemon saw the connection), so that
      * the live codes of one address can be counted across nodes
      * (KL_MAX_DEVICE_CODES_PER_ADDRESS). Codes from before this have '' and count
      * against no address. */
     "ALTER TABLE device_codes ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';"
     "CREATE INDEX device_codes_addr ON device_codes (client_addr, expires_at);"},
};

const kl_store_migration *kl_store_migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}
