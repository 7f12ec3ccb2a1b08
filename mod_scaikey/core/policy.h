/* Who may do what in the admin API: the whole hierarchical access matrix, in one place.
 *
 *   super_admin    everything
 *   partner_admin  their partner and the tenants under it
 *   tenant_admin   their own tenant
 *   platform token a GLOBAL app's client_credentials token: everything, reads with admin:read or
 *                  admin:write, writes with admin:write
 *
 * Objects outside a caller's reach are not found (404), never "forbidden": that would leak
 * their existence. An action on a visible object that the caller's tier may not take is 403. */
#ifndef SK_CORE_POLICY_H
#define SK_CORE_POLICY_H

#include "core/principal.h"

typedef enum { SK_ACT_READ = 0, SK_ACT_CREATE, SK_ACT_UPDATE, SK_ACT_DELETE } sk_act;

typedef enum {
    SK_ALLOW = 0,
    SK_DENY,        /* 403 */
    SK_HIDDEN       /* 404: outside the caller's reach */
} sk_decision;

/* Where an object lives. */
typedef struct sk_where {
    const char *partner_id;   /* its partner, directly or through its tenant */
    const char *tenant_id;    /* its tenant (for a tenant: itself) */
    const char *scope;        /* applications: GLOBAL, PARTNER or TENANT */
    const char *role;         /* users: their role */
    const char *id;           /* the object's own id (partners, tenants) */
} sk_where;

/* The rows a caller can see: everything, one partner's, or one tenant's. */
typedef struct sk_reach {
    int all;
    const char *partner_id;
    const char *tenant_id;
} sk_reach;

/* Resource kinds the policy knows. */
#define SK_RES_PARTNER  "partners"
#define SK_RES_TENANT   "tenants"
#define SK_RES_USER     "users"
#define SK_RES_GROUP    "groups"
#define SK_RES_APP      "applications"
#define SK_RES_IDP      "identity_providers"
#define SK_RES_AGENT    "agents"
#define SK_RES_SESSION  "sessions"
#define SK_RES_AUDIT    "audit"
#define SK_RES_SETTINGS "platform_settings"
#define SK_RES_DASHBOARD "dashboard"

/* The admin API gate. SK_DENY with *detail set when the caller may not use the admin API at all
 * or lacks the platform scope for the operation. */
sk_decision sk_policy_gate(const sk_principal *who, int write, const char **detail);

sk_reach sk_policy_reach(const sk_principal *who);

/* May the caller take act on resource at w? (For create, w describes the object to be made.) */
sk_decision sk_policy_decide(const sk_principal *who, const char *resource, sk_act act, const sk_where *w);

/* May the caller's tier create this kind of object at all (before looking at where)?
 * scope: an application's scope, or NULL. */
sk_decision sk_policy_may_create(const sk_principal *who, const char *resource, const char *scope);

/* Rank of a role: user 0, tenant_admin 1, partner_admin 2, super_admin 3; -1 unknown. */
int sk_role_rank(const char *role);
/* May the caller give (or take away) this role? */
int sk_policy_may_grant(const sk_principal *who, const char *role);

/* Has the token this scope (space-separated list)? */
int sk_scope_has(const char *scopes, const char *scope);

#endif
