/* SQL of the admin API's special actions (members, nesting, secrets, sessions, audit, ...).
 * Same rules as statements.c: arguments are %s in the order the caller passes them, an argument
 * used more than once is bound once in a leading "args" CTE, and each statement returns one JSON
 * (or text) column.
 *
 * Reach arguments: several statements take the caller's reach (core/policy.h) as three
 * arguments r_all (boolean), r_partner and r_tenant (text, NULL when not that kind of reach). */
#include "store/statements.h"

#include <stddef.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define TS_US(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* the reach arguments, named r_all, r_partner, r_tenant in the args CTE */
#define REACH_ARGS "%s::boolean AS r_all, %s::text AS r_partner, %s::text AS r_tenant"

/* a page: lim and off in the args CTE */
#define PAGE_ARGS "%s::int AS lim, %s::int AS off"
#define PAGE " LIMIT (SELECT lim FROM args) OFFSET (SELECT off FROM args)"

/* ---- users and groups as members and memberships ---- */

#define MEMBER_JSON(u, direct) \
    "json_build_object('id', " u ".id, 'email', " u ".email, 'first_name', " u ".first_name, " \
    "'last_name', " u ".last_name, 'display_name', " u ".display_name, 'status', " u ".status, " \
    "'direct', " direct ")"

#define GROUP_JSON(g, direct) \
    "json_build_object('id', " g ".id, 'tenant_id', " g ".tenant_id, 'name', " g ".name, " \
    "'description', " g ".description, 'group_type', " g ".group_type, 'external_id', " g ".external_id, " \
    "'direct', " direct ", 'created_at', " TS(g ".created_at") ", 'updated_at', " TS(g ".updated_at") ")"

/* ---- sessions ---- */

/* s: sessions, u: its user */
#define SESSION_JSON \
    "json_build_object('id', s.id, 'user_id', s.user_id, 'user_email', u.email, 'tenant_id', s.tenant_id, " \
    "'partner_id', s.partner_id, 'kind', s.kind, 'client_id', s.client_id, 'ip_address', s.ip_address, " \
    "'user_agent', s.user_agent, 'created_at', " TS("s.created_at") ", " \
    "'last_seen_at', " TS("s.last_seen_at") ", 'expires_at', " TS("s.expires_at") ", " \
    "'revoked_at', " TS("s.revoked_at") ", 'revoked_reason', s.revoked_reason, " \
    "'active', (s.revoked_at IS NULL AND s.expires_at > now()))"

/* a session is within reach by its tenant (tenant reach) or by its user's partner, directly or
 * through the user's tenant (partner reach); s: sessions, u: users, t: the user's tenant,
 * a: args */
#define SESSION_REACH \
    "(a.r_all OR (a.r_partner IS NOT NULL AND (u.partner_id = a.r_partner OR t.partner_id = a.r_partner)) " \
    "OR (a.r_tenant IS NOT NULL AND s.tenant_id = a.r_tenant))"

/* ---- audit ---- */

#define AUDIT_JSON \
    "json_build_object('id', l.id, 'occurred_at', " TS_US("l.occurred_at") ", 'tenant_id', l.tenant_id, " \
    "'partner_id', l.partner_id, 'actor_id', l.actor_id, 'actor_email', l.actor_email, " \
    "'actor_type', l.actor_type, 'action', l.action, 'resource_type', l.resource_type, " \
    "'resource_id', l.resource_id, 'result', l.result, 'ip_address', l.ip_address, " \
    "'user_agent', l.user_agent, 'request_id', l.request_id, 'details', l.details)"

/* tenant reach: the tenant's rows; partner reach: the partner's rows and its tenants' */
#define AUDIT_REACH \
    "(a.r_all OR (a.r_partner IS NOT NULL AND (l.partner_id = a.r_partner " \
    "OR l.tenant_id IN (SELECT tp.id FROM tenants tp WHERE tp.partner_id = a.r_partner))) " \
    "OR (a.r_tenant IS NOT NULL AND l.tenant_id = a.r_tenant))"

const sk_statement sk_statements_admin[] = {
    /* ---- groups: members and nesting ---- */
    /* group_id, user_id: no row when the user already is a member */
    { "grp_member_add",
      "INSERT INTO group_members (group_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING "
      "RETURNING json_build_object('group_id', group_id, 'user_id', user_id, "
      "'created_at', " TS("created_at") ")::text" },
    { "grp_member_remove",
      "DELETE FROM group_members WHERE group_id = %s AND user_id = %s RETURNING user_id" },
    /* group_id, effective, lim, off: the group's live users, directly or through nested groups */
    { "grp_members",
      "WITH args AS (SELECT %s::text AS gid, %s::boolean AS eff, " PAGE_ARGS "), "
      "d AS (SELECT m.user_id AS id FROM group_members m WHERE m.group_id = (SELECT gid FROM args)), "
      "e AS (SELECT x AS id FROM args, sk_group_effective_members(args.gid) x WHERE args.eff), "
      "m AS (SELECT u.id, u.created_at FROM users u WHERE u.deleted_at IS NULL "
      "      AND (u.id IN (SELECT id FROM d) OR u.id IN (SELECT id FROM e))), "
      "pg AS (SELECT id FROM m ORDER BY created_at, id" PAGE ") "
      "SELECT json_build_object('total', (SELECT count(*) FROM m), 'items', coalesce("
      "(SELECT json_agg(" MEMBER_JSON("u", "u.id IN (SELECT id FROM d)") " ORDER BY u.created_at, u.id) "
      " FROM users u WHERE u.id IN (SELECT id FROM pg)), '[]'::json))::text" },
    /* parent, child: no row when already nested; the nesting trigger refuses cycles */
    { "grp_nest",
      "INSERT INTO group_nesting (parent_group_id, child_group_id) VALUES (%s, %s) ON CONFLICT DO NOTHING "
      "RETURNING json_build_object('group_id', parent_group_id, 'child_group_id', child_group_id, "
      "'created_at', " TS("created_at") ")::text" },
    { "grp_unnest",
      "DELETE FROM group_nesting WHERE parent_group_id = %s AND child_group_id = %s RETURNING child_group_id" },
    /* group_id, lim, off: the live groups nested directly in the group */
    { "grp_nested",
      "WITH args AS (SELECT %s::text AS gid, " PAGE_ARGS "), "
      "m AS (SELECT g.id, g.created_at FROM group_nesting n JOIN groups g ON g.id = n.child_group_id "
      "      WHERE n.parent_group_id = (SELECT gid FROM args) AND g.deleted_at IS NULL), "
      "pg AS (SELECT id FROM m ORDER BY created_at, id" PAGE ") "
      "SELECT json_build_object('total', (SELECT count(*) FROM m), 'items', coalesce("
      "(SELECT json_agg(" GROUP_JSON("g", "true") " ORDER BY g.created_at, g.id) "
      " FROM groups g WHERE g.id IN (SELECT id FROM pg)), '[]'::json))::text" },

    /* ---- users: password, MFA, groups ---- */
    /* hash, must_change_password (NULL: unchanged), user_id; the hash is kept in the history */
    { "user_password_set",
      "WITH args AS (SELECT %s::text AS h, %s::boolean AS mc, %s::text AS uid), "
      "u AS (UPDATE users SET password_hash = a.h, must_change_password = coalesce(a.mc, users.must_change_password), "
      "      password_changed_at = now() FROM args a WHERE users.id = a.uid AND users.deleted_at IS NULL "
      "      RETURNING users.id, users.password_hash), "
      "h AS (INSERT INTO password_history (user_id, password_hash) SELECT id, password_hash FROM u) "
      "SELECT id FROM u" },
    /* user_id: every MFA method and backup code goes */
    { "user_mfa_disable",
      "WITH args AS (SELECT %s::text AS uid), "
      "m AS (DELETE FROM mfa_methods WHERE user_id = (SELECT uid FROM args) RETURNING id), "
      "b AS (DELETE FROM mfa_backup_codes WHERE user_id = (SELECT uid FROM args) RETURNING id), "
      "u AS (UPDATE users SET mfa_enabled = false WHERE id = (SELECT uid FROM args) AND deleted_at IS NULL "
      "      RETURNING id) "
      "SELECT json_build_object('user_id', (SELECT id FROM u), 'methods', (SELECT count(*) FROM m), "
      "'backup_codes', (SELECT count(*) FROM b))::text" },
    /* user_id, effective, lim, off: the user's live groups, directly or through nesting */
    { "user_groups",
      "WITH args AS (SELECT %s::text AS uid, %s::boolean AS eff, " PAGE_ARGS "), "
      "d AS (SELECT m.group_id AS id FROM group_members m WHERE m.user_id = (SELECT uid FROM args)), "
      "e AS (SELECT x AS id FROM args, sk_user_groups(args.uid) x WHERE args.eff), "
      "m AS (SELECT g.id, g.created_at FROM groups g WHERE g.deleted_at IS NULL "
      "      AND (g.id IN (SELECT id FROM d) OR g.id IN (SELECT id FROM e))), "
      "pg AS (SELECT id FROM m ORDER BY created_at, id" PAGE ") "
      "SELECT json_build_object('total', (SELECT count(*) FROM m), 'items', coalesce("
      "(SELECT json_agg(" GROUP_JSON("g", "g.id IN (SELECT id FROM d)") " ORDER BY g.created_at, g.id) "
      " FROM groups g WHERE g.id IN (SELECT id FROM pg)), '[]'::json))::text" },

    /* ---- client secrets: only the digest is stored ---- */
    { "secret_rotate_app",
      "UPDATE applications SET client_secret_hash = %s, secret_rotated_at = now() "
      "WHERE id = %s AND deleted_at IS NULL AND application_type IN ('WEB', 'SERVICE') RETURNING client_id" },
    { "secret_rotate_agent",
      "UPDATE mcp_agents SET client_secret_hash = %s, secret_rotated_at = now() "
      "WHERE id = %s AND deleted_at IS NULL RETURNING client_id" },

    /* ---- sessions ---- */
    /* user_id, tenant_id, partner_id (filters, NULL: any), include_revoked, reach, lim, off;
     * newest first */
    { "sess_list",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS tid, %s::text AS pid, %s::boolean AS inc, "
      REACH_ARGS ", " PAGE_ARGS "), "
      "m AS (SELECT s.id, s.created_at FROM sessions s JOIN users u ON u.id = s.user_id "
      "      LEFT JOIN tenants t ON t.id = u.tenant_id CROSS JOIN args a "
      "      WHERE (a.inc OR (s.revoked_at IS NULL AND s.expires_at > now())) "
      "      AND (a.uid IS NULL OR s.user_id = a.uid) AND (a.tid IS NULL OR s.tenant_id = a.tid) "
      "      AND (a.pid IS NULL OR u.partner_id = a.pid OR t.partner_id = a.pid) "
      "      AND " SESSION_REACH "), "
      "pg AS (SELECT id FROM m ORDER BY created_at DESC, id" PAGE ") "
      "SELECT json_build_object('total', (SELECT count(*) FROM m), 'items', coalesce("
      "(SELECT json_agg(" SESSION_JSON " ORDER BY s.created_at DESC, s.id) "
      " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id IN (SELECT id FROM pg)), '[]'::json))::text" },
    /* session_id: the session ("o"), where it lives ("w") and where its user lives ("user") */
    { "sess_get",
      "SELECT json_build_object('o', " SESSION_JSON ", "
      "'w', json_build_object('tenant_id', s.tenant_id, 'partner_id', coalesce(u.partner_id, t.partner_id)), "
      "'user', json_build_object('id', u.id, 'tenant_id', u.tenant_id, "
      "        'partner_id', coalesce(u.partner_id, t.partner_id), 'role', u.role))::text "
      "FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN tenants t ON t.id = u.tenant_id "
      "WHERE s.id = %s" },
    /* tenant_id, reason: every session of the tenant and of its users ends */
    { "sess_revoke_tenant",
      "WITH args AS (SELECT %s::text AS tid, %s::text AS reason), "
      "s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = (SELECT reason FROM args) "
      "      WHERE revoked_at IS NULL AND (tenant_id = (SELECT tid FROM args) "
      "      OR user_id IN (SELECT id FROM users WHERE tenant_id = (SELECT tid FROM args))) RETURNING id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "      WHERE session_id IN (SELECT id FROM s) AND revoked_at IS NULL RETURNING id) "
      "SELECT (SELECT count(*) FROM s)::text" },

    /* ---- audit log ---- */
    /* filters tenant_id, partner_id, actor_id, actor_email, action, resource_type, resource_id,
     * result, start_time, end_time, ip_address (NULL: any), reach, lim, off; newest first */
    { "audit_list",
      "WITH args AS (SELECT %s::text AS tid, %s::text AS pid, %s::text AS actor, %s::text AS email, "
      "%s::text AS action, %s::text AS rtype, %s::text AS rid, %s::text AS result, "
      "%s::timestamptz AS t0, %s::timestamptz AS t1, %s::text AS ip, " REACH_ARGS ", " PAGE_ARGS "), "
      "m AS (SELECT l.id FROM audit_log l CROSS JOIN args a WHERE "
      "      (a.tid IS NULL OR l.tenant_id = a.tid) "
      "      AND (a.pid IS NULL OR l.partner_id = a.pid "
      "           OR l.tenant_id IN (SELECT tf.id FROM tenants tf WHERE tf.partner_id = a.pid)) "
      "      AND (a.actor IS NULL OR l.actor_id = a.actor) "
      "      AND (a.email IS NULL OR lower(l.actor_email) = lower(a.email)) "
      "      AND (a.action IS NULL OR l.action = a.action) "
      "      AND (a.rtype IS NULL OR l.resource_type = a.rtype) "
      "      AND (a.rid IS NULL OR l.resource_id = a.rid) "
      "      AND (a.result IS NULL OR l.result = a.result) "
      "      AND (a.t0 IS NULL OR l.occurred_at >= a.t0) "
      "      AND (a.t1 IS NULL OR l.occurred_at <= a.t1) "
      "      AND (a.ip IS NULL OR l.ip_address = a.ip) "
      "      AND " AUDIT_REACH "), "
      "pg AS (SELECT id FROM m ORDER BY id DESC" PAGE ") "
      "SELECT json_build_object('total', (SELECT count(*) FROM m), 'items', coalesce("
      "(SELECT json_agg(" AUDIT_JSON " ORDER BY l.id DESC) FROM audit_log l WHERE l.id IN (SELECT id FROM pg)), "
      "'[]'::json))::text" },
    /* audit_id, reach */
    { "audit_get",
      "WITH args AS (SELECT %s::bigint AS id, " REACH_ARGS ") "
      "SELECT " AUDIT_JSON "::text FROM audit_log l CROSS JOIN args a WHERE l.id = a.id AND " AUDIT_REACH },
    /* reach: the distinct actions and resource types of the rows within it */
    { "audit_actions",
      "WITH args AS (SELECT " REACH_ARGS ") "
      "SELECT coalesce(json_agg(DISTINCT l.action ORDER BY l.action), '[]'::json)::text "
      "FROM audit_log l CROSS JOIN args a WHERE " AUDIT_REACH },
    { "audit_resource_types",
      "WITH args AS (SELECT " REACH_ARGS ") "
      "SELECT coalesce(json_agg(DISTINCT l.resource_type ORDER BY l.resource_type), '[]'::json)::text "
      "FROM audit_log l CROSS JOIN args a WHERE l.resource_type IS NOT NULL AND " AUDIT_REACH },
    { "audit_verify",
      "SELECT json_build_object('ok', v.ok, 'checked', v.checked, 'first_broken_id', v.first_broken_id, "
      "'reason', v.reason)::text FROM sk_audit_verify() v" },

    /* ---- dashboard ---- */
    /* reach, and a tenant_admin's partner (for the PARTNER applications they see): what the
     * caller may see, counted; partners only for the whole platform */
    { "dash_stats",
      "WITH args AS (SELECT " REACH_ARGS ", %s::text AS r_tpartner), "
      "rt AS (SELECT t.id FROM tenants t CROSS JOIN args a "
      "       WHERE a.r_all OR t.partner_id = a.r_partner OR t.id = a.r_tenant) "
      "SELECT json_strip_nulls(json_build_object("
      "'partners', CASE WHEN (SELECT r_all FROM args) THEN (SELECT count(*) FROM partners p "
      "          WHERE p.deleted_at IS NULL) END, "
      "'tenants', (SELECT count(*) FROM tenants t WHERE t.deleted_at IS NULL AND t.id IN (SELECT id FROM rt)), "
      "'users', (SELECT count(*) FROM users x CROSS JOIN args a WHERE x.deleted_at IS NULL AND (a.r_all "
      "          OR x.tenant_id IN (SELECT id FROM rt) OR x.partner_id = a.r_partner)), "
      "'groups', (SELECT count(*) FROM groups x CROSS JOIN args a WHERE x.deleted_at IS NULL "
      "          AND (a.r_all OR x.tenant_id IN (SELECT id FROM rt))), "
      "'applications', (SELECT count(*) FROM applications x CROSS JOIN args a WHERE x.deleted_at IS NULL "
      "          AND (a.r_all OR x.scope = 'GLOBAL' "
      "          OR (a.r_partner IS NOT NULL AND (x.partner_id = a.r_partner OR x.tenant_id IN (SELECT id FROM rt))) "
      "          OR (a.r_tenant IS NOT NULL AND ((x.scope = 'PARTNER' AND x.partner_id = a.r_tpartner) "
      "              OR (x.scope = 'TENANT' AND x.tenant_id = a.r_tenant))))), "
      "'agents', (SELECT count(*) FROM mcp_agents x CROSS JOIN args a WHERE x.deleted_at IS NULL "
      "          AND (a.r_all OR x.tenant_id IN (SELECT id FROM rt))), "
      "'active_sessions', (SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id "
      "          LEFT JOIN tenants t ON t.id = u.tenant_id CROSS JOIN args a "
      "          WHERE s.revoked_at IS NULL AND s.expires_at > now() AND " SESSION_REACH ")))::text" },

    /* ---- platform settings (one row) ---- */
    { "settings_get", "SELECT settings::text FROM platform_settings WHERE id" },
    /* patch: its keys replace the stored ones; a key set to null is removed */
    { "settings_merge",
      "WITH args AS (SELECT %s::jsonb AS patch) "
      "UPDATE platform_settings p SET settings = (p.settings || a.patch) - coalesce("
      "(SELECT array_agg(k.key) FROM jsonb_each(a.patch) k WHERE jsonb_typeof(k.value) = 'null'), '{}'::text[]) "
      "FROM args a WHERE p.id RETURNING p.settings::text" },

    { NULL, NULL }
};
