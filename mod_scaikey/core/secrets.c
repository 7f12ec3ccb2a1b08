/*
 * secrets: randomness, encodings, digests, constant-time comparison, AES-256-GCM.
 */
#include "core/secrets.h"

#include <apr_strings.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SK_RANDOM_TOKEN_MAX 4096
#define SK_RANDOM_DIGITS_MAX 1024
#define SK_RANDOM_ID_LEN 16
/* GCM lengths go through int in the EVP API; stay far below that. */
#define SK_AEAD_MAX (INT_MAX / 2)

int sk_random_bytes(unsigned char *buf, size_t n)
{
    if (buf == NULL)
        return -1;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(buf, chunk) != 1)
            return -1;
        buf += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* ---------------------------------------------------------------- base64 */

static const char B64_STD[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(apr_pool_t *p, const char *alphabet, int pad,
                        const unsigned char *in, size_t len)
{
    if (p == NULL || (in == NULL && len > 0))
        return NULL;
    if (len > (SIZE_MAX / 4) - 4)
        return NULL;
    size_t cap = ((len + 2) / 3) * 4 + 1;
    char *out = apr_palloc(p, cap);
    if (out == NULL)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = ((unsigned)in[i] << 16) | ((unsigned)in[i + 1] << 8) | in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    size_t rest = len - i;
    if (rest == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (rest == 2) {
        unsigned v = ((unsigned)in[i] << 16) | ((unsigned)in[i + 1] << 8);
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* The value plus one of the 62 characters both alphabets share; 0 for any other byte. */
static const unsigned char B64_SHARED[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62,
};

/* The alphabets differ only in their last two characters (values 62 and 63). */
static int b64_value(int url, unsigned char c)
{
    const char *alphabet = url ? B64_URL : B64_STD;
    if (B64_SHARED[c])
        return (int)B64_SHARED[c] - 1;
    return c == (unsigned char)alphabet[62] ? 62 : c == (unsigned char)alphabet[63] ? 63 : -1;
}

/* Strict decoder: canonical encodings only, so that one byte string has exactly one text form
 * (tokens and signatures cannot be re-spelled). */
static unsigned char *b64_decode(apr_pool_t *p, int url, const char *in, size_t *outlen)
{
    if (outlen != NULL)
        *outlen = 0;
    if (p == NULL || in == NULL)
        return NULL;

    size_t n = strlen(in);
    size_t pads = 0;
    while (pads < n && in[n - 1 - pads] == '=')
        pads++;
    if (pads > 2)
        return NULL;
    if (pads > 0 && n % 4 != 0)
        return NULL;
    size_t m = n - pads;
    size_t rem = m % 4;
    if (rem == 1)
        return NULL;
    if (pads > 0 && pads != 4 - rem)
        return NULL;

    size_t olen = (m / 4) * 3 + (rem == 2 ? 1 : rem == 3 ? 2 : 0);
    unsigned char *out = apr_palloc(p, olen + 1);
    if (out == NULL)
        return NULL;

    size_t o = 0, i = 0;
    for (; i + 4 <= m; i += 4) {
        int a = b64_value(url, (unsigned char)in[i]);
        int b = b64_value(url, (unsigned char)in[i + 1]);
        int c = b64_value(url, (unsigned char)in[i + 2]);
        int d = b64_value(url, (unsigned char)in[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0)
            return NULL;
        unsigned v = ((unsigned)a << 18) | ((unsigned)b << 12) | ((unsigned)c << 6) | (unsigned)d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (rem == 2) {
        int a = b64_value(url, (unsigned char)in[i]);
        int b = b64_value(url, (unsigned char)in[i + 1]);
        if (a < 0 || b < 0 || (b & 0x0F) != 0)
            return NULL;
        out[o++] = (unsigned char)((a << 2) | (b >> 4));
    } else if (rem == 3) {
        int a = b64_value(url, (unsigned char)in[i]);
        int b = b64_value(url, (unsigned char)in[i + 1]);
        int c = b64_value(url, (unsigned char)in[i + 2]);
        if (a < 0 || b < 0 || c < 0 || (c & 0x03) != 0)
            return NULL;
        out[o++] = (unsigned char)((a << 2) | (b >> 4));
        out[o++] = (unsigned char)(((b & 0x0F) << 4) | (c >> 2));
    }
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return out;
}

char *sk_b64url_encode(apr_pool_t *p, const unsigned char *in, size_t len)
{
    return b64_encode(p, B64_URL, 0, in, len);
}

unsigned char *sk_b64url_decode(apr_pool_t *p, const char *in, size_t *outlen)
{
    return b64_decode(p, 1, in, outlen);
}

char *sk_b64_encode(apr_pool_t *p, const unsigned char *in, size_t len)
{
    return b64_encode(p, B64_STD, 1, in, len);
}

unsigned char *sk_b64_decode(apr_pool_t *p, const char *in, size_t *outlen)
{
    return b64_decode(p, 0, in, outlen);
}

/* ---------------------------------------------------------------- random strings */

char *sk_random_token(apr_pool_t *p, const char *prefix, size_t nbytes)
{
    unsigned char buf[SK_RANDOM_TOKEN_MAX];
    if (p == NULL || nbytes == 0 || nbytes > sizeof(buf))
        return NULL;
    if (sk_random_bytes(buf, nbytes) != 0)
        return NULL;
    char *enc = sk_b64url_encode(p, buf, nbytes);
    OPENSSL_cleanse(buf, nbytes);
    if (enc == NULL)
        return NULL;
    return prefix != NULL ? apr_pstrcat(p, prefix, enc, NULL) : enc;
}

/* Fills out[0..n) with characters of alphabet (size k <= 256), each uniformly distributed:
 * bytes at or above the largest multiple of k are discarded. */
static int random_chars(char *out, size_t n, const char *alphabet, unsigned k)
{
    unsigned limit = 256 - (256 % k);
    unsigned char buf[64];
    size_t have = 0, pos = 0;
    while (have < n) {
        if (pos == 0 || pos >= sizeof(buf)) {
            if (sk_random_bytes(buf, sizeof(buf)) != 0)
                return -1;
            pos = 0;
        }
        unsigned b = buf[pos++];
        if (b < limit)
            out[have++] = alphabet[b % k];
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

char *sk_random_id(apr_pool_t *p, const char *prefix)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char id[SK_RANDOM_ID_LEN + 1];
    if (p == NULL)
        return NULL;
    if (random_chars(id, SK_RANDOM_ID_LEN, alnum, 36) != 0)
        return NULL;
    id[SK_RANDOM_ID_LEN] = '\0';
    return apr_pstrcat(p, prefix != NULL ? prefix : "", id, NULL);
}

char *sk_random_digits(apr_pool_t *p, int n)
{
    if (p == NULL || n <= 0 || n > SK_RANDOM_DIGITS_MAX)
        return NULL;
    char *out = apr_palloc(p, (size_t)n + 1);
    if (out == NULL)
        return NULL;
    if (random_chars(out, (size_t)n, "0123456789", 10) != 0)
        return NULL;
    out[n] = '\0';
    return out;
}

/* ---------------------------------------------------------------- digests */

static char *hex_lower(apr_pool_t *p, const unsigned char *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = apr_palloc(p, len * 2 + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0F];
    }
    out[len * 2] = '\0';
    return out;
}

/* SHA-256 fetched from the OpenSSL 3 provider once per process: EVP_sha256() makes every
 * EVP_Digest fetch it again through the method store, a lock shared by all threads, and digests
 * run on every guarded request and every token request. */
static const EVP_MD *sha256_md(void)
{
    static _Atomic(EVP_MD *) fetched;
    EVP_MD *md = atomic_load_explicit(&fetched, memory_order_acquire), *expected = NULL;
    if (md != NULL)
        return md;
    if ((md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
        return EVP_sha256();
    if (!atomic_compare_exchange_strong(&fetched, &expected, md)) {
        EVP_MD_free(md);         /* another thread was first: use its copy */
        md = expected;
    }
    return md;
}

void sk_sha256(const void *data, size_t len, unsigned char out[32])
{
    if (out == NULL)
        return;
    if (data == NULL) {
        data = "";
        len = 0;
    }
    unsigned int olen = 0;
    if (EVP_Digest(data, len, out, &olen, sha256_md(), NULL) != 1 || olen != 32) {
        /* Cannot report an error through this signature: never leave a predictable digest
         * that could equal a real one by accident of stale memory. */
        memset(out, 0, 32);
    }
}

char *sk_sha256_hex(apr_pool_t *p, const char *s)
{
    if (p == NULL || s == NULL)
        return NULL;
    unsigned char md[32];
    unsigned int olen = 0;
    if (EVP_Digest(s, strlen(s), md, &olen, sha256_md(), NULL) != 1 || olen != 32)
        return NULL;
    return hex_lower(p, md, sizeof(md));
}

char *sk_hmac_sha256_hex(apr_pool_t *p, const unsigned char *key, size_t keylen,
                         const void *data, size_t len)
{
    if (p == NULL || key == NULL || (data == NULL && len > 0))
        return NULL;
    unsigned char mac[32];
    size_t maclen = 0;
    /* EVP_Q_mac rejects a NULL key pointer even for an empty key. */
    static const unsigned char empty[1] = { 0 };
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
                  keylen > 0 ? key : empty, keylen,
                  data != NULL ? data : (const void *)empty, len,
                  mac, sizeof(mac), &maclen) == NULL || maclen != sizeof(mac))
        return NULL;
    return hex_lower(p, mac, sizeof(mac));
}

/* ---------------------------------------------------------------- comparison */

int sk_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (a == NULL || b == NULL || alen != blen)
        return 0;
    if (alen == 0)
        return 1;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int sk_ct_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 0;
    return sk_ct_equal(a, strlen(a), b, strlen(b));
}

/* ---------------------------------------------------------------- AES-256-GCM */

int sk_aead_seal(apr_pool_t *p, const unsigned char key[32], const char *aad,
                 const unsigned char *pt, size_t ptlen,
                 unsigned char **out, size_t *outlen)
{
    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (p == NULL || key == NULL || out == NULL || outlen == NULL
        || (pt == NULL && ptlen > 0) || ptlen > SK_AEAD_MAX)
        return -1;

    size_t total = SK_AEAD_NONCE_LEN + ptlen + SK_AEAD_TAG_LEN;
    unsigned char *buf = apr_palloc(p, total);
    if (buf == NULL)
        return -1;
    unsigned char *nonce = buf;
    unsigned char *ct = buf + SK_AEAD_NONCE_LEN;
    unsigned char *tag = ct + ptlen;
    if (sk_random_bytes(nonce, SK_AEAD_NONCE_LEN) != 0)
        return -1;

    int rv = -1, len = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -1;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SK_AEAD_NONCE_LEN, NULL) != 1
        || EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
        goto done;
    if (aad != NULL && aad[0] != '\0') {
        size_t alen = strlen(aad);
        if (alen > SK_AEAD_MAX
            || EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)alen) != 1)
            goto done;
    }
    if (ptlen > 0) {
        if (EVP_EncryptUpdate(ctx, ct, &len, pt, (int)ptlen) != 1 || (size_t)len != ptlen)
            goto done;
    }
    if (EVP_EncryptFinal_ex(ctx, ct + ptlen, &len) != 1 || len != 0)
        goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SK_AEAD_TAG_LEN, tag) != 1)
        goto done;
    *out = buf;
    *outlen = total;
    rv = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

int sk_aead_open(apr_pool_t *p, const unsigned char key[32], const char *aad,
                 const unsigned char *sealed, size_t len,
                 unsigned char **out, size_t *outlen)
{
    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (p == NULL || key == NULL || sealed == NULL || out == NULL || outlen == NULL
        || len < SK_AEAD_NONCE_LEN + SK_AEAD_TAG_LEN
        || len - SK_AEAD_NONCE_LEN - SK_AEAD_TAG_LEN > SK_AEAD_MAX)
        return -1;

    const unsigned char *nonce = sealed;
    const unsigned char *ct = sealed + SK_AEAD_NONCE_LEN;
    size_t ctlen = len - SK_AEAD_NONCE_LEN - SK_AEAD_TAG_LEN;
    unsigned char tag[SK_AEAD_TAG_LEN];
    memcpy(tag, ct + ctlen, SK_AEAD_TAG_LEN);

    unsigned char *pt = apr_palloc(p, ctlen + 1);
    if (pt == NULL)
        return -1;

    int rv = -1, n = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -1;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SK_AEAD_NONCE_LEN, NULL) != 1
        || EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
        goto done;
    if (aad != NULL && aad[0] != '\0') {
        size_t alen = strlen(aad);
        if (alen > SK_AEAD_MAX
            || EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)alen) != 1)
            goto done;
    }
    if (ctlen > 0) {
        if (EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ctlen) != 1 || (size_t)n != ctlen)
            goto done;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SK_AEAD_TAG_LEN, tag) != 1)
        goto done;
    if (EVP_DecryptFinal_ex(ctx, pt + ctlen, &n) != 1)
        goto done;
    pt[ctlen] = '\0';
    *out = pt;
    *outlen = ctlen;
    rv = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (rv != 0)
        OPENSSL_cleanse(pt, ctlen + 1); /* unauthenticated plaintext must not linger */
    return rv;
}

/* ---------------------------------------------------------------- UTF-8 */

int sk_utf8_valid(const char *s, size_t len)
{
    if (s == NULL)
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;          /* overlong below U+0800 */
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;          /* U+D800..U+DFFF surrogates */
        } else if (c >= 0xE1 && c <= 0xEF) {
            need = 2;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90;          /* overlong below U+10000 */
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;          /* above U+10FFFF */
        } else {
            return 0;           /* continuation byte, C0/C1 overlongs, F5..FF */
        }
        if (len - i - 1 < need)
            return 0;
        if (u[i + 1] < lo || u[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return 0;
        }
        i += need + 1;
    }
    return 1;
}
