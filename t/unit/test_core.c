/*
 * Unit tests for mod_scaikey/core: secrets, password, jwt. TAP on stdout.
 */
#include <check.h>
#include "unit_main.h"
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "core/es256.h"
#include "core/password.h"
#include "core/secrets.h"
#include "core/jwt.h"

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

/* ------------------------------------------------------------------ fixtures */

/* RFC 7638 section 3.1 example key; its thumbprint is given in the RFC. */
static const char RFC7638_JWK[] =
    "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7"
    "aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ"
    "5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
    "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\","
    "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
static const char RFC7638_KID[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* Test keys made with `openssl genpkey` and turned into JWKs by a small Python script reading
 * `openssl pkey -text`; the expected kids were computed by the same script as
 * base64url(sha256('{"e":..,"kty":"RSA","n":..}')) / ('{"crv":..,"kty":"EC","x":..,"y":..}'). */
static const char RSA1_JWK[] =
    "{\"kty\":\"RSA\",\"n\":\"kKVcAwfwC3Zk2XPCdYVpZQqg6bGWqnhqPwm4Qx54YPjUP-n7MKiXt-87mi-BJYD7olarvM6Wj"
    "ASfr5tHmo7O_e1qtkvrd_YcdEfTUkFyBurP6QCfJMn8qjsZhzmYd1HbBOyx_2EJWk34RX7iOTrkyalIHYDfVJo-hm5hO4Gn6R"
    "DTPpwVEj1FiC6GK8j_JQN6sFehCHLlkp2G9g2PkDa2UskbjbZJZ_w6VehOzNYV9CMsvTNWAPsz5B2h6HgQJ5T-oRvF0sJtk7n"
    "GTxrU_Fwh--ByOEk08-8081dH3TzBOJY3DzjsV5E039GBDaYzgHVVBIsJ9W2Wbp8b0GXfdRhP0Q\",\"e\":\"AQAB\",\"d\":"
    "\"BLOELmLJ2PSG1fi8xnUw6hBeryPHDui5os2AAjn1fYje3KowIGptXnSBiFsQiHGVFCdbHviLtPayQjrSuKW5OXB30D-e0kw"
    "C7B5YwmbXQ_1qJyN-mKtyOW3w8CfFgmTMIKCJD0DmFPvdZLRZWdT1wk5sxi017QXzn-rK4RxPYtw9LBDUSb1ihh6USjuiC5EM"
    "3VAeuHOF_VOXPxW2ygJMYykjh4Vqfi0F5WdFYf9696EG8qq1q0a7pXTME7Lt9pm_jkKaWqITQSOdeyjFbCpBA7qJ0vTq-SVg5"
    "N_WL1YP37Cs25XUtktLFJBjXJLdFd8305UHd5AzzwCaf_VsDuUawQ\",\"p\":\"ym_mbFDaDscRPwje16TgixvNgziwkIoFPr"
    "vWPgKOVS81Lt7mLSiEjWvj4nvw6tlDtKM7yd_MFPweONvROFLuuVCOVmk_eldlHsfYMluUjEcYvBMFh2tKUBGi7g4c4IiM2WUt"
    "X6zt6mjNaOtJaFNR1VUYQ9cfbeSc6C05r6CXXRE\",\"q\":\"tur3v4HL-52cLF2JSjehoDj0FbxR7e76epvLojNC2en_uNWM"
    "gzRqh3aJpJzO2SvVqEl7HcWpFkZ6EcYJAbI8gT2TCFc-mAUk61bix0q6oNzkjKUgWiQHt-E7zIL-5FSZu0GoTTd-QGyUKqWui"
    "ZKNf_6qyAe8QUmXxz0dkUEAxsE\",\"dp\":\"V1w2-iNiFuJ9ZNB1KmZyqFWVOL2sJJQLc2koKZZ8yfIXZ2S1vGMx4L3gmAqY"
    "iyC7gSa4VIQJ1DyA5lSmU0Im1z4WTuAYjrlMYB4qBIFU97xuxisHRctdRHR39XeNqrAC6IYrMJC2E2Sq0E5JXYYnWILid9RMM"
    "eZoeCGcNVh-OaE\",\"dq\":\"OIcCiyc0f4ykf71kORBaHWacX78z3oDU3WEaHAUVarx6r4cnBkEDjtteDAX9knWOcJRMvNWh"
    "vGWJQcbeb6zCL_p0XsZ_bIFieGwAZzA73oyFAMXi6php3jR3w2rUFIHkhE71EO_OT2B-pXNQLemhWuW7p1dkoRR6GDNV2Naqw8"
    "E\",\"qi\":\"Dn_De-Ti5JIbswGqzE_5w08GLmUbpubSxKyLb75dlypUFhS726OuSzD_SiOxd6yfutuoTkDUc_SkNgcPveMtX"
    "CYoB8aitjqclafiVpmmZCQyANfRl-JYFYaN4-3uv_BNSZ91WzgrhB-h_uNS-bDSKv0LifrE3jn-0oJ2RfiHf6c\"}";
static const char RSA1_KID[] = "0Y6DNN_8anCGMDMynRTUbocvl50Tbmw0p12G7n9b7UI";

static const char RSA2_JWK[] =
    "{\"kty\":\"RSA\",\"n\":\"u7yLTBXKyzrwPg6vTKcjwoJPULOP_XuB6CGb4rMPYD62e61Pg3gRF4Fl9-VMyKrWuDp5r2fcZ"
    "ToclLrPET6DWodoHiNWBmPq0gfnh6NEFpoVIxJF2xWet-lumUK03pdJpfKdBcjJQ_aaj4IYIYzJDwxf8r7GEHbJ5VeX_uIW3Ox"
    "MSlKsRazHs_ySXznjknStLdxGPRaaFyTUiqr-dJL1WzF_NNy9m9lvO-kl_PZiHk7_GhnSBmQJyd2MuuQmaFtj1x6z6a3TnEy24"
    "Gn0LkBxOIlP2KV5Kt314fROl9ddnDfkJu0eWjHMrvG7PiWV6u58tECFSshw_t0x5b_wkk-yLw\",\"e\":\"AQAB\",\"d\":\""
    "XSIr-JLXB_s1M5QVYvGHy_bZYi-yPw4GZCJIMy6hch2qabCQwafO0tpeu5wFe4dE_iAEPgBIVe9-Pkpubx-UClUiUdE12_W1iH"
    "xjX-ae4JeP5NYr0YPoOVSUiXOORt7GqoyxWS1Cq3SrOIZRclNlaxG4h7Qcjg5gGmZaARgoP3Ago307k2nlEJcjuV8FhO5njZVj"
    "DnuCWL_NPXs4pMQsfCJo5TTSfOblMLv6djyARQsVPjAHKwvXF0XauCxFp1VkwUrbeMqC0gjrCP-cUDT-UFtwdGc37bqmbhdgv2"
    "WQUJmL6rwD0a7BRjYHcZq0A750WiO4QLKcsB7TXwT-Zwph\",\"p\":\"5iBXJyraRxKSRlDd2QhxTTe7oN4aCBrIIjRL4YjBIz"
    "LpStUbXJ2YWwn6RlqgVcJprKNnw8Qvvw2Ixlm5PZKWOr5BiK6Vj-MttQelWb7qRJK41s51KFxYuniy_rY6WX4xEiaJ3l0-2b_5"
    "EkMq0cMMQuMYBdMVFjEcs4lArBf2Fl8\",\"q\":\"0NgcB_9Qi8K0d8TDW2PPHnsw5JWs0NGCslvZJLt3evlMcs1hMTtIXpd3m"
    "rQLilTAU-cIL88oLj0ccbvSO9SMn9j-M8Tf26_1NBlwp-qqN7EzvfRVQgcRKvbg8Xc7oe1RrrE1Bm5wyLCNNsdPIaX5eByPJ__"
    "uFX2pSPYBjjW-1jE\",\"dp\":\"5VNjJn_4x4zFQddCTQ6xwg6BJv1OGbd-qz9MQvOB7G7GtzEJNFFES6z0wHl9gBjeMBEizZ7"
    "LKev12hv9klNq7B0-t1OrbZkpqlZ1O6saT72a_0z8yXzFWwX-8f9sxFQR2JGZIIPxpxM8xSs0F5b0uA8QmHVSdSv5-xwS26yBK"
    "qc\",\"dq\":\"6vI0lsqj0pc4b4TsQeQHHkN4va-ku0b3wa-SmcBMqgvL9VsX_Eq1H7VG2MO0N-sgc0N18lMa4OnfFhQ2bxiv"
    "GyUC1TqmnH9XW0VDd6SH2h-AFjLJt3470hnq9bstWv2g5uZ0wMd-GkiElRuj6jbOcFGwu08wiPzVdT9MgK_2AQ\",\"qi\":\"F"
    "_kR2pYFfW2Kb8omabh27g7BSzH6QBY3LZ0ZVt0lfxOwBhDbA9Mk5D8kE_XnTcFlSnTuN8TiUm3tLiH_3_fPhXX3K3ktqcRPulb"
    "9TvfwZhNW0GqOHu6MNyc_5t0QqBwWzHS4Ltrb5Fi3_VBqekYRZBczYyXCHGV2a0FpsY_6txE\"}";
static const char RSA2_KID[] = "PEsCB09Ijy1g6km3SuHzTWLGl9G3q5Z-GOqq0eiHbv0";

/* The same key as RSA2_JWK, in PKCS#8 PEM: lets the tests sign arbitrary headers with OpenSSL. */
static const char RSA2_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEuwIBADANBgkqhkiG9w0BAQEFAASCBKUwggShAgEAAoIBAQC7vItMFcrLOvA+\n"
    "Dq9MpyPCgk9Qs4/9e4HoIZvisw9gPrZ7rU+DeBEXgWX35UzIqta4OnmvZ9xlOhyU\n"
    "us8RPoNah2geI1YGY+rSB+eHo0QWmhUjEkXbFZ636W6ZQrTel0ml8p0FyMlD9pqP\n"
    "ghghjMkPDF/yvsYQdsnlV5f+4hbc7ExKUqxFrMez/JJfOeOSdK0t3EY9FpoXJNSK\n"
    "qv50kvVbMX803L2b2W876SX89mIeTv8aGdIGZAnJ3Yy65CZoW2PXHrPprdOcTLbg\n"
    "afQuQHE4iU/YpXkq3fXh9E6X112cN+Qm7R5aMcyu8bs+JZXq7ny0QIVKyHD+3THl\n"
    "v/CST7IvAgMBAAECgf9dIiv4ktcH+zUzlBVi8YfL9tliL7I/DgZkIkgzLqFyHapp\n"
    "sJDBp87S2l67nAV7h0T+IAQ+AEhV734+Sm5vH5QKVSJR0TXb9bWIfGNf5p7gl4/k\n"
    "1ivRg+g5VJSJc45G3saqjLFZLUKrdKs4hlFyU2VrEbiHtByODmAaZloBGCg/cCCj\n"
    "fTuTaeUQlyO5XwWE7meNlWMOe4JYv809ezikxCx8ImjlNNJ85uUwu/p2PIBFCxU+\n"
    "MAcrC9cXRdq4LEWnVWTBStt4yoLSCOsI/5xQNP5QW3B0ZzftuqZuF2C/ZZBQmYvq\n"
    "vAPRrsFGNgdxmrQDvnRaI7hAspywHtNfBP5nCmECgYEA5iBXJyraRxKSRlDd2Qhx\n"
    "TTe7oN4aCBrIIjRL4YjBIzLpStUbXJ2YWwn6RlqgVcJprKNnw8Qvvw2Ixlm5PZKW\n"
    "Or5BiK6Vj+MttQelWb7qRJK41s51KFxYuniy/rY6WX4xEiaJ3l0+2b/5EkMq0cMM\n"
    "QuMYBdMVFjEcs4lArBf2Fl8CgYEA0NgcB/9Qi8K0d8TDW2PPHnsw5JWs0NGCslvZ\n"
    "JLt3evlMcs1hMTtIXpd3mrQLilTAU+cIL88oLj0ccbvSO9SMn9j+M8Tf26/1NBlw\n"
    "p+qqN7EzvfRVQgcRKvbg8Xc7oe1RrrE1Bm5wyLCNNsdPIaX5eByPJ//uFX2pSPYB\n"
    "jjW+1jECgYEA5VNjJn/4x4zFQddCTQ6xwg6BJv1OGbd+qz9MQvOB7G7GtzEJNFFE\n"
    "S6z0wHl9gBjeMBEizZ7LKev12hv9klNq7B0+t1OrbZkpqlZ1O6saT72a/0z8yXzF\n"
    "WwX+8f9sxFQR2JGZIIPxpxM8xSs0F5b0uA8QmHVSdSv5+xwS26yBKqcCgYAA6vI0\n"
    "lsqj0pc4b4TsQeQHHkN4va+ku0b3wa+SmcBMqgvL9VsX/Eq1H7VG2MO0N+sgc0N1\n"
    "8lMa4OnfFhQ2bxivGyUC1TqmnH9XW0VDd6SH2h+AFjLJt3470hnq9bstWv2g5uZ0\n"
    "wMd+GkiElRuj6jbOcFGwu08wiPzVdT9MgK/2AQKBgBf5EdqWBX1tim/KJmm4du4O\n"
    "wUsx+kAWNy2dGVbdJX8TsAYQ2wPTJOQ/JBP1503BZUp07jfE4lJt7S4h/9/3z4V1\n"
    "9yt5LanET7pW/U738GYTVtBqjh7ujDcnP+bdEKgcFsx0uC7a2+RYt/1QanpGEWQX\n"
    "M2MlwhxldmtBabGP+rcR\n"
    "-----END PRIVATE KEY-----\n";

static const char EC1_JWK[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"nzcG2UbWjQJAiicYZoaEASbYYcruCyoOVDhMyXLNHcU\","
    "\"y\":\"PUvzQfXbEWVJQUYiudJVWnMwZRKxZrFSRqxcSMA3enE\","
    "\"d\":\"w7rIrJ8tTHO6tgtgS49lUDtdQjV1g5KcBdIBGckp-3I\"}";
static const char EC1_KID[] = "Tnvp5rg5OOAlJUDoKppiVXEOlwmSYPHFl7uGLX5itT0";

/* ------------------------------------------------------------------ helpers */

/* Key lookup for the tests: 'force' answers every kid, otherwise the kid must match. */
typedef struct {
    const sk_key *keys[4];
    int n;
    const sk_key *force;
} keyset;

static const sk_key *lookup(void *ctx, const char *kid)
{
    keyset *ks = ctx;
    if (ks->force != NULL)
        return ks->force;
    for (int i = 0; i < ks->n; i++) {
        if (strcmp(sk_key_kid(ks->keys[i]), kid) == 0)
            return ks->keys[i];
    }
    return NULL;
}

static char *b64u_str(const char *s)
{
    return sk_b64url_encode(pool, (const unsigned char *)s, strlen(s));
}

/* header.payload. with a raw signature appended; any of them hand-made. */
static char *assemble(const char *hdr_json, const char *payload_json,
                      const unsigned char *sig, size_t siglen)
{
    char *input = apr_pstrcat(pool, b64u_str(hdr_json), ".", b64u_str(payload_json), NULL);
    return apr_pstrcat(pool, input, ".", sk_b64url_encode(pool, sig, siglen), NULL);
}

/* Signs header.payload with RSA2_PEM through OpenSSL (not through the code under test). */
static char *ossl_rsa_token(const char *digest, const char *hdr_json, const char *payload_json)
{
    BIO *bio = BIO_new_mem_buf(RSA2_PEM, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ck_assert_ptr_nonnull(pkey);
    char *input = apr_pstrcat(pool, b64u_str(hdr_json), ".", b64u_str(payload_json), NULL);
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_get_digestbyname(digest), NULL, pkey), 1);
    ck_assert_int_eq(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    return apr_pstrcat(pool, input, ".", sk_b64url_encode(pool, sig, siglen), NULL);
}

static sk_key *load(const char *jwk, sk_alg alg)
{
    sk_key *k = sk_key_from_jwk_json(pool, jwk, alg);
    ck_assert_ptr_nonnull(k);
    return k;
}

static json_t *sample_claims(void)
{
    return json_pack("{s:s, s:s, s:I}", "iss", "https://id.example", "sub", "usr_1",
                     (const char *)"exp", (json_int_t)4102444800LL);
}

/* ------------------------------------------------------------------ secrets */

START_TEST(b64url_roundtrip)
{
    unsigned char buf[70];
    for (size_t len = 0; len < sizeof(buf); len++) {
        ck_assert_int_eq(sk_random_bytes(buf, len), 0);
        char *enc = sk_b64url_encode(pool, buf, len);
        ck_assert_ptr_nonnull(enc);
        ck_assert_ptr_null(strpbrk(enc, "=+/"));
        size_t outlen = 999;
        unsigned char *dec = sk_b64url_decode(pool, enc, &outlen);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(outlen, len);
        ck_assert_int_eq(memcmp(dec, buf, len), 0);
        ck_assert_int_eq(dec[len], 0);
    }
    size_t n;
    ck_assert_str_eq(sk_b64url_encode(pool, (const unsigned char *)"\xfb\xff", 2), "-_8");
    ck_assert_str_eq((char *)sk_b64url_decode(pool, "-_8", &n), "\xfb\xff");
    ck_assert_str_eq((char *)sk_b64url_decode(pool, "YQ==", &n), "a");  /* padding tolerated */
    ck_assert_str_eq((char *)sk_b64url_decode(pool, "YQ", &n), "a");
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(b64url_rejects)
{
    size_t n;
    ck_assert_ptr_null(sk_b64url_decode(pool, "a$b", &n));
    ck_assert_ptr_null(sk_b64url_decode(pool, "=a", &n));
    ck_assert_ptr_null(sk_b64url_decode(pool, "YQ=a", &n));
    ck_assert_ptr_null(sk_b64url_decode(pool, "YQ=", &n));     /* wrong amount of padding */
    ck_assert_ptr_null(sk_b64url_decode(pool, "YWJj=", &n));
    ck_assert_ptr_null(sk_b64url_decode(pool, "Y", &n));       /* impossible length */
    ck_assert_ptr_null(sk_b64url_decode(pool, "YR", &n));      /* non-canonical trailing bits */
    ck_assert_ptr_null(sk_b64url_decode(pool, "a+b/", &n));    /* standard alphabet */
    ck_assert_ptr_null(sk_b64url_decode(pool, "YW Jj", &n));
    ck_assert_ptr_null(sk_b64url_decode(pool, NULL, &n));
    ck_assert_ptr_null(sk_b64url_decode(NULL, "YQ", &n));
    ck_assert_ptr_null(sk_b64url_encode(pool, NULL, 3));

    /* every byte value in every position of a group: accepted exactly when it is in the
     * alphabet, and then decoded to its index */
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int c = 1; c < 256; c++) {
        const char *u = strchr(url, c), *t = strchr(std, c);
        char in[5] = { (char)c, 'A', 'A', 'A', '\0' };
        unsigned char *out = sk_b64url_decode(pool, in, &n);
        if (u == NULL)
            ck_assert_msg(out == NULL, "byte %d accepted by the url decoder", c);
        else
            ck_assert_msg(out != NULL && n == 3 && out[0] == (unsigned char)((u - url) << 2),
                          "byte %d decoded wrongly by the url decoder", c);
        out = sk_b64_decode(pool, in, &n);
        if (t == NULL)
            ck_assert_msg(out == NULL, "byte %d accepted by the standard decoder", c);
        else
            ck_assert_msg(out != NULL && n == 3 && out[0] == (unsigned char)((t - std) << 2),
                          "byte %d decoded wrongly by the standard decoder", c);
        in[0] = 'A';
        in[3] = (char)c;
        out = sk_b64url_decode(pool, in, &n);
        /* '=' there is padding ("AAA=" is canonical) */
        ck_assert_msg((out != NULL) == (u != NULL || c == '='), "byte %d in last place (url decoder)", c);
    }
}
END_TEST

START_TEST(b64_standard)
{
    size_t n;
    ck_assert_str_eq(sk_b64_encode(pool, (const unsigned char *)"a", 1), "YQ==");
    ck_assert_str_eq(sk_b64_encode(pool, (const unsigned char *)"\xfb\xff", 2), "+/8=");
    ck_assert_str_eq(sk_b64_encode(pool, (const unsigned char *)"", 0), "");
    ck_assert_str_eq((char *)sk_b64_decode(pool, "dXNlcjpwYXNz", &n), "user:pass");
    ck_assert_str_eq((char *)sk_b64_decode(pool, "+/8=", &n), "\xfb\xff");
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_null(sk_b64_decode(pool, "-_8=", &n));
    ck_assert_ptr_null(sk_b64_decode(pool, "YQ=a", &n));
    ck_assert_ptr_null(sk_b64_decode(pool, "Y===", &n));
}
END_TEST

START_TEST(sha256_and_hmac)
{
    unsigned char md[32];
    sk_sha256("abc", 3, md);
    ck_assert_str_eq(sk_b64_encode(pool, md, 32), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    ck_assert_str_eq(sk_sha256_hex(pool, "abc"),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_str_eq(sk_sha256_hex(pool, ""),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_ptr_null(sk_sha256_hex(pool, NULL));
    /* RFC 4231 test case 2 */
    const char *data = "what do ya want for nothing?";
    ck_assert_str_eq(sk_hmac_sha256_hex(pool, (const unsigned char *)"Jefe", 4, data, strlen(data)),
                     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    ck_assert_ptr_null(sk_hmac_sha256_hex(pool, NULL, 4, data, strlen(data)));
}
END_TEST

START_TEST(ct_equal_edges)
{
    ck_assert_int_eq(sk_ct_equal("abc", 3, "abc", 3), 1);
    ck_assert_int_eq(sk_ct_equal("abc", 3, "abd", 3), 0);
    ck_assert_int_eq(sk_ct_equal("abc", 3, "abcd", 4), 0);
    ck_assert_int_eq(sk_ct_equal("abc", 3, "ab", 2), 0);
    ck_assert_int_eq(sk_ct_equal(NULL, 0, "abc", 3), 0);
    ck_assert_int_eq(sk_ct_equal("abc", 3, NULL, 3), 0);
    ck_assert_int_eq(sk_ct_equal(NULL, 0, NULL, 0), 0);
    ck_assert_int_eq(sk_ct_streq("secret", "secret"), 1);
    ck_assert_int_eq(sk_ct_streq("secret", "secreT"), 0);
    ck_assert_int_eq(sk_ct_streq("secret", "secret2"), 0);
    ck_assert_int_eq(sk_ct_streq(NULL, "x"), 0);
    ck_assert_int_eq(sk_ct_streq("x", NULL), 0);
    ck_assert_int_eq(sk_ct_streq(NULL, NULL), 0);
}
END_TEST

static const unsigned char KEY_A[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char KEY_B[32] = "0123456789abcdef0123456789abcdeF";

START_TEST(aead_roundtrip)
{
    const char *msg = "{\"kty\":\"EC\",\"d\":\"secret\"}";
    unsigned char *sealed, *opened;
    size_t slen, olen;
    ck_assert_int_eq(sk_aead_seal(pool, KEY_A, "signing_keys:key_1", (const unsigned char *)msg,
                                  strlen(msg), &sealed, &slen), 0);
    ck_assert_uint_eq(slen, 12 + strlen(msg) + 16);
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, "signing_keys:key_1", sealed, slen, &opened, &olen), 0);
    ck_assert_uint_eq(olen, strlen(msg));
    ck_assert_str_eq((char *)opened, msg);

    /* fresh nonce each time */
    unsigned char *sealed2;
    size_t slen2;
    ck_assert_int_eq(sk_aead_seal(pool, KEY_A, "signing_keys:key_1", (const unsigned char *)msg,
                                  strlen(msg), &sealed2, &slen2), 0);
    ck_assert_int_ne(memcmp(sealed, sealed2, slen), 0);

    /* empty plaintext and no aad */
    ck_assert_int_eq(sk_aead_seal(pool, KEY_A, NULL, NULL, 0, &sealed, &slen), 0);
    ck_assert_uint_eq(slen, 28);
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, NULL, sealed, slen, &opened, &olen), 0);
    ck_assert_uint_eq(olen, 0);
    ck_assert_int_eq(opened[0], 0);
}
END_TEST

START_TEST(aead_tamper)
{
    const char *msg = "attack at dawn";
    const char *aad = "ctx";
    unsigned char *sealed, *opened = (unsigned char *)"x";
    size_t slen, olen;
    ck_assert_int_eq(sk_aead_seal(pool, KEY_A, aad, (const unsigned char *)msg, strlen(msg),
                                  &sealed, &slen), 0);
    size_t positions[] = { 0, 11, 12, 12 + 5, slen - 16, slen - 1 }; /* nonce, ciphertext, tag */
    for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
        unsigned char *copy = apr_pmemdup(pool, sealed, slen);
        copy[positions[i]] ^= 0x01;
        ck_assert_int_eq(sk_aead_open(pool, KEY_A, aad, copy, slen, &opened, &olen), -1);
        ck_assert_ptr_null(opened);
    }
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, "ctx2", sealed, slen, &opened, &olen), -1);
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, NULL, sealed, slen, &opened, &olen), -1);
    ck_assert_int_eq(sk_aead_open(pool, KEY_B, aad, sealed, slen, &opened, &olen), -1);
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, aad, sealed, slen - 1, &opened, &olen), -1);
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, aad, sealed, 27, &opened, &olen), -1);
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, aad, sealed, 0, &opened, &olen), -1);
    ck_assert_int_eq(sk_aead_open(pool, NULL, aad, sealed, slen, &opened, &olen), -1);
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, aad, NULL, slen, &opened, &olen), -1);
    /* and the untouched one still opens */
    ck_assert_int_eq(sk_aead_open(pool, KEY_A, aad, sealed, slen, &opened, &olen), 0);
    ck_assert_str_eq((char *)opened, msg);
}
END_TEST

START_TEST(random_strings)
{
    apr_hash_t *seen = apr_hash_make(pool);
    for (int i = 0; i < 10000; i++) {
        char *id = sk_random_id(pool, "usr_");
        ck_assert_ptr_nonnull(id);
        ck_assert_uint_eq(strlen(id), 4 + 16);
        ck_assert_int_eq(strncmp(id, "usr_", 4), 0);
        ck_assert_uint_eq(strspn(id + 4, "abcdefghijklmnopqrstuvwxyz0123456789"), 16);
        ck_assert_ptr_null(apr_hash_get(seen, id, APR_HASH_KEY_STRING));
        apr_hash_set(seen, id, APR_HASH_KEY_STRING, id);
    }
    ck_assert_uint_eq(apr_hash_count(seen), 10000);
    ck_assert_uint_eq(strlen(sk_random_id(pool, NULL)), 16);

    char *d = sk_random_digits(pool, 6);
    ck_assert_uint_eq(strlen(d), 6);
    ck_assert_uint_eq(strspn(d, "0123456789"), 6);
    ck_assert_ptr_null(sk_random_digits(pool, 0));
    ck_assert_ptr_null(sk_random_digits(pool, -1));

    char *t = sk_random_token(pool, "sk_live_", 32);
    ck_assert_uint_eq(strlen(t), 8 + 43);
    ck_assert_int_eq(strncmp(t, "sk_live_", 8), 0);
    size_t n;
    ck_assert_ptr_nonnull(sk_b64url_decode(pool, t + 8, &n));
    ck_assert_uint_eq(n, 32);
    ck_assert_uint_eq(strlen(sk_random_token(pool, NULL, 16)), 22);
    ck_assert_ptr_null(sk_random_token(pool, "x", 0));
    ck_assert_ptr_null(sk_random_token(NULL, "x", 16));
    ck_assert_int_eq(sk_random_bytes(NULL, 4), -1);
}
END_TEST

START_TEST(utf8)
{
    ck_assert_int_eq(sk_utf8_valid("", 0), 1);
    ck_assert_int_eq(sk_utf8_valid("plain ascii", 11), 1);
    ck_assert_int_eq(sk_utf8_valid("h\xc3\xa9llo", 6), 1);            /* é */
    ck_assert_int_eq(sk_utf8_valid("\xe2\x82\xac", 3), 1);            /* € */
    ck_assert_int_eq(sk_utf8_valid("\xf0\x9d\x84\x9e", 4), 1);        /* U+1D11E */
    ck_assert_int_eq(sk_utf8_valid("\xf4\x8f\xbf\xbf", 4), 1);        /* U+10FFFF */
    ck_assert_int_eq(sk_utf8_valid("\xed\x9f\xbf", 3), 1);            /* U+D7FF */
    ck_assert_int_eq(sk_utf8_valid("\xc0\x80", 2), 0);                /* overlong NUL */
    ck_assert_int_eq(sk_utf8_valid("\xc1\xbf", 2), 0);                /* overlong */
    ck_assert_int_eq(sk_utf8_valid("\xe0\x80\xaf", 3), 0);            /* overlong '/' */
    ck_assert_int_eq(sk_utf8_valid("\xf0\x8f\xbf\xbf", 4), 0);        /* overlong */
    ck_assert_int_eq(sk_utf8_valid("\xed\xa0\x80", 3), 0);            /* surrogate U+D800 */
    ck_assert_int_eq(sk_utf8_valid("\xed\xbf\xbf", 3), 0);            /* surrogate U+DFFF */
    ck_assert_int_eq(sk_utf8_valid("\xf4\x90\x80\x80", 4), 0);        /* > U+10FFFF */
    ck_assert_int_eq(sk_utf8_valid("\xe2\x82", 2), 0);                /* truncated */
    ck_assert_int_eq(sk_utf8_valid("\xe2\x82\xac", 2), 0);            /* truncated by len */
    ck_assert_int_eq(sk_utf8_valid("a\x80", 2), 0);                   /* lone continuation */
    ck_assert_int_eq(sk_utf8_valid("\xe2\x28\xa1", 3), 0);            /* bad continuation */
    ck_assert_int_eq(sk_utf8_valid("\xff", 1), 0);
    ck_assert_int_eq(sk_utf8_valid(NULL, 0), 0);
}
END_TEST

/* ------------------------------------------------------------------ password */

START_TEST(password_default_cost)
{
    sk_password_set_cost(SK_PASSWORD_T_COST_DEFAULT, SK_PASSWORD_M_COST_DEFAULT,
                         SK_PASSWORD_PARALLELISM_DEFAULT);
    char *h = sk_password_hash(pool, "correct horse battery staple");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
    ck_assert_int_eq(sk_password_verify(h, "correct horse battery staple"), 1);
    ck_assert_int_eq(sk_password_verify(h, "correct horse battery stapler"), 0);
    ck_assert_int_eq(sk_password_verify(NULL, "correct horse battery staple"), 0);
}
END_TEST

START_TEST(password_verify_cases)
{
    sk_password_set_cost(1, 64, 1);
    char *h = sk_password_hash(pool, "s3cret");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(strncmp(h, "$argon2id$v=19$m=64,t=1,p=1$", 28), 0);
    char *h2 = sk_password_hash(pool, "s3cret");
    ck_assert_str_ne(h, h2);                                 /* random salt */
    ck_assert_int_eq(sk_password_verify(h, "s3cret"), 1);
    ck_assert_int_eq(sk_password_verify(h2, "s3cret"), 1);
    ck_assert_int_eq(sk_password_verify(h, "s3cre"), 0);
    ck_assert_int_eq(sk_password_verify(h, "S3cret"), 0);
    ck_assert_int_eq(sk_password_verify(h, ""), 0);
    ck_assert_int_eq(sk_password_verify(h, NULL), 0);
    ck_assert_int_eq(sk_password_verify(NULL, "s3cret"), 0);
    ck_assert_int_eq(sk_password_verify(NULL, NULL), 0);
    ck_assert_int_eq(sk_password_verify("", "s3cret"), 0);
    ck_assert_int_eq(sk_password_verify("garbage", "s3cret"), 0);
    ck_assert_int_eq(sk_password_verify("$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "s3cret"), 0);
    /* argon2i (not id) and a truncated string */
    char *argon2i = apr_pstrdup(pool, h);
    memcpy(argon2i, "$argon2i$", 9);
    memmove(argon2i + 9, h + 10, strlen(h + 10) + 1);
    ck_assert_int_eq(sk_password_verify(argon2i, "s3cret"), 0);
    ck_assert_int_eq(sk_password_verify(apr_pstrndup(pool, h, strlen(h) - 5), "s3cret"), 0);
    /* a corrupt row asking for absurd memory is refused, not attempted */
    ck_assert_int_eq(sk_password_verify(
        "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "s3cret"), 0);
    ck_assert_ptr_null(sk_password_hash(pool, NULL));
    ck_assert_ptr_null(sk_password_hash(pool, ""));
    ck_assert_ptr_null(sk_password_hash(NULL, "x"));
}
END_TEST

/* ------------------------------------------------------------------ keys */

START_TEST(key_thumbprints)
{
    sk_key *rfc = load(RFC7638_JWK, SK_ALG_RS256);
    ck_assert_str_eq(sk_key_kid(rfc), RFC7638_KID);
    ck_assert_int_eq(sk_key_alg(rfc), SK_ALG_RS256);
    ck_assert_ptr_null(sk_key_private_json(pool, rfc));      /* public only */
    ck_assert_str_eq(sk_key_kid(load(RSA1_JWK, SK_ALG_RS256)), RSA1_KID);
    ck_assert_str_eq(sk_key_kid(load(EC1_JWK, SK_ALG_ES256)), EC1_KID);

    json_t *pub = sk_key_public_jwk(load(EC1_JWK, SK_ALG_ES256));
    ck_assert_ptr_nonnull(pub);
    ck_assert_str_eq(json_string_value(json_object_get(pub, "kid")), EC1_KID);
    ck_assert_str_eq(json_string_value(json_object_get(pub, "alg")), "ES256");
    ck_assert_str_eq(json_string_value(json_object_get(pub, "use")), "sig");
    ck_assert_str_eq(json_string_value(json_object_get(pub, "crv")), "P-256");
    ck_assert_ptr_null(json_object_get(pub, "d"));
    json_decref(pub);
}
END_TEST

START_TEST(key_import_rejects)
{
    ck_assert_ptr_null(sk_key_from_jwk_json(pool, RSA1_JWK, SK_ALG_ES256));
    ck_assert_ptr_null(sk_key_from_jwk_json(pool, EC1_JWK, SK_ALG_RS256));
    ck_assert_ptr_null(sk_key_from_jwk_json(pool, RFC7638_JWK, (sk_alg)7));
    ck_assert_ptr_null(sk_key_from_jwk_json(pool, "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}", SK_ALG_RS256));
    ck_assert_ptr_null(sk_key_from_jwk_json(pool, "not json", SK_ALG_RS256));
    ck_assert_ptr_null(sk_key_from_jwk_json(pool, "[]", SK_ALG_RS256));
    ck_assert_ptr_null(sk_key_from_jwk_json(pool, NULL, SK_ALG_RS256));
    ck_assert_ptr_null(sk_key_from_jwk_json(NULL, RSA1_JWK, SK_ALG_RS256));
    /* "alg" member disagreeing with the requested alg */
    ck_assert_ptr_null(sk_key_from_jwk_json(pool,
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\","
        "\"x\":\"nzcG2UbWjQJAiicYZoaEASbYYcruCyoOVDhMyXLNHcU\","
        "\"y\":\"PUvzQfXbEWVJQUYiudJVWnMwZRKxZrFSRqxcSMA3enE\"}", SK_ALG_ES256));
    /* a point that is not on the curve */
    ck_assert_ptr_null(sk_key_from_jwk_json(pool,
        "{\"kty\":\"EC\",\"crv\":\"P-256\","
        "\"x\":\"nzcG2UbWjQJAiicYZoaEASbYYcruCyoOVDhMyXLNHcU\","
        "\"y\":\"PUvzQfXbEWVJQUYiudJVWnMwZRKxZrFSRqxcSMA3enA\"}", SK_ALG_ES256));
    /* private part that does not belong to the public part */
    ck_assert_ptr_null(sk_key_from_jwk_json(pool,
        "{\"kty\":\"EC\",\"crv\":\"P-256\","
        "\"x\":\"nzcG2UbWjQJAiicYZoaEASbYYcruCyoOVDhMyXLNHcU\","
        "\"y\":\"PUvzQfXbEWVJQUYiudJVWnMwZRKxZrFSRqxcSMA3enE\","
        "\"d\":\"w7rIrJ8tTHO6tgtgS49lUDtdQjV1g5KcBdIBGckp-3A\"}", SK_ALG_ES256));
    /* 512-bit RSA */
    ck_assert_ptr_null(sk_key_from_jwk_json(pool,
        "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"wQ7wHkE8c9h7VqpgwNbAjV54i8OBoXjFVnTWMZfTg3usbn1RFl3oJ8YE"
        "lzMlsYa7j3ViUv_G1tQxgtdU2slTDQ\"}", SK_ALG_RS256));
    ck_assert_int_eq(sk_key_alg(NULL), 0);
    ck_assert_ptr_null(sk_key_kid(NULL));
    ck_assert_ptr_null(sk_key_public_jwk(NULL));
}
END_TEST

START_TEST(alg_names)
{
    sk_alg a = 0;
    ck_assert_str_eq(sk_alg_name(SK_ALG_RS256), "RS256");
    ck_assert_str_eq(sk_alg_name(SK_ALG_ES256), "ES256");
    ck_assert_ptr_null(sk_alg_name((sk_alg)0));
    ck_assert_int_eq(sk_alg_parse("ES256", &a), 0);
    ck_assert_int_eq(a, SK_ALG_ES256);
    ck_assert_int_eq(sk_alg_parse("RS256", &a), 0);
    ck_assert_int_eq(a, SK_ALG_RS256);
    ck_assert_int_eq(sk_alg_parse("rs256", &a), -1);
    ck_assert_int_eq(sk_alg_parse("none", &a), -1);
    ck_assert_int_eq(sk_alg_parse(NULL, &a), -1);
}
END_TEST

static void roundtrip(sk_alg alg)
{
    sk_key *k = sk_key_generate(pool, alg);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(sk_key_alg(k), alg);
    ck_assert_uint_eq(strlen(sk_key_kid(k)), 43);

    json_t *claims = sample_claims();
    char *tok = sk_jwt_sign(pool, k, claims, NULL);
    ck_assert_ptr_nonnull(tok);
    ck_assert_int_eq(claims->refcount, 1);                   /* not stolen */

    /* header exactly as documented */
    json_t *hdr = json_loads((char *)sk_b64url_decode(pool, apr_pstrndup(pool, tok, strcspn(tok, ".")),
                                                      NULL), 0, NULL);
    ck_assert_ptr_nonnull(hdr);
    ck_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), sk_alg_name(alg));
    ck_assert_str_eq(json_string_value(json_object_get(hdr, "kid")), sk_key_kid(k));
    ck_assert_str_eq(json_string_value(json_object_get(hdr, "typ")), "JWT");
    ck_assert_uint_eq(json_object_size(hdr), 3);
    json_decref(hdr);

    keyset ks = { { k }, 1, NULL };
    const char *kid = NULL, *reason = "unset";
    json_t *got = sk_jwt_verify(pool, tok, lookup, &ks, &kid, &reason);
    ck_assert_msg(got != NULL, "verify failed: %s", reason);
    ck_assert_int_eq(json_equal(got, claims), 1);
    ck_assert_str_eq(kid, sk_key_kid(k));
    json_decref(got);

    /* the private export re-imports as the same key, and the public JWK verifies */
    char *priv = sk_key_private_json(pool, k);
    ck_assert_ptr_nonnull(priv);
    sk_key *k2 = sk_key_from_jwk_json(pool, priv, alg);
    ck_assert_ptr_nonnull(k2);
    ck_assert_str_eq(sk_key_kid(k2), sk_key_kid(k));
    json_t *pubj = sk_key_public_jwk(k);
    char *pubs = json_dumps(pubj, JSON_COMPACT);
    sk_key *kpub = sk_key_from_jwk_json(pool, pubs, alg);
    free(pubs);
    json_decref(pubj);
    ck_assert_ptr_nonnull(kpub);
    ck_assert_ptr_null(sk_key_private_json(pool, kpub));
    ck_assert_ptr_null(sk_jwt_sign(pool, kpub, claims, NULL));  /* cannot sign without d */

    char *tok2 = sk_jwt_sign(pool, k2, claims, "at+jwt");
    ck_assert_ptr_nonnull(tok2);
    keyset ks2 = { { kpub }, 1, NULL };
    got = sk_jwt_verify(pool, tok2, lookup, &ks2, NULL, &reason);
    ck_assert_msg(got != NULL, "verify failed: %s", reason);
    json_decref(got);
    json_decref(claims);
}

START_TEST(rs256_roundtrip)
{
    roundtrip(SK_ALG_RS256);
}
END_TEST

START_TEST(es256_roundtrip)
{
    roundtrip(SK_ALG_ES256);
}
END_TEST

START_TEST(private_json_roundtrip)
{
    sk_key *k = load(RSA1_JWK, SK_ALG_RS256);
    char *priv = sk_key_private_json(pool, k);
    ck_assert_ptr_nonnull(priv);
    json_t *a = json_loads(priv, 0, NULL), *b = json_loads(RSA1_JWK, 0, NULL);
    ck_assert_ptr_nonnull(a);
    const char *members[] = { "kty", "n", "e", "d", "p", "q", "dp", "dq", "qi" };
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
        ck_assert_str_eq(json_string_value(json_object_get(a, members[i])),
                         json_string_value(json_object_get(b, members[i])));
    json_decref(a);
    json_decref(b);
    sk_key *again = load(priv, SK_ALG_RS256);
    ck_assert_str_eq(sk_key_kid(again), RSA1_KID);

    sk_key *ec = load(EC1_JWK, SK_ALG_ES256);
    char *ecpriv = sk_key_private_json(pool, ec);
    ck_assert_ptr_nonnull(strstr(ecpriv, "\"d\":\"w7rIrJ8tTHO6tgtgS49lUDtdQjV1g5KcBdIBGckp-3I\""));
    ck_assert_str_eq(sk_key_kid(load(ecpriv, SK_ALG_ES256)), EC1_KID);
}
END_TEST

/* ------------------------------------------------------------------ verify refusals */

static const char PAYLOAD[] = "{\"sub\":\"usr_1\",\"exp\":4102444800}";

static void expect_refused(const char *tok, keyset *ks, const char *want_reason)
{
    const char *reason = NULL, *kid = "unset";
    json_t *got = sk_jwt_verify(pool, tok, lookup, ks, &kid, &reason);
    if (got != NULL)
        json_decref(got);
    ck_assert_msg(got == NULL, "token accepted, expected refusal (%s)", want_reason);
    ck_assert_ptr_null(kid);
    ck_assert_ptr_nonnull(reason);
    if (want_reason != NULL)
        ck_assert_str_eq(reason, want_reason);
}

/* The signing input of a token with another ES256 signature (r || s) refused as invalid. */
static void expect_bad_signature(const char *input, const unsigned char sig[64], keyset *ks)
{
    expect_refused(apr_pstrcat(pool, input, ".", sk_b64url_encode(pool, sig, 64), NULL), ks, "invalid signature");
}

START_TEST(verify_handmade_control)
{
    /* the OpenSSL-made tokens used below do verify when nothing is wrong with them */
    keyset ks = { { load(RSA2_JWK, SK_ALG_RS256) }, 1, NULL };
    char *hdr = apr_psprintf(pool, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", RSA2_KID);
    const char *reason = NULL;
    json_t *got = sk_jwt_verify(pool, ossl_rsa_token("SHA256", hdr, PAYLOAD), lookup, &ks, NULL, &reason);
    ck_assert_msg(got != NULL, "control token refused: %s", reason);
    ck_assert_str_eq(json_string_value(json_object_get(got, "sub")), "usr_1");
    json_decref(got);
}
END_TEST

START_TEST(verify_alg_none)
{
    keyset ks = { { load(RSA1_JWK, SK_ALG_RS256) }, 1, NULL };
    char *hdr = apr_psprintf(pool, "{\"alg\":\"none\",\"kid\":\"%s\"}", RSA1_KID);
    char *unsigned_tok = apr_pstrcat(pool, b64u_str(hdr), ".", b64u_str(PAYLOAD), ".", NULL);
    expect_refused(unsigned_tok, &ks, NULL);
    expect_refused(assemble(hdr, PAYLOAD, (const unsigned char *)"sig", 3), &ks, "unsupported algorithm");
    hdr = apr_psprintf(pool, "{\"alg\":\"None\",\"kid\":\"%s\"}", RSA1_KID);
    expect_refused(assemble(hdr, PAYLOAD, (const unsigned char *)"sig", 3), &ks, "unsupported algorithm");
    /* no alg at all */
    hdr = apr_psprintf(pool, "{\"kid\":\"%s\"}", RSA1_KID);
    expect_refused(assemble(hdr, PAYLOAD, (const unsigned char *)"sig", 3), &ks, "malformed token");
}
END_TEST

START_TEST(verify_hs256_with_public_key)
{
    sk_key *k = load(RSA1_JWK, SK_ALG_RS256);
    keyset ks = { { k }, 1, NULL };
    json_t *pub = sk_key_public_jwk(k);
    char *secret = json_dumps(pub, JSON_COMPACT);
    json_decref(pub);

    char *hdr = apr_psprintf(pool, "{\"alg\":\"HS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", RSA1_KID);
    char *input = apr_pstrcat(pool, b64u_str(hdr), ".", b64u_str(PAYLOAD), NULL);
    unsigned char mac[32];
    size_t maclen = 0;
    ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
                                    (const unsigned char *)input, strlen(input), mac, sizeof(mac),
                                    &maclen));
    free(secret);
    char *tok = apr_pstrcat(pool, input, ".", sk_b64url_encode(pool, mac, maclen), NULL);
    expect_refused(tok, &ks, "unsupported algorithm");
}
END_TEST

START_TEST(verify_rs384_header)
{
    /* a genuine RS384 signature by the right key: only the pinning refuses it */
    keyset ks = { { load(RSA2_JWK, SK_ALG_RS256) }, 1, NULL };
    char *hdr = apr_psprintf(pool, "{\"alg\":\"RS384\",\"kid\":\"%s\"}", RSA2_KID);
    expect_refused(ossl_rsa_token("SHA384", hdr, PAYLOAD), &ks, "unsupported algorithm");
    hdr = apr_psprintf(pool, "{\"alg\":\"PS256\",\"kid\":\"%s\"}", RSA2_KID);
    expect_refused(ossl_rsa_token("SHA256", hdr, PAYLOAD), &ks, "unsupported algorithm");
}
END_TEST

START_TEST(verify_es256_token_rsa_key)
{
    sk_key *ec = load(EC1_JWK, SK_ALG_ES256);
    sk_key *rsa = load(RSA1_JWK, SK_ALG_RS256);
    json_t *claims = sample_claims();
    char *tok = sk_jwt_sign(pool, ec, claims, NULL);
    json_decref(claims);
    ck_assert_ptr_nonnull(tok);
    keyset good = { { ec }, 1, NULL };
    json_t *got = sk_jwt_verify(pool, tok, lookup, &good, NULL, NULL);
    ck_assert_ptr_nonnull(got);
    json_decref(got);
    keyset bad = { { NULL }, 0, rsa };                       /* RSA key under the EC kid */
    expect_refused(tok, &bad, "algorithm mismatch");
}
END_TEST

START_TEST(verify_other_key_same_kid)
{
    /* signed (correctly) by RSA2, but claiming RSA1's kid */
    keyset ks = { { load(RSA1_JWK, SK_ALG_RS256) }, 1, NULL };
    char *hdr = apr_psprintf(pool, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", RSA1_KID);
    expect_refused(ossl_rsa_token("SHA256", hdr, PAYLOAD), &ks, "invalid signature");

    /* and via the module's own signer, looked up with a key that is not the signer */
    json_t *claims = sample_claims();
    char *tok = sk_jwt_sign(pool, load(RSA2_JWK, SK_ALG_RS256), claims, NULL);
    json_decref(claims);
    keyset forced = { { NULL }, 0, load(RSA1_JWK, SK_ALG_RS256) };
    expect_refused(tok, &forced, "invalid signature");
}
END_TEST

START_TEST(verify_unknown_kid)
{
    keyset ks = { { load(RSA1_JWK, SK_ALG_RS256) }, 1, NULL };
    json_t *claims = sample_claims();
    char *tok = sk_jwt_sign(pool, load(RSA2_JWK, SK_ALG_RS256), claims, NULL);
    json_decref(claims);
    expect_refused(tok, &ks, "unknown key");
    /* no kid at all */
    expect_refused(ossl_rsa_token("SHA256", "{\"alg\":\"RS256\"}", PAYLOAD), &ks, "missing kid");
    expect_refused(ossl_rsa_token("SHA256", "{\"alg\":\"RS256\",\"kid\":7}", PAYLOAD), &ks, "missing kid");
}
END_TEST

/* Keys sign and verify through OpenSSL directly; its check refuses what cjose's would. */
START_TEST(native_verify)
{
    sk_key *rsa = load(RSA1_JWK, SK_ALG_RS256), *ec = load(EC1_JWK, SK_ALG_ES256);
    sk_key *gen = sk_key_generate(pool, SK_ALG_ES256);
    json_t *pubj = sk_key_public_jwk(ec);
    char *pubtxt = json_dumps(pubj, JSON_COMPACT);
    sk_key *ecpub = sk_key_from_jwk_json(pool, pubtxt, SK_ALG_ES256);
    free(pubtxt);
    json_decref(pubj);
    ck_assert_int_eq(sk_key_native(rsa), SK_KEY_NATIVE_SIGN | SK_KEY_NATIVE_VERIFY);
    ck_assert_int_eq(sk_key_native(ec), SK_KEY_NATIVE_SIGN | SK_KEY_NATIVE_VERIFY);
    ck_assert_int_eq(sk_key_native(gen), SK_KEY_NATIVE_SIGN | SK_KEY_NATIVE_VERIFY);
    ck_assert_ptr_nonnull(ecpub);
    ck_assert_int_eq(sk_key_native(ecpub), SK_KEY_NATIVE_VERIFY);

    /* a token of the private key verifies with the public one alone */
    keyset ks = { { ecpub }, 1, NULL };
    json_t *claims = sample_claims();
    char *tok = sk_jwt_sign(pool, ec, claims, NULL);
    json_decref(claims);
    json_t *got = sk_jwt_verify(pool, tok, lookup, &ks, NULL, NULL);
    ck_assert_ptr_nonnull(got);
    json_decref(got);

    /* ES256 signatures that are not R || S of this key: zero, all ones (beyond the order), the
     * halves swapped, one bit changed */
    char *dot2 = strrchr(tok, '.');
    size_t siglen = 0;
    unsigned char *sig = sk_b64url_decode(pool, dot2 + 1, &siglen);
    ck_assert_uint_eq(siglen, 64);
    const char *input = apr_pstrndup(pool, tok, (size_t)(dot2 - tok));
    unsigned char bad[64];
    memset(bad, 0, sizeof(bad));
    expect_bad_signature(input, bad, &ks);
    memset(bad, 0xff, sizeof(bad));
    expect_bad_signature(input, bad, &ks);
    memcpy(bad, sig + 32, 32);
    memcpy(bad + 32, sig, 32);
    expect_bad_signature(input, bad, &ks);
    memcpy(bad, sig, 64);
    bad[40] ^= 0x10;
    expect_bad_signature(input, bad, &ks);
    /* an RS256 signature of the right length made by another RSA key */
    sk_key *other = sk_key_generate(pool, SK_ALG_RS256);
    keyset rs = { { rsa }, 1, NULL };
    claims = sample_claims();
    char *mine = sk_jwt_sign(pool, rsa, claims, NULL), *theirs = sk_jwt_sign(pool, other, claims, NULL);
    json_decref(claims);
    char *forged = apr_pstrcat(pool, apr_pstrndup(pool, mine, (size_t)(strrchr(mine, '.') - mine)),
                               strrchr(theirs, '.'), NULL);
    expect_refused(forged, &rs, "invalid signature");
    got = sk_jwt_verify(pool, mine, lookup, &rs, NULL, NULL);
    ck_assert_ptr_nonnull(got);
    json_decref(got);
}
END_TEST

/* ------------------------------------------------------------------ es256 */

/* the EVP answer for sig (r || s) of md by key: 1 valid, 0 not */
static int evp_es256(EVP_PKEY *key, const unsigned char *md, const unsigned char *sig)
{
    unsigned char der[80], *pp = der;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    ck_assert(es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1);
    int len = i2d_ECDSA_SIG(es, &pp);
    ECDSA_SIG_free(es);
    ck_assert_int_gt(len, 0);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    ck_assert(ctx != NULL && EVP_PKEY_verify_init(ctx) == 1);
    int rv = EVP_PKEY_verify(ctx, der, (size_t)len, md, 32);
    EVP_PKEY_CTX_free(ctx);
    return rv == 1;
}

/* r || s of md signed by key */
static void evp_es256_sign(EVP_PKEY *key, const unsigned char *md, unsigned char *sig)
{
    unsigned char der[80];
    size_t len = sizeof(der);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    ck_assert(ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, der, &len, md, 32) == 1);
    EVP_PKEY_CTX_free(ctx);
    const unsigned char *pp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &pp, (long)len);
    ck_assert_ptr_nonnull(es);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    ck_assert_int_eq(BN_bn2binpad(r, sig, 32), 32);
    ck_assert_int_eq(BN_bn2binpad(s, sig + 32, 32), 32);
    ECDSA_SIG_free(es);
}

/* the table check and EVP_PKEY_verify give the same answer for sig, and it is want (-1: any) */
static void same_answer(sk_es256 *c, EVP_PKEY *key, const unsigned char *md, const unsigned char *sig, int want,
                        const char *what)
{
    int fast = sk_es256_verify(c, md, sig), evp = evp_es256(key, md, sig);
    ck_assert_msg(fast == evp, "%s: table %d, EVP %d", what, fast, evp);
    if (want >= 0)
        ck_assert_msg(fast == want, "%s: %d, expected %d", what, fast, want);
}

START_TEST(es256_inverse_agrees_with_bn)
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    const BIGNUM *n = EC_GROUP_get0_order(g);
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *a = BN_new(), *want = BN_new(), *got = BN_new();
    unsigned char ab[32], out[32];
    ck_assert(g != NULL && ctx != NULL && a != NULL && want != NULL && got != NULL);
    for (int i = 0; i < 20000 + 6; i++) {
        switch (i) {                        /* the edges first: 1, 2, 3, n - 1, n - 2, 2^255 */
        case 0: case 1: case 2:
            ck_assert(BN_set_word(a, (BN_ULONG)i + 1));
            break;
        case 3: case 4:
            ck_assert(BN_sub(a, n, BN_value_one()) && (i == 3 || BN_sub_word(a, 1)));
            break;
        case 5:
            BN_zero(a);
            ck_assert(BN_set_bit(a, 255));
            break;
        default:
            do
                ck_assert(BN_rand_range(a, n));
            while (BN_is_zero(a));
        }
        ck_assert_int_eq(BN_bn2binpad(a, ab, 32), 32);
        ck_assert_int_eq(sk_es256_inverse(ab, out), 0);
        ck_assert_ptr_nonnull(BN_mod_inverse(want, a, n, ctx));
        ck_assert_ptr_nonnull(BN_bin2bn(out, 32, got));
        ck_assert_msg(BN_cmp(got, want) == 0, "the inverse of value %d differs", i);
    }
    /* 0 and n have none */
    memset(ab, 0, 32);
    ck_assert_int_eq(sk_es256_inverse(ab, out), -1);
    ck_assert_int_eq(BN_bn2binpad(n, ab, 32), 32);
    ck_assert_int_eq(sk_es256_inverse(ab, out), -1);
    BN_free(a);
    BN_free(want);
    BN_free(got);
    BN_CTX_free(ctx);
    EC_GROUP_free(g);
}
END_TEST

START_TEST(es256_table_agrees_with_openssl)
{
    /* n, the order of P-256 */
    static const unsigned char n[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
    };
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(other);
    for (int k = 0; k < 6; k++) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        ck_assert_ptr_nonnull(key);
        sk_es256 *c = sk_es256_new(key, 0);
        ck_assert_ptr_nonnull(c);
        ck_assert(!sk_es256_ready(c));
        for (int i = 0; i < 60; i++) {
            unsigned char md[32], md2[32], sig[64], bad[64];
            ck_assert_int_eq(RAND_bytes(md, 32), 1);
            evp_es256_sign(key, md, sig);
            same_answer(c, key, md, sig, 1, "a signature of the key");
            ck_assert(sk_es256_ready(c));

            memcpy(md2, md, 32);
            md2[i % 32] ^= (unsigned char)(1u << (i % 8));
            same_answer(c, key, md2, sig, 0, "another digest");
            memcpy(bad, sig, 64);
            bad[(i * 7) % 64] ^= (unsigned char)(1u << (i % 8));
            same_answer(c, key, md, bad, 0, "one bit changed");
            memcpy(bad, sig + 32, 32);
            memcpy(bad + 32, sig, 32);
            same_answer(c, key, md, bad, 0, "r and s swapped");
            ck_assert_int_eq(RAND_bytes(bad, 64), 1);
            same_answer(c, key, md, bad, 0, "random bytes");
            evp_es256_sign(other, md, bad);
            same_answer(c, key, md, bad, 0, "a signature by another key");

            /* (r, n - s) is the other valid signature of the same digest */
            BIGNUM *sb = BN_bin2bn(sig + 32, 32, NULL), *nb = BN_bin2bn(n, 32, NULL);
            ck_assert(sb != NULL && nb != NULL && BN_sub(sb, nb, sb) == 1);
            memcpy(bad, sig, 32);
            ck_assert_int_eq(BN_bn2binpad(sb, bad + 32, 32), 32);
            BN_free(sb);
            BN_free(nb);
            same_answer(c, key, md, bad, 1, "s replaced by n - s");
        }
        /* r and s out of [1, n - 1] */
        unsigned char md[32], sig[64], bad[64];
        ck_assert_int_eq(RAND_bytes(md, 32), 1);
        evp_es256_sign(key, md, sig);
        const struct { int half; int fill; } edges[] = { { 0, 0 }, { 1, 0 }, { 0, 1 }, { 1, 1 }, { 0, 2 }, { 1, 2 } };
        for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
            memcpy(bad, sig, 64);
            unsigned char *part = bad + 32 * edges[e].half;
            if (edges[e].fill == 0)
                memset(part, 0, 32);           /* 0 */
            else if (edges[e].fill == 1)
                memcpy(part, n, 32);           /* n */
            else
                memset(part, 0xff, 32);        /* beyond n */
            same_answer(c, key, md, bad, 0, "r or s out of range");
        }
        /* s = 1, 2, n - 1: the inverse at its edges (not signatures: refused, by both) */
        const unsigned char small[3] = { 1, 2, 0 };
        for (int e = 0; e < 3; e++) {
            memcpy(bad, sig, 64);
            if (small[e] != 0) {
                memset(bad + 32, 0, 32);
                bad[63] = small[e];
            } else {
                memcpy(bad + 32, n, 32);
                bad[63] -= 1;
            }
            same_answer(c, key, md, bad, -1, "s at an edge");
        }
        sk_es256_free(c);
        EVP_PKEY_free(key);
    }
    EVP_PKEY_free(other);
}
END_TEST

START_TEST(es256_warmup_and_refusals)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char md[32], sig[64];
    ck_assert_int_eq(RAND_bytes(md, 32), 1);
    evp_es256_sign(key, md, sig);
    sk_es256 *c = sk_es256_new(key, 3);
    ck_assert_int_eq(sk_es256_verify(c, md, sig), -1);   /* the caller checks the first two */
    ck_assert_int_eq(sk_es256_verify(c, md, sig), -1);
    ck_assert(!sk_es256_ready(c));
    ck_assert_int_eq(sk_es256_verify(c, md, sig), 1);    /* the third builds the table */
    ck_assert(sk_es256_ready(c));
    sk_es256_free(c);
    sk_es256_free(NULL);
    ck_assert_int_eq(sk_es256_verify(NULL, md, sig), -1);
    EVP_PKEY_free(key);

    /* only P-256 keys */
    ck_assert_ptr_null(sk_es256_new(NULL, 0));
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ck_assert(p384 != NULL && rsa != NULL);
    ck_assert_ptr_null(sk_es256_new(p384, 0));
    ck_assert_ptr_null(sk_es256_new(rsa, 0));
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
}
END_TEST

START_TEST(es256_key_after_warmup)
{
    /* past the warm-up an ES256 key checks through its table: what it accepts and refuses stays */
    sk_key *ec = sk_key_generate(pool, SK_ALG_ES256);
    keyset ks = { { ec }, 1, NULL };
    char *tok = NULL;
    for (int i = 0; i < 80; i++) {
        json_t *claims = sample_claims();
        json_object_set_new(claims, "n", json_integer(i));
        tok = sk_jwt_sign(pool, ec, claims, NULL);
        json_decref(claims);
        json_t *got = sk_jwt_verify(pool, tok, lookup, &ks, NULL, NULL);
        ck_assert_msg(got != NULL, "token %d refused", i);
        ck_assert_int_eq(json_integer_value(json_object_get(got, "n")), i);
        json_decref(got);
    }
    char *dot2 = strrchr(tok, '.');
    size_t siglen = 0;
    unsigned char *sig = sk_b64url_decode(pool, dot2 + 1, &siglen), bad[64];
    ck_assert_uint_eq(siglen, 64);
    const char *input = apr_pstrndup(pool, tok, (size_t)(dot2 - tok));
    for (int i = 0; i < 64; i += 5) {
        memcpy(bad, sig, 64);
        bad[i] ^= 0x01;
        expect_bad_signature(input, bad, &ks);
    }
    memset(bad, 0, sizeof(bad));
    expect_bad_signature(input, bad, &ks);
    /* the payload changed, the signature kept */
    char *body = apr_pstrdup(pool, input);
    char *p2 = strchr(body, '.') + 2;
    *p2 = *p2 == 'A' ? 'B' : 'A';
    expect_refused(apr_pstrcat(pool, body, dot2, NULL), &ks, NULL);
}
END_TEST

START_TEST(verify_tampered)
{
    sk_key *k = load(RSA1_JWK, SK_ALG_RS256);
    keyset ks = { { k }, 1, NULL };
    json_t *claims = sample_claims();
    char *tok = sk_jwt_sign(pool, k, claims, NULL);
    json_decref(claims);

    /* payload swapped */
    char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    char *evil = apr_pstrcat(pool, apr_pstrndup(pool, tok, (size_t)(dot1 - tok)), ".",
                             b64u_str("{\"iss\":\"https://id.example\",\"sub\":\"usr_admin\",\"exp\":4102444800}"),
                             dot2, NULL);
    expect_refused(evil, &ks, "invalid signature");
    /* one signature character changed */
    char *flip = apr_pstrdup(pool, tok);
    char *c = flip + strlen(flip) - 10;
    *c = *c == 'A' ? 'B' : 'A';
    expect_refused(flip, &ks, "invalid signature");
    /* signature truncated (by whole base64 groups, and by a ragged amount) */
    expect_refused(apr_pstrndup(pool, tok, strlen(tok) - 4), &ks, NULL);
    expect_refused(apr_pstrndup(pool, tok, strlen(tok) - 1), &ks, NULL);
    /* duplicate member in the header */
    char *hdr = apr_psprintf(pool, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"alg\":\"RS256\"}", RSA1_KID);
    expect_refused(assemble(hdr, PAYLOAD, (const unsigned char *)"s", 1), &ks, "malformed token");
    /* crit header */
    hdr = apr_psprintf(pool, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"crit\":[\"exp\"]}", RSA1_KID);
    expect_refused(assemble(hdr, PAYLOAD, (const unsigned char *)"s", 1), &ks, "unsupported header");
    /* and the original is fine */
    json_t *got = sk_jwt_verify(pool, tok, lookup, &ks, NULL, NULL);
    ck_assert_ptr_nonnull(got);
    json_decref(got);
}
END_TEST

START_TEST(verify_structure)
{
    sk_key *k = load(RSA1_JWK, SK_ALG_RS256);
    keyset ks = { { k }, 1, NULL };
    json_t *claims = sample_claims();
    char *tok = sk_jwt_sign(pool, k, claims, NULL);
    json_decref(claims);

    expect_refused(apr_pstrndup(pool, tok, (size_t)(strrchr(tok, '.') - tok)), &ks, "malformed token");
    expect_refused(apr_pstrcat(pool, tok, ".AAAA", NULL), &ks, "malformed token");
    expect_refused(apr_pstrcat(pool, tok, "=", NULL), &ks, "malformed token");
    expect_refused(apr_pstrcat(pool, "..", NULL), &ks, "malformed token");
    expect_refused("", &ks, "malformed token");
    expect_refused("a$b.c.d", &ks, "malformed token");
    expect_refused(apr_pstrcat(pool, "x", tok, NULL), &ks, "malformed token");
    expect_refused(NULL, &ks, "malformed token");

    /* over 8 KiB (a well-signed one) */
    json_t *big = sample_claims();
    char *filler = apr_palloc(pool, 9001);
    memset(filler, 'x', 9000);
    filler[9000] = '\0';
    json_object_set_new(big, "filler", json_string(filler));
    char *bigtok = sk_jwt_sign(pool, k, big, NULL);
    json_decref(big);
    ck_assert_ptr_nonnull(bigtok);
    ck_assert_uint_gt(strlen(bigtok), 8192);
    expect_refused(bigtok, &ks, "token too large");

    /* non-object payloads, correctly signed */
    keyset ks2 = { { load(RSA2_JWK, SK_ALG_RS256) }, 1, NULL };
    char *hdr = apr_psprintf(pool, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", RSA2_KID);
    expect_refused(ossl_rsa_token("SHA256", hdr, "[1,2]"), &ks2, "malformed token");
    expect_refused(ossl_rsa_token("SHA256", hdr, "\"str\""), &ks2, "malformed token");
    expect_refused(ossl_rsa_token("SHA256", hdr, "not json"), &ks2, "malformed token");
    expect_refused(ossl_rsa_token("SHA256", "[\"RS256\"]", PAYLOAD), &ks2, "malformed token");

    /* fails closed on NULL arguments */
    const char *reason = NULL;
    ck_assert_ptr_null(sk_jwt_verify(pool, tok, NULL, &ks, NULL, &reason));
    ck_assert_ptr_nonnull(reason);
    ck_assert_ptr_null(sk_jwt_verify(NULL, tok, lookup, &ks, NULL, &reason));
    ck_assert_ptr_null(sk_jwt_sign(pool, k, NULL, NULL));
    json_t *arr = json_array();
    ck_assert_ptr_null(sk_jwt_sign(pool, k, arr, NULL));
    json_decref(arr);
}
END_TEST

START_TEST(peek_claims)
{
    char *hdr = "{\"alg\":\"none\"}";
    char *tok = apr_pstrcat(pool, b64u_str(hdr), ".", b64u_str(PAYLOAD), ".", NULL);
    json_t *c = sk_jwt_peek_claims(pool, tok);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(json_string_value(json_object_get(c, "sub")), "usr_1");
    json_decref(c);
    ck_assert_ptr_null(sk_jwt_peek_claims(pool, "abc.def"));
    ck_assert_ptr_null(sk_jwt_peek_claims(pool, apr_pstrcat(pool, b64u_str(hdr), ".", b64u_str("[1]"), ".", NULL)));
    ck_assert_ptr_null(sk_jwt_peek_claims(pool, NULL));
}
END_TEST

/* ------------------------------------------------------------------ claims */

static json_t *claims_at(long long exp)
{
    return json_pack("{s:s, s:s, s:I}", "iss", "https://id.example", "aud", "api", "exp",
                     (json_int_t)exp);
}

START_TEST(claims_expiry)
{
    const long long now = 1700000000;
    const char *reason = NULL;
    json_t *c = claims_at(now + 60);
    ck_assert_int_eq(sk_claims_check(c, "https://id.example", "api", now, 0, &reason), 0);
    ck_assert_ptr_null(reason);
    json_decref(c);

    c = claims_at(now - 1);
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 0, &reason), -1);
    ck_assert_str_eq(reason, "token expired");
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), 0);    /* within leeway */
    json_decref(c);

    c = claims_at(now);                                       /* exp == now is expired */
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 0, &reason), -1);
    json_decref(c);

    c = claims_at(now - 31);
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), -1);
    ck_assert_str_eq(reason, "token expired");
    json_decref(c);

    c = json_pack("{s:s}", "sub", "x");
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), -1);
    ck_assert_str_eq(reason, "missing exp");
    json_decref(c);

    c = json_pack("{s:s}", "exp", "1800000000");
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), -1);
    json_decref(c);

    ck_assert_int_eq(sk_claims_check(NULL, NULL, NULL, now, 30, &reason), -1);
}
END_TEST

START_TEST(claims_nbf_iat)
{
    const long long now = 1700000000;
    const char *reason = NULL;
    json_t *c = claims_at(now + 600);
    json_object_set_new(c, "nbf", json_integer(now + 100));
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), -1);
    ck_assert_str_eq(reason, "token not yet valid");
    json_object_set_new(c, "nbf", json_integer(now + 20));
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), 0);
    json_object_set_new(c, "iat", json_integer(now + 100));
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), -1);
    ck_assert_str_eq(reason, "token issued in the future");
    json_object_set_new(c, "iat", json_integer(now + 10));
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 30, &reason), 0);
    json_object_set_new(c, "iat", json_integer(now - 3600));
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 0, &reason), -1);  /* nbf now+20 */
    json_object_del(c, "nbf");
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 0, &reason), 0);
    json_object_set_new(c, "iat", json_string("yesterday"));
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 0, &reason), -1);
    json_decref(c);
}
END_TEST

START_TEST(claims_iss_aud)
{
    const long long now = 1700000000;
    const char *reason = NULL;
    json_t *c = claims_at(now + 600);
    ck_assert_int_eq(sk_claims_check(c, "https://evil.example", NULL, now, 0, &reason), -1);
    ck_assert_str_eq(reason, "issuer mismatch");
    ck_assert_int_eq(sk_claims_check(c, NULL, "api", now, 0, &reason), 0);
    ck_assert_int_eq(sk_claims_check(c, NULL, "other", now, 0, &reason), -1);
    ck_assert_str_eq(reason, "audience mismatch");
    ck_assert_int_eq(sk_claims_check(c, NULL, "ap", now, 0, &reason), -1);

    json_object_set_new(c, "aud", json_pack("[s,s]", "billing", "api"));
    ck_assert_int_eq(sk_claims_check(c, NULL, "api", now, 0, &reason), 0);
    ck_assert_int_eq(sk_claims_check(c, NULL, "billing", now, 0, &reason), 0);
    ck_assert_int_eq(sk_claims_check(c, NULL, "other", now, 0, &reason), -1);
    ck_assert_str_eq(reason, "audience mismatch");
    json_object_set_new(c, "aud", json_array());
    ck_assert_int_eq(sk_claims_check(c, NULL, "api", now, 0, &reason), -1);
    json_object_set_new(c, "aud", json_pack("[i,s]", 1, "api"));
    ck_assert_int_eq(sk_claims_check(c, NULL, "api", now, 0, &reason), -1);
    json_object_del(c, "aud");
    ck_assert_int_eq(sk_claims_check(c, NULL, "api", now, 0, &reason), -1);
    ck_assert_int_eq(sk_claims_check(c, NULL, NULL, now, 0, &reason), 0);
    json_object_del(c, "iss");
    ck_assert_int_eq(sk_claims_check(c, "https://id.example", NULL, now, 0, &reason), -1);
    ck_assert_str_eq(reason, "issuer mismatch");
    json_decref(c);
}
END_TEST

/* ------------------------------------------------------------------ runner */

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("secrets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, b64url_roundtrip);
    tcase_add_test(tc, b64url_rejects);
    tcase_add_test(tc, b64_standard);
    tcase_add_test(tc, sha256_and_hmac);
    tcase_add_test(tc, ct_equal_edges);
    tcase_add_test(tc, aead_roundtrip);
    tcase_add_test(tc, aead_tamper);
    tcase_add_test(tc, random_strings);
    tcase_add_test(tc, utf8);
    suite_add_tcase(s, tc);

    tc = tcase_create("password");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, password_default_cost);
    tcase_add_test(tc, password_verify_cases);
    suite_add_tcase(s, tc);

    tc = tcase_create("jwt");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, alg_names);
    tcase_add_test(tc, key_thumbprints);
    tcase_add_test(tc, key_import_rejects);
    tcase_add_test(tc, rs256_roundtrip);
    tcase_add_test(tc, es256_roundtrip);
    tcase_add_test(tc, private_json_roundtrip);
    tcase_add_test(tc, verify_handmade_control);
    tcase_add_test(tc, verify_alg_none);
    tcase_add_test(tc, verify_hs256_with_public_key);
    tcase_add_test(tc, verify_rs384_header);
    tcase_add_test(tc, verify_es256_token_rsa_key);
    tcase_add_test(tc, verify_other_key_same_kid);
    tcase_add_test(tc, verify_unknown_kid);
    tcase_add_test(tc, verify_tampered);
    tcase_add_test(tc, native_verify);
    tcase_add_test(tc, es256_inverse_agrees_with_bn);
    tcase_add_test(tc, es256_table_agrees_with_openssl);
    tcase_add_test(tc, es256_warmup_and_refusals);
    tcase_add_test(tc, es256_key_after_warmup);
    tcase_add_test(tc, verify_structure);
    tcase_add_test(tc, peek_claims);
    suite_add_tcase(s, tc);

    tc = tcase_create("claims");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, claims_expiry);
    tcase_add_test(tc, claims_nbf_iat);
    tcase_add_test(tc, claims_iss_aud);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sk_unit_run(core_suite());
}
