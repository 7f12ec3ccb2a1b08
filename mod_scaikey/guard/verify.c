/* Credentials to identities, with the shared cache in front of the work.
 *
 * A credential is verified once: a JWT's signature (pinned algorithm, known kid), issuer, exp/nbf;
 * an API key by its digest in the store. The identity that results is cached under the SHA-256 of
 * the credential, never beyond the credential's expiry. Its liveness (session not ended, client,
 * key, user, tenant and agent still active) was confirmed in the store at a recorded time; a
 * request that finds that time older than the location's revocation delay confirms it again.
 * When the store cannot be reached the guard keeps serving what it has verified (fail-static):
 * cached identities, and JWTs whose signature checks out with the keys in memory. A refusal found
 * in the store is cached for the revocation delay, so a revoked credential costs one query per
 * delay, not one per request. */
#include "guard/internal.h"
#include "scaikey.h"
#include "config.h"
#include "startup.h"
#include "core/tokens.h"
#include "core/principal.h"
#include "core/apikeys.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "http/validate.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_atomic.h>
#include <apr_thread_mutex.h>

APLOG_USE_MODULE(scaikey);

#define MAX_LIFETIME     apr_time_from_sec(3600)   /* an entry of a credential without expiry */
#define KEY_RELOAD_GAP   apr_time_from_sec(1)      /* forced key reloads for unknown kids */
#define IN_FLIGHT        64                        /* rechecks running at once in a process */

/* ---- the credential ---- */

static const char *trim(apr_pool_t *p, const char *s)
{
    apr_size_t n;
    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return apr_pstrndup(p, s, n);
}

sk_credential sk_guard_credential(request_rec *r)
{
    sk_credential c = { SK_CRED_NONE, NULL, NULL };
    const char *h = apr_table_get(r->headers_in, "Authorization");
    const char *key = apr_table_get(r->headers_in, "X-API-Key");
    const char *bearer = NULL;

    if (h) {
        while (*h == ' ' || *h == '\t')
            h++;
        /* another scheme (Basic, ...) carries nothing the guard accepts: as if none were sent */
        if (!strncasecmp(h, "Bearer", 6) && (h[6] == ' ' || h[6] == '\t' || h[6] == '\0'))
            bearer = trim(r->pool, h + 6);
    }
    if (bearer && key) {
        c.kind = SK_CRED_MALFORMED;
        c.problem = "more than one credential (Authorization and X-API-Key)";
        return c;
    }
    if (key) {
        c.value = trim(r->pool, key);
        c.kind = *c.value ? SK_CRED_APIKEY : SK_CRED_MALFORMED;
        c.problem = "empty X-API-Key header";
        return c;
    }
    if (bearer) {
        c.value = bearer;
        if (!*bearer) {
            c.kind = SK_CRED_MALFORMED;
            c.problem = "empty bearer credential";
        }
        else
            c.kind = sk_apikey_looks_like(bearer) ? SK_CRED_APIKEY : SK_CRED_JWT;
        return c;
    }
    /* The SSO session cookie of the hosted login will be read here, when no header carries a
     * credential: a third kind that resolves to the session's identity. */
    return c;
}

/* ---- what the store says ---- */

/* Tenant, groups and agent of the identity; refuses a suspended tenant or a disabled agent. */
static sk_guard_status load_context(request_rec *r, sk_db *db, sk_identity *id, const char **reason)
{
    json_t *ctx = NULL, *tenant, *agent, *groups;
    sk_db_status st;
    if (!id->user_id && !id->tenant_id && !id->agent_id) {
        /* a platform client: nothing more to load or to check */
        id->groups = sk_pool_json(r->pool, json_array());
        id->checked = apr_time_now();
        return SK_GUARD_OK;
    }
    st = sk_db_json_sql(db, sk_guard_sql_context, 3, SK_ARGS(id->user_id, id->tenant_id, id->agent_id), &ctx);
    if (st != SK_DB_OK) {
        sk_guard_db_failed(r, st == SK_DB_NOTFOUND ? SK_DB_ERROR : st);
        return SK_GUARD_UNAVAILABLE;
    }
    sk_pool_json(r->pool, ctx);
    tenant = json_object_get(ctx, "tenant");
    if (id->tenant_id) {
        if (!json_is_object(tenant)) {
            *reason = "tenant not found";
            return SK_GUARD_REFUSED;
        }
        if (!json_is_true(json_object_get(tenant, "live"))) {
            *reason = "tenant suspended";
            return SK_GUARD_REFUSED;
        }
        id->tenant_slug = sk_jstr(tenant, "slug");
    }
    groups = json_object_get(ctx, "groups");
    id->groups = json_is_array(groups) ? groups : sk_pool_json(r->pool, json_array());
    if (id->agent_id) {
        agent = json_object_get(ctx, "agent");
        if (!json_is_object(agent)) {
            *reason = "agent not found";
            return SK_GUARD_REFUSED;
        }
        if (!json_is_true(json_object_get(agent, "live"))) {
            *reason = "agent disabled";
            return SK_GUARD_REFUSED;
        }
        id->rpm = (int)json_integer_value(json_object_get(agent, "rate_limit_rpm"));
        id->tools = json_is_array(json_object_get(agent, "allowed_tools"))
                        ? json_object_get(agent, "allowed_tools") : sk_pool_json(r->pool, json_array());
        if (!id->client_id)
            id->client_id = sk_jstr(agent, "client_id");
    }
    id->checked = apr_time_now();
    return SK_GUARD_OK;
}

static json_t *role_list(apr_pool_t *p, const char *role)
{
    json_t *a = sk_pool_json(p, json_array());
    if (role)
        json_array_append_new(a, json_string(role));
    return a;
}

/* ---- JWTs ---- */

static int acceptable_issuer(apr_pool_t *p, const sk_config *cfg, const char *iss)
{
    const char *tenants;
    apr_size_t n;
    if (!iss || !cfg->issuer)
        return 0;
    if (!strcmp(iss, sk_config_platform_issuer(p, cfg)))
        return 1;
    tenants = apr_pstrcat(p, cfg->issuer, "/api/v1/auth/tenants/", NULL);
    n = strlen(tenants);
    return !strncmp(iss, tenants, n) && sk_valid_slug(iss + n);
}

/* Signature, times and issuer; no store needed unless the kid is new to this process. */
static sk_guard_status verify_jwt(request_rec *r, const char *token, json_t **out, const char **reason)
{
    static volatile apr_uint64_t last_reload;
    sk_config *cfg = sk_config_get(r->server);
    sk_keyring *kr = sk_startup_keyring();
    long long now = (long long)apr_time_sec(apr_time_now());
    int leeway = sk_config_clock_skew(cfg);
    json_t *claims;

    *out = NULL;
    if (!kr) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SKLOGNO(0807)
                      "AuthType ScaiKey needs ScaiKeyIssuer and ScaiKeyMasterKeyFile in the main server");
        *reason = "no verification keys";
        return SK_GUARD_UNAVAILABLE;
    }
    if (sk_keyring_count(kr) == 0) {
        /* this process started while the store was down: load the keys first */
        if (sk_guard_db(r) && sk_startup_ensure(r->server, r->pool) != 0)
            sk_guard_db_failed(r, SK_DB_ERROR);
        if (sk_keyring_count(kr) == 0) {
            *reason = "no verification keys";
            return SK_GUARD_UNAVAILABLE;
        }
    }
    claims = sk_token_verify(r->pool, kr, token, NULL, NULL, leeway, now, reason);
    if (!claims && *reason && !strcmp(*reason, "unknown key")) {
        /* a key made by another server or process since the last load; at most once a second,
         * so that made-up kids cannot turn every request into a query */
        apr_time_t t = apr_time_now();
        apr_uint64_t last = apr_atomic_read64(&last_reload);
        sk_db *db;
        if (t - (apr_time_t)last >= KEY_RELOAD_GAP &&
            apr_atomic_cas64(&last_reload, (apr_uint64_t)t, last) == last && (db = sk_guard_db(r))) {
            sk_db_status st = sk_keyring_refresh(kr, db, r->pool, 1);
            if (st != SK_DB_OK)
                sk_guard_db_failed(r, st);
            claims = sk_token_verify(r->pool, kr, token, NULL, NULL, leeway, now, reason);
        }
    }
    if (!claims)
        return SK_GUARD_REFUSED;
    sk_pool_json(r->pool, claims);
    if (!acceptable_issuer(r->pool, cfg, sk_jstr(claims, "iss"))) {
        *reason = "issuer mismatch";
        return SK_GUARD_REFUSED;
    }
    *out = claims;
    return SK_GUARD_OK;
}

static sk_identity *jwt_identity(apr_pool_t *p, const char *token, json_t *claims)
{
    sk_identity *id = apr_pcalloc(p, sizeof(*id));
    json_t *exp = json_object_get(claims, "exp");
    id->kind = SK_CRED_JWT;
    id->credential = token;
    id->claims = claims;
    id->sub = sk_jstr(claims, "sub");
    if (sk_jstr(claims, "sid"))
        id->user_id = id->sub;
    id->tenant_id = sk_jstr(claims, "tenant_id");
    id->partner_id = sk_jstr(claims, "partner_id");
    id->scope = sk_jstr(claims, "scope");
    id->client_id = sk_jstr(claims, "client_id");
    id->email = sk_jstr(claims, "email");
    id->agent_id = sk_jstr(claims, "agent_id");
    id->iss = sk_jstr(claims, "iss");
    id->jti = sk_jstr(claims, "jti");
    id->sid = sk_jstr(claims, "sid");
    id->aud = json_object_get(claims, "aud");
    id->roles = role_list(p, sk_jstr(claims, "role"));
    id->groups = sk_pool_json(p, json_array());
    id->exp = json_is_number(exp) ? (long long)json_number_value(exp) : 0;
    return id;
}

/* The tenant's slug from a tenant issuer ({issuer}/api/v1/auth/tenants/{slug}), or NULL. */
static const char *issuer_slug(apr_pool_t *p, const sk_config *cfg, const char *iss)
{
    const char *tenants;
    apr_size_t n;
    if (!iss || !cfg->issuer)
        return NULL;
    tenants = apr_pstrcat(p, cfg->issuer, "/api/v1/auth/tenants/", NULL);
    n = strlen(tenants);
    return !strncmp(iss, tenants, n) && sk_valid_slug(iss + n) ? iss + n : NULL;
}

/* With a revocation delay of 0: the session (people) or the client (client_credentials) must
 * still be live, asked of the store for every token (the core's check, the one the API makes on
 * every request). Then the tenant, groups and agent. */
static sk_guard_status check_jwt_now(request_rec *r, sk_identity *id, const char **reason)
{
    sk_config *cfg = sk_config_get(r->server);
    sk_principal *who = NULL;
    sk_db *db = sk_guard_db(r);
    if (!db)
        return SK_GUARD_UNAVAILABLE;
    switch (sk_principal_from_bearer(r->pool, sk_startup_keyring(), db, id->iss, sk_config_clock_skew(cfg),
                                     id->credential, &who, reason)) {
    case SK_AUTH_OK:
        break;
    case SK_AUTH_REFUSED:
        return SK_GUARD_REFUSED;
    default:
        sk_guard_db_failed(r, SK_DB_ERROR);
        return SK_GUARD_UNAVAILABLE;
    }
    if (who->user_id) {
        /* the account as it is now, not as it was when the token was issued */
        id->user_id = who->user_id;
        id->email = who->email;
        id->tenant_id = who->tenant_id;
        id->partner_id = who->partner_id;
        id->roles = role_list(r->pool, who->role);
    }
    return load_context(r, db, id, reason);
}

/* The token must not have been ended by what the revocation feed knows (revoked jti, ended
 * session, account, tenant, partner, client or agent disabled): no query of its own. Only what a
 * caller's rules may need and the token does not carry (a person's groups, an agent's limits, the
 * slug of a tenant the issuer does not name) costs one query. */
static sk_guard_status check_jwt(request_rec *r, sk_identity *id, int delay, const char **reason)
{
    sk_config *cfg = sk_config_get(r->server);
    const char *why, *tt;
    sk_db *db;

    if (delay == 0)
        return check_jwt_now(r, id, reason);
    if (!id->sid) {
        /* a client's own token (client_credentials) */
        tt = id->claims ? sk_jstr(id->claims, "token_type") : "client_credentials";
        if (!id->client_id || !tt || strcmp(tt, "client_credentials")) {
            *reason = "token has no session";
            return SK_GUARD_REFUSED;
        }
    }
    sk_guard_feed_refresh(r, delay);
    if ((why = sk_guard_feed_check(r, id))) {
        *reason = why;
        return SK_GUARD_REFUSED;
    }
    if (!id->user_id && !id->agent_id && (!id->tenant_id || (id->tenant_slug = issuer_slug(r->pool, cfg, id->iss)))) {
        id->groups = sk_pool_json(r->pool, json_array());
        id->checked = apr_time_now();
        return SK_GUARD_OK;
    }
    if (!(db = sk_guard_db(r)))
        return SK_GUARD_UNAVAILABLE;
    return load_context(r, db, id, reason);
}

/* ---- API keys ---- */

static sk_guard_status check_apikey(request_rec *r, const char *key, sk_identity **out, const char **reason)
{
    sk_db *db = sk_guard_db(r);
    json_t *row = NULL, *v;
    sk_identity *id;
    sk_db_status st;
    size_t i;
    const char *scope = NULL;

    *out = NULL;
    if (!db)
        return SK_GUARD_UNAVAILABLE;
    st = sk_apikey_lookup(db, key, &row);
    if (st == SK_DB_NOTFOUND) {
        *reason = "unknown, revoked or expired API key";
        return SK_GUARD_REFUSED;
    }
    if (st != SK_DB_OK) {
        sk_guard_db_failed(r, st);
        return SK_GUARD_UNAVAILABLE;
    }
    sk_pool_json(r->pool, row);
    id = apr_pcalloc(r->pool, sizeof(*id));
    id->kind = SK_CRED_APIKEY;
    id->credential = key;
    id->key_id = sk_jstr(row, "id");
    id->sub = sk_jstr(row, "subject");
    id->user_id = sk_jstr(row, "user_id");
    id->agent_id = sk_jstr(row, "agent_id");
    id->tenant_id = sk_jstr(row, "tenant_id");
    id->partner_id = sk_jstr(row, "partner_id");
    id->email = sk_jstr(row, "email");
    id->roles = role_list(r->pool, sk_jstr(row, "role"));
    json_array_foreach(json_object_get(row, "scopes"), i, v)
        if (json_is_string(v))
            scope = scope ? apr_pstrcat(r->pool, scope, " ", json_string_value(v), NULL) : json_string_value(v);
    id->scope = scope ? scope : "";
    v = json_object_get(row, "expires_at");
    id->exp = json_is_integer(v) ? (long long)json_integer_value(v) : 0;
    if (!id->sub) {
        *reason = "API key without an owner";
        return SK_GUARD_REFUSED;
    }
    *out = id;
    return load_context(r, db, id, reason);
}

/* ---- where verified identities are kept ----
 * Every identity goes into the process's table. The shared cache gets those that would cost a
 * query to make again (an API key, a person's or an agent's token, a tenant's token whose issuer
 * does not name the tenant) and the refusals that came from the store: a client's token costs
 * only its signature check, less than a trip to the shared cache and its cross-process lock. */

static int shared_worth(request_rec *r, const sk_identity *id, int delay)
{
    if (id->kind != SK_CRED_JWT || delay == 0)
        return 1;
    return id->user_id || id->agent_id ||
           (id->tenant_id && !issuer_slug(r->pool, sk_config_get(r->server), id->iss));
}

/* Into this process's table, and into the shared cache when shared is set. */
static void remember(request_rec *r, const unsigned char key[32], const sk_identity *id, int shared)
{
    apr_time_t now = apr_time_now(), expiry = now + MAX_LIFETIME;
    char *text;
    if (id->exp && apr_time_from_sec(id->exp) < expiry)
        expiry = apr_time_from_sec(id->exp);
    if (expiry <= now)
        return;
    sk_guard_local_put(key, id, expiry);
    if (!shared || !sk_guard_cache_enabled())
        return;
    if (!(text = json_dumps(sk_pool_json(r->pool, sk_guard_identity_json(id)), JSON_COMPACT)))
        return;
    sk_guard_cache_put(r, key, expiry, text, (unsigned int)strlen(text));
    free(text);
}

/* A refusal holds for the revocation delay (at least a second); in the shared cache when shared
 * is set (it came from the store). */
static void remember_refusal(request_rec *r, const unsigned char key[32], const char *reason, int delay,
                             int shared)
{
    apr_time_t expiry = apr_time_now() + apr_time_from_sec(delay > 0 ? delay : 1);
    json_t *o;
    char *text;
    sk_guard_local_put_refusal(key, reason, expiry);
    if (!shared || !sk_guard_cache_enabled())
        return;
    o = json_pack("{s:s}", "bad", reason ? reason : "credential refused");
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return;
    sk_guard_cache_put(r, key, expiry, text, (unsigned int)strlen(text));
    free(text);
}

/* The shared cache's entry: 1 with an identity, -1 with a refusal (*reason), 0 when none. */
static int shared_get(request_rec *r, const unsigned char key[32], const sk_credential *cred,
                      sk_identity **out, const char **reason)
{
    unsigned int len = 0;
    char *entry = sk_guard_cache_get(r, key, &len);
    json_t *o;
    sk_identity *id;
    if (!entry || !(o = sk_pool_json(r->pool, json_loadb(entry, len, 0, NULL))))
        return 0;
    if (json_is_string(json_object_get(o, "bad"))) {
        *reason = apr_pstrdup(r->pool, sk_jstr(o, "bad"));
        return -1;
    }
    id = apr_palloc(r->pool, sizeof(*id));
    if (sk_guard_identity_fill(id, o, cred->kind) != 0)
        return 0;
    id->credential = cred->value;
    *out = id;
    return 1;
}

/* ---- one recheck per credential and process at a time ----
 * When a busy credential's check gets old, every request that sees it would query the store at
 * once; one does, the others serve the entry as it is until its result is in the cache. */

static struct {
    apr_thread_mutex_t *lock;
    unsigned char keys[IN_FLIGHT][32];
    int used[IN_FLIGHT];
} flight;

void sk_guard_verify_child_init(apr_pool_t *p)
{
    apr_thread_mutex_create(&flight.lock, APR_THREAD_MUTEX_DEFAULT, p);
}

/* 1 + slot when this thread rechecks the credential, 0 when another already does, -1 when the
 * table is full (then it rechecks without a slot). */
static int flight_begin(const unsigned char key[32])
{
    int i, free_slot = -1;
    if (!flight.lock || apr_thread_mutex_lock(flight.lock) != APR_SUCCESS)
        return -1;
    for (i = 0; i < IN_FLIGHT; i++) {
        if (flight.used[i] && !memcmp(flight.keys[i], key, 32)) {
            apr_thread_mutex_unlock(flight.lock);
            return 0;
        }
        if (!flight.used[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0) {
        memcpy(flight.keys[free_slot], key, 32);
        flight.used[free_slot] = 1;
    }
    apr_thread_mutex_unlock(flight.lock);
    return free_slot + 1;
}

static void flight_end(int slot)
{
    if (slot <= 0 || apr_thread_mutex_lock(flight.lock) != APR_SUCCESS)
        return;
    flight.used[slot - 1] = 0;
    apr_thread_mutex_unlock(flight.lock);
}

/* ---- the whole path ---- */

static sk_guard_status recheck(request_rec *r, sk_identity *id, int delay, sk_identity **fresh,
                               const char **reason)
{
    if (id->kind == SK_CRED_JWT) {
        sk_guard_status st = check_jwt(r, id, delay, reason);
        *fresh = id;
        return st;
    }
    return check_apikey(r, id->credential, fresh, reason);
}

static int expired(const sk_identity *id, apr_time_t now, int leeway)
{
    return id->exp && now >= apr_time_from_sec(id->exp + leeway);
}

/* An identity verified before (from the process's table when local, else from the shared
 * cache): what the feed knows applies at once; its liveness is confirmed again in the store once
 * it is older than the delay. */
static sk_guard_status serve(request_rec *r, const unsigned char key[32], sk_identity *id, int local,
                             int delay, sk_identity **out, const char **reason)
{
    apr_time_t now = apr_time_now();
    sk_identity *fresh = NULL, *other = NULL;
    sk_guard_status st;
    int slot;

    if (delay > 0) {
        const char *why;
        sk_guard_feed_refresh(r, delay);
        if ((why = sk_guard_feed_check(r, id))) {
            *reason = why;
            remember_refusal(r, key, why, delay, 0);
            return SK_GUARD_REFUSED;
        }
    }
    if (now - id->checked < apr_time_from_sec(delay)) {
        if (!local)
            remember(r, key, id, 0);
        *out = id;
        return SK_GUARD_OK;
    }
    /* another process may have confirmed it meanwhile */
    if (local && delay > 0 && shared_worth(r, id, delay)) {
        const char *bad = NULL;
        int got = shared_get(r, key, &(sk_credential){ id->kind, id->credential, NULL }, &other, &bad);
        if (got < 0) {
            *reason = bad;
            remember_refusal(r, key, bad, delay, 0);
            return SK_GUARD_REFUSED;
        }
        if (got > 0 && other->checked > id->checked && now - other->checked < apr_time_from_sec(delay) &&
            !sk_guard_feed_check(r, other)) {
            remember(r, key, other, 0);
            *out = other;
            return SK_GUARD_OK;
        }
    }
    /* with a delay of 0 every request asks the store itself */
    if ((slot = delay > 0 ? flight_begin(key) : -1) == 0) {
        *out = id;
        return SK_GUARD_OK;
    }
    st = recheck(r, id, delay, &fresh, reason);
    if (st == SK_GUARD_REFUSED)
        remember_refusal(r, key, *reason, delay, 1);
    else if (st == SK_GUARD_OK)
        remember(r, key, fresh, shared_worth(r, fresh, delay));
    flight_end(slot);
    if (st == SK_GUARD_REFUSED)
        return SK_GUARD_REFUSED;
    /* unavailable: fail-static, what was verified stays valid until the store answers again */
    *out = st == SK_GUARD_OK ? fresh : id;
    return SK_GUARD_OK;
}

sk_guard_status sk_guard_identify(request_rec *r, const sk_credential *cred, sk_identity **out,
                                  const char **reason)
{
    unsigned char key[32];
    apr_time_t now = apr_time_now();
    int delay = sk_guard_delay(sk_guard_dir_get(r));
    int leeway = sk_config_clock_skew(sk_config_get(r->server));
    sk_identity *id = NULL;
    sk_guard_status st;
    const char *bad = NULL;

    *out = NULL;
    *reason = NULL;
    if (cred->kind == SK_CRED_APIKEY && !sk_apikey_looks_like(cred->value)) {
        *reason = "malformed API key";
        return SK_GUARD_REFUSED;
    }
    sk_sha256(cred->value, strlen(cred->value), key);

    /* this process has seen it */
    if (sk_guard_local_get(r, key, cred, &id, &bad)) {
        if (bad) {
            *reason = bad;
            return SK_GUARD_REFUSED;
        }
        if (!expired(id, now, leeway))
            return serve(r, key, id, 1, delay, out, reason);
        id = NULL;                          /* expired: the full check says so */
    }
    /* another process has: an API key saves its query (a JWT is verified first, below) */
    if (cred->kind == SK_CRED_APIKEY) {
        int got = shared_get(r, key, cred, &id, reason);
        if (got < 0) {
            remember_refusal(r, key, *reason, delay, 0);
            return SK_GUARD_REFUSED;
        }
        if (got > 0 && !expired(id, now, leeway))
            return serve(r, key, id, 0, delay, out, reason);
    }

    if (cred->kind == SK_CRED_JWT) {
        json_t *claims;
        sk_identity *known = NULL;
        if ((st = verify_jwt(r, cred->value, &claims, reason)) != SK_GUARD_OK)
            return st;
        id = jwt_identity(r->pool, cred->value, claims);
        if (!id->sub) {
            *reason = "token has no subject";
            return SK_GUARD_REFUSED;
        }
        /* what the store said of it, when that needed a query */
        if (shared_worth(r, id, delay)) {
            int got = shared_get(r, key, cred, &known, reason);
            if (got < 0) {
                remember_refusal(r, key, *reason, delay, 0);
                return SK_GUARD_REFUSED;
            }
            if (got > 0) {
                known->claims = claims;
                return serve(r, key, known, 0, delay, out, reason);
            }
        }
        st = check_jwt(r, id, delay, reason);
        if (st == SK_GUARD_REFUSED) {
            remember_refusal(r, key, *reason, delay, shared_worth(r, id, delay));
            return st;
        }
        if (st == SK_GUARD_UNAVAILABLE) {
            /* signed by us and not expired: served now, its liveness confirmed when the store
             * answers again (checked = 0 makes every process try) */
            id->checked = 0;
            *reason = NULL;
        }
        remember(r, key, id, shared_worth(r, id, delay));
        *out = id;
        return SK_GUARD_OK;
    }

    st = check_apikey(r, cred->value, &id, reason);
    if (st == SK_GUARD_REFUSED)
        remember_refusal(r, key, *reason, delay, 1);
    if (st != SK_GUARD_OK)
        return st;
    remember(r, key, id, shared_worth(r, id, delay));
    *out = id;
    return SK_GUARD_OK;
}

static void put_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

json_t *sk_guard_claims(request_rec *r, sk_identity *id)
{
    json_t *c;
    if (id->claims)
        return id->claims;
    if (id->kind == SK_CRED_JWT) {
        /* the identity came from the cache, whose key is the digest of this very token: its
         * claims are the ones verified when the entry was made */
        c = sk_jwt_peek_claims(r->pool, id->credential);
        id->claims = json_is_object(c) ? sk_pool_json(r->pool, c) : sk_pool_json(r->pool, json_object());
        if (!json_is_object(c))
            json_decref(c);
        return id->claims;
    }
    c = sk_pool_json(r->pool, json_object());
    put_str(c, "sub", id->sub);
    put_str(c, "user_id", id->user_id);
    put_str(c, "email", id->email);
    put_str(c, "tenant_id", id->tenant_id);
    put_str(c, "partner_id", id->partner_id);
    put_str(c, "scope", id->scope);
    put_str(c, "client_id", id->client_id);
    put_str(c, "agent_id", id->agent_id);
    put_str(c, "api_key_id", id->key_id);
    if (json_array_size(id->roles))
        json_object_set(c, "role", json_array_get(id->roles, 0));
    /* the key's scopes also as a list, the shape a JWT's array claims have */
    {
        json_t *list = json_array();
        char *copy = apr_pstrdup(r->pool, id->scope ? id->scope : ""), *tok, *state;
        for (tok = apr_strtok(copy, " ", &state); tok; tok = apr_strtok(NULL, " ", &state))
            json_array_append_new(list, json_string(tok));
        json_object_set_new(c, "scopes", list);
    }
    id->claims = c;
    return c;
}
