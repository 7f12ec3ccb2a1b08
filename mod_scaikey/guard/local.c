/* The process's table of recent credentials: in front of the shared cache, so that a credential
 * this process has just seen costs one hash look-up, with neither the shared cache's
 * cross-process lock nor a JSON parse.
 *
 * A fixed number of entries (ScaiKeyProcessCache), in sets of WAYS selected by the digest; a
 * full set gives up its least recently used entry. An entry is a verified identity, or a refusal
 * that holds for the revocation delay, and never outlives the credential. It is one block: the
 * identity, its strings after it, and references to its JSON values (roles, groups, audience,
 * tools), which nobody changes once they are shared (jansson counts references atomically). A
 * request gets a copy of the structure and a reference to the block, so that an entry replaced
 * meanwhile stays whole until the request ends. */
#include "guard/internal.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdlib.h>
#include <string.h>

#define WAYS    4
#define STRIPES 64                  /* locks; set i uses lock i % STRIPES */

typedef struct held {
    volatile apr_uint32_t refs;     /* the table's, and one per request using it */
    const char *bad;                /* a refusal: its reason; NULL for an identity */
    sk_identity id;                 /* credential and claims left NULL */
    char text[];                    /* the strings */
} held;

typedef struct {
    unsigned char key[32];
    apr_time_t expiry;              /* 0 = empty */
    apr_uint64_t used;              /* order of last use within its set */
    held *h;
} slot;

static struct {
    int entries;                    /* configured; -1 = not set */
    unsigned int sets;              /* a power of two; 0 = no table */
    slot *slots;
    apr_thread_mutex_t *locks[STRIPES];
} local = { -1, 0, NULL, { NULL } };

/* The string members of an identity, for packing. */
#define STRINGS(id) { &(id)->sub, &(id)->user_id, &(id)->tenant_id, &(id)->tenant_slug, &(id)->partner_id, \
                      &(id)->scope, &(id)->client_id, &(id)->email, &(id)->agent_id, &(id)->key_id, \
                      &(id)->iss, &(id)->jti, &(id)->sid }

static void json_values(sk_identity *id, json_t *(*op)(json_t *))
{
    json_t *v[] = { id->aud, id->roles, id->groups, id->tools };
    size_t i;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (v[i])
            op(v[i]);
}

static json_t *decref(json_t *j)
{
    json_decref(j);
    return NULL;
}

static held *pack(const sk_identity *id, const char *bad)
{
    held *h;
    size_t need = 0, i, n;
    char *at;
    if (bad) {
        n = strlen(bad) + 1;
        if (!(h = calloc(1, sizeof(*h) + n)))
            return NULL;
        memcpy(h->text, bad, n);
        h->bad = h->text;
        h->refs = 1;
        return h;
    }
    {
        const char *const *src[] = STRINGS((sk_identity *)id);
        for (i = 0; i < sizeof(src) / sizeof(src[0]); i++)
            if (*src[i])
                need += strlen(*src[i]) + 1;
        if (!(h = malloc(sizeof(*h) + need)))
            return NULL;
        h->refs = 1;
        h->bad = NULL;
        h->id = *id;
        h->id.credential = NULL;
        h->id.claims = NULL;
        at = h->text;
        {
            const char **dst[] = STRINGS(&h->id);
            for (i = 0; i < sizeof(dst) / sizeof(dst[0]); i++) {
                if (!*src[i])
                    continue;
                n = strlen(*src[i]) + 1;
                memcpy(at, *src[i], n);
                *dst[i] = at;
                at += n;
            }
        }
    }
    json_values(&h->id, json_incref);
    return h;
}

static void release(held *h)
{
    if (!h || apr_atomic_dec32(&h->refs))
        return;
    if (!h->bad)
        json_values(&h->id, decref);
    free(h);
}

static apr_status_t release_cleanup(void *h)
{
    release(h);
    return APR_SUCCESS;
}

const char *sk_guard_local_configure(cmd_parms *cmd, const char *arg)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (!strcasecmp(arg, "off"))
        v = 0;
    else if (!*arg || *end || v < 0 || v > 1048576)
        return apr_psprintf(cmd->pool, "ScaiKeyProcessCache: '%s' is not a number of entries "
                                       "from 0 to 1048576 (or off)", arg);
    local.entries = (int)v;
    return NULL;
}

void sk_guard_local_pre_config(void)
{
    local.entries = -1;
}

static apr_status_t empty_table(void *data)
{
    unsigned int i;
    for (i = 0; local.slots && i < local.sets * WAYS; i++)
        release(local.slots[i].h);
    local.slots = NULL;
    local.sets = 0;
    return APR_SUCCESS;
}

void sk_guard_local_child_init(apr_pool_t *p)
{
    int want = local.entries < 0 ? SK_GUARD_PROCESS_CACHE : local.entries, i;
    unsigned int sets = 1;
    if (want < WAYS)
        return;
    while (sets * 2 * WAYS <= (unsigned int)want)
        sets *= 2;
    for (i = 0; i < STRIPES; i++)
        if (apr_thread_mutex_create(&local.locks[i], APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
            return;
    local.slots = apr_pcalloc(p, sizeof(slot) * sets * WAYS);
    local.sets = sets;
    apr_pool_cleanup_register(p, NULL, empty_table, apr_pool_cleanup_null);
}

/* Marks s as the most recently used of its set (under the set's lock). */
static void touch(slot *set, slot *s)
{
    apr_uint64_t top = 0;
    int i;
    for (i = 0; i < WAYS; i++)
        if (set[i].used > top)
            top = set[i].used;
    s->used = top + 1;
}

static unsigned int set_of(const unsigned char key[32])
{
    /* the key is a SHA-256 digest: any of its bytes are evenly spread */
    unsigned int h = (unsigned int)key[0] | (unsigned int)key[1] << 8 | (unsigned int)key[2] << 16 |
                     (unsigned int)key[3] << 24;
    return h & (local.sets - 1);
}

int sk_guard_local_get(request_rec *r, const unsigned char key[32], const sk_credential *cred,
                       sk_identity **id, const char **bad)
{
    apr_time_t now = apr_time_now();
    unsigned int set;
    apr_thread_mutex_t *lock;
    held *h = NULL;
    slot *s;
    int i;

    if (!local.sets)
        return 0;
    set = set_of(key);
    lock = local.locks[set % STRIPES];
    if (apr_thread_mutex_lock(lock) != APR_SUCCESS)
        return 0;
    for (i = 0, s = &local.slots[set * WAYS]; i < WAYS; i++, s++) {
        if (s->expiry <= now || memcmp(s->key, key, 32))
            continue;
        if (s->h->bad || s->h->id.kind == cred->kind) {
            h = s->h;
            apr_atomic_inc32(&h->refs);
            touch(&local.slots[set * WAYS], s);
        }
        break;
    }
    apr_thread_mutex_unlock(lock);
    if (!h)
        return 0;
    if (h->bad) {
        *bad = apr_pstrdup(r->pool, h->bad);
        release(h);
        return 1;
    }
    *id = apr_pmemdup(r->pool, &h->id, sizeof(h->id));
    (*id)->credential = cred->value;
    apr_pool_cleanup_register(r->pool, h, release_cleanup, apr_pool_cleanup_null);
    return 1;
}

static void store(const unsigned char key[32], held *h, apr_time_t expiry)
{
    apr_time_t now = apr_time_now();
    unsigned int set;
    apr_thread_mutex_t *lock;
    slot *s, *victim = NULL;
    held *old;
    int i;

    if (!h)
        return;
    if (expiry <= now) {
        release(h);
        return;
    }
    set = set_of(key);
    lock = local.locks[set % STRIPES];
    if (apr_thread_mutex_lock(lock) != APR_SUCCESS) {
        release(h);
        return;
    }
    for (i = 0, s = &local.slots[set * WAYS]; i < WAYS; i++, s++) {
        if (s->expiry > now && !memcmp(s->key, key, 32)) {
            victim = s;                         /* the same credential: replaced */
            break;
        }
        if (!victim || (victim->expiry > now && (s->expiry <= now || s->used < victim->used)))
            victim = s;                         /* an empty or expired entry, else the oldest */
    }
    old = victim->h;
    memcpy(victim->key, key, 32);
    victim->expiry = expiry;
    touch(&local.slots[set * WAYS], victim);
    victim->h = h;
    apr_thread_mutex_unlock(lock);
    release(old);
}

void sk_guard_local_put(const unsigned char key[32], const sk_identity *id, apr_time_t expiry)
{
    if (local.sets)
        store(key, pack(id, NULL), expiry);
}

void sk_guard_local_put_refusal(const unsigned char key[32], const char *reason, apr_time_t expiry)
{
    if (local.sets)
        store(key, pack(NULL, reason ? reason : "credential refused"), expiry);
}
