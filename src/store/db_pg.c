/* The PostgreSQL driver of the store (see db.h), on libpq. Statements are sent with
 * PQexecParams (parameters typed text, bigint or bytea; results as text), so nothing
 * is ever spliced into SQL. Writers take one transaction-scoped advisory lock, which
 * serialises them across every node as SQLite's BEGIN IMMEDIATE does on one machine,
 * and migrations with them. Text columns use the "C" collation so that ordering and
 * range scans compare bytes, as SQLite does. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "store/db.h"
#include "store/db_pg.h"

/* pg_advisory_xact_lock key of the store's writers: "keyless" in ASCII. */
#define PG_WRITE_LOCK_KEY "30506865001702259"

/* Type OIDs of the parameters we send (pg_type.h). */
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_TEXT 25

struct kl_db {
    PGconn *conn;
    bool in_txn; /* between begin and commit/rollback: never reconnect there */
};

struct kl_pg_listener {
    PGconn *conn;
};

struct kl_stmt {
    kl_db *db;
    char *sql; /* with $N placeholders */
    int nparams;
    const char **vals;
    int *lens, *fmts;
    Oid *types;
    char (*ints)[24]; /* decimal text of integer parameters */
    PGresult *res;
    int row, nrows;
};

/* The SQLSTATE of a failed result, "" if none. */
static const char *sqlstate(const PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

static int map_result(kl_db *db, const PGresult *r, const char *what)
{
    const char *state = sqlstate(r);
    if (strcmp(state, "23505") == 0)
        return KL_ECONFLICT;
    if (strncmp(state, "23", 2) == 0)
        return KL_EINVAL;
    /* One of our bounds (connect_url) was hit: lock_timeout (55P03; the writers' advisory
     * lock counts) or statement_timeout (57014). The connection is up and the store is
     * busy: unavailable for now, as a busy SQLite file is. */
    if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0) {
        kl_log(KL_LOG_WARN, "store_busy", "op", what, "sqlstate", state, NULL);
        return KL_EUNAVAIL;
    }
    bool gone = PQstatus(db->conn) != CONNECTION_OK || strncmp(state, "08", 2) == 0 ||
                strncmp(state, "57P", 3) == 0 || !state[0];
    /* The primary message only: PostgreSQL's DETAIL lines may quote row values. */
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    kl_log(gone ? KL_LOG_WARN : KL_LOG_ERROR, gone ? "store_unreachable" : "store_error", "op",
           what, "sqlstate", state, "postgres", msg ? msg : "connection lost", NULL);
    return gone ? KL_EUNAVAIL : KL_EIO;
}

/* A lost connection is re-established lazily, outside any transaction, so a node whose
 * database comes back carries on without a restart. */
static int ensure_connected(kl_db *db)
{
    if (PQstatus(db->conn) == CONNECTION_OK)
        return 0;
    PQreset(db->conn);
    if (PQstatus(db->conn) == CONNECTION_OK) {
        kl_log(KL_LOG_INFO, "store_reconnected", NULL);
        return 0;
    }
    return KL_EUNAVAIL;
}

/* Runs a statement without parameters, for control statements and scripts. */
static int run_plain(kl_db *db, const char *sql, const char *what, const char *want_status)
{
    PGresult *r = PQexec(db->conn, sql);
    ExecStatusType s = PQresultStatus(r);
    int err = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        err = map_result(db, r, what);
    else if (want_status && strcmp(PQcmdStatus(r), want_status) != 0)
        err = KL_EIO; /* e.g. COMMIT of a failed transaction reports ROLLBACK */
    PQclear(r);
    return err;
}

/* Copies sql with ?N turned into $N (outside string literals); *nparams gets the
 * highest N. */
static char *translate_params(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    bool quoted = false;
    int maxn = 0;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = sql[i];
        if (c == '\'')
            quoted = !quoted;
        if (c == '?' && !quoted) {
            c = '$';
            int v = 0;
            for (size_t k = i + 1; k < n && sql[k] >= '0' && sql[k] <= '9'; k++)
                v = v * 10 + (sql[k] - '0');
            if (v > maxn)
                maxn = v;
        }
        o[j++] = c;
    }
    o[j] = '\0';
    *nparams = maxn;
    return o;
}

static void pg_finalize(kl_stmt *s);

static int pg_prepare(kl_db *db, const char *sql, kl_stmt **out)
{
    *out = NULL;
    kl_stmt *s = calloc(1, sizeof(*s));
    if (!s)
        return KL_ENOMEM;
    s->db = db;
    s->sql = translate_params(sql, &s->nparams);
    size_t np = (size_t)s->nparams + 1;
    s->vals = calloc(np, sizeof(*s->vals));
    s->lens = calloc(np, sizeof(*s->lens));
    s->fmts = calloc(np, sizeof(*s->fmts));
    s->types = calloc(np, sizeof(*s->types));
    s->ints = calloc(np, sizeof(*s->ints));
    if (!s->sql || !s->vals || !s->lens || !s->fmts || !s->types || !s->ints) {
        pg_finalize(s); /* no result yet: frees what was allocated */
        return KL_ENOMEM;
    }
    for (int i = 0; i < s->nparams; i++)
        s->types[i] = PG_OID_TEXT;
    *out = s;
    return 0;
}

static int pg_bind(kl_stmt *s, int i, kl_val v)
{
    if (i < 1 || i > s->nparams)
        return KL_EINTERNAL;
    int k = i - 1;
    s->fmts[k] = 0;
    s->lens[k] = 0;
    switch (v.t) {
    case KL_V_TEXT:
        s->types[k] = PG_OID_TEXT;
        s->vals[k] = v.s;
        break;
    case KL_V_INT:
        s->types[k] = PG_OID_INT8;
        snprintf(s->ints[k], sizeof(s->ints[k]), "%lld", (long long)v.i);
        s->vals[k] = s->ints[k];
        break;
    case KL_V_NULLINT:
        s->types[k] = PG_OID_INT8;
        s->vals[k] = NULL;
        break;
    case KL_V_BLOB:
        s->types[k] = PG_OID_BYTEA;
        s->vals[k] = v.b;
        s->lens[k] = (int)v.n;
        s->fmts[k] = 1; /* binary: the bytes as they are */
        break;
    }
    return 0;
}

static int pg_step(kl_stmt *s)
{
    if (!s->res) {
        if (!s->db->in_txn && ensure_connected(s->db) != 0)
            return KL_EUNAVAIL;
        s->res =
            PQexecParams(s->db->conn, s->sql, s->nparams, s->types, s->vals, s->lens, s->fmts, 0);
        ExecStatusType st = PQresultStatus(s->res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            return map_result(s->db, s->res, "step");
        s->nrows = PQntuples(s->res);
        s->row = -1;
    }
    if (PQresultStatus(s->res) != PGRES_COMMAND_OK && PQresultStatus(s->res) != PGRES_TUPLES_OK)
        return KL_EIO;
    if (s->row + 1 < s->nrows) {
        s->row++;
        return KL_DB_ROW;
    }
    s->row = s->nrows;
    return KL_DB_DONE;
}

static bool pg_col_null(kl_stmt *s, int i)
{
    return PQgetisnull(s->res, s->row, i) != 0;
}

static const char *pg_col_text(kl_stmt *s, int i, size_t *len)
{
    *len = (size_t)PQgetlength(s->res, s->row, i);
    return PQgetvalue(s->res, s->row, i);
}

static int64_t pg_col_int(kl_stmt *s, int i)
{
    return strtoll(PQgetvalue(s->res, s->row, i), NULL, 10);
}

static int pg_col_blob(kl_stmt *s, int i, unsigned char *out, size_t n)
{
    size_t len = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, i), &len);
    int err = (b && len == n) ? 0 : KL_EINTERNAL;
    if (!err)
        memcpy(out, b, n);
    PQfreemem(b);
    return err;
}

static int64_t pg_changes(kl_stmt *s)
{
    const char *t = s->res ? PQcmdTuples(s->res) : "";
    return t[0] ? strtoll(t, NULL, 10) : 0;
}

static void pg_finalize(kl_stmt *s)
{
    if (!s)
        return;
    PQclear(s->res);
    free(s->sql);
    free(s->vals);
    free(s->lens);
    free(s->fmts);
    free(s->types);
    free(s->ints);
    free(s);
}

/* The schema is written in SQLite's words; these are PostgreSQL's for the same thing.
 * Only whole upper-case words outside string literals are replaced (identifiers in the
 * schema are lower case). */
static const struct {
    const char *from, *to;
} ddl_words[] = {
    {"INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
    {"INTEGER", "BIGINT"},
    {"BLOB", "BYTEA"},
    {"TEXT", "TEXT COLLATE \"C\""},
    {" COLLATE NOCASE", ""},
};

static bool word_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static char *translate_ddl(const char *sql)
{
    size_t n = strlen(sql), cap = n * 4 + 1, j = 0;
    char *o = malloc(cap);
    if (!o)
        return NULL;
    bool quoted = false;
    for (size_t i = 0; i < n;) {
        if (sql[i] == '\'')
            quoted = !quoted;
        bool done = false;
        for (size_t w = 0; !quoted && !done && w < sizeof(ddl_words) / sizeof(ddl_words[0]); w++) {
            size_t fl = strlen(ddl_words[w].from), tl = strlen(ddl_words[w].to);
            if (strncmp(sql + i, ddl_words[w].from, fl) != 0 ||
                (i > 0 && word_char(sql[i - 1]) && ddl_words[w].from[0] != ' ') ||
                word_char(sql[i + fl]))
                continue;
            if (j + tl + 1 > cap)
                break;
            memcpy(o + j, ddl_words[w].to, tl);
            j += tl;
            i += fl;
            done = true;
        }
        if (!done) {
            if (j + 2 > cap) {
                free(o);
                return NULL;
            }
            o[j++] = sql[i++];
        }
    }
    o[j] = '\0';
    return o;
}

static int pg_script(kl_db *db, const char *sql)
{
    char *t = translate_ddl(sql);
    if (!t)
        return KL_ENOMEM;
    int err = run_plain(db, t, "script", NULL);
    free(t);
    return err;
}

static int pg_begin(kl_db *db, bool write)
{
    if (ensure_connected(db) != 0)
        return KL_EUNAVAIL;
    int err = run_plain(db,
                        write ? "BEGIN ISOLATION LEVEL READ COMMITTED; "
                                "SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK_KEY ")"
                              : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                        "begin", NULL);
    db->in_txn = err == 0;
    if (err && PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        (void)run_plain(db, "ROLLBACK", "rollback", NULL);
    return err;
}

static int pg_commit(kl_db *db)
{
    db->in_txn = false;
    return run_plain(db, "COMMIT", "commit", "COMMIT");
}

static void pg_rollback(kl_db *db)
{
    db->in_txn = false;
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        (void)run_plain(db, "ROLLBACK", "rollback", NULL);
}

static void pg_close(kl_db *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    free(db);
}

static int pg_notify(kl_db *db)
{
    return run_plain(db, "NOTIFY " KL_PG_CHANNEL, "notify", NULL);
}

static bool pg_connected(kl_db *db)
{
    return PQstatus(db->conn) == CONNECTION_OK;
}

static int pg_unbounded(kl_db *db)
{
    return run_plain(db, "SET LOCAL statement_timeout = 0", "unbounded", NULL);
}

const kl_db_driver kl_db_pg_driver = {
    .engine = "postgres",
    .prepare = pg_prepare,
    .bind = pg_bind,
    .step = pg_step,
    .col_null = pg_col_null,
    .col_text = pg_col_text,
    .col_int = pg_col_int,
    .col_blob = pg_col_blob,
    .changes = pg_changes,
    .finalize = pg_finalize,
    .script = pg_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .close = pg_close,
    .notify = pg_notify,
    .connected = pg_connected,
    .unbounded = pg_unbounded,
};

int kl_db_pg_check_url(const char *url)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (!opts) {
        /* libpq's message names the offending part of the syntax, not its value. */
        kl_log(KL_LOG_ERROR, "store_url_invalid", "reason", msg ? msg : "out of memory", NULL);
        PQfreemem(msg);
        return KL_EINVAL;
    }
    int err = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0]) {
            kl_log(KL_LOG_ERROR, "store_url_invalid", "reason",
                   "the store URL must not carry a password: use PGPASSFILE or PGPASSWORD", NULL);
            err = KL_EINVAL;
        }
    PQconninfoFree(opts);
    return err;
}

/* Our bounds on the server's side, as command-line options of the session: the lock and
 * statement timeouts (limits.h). */
#define PG_BOUNDS                                                                                  \
    "-c lock_timeout=" KL_STR(KL_STORE_LOCK_TIMEOUT_MS) " -c statement_timeout=" KL_STR(           \
        KL_STORE_STATEMENT_TIMEOUT_MS)

/* The options the session starts with: PG_BOUNDS, then PGOPTIONS, then the URL's own
 * options, each separated by a space. PostgreSQL applies -c settings in order, so an
 * operator's (e.g. options=-c lock_timeout=10000 in the URL) win over ours. NULL when out
 * of memory; free() it. */
static char *session_options(const char *url)
{
    const char *env = getenv("PGOPTIONS"), *mine = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val && o->val[0])
            mine = o->val;
    size_t n = strlen(PG_BOUNDS) + (env ? strlen(env) + 1 : 0) + (mine ? strlen(mine) + 1 : 0);
    char *out = malloc(n + 1);
    if (out)
        snprintf(out, n + 1, "%s%s%s%s%s", PG_BOUNDS, env ? " " : "", env ? env : "",
                 mine ? " " : "", mine ? mine : "");
    PQconninfoFree(opts);
    return out;
}

/* Connects with our defaults (a bounded connect timeout, keepalives and
 * tcp_user_timeout against a server or network that stops answering, an application
 * name) unless the URL sets them: keywords given later override earlier ones, and the
 * URL (dbname, expanded) comes after them. The session's options come last, built from
 * the URL's own (session_options), so that the URL's settings still win. */
static PGconn *connect_url(const char *url)
{
    char *options = session_options(url);
    if (!options)
        return NULL;
    const char *const keys[] = {"connect_timeout",  "keepalives",
                                "keepalives_idle",  "keepalives_interval",
                                "keepalives_count", "tcp_user_timeout",
                                "application_name", "dbname",
                                "options",          NULL};
    const char *const vals[] = {KL_STR(KL_STORE_PG_CONNECT_TIMEOUT_S),
                                "1",
                                KL_STR(KL_STORE_PG_KEEPALIVE_IDLE_S),
                                KL_STR(KL_STORE_PG_KEEPALIVE_INTERVAL_S),
                                KL_STR(KL_STORE_PG_KEEPALIVE_COUNT),
                                KL_STR(KL_STORE_PG_TCP_USER_TIMEOUT_MS),
                                "keylessd",
                                url,
                                options,
                                NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    free(options);
    return c;
}

int kl_db_pg_open(const char *url, kl_db **out)
{
    *out = NULL;
    int err = kl_db_pg_check_url(url);
    if (err)
        return err;
    kl_db *db = calloc(1, sizeof(*db));
    if (!db)
        return KL_ENOMEM;
    db->conn = connect_url(url);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        /* libpq's connection messages name hosts and users, never the password. */
        kl_log(KL_LOG_ERROR, "store_open_failed", "engine", "postgres", "reason",
               db->conn ? PQerrorMessage(db->conn) : "out of memory", NULL);
        pg_close(db);
        return KL_EUNAVAIL;
    }
    if ((err = run_plain(db, "SET client_min_messages = warning", "open", NULL))) {
        pg_close(db);
        return err;
    }
    *out = db;
    return 0;
}

int kl_db_pg_listen_open(const char *url, kl_pg_listener **out)
{
    *out = NULL;
    PGconn *c = connect_url(url);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return KL_EUNAVAIL;
    }
    PGresult *r = PQexec(c, "LISTEN " KL_PG_CHANNEL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return KL_EUNAVAIL;
    }
    kl_pg_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        PQfinish(c);
        return KL_ENOMEM;
    }
    l->conn = c;
    *out = l;
    return 0;
}

int kl_db_pg_listen_socket(kl_pg_listener *l)
{
    return PQsocket(l->conn);
}

int kl_db_pg_listen_drain(kl_pg_listener *l, bool *notified)
{
    PGconn *c = l->conn;
    *notified = false;
    if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
        return KL_EUNAVAIL;
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL) {
        *notified = true;
        PQfreemem(n);
    }
    return 0;
}

void kl_db_pg_listen_close(kl_pg_listener *l)
{
    if (!l)
        return;
    PQfinish(l->conn);
    free(l);
}
