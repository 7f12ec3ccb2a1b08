/* The revocation feed: what ends a JWT before its expiry, known to every process without a query
 * per token.
 *
 * Each process polls the store for what changed since its previous poll (statement guard_feed):
 * revoked client tokens (jti), ended sessions, and the users, tenants, partners, clients and
 * agents whose state changed. The answer is merged into an immutable snapshot of hash tables;
 * readers look a token up under a read lock held for a few hash look-ups, a poll builds the next
 * snapshot aside and swaps it in. An entry is kept as long as a token it concerns can be valid:
 * the longest token lifetime (as the key rotation counts it) after the change, or a revoked
 * jti's own expiry.
 *
 * Polls come from a mod_watchdog thread of every process (once a second, when the process has
 * served the guard) and, when the last poll is older than a location's revocation delay, from the
 * request that notices (one at a time; the others go on with the snapshot they have). Each poll
 * reads again a few seconds before the previous one, so that a change committed late by a long
 * transaction is not missed. While the store cannot be read the snapshot stays as it is
 * (fail-static): what was revoked before stays refused, and the changes made meanwhile are read
 * as soon as a poll succeeds again, since the feed asks for everything after its last success. */
#include "guard/internal.h"
#include "scaikey.h"
#include "config.h"
#include "core/pooljson.h"

#include <http_core.h>
#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <pthread.h>
#include <apr_optional.h>
#include <mod_dbd.h>
#include <mod_watchdog.h>

APLOG_USE_MODULE(scaikey);

#define FEED_WATCHDOG   "scaikey-guard-feed"
#define POLL_INTERVAL   apr_time_from_sec(1)
#define OVERLAP         5.0          /* seconds read again at each poll */
#define MARGIN          60           /* seconds added to the longest token lifetime */
#define RETRY_AFTER     5            /* watchdog polls left out after the store was unreachable */

enum { F_JTI, F_SESSION, F_USER, F_TENANT, F_PARTNER, F_CLIENT, F_AGENT, F_KINDS };
static const char *const kind_names[F_KINDS] = { "jtis", "sessions", "users", "tenants", "partners",
                                                 "clients", "agents" };

typedef struct fentry {
    apr_time_t from;        /* sessions: when it ended (or ends) */
    apr_time_t until;       /* forgotten after this */
    int live;
    const char *role, *email, *tenant_id, *partner_id;   /* users: the account as it is now */
} fentry;

typedef struct snapshot {
    apr_pool_t *pool;
    apr_hash_t *h[F_KINDS];
    apr_time_t next_purge;  /* the earliest "until" */
    unsigned int n;
} snapshot;

static struct {
    apr_pool_t *pool;               /* parent of the snapshots' pools; used under poll_lock only */
    pthread_rwlock_t read_lock;     /* cur: read by requests, written by the swap of a poll */
    int read_lock_ok;
    apr_thread_mutex_t *poll_lock;  /* one poll at a time */
    snapshot *cur;
    volatile apr_uint64_t polled;   /* apr_time_t of the last successful poll (taken before it) */
    volatile apr_uint32_t used;     /* the guard has served a request in this process */
    double since;                   /* store time to read from; 0 = never polled */
    int failing;                    /* the last poll failed (watchdog thread) */
    int skip;                       /* watchdog polls left out */
} feed;

/* ---- snapshots ---- */

static snapshot *snapshot_new(void)
{
    snapshot *s;
    apr_pool_t *p;
    int k;
    if (apr_pool_create(&p, feed.pool) != APR_SUCCESS)
        return NULL;
    s = apr_pcalloc(p, sizeof(*s));
    s->pool = p;
    for (k = 0; k < F_KINDS; k++)
        s->h[k] = apr_hash_make(p);
    s->next_purge = APR_INT64_MAX;
    return s;
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static int same(const fentry *a, const fentry *b)
{
    return a->from == b->from && a->until == b->until && a->live == b->live && same_str(a->role, b->role) &&
           same_str(a->email, b->email) && same_str(a->tenant_id, b->tenant_id) &&
           same_str(a->partner_id, b->partner_id);
}

static void put(snapshot *s, int kind, const char *id, const fentry *e)
{
    fentry *c = apr_pmemdup(s->pool, e, sizeof(*e));
    apr_size_t n = strlen(id);
    if (!apr_hash_get(s->h[kind], id, (apr_ssize_t)n))
        s->n++;
    c->role = e->role ? apr_pstrdup(s->pool, e->role) : NULL;
    c->email = e->email ? apr_pstrdup(s->pool, e->email) : NULL;
    c->tenant_id = e->tenant_id ? apr_pstrdup(s->pool, e->tenant_id) : NULL;
    c->partner_id = e->partner_id ? apr_pstrdup(s->pool, e->partner_id) : NULL;
    apr_hash_set(s->h[kind], apr_pstrmemdup(s->pool, id, n), (apr_ssize_t)n, c);
    if (c->until < s->next_purge)
        s->next_purge = c->until;
}

static apr_time_t epoch(json_t *v)
{
    return json_is_number(v) ? (apr_time_t)(json_number_value(v) * APR_USEC_PER_SEC) : 0;
}

static const char *jstr(json_t *a, size_t i)
{
    return json_string_value(json_array_get(a, i));
}

/* One row of the answer as an entry; NULL id when the row is not usable. */
static const char *row_entry(int kind, json_t *row, apr_time_t span, fentry *e)
{
    memset(e, 0, sizeof(*e));
    switch (kind) {
    case F_JTI:
        e->until = epoch(json_array_get(row, 1));
        break;
    case F_SESSION:
        e->from = epoch(json_array_get(row, 1));
        e->until = e->from + span;
        break;
    case F_USER:
        e->live = json_is_true(json_array_get(row, 1));
        e->role = jstr(row, 2);
        e->email = jstr(row, 3);
        e->tenant_id = jstr(row, 4);
        e->partner_id = jstr(row, 5);
        e->until = epoch(json_array_get(row, 6)) + span;
        break;
    default:
        e->live = json_is_true(json_array_get(row, 1));
        e->until = epoch(json_array_get(row, 2)) + span;
        break;
    }
    return jstr(row, 0);
}

/* The snapshot after this answer: the current one when nothing changed and nothing is due to be
 * forgotten, else a new one. */
static snapshot *merge(snapshot *old, json_t *answer, apr_time_t now, int *changes)
{
    apr_time_t span = apr_time_from_sec(json_integer_value(json_object_get(answer, "span")));
    snapshot *s;
    apr_hash_index_t *hi;
    json_t *row;
    fentry e, *have;
    const char *id;
    size_t i;
    int k;

    *changes = 0;
    for (k = 0; k < F_KINDS; k++)
        json_array_foreach(json_object_get(answer, kind_names[k]), i, row) {
            if (!(id = row_entry(k, row, span, &e)) || e.until <= now)
                continue;
            have = old ? apr_hash_get(old->h[k], id, APR_HASH_KEY_STRING) : NULL;
            if (!have || !same(have, &e))
                (*changes)++;
        }
    if (old && !*changes && now < old->next_purge)
        return old;
    if (!(s = snapshot_new()))
        return old;
    if (old)
        for (k = 0; k < F_KINDS; k++)
            for (hi = apr_hash_first(NULL, old->h[k]); hi; hi = apr_hash_next(hi)) {
                const void *key;
                void *val;
                apr_hash_this(hi, &key, NULL, &val);
                if (((fentry *)val)->until > now)
                    put(s, k, key, val);
            }
    for (k = 0; k < F_KINDS; k++)
        json_array_foreach(json_object_get(answer, kind_names[k]), i, row)
            if ((id = row_entry(k, row, span, &e)) && e.until > now)
                put(s, k, id, &e);
    return s;
}

/* ---- polls ---- */

/* Under poll_lock. */
static sk_db_status poll(server_rec *s, sk_db *db, apr_pool_t *tmp)
{
    sk_config *cfg = sk_config_get(s);
    apr_time_t started = apr_time_now();
    json_t *answer = NULL;
    snapshot *next, *old;
    sk_db_status st;
    int changes;

    st = SK_QJ(db, "guard_feed", &answer,
               feed.since > 0 ? apr_psprintf(tmp, "%.6f", feed.since - OVERLAP) : NULL,
               apr_itoa(tmp, sk_config_access_ttl(cfg)),
               apr_itoa(tmp, MARGIN + sk_config_clock_skew(cfg)));
    if (st != SK_DB_OK)
        return st == SK_DB_NOTFOUND ? SK_DB_ERROR : st;
    old = feed.cur;
    next = merge(old, answer, started, &changes);
    if (next != old) {
        pthread_rwlock_wrlock(&feed.read_lock);
        feed.cur = next;
        pthread_rwlock_unlock(&feed.read_lock);
        if (old)
            apr_pool_destroy(old->pool);
    }
    if (feed.since == 0 || changes)
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, SKLOGNO(0820)
                     "guard feed: %s, %d change(s), %u entries", feed.since == 0 ? "loaded" : "polled",
                     changes, next ? next->n : 0);
    feed.since = json_number_value(json_object_get(answer, "now"));
    json_decref(answer);
    apr_atomic_set64(&feed.polled, (apr_uint64_t)started);
    return SK_DB_OK;
}

void sk_guard_feed_refresh(request_rec *r, int delay)
{
    apr_time_t now = apr_time_now();
    sk_db *db;
    sk_db_status st;

    if (!feed.poll_lock)
        return;
    if (!apr_atomic_read32(&feed.used))
        apr_atomic_set32(&feed.used, 1);
    if (now - (apr_time_t)apr_atomic_read64(&feed.polled) < apr_time_from_sec(delay))
        return;
    /* another thread polls: this request goes on with the snapshot as it is */
    if (apr_thread_mutex_trylock(feed.poll_lock) != APR_SUCCESS)
        return;
    if (now - (apr_time_t)apr_atomic_read64(&feed.polled) >= apr_time_from_sec(delay) && (db = sk_guard_db(r))) {
        if ((st = poll(r->server, db, r->pool)) != SK_DB_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SKLOGNO(0821)
                          "guard feed: poll failed (%s); the last snapshot stays in use", sk_db_error(db));
            sk_guard_db_failed(r, st);
        }
    }
    apr_thread_mutex_unlock(feed.poll_lock);
}

/* ---- look-ups ---- */

static const fentry *find(const snapshot *s, int kind, const char *id)
{
    return id ? apr_hash_get(s->h[kind], id, APR_HASH_KEY_STRING) : NULL;
}

const char *sk_guard_feed_check(request_rec *r, sk_identity *id)
{
    const char *why = NULL;
    const fentry *e;
    apr_time_t now = apr_time_now();
    int person = id->kind == SK_CRED_JWT && id->sid;
    int client = id->kind == SK_CRED_JWT && !id->sid;

    if (!feed.read_lock_ok || pthread_rwlock_rdlock(&feed.read_lock) != 0)
        return NULL;
    if (!feed.cur)
        goto done;
    if (client && (e = find(feed.cur, F_JTI, id->jti))) {
        why = "token revoked";
        goto done;
    }
    if (client && (e = find(feed.cur, F_CLIENT, id->client_id)) && !e->live) {
        why = "client disabled or deleted";
        goto done;
    }
    if (person && (e = find(feed.cur, F_SESSION, id->sid)) && now >= e->from) {
        why = "session ended or account disabled";
        goto done;
    }
    if ((e = find(feed.cur, F_USER, id->user_id))) {
        if (!e->live) {
            why = person ? "session ended or account disabled" : "account disabled";
            goto done;
        }
        if (person) {
            /* the account as it is now, not as it was when the token was issued */
            id->roles = sk_pool_json(r->pool, json_array());
            if (e->role)
                json_array_append_new(id->roles, json_string(e->role));
            id->email = e->email ? apr_pstrdup(r->pool, e->email) : NULL;
            id->tenant_id = e->tenant_id ? apr_pstrdup(r->pool, e->tenant_id) : NULL;
            id->partner_id = e->partner_id ? apr_pstrdup(r->pool, e->partner_id) : NULL;
        }
    }
    if (((e = find(feed.cur, F_TENANT, id->tenant_id)) && !e->live) ||
        ((e = find(feed.cur, F_PARTNER, id->partner_id)) && !e->live)) {
        why = person ? "session ended or account disabled" : "tenant suspended";
        goto done;
    }
    if ((e = find(feed.cur, F_AGENT, id->agent_id)) && !e->live)
        why = "agent disabled";
done:
    pthread_rwlock_unlock(&feed.read_lock);
    return why;
}

/* ---- the watchdog ---- */

static void watchdog_poll(server_rec *s, apr_pool_t *p)
{
    APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    ap_dbd_t *dbd;
    sk_db *db;
    sk_db_status st;

    if (!feed.poll_lock || !apr_atomic_read32(&feed.used) || !dbd_open || !dbd_close)
        return;
    if (apr_time_now() - (apr_time_t)apr_atomic_read64(&feed.polled) < POLL_INTERVAL / 2)
        return;                     /* a request has just polled */
    if (feed.skip > 0) {
        feed.skip--;
        return;
    }
    if (!(dbd = dbd_open(p, s))) {
        feed.skip = RETRY_AFTER;
        return;
    }
    db = sk_db_wrap(p, dbd);
    apr_thread_mutex_lock(feed.poll_lock);
    st = poll(s, db, p);
    apr_thread_mutex_unlock(feed.poll_lock);
    if (st != SK_DB_OK) {
        ap_log_error(APLOG_MARK, feed.failing ? APLOG_DEBUG : APLOG_WARNING, 0, s, SKLOGNO(0822)
                     "guard feed: poll failed (%s); revocations are applied as far as they were read "
                     "until a poll succeeds", sk_db_error(db));
        feed.failing = 1;
        feed.skip = RETRY_AFTER;
    }
    else if (feed.failing) {
        feed.failing = 0;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SKLOGNO(0823) "guard feed: polls succeed again");
    }
    dbd_close(s, dbd);
}

static apr_status_t watchdog_callback(int state, void *data, apr_pool_t *pool)
{
    if (state == AP_WATCHDOG_STATE_RUNNING)
        watchdog_poll(data, pool);
    return APR_SUCCESS;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG || !sk_config_get(s)->issuer)
        return OK;
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback)
        return OK;          /* requests poll themselves when the feed is older than their delay */
    if ((rv = get_instance(&wd, FEED_WATCHDOG, 0, 0, pconf)) != APR_SUCCESS ||
        (rv = register_callback(wd, POLL_INTERVAL, s, watchdog_callback)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, SKLOGNO(0824)
                     "cannot register the guard's revocation feed with mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

void sk_guard_feed_child_init(apr_pool_t *p)
{
    pthread_rwlockattr_t attr;
    apr_thread_mutex_t *poll_lock;
    apr_pool_t *pool;
    int rc;
    /* A pool of its own, not under the child's pool, never destroyed: when the process exits,
     * the child's pool and its sub-pools go before the watchdog thread is stopped, and that
     * thread may be in the middle of a poll. The snapshots come and go from whichever thread
     * polls, under poll_lock. */
    (void)p;
    if (apr_pool_create_unmanaged_ex(&pool, NULL, NULL) != APR_SUCCESS)
        return;
    /* readers must not keep a swap waiting: a writer goes first (glibc lets readers in ahead of
     * a waiting writer otherwise, and a busy process could put polls off indefinitely) */
    pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    rc = pthread_rwlock_init(&feed.read_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0 || apr_thread_mutex_create(&poll_lock, APR_THREAD_MUTEX_DEFAULT, pool) != APR_SUCCESS)
        return;
    feed.pool = pool;
    feed.read_lock_ok = 1;
    /* last: the watchdog thread (which may already run) looks at poll_lock first */
    apr_atomic_casptr((volatile void **)&feed.poll_lock, poll_lock, NULL);
}

void sk_guard_feed_register(apr_pool_t *p)
{
    /* before mod_watchdog's own post_config (APR_HOOK_LAST), which starts what is registered */
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
}
