/* The steps every first-party sign-in shares (admin console, a tenant's login page, the portal,
 * email-code sign-in): opening a session with its access and refresh tokens, and rotating a
 * refresh token with reuse detection. The OAuth grants (oauth/) issue through oauth/issue.c. */
#ifndef SK_API_SIGNIN_H
#define SK_API_SIGNIN_H

#include "http/request.h"
#include "http/validate.h"

/* The access token of session sid for user; spent is the refresh token's row when rotating,
 * NULL at sign-in. NULL when it cannot be signed. */
typedef char *(*sk_signin_token_fn)(sk_req *q, json_t *user, const char *sid, json_t *spent, void *ctx);

/* A session's access token: iss, aud (also client_id), scope, the user's id, tenant and email;
 * with_role adds the role and partner claims. */
char *sk_signin_access_token(sk_req *q, const char *iss, const char *aud, const char *scope, json_t *user,
                             const char *sid, int with_role);

/* A new session. */
typedef struct sk_signin {
    json_t *user;               /* id, tenant_id, partner_id, email, role */
    const char *client_id;      /* of the refresh token (may be NULL) */
    const char *scope;          /* of the refresh token */
    sk_audit *audit;            /* the success record; its resource becomes the session */
    int with_user;              /* the answer carries "user" as well */
    /* Writes the session row, and whatever must be spent with it, in the open transaction. */
    sk_db_status (*create)(sk_req *q, sk_db *db, const char *ttl, void *ctx, const char **sid);
    sk_signin_token_fn token;
    /* Answers when create found its row spent meanwhile (SK_DB_NOTFOUND); NULL: a failure. */
    int (*gone)(sk_req *q, void *ctx);
    const char *log_fail;       /* SKLOGNO(n) "... could not be recorded" */
    void *ctx;
} sk_signin;

/* Session, refresh token, last sign-in and the audit record in one transaction, then 200 with
 * the tokens; 503 (logged) or s->gone when it cannot be written. */
int sk_signin_open(sk_req *q, sk_db *db, const sk_signin *s);

/* A kind of refresh token. */
typedef struct sk_signin_refresh {
    const char *spend;          /* statement spending a token: (digest, args[0], args[1]) */
    const char *args[2];
    int nargs;
    const char *action;         /* audit action, e.g. "admin.refresh" */
    const char *actor_type;     /* of the reuse record */
    int actor_by_role;          /* the success record's actor type follows the role (else actor_type) */
    const char *invalid;        /* 401 detail */
    /* 1 when the spent row is good at this endpoint, 0 refuses it (401); NULL accepts any. */
    int (*accept)(sk_req *q, json_t *spent, void *ctx);
    sk_signin_token_fn token;
    const char *log_revoke;     /* SKLOGNO(n) "session revocation failed" */
    const char *log_fail;       /* SKLOGNO(n) "refresh could not be recorded" */
    void *ctx;
} sk_signin_refresh;

/* Spends refresh_token and issues its successor of the same family, in one transaction with
 * the audit record. A token that was spent before came back: its session ends (audited
 * "denied", reason refresh_token_reuse) and the answer is 401, like for an unknown token. */
int sk_signin_rotate(sk_req *q, sk_db *db, const char *refresh_token, const sk_signin_refresh *k);

/* A refresh endpoint: validates the body {"refresh_token"} (422), finds the store (503), rotates. */
int sk_signin_refresh_request(sk_req *q, const sk_signin_refresh *k);

/* Ends the caller's session (q->who->session_id) with the audit record action in one
 * transaction: 200 {"detail": "Logged out"}; 503 when db is NULL, or when the store fails
 * (logged with log_fail). */
int sk_signin_logout(sk_req *q, sk_db *db, const char *action, const char *log_fail);

#endif
