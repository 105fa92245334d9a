/* Names and identifiers every layer agrees on, each written once: the directory's
 * principal types (the store's CHECK constraint, the directory's enum names, Graph's and
 * ARM's bodies) and the role GUIDs that carry rules of their own (the root owner rule
 * in the store, the built-in role table in rbac). Values are Azure's. */
#ifndef KL_COMMON_IDS_H
#define KL_COMMON_IDS_H

#define KL_PRINCIPAL_TYPE_SP "ServicePrincipal"
#define KL_PRINCIPAL_TYPE_MI "ManagedIdentity"
#define KL_PRINCIPAL_TYPE_USER "User"
#define KL_PRINCIPAL_TYPE_GROUP "Group"

/* Owner: the bootstrap assignment, the root owner rule, and a built-in role. */
#define KL_ROLE_OWNER_ID "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"

#endif
