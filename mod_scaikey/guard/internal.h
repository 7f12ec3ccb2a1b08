/* Types shared by the files of the guard. */
#ifndef SK_GUARD_INTERNAL_H
#define SK_GUARD_INTERNAL_H

#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>
#include <jansson.h>
#include "store/db.h"

#define SK_GUARD_AUTH_TYPE   "ScaiKey"
#define SK_GUARD_DEFAULT_DELAY 5            /* ScaiKeyRevocationDelay, seconds */
#define SK_GUARD_MAX_BODY    (1024 * 1024)  /* largest MCP request body the tool filter reads */
#define SK_GUARD_PROCESS_CACHE 4096         /* ScaiKeyProcessCache, entries per process */

/* ---- per-directory configuration (guard_config.c) ---- */

typedef struct sk_guard_dir {
    apr_array_header_t *audiences;      /* const char *; NULL = not set (any audience) */
    const char *user_claim;             /* claim that becomes r->user; NULL = "sub" */
    const char *resource_metadata;      /* URL or path of the RFC 9728 document; NULL = none */
    const char *resource;               /* "resource" of that document; NULL = derived from its URL */
    apr_array_header_t *scopes_supported; /* const char *; NULL = not set */
    int mcp;                            /* 1 = MCP endpoint (tool filter); -1 = not set */
    int delay;                          /* revocation delay in seconds; -1 = not set */
    const char *login_client;           /* ScaiKeyLogin: client_id; NULL = no browser sign-in */
    const char *login_slug;             /* its tenant; NULL = the platform issuer */
    const char *login_callback;         /* its callback path */
} sk_guard_dir;

sk_guard_dir *sk_guard_dir_get(request_rec *r);
int sk_guard_delay(const sk_guard_dir *d);
/* Is AuthType ScaiKey in effect for this request? */
int sk_guard_active(request_rec *r);

/* ---- credentials and identities (verify.c) ---- */

typedef enum {
    SK_CRED_NONE = 0,
    SK_CRED_JWT,               /* Authorization: Bearer <JWT> */
    SK_CRED_APIKEY,            /* X-API-Key: <key> or Authorization: Bearer <key> */
    SK_CRED_MALFORMED          /* several credentials, or an empty one */
} sk_cred_kind;

typedef struct sk_credential {
    sk_cred_kind kind;
    const char *value;
    const char *problem;       /* why it is malformed */
} sk_credential;

/* A verified caller. What the cache holds (see identity_to_json in verify.c) plus the credential
 * itself, from which a JWT's claims are read again when a rule needs them. */
typedef struct sk_identity {
    sk_cred_kind kind;
    const char *credential;
    const char *sub;           /* user id, or client_id for clients and agents */
    const char *user_id;       /* people only */
    const char *tenant_id, *tenant_slug;
    const char *partner_id;
    const char *scope;         /* space-separated */
    const char *client_id;
    const char *email;
    const char *agent_id;      /* MCP agent, for agent tokens and agent keys */
    const char *key_id;        /* API keys */
    const char *iss;           /* JWTs */
    const char *jti, *sid;     /* JWTs: the token's id, the session of a person's token */
    json_t *aud;               /* JWTs: the aud claim (string or array), may be NULL */
    json_t *roles;             /* array of strings */
    json_t *groups;            /* array of [id, name]; every group, nested ones included */
    json_t *tools;             /* agent's allowed_tools; NULL = not known */
    int rpm;                   /* agent's rate_limit_rpm; 0 = none */
    long long exp;             /* unix seconds; 0 = does not expire */
    apr_time_t checked;        /* liveness last confirmed in the store; 0 = never */
    json_t *claims;            /* read on demand (sk_guard_claims) */
} sk_identity;

typedef enum { SK_GUARD_OK = 0, SK_GUARD_REFUSED, SK_GUARD_UNAVAILABLE } sk_guard_status;

/* The credential of the request (cookie-based sessions will be a third kind here). */
sk_credential sk_guard_credential(request_rec *r);

/* Verifies the credential, from the cache when possible; rechecks liveness in the store when the
 * cached check is older than the location's revocation delay. */
sk_guard_status sk_guard_identify(request_rec *r, const sk_credential *cred, sk_identity **out,
                                  const char **reason);

/* Per-process state of verification (child_init). */
void sk_guard_verify_child_init(apr_pool_t *p);

/* The claims of the identity: a JWT's own (verified when the identity was made), or for an API
 * key the equivalent object built from the key. Never NULL. */
json_t *sk_guard_claims(request_rec *r, sk_identity *id);

/* ---- per-request state ---- */

typedef struct sk_guard_req {
    sk_identity *who;          /* set once authenticated */
    sk_db *db;                 /* acquired on first use */
    int status;                /* a refusal the guard made (401, 403, 429, 503); 0 = none */
    const char *body;          /* its JSON body */
    int authz_failed;          /* an authenticated caller failed the Require rules */
    const char *need_scope;    /* scopes of the failed scaikey-scope rules */
    const char *need_other;    /* description of other failed rules */
    int passed;                /* fixups ran: authorization succeeded */
    int counted;               /* the rate limit counted this request */
} sk_guard_req;

sk_guard_req *sk_guard_req_get(request_rec *r);
/* The store for this request; NULL while the database is unreachable (after a failure the guard
 * waits a second before it tries again in this process). */
sk_db *sk_guard_db(request_rec *r);
/* Reports a failed statement: the database counts as unreachable for a while. */
void sk_guard_db_failed(request_rec *r, sk_db_status st);

/* ---- the response side (authn.c) ---- */

/* Records a refusal: status, WWW-Authenticate (when www is not NULL) and a JSON body (stolen). */
int sk_guard_refuse(request_rec *r, int status, const char *www, json_t *body);
/* The WWW-Authenticate value for a refusal: Bearer [realm], [error, description], [scope],
 * [resource_metadata]. */
const char *sk_guard_www(request_rec *r, int with_realm, const char *error, const char *description,
                         const char *scope);
void sk_guard_apply_identity(request_rec *r, sk_identity *id);
/* Hooks: check_user_id, header_parser (removes X-ScaiKey-* sent by clients), note_auth_failure,
 * insert_error_filter. */
int sk_guard_authn(request_rec *r);
int sk_guard_scrub(request_rec *r);
int sk_guard_note_auth_failure(request_rec *r, const char *type);
void sk_guard_insert_error_filter(request_rec *r);
void sk_guard_authn_register(apr_pool_t *p);

/* ---- shared cache (cache.c) ---- */

int sk_guard_cache_enabled(void);
/* The entry for key, or NULL. *len gets its size. */
char *sk_guard_cache_get(request_rec *r, const unsigned char key[32], unsigned int *len);
void sk_guard_cache_put(request_rec *r, const unsigned char key[32], apr_time_t expiry,
                        const char *data, unsigned int len);
/* Adds one to the counter key (expiring at expiry) and returns the new value; -1 without cache. */
long sk_guard_cache_incr(request_rec *r, const unsigned char key[32], apr_time_t expiry);

void sk_guard_cache_pre_config(apr_pool_t *pconf);
int sk_guard_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void sk_guard_cache_child_init(apr_pool_t *p, server_rec *s);
const char *sk_guard_cache_configure(cmd_parms *cmd, const char *arg);

/* ---- identities as JSON (identity.c) ---- */

/* A new object: everything of the identity but the credential and a JWT's claims. */
json_t *sk_guard_identity_json(const sk_identity *id);
/* Fills id from such an object, borrowing its strings and arrays: 0, or -1 when o is not an
 * identity of the kind want. id->credential is left NULL. */
int sk_guard_identity_fill(sk_identity *id, json_t *o, sk_cred_kind want);

/* ---- the process's table of recent credentials (local.c) ---- */

/* 1 when the table has the credential: *id (a copy in r->pool, with a reference to what it
 * borrows from) or *bad (a refusal's reason); 0 when not. */
int sk_guard_local_get(request_rec *r, const unsigned char key[32], const sk_credential *cred,
                       sk_identity **id, const char **bad);
void sk_guard_local_put(const unsigned char key[32], const sk_identity *id, apr_time_t expiry);
void sk_guard_local_put_refusal(const unsigned char key[32], const char *reason, apr_time_t expiry);
const char *sk_guard_local_configure(cmd_parms *cmd, const char *arg);
void sk_guard_local_pre_config(void);
void sk_guard_local_child_init(apr_pool_t *p);

/* ---- browser sign-in (login.c) ---- */

int sk_guard_login_enabled(request_rec *r);
/* The location's sign-in cookie as the credential (a JWT): 1 when there is one. */
int sk_guard_login_credential(request_rec *r, sk_credential *cred);
/* A browser's request (GET or HEAD accepting text/html) where ScaiKeyLogin is set. */
int sk_guard_login_browser(request_rec *r);
/* 302 to the authorization endpoint with a new state cookie (and the sign-in cookie cleared). */
int sk_guard_login_redirect(request_rec *r, int clear_token);
int sk_guard_login_is_callback(request_rec *r);
/* The callback: state, iss, code; 302 back with the sign-in cookie, or a refusal. */
int sk_guard_login_callback(request_rec *r);

/* ---- the revocation feed (feed.c) ---- */

/* Polls the store when this process's last poll is older than delay seconds (unless another
 * thread is polling, or the store is unreachable: then the last snapshot stays in use). */
void sk_guard_feed_refresh(request_rec *r, int delay);
/* Why the feed says the identity's token or key can no longer be used, or NULL. For a person's
 * JWT it also puts the account's current role, email, tenant and partner into the identity when
 * the account changed since. */
const char *sk_guard_feed_check(request_rec *r, sk_identity *id);
void sk_guard_feed_child_init(apr_pool_t *p);
void sk_guard_feed_register(apr_pool_t *p);

/* ---- agents (agents.c) ---- */

/* Counts the request against the agent's requests per minute: OK, or the refusal's status. */
int sk_guard_rate_limit(request_rec *r, sk_identity *id);
/* The MCP tool filter (fixups): OK, or the refusal's status. */
int sk_guard_mcp_filter(request_rec *r, sk_identity *id);
void sk_guard_agents_register(apr_pool_t *p);

/* ---- authorization providers (authz.c), handlers (handlers.c) ---- */

void sk_guard_authz_register(apr_pool_t *p);
int sk_guard_handler(request_rec *r);

/* ---- the guard's SQL (queries.c) ---- */

extern const char sk_guard_sql_context[];

#endif
