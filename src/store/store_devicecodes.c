/* Device codes in the store (see store.h): one row per device-code sign-in, found by the
 * hash of its device_code (the token endpoint's polls) or by its user code (the
 * verification page). Every change is one conditional UPDATE whose row count says
 * whether this caller won, so two nodes racing decide or redeem a code once. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "store/query.h"
#include "store/store.h"

#define COL KL_MAP_COL

static const kl_col dc_cols[] = {
    COL(TEXT, kl_store_devicecode, user_code),  COL(TEXT, kl_store_devicecode, client_id),
    COL(TEXT, kl_store_devicecode, scope),      COL(TEXT, kl_store_devicecode, status),
    COL(TEXT, kl_store_devicecode, user_oid),   COL(TEXT, kl_store_devicecode, session_id),
    COL(I64, kl_store_devicecode, auth_time),   COL(I64, kl_store_devicecode, created_at),
    COL(I64, kl_store_devicecode, expires_at),  COL(I64, kl_store_devicecode, last_poll),
    COL(I64, kl_store_devicecode, redeemed_at), COL(TEXT, kl_store_devicecode, client_addr),
};
static const kl_rowmap dc_map = KL_ROWMAP(kl_store_devicecode, dc_cols);

#define DC_COLS                                                                                    \
    "SELECT user_code, client_id, scope, status, user_oid, session_id, auth_time, created_at, "    \
    "expires_at, last_poll, coalesce(redeemed_at, 0), client_addr FROM device_codes "

#define HASH_LEN 32

/* A normalised user code: KL_USER_CODE_LEN upper-case ASCII letters. */
static bool valid_user_code(const char *u)
{
    if (!u || strnlen(u, KL_USER_CODE_LEN + 1) != KL_USER_CODE_LEN)
        return false;
    for (size_t i = 0; i < KL_USER_CODE_LEN; i++)
        if (u[i] < 'A' || u[i] > 'Z')
            return false;
    return true;
}

kl_store_dc_status kl_store_dc_status_of(const kl_store_devicecode *d)
{
    if (d && d->status && !strcmp(d->status, "approved"))
        return KL_STORE_DC_APPROVED;
    if (d && d->status && !strcmp(d->status, "declined"))
        return KL_STORE_DC_DECLINED;
    return KL_STORE_DC_PENDING;
}

/* The codes of an address that still count against it at now. */
#define DC_LIVE                                                                                    \
    "FROM device_codes WHERE client_addr = ?1 AND expires_at > ?2 AND redeemed_at IS NULL AND "    \
    "status <> 'declined'"

int kl_store_devicecode_create(kl_store *st, const unsigned char hash[32],
                               const kl_store_devicecode *d, int64_t keep_s, int64_t max_live,
                               int64_t *free_at)
{
    if (!st || !hash || !d || !valid_user_code(d->user_code) ||
        !kl_q_text_ok(d->client_id, KL_MAX_PRINCIPAL_ID, false) ||
        !kl_q_text_ok(d->scope, KL_DEVICE_SCOPE_MAX, false) ||
        !kl_q_text_ok(d->client_addr, KL_MAX_DEVICE_CLIENT_ADDR, false) ||
        d->expires_at <= d->created_at || keep_s < 0 || max_live < 1)
        return KL_EINVAL;
    int64_t live = 0;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    /* Pruned here rather than by a timer: codes are made far less often than polled. */
    err = kl_q_exec(st, "DELETE FROM device_codes WHERE expires_at < ?1",
                    KL_ARGS(kl_vi(d->created_at - keep_s)), NULL);
    /* In the same transaction as the insert: another node's insert for this address
     * waits for this one to commit, and then counts it. */
    if (!err)
        err = kl_q_int(st, "SELECT count(*) " DC_LIVE,
                       KL_ARGS(kl_vt(d->client_addr), kl_vi(d->created_at)), &live);
    if (!err && live >= max_live) {
        int64_t first = 0;
        err = kl_q_int(st, "SELECT min(expires_at) " DC_LIVE,
                       KL_ARGS(kl_vt(d->client_addr), kl_vi(d->created_at)), &first);
        if (!err && free_at)
            *free_at = first;
        err = err ? err : KL_ETOOBIG;
    }
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO device_codes (code_hash, user_code, client_id, scope, status, "
                        "created_at, expires_at, client_addr) VALUES (?1, ?2, ?3, ?4, 'pending', "
                        "?5, ?6, ?7)",
                        KL_ARGS(kl_vb(hash, HASH_LEN), kl_vt(d->user_code), kl_vt(d->client_id),
                                kl_vt(d->scope), kl_vi(d->created_at), kl_vi(d->expires_at),
                                kl_vt(d->client_addr)),
                        NULL);
    return kl_q_end_unannounced(st, err);
}

int kl_store_devicecode_by_user_code(kl_store *st, const char *user_code, kl_store_devicecode **out)
{
    if (!st || !out || !valid_user_code(user_code))
        return KL_EINVAL;
    *out = NULL;
    return kl_q_one_locked(st, DC_COLS "WHERE user_code = ?1", KL_ARGS(kl_vt(user_code)), &dc_map,
                           (void **)out);
}

int kl_store_devicecode_decide(kl_store *st, const char *user_code, const char *user_oid,
                               const char *session_id, int64_t auth_time, int64_t now)
{
    if (!st || !valid_user_code(user_code) ||
        (user_oid && !kl_q_text_ok(user_oid, KL_MAX_DEVICE_SIGNIN_ID, false)) ||
        (user_oid && !kl_q_text_ok(session_id, KL_MAX_DEVICE_SIGNIN_ID, false)))
        return KL_EINVAL;
    int64_t changed = 0, one = 0;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    if (user_oid)
        err = kl_q_exec(st,
                        "UPDATE device_codes SET status = 'approved', user_oid = ?2, "
                        "session_id = ?3, auth_time = ?4 WHERE user_code = ?1 AND "
                        "status = 'pending' AND expires_at > ?5",
                        KL_ARGS(kl_vt(user_code), kl_vt(user_oid), kl_vt(session_id),
                                kl_vi(auth_time), kl_vi(now)),
                        &changed);
    else
        err = kl_q_exec(st,
                        "UPDATE device_codes SET status = 'declined' WHERE user_code = ?1 AND "
                        "status = 'pending' AND expires_at > ?2",
                        KL_ARGS(kl_vt(user_code), kl_vi(now)), &changed);
    if (!err && changed != 1) {
        err = kl_q_int(st, "SELECT 1 FROM device_codes WHERE user_code = ?1",
                       KL_ARGS(kl_vt(user_code)), &one);
        if (!err)
            err = KL_ECONFLICT;
    }
    return kl_q_end_unannounced(st, err);
}

int kl_store_devicecode_poll(kl_store *st, const unsigned char hash[32], int64_t now,
                             int64_t min_gap_s, kl_store_devicecode **out)
{
    if (!st || !hash || !out || min_gap_s < 0)
        return KL_EINVAL;
    *out = NULL;
    int64_t changed = 0;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    /* The stamp and the check are one statement, so two nodes polled at once cannot
     * both pass the gap. */
    err = kl_q_exec(st,
                    "UPDATE device_codes SET last_poll = ?2 WHERE code_hash = ?1 AND "
                    "last_poll <= ?3",
                    KL_ARGS(kl_vb(hash, HASH_LEN), kl_vi(now), kl_vi(now - min_gap_s)), &changed);
    if (!err)
        err = kl_q_one(st, DC_COLS "WHERE code_hash = ?1", KL_ARGS(kl_vb(hash, HASH_LEN)), &dc_map,
                       (void **)out);
    if (!err && changed != 1) {
        kl_map_free(&dc_map, *out);
        *out = NULL;
        err = KL_EPERM;
    }
    /* Nothing was written when the answer is "too fast" or "no such code": roll back
     * either way and keep the answer. */
    int end = kl_q_end_unannounced(st, err);
    return err ? err : end;
}

int kl_store_devicecode_redeem(kl_store *st, const unsigned char hash[32], int64_t now)
{
    if (!st || !hash)
        return KL_EINVAL;
    int64_t changed = 0;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    err = kl_q_exec(st,
                    "UPDATE device_codes SET redeemed_at = ?2 WHERE code_hash = ?1 AND "
                    "status = 'approved' AND redeemed_at IS NULL AND expires_at > ?2",
                    KL_ARGS(kl_vb(hash, HASH_LEN), kl_vi(now)), &changed);
    if (!err && changed != 1)
        err = KL_ECONFLICT;
    return kl_q_end_unannounced(st, err);
}

void kl_store_devicecode_free(kl_store_devicecode *d)
{
    kl_map_free(&dc_map, d);
}
