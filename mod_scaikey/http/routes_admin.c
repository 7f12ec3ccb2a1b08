/* Routes of the admin API's special actions. Handlers are declared in api/admin.h.
 * Where two patterns can match one path (".../audit/actions" and ".../audit/{audit_id}"), the
 * fixed one comes first: the first matching route wins. */
#include "http/router.h"
#include "api/admin.h"

#define ADMIN "/api/v1/admin"
#define B     SK_R_BEARER
#define BJ    (SK_R_BEARER | SK_R_JSON)

const sk_route sk_routes_admin[] = {
    /* groups */
    { "GET",    ADMIN "/groups/{group_id}/members",                 sk_admin_group_members,       B },
    { "POST",   ADMIN "/groups/{group_id}/members",                 sk_admin_group_member_add,    BJ },
    { "DELETE", ADMIN "/groups/{group_id}/members/{user_id}",       sk_admin_group_member_remove, B },
    { "GET",    ADMIN "/groups/{group_id}/nested",                  sk_admin_group_nested,        B },
    { "POST",   ADMIN "/groups/{group_id}/nested",                  sk_admin_group_nest,          BJ },
    { "DELETE", ADMIN "/groups/{group_id}/nested/{child_group_id}", sk_admin_group_unnest,        B },

    /* users */
    { "POST",   ADMIN "/users/{user_id}/reset-password",            sk_admin_user_reset_password, BJ },
    { "POST",   ADMIN "/users/{user_id}/mfa/disable",               sk_admin_user_mfa_disable,    B },
    { "GET",    ADMIN "/users/{user_id}/sessions",                  sk_admin_user_sessions,       B },
    { "GET",    ADMIN "/users/{user_id}/groups",                    sk_admin_user_groups,         B },

    /* client secrets */
    { "POST",   ADMIN "/applications/{app_id}/rotate-secret",       sk_admin_app_rotate_secret,   B },
    { "POST",   ADMIN "/agents/{agent_id}/rotate-secret",           sk_admin_agent_rotate_secret, B },

    /* sessions */
    { "GET",    ADMIN "/sessions",                                  sk_admin_sessions,            B },
    { "POST",   ADMIN "/sessions/revoke-all",                       sk_admin_sessions_revoke_all, BJ },
    { "GET",    ADMIN "/sessions/{session_id}",                     sk_admin_session_get,         B },
    { "DELETE", ADMIN "/sessions/{session_id}",                     sk_admin_session_revoke,      B },

    /* audit log */
    { "GET",    ADMIN "/audit",                                     sk_admin_audit_list,          B },
    { "GET",    ADMIN "/audit/actions",                             sk_admin_audit_actions,       B },
    { "GET",    ADMIN "/audit/resource-types",                      sk_admin_audit_resource_types, B },
    { "GET",    ADMIN "/audit/verify",                              sk_admin_audit_verify,        B },
    { "GET",    ADMIN "/audit/{audit_id}",                          sk_admin_audit_get,           B },

    /* dashboard */
    { "GET",    ADMIN "/dashboard/stats",                           sk_admin_dashboard_stats,     B },
    { "GET",    ADMIN "/dashboard/activity",                        sk_admin_dashboard_activity,  B },

    /* platform settings */
    { "GET",    ADMIN "/platform-settings",                         sk_admin_settings_get,        B },
    { "PATCH",  ADMIN "/platform-settings",                         sk_admin_settings_patch,      BJ },

    { NULL }
};
