/* Authorization codes (RFC 6749 §4.1): issued by the authorization endpoint, redeemed once at the
 * token endpoint with grant_type=authorization_code.
 *
 * A code is 256 random bits (base64url); only its SHA-256 is stored. It lives 60 seconds and is
 * bound to the client, the redirect_uri sent to authorize, the PKCE challenge (S256 only), the
 * user and the SSO session it came from. Redeeming it opens a session of its own for the tokens
 * it yields (kind 'user'). Presented a second time it is refused (invalid_grant) and that session
 * and the refresh tokens issued from it end at once (RFC 6749 §4.1.2, §10.5). */
#ifndef SK_OAUTH_CODE_H
#define SK_OAUTH_CODE_H

#include "http/request.h"

/* What a code is issued for. */
typedef struct sk_code_req {
    const char *client_id, *application_id;
    const char *user_id, *tenant_id;
    const char *session_id;                 /* the SSO session */
    const char *redirect_uri, *scope, *nonce, *resource;
    const char *code_challenge, *code_challenge_method;
    long long auth_time;
} sk_code_req;

/* Stores a new code and returns it, or NULL when the store failed. */
const char *sk_oauth_code_create(sk_req *q, const sk_code_req *c);

/* grant_type=authorization_code at the token endpoint. client is the authenticated client row
 * (public clients by client_id alone). Sends the response; returns OK. */
int sk_oauth_code_grant(sk_req *q, const char *slug, json_t *client);

/* RFC 7636: 43 to 128 characters of [A-Za-z0-9-._~]. */
int sk_pkce_valid(const char *s);

#endif
