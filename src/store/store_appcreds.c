/* Application credentials in the store (see store.h): certificates registered for an
 * application (keyCredentials). Each change is one transaction. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

#define KC_COL(t, member)                                                                          \
    {                                                                                              \
        KL_COL_##t, offsetof(kl_store_key_credential, member)                                      \
    }

static const kl_col key_credential_cols[] = {
    KC_COL(TEXT, key_id),
    KC_COL(TEXT, app_id),
    KC_COL(TEXT, display_name),
    KC_COL(TEXT, thumbprint_sha1),
    KC_COL(TEXT, thumbprint_sha256),
    KC_COL(TEXT, cert),
    KC_COL(I64, start_at),
    KC_COL(I64, end_at),
    KC_COL(I64, created_at),
};
static const kl_rowmap map_key_credential = KL_ROWMAP(kl_store_key_credential, key_credential_cols);

#define KEY_CREDENTIAL_COLS                                                                        \
    "SELECT k.key_id, a.app_id, k.display_name, k.thumbprint_sha1, k.thumbprint_sha256, k.cert, "  \
    "k.start_at, k.end_at, k.created_at FROM app_key_credentials k "                               \
    "JOIN applications a ON a.pk = k.application_pk "

void kl_store_key_credential_free(kl_store_key_credential *k)
{
    kl_map_free(&map_key_credential, k);
}

void kl_store_key_credentials_free(kl_store_key_credential **k, size_t n)
{
    kl_map_free_all(&map_key_credential, (void **)k, n);
}

/* The application's surrogate key, by object id or app id (lower-cased). Caller holds
 * the lock. */
static int application_pk(kl_store *st, const char *app, int64_t *pk)
{
    char *lk = kl_q_lower(app);
    if (!lk)
        return KL_ENOMEM;
    int err = kl_q_int(st, "SELECT pk FROM applications WHERE object_id = ?1 OR app_id = ?1",
                       KL_ARGS(kl_vt(lk)), pk);
    free(lk);
    return err;
}

/* The rows of sql (whose ?1 is the application's surrogate key) for the application app,
 * mapped by m, in one read transaction. */
static int list_by_application(kl_store *st, const char *app, const char *sql, const kl_rowmap *m,
                               void ***out, size_t *n)
{
    if (!st || !app || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    int64_t pk = 0;
    int err = kl_q_begin(st, false);
    if (err)
        return err;
    err = application_pk(st, app, &pk);
    if (!err)
        err = kl_q_list(st, sql, KL_ARGS(kl_vi(pk)), m, out, n);
    return kl_q_end(st, err);
}

int kl_store_list_key_credentials(kl_store *st, const char *app, kl_store_key_credential ***out,
                                  size_t *n)
{
    return list_by_application(st, app,
                               KEY_CREDENTIAL_COLS "WHERE k.application_pk = ?1 "
                                                   "ORDER BY k.created_at, k.pk",
                               &map_key_credential, (void ***)out, n);
}

static bool valid_row(const kl_store_key_credential *k)
{
    return k && k->key_id && kl_uuid_valid(k->key_id, strlen(k->key_id)) && k->display_name &&
           k->thumbprint_sha1 && strlen(k->thumbprint_sha1) == 40 && k->thumbprint_sha256 &&
           strlen(k->thumbprint_sha256) == 43 && k->cert && k->cert[0] && k->end_at > k->start_at;
}

int kl_store_set_key_credentials(kl_store *st, const char *app,
                                 const kl_store_key_credential *const *creds, size_t n)
{
    if (!st || !app || (n && !creds))
        return KL_EINVAL;
    if (n > KL_MAX_APP_KEY_CREDENTIALS)
        return KL_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        if (!valid_row(creds[i]))
            return KL_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (kl_str_ieq(creds[i]->key_id, creds[j]->key_id) ||
                strcmp(creds[i]->thumbprint_sha1, creds[j]->thumbprint_sha1) == 0)
                return KL_EEXIST;
    }
    int64_t pk = 0;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    if ((err = application_pk(st, app, &pk)))
        goto out;
    /* Delete what is not kept, then insert what is new; a kept row (same key_id, same
     * application) is left as it is. */
    kl_store_key_credential **have = NULL;
    size_t nh = 0;
    if ((err = kl_q_list(st, KEY_CREDENTIAL_COLS "WHERE k.application_pk = ?1", KL_ARGS(kl_vi(pk)),
                         &map_key_credential, (void ***)&have, &nh)))
        goto out;
    for (size_t i = 0; !err && i < nh; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            kept = kl_str_ieq(have[i]->key_id, creds[j]->key_id);
        if (!kept)
            err = kl_q_exec(st, "DELETE FROM app_key_credentials WHERE key_id = ?1",
                            KL_ARGS(kl_vt(have[i]->key_id)), NULL);
    }
    for (size_t j = 0; !err && j < n; j++) {
        bool kept = false;
        for (size_t i = 0; i < nh && !kept; i++)
            kept = kl_str_ieq(have[i]->key_id, creds[j]->key_id);
        if (kept)
            continue;
        char *kid = kl_q_lower(creds[j]->key_id);
        if (!kid) {
            err = KL_ENOMEM;
            break;
        }
        const kl_store_key_credential *k = creds[j];
        err = kl_q_exec(st,
                        "INSERT INTO app_key_credentials (application_pk, key_id, display_name, "
                        "thumbprint_sha1, thumbprint_sha256, cert, start_at, end_at, created_at) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        KL_ARGS(kl_vi(pk), kl_vt(kid), kl_vt(k->display_name),
                                kl_vt(k->thumbprint_sha1), kl_vt(k->thumbprint_sha256),
                                kl_vt(k->cert), kl_vi(k->start_at), kl_vi(k->end_at),
                                kl_vi(k->created_at)),
                        NULL);
        free(kid);
        if (err == KL_ECONFLICT)
            err = KL_EEXIST; /* a key_id in use elsewhere, or a thumbprint kept twice */
    }
    kl_store_key_credentials_free(have, nh);
out:
    return kl_q_end(st, err);
}

int kl_store_use_jti(kl_store *st, const char *client_id, const char *jti, int64_t exp, int64_t now)
{
    if (!st || !client_id || !jti || !client_id[0] || !jti[0] ||
        strlen(client_id) > KL_MAX_PRINCIPAL_ID || strlen(jti) > KL_MAX_JTI)
        return KL_EINVAL;
    char *cid = kl_q_lower(client_id);
    if (!cid)
        return KL_ENOMEM;
    int err = kl_q_begin(st, true);
    if (err) {
        free(cid);
        return err;
    }
    err = kl_q_exec(st, "DELETE FROM assertion_jtis WHERE exp < ?1", KL_ARGS(kl_vi(now)), NULL);
    if (!err)
        err = kl_q_exec(st, "INSERT INTO assertion_jtis (client_id, jti, exp) VALUES (?1, ?2, ?3)",
                        KL_ARGS(kl_vt(cid), kl_vt(jti), kl_vi(exp)), NULL);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
    free(cid);
    return kl_q_end_unannounced(st, err);
}

static int visit_key_credential(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->key_credential(v->arg, obj);
}

/* ---------------------------------------------------------------- federated credentials */

#define FC_COL(t, member)                                                                          \
    {                                                                                              \
        KL_COL_##t, offsetof(kl_store_federated_credential, member)                                \
    }

static const kl_col federated_cols[] = {
    FC_COL(TEXT, id),          FC_COL(TEXT, app_id),    FC_COL(TEXT, name),
    FC_COL(TEXT, issuer),      FC_COL(TEXT, subject),   FC_COL(TEXT, audiences),
    FC_COL(TEXT, description), FC_COL(I64, created_at),
};
static const kl_rowmap map_federated = KL_ROWMAP(kl_store_federated_credential, federated_cols);

#define FEDERATED_COLS                                                                             \
    "SELECT f.id, a.app_id, f.name, f.issuer, f.subject, f.audiences, f.description, "             \
    "f.created_at FROM app_federated_credentials f JOIN applications a ON a.pk = "                 \
    "f.application_pk "

void kl_store_federated_credential_free(kl_store_federated_credential *f)
{
    kl_map_free(&map_federated, f);
}

void kl_store_federated_credentials_free(kl_store_federated_credential **f, size_t n)
{
    kl_map_free_all(&map_federated, (void **)f, n);
}

static bool valid_federated(const kl_store_federated_credential *f, bool need_name)
{
    return f &&
           (!need_name || (f->name && f->name[0] && strlen(f->name) <= KL_MAX_FEDERATED_NAME)) &&
           f->issuer && f->issuer[0] && strlen(f->issuer) <= KL_MAX_FEDERATED_ISSUER &&
           f->subject && f->subject[0] && strlen(f->subject) <= KL_MAX_FEDERATED_SUBJECT &&
           f->audiences &&
           (!f->description || strlen(f->description) <= KL_MAX_FEDERATED_DESCRIPTION);
}

int kl_store_create_federated_credential(kl_store *st, const char *app,
                                         const kl_store_federated_credential *fc)
{
    if (!st || !app || !valid_federated(fc, true) || !fc->id ||
        !kl_uuid_valid(fc->id, strlen(fc->id)))
        return KL_EINVAL;
    char *id = kl_q_lower(fc->id), *lname = kl_q_lower(fc->name);
    int64_t pk = 0, count = 0;
    int err = (id && lname) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if (!(err = application_pk(st, app, &pk)) &&
        !(err = kl_q_int(st,
                         "SELECT count(*) FROM app_federated_credentials WHERE application_pk = ?1",
                         KL_ARGS(kl_vi(pk)), &count)) &&
        count >= KL_MAX_APP_FEDERATED_CREDENTIALS)
        err = KL_ETOOBIG;
    if (!err)
        err = kl_q_exec(
            st,
            "INSERT INTO app_federated_credentials (application_pk, id, name, name_lower, "
            "issuer, subject, audiences, description, created_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            KL_ARGS(kl_vi(pk), kl_vt(id), kl_vt(fc->name), kl_vt(lname), kl_vt(fc->issuer),
                    kl_vt(fc->subject), kl_vt(fc->audiences), kl_vt(fc->description),
                    kl_vi(fc->created_at)),
            NULL);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
    err = kl_q_end(st, err);
out:
    free(id);
    free(lname);
    return err;
}

int kl_store_list_federated_credentials(kl_store *st, const char *app,
                                        kl_store_federated_credential ***out, size_t *n)
{
    return list_by_application(st, app,
                               FEDERATED_COLS "WHERE f.application_pk = ?1 "
                                              "ORDER BY f.created_at, f.pk",
                               &map_federated, (void ***)out, n);
}

int kl_store_update_federated_credential(kl_store *st, const char *app, const char *id,
                                         const kl_store_federated_credential *fc)
{
    if (!st || !app || !id || !valid_federated(fc, false))
        return KL_EINVAL;
    char *lid = kl_q_lower(id);
    int64_t pk = 0, changed = 0;
    int err = lid ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if (!(err = application_pk(st, app, &pk)))
        err = kl_q_exec(st,
                        "UPDATE app_federated_credentials SET issuer = ?1, subject = ?2, "
                        "audiences = ?3, description = ?4 WHERE application_pk = ?5 AND id = ?6",
                        KL_ARGS(kl_vt(fc->issuer), kl_vt(fc->subject), kl_vt(fc->audiences),
                                kl_vt(fc->description), kl_vi(pk), kl_vt(lid)),
                        &changed);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
    if (!err && changed == 0)
        err = KL_ENOTFOUND;
    err = kl_q_end(st, err);
out:
    free(lid);
    return err;
}

int kl_store_delete_federated_credential(kl_store *st, const char *app, const char *id)
{
    if (!st || !app || !id)
        return KL_EINVAL;
    char *lid = kl_q_lower(id);
    int64_t pk = 0, changed = 0;
    int err = lid ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if (!(err = application_pk(st, app, &pk)))
        err = kl_q_exec(
            st, "DELETE FROM app_federated_credentials WHERE application_pk = ?1 AND id = ?2",
            KL_ARGS(kl_vi(pk), kl_vt(lid)), &changed);
    if (!err && changed == 0)
        err = KL_ENOTFOUND;
    err = kl_q_end(st, err);
out:
    free(lid);
    return err;
}

static int visit_federated(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->federated_credential(v->arg, obj);
}

int kl_store_load_appcreds(kl_store *st, const kl_store_visitor *v)
{
    int err = 0;
    if (v->key_credential)
        err = kl_q_each(st, KEY_CREDENTIAL_COLS "ORDER BY a.app_id, k.created_at, k.pk", KL_NOARGS,
                        &map_key_credential, visit_key_credential, (void *)v);
    if (!err && v->federated_credential)
        err = kl_q_each(st, FEDERATED_COLS "ORDER BY a.app_id, f.created_at, f.pk", KL_NOARGS,
                        &map_federated, visit_federated, (void *)v);
    return err;
}
