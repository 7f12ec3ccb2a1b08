/*
 * es256: checks of ECDSA P-256 signatures with a table of multiples of the signer's public key.
 *
 * Checking an ES256 signature (r, s) of a digest e by a key Q means computing
 * R = (e/s)·G + (r/s)·Q and comparing R's x coordinate with r (SEC 1 v2, 4.1.4). OpenSSL has a
 * table of multiples of the generator G built in, so (e/s)·G is quick, but it multiplies Q from
 * scratch on every check: that is most of the 49 µs a check costs through EVP_PKEY_verify on
 * the development VM. The guard checks every token against one of the server's own few keys,
 * so each key gets a table too: a copy of the P-256 group whose generator is Q, precomputed by
 * OpenSSL (EC_GROUP_precompute_mult: about 150 KB and 20 ms, built once the key has made
 * `warmup` checks, so that keys that are only published never pay for one). A check is then two
 * table multiplications, a point addition and the inverse of s modulo the group order: about
 * 21 µs.
 *
 * Nothing here is secret (the key is public, the signature comes with the token), so nothing
 * needs to run in constant time. Every result that matters is checked: r and s in [1, n-1], the
 * inverse multiplied back to 1, R not the point at infinity. When a step fails the answer is
 * -1 and the caller checks through EVP_PKEY_verify.
 *
 * EC_GROUP_precompute_mult is marked deprecated in OpenSSL 3.0 (the EC_KEY-era API) and is
 * still part of it; it is the only way OpenSSL offers to build a table for a point that is not
 * a curve's own generator, hence OPENSSL_SUPPRESS_DEPRECATED in this file only.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/es256.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

#define P256_BYTES 32

enum { TABLE_NONE, TABLE_BUILDING, TABLE_READY, TABLE_FAILED };

/* a 256-bit number as four 64-bit words, least significant first */
typedef struct {
    uint64_t w[4];
} u256;

struct sk_es256 {
    EC_GROUP *curve;                 /* P-256 */
    EC_POINT *q;                     /* the public key */
    unsigned char order[P256_BYTES]; /* n, big-endian */
    u256 n;
    EC_GROUP *qgroup;                /* P-256 with q as generator, with its table: set before READY */
    unsigned warmup;
    atomic_uint checks;
    atomic_int state;
};

/* ---------------------------------------------------------------- the inverse of s modulo n */

static void u256_from_be(u256 *r, const unsigned char be[P256_BYTES])
{
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++)
            v = (v << 8) | be[(3 - i) * 8 + j];
        r->w[i] = v;
    }
}

static void u256_to_be(unsigned char be[P256_BYTES], const u256 *a)
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            be[(3 - i) * 8 + j] = (unsigned char)(a->w[i] >> (56 - 8 * j));
}

static int u256_is_one(const u256 *a)
{
    return a->w[0] == 1 && (a->w[1] | a->w[2] | a->w[3]) == 0;
}

static int u256_ge(const u256 *a, const u256 *b)
{
    for (int i = 3; i >= 0; i--)
        if (a->w[i] != b->w[i])
            return a->w[i] > b->w[i];
    return 1;
}

/* r = a + b; the carry out */
static uint64_t u256_add(u256 *r, const u256 *a, const u256 *b)
{
    unsigned __int128 c = 0;
    for (int i = 0; i < 4; i++) {
        c += (unsigned __int128)a->w[i] + b->w[i];
        r->w[i] = (uint64_t)c;
        c >>= 64;
    }
    return (uint64_t)c;
}

/* r = a - b; the borrow out */
static uint64_t u256_sub(u256 *r, const u256 *a, const u256 *b)
{
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t d = a->w[i] - b->w[i];
        uint64_t b1 = a->w[i] < b->w[i];
        r->w[i] = d - borrow;
        borrow = b1 | (d < borrow);
    }
    return borrow;
}

/* a = (top:a) >> 1 */
static void u256_shr1(u256 *a, uint64_t top)
{
    for (int i = 0; i < 3; i++)
        a->w[i] = (a->w[i] >> 1) | (a->w[i + 1] << 63);
    a->w[3] = (a->w[3] >> 1) | (top << 63);
}

/* x = x / 2 mod n, for x < n and n odd */
static void half_mod(u256 *x, const u256 *n)
{
    uint64_t carry = 0;
    if (x->w[0] & 1)
        carry = u256_add(x, x, n);
    u256_shr1(x, carry);
}

/* x = x - y mod n, for x, y < n */
static void sub_mod(u256 *x, const u256 *y, const u256 *n)
{
    if (u256_sub(x, x, y))
        u256_add(x, x, n);
}

/* out = a^-1 mod n by the binary extended Euclidean algorithm, for 0 < a < n and n an odd
 * prime. The invariants are x1·a = u and x2·a = v (mod n); u and v shrink to their gcd, 1. */
static void inverse_mod(u256 *out, const u256 *a, const u256 *n)
{
    u256 u = *a, v = *n, x1 = { { 1, 0, 0, 0 } }, x2 = { { 0, 0, 0, 0 } };
    while (!u256_is_one(&u) && !u256_is_one(&v)) {
        while (!(u.w[0] & 1)) {
            u256_shr1(&u, 0);
            half_mod(&x1, n);
        }
        while (!(v.w[0] & 1)) {
            u256_shr1(&v, 0);
            half_mod(&x2, n);
        }
        if (u256_ge(&u, &v)) {
            u256_sub(&u, &u, &v);
            sub_mod(&x1, &x2, n);
        } else {
            u256_sub(&v, &v, &u);
            sub_mod(&x2, &x1, n);
        }
    }
    *out = u256_is_one(&u) ? x1 : x2;
}

/* ---------------------------------------------------------------- the checker */

sk_es256 *sk_es256_new(const EVP_PKEY *pub, unsigned warmup)
{
    char name[64];
    unsigned char point[1 + 2 * P256_BYTES];
    size_t len = 0;
    if (pub == NULL || !EVP_PKEY_is_a(pub, "EC")
        || EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), NULL) != 1
        || (OBJ_sn2nid(name) != NID_X9_62_prime256v1 && EC_curve_nist2nid(name) != NID_X9_62_prime256v1)
        || EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len) != 1)
        return NULL;

    sk_es256 *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->warmup = warmup;
    atomic_init(&e->checks, 0);
    atomic_init(&e->state, TABLE_NONE);
    if ((e->curve = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL
        || (e->q = EC_POINT_new(e->curve)) == NULL
        || EC_POINT_oct2point(e->curve, e->q, point, len, NULL) != 1 /* checks it is on the curve */
        || EC_POINT_is_at_infinity(e->curve, e->q)
        || BN_bn2binpad(EC_GROUP_get0_order(e->curve), e->order, P256_BYTES) != P256_BYTES) {
        sk_es256_free(e);
        return NULL;
    }
    u256_from_be(&e->n, e->order);
    return e;
}

void sk_es256_free(sk_es256 *e)
{
    if (e == NULL)
        return;
    EC_GROUP_free(e->qgroup);
    EC_POINT_free(e->q);
    EC_GROUP_free(e->curve);
    free(e);
}

int sk_es256_ready(const sk_es256 *e)
{
    return e != NULL && atomic_load_explicit(&e->state, memory_order_acquire) == TABLE_READY;
}

static int build_table(sk_es256 *e)
{
    BN_CTX *ctx = BN_CTX_new();
    EC_GROUP *g = EC_GROUP_dup(e->curve);
    if (ctx == NULL || g == NULL
        || EC_GROUP_set_generator(g, e->q, EC_GROUP_get0_order(e->curve), EC_GROUP_get0_cofactor(e->curve)) != 1
        || EC_GROUP_precompute_mult(g, ctx) != 1) {
        EC_GROUP_free(g);
        BN_CTX_free(ctx);
        return -1;
    }
    BN_CTX_free(ctx);
    e->qgroup = g;
    return 0;
}

/* 0 < v < n, both big-endian */
static int in_range(const unsigned char v[P256_BYTES], const unsigned char n[P256_BYTES])
{
    static const unsigned char zero[P256_BYTES];
    return memcmp(v, zero, P256_BYTES) != 0 && memcmp(v, n, P256_BYTES) < 0;
}

static int check(const sk_es256 *e, const unsigned char *md, const unsigned char *sig)
{
    const unsigned char *rb = sig, *sb = sig + P256_BYTES;
    unsigned char wb[P256_BYTES];
    const BIGNUM *n = EC_GROUP_get0_order(e->curve);
    int rv = -1;

    if (!in_range(rb, e->order) || !in_range(sb, e->order))
        return 0;

    BN_CTX *ctx = BN_CTX_new();
    EC_POINT *a = EC_POINT_new(e->curve), *b = EC_POINT_new(e->curve);
    if (ctx == NULL || a == NULL || b == NULL)
        goto out;
    BN_CTX_start(ctx);
    BIGNUM *r = BN_CTX_get(ctx), *s = BN_CTX_get(ctx), *w = BN_CTX_get(ctx), *u1 = BN_CTX_get(ctx),
           *u2 = BN_CTX_get(ctx), *x = BN_CTX_get(ctx);
    if (x == NULL || BN_bin2bn(rb, P256_BYTES, r) == NULL || BN_bin2bn(sb, P256_BYTES, s) == NULL
        || BN_bin2bn(md, SK_ES256_DIGEST_LEN, u1) == NULL)
        goto done;

    /* w = s^-1 mod n, checked: w·s = 1 (mod n); OpenSSL's general inverse otherwise */
    u256 su, wu;
    u256_from_be(&su, sb);
    inverse_mod(&wu, &su, &e->n);
    u256_to_be(wb, &wu);
    if (BN_bin2bn(wb, P256_BYTES, w) == NULL || BN_mod_mul(x, w, s, n, ctx) != 1)
        goto done;
    if (!BN_is_one(x) && BN_mod_inverse(w, s, n, ctx) == NULL)
        goto done;

    /* u1 = e·w, u2 = r·w (mod n); R = u1·G + u2·Q */
    if (BN_mod_mul(u1, u1, w, n, ctx) != 1 || BN_mod_mul(u2, r, w, n, ctx) != 1)
        goto done;
    if (BN_is_zero(u1) ? EC_POINT_set_to_infinity(e->curve, a) != 1
                       : EC_POINT_mul(e->curve, a, u1, NULL, NULL, ctx) != 1)
        goto done;
    if (EC_POINT_mul(e->qgroup, b, u2, NULL, NULL, ctx) != 1 || EC_POINT_add(e->curve, a, a, b, ctx) != 1)
        goto done;
    if (EC_POINT_is_at_infinity(e->curve, a)) {
        rv = 0;
        goto done;
    }
    /* valid when R's x, reduced mod n, is r */
    if (EC_POINT_get_affine_coordinates(e->curve, a, x, NULL, ctx) != 1 || BN_nnmod(x, x, n, ctx) != 1)
        goto done;
    rv = BN_cmp(x, r) == 0;
done:
    BN_CTX_end(ctx);
out:
    EC_POINT_free(a);
    EC_POINT_free(b);
    BN_CTX_free(ctx);
    return rv;
}

int sk_es256_verify(sk_es256 *e, const unsigned char md[SK_ES256_DIGEST_LEN],
                    const unsigned char sig[SK_ES256_SIG_LEN])
{
    if (e == NULL)
        return -1;
    int state = atomic_load_explicit(&e->state, memory_order_acquire);
    if (state != TABLE_READY) {
        if (state != TABLE_NONE || atomic_fetch_add(&e->checks, 1) + 1 < e->warmup)
            return -1;
        /* this check is the warmup-th: the one that gets here first builds the table */
        int expected = TABLE_NONE;
        if (!atomic_compare_exchange_strong(&e->state, &expected, TABLE_BUILDING))
            return -1;
        if (build_table(e) != 0) {
            atomic_store_explicit(&e->state, TABLE_FAILED, memory_order_release);
            return -1;
        }
        atomic_store_explicit(&e->state, TABLE_READY, memory_order_release);
    }
    return check(e, md, sig);
}
