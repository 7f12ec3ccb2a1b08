/* The caller of a request, from a bearer token: who it is and what it may claim. */
#ifndef SK_CORE_PRINCIPAL_H
#define SK_CORE_PRINCIPAL_H

#include <apr_pools.h>
#include <jansson.h>
#include "core/keyring.h"
#include "store/db.h"

typedef struct sk_principal {
    const char *actor_type;      /* "admin", "user", "service", "agent" */
    const char *user_id;         /* usr_…, for people */
    const char *client_id;       /* for services and agents */
    const char *email;
    const char *role;            /* user, tenant_admin, partner_admin, super_admin */
    const char *tenant_id;
    const char *partner_id;
    const char *tenant_partner_id;   /* the partner of the caller's tenant */
    const char *session_id;
    const char *scope;
    int platform_token;
    int admin_console;           /* a token of the admin console's sign-in (aud "scaikey-admin") */
    json_t *claims;              /* verified claims (freed with the pool) */
    json_t *user;                /* the user row as JSON, for people (freed with the pool) */
} sk_principal;

typedef enum { SK_AUTH_OK = 0, SK_AUTH_REFUSED, SK_AUTH_UNAVAILABLE } sk_auth_status;

/* Verifies the token (signature, issuer, expiry) and, for people, that the session is live and the
 * account and its tenant are active. */
sk_auth_status sk_principal_from_bearer(apr_pool_t *p, sk_keyring *kr, sk_db *db, const char *issuer,
                                        int leeway, const char *token, sk_principal **out,
                                        const char **reason);

/* The same for the API's own routes: where the platform issuer is expected, also a person's token
 * of their own tenant's sign-in, and a tenant client's token (which the admin gate refuses). */
sk_auth_status sk_principal_for_api(apr_pool_t *p, sk_keyring *kr, sk_db *db, const char *issuer,
                                    int leeway, const char *token, sk_principal **out, const char **reason);

#endif
