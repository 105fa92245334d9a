/* The pure parts of the managed-identity commands (identity, site, vm): which kind of
 * resource an ARM id names and the api-version to use with it, the ARM id of a
 * user-assigned identity named on the command line, and the identity block of a PATCH
 * that assigns or removes one identity. No I/O, so every rule can be unit-tested. */
#ifndef KL_CLI_IDENTITY_IDS_H
#define KL_CLI_IDENTITY_IDS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/buf.h"

#define KL_CLI_WEB_API_VERSION "2024-04-01" /* Microsoft.Web/sites */
#define KL_CLI_VM_API_VERSION "2024-07-01"  /* Microsoft.Compute/virtualMachines */
#define KL_CLI_MI_API_VERSION "2023-01-31"  /* Microsoft.ManagedIdentity */

typedef struct kl_cli_resource_type {
    const char *provider;    /* "Microsoft.Web/sites" */
    const char *api_version; /* what the CLI sends for it */
    const char *noun;        /* "site", "vm", "account": for messages */
} kl_cli_resource_type;

/* The type of the resource whose ARM id is id (/subscriptions/{s}/resourceGroups/{g}/
 * providers/{provider}/{name}, the fixed words in any case), for the resources that
 * carry identities: sites, VMs and accounts; NULL for anything else. Static data. */
const kl_cli_resource_type *kl_cli_resource_kind(const char *id);

/* Appends the ARM id of a managed identity given as x on the command line to out: x
 * itself when it starts with '/' (an id), else the id of the user-assigned identity
 * named x in sub and rg. 0; KL_EINVAL when x (or sub, rg) cannot be a path segment, or x
 * is an id that is not a user-assigned identity's; KL_ETOOBIG / KL_ENOMEM from out. */
int kl_cli_identity_id(const char *x, const char *sub, const char *rg, kl_buf *out);

/* The body of the PATCH that assigns (add) or removes (!add) one identity on a resource
 * whose identity member is now current (NULL: none): the system-assigned identity when
 * uami is NULL, else the user-assigned identity whose ARM id is uami. *body is a new
 * object {"identity": {...}}; *changes is false (and *body NULL) when there is nothing
 * to do (already assigned; not assigned). 0 or KL_ENOMEM. */
int kl_cli_identity_patch(const json_t *current, const char *uami, bool add, json_t **body,
                          bool *changes);

#endif
