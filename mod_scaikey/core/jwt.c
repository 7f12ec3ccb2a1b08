/*
 * jwt: JWK keys and compact JWS over cjose.
 *
 * cjose takes the algorithm from the token header and accepts any RSA algorithm for an RSA key,
 * so the header is parsed and checked here first; cjose is only asked to check a signature once
 * the header's alg is known to be the key's own.
 *
 * Signing, on every token the server issues, and checking signatures, on every token presented,
 * go to OpenSSL directly: each key is also held as an OpenSSL 3 key with a signing (private keys)
 * and a verifying context made once, which each signature or check duplicates. A key whose
 * OpenSSL form fails its self-test at load signs and verifies through cjose. An ES256 key that
 * checks many signatures gets a table of its multiples (core/es256.c), which halves a check.
 */
#include "core/jwt.h"
#include "core/es256.h"
#include "core/secrets.h"

#include <apr_strings.h>
#include <string.h>

#include <cjose/cjose.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#define KID_LEN 43               /* base64url of a SHA-256 digest */
#define KID_MAX 256              /* longest kid accepted in a token header */
#define RSA_MIN_BYTES 256        /* 2048 bits */
#define RSA_MAX_BYTES 1024       /* 8192 bits */
#define EC_P256_BYTES 32
#define ES256_WARMUP 64          /* checks by an ES256 key before it gets its own table */

struct sk_key {
    cjose_jwk_t *jwk;
    sk_alg alg;
    int has_private;
    size_t sig_len;              /* exact signature length for this key */
    char kid[KID_LEN + 1];
    /* Signing without cjose: the private key as an OpenSSL 3 key, SHA-256 fetched once, and a
     * context initialised for signing that each signature duplicates, so that no signature
     * looks up an algorithm (a lock shared by every thread) or converts the key again. NULL
     * for public keys; sk_jwt_sign falls back to cjose if they could not be made. */
    EVP_PKEY *pkey;
    EVP_MD *sha256;
    EVP_PKEY_CTX *sign_tmpl;
    /* Verifying the same way, for every key: its public part and a context initialised for
     * verification. NULL when they could not be made; sk_jwt_verify then asks cjose. */
    EVP_PKEY *vkey;
    EVP_PKEY_CTX *verify_tmpl;
    /* ES256 keys: the checker with a table of the key's multiples (core/es256.c), which takes
     * a check from about 49 to 17 µs; EVP_PKEY_verify checks when it answers -1 */
    sk_es256 *es256;
};

const char *sk_alg_name(sk_alg a)
{
    switch (a) {
    case SK_ALG_RS256:
        return "RS256";
    case SK_ALG_ES256:
        return "ES256";
    }
    return NULL;
}

int sk_alg_parse(const char *s, sk_alg *out)
{
    sk_alg a;
    if (s == NULL)
        return -1;
    if (strcmp(s, "RS256") == 0)
        a = SK_ALG_RS256;
    else if (strcmp(s, "ES256") == 0)
        a = SK_ALG_ES256;
    else
        return -1;
    if (out != NULL)
        *out = a;
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static void free_cjose_secret(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    cjose_get_dealloc()(s);
}

/* String value of a base64url member, checked to be in the alphabet so it can go into the
 * thumbprint input verbatim (no JSON escaping needed). */
static const char *b64url_member(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL || *s == '\0')
        return NULL;
    for (const char *c = s; *c; c++) {
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
              || *c == '-' || *c == '_'))
            return NULL;
    }
    return s;
}

static size_t decoded_len(apr_pool_t *p, const char *b64u)
{
    size_t n = 0;
    return sk_b64url_decode(p, b64u, &n) != NULL ? n : 0;
}

/* RFC 7638 thumbprint of the public part (members in lexicographic order, no whitespace), and
 * the signature length the key produces. Also checks the key fits alg. */
static int key_thumbprint(apr_pool_t *p, cjose_jwk_t *jwk, sk_alg alg, char kid[KID_LEN + 1],
                          size_t *sig_len)
{
    cjose_err err;
    int rv = -1;
    char *pub = cjose_jwk_to_json(jwk, false, &err);
    if (pub == NULL)
        return -1;
    json_t *obj = json_loads(pub, 0, NULL);
    cjose_get_dealloc()(pub);
    if (obj == NULL)
        return -1;

    const char *kty = json_string_value(json_object_get(obj, "kty"));
    const char *canon = NULL;
    if (alg == SK_ALG_RS256) {
        const char *e = b64url_member(obj, "e");
        const char *n = b64url_member(obj, "n");
        size_t nbytes;
        if (kty == NULL || strcmp(kty, "RSA") != 0 || e == NULL || n == NULL)
            goto done;
        nbytes = decoded_len(p, n);
        if (nbytes < RSA_MIN_BYTES || nbytes > RSA_MAX_BYTES)
            goto done;
        *sig_len = nbytes;
        canon = apr_psprintf(p, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, n);
    } else if (alg == SK_ALG_ES256) {
        const char *crv = json_string_value(json_object_get(obj, "crv"));
        const char *x = b64url_member(obj, "x");
        const char *y = b64url_member(obj, "y");
        if (kty == NULL || strcmp(kty, "EC") != 0 || crv == NULL || strcmp(crv, "P-256") != 0
            || x == NULL || y == NULL)
            goto done;
        if (decoded_len(p, x) != EC_P256_BYTES || decoded_len(p, y) != EC_P256_BYTES)
            goto done;
        *sig_len = 2 * EC_P256_BYTES;
        canon = apr_psprintf(p, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    } else {
        goto done;
    }
    if (canon == NULL)
        goto done;

    unsigned char md[32];
    sk_sha256(canon, strlen(canon), md);
    char *enc = sk_b64url_encode(p, md, sizeof(md));
    if (enc == NULL || strlen(enc) != KID_LEN)
        goto done;
    memcpy(kid, enc, KID_LEN + 1);
    rv = 0;
done:
    json_decref(obj);
    return rv;
}

/* ---------------------------------------------------------------- OpenSSL signing key */

/* BIGNUM of a base64url member (NULL when absent or malformed). */
static BIGNUM *bn_member(apr_pool_t *p, const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    size_t n = 0;
    unsigned char *raw = s != NULL ? sk_b64url_decode(p, s, &n) : NULL;
    BIGNUM *bn = raw != NULL && n > 0 ? BN_bin2bn(raw, (int)n, NULL) : NULL;
    if (raw != NULL)
        OPENSSL_cleanse(raw, n);
    return bn;
}

/* The JWK (a JSON object) as an OpenSSL key pair (with_private) or public key, or NULL. */
static EVP_PKEY *pkey_from_jwk(apr_pool_t *p, const json_t *jwk, sk_alg alg, int with_private)
{
    static const char *const rsa_members[] = { "n", "e", "d", "p", "q", "dp", "dq", "qi" };
    static const char *const rsa_params[] = {
        OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_D,
        OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
        OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
        OSSL_PKEY_PARAM_RSA_COEFFICIENT1 };
    BIGNUM *bn[8] = { NULL };
    /* the builder keeps a pointer to the point until OSSL_PARAM_BLD_to_param: same scope */
    unsigned char pub[1 + 2 * EC_P256_BYTES];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    size_t i;

    if (bld == NULL)
        return NULL;
    if (alg == SK_ALG_RS256) {
        for (i = 0; i < (with_private ? 8 : 2); i++)
            if ((bn[i] = bn_member(p, jwk, rsa_members[i])) == NULL
                || !OSSL_PARAM_BLD_push_BN(bld, rsa_params[i], bn[i]))
                goto done;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else if (alg == SK_ALG_ES256) {
        size_t xl = 0, yl = 0;
        const char *xs = json_string_value(json_object_get(jwk, "x"));
        const char *ys = json_string_value(json_object_get(jwk, "y"));
        unsigned char *x = xs != NULL ? sk_b64url_decode(p, xs, &xl) : NULL;
        unsigned char *y = ys != NULL ? sk_b64url_decode(p, ys, &yl) : NULL;
        if (x == NULL || y == NULL || xl != EC_P256_BYTES || yl != EC_P256_BYTES)
            goto done;
        pub[0] = 0x04;           /* uncompressed point */
        memcpy(pub + 1, x, EC_P256_BYTES);
        memcpy(pub + 1 + EC_P256_BYTES, y, EC_P256_BYTES);
        if ((with_private && ((bn[0] = bn_member(p, jwk, "d")) == NULL
                              || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn[0])))
            || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0)
            || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
            goto done;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else {
        goto done;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    if (ctx == NULL || params == NULL || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, with_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    for (i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    return pkey;
}

/* A context for signing (sign = 1) or verifying with pkey: SHA-256, and PKCS#1 v1.5 padding for
 * RS256. NULL on failure. Shared by every thread as a template: each operation works on a dup. */
static EVP_PKEY_CTX *prepared_ctx(EVP_PKEY *pkey, sk_alg alg, EVP_MD *md, int sign)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || (sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) <= 0
        || EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0
        || (alg == SK_ALG_RS256 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Prepares k for signing through OpenSSL from the private part of its cjose key. On failure
 * the key signs through cjose. */
static void key_prepare_signing(apr_pool_t *p, sk_key *k)
{
    cjose_err err;
    char *priv = cjose_jwk_to_json(k->jwk, true, &err);
    json_t *obj = priv != NULL ? json_loads(priv, 0, NULL) : NULL;
    free_cjose_secret(priv);
    if (obj == NULL)
        return;
    k->pkey = pkey_from_jwk(p, obj, k->alg, 1);
    /* the JSON held the private members: wipe them before jansson frees the strings */
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        if (json_is_string(v))
            OPENSSL_cleanse((void *)json_string_value(v), json_string_length(v));
    }
    json_decref(obj);
    if (k->pkey == NULL || (k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL
        || (k->sign_tmpl = prepared_ctx(k->pkey, k->alg, k->sha256, 1)) == NULL) {
        EVP_MD_free(k->sha256);
        EVP_PKEY_free(k->pkey);
        k->sign_tmpl = NULL;
        k->sha256 = NULL;
        k->pkey = NULL;
    }
}

/* The JWS signature of input (RS256: PKCS#1 v1.5; ES256: R || S) into out (k->sig_len bytes).
 * 0 ok, -1 failure. */
static int openssl_sign(const sk_key *k, const char *input, size_t len, unsigned char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE], der[RSA_MAX_BYTES];
    unsigned int mdlen = 0;
    size_t siglen = sizeof(der);
    int rv = -1;
    /* a context of its own per signature: the template is shared by every thread */
    EVP_PKEY_CTX *ctx;

    if (EVP_Digest(input, len, md, &mdlen, k->sha256, NULL) != 1 || mdlen != 32)
        return -1;
    if ((ctx = EVP_PKEY_CTX_dup(k->sign_tmpl)) == NULL)
        return -1;
    if (EVP_PKEY_sign(ctx, der, &siglen, md, mdlen) <= 0)
        goto done;
    if (k->alg == SK_ALG_RS256) {
        if (siglen == k->sig_len) {
            memcpy(out, der, siglen);
            rv = 0;
        }
    } else {
        const unsigned char *pp = der;
        const BIGNUM *r, *s;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &pp, (long)siglen);
        if (es != NULL) {
            ECDSA_SIG_get0(es, &r, &s);
            if (BN_bn2binpad(r, out, EC_P256_BYTES) == EC_P256_BYTES
                && BN_bn2binpad(s, out + EC_P256_BYTES, EC_P256_BYTES) == EC_P256_BYTES)
                rv = 0;
            ECDSA_SIG_free(es);
        }
    }
done:
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

/* Prepares k for verifying through OpenSSL from its public part. On failure cjose verifies. */
static void key_prepare_verify(apr_pool_t *p, sk_key *k)
{
    cjose_err err;
    char *pub = cjose_jwk_to_json(k->jwk, false, &err);
    json_t *obj = pub != NULL ? json_loads(pub, 0, NULL) : NULL;
    if (pub != NULL)
        cjose_get_dealloc()(pub);
    if (obj == NULL)
        return;
    k->vkey = pkey_from_jwk(p, obj, k->alg, 0);
    json_decref(obj);
    if (k->vkey == NULL || (k->sha256 == NULL && (k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
        || (k->verify_tmpl = prepared_ctx(k->vkey, k->alg, k->sha256, 0)) == NULL) {
        EVP_PKEY_free(k->vkey);
        k->verify_tmpl = NULL;
        k->vkey = NULL;
        return;
    }
    if (k->alg == SK_ALG_ES256)
        k->es256 = sk_es256_new(k->vkey, ES256_WARMUP);
}

/* 1 when sig (k->sig_len bytes; RS256: PKCS#1 v1.5, ES256: R || S) is k's signature of input. */
static int openssl_check(const sk_key *k, const char *input, size_t len, const unsigned char *sig,
                         size_t siglen)
{
    unsigned char md[EVP_MAX_MD_SIZE], der[2 * EC_P256_BYTES + 16];
    unsigned int mdlen = 0;
    int ok = 0, fast;
    EVP_PKEY_CTX *ctx;

    if (siglen != k->sig_len || EVP_Digest(input, len, md, &mdlen, k->sha256, NULL) != 1 || mdlen != 32)
        return 0;
    if (k->es256 != NULL && siglen == SK_ES256_SIG_LEN && (fast = sk_es256_verify(k->es256, md, sig)) >= 0)
        return fast;
    /* a context of its own per check: the template is shared by every thread */
    if ((ctx = EVP_PKEY_CTX_dup(k->verify_tmpl)) == NULL)
        return 0;
    if (k->alg == SK_ALG_RS256) {
        ok = EVP_PKEY_verify(ctx, sig, siglen, md, mdlen) == 1;
    } else if (siglen == 2 * EC_P256_BYTES) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, EC_P256_BYTES, NULL), *s = BN_bin2bn(sig + EC_P256_BYTES, EC_P256_BYTES, NULL);
        unsigned char *pp = der;
        int derlen;
        if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
            r = s = NULL;            /* owned by es now */
            if (i2d_ECDSA_SIG(es, NULL) <= (int)sizeof(der) && (derlen = i2d_ECDSA_SIG(es, &pp)) > 0)
                ok = EVP_PKEY_verify(ctx, der, (size_t)derlen, md, mdlen) == 1;
        }
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
    }
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Signs and verifies a fixed payload: catches private keys whose parts do not belong together
 * before they sign anything real. */
static int key_selftest(const cjose_jwk_t *jwk, sk_alg alg)
{
    static const uint8_t payload[] = "{\"selftest\":true}";
    cjose_err err;
    int ok = 0;
    json_t *hdr = json_pack("{s:s}", "alg", sk_alg_name(alg));
    if (hdr == NULL)
        return -1;
    cjose_jws_t *jws = cjose_jws_sign(jwk, hdr, payload, sizeof(payload) - 1, &err);
    const char *compact = NULL;
    if (jws != NULL && cjose_jws_export(jws, &compact, &err) && compact != NULL) {
        cjose_jws_t *check = cjose_jws_import(compact, strlen(compact), &err);
        if (check != NULL) {
            ok = cjose_jws_verify(check, jwk, &err);
            cjose_jws_release(check);
        }
    }
    cjose_jws_release(jws);
    json_decref(hdr);
    return ok ? 0 : -1;
}

/* The OpenSSL signing path of k must produce what the cjose key verifies. */
static int openssl_selftest(apr_pool_t *p, const sk_key *k)
{
    static const char payload[] = "{\"selftest\":true}";
    cjose_err err;
    unsigned char sig[RSA_MAX_BYTES];
    int ok = 0;
    const char *hdr = apr_psprintf(p, "{\"alg\":\"%s\"}", sk_alg_name(k->alg));
    const char *input = apr_pstrcat(p, sk_b64url_encode(p, (const unsigned char *)hdr, strlen(hdr)), ".",
                                    sk_b64url_encode(p, (const unsigned char *)payload, sizeof(payload) - 1),
                                    NULL);
    if (k->sig_len > sizeof(sig) || openssl_sign(k, input, strlen(input), sig) != 0)
        return -1;
    const char *compact = apr_pstrcat(p, input, ".", sk_b64url_encode(p, sig, k->sig_len), NULL);
    cjose_jws_t *jws = cjose_jws_import(compact, strlen(compact), &err);
    if (jws != NULL) {
        ok = cjose_jws_verify(jws, k->jwk, &err);
        cjose_jws_release(jws);
    }
    return ok ? 0 : -1;
}

/* A signature cjose makes with k passes the OpenSSL check, and a changed one does not. */
static int verify_selftest(apr_pool_t *p, const sk_key *k)
{
    static const uint8_t payload[] = "{\"selftest\":true}";
    cjose_err err;
    int rv = -1;
    json_t *hdr = json_pack("{s:s}", "alg", sk_alg_name(k->alg));
    cjose_jws_t *jws = hdr != NULL ? cjose_jws_sign(k->jwk, hdr, payload, sizeof(payload) - 1, &err) : NULL;
    const char *compact = NULL, *dot;
    if (jws != NULL && cjose_jws_export(jws, &compact, &err) && compact != NULL
        && (dot = strrchr(compact, '.')) != NULL) {
        size_t siglen = 0;
        unsigned char *sig = sk_b64url_decode(p, dot + 1, &siglen);
        if (sig != NULL && siglen > 0 && openssl_check(k, compact, (size_t)(dot - compact), sig, siglen)) {
            sig[siglen - 1] ^= 0x01;
            if (!openssl_check(k, compact, (size_t)(dot - compact), sig, siglen))
                rv = 0;
        }
    }
    cjose_jws_release(jws);
    json_decref(hdr);
    return rv;
}

static apr_status_t key_cleanup(void *data)
{
    sk_key *k = data;
    if (k->jwk != NULL) {
        cjose_jwk_release(k->jwk);
        k->jwk = NULL;
    }
    EVP_PKEY_CTX_free(k->sign_tmpl);
    EVP_PKEY_CTX_free(k->verify_tmpl);
    EVP_MD_free(k->sha256);
    EVP_PKEY_free(k->pkey);
    EVP_PKEY_free(k->vkey);
    sk_es256_free(k->es256);
    k->es256 = NULL;
    k->sign_tmpl = NULL;
    k->verify_tmpl = NULL;
    k->sha256 = NULL;
    k->pkey = NULL;
    k->vkey = NULL;
    return APR_SUCCESS;
}

/* Takes ownership of jwk (released on failure, or with the pool). */
static sk_key *key_wrap(apr_pool_t *p, cjose_jwk_t *jwk, sk_alg alg, int has_private)
{
    cjose_err err;
    sk_key *k = apr_pcalloc(p, sizeof(*k));
    if (k == NULL) {
        cjose_jwk_release(jwk);
        return NULL;
    }
    k->jwk = jwk;
    k->alg = alg;
    k->has_private = has_private;
    apr_pool_cleanup_register(p, k, key_cleanup, apr_pool_cleanup_null);

    cjose_jwk_kty_t want = alg == SK_ALG_RS256 ? CJOSE_JWK_KTY_RSA : CJOSE_JWK_KTY_EC;
    if (cjose_jwk_get_kty(jwk, &err) != want)
        goto fail;
    if (alg == SK_ALG_ES256 && cjose_jwk_EC_get_curve(jwk, &err) != CJOSE_JWK_EC_P_256)
        goto fail;
    if (key_thumbprint(p, jwk, alg, k->kid, &k->sig_len) != 0)
        goto fail;
    if (!cjose_jwk_set_kid(jwk, k->kid, KID_LEN, &err))
        goto fail;
    if (has_private && key_selftest(jwk, alg) != 0)
        goto fail;
    if (has_private) {
        key_prepare_signing(p, k);
        if (k->sign_tmpl != NULL && openssl_selftest(p, k) != 0) {
            /* cannot happen with a key cjose accepts; should it, cjose signs */
            EVP_PKEY_CTX_free(k->sign_tmpl);
            k->sign_tmpl = NULL;
        }
    }
    key_prepare_verify(p, k);
    if (has_private && k->verify_tmpl != NULL && verify_selftest(p, k) != 0) {
        /* the OpenSSL check must accept what cjose signs with this key; else cjose checks */
        EVP_PKEY_CTX_free(k->verify_tmpl);
        k->verify_tmpl = NULL;
    }
    return k;
fail:
    apr_pool_cleanup_run(p, k, key_cleanup);
    return NULL;
}

/* ---------------------------------------------------------------- keys */

sk_key *sk_key_generate(apr_pool_t *p, sk_alg alg)
{
    static const uint8_t e65537[] = { 0x01, 0x00, 0x01 };
    cjose_err err;
    cjose_jwk_t *jwk;
    if (p == NULL)
        return NULL;
    if (alg == SK_ALG_RS256)
        jwk = cjose_jwk_create_RSA_random(2048, e65537, sizeof(e65537), &err);
    else if (alg == SK_ALG_ES256)
        jwk = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err);
    else
        return NULL;
    if (jwk == NULL)
        return NULL;
    return key_wrap(p, jwk, alg, 1);
}

/* cjose derives an EC public key from "d" and ignores "x"/"y": insist that the key it built has
 * exactly the public members the JSON states, or the kid would describe another key. */
static int public_matches(const cjose_jwk_t *jwk, const json_t *in, sk_alg alg)
{
    static const char *const rsa_members[] = { "n", "e", NULL };
    static const char *const ec_members[] = { "x", "y", NULL };
    cjose_err err;
    int ok = 1;
    char *pub = cjose_jwk_to_json(jwk, false, &err);
    if (pub == NULL)
        return 0;
    json_t *built = json_loads(pub, 0, NULL);
    cjose_get_dealloc()(pub);
    if (built == NULL)
        return 0;
    for (const char *const *m = alg == SK_ALG_RS256 ? rsa_members : ec_members; *m; m++) {
        const char *a = json_string_value(json_object_get(in, *m));
        const char *b = json_string_value(json_object_get(built, *m));
        if (a == NULL || b == NULL || strcmp(a, b) != 0)
            ok = 0;
    }
    json_decref(built);
    return ok;
}

sk_key *sk_key_from_jwk_json(apr_pool_t *p, const char *json, sk_alg alg)
{
    cjose_err err;
    const char *name = sk_alg_name(alg);
    if (p == NULL || json == NULL || name == NULL)
        return NULL;
    json_t *obj = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    if (obj == NULL || !json_is_object(obj))
        goto fail;

    const char *kty = json_string_value(json_object_get(obj, "kty"));
    if (kty == NULL || strcmp(kty, alg == SK_ALG_RS256 ? "RSA" : "EC") != 0)
        goto fail;
    if (alg == SK_ALG_ES256) {
        const char *crv = json_string_value(json_object_get(obj, "crv"));
        if (crv == NULL || strcmp(crv, "P-256") != 0)
            goto fail;
    }
    json_t *member = json_object_get(obj, "alg");
    if (member != NULL && (!json_is_string(member) || strcmp(json_string_value(member), name) != 0))
        goto fail;
    member = json_object_get(obj, "use");
    if (member != NULL && (!json_is_string(member) || strcmp(json_string_value(member), "sig") != 0))
        goto fail;
    int has_private = json_object_get(obj, "d") != NULL;

    cjose_jwk_t *jwk = cjose_jwk_import_json(obj, &err);
    if (jwk == NULL)
        goto fail;
    if (!public_matches(jwk, obj, alg)) {
        cjose_jwk_release(jwk);
        goto fail;
    }
    json_decref(obj);
    return key_wrap(p, jwk, alg, has_private);
fail:
    json_decref(obj);
    return NULL;
}

char *sk_key_private_json(apr_pool_t *p, const sk_key *k)
{
    cjose_err err;
    if (p == NULL || k == NULL || k->jwk == NULL || !k->has_private)
        return NULL;
    char *s = cjose_jwk_to_json(k->jwk, true, &err);
    if (s == NULL)
        return NULL;
    char *out = apr_pstrdup(p, s);
    free_cjose_secret(s);
    return out;
}

json_t *sk_key_public_jwk(const sk_key *k)
{
    cjose_err err;
    if (k == NULL || k->jwk == NULL)
        return NULL;
    char *s = cjose_jwk_to_json(k->jwk, false, &err);
    if (s == NULL)
        return NULL;
    json_t *obj = json_loads(s, 0, NULL);
    cjose_get_dealloc()(s);
    if (obj == NULL)
        return NULL;
    if (!json_is_object(obj)
        || json_object_set_new(obj, "kid", json_string(k->kid)) != 0
        || json_object_set_new(obj, "alg", json_string(sk_alg_name(k->alg))) != 0
        || json_object_set_new(obj, "use", json_string("sig")) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

int sk_key_native(const sk_key *k)
{
    if (k == NULL)
        return 0;
    return (k->sign_tmpl != NULL ? SK_KEY_NATIVE_SIGN : 0) | (k->verify_tmpl != NULL ? SK_KEY_NATIVE_VERIFY : 0);
}

const char *sk_key_kid(const sk_key *k)
{
    return k != NULL ? k->kid : NULL;
}

sk_alg sk_key_alg(const sk_key *k)
{
    return k != NULL ? k->alg : (sk_alg)0;
}

/* ---------------------------------------------------------------- sign */

/* A typ that goes into the header as it is (no JSON escaping needed). */
static int plain_typ(const char *typ)
{
    for (const char *c = typ; *c; c++) {
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
              || *c == '+' || *c == '-' || *c == '.' || *c == '/' || *c == '_'))
            return 0;
    }
    return 1;
}

/* Through cjose: keys whose OpenSSL form could not be made, and unusual typ values. */
static char *cjose_sign(apr_pool_t *p, const sk_key *k, const char *payload, size_t plen,
                        const char *typ)
{
    cjose_err err;
    char *out = NULL;
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", sk_alg_name(k->alg), "kid", k->kid,
                            "typ", typ);
    if (hdr == NULL)
        return NULL;
    cjose_jws_t *jws = cjose_jws_sign(k->jwk, hdr, (const uint8_t *)payload, plen, &err);
    const char *compact = NULL;
    if (jws != NULL && cjose_jws_export(jws, &compact, &err) && compact != NULL)
        out = apr_pstrdup(p, compact);
    cjose_jws_release(jws);
    json_decref(hdr);
    return out;
}

char *sk_jwt_sign(apr_pool_t *p, const sk_key *k, json_t *claims, const char *typ)
{
    unsigned char sig[RSA_MAX_BYTES];
    char *payload, *out;
    if (p == NULL || k == NULL || k->jwk == NULL || !k->has_private || !json_is_object(claims))
        return NULL;
    if (typ == NULL)
        typ = "JWT";
    if (*typ == '\0')
        return NULL;

    /* one serialisation of the claims (malloc'd by jansson) */
    if ((payload = json_dumps(claims, JSON_COMPACT)) == NULL)
        return NULL;
    size_t plen = strlen(payload);
    if (k->sign_tmpl == NULL || !plain_typ(typ) || k->sig_len > sizeof(sig)) {
        out = cjose_sign(p, k, payload, plen, typ);
        free(payload);
        return out;
    }
    /* kid is base64url and typ plain: the header needs no escaping */
    const char *hdr = apr_pstrcat(p, "{\"alg\":\"", sk_alg_name(k->alg), "\",\"kid\":\"", k->kid,
                                  "\",\"typ\":\"", typ, "\"}", NULL);
    const char *input = apr_pstrcat(p, sk_b64url_encode(p, (const unsigned char *)hdr, strlen(hdr)), ".",
                                    sk_b64url_encode(p, (const unsigned char *)payload, plen), NULL);
    free(payload);
    if (openssl_sign(k, input, strlen(input), sig) != 0)
        return NULL;
    return apr_pstrcat(p, input, ".", sk_b64url_encode(p, sig, k->sig_len), NULL);
}

/* ---------------------------------------------------------------- parse / verify */

typedef struct {
    const char *seg[3];          /* pool copies of the three segments */
    unsigned char *hdr, *payload, *sig;
    size_t hdr_len, payload_len, sig_len;
} jws_parts;

/* Splits and decodes a compact JWS; each segment unpadded base64url. The signature may be
 * empty only if allow_empty_sig. Returns NULL or a reason. */
static const char *split_token(apr_pool_t *p, const char *compact, int allow_empty_sig,
                               jws_parts *out)
{
    size_t len = strnlen(compact, SK_JWT_MAX_LEN + 1);
    if (len > SK_JWT_MAX_LEN)
        return "token too large";
    if (len == 0)
        return "malformed token";

    const char *dot1 = memchr(compact, '.', len);
    if (dot1 == NULL)
        return "malformed token";
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - compact));
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - compact)) != NULL)
        return "malformed token";

    out->seg[0] = apr_pstrmemdup(p, compact, (size_t)(dot1 - compact));
    out->seg[1] = apr_pstrmemdup(p, dot1 + 1, (size_t)(dot2 - dot1 - 1));
    out->seg[2] = apr_pstrmemdup(p, dot2 + 1, len - (size_t)(dot2 + 1 - compact));
    for (int i = 0; i < 3; i++) {
        if (out->seg[i] == NULL || strchr(out->seg[i], '=') != NULL)
            return "malformed token";
        if (out->seg[i][0] == '\0' && !(i == 2 && allow_empty_sig))
            return "malformed token";
    }
    out->hdr = sk_b64url_decode(p, out->seg[0], &out->hdr_len);
    out->payload = sk_b64url_decode(p, out->seg[1], &out->payload_len);
    out->sig = sk_b64url_decode(p, out->seg[2], &out->sig_len);
    if (out->hdr == NULL || out->payload == NULL || out->sig == NULL)
        return "malformed token";
    return NULL;
}

static json_t *parse_object(const unsigned char *buf, size_t len)
{
    json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* The signature itself, through cjose; only called once alg is pinned to the key. */
static int cjose_check(const sk_key *k, const char *compact, const jws_parts *parts)
{
    cjose_err err;
    int ok = 0;
    cjose_jws_t *jws = cjose_jws_import(compact, strlen(compact), &err);
    if (jws == NULL)
        return 0;
    if (cjose_jws_verify(jws, k->jwk, &err)) {
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        /* cjose decoded the payload itself: it must be the same bytes we parsed */
        ok = cjose_jws_get_plaintext(jws, &pt, &ptlen, &err) && pt != NULL
             && ptlen == parts->payload_len && memcmp(pt, parts->payload, ptlen) == 0;
    }
    cjose_jws_release(jws);
    return ok;
}

json_t *sk_jwt_verify(apr_pool_t *p, const char *compact, sk_key_lookup_fn lookup, void *ctx,
                      const char **kid_out, const char **reason)
{
    const char *why = "malformed token";
    json_t *hdr = NULL, *claims = NULL;
    jws_parts parts;

    if (kid_out != NULL)
        *kid_out = NULL;
    if (p == NULL || compact == NULL || lookup == NULL)
        goto fail;
    memset(&parts, 0, sizeof(parts));
    if ((why = split_token(p, compact, 0, &parts)) != NULL)
        goto fail;

    why = "malformed token";
    if ((hdr = parse_object(parts.hdr, parts.hdr_len)) == NULL)
        goto fail;
    const char *alg_s = json_string_value(json_object_get(hdr, "alg"));
    sk_alg alg;
    if (alg_s == NULL)
        goto fail;
    if (sk_alg_parse(alg_s, &alg) != 0) {
        why = "unsupported algorithm";
        goto fail;
    }
    if (json_object_get(hdr, "crit") != NULL) {
        why = "unsupported header";     /* no extension is understood here */
        goto fail;
    }
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    if (kid == NULL || *kid == '\0' || strlen(kid) > KID_MAX) {
        why = "missing kid";
        goto fail;
    }
    const sk_key *k = lookup(ctx, kid);
    if (k == NULL || k->jwk == NULL) {
        why = "unknown key";
        goto fail;
    }
    if (k->alg != alg) {
        why = "algorithm mismatch";
        goto fail;
    }
    why = "invalid signature";
    if (parts.sig_len != k->sig_len)
        goto fail;
    if (k->verify_tmpl != NULL
            ? !openssl_check(k, compact, strlen(parts.seg[0]) + 1 + strlen(parts.seg[1]), parts.sig, parts.sig_len)
            : !cjose_check(k, compact, &parts))
        goto fail;
    /* the payload is read only once it is known to be ours */
    why = "malformed token";
    if ((claims = parse_object(parts.payload, parts.payload_len)) == NULL)
        goto fail;

    if (kid_out != NULL)
        *kid_out = apr_pstrdup(p, kid);
    json_decref(hdr);
    if (reason != NULL)
        *reason = NULL;
    return claims;
fail:
    json_decref(hdr);
    json_decref(claims);
    if (reason != NULL)
        *reason = why;
    return NULL;
}

json_t *sk_jwt_peek_claims(apr_pool_t *p, const char *compact)
{
    jws_parts parts;
    if (p == NULL || compact == NULL)
        return NULL;
    memset(&parts, 0, sizeof(parts));
    if (split_token(p, compact, 1, &parts) != NULL)
        return NULL;
    return parse_object(parts.payload, parts.payload_len);
}

/* ---------------------------------------------------------------- claims */

static int aud_matches(const json_t *claim, const char *aud)
{
    if (json_is_string(claim))
        return strcmp(json_string_value(claim), aud) == 0;
    if (json_is_array(claim)) {
        size_t i;
        json_t *v;
        int found = 0;
        json_array_foreach(claim, i, v) {
            if (!json_is_string(v))
                return 0;        /* a malformed list matches nothing */
            if (strcmp(json_string_value(v), aud) == 0)
                found = 1;
        }
        return found;
    }
    return 0;
}

int sk_claims_check(json_t *claims, const char *iss, const char *aud, long long now, int leeway,
                    const char **reason)
{
    const char *why = NULL;
    /* doubles: exact for any realistic time, and no overflow on absurd claim values */
    double t = (double)now;
    double lw = leeway > 0 ? (double)leeway : 0.0;

    if (!json_is_object(claims)) {
        why = "malformed claims";
        goto done;
    }
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *iat = json_object_get(claims, "iat");
    if (exp == NULL) {
        why = "missing exp";
        goto done;
    }
    if (!json_is_number(exp)) {
        why = "invalid exp";
        goto done;
    }
    if (nbf != NULL && !json_is_number(nbf)) {
        why = "invalid nbf";
        goto done;
    }
    if (iat != NULL && !json_is_number(iat)) {
        why = "invalid iat";
        goto done;
    }
    if (t - lw >= json_number_value(exp)) {
        why = "token expired";
        goto done;
    }
    if (nbf != NULL && t + lw < json_number_value(nbf)) {
        why = "token not yet valid";
        goto done;
    }
    if (iat != NULL && t + lw < json_number_value(iat)) {
        why = "token issued in the future";
        goto done;
    }
    if (iss != NULL) {
        const char *claim = json_string_value(json_object_get(claims, "iss"));
        if (claim == NULL || strcmp(claim, iss) != 0) {
            why = "issuer mismatch";
            goto done;
        }
    }
    if (aud != NULL && !aud_matches(json_object_get(claims, "aud"), aud)) {
        why = "audience mismatch";
        goto done;
    }
done:
    if (reason != NULL)
        *reason = why;
    return why == NULL ? 0 : -1;
}
