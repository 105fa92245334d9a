/* Internal to mgmt/: Azure's identity block (ManagedServiceIdentity) of the resources that
 * carry managed identities — what a client may PUT or PATCH, how it becomes the store's
 * kl_store_identity_spec (with Azure's linked authorization on each user-assigned
 * identity), and how it is shown — and the bodies of user-assigned identities. */
#ifndef KL_MGMT_IDENTITY_H
#define KL_MGMT_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>

#include "common/util.h"
#include "mgmt/arm.h"
#include "store/store.h"

struct kl_mgmt_call;

/* The action Azure checks on each user-assigned identity a write names (Managed
 * Identity Operator's "userAssignedIdentities/ * /assign/action" covers it). */
#define KL_MI_ASSIGN_ACTION "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"

/* A validated identity member. Strings are owned. */
typedef struct kl_identity_input {
    bool given;  /* the body had an identity object (absent or null: false) */
    bool system; /* type names SystemAssigned */
    bool user;   /* type names UserAssigned */
    /* userAssignedIdentities: canonical ARM ids (fixed words respelled, names as given)
     * and, per id, whether its value was null (PATCH: detach it). */
    char **ids;
    bool *removed;
    size_t n;
} kl_identity_input;

/* Validates v (the body's "identity" member, may be NULL). patch allows null values in
 * userAssignedIdentities. 0, KL_ENOMEM, or KL_EINVAL with e set (400). */
int kl_identity_parse(const json_t *v, bool patch, kl_identity_input *in, kl_arm_error *e);
void kl_identity_input_free(kl_identity_input *in);

/* The identity member of a resource from its identities (kl_store_host_identities:
 * system first); *out NULL when it has none (the member is then left out). */
int kl_identity_json(kl_store_identity *const *ids, size_t n, const char *tenant_id, json_t **out);
/* A user-assigned identity as ARM shows it. NULL on allocation failure. */
json_t *kl_identity_uami_json(const kl_store_identity *i, const char *tenant_id);

/* What a write of a host asks of its identities, ready for the store. */
typedef struct kl_identity_prep {
    kl_identity_input in;
    char sys_oid[KL_UUID_LEN + 1], sys_cid[KL_UUID_LEN + 1];
    char **user; /* owned copies: the host's user-assigned identities after the write */
    size_t n_user;
    kl_store_identity_spec spec;
    bool has_spec; /* false: the body said nothing of identities; leave them */
} kl_identity_prep;

/* Reads the call body's identity member for a write of the host host_id (PUT, or PATCH
 * relative to its current identities), checks that every user-assigned identity it names
 * exists and that the caller holds KL_MI_ASSIGN_ACTION on it (403 LinkedAuthorizationFailed
 * otherwise, as Azure), and fills p. 0, or non-zero when the call was answered (an error). */
int kl_mgmt_identity_prepare(struct kl_mgmt_call *c, const char *host_id, bool patch,
                             kl_identity_prep *p);
void kl_identity_prep_free(kl_identity_prep *p);
/* Answers a store error of a host write that carried p (KL_ENOTFOUND: an identity went
 * away meanwhile; KL_EPERM: the root owner rule); false if err is not one of those. */
bool kl_mgmt_identity_write_failed(struct kl_mgmt_call *c, const char *host_id, int err);
/* Adds the identity member of the host host_id to o (nothing when it has none). 0 or a
 * store error. */
int kl_mgmt_identity_member(struct kl_mgmt_call *c, json_t *o, const char *host_id);

/* The ARM id of the site, VM or user-assigned identity the call's path names into out;
 * false when it names none of those. */
bool kl_mgmt_identity_scope(const kl_arm_names *n, char *out, size_t outlen);

#endif
