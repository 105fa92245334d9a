/* The token service's tables (see store.h): signing keys, whose first creation and
 * rotation are decided inside one write transaction so that several nodes starting or
 * rotating at once add one key between them, and the client secrets of applications. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

/* ---------------------------------------------------------------- signing keys */

#define SK_COLS                                                                                    \
    "SELECT kid, alg, sealed, created_at, active_at, retire_at, revoked_at FROM signing_keys "

/* Whether mode lets k be added now (inside the transaction). */
static int sk_wanted(kl_store *st, const kl_store_signing_key *k, kl_store_sk_mode mode,
                     int64_t now)
{
    int64_t n = 0;
    int err = 0;
    switch (mode) {
    case KL_STORE_SK_FIRST:
        err = kl_q_int(st,
                       "SELECT count(*) FROM signing_keys WHERE revoked_at = 0 AND active_at <= ?1 "
                       "AND (retire_at = 0 OR retire_at > ?1)",
                       KL_ARGS(kl_vi(k->active_at)), &n);
        break;
    case KL_STORE_SK_SCHEDULED:
        err = kl_q_int(st,
                       "SELECT count(*) FROM signing_keys WHERE revoked_at = 0 AND active_at > ?1",
                       KL_ARGS(kl_vi(now)), &n);
        break;
    case KL_STORE_SK_NOW:
    case KL_STORE_SK_REVOKE: return 0;
    }
    if (err)
        return err;
    return n > 0 ? KL_EEXIST : 0;
}

int kl_store_add_signing_key(kl_store *st, const kl_store_signing_key *k, kl_store_sk_mode mode,
                             int64_t now, int64_t retire_others_at, int64_t prune_before)
{
    if (!st || !k || !k->kid || !k->alg || !k->sealed || !*k->kid)
        return KL_EINVAL;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    if ((err = sk_wanted(st, k, mode, now)))
        goto out;
    /* A key added to sign now makes a pending one (scheduled, never used) pointless. */
    if (mode == KL_STORE_SK_NOW)
        err = kl_q_exec(st,
                        "UPDATE signing_keys SET revoked_at = ?1 WHERE revoked_at = 0 AND "
                        "active_at > ?1",
                        KL_ARGS(kl_vi(now)), NULL);
    /* The newest active key signs: one that became active this very second steps back
     * one, so the new key is the newest however fast the operator rotates. */
    if (!err && (mode == KL_STORE_SK_NOW || mode == KL_STORE_SK_REVOKE))
        err = kl_q_exec(st,
                        "UPDATE signing_keys SET active_at = ?1 - 1 WHERE revoked_at = 0 AND "
                        "active_at >= ?1",
                        KL_ARGS(kl_vi(k->active_at)), NULL);
    if (err)
        goto out;
    if (mode == KL_STORE_SK_REVOKE)
        err = kl_q_exec(st, "UPDATE signing_keys SET revoked_at = ?1 WHERE revoked_at = 0",
                        KL_ARGS(kl_vi(now)), NULL);
    else if (retire_others_at > 0)
        err = kl_q_exec(st,
                        "UPDATE signing_keys SET retire_at = ?1 WHERE revoked_at = 0 AND "
                        "retire_at = 0",
                        KL_ARGS(kl_vi(retire_others_at)), NULL);
    if (!err && prune_before > 0)
        err = kl_q_exec(st,
                        "DELETE FROM signing_keys WHERE (revoked_at > 0 AND revoked_at < ?1) OR "
                        "(retire_at > 0 AND retire_at < ?1)",
                        KL_ARGS(kl_vi(prune_before)), NULL);
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO signing_keys (kid, alg, sealed, created_at, active_at, "
                        "retire_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0)",
                        KL_ARGS(kl_vt(k->kid), kl_vt(k->alg), kl_vt(k->sealed),
                                kl_vi(k->created_at), kl_vi(k->active_at)),
                        NULL);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
out:
    return kl_q_end(st, err);
}

int kl_store_list_signing_keys(kl_store *st, kl_store_signing_key ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st, SK_COLS "ORDER BY created_at, kid", KL_NOARGS, &kl_map_signing_key,
                            (void ***)out, n);
}

void kl_store_signing_keys_free(kl_store_signing_key **k, size_t n)
{
    kl_map_free_all(&kl_map_signing_key, (void **)k, n);
}

/* ---------------------------------------------------------------- client secrets */

#define SECRET_COLS                                                                                \
    "SELECT a.app_id, s.key_id, s.display_name, s.hint, s.secret_hash, s.start_at, s.end_at, "     \
    "s.created_at FROM app_secrets s JOIN applications a ON a.pk = s.application_pk "

static int app_pk(kl_store *st, const char *object_id, int64_t *pk)
{
    char *lower = kl_q_lower(object_id);
    if (!lower)
        return KL_ENOMEM;
    int err =
        kl_q_int(st, "SELECT pk FROM applications WHERE object_id = ?1", KL_ARGS(kl_vt(lower)), pk);
    free(lower);
    return err;
}

int kl_store_add_app_secret(kl_store *st, const char *app_object_id, const kl_store_app_secret *s,
                            size_t max)
{
    if (!st || !app_object_id || !s || !s->key_id || !s->display_name || !s->hint)
        return KL_EINVAL;
    int64_t pk = 0, count = 0;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    if ((err = app_pk(st, app_object_id, &pk)))
        goto out;
    if ((err = kl_q_int(st, "SELECT count(*) FROM app_secrets WHERE application_pk = ?1",
                        KL_ARGS(kl_vi(pk)), &count)))
        goto out;
    if ((size_t)count >= max) {
        err = KL_ETOOBIG;
        goto out;
    }
    err = kl_q_exec(st,
                    "INSERT INTO app_secrets (application_pk, key_id, display_name, hint, "
                    "secret_hash, start_at, end_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                    "?7, ?8)",
                    KL_ARGS(kl_vi(pk), kl_vt(s->key_id), kl_vt(s->display_name), kl_vt(s->hint),
                            kl_vb(s->hash, 32), kl_vi(s->start_at), kl_vi(s->end_at),
                            kl_vi(s->created_at)),
                    NULL);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
out:
    return kl_q_end(st, err);
}

int kl_store_list_app_secrets(kl_store *st, const char *app_object_id, kl_store_app_secret ***out,
                              size_t *n)
{
    if (!st || !app_object_id || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    int64_t pk = 0;
    int err = kl_q_begin(st, false);
    if (err)
        return err;
    if (!(err = app_pk(st, app_object_id, &pk)))
        err =
            kl_q_list(st, SECRET_COLS "WHERE s.application_pk = ?1 ORDER BY s.created_at, s.key_id",
                      KL_ARGS(kl_vi(pk)), &kl_map_app_secret, (void ***)out, n);
    return kl_q_end(st, err);
}

int kl_store_remove_app_secret(kl_store *st, const char *app_object_id, const char *key_id)
{
    if (!st || !app_object_id || !key_id)
        return KL_EINVAL;
    int64_t pk = 0, changes = 0;
    char *kid = kl_q_lower(key_id);
    if (!kid)
        return KL_ENOMEM;
    int err = kl_q_begin(st, true);
    if (err) {
        free(kid);
        return err;
    }
    if (!(err = app_pk(st, app_object_id, &pk)))
        err = kl_q_exec(st, "DELETE FROM app_secrets WHERE application_pk = ?1 AND key_id = ?2",
                        KL_ARGS(kl_vi(pk), kl_vt(kid)), &changes);
    if (!err && changes == 0)
        err = KL_ENOTFOUND;
    free(kid);
    return kl_q_end(st, err);
}

void kl_store_app_secrets_free(kl_store_app_secret **s, size_t n)
{
    kl_map_free_all(&kl_map_app_secret, (void **)s, n);
}

/* ---------------------------------------------------------------- loading */

static int visit_signing_key(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->signing_key(v->arg, obj);
}

static int visit_app_secret(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->app_secret(v->arg, obj);
}

int kl_store_load_sts(kl_store *st, const kl_store_visitor *v)
{
    int err = 0;
    if (v->signing_key)
        err = kl_q_each(st, SK_COLS "ORDER BY created_at, kid", KL_NOARGS, &kl_map_signing_key,
                        visit_signing_key, (void *)v);
    if (!err && v->app_secret)
        err = kl_q_each(st, SECRET_COLS "ORDER BY s.created_at, s.key_id", KL_NOARGS,
                        &kl_map_app_secret, visit_app_secret, (void *)v);
    return err;
}

/* ---------------------------------------------------------------- sign-in log */

#define SIGNIN_COLS 10
/* Rows per INSERT: one statement for many rows costs one parse and plan instead of one
 * each, which was most of the writer's time at a few thousand tokens a second. */
#define SIGNIN_ROWS_PER_STMT 16

/* "INSERT ... VALUES (?1..?10),(?11..?20),..." for rows rows, into sql[cap]. */
static int signin_insert_sql(size_t rows, char *sql, size_t cap)
{
    int o = snprintf(sql, cap,
                     "INSERT INTO signin_log (at, client_id, principal_id, credential, resource, "
                     "source, success, error_code, reason, correlation_id) VALUES ");
    for (size_t r = 0; r < rows && o > 0 && (size_t)o < cap; r++) {
        for (size_t c = 0; c < SIGNIN_COLS && o > 0 && (size_t)o < cap; c++)
            o += snprintf(sql + o, cap - (size_t)o, "%s?%zu%s", c == 0 ? (r ? ",(" : "(") : ",",
                          r * SIGNIN_COLS + c + 1, c == SIGNIN_COLS - 1 ? ")" : "");
    }
    return (o > 0 && (size_t)o < cap) ? 0 : KL_ETOOBIG;
}

int kl_store_append_signins(kl_store *st, const kl_store_signin *rows, size_t n)
{
    if (!st || (!rows && n))
        return KL_EINVAL;
    if (n == 0)
        return 0;
    char sql[256 + SIGNIN_ROWS_PER_STMT * SIGNIN_COLS * 8];
    kl_val args[SIGNIN_ROWS_PER_STMT * SIGNIN_COLS];
    /* Not kl_q_begin/kl_q_end: those move the generation, which would make every node
     * rebuild its snapshot for each sign-in. */
    kl_q_lock(st);
    int err = st->drv->begin(st->db, true);
    for (size_t i = 0; !err && i < n; i += SIGNIN_ROWS_PER_STMT) {
        size_t m = n - i < SIGNIN_ROWS_PER_STMT ? n - i : SIGNIN_ROWS_PER_STMT;
        for (size_t j = 0; j < m; j++) {
            const kl_store_signin *s = &rows[i + j];
            kl_val *v = &args[j * SIGNIN_COLS];
            v[0] = kl_vi(s->at);
            v[1] = kl_vt(s->client_id ? s->client_id : "");
            v[2] = kl_vt(s->principal_id);
            v[3] = kl_vt(s->credential ? s->credential : "none");
            v[4] = kl_vt(s->resource);
            v[5] = kl_vt(s->source ? s->source : "");
            v[6] = kl_vi(s->success);
            v[7] = kl_vi(s->error_code);
            v[8] = kl_vt(s->reason ? s->reason : "");
            v[9] = kl_vt(s->correlation_id ? s->correlation_id : "");
        }
        err = signin_insert_sql(m, sql, sizeof(sql));
        if (!err)
            err = kl_q_exec(st, sql, args, m * SIGNIN_COLS, NULL);
    }
    if (!err)
        err = st->drv->commit(st->db);
    if (err)
        st->drv->rollback(st->db);
    kl_q_unlock(st);
    return err;
}

int kl_store_list_signins(kl_store *st, const char *client_id, bool failed_only, size_t limit,
                          kl_store_signin ***out, size_t *n)
{
    if (!st || !out || !n || limit == 0)
        return KL_EINVAL;
    char *lower = client_id ? kl_q_lower(client_id) : NULL;
    if (client_id && !lower)
        return KL_ENOMEM;
    int err = kl_q_list_locked(
        st,
        "SELECT pk, at, client_id, principal_id, credential, resource, source, success, "
        "error_code, reason, correlation_id FROM signin_log WHERE (?1 IS NULL OR lower(client_id) "
        "= ?1) AND (?2 = 0 OR success = 0) ORDER BY pk DESC LIMIT ?3",
        KL_ARGS(kl_vt(lower), kl_vi(failed_only), kl_vi((int64_t)limit)), &kl_map_signin,
        (void ***)out, n);
    free(lower);
    return err;
}

void kl_store_signins_free(kl_store_signin **s, size_t n)
{
    kl_map_free_all(&kl_map_signin, (void **)s, n);
}
