#include "core/totp.h"

#include <stdio.h>
#include <apr_strings.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

char *sk_base32_encode(apr_pool_t *p, const unsigned char *in, size_t len)
{
    char *out, *o;
    unsigned long buf = 0;
    int bits = 0;
    size_t i;

    if (!p || (!in && len))
        return NULL;
    o = out = apr_palloc(p, (len * 8 + 4) / 5 + 1);
    for (i = 0; i < len; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            *o++ = B32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        *o++ = B32[(buf << (5 - bits)) & 31];
    *o = '\0';
    return out;
}

unsigned char *sk_base32_decode(apr_pool_t *p, const char *in, size_t *outlen)
{
    size_t n, i, o = 0;
    unsigned long buf = 0;
    int bits = 0;
    unsigned char *out;

    if (!p || !in || !outlen)
        return NULL;
    n = strlen(in);
    while (n > 0 && in[n - 1] == '=')
        n--;
    /* lengths mod 8 of 1, 3 and 6 characters encode no whole number of bytes */
    if (n % 8 == 1 || n % 8 == 3 || n % 8 == 6)
        return NULL;
    out = apr_palloc(p, n * 5 / 8 + 1);
    for (i = 0; i < n; i++) {
        char c = in[i];
        int v;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return NULL;
        buf = (buf << 5) | (unsigned long)v;
        bits += 5;
        if (bits >= 8) {
            out[o++] = (unsigned char)((buf >> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static const EVP_MD *md_of(sk_otp_alg alg)
{
    switch (alg) {
    case SK_OTP_SHA1:   return EVP_sha1();
    case SK_OTP_SHA256: return EVP_sha256();
    case SK_OTP_SHA512: return EVP_sha512();
    }
    return NULL;
}

long sk_hotp(sk_otp_alg alg, const unsigned char *key, size_t keylen, unsigned long long counter,
             int digits)
{
    static const long mod[] = { 1000000L, 10000000L, 100000000L };
    unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    const EVP_MD *md = md_of(alg);
    unsigned off;
    unsigned long bin;
    int i;

    if (!md || !key || digits < 6 || digits > 8 || keylen > 1024)
        return -1;
    for (i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(counter & 0xff);
        counter >>= 8;
    }
    if (!HMAC(md, key, (int)keylen, msg, sizeof(msg), mac, &maclen) || maclen < 20)
        return -1;
    off = mac[maclen - 1] & 0x0f;
    bin = ((unsigned long)(mac[off] & 0x7f) << 24) | ((unsigned long)mac[off + 1] << 16) |
          ((unsigned long)mac[off + 2] << 8) | (unsigned long)mac[off + 3];
    OPENSSL_cleanse(mac, sizeof(mac));
    return (long)(bin % (unsigned long)mod[digits - 6]);
}

long long sk_totp_step(long long t)
{
    return t < 0 ? -1 : t / SK_TOTP_PERIOD;
}

char *sk_totp_code(apr_pool_t *p, sk_otp_alg alg, const unsigned char *key, size_t keylen,
                   long long step, int digits)
{
    long v;
    if (!p || step < 0)
        return NULL;
    if ((v = sk_hotp(alg, key, keylen, (unsigned long long)step, digits)) < 0)
        return NULL;
    return apr_psprintf(p, "%0*ld", digits, v);
}

long long sk_totp_verify(const unsigned char *key, size_t keylen, const char *code, long long now,
                         int window, long long last_step)
{
    long long step = sk_totp_step(now), s, found = -1;
    char want[24];
    int i;

    if (!key || !code || step < 0 || window < 0 || window > 10 || strlen(code) != SK_TOTP_DIGITS)
        return -1;
    for (i = 0; i < SK_TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return -1;
    for (s = step - window; s <= step + window; s++) {
        long v;
        int eq;
        if (s < 0)
            continue;
        if ((v = sk_hotp(SK_OTP_SHA1, key, keylen, (unsigned long long)s, SK_TOTP_DIGITS)) < 0)
            return -1;
        snprintf(want, sizeof(want), "%06ld", v);
        eq = CRYPTO_memcmp(want, code, SK_TOTP_DIGITS) == 0;
        /* the latest matching step that has not been used yet */
        if (eq && s > last_step)
            found = s;
    }
    OPENSSL_cleanse(want, sizeof(want));
    return found;
}
