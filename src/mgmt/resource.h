/* Internal to mgmt/: the ARM resource bodies of accounts and deployments — validating
 * what a client PUTs and rendering what we answer — without any HTTP, so the exact
 * shapes are unit-tested. */
#ifndef KL_MGMT_RESOURCE_H
#define KL_MGMT_RESOURCE_H

#include <jansson.h>
#include <stdbool.h>

#include "mgmt/arm.h"
#include "store/store.h"

/* What an account or deployment body may carry: KL_ARM_MAX_* in common/limits.h. */
/* The location and tags of a tracked resource's body (absent: def_location, def_tags),
 * validated as for accounts. *location and *tags are malloc'd. 0, KL_ENOMEM, or
 * KL_EINVAL with e set (400). */
int kl_resource_parse_tracked(const json_t *body, const char *def_location, const char *def_tags,
                              char **location, char **tags, kl_arm_error *e);

/* A validated account body. Strings are malloc'd and owned. */
typedef struct kl_account_input {
    char *location;
    char *kind;       /* canonical: "OpenAI" | "AIServices" */
    char *sku;        /* JSON object text */
    char *tags;       /* JSON object text */
    char *properties; /* JSON object text of the kept extra properties */
    bool disable_local_auth;
    /* properties.networkAcls, validated and in canonical form (JSON object text), or NULL
     * when the account has none. */
    char *network_acls;
} kl_account_input;

/* Validates an account PUT (base NULL: absent fields take defaults) or PATCH (base =
 * the stored account: absent fields keep their values, properties are merged). name is
 * the account name from the path. 0, KL_ENOMEM, or KL_EINVAL with e set (400). */
int kl_resource_parse_account(const json_t *body, const char *name, const kl_store_account *base,
                              kl_account_input *in, kl_arm_error *e);
void kl_resource_account_input_free(kl_account_input *in);

/* The account as ARM shows it (GET, PUT, list). public_base_url like
 * "https://127.0.0.1:8443" gives properties.endpoint "{base}/accounts/{name}/".
 * NULL on allocation failure. */
json_t *kl_resource_account_json(const kl_store_account *a, const char *public_base_url);

/* A validated deployment body. Strings are malloc'd and owned; credential is cleansed
 * on free. */
typedef struct kl_deployment_input {
    char *sku;     /* JSON object text */
    char *model;   /* JSON object text of properties.model, or NULL */
    char *backend; /* "echo" | "upstream" */
    char *url;     /* upstream only: normalised (no trailing '/') */
    char *upstream_model;
    char *credential;      /* upstream only: the plain credential, or NULL */
    bool credential_given; /* the body had a "credential" member (a string, null or "") */
} kl_deployment_input;

/* Validates a deployment PUT body (NULL body = all defaults). name is the deployment
 * name from the path. 0, KL_ENOMEM, or KL_EINVAL with e set (400). */
int kl_resource_parse_deployment(const json_t *body, const char *name, kl_deployment_input *in,
                                 kl_arm_error *e);
void kl_resource_deployment_input_free(kl_deployment_input *in);

/* The deployment as ARM shows it; account_id is its account's ARM id. The credential
 * never appears, only properties.backend.hasCredential. NULL on allocation failure. */
json_t *kl_resource_deployment_json(const kl_store_deployment *d, const char *account_id);

/* regenerateKey body {"keyName":"Key1"|"Key2"} (case-insensitive) -> *slot 1 or 2.
 * 0 or KL_EINVAL with e set (400). */
int kl_resource_parse_key_name(const json_t *body, int *slot, kl_arm_error *e);

/* Checks an upstream base URL: http:// or https://, a host, at most KL_MAX_URL bytes,
 * printable ASCII without spaces, no user-info, query or fragment. */
bool kl_resource_valid_upstream_url(const char *url);

#endif
