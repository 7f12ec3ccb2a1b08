/* The guard's revocation feed (guard/feed.c): what changed since the last poll of a process. */
#include "store/statements.h"

#include <stddef.h>

/* epoch seconds of the last poll's "now" minus an overlap, or NULL for the first poll; the access
 * token TTL and a margin (seconds). The span is the longest token lifetime (as the key rotation
 * counts it) plus the margin: a change older than that concerns no token that is still valid, so
 * the first poll reads that far back and a process forgets an entry that old. Answers
 *   {"now": epoch, "span": seconds,
 *    "jtis":     [[jti, expires epoch], ...]                     revoked client tokens
 *    "sessions": [[id, ended epoch], ...]                        revoked, or ending within the span
 *    "users":    [[id, live, role, email, tenant_id, partner_id, changed epoch], ...]
 *    "tenants":  [[id, live (the tenant and its partner), changed epoch], ...]
 *    "partners": [[id, live, changed epoch], ...]
 *    "clients":  [[client_id, live, changed epoch], ...]          applications and agents
 *    "agents":   [[id, live, changed epoch], ...]} */
const sk_statement sk_statements_guard[] = {
    { "guard_feed",
      "WITH args AS (SELECT %s::float8 AS since, %s::int AS ttl, %s::int AS margin), "
      "lim AS (SELECT greatest(a.ttl, coalesce((SELECT max(p.token_lifetime) FROM applications p), 0), "
      "        CASE WHEN EXISTS (SELECT 1 FROM mcp_agents) THEN 3600 ELSE 0 END) + a.margin AS span "
      "        FROM args a), "
      "w AS (SELECT coalesce(to_timestamp(a.since), now() - make_interval(secs => l.span)) AS since, "
      "      CASE WHEN a.since IS NULL THEN now() - make_interval(secs => l.span) "
      "           ELSE to_timestamp(a.since) + make_interval(secs => l.span) END AS ending, "
      "      l.span FROM args a, lim l), "
      "c AS (SELECT x.client_id AS id, x.status = 'ACTIVE' AND x.deleted_at IS NULL AS live, x.updated_at "
      "      FROM applications x, w WHERE x.updated_at > w.since "
      "      UNION ALL SELECT g.client_id, g.status = 'ACTIVE' AND g.deleted_at IS NULL, g.updated_at "
      "      FROM mcp_agents g, w WHERE g.updated_at > w.since) "
      "SELECT json_build_object('now', extract(epoch FROM now()), 'span', (SELECT span FROM w), "
      "'jtis', (SELECT coalesce(json_agg(json_build_array(j.jti, extract(epoch FROM j.expires_at))), '[]') "
      "  FROM revoked_jtis j, w WHERE j.created_at > w.since AND j.expires_at > now()), "
      "'sessions', (SELECT coalesce(json_agg(json_build_array(s.id, "
      "    extract(epoch FROM least(coalesce(s.revoked_at, s.expires_at), s.expires_at)))), '[]') "
      "  FROM sessions s, w WHERE s.id IN (SELECT s1.id FROM sessions s1 WHERE s1.revoked_at > w.since "
      "    UNION SELECT s2.id FROM sessions s2 WHERE s2.expires_at > w.ending "
      "    AND s2.expires_at <= now() + make_interval(secs => w.span))), "
      "'users', (SELECT coalesce(json_agg(json_build_array(u.id, u.status = 'ACTIVE' AND u.deleted_at IS NULL, "
      "    u.role, u.email, u.tenant_id, u.partner_id, extract(epoch FROM u.updated_at))), '[]') "
      "  FROM users u, w WHERE u.updated_at > w.since), "
      "'tenants', (SELECT coalesce(json_agg(json_build_array(t.id, t.status = 'ACTIVE' AND t.deleted_at IS NULL "
      "    AND (p.id IS NULL OR (p.status = 'ACTIVE' AND p.deleted_at IS NULL)), "
      "    extract(epoch FROM greatest(t.updated_at, p.updated_at)))), '[]') "
      "  FROM tenants t LEFT JOIN partners p ON p.id = t.partner_id, w "
      "  WHERE t.id IN (SELECT t1.id FROM tenants t1 WHERE t1.updated_at > w.since "
      "    UNION SELECT t2.id FROM tenants t2 JOIN partners p2 ON p2.id = t2.partner_id "
      "    WHERE p2.updated_at > w.since)), "
      "'partners', (SELECT coalesce(json_agg(json_build_array(p.id, p.status = 'ACTIVE' AND p.deleted_at IS NULL, "
      "    extract(epoch FROM p.updated_at))), '[]') FROM partners p, w WHERE p.updated_at > w.since), "
      "'clients', (SELECT coalesce(json_agg(json_build_array(c.id, c.live, extract(epoch FROM c.updated_at))), '[]') "
      "  FROM c WHERE c.id IS NOT NULL), "
      "'agents', (SELECT coalesce(json_agg(json_build_array(g.id, g.status = 'ACTIVE' AND g.deleted_at IS NULL, "
      "    extract(epoch FROM g.updated_at))), '[]') FROM mcp_agents g, w WHERE g.updated_at > w.since))::text" },
    { NULL, NULL }
};
