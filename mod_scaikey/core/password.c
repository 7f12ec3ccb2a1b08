/*
 * password: argon2id PHC hashes, with equal-time verification for unknown accounts.
 */
#include "core/password.h"
#include "core/secrets.h"

#include <apr_strings.h>
#include <argon2.h>
#include <pthread.h>
#include <string.h>

#define SALT_LEN 16
#define HASH_LEN 32
#define T_MAX 64u
#define M_MAX 1048576u   /* 1 GiB: a stored hash asking for more is treated as corrupt */
#define P_MAX 16u
#define PHC_MAX 256

/* Cost and dummy hash are shared by all threads of the process; the lock is only held briefly,
 * except once per cost change while the dummy is recomputed. */
static pthread_mutex_t cost_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned cost_t = SK_PASSWORD_T_COST_DEFAULT;
static unsigned cost_m = SK_PASSWORD_M_COST_DEFAULT;
static unsigned cost_p = SK_PASSWORD_PARALLELISM_DEFAULT;
static char dummy_phc[PHC_MAX];
static unsigned dummy_t, dummy_m, dummy_p; /* cost dummy_phc was made with; 0 = none yet */

static int cost_valid(unsigned t, unsigned m, unsigned par)
{
    return t >= 1 && t <= T_MAX && par >= 1 && par <= P_MAX && m >= 8u * par && m <= M_MAX;
}

void sk_password_set_cost(unsigned t_cost, unsigned m_cost_kib, unsigned parallelism)
{
    if (!cost_valid(t_cost, m_cost_kib, parallelism))
        return;
    pthread_mutex_lock(&cost_lock);
    cost_t = t_cost;
    cost_m = m_cost_kib;
    cost_p = parallelism;
    pthread_mutex_unlock(&cost_lock);
}

static void current_cost(unsigned *t, unsigned *m, unsigned *par)
{
    pthread_mutex_lock(&cost_lock);
    *t = cost_t;
    *m = cost_m;
    *par = cost_p;
    pthread_mutex_unlock(&cost_lock);
}

static int hash_with(unsigned t, unsigned m, unsigned par, const char *password, size_t pwlen,
                     char *out, size_t outsize)
{
    unsigned char salt[SALT_LEN];
    if (sk_random_bytes(salt, sizeof(salt)) != 0)
        return -1;
    if (argon2_encodedlen(t, m, par, SALT_LEN, HASH_LEN, Argon2_id) > outsize)
        return -1;
    int rc = argon2id_hash_encoded(t, m, par, password, pwlen, salt, SALT_LEN, HASH_LEN,
                                   out, outsize);
    return rc == ARGON2_OK ? 0 : -1;
}

/* Copies the dummy hash for the current cost into out, making it on first use or after a cost
 * change. Returns 0, or -1 if it could not be made. */
static int dummy_hash(char *out, size_t outsize)
{
    static const char dummy_password[] = "scaikey: no such account";
    int rv = 0;
    pthread_mutex_lock(&cost_lock);
    if (dummy_t != cost_t || dummy_m != cost_m || dummy_p != cost_p) {
        if (hash_with(cost_t, cost_m, cost_p, dummy_password, sizeof(dummy_password) - 1,
                      dummy_phc, sizeof(dummy_phc)) == 0) {
            dummy_t = cost_t;
            dummy_m = cost_m;
            dummy_p = cost_p;
        } else {
            dummy_t = dummy_m = dummy_p = 0;
            rv = -1;
        }
    }
    if (rv == 0) {
        if (strlen(dummy_phc) >= outsize)
            rv = -1;
        else
            memcpy(out, dummy_phc, strlen(dummy_phc) + 1);
    }
    pthread_mutex_unlock(&cost_lock);
    return rv;
}

char *sk_password_hash(apr_pool_t *p, const char *password)
{
    if (p == NULL || password == NULL || password[0] == '\0')
        return NULL;
    unsigned t, m, par;
    current_cost(&t, &m, &par);
    char buf[PHC_MAX];
    if (hash_with(t, m, par, password, strlen(password), buf, sizeof(buf)) != 0)
        return NULL;
    return apr_pstrdup(p, buf);
}

static const char *parse_uint(const char *s, unsigned *out)
{
    unsigned long v = 0;
    if (*s < '0' || *s > '9' || (*s == '0' && s[1] >= '0' && s[1] <= '9'))
        return NULL;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 0xFFFFFFFFul)
            return NULL;
        s++;
    }
    *out = (unsigned)v;
    return s;
}

static const char *skip_b64(const char *s, size_t min)
{
    size_t n = 0;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
           || *s == '+' || *s == '/') {
        s++;
        n++;
    }
    return n >= min ? s : NULL;
}

/* Our own shape check before libargon2 sees the string: only argon2id v=19, costs within the
 * limits (a corrupt row must not make us allocate gigabytes), salt >= 8 and hash >= 16 bytes. */
static int phc_acceptable(const char *phc)
{
    static const char prefix[] = "$argon2id$v=19$m=";
    unsigned t, m, par;
    if (phc == NULL || strlen(phc) >= PHC_MAX || strncmp(phc, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    const char *s = phc + sizeof(prefix) - 1;
    if ((s = parse_uint(s, &m)) == NULL || strncmp(s, ",t=", 3) != 0)
        return 0;
    if ((s = parse_uint(s + 3, &t)) == NULL || strncmp(s, ",p=", 3) != 0)
        return 0;
    if ((s = parse_uint(s + 3, &par)) == NULL || *s != '$')
        return 0;
    if (!cost_valid(t, m, par))
        return 0;
    if ((s = skip_b64(s + 1, 11)) == NULL || *s != '$')
        return 0;
    if ((s = skip_b64(s + 1, 22)) == NULL || *s != '\0')
        return 0;
    return 1;
}

int sk_password_verify(const char *phc, const char *password)
{
    const char *pw = password != NULL ? password : "";
    size_t pwlen = strlen(pw);

    if (password != NULL && phc_acceptable(phc)) {
        int rc = argon2id_verify(phc, pw, pwlen);
        if (rc == ARGON2_OK)
            return 1;
        if (rc == ARGON2_VERIFY_MISMATCH)
            return 0;
        /* any other error may have returned before doing the work: fall through */
    }

    char dummy[PHC_MAX];
    if (dummy_hash(dummy, sizeof(dummy)) == 0)
        (void)argon2id_verify(dummy, pw, pwlen);
    return 0;
}
