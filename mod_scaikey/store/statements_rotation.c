/* SQL of signing-key rotation: the rotation lock, the state of an algorithm's keys, the status
 * moves of a rotation, new keys, and the administrators' list of keys.
 *
 * Life cycle: next -> current -> previous -> retired. A rotation runs in one transaction under
 * the rotation lock (a transaction-level advisory lock, so one server of many rotates). The only
 * UPDATEs of signing_keys are the status moves below, so updated_at (set by the touch trigger)
 * of a previous key is the moment it stopped signing. */
#include "store/statements.h"

#include <stddef.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* distinct from the start-up lock (7203110431) */
#define ROTATION_LOCK "7203110432"

const sk_statement sk_statements_rotation[] = {
    /* "true" when this transaction now holds the rotation lock, "false" when another holds it */
    { "rotation_lock_try", "SELECT pg_try_advisory_xact_lock(" ROTATION_LOCK ")::text" },
    /* waits for the lock (start-up only: the holder is a rotation, which is short) */
    { "rotation_lock", "SELECT 'locked' FROM pg_advisory_xact_lock(" ROTATION_LOCK ")" },

    /* alg -> {"current": kid | null, "next": kid | null, "age": seconds since the newest current
     * key of any algorithm was activated | null}. The age decides whether a scheduled rotation is
     * due: a server configured with another algorithm does not rotate again a key just made
     * current elsewhere. */
    { "rotation_state",
      "WITH args AS (SELECT %s::text AS alg) "
      "SELECT json_build_object("
      "'current', (SELECT k.kid FROM signing_keys k, args WHERE k.alg = args.alg AND k.status = 'current'), "
      "'age', (SELECT floor(extract(epoch FROM now() - max(coalesce(k.activated_at, k.created_at))))::bigint "
      "        FROM signing_keys k WHERE k.status = 'current'), "
      "'next', (SELECT k.kid FROM signing_keys k, args WHERE k.alg = args.alg AND k.status = 'next' "
      "         ORDER BY k.created_at LIMIT 1))::text" },

    /* alg, access token lifetime, margin (seconds) -> JSON array of the kids retired:
     * previous keys (any algorithm) that stopped signing longer ago than the longest token
     * lifetime (the access token TTL, any application's token_lifetime, the agents' 3600 of
     * oauth_client_tenant) plus the margin, and the next keys of other algorithms (they never
     * signed anything) */
    { "rotation_retire",
      "WITH args AS (SELECT %s::text AS alg, %s::int AS ttl, %s::int AS margin), "
      "lim AS (SELECT make_interval(secs => greatest(a.ttl, "
      "        coalesce((SELECT max(p.token_lifetime) FROM applications p), 0), "
      "        CASE WHEN EXISTS (SELECT 1 FROM mcp_agents) THEN 3600 ELSE 0 END) + a.margin) AS span "
      "        FROM args a), "
      "r AS (UPDATE signing_keys k SET status = 'retired', retired_at = now() FROM args a, lim "
      "      WHERE (k.status = 'previous' AND k.updated_at + lim.span <= now()) "
      "         OR (k.status = 'next' AND k.alg <> a.alg) "
      "      RETURNING k.kid) "
      "SELECT coalesce((SELECT json_agg(r.kid ORDER BY r.kid) FROM r), '[]'::json)::text" },

    /* alg -> {"previous": kid | null}: every current key becomes previous (a rotation moves the
     * whole installation to alg); the kid is the one of alg */
    { "rotation_demote",
      "WITH args AS (SELECT %s::text AS alg), "
      "d AS (UPDATE signing_keys k SET status = 'previous' WHERE k.status = 'current' "
      "      RETURNING k.kid, k.alg) "
      "SELECT json_build_object('previous', (SELECT d.kid FROM d, args WHERE d.alg = args.alg))::text" },

    /* alg -> kid of the next key that became current (none: no row) */
    { "rotation_promote",
      "WITH args AS (SELECT %s::text AS alg), "
      "n AS (SELECT k.kid FROM signing_keys k, args WHERE k.alg = args.alg AND k.status = 'next' "
      "      ORDER BY k.created_at LIMIT 1) "
      "UPDATE signing_keys k SET status = 'current', activated_at = now() FROM n WHERE k.kid = n.kid "
      "RETURNING k.kid" },

    /* kid, alg, status (current or next), sealed private JWK (base64), public JWK (JSON) */
    { "rotation_insert",
      "WITH args AS (SELECT %s::text AS kid, %s::text AS alg, %s::text AS status, %s::text AS sealed, "
      "%s::text AS jwk) "
      "INSERT INTO signing_keys (kid, alg, status, private_sealed, public_jwk, activated_at) "
      "SELECT kid, alg, status, decode(sealed, 'base64'), jwk::jsonb, "
      "CASE WHEN status = 'current' THEN now() END FROM args" },

    /* every key as administrators see it (never private material) */
    { "rotation_keys_list",
      "SELECT coalesce(json_agg(json_build_object('kid', k.kid, 'alg', k.alg, 'status', k.status, "
      "'created_at', " TS("k.created_at") ", 'activated_at', " TS("k.activated_at") ", "
      "'retired_at', " TS("k.retired_at") ") "
      "ORDER BY CASE k.status WHEN 'next' THEN 0 WHEN 'current' THEN 1 WHEN 'previous' THEN 2 ELSE 3 END, "
      "k.created_at DESC, k.kid), '[]'::json)::text FROM signing_keys k" },

    { NULL, NULL }
};
