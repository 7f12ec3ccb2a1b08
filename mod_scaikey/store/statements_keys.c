/* SQL of API keys: issue, list, revoke, and the look-up by digest that the guard runs on every
 * request carrying a key. */
#include "store/statements.h"

#include <stddef.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* usable now: not revoked, not deleted, not expired */
#define KEY_ACTIVE(k) \
    "(" k ".deactivated_at IS NULL AND " k ".deleted_at IS NULL AND " \
    "(" k ".expires_at IS NULL OR " k ".expires_at > now()))"

/* the key as its owner sees it (never the key itself nor its digest) */
#define KEY_FIELDS(k) \
    "'id', " k ".id, 'name', " k ".name, 'key_prefix', " k ".key_prefix, 'key_type', " k ".key_type, " \
    "'scopes', " k ".scopes, 'tenant_id', " k ".tenant_id, 'last_used_at', " TS(k ".last_used_at") ", " \
    "'expires_at', " TS(k ".expires_at") ", 'is_active', " KEY_ACTIVE(k) ", " \
    "'created_at', " TS(k ".created_at") ", 'deactivated_at', " TS(k ".deactivated_at")
#define KEY_JSON(k) "json_build_object(" KEY_FIELDS(k) ")"

/* ... and as an administrator sees it: with its owner and its creator */
#define KEY_ADMIN_JSON(k) \
    "json_build_object(" KEY_FIELDS(k) ", 'user_id', " k ".user_id, 'agent_id', " k ".agent_id, " \
    "'created_by', " k ".created_by)"

/* where a key lives: its tenant, else (keys of partner-level admins) its owner's partner */
#define KEY_PARTNER(k) \
    "coalesce((SELECT tp.partner_id FROM tenants tp WHERE tp.id = " k ".tenant_id), " \
    "(SELECT up.partner_id FROM users up WHERE up.id = " k ".user_id))"

/* one page of the keys in CTE m: {"total", "items"} */
#define PAGE_OF(view) \
    "SELECT json_build_object('total', (SELECT count(*) FROM m), 'items', coalesce((" \
    "SELECT json_agg(x.o ORDER BY x.created_at, x.id) FROM (SELECT " view " AS o, m.created_at, m.id " \
    "FROM m ORDER BY m.created_at, m.id LIMIT (SELECT lim FROM args) OFFSET (SELECT off FROM args)) x), " \
    "'[]'::json))::text"

const sk_statement sk_statements_keys[] = {
    /* tenant_id, user_id, agent_id, name, key_prefix, key_hash, key_type, scopes (JSON),
     * expires_at (seconds since the epoch) or expires_in_days (or neither), created_by */
    { "apikey_insert",
      "INSERT INTO api_keys AS k (tenant_id, user_id, agent_id, name, key_prefix, key_hash, key_type, "
      "scopes, expires_at, created_by) "
      "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, coalesce(to_timestamp(%s::double precision), "
      "now() + make_interval(days => %s::int)), %s) "
      "RETURNING " KEY_ADMIN_JSON("k") "::text" },

    { "apikey_get",
      "SELECT json_build_object('o', " KEY_ADMIN_JSON("k") ", 'w', json_build_object("
      "'tenant_id', k.tenant_id, 'partner_id', " KEY_PARTNER("k") ", 'user_id', k.user_id, "
      "'agent_id', k.agent_id))::text "
      "FROM api_keys k WHERE k.id = %s AND k.deleted_at IS NULL" },

    /* revokes once: a key already revoked keeps its first deactivated_at ("changed" false) */
    { "apikey_revoke",
      "WITH args AS (SELECT %s::text AS id), "
      "u AS (UPDATE api_keys k SET deactivated_at = now() FROM args "
      "      WHERE k.id = args.id AND k.deactivated_at IS NULL AND k.deleted_at IS NULL "
      "      RETURNING k.id, k.deactivated_at) "
      "SELECT json_build_object('id', k.id, 'is_active', false, "
      "'deactivated_at', " TS("coalesce(u.deactivated_at, k.deactivated_at)") ", "
      "'changed', u.id IS NOT NULL)::text "
      "FROM api_keys k JOIN args ON k.id = args.id LEFT JOIN u ON u.id = k.id WHERE k.deleted_at IS NULL" },

    /* a person's own keys: user_id, tenant_id (NULL: every tenant), limit, offset */
    { "apikey_list_mine",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS tid, %s::int AS lim, %s::int AS off), "
      "m AS (SELECT k.* FROM api_keys k, args a WHERE k.user_id = a.uid AND k.deleted_at IS NULL "
      "      AND (a.tid IS NULL OR k.tenant_id = a.tid)) "
      PAGE_OF(KEY_JSON("m")) },

    /* the keys within an administrator's reach (everything, one partner's, or one tenant's), with
     * optional filters (NULL: any): reach_all, reach_partner, reach_tenant, tenant_id, user_id,
     * agent_id, is_active, limit, offset */
    { "apikey_list_admin",
      "WITH args AS (SELECT %s::boolean AS all_, %s::text AS rp, %s::text AS rt, %s::text AS tid, "
      "  %s::text AS uid, %s::text AS gid, %s::boolean AS active, %s::int AS lim, %s::int AS off), "
      "m AS (SELECT k.* FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id "
      "      LEFT JOIN users u ON u.id = k.user_id, args a "
      "      WHERE k.deleted_at IS NULL "
      "      AND (a.all_ OR (a.rp IS NOT NULL AND coalesce(t.partner_id, u.partner_id) = a.rp) "
      "           OR (a.rt IS NOT NULL AND k.tenant_id = a.rt)) "
      "      AND (a.tid IS NULL OR k.tenant_id = a.tid) AND (a.uid IS NULL OR k.user_id = a.uid) "
      "      AND (a.gid IS NULL OR k.agent_id = a.gid) "
      "      AND (a.active IS NULL OR " KEY_ACTIVE("k") " = a.active)) "
      PAGE_OF(KEY_ADMIN_JSON("m")) },

    /* The guard's look-up by digest. The key, its owner (a user or an agent), the tenants and
     * partners above them must all be live. last_used_at is written at most once a minute per key
     * so that busy keys do not turn every request into a write, and never waits for a row another
     * request is writing (SKIP LOCKED): that one records the use. (Plain literals, no macros: the
     * tests run this text as it stands.) */
    { "apikey_lookup",
      "WITH args AS (SELECT %s::text AS h), "
      "k AS (SELECT k.id, k.name, k.key_type, k.scopes, k.tenant_id, k.user_id, k.agent_id, k.expires_at, "
      "      coalesce(u.id, g.client_id) AS subject, u.email, u.role, "
      "      coalesce(u.partner_id, ut.partner_id, t.partner_id) AS partner_id "
      "      FROM api_keys k JOIN args a ON k.key_hash = a.h "
      "      LEFT JOIN users u ON u.id = k.user_id "
      "      LEFT JOIN mcp_agents g ON g.id = k.agent_id "
      "      LEFT JOIN tenants t ON t.id = k.tenant_id "
      "      LEFT JOIN tenants ut ON ut.id = coalesce(u.tenant_id, g.tenant_id) "
      "      LEFT JOIN partners pk ON pk.id = t.partner_id "
      "      LEFT JOIN partners po ON po.id = coalesce(u.partner_id, ut.partner_id) "
      "      WHERE k.deactivated_at IS NULL AND k.deleted_at IS NULL "
      "      AND (k.expires_at IS NULL OR k.expires_at > now()) "
      "      AND ((k.user_id IS NOT NULL AND k.agent_id IS NULL AND u.deleted_at IS NULL AND u.status = 'ACTIVE') "
      "        OR (k.agent_id IS NOT NULL AND k.user_id IS NULL AND g.deleted_at IS NULL AND g.status = 'ACTIVE')) "
      "      AND (t.id IS NULL OR (t.status = 'ACTIVE' AND t.deleted_at IS NULL)) "
      "      AND (ut.id IS NULL OR (ut.status = 'ACTIVE' AND ut.deleted_at IS NULL)) "
      "      AND (pk.id IS NULL OR (pk.status = 'ACTIVE' AND pk.deleted_at IS NULL)) "
      "      AND (po.id IS NULL OR (po.status = 'ACTIVE' AND po.deleted_at IS NULL))), "
      "used AS (UPDATE api_keys SET last_used_at = now() WHERE id IN ("
      "      SELECT x.id FROM api_keys x WHERE x.id = (SELECT id FROM k) "
      "      AND (x.last_used_at IS NULL OR x.last_used_at <= now() - interval '60 seconds') "
      "      FOR UPDATE SKIP LOCKED) RETURNING id) "
      "SELECT json_build_object('id', k.id, 'name', k.name, 'key_type', k.key_type, 'scopes', k.scopes, "
      "'tenant_id', k.tenant_id, 'user_id', k.user_id, 'agent_id', k.agent_id, "
      "'expires_at', floor(extract(epoch FROM k.expires_at))::bigint, 'subject', k.subject, "
      "'email', k.email, 'role', k.role, 'partner_id', k.partner_id)::text FROM k" },

    { NULL, NULL }
};
