/* Internal to mgmt/: the ARM request grammar without any HTTP — path patterns, resource
 * name rules, api-version, JSON body intake and ARM error bodies — so that all of it can
 * be unit-tested on its own. */
#ifndef KL_MGMT_ARM_H
#define KL_MGMT_ARM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

/* Route patterns. Literal segments match case-insensitively, as ARM does; "{key}"
 * captures one segment, validated by the rule for that key (see kl_arm_resolve_names).
 * "{scope}", allowed only as a pattern's first segment, captures zero or more segments:
 * everything before the pattern's remaining (fixed number of) segments, so
 * "/{scope}/providers/Microsoft.Authorization/roleAssignments" matches that suffix
 * under any ARM scope, the root (an empty capture) included. */
#define KL_ARM_SUB "/subscriptions/{subscription}"
#define KL_ARM_RG KL_ARM_SUB "/resourceGroups/{resourceGroup}"
#define KL_ARM_CS_PROVIDER "/providers/Microsoft.CognitiveServices"
#define KL_ARM_ACCOUNTS_IN_SUB KL_ARM_SUB KL_ARM_CS_PROVIDER "/accounts"
#define KL_ARM_ACCOUNTS_IN_RG KL_ARM_RG KL_ARM_CS_PROVIDER "/accounts"
#define KL_ARM_ACCOUNT KL_ARM_ACCOUNTS_IN_RG "/{account}"
#define KL_ARM_LIST_KEYS KL_ARM_ACCOUNT "/listKeys"
#define KL_ARM_REGENERATE_KEY KL_ARM_ACCOUNT "/regenerateKey"
/* keyless's own: when each key was created and last used (no secret in it). */
#define KL_ARM_LIST_KEY_USAGE KL_ARM_ACCOUNT "/listKeyUsage"
#define KL_ARM_DEPLOYMENTS KL_ARM_ACCOUNT "/deployments"
#define KL_ARM_DEPLOYMENT KL_ARM_DEPLOYMENTS "/{deployment}"

/* Resources that carry managed identities, and user-assigned identities themselves. */
#define KL_ARM_SITES_IN_SUB KL_ARM_SUB "/providers/Microsoft.Web/sites"
#define KL_ARM_SITES_IN_RG KL_ARM_RG "/providers/Microsoft.Web/sites"
#define KL_ARM_SITE KL_ARM_SITES_IN_RG "/{site}"
/* A launch secret of a site (keyless run): {launch} is the launch id, a GUID. */
#define KL_ARM_IDENTITY_HEADER KL_ARM_SITE "/identityHeaders/{launch}"
#define KL_ARM_VMS_IN_SUB KL_ARM_SUB "/providers/Microsoft.Compute/virtualMachines"
#define KL_ARM_VMS_IN_RG KL_ARM_RG "/providers/Microsoft.Compute/virtualMachines"
#define KL_ARM_VM KL_ARM_VMS_IN_RG "/{vm}"
#define KL_ARM_UAMIS_IN_SUB KL_ARM_SUB "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
#define KL_ARM_UAMIS_IN_RG KL_ARM_RG "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
#define KL_ARM_UAMI KL_ARM_UAMIS_IN_RG "/{identity}"
/* The system-assigned identity of the resource {scope}. */
#define KL_ARM_SYSTEM_IDENTITY "/{scope}/providers/Microsoft.ManagedIdentity/identities/default"

#define KL_ARM_AUTHZ "/{scope}/providers/Microsoft.Authorization"
#define KL_ARM_ROLE_ASSIGNMENTS KL_ARM_AUTHZ "/roleAssignments"
#define KL_ARM_ROLE_ASSIGNMENT KL_ARM_ROLE_ASSIGNMENTS "/{roleAssignment}"
#define KL_ARM_ROLE_DEFINITIONS KL_ARM_AUTHZ "/roleDefinitions"
#define KL_ARM_ROLE_DEFINITION KL_ARM_ROLE_DEFINITIONS "/{roleDefinition}"
#define KL_ARM_PERMISSIONS KL_ARM_AUTHZ "/permissions"
#define KL_ARM_CHECK_ACCESS "/providers/Microsoft.Authorization/checkAccess"

/* The directory, shaped like Microsoft Graph v1.0. */
#define KL_GRAPH_ORGANIZATION "/v1.0/organization"
#define KL_GRAPH_APPLICATIONS "/v1.0/applications"
#define KL_GRAPH_APPLICATION KL_GRAPH_APPLICATIONS "/{object}"
#define KL_GRAPH_ADD_PASSWORD KL_GRAPH_APPLICATION "/addPassword"
#define KL_GRAPH_REMOVE_PASSWORD KL_GRAPH_APPLICATION "/removePassword"
#define KL_GRAPH_SERVICE_PRINCIPALS "/v1.0/servicePrincipals"
#define KL_GRAPH_SERVICE_PRINCIPAL KL_GRAPH_SERVICE_PRINCIPALS "/{object}"
#define KL_GRAPH_FEDERATED_CREDENTIALS KL_GRAPH_APPLICATION "/federatedIdentityCredentials"
#define KL_GRAPH_FEDERATED_CREDENTIAL KL_GRAPH_FEDERATED_CREDENTIALS "/{credential}"
/* Users ({user}: an object id or a userPrincipalName) and security groups. */
#define KL_GRAPH_USERS "/v1.0/users"
#define KL_GRAPH_USER KL_GRAPH_USERS "/{user}"
#define KL_GRAPH_GROUPS "/v1.0/groups"
#define KL_GRAPH_GROUP KL_GRAPH_GROUPS "/{object}"
#define KL_GRAPH_GROUP_MEMBERS KL_GRAPH_GROUP "/members"
#define KL_GRAPH_GROUP_MEMBERS_REF KL_GRAPH_GROUP_MEMBERS "/$ref"
#define KL_GRAPH_GROUP_MEMBER_REF KL_GRAPH_GROUP_MEMBERS "/{member}/$ref"
#define KL_KEYLESS_SIGNING_KEYS "/keyless/signingKeys"
#define KL_KEYLESS_SIGNING_KEYS_ROTATE KL_KEYLESS_SIGNING_KEYS "/rotate"
#define KL_KEYLESS_SIGNINS "/keyless/signIns"
#define KL_KEYLESS_TENANT_SETTINGS "/keyless/tenantSettings"

#define KL_ARM_ACCOUNT_TYPE "Microsoft.CognitiveServices/accounts"
#define KL_ARM_DEPLOYMENT_TYPE "Microsoft.CognitiveServices/accounts/deployments"
#define KL_ARM_SITE_TYPE "Microsoft.Web/sites"
#define KL_ARM_VM_TYPE "Microsoft.Compute/virtualMachines"
#define KL_ARM_UAMI_TYPE "Microsoft.ManagedIdentity/userAssignedIdentities"
#define KL_ARM_SYSTEM_IDENTITY_TYPE "Microsoft.ManagedIdentity/identities"

#define KL_ARM_MAX_PARAMS 4    /* captures in one pattern */
#define KL_ARM_MAX_SEGMENTS 32 /* segments in a path we try to match */
/* An ARM account id: the fixed parts plus three names. */
#define KL_ARM_MAX_ID (128 + 3 * KL_MAX_NAME)

/* A refusal, ready to become {"error":{"code":..,"message":..}} with this status. The
 * message has room for a full scope and action (AuthorizationFailed names both). */
typedef struct kl_arm_error {
    int status;
    const char *code; /* static string */
    char message[2 * KL_MAX_SCOPE + 512];
} kl_arm_error;

/* Captures of one path match; values point into the matched path (not NUL-terminated). */
typedef struct kl_arm_match {
    size_t n;
    struct {
        const char *key; /* points into the pattern */
        size_t key_len;
        const char *val;
        size_t val_len;
    } p[KL_ARM_MAX_PARAMS];
} kl_arm_match;

/* The validated names of a request, NUL-terminated ("" when the route has none). */
typedef struct kl_arm_names {
    char subscription[KL_MAX_NAME + 1];
    char resource_group[KL_MAX_NAME + 1];
    char account[KL_MAX_NAME + 1];
    char deployment[KL_MAX_NAME + 1];
    /* {scope}: the canonical scope (kl_scope_parse: fixed words respelled, names as
     * given, no trailing '/'); "/" for the root. has_scope tells whether it was captured. */
    char scope[KL_MAX_SCOPE + 1];
    bool has_scope;
    char role_assignment[KL_MAX_NAME + 1]; /* a GUID, lower-cased */
    char role_definition[KL_MAX_NAME + 1]; /* a GUID, lower-cased */
    char object[KL_MAX_NAME + 1];          /* a directory object id or app id, lower-cased */
    char credential[KL_MAX_NAME + 1];      /* a federated credential's id (GUID), lower-cased */
    char site[KL_MAX_NAME + 1];            /* Microsoft.Web/sites */
    char launch[KL_MAX_NAME + 1];          /* a site's launch id (GUID), lower-cased */
    char vm[KL_MAX_NAME + 1];              /* Microsoft.Compute/virtualMachines */
    char identity[KL_MAX_NAME + 1];        /* Microsoft.ManagedIdentity/userAssignedIdentities */
    char user[KL_MAX_UPN + 1];    /* a user's object id or userPrincipalName, lower-cased */
    char member[KL_MAX_NAME + 1]; /* a group member's object id (GUID), lower-cased */
} kl_arm_names;

/* The scope a route acts on, from its pattern and the names its path captured: the
 * captured {scope} for "/{scope}/..." patterns; else the pattern up to its last capture
 * that names a resource (subscription, resource group, account, deployment, site, VM,
 * identity) with the captures filled in and the literal segments in the pattern's
 * (canonical) spelling; "/" when it has none (the directory, /keyless/..., tenant-wide
 * actions). So a new resource type needs only its route rows and its name rule.
 * Returns 0; KL_EINVAL (NULL arguments, an unknown capture, or a capture left empty);
 * KL_ETOOBIG when out is too small. */
int kl_arm_route_scope(const char *pattern, const kl_arm_names *n, char *out, size_t outlen);

/* Fills e (status, static code, formatted message). */
void kl_arm_error_set(kl_arm_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* {"error":{"code":code,"message":message}}; NULL on allocation failure. */
json_t *kl_arm_error_body(const char *code, const char *message);

/* True if path matches pattern (both start with '/'; segments split on '/'). Literal
 * segments compare case-insensitively; "{key}" matches one non-empty segment and is
 * recorded in *m (may be NULL). Empty segments in path never match. */
bool kl_arm_match_path(const char *pattern, const char *path, kl_arm_match *m);
/* True if every capture in pattern names a key kl_arm_resolve_names knows and the
 * pattern is well formed (used to check the route table at start). */
bool kl_arm_pattern_valid(const char *pattern);
/* Validates each capture by its key's rule and copies it into *names (zeroed first).
 * 0, or KL_EINVAL with e set: 400 InvalidResourceName (InvalidResourceGroupName for
 * resource groups, InvalidScope for a scope, InvalidRoleAssignmentId /
 * InvalidRoleDefinitionId for a non-GUID name, Request_BadRequest for a Graph object
 * id). */
int kl_arm_resolve_names(const kl_arm_match *m, kl_arm_names *names, kl_arm_error *e);

/* Name rules (s[0..n), not NUL-terminated). All reject control characters, "..", and
 * anything longer than KL_MAX_NAME. */
/* Subscription: 1-90 of letters, digits, - _ . ( ), not ending in '.' (GUIDs pass). */
bool kl_arm_valid_subscription(const char *s, size_t n);
/* Resource group: 1-90 of letters, digits, _ - . ( ), not ending in '.'. */
bool kl_arm_valid_resource_group(const char *s, size_t n);
/* Account: 2-64 of letters, digits and '-', starting and ending alphanumeric. */
bool kl_arm_valid_account_name(const char *s, size_t n);
/* Deployment: 2-64 of letters, digits, - _ . */
bool kl_arm_valid_deployment_name(const char *s, size_t n);
/* Site (App Service app): 2-60 of letters, digits and '-', not starting or ending in '-'. */
bool kl_arm_valid_site_name(const char *s, size_t n);
/* VM: 1-64 of letters, digits, - _ . ; starting with a letter or digit, not ending in
 * '.' or '-'. */
bool kl_arm_valid_vm_name(const char *s, size_t n);
/* User-assigned identity: 3-90 of letters, digits, '-' and '_', starting with a letter
 * or digit (Azure allows 128; keyless's names stop at KL_MAX_NAME). */
bool kl_arm_valid_identity_name(const char *s, size_t n);

/* True if the pattern starts with a {scope} capture. */
bool kl_arm_pattern_has_scope(const char *pattern);
/* Checks the raw request path (before the server collapsed duplicate slashes) of a
 * scope route: an empty segment anywhere but a final '/' makes the scope ambiguous.
 * 0, or KL_EINVAL with e = 400 InvalidScope. */
int kl_arm_check_raw_scope_path(const char *raw, size_t len, kl_arm_error *e);
/* Validates a scope string from a body or filter (s[0..n)) and writes its canonical form
 * ("/" for the root) into out[KL_MAX_SCOPE + 1]. 0, or KL_EINVAL with e = 400
 * InvalidScope (the scope itself is not echoed). */
int kl_arm_canonical_scope(const char *s, size_t n, char *out, kl_arm_error *e);

/* $filter expressions: terms joined by "and" (any case), each either a function call
 * without arguments, e.g. "atScope()", a function call with one quoted argument, e.g.
 * "assignedTo('<id>')", or "<property> eq '<value>'", with '' standing for a quote
 * inside a value. Whitespace between tokens is free. */
#define KL_ARM_MAX_FILTER_TERMS 4
typedef struct kl_arm_filter_term {
    bool call;                        /* atScope(), assignedTo('{id}') and the like */
    bool has_arg;                     /* a call with a quoted argument (in value) */
    char name[32];                    /* function or property name as given */
    char value[KL_MAX_ROLE_NAME + 1]; /* the unquoted value */
} kl_arm_filter_term;
/* Parses f into terms[0..*n) (at most KL_ARM_MAX_FILTER_TERMS). 0, or KL_EINVAL with e
 * = 400 code (e.g. "InvalidFilterInQueryString"; the filter is not echoed). */
int kl_arm_parse_filter(const char *f, kl_arm_filter_term *terms, size_t *n, const char *code,
                        kl_arm_error *e);

/* The api-versions keyless accepts per resource type, newest first, NULL-terminated. */
extern const char *const kl_arm_versions_accounts[];         /* accounts, keys */
extern const char *const kl_arm_versions_deployments[];      /* accounts/deployments */
extern const char *const kl_arm_versions_role_assignments[]; /* roleAssignments */
extern const char *const kl_arm_versions_role_definitions[]; /* roleDefinitions, permissions */
extern const char *const kl_arm_versions_sites[];            /* Microsoft.Web/sites */
extern const char *const kl_arm_versions_vms[];              /* Microsoft.Compute/virtualMachines */
extern const char *const kl_arm_versions_identities[];       /* Microsoft.ManagedIdentity */

/* Checks the api-version query value (NULL = absent) against supported (NULL-terminated,
 * newest first; compared case-insensitively, as ARM does). 0, or KL_EINVAL with e =
 * 400 MissingApiVersionParameter (absent or empty) or InvalidApiVersionParameter, whose
 * message lists the supported versions as ARM does ("The api-version '…' is invalid.
 * The supported versions are '…'."; the value is echoed only if it looks like a
 * version). */
int kl_arm_check_api_version(const char *value, const char *const *supported, kl_arm_error *e);

/* For a path no route matched: if it names a resource type under a provider namespace
 * (".../providers/{namespace}/{type}[/{name}/{type}...]", every segment a plain name),
 * KL_EINVAL with e = 404 InvalidResourceType ("The resource type '{type}' could not be
 * found in the namespace '{namespace}' for api version '{v}'.") or, without an
 * api-version, 400 MissingApiVersionParameter. KL_ENOTFOUND if the path is not of that
 * shape (the caller answers 404 NotFound). */
int kl_arm_unknown_type(const char *path, const char *api_version, kl_arm_error *e);

/* Parses a request body that must be a JSON object: not empty, at most
 * KL_MAX_JSON_DEPTH deep, valid UTF-8 JSON without duplicate keys. *out is owned by the
 * caller. 0, or KL_EINVAL with e = 400 InvalidRequestContent. */
int kl_arm_parse_body(const unsigned char *body, size_t len, json_t **out, kl_arm_error *e);
/* The same, but strings may contain \u0000 (JSON allows it): only for callers that
 * check every string's length themselves (KL_MGMT_BODY_CHECKED routes). */
int kl_arm_parse_body_nul(const unsigned char *body, size_t len, json_t **out, kl_arm_error *e);
/* True if the JSON text buf[0..len) nests arrays/objects at most max deep (strings are
 * skipped properly). Cheap pre-check before a full parse. */
bool kl_arm_json_depth_ok(const unsigned char *buf, size_t len, int max);

/* "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{a}"
 * into out. KL_ETOOBIG if it does not fit. */
int kl_arm_account_id(const char *subscription, const char *resource_group, const char *account,
                      char *out, size_t outlen);
/* The aad an API key of account_id's slot is sealed with:
 * "apikey:<lower-case account id>:<slot>". */
int kl_arm_apikey_aad(const char *account_id, int slot, char *out, size_t outlen);
/* Lower-cases ASCII letters in place. */
void kl_arm_lower(char *s);

/* --- building response bodies (jansson; shared by every ARM and Graph shape) --- */
/* Sets o[k] = v, taking v. Returns 0, or -1 when v is NULL (an allocation failed
 * before) or the set fails, so that a chain of sets stops at the first failure. */
int kl_arm_json_set(json_t *o, const char *k, json_t *v);
/* unix seconds t as an ISO 8601 UTC JSON string (new reference; NULL on allocation
 * failure). */
json_t *kl_arm_json_time(int64_t t);
/* s as a JSON string, or JSON null when s is NULL (new reference; NULL on allocation
 * failure). */
json_t *kl_arm_json_string_or_null(const char *s);

#endif
