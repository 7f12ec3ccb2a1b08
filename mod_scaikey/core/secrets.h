/*
 * secrets: randomness, encodings, digests, constant-time comparison and
 * authenticated encryption. Server-agnostic: no httpd types.
 *
 * Every function fails closed: a NULL input yields NULL / -1 / 0, never a crash.
 * Memory handed back to callers comes from the given pool.
 */
#ifndef SK_CORE_SECRETS_H
#define SK_CORE_SECRETS_H

#include <apr_pools.h>
#include <stddef.h>

#define SK_AEAD_KEY_LEN   32
#define SK_AEAD_NONCE_LEN 12
#define SK_AEAD_TAG_LEN   16

/* 0 ok, -1 failure (the CSPRNG could not deliver). */
int   sk_random_bytes(unsigned char *buf, size_t n);

/* prefix + base64url(nbytes random bytes); prefix may be NULL. nbytes must be 1..4096. */
char *sk_random_token(apr_pool_t *p, const char *prefix, size_t nbytes);

/* prefix + 16 characters from [a-z0-9], uniformly distributed (rejection sampling). */
char *sk_random_id(apr_pool_t *p, const char *prefix);

/* n (1..1024) uniformly distributed decimal digits. */
char *sk_random_digits(apr_pool_t *p, int n);

/* base64url without padding. */
char *sk_b64url_encode(apr_pool_t *p, const unsigned char *in, size_t len);

/* base64url; padding optional (but correct if present). NULL on any character outside the
 * alphabet, '=' anywhere but at the end, an impossible length, or non-zero trailing bits
 * (only the canonical encoding is accepted). The result is NUL-terminated beyond *outlen. */
unsigned char *sk_b64url_decode(apr_pool_t *p, const char *in, size_t *outlen);

/* standard base64 with padding. */
char *sk_b64_encode(apr_pool_t *p, const unsigned char *in, size_t len);

/* standard base64, same strictness as sk_b64url_decode. */
unsigned char *sk_b64_decode(apr_pool_t *p, const char *in, size_t *outlen);

/* SHA-256 of data (NULL data is hashed as the empty input); out NULL -> no-op. */
void  sk_sha256(const void *data, size_t len, unsigned char out[32]);

/* lowercase hex SHA-256 of the NUL-terminated string. */
char *sk_sha256_hex(apr_pool_t *p, const char *s);

/* lowercase hex HMAC-SHA-256. key must not be NULL (keylen may be 0). */
char *sk_hmac_sha256_hex(apr_pool_t *p, const unsigned char *key, size_t keylen,
                         const void *data, size_t len);

/* 1 if equal; time independent of the content. NULL or different lengths -> 0. */
int   sk_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* sk_ct_equal on two NUL-terminated strings; NULL on either side -> 0. */
int   sk_ct_streq(const char *a, const char *b);

/* AES-256-GCM. sealed = 12-byte random nonce || ciphertext || 16-byte tag.
 * aad (NUL-terminated) may be NULL: then no associated data. 0 ok, -1 failure. */
int   sk_aead_seal(apr_pool_t *p, const unsigned char key[32], const char *aad,
                   const unsigned char *pt, size_t ptlen,
                   unsigned char **out, size_t *outlen);

/* 0 ok; -1 if tampered, too short, wrong key or wrong aad. On success *out is NUL-terminated
 * beyond *outlen; on failure *out is NULL. */
int   sk_aead_open(apr_pool_t *p, const unsigned char key[32], const char *aad,
                   const unsigned char *sealed, size_t len,
                   unsigned char **out, size_t *outlen);

/* 1 if s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
int   sk_utf8_valid(const char *s, size_t len);

#endif
