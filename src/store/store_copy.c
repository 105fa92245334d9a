/* Copying a whole store into another (keyless store migrate), table by table with
 * every column and surrogate key as they are, so that foreign keys, sealed values (and
 * so API keys and credentials, under the same KEK) and the tenant's ids stay valid.
 * The tables are described once here; a new table costs a line. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "store/query.h"
#include "store/store.h"

typedef enum copy_type { C_TEXT, C_INT, C_KEY32 } copy_type;

typedef struct copy_col {
    const char *name;
    copy_type t;
} copy_col;

#define MAX_COPY_COLS 20

typedef struct copy_table {
    const char *name;
    bool identity; /* a "pk" column numbered by the database */
    copy_col cols[MAX_COPY_COLS];
} copy_table;

/* In an order that satisfies every foreign key. */
static const copy_table tables[] = {
    {"accounts",
     true,
     {{"pk", C_INT},
      {"id", C_TEXT},
      {"id_lower", C_TEXT},
      {"subscription", C_TEXT},
      {"resource_group", C_TEXT},
      {"name", C_TEXT},
      {"name_lower", C_TEXT},
      {"location", C_TEXT},
      {"kind", C_TEXT},
      {"sku", C_TEXT},
      {"tags", C_TEXT},
      {"properties", C_TEXT},
      {"disable_local_auth", C_INT},
      {"etag", C_TEXT},
      {"created_at", C_INT},
      {"modified_at", C_INT},
      {"network_acls", C_TEXT}}},
    {"account_keys",
     false,
     {{"account_pk", C_INT},
      {"slot", C_INT},
      {"sealed", C_TEXT},
      {"key_index", C_KEY32},
      {"created_at", C_INT},
      {"last_used", C_INT}}},
    {"deployments",
     false,
     {{"account_pk", C_INT},
      {"name", C_TEXT},
      {"sku", C_TEXT},
      {"model", C_TEXT},
      {"backend", C_TEXT},
      {"upstream_url", C_TEXT},
      {"upstream_model", C_TEXT},
      {"credential_sealed", C_TEXT},
      {"created_at", C_INT},
      {"modified_at", C_INT}}},
    {"tenant",
     false,
     {{"id", C_INT},
      {"tenant_id", C_TEXT},
      {"display_name", C_TEXT},
      {"admin_object_id", C_TEXT},
      {"created_at", C_INT},
      {"password_grant", C_INT}}},
    {"applications",
     true,
     {{"pk", C_INT},
      {"object_id", C_TEXT},
      {"app_id", C_TEXT},
      {"display_name", C_TEXT},
      {"display_name_lower", C_TEXT},
      {"created_at", C_INT},
      {"public_client", C_INT},
      {"web_redirect_uris", C_TEXT},
      {"public_redirect_uris", C_TEXT}}},
    {"principals",
     true,
     {{"pk", C_INT},
      {"object_id", C_TEXT},
      {"type", C_TEXT},
      {"display_name", C_TEXT},
      {"app_id", C_TEXT},
      {"application_pk", C_INT},
      {"account_enabled", C_INT},
      {"created_at", C_INT}}},
    {"role_definitions",
     true,
     {{"pk", C_INT},
      {"role_id", C_TEXT},
      {"role_name", C_TEXT},
      {"role_name_lower", C_TEXT},
      {"description", C_TEXT},
      {"assignable_scopes", C_TEXT},
      {"permissions", C_TEXT},
      {"created_at", C_INT},
      {"updated_at", C_INT}}},
    {"role_assignments",
     true,
     {{"pk", C_INT},
      {"name", C_TEXT},
      {"scope", C_TEXT},
      {"scope_lower", C_TEXT},
      {"principal_pk", C_INT},
      {"role_id", C_TEXT},
      {"description", C_TEXT},
      {"created_at", C_INT},
      {"updated_at", C_INT},
      {"created_by", C_TEXT},
      {"updated_by", C_TEXT}}},
    {"kek_check", false, {{"id", C_INT}, {"sealed", C_TEXT}}},
    {"app_key_credentials",
     true,
     {{"pk", C_INT},
      {"application_pk", C_INT},
      {"key_id", C_TEXT},
      {"display_name", C_TEXT},
      {"thumbprint_sha1", C_TEXT},
      {"thumbprint_sha256", C_TEXT},
      {"cert", C_TEXT},
      {"start_at", C_INT},
      {"end_at", C_INT},
      {"created_at", C_INT}}},
    {"app_federated_credentials",
     true,
     {{"pk", C_INT},
      {"application_pk", C_INT},
      {"id", C_TEXT},
      {"name", C_TEXT},
      {"name_lower", C_TEXT},
      {"issuer", C_TEXT},
      {"subject", C_TEXT},
      {"audiences", C_TEXT},
      {"description", C_TEXT},
      {"created_at", C_INT}}},
    {"signing_keys",
     false,
     {{"kid", C_TEXT},
      {"alg", C_TEXT},
      {"sealed", C_TEXT},
      {"created_at", C_INT},
      {"active_at", C_INT},
      {"retire_at", C_INT},
      {"revoked_at", C_INT}}},
    {"app_secrets",
     false,
     {{"application_pk", C_INT},
      {"key_id", C_TEXT},
      {"display_name", C_TEXT},
      {"hint", C_TEXT},
      {"secret_hash", C_KEY32},
      {"start_at", C_INT},
      {"end_at", C_INT},
      {"created_at", C_INT}}},
    {"signin_log",
     true,
     {{"pk", C_INT},
      {"at", C_INT},
      {"client_id", C_TEXT},
      {"principal_id", C_TEXT},
      {"credential", C_TEXT},
      {"resource", C_TEXT},
      {"source", C_TEXT},
      {"success", C_INT},
      {"error_code", C_INT},
      {"reason", C_TEXT},
      {"correlation_id", C_TEXT}}},
    {"compute_resources",
     true,
     {{"pk", C_INT},
      {"kind", C_TEXT},
      {"id", C_TEXT},
      {"id_lower", C_TEXT},
      {"subscription", C_TEXT},
      {"resource_group", C_TEXT},
      {"name", C_TEXT},
      {"name_lower", C_TEXT},
      {"location", C_TEXT},
      {"tags", C_TEXT},
      {"properties", C_TEXT},
      {"etag", C_TEXT},
      {"created_at", C_INT},
      {"modified_at", C_INT}}},
    {"managed_identities",
     true,
     {{"pk", C_INT},
      {"principal_pk", C_INT},
      {"user_assigned", C_INT},
      {"resource_id", C_TEXT},
      {"resource_id_lower", C_TEXT},
      {"subscription", C_TEXT},
      {"resource_group", C_TEXT},
      {"name", C_TEXT},
      {"location", C_TEXT},
      {"tags", C_TEXT},
      {"created_at", C_INT},
      {"modified_at", C_INT}}},
    {"identity_attachments", false, {{"host_id_lower", C_TEXT}, {"identity_pk", C_INT}}},
    {"identity_headers",
     false,
     {{"id", C_TEXT},
      {"compute_pk", C_INT},
      {"hash", C_KEY32},
      {"created_at", C_INT},
      {"expires_at", C_INT}}},
    {"users",
     false,
     {{"principal_pk", C_INT},
      {"upn", C_TEXT},
      {"upn_lower", C_TEXT},
      {"pw_hash", C_TEXT},
      {"pw_salt", C_TEXT},
      {"pw_t", C_INT},
      {"pw_m", C_INT},
      {"pw_p", C_INT},
      {"force_change", C_INT},
      {"password_changed_at", C_INT}}},
    {"signin_failures",
     false,
     {{"upn_lower", C_TEXT},
      {"failures", C_INT},
      {"first_at", C_INT},
      {"last_at", C_INT},
      {"locked_until", C_INT}}},
    {"security_groups",
     false,
     {{"principal_pk", C_INT}, {"mail_nickname", C_TEXT}, {"description", C_TEXT}}},
    {"group_members", false, {{"group_pk", C_INT}, {"member_pk", C_INT}, {"created_at", C_INT}}},
    {"refresh_families",
     false,
     {{"family_id", C_TEXT},
      {"user_oid", C_TEXT},
      {"client_id", C_TEXT},
      {"session_id", C_TEXT},
      {"created_at", C_INT},
      {"revoked", C_INT}}},
    {"refresh_tokens",
     false,
     {{"hash", C_KEY32},
      {"family_id", C_TEXT},
      {"user_oid", C_TEXT},
      {"client_id", C_TEXT},
      {"scope", C_TEXT},
      {"session_id", C_TEXT},
      {"created_at", C_INT},
      {"expires_at", C_INT},
      {"used_at", C_INT},
      {"revoked", C_INT}}},
    /* Live sign-ins and the replay cache: bookkeeping no snapshot reads, but a person
     * halfway through a sign-in, and every security rule that counts on "once", depend
     * on them. Without assertion_jtis a client assertion spent before the move could be
     * presented again after it (security.md T6); without the codes and sessions, sign-ins
     * in progress and browser sessions would be lost. */
    {"assertion_jtis", false, {{"client_id", C_TEXT}, {"jti", C_TEXT}, {"exp", C_INT}}},
    {"auth_codes",
     false,
     {{"code_hash", C_KEY32},
      {"client_id", C_TEXT},
      {"user_oid", C_TEXT},
      {"redirect_uri", C_TEXT},
      {"scope", C_TEXT},
      {"code_challenge", C_TEXT},
      {"nonce", C_TEXT},
      {"session_id", C_TEXT},
      {"auth_time", C_INT},
      {"created_at", C_INT},
      {"expires_at", C_INT},
      {"used_at", C_INT}}},
    {"signin_sessions",
     false,
     {{"id", C_TEXT},
      {"cookie_hash", C_KEY32},
      {"user_oid", C_TEXT},
      {"auth_time", C_INT},
      {"created_at", C_INT},
      {"expires_at", C_INT},
      {"revoked_at", C_INT}}},
    {"device_codes",
     false,
     {{"code_hash", C_KEY32},
      {"user_code", C_TEXT},
      {"client_id", C_TEXT},
      {"scope", C_TEXT},
      {"status", C_TEXT},
      {"user_oid", C_TEXT},
      {"session_id", C_TEXT},
      {"auth_time", C_INT},
      {"created_at", C_INT},
      {"expires_at", C_INT},
      {"last_poll", C_INT},
      {"redeemed_at", C_INT},
      {"client_addr", C_TEXT}}},
};

#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* Tables of the schema that are left out on purpose, and why. Every table is either
 * above or here (tests/unit/store/test_copy.c holds a fresh store's schema to that). */
static const char *const not_copied[] = {
    /* Which migrations ran: the destination wrote its own when it was opened, with this
     * build's migrations, which are the ones the copied columns follow. */
    "schema_version",
    /* The change feed's counter and log name the source's generations, which mean
     * nothing in the destination. They are rebuilt instead: the copy is one announced
     * write, so its commit moves the destination's generation and logs "all", and any
     * node on the destination loads everything. (The row store_generation needs is the
     * destination's own, from migration 3.) */
    "store_generation",
    "store_changes",
};

#define NNOT_COPIED (sizeof(not_copied) / sizeof(not_copied[0]))

static size_t ncols(const copy_table *t)
{
    size_t n = 0;
    while (n < MAX_COPY_COLS && t->cols[n].name)
        n++;
    return n;
}

kl_store_copy_fate kl_store_copy_fate_of(const char *table, const char *column)
{
    if (!table)
        return KL_STORE_COPY_UNKNOWN;
    for (size_t i = 0; i < NNOT_COPIED; i++)
        if (!strcmp(not_copied[i], table))
            return KL_STORE_COPY_LEFT_OUT;
    for (size_t i = 0; i < NTABLES; i++) {
        if (strcmp(tables[i].name, table))
            continue;
        if (!column)
            return KL_STORE_COPY_COPIED;
        for (size_t c = 0, n = ncols(&tables[i]); c < n; c++)
            if (!strcmp(tables[i].cols[c].name, column))
                return KL_STORE_COPY_COPIED;
        return KL_STORE_COPY_UNKNOWN;
    }
    return KL_STORE_COPY_UNKNOWN;
}

/* "SELECT a, b FROM t" and "INSERT INTO t (a, b) VALUES (?1, ?2)". */
static int make_sql(const copy_table *t, char *sel, size_t sl, char *ins, size_t il)
{
    size_t n = ncols(t);
    int a = snprintf(sel, sl, "SELECT ");
    int b = snprintf(ins, il, "INSERT INTO %s (", t->name);
    for (size_t i = 0; i < n && a > 0 && b > 0 && (size_t)a < sl && (size_t)b < il; i++) {
        a += snprintf(sel + a, sl - (size_t)a, "%s%s", i ? ", " : "", t->cols[i].name);
        b += snprintf(ins + b, il - (size_t)b, "%s%s", i ? ", " : "", t->cols[i].name);
    }
    if (a > 0 && (size_t)a < sl)
        a += snprintf(sel + a, sl - (size_t)a, " FROM %s ORDER BY 1", t->name);
    if (b > 0 && (size_t)b < il)
        b += snprintf(ins + b, il - (size_t)b, ") VALUES (");
    for (size_t i = 0; i < n && b > 0 && (size_t)b < il; i++)
        b += snprintf(ins + b, il - (size_t)b, "%s?%zu", i ? ", " : "", i + 1);
    if (b > 0 && (size_t)b < il)
        b += snprintf(ins + b, il - (size_t)b, ")");
    return (a > 0 && (size_t)a < sl && b > 0 && (size_t)b < il) ? 0 : KL_EINTERNAL;
}

/* Copies the current row of s (from the source) into the destination. */
static int copy_row(kl_store *from, kl_stmt *s, kl_store *to, const copy_table *t, const char *ins)
{
    kl_val v[MAX_COPY_COLS];
    unsigned char keys[MAX_COPY_COLS][32];
    size_t n = ncols(t);
    for (size_t i = 0; i < n; i++) {
        int c = (int)i;
        bool null = from->drv->col_null(s, c);
        size_t len = 0;
        switch (t->cols[i].t) {
        case C_TEXT: v[i] = kl_vt(null ? NULL : from->drv->col_text(s, c, &len)); break;
        case C_INT: v[i] = null ? kl_vnull_int() : kl_vi(from->drv->col_int(s, c)); break;
        case C_KEY32: {
            int err = from->drv->col_blob(s, c, keys[i], 32);
            if (err)
                return err;
            v[i] = kl_vb(keys[i], 32);
            break;
        }
        }
    }
    return kl_q_exec(to, ins, v, n, NULL);
}

static int copy_table_rows(kl_store *from, kl_store *to, const copy_table *t, int64_t *rows)
{
    char sel[1024], ins[1024];
    int err = make_sql(t, sel, sizeof(sel), ins, sizeof(ins));
    kl_stmt *s = NULL;
    if (!err)
        err = from->drv->prepare(from->db, sel, &s);
    while (!err) {
        int rc = from->drv->step(s);
        if (rc != KL_DB_ROW) {
            err = rc < 0 ? rc : 0;
            break;
        }
        if (!(err = copy_row(from, s, to, t, ins)))
            (*rows)++;
    }
    from->drv->finalize(s);
    if (!err && t->identity && strcmp(to->drv->engine, "postgres") == 0) {
        /* Rows came with their keys: move the identity past them. */
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT setval(pg_get_serial_sequence('%s', 'pk'), coalesce(max(pk), 0) + 1, "
                 "false) FROM %s",
                 t->name, t->name);
        int64_t dummy = 0;
        err = kl_q_int(to, sql, KL_NOARGS, &dummy);
    }
    return err;
}

/* The destination holds nothing but what its own first start wrote. */
/* A destination's first start writes its own tenant, KEK check, signing keys and the
 * root owner (a principal and its assignment); those give way to the source's. */
static bool first_start_table(const char *name)
{
    static const char *const mine[] = {"role_assignments", "principals", "applications",
                                       "tenant",           "kek_check",  "signing_keys"};
    for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
        if (strcmp(name, mine[i]) == 0)
            return true;
    return false;
}

/* The destination holds nothing but its first start's rows: every other table it would
 * receive is empty (a row there would collide with, or silently mix into, the copy). */
static int check_empty(kl_store *to)
{
    int64_t n = 0;
    int err = kl_q_int(to,
                       "SELECT (SELECT count(*) FROM applications) + (SELECT count(*) FROM "
                       "principals) + (SELECT count(*) FROM role_assignments)",
                       KL_NOARGS, &n);
    const char *full = NULL;
    if (!err && n > 2)
        full = "principals";
    for (size_t i = 0; !err && !full && i < NTABLES; i++) {
        if (first_start_table(tables[i].name))
            continue;
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i].name);
        if (!(err = kl_q_int(to, sql, KL_NOARGS, &n)) && n > 0)
            full = tables[i].name;
    }
    if (!err && full) {
        kl_log(KL_LOG_ERROR, "store_copy_refused", "reason", "the destination store is not empty",
               "table", full, NULL);
        err = KL_ECONFLICT;
    }
    return err;
}

int kl_store_copy(kl_store *from, kl_store *to, int64_t *rows)
{
    if (!from || !to || from == to || !rows)
        return KL_EINVAL;
    *rows = 0;
    int err = kl_q_begin(from, false);
    if (err)
        return err;
    if ((err = kl_q_begin(to, true))) {
        (void)kl_q_end(from, err);
        return err;
    }
    /* An operator's one-off that reads and writes every row: no statement bound on
     * either side (the source's whole-table reads grow with the store). The lock bound
     * stays: a destination another process is writing fails instead of waiting. */
    if (!(err = kl_q_unbounded(from)))
        err = kl_q_unbounded(to);
    /* The destination's own first-start rows give way to the source's (children first). */
    if (!err)
        err = check_empty(to);
    for (size_t i = NTABLES; !err && i-- > 0;) {
        if (!first_start_table(tables[i].name))
            continue;
        char sql[128];
        snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[i].name);
        err = kl_q_exec(to, sql, KL_NOARGS, NULL);
    }
    for (size_t i = 0; !err && i < NTABLES; i++)
        err = copy_table_rows(from, to, &tables[i], rows);
    err = kl_q_end(to, err);
    (void)kl_q_end(from, 0);
    return err;
}
