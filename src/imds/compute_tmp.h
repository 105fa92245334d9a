/* TEMPORARY: the snapshot's compute types (policy/snapshot.h), until that lands. */
#ifndef KL_IMDS_COMPUTE_TMP_H
#define KL_IMDS_COMPUTE_TMP_H
#include <stdbool.h>
#include <stddef.h>
typedef struct kl_mi {
    const char *object_id;
    const char *client_id;
    const char *resource_id;
    bool user_assigned;
} kl_mi;
typedef enum kl_compute_kind { KL_COMPUTE_SITE = 0, KL_COMPUTE_VM } kl_compute_kind;
typedef struct kl_compute {
    kl_compute_kind kind;
    const char *id;
    const char *name;
    const kl_mi *system;
    const kl_mi *const *user;
    size_t n_user;
} kl_compute;
#endif
