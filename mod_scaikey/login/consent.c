/* The consent page: GET and POST /api/v1/auth/tenants/{slug}/oauth/consent?flow=...
 *
 * Shown when the application requires consent (applications.require_consent) and asks for a scope
 * the user has not granted it before, or when the request says prompt=consent. "Allow" records the
 * grant in oauth_consents (added to what was granted before) and issues the code; "Deny" sends the
 * user back with error=access_denied. Both need the SSO session the flow was started with. */
#include "login/login.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

static const struct {
    const char *scope, *text;
} SCOPE_TEXT[] = {
    { "openid",         "Sign you in with your account" },
    { "profile",        "See your name" },
    { "email",          "See your email address" },
    { "groups",         "See the groups you belong to" },
    { "offline_access", "Stay connected while you are not using it" },
    { NULL, NULL }
};

static const char *scope_text(apr_pool_t *p, const char *scope)
{
    int i;
    for (i = 0; SCOPE_TEXT[i].scope; i++)
        if (!strcmp(SCOPE_TEXT[i].scope, scope))
            return SCOPE_TEXT[i].text;
    return apr_pstrcat(p, "Use the permission \"", scope, "\"", NULL);
}

/* The flow at its consent step, the request it keeps and the SSO session it belongs to.
 * OK, or DONE after a page. */
static int consent_flow(sk_req *q, const char *handle, int post, json_t **tenant, sk_flow **f, sk_authz *az,
                        sk_signin *who)
{
    json_t *sso = NULL;
    int rc;
    if (sk_login_tenant_flow(q, handle, tenant, f) != OK)
        return DONE;
    if (post && !sk_flow_form_ok(q, *f))
        return sk_login_error_page(q, *tenant, HTTP_FORBIDDEN, "Request refused",
                                   "The form was not sent from this page, or it expired. Go back, reload the page "
                                   "and try again."), DONE;
    if (!sk_flow_get(*f, "stage") || strcmp(sk_flow_get(*f, "stage"), "consent") || !(*f)->user_id)
        return sk_login_error_page(q, *tenant, HTTP_BAD_REQUEST, "Sign-in expired",
                                   "This sign-in request has expired or was already used. Return to the "
                                   "application and try again."), DONE;
    rc = sk_sso_current(q, &sso);
    if (rc < 0)
        return sk_login_error_page(q, *tenant, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                                   "Sign-in is not available right now. Please try again shortly."), DONE;
    if (rc > 0 || !sk_flow_get(*f, "sso") || strcmp(sk_jstr(sso, "id"), sk_flow_get(*f, "sso")) ||
        strcmp(sk_jstr(json_object_get(sso, "user"), "id"), (*f)->user_id))
        return sk_login_error_page(q, *tenant, HTTP_FORBIDDEN, "Signed out",
                                   "You are no longer signed in. Return to the application and try again."), DONE;
    if (sk_authz_from_flow(q, *f, az) != OK)
        return DONE;
    /* the consent page speaks for the user's tenant */
    sk_html_brand(json_object_get(*tenant, "branding"), sk_jstr(*tenant, "name"), &az->brand);
    who->user = json_object_get(sso, "user");
    who->session_id = sk_jstr(sso, "id");
    who->auth_time = (long long)json_integer_value(json_object_get(sso, "auth_time"));
    who->tenant_slug = sk_jstr(sso, "tenant_slug");
    return OK;
}

static const char CONSENT[] =
    "{{&error}}"
    "<p><strong>{{app}}</strong> would like to:</p>\n"
    "<ul class=\"scopes\">\n{{&scopes}}</ul>\n"
    "<p class=\"muted\">Signed in as {{email}}</p>\n"
    "<form method=\"post\" action=\"consent\">\n"
    "<input type=\"hidden\" name=\"flow\" value=\"{{flow}}\">\n"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
    "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n"
    "<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n"
    "</form>\n";

static int render(sk_req *q, sk_flow *f, sk_authz *az, const sk_signin *who, int status, const char *error)
{
    apr_table_t *v = apr_table_make(q->p, 8);
    json_t *list = sk_pool_json(q->p, sk_scope_list(q->p, az->scope)), *s;
    const char *items = "";
    size_t i;
    json_array_foreach(list, i, s)
        items = apr_pstrcat(q->p, items, "<li>", sk_html_escape(q->p, scope_text(q->p, json_string_value(s))),
                            "</li>\n", NULL);
    apr_table_setn(v, "app", sk_jstr(az->client, "name"));
    apr_table_setn(v, "scopes", items);
    apr_table_setn(v, "email", sk_jstr(who->user, "email"));
    apr_table_setn(v, "flow", f->handle);
    apr_table_setn(v, "csrf", sk_flow_csrf(q, f));
    if (error)
        apr_table_setn(v, "error", apr_pstrcat(q->p, "<p class=\"error\" role=\"alert\">",
                                               sk_html_escape(q->p, error), "</p>\n", NULL));
    return sk_html_page(q, status, &az->brand, "Allow access?", sk_html_render(q->p, CONSENT, v));
}

int sk_consent_page(sk_req *q)
{
    json_t *tenant;
    sk_flow *f;
    sk_authz az;
    sk_signin who = { 0 };
    if (consent_flow(q, sk_req_query(q, "flow"), 0, &tenant, &f, &az, &who) != OK)
        return OK;
    return render(q, f, &az, &who, HTTP_OK, NULL);
}

static void audit(sk_req *q, sk_authz *az, const sk_signin *who, const char *result)
{
    sk_audit *a = sk_req_audit(q, "oauth.consent", result);
    a->actor_id = sk_jstr(who->user, "id");
    a->actor_email = sk_jstr(who->user, "email");
    a->actor_type = "user";
    a->tenant_id = sk_jstr(who->user, "tenant_id");
    a->resource_type = "application";
    a->resource_id = sk_jstr(az->client, "id");
    a->details = sk_pool_json(q->p, json_pack("{s:s,s:s}", "client_id", az->client_id, "scope",
                                              az->scope ? az->scope : ""));
    if (sk_audit_write(sk_req_db(q), a) != SK_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1051) "audit write failed for oauth.consent: %s",
                      sk_db_error(sk_req_db(q)));
}

int sk_consent_submit(sk_req *q)
{
    json_t *tenant, *scopes;
    sk_flow *f;
    sk_authz az;
    sk_signin who = { 0 };
    const char *decision;
    char *text;
    sk_db_status st;

    if (sk_req_read_form(q, sk_login_form_error) != OK)
        return OK;
    if (consent_flow(q, apr_table_get(q->form, "flow"), 1, &tenant, &f, &az, &who) != OK)
        return OK;
    decision = apr_table_get(q->form, "decision");
    if (decision && !strcmp(decision, "deny")) {
        audit(q, &az, &who, "denied");
        return sk_authz_error(q, &az, 1, "access_denied", "the user denied the request");
    }
    if (!decision || strcmp(decision, "allow"))
        return render(q, f, &az, &who, HTTP_BAD_REQUEST, "Choose Allow or Deny.");

    scopes = sk_pool_json(q->p, sk_scope_list(q->p, az.scope));
    if (!(text = json_dumps(scopes, JSON_COMPACT)))
        return sk_html_message(q, HTTP_SERVICE_UNAVAILABLE, &az.brand, "Temporarily unavailable",
                               "Sign-in is not available right now. Please try again shortly.");
    st = SK_Q(sk_req_db(q), "consent_grant", sk_jstr(who.user, "id"), sk_jstr(az.client, "id"), text);
    free(text);
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1052) "consent not recorded: %s",
                      sk_db_error(sk_req_db(q)));
        return sk_html_message(q, HTTP_SERVICE_UNAVAILABLE, &az.brand, "Temporarily unavailable",
                               "Sign-in is not available right now. Please try again shortly.");
    }
    audit(q, &az, &who, "success");
    return sk_authz_issue(q, &az, &who, 1);
}
