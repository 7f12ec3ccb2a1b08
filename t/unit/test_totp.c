/*
 * Unit tests for mod_scaikey/core/totp: base32 (RFC 4648 §10), HOTP (RFC 4226 appendix D) and
 * TOTP (RFC 6238 appendix B). TAP on stdout.
 */
#include <check.h>
#include "unit_main.h"
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "core/totp.h"

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

#define SEED1   "12345678901234567890"
#define SEED256 "12345678901234567890123456789012"
#define SEED512 "1234567890123456789012345678901234567890123456789012345678901234"

START_TEST(base32_vectors)
{
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI" };
    static const char *const padded[] = { "", "MY======", "MZXQ====", "MZXW6===", "MZXW6YQ=", "MZXW6YTB",
                                          "MZXW6YTBOI======" };
    size_t i, n;
    for (i = 0; i < sizeof(plain) / sizeof(*plain); i++) {
        unsigned char *d;
        ck_assert_str_eq(sk_base32_encode(pool, (const unsigned char *)plain[i], strlen(plain[i])), enc[i]);
        d = sk_base32_decode(pool, enc[i], &n);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(n, strlen(plain[i]));
        ck_assert_mem_eq(d, plain[i], n);
        d = sk_base32_decode(pool, padded[i], &n);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(n, strlen(plain[i]));
    }
    ck_assert_str_eq((char *)sk_base32_decode(pool, "mzxw6ytboi", &n), "foobar");
    ck_assert_str_eq(sk_base32_encode(pool, (const unsigned char *)SEED1, 20),
                     "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}
END_TEST

START_TEST(base32_rejects)
{
    size_t n;
    ck_assert_ptr_null(sk_base32_decode(pool, "MZXW1", &n));      /* '1' is not in the alphabet */
    ck_assert_ptr_null(sk_base32_decode(pool, "MZ XW", &n));
    ck_assert_ptr_null(sk_base32_decode(pool, "M", &n));          /* impossible lengths */
    ck_assert_ptr_null(sk_base32_decode(pool, "MZX", &n));
    ck_assert_ptr_null(sk_base32_decode(pool, "MZXW6Y", &n));
    ck_assert_ptr_null(sk_base32_decode(pool, "MZ=XW", &n));      /* '=' inside */
    ck_assert_ptr_null(sk_base32_decode(pool, NULL, &n));
    ck_assert_ptr_null(sk_base32_encode(pool, NULL, 3));
}
END_TEST

START_TEST(hotp_rfc4226)
{
    static const long want[] = { 755224, 287082, 359152, 969429, 338314,
                                 254676, 287922, 162583, 399871, 520489 };
    unsigned long long c;
    for (c = 0; c < 10; c++)
        ck_assert_int_eq(sk_hotp(SK_OTP_SHA1, (const unsigned char *)SEED1, 20, c, 6), want[c]);
    ck_assert_int_eq(sk_hotp(SK_OTP_SHA1, (const unsigned char *)SEED1, 20, 0, 5), -1);
    ck_assert_int_eq(sk_hotp(SK_OTP_SHA1, (const unsigned char *)SEED1, 20, 0, 9), -1);
    ck_assert_int_eq(sk_hotp(SK_OTP_SHA1, NULL, 20, 0, 6), -1);
}
END_TEST

START_TEST(totp_rfc6238)
{
    static const struct { long long t; const char *sha1, *sha256, *sha512; } v[] = {
        { 59LL,          "94287082", "46119246", "90693936" },
        { 1111111109LL,  "07081804", "68084774", "25091201" },
        { 1111111111LL,  "14050471", "67062674", "99943326" },
        { 1234567890LL,  "89005924", "91819424", "93441116" },
        { 2000000000LL,  "69279037", "90698825", "38618901" },
        { 20000000000LL, "65353130", "77737706", "47863826" },
    };
    size_t i;
    for (i = 0; i < sizeof(v) / sizeof(*v); i++) {
        long long s = sk_totp_step(v[i].t);
        ck_assert_str_eq(sk_totp_code(pool, SK_OTP_SHA1, (const unsigned char *)SEED1, 20, s, 8), v[i].sha1);
        ck_assert_str_eq(sk_totp_code(pool, SK_OTP_SHA256, (const unsigned char *)SEED256, 32, s, 8), v[i].sha256);
        ck_assert_str_eq(sk_totp_code(pool, SK_OTP_SHA512, (const unsigned char *)SEED512, 64, s, 8), v[i].sha512);
        /* the 6-digit code is the last six digits of the 8-digit one */
        ck_assert_str_eq(sk_totp_code(pool, SK_OTP_SHA1, (const unsigned char *)SEED1, 20, s, 6), v[i].sha1 + 2);
    }
    ck_assert_str_eq(sk_totp_code(pool, SK_OTP_SHA1, (const unsigned char *)SEED1, 20, sk_totp_step(59), 6), "287082");
    ck_assert_int_eq(sk_totp_step(59), 1);
    ck_assert_int_eq(sk_totp_step(60), 2);
    ck_assert_int_eq(sk_totp_step(-1), -1);
    ck_assert_ptr_null(sk_totp_code(pool, SK_OTP_SHA1, (const unsigned char *)SEED1, 20, -1, 6));
}
END_TEST

START_TEST(totp_verify_window_and_replay)
{
    const unsigned char *k = (const unsigned char *)SEED1;
    long long t = 1111111109LL, s = sk_totp_step(t);
    const char *now = sk_totp_code(pool, SK_OTP_SHA1, k, 20, s, 6);
    const char *prev = sk_totp_code(pool, SK_OTP_SHA1, k, 20, s - 1, 6);
    const char *next = sk_totp_code(pool, SK_OTP_SHA1, k, 20, s + 1, 6);
    const char *far = sk_totp_code(pool, SK_OTP_SHA1, k, 20, s + 2, 6);

    ck_assert_str_eq(now, "081804");
    ck_assert_int_eq(sk_totp_verify(k, 20, now, t, 1, -1), s);
    ck_assert_int_eq(sk_totp_verify(k, 20, prev, t, 1, -1), s - 1);
    ck_assert_int_eq(sk_totp_verify(k, 20, next, t, 1, -1), s + 1);
    ck_assert_int_eq(sk_totp_verify(k, 20, far, t, 1, -1), -1);      /* outside the window */
    ck_assert_int_eq(sk_totp_verify(k, 20, prev, t, 0, -1), -1);
    /* replay: a used step and anything before it never match again */
    ck_assert_int_eq(sk_totp_verify(k, 20, now, t, 1, s), -1);
    ck_assert_int_eq(sk_totp_verify(k, 20, prev, t, 1, s), -1);
    ck_assert_int_eq(sk_totp_verify(k, 20, next, t, 1, s), s + 1);
    ck_assert_int_eq(sk_totp_verify(k, 20, now, t, 1, s - 1), s);
    /* malformed codes */
    ck_assert_int_eq(sk_totp_verify(k, 20, "08180", t, 1, -1), -1);
    ck_assert_int_eq(sk_totp_verify(k, 20, "0818045", t, 1, -1), -1);
    ck_assert_int_eq(sk_totp_verify(k, 20, "08180a", t, 1, -1), -1);
    ck_assert_int_eq(sk_totp_verify(k, 20, " 81804", t, 1, -1), -1);
    ck_assert_int_eq(sk_totp_verify(k, 20, NULL, t, 1, -1), -1);
    ck_assert_int_eq(sk_totp_verify(k, 20, now, t, 11, -1), -1);
    /* another key */
    ck_assert_int_eq(sk_totp_verify((const unsigned char *)SEED256, 32, now, t, 1, -1), -1);
}
END_TEST

static Suite *totp_suite(void)
{
    Suite *s = suite_create("totp");
    TCase *tc = tcase_create("totp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, base32_vectors);
    tcase_add_test(tc, base32_rejects);
    tcase_add_test(tc, hotp_rfc4226);
    tcase_add_test(tc, totp_rfc6238);
    tcase_add_test(tc, totp_verify_window_and_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sk_unit_run(totp_suite());
}
