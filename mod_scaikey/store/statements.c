/* All SQL of mod_scaikey, by label. Arguments are %s in the order the caller passes them; a
 * statement that uses an argument twice binds it once in a leading "args" CTE. Statements that
 * return data return one JSON (or text) column built by PostgreSQL. */
#include "store/statements.h"

#include <string.h>

/* the user as the API shows it */
#define USER_JSON(u) \
    "json_build_object('id', " u ".id, 'email', " u ".email, 'role', " u ".role, " \
    "'tenant_id', " u ".tenant_id, 'partner_id', " u ".partner_id, 'first_name', " u ".first_name, " \
    "'last_name', " u ".last_name, 'display_name', " u ".display_name, 'status', " u ".status)"

/* the account, its tenant and its partner are usable */
#define ACCOUNT_LIVE(u, t, pa) \
    u ".deleted_at IS NULL AND " u ".status = 'ACTIVE' " \
    "AND (" t ".id IS NULL OR (" t ".status = 'ACTIVE' AND " t ".deleted_at IS NULL)) " \
    "AND (" pa ".id IS NULL OR (" pa ".status = 'ACTIVE' AND " pa ".deleted_at IS NULL))"

#define ACCOUNT_JOINS(u, t, pa) \
    " LEFT JOIN tenants " t " ON " t ".id = " u ".tenant_id" \
    " LEFT JOIN partners " pa " ON " pa ".id = coalesce(" u ".partner_id, " t ".partner_id)"

const sk_statement sk_statements_core[] = {
    /* ---- start-up ---- */
    { "startup_lock",   "SELECT pg_advisory_lock(7203110431)" },
    { "startup_unlock", "SELECT pg_advisory_unlock(7203110431)" },
    { "migration_applied", "SELECT version::text FROM schema_migrations WHERE version = %s::int" },
    { "migration_record",  "INSERT INTO schema_migrations (version, name) VALUES (%s::int, %s)" },
    { "health", "SELECT 'ok'" },

    /* ---- signing keys ---- */
    { "key_current", "SELECT kid FROM signing_keys WHERE alg = %s AND status = 'current'" },
    { "key_insert",
      "INSERT INTO signing_keys (kid, alg, status, private_sealed, public_jwk, activated_at) "
      "VALUES (%s, %s, %s, decode(%s, 'base64'), %s::jsonb, now())" },
    { "keys_fingerprint",
      "SELECT coalesce(string_agg(kid || ':' || status, ',' ORDER BY kid), '') "
      "FROM signing_keys WHERE status <> 'retired'" },
    { "keys_load",
      "SELECT coalesce(json_agg(json_build_object('kid', kid, 'alg', alg, 'status', status, "
      "'sealed', CASE WHEN status = 'current' THEN translate(encode(private_sealed, 'base64'), E'\\n', '') END, "
      "'jwk', public_jwk) ORDER BY created_at DESC), '[]'::json)::text "
      "FROM signing_keys WHERE status <> 'retired'" },

    /* ---- accounts ---- */
    { "superadmin_exists", "SELECT id FROM users WHERE role = 'super_admin' AND deleted_at IS NULL LIMIT 1" },
    { "bootstrap_admin",
      "INSERT INTO users (email, role, password_hash, display_name, email_verified, status) "
      "VALUES (%s, 'super_admin', %s, 'Administrator', true, 'ACTIVE') "
      "RETURNING json_build_object('id', id, 'email', email)::text" },
    /* an admin account by email: the highest tier first when an email has several */
    { "admin_by_email",
      "SELECT json_build_object('user', " USER_JSON("u") ", 'password_hash', u.password_hash, "
      "'live', (" ACCOUNT_LIVE("u", "t", "pa") "))::text "
      "FROM users u" ACCOUNT_JOINS("u", "t", "pa") " "
      "WHERE lower(u.email) = lower(%s) AND u.deleted_at IS NULL AND u.role <> 'user' "
      "ORDER BY CASE u.role WHEN 'super_admin' THEN 0 WHEN 'partner_admin' THEN 1 ELSE 2 END, u.created_at "
      "LIMIT 1" },
    { "user_logged_in", "UPDATE users SET last_login_at = now() WHERE id = %s" },

    /* ---- sessions and refresh tokens ---- */
    { "session_create",
      "INSERT INTO sessions (user_id, tenant_id, partner_id, kind, client_id, ip_address, user_agent, expires_at) "
      "VALUES (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s::int)) RETURNING id" },
    { "session_principal",
      "SELECT (" USER_JSON("u") "::jsonb || jsonb_build_object('tenant_partner_id', t.partner_id))::text "
      "FROM sessions s JOIN users u ON u.id = s.user_id"
      ACCOUNT_JOINS("u", "t", "pa") " "
      "WHERE s.id = %s AND u.id = %s AND s.revoked_at IS NULL AND s.expires_at > now() AND "
      ACCOUNT_LIVE("u", "t", "pa") },
    { "session_revoke",
      "WITH args AS (SELECT %s::text AS id, %s::text AS reason), "
      "s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = (SELECT reason FROM args) "
      "      WHERE id = (SELECT id FROM args) AND revoked_at IS NULL RETURNING id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "      WHERE session_id = (SELECT id FROM args) AND revoked_at IS NULL RETURNING id) "
      "SELECT (SELECT count(*) FROM s)::text" },
    { "refresh_insert",
      "INSERT INTO refresh_tokens (token_hash, session_id, user_id, client_id, scope, family_id, expires_at) "
      "VALUES (%s, %s, %s, %s, %s, coalesce(%s::uuid, gen_random_uuid()), now() + make_interval(secs => %s::int)) "
      "RETURNING id::text" },
    { "refresh_link", "UPDATE refresh_tokens SET replaced_by = %s::bigint WHERE id = %s::bigint" },
    /* spends a refresh token once: concurrent presentations see used_at set and get nothing */
    { "refresh_spend",
      "UPDATE refresh_tokens r SET used_at = now() "
      "FROM sessions s JOIN users u ON u.id = s.user_id" ACCOUNT_JOINS("u", "t", "pa") " "
      "WHERE r.token_hash = %s AND s.kind = %s AND r.used_at IS NULL AND r.revoked_at IS NULL "
      "AND r.expires_at > now() AND s.id = r.session_id AND s.revoked_at IS NULL AND s.expires_at > now() "
      "AND " ACCOUNT_LIVE("u", "t", "pa") " "
      "RETURNING json_build_object('id', r.id::text, 'session_id', s.id, 'family_id', r.family_id, "
      "'client_id', r.client_id, 'scope', r.scope, 'user', " USER_JSON("u") ")::text" },
    /* a spent token presented again: the session it belongs to ends */
    { "refresh_reused",
      "SELECT json_build_object('session_id', r.session_id, 'user_id', s.user_id, "
      "'tenant_id', s.tenant_id, 'partner_id', s.partner_id)::text "
      "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id "
      "WHERE r.token_hash = %s AND r.used_at IS NOT NULL" },
    { "session_touch", "UPDATE sessions SET last_seen_at = now() WHERE id = %s" },

    /* ---- OAuth clients: applications and MCP agents ---- */
    { "oauth_client_platform",
      "SELECT json_build_object('kind', 'app', 'id', a.id, 'client_id', a.client_id, "
      "'secret_hash', a.client_secret_hash, 'application_type', a.application_type, 'scope', a.scope, "
      "'tenant_id', a.tenant_id, 'partner_id', a.partner_id, 'allowed_scopes', a.allowed_scopes, "
      "'token_lifetime', a.token_lifetime, 'live', a.status = 'ACTIVE', 'name', a.name, "
      "'refresh_token_lifetime', a.refresh_token_lifetime, 'token_exchange_allowed', a.token_exchange_allowed, "
      "'grant_types', a.grant_types, 'redirect_uris', a.redirect_uris, 'require_consent', a.require_consent)::text "
      "FROM applications a WHERE a.client_id = %s AND a.scope = 'GLOBAL' AND a.deleted_at IS NULL" },
    /* a client usable at a tenant's endpoints: its TENANT apps, its partner's PARTNER apps, its agents */
    { "oauth_client_tenant",
      "WITH args AS (SELECT %s::text AS cid, %s::text AS slug), "
      "tn AS (SELECT t.id, t.partner_id, (t.status = 'ACTIVE' AND (p.id IS NULL OR "
      "       (p.status = 'ACTIVE' AND p.deleted_at IS NULL))) AS live "
      "       FROM tenants t LEFT JOIN partners p ON p.id = t.partner_id, args "
      "       WHERE t.slug = args.slug AND t.deleted_at IS NULL), "
      "c AS (SELECT 'app' AS kind, a.id, a.client_id, a.client_secret_hash AS secret_hash, a.application_type, "
      "      a.scope, a.tenant_id, a.partner_id, a.allowed_scopes, a.token_lifetime, a.status = 'ACTIVE' AS live, "
      "      a.name, a.refresh_token_lifetime, a.token_exchange_allowed, a.grant_types, a.redirect_uris, "
      "      a.require_consent "
      "      FROM applications a, args WHERE a.client_id = args.cid AND a.deleted_at IS NULL "
      "      AND a.scope IN ('TENANT', 'PARTNER') "
      "      UNION ALL "
      "      SELECT 'agent', g.id, g.client_id, g.client_secret_hash, NULL, 'TENANT', g.tenant_id, NULL, "
      "      g.allowed_scopes, 3600, g.status = 'ACTIVE', g.name, NULL, false, '[]'::jsonb, '[]'::jsonb, false "
      "      FROM mcp_agents g, args WHERE g.client_id = args.cid AND g.deleted_at IS NULL) "
      "SELECT json_build_object('kind', c.kind, 'id', c.id, 'client_id', c.client_id, 'secret_hash', c.secret_hash, "
      "'application_type', c.application_type, 'scope', c.scope, 'tenant_id', c.tenant_id, "
      "'partner_id', c.partner_id, 'allowed_scopes', c.allowed_scopes, 'token_lifetime', c.token_lifetime, "
      "'url_tenant_id', tn.id, 'live', c.live AND tn.live, 'name', c.name, "
      "'refresh_token_lifetime', c.refresh_token_lifetime, 'token_exchange_allowed', c.token_exchange_allowed, "
      "'grant_types', c.grant_types, 'redirect_uris', c.redirect_uris, 'require_consent', c.require_consent)::text "
      "FROM c, tn WHERE (c.scope = 'TENANT' AND c.tenant_id = tn.id) "
      "OR (c.scope = 'PARTNER' AND c.partner_id = tn.partner_id)" },
    { "client_live",
      "WITH args AS (SELECT %s::text AS cid) "
      "SELECT 'live' FROM (SELECT a.status FROM applications a, args WHERE a.client_id = args.cid "
      "AND a.deleted_at IS NULL UNION ALL SELECT g.status FROM mcp_agents g, args "
      "WHERE g.client_id = args.cid AND g.deleted_at IS NULL) c WHERE c.status = 'ACTIVE'" },

    /* ---- tenants ---- */
    { "tenant_by_slug",
      "SELECT json_build_object('id', id, 'slug', slug, 'name', name, 'status', status, "
      "'partner_id', partner_id)::text FROM tenants WHERE slug = %s AND deleted_at IS NULL" },

    { "tenant_where",
      "SELECT json_build_object('id', id, 'partner_id', partner_id, 'status', status)::text "
      "FROM tenants WHERE id = %s AND deleted_at IS NULL" },
    { "partner_exists", "SELECT id FROM partners WHERE id = %s AND deleted_at IS NULL" },

    /* ---- partner limits: the partner row is locked so concurrent creations count in turn ---- */
    { "partner_tenant_room",
      "SELECT (CASE WHEN p.max_tenants IS NULL THEN true ELSE "
      "(SELECT count(*) FROM tenants WHERE partner_id = p.id AND deleted_at IS NULL) <= p.max_tenants END)::text "
      "FROM partners p WHERE p.id = %s FOR UPDATE" },
    { "partner_user_room",
      "SELECT (CASE WHEN p.max_users_per_tenant IS NULL THEN true ELSE "
      "(SELECT count(*) FROM users WHERE tenant_id = t.id AND deleted_at IS NULL) <= p.max_users_per_tenant END)::text "
      "FROM tenants t JOIN partners p ON p.id = t.partner_id WHERE t.id = %s FOR UPDATE OF p" },
    { "partner_app_room",
      "SELECT (CASE WHEN p.max_applications_per_tenant IS NULL THEN true ELSE "
      "(SELECT count(*) FROM applications WHERE tenant_id = t.id AND deleted_at IS NULL) "
      "<= p.max_applications_per_tenant END)::text "
      "FROM tenants t JOIN partners p ON p.id = t.partner_id WHERE t.id = %s FOR UPDATE OF p" },
    { "sessions_revoke_user",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS reason), "
      "s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = (SELECT reason FROM args) "
      "      WHERE user_id = (SELECT uid FROM args) AND revoked_at IS NULL RETURNING id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "      WHERE session_id IN (SELECT id FROM s) AND revoked_at IS NULL RETURNING id) "
      "SELECT (SELECT count(*) FROM s)::text" },

    /* ---- sign-in throttling ---- */
    { "throttle_wait",
      "WITH args AS (SELECT %s::text AS k, %s::int AS max, %s::int AS win) "
      "SELECT CASE WHEN t.window_started_at + make_interval(secs => a.win) <= now() THEN 0 "
      "WHEN t.failures >= a.max THEN greatest(1, ceil(extract(epoch FROM "
      "t.window_started_at + make_interval(secs => a.win) - now())))::int ELSE 0 END::text "
      "FROM auth_throttle t, args a WHERE t.key = a.k" },
    { "throttle_fail",
      "WITH args AS (SELECT %s::text AS k, %s::int AS win) "
      "INSERT INTO auth_throttle AS t (key, failures, window_started_at) SELECT k, 1, now() FROM args "
      "ON CONFLICT (key) DO UPDATE SET "
      "failures = CASE WHEN t.window_started_at + make_interval(secs => (SELECT win FROM args)) <= now() "
      "THEN 1 ELSE t.failures + 1 END, "
      "window_started_at = CASE WHEN t.window_started_at + make_interval(secs => (SELECT win FROM args)) <= now() "
      "THEN now() ELSE t.window_started_at END" },
    { "throttle_reset", "DELETE FROM auth_throttle WHERE key = %s" },

    /* ---- audit ---- */
    { "audit_insert",
      "INSERT INTO audit_log (tenant_id, partner_id, actor_id, actor_email, actor_type, action, "
      "resource_type, resource_id, result, ip_address, user_agent, request_id, details) "
      "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)" },

    { NULL, NULL }
};

static const sk_statement *const tables[] = { sk_statements_core, sk_statements_admin, sk_statements_keys,
                                               sk_statements_oauth, sk_statements_mail, sk_statements_users, sk_statements_login,
                                               sk_statements_rotation, sk_statements_mfa, sk_statements_guard, NULL };

const char *sk_statement_sql(const char *label)
{
    const sk_statement *const *t, *s;
    if (!label)
        return NULL;
    for (t = tables; *t; t++)
        for (s = *t; s->label; s++)
            if (!strcmp(s->label, label))
                return s->sql;
    return NULL;
}
