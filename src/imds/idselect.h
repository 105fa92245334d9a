/* Which managed identity of a compute resource a token request means: Azure's selectors
 * (client id, object/principal id, the user-assigned identity's ARM id) and its default
 * rules when none is given. A pure function of the resource and the request. */
#ifndef KL_IMDS_IDSELECT_H
#define KL_IMDS_IDSELECT_H

#include <stddef.h>

#include "policy/snapshot.h"

/* The selector a request carries (at most one). */
typedef enum kl_idsel_kind {
    KL_IDSEL_DEFAULT = 0, /* none given */
    KL_IDSEL_CLIENT_ID,   /* client_id */
    KL_IDSEL_OBJECT_ID,   /* object_id, principal_id */
    KL_IDSEL_RESOURCE_ID, /* msi_res_id, mi_res_id: a user-assigned identity's ARM id */
} kl_idsel_kind;

/* What "no selector" means. */
typedef enum kl_idsel_rule {
    /* IMDS: the system-assigned identity, else the only user-assigned one, else the
     * caller must choose (KL_IDSEL_MULTIPLE). */
    KL_IDSEL_RULE_IMDS = 0,
    /* App Service: the system-assigned identity only. */
    KL_IDSEL_RULE_APPSERVICE
} kl_idsel_rule;

typedef enum kl_idsel_result {
    KL_IDSEL_OK = 0,
    KL_IDSEL_NOT_FOUND, /* no identity of c matches (or c carries none) */
    KL_IDSEL_MULTIPLE   /* no selector, no system-assigned, several user-assigned */
} kl_idsel_result;

/* Picks the identity of c (NULL: KL_IDSEL_NOT_FOUND) that value[0..len) selects as kind.
 * Ids compare without regard to case (GUIDs, ARM ids); an ARM id only ever selects a
 * user-assigned identity (a system-assigned one has no id of its own). On KL_IDSEL_OK
 * *out points into c. */
kl_idsel_result kl_idselect_pick(const kl_compute *c, kl_idsel_rule rule, kl_idsel_kind kind,
                                 const char *value, size_t len, const kl_mi **out);

#endif
