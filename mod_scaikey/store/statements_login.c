/* SQL of browser sign-in: the authorization endpoint, the hosted login pages, the SSO session,
 * consent, authorization codes and logout. */
#include "store/statements.h"

#include <stddef.h>

/* the user as tokens describe them */
#define LOGIN_USER_JSON(u) \
    "json_build_object('id', " u ".id, 'email', " u ".email, 'tenant_id', " u ".tenant_id, " \
    "'first_name', " u ".first_name, 'last_name', " u ".last_name, 'display_name', " u ".display_name, " \
    "'email_verified', " u ".email_verified)"

/* u: users, t: its tenant, pa: the tenant's partner */
#define LOGIN_JOINS(u, t, pa) \
    " LEFT JOIN tenants " t " ON " t ".id = " u ".tenant_id" \
    " LEFT JOIN partners " pa " ON " pa ".id = coalesce(" u ".partner_id, " t ".partner_id)"

#define LOGIN_LIVE(u, t, pa) \
    "(" u ".deleted_at IS NULL AND " u ".status = 'ACTIVE' " \
    "AND (" t ".id IS NULL OR (" t ".status = 'ACTIVE' AND " t ".deleted_at IS NULL)) " \
    "AND (" pa ".id IS NULL OR (" pa ".status = 'ACTIVE' AND " pa ".deleted_at IS NULL)))"

/* a positive whole number of seconds from a tenant setting, else the default */
#define SETTING_SECS(t, key, def) \
    "(CASE WHEN " t ".settings->>'" key "' ~ '^[0-9]{1,8}$' AND (" t ".settings->>'" key "')::int > 0 " \
    "THEN (" t ".settings->>'" key "')::int ELSE " def " END)"
#define IDLE_SECS(t) SETTING_SECS(t, "session_idle_timeout", "1800")
#define MAX_SECS(t)  SETTING_SECS(t, "session_max_lifetime", "36000")

/* MFA is required of u: enrolled, or demanded by the tenant */
#define MFA_REQUIRED(u, t) \
    "(" u ".mfa_enabled OR coalesce(" t ".settings->'mfa_required' = 'true'::jsonb, false))"

/* the tenant as the login pages need it; its partner's branding is the default for its own */
#define TENANT_JSON(t, p) \
    "json_build_object('id', " t ".id, 'slug', " t ".slug, 'name', " t ".name, 'partner_id', " t ".partner_id, " \
    "'live', (" t ".status = 'ACTIVE' AND (" p ".id IS NULL OR (" p ".status = 'ACTIVE' AND " p ".deleted_at IS NULL))), " \
    "'settings', " t ".settings, 'branding', coalesce(" p ".branding, '{}'::jsonb) || " t ".branding)"

/* an application as the authorization endpoint needs it */
#define APP_FIELDS(a) \
    "'kind', 'app', 'id', " a ".id, 'client_id', " a ".client_id, 'name', " a ".name, " \
    "'application_type', " a ".application_type, 'scope', " a ".scope, 'tenant_id', " a ".tenant_id, " \
    "'partner_id', " a ".partner_id, 'allowed_scopes', " a ".allowed_scopes, " \
    "'redirect_uris', " a ".redirect_uris, 'post_logout_redirect_uris', " a ".post_logout_redirect_uris, " \
    "'grant_types', " a ".grant_types, 'require_consent', " a ".require_consent, " \
    "'token_lifetime', " a ".token_lifetime, 'refresh_token_lifetime', " a ".refresh_token_lifetime, " \
    "'live', " a ".status = 'ACTIVE'"

const sk_statement sk_statements_login[] = {
    /* ---- tenants and clients ---- */
    { "login_tenant",
      "SELECT " TENANT_JSON("t", "p") "::text FROM tenants t LEFT JOIN partners p ON p.id = t.partner_id "
      "WHERE t.slug = %s AND t.deleted_at IS NULL" },
    { "login_tenant_by_id",
      "SELECT " TENANT_JSON("t", "p") "::text FROM tenants t LEFT JOIN partners p ON p.id = t.partner_id "
      "WHERE t.id = %s AND t.deleted_at IS NULL" },
    /* client_id: a GLOBAL application */
    { "authz_client_platform",
      "SELECT json_build_object(" APP_FIELDS("a") ")::text FROM applications a "
      "WHERE a.client_id = %s AND a.scope = 'GLOBAL' AND a.deleted_at IS NULL" },
    /* client_id, slug: a TENANT application of the tenant or a PARTNER application of its partner */
    { "authz_client_tenant",
      "WITH args AS (SELECT %s::text AS cid, %s::text AS slug), "
      "tn AS (SELECT t.id, t.partner_id FROM tenants t, args WHERE t.slug = args.slug AND t.deleted_at IS NULL) "
      "SELECT json_build_object(" APP_FIELDS("a") ", 'url_tenant_id', tn.id)::text "
      "FROM applications a, tn, args WHERE a.client_id = args.cid AND a.deleted_at IS NULL "
      "AND ((a.scope = 'TENANT' AND a.tenant_id = tn.id) OR (a.scope = 'PARTNER' AND a.partner_id = tn.partner_id))" },

    /* ---- pending sign-ins (one_time_codes, purpose 'flow') ---- */
    /* tenant_id, user_id, digest of the flow id, data, ip */
    { "flow_create",
      "INSERT INTO one_time_codes (purpose, tenant_id, user_id, code_hash, data, expires_at, ip_address) "
      "VALUES ('flow', %s, %s, %s, %s::jsonb, now() + interval '10 minutes', %s) RETURNING id" },
    { "flow_get",
      "SELECT json_build_object('id', id, 'tenant_id', tenant_id, 'user_id', user_id, 'email', email, "
      "'data', data)::text FROM one_time_codes "
      "WHERE purpose = 'flow' AND code_hash = %s AND used_at IS NULL AND expires_at > now()" },
    /* id, tenant_id, user_id, email, data to merge */
    { "flow_update",
      "WITH args AS (SELECT %s::text AS id, %s::text AS tid, %s::text AS uid, %s::text AS email, %s::jsonb AS d) "
      "UPDATE one_time_codes o SET tenant_id = a.tid, user_id = a.uid, email = a.email, data = o.data || a.d "
      "FROM args a WHERE o.id = a.id AND o.purpose = 'flow' AND o.used_at IS NULL RETURNING o.id" },
    /* one more code tried at the MFA step of a live flow, under the row's lock: concurrent
     * submissions count one each, and none is let through past the limit (id, limit) */
    { "flow_mfa_attempt",
      "UPDATE one_time_codes SET data = jsonb_set(data, '{mfa_attempts}', "
      "to_jsonb(coalesce((data ->> 'mfa_attempts')::int, 0) + 1)) "
      "WHERE id = %s AND purpose = 'flow' AND used_at IS NULL AND expires_at > now() AND data ->> 'stage' = 'mfa' "
      "AND coalesce((data ->> 'mfa_attempts')::int, 0) < %s::int RETURNING data ->> 'mfa_attempts'" },
    /* a flow ends once: a second submission finds nothing */
    { "flow_finish",
      "UPDATE one_time_codes SET used_at = now() WHERE id = %s AND purpose = 'flow' AND used_at IS NULL "
      "AND expires_at > now() RETURNING id" },

    /* ---- accounts ---- */
    /* tenant_id, email */
    { "login_user",
      "SELECT json_build_object('user', " LOGIN_USER_JSON("u") ", 'password_hash', u.password_hash, "
      "'partner_id', coalesce(u.partner_id, t.partner_id), 'live', " LOGIN_LIVE("u", "t", "pa") ", "
      "'mfa_required', " MFA_REQUIRED("u", "t") ")::text "
      "FROM users u" LOGIN_JOINS("u", "t", "pa") " "
      "WHERE u.tenant_id = %s AND lower(u.email) = lower(%s) AND u.deleted_at IS NULL" },
    /* email: the usable tenants where an account with this email exists */
    { "email_tenants",
      "SELECT coalesce(json_agg(json_build_object('id', x.id, 'slug', x.slug, 'name', x.name) "
      "ORDER BY x.name, x.id), '[]'::json)::text FROM ("
      "SELECT t.id, t.slug, t.name FROM users u JOIN tenants t ON t.id = u.tenant_id "
      "LEFT JOIN partners pa ON pa.id = t.partner_id "
      "WHERE lower(u.email) = lower(%s) AND u.deleted_at IS NULL AND t.deleted_at IS NULL "
      "AND t.status = 'ACTIVE' AND (pa.id IS NULL OR (pa.status = 'ACTIVE' AND pa.deleted_at IS NULL)) "
      "ORDER BY t.name, t.id LIMIT 50) x" },

    /* ---- the SSO session ---- */
    /* user_id, tenant_id, partner_id, client_id, secret digest, ip, user agent: the tenant's idle and
     * absolute timeouts apply */
    { "sso_create",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS tid, %s::text AS pid, %s::text AS cid, "
      "%s::text AS sh, %s::text AS ip, %s::text AS ua), "
      "tm AS (SELECT " IDLE_SECS("t") " AS idle, " MAX_SECS("t") " AS maxl FROM args a "
      "       LEFT JOIN tenants t ON t.id = a.tid) "
      "INSERT INTO sessions (user_id, tenant_id, partner_id, kind, client_id, secret_hash, ip_address, "
      "user_agent, idle_expires_at, expires_at, auth_methods) "
      "SELECT a.uid, a.tid, a.pid, 'sso', a.cid, a.sh, a.ip, a.ua, "
      "now() + make_interval(secs => least(tm.idle, tm.maxl)), now() + make_interval(secs => tm.maxl), "
      "'[\"pwd\"]'::jsonb FROM args a, tm "
      "RETURNING json_build_object('id', id, 'auth_time', floor(extract(epoch FROM created_at))::bigint)::text" },
    /* session id: a live SSO session and its live account */
    { "sso_get",
      "SELECT json_build_object('id', s.id, 'secret_hash', s.secret_hash, 'tenant_id', s.tenant_id, "
      "'tenant_slug', t.slug, "
      "'auth_time', floor(extract(epoch FROM s.created_at))::bigint, 'mfa_verified', s.mfa_verified, "
      "'mfa_required', " MFA_REQUIRED("u", "t") ", 'user', " LOGIN_USER_JSON("u") ")::text "
      "FROM sessions s JOIN users u ON u.id = s.user_id" LOGIN_JOINS("u", "t", "pa") " "
      "WHERE s.id = %s AND s.kind = 'sso' AND s.revoked_at IS NULL AND s.expires_at > now() "
      "AND (s.idle_expires_at IS NULL OR s.idle_expires_at > now()) AND s.tenant_id = u.tenant_id "
      "AND " LOGIN_LIVE("u", "t", "pa") },
    /* session id: the idle timeout starts again */
    { "sso_touch",
      "UPDATE sessions s SET last_seen_at = now(), "
      "idle_expires_at = least(s.expires_at, now() + make_interval(secs => " IDLE_SECS("t") ")) "
      "FROM tenants t WHERE s.id = %s AND t.id = s.tenant_id AND s.revoked_at IS NULL" },

    /* ---- consent ---- */
    /* user_id, application_id: the scopes granted so far */
    { "consent_scopes",
      "SELECT scopes::text FROM oauth_consents WHERE user_id = %s AND application_id = %s AND revoked_at IS NULL" },
    /* user_id, application_id, scopes (JSON array): added to what was granted, or replacing a
     * revoked grant */
    { "consent_grant",
      "INSERT INTO oauth_consents AS c (user_id, application_id, scopes) VALUES (%s, %s, %s::jsonb) "
      "ON CONFLICT (user_id, application_id) DO UPDATE SET "
      "scopes = CASE WHEN c.revoked_at IS NULL THEN (SELECT coalesce(jsonb_agg(DISTINCT x ORDER BY x), '[]'::jsonb) "
      "         FROM jsonb_array_elements_text(c.scopes || EXCLUDED.scopes) x) ELSE EXCLUDED.scopes END, "
      "revoked_at = NULL, granted_at = now()" },

    /* ---- authorization codes ---- */
    /* digest, client_id, application_id, user_id, session_id, tenant_id, redirect_uri, scope, nonce,
     * code_challenge, code_challenge_method, resource, auth_time (unix seconds); 60 s to live */
    { "code_insert",
      "INSERT INTO oauth_codes (code_hash, client_id, application_id, user_id, session_id, tenant_id, "
      "redirect_uri, scope, nonce, code_challenge, code_challenge_method, resource, auth_time, expires_at) "
      "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s::bigint), "
      "now() + interval '60 seconds')" },
    /* digest, client_id: spends the code when it is unused, unexpired and the client's; answers what
     * the code was before (concurrent presentations wait on the row lock, then see it used) */
    { "code_spend",
      "WITH args AS (SELECT %s::text AS h, %s::text AS cid), "
      "c AS (SELECT o.* FROM oauth_codes o, args WHERE o.code_hash = args.h FOR UPDATE OF o), "
      "spend AS (UPDATE oauth_codes o SET used_at = now() FROM c, args WHERE o.code_hash = c.code_hash "
      "          AND c.used_at IS NULL AND c.expires_at > now() AND c.client_id = args.cid RETURNING o.code_hash) "
      "SELECT json_build_object('spent', EXISTS (SELECT 1 FROM spend), 'used', c.used_at IS NOT NULL, "
      "'expired', c.expires_at <= now(), 'client_ok', c.client_id = args.cid, "
      "'application_id', c.application_id, 'session_id', c.session_id, 'tenant_id', c.tenant_id, "
      "'redirect_uri', c.redirect_uri, 'scope', c.scope, 'nonce', c.nonce, "
      "'code_challenge', c.code_challenge, 'code_challenge_method', c.code_challenge_method, "
      "'resource', c.resource, 'auth_time', floor(extract(epoch FROM c.auth_time))::bigint, "
      "'refresh_token_lifetime', ap.refresh_token_lifetime, 'token_lifetime', ap.token_lifetime, "
      "'partner_id', coalesce(u.partner_id, t.partner_id), "
      "'user', " LOGIN_USER_JSON("u") ", 'user_live', " LOGIN_LIVE("u", "t", "pa") ")::text "
      "FROM c CROSS JOIN args JOIN applications ap ON ap.id = c.application_id "
      "JOIN users u ON u.id = c.user_id" LOGIN_JOINS("u", "t", "pa") },
    /* grant session id, digest: the session and refresh family of the tokens the code yields */
    { "code_bind_grant",
      "UPDATE oauth_codes SET refresh_family_id = gen_random_uuid(), grant_session_id = %s WHERE code_hash = %s "
      "RETURNING refresh_family_id::text" },
    /* digest: a code came back; the session and the refresh tokens issued from it end */
    { "code_reuse_revoke",
      "WITH args AS (SELECT %s::text AS h), "
      "c AS (SELECT o.grant_session_id, o.refresh_family_id, o.user_id, o.tenant_id, o.client_id "
      "      FROM oauth_codes o, args WHERE o.code_hash = args.h), "
      "s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = 'code_reuse' "
      "      WHERE revoked_at IS NULL AND kind <> 'sso' AND (id IN (SELECT grant_session_id FROM c) "
      "      OR id IN (SELECT r.session_id FROM refresh_tokens r WHERE r.family_id IN (SELECT refresh_family_id FROM c))) "
      "      RETURNING id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL "
      "      AND (family_id IN (SELECT refresh_family_id FROM c) OR session_id IN (SELECT id FROM s)) RETURNING id) "
      "SELECT json_build_object('user_id', c.user_id, 'tenant_id', c.tenant_id, 'client_id', c.client_id, "
      "'grant_session_id', c.grant_session_id, 'sessions', (SELECT count(*) FROM s), "
      "'refresh_tokens', (SELECT count(*) FROM r))::text FROM c" },

    { NULL, NULL }
};
