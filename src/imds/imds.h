/* The managed-identity endpoints on the host-local identity listener (KL_FACE_IMDS, plain
 * HTTP): the IMDS style, GET /metadata/identity/oauth2/token with "Metadata: true", for
 * the VM this node is configured as (--vm), and the App Service style, GET /msi/token
 * with X-IDENTITY-HEADER, for the site a launch secret belongs to. Both answer with
 * Azure's bodies (protocols.md 1.2-1.3, 2.2) and hand out the tokens of kl_mitoken.
 * Everything is read from the snapshot; the store is never touched. */
#ifndef KL_IMDS_IMDS_H
#define KL_IMDS_IMDS_H

#include <stdint.h>

#include "crypto/keys.h"
#include "http/server.h"
#include "policy/snapshot.h"

typedef struct kl_imds kl_imds;

typedef struct kl_imds_cfg {
    kl_snapshot_holder *holder; /* borrowed */
    const kl_keys *keys;        /* borrowed: the pepper of launch secrets' keyed hashes */
    const char *vm;             /* the VM this node serves on the IMDS path (copied); NULL
                                   or "": none (every IMDS request: "Identity not found") */
    int64_t token_lifetime_s;   /* 0: KL_MI_TOKEN_DEFAULT_LIFETIME_S */
} kl_imds_cfg;

/* KL_EINVAL (a lifetime out of range), KL_ENOMEM. *out owned by the caller. */
int kl_imds_new(const kl_imds_cfg *cfg, kl_imds **out);
void kl_imds_free(kl_imds *m);

/* Serves one request of the identity listener (any worker thread); always answers. */
void kl_imds_handle(kl_imds *m, kl_http_req *r);

#endif
