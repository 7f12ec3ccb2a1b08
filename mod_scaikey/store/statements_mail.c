/* SQL of the flows that send mail: email code sign-in, password reset, email verification.
 * One-time codes and links live in one_time_codes, only as digests. */
#include "store/statements.h"

#include <stddef.h>

/* the account, its tenant and the tenant's partner are usable */
#define LIVE(u, t, pa) \
    "(" u ".deleted_at IS NULL AND " u ".status = 'ACTIVE' AND " t ".status = 'ACTIVE' AND " t ".deleted_at IS NULL " \
    "AND (" pa ".id IS NULL OR (" pa ".status = 'ACTIVE' AND " pa ".deleted_at IS NULL)))"

#define MAIL_USER_JSON \
    "json_build_object('id', u.id, 'email', u.email, 'tenant_id', u.tenant_id, 'partner_id', u.partner_id, " \
    "'role', u.role, 'live', " LIVE("u", "t", "pa") ")::text "

#define MAIL_USER_FROM \
    "FROM users u JOIN tenants t ON t.id = u.tenant_id LEFT JOIN partners pa ON pa.id = t.partner_id"

const sk_statement sk_statements_mail[] = {
    /* a tenant of the sign-in pages: the name its mail shows and its password policy */
    { "mail_tenant",
      "SELECT json_build_object('id', t.id, 'slug', t.slug, "
      "'display_name', coalesce(nullif(btrim(t.branding->>'name'), ''), t.name), "
      "'live', t.status = 'ACTIVE' AND (p.id IS NULL OR (p.status = 'ACTIVE' AND p.deleted_at IS NULL)), "
      "'password_min_length', CASE WHEN jsonb_typeof(t.settings->'password_min_length') = 'number' "
      "THEN least(greatest((t.settings->>'password_min_length')::numeric, 0), 1024)::int END)::text "
      "FROM tenants t LEFT JOIN partners p ON p.id = t.partner_id WHERE t.slug = %s AND t.deleted_at IS NULL" },
    /* the tenant's account with this address */
    { "mail_user_by_email",
      "WITH args AS (SELECT %s::text AS tid, %s::text AS email) "
      "SELECT " MAIL_USER_JSON MAIL_USER_FROM ", args "
      "WHERE u.tenant_id = args.tid AND lower(u.email) = lower(args.email) AND u.deleted_at IS NULL" },
    { "mail_user_by_id",
      "WITH args AS (SELECT %s::text AS tid, %s::text AS uid) "
      "SELECT " MAIL_USER_JSON MAIL_USER_FROM ", args "
      "WHERE u.tenant_id = args.tid AND u.id = args.uid AND u.deleted_at IS NULL" },
    /* a new code or link; earlier ones of the same purpose for the address stop working */
    { "otc_create",
      "WITH args AS (SELECT %s::text AS id, %s::text AS purpose, %s::text AS tid, %s::text AS uid, "
      "  lower(%s::text) AS email, %s::text AS hash, %s::int AS ttl, %s::int AS max, %s::text AS ip), "
      "old AS (UPDATE one_time_codes o SET used_at = now() FROM args a "
      "  WHERE o.purpose = a.purpose AND o.tenant_id IS NOT DISTINCT FROM a.tid AND o.email = a.email "
      "  AND o.used_at IS NULL RETURNING o.id) "
      "INSERT INTO one_time_codes (id, purpose, tenant_id, user_id, email, code_hash, expires_at, max_attempts, ip_address) "
      "SELECT id, purpose, tid, uid, email, hash, now() + make_interval(secs => ttl), max, ip FROM args "
      "RETURNING id" },
    /* one attempt at the newest live sign-in code of the address: counted before the comparison,
     * so concurrent guesses cannot go beyond max_attempts */
    { "otc_attempt",
      "WITH args AS (SELECT %s::text AS purpose, %s::text AS tid, lower(%s::text) AS email), "
      "c AS (SELECT o.id FROM one_time_codes o, args a WHERE o.purpose = a.purpose AND o.tenant_id = a.tid "
      "  AND o.email = a.email AND o.used_at IS NULL AND o.expires_at > now() AND o.attempts < o.max_attempts "
      "  ORDER BY o.created_at DESC LIMIT 1) "
      "UPDATE one_time_codes o SET attempts = o.attempts + 1 FROM c "
      "WHERE o.id = c.id AND o.used_at IS NULL AND o.attempts < o.max_attempts "
      "RETURNING json_build_object('id', o.id, 'code_hash', o.code_hash, 'user_id', o.user_id, "
      "'attempts', o.attempts, 'max_attempts', o.max_attempts)::text" },
    /* spends a code or link once */
    { "otc_use",
      "UPDATE one_time_codes SET used_at = now() WHERE id = %s AND used_at IS NULL AND expires_at > now() "
      "RETURNING id" },
    /* a live link by its digest */
    { "otc_by_hash",
      "WITH args AS (SELECT %s::text AS purpose, %s::text AS hash) "
      "SELECT json_build_object('id', o.id, 'user_id', o.user_id, 'tenant_id', o.tenant_id, 'email', o.email)::text "
      "FROM one_time_codes o, args a WHERE o.purpose = a.purpose AND o.code_hash = a.hash "
      "AND o.used_at IS NULL AND o.expires_at > now() AND o.user_id IS NOT NULL" },
    /* every outstanding code of the user for a purpose stops working */
    { "otc_void_user",
      "UPDATE one_time_codes SET used_at = now() WHERE user_id = %s AND purpose = %s AND used_at IS NULL" },
    /* the new password, remembered in the history */
    { "password_reset_set",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS hash), "
      "u AS (UPDATE users SET password_hash = (SELECT hash FROM args), password_changed_at = now(), "
      "      must_change_password = false WHERE id = (SELECT uid FROM args) AND deleted_at IS NULL RETURNING id) "
      "INSERT INTO password_history (user_id, password_hash) SELECT id, (SELECT hash FROM args) FROM u "
      "RETURNING id::text" },
    /* the session of a sign-in-code refresh token of the tenant (spent or not) */
    { "email_code_token_session",
      "WITH args AS (SELECT %s::text AS h, %s::text AS tid, %s::text AS cid) "
      "SELECT s.id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id, args a "
      "WHERE r.token_hash = a.h AND s.kind = 'user' AND s.tenant_id = a.tid AND r.client_id = a.cid" },
    /* email verification */
    { "mail_me",
      "SELECT json_build_object('id', u.id, 'email', u.email, 'tenant_id', u.tenant_id, "
      "'email_verified', u.email_verified, "
      "'tenant_name', coalesce(nullif(btrim(t.branding->>'name'), ''), t.name))::text "
      "FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.id = %s AND u.deleted_at IS NULL" },
    { "user_email_verified",
      "WITH args AS (SELECT %s::text AS uid, %s::text AS email) "
      "UPDATE users u SET email_verified = true FROM args a "
      "WHERE u.id = a.uid AND lower(u.email) = lower(a.email) AND u.deleted_at IS NULL RETURNING u.id" },
    { NULL, NULL }
};
