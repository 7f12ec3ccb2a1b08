/* The guard's SQL, run through the store (sk_db_json_sql: a parameterised statement, never values
 * in the text). The liveness of sessions and clients is the core's (core/principal.c) and the
 * look-up of API keys is core/apikeys.c's; this is only what the guard adds. */
#include "guard/internal.h"

/* What a caller's rules may need and what can end access besides the session or the key:
 * arguments user id, tenant id, agent id (each may be NULL). Answers
 *   {"tenant": {"id","slug","live"} | null,
 *    "groups": [[id, name], ...]   (every group of the user, nested ones included),
 *    "agent":  {"id","client_id","live","rate_limit_rpm","allowed_tools"} | null} */
const char sk_guard_sql_context[] =
    "WITH args AS (SELECT %s::text AS uid, %s::text AS tid, %s::text AS aid) "
    "SELECT json_build_object("
    "'tenant', (SELECT json_build_object('id', t.id, 'slug', t.slug, 'live', "
    "    t.status = 'ACTIVE' AND t.deleted_at IS NULL "
    "    AND (p.id IS NULL OR (p.status = 'ACTIVE' AND p.deleted_at IS NULL))) "
    "  FROM tenants t LEFT JOIN partners p ON p.id = t.partner_id WHERE t.id = a.tid), "
    "'groups', (SELECT coalesce(json_agg(json_build_array(g.id, g.name) ORDER BY g.id), '[]'::json) "
    "  FROM groups g WHERE a.uid IS NOT NULL AND g.id IN (SELECT sk_user_groups(a.uid))), "
    "'agent', (SELECT json_build_object('id', m.id, 'client_id', m.client_id, "
    "    'live', m.status = 'ACTIVE' AND m.deleted_at IS NULL, "
    "    'rate_limit_rpm', m.rate_limit_rpm, 'allowed_tools', m.allowed_tools) "
    "  FROM mcp_agents m WHERE m.id = a.aid))::text "
    "FROM args a";
