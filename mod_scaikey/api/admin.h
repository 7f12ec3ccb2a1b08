/* Special actions of the admin API (beyond the generic CRUD of api/crud.h). */
#ifndef SK_API_ADMIN_H
#define SK_API_ADMIN_H

#include "http/request.h"

/* groups: direct members, nested groups (api/admin_groups.c) */
int sk_admin_group_member_add(sk_req *q);
int sk_admin_group_member_remove(sk_req *q);
int sk_admin_group_members(sk_req *q);
int sk_admin_group_nest(sk_req *q);
int sk_admin_group_unnest(sk_req *q);
int sk_admin_group_nested(sk_req *q);

/* users: password, MFA, their sessions and groups (api/admin_users.c) */
int sk_admin_user_reset_password(sk_req *q);
int sk_admin_user_mfa_disable(sk_req *q);
int sk_admin_user_sessions(sk_req *q);
int sk_admin_user_groups(sk_req *q);

/* client secrets of applications and agents (api/admin_secrets.c) */
int sk_admin_app_rotate_secret(sk_req *q);
int sk_admin_agent_rotate_secret(sk_req *q);

/* sessions (api/admin_sessions.c) */
int sk_admin_sessions(sk_req *q);
int sk_admin_session_get(sk_req *q);
int sk_admin_session_revoke(sk_req *q);
int sk_admin_sessions_revoke_all(sk_req *q);

/* one page of sessions (user_id NULL: every user's) within the caller's reach, answered as a
 * paginated list; include_revoked also lists ended sessions. Shared by the users' sessions. */
int sk_admin_session_page(sk_req *q, const char *user_id, int include_revoked);

/* the audit log (api/admin_audit.c) */
int sk_admin_audit_list(sk_req *q);
int sk_admin_audit_get(sk_req *q);
int sk_admin_audit_actions(sk_req *q);
int sk_admin_audit_resource_types(sk_req *q);
int sk_admin_audit_verify(sk_req *q);

/* dashboard (api/admin_dashboard.c) */
int sk_admin_dashboard_stats(sk_req *q);
int sk_admin_dashboard_activity(sk_req *q);

/* platform settings (api/admin_settings.c) */
int sk_admin_settings_get(sk_req *q);
int sk_admin_settings_patch(sk_req *q);

/* Parses a boolean query argument ("true" or "false"): 0 and *out set (def when absent), or -1
 * after adding a validation error to errs. */
int sk_admin_query_bool(sk_req *q, const char *name, int def, int *out, json_t *errs);

#endif
