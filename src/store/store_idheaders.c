/* Launch secrets in the store (see store.h): rows of identity_headers, each tied to a
 * site (deleted with it) and holding only the secret's keyed hash. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

#define IH_COL(t, member)                                                                          \
    {                                                                                              \
        KL_COL_##t, offsetof(kl_store_identity_header, member)                                     \
    }

static const kl_col identity_header_cols[] = {
    IH_COL(TEXT, id),        IH_COL(TEXT, site_name), IH_COL(KEY32, hash),
    IH_COL(I64, created_at), IH_COL(I64, expires_at),
};
static const kl_rowmap map_identity_header =
    KL_ROWMAP(kl_store_identity_header, identity_header_cols);

/* The site's surrogate key by its ARM id. Caller holds the lock. */
static int site_pk(kl_store *st, const char *site_id, int64_t *pk)
{
    char *lk = kl_q_lower(site_id);
    if (!lk)
        return KL_ENOMEM;
    int err = kl_q_int(st, "SELECT pk FROM compute_resources WHERE kind = 'site' AND id_lower = ?1",
                       KL_ARGS(kl_vt(lk)), pk);
    free(lk);
    return err;
}

int kl_store_put_identity_header(kl_store *st, const char *site_id, const char *id,
                                 const unsigned char hash[32], int64_t now, int64_t expires_at,
                                 bool *created)
{
    if (!st || !site_id || !id || !hash || !created || !kl_uuid_valid(id, strlen(id)) ||
        expires_at <= now)
        return KL_EINVAL;
    *created = false;
    char *lid = kl_q_lower(id);
    if (!lid)
        return KL_ENOMEM;
    int64_t pk = 0, owner = 0, alive = 0;
    int err = kl_q_begin(st, true);
    if (err) {
        free(lid);
        return err;
    }
    if ((err = site_pk(st, site_id, &pk)))
        goto out;
    if ((err = kl_q_exec(st, "DELETE FROM identity_headers WHERE expires_at <= ?1",
                         KL_ARGS(kl_vi(now)), NULL)))
        goto out;
    err = kl_q_int(st, "SELECT compute_pk FROM identity_headers WHERE id = ?1", KL_ARGS(kl_vt(lid)),
                   &owner);
    if (!err) {
        if (owner != pk) {
            err = KL_EEXIST;
            goto out;
        }
        err = kl_q_exec(st, "UPDATE identity_headers SET expires_at = ?1 WHERE id = ?2",
                        KL_ARGS(kl_vi(expires_at), kl_vt(lid)), NULL);
        goto out;
    }
    if (err != KL_ENOTFOUND)
        goto out;
    if ((err = kl_q_int(st, "SELECT count(*) FROM identity_headers", KL_NOARGS, &alive)))
        goto out;
    if (alive >= KL_MAX_IDENTITY_HEADERS) {
        err = KL_ETOOBIG;
        goto out;
    }
    err = kl_q_exec(st,
                    "INSERT INTO identity_headers (id, compute_pk, hash, created_at, expires_at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5)",
                    KL_ARGS(kl_vt(lid), kl_vi(pk), kl_vb(hash, 32), kl_vi(now), kl_vi(expires_at)),
                    NULL);
    if (!err)
        *created = true;
out:
    free(lid);
    return kl_q_end(st, err);
}

int kl_store_delete_identity_header(kl_store *st, const char *site_id, const char *id)
{
    if (!st || !site_id || !id)
        return KL_EINVAL;
    char *lid = kl_q_lower(id);
    if (!lid)
        return KL_ENOMEM;
    int64_t pk = 0, n = 0;
    int err = kl_q_begin(st, true);
    if (err) {
        free(lid);
        return err;
    }
    if (!(err = site_pk(st, site_id, &pk)))
        err = kl_q_exec(st, "DELETE FROM identity_headers WHERE id = ?1 AND compute_pk = ?2",
                        KL_ARGS(kl_vt(lid), kl_vi(pk)), &n);
    if (!err && n == 0)
        err = KL_ENOTFOUND;
    free(lid);
    return kl_q_end(st, err);
}

static int visit_identity_header(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->identity_header(v->arg, obj);
}

int kl_store_load_identity_headers(kl_store *st, const kl_store_visitor *v)
{
    if (!v->identity_header)
        return 0;
    /* Leases that ended are left out; the rest end on their own in the snapshot too. */
    int64_t now = kl_now_unix();
    return kl_q_each(st,
                     "SELECT h.id, c.name, h.hash, h.created_at, h.expires_at "
                     "FROM identity_headers h JOIN compute_resources c ON c.pk = h.compute_pk "
                     "WHERE h.expires_at > ?1 ORDER BY c.name_lower, h.id",
                     KL_ARGS(kl_vi(now)), &map_identity_header, visit_identity_header, (void *)v);
}
