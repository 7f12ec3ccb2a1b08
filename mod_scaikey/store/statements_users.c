/* SQL of the people's own endpoints: tenant and portal sign-in, MFA, and /api/v1/me.
 * Same rules as statements.c: %s arguments in order, an argument used twice is bound once in a
 * leading "args" CTE, results are one JSON (or text) column. */
#include "store/statements.h"
#include "store/mfa_sql.h"

#include <stddef.h>

/* the user as the API shows it (the same members as the core's) */
#define U_JSON(u) \
    "json_build_object('id', " u ".id, 'email', " u ".email, 'role', " u ".role, " \
    "'tenant_id', " u ".tenant_id, 'partner_id', " u ".partner_id, 'first_name', " u ".first_name, " \
    "'last_name', " u ".last_name, 'display_name', " u ".display_name, 'status', " u ".status)"

/* the own profile: the user and the fields a person may edit, and the tenant */
#define PROFILE(u) \
    "(" U_JSON(u) "::jsonb || jsonb_build_object('phone', " u ".phone, 'locale', " u ".locale, " \
    "'timezone', " u ".timezone, 'email_verified', " u ".email_verified, 'mfa_enabled', " u ".mfa_enabled, " \
    "'last_login_at', " u ".last_login_at, 'password_changed_at', " u ".password_changed_at, " \
    "'created_at', " u ".created_at, 'updated_at', " u ".updated_at, " \
    "'tenant', (SELECT json_build_object('id', tt.id, 'slug', tt.slug, 'name', tt.name) " \
    "           FROM tenants tt WHERE tt.id = " u ".tenant_id)))"

/* the account, its tenant and its partner are usable */
#define U_LIVE(u, t, pa) \
    "(" u ".deleted_at IS NULL AND " u ".status = 'ACTIVE' " \
    "AND (" t ".id IS NULL OR (" t ".status = 'ACTIVE' AND " t ".deleted_at IS NULL)) " \
    "AND (" pa ".id IS NULL OR (" pa ".status = 'ACTIVE' AND " pa ".deleted_at IS NULL)))"

#define U_JOINS(u, t, pa) \
    " LEFT JOIN tenants " t " ON " t ".id = " u ".tenant_id" \
    " LEFT JOIN partners " pa " ON " pa ".id = coalesce(" u ".partner_id, " t ".partner_id)"

/* the tenant's MFA policy: settings.mfa_required = true */
#define MFA_REQUIRED(t) MFA_TENANT_REQUIRED(t)

/* a sign-in candidate: the account, its password digest, whether it may sign in, its tenant */
#define ACCOUNT(u, t, pa) \
    "json_build_object('user', " U_JSON(u) ", 'password_hash', " u ".password_hash, " \
    "'live', " U_LIVE(u, t, pa) ", 'mfa_enabled', " u ".mfa_enabled, 'methods', " MFA_METHODS(u, t) ", " \
    "'tenant', json_build_object('id', " t ".id, 'slug', " t ".slug, 'name', " t ".name, " \
    "'mfa_required', " MFA_REQUIRED(t) "))"

const sk_statement sk_statements_users[] = {
    /* ---- bearer tokens of a tenant's issuer: the session's user must belong to that tenant ---- */
    { "session_principal_tenant",
      "SELECT (" U_JSON("u") "::jsonb || jsonb_build_object('tenant_partner_id', t.partner_id))::text "
      "FROM sessions s JOIN users u ON u.id = s.user_id" U_JOINS("u", "t", "pa") " "
      "WHERE s.id = %s AND u.id = %s AND t.slug = %s AND s.revoked_at IS NULL AND s.expires_at > now() AND "
      U_LIVE("u", "t", "pa") },

    /* ---- sign-in ---- */
    /* the tenant of a login page and, when there is one, the account of that email in it */
    { "tenant_login_account",
      "WITH args AS (SELECT %s::text AS slug, %s::text AS email) "
      "SELECT json_build_object('tenant_id', t.id, 'account', "
      "(SELECT " ACCOUNT("u", "t", "pa") " FROM users u LEFT JOIN partners pa ON pa.id = t.partner_id "
      " WHERE u.tenant_id = t.id AND lower(u.email) = lower(args.email) AND u.deleted_at IS NULL))::text "
      "FROM tenants t, args WHERE t.slug = args.slug AND t.deleted_at IS NULL" },
    /* every tenant account of an email (portal sign-in), optionally in one tenant only */
    { "portal_accounts",
      "WITH args AS (SELECT %s::text AS email, %s::text AS tid) "
      "SELECT coalesce(json_agg(" ACCOUNT("u", "t", "pa") " ORDER BY t.name, t.id), '[]'::json)::text "
      "FROM args, users u JOIN tenants t ON t.id = u.tenant_id AND t.deleted_at IS NULL "
      "LEFT JOIN partners pa ON pa.id = t.partner_id "
      "WHERE lower(u.email) = lower(args.email) AND u.deleted_at IS NULL "
      "AND (args.tid IS NULL OR t.id = args.tid)" },
    { "user_session_create",
      "INSERT INTO sessions (user_id, tenant_id, partner_id, kind, ip_address, user_agent, expires_at, "
      "mfa_verified, auth_methods) "
      "VALUES (%s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s::int), %s::boolean, %s::jsonb) "
      "RETURNING id" },
    /* spends a refresh token of a person's session of this kind (and tenant, when slug is given) */
    { "user_refresh_spend",
      "WITH args AS (SELECT %s::text AS h, %s::text AS kind, %s::text AS slug) "
      "UPDATE refresh_tokens r SET used_at = now() "
      "FROM args, sessions s JOIN users u ON u.id = s.user_id" U_JOINS("u", "t", "pa") " "
      "WHERE r.token_hash = args.h AND s.kind = args.kind AND (args.slug IS NULL OR t.slug = args.slug) "
      "AND r.used_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > now() AND s.id = r.session_id "
      "AND s.revoked_at IS NULL AND s.expires_at > now() AND " U_LIVE("u", "t", "pa") " "
      "RETURNING json_build_object('id', r.id::text, 'session_id', s.id, 'family_id', r.family_id, "
      "'scope', r.scope, 'slug', t.slug, 'user', " U_JSON("u") ")::text" },

    /* ---- one-time codes: MFA tokens of a sign-in, portal flow tokens ---- */
    { "user_otc_create",
      "INSERT INTO one_time_codes (purpose, tenant_id, user_id, email, code_hash, data, expires_at, ip_address) "
      "VALUES (%s, %s, %s, %s, %s, %s::jsonb, now() + make_interval(secs => %s::int), %s) RETURNING id" },
    /* counts one attempt on a live code (outside any transaction, so that failures count) */
    { "user_otc_attempt",
      "WITH args AS (SELECT %s::text AS purpose, %s::text AS h) "
      "UPDATE one_time_codes o SET attempts = o.attempts + 1 FROM args "
      "WHERE o.purpose = args.purpose AND o.code_hash = args.h AND o.used_at IS NULL "
      "AND o.expires_at > now() AND o.attempts < o.max_attempts "
      "RETURNING json_build_object('id', o.id, 'tenant_id', o.tenant_id, 'user_id', o.user_id, "
      "'email', o.email, 'data', o.data, 'attempts', o.attempts, 'max_attempts', o.max_attempts)::text" },
    /* the code is used: once only */
    { "user_otc_use", "UPDATE one_time_codes SET used_at = now() WHERE id = %s AND used_at IS NULL RETURNING id" },
    { "mfa_login_account",
      "SELECT " ACCOUNT("u", "t", "pa") "::text FROM users u" U_JOINS("u", "t", "pa") " "
      "WHERE u.id = %s AND u.deleted_at IS NULL" },

    /* ---- MFA methods ---- */
    { "mfa_state",
      "SELECT json_build_object('user', " U_JSON("u") ", 'mfa_enabled', u.mfa_enabled, "
      "'tenant_name', t.name, "
      "'totp', (SELECT json_build_object('id', m.id, 'last_used_step', m.last_used_step, "
      "         'secret', translate(encode(m.secret_sealed, 'base64'), E'\\n', '')) "
      "         FROM mfa_methods m WHERE m.user_id = u.id AND m.method_type = 'totp' "
      "         AND m.confirmed_at IS NOT NULL ORDER BY m.created_at DESC LIMIT 1), "
      "'pending', (SELECT json_build_object('id', m.id, "
      "         'secret', translate(encode(m.secret_sealed, 'base64'), E'\\n', '')) "
      "         FROM mfa_methods m WHERE m.user_id = u.id AND m.method_type = 'totp' "
      "         AND m.confirmed_at IS NULL AND m.created_at > now() - interval '1 hour' "
      "         ORDER BY m.created_at DESC LIMIT 1), "
      "'backup_codes_remaining', (SELECT count(*) FROM mfa_backup_codes b WHERE b.user_id = u.id "
      "         AND b.used_at IS NULL))::text "
      "FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.id = %s AND u.deleted_at IS NULL" },
    { "mfa_list",
      "SELECT json_build_object('mfa_enabled', u.mfa_enabled, 'methods', "
      "(SELECT coalesce(json_agg(json_build_object('id', m.id, 'method_type', m.method_type, 'name', m.name, "
      " 'confirmed', m.confirmed_at IS NOT NULL, 'confirmed_at', m.confirmed_at, 'created_at', m.created_at, "
      " 'last_used_at', m.last_used_at) ORDER BY m.created_at), '[]'::json) "
      " FROM mfa_methods m WHERE m.user_id = u.id AND m.confirmed_at IS NOT NULL), "
      "'backup_codes_remaining', (SELECT count(*) FROM mfa_backup_codes b WHERE b.user_id = u.id "
      " AND b.used_at IS NULL))::text "
      "FROM users u WHERE u.id = %s AND u.deleted_at IS NULL" },
    /* a new TOTP enrolment replaces any unfinished one */
    { "mfa_totp_begin",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS sec), "
      "d AS (DELETE FROM mfa_methods WHERE user_id = (SELECT uid FROM args) AND method_type = 'totp' "
      "      AND confirmed_at IS NULL) "
      "INSERT INTO mfa_methods (user_id, method_type, name, secret_sealed) "
      "SELECT uid, 'totp', 'Authenticator app', decode(sec, 'base64') FROM args RETURNING id" },
    /* accepts a step once: a step at or below the last accepted one is a replay */
    { "mfa_totp_use",
      "WITH args AS (SELECT %s::text AS id, %s::bigint AS step) "
      "UPDATE mfa_methods m SET last_used_step = args.step, last_used_at = now() FROM args "
      "WHERE m.id = args.id AND (m.last_used_step IS NULL OR m.last_used_step < args.step) RETURNING m.id" },
    { "mfa_totp_confirm",
      "UPDATE mfa_methods SET confirmed_at = now() WHERE id = %s AND confirmed_at IS NULL RETURNING id" },
    { "mfa_totp_remove",
      "WITH d AS (DELETE FROM mfa_methods WHERE user_id = %s AND method_type = 'totp' RETURNING id) "
      "SELECT count(*)::text FROM d" },
    { "mfa_user_sync",
      "UPDATE users u SET mfa_enabled = EXISTS (SELECT 1 FROM mfa_methods m WHERE m.user_id = u.id "
      "AND m.confirmed_at IS NOT NULL) WHERE u.id = %s" },
    /* a new set of backup codes (a JSON array of digests) replaces the old one */
    { "mfa_backup_replace",
      "WITH args AS (SELECT %s::text AS uid, %s::jsonb AS h), "
      "d AS (DELETE FROM mfa_backup_codes WHERE user_id = (SELECT uid FROM args)) "
      "INSERT INTO mfa_backup_codes (user_id, code_hash) "
      "SELECT args.uid, x FROM args, jsonb_array_elements_text(args.h) x" },
    { "mfa_backup_clear", "DELETE FROM mfa_backup_codes WHERE user_id = %s" },
    { "mfa_backup_use",
      "UPDATE mfa_backup_codes SET used_at = now() WHERE user_id = %s AND code_hash = %s AND used_at IS NULL "
      "RETURNING id::text" },

    /* ---- /api/v1/me ---- */
    { "me_get", "SELECT " PROFILE("u") "::text FROM users u WHERE u.id = %s AND u.deleted_at IS NULL" },
    /* only the members present in the body change */
    { "me_update",
      "WITH args AS (SELECT %s::text AS id, %s::jsonb AS b) "
      "UPDATE users u SET "
      "first_name = CASE WHEN b ? 'first_name' THEN b ->> 'first_name' ELSE u.first_name END, "
      "last_name = CASE WHEN b ? 'last_name' THEN b ->> 'last_name' ELSE u.last_name END, "
      "display_name = CASE WHEN b ? 'display_name' THEN b ->> 'display_name' ELSE u.display_name END, "
      "locale = CASE WHEN b ? 'locale' THEN b ->> 'locale' ELSE u.locale END, "
      "timezone = CASE WHEN b ? 'timezone' THEN b ->> 'timezone' ELSE u.timezone END, "
      "phone = CASE WHEN b ? 'phone' THEN b ->> 'phone' ELSE u.phone END "
      "FROM args WHERE u.id = args.id AND u.deleted_at IS NULL RETURNING " PROFILE("u") "::text" },
    /* the password digest and the tenant's minimum length (settings.password_min_length, default 8) */
    { "me_password_state",
      "SELECT json_build_object('password_hash', u.password_hash, 'min_length', "
      "CASE WHEN jsonb_typeof(t.settings -> 'password_min_length') = 'number' "
      "THEN greatest(1, least(1024, (t.settings ->> 'password_min_length')::numeric::int)) ELSE 8 END)::text "
      "FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.id = %s AND u.deleted_at IS NULL" },
    /* the current digest goes to the history before it is replaced */
    { "password_history_add",
      "INSERT INTO password_history (user_id, password_hash) "
      "SELECT id, password_hash FROM users WHERE id = %s AND password_hash IS NOT NULL" },
    { "me_password_set",
      "UPDATE users SET password_hash = %s, password_changed_at = now(), must_change_password = false "
      "WHERE id = %s AND deleted_at IS NULL RETURNING id" },
    /* ends every session of the user but one */
    { "sessions_revoke_others",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS keep, %s::text AS reason), "
      "s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = (SELECT reason FROM args) "
      "      WHERE user_id = (SELECT uid FROM args) AND id IS DISTINCT FROM (SELECT keep FROM args) "
      "      AND revoked_at IS NULL RETURNING id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "      WHERE session_id IN (SELECT id FROM s) AND revoked_at IS NULL RETURNING id) "
      "SELECT (SELECT count(*) FROM s)::text" },
    { "me_sessions",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS cur) "
      "SELECT coalesce(json_agg(json_build_object('id', s.id, 'kind', s.kind, 'tenant_id', s.tenant_id, "
      "'client_id', s.client_id, 'ip_address', s.ip_address, 'user_agent', s.user_agent, "
      "'created_at', s.created_at, 'last_seen_at', s.last_seen_at, 'expires_at', s.expires_at, "
      "'mfa_verified', s.mfa_verified, 'current', s.id = args.cur) ORDER BY s.created_at DESC, s.id), "
      "'[]'::json)::text "
      "FROM args, sessions s WHERE s.user_id = args.uid AND s.revoked_at IS NULL AND s.expires_at > now()" },
    { "me_session_revoke",
      "WITH args AS (SELECT %s::text AS id, %s::text AS uid), "
      "s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = 'user_revoked' "
      "      WHERE id = (SELECT id FROM args) AND user_id = (SELECT uid FROM args) AND revoked_at IS NULL "
      "      AND expires_at > now() RETURNING id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "      WHERE session_id IN (SELECT id FROM s) AND revoked_at IS NULL RETURNING id) "
      "SELECT id FROM s" },
    { "me_apps",
      "SELECT coalesce(json_agg(json_build_object('application_id', a.id, 'client_id', a.client_id, "
      "'name', a.name, 'description', a.description, 'scopes', c.scopes, 'granted_at', c.granted_at) "
      "ORDER BY c.granted_at DESC, c.id), '[]'::json)::text "
      "FROM oauth_consents c JOIN applications a ON a.id = c.application_id "
      "WHERE c.user_id = %s AND c.revoked_at IS NULL AND a.deleted_at IS NULL" },
    /* revokes the consent and the refresh tokens the user's grants gave that client */
    { "me_app_revoke",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS cid), "
      "c AS (UPDATE oauth_consents SET revoked_at = now() "
      "      WHERE user_id = (SELECT uid FROM args) AND revoked_at IS NULL AND application_id IN "
      "      (SELECT a.id FROM applications a, args WHERE a.client_id = args.cid AND a.deleted_at IS NULL) "
      "      RETURNING application_id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "      WHERE user_id = (SELECT uid FROM args) AND client_id = (SELECT cid FROM args) "
      "      AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM c) RETURNING id) "
      "SELECT json_build_object('application_id', (SELECT application_id FROM c LIMIT 1), "
      "'refresh_tokens_revoked', (SELECT count(*) FROM r))::text WHERE EXISTS (SELECT 1 FROM c)" },

    { NULL, NULL }
};
