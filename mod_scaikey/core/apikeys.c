#include "core/apikeys.h"
#include "core/secrets.h"

#include <apr_strings.h>
#include <string.h>

#define RANDOM_BYTES 32          /* 256 bits: 43 base64url characters */

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int sk_apikey_looks_like(const char *s)
{
    size_t n = sizeof(SK_APIKEY_PREFIX) - 1, i;
    if (!s || strncmp(s, SK_APIKEY_PREFIX, n))
        return 0;
    /* stops at the terminating NUL, which is not in the alphabet */
    for (i = n; i < SK_APIKEY_LEN; i++)
        if (!b64url_char(s[i]))
            return 0;
    return s[SK_APIKEY_LEN] == '\0';
}

int sk_apikey_new(apr_pool_t *p, const char **key, const char **prefix, const char **digest)
{
    char *k = sk_random_token(p, SK_APIKEY_PREFIX, RANDOM_BYTES);
    if (!k || !sk_apikey_looks_like(k))
        return -1;
    *key = k;
    *prefix = apr_pstrndup(p, k, SK_APIKEY_PREFIX_LEN);
    *digest = sk_sha256_hex(p, k);
    return 0;
}

sk_db_status sk_apikey_lookup(sk_db *db, const char *key, json_t **out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[32];
    char digest[65];
    int i;

    *out = NULL;
    /* a credential of another kind, or a mangled key, cannot match: spare the store the query */
    if (!sk_apikey_looks_like(key))
        return SK_DB_NOTFOUND;
    if (!db)
        return SK_DB_ERROR;
    sk_sha256(key, SK_APIKEY_LEN, raw);
    for (i = 0; i < 32; i++) {
        digest[2 * i] = hex[raw[i] >> 4];
        digest[2 * i + 1] = hex[raw[i] & 0x0f];
    }
    digest[64] = '\0';
    return SK_QJ(db, "apikey_lookup", out, digest);
}

/* ---- ISO 8601 times ---- */

/* Reads exactly n decimal digits. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (; n > 0; n--, (*s)++) {
        if (**s < '0' || **s > '9')
            return -1;
        v = v * 10 + (**s - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to the given day of the proleptic Gregorian calendar. */
static long long days_from_civil(int y, int m, int d)
{
    long long era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

int sk_apikey_parse_time(const char *s, long long *usec)
{
    const char *c = s;
    int y, mo, d, h, mi, sec = 0, frac = 0, nfrac = 0, oh = 0, om = 0, sign = 0;

    if (!s || !usec)
        return -1;
    if (digits(&c, 4, &y) || *c++ != '-' || digits(&c, 2, &mo) || *c++ != '-' || digits(&c, 2, &d))
        return -1;
    if (*c != 'T' && *c != 't' && *c != ' ')
        return -1;
    c++;
    if (digits(&c, 2, &h) || *c++ != ':' || digits(&c, 2, &mi))
        return -1;
    if (*c == ':') {
        c++;
        if (digits(&c, 2, &sec))
            return -1;
        if (*c == '.' || *c == ',') {
            c++;
            if (*c < '0' || *c > '9')
                return -1;
            for (; *c >= '0' && *c <= '9'; c++, nfrac++) {
                if (nfrac >= 9)
                    return -1;
                if (nfrac < 6)
                    frac = frac * 10 + (*c - '0');
            }
            for (; nfrac < 6; nfrac++)
                frac *= 10;
        }
    }
    if (*c == 'Z' || *c == 'z') {
        c++;
    }
    else if (*c == '+' || *c == '-') {
        sign = *c++ == '-' ? -1 : 1;
        if (digits(&c, 2, &oh))
            return -1;
        if (*c == ':') {
            c++;
            if (digits(&c, 2, &om))
                return -1;
        }
        else if (*c >= '0' && *c <= '9' && digits(&c, 2, &om)) {
            return -1;
        }
    }
    if (*c)
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 ||
        oh > 23 || om > 59)
        return -1;
    *usec = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
             (long long)sign * (oh * 3600 + om * 60)) * 1000000LL + frac;
    return 0;
}
