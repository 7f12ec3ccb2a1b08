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
 * table multiplications, a point addition, the inverse of s modulo the group order (here, on
 * 64-bit words: 2.5 µs where BN_mod_inverse takes 10) and a comparison of x in Jacobian
 * coordinates (no field inversion): about 17 µs.
 *
 * Nothing here is secret (the key is public, the signature comes with the token), so nothing
 * needs to run in constant time. Every result that matters is checked: the table once built (a
 * random multiple of Q through it against the same multiple computed from scratch; a key whose
 * table disagrees never uses one), r and s in [1, n-1], the inverse multiplied back to 1
 * (BN_mod_inverse otherwise), R not the point at infinity. When a step fails the answer is -1 and
 * the caller checks through EVP_PKEY_verify.
 *
 * EC_GROUP_precompute_mult and EC_POINT_get_Jprojective_coordinates_GFp are marked deprecated in
 * OpenSSL 3.0 (the EC_KEY-era API) and are still part of it; the first is the only way OpenSSL
 * offers to build a table for a point that is not a curve's own generator, hence
 * OPENSSL_SUPPRESS_DEPRECATED in this file only.
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

/* n, the order of P-256, big-endian */
static const unsigned char P256_ORDER[P256_BYTES] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
};

/* a number of up to 320 bits as five 64-bit words, least significant first */
typedef struct {
    uint64_t w[5];
} u320;

struct sk_es256 {
    EC_GROUP *curve;                 /* P-256 */
    EC_POINT *q;                     /* the public key */
    BIGNUM *p_minus_n;               /* r + n is a candidate for R's x only when r < p - n */
    EC_GROUP *qgroup;                /* P-256 with q as generator, with its table: set before READY */
    unsigned warmup;
    atomic_uint checks;
    atomic_int state;
};

/* ---------------------------------------------------------------- the inverse of s modulo n */

static void u320_from_be(u320 *r, const unsigned char be[P256_BYTES])
{
    r->w[4] = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++)
            v = (v << 8) | be[(3 - i) * 8 + j];
        r->w[i] = v;
    }
}

static void u320_to_be(unsigned char be[P256_BYTES], const u320 *a)
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            be[(3 - i) * 8 + j] = (unsigned char)(a->w[i] >> (56 - 8 * j));
}

static int u320_is_zero(const u320 *a)
{
    return (a->w[0] | a->w[1] | a->w[2] | a->w[3] | a->w[4]) == 0;
}

static int u320_gt(const u320 *a, const u320 *b)
{
    for (int i = 4; i >= 0; i--)
        if (a->w[i] != b->w[i])
            return a->w[i] > b->w[i];
    return 0;
}

static void u320_add(u320 *r, const u320 *a, const u320 *b)
{
    unsigned __int128 c = 0;
    for (int i = 0; i < 5; i++) {
        c += (unsigned __int128)a->w[i] + b->w[i];
        r->w[i] = (uint64_t)c;
        c >>= 64;
    }
}

/* r = a - b, for a >= b */
static void u320_sub(u320 *r, const u320 *a, const u320 *b)
{
    uint64_t borrow = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t d = a->w[i] - b->w[i];
        uint64_t b1 = a->w[i] < b->w[i];
        r->w[i] = d - borrow;
        borrow = b1 | (d < borrow);
    }
}

/* the number of trailing zero bits of a non-zero a */
static unsigned u320_ctz(const u320 *a)
{
    unsigned i = 0;
    while (a->w[i] == 0)
        i++;
    return 64 * i + (unsigned)__builtin_ctzll(a->w[i]);
}

/* a >>= t and a <<= t, for any t */
static void u320_shr(u320 *a, unsigned t)
{
    for (; t >= 64; t -= 64) {
        for (int i = 0; i < 4; i++)
            a->w[i] = a->w[i + 1];
        a->w[4] = 0;
    }
    if (t == 0)
        return;
    for (int i = 0; i < 4; i++)
        a->w[i] = (a->w[i] >> t) | (a->w[i + 1] << (64 - t));
    a->w[4] >>= t;
}

static void u320_shl(u320 *a, unsigned t)
{
    for (; t >= 64; t -= 64) {
        for (int i = 4; i > 0; i--)
            a->w[i] = a->w[i - 1];
        a->w[0] = 0;
    }
    if (t == 0)
        return;
    for (int i = 4; i > 0; i--)
        a->w[i] = (a->w[i] << t) | (a->w[i - 1] >> (64 - t));
    a->w[0] <<= t;
}

/* -n^-1 mod 2^64 for an odd n (Newton's iteration: each step doubles the correct low bits) */
static uint64_t neg_inverse64(uint64_t n0)
{
    uint64_t inv = n0;                      /* right to 3 bits: n0 · n0 = 1 mod 8 */
    for (int i = 0; i < 5; i++)
        inv *= 2 - n0 * inv;
    return (uint64_t)0 - inv;
}

/* out = a^-1 mod n, for 0 < a < n and n an odd prime below 2^256 (n0inv = -n^-1 mod 2^64).
 *
 * Kaliski's almost inverse first: u = n, v = a, r = 0, s = 1 keep r·a = -u·2^k and s·a = v·2^k
 * (mod n) while u and v run down to gcd 1 and 0 by subtracting the smaller odd one from the
 * larger and dropping the factors of 2 of the difference, each counted in k; then n - r is
 * a^-1 · 2^k. r and s stay below 2n, hence the fifth word. Then 2^k is divided out 64 bits at a
 * time, as in a Montgomery reduction: x + m·n with m = x · n0inv mod 2^j is a multiple of 2^j. */
static void inverse_mod(u320 *out, const u320 *a, const u320 *n, uint64_t n0inv)
{
    u320 u = *n, v = *a, r = { { 0 } }, s = { { 1 } };
    unsigned k = u320_ctz(&v), t;
    u320_shr(&v, k);                        /* r is 0: nothing to double */
    while (!u320_is_zero(&v)) {             /* u and v odd */
        if (u320_gt(&u, &v)) {
            u320_sub(&u, &u, &v);
            u320_add(&r, &r, &s);
            t = u320_ctz(&u);
            u320_shr(&u, t);
            u320_shl(&s, t);
        } else {
            u320_sub(&v, &v, &u);
            u320_add(&s, &s, &r);
            t = u320_is_zero(&v) ? 1 : u320_ctz(&v);
            u320_shr(&v, t);
            u320_shl(&r, t);
        }
        k += t;
    }
    if (!u320_gt(n, &r))
        u320_sub(&r, &r, n);
    u320_sub(out, n, &r);                   /* a^-1 · 2^k mod n */
    while (k > 0) {
        unsigned j = k < 64 ? k : 64;
        uint64_t m = out->w[0] * n0inv;
        if (j < 64)
            m &= ((uint64_t)1 << j) - 1;
        /* out += m · n: below 2^320, as m < 2^64 and out < n < 2^256 - 2^224 */
        unsigned __int128 c = 0;
        for (int i = 0; i < 4; i++) {
            c += (unsigned __int128)m * n->w[i] + out->w[i];
            out->w[i] = (uint64_t)c;
            c >>= 64;
        }
        out->w[4] += (uint64_t)c;
        u320_shr(out, j);                   /* (out + m·n) / 2^j < n */
        k -= j;
    }
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
        || (e->p_minus_n = BN_new()) == NULL
        || BN_sub(e->p_minus_n, EC_GROUP_get0_field(e->curve), EC_GROUP_get0_order(e->curve)) != 1) {
        sk_es256_free(e);
        return NULL;
    }
    return e;
}

void sk_es256_free(sk_es256 *e)
{
    if (e == NULL)
        return;
    EC_GROUP_free(e->qgroup);
    EC_POINT_free(e->q);
    EC_GROUP_free(e->curve);
    BN_free(e->p_minus_n);
    free(e);
}

int sk_es256_ready(const sk_es256 *e)
{
    return e != NULL && atomic_load_explicit(&e->state, memory_order_acquire) == TABLE_READY;
}

/* The table must multiply as the curve does: u·Q through the table against u·Q computed from
 * scratch, for a random u (one variable-base multiplication, once per key and process). Guards
 * against an OpenSSL whose method treats a group with a generator of its own differently. */
static int table_agrees(const sk_es256 *e, const EC_GROUP *g, BN_CTX *ctx)
{
    EC_POINT *t = EC_POINT_new(e->curve), *v = EC_POINT_new(e->curve);
    BIGNUM *u = BN_new();
    int ok = t != NULL && v != NULL && u != NULL && BN_rand_range(u, EC_GROUP_get0_order(e->curve)) == 1
             && !BN_is_zero(u) && EC_POINT_mul(g, t, u, NULL, NULL, ctx) == 1
             && EC_POINT_mul(e->curve, v, NULL, e->q, u, ctx) == 1 && EC_POINT_cmp(e->curve, t, v, ctx) == 0;
    BN_free(u);
    EC_POINT_free(t);
    EC_POINT_free(v);
    return ok;
}

static int build_table(sk_es256 *e)
{
    BN_CTX *ctx = BN_CTX_new();
    EC_GROUP *g = EC_GROUP_dup(e->curve);
    if (ctx == NULL || g == NULL
        || EC_GROUP_set_generator(g, e->q, EC_GROUP_get0_order(e->curve), EC_GROUP_get0_cofactor(e->curve)) != 1
        || EC_GROUP_precompute_mult(g, ctx) != 1 || !table_agrees(e, g, ctx)) {
        EC_GROUP_free(g);
        BN_CTX_free(ctx);
        return -1;
    }
    BN_CTX_free(ctx);
    e->qgroup = g;
    return 0;
}

/* 0 < v < n, v big-endian */
static int in_range(const unsigned char v[P256_BYTES])
{
    static const unsigned char zero[P256_BYTES];
    return memcmp(v, zero, P256_BYTES) != 0 && memcmp(v, P256_ORDER, P256_BYTES) < 0;
}

/* out = a^-1 mod n, both big-endian, for a in range */
static void invert(const unsigned char a[P256_BYTES], unsigned char out[P256_BYTES])
{
    u320 n, x, w;
    u320_from_be(&n, P256_ORDER);
    u320_from_be(&x, a);
    inverse_mod(&w, &x, &n, neg_inverse64(n.w[0]));
    u320_to_be(out, &w);
}

static int check(const sk_es256 *e, const unsigned char *md, const unsigned char *sig)
{
    const unsigned char *rb = sig, *sb = sig + P256_BYTES;
    unsigned char wb[P256_BYTES];
    const BIGNUM *n = EC_GROUP_get0_order(e->curve), *p = EC_GROUP_get0_field(e->curve);
    int rv = -1;

    if (!in_range(rb) || !in_range(sb))
        return 0;

    BN_CTX *ctx = BN_CTX_new();
    EC_POINT *a = EC_POINT_new(e->curve), *b = EC_POINT_new(e->curve);
    if (ctx == NULL || a == NULL || b == NULL)
        goto out;
    BN_CTX_start(ctx);
    BIGNUM *r = BN_CTX_get(ctx), *s = BN_CTX_get(ctx), *w = BN_CTX_get(ctx), *u1 = BN_CTX_get(ctx),
           *u2 = BN_CTX_get(ctx), *z = BN_CTX_get(ctx), *x = BN_CTX_get(ctx);
    if (x == NULL || BN_bin2bn(rb, P256_BYTES, r) == NULL || BN_bin2bn(sb, P256_BYTES, s) == NULL
        || BN_bin2bn(md, SK_ES256_DIGEST_LEN, u1) == NULL)
        goto done;

    /* w = s^-1 mod n, checked: w·s = 1 (mod n); OpenSSL's general inverse otherwise */
    invert(sb, wb);
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
    /* Valid when R's x, reduced mod n, is r: x is r or r + n (when that is below p). R is held
     * as Jacobian (X, Y, Z), x = X / Z^2, so each candidate c is checked as X = c·Z^2 (mod p),
     * which saves the field inversion of going to affine coordinates. */
    if (EC_POINT_get_Jprojective_coordinates_GFp(e->curve, a, x, NULL, z, ctx) != 1
        || BN_mod_sqr(z, z, p, ctx) != 1 || BN_mod_mul(u1, r, z, p, ctx) != 1)
        goto done;
    rv = BN_cmp(u1, x) == 0;
    if (!rv && BN_cmp(r, e->p_minus_n) < 0) {
        if (BN_add(u2, r, n) != 1 || BN_mod_mul(u1, u2, z, p, ctx) != 1) {
            rv = -1;
            goto done;
        }
        rv = BN_cmp(u1, x) == 0;
    }
done:
    BN_CTX_end(ctx);
out:
    EC_POINT_free(a);
    EC_POINT_free(b);
    BN_CTX_free(ctx);
    return rv;
}

int sk_es256_inverse(const unsigned char a[P256_BYTES], unsigned char out[P256_BYTES])
{
    if (!in_range(a))
        return -1;
    invert(a, out);
    return 0;
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
