#include "core/policy.h"

#include <string.h>

#define SCOPE_DETAIL "Platform token requires admin:read or admin:write scope"
#define WRITE_DETAIL "Platform token requires admin:write scope"
#define DENIED       "Access denied"

int sk_scope_has(const char *scopes, const char *scope)
{
    size_t n;
    const char *s;
    if (!scopes || !scope || !*scope)
        return 0;
    n = strlen(scope);
    for (s = scopes; *s; ) {
        size_t len;
        while (*s == ' ')
            s++;
        len = strcspn(s, " ");
        if (len == n && !strncmp(s, scope, n))
            return 1;
        s += len;
    }
    return 0;
}

int sk_role_rank(const char *role)
{
    if (!role)
        return -1;
    if (!strcmp(role, "user"))
        return 0;
    if (!strcmp(role, "tenant_admin"))
        return 1;
    if (!strcmp(role, "partner_admin"))
        return 2;
    if (!strcmp(role, "super_admin"))
        return 3;
    return -1;
}

static int is_platform(const sk_principal *who)
{
    return who && who->platform_token && !who->user_id;
}

static int rank(const sk_principal *who)
{
    if (is_platform(who))
        return 3;
    return who && who->user_id ? sk_role_rank(who->role) : -1;
}

sk_decision sk_policy_gate(const sk_principal *who, int write, const char **detail)
{
    *detail = DENIED;
    if (!who)
        return SK_DENY;
    /* people reach the admin API with the admin console's tokens only: a token an OAuth
     * application obtained for an admin does not carry the admin's powers to that application */
    if (who->user_id)
        return rank(who) >= 1 && who->admin_console ? SK_ALLOW : SK_DENY;
    if (!who->platform_token)
        return SK_DENY;
    if (!sk_scope_has(who->scope, "admin:read") && !sk_scope_has(who->scope, "admin:write")) {
        *detail = SCOPE_DETAIL;
        return SK_DENY;
    }
    if (write && !sk_scope_has(who->scope, "admin:write")) {
        *detail = WRITE_DETAIL;
        return SK_DENY;
    }
    return SK_ALLOW;
}

sk_reach sk_policy_reach(const sk_principal *who)
{
    sk_reach r = { 0, NULL, NULL };
    switch (rank(who)) {
    case 3:
        r.all = 1;
        break;
    case 2:
        r.partner_id = who->partner_id ? who->partner_id : "";
        break;
    case 1:
        r.tenant_id = who->tenant_id ? who->tenant_id : "";
        break;
    default:
        r.tenant_id = "";          /* sees nothing */
        break;
    }
    return r;
}

static int same(const char *a, const char *b)
{
    return a && b && *a && !strcmp(a, b);
}

/* Is an object at w within reach r? */
static int within(const sk_reach *r, const sk_where *w)
{
    if (r->all)
        return 1;
    if (r->partner_id)
        return same(w->partner_id, r->partner_id);
    return same(w->tenant_id, r->tenant_id);
}

static sk_decision applications(const sk_principal *who, const sk_reach *r, sk_act act, const sk_where *w)
{
    const char *scope = w->scope ? w->scope : "";
    int global = !strcmp(scope, "GLOBAL"), partner = !strcmp(scope, "PARTNER");
    int tenant_app = !strcmp(scope, "TENANT");
    int visible;

    if (r->all)
        return SK_ALLOW;
    if (global)
        visible = 1;                                    /* every admin sees the platform's apps */
    else if (partner)
        visible = r->partner_id ? same(w->partner_id, r->partner_id)
                                : same(w->partner_id, who->tenant_partner_id);  /* the tenant's partner */
    else
        visible = tenant_app && within(r, w);
    if (!visible)
        return SK_HIDDEN;
    if (act == SK_ACT_READ)
        return SK_ALLOW;
    /* registering or changing: GLOBAL super_admin only; PARTNER that partner's admin; TENANT the
     * tenant's admin or a higher one with reach */
    if (global)
        return SK_DENY;
    if (partner)
        return r->partner_id ? SK_ALLOW : SK_DENY;
    return SK_ALLOW;
}

sk_decision sk_policy_decide(const sk_principal *who, const char *res, sk_act act, const sk_where *w)
{
    sk_reach r = sk_policy_reach(who);
    int k = rank(who);
    static const sk_where nowhere = { 0 };
    if (!w)
        w = &nowhere;
    if (k < 1)
        return SK_DENY;

    if (!strcmp(res, SK_RES_PARTNER) || !strcmp(res, SK_RES_SETTINGS))
        return k == 3 ? SK_ALLOW : SK_DENY;

    if (!strcmp(res, SK_RES_TENANT)) {
        if (!within(&r, w))
            return act == SK_ACT_CREATE ? SK_DENY : SK_HIDDEN;
        switch (act) {
        case SK_ACT_READ:
            return SK_ALLOW;
        case SK_ACT_UPDATE:
            return k >= 1 ? SK_ALLOW : SK_DENY;  /* a tenant_admin's fields are limited by the handler */
        default:
            return k >= 2 ? SK_ALLOW : SK_DENY;  /* create and delete: partner_admin within their partner */
        }
    }

    if (!strcmp(res, SK_RES_APP))
        return applications(who, &r, act, w);

    if (!strcmp(res, SK_RES_USER)) {
        /* platform-level accounts (no tenant) belong to the super_admin, or to their partner's admin */
        int target_rank = sk_role_rank(w->role);
        if (!w->tenant_id && !r.all && !(r.partner_id && same(w->partner_id, r.partner_id)))
            return act == SK_ACT_CREATE ? SK_DENY : SK_HIDDEN;
        if (w->tenant_id && !within(&r, w))
            return act == SK_ACT_CREATE ? SK_DENY : SK_HIDDEN;
        if (act == SK_ACT_READ)
            return SK_ALLOW;
        /* an admin manages accounts below their own tier; the super_admin manages all */
        if (k < 3 && target_rank >= k)
            return SK_DENY;
        return SK_ALLOW;
    }

    if (!strcmp(res, SK_RES_GROUP) || !strcmp(res, SK_RES_IDP) || !strcmp(res, SK_RES_AGENT) ||
        !strcmp(res, SK_RES_SESSION)) {
        if (!within(&r, w))
            return act == SK_ACT_CREATE ? SK_DENY : SK_HIDDEN;
        return SK_ALLOW;
    }

    if (!strcmp(res, SK_RES_AUDIT) || !strcmp(res, SK_RES_DASHBOARD))
        return act == SK_ACT_READ ? SK_ALLOW : SK_DENY;

    return SK_DENY;
}

sk_decision sk_policy_may_create(const sk_principal *who, const char *res, const char *scope)
{
    int k = rank(who);
    if (k < 1)
        return SK_DENY;
    if (!strcmp(res, SK_RES_PARTNER) || !strcmp(res, SK_RES_SETTINGS))
        return k == 3 ? SK_ALLOW : SK_DENY;
    if (!strcmp(res, SK_RES_TENANT))
        return k >= 2 ? SK_ALLOW : SK_DENY;
    if (!strcmp(res, SK_RES_APP) && scope) {
        if (!strcmp(scope, "GLOBAL"))
            return k == 3 ? SK_ALLOW : SK_DENY;
        if (!strcmp(scope, "PARTNER"))
            return k >= 2 ? SK_ALLOW : SK_DENY;
    }
    return SK_ALLOW;
}

int sk_policy_may_grant(const sk_principal *who, const char *role)
{
    int k = rank(who), want = sk_role_rank(role);
    if (want < 0)
        return 0;
    return k == 3 || want < k;
}
