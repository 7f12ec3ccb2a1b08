/*
 * jwt: signing keys (JWK) and compact JWS / JWT signing and verification.
 *
 * The only unit that talks to cjose; everything else sees sk_key and jansson values.
 * Algorithms are pinned to the key: a token is only checked with the algorithm its key was
 * made for, whatever its header asks for.
 */
#ifndef SK_CORE_JWT_H
#define SK_CORE_JWT_H

#include <apr_pools.h>
#include <jansson.h>

/* Longest compact token accepted by sk_jwt_verify and sk_jwt_peek_claims. */
#define SK_JWT_MAX_LEN 8192

typedef enum { SK_ALG_RS256 = 1, SK_ALG_ES256 = 2 } sk_alg;

/* A signing or verification key: cjose JWK + kid + alg + whether the private part is present.
 * Lives in (and is released with) the pool it was made from. Read-only after creation, so one
 * key may be used by several threads at once. */
typedef struct sk_key sk_key;

/* "RS256" / "ES256"; NULL for anything else. */
const char *sk_alg_name(sk_alg a);

/* 0 ok, -1 unknown (case-sensitive). */
int   sk_alg_parse(const char *s, sk_alg *out);

/* New private key: RSA 2048 (e=65537) or EC P-256. kid = RFC 7638 thumbprint. */
sk_key *sk_key_generate(apr_pool_t *p, sk_alg alg);

/* Private or public JWK JSON. kid = RFC 7638 thumbprint (a "kid" member in the JSON is ignored).
 * NULL if malformed, if kty/crv do not fit alg, if an "alg" member differs from alg, if a "use"
 * member is not "sig", if an RSA modulus is shorter than 2048 bits, or if a private key does not
 * sign verifiably. */
sk_key *sk_key_from_jwk_json(apr_pool_t *p, const char *json, sk_alg alg);

/* Private JWK JSON (a secret: store it encrypted). NULL if the key is public-only. */
char *sk_key_private_json(apr_pool_t *p, const sk_key *k);

/* NEW reference: public members + "kid", "alg", "use":"sig". NULL on error. */
json_t *sk_key_public_jwk(const sk_key *k);

const char *sk_key_kid(const sk_key *k);   /* NULL if k is NULL */
/* How k works (diagnostics and tests): SK_KEY_NATIVE_SIGN when it signs through OpenSSL directly,
 * SK_KEY_NATIVE_VERIFY when it checks signatures so; otherwise cjose does. */
#define SK_KEY_NATIVE_SIGN   1
#define SK_KEY_NATIVE_VERIFY 2
int sk_key_native(const sk_key *k);
sk_alg sk_key_alg(const sk_key *k);        /* 0 if k is NULL */

/* Signs claims (a JSON object, not stolen) as a compact JWS with the protected header
 * {"alg","kid","typ"}; typ NULL means "JWT". NULL on error or if k has no private part. */
char *sk_jwt_sign(apr_pool_t *p, const sk_key *k, json_t *claims, const char *typ);

/* Returns the key for kid, or NULL if unknown. */
typedef const sk_key *(*sk_key_lookup_fn)(void *ctx, const char *kid);

/* Verifies a compact JWS: at most SK_JWT_MAX_LEN bytes, exactly 3 non-empty unpadded base64url
 * segments, header and payload JSON objects (duplicate members refused), a "kid", no "crit",
 * and "alg" exactly the alg of the key lookup returns for that kid.
 * Success: claims (NEW reference, JSON object), *kid_out = kid (pool string) if kid_out != NULL.
 * Failure: NULL, *reason (if reason != NULL) = a short static English reason:
 * "malformed token", "token too large", "unsupported algorithm", "missing kid",
 * "unsupported header", "unknown key", "algorithm mismatch", "invalid signature". */
json_t *sk_jwt_verify(apr_pool_t *p, const char *compact, sk_key_lookup_fn lookup, void *ctx,
                      const char **kid_out, const char **reason);

/* Claims of a token WITHOUT verifying anything (diagnostics, introspection of foreign tokens).
 * NEW reference or NULL. */
json_t *sk_jwt_peek_claims(apr_pool_t *p, const char *compact);

/* Standard claim checks; now = unix seconds; iss/aud NULL = not checked; the aud claim may be a
 * string or an array of strings. exp required; nbf and iat optional; leeway seconds apply to all
 * three (an iat more than leeway in the future is refused). 0 ok, -1 with *reason:
 * "token expired", "token not yet valid", "token issued in the future", "issuer mismatch",
 * "audience mismatch", "missing exp", "invalid exp" / "invalid nbf" / "invalid iat" (not a
 * number), "malformed claims". */
int sk_claims_check(json_t *claims, const char *iss, const char *aud, long long now, int leeway,
                    const char **reason);

#endif
