/* Token issuance shared by the grants of the token endpoint: the access token (a signed JWT), the
 * ID token when "openid" was granted, the refresh token when asked for, and the RFC 6749 §5.1
 * response. */
#ifndef SK_OAUTH_ISSUE_H
#define SK_OAUTH_ISSUE_H

#include "http/request.h"

typedef struct sk_grant_ctx {
    const char *slug;        /* NULL: platform flavour */
    json_t *client;          /* the authenticated client row (as token.c loads it) */
    json_t *user;            /* {"id","email","tenant_id","first_name","last_name","display_name","email_verified"} or NULL */
    const char *session_id;  /* SSO session id (sid claim), or NULL */
    const char *scope;       /* granted scope, space-separated */
    const char *nonce;       /* for the ID token, or NULL */
    long long auth_time;     /* 0 = unknown */
    const char *resource;    /* audience (RFC 8707), or NULL = client_id */
    const char *family_id;   /* refresh family to continue (or to start under this id), or NULL for a new one */
    int with_refresh;        /* issue a refresh token (needs user and session_id) */
    json_t *act;             /* RFC 8693 act claim, or NULL */
} sk_grant_ctx;

/* Signs the access token (claims of spec §3.2), an ID token when scope has openid (aud = client_id,
 * nonce, auth_time, at_hash, claims by scope: profile -> name, given_name, family_name,
 * preferred_username; email -> email, email_verified; groups -> groups (names of the user's
 * effective groups)), stores the refresh token digest when with_refresh, and sends the RFC 6749
 * §5.1 response with Cache-Control: no-store. Returns OK (response sent; on failure an RFC 6749
 * error response). */
int sk_oauth_issue(sk_req *q, const sk_grant_ctx *g);

/* What only the refresh and token-exchange grants need besides sk_grant_ctx. */
typedef struct sk_issue_opts {
    const char *spent_id;      /* refresh grant: a transaction is open in which this refresh token
                                * row was spent; the new row is linked to it and the transaction
                                * committed before the response goes out (rolled back on failure) */
    const char *refresh_scope; /* scope stored with the new refresh token (NULL: g->scope) */
    const char *sub;           /* subject when there is no user (a client's own token) */
    json_t *extra;             /* further access-token claims (borrowed), may be NULL */
    long long max_exp;         /* the access token expires no later than this (0: no limit) */
    int no_id_token;           /* never issue an ID token */
    const char *issued_token_type;  /* RFC 8693 response member, or NULL */
    sk_audit *audit;           /* written with the tokens (last statement before the commit) */
} sk_issue_opts;

int sk_oauth_issue_ex(sk_req *q, const sk_grant_ctx *g, const sk_issue_opts *o);

/* Adds to out the identity claims the scope releases (ID token and userinfo). */
void sk_oauth_user_claims(sk_req *q, json_t *out, json_t *user, const char *scope);

#endif
