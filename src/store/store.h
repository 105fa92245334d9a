/* The store: the source of truth for everything the control plane creates (accounts,
 * their API keys, deployments). Every change is one transaction and is acknowledged
 * only after COMMIT returns; the snapshot the hot path reads is rebuilt from here.
 *
 * Thread safety: a kl_store may be used from several threads (calls are serialised by
 * an internal mutex), but it blocks on disk I/O, so only the control thread and
 * start-up code should call it. Request handling on worker threads never does. */
#ifndef KL_STORE_STORE_H
#define KL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
} kl_store_key;

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
/* Deletes the account called name (case-insensitive) with its keys and deployments,
 * in one transaction. KL_ENOTFOUND if none. */
int kl_store_delete_account(kl_store *st, const char *name);

/* Replaces the given key slots of the account called name in one transaction (each
 * key's slot says which; n is 1 or 2, slots distinct). KL_ENOTFOUND (no account),
 * KL_EINVAL, KL_ECONFLICT (index in use). */
int kl_store_set_account_keys(kl_store *st, const char *name, const kl_store_key *keys, size_t n);
/* Replaces one slot (k->slot); the same as kl_store_set_account_keys with n = 1. */
int kl_store_regenerate_account_key(kl_store *st, const char *name, const kl_store_key *k);
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
/* Deletes one deployment. KL_ENOTFOUND if it (or the account) does not exist. */
int kl_store_delete_deployment(kl_store *st, const char *account_name, const char *name);

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
} kl_store_visitor;

/* Walks the whole store inside one read transaction (a consistent view): every
 * account (by lower-case name), then every key (by account, slot), then every
 * deployment (by account, name). Returns 0, a store error, or the first non-zero
 * callback result. */
int kl_store_load_all(kl_store *st, const kl_store_visitor *v);

/* --- freeing results; NULL is fine. Sealed values are cleansed. --- */
void kl_store_account_free(kl_store_account *a);
void kl_store_accounts_free(kl_store_account **a, size_t n);
void kl_store_keys_free(kl_store_key *k, size_t n);
void kl_store_deployment_free(kl_store_deployment *d);
void kl_store_deployments_free(kl_store_deployment **d, size_t n);

#endif
