/* The directory: the tenant's principals (service principals, managed identities, users,
 * groups) and application registrations. This module holds the directory's rules —
 * principal types, how names look, how ids are made — on top of the store's rows, so the
 * control plane and later the token service share them. */
#ifndef KL_DIRECTORY_DIRECTORY_H
#define KL_DIRECTORY_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

typedef enum kl_principal_type {
    KL_PRINCIPAL_SERVICE_PRINCIPAL = 0, /* an application's service principal */
    KL_PRINCIPAL_MANAGED_IDENTITY,      /* a service principal without credentials */
    KL_PRINCIPAL_USER,
    KL_PRINCIPAL_GROUP
} kl_principal_type;

/* "ServicePrincipal", "ManagedIdentity", "User", "Group" (the store's spelling); "?" for
 * anything else. Static strings. */
const char *kl_directory_principal_type_name(kl_principal_type t);
/* The inverse of kl_directory_principal_type_name (exact spelling). 0 or KL_EINVAL. */
int kl_directory_principal_type_parse(const char *s, kl_principal_type *out);
/* The principalType Azure shows in role assignments: managed identities are
 * "ServicePrincipal" there, as in Azure. */
const char *kl_directory_principal_type_arm(kl_principal_type t);

/* Application display names: 1..KL_DIRECTORY_MAX_APP_NAME characters of valid UTF-8,
 * without control characters. */
bool kl_directory_valid_app_name(const char *s, size_t n);
/* The same rule with another bound: 1..max_chars characters of valid UTF-8 without
 * control characters (users' and groups' display names). */
bool kl_directory_valid_name(const char *s, size_t n, size_t max_chars);

/* Registers an application called display_name with its service principal (enabled):
 * the object ids and the client id are fresh GUIDs from the OS CSPRNG. One store
 * transaction. On success *out (may be NULL) receives the stored row (free with
 * kl_store_application_free). Errors: KL_EINVAL (bad name), KL_ECONFLICT (the name is
 * taken, case-insensitively), KL_ECRYPTO, a store error. */
int kl_directory_create_application(kl_store *st, const char *display_name,
                                    kl_store_application **out);
/* The same without the service principal, as Graph's POST /applications: the principal
 * comes from kl_directory_create_service_principal. */
int kl_directory_register_application(kl_store *st, const char *display_name,
                                      kl_store_application **out);
/* Creates the (enabled) service principal of the application id_or_app_id with a fresh
 * object id; *out (may be NULL) receives it (free with kl_store_principal_free).
 * KL_ENOTFOUND, KL_ECONFLICT (it has one), a store error. */
int kl_directory_create_service_principal(kl_store *st, const char *id_or_app_id,
                                          kl_store_principal **out);

/* Finds an application by object id, client id or display name (in that order; ids are
 * GUIDs, names are compared case-insensitively). KL_ENOTFOUND if none. */
int kl_directory_find_application(kl_store *st, const char *key, kl_store_application **out);

#endif
