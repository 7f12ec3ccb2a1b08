#include "core/keyring.h"
#include "core/secrets.h"

#include <apr_strings.h>
#include <apr_atomic.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>
#include <string.h>

/* how long a process may sign with a key that another process has rotated out */
#define REFRESH_INTERVAL apr_time_from_sec(SK_KEYRING_REFRESH_SECONDS)

/* An immutable set of keys. Readers take the current pointer; a reload builds a new set and swaps
 * it in. Old sets are kept for the life of the process: they are a few KiB, and keys change
 * only on rotation. */
typedef struct keyset {
    apr_pool_t *pool;
    int n;
    const sk_key **keys;
    const sk_key *signer;
    json_t *jwks;
    const char *fingerprint;
} keyset;

struct sk_keyring {
    apr_pool_t *pool;
    unsigned char master[32];
    sk_alg alg;
    volatile void *current;            /* keyset* */
    apr_thread_mutex_t *lock;          /* one reload at a time */
    volatile apr_time_t checked_at;
};

sk_keyring *sk_keyring_create(apr_pool_t *p, const unsigned char master_key[32], sk_alg alg)
{
    sk_keyring *kr = apr_pcalloc(p, sizeof(*kr));
    /* a pool of its own: only reloads (one at a time, under kr->lock) allocate from it */
    apr_pool_create(&kr->pool, p);
    memcpy(kr->master, master_key, 32);
    kr->alg = alg;
    apr_thread_mutex_create(&kr->lock, APR_THREAD_MUTEX_DEFAULT, p);
    return kr;
}

static keyset *current(sk_keyring *kr)
{
    return (keyset *)apr_atomic_casptr(&kr->current, NULL, NULL);
}

static apr_status_t free_jwks(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

sk_alg sk_keyring_alg(sk_keyring *kr)
{
    return kr ? kr->alg : (sk_alg)0;
}

sk_db_status sk_keyring_store_new(sk_keyring *kr, sk_db *db, apr_pool_t *tmp, const char *status,
                                  const char **kid_out)
{
    const char *kid, *priv, *pub_text, *sealed_b64;
    unsigned char *sealed;
    apr_size_t sealed_len;
    sk_key *k;
    json_t *pub;
    sk_db_status st;

    if (kid_out)
        *kid_out = NULL;
    if (!kr || !(k = sk_key_generate(tmp, kr->alg)) || !(priv = sk_key_private_json(tmp, k)))
        return SK_DB_ERROR;
    kid = sk_key_kid(k);
    if (sk_aead_seal(tmp, kr->master, kid, (const unsigned char *)priv, strlen(priv), &sealed, &sealed_len) != 0) {
        memset((char *)priv, 0, strlen(priv));
        return SK_DB_ERROR;
    }
    memset((char *)priv, 0, strlen(priv));
    sealed_b64 = sk_b64_encode(tmp, sealed, sealed_len);
    pub = sk_key_public_jwk(k);
    pub_text = pub ? json_dumps(pub, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(pub);
    if (!pub_text || !sealed_b64) {
        free((void *)pub_text);
        return SK_DB_ERROR;
    }
    st = SK_Q(db, "rotation_insert", kid, sk_alg_name(kr->alg), status, sealed_b64, pub_text);
    free((void *)pub_text);
    if (st == SK_DB_OK && kid_out)
        *kid_out = apr_pstrdup(tmp, kid);
    return st;
}

/* The current and the next key of the configured algorithm exist once this has committed. */
sk_db_status sk_keyring_ensure(sk_keyring *kr, sk_db *db, apr_pool_t *tmp)
{
    json_t *state = NULL;
    const char *kid = NULL;
    int have_current, have_next;
    sk_db_status st;

    if ((st = sk_db_begin(db)) != SK_DB_OK)
        return st;
    /* a rotation on another server commits first: its keys are seen below */
    if ((st = SK_QV(db, "rotation_lock", &kid)) == SK_DB_OK)
        st = SK_QJ(db, "rotation_state", &state, sk_alg_name(kr->alg));
    if (st == SK_DB_OK) {
        have_current = json_is_string(json_object_get(state, "current"));
        have_next = json_is_string(json_object_get(state, "next"));
        if (!have_current && have_next) {
            /* published ahead of time: it becomes the current key */
            st = SK_QV(db, "rotation_promote", &kid, sk_alg_name(kr->alg));
            have_next = 0;
        }
        else if (!have_current) {
            st = sk_keyring_store_new(kr, db, tmp, "current", NULL);
        }
        if (st == SK_DB_OK && !have_next)
            st = sk_keyring_store_new(kr, db, tmp, "next", NULL);
    }
    json_decref(state);
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        return st;
    }
    return sk_db_commit(db);
}

/* Builds a key set from the rows of the store. */
static keyset *build(sk_keyring *kr, json_t *rows, const char *fingerprint)
{
    apr_pool_t *p;
    keyset *ks;
    size_t i;
    json_t *row, *keys;
    apr_pool_create(&p, kr->pool);
    ks = apr_pcalloc(p, sizeof(*ks));
    ks->pool = p;
    ks->fingerprint = apr_pstrdup(p, fingerprint);
    ks->keys = apr_pcalloc(p, sizeof(*ks->keys) * (json_array_size(rows) + 1));
    keys = json_array();
    json_array_foreach(rows, i, row) {
        const char *kid = json_string_value(json_object_get(row, "kid"));
        const char *alg_s = json_string_value(json_object_get(row, "alg"));
        const char *status = json_string_value(json_object_get(row, "status"));
        const char *sealed_b64 = json_string_value(json_object_get(row, "sealed"));
        json_t *jwk = json_object_get(row, "jwk");
        sk_alg alg;
        sk_key *k = NULL;
        if (!kid || !alg_s || !status || sk_alg_parse(alg_s, &alg) != 0 || !json_is_object(jwk))
            continue;
        if (!strcmp(status, "current") && sealed_b64) {
            apr_size_t slen, plen;
            unsigned char *sealed = sk_b64_decode(p, sealed_b64, &slen), *plain;
            if (sealed && sk_aead_open(p, kr->master, kid, sealed, slen, &plain, &plen) == 0) {
                k = sk_key_from_jwk_json(p, (const char *)plain, alg);
                memset(plain, 0, plen);
                if (k && strcmp(sk_key_kid(k), kid))
                    k = NULL;        /* the sealed key is not the one its row names */
            }
            /* the configured algorithm's key signs; another algorithm's current key only stands
             * in when a rotation on a server configured differently made it the current one */
            if (k && (!ks->signer || alg == kr->alg))
                ks->signer = k;
        }
        if (!k) {
            char *text = json_dumps(jwk, JSON_COMPACT);
            k = text ? sk_key_from_jwk_json(p, text, alg) : NULL;
            free(text);
        }
        if (!k)
            continue;
        ks->keys[ks->n++] = k;
        json_array_append_new(keys, sk_key_public_jwk(k));
    }
    ks->jwks = json_pack("{s:o}", "keys", keys);
    apr_pool_cleanup_register(p, ks->jwks, free_jwks, apr_pool_cleanup_null);
    return ks;
}

sk_db_status sk_keyring_refresh(sk_keyring *kr, sk_db *db, apr_pool_t *tmp, int force)
{
    apr_time_t now = apr_time_now();
    const char *fp = NULL;
    json_t *rows = NULL;
    keyset *old, *ks;
    sk_db_status st;

    if (!force && current(kr) && now - kr->checked_at < REFRESH_INTERVAL)
        return SK_DB_OK;
    if (apr_thread_mutex_trylock(kr->lock) != APR_SUCCESS)
        return SK_DB_OK;             /* another thread is reloading; the current set serves meanwhile */
    kr->checked_at = now;
    st = sk_db_value(db, "keys_fingerprint", 0, NULL, &fp);
    old = current(kr);
    if (st == SK_DB_OK && old && !strcmp(old->fingerprint, fp)) {
        apr_thread_mutex_unlock(kr->lock);
        return SK_DB_OK;
    }
    if (st == SK_DB_OK)
        st = sk_db_json(db, "keys_load", 0, NULL, &rows);
    if (st == SK_DB_OK) {
        ks = build(kr, rows, fp);
        apr_atomic_casptr(&kr->current, ks, old);
    }
    json_decref(rows);
    apr_thread_mutex_unlock(kr->lock);
    return st;
}

const sk_key *sk_keyring_signer(sk_keyring *kr)
{
    keyset *ks = kr ? current(kr) : NULL;
    return ks ? ks->signer : NULL;
}

const sk_key *sk_keyring_lookup(void *ctx, const char *kid)
{
    keyset *ks = ctx ? current(ctx) : NULL;
    int i;
    if (!ks || !kid)
        return NULL;
    for (i = 0; i < ks->n; i++)
        if (!strcmp(sk_key_kid(ks->keys[i]), kid))
            return ks->keys[i];
    return NULL;
}

json_t *sk_keyring_jwks(sk_keyring *kr)
{
    keyset *ks = kr ? current(kr) : NULL;
    return ks ? json_deep_copy(ks->jwks) : json_pack("{s:[]}", "keys");
}

int sk_keyring_count(sk_keyring *kr)
{
    keyset *ks = kr ? current(kr) : NULL;
    return ks ? ks->n : 0;
}
