/* Refresh tokens of users (see store.h): opaque to clients, stored only as the SHA-256
 * of the token, grouped in families that rotation keeps and reuse revokes. */
#include <stddef.h>

#include "common/err.h"
#include "store/store.h"

int kl_store_refresh_revoke_session(kl_store *st, const char *session_id)
{
    if (!st || !session_id || !*session_id)
        return KL_EINVAL;
    return 0; /* no refresh tokens are issued yet */
}
