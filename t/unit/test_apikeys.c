/*
 * Unit tests for mod_scaikey/core/apikeys: the shape of keys, making them, the look-up's
 * refusal of malformed keys and what it asks the store, ISO 8601 times. TAP on stdout.
 */
#include <check.h>
#include "unit_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <jansson.h>

#include "core/apikeys.h"
#include "core/secrets.h"

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
}

/* ------------------------------------------------------------------ a store that records */

static int store_calls;
static char store_label[64];
static char store_arg[128];
static int store_nargs;

/* The look-up's only way to the database: records the query and answers a fixed row. */
sk_db_status sk_db_json(sk_db *db, const char *label, int n, const char *const *args, json_t **out)
{
    store_calls++;
    snprintf(store_label, sizeof store_label, "%s", label);
    snprintf(store_arg, sizeof store_arg, "%s", n > 0 && args[0] ? args[0] : "");
    store_nargs = n;
    *out = json_pack("{s:s}", "id", "key_test");
    return SK_DB_OK;
}

static char fake_db_storage;
#define FAKE_DB ((sk_db *)(void *)&fake_db_storage)

static void store_reset(void)
{
    store_calls = 0;
    store_nargs = 0;
    store_label[0] = store_arg[0] = '\0';
}

/* ------------------------------------------------------------------ shape */

static char *repeat(char c, int n)
{
    char *s = apr_palloc(pool, (apr_size_t)n + 1);
    memset(s, c, (size_t)n);
    s[n] = '\0';
    return s;
}

START_TEST(looks_like_accepts)
{
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "sk_", repeat('A', 43), NULL)), 1);
    ck_assert_int_eq(sk_apikey_looks_like("sk_GDjeKTfAaJwi4sLo-2AdimcK_Ya4l0KtU-4as2nJfJ8"), 1);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "sk_", repeat('-', 20), repeat('_', 13),
                                                      "0123456789", NULL)), 1);
}
END_TEST

START_TEST(looks_like_refuses)
{
    const char *body = repeat('A', 43);
    const char *bad_chars[] = { "+", "/", "=", " ", ".", "\xc3", "%", "\t" };
    size_t i;
    ck_assert_int_eq(sk_apikey_looks_like(NULL), 0);
    ck_assert_int_eq(sk_apikey_looks_like(""), 0);
    ck_assert_int_eq(sk_apikey_looks_like("sk_"), 0);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "sk_", repeat('A', 42), NULL)), 0);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "sk_", repeat('A', 44), NULL)), 0);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "SK_", body, NULL)), 0);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "pk_", body, NULL)), 0);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "sk-", body, NULL)), 0);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, " sk_", repeat('A', 42), NULL)), 0);
    ck_assert_int_eq(sk_apikey_looks_like(apr_pstrcat(pool, "sk_", body, "\n", NULL)), 0);
    for (i = 0; i < sizeof bad_chars / sizeof *bad_chars; i++) {
        const char *k = apr_pstrcat(pool, "sk_", repeat('A', 20), bad_chars[i], repeat('A', 22), NULL);
        ck_assert_msg(!sk_apikey_looks_like(k), "accepted a key holding '%s'", bad_chars[i]);
    }
    /* a JWT is not an API key */
    ck_assert_int_eq(sk_apikey_looks_like("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), 0);
}
END_TEST

/* ------------------------------------------------------------------ new keys */

START_TEST(new_key_shape)
{
    const char *key, *prefix, *digest;
    unsigned char *raw;
    size_t len;
    int i;

    ck_assert_int_eq(sk_apikey_new(pool, &key, &prefix, &digest), 0);
    ck_assert_uint_eq(strlen(key), SK_APIKEY_LEN);
    ck_assert_int_eq(strncmp(key, SK_APIKEY_PREFIX, 3), 0);
    ck_assert_int_eq(sk_apikey_looks_like(key), 1);
    /* the body is 256 bits, canonically encoded */
    raw = sk_b64url_decode(pool, key + 3, &len);
    ck_assert_ptr_nonnull(raw);
    ck_assert_uint_eq(len, 32);
    /* the prefix is the key's first 12 characters */
    ck_assert_uint_eq(strlen(prefix), SK_APIKEY_PREFIX_LEN);
    ck_assert_int_eq(strncmp(prefix, key, SK_APIKEY_PREFIX_LEN), 0);
    /* the digest is the lowercase hex SHA-256 of the whole key */
    ck_assert_str_eq(digest, sk_sha256_hex(pool, key));
    ck_assert_uint_eq(strlen(digest), 64);
    for (i = 0; i < 64; i++)
        ck_assert(strchr("0123456789abcdef", digest[i]) != NULL);
}
END_TEST

START_TEST(new_keys_differ)
{
    const char *keys[64], *prefix, *digest;
    int i, j;
    for (i = 0; i < 64; i++)
        ck_assert_int_eq(sk_apikey_new(pool, &keys[i], &prefix, &digest), 0);
    for (i = 0; i < 64; i++)
        for (j = i + 1; j < 64; j++)
            ck_assert_str_ne(keys[i], keys[j]);
}
END_TEST

/* ------------------------------------------------------------------ look-up */

START_TEST(lookup_refuses_malformed_without_the_store)
{
    const char *bad[] = { "", "sk_short", "Bearer x", "sk_GDjeKTfAaJwi4sLo-2AdimcK_Ya4l0KtU-4as2nJfJ8x",
                          "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" };
    json_t *out = (json_t *)1;
    size_t i;
    store_reset();
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        out = (json_t *)1;
        ck_assert_int_eq(sk_apikey_lookup(FAKE_DB, bad[i], &out), SK_DB_NOTFOUND);
        ck_assert_ptr_null(out);
    }
    ck_assert_int_eq(sk_apikey_lookup(FAKE_DB, NULL, &out), SK_DB_NOTFOUND);
    ck_assert_int_eq(store_calls, 0);
}
END_TEST

START_TEST(lookup_asks_by_digest)
{
    const char *key = apr_pstrcat(pool, "sk_", repeat('A', 43), NULL);
    json_t *out = NULL;
    store_reset();
    ck_assert_int_eq(sk_apikey_lookup(FAKE_DB, key, &out), SK_DB_OK);
    ck_assert_int_eq(store_calls, 1);
    ck_assert_str_eq(store_label, "apikey_lookup");
    ck_assert_int_eq(store_nargs, 1);
    ck_assert_str_eq(store_arg, "12576e7a680e2c3225b7d080cd3e1484262cfd95d5596652e4649a8325ac8ea8");
    ck_assert_str_eq(store_arg, sk_sha256_hex(pool, key));
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(json_string_value(json_object_get(out, "id")), "key_test");
    json_decref(out);
    /* no connection: an error, not "no such key" */
    ck_assert_int_eq(sk_apikey_lookup(NULL, key, &out), SK_DB_ERROR);
}
END_TEST

/* ------------------------------------------------------------------ ISO 8601 */

static long long parsed(const char *s)
{
    long long t = 0;
    ck_assert_msg(sk_apikey_parse_time(s, &t) == 0, "refused %s", s);
    return t;
}

START_TEST(time_parses)
{
    ck_assert(parsed("1970-01-01T00:00:00Z") == 0);
    ck_assert(parsed("1970-01-01T00:00:00") == 0);
    ck_assert(parsed("1969-12-31T23:59:59Z") == -1000000LL);
    ck_assert(parsed("2000-02-29T12:34:56Z") == 951827696LL * 1000000);
    ck_assert(parsed("2000-02-29t12:34:56z") == 951827696LL * 1000000);
    ck_assert(parsed("2000-02-29 12:34:56") == 951827696LL * 1000000);
    ck_assert(parsed("2000-02-29T14:34:56+02:00") == 951827696LL * 1000000);
    ck_assert(parsed("2000-02-29T14:34:56+0200") == 951827696LL * 1000000);
    ck_assert(parsed("2000-02-29T14:34:56+02") == 951827696LL * 1000000);
    ck_assert(parsed("2000-02-29T11:04:56-01:30") == 951827696LL * 1000000);
    ck_assert(parsed("2000-02-29T12:34Z") == 951827640LL * 1000000);
    ck_assert(parsed("2000-02-29T12:34:56.5Z") == 951827696LL * 1000000 + 500000);
    ck_assert(parsed("2000-02-29T12:34:56,123456789Z") == 951827696LL * 1000000 + 123456);
    ck_assert(parsed("9999-12-31T23:59:59Z") == 253402300799LL * 1000000);
}
END_TEST

START_TEST(time_refuses)
{
    const char *bad[] = {
        "", "now", "2030-01-01", "2030-01-01T", "2030-01-01T00", "2030-1-01T00:00:00Z",
        "2030-01-01T0:00:00Z", "30-01-01T00:00:00Z", "2030/01/01T00:00:00Z", "2030-01-01X00:00:00Z",
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2030-04-31T00:00:00Z", "2030-13-01T00:00:00Z",
        "2030-00-01T00:00:00Z", "2030-01-00T00:00:00Z", "2030-01-01T24:00:00Z", "2030-01-01T00:60:00Z",
        "2030-01-01T00:00:60Z", "0000-01-01T00:00:00Z", "2030-01-01T00:00:00+2", "2030-01-01T00:00:00+24:00",
        "2030-01-01T00:00:00+02:60", "2030-01-01T00:00:00+02:0", "2030-01-01T00:00:00.Z",
        "2030-01-01T00:00:00.1234567891Z", "2030-01-01T00:00:00Zjunk", "2030-01-01T00:00:00 Z",
        " 2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z\n", "+2030-01-01T00:00:00Z", "20300-01-01T00:00:00Z",
    };
    long long t = 42;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(sk_apikey_parse_time(bad[i], &t) == -1, "accepted '%s'", bad[i]);
    ck_assert_int_eq(sk_apikey_parse_time(NULL, &t), -1);
    ck_assert_int_eq(sk_apikey_parse_time("2030-01-01T00:00:00Z", NULL), -1);
    ck_assert(t == 42);
}
END_TEST

static Suite *apikeys_suite(void)
{
    Suite *s = suite_create("apikeys");
    TCase *tc;

    tc = tcase_create("shape");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, looks_like_accepts);
    tcase_add_test(tc, looks_like_refuses);
    suite_add_tcase(s, tc);

    tc = tcase_create("new");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, new_key_shape);
    tcase_add_test(tc, new_keys_differ);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lookup_refuses_malformed_without_the_store);
    tcase_add_test(tc, lookup_asks_by_digest);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, time_parses);
    tcase_add_test(tc, time_refuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sk_unit_run(apikeys_suite());
}
