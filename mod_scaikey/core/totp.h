/*
 * totp: one-time passwords of RFC 4226 (HOTP) and RFC 6238 (TOTP), and the base32 encoding
 * (RFC 4648) that authenticator apps use for the shared secret. Server-agnostic: no httpd types.
 *
 * Every function fails closed: bad input yields NULL / -1, never a crash.
 */
#ifndef SK_CORE_TOTP_H
#define SK_CORE_TOTP_H

#include <apr_pools.h>
#include <stddef.h>

#define SK_TOTP_PERIOD      30      /* seconds per step */
#define SK_TOTP_DIGITS      6
#define SK_TOTP_SECRET_LEN  20      /* 160-bit secrets (RFC 4226 §4 recommends at least that) */

typedef enum { SK_OTP_SHA1 = 0, SK_OTP_SHA256, SK_OTP_SHA512 } sk_otp_alg;

/* base32 of RFC 4648 §6, upper case, without '=' padding. */
char *sk_base32_encode(apr_pool_t *p, const unsigned char *in, size_t len);

/* base32; case-insensitive, trailing '=' padding optional. NULL on any other character or a
 * length no encoding has. The result is NUL-terminated beyond *outlen. */
unsigned char *sk_base32_decode(apr_pool_t *p, const char *in, size_t *outlen);

/* HOTP value (RFC 4226 §5.3) of counter: the truncated HMAC modulo 10^digits; digits 6..8.
 * -1 on bad arguments or when the HMAC cannot be computed. */
long sk_hotp(sk_otp_alg alg, const unsigned char *key, size_t keylen, unsigned long long counter,
             int digits);

/* The TOTP step of a unix time: floor(t / SK_TOTP_PERIOD); -1 for t < 0. */
long long sk_totp_step(long long t);

/* The code for step, zero-padded to digits characters. NULL on bad arguments. */
char *sk_totp_code(apr_pool_t *p, sk_otp_alg alg, const unsigned char *key, size_t keylen,
                   long long step, int digits);

/* Checks a 6-digit SHA-1 code against the steps of now ± window (window 0..10). A step at or
 * below last_step (a step already used; -1 when none was) never matches, so a code cannot be
 * replayed. Returns the matching step, or -1. Every candidate step is computed and compared
 * in constant time, whatever matches. */
long long sk_totp_verify(const unsigned char *key, size_t keylen, const char *code, long long now,
                         int window, long long last_step);

#endif
