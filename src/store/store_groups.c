/* Security groups (see store.h): a principal of type Group with its row here, and its
 * direct members. Nesting rules (no cycles, bounded depth and breadth) are checked
 * inside the transaction that adds a member, with recursive queries both engines run;
 * transitive closures are computed by the snapshot, not here. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/limits.h"
#include "common/err.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

#define COL KL_MAP_COL

static const kl_col group_cols[] = {
    COL(TEXT, kl_store_group, object_id),     COL(TEXT, kl_store_group, display_name),
    COL(TEXT, kl_store_group, mail_nickname), COL(TEXT, kl_store_group, description),
    COL(I64, kl_store_group, created_at),
};
static const kl_rowmap group_map = KL_ROWMAP(kl_store_group, group_cols);

typedef struct membership {
    char *group_id;
    char *member_id;
} membership;
static const kl_col membership_cols[] = {
    COL(TEXT, membership, group_id),
    COL(TEXT, membership, member_id),
};
static const kl_rowmap membership_map = KL_ROWMAP(membership, membership_cols);

#define GROUP_COLS                                                                                 \
    "SELECT p.object_id, p.display_name, g.mail_nickname, g.description, p.created_at "            \
    "FROM security_groups g JOIN principals p ON p.pk = g.principal_pk "

int kl_store_create_group(kl_store *st, const kl_store_group *g)
{
    if (!st || !g || !g->object_id || !kl_uuid_valid(g->object_id, strlen(g->object_id)) ||
        !kl_q_text_ok(g->display_name, KL_STORE_MAX_DISPLAY_NAME, false) ||
        !kl_q_text_ok(g->mail_nickname, KL_MAX_MAIL_NICKNAME, false) ||
        !kl_q_text_ok(g->description, KL_MAX_GROUP_DESCRIPTION, true))
        return KL_EINVAL;
    char *oid = kl_q_lower(g->object_id);
    if (!oid)
        return KL_ENOMEM;
    int64_t pk = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    err = kl_q_int(st,
                   "INSERT INTO principals (object_id, type, display_name, app_id, application_pk, "
                   "account_enabled, created_at) VALUES (?1, '" KL_PRINCIPAL_TYPE_GROUP
                   "', ?2, NULL, NULL, 1, ?3) "
                   "RETURNING pk",
                   KL_ARGS(kl_vt(oid), kl_vt(g->display_name), kl_vi(g->created_at)), &pk);
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO security_groups (principal_pk, mail_nickname, description) "
                        "VALUES (?1, ?2, ?3)",
                        KL_ARGS(kl_vi(pk), kl_vt(g->mail_nickname), kl_vt(g->description)), NULL);
    err = kl_q_end(st, err);
out:
    free(oid);
    return err;
}

int kl_store_get_group(kl_store *st, const char *object_id, kl_store_group **out)
{
    if (!st || !object_id || !out)
        return KL_EINVAL;
    return kl_q_one_by_lower(st, GROUP_COLS "WHERE p.object_id = ?1", object_id, &group_map,
                             (void **)out);
}

int kl_store_list_groups(kl_store *st, kl_store_group ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st, GROUP_COLS "ORDER BY p.object_id", KL_NOARGS, &group_map,
                            (void ***)out, n);
}

/* The surrogate key of the group with this (lower-case) object id, in the caller's
 * transaction. */
static int group_pk(kl_store *st, const char *oid, int64_t *pk)
{
    return kl_q_int(st,
                    "SELECT g.principal_pk FROM security_groups g JOIN principals p "
                    "ON p.pk = g.principal_pk WHERE p.object_id = ?1",
                    KL_ARGS(kl_vt(oid)), pk);
}

int kl_store_list_group_members(kl_store *st, const char *group_id, kl_store_principal ***out,
                                size_t *n)
{
    if (!st || !group_id || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    char *k = kl_q_lower(group_id);
    if (!k)
        return KL_ENOMEM;
    int64_t pk = 0;
    int err = kl_q_begin(st, false);
    if (err)
        goto out;
    if (!(err = group_pk(st, k, &pk)))
        err = kl_q_list(st,
                        "SELECT p.object_id, p.type, p.display_name, p.app_id, a.object_id, "
                        "p.account_enabled, p.created_at FROM group_members gm "
                        "JOIN principals p ON p.pk = gm.member_pk "
                        "LEFT JOIN applications a ON a.pk = p.application_pk "
                        "WHERE gm.group_pk = ?1 ORDER BY p.object_id",
                        KL_ARGS(kl_vi(pk)), &kl_map_principal, (void ***)out, n);
    err = kl_q_end(st, err);
out:
    free(k);
    return err;
}

/* The nesting rules for putting member mpk into group gpk (the caller's transaction):
 * KL_ECONFLICT for a cycle, KL_ETOOBIG past a limit. Depths count groups: the longest
 * chain of groups above and including gpk, plus the longest chain of groups below and
 * including mpk (0 when mpk is no group). The recursions stop one level past the limit,
 * so a damaged store with a cycle still ends. */
static int check_nesting(kl_store *st, int64_t gpk, int64_t mpk)
{
    int64_t up = 0, down = 0, hit = 0, groups = 0;
    const int64_t lim = KL_MAX_GROUP_NESTING + 1;
    int err = kl_q_int(st,
                       "WITH RECURSIVE down(pk, d) AS ("
                       "  SELECT principal_pk, 1 FROM security_groups WHERE principal_pk = ?1"
                       "  UNION SELECT gm.member_pk, down.d + 1 FROM group_members gm"
                       "  JOIN down ON gm.group_pk = down.pk"
                       "  JOIN security_groups s ON s.principal_pk = gm.member_pk"
                       "  WHERE down.d < ?3) "
                       "SELECT coalesce(max(d), 0) * 2 + "
                       "coalesce(max(CASE WHEN pk = ?2 THEN 1 ELSE 0 END), 0) FROM down",
                       KL_ARGS(kl_vi(mpk), kl_vi(gpk), kl_vi(lim)), &hit);
    if (err)
        return err;
    /* A member that is no group has no chain below (down is empty: 0). */
    down = hit / 2;
    if (hit % 2 || mpk == gpk)
        return KL_ECONFLICT;
    err = kl_q_int(st,
                   "WITH RECURSIVE up(pk, d) AS ("
                   "  SELECT ?1, 1"
                   "  UNION SELECT gm.group_pk, up.d + 1 FROM group_members gm"
                   "  JOIN up ON gm.member_pk = up.pk WHERE up.d < ?2) "
                   "SELECT max(d) FROM up",
                   KL_ARGS(kl_vi(gpk), kl_vi(lim)), &up);
    if (err)
        return err;
    if (up + down > KL_MAX_GROUP_NESTING)
        return KL_ETOOBIG;
    /* The member's own transitive groups once it is in gpk: gpk's, gpk, and its own. */
    err = kl_q_int(st,
                   "WITH RECURSIVE up(pk, d) AS ("
                   "  SELECT s.pk, 1 FROM (SELECT ?1 AS pk UNION SELECT group_pk FROM "
                   "  group_members WHERE member_pk = ?2) s"
                   "  UNION SELECT gm.group_pk, up.d + 1 FROM group_members gm"
                   "  JOIN up ON gm.member_pk = up.pk WHERE up.d < ?3) "
                   "SELECT count(DISTINCT pk) FROM up",
                   KL_ARGS(kl_vi(gpk), kl_vi(mpk), kl_vi(lim)), &groups);
    if (err)
        return err;
    return groups > KL_MAX_GROUP_MEMBERSHIPS ? KL_ETOOBIG : 0;
}

int kl_store_add_group_member(kl_store *st, const char *group_id, const char *member_id,
                              int64_t now)
{
    if (!st || !group_id || !member_id)
        return KL_EINVAL;
    char *g = kl_q_lower(group_id);
    char *m = kl_q_lower(member_id);
    int64_t gpk = 0, mpk = 0, n = 0;
    int err = (g && m) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if ((err = group_pk(st, g, &gpk)))
        goto end;
    err = kl_q_int(st, "SELECT pk FROM principals WHERE object_id = ?1", KL_ARGS(kl_vt(m)), &mpk);
    if (err == KL_ENOTFOUND)
        err = KL_EINVAL;
    if (err)
        goto end;
    err = kl_q_int(st, "SELECT 1 FROM group_members WHERE group_pk = ?1 AND member_pk = ?2",
                   KL_ARGS(kl_vi(gpk), kl_vi(mpk)), &n);
    if (err == 0)
        err = KL_EEXIST;
    if (err != KL_ENOTFOUND)
        goto end;
    if ((err = kl_q_int(st, "SELECT count(*) FROM group_members WHERE group_pk = ?1",
                        KL_ARGS(kl_vi(gpk)), &n)))
        goto end;
    if (n >= KL_MAX_GROUP_MEMBERS) {
        err = KL_ETOOBIG;
        goto end;
    }
    if ((err = check_nesting(st, gpk, mpk)))
        goto end;
    err = kl_q_exec(st,
                    "INSERT INTO group_members (group_pk, member_pk, created_at) "
                    "VALUES (?1, ?2, ?3)",
                    KL_ARGS(kl_vi(gpk), kl_vi(mpk), kl_vi(now)), NULL);
end:
    err = kl_q_end(st, err);
out:
    free(g);
    free(m);
    return err;
}

int kl_store_remove_group_member(kl_store *st, const char *group_id, const char *member_id)
{
    if (!st || !group_id || !member_id)
        return KL_EINVAL;
    char *g = kl_q_lower(group_id);
    char *m = kl_q_lower(member_id);
    int64_t changed = 0;
    int err = (g && m) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    err = kl_q_exec(st,
                    "DELETE FROM group_members WHERE group_pk = (SELECT g.principal_pk FROM "
                    "security_groups g JOIN principals p ON p.pk = g.principal_pk WHERE "
                    "p.object_id = ?1) AND member_pk = (SELECT pk FROM principals WHERE "
                    "object_id = ?2)",
                    KL_ARGS(kl_vt(g), kl_vt(m)), &changed);
    if (!err && changed == 0)
        err = KL_ENOTFOUND;
    err = kl_q_end(st, err);
out:
    free(g);
    free(m);
    return err;
}

void kl_store_group_free(kl_store_group *g)
{
    kl_map_free(&group_map, g);
}

void kl_store_groups_free(kl_store_group **g, size_t n)
{
    kl_map_free_all(&group_map, (void **)g, n);
}

static int visit_membership(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    const membership *ms = obj;
    (void)kept;
    return v->group_member(v->arg, ms->group_id, ms->member_id);
}

int kl_store_load_groups(kl_store *st, const kl_store_visitor *v)
{
    if (!v->group_member)
        return 0;
    return kl_q_each(st,
                     "SELECT g.object_id, m.object_id FROM group_members gm "
                     "JOIN principals g ON g.pk = gm.group_pk "
                     "JOIN principals m ON m.pk = gm.member_pk ORDER BY 1, 2",
                     KL_NOARGS, &membership_map, visit_membership, (void *)v);
}
