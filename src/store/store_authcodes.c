/* Browser sign-in's tables (see store.h): authorization codes, redeemed at most once on
 * whichever node the client reaches, and the sign-in sessions behind the kl_session
 * cookie. Only hashes of the code and the cookie are stored. None of this is in a
 * snapshot: every write commits without moving the store's generation. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

#define COL KL_MAP_COL

static const kl_col code_cols[] = {
    COL(TEXT, kl_store_authcode, client_id),      COL(TEXT, kl_store_authcode, user_oid),
    COL(TEXT, kl_store_authcode, redirect_uri),   COL(TEXT, kl_store_authcode, scope),
    COL(TEXT, kl_store_authcode, code_challenge), COL(TEXT, kl_store_authcode, nonce),
    COL(TEXT, kl_store_authcode, session_id),     COL(I64, kl_store_authcode, auth_time),
    COL(I64, kl_store_authcode, created_at),      COL(I64, kl_store_authcode, expires_at),
};
static const kl_rowmap code_map = KL_ROWMAP(kl_store_authcode, code_cols);

static const kl_col session_cols[] = {
    COL(TEXT, kl_store_session, id),        COL(TEXT, kl_store_session, user_oid),
    COL(I64, kl_store_session, auth_time),  COL(I64, kl_store_session, created_at),
    COL(I64, kl_store_session, expires_at),
};
static const kl_rowmap session_map = KL_ROWMAP(kl_store_session, session_cols);

#define CODE_COLS                                                                                  \
    "client_id, user_oid, redirect_uri, scope, code_challenge, nonce, session_id, auth_time, "     \
    "created_at, expires_at"

int kl_store_put_authcode(kl_store *st, const unsigned char hash[32], const kl_store_authcode *c,
                          int64_t now)
{
    if (!st || !hash || !c || !kl_q_text_ok(c->client_id, KL_MAX_PRINCIPAL_ID, false) ||
        !kl_q_text_ok(c->user_oid, KL_MAX_PRINCIPAL_ID, false) ||
        !kl_q_text_ok(c->redirect_uri, KL_MAX_URL, false) ||
        !kl_q_text_ok(c->scope, KL_MAX_AUTHZ_SCOPE, false) ||
        !kl_q_text_ok(c->code_challenge, KL_MAX_PKCE_VERIFIER, true) ||
        !kl_q_text_ok(c->nonce, KL_MAX_AUTHZ_NONCE, true) ||
        !kl_q_text_ok(c->session_id, KL_MAX_PRINCIPAL_ID, true) || c->expires_at <= c->created_at)
        return KL_EINVAL;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    /* A code past its expiry can never be redeemed: nothing is lost by forgetting it. */
    err = kl_q_exec(st, "DELETE FROM auth_codes WHERE expires_at < ?1", KL_ARGS(kl_vi(now)), NULL);
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO auth_codes (code_hash, " CODE_COLS ", used_at) VALUES (?1, "
                        "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL)",
                        KL_ARGS(kl_vb(hash, 32), kl_vt(c->client_id), kl_vt(c->user_oid),
                                kl_vt(c->redirect_uri), kl_vt(c->scope), kl_vt(c->code_challenge),
                                kl_vt(c->nonce), kl_vt(c->session_id), kl_vi(c->auth_time),
                                kl_vi(c->created_at), kl_vi(c->expires_at)),
                        NULL);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
    return kl_q_end_unannounced(st, err);
}

int kl_store_redeem_authcode(kl_store *st, const unsigned char hash[32], int64_t now,
                             kl_store_authcode **out)
{
    if (!st || !hash || !out)
        return KL_EINVAL;
    *out = NULL;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    /* One statement decides: on PostgreSQL a second node's UPDATE waits for the first's
     * row lock and then finds used_at set; SQLite serialises the writers. */
    err = kl_q_one(st,
                   "UPDATE auth_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL "
                   "AND expires_at > ?2 RETURNING " CODE_COLS,
                   KL_ARGS(kl_vb(hash, 32), kl_vi(now)), &code_map, (void **)out);
    if (err == KL_ENOTFOUND) {
        int64_t used = 0;
        err = kl_q_int(st,
                       "SELECT CASE WHEN used_at IS NULL THEN 0 ELSE 1 END FROM auth_codes "
                       "WHERE code_hash = ?1",
                       KL_ARGS(kl_vb(hash, 32)), &used);
        if (!err)
            err = used ? KL_ECONFLICT : KL_EPERM;
    }
    /* A refusal wrote nothing; committing it or not is the same. */
    err = kl_q_end_unannounced(st, err);
    if (err) {
        kl_map_free(&code_map, *out);
        *out = NULL;
    }
    return err;
}

void kl_store_authcode_free(kl_store_authcode *c)
{
    kl_map_free(&code_map, c);
}

int kl_store_put_session(kl_store *st, const unsigned char cookie_hash[32],
                         const kl_store_session *s, int64_t now)
{
    if (!st || !cookie_hash || !s || !s->id || !kl_uuid_valid(s->id, strlen(s->id)) ||
        !kl_q_text_ok(s->user_oid, KL_MAX_PRINCIPAL_ID, false) || s->expires_at <= s->created_at)
        return KL_EINVAL;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    /* An expired or revoked session opens nothing; its row only answers "no". Revoked
     * ones are kept until they would have expired anyway. */
    err = kl_q_exec(st, "DELETE FROM signin_sessions WHERE expires_at < ?1", KL_ARGS(kl_vi(now)),
                    NULL);
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO signin_sessions (id, cookie_hash, user_oid, auth_time, "
                        "created_at, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                        KL_ARGS(kl_vt(s->id), kl_vb(cookie_hash, 32), kl_vt(s->user_oid),
                                kl_vi(s->auth_time), kl_vi(s->created_at), kl_vi(s->expires_at)),
                        NULL);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
    return kl_q_end_unannounced(st, err);
}

int kl_store_get_session(kl_store *st, const unsigned char cookie_hash[32], int64_t now,
                         kl_store_session **out)
{
    if (!st || !cookie_hash || !out)
        return KL_EINVAL;
    *out = NULL;
    return kl_q_one_locked(st,
                           "SELECT id, user_oid, auth_time, created_at, expires_at FROM "
                           "signin_sessions WHERE cookie_hash = ?1 AND revoked_at = 0 AND "
                           "expires_at > ?2",
                           KL_ARGS(kl_vb(cookie_hash, 32), kl_vi(now)), &session_map, (void **)out);
}

int kl_store_revoke_session(kl_store *st, const char *id, int64_t now)
{
    if (!st || !id || !kl_uuid_valid(id, strlen(id)))
        return KL_EINVAL;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    int64_t changed = 0, dummy = 0;
    err = kl_q_int(st, "SELECT 1 FROM signin_sessions WHERE id = ?1", KL_ARGS(kl_vt(id)), &dummy);
    if (!err)
        err = kl_q_exec(st,
                        "UPDATE signin_sessions SET revoked_at = ?2 WHERE id = ?1 AND "
                        "revoked_at = 0",
                        KL_ARGS(kl_vt(id), kl_vi(now > 0 ? now : 1)), &changed);
    return kl_q_end_unannounced(st, err);
}

int kl_store_session_live(kl_store *st, const char *id, int64_t now, bool *live)
{
    if (!st || !id || !live)
        return KL_EINVAL;
    *live = false;
    int64_t one = 0;
    kl_q_lock(st);
    int err = kl_q_int(st,
                       "SELECT 1 FROM signin_sessions WHERE id = ?1 AND revoked_at = 0 AND "
                       "expires_at > ?2",
                       KL_ARGS(kl_vt(id), kl_vi(now)), &one);
    kl_q_unlock(st);
    if (err == KL_ENOTFOUND)
        return 0;
    if (!err)
        *live = true;
    return err;
}

void kl_store_session_free(kl_store_session *s)
{
    kl_map_free(&session_map, s);
}
