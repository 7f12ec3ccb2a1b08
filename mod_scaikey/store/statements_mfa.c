/* SQL of email as a second factor: codes mailed for a sign-in challenge, a hosted sign-in or the
 * enrolment (one_time_codes, purpose 'mfa_email', only their digests), and the email method.
 * Same rules as statements.c. */
#include "store/statements.h"
#include "store/mfa_sql.h"

#include <stddef.h>

const sk_statement sk_statements_mfa[] = {
    /* a live sign-in challenge by the digest of its mfa_token, without counting an attempt */
    { "mfa_challenge_peek",
      "SELECT json_build_object('id', o.id, 'tenant_id', o.tenant_id, 'user_id', o.user_id, "
      "'attempts', o.attempts, 'max_attempts', o.max_attempts)::text FROM one_time_codes o "
      "WHERE o.purpose = 'mfa_login' AND o.code_hash = %s AND o.used_at IS NULL AND o.expires_at > now() "
      "AND o.attempts < o.max_attempts" },
    /* the user a code is mailed to: address, tenant name for the mail, methods */
    { "mfa_email_user",
      "SELECT json_build_object('id', u.id, 'email', u.email, 'tenant_id', u.tenant_id, "
      "'partner_id', u.partner_id, 'role', u.role, "
      "'tenant_name', coalesce(nullif(btrim(t.branding->>'name'), ''), t.name), "
      "'live', u.status = 'ACTIVE' AND (t.id IS NULL OR (t.status = 'ACTIVE' AND t.deleted_at IS NULL)), "
      "'email_enabled', " MFA_HAS("u", "email") ", 'totp_enabled', " MFA_HAS("u", "totp") ", "
      "'email_available', " MFA_EMAIL_AVAILABLE("u", "t") ", 'methods', " MFA_METHODS("u", "t") ", "
      "'has_password', u.password_hash IS NOT NULL)::text "
      "FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.id = %s AND u.deleted_at IS NULL" },
    /* a new code for (user, purpose): the earlier live codes for the same purpose stop working */
    { "mfa_email_code_create",
      "WITH args AS (SELECT %s::text AS id, %s::text AS uid, %s::text AS tid, lower(%s::text) AS email, "
      "  %s::text AS hash, %s::text AS f, %s::int AS ttl, %s::int AS max, %s::text AS ip), "
      "old AS (UPDATE one_time_codes o SET used_at = now() FROM args a "
      "  WHERE o.purpose = 'mfa_email' AND o.user_id = a.uid AND o.data ->> 'for' = a.f AND o.used_at IS NULL "
      "  RETURNING o.id) "
      "INSERT INTO one_time_codes (id, purpose, tenant_id, user_id, email, code_hash, data, expires_at, "
      "max_attempts, ip_address) "
      "SELECT id, 'mfa_email', tid, uid, email, hash, jsonb_build_object('for', f), "
      "now() + make_interval(secs => ttl), max, ip FROM args RETURNING id" },
    /* one attempt at the newest live code for (user, purpose), counted before the comparison */
    { "mfa_email_code_attempt",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS f), "
      "c AS (SELECT o.id FROM one_time_codes o, args a WHERE o.purpose = 'mfa_email' AND o.user_id = a.uid "
      "  AND o.data ->> 'for' = a.f AND o.used_at IS NULL AND o.expires_at > now() "
      "  AND o.attempts < o.max_attempts ORDER BY o.created_at DESC LIMIT 1) "
      "UPDATE one_time_codes o SET attempts = o.attempts + 1 FROM c "
      "WHERE o.id = c.id AND o.used_at IS NULL AND o.attempts < o.max_attempts "
      "RETURNING json_build_object('id', o.id, 'code_hash', o.code_hash, "
      "'attempts', o.attempts, 'max_attempts', o.max_attempts)::text" },
    /* the code is spent once */
    { "mfa_email_code_use",
      "UPDATE one_time_codes SET used_at = now() WHERE id = %s AND purpose = 'mfa_email' AND used_at IS NULL "
      "AND expires_at > now() RETURNING id" },
    /* every outstanding code of the user */
    { "mfa_email_codes_void",
      "UPDATE one_time_codes SET used_at = now() WHERE user_id = %s AND purpose = 'mfa_email' "
      "AND used_at IS NULL" },
    /* the email method: one per user (005's unique index); a second confirmation finds nothing */
    { "mfa_email_method_add",
      "INSERT INTO mfa_methods (user_id, method_type, name, confirmed_at) VALUES (%s, 'email', 'Email', now()) "
      "ON CONFLICT (user_id) WHERE method_type = 'email' DO NOTHING RETURNING id" },
    { "mfa_email_method_remove",
      "WITH d AS (DELETE FROM mfa_methods WHERE user_id = %s AND method_type = 'email' RETURNING id) "
      "SELECT count(*)::text FROM d" },
    { "mfa_email_method_used",
      "UPDATE mfa_methods SET last_used_at = now() WHERE user_id = %s AND method_type = 'email' "
      "AND confirmed_at IS NOT NULL" },
    /* a hosted sign-in leaves its MFA step once: a concurrent second submission finds nothing */
    { "flow_mfa_done",
      "UPDATE one_time_codes SET data = data || '{\"stage\": \"mfa_done\"}'::jsonb "
      "WHERE id = %s AND purpose = 'flow' AND used_at IS NULL AND expires_at > now() AND data ->> 'stage' = 'mfa' "
      "RETURNING id" },
    /* the second factor of a hosted sign-in: the SSO session is marked verified */
    { "sso_mfa_verified",
      "UPDATE sessions SET mfa_verified = true, auth_methods = %s::jsonb WHERE id = %s RETURNING id" },
    { NULL, NULL }
};
