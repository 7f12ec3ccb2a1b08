/* SQL of the OAuth 2.0 / OpenID Connect provider: refresh-token rotation, introspection,
 * revocation, userinfo. (The client look-ups the token endpoint runs on every request are in
 * statements.c.) */
#include "store/statements.h"

#include <stddef.h>

/* the user as the OAuth grants need it (identity claims) */
#define OAUTH_USER_JSON(u) \
    "json_build_object('id', " u ".id, 'email', " u ".email, 'role', " u ".role, " \
    "'tenant_id', " u ".tenant_id, 'partner_id', " u ".partner_id, 'first_name', " u ".first_name, " \
    "'last_name', " u ".last_name, 'display_name', " u ".display_name, " \
    "'email_verified', " u ".email_verified)"

/* the account, its tenant and its partner are usable */
#define OAUTH_ACCOUNT_LIVE(u, t, pa) \
    u ".deleted_at IS NULL AND " u ".status = 'ACTIVE' " \
    "AND (" t ".id IS NULL OR (" t ".status = 'ACTIVE' AND " t ".deleted_at IS NULL)) " \
    "AND (" pa ".id IS NULL OR (" pa ".status = 'ACTIVE' AND " pa ".deleted_at IS NULL))"

#define OAUTH_ACCOUNT_JOINS(u, t, pa) \
    " LEFT JOIN tenants " t " ON " t ".id = " u ".tenant_id" \
    " LEFT JOIN partners " pa " ON " pa ".id = coalesce(" u ".partner_id, " t ".partner_id)"

/* a refresh token that can be spent now (r: refresh_tokens, s: its session, u/t/pa: the account) */
#define OAUTH_REFRESH_LIVE \
    "r.used_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > now() AND s.kind <> 'admin' " \
    "AND s.revoked_at IS NULL AND s.expires_at > now() AND " OAUTH_ACCOUNT_LIVE("u", "t", "pa")

const sk_statement sk_statements_oauth[] = {
    /* names of the user's effective groups (direct and nested), for the "groups" claim */
    { "oauth_user_groups",
      "SELECT coalesce(json_agg(g.name ORDER BY g.name), '[]'::json)::text FROM groups g "
      "WHERE g.id IN (SELECT sk_user_groups(%s)) AND g.deleted_at IS NULL" },

    /* userinfo: the live account with the claims the scopes release */
    { "oauth_userinfo",
      "SELECT " OAUTH_USER_JSON("u") "::text FROM users u" OAUTH_ACCOUNT_JOINS("u", "t", "pa") " "
      "WHERE u.id = %s AND " OAUTH_ACCOUNT_LIVE("u", "t", "pa") },

    /* Spends an OAuth refresh token once, for the client it was issued to (token digest,
     * client_id). Concurrent presentations wait for the row lock, then see used_at set and get
     * nothing. */
    { "oauth_refresh_spend",
      "UPDATE refresh_tokens r SET used_at = now() "
      "FROM sessions s JOIN users u ON u.id = s.user_id" OAUTH_ACCOUNT_JOINS("u", "t", "pa") " "
      "WHERE r.token_hash = %s AND r.client_id = %s AND s.id = r.session_id AND " OAUTH_REFRESH_LIVE " "
      "RETURNING json_build_object('id', r.id::text, 'session_id', s.id, 'family_id', r.family_id, "
      "'client_id', r.client_id, 'scope', r.scope, 'session_tenant_id', s.tenant_id, "
      "'auth_time', extract(epoch FROM s.created_at)::bigint, 'user', " OAUTH_USER_JSON("u") ")::text" },

    /* A spent refresh token presented again: somebody holds a copy. Its whole family and every
     * other refresh token of its session are revoked and the session ends. (token digest) */
    { "oauth_refresh_reused",
      "WITH r AS (SELECT family_id, session_id, user_id, client_id FROM refresh_tokens "
      "           WHERE token_hash = %s AND used_at IS NOT NULL AND client_id IS NOT NULL), "
      "f AS (UPDATE refresh_tokens x SET revoked_at = now() WHERE (x.family_id IN (SELECT family_id FROM r) "
      "      OR x.session_id IN (SELECT session_id FROM r)) AND x.revoked_at IS NULL RETURNING x.id), "
      "s AS (UPDATE sessions x SET revoked_at = now(), revoked_reason = 'refresh_token_reuse' "
      "      WHERE x.id IN (SELECT session_id FROM r) AND x.revoked_at IS NULL "
      "      RETURNING x.id, x.tenant_id, x.partner_id) "
      "SELECT json_build_object('session_id', r.session_id, 'user_id', r.user_id, 'client_id', r.client_id, "
      "'family_id', r.family_id, 'tokens_revoked', (SELECT count(*) FROM f), "
      "'tenant_id', (SELECT tenant_id FROM s LIMIT 1), 'partner_id', (SELECT partner_id FROM s LIMIT 1))::text "
      "FROM r" },

    /* introspection of a refresh token (token digest, client_id): only for the client it was
     * issued to; no row otherwise */
    { "oauth_refresh_introspect",
      "SELECT json_build_object('active', (" OAUTH_REFRESH_LIVE "), 'client_id', r.client_id, "
      "'scope', r.scope, 'sub', r.user_id, 'sid', r.session_id, "
      "'iat', extract(epoch FROM r.created_at)::bigint, 'exp', extract(epoch FROM r.expires_at)::bigint)::text "
      "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id "
      "JOIN users u ON u.id = s.user_id" OAUTH_ACCOUNT_JOINS("u", "t", "pa") " "
      "WHERE r.token_hash = %s AND r.client_id = %s" },

    /* revocation of a refresh token by the client it was issued to: the whole family
     * (token digest, client_id); no row when the token is unknown or another client's */
    { "oauth_refresh_revoke",
      "WITH r AS (SELECT family_id FROM refresh_tokens WHERE token_hash = %s AND client_id = %s), "
      "f AS (UPDATE refresh_tokens x SET revoked_at = now() WHERE x.family_id IN (SELECT family_id FROM r) "
      "      AND x.revoked_at IS NULL RETURNING x.id) "
      "SELECT (SELECT count(*) FROM f)::text FROM r" },

    /* a client's access token revoked before it expires (jti, exp as unix seconds); expired
     * entries are purged a batch at a time */
    { "oauth_jti_revoke",
      "WITH args AS (SELECT %s::text AS id, %s::bigint AS exp), "
      "d AS (DELETE FROM revoked_jtis WHERE jti IN "
      "      (SELECT o.jti FROM revoked_jtis o WHERE o.expires_at < now() LIMIT 100)) "
      "INSERT INTO revoked_jtis (jti, expires_at) SELECT id, to_timestamp(exp) FROM args "
      "ON CONFLICT (jti) DO NOTHING" },

    /* a client's own token is usable: the client is active and the token not revoked
     * (client_id, jti) */
    { "client_token_live",
      "WITH args AS (SELECT %s::text AS cid, %s::text AS jti) "
      "SELECT 'live' FROM (SELECT a.status FROM applications a, args WHERE a.client_id = args.cid "
      "AND a.deleted_at IS NULL UNION ALL SELECT g.status FROM mcp_agents g, args "
      "WHERE g.client_id = args.cid AND g.deleted_at IS NULL) c WHERE c.status = 'ACTIVE' "
      "AND NOT EXISTS (SELECT 1 FROM revoked_jtis j, args WHERE j.jti = args.jti) LIMIT 1" },

    /* revocation of an access token that carries a session: the session ends (session id,
     * user id) */
    { "oauth_session_end",
      "WITH args AS (SELECT %s::text AS id, %s::text AS uid), "
      "s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = 'token_revoked' "
      "      WHERE id = (SELECT id FROM args) AND user_id = (SELECT uid FROM args) AND revoked_at IS NULL "
      "      RETURNING id), "
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "      WHERE session_id IN (SELECT id FROM s) AND revoked_at IS NULL RETURNING id) "
      "SELECT (SELECT count(*) FROM s)::text" },

    { NULL, NULL }
};
