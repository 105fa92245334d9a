/* The store's shared query helpers and row mapper (see query.h), and the freeing
 * functions of store.h, which follow the same column descriptions. */
#include "store/query.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

/* ---------------------------------------------------------------- row maps */

#define COL KL_MAP_COL

static const kl_col account_cols[] = {
    COL(TEXT, kl_store_account, id),
    COL(TEXT, kl_store_account, subscription),
    COL(TEXT, kl_store_account, resource_group),
    COL(TEXT, kl_store_account, name),
    COL(TEXT, kl_store_account, location),
    COL(TEXT, kl_store_account, kind),
    COL(TEXT, kl_store_account, sku),
    COL(TEXT, kl_store_account, tags),
    COL(TEXT, kl_store_account, properties),
    COL(BOOL, kl_store_account, disable_local_auth),
    COL(TEXT, kl_store_account, etag),
    COL(I64, kl_store_account, created_at),
    COL(I64, kl_store_account, modified_at),
    COL(TEXT, kl_store_account, network_acls),
};
const kl_rowmap kl_map_account = KL_ROWMAP(kl_store_account, account_cols);

static const kl_col key_cols[] = {
    COL(INT, kl_store_key, slot),      COL(SECRET, kl_store_key, sealed),
    COL(KEY32, kl_store_key, index),   COL(I64, kl_store_key, created_at),
    COL(I64, kl_store_key, last_used),
};
const kl_rowmap kl_map_key = KL_ROWMAP(kl_store_key, key_cols);

static const kl_col deployment_cols[] = {
    COL(TEXT, kl_store_deployment, account_name),
    COL(TEXT, kl_store_deployment, name),
    COL(TEXT, kl_store_deployment, sku),
    COL(TEXT, kl_store_deployment, model),
    COL(TEXT, kl_store_deployment, backend),
    COL(TEXT, kl_store_deployment, upstream_url),
    COL(TEXT, kl_store_deployment, upstream_model),
    COL(SECRET, kl_store_deployment, credential_sealed),
    COL(I64, kl_store_deployment, created_at),
    COL(I64, kl_store_deployment, modified_at),
};
const kl_rowmap kl_map_deployment = KL_ROWMAP(kl_store_deployment, deployment_cols);

static const kl_col tenant_cols[] = {
    COL(TEXT, kl_store_tenant, tenant_id),       COL(TEXT, kl_store_tenant, display_name),
    COL(TEXT, kl_store_tenant, admin_object_id), COL(I64, kl_store_tenant, created_at),
    COL(BOOL, kl_store_tenant, password_grant),
};
const kl_rowmap kl_map_tenant = KL_ROWMAP(kl_store_tenant, tenant_cols);

static const kl_col principal_cols[] = {
    COL(TEXT, kl_store_principal, object_id),      COL(TEXT, kl_store_principal, type),
    COL(TEXT, kl_store_principal, display_name),   COL(TEXT, kl_store_principal, app_id),
    COL(TEXT, kl_store_principal, application_id), COL(BOOL, kl_store_principal, enabled),
    COL(I64, kl_store_principal, created_at),
};
const kl_rowmap kl_map_principal = KL_ROWMAP(kl_store_principal, principal_cols);

static const kl_col application_cols[] = {
    COL(TEXT, kl_store_application, object_id),
    COL(TEXT, kl_store_application, app_id),
    COL(TEXT, kl_store_application, display_name),
    COL(TEXT, kl_store_application, sp_object_id),
    COL(BOOL, kl_store_application, enabled),
    COL(I64, kl_store_application, created_at),
    COL(BOOL, kl_store_application, public_client),
    COL(TEXT, kl_store_application, web_redirect_uris),
    COL(TEXT, kl_store_application, public_redirect_uris),
};
const kl_rowmap kl_map_application = KL_ROWMAP(kl_store_application, application_cols);

static const kl_col role_definition_cols[] = {
    COL(TEXT, kl_store_role_definition, role_id),
    COL(TEXT, kl_store_role_definition, role_name),
    COL(TEXT, kl_store_role_definition, description),
    COL(TEXT, kl_store_role_definition, assignable_scopes),
    COL(TEXT, kl_store_role_definition, permissions),
    COL(I64, kl_store_role_definition, created_at),
    COL(I64, kl_store_role_definition, updated_at),
};
const kl_rowmap kl_map_role_definition = KL_ROWMAP(kl_store_role_definition, role_definition_cols);

static const kl_col role_assignment_cols[] = {
    COL(TEXT, kl_store_role_assignment, name),
    COL(TEXT, kl_store_role_assignment, scope),
    COL(TEXT, kl_store_role_assignment, principal_id),
    COL(TEXT, kl_store_role_assignment, principal_type),
    COL(TEXT, kl_store_role_assignment, role_id),
    COL(TEXT, kl_store_role_assignment, description),
    COL(I64, kl_store_role_assignment, created_at),
    COL(I64, kl_store_role_assignment, updated_at),
    COL(TEXT, kl_store_role_assignment, created_by),
    COL(TEXT, kl_store_role_assignment, updated_by),
};
const kl_rowmap kl_map_role_assignment = KL_ROWMAP(kl_store_role_assignment, role_assignment_cols);

static const kl_col signing_key_cols[] = {
    COL(TEXT, kl_store_signing_key, kid),       COL(TEXT, kl_store_signing_key, alg),
    COL(SECRET, kl_store_signing_key, sealed),  COL(I64, kl_store_signing_key, created_at),
    COL(I64, kl_store_signing_key, active_at),  COL(I64, kl_store_signing_key, retire_at),
    COL(I64, kl_store_signing_key, revoked_at),
};
const kl_rowmap kl_map_signing_key = KL_ROWMAP(kl_store_signing_key, signing_key_cols);

static const kl_col app_secret_cols[] = {
    COL(TEXT, kl_store_app_secret, app_id),       COL(TEXT, kl_store_app_secret, key_id),
    COL(TEXT, kl_store_app_secret, display_name), COL(TEXT, kl_store_app_secret, hint),
    COL(KEY32, kl_store_app_secret, hash),        COL(I64, kl_store_app_secret, start_at),
    COL(I64, kl_store_app_secret, end_at),        COL(I64, kl_store_app_secret, created_at),
};
const kl_rowmap kl_map_app_secret = KL_ROWMAP(kl_store_app_secret, app_secret_cols);

static const kl_col signin_cols[] = {
    COL(I64, kl_store_signin, id),
    COL(I64, kl_store_signin, at),
    COL(TEXT, kl_store_signin, client_id),
    COL(TEXT, kl_store_signin, principal_id),
    COL(TEXT, kl_store_signin, credential),
    COL(TEXT, kl_store_signin, resource),
    COL(TEXT, kl_store_signin, source),
    COL(BOOL, kl_store_signin, success),
    COL(INT, kl_store_signin, error_code),
    COL(TEXT, kl_store_signin, reason),
    COL(TEXT, kl_store_signin, correlation_id),
};
const kl_rowmap kl_map_signin = KL_ROWMAP(kl_store_signin, signin_cols);

static const kl_col compute_cols[] = {
    COL(TEXT, kl_store_compute, kind),         COL(TEXT, kl_store_compute, id),
    COL(TEXT, kl_store_compute, subscription), COL(TEXT, kl_store_compute, resource_group),
    COL(TEXT, kl_store_compute, name),         COL(TEXT, kl_store_compute, location),
    COL(TEXT, kl_store_compute, tags),         COL(TEXT, kl_store_compute, properties),
    COL(TEXT, kl_store_compute, etag),         COL(I64, kl_store_compute, created_at),
    COL(I64, kl_store_compute, modified_at),
};
const kl_rowmap kl_map_compute = KL_ROWMAP(kl_store_compute, compute_cols);

static const kl_col identity_cols[] = {
    COL(TEXT, kl_store_identity, resource_id),  COL(BOOL, kl_store_identity, user_assigned),
    COL(TEXT, kl_store_identity, subscription), COL(TEXT, kl_store_identity, resource_group),
    COL(TEXT, kl_store_identity, name),         COL(TEXT, kl_store_identity, location),
    COL(TEXT, kl_store_identity, tags),         COL(TEXT, kl_store_identity, object_id),
    COL(TEXT, kl_store_identity, client_id),    COL(I64, kl_store_identity, created_at),
    COL(I64, kl_store_identity, modified_at),
};
const kl_rowmap kl_map_identity = KL_ROWMAP(kl_store_identity, identity_cols);

int kl_map_row(kl_store *st, kl_stmt *s, const kl_rowmap *m, int first, void *obj)
{
    unsigned char *base = obj;
    for (size_t c = 0; c < m->ncols; c++) {
        int i = first + (int)c;
        void *p = base + m->cols[c].off;
        switch (m->cols[c].t) {
        case KL_COL_TEXT:
        case KL_COL_SECRET: {
            char **out = p;
            *out = NULL;
            if (st->drv->col_null(s, i))
                break;
            size_t n = 0;
            const char *t = st->drv->col_text(s, i, &n);
            if (!t || !(*out = malloc(n + 1)))
                return KL_ENOMEM;
            memcpy(*out, t, n);
            (*out)[n] = '\0';
            break;
        }
        case KL_COL_I64: *(int64_t *)p = st->drv->col_int(s, i); break;
        case KL_COL_INT: *(int *)p = (int)st->drv->col_int(s, i); break;
        case KL_COL_BOOL: *(bool *)p = st->drv->col_int(s, i) != 0; break;
        case KL_COL_KEY32: {
            int err = st->drv->col_blob(s, i, p, 32);
            if (err)
                return err;
            break;
        }
        }
    }
    return 0;
}

void kl_map_clear(const kl_rowmap *m, void *obj)
{
    if (!obj)
        return;
    unsigned char *base = obj;
    for (size_t c = 0; c < m->ncols; c++) {
        char **p = (char **)(void *)(base + m->cols[c].off);
        if (m->cols[c].t == KL_COL_SECRET && *p)
            OPENSSL_cleanse(*p, strlen(*p));
        if (m->cols[c].t == KL_COL_TEXT || m->cols[c].t == KL_COL_SECRET) {
            free(*p);
            *p = NULL;
        }
    }
}

void kl_map_free(const kl_rowmap *m, void *obj)
{
    if (!obj)
        return;
    kl_map_clear(m, obj);
    OPENSSL_cleanse(obj, m->size);
    free(obj);
}

void kl_map_free_all(const kl_rowmap *m, void **arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        kl_map_free(m, arr[i]);
    free(arr);
}

/* ---------------------------------------------------------------- locking */

void kl_q_lock(kl_store *st)
{
    pthread_mutex_lock(&st->mu);
}

void kl_q_unlock(kl_store *st)
{
    pthread_mutex_unlock(&st->mu);
}

int kl_q_begin_unannounced(kl_store *st)
{
    int err = kl_q_begin(st, true);
    if (!err)
        st->in_write = false; /* committed like any write, but the generation stays */
    return err;
}

void kl_q_note_reachable(kl_store *st, int err)
{
    bool down = err == KL_EUNAVAIL && st->drv->connected && !st->drv->connected(st->db);
    atomic_store(&st->reachable, !down);
}

int kl_q_unbounded(kl_store *st)
{
    return st->drv->unbounded ? st->drv->unbounded(st->db) : 0;
}

int kl_q_begin(kl_store *st, bool write)
{
    kl_q_lock(st);
    int err = st->drv->begin(st->db, write);
    kl_q_note_reachable(st, err);
    if (err) {
        kl_q_unlock(st);
        return err;
    }
    st->in_write = write;
    return 0;
}

void kl_q_changed(kl_store *st, const char *kind, const char *key)
{
    if (!st->in_write || st->changes_all)
        return;
    for (size_t i = 0; i < st->n_changes; i++)
        if (strcmp(st->changes[i].kind, kind) == 0 && strcmp(st->changes[i].key, key) == 0)
            return;
    char *k = st->n_changes < KL_STORE_MAX_CHANGED ? strdup(key) : NULL;
    if (!k) {
        st->changes_all = true;
        return;
    }
    st->changes[st->n_changes++] = (struct kl_q_change){kind, k};
}

static void changes_clear(kl_store *st)
{
    for (size_t i = 0; i < st->n_changes; i++)
        free(st->changes[i].key);
    st->n_changes = 0;
    st->changes_all = false;
}

/* Logs what generation gen changed and forgets what is older than the kept window. */
static int log_changes(kl_store *st, int64_t gen)
{
    int err = 0;
    if (st->changes_all || st->n_changes == 0)
        err = kl_q_exec(st, "INSERT INTO store_changes (generation, kind, key) VALUES (?1, ?2, '')",
                        KL_ARGS(kl_vi(gen), kl_vt(KL_STORE_CHANGE_ALL)), NULL);
    for (size_t i = 0; !err && !st->changes_all && i < st->n_changes; i++)
        err = kl_q_exec(st, "INSERT INTO store_changes (generation, kind, key) VALUES (?1, ?2, ?3)",
                        KL_ARGS(kl_vi(gen), kl_vt(st->changes[i].kind), kl_vt(st->changes[i].key)),
                        NULL);
    if (!err)
        err = kl_q_exec(st, "DELETE FROM store_changes WHERE generation <= ?1",
                        KL_ARGS(kl_vi(gen - KL_STORE_CHANGES_KEPT)), NULL);
    return err;
}

int kl_q_end(kl_store *st, int err)
{
    /* The generation moves in the same transaction as the change it announces, so a
     * node that sees the new generation also sees the change. */
    int64_t gen = -1;
    bool bump = err == 0 && st->in_write && st->gen_ready;
    if (bump)
        err = kl_q_int(st,
                       "UPDATE store_generation SET generation = generation + 1 WHERE id = 1 "
                       "RETURNING generation",
                       KL_NOARGS, &gen);
    if (bump && err == 0)
        err = log_changes(st, gen);
    changes_clear(st);
    if (err == 0 && st->in_write && st->gen_ready && st->drv->notify)
        err = st->drv->notify(st->db);
    if (err == 0)
        err = st->drv->commit(st->db);
    if (err == 0 && bump)
        atomic_store(&st->own_gen, gen);
    kl_q_note_reachable(st, err);
    if (err)
        st->drv->rollback(st->db);
    st->in_write = false;
    kl_q_unlock(st);
    return err;
}

int kl_q_end_unannounced(kl_store *st, int err)
{
    st->in_write = false; /* no generation bump, no notification; still committed */
    return kl_q_end(st, err);
}

/* ---------------------------------------------------------------- statements */

static int run(kl_store *st, const char *sql, const kl_val *args, size_t n, kl_stmt **out)
{
    int err = st->drv->prepare(st->db, sql, out);
    for (size_t i = 0; !err && i < n; i++)
        err = st->drv->bind(*out, (int)i + 1, args[i]);
    return err;
}

int kl_q_exec(kl_store *st, const char *sql, const kl_val *args, size_t n, int64_t *changes)
{
    kl_stmt *s = NULL;
    int err = run(st, sql, args, n, &s);
    if (!err) {
        int rc = st->drv->step(s);
        if (rc == KL_DB_ROW)
            err = KL_EINTERNAL;
        else if (rc < 0)
            err = rc;
        else if (changes)
            *changes = st->drv->changes(s);
    }
    st->drv->finalize(s);
    return err;
}

int kl_q_int(kl_store *st, const char *sql, const kl_val *args, size_t n, int64_t *out)
{
    kl_stmt *s = NULL;
    int err = run(st, sql, args, n, &s);
    if (!err) {
        int rc = st->drv->step(s);
        if (rc == KL_DB_ROW)
            *out = st->drv->col_int(s, 0);
        else
            err = rc == KL_DB_DONE ? KL_ENOTFOUND : rc;
    }
    st->drv->finalize(s);
    return err;
}

static const kl_col text_col[] = {{KL_COL_TEXT, 0}};
static const kl_rowmap text_map = {sizeof(char *), 1, text_col};

int kl_q_text(kl_store *st, const char *sql, const kl_val *args, size_t n, char **out)
{
    *out = NULL;
    kl_stmt *s = NULL;
    int err = run(st, sql, args, n, &s);
    if (!err) {
        int rc = st->drv->step(s);
        if (rc == KL_DB_ROW)
            err = kl_map_row(st, s, &text_map, 0, out);
        else
            err = rc == KL_DB_DONE ? KL_ENOTFOUND : rc;
    }
    st->drv->finalize(s);
    return err;
}

int kl_q_each(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
              int (*each)(void *arg, void *obj, bool *kept), void *arg)
{
    kl_stmt *s = NULL;
    int err = run(st, sql, args, n, &s);
    while (!err) {
        int rc = st->drv->step(s);
        if (rc != KL_DB_ROW) {
            err = rc < 0 ? rc : 0;
            break;
        }
        void *obj = calloc(1, m->size);
        if (!obj) {
            err = KL_ENOMEM;
            break;
        }
        bool kept = false;
        if (!(err = kl_map_row(st, s, m, 0, obj)))
            err = each(arg, obj, &kept);
        if (!kept)
            kl_map_free(m, obj);
    }
    st->drv->finalize(s);
    return err;
}

typedef struct collect {
    void **arr;
    size_t n, cap;
} collect;

static int collect_one(void *arg, void *obj, bool *kept)
{
    collect *c = arg;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 8;
        void **g = realloc(c->arr, ncap * sizeof(void *));
        if (!g)
            return KL_ENOMEM;
        c->arr = g;
        c->cap = ncap;
    }
    c->arr[c->n++] = obj;
    *kept = true;
    return 0;
}

int kl_q_list(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
              void ***out, size_t *cnt)
{
    collect c = {0};
    int err = kl_q_each(st, sql, args, n, m, collect_one, &c);
    if (err) {
        kl_map_free_all(m, c.arr, c.n);
        return err;
    }
    *out = c.arr;
    *cnt = c.n;
    return 0;
}

int kl_q_one(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
             void **out)
{
    void **arr = NULL;
    size_t cnt = 0;
    *out = NULL;
    int err = kl_q_list(st, sql, args, n, m, &arr, &cnt);
    if (err)
        return err;
    if (cnt == 0) {
        free(arr);
        return KL_ENOTFOUND;
    }
    *out = arr[0];
    for (size_t i = 1; i < cnt; i++)
        kl_map_free(m, arr[i]);
    free(arr);
    return 0;
}

int kl_q_one_locked(kl_store *st, const char *sql, const kl_val *args, size_t n, const kl_rowmap *m,
                    void **out)
{
    kl_q_lock(st);
    int err = kl_q_one(st, sql, args, n, m, out);
    kl_q_unlock(st);
    return err;
}

int kl_q_list_locked(kl_store *st, const char *sql, const kl_val *args, size_t n,
                     const kl_rowmap *m, void ***out, size_t *cnt)
{
    *out = NULL;
    *cnt = 0;
    kl_q_lock(st);
    int err = kl_q_list(st, sql, args, n, m, out, cnt);
    kl_q_unlock(st);
    return err;
}

int kl_q_one_by_lower(kl_store *st, const char *sql, const char *key, const kl_rowmap *m,
                      void **out)
{
    *out = NULL;
    char *lk = kl_q_lower(key);
    if (!lk)
        return KL_ENOMEM;
    int err = kl_q_one_locked(st, sql, KL_ARGS(kl_vt(lk)), m, out);
    free(lk);
    return err;
}

char *kl_q_lower(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    kl_ascii_lower_copy(o, s, n);
    return o;
}

/* ---------------------------------------------------------------- freeing (store.h) */

void kl_store_account_free(kl_store_account *a)
{
    kl_map_free(&kl_map_account, a);
}

void kl_store_accounts_free(kl_store_account **a, size_t n)
{
    kl_map_free_all(&kl_map_account, (void **)a, n);
}

void kl_store_keys_free(kl_store_key *k, size_t n)
{
    if (!k)
        return;
    for (size_t i = 0; i < n; i++)
        kl_map_clear(&kl_map_key, &k[i]);
    OPENSSL_cleanse(k, n * sizeof(*k));
    free(k);
}

void kl_store_deployment_free(kl_store_deployment *d)
{
    kl_map_free(&kl_map_deployment, d);
}

void kl_store_deployments_free(kl_store_deployment **d, size_t n)
{
    kl_map_free_all(&kl_map_deployment, (void **)d, n);
}

void kl_store_tenant_free(kl_store_tenant *t)
{
    kl_map_free(&kl_map_tenant, t);
}

void kl_store_principal_free(kl_store_principal *p)
{
    kl_map_free(&kl_map_principal, p);
}

void kl_store_principals_free(kl_store_principal **p, size_t n)
{
    kl_map_free_all(&kl_map_principal, (void **)p, n);
}

void kl_store_application_free(kl_store_application *a)
{
    kl_map_free(&kl_map_application, a);
}

void kl_store_applications_free(kl_store_application **a, size_t n)
{
    kl_map_free_all(&kl_map_application, (void **)a, n);
}

void kl_store_role_definition_free(kl_store_role_definition *rd)
{
    kl_map_free(&kl_map_role_definition, rd);
}

void kl_store_role_definitions_free(kl_store_role_definition **rd, size_t n)
{
    kl_map_free_all(&kl_map_role_definition, (void **)rd, n);
}

void kl_store_role_assignment_free(kl_store_role_assignment *ra)
{
    kl_map_free(&kl_map_role_assignment, ra);
}

void kl_store_role_assignments_free(kl_store_role_assignment **ra, size_t n)
{
    kl_map_free_all(&kl_map_role_assignment, (void **)ra, n);
}

bool kl_q_text_ok(const char *s, size_t max, bool optional)
{
    if (!s)
        return optional;
    size_t n = strnlen(s, max + 1);
    if ((n == 0 && !optional) || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}
