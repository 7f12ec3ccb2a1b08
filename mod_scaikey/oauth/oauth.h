/* The OAuth 2.0 / OpenID Connect provider, in its two flavours: the platform's
 * (/api/v1/platform/oauth, GLOBAL applications) and each tenant's (/api/v1/auth/tenants/{slug},
 * TENANT and PARTNER applications and MCP agents). */
#ifndef SK_OAUTH_H
#define SK_OAUTH_H

#include "http/request.h"

/* route data: which flavour */
typedef struct sk_flavour {
    int tenant;          /* 0 platform, 1 tenant (slug in the path as {tenant_slug}) */
} sk_flavour;

extern const sk_flavour sk_flavour_platform, sk_flavour_tenant;

/* Endpoints (route data: the flavour). */
int sk_oauth_token(sk_req *q);
int sk_oauth_userinfo(sk_req *q);
int sk_oauth_introspect(sk_req *q);
int sk_oauth_revoke(sk_req *q);
int sk_oauth_discovery(sk_req *q);

/* Grants of the token endpoint, called once the client is authenticated; each sends the response. */
int sk_oauth_refresh_grant(sk_req *q, const char *slug, json_t *client);
int sk_oauth_exchange_grant(sk_req *q, const char *slug, json_t *client);

/* grant_type=authorization_code (oauth/code.c). Declared weak so that the module still loads
 * while that grant is not linked in: the token endpoint then answers unsupported_grant_type. */
int sk_oauth_code_grant(sk_req *q, const char *slug, json_t *client) __attribute__((weak));

/* The tenant slug of the request's flavour (NULL for the platform). */
const char *sk_oauth_slug(sk_req *q);

/* Client authentication (RFC 6749 §2.3): client_secret_basic or client_secret_post for
 * confidential clients (WEB and SERVICE applications, MCP agents); a public client (SPA, NATIVE)
 * sends only its client_id, and only where allow_public. OK with *client (the client row, owned by
 * the pool); otherwise the error response has been sent and DONE is returned. */
int sk_oauth_client_auth(sk_req *q, const char *slug, int allow_public, json_t **client);

/* An access token of this flavour: signature, issuer, expiry, and that it was not revoked (for
 * people the session is live and the account active; for clients the client is active and the
 * token's jti not revoked). */
sk_auth_status sk_oauth_principal(sk_req *q, const char *slug, const char *token, sk_principal **who,
                                  const char **reason);

/* 1 for SPA and NATIVE applications (no secret). */
int sk_oauth_public_client(json_t *client);

/* The form's parameters appear once each (RFC 6749 §3.2; resource and audience may repeat) and
 * are not too many. OK, or DONE after an invalid_request response. */
int sk_oauth_form_check(sk_req *q);

/* Is every scope of `requested` in `granted` (space-separated lists)? */
int sk_oauth_scope_subset(apr_pool_t *p, const char *requested, const char *granted);

/* A resource indicator (RFC 8707): an absolute URI without fragment, at most 2000 bytes. */
int sk_oauth_valid_resource(const char *resource);

/* RFC 6749 §5.2 error: {"error", "error_description"} with Cache-Control: no-store. */
int sk_oauth_error(sk_req *q, int status, const char *error, const char *description);

/* The issuer of a flavour: {base}/api/v1/platform/oauth or {base}/api/v1/auth/tenants/{slug}. */
const char *sk_oauth_issuer(sk_req *q, const char *slug);

#endif
