/* The store: the source of truth for everything the control plane creates (accounts,
 * their API keys, deployments, the directory, custom roles and role assignments). Every change is
 * one transaction and is acknowledged only after COMMIT returns; the snapshot the hot path reads is
 * rebuilt from here.
 *
 * Thread safety: a kl_store may be used from several threads (calls are serialised by
 * an internal mutex), but it blocks on disk I/O, so only the control thread and
 * start-up code should call it. Request handling on worker threads never does. */
#ifndef KL_STORE_STORE_H
#define KL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"
#include "common/limits.h"

typedef struct kl_store kl_store;

/* An account (Microsoft.CognitiveServices/accounts). Strings are NUL-terminated.
 * Returned by the store: every pointer is owned by the struct (kl_store_account_free).
 * Passed to the store: everything is borrowed and only read. */
typedef struct kl_store_account {
    char *id;             /* full ARM id as created (case preserved) */
    char *subscription;   /* as in id */
    char *resource_group; /* as in id */
    char *name;           /* unique across the store, case-insensitive */
    char *location;
    char *kind;       /* "OpenAI" | "AIServices" */
    char *sku;        /* JSON object text, e.g. {"name":"S0"} */
    char *tags;       /* JSON object text, e.g. {} */
    char *properties; /* JSON object text: extra client properties echoed back */
    bool disable_local_auth;
    char *network_acls;  /* JSON object text of properties.networkAcls, or NULL (none) */
    char *etag;          /* opaque token, new on every write (no quotes) */
    int64_t created_at;  /* unix seconds; only used on insert, kept on update */
    int64_t modified_at; /* unix seconds */
} kl_store_account;

/* One API key slot of an account. The key itself is only ever stored sealed. */
typedef struct kl_store_key {
    int slot;                /* 1 (Key1) or 2 (Key2) */
    char *sealed;            /* kl_seal() text, aad "apikey:<lower-case account id>:<slot>" */
    unsigned char index[32]; /* kl_apikey_index() of the key; unique across the store */
    int64_t created_at;      /* unix seconds */
    /* Read only: the start (unix seconds, UTC) of the last day the key was used, as the
     * usage batches last wrote it; 0 when never. Writing a slot resets it. */
    int64_t last_used;
} kl_store_key;

/* One key's use, for kl_store_record_key_usage: the key by its index, and the start of
 * the day (unix seconds, UTC) it was last used. */
typedef struct kl_store_key_usage {
    unsigned char index[32];
    int64_t day;
} kl_store_key_usage;

/* A deployment of an account. Ownership as for kl_store_account. */
typedef struct kl_store_deployment {
    char *account_name;      /* owning account (read: as stored; put: ignored) */
    char *name;              /* case-sensitive, unique within its account */
    char *sku;               /* JSON object text or NULL */
    char *model;             /* JSON object text (properties.model) or NULL */
    char *backend;           /* "echo" | "upstream" */
    char *upstream_url;      /* upstream only, else NULL */
    char *upstream_model;    /* upstream only, else NULL */
    char *credential_sealed; /* upstream only, may be NULL (no credential) */
    int64_t created_at;      /* unix seconds; only used on insert */
    int64_t modified_at;
} kl_store_deployment;

/* Opens (creating if needed) the SQLite database at path: the file is created 0600
 * (an existing file with group/other bits is tightened to 0600), WAL journal,
 * synchronous=FULL, foreign keys on, a busy timeout, then every pending numbered
 * migration is applied, each in its own transaction. On success *out is owned by the
 * caller (kl_store_close). Errors: KL_EINVAL (NULL args), KL_EIO (cannot open, not a
 * database, migration failed), KL_ECONFLICT (the file has a newer schema than this
 * build knows), KL_ENOMEM. */
int kl_store_open_sqlite(const char *path, kl_store **out);
/* Opens the store named by url: "sqlite:PATH" (as kl_store_open_sqlite) or a
 * PostgreSQL URL, "postgres://..." or "postgresql://...", with libpq's own parameters
 * (sslmode, sslrootcert, ...; the password only from PGPASSFILE or PGPASSWORD: a URL
 * carrying one is refused). Migrations run under the writers' lock, so nodes starting
 * together apply each once. Errors: KL_EINVAL (bad or unknown URL, a password in it),
 * KL_EUNAVAIL (the server cannot be reached), KL_ECONFLICT (a newer schema than this
 * build knows; logged in one line), KL_EIO, KL_ENOMEM. Never logs the URL itself. */
int kl_store_open(const char *url, kl_store **out);
/* "sqlite" or "postgres". */
const char *kl_store_engine(const kl_store *st);
/* Closes the database. NULL is fine. */
void kl_store_close(kl_store *st);
/* The highest migration applied (for tests and diagnostics). */
int kl_store_schema_version(kl_store *st, int *version);

/* --- accounts --- */

/* Creates or updates an account in one transaction. The account is identified by its
 * name (case-insensitive). If no account has that name it is inserted together with
 * keys[0..n_keys) (its initial API keys; n_keys may be 0) and *created = true. If one
 * exists with the same id (compared case-insensitively) its location, kind, sku,
 * tags, properties, disable_local_auth, etag and modified_at are replaced (id,
 * created_at and keys are kept) and *created = false. If the name is taken by an
 * account with another id: KL_ECONFLICT, nothing written. created may be NULL.
 * Errors: KL_EINVAL (missing field, bad slot), KL_ECONFLICT (name taken, or a key index
 * already in use), KL_EIO. */
int kl_store_put_account(kl_store *st, const kl_store_account *a, const kl_store_key *keys,
                         size_t n_keys, bool *created);
/* Reads the account called name (case-insensitive). *out is owned by the caller
 * (kl_store_account_free). KL_ENOTFOUND if none. */
int kl_store_get_account(kl_store *st, const char *name, kl_store_account **out);
/* Lists accounts, ordered by lower-case name. subscription and resource_group filter
 * (case-insensitive) when non-NULL. *out is an array of *n owned pointers (may be NULL
 * when *n is 0), freed with kl_store_accounts_free. */
int kl_store_list_accounts(kl_store *st, const char *subscription, const char *resource_group,
                           kl_store_account ***out, size_t *n);
/* Deletes the account called name (case-insensitive) with its keys, deployments, the
 * role assignments at its id or below it (case-insensitive, on whole segments), its
 * system-assigned identity and its attachments (see managed identities below), in one
 * transaction. KL_ENOTFOUND if none, KL_EPERM (its identity held the last Owner of "/"). */
int kl_store_delete_account(kl_store *st, const char *name);

/* Replaces the given key slots of the account called name in one transaction (each
 * key's slot says which; n is 1 or 2, slots distinct). KL_ENOTFOUND (no account),
 * KL_EINVAL, KL_ECONFLICT (index in use). */
int kl_store_set_account_keys(kl_store *st, const char *name, const kl_store_key *keys, size_t n);
/* Replaces one slot (k->slot); the same as kl_store_set_account_keys with n = 1. */
int kl_store_regenerate_account_key(kl_store *st, const char *name, const kl_store_key *k);
/* Records when keys were last used, in one transaction: each key (by index) whose
 * last_used is older than its entry's day gets that day; entries for keys that no longer
 * exist (regenerated, deleted) change nothing, so a late batch never marks a new key as
 * used. Not a change of configuration: the store's generation does not move, so other
 * nodes do not rebuild. 0, KL_EINVAL, a store error. */
int kl_store_record_key_usage(kl_store *st, const kl_store_key_usage *u, size_t n);
/* Reads the keys of the account called name, ordered by slot. *out is an array of *n
 * keys owned by the caller (kl_store_keys_free). KL_ENOTFOUND if no such account. */
int kl_store_get_account_keys(kl_store *st, const char *name, kl_store_key **out, size_t *n);

/* --- deployments --- */

/* Creates or updates deployment d->name of the account called account_name, in one
 * transaction. On update every field is replaced except created_at, and except the
 * sealed credential when keep_credential is true, d->credential_sealed is NULL, the
 * backend stays "upstream" and the upstream URL is unchanged (so a credential never
 * follows a URL change). *created (may be NULL) tells which happened.
 * Errors: KL_ENOTFOUND (no such account), KL_EINVAL, KL_EIO. */
int kl_store_put_deployment(kl_store *st, const char *account_name, const kl_store_deployment *d,
                            bool keep_credential, bool *created);
/* Reads one deployment (account case-insensitive, deployment name case-sensitive).
 * *out owned by the caller (kl_store_deployment_free). KL_ENOTFOUND if either is
 * missing. */
int kl_store_get_deployment(kl_store *st, const char *account_name, const char *name,
                            kl_store_deployment **out);
/* Lists the deployments of an account ordered by name. KL_ENOTFOUND if no such account.
 * Free with kl_store_deployments_free. */
int kl_store_list_deployments(kl_store *st, const char *account_name, kl_store_deployment ***out,
                              size_t *n);
/* Deletes one deployment and the role assignments at its id or below it. KL_ENOTFOUND
 * if it (or the account) does not exist. */
int kl_store_delete_deployment(kl_store *st, const char *account_name, const char *name);

/* --- directory: the tenant, principals and applications ---
 *
 * Object ids, client (app) ids and the tenant id are GUIDs, kept in lower case; lookups
 * lower-case what they are given. Every change is one transaction; cascades (a
 * principal's role assignments, an application's service principal) happen inside it.
 *
 * The root owner rule: a change that would leave no enabled principal holding Owner at
 * "/" (while one did before) is refused with KL_EPERM and nothing is written, so the
 * directory can never lock out its last administrator. */

/* Owner's role GUID (the bootstrap assignment and the root owner rule). */
#define KL_STORE_OWNER_ROLE_ID KL_ROLE_OWNER_ID
#define KL_STORE_TENANT_DISPLAY_NAME "keyless"
#define KL_STORE_ADMIN_DISPLAY_NAME "keyless local administrator"

/* The tenant, created on first start together with the local administrator (a "User"
 * principal acting for the admin socket) and that administrator's Owner assignment at
 * "/". Never changes afterwards. */
typedef struct kl_store_tenant {
    char *tenant_id;       /* GUID */
    char *display_name;    /* "keyless" */
    char *admin_object_id; /* the local administrator's object id */
    int64_t created_at;    /* unix seconds */
    bool password_grant;   /* the password grant (ROPC) is allowed; off by default */
} kl_store_tenant;

/* A principal: something role assignments are given to. Ownership as for accounts. */
typedef struct kl_store_principal {
    char *object_id;    /* GUID */
    char *type;         /* "ServicePrincipal" | "ManagedIdentity" | "User" | "Group" */
    char *display_name; /* 1..KL_STORE_MAX_DISPLAY_NAME bytes */
    char *app_id;       /* client id: ServicePrincipal/ManagedIdentity only, else NULL */
    /* Read only: the object id of the application this is the service principal of,
     * or NULL. Such principals are created and deleted with their application. */
    char *application_id;
    bool enabled; /* accountEnabled */
    int64_t created_at;
} kl_store_principal;

/* An application registration with its service principal. */
typedef struct kl_store_application {
    char *object_id;    /* the application object's id */
    char *app_id;       /* client id, shared with its service principal */
    char *display_name; /* unique among applications, case-insensitively */
    char *sp_object_id; /* its service principal's object id; NULL when it has none yet */
    bool enabled;       /* its service principal's accountEnabled (false without one) */
    int64_t created_at;
    /* User sign-in (Graph's isFallbackPublicClient, web.redirectUris and
     * publicClient.redirectUris): read only here, set with
     * kl_store_set_application_client. The lists are JSON arrays of strings. */
    bool public_client;
    char *web_redirect_uris;
    char *public_redirect_uris;
} kl_store_application;

/* The tenant row. *out owned by the caller (kl_store_tenant_free). KL_ENOTFOUND only if
 * the first-start step never ran (it runs in kl_store_open_sqlite). */
int kl_store_get_tenant(kl_store *st, kl_store_tenant **out);

/* Inserts a principal that is not an application's service principal (managed
 * identities, users, groups; p->application_id is ignored). KL_EINVAL (missing or bad
 * field, app_id present/absent against the type), KL_EEXIST (object id or app id in
 * use), KL_EIO. */
int kl_store_create_principal(kl_store *st, const kl_store_principal *p);
/* Reads a principal by object id. KL_ENOTFOUND if none. Free with
 * kl_store_principal_free. */
int kl_store_get_principal(kl_store *st, const char *object_id, kl_store_principal **out);
/* Lists principals ordered by object id; type (e.g. "ServicePrincipal") filters when
 * non-NULL. Free with kl_store_principals_free. */
int kl_store_list_principals(kl_store *st, const char *type, kl_store_principal ***out, size_t *n);
/* Sets accountEnabled. KL_ENOTFOUND, KL_EPERM (root owner rule). */
int kl_store_set_principal_enabled(kl_store *st, const char *object_id, bool enabled);
/* Deletes a principal and every role assignment of it. KL_ENOTFOUND, KL_ECONFLICT (it
 * is an application's service principal: delete the application; or a managed
 * identity's: delete the identity or disable it on its host), KL_EPERM. */
int kl_store_delete_principal(kl_store *st, const char *object_id);

/* Creates an application and, when a->sp_object_id is set, its service principal (type
 * "ServicePrincipal", same app_id and display name, accountEnabled = a->enabled) in one
 * transaction. KL_EINVAL, KL_ECONFLICT (display name taken, case-insensitively),
 * KL_EEXIST (an id is in use), KL_EIO. */
int kl_store_create_application(kl_store *st, const kl_store_application *a);
/* Creates the service principal of an existing application (by object id or app id),
 * as Graph's POST /servicePrincipals {"appId"} does: same app id and display name.
 * KL_EINVAL, KL_ENOTFOUND (no such application), KL_ECONFLICT (it has one already),
 * KL_EEXIST (sp_object_id in use). */
int kl_store_create_service_principal(kl_store *st, const char *id_or_app_id,
                                      const char *sp_object_id, bool enabled, int64_t created_at);
/* Reads an application by its object id or its app (client) id. KL_ENOTFOUND. Free
 * with kl_store_application_free. */
int kl_store_get_application(kl_store *st, const char *id_or_app_id, kl_store_application **out);
/* Reads an application by display name (case-insensitive). KL_ENOTFOUND. */
int kl_store_get_application_by_name(kl_store *st, const char *display_name,
                                     kl_store_application **out);
/* Lists applications ordered by lower-case display name. Free with
 * kl_store_applications_free. */
int kl_store_list_applications(kl_store *st, kl_store_application ***out, size_t *n);
/* Updates an application (by object id): display_name (NULL keeps it; renames its
 * service principal too) and enabled (NULL keeps it; applies to its service principal).
 * KL_ENOTFOUND, KL_EINVAL, KL_ECONFLICT (name taken), KL_EPERM (root owner rule). */
int kl_store_update_application(kl_store *st, const char *object_id, const char *display_name,
                                const bool *enabled);
/* Deletes an application (by object id), its service principal and every role
 * assignment of that principal. KL_ENOTFOUND, KL_EPERM (root owner rule). */
int kl_store_delete_application(kl_store *st, const char *object_id);
/* Sets an application's user sign-in settings (by object id): public_client (NULL keeps
 * it), web_redirect_uris and public_redirect_uris (JSON arrays of strings the caller
 * has checked, kl_appcreds_redirect_uri_check; NULL keeps a list). KL_ENOTFOUND,
 * KL_EINVAL (a list that is not a JSON array of at most KL_MAX_REDIRECT_URIS strings). */
int kl_store_set_application_client(kl_store *st, const char *object_id, const bool *public_client,
                                    const char *web_redirect_uris,
                                    const char *public_redirect_uris);
/* Sets the tenant's password-grant (ROPC) setting. KL_ENOTFOUND before first start. */
int kl_store_set_password_grant(kl_store *st, bool enabled);

/* --- application credentials (store_appcreds.c) --- */

/* A certificate registered for an application (Graph's keyCredential). Ownership as for
 * accounts. */
typedef struct kl_store_key_credential {
    char *key_id;            /* GUID */
    char *app_id;            /* read only: the application's client id */
    char *display_name;      /* the certificate's subject, or what the caller named it */
    char *thumbprint_sha1;   /* upper-case hex, 40 characters (Graph customKeyIdentifier) */
    char *thumbprint_sha256; /* base64url, 43 characters (a JWS x5t#S256) */
    char *cert;              /* the DER certificate, standard base64 */
    int64_t start_at;        /* notBefore, seconds */
    int64_t end_at;          /* notAfter, seconds */
    int64_t created_at;
} kl_store_key_credential;

/* Lists the certificates of the application (object id or app id) in the
 * order they were added. KL_ENOTFOUND if there is no such application. Free with
 * kl_store_key_credentials_free. */
int kl_store_list_key_credentials(kl_store *st, const char *app, kl_store_key_credential ***out,
                                  size_t *n);
/* Makes creds[0..n) the application's whole set in one transaction: rows whose key_id
 * is not in creds are deleted, the others inserted or kept (a kept row is matched by
 * key_id and is not rewritten). KL_ENOTFOUND (no application), KL_EINVAL (a malformed
 * row), KL_ETOOBIG (more than KL_MAX_APP_KEY_CREDENTIALS), KL_EEXIST (a thumbprint twice,
 * or a key_id another application uses). */
int kl_store_set_key_credentials(kl_store *st, const char *app,
                                 const kl_store_key_credential *const *creds, size_t n);
/* A federated identity credential (Graph's federatedIdentityCredential): tokens of
 * issuer about subject, for one of audiences, stand for the application. */
typedef struct kl_store_federated_credential {
    char *id;          /* GUID */
    char *app_id;      /* read only: the application's client id */
    char *name;        /* unique per application, case-insensitively */
    char *issuer;      /* the external issuer's URL, exactly as its tokens' iss */
    char *subject;     /* the tokens' sub */
    char *audiences;   /* a JSON array of strings */
    char *description; /* or NULL */
    int64_t created_at;
} kl_store_federated_credential;

/* Adds fc to the application app (object id or app id) in one transaction.
 * KL_ENOTFOUND (no application), KL_EEXIST (its name, or its issuer and subject, are
 * taken on this application; or the id is in use), KL_ETOOBIG (more than
 * KL_MAX_APP_FEDERATED_CREDENTIALS), KL_EINVAL. */
int kl_store_create_federated_credential(kl_store *st, const char *app,
                                         const kl_store_federated_credential *fc);
/* Lists the application's federated credentials in the order they were added.
 * KL_ENOTFOUND if there is no such application. */
int kl_store_list_federated_credentials(kl_store *st, const char *app,
                                        kl_store_federated_credential ***out, size_t *n);
/* Replaces issuer, subject, audiences and description (the name and id stay) of the
 * credential id of app. KL_ENOTFOUND, KL_EEXIST (issuer and subject taken), KL_EINVAL. */
int kl_store_update_federated_credential(kl_store *st, const char *app, const char *id,
                                         const kl_store_federated_credential *fc);
/* KL_ENOTFOUND when app has no credential id. */
int kl_store_delete_federated_credential(kl_store *st, const char *app, const char *id);
void kl_store_federated_credential_free(kl_store_federated_credential *f);
void kl_store_federated_credentials_free(kl_store_federated_credential **f, size_t n);

/* Spends the client assertion id jti of client_id, remembered until exp (seconds):
 * 0 if it was unused and is now recorded, KL_EEXIST if it was used before (and has not
 * expired), KL_EUNAVAIL when the database cannot be reached, KL_EINVAL. Rows whose exp
 * is before now are pruned in the same transaction. Does not move the generation. */
int kl_store_use_jti(kl_store *st, const char *client_id, const char *jti, int64_t exp,
                     int64_t now);
/* --- refresh tokens (store_refresh.c) ---
 *
 * Users' refresh tokens, kept as the SHA-256 of the opaque token only. Every token
 * belongs to a family (the tokens rotated from one sign-in); a token is redeemed at most
 * once on all nodes together, and a second presentation revokes its family. None of
 * these writes move the store's generation (no snapshot reads them). */

#define KL_STORE_REFRESH_HASH_LEN 32

/* One refresh token as stored. Owned by the caller (kl_store_refresh_free). */
typedef struct kl_store_refresh {
    char *family_id;  /* GUID */
    char *user_oid;   /* the user's object id */
    char *client_id;  /* the app it was issued to */
    char *scope;      /* the scopes granted, space-separated */
    char *session_id; /* the sign-in session, or NULL (password grant) */
    int64_t created_at;
    int64_t expires_at;
    int64_t used_at; /* 0 while unused */
    bool revoked;    /* its family is revoked */
    /* Read only (kl_store_refresh_get): the user's principal name now, NULL when the
     * user is gone, so that a refresh needs no second read. */
    char *upn;
} kl_store_refresh;

/* Stores a new token of hash (its SHA-256) starting the family r->family_id (created
 * when it does not exist). KL_EINVAL, KL_EEXIST (hash in use), a store error. */
int kl_store_refresh_create(kl_store *st, const unsigned char hash[KL_STORE_REFRESH_HASH_LEN],
                            const kl_store_refresh *r);
/* Reads the token of hash. KL_ENOTFOUND. *out owned by the caller. */
int kl_store_refresh_get(kl_store *st, const unsigned char hash[KL_STORE_REFRESH_HASH_LEN],
                         kl_store_refresh **out);
/* Redeems the token old and stores next_hash (next: its fields; the family is old's) in
 * one transaction, so that exactly one of any number of concurrent redemptions, on any
 * node, succeeds. KL_ENOTFOUND (no such token), KL_EPERM (its family is revoked),
 * KL_EEXIST (it was redeemed before: the family is revoked now, in the same
 * transaction), a store error. */
int kl_store_refresh_rotate(kl_store *st, const unsigned char old[KL_STORE_REFRESH_HASH_LEN],
                            const unsigned char next_hash[KL_STORE_REFRESH_HASH_LEN],
                            const kl_store_refresh *next, int64_t now);
/* One rotation of a batch: in old, next_hash, next (strings borrowed); out result. */
typedef struct kl_store_refresh_rotation {
    unsigned char old[KL_STORE_REFRESH_HASH_LEN];
    unsigned char next_hash[KL_STORE_REFRESH_HASH_LEN];
    kl_store_refresh next;
    int result; /* as kl_store_refresh_rotate answers for this one */
} kl_store_refresh_rotation;
/* kl_store_refresh_rotate for r[0..n) in one transaction, in order (group commit: one
 * durable commit for many redemptions). Each r[i].result is that rotation's answer; the
 * return is 0, or the store error that failed the whole transaction (then every result
 * is that error and nothing was written). */
int kl_store_refresh_rotate_batch(kl_store *st, kl_store_refresh_rotation *r, size_t n,
                                  int64_t now);
/* Revokes a family (0 also when there is none). */
int kl_store_refresh_revoke_family(kl_store *st, const char *family_id);
/* Revokes every family of a user (an admin reset the password, or disabled the user). */
int kl_store_refresh_revoke_user(kl_store *st, const char *user_oid);
/* Revokes every refresh token issued in sign-in session session_id (sign-out): they are
 * refused from then on, on every node. 0 (also when there were none), KL_EUNAVAIL,
 * KL_EIO, KL_EINVAL (NULL or empty session id). */
int kl_store_refresh_revoke_session(kl_store *st, const char *session_id);
/* Deletes tokens that expired before now and families left without tokens. */
int kl_store_refresh_prune(kl_store *st, int64_t now);
void kl_store_refresh_free(kl_store_refresh *r);

void kl_store_key_credential_free(kl_store_key_credential *k);
void kl_store_key_credentials_free(kl_store_key_credential **k, size_t n);

/* --- role definitions (custom roles; built-ins are static data in src/rbac) --- */

typedef struct kl_store_role_definition {
    char *role_id;           /* GUID, never a built-in's (the caller checks) */
    char *role_name;         /* unique among custom roles, case-insensitively */
    char *description;       /* "" when none */
    char *assignable_scopes; /* JSON array of scope strings, e.g. ["/subscriptions/s"] */
    char *permissions;       /* JSON array of {actions,notActions,dataActions,notDataActions} */
    int64_t created_at;      /* only used on insert, kept on update */
    int64_t updated_at;
} kl_store_role_definition;

/* Creates or replaces a custom role (by role_id). *created (may be NULL) tells which.
 * KL_EINVAL (missing field, JSON columns not arrays), KL_ECONFLICT (name taken by
 * another custom role), KL_EIO. */
int kl_store_put_role_definition(kl_store *st, const kl_store_role_definition *rd, bool *created);
/* KL_ENOTFOUND if none. Free with kl_store_role_definition_free. */
int kl_store_get_role_definition(kl_store *st, const char *role_id, kl_store_role_definition **out);
/* Every custom role, ordered by lower-case name, into *out[0..*n) (free with
 * kl_store_role_definitions_free; *out is NULL and *n 0 on failure).
 * Returns 0; KL_EINVAL (a stored JSON column that is not an array); KL_ENOMEM;
 * KL_EUNAVAIL (the store is unreachable); KL_EIO. */
int kl_store_list_role_definitions(kl_store *st, kl_store_role_definition ***out, size_t *n);
/* KL_ENOTFOUND, KL_ECONFLICT (still assigned: nothing deleted). */
int kl_store_delete_role_definition(kl_store *st, const char *role_id);

/* --- role assignments --- */

typedef struct kl_store_role_assignment {
    char *name;           /* GUID, unique */
    char *scope;          /* canonical ARM scope ("/" for the root) */
    char *principal_id;   /* object id */
    char *principal_type; /* read only: the principal's type (see kl_store_principal) */
    char *role_id;        /* role GUID (built-in or custom) */
    char *description;    /* or NULL */
    int64_t created_at;   /* only used on insert */
    int64_t updated_at;
    char *created_by; /* object id of the creator, or NULL (first start) */
    char *updated_by;
} kl_store_role_assignment;

/* Creates a role assignment. (scope, principal, role) is unique, scope compared
 * case-insensitively. builtin_role says the role is a built-in; otherwise the custom
 * role must exist. If ra->name already exists with the same scope, principal and role,
 * its description (when ra->description is not NULL), updated_at and updated_by are
 * replaced and *created is false (an idempotent re-PUT). Errors, nothing written:
 *   KL_ENOTFOUND  no such principal
 *   KL_EINVAL     missing field, or the custom role does not exist
 *   KL_ECONFLICT  ra->name exists with another scope, principal or role
 *   KL_EEXIST     the same (scope, principal, role) exists under another name
 *   KL_EIO */
int kl_store_put_role_assignment(kl_store *st, const kl_store_role_assignment *ra,
                                 bool builtin_role, bool *created);
/* KL_ENOTFOUND if none. Free with kl_store_role_assignment_free. */
int kl_store_get_role_assignment(kl_store *st, const char *name, kl_store_role_assignment **out);
/* Lists assignments ordered by creation, then name; principal_id filters when non-NULL.
 * Free with kl_store_role_assignments_free. */
int kl_store_list_role_assignments(kl_store *st, const char *principal_id,
                                   kl_store_role_assignment ***out, size_t *n);
/* KL_ENOTFOUND, KL_EPERM (the last enabled Owner at "/"). */
int kl_store_delete_role_assignment(kl_store *st, const char *name);

/* --- token service: signing keys and client secrets --- */

/* A signing key of the token service. Ownership as for accounts. */
typedef struct kl_store_signing_key {
    char *kid;          /* RFC 7638 thumbprint, base64url */
    char *alg;          /* "RS256" | "ES256" */
    char *sealed;       /* kl_seal() of the PKCS#8 PEM, aad "signing-key:<kid>" */
    int64_t created_at; /* published (JWKS) from here */
    int64_t active_at;  /* signs from here (the newest active key signs) */
    int64_t retire_at;  /* 0, or no longer published nor accepted from here */
    int64_t revoked_at; /* 0, or refused from here (emergency rotation) */
} kl_store_signing_key;

/* How kl_store_add_signing_key decides, inside its transaction, whether to add. */
typedef enum kl_store_sk_mode {
    /* Only if no key is usable now (none unrevoked and active at k->active_at): the
     * first key, when several nodes start at once. */
    KL_STORE_SK_FIRST = 0,
    /* Only if no unrevoked key becomes active after `now` (no rotation pending), so
     * that nodes rotating on their own timers add one key between them. */
    KL_STORE_SK_SCHEDULED,
    /* Always (an operator's rotation). */
    KL_STORE_SK_NOW,
    /* Always, and every other unrevoked key is revoked at `now`. */
    KL_STORE_SK_REVOKE,
} kl_store_sk_mode;

/* Adds signing key k in one write transaction, as mode decides; unless revoking, every
 * other unrevoked, unretired key gets retire_at = retire_others_at (0 leaves them). Rows
 * retired or revoked before prune_before (0: none) are deleted in the same transaction.
 * KL_EEXIST when the mode says there is nothing to add (nothing written), KL_EINVAL,
 * store errors. */
int kl_store_add_signing_key(kl_store *st, const kl_store_signing_key *k, kl_store_sk_mode mode,
                             int64_t now, int64_t retire_others_at, int64_t prune_before);
/* Every signing key, oldest first. Free with kl_store_signing_keys_free. */
int kl_store_list_signing_keys(kl_store *st, kl_store_signing_key ***out, size_t *n);

/* A client secret (Graph passwordCredential) of an application. Only its keyed hash is
 * stored. */
typedef struct kl_store_app_secret {
    char *app_id;           /* read only: the application's client id */
    char *key_id;           /* GUID */
    char *display_name;     /* "" when none */
    char *hint;             /* the secret's first three characters */
    unsigned char hash[32]; /* kl_keys_hmac(pepper, "client-secret", secret) */
    int64_t start_at;       /* unix seconds */
    int64_t end_at;
    int64_t created_at;
} kl_store_app_secret;

/* Adds a secret to the application with object id app_object_id unless it already
 * has max secrets. KL_ENOTFOUND (no application), KL_ETOOBIG (limit), KL_EEXIST (key id
 * in use), KL_EINVAL. */
int kl_store_add_app_secret(kl_store *st, const char *app_object_id, const kl_store_app_secret *s,
                            size_t max);
/* The secrets of an application (by object id), by creation. KL_ENOTFOUND if no such
 * application. Free with kl_store_app_secrets_free. */
int kl_store_list_app_secrets(kl_store *st, const char *app_object_id, kl_store_app_secret ***out,
                              size_t *n);
/* Removes one. KL_ENOTFOUND if the application or the key id is not there. */
int kl_store_remove_app_secret(kl_store *st, const char *app_object_id, const char *key_id);

/* One token issued or refused by the token service. Ownership as for accounts. */
typedef struct kl_store_signin {
    int64_t id;         /* read only: its order */
    int64_t at;         /* unix seconds */
    char *client_id;    /* as presented (a refused one may be no GUID); "" if none */
    char *principal_id; /* the service principal's object id, or NULL */
    char *credential;   /* "client_secret", "client_assertion", "managed_identity", "none" */
    char *resource;     /* the resource asked for, or NULL */
    char *source;       /* the client's address */
    bool success;
    int error_code;       /* the AADSTS number, 0 on success */
    char *reason;         /* "" on success, else why (never a secret) */
    char *correlation_id; /* the answer's correlation id */
} kl_store_signin;

/* Appends rows[0..n) in one transaction that does not move the store's generation
 * (nothing a snapshot holds changes). */
int kl_store_append_signins(kl_store *st, const kl_store_signin *rows, size_t n);
/* The newest sign-ins first, at most limit; client_id filters (case-insensitively) when
 * not NULL, failed_only keeps the refusals. Free with kl_store_signins_free. */
int kl_store_list_signins(kl_store *st, const char *client_id, bool failed_only, size_t limit,
                          kl_store_signin ***out, size_t *n);
void kl_store_signins_free(kl_store_signin **s, size_t n);

/* --- managed identities and the compute resources that carry them (store_identities.c) ---
 *
 * A managed identity is a principal of type "ManagedIdentity" (no application, no
 * credential of any kind) plus what ties it to ARM. A user-assigned identity
 * (Microsoft.ManagedIdentity/userAssignedIdentities) is a resource of its own: attached
 * to any number of hosts, it survives their deletion, and deleting it detaches it
 * everywhere. A system-assigned identity belongs to the resource that enabled it (its
 * host: a site, a VM or an account), one per host, and is deleted when the host disables
 * it or is deleted. Deleting an identity deletes its principal and the principal's role
 * assignments in the same transaction. Re-enabling makes a new one (new ids). */

#define KL_STORE_COMPUTE_SITE "site" /* Microsoft.Web/sites */
#define KL_STORE_COMPUTE_VM "vm"     /* Microsoft.Compute/virtualMachines */

/* A site or a VM. Ownership as for accounts. */
typedef struct kl_store_compute {
    char *kind;           /* KL_STORE_COMPUTE_SITE | KL_STORE_COMPUTE_VM */
    char *id;             /* full ARM id as created (case preserved) */
    char *subscription;   /* as in id */
    char *resource_group; /* as in id */
    char *name;           /* unique per kind across the store, case-insensitive */
    char *location;
    char *tags;         /* JSON object text */
    char *properties;   /* JSON object text: client properties echoed back */
    char *etag;         /* new on every write (no quotes) */
    int64_t created_at; /* only used on insert, kept on update */
    int64_t modified_at;
} kl_store_compute;

/* A managed identity. Ownership as for accounts. */
typedef struct kl_store_identity {
    /* User-assigned: its own ARM id; system-assigned: the ARM id of its host. As
     * created (case preserved); unique case-insensitively. */
    char *resource_id;
    bool user_assigned;
    char *subscription;   /* of resource_id */
    char *resource_group; /* of resource_id */
    char *name;           /* the last segment of resource_id (the principal's display name) */
    char *location;       /* user-assigned: as given; system-assigned: "" */
    char *tags;           /* user-assigned: JSON object text; system-assigned: "{}" */
    char *object_id;      /* its principal's object id (principalId), lower-case GUID */
    char *client_id;      /* its client id, lower-case GUID */
    int64_t created_at;   /* only used on insert, kept on update */
    int64_t modified_at;
} kl_store_identity;

/* What a host's identity block asks for (Azure's identity.type and
 * userAssignedIdentities). Everything is borrowed. */
typedef struct kl_store_identity_spec {
    bool system; /* a system-assigned identity: kept if the host has one, else created */
    /* Fresh GUIDs for a system-assigned identity that must be created (unused
     * otherwise; the caller draws them every time, which is cheap). */
    const char *system_object_id;
    const char *system_client_id;
    /* The user-assigned identities, by ARM id (any case), all of them: those not named
     * are detached. No id twice (KL_EINVAL). */
    const char *const *user;
    size_t n_user;
} kl_store_identity_spec;

/* Creates or updates a site or VM (by kind and name, case-insensitive) and, unless spec
 * is NULL (identities left as they are), sets its identities, in one transaction. On
 * update location, tags, properties, etag and modified_at are replaced. *created (may be
 * NULL) tells which happened. Errors, nothing written: KL_EINVAL (missing field, JSON
 * not an object, a bad spec), KL_ECONFLICT (the name is taken by another id),
 * KL_ENOTFOUND (a user-assigned identity of spec does not exist), KL_EEXIST (a fresh id
 * in use), KL_EPERM (the root owner rule: removing a system-assigned identity that is
 * the last Owner of "/"), KL_EIO. */
int kl_store_put_compute(kl_store *st, const kl_store_compute *c,
                         const kl_store_identity_spec *spec, bool *created);
/* Reads the site or VM called name. KL_ENOTFOUND. Free with kl_store_compute_free. */
int kl_store_get_compute(kl_store *st, const char *kind, const char *name, kl_store_compute **out);
/* Lists sites or VMs ordered by lower-case name; subscription and resource_group filter
 * (case-insensitive) when non-NULL. Free with kl_store_computes_free. */
int kl_store_list_computes(kl_store *st, const char *kind, const char *subscription,
                           const char *resource_group, kl_store_compute ***out, size_t *n);
/* Deletes a site or VM with its system-assigned identity (principal and role
 * assignments), its attachments and the role assignments at its id or below, in one
 * transaction. KL_ENOTFOUND, KL_EPERM (root owner rule). */
int kl_store_delete_compute(kl_store *st, const char *kind, const char *name);

/* kl_store_put_account, setting the account's identities as kl_store_put_compute does
 * (spec NULL: left as they are) in the same transaction. Errors as both. */
int kl_store_put_account_ex(kl_store *st, const kl_store_account *a, const kl_store_key *keys,
                            size_t n_keys, const kl_store_identity_spec *spec, bool *created);

/* The identities of the host whose ARM id is host_id (any case): its system-assigned one
 * first (when it has one), then its user-assigned ones ordered by lower-case ARM id.
 * *n may be 0 (also for a host that does not exist). Free with kl_store_identities_free. */
int kl_store_host_identities(kl_store *st, const char *host_id, kl_store_identity ***out,
                             size_t *n);

/* Creates or updates a user-assigned identity by i->resource_id (case-insensitive). A
 * new one gets a principal (type "ManagedIdentity", display name i->name, enabled) with
 * i->object_id and i->client_id; an existing one keeps its ids and created_at, and gets
 * i's location, tags and modified_at. *created (may be NULL) tells which. KL_EINVAL,
 * KL_EEXIST (an id in use), KL_EIO. */
int kl_store_put_user_identity(kl_store *st, const kl_store_identity *i, bool *created);
/* Reads the identity whose resource_id is resource_id (case-insensitive): a
 * user-assigned identity by its own id, a system-assigned one by its host's.
 * KL_ENOTFOUND. Free with kl_store_identity_free. */
int kl_store_get_identity(kl_store *st, const char *resource_id, kl_store_identity **out);
/* Lists user-assigned identities ordered by lower-case ARM id; subscription and
 * resource_group filter (case-insensitive) when non-NULL. */
int kl_store_list_user_identities(kl_store *st, const char *subscription,
                                  const char *resource_group, kl_store_identity ***out, size_t *n);
/* Deletes a user-assigned identity: its principal, the principal's role assignments and
 * every attachment, in one transaction. KL_ENOTFOUND (none, or a system-assigned one's
 * host id), KL_EPERM (root owner rule). */
int kl_store_delete_user_identity(kl_store *st, const char *resource_id);

void kl_store_compute_free(kl_store_compute *c);
void kl_store_computes_free(kl_store_compute **c, size_t n);
void kl_store_identity_free(kl_store_identity *i);
void kl_store_identities_free(kl_store_identity **i, size_t n);

/* --- launch secrets of App-Service-style identity endpoints (keyless run) --- */

/* One launch secret: only its keyed hash is stored (policy/idheaders.h). */
typedef struct kl_store_identity_header {
    char *id;        /* the launch id: a GUID, lower case */
    char *site_name; /* the site it belongs to (as created) */
    unsigned char hash[32];
    int64_t created_at;
    int64_t expires_at; /* the lease's end, epoch seconds (exclusive) */
} kl_store_identity_header;

/* Creates launch secret id (a GUID) of the site whose ARM id is site_id (any case) with
 * hash, or, when the site already has a launch of that id, renews it: expires_at moves
 * and the hash is left as it was (a renewal never changes the secret). *created says
 * which. Secrets whose lease has ended (expires_at <= now) are deleted on the way. One
 * write transaction. KL_ENOTFOUND: no such site; KL_EEXIST: id belongs to another site;
 * KL_ETOOBIG: KL_MAX_IDENTITY_HEADERS alive. */
int kl_store_put_identity_header(kl_store *st, const char *site_id, const char *id,
                                 const unsigned char hash[32], int64_t now, int64_t expires_at,
                                 bool *created);
/* Revokes launch secret id of the site site_id. KL_ENOTFOUND if it has none such. */
int kl_store_delete_identity_header(kl_store *st, const char *site_id, const char *id);
/* --- users and groups (store_users.c, store_groups.c) ---
 *
 * A user is a principal of type "User" with a sign-in name (userPrincipalName, unique
 * without regard to case) and optionally a password, kept only as an Argon2id hash. A
 * group is a principal of type "Group" whose members are principals of any type, groups
 * included. Both are deleted with kl_store_delete_principal (which takes them out of
 * every group and, for a group, empties it). Membership changes are logged as changing
 * everything (a full snapshot rebuild): closures of nested groups are the snapshot's. */

/* A password as stored: standard-base64 Argon2id hash and salt, and its parameters.
 * Passed to the store: borrowed. hash NULL means "no password". */
typedef struct kl_store_password {
    char *hash;
    char *salt;
    int64_t t, m, p; /* passes, KiB, lanes */
} kl_store_password;

typedef struct kl_store_user {
    char *object_id;
    char *upn; /* as created (case kept); unique case-insensitively */
    char *display_name;
    bool enabled;
    bool force_change; /* passwordProfile.forceChangePasswordNextSignIn */
    /* Read only: */
    bool has_password;
    int64_t created_at;
    int64_t password_changed_at; /* 0: never set */
} kl_store_user;

/* What a password sign-in needs of a user; the hash fields are cleansed on free. */
typedef struct kl_store_user_secret {
    char *object_id;
    bool enabled;
    bool force_change;
    kl_store_password pw; /* pw.hash NULL when the user has no password */
} kl_store_user_secret;

/* Creates the principal (type "User", u->object_id, display name, enabled) and its user
 * row in one transaction; pw may be NULL (no password yet). KL_EINVAL (bad field),
 * KL_ECONFLICT (the user principal name is taken, case-insensitively), KL_EEXIST (the
 * object id is in use), a store error. */
int kl_store_create_user(kl_store *st, const kl_store_user *u, const kl_store_password *pw);
/* Reads a user by object id or by user principal name (case-insensitive). KL_ENOTFOUND.
 * Free with kl_store_user_free. */
int kl_store_get_user(kl_store *st, const char *id_or_upn, kl_store_user **out);
/* Every user, ordered by lower-case user principal name. Free with kl_store_users_free. */
int kl_store_list_users(kl_store *st, kl_store_user ***out, size_t *n);
/* Updates the user with this object id in one transaction; every NULL argument keeps
 * its value: display_name, enabled (guarded by the root owner rule), pw (replaces the
 * password; password_changed_at becomes now, and every refresh-token family of the user
 * is revoked in the same transaction), force_change. KL_ENOTFOUND, KL_EINVAL, KL_EPERM
 * (root owner rule). */
int kl_store_update_user(kl_store *st, const char *object_id, const char *display_name,
                         const bool *enabled, const kl_store_password *pw, const bool *force_change,
                         int64_t now);
/* The sign-in view of the user called upn (case-insensitive). KL_ENOTFOUND. Free with
 * kl_store_user_secret_free. */
int kl_store_get_user_secret(kl_store *st, const char *upn, kl_store_user_secret **out);
void kl_store_user_free(kl_store_user *u);
void kl_store_users_free(kl_store_user **u, size_t n);
void kl_store_user_secret_free(kl_store_user_secret *s);

/* Failed password sign-ins of one user principal name (lower case), existing or not. */
typedef struct kl_store_signin_failures {
    int64_t failures;     /* in the current window */
    int64_t first_at;     /* the window's first failure, unix seconds */
    int64_t last_at;      /* the latest failure */
    int64_t locked_until; /* 0, or locked before this time */
} kl_store_signin_failures;

/* How kl_store_record_signin_failure counts (directory/lockout.c owns the numbers). */
typedef struct kl_store_lockout_rule {
    int64_t window_s;  /* failures older than this start a new count */
    int64_t threshold; /* failures that lock */
    int64_t lock_s;    /* how long a lock lasts */
} kl_store_lockout_rule;

/* The failures of upn (compared lower-cased); all zero when there are none. */
int kl_store_get_signin_failures(kl_store *st, const char *upn, kl_store_signin_failures *out);
/* Counts one failure of upn at now in one write transaction that does not move the
 * store's generation: a count whose window has passed, or whose lock has ended, starts
 * again at 1; reaching rule->threshold sets locked_until = now + lock_s. Rows idle for
 * longer than a window and a lock are pruned in the same transaction. *after (may be
 * NULL) receives the row as written. */
int kl_store_record_signin_failure(kl_store *st, const char *upn, int64_t now,
                                   const kl_store_lockout_rule *rule,
                                   kl_store_signin_failures *after);
/* Forgets the failures of upn (a successful sign-in). Does not move the generation. */
int kl_store_clear_signin_failures(kl_store *st, const char *upn);

/* --- browser sign-in: authorization codes and sign-in sessions (store_authcodes.c).
 * The store keeps only SHA-256 hashes of the code and of the session cookie; none of
 * these writes moves the generation. --- */

/* An authorization code's grant, as issued at the authorize endpoint. Strings owned by
 * the struct when the store returns it, borrowed when passed in. */
typedef struct kl_store_authcode {
    char *client_id;      /* the app id that asked */
    char *user_oid;       /* who signed in */
    char *redirect_uri;   /* exactly as given at authorize */
    char *scope;          /* space-separated, as asked */
    char *code_challenge; /* S256 challenge (base64url); NULL when none was sent */
    char *nonce;          /* NULL when none */
    char *session_id;     /* the sign-in session's id; NULL when none */
    int64_t auth_time;    /* when the user typed the password */
    int64_t created_at;
    int64_t expires_at;
} kl_store_authcode;

/* Records the code whose SHA-256 is hash, with c. Expired codes are pruned in the same
 * transaction. 0, KL_EEXIST (that hash exists), KL_EINVAL, a store error. */
int kl_store_put_authcode(kl_store *st, const unsigned char hash[32], const kl_store_authcode *c,
                          int64_t now);
/* Redeems the code whose SHA-256 is hash at now: marks it used in the same statement
 * that finds it unused, so that of two nodes racing exactly one succeeds. 0 with *out
 * (free with kl_store_authcode_free); KL_ENOTFOUND (no such code), KL_ECONFLICT (it was
 * redeemed before), KL_EPERM (expired; it stays unused), KL_EINVAL, a store error. */
int kl_store_redeem_authcode(kl_store *st, const unsigned char hash[32], int64_t now,
                             kl_store_authcode **out);
void kl_store_authcode_free(kl_store_authcode *c);

/* A browser sign-in session (behind the kl_session cookie). */
typedef struct kl_store_session {
    char *id;       /* public id (a GUID): refresh tokens carry it */
    char *user_oid; /* who signed in */
    int64_t auth_time;
    int64_t created_at;
    int64_t expires_at;
} kl_store_session;

/* Records session s whose cookie value hashes to cookie_hash. Expired and long-revoked
 * sessions are pruned in the same transaction. 0, KL_EEXIST, KL_EINVAL, a store error. */
int kl_store_put_session(kl_store *st, const unsigned char cookie_hash[32],
                         const kl_store_session *s, int64_t now);
/* The session whose cookie hashes to cookie_hash, if it is neither revoked nor expired
 * at now. 0 with *out (free with kl_store_session_free), KL_ENOTFOUND, a store error. */
int kl_store_get_session(kl_store *st, const unsigned char cookie_hash[32], int64_t now,
                         kl_store_session **out);
/* Revokes session id (sign-out) at now: it opens no page and redeems no new code
 * afterwards. 0 (also when it was already revoked), KL_ENOTFOUND, KL_EINVAL. */
int kl_store_revoke_session(kl_store *st, const char *id, int64_t now);
/* True when session id exists and is neither revoked nor expired at now (a code's
 * session at redemption). 0 with *live, or a store error. */
int kl_store_session_live(kl_store *st, const char *id, int64_t now, bool *live);
void kl_store_session_free(kl_store_session *s);

typedef struct kl_store_group {
    char *object_id;
    char *display_name;
    char *mail_nickname; /* Graph's required mailNickname */
    char *description;   /* or NULL */
    int64_t created_at;
} kl_store_group;

/* Creates the principal (type "Group", enabled) and its group row. KL_EINVAL,
 * KL_EEXIST (object id in use), a store error. */
int kl_store_create_group(kl_store *st, const kl_store_group *g);
/* KL_ENOTFOUND if no group has this object id. Free with kl_store_group_free. */
int kl_store_get_group(kl_store *st, const char *object_id, kl_store_group **out);
/* Ordered by object id. Free with kl_store_groups_free. */
int kl_store_list_groups(kl_store *st, kl_store_group ***out, size_t *n);
/* The direct members of a group, ordered by object id. KL_ENOTFOUND (no such group).
 * Free with kl_store_principals_free. */
int kl_store_list_group_members(kl_store *st, const char *group_id, kl_store_principal ***out,
                                size_t *n);
/* Makes member_id a direct member of group_id in one transaction. Errors, nothing
 * written: KL_ENOTFOUND (no such group), KL_EINVAL (no such member principal),
 * KL_EEXIST (already a direct member), KL_ECONFLICT (the member is the group or contains
 * it: a cycle), KL_ETOOBIG (the group would pass KL_MAX_GROUP_MEMBERS, a chain of groups
 * KL_MAX_GROUP_NESTING, or the member's transitive groups KL_MAX_GROUP_MEMBERSHIPS). */
int kl_store_add_group_member(kl_store *st, const char *group_id, const char *member_id,
                              int64_t now);
/* KL_ENOTFOUND when group_id has no such direct member (or is no group). */
int kl_store_remove_group_member(kl_store *st, const char *group_id, const char *member_id);
void kl_store_group_free(kl_store_group *g);
void kl_store_groups_free(kl_store_group **g, size_t n);

/* --- device codes (store_devicecodes.c) ---
 * Bookkeeping of the device-code flow, written without moving the store's generation.
 * A code is named by the SHA-256 of its device_code (hash[32]) or by its normalised
 * user code (KL_USER_CODE_LEN upper-case letters, no '-'). */

typedef enum kl_store_dc_status {
    KL_STORE_DC_PENDING = 0,
    KL_STORE_DC_APPROVED,
    KL_STORE_DC_DECLINED
} kl_store_dc_status;

typedef struct kl_store_devicecode {
    char *user_code;  /* normalised */
    char *client_id;  /* the app (lower-case GUID) that asked for it */
    char *scope;      /* space-separated, as asked */
    char *status;     /* "pending", "approved", "declined" (see kl_store_dc_status_of) */
    char *user_oid;   /* approved: who signed in; else NULL */
    char *session_id; /* approved: the sign-in session made then; else NULL */
    int64_t auth_time;
    int64_t created_at;
    int64_t expires_at;
    int64_t last_poll;   /* unix seconds; 0 before the first */
    int64_t redeemed_at; /* 0 until tokens were issued for it */
    char *client_addr;   /* the source address that asked for it ("" before migration 21) */
} kl_store_devicecode;

/* The status field as an enum (pending for anything unknown). */
kl_store_dc_status kl_store_dc_status_of(const kl_store_devicecode *d);

/* Records a new pending code (hash, d->user_code, client_id, scope, client_addr,
 * created_at, expires_at; the rest is ignored) and prunes codes that expired more than
 * keep_s before d->created_at, in one transaction. When client_addr already holds
 * max_live live codes (pending or approved, unexpired at created_at, not redeemed) the
 * code is not recorded: KL_ETOOBIG, and *free_at (when not NULL) receives the time the
 * first of them expires. The count is taken in the insert's transaction, which writers
 * on every node take in turn, so no two nodes both pass it. KL_ECONFLICT when the user
 * code (or hash) is taken: the caller draws another. KL_EINVAL, KL_EUNAVAIL, KL_EIO. */
int kl_store_devicecode_create(kl_store *st, const unsigned char hash[32],
                               const kl_store_devicecode *d, int64_t keep_s, int64_t max_live,
                               int64_t *free_at);

/* The code with normalised user code user_code; *out owned by the caller
 * (kl_store_devicecode_free). KL_ENOTFOUND, KL_EINVAL, KL_EUNAVAIL, KL_EIO. */
int kl_store_devicecode_by_user_code(kl_store *st, const char *user_code,
                                     kl_store_devicecode **out);

/* Moves a pending, unexpired code (by user code) to approved (user_oid, session_id,
 * auth_time) or, when user_oid is NULL, to declined. Exactly once: KL_ECONFLICT when it
 * is no longer pending or has expired at now (another tab, or another node, decided
 * first), KL_ENOTFOUND when there is no such code. KL_EINVAL, KL_EUNAVAIL, KL_EIO. */
int kl_store_devicecode_decide(kl_store *st, const char *user_code, const char *user_oid,
                               const char *session_id, int64_t auth_time, int64_t now);

/* One poll of the token endpoint for the code hash at now: when the code's last poll
 * (on any node) is at least min_gap_s before now it is stamped now and *out receives the
 * code (owned by the caller); otherwise the poll is too fast, nothing is written and
 * KL_EPERM is returned. KL_ENOTFOUND (no such code), KL_EINVAL, KL_EUNAVAIL, KL_EIO. */
int kl_store_devicecode_poll(kl_store *st, const unsigned char hash[32], int64_t now,
                             int64_t min_gap_s, kl_store_devicecode **out);

/* Spends an approved, unexpired code: sets redeemed_at = now unless it is already set.
 * 0 for the one caller (on any node) that spent it; KL_ECONFLICT for everyone else or
 * when it is not approved or has expired; KL_EINVAL, KL_EUNAVAIL, KL_EIO. */
int kl_store_devicecode_redeem(kl_store *st, const unsigned char hash[32], int64_t now);

void kl_store_devicecode_free(kl_store_devicecode *d);

/* --- loading everything (snapshot builder) --- */

/* Callbacks for kl_store_load_all; any may be NULL. The structs and strings passed are
 * valid only during the call. A non-zero return stops the walk and is returned. New
 * kinds of rows (roles, principals, ...) get new members here; callers zero the struct
 * so that members they do not know stay NULL. */
typedef struct kl_store_visitor {
    void *arg;
    int (*account)(void *arg, const kl_store_account *a);
    int (*key)(void *arg, const char *account_name, const kl_store_key *k);
    int (*deployment)(void *arg, const kl_store_deployment *d);
    int (*tenant)(void *arg, const kl_store_tenant *t);
    int (*principal)(void *arg, const kl_store_principal *p);
    int (*role_definition)(void *arg, const kl_store_role_definition *rd);
    int (*role_assignment)(void *arg, const kl_store_role_assignment *ra);
    int (*key_credential)(void *arg, const kl_store_key_credential *k);
    int (*federated_credential)(void *arg, const kl_store_federated_credential *f);
    int (*signing_key)(void *arg, const kl_store_signing_key *k);
    int (*app_secret)(void *arg, const kl_store_app_secret *s);
    int (*compute)(void *arg, const kl_store_compute *c);
    int (*identity)(void *arg, const kl_store_identity *i);
    /* A host (by lower-case ARM id) and a user-assigned identity attached to it (by its
     * principal's object id). */
    int (*identity_attachment)(void *arg, const char *host_id_lower, const char *object_id);
    /* Launch secrets whose lease has not ended (by site, then id). */
    int (*identity_header)(void *arg, const kl_store_identity_header *h);
    /* Applications with user sign-in settings (public client or redirect URIs), by app
     * id. */
    int (*application)(void *arg, const kl_store_application *a);
    /* One direct membership: member_id (any principal) is in group_id. */
    int (*group_member)(void *arg, const char *group_id, const char *member_id);
    /* Called first, with the store's generation the walk is consistent with. */
    int (*generation)(void *arg, int64_t gen);
} kl_store_visitor;

/* Walks the whole store inside one read transaction (a consistent view): every
 * account (by lower-case name), then every key (by account, slot), then every
 * deployment (by account, name), then the tenant, every principal (by object id),
 * every custom role (by name), every role assignment (by creation), every application
 * certificate and every federated credential (by app id, creation), every signing key
 * (oldest first), every client secret (by creation), then every site and VM (by kind,
 * lower-case name), every managed identity (by lower-case resource id), every
 * attachment (by host, identity), every launch secret, and every group membership (by
 * group, member). Returns 0, a
 * store error, or the first non-zero callback result. */
int kl_store_load_all(kl_store *st, const kl_store_visitor *v);

/* --- loading what changed (incremental snapshots) ---
 *
 * Every write transaction logs, with its generation, what it changed (store_changes):
 * the role assignments of one principal (KL_STORE_CHANGE_PRINCIPAL_GRANTS, key: its
 * object id), or anything (KL_STORE_CHANGE_ALL). The log keeps the last
 * KL_STORE_CHANGES_KEPT generations. */
#define KL_STORE_CHANGE_ALL "all"
#define KL_STORE_CHANGE_PRINCIPAL_GRANTS "principal-grants"

/* What changed after a generation. Owned by the caller (kl_store_changes_free). */
typedef struct kl_store_changes {
    int64_t generation; /* the store's generation this answer is consistent with */
    /* True: a full build is needed (a change of another kind, a generation no longer
     * logged, more than KL_STORE_MAX_CHANGED principals); the rest is empty. */
    bool full;
    char **principals; /* lower-case object ids whose role assignments changed */
    size_t n_principals;
    /* Every current assignment of those principals (none: they have none now). */
    kl_store_role_assignment **assignments;
    size_t n_assignments;
} kl_store_changes;

/* Reads, in one read transaction, what changed after generation since (a generation
 * this node built from: kl_store_visitor.generation, or an earlier answer's). On
 * SQLite a write made around the store (another connection that logs nothing: a
 * shell, a restore) since it opened or last ran kl_store_load_all also means full. Nothing
 * changed: generation == since, full false, no principals. *out owned by the caller.
 * KL_EINVAL, KL_EUNAVAIL, store errors, KL_ENOMEM. */
int kl_store_load_since(kl_store *st, int64_t since, kl_store_changes **out);
void kl_store_changes_free(kl_store_changes *c);

/* --- moving an installation --- */

/* Copies every row of from into to (keyless store migrate): one read transaction on
 * from, one write transaction on to, surrogate keys and sealed values as they are (so
 * keys and credentials stay valid under the same KEK). to must hold nothing but its own
 * first-start rows, which the source's replace; else KL_ECONFLICT and nothing is
 * written. *rows receives the number of rows copied. Store errors otherwise. */
int kl_store_copy(kl_store *from, kl_store *to, int64_t *rows);

/* What kl_store_copy does with a table of the schema (column NULL), or with one column
 * of it: KL_STORE_COPY_COPIED, KL_STORE_COPY_LEFT_OUT (a table deliberately not copied,
 * with its reason in store_copy.c; any column of it), or KL_STORE_COPY_UNKNOWN (neither:
 * a migration added it and the copy was not told). */
typedef enum kl_store_copy_fate {
    KL_STORE_COPY_UNKNOWN = 0,
    KL_STORE_COPY_COPIED,
    KL_STORE_COPY_LEFT_OUT
} kl_store_copy_fate;
kl_store_copy_fate kl_store_copy_fate_of(const char *table, const char *column);

/* --- the KEK check value --- */

/* Reads the sealed check value; *sealed owned by the caller (free; not secret, it is
 * a sealed constant). KL_ENOTFOUND before the first start wrote one. */
int kl_store_get_kek_check(kl_store *st, char **sealed);
/* Stores the sealed check value unless one is there already (the first node to start
 * wins; read it back with kl_store_get_kek_check). */
int kl_store_put_kek_check(kl_store *st, const char *sealed);

/* --- change propagation between nodes --- */

/* The store's generation: a counter every committed change adds one to, in the same
 * transaction. KL_EUNAVAIL when the server cannot be reached. */
int kl_store_generation(kl_store *st, int64_t *gen);

/* Starts watching for changes committed by any node (PostgreSQL): a thread LISTENs on
 * its own connection and also polls the generation every KL_STORE_POLL_MS, so a lost
 * notification is caught; changed(arg) is called on that thread whenever the
 * generation moves to one this store did not commit itself (its own writer rebuilds
 * before it answers, and a rebuild reads everything committed before it). changed
 * returns 0 once the change is applied; anything else means it is not, and it is
 * called again on every wake-up (at most KL_STORE_POLL_MS apart, while the database
 * is reachable) until it returns 0, whatever this store commits meanwhile. Does
 * nothing on SQLite (one node). Stopped by kl_store_close. KL_EINVAL, KL_ENOMEM. */
int kl_store_watch(kl_store *st, int (*changed)(void *arg), void *arg);
/* False while the watcher (or the last statement) found the database unreachable. */
bool kl_store_reachable(const kl_store *st);

/* --- freeing results; NULL is fine. Sealed values are cleansed. --- */
void kl_store_account_free(kl_store_account *a);
void kl_store_accounts_free(kl_store_account **a, size_t n);
void kl_store_keys_free(kl_store_key *k, size_t n);
void kl_store_deployment_free(kl_store_deployment *d);
void kl_store_deployments_free(kl_store_deployment **d, size_t n);
void kl_store_tenant_free(kl_store_tenant *t);
void kl_store_principal_free(kl_store_principal *p);
void kl_store_principals_free(kl_store_principal **p, size_t n);
void kl_store_application_free(kl_store_application *a);
void kl_store_applications_free(kl_store_application **a, size_t n);
void kl_store_role_definition_free(kl_store_role_definition *rd);
void kl_store_role_definitions_free(kl_store_role_definition **rd, size_t n);
void kl_store_role_assignment_free(kl_store_role_assignment *ra);
void kl_store_role_assignments_free(kl_store_role_assignment **ra, size_t n);
void kl_store_signing_keys_free(kl_store_signing_key **k, size_t n);
void kl_store_app_secrets_free(kl_store_app_secret **s, size_t n);

#endif
