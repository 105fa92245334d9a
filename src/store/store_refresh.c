/* Refresh tokens of users (see store.h): opaque to clients, stored only as the SHA-256
 * of the token, grouped in families that rotation keeps and reuse revokes. Writers are
 * serialised across nodes (BEGIN IMMEDIATE; PostgreSQL's advisory write lock), so the
 * check-then-mark of a redemption inside one transaction is atomic on every node. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "store/query.h"
#include "store/store.h"

#define RT_COL(t, member)                                                                          \
    {                                                                                              \
        KL_COL_##t, offsetof(kl_store_refresh, member)                                             \
    }

static const kl_col refresh_cols[] = {
    RT_COL(TEXT, family_id), RT_COL(TEXT, user_oid),   RT_COL(TEXT, client_id),
    RT_COL(TEXT, scope),     RT_COL(TEXT, session_id), RT_COL(I64, created_at),
    RT_COL(I64, expires_at), RT_COL(I64, used_at),     RT_COL(BOOL, revoked),
};
static const kl_rowmap map_refresh = KL_ROWMAP(kl_store_refresh, refresh_cols);

#define REFRESH_COLS                                                                               \
    "SELECT t.family_id, t.user_oid, t.client_id, t.scope, t.session_id, t.created_at, "           \
    "t.expires_at, t.used_at, CASE WHEN f.revoked = 1 OR t.revoked = 1 THEN 1 ELSE 0 END "         \
    "FROM refresh_tokens t JOIN refresh_families f ON f.family_id = t.family_id "

static bool valid_refresh(const kl_store_refresh *r)
{
    return r && r->family_id && r->user_oid && r->client_id && r->scope && r->family_id[0] &&
           strlen(r->family_id) <= KL_MAX_PRINCIPAL_ID &&
           strlen(r->user_oid) <= KL_MAX_PRINCIPAL_ID &&
           strlen(r->client_id) <= KL_MAX_PRINCIPAL_ID && strlen(r->scope) <= KL_MAX_SCOPE_TEXT &&
           (!r->session_id || strlen(r->session_id) <= KL_MAX_PRINCIPAL_ID);
}

/* Inserts the token row (inside the caller's write transaction). */
static int insert_token(kl_store *st, const unsigned char hash[KL_STORE_REFRESH_HASH_LEN],
                        const kl_store_refresh *r, const char *family_id)
{
    int err =
        kl_q_exec(st,
                  "INSERT INTO refresh_tokens (hash, family_id, user_oid, client_id, scope, "
                  "session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                  KL_ARGS(kl_vb(hash, KL_STORE_REFRESH_HASH_LEN), kl_vt(family_id),
                          kl_vt(r->user_oid), kl_vt(r->client_id), kl_vt(r->scope),
                          kl_vt(r->session_id), kl_vi(r->created_at), kl_vi(r->expires_at)),
                  NULL);
    return err == KL_ECONFLICT ? KL_EEXIST : err;
}

int kl_store_refresh_create(kl_store *st, const unsigned char hash[KL_STORE_REFRESH_HASH_LEN],
                            const kl_store_refresh *r)
{
    if (!st || !hash || !valid_refresh(r))
        return KL_EINVAL;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    err = kl_q_exec(st,
                    "INSERT INTO refresh_families (family_id, user_oid, client_id, session_id, "
                    "created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (family_id) DO NOTHING",
                    KL_ARGS(kl_vt(r->family_id), kl_vt(r->user_oid), kl_vt(r->client_id),
                            kl_vt(r->session_id), kl_vi(r->created_at)),
                    NULL);
    if (!err)
        err = insert_token(st, hash, r, r->family_id);
    return kl_q_end_unannounced(st, err);
}

int kl_store_refresh_get(kl_store *st, const unsigned char hash[KL_STORE_REFRESH_HASH_LEN],
                         kl_store_refresh **out)
{
    if (!st || !hash || !out)
        return KL_EINVAL;
    *out = NULL;
    return kl_q_one_locked(st, REFRESH_COLS "WHERE t.hash = ?1",
                           KL_ARGS(kl_vb(hash, KL_STORE_REFRESH_HASH_LEN)), &map_refresh,
                           (void **)out);
}

int kl_store_refresh_rotate(kl_store *st, const unsigned char old[KL_STORE_REFRESH_HASH_LEN],
                            const unsigned char next_hash[KL_STORE_REFRESH_HASH_LEN],
                            const kl_store_refresh *next, int64_t now)
{
    if (!st || !old || !next_hash || !next || !next->user_oid || !next->client_id || !next->scope ||
        strlen(next->scope) > KL_MAX_SCOPE_TEXT)
        return KL_EINVAL;
    kl_store_refresh *cur = NULL;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    err = kl_q_one(st, REFRESH_COLS "WHERE t.hash = ?1",
                   KL_ARGS(kl_vb(old, KL_STORE_REFRESH_HASH_LEN)), &map_refresh, (void **)&cur);
    if (err)
        goto out;
    if (cur->revoked) {
        err = KL_EPERM;
        goto out;
    }
    int64_t changed = 0;
    err = kl_q_exec(st, "UPDATE refresh_tokens SET used_at = ?1 WHERE hash = ?2 AND used_at = 0",
                    KL_ARGS(kl_vi(now), kl_vb(old, KL_STORE_REFRESH_HASH_LEN)), &changed);
    if (!err && changed == 0) {
        /* Presented again after it was redeemed: whoever holds the family's newest
         * token may be the thief, so none of them stays valid (security.md T15). The
         * revocation commits; the answer is still a refusal. */
        err = kl_q_exec(st, "UPDATE refresh_families SET revoked = 1 WHERE family_id = ?1",
                        KL_ARGS(kl_vt(cur->family_id)), NULL);
        err = kl_q_end_unannounced(st, err);
        kl_store_refresh_free(cur);
        return err ? err : KL_EEXIST;
    }
    if (!err)
        err = insert_token(st, next_hash, next, cur->family_id);
out:
    kl_store_refresh_free(cur);
    return kl_q_end_unannounced(st, err);
}

/* One UPDATE of refresh_families in its own transaction; lower: key is a GUID (kept in
 * lower case), not a session id (compared as it is). */
static int revoke_where(kl_store *st, const char *sql, const char *key, bool lower)
{
    if (!st || !key || !*key || strlen(key) > KL_MAX_PRINCIPAL_ID)
        return KL_EINVAL;
    char *lk = lower ? kl_q_lower(key) : strdup(key);
    if (!lk)
        return KL_ENOMEM;
    int err = kl_q_begin_unannounced(st);
    if (!err) {
        err = kl_q_exec(st, sql, KL_ARGS(kl_vt(lk)), NULL);
        err = kl_q_end_unannounced(st, err);
    }
    free(lk);
    return err;
}

int kl_store_refresh_revoke_family(kl_store *st, const char *family_id)
{
    return revoke_where(st, "UPDATE refresh_families SET revoked = 1 WHERE family_id = ?1",
                        family_id, true);
}

int kl_store_refresh_revoke_user(kl_store *st, const char *user_oid)
{
    return revoke_where(st, "UPDATE refresh_families SET revoked = 1 WHERE user_oid = ?1", user_oid,
                        true);
}

int kl_store_refresh_revoke_session(kl_store *st, const char *session_id)
{
    return revoke_where(st, "UPDATE refresh_families SET revoked = 1 WHERE session_id = ?1",
                        session_id, false);
}

int kl_store_refresh_prune(kl_store *st, int64_t now)
{
    if (!st)
        return KL_EINVAL;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    err = kl_q_exec(st, "DELETE FROM refresh_tokens WHERE expires_at < ?1", KL_ARGS(kl_vi(now)),
                    NULL);
    if (!err)
        err = kl_q_exec(st,
                        "DELETE FROM refresh_families WHERE NOT EXISTS (SELECT 1 FROM "
                        "refresh_tokens t WHERE t.family_id = refresh_families.family_id)",
                        KL_NOARGS, NULL);
    return kl_q_end_unannounced(st, err);
}

void kl_store_refresh_free(kl_store_refresh *r)
{
    kl_map_free(&map_refresh, r);
}
