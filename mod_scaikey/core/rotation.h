/* Rotation of the signing keys: next -> current -> previous -> retired.
 *
 * One rotation is one transaction under the rotation lock (a PostgreSQL advisory lock, so that
 * one server of many rotates):
 *   - previous keys that stopped signing longer ago than the longest token lifetime are retired
 *     (younger ones stay published, so that every token they signed keeps verifying);
 *   - the current key becomes previous;
 *   - the next key becomes current (a new one is made when there is none);
 *   - a new next key is made, published ahead of its use so relying parties can cache it.
 * The rotation moves the installation to the configured algorithm: the current key of another
 * algorithm becomes previous too, and next keys of other algorithms are retired. */
#ifndef SK_CORE_ROTATION_H
#define SK_CORE_ROTATION_H

#include <apr_pools.h>
#include <jansson.h>
#include "core/keyring.h"
#include "core/audit.h"
#include "store/db.h"

/* Added to the longest token lifetime before a previous key is retired: a process may sign with
 * a rotated-out key until its next reload, and a slow request a little longer. */
#define SK_ROTATION_RELOAD_MARGIN (SK_KEYRING_REFRESH_SECONDS + 30)

typedef struct sk_rotation_opts {
    /* 0: rotate now (manual rotation). Otherwise rotate only when the newest current key (of
     * any algorithm) has been current for at least this many seconds (scheduled rotation). */
    long long due_after;
    int access_ttl;        /* ScaiKeyAccessTokenTTL: a floor for the longest token lifetime */
    int margin;            /* seconds added to that lifetime (clock skew, processes' reload delay) */
} sk_rotation_opts;

typedef struct sk_rotation_result {
    const char *current;   /* the new current key */
    const char *next;      /* the new next key */
    const char *previous;  /* the key that was current (configured algorithm), or NULL */
    json_t *retired;       /* kids retired by this rotation (NEW reference, JSON array) */
} sk_rotation_result;

typedef enum {
    SK_ROTATED = 0,
    SK_ROTATION_NOT_DUE,   /* scheduled: the newest current key is younger than due_after */
    SK_ROTATION_BUSY,      /* another process or server holds the rotation lock */
    SK_ROTATION_FAILED     /* the store failed (sk_db_error says why); nothing changed */
} sk_rotation_status;

/* Rotates the keys of kr's algorithm. audit (optional) is completed (resource, details) and
 * written in the same transaction. The caller should then reload its keyring (force). */
sk_rotation_status sk_rotation_rotate(sk_keyring *kr, sk_db *db, apr_pool_t *p, const sk_rotation_opts *o,
                                      sk_audit *audit, sk_rotation_result *out);

#endif
