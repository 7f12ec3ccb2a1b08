/* API keys: long-lived bearer credentials for scripts, CI and agents.
 *
 * A key is "sk_" followed by 43 base64url characters (256 random bits). Only its SHA-256 (hex) is
 * stored; the first 12 characters are kept as a prefix that lists show so people can tell their
 * keys apart. Server-agnostic: used by the API (which issues keys) and by the guard (which
 * accepts them). */
#ifndef SK_CORE_APIKEYS_H
#define SK_CORE_APIKEYS_H

#include <apr_pools.h>
#include <jansson.h>
#include "store/db.h"

#define SK_APIKEY_PREFIX      "sk_"          /* every key: "sk_" + 43 base64url chars (256 random bits) */
#define SK_APIKEY_LEN         46             /* strlen of a whole key */
#define SK_APIKEY_PREFIX_LEN  12             /* characters of a key shown in lists */

/* 1 when s has the prefix and the exact length/alphabet; 0 otherwise (NULL too). */
int sk_apikey_looks_like(const char *s);

/* A new key: *key the full key (shown once), *prefix its first 12 characters, *digest sha256 hex.
 * 0, or -1 when the random source failed (nothing is set then). */
int sk_apikey_new(apr_pool_t *p, const char **key, const char **prefix, const char **digest);

/* Looks an active, unexpired, undeleted key up by digest; *out (new ref) =
 *   {"id","name","key_type","scopes":[...],"tenant_id","user_id","agent_id","expires_at":unix|null,
 *    "subject": user id or agent client_id, "email": owner's email or null, "role": owner's role or
 *    null, "partner_id": owner's (or tenant's) partner or null}.
 * The owner must be live too (user ACTIVE and not deleted, tenant ACTIVE, agent ACTIVE, and their
 * partner ACTIVE). Updates last_used_at at most once per 60 s per key, in the same statement.
 * SK_DB_NOTFOUND for unknown/revoked/expired keys and for anything that is not shaped like a key
 * (then the store is not asked at all). */
sk_db_status sk_apikey_lookup(sk_db *db, const char *key, json_t **out);

/* Parses an ISO 8601 date and time, "YYYY-MM-DDTHH:MM[:SS[.fraction]]" with "Z", "+HH:MM",
 * "+HHMM" or "+HH" (or '-'); without an offset the time is UTC. A space may stand for the 'T'.
 * 0 and *usec = microseconds since the epoch (UTC), or -1 when s is not such a time or names a
 * day that does not exist. */
int sk_apikey_parse_time(const char *s, long long *usec);

#endif
