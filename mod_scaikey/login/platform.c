/* The platform's email-first sign-in, for GLOBAL applications (no tenant in the URL):
 *
 *   GET  /api/v1/platform/oauth/login?flow=...   the email page
 *   POST /api/v1/platform/oauth/login            email -> the tenants where it has an account:
 *                                                  one   -> that tenant's password page
 *                                                  some  -> a choice of tenants
 *                                                  none  -> a password page that never succeeds
 *   POST /api/v1/platform/oauth/login/tenant     the tenant chosen -> its password page
 *   POST /api/v1/platform/oauth/login/password   the password page of an unknown email
 *
 * After the tenant is known the flow goes on on that tenant's pages; the code is still issued for
 * the GLOBAL application and its tokens carry the user's tenant_id. An unknown email gets a
 * password page like any other (same throttling, a dummy hash verification, an audited failure),
 * so the first page alone does not reveal that the email has no account. */
#include "login/login.h"
#include "http/validate.h"
#include "core/password.h"
#include "core/throttle.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

static int unavailable_page(sk_req *q)
{
    return sk_login_error_page(q, NULL, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                               "Sign-in is not available right now. Please try again shortly.");
}

/* A platform flow at its sign-in step (the form checked when posted). OK, or DONE after a page. */
static int platform_flow(sk_req *q, const char *handle, int post, sk_flow **f)
{
    int rc;
    if (!sk_req_db(q))
        return unavailable_page(q), DONE;
    rc = sk_flow_load(q, handle, f);
    if (rc < 0)
        return unavailable_page(q), DONE;
    if (rc > 0 || !sk_flow_get(*f, "flavour") || strcmp(sk_flow_get(*f, "flavour"), "platform") ||
        !sk_flow_get(*f, "stage") || strcmp(sk_flow_get(*f, "stage"), "login"))
        return sk_login_error_page(q, NULL, HTTP_BAD_REQUEST, "Sign-in expired",
                                   "This sign-in request has expired or was already used. Return to the "
                                   "application and try again."), DONE;
    if (post && !sk_flow_form_ok(q, *f))
        return sk_login_error_page(q, NULL, HTTP_FORBIDDEN, "Request refused",
                                   "The form was not sent from this sign-in page, or it expired. Go back, reload "
                                   "the page and try again."), DONE;
    return OK;
}

static apr_table_t *form_vars(sk_req *q, sk_flow *f, const char *action, const char *error)
{
    apr_table_t *v = apr_table_make(q->p, 8);
    apr_table_setn(v, "flow", f->handle);
    apr_table_setn(v, "csrf", sk_flow_csrf(q, f));
    apr_table_setn(v, "action", action);
    apr_table_setn(v, "back", sk_authz_page_url(q, NULL, "/login", f->handle));
    if (error)
        apr_table_setn(v, "error", apr_pstrcat(q->p, "<p class=\"error\" role=\"alert\">",
                                               sk_html_escape(q->p, error), "</p>\n", NULL));
    return v;
}

static const char EMAIL_FORM[] =
    "{{&error}}"
    "<form method=\"post\" action=\"{{action}}\">\n"
    "<input type=\"hidden\" name=\"flow\" value=\"{{flow}}\">\n"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
    "<label for=\"email\">Email</label>\n"
    "<input type=\"email\" id=\"email\" name=\"email\" value=\"{{email}}\" autocomplete=\"username\" required "
    "autofocus maxlength=\"320\">\n"
    "<button type=\"submit\">Continue</button>\n"
    "</form>\n";

static int render_email(sk_req *q, sk_flow *f, int status, const char *email, const char *error)
{
    apr_table_t *v = form_vars(q, f, "login", error);
    apr_table_setn(v, "email", email ? email : "");
    return sk_html_page(q, status, NULL, "Sign in", sk_html_render(q->p, EMAIL_FORM, v));
}

static const char CHOICE_FORM[] =
    "{{&error}}"
    "<p>{{email}} has an account in several organisations. Choose one to continue:</p>\n"
    "<form method=\"post\" action=\"{{action}}\">\n"
    "<input type=\"hidden\" name=\"flow\" value=\"{{flow}}\">\n"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
    "<ul class=\"choices\">\n{{&choices}}</ul>\n"
    "</form>\n"
    "<p class=\"muted\"><a href=\"{{back}}\">Use another account</a></p>\n";

static int render_choice(sk_req *q, sk_flow *f, json_t *tenants, const char *action, int status, const char *error)
{
    apr_table_t *v = form_vars(q, f, action, error);
    const char *items = "";
    json_t *t;
    size_t i;
    json_array_foreach(tenants, i, t)
        items = apr_pstrcat(q->p, items, "<li><button type=\"submit\" name=\"tenant\" value=\"",
                            sk_html_escape(q->p, sk_jstr(t, "slug")), "\">", sk_html_escape(q->p, sk_jstr(t, "name")),
                            "</button></li>\n", NULL);
    apr_table_setn(v, "email", f->email);
    apr_table_setn(v, "choices", items);
    return sk_html_page(q, status, NULL, "Choose your organisation", sk_html_render(q->p, CHOICE_FORM, v));
}

static const char PASSWORD_FORM[] =
    "{{&error}}"
    "<form method=\"post\" action=\"{{action}}\">\n"
    "<input type=\"hidden\" name=\"flow\" value=\"{{flow}}\">\n"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
    "<label for=\"email\">Email</label>\n"
    "<input type=\"email\" id=\"email\" name=\"email\" value=\"{{email}}\" autocomplete=\"username\" readonly>\n"
    "<label for=\"password\">Password</label>\n"
    "<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required "
    "autofocus maxlength=\"1024\">\n"
    "<button type=\"submit\">Sign in</button>\n"
    "</form>\n"
    "<p class=\"muted\"><a href=\"{{back}}\">Use another account</a></p>\n";

static int render_password(sk_req *q, sk_flow *f, const char *action, int status, const char *error)
{
    apr_table_t *v = form_vars(q, f, action, error);
    apr_table_setn(v, "email", f->email);
    return sk_html_page(q, status, NULL, "Sign in", sk_html_render(q->p, PASSWORD_FORM, v));
}

/* The tenants where the email has an account. */
static int tenants_of(sk_req *q, const char *email, json_t **out)
{
    sk_db_status st = SK_QJ(sk_req_db(q), "email_tenants", out, email);
    sk_pool_json(q->p, *out);
    return st == SK_DB_OK && json_is_array(*out) ? 0 : -1;
}

static int to_tenant(sk_req *q, sk_flow *f, json_t *t)
{
    if (sk_flow_update(q, f, sk_jstr(t, "id"), NULL, f->email, NULL) != 0)
        return unavailable_page(q);
    apr_table_setn(q->r->headers_out, "Location", sk_authz_page_url(q, sk_jstr(t, "slug"), "/login", f->handle));
    apr_table_setn(q->r->err_headers_out, "Cache-Control", "no-store");
    q->r->status = HTTP_SEE_OTHER;
    ap_set_content_length(q->r, 0);
    return OK;
}

int sk_login_identify_page(sk_req *q)
{
    sk_flow *f;
    if (platform_flow(q, sk_req_query(q, "flow"), 0, &f) != OK)
        return OK;
    return render_email(q, f, HTTP_OK, f->email ? f->email : sk_flow_get(f, "login_hint"), NULL);
}

int sk_login_identify(sk_req *q)
{
    const char *email;
    json_t *tenants = NULL;
    sk_flow *f;

    if (sk_req_read_form(q, sk_login_form_error) != OK)
        return OK;
    if (platform_flow(q, apr_table_get(q->form, "flow"), 1, &f) != OK)
        return OK;
    email = apr_table_get(q->form, "email");
    if (!email || strlen(email) > 320 || !sk_valid_email(email))
        return render_email(q, f, HTTP_BAD_REQUEST, email, "Enter a valid email address.");
    if (tenants_of(q, email, &tenants) != 0)
        return unavailable_page(q);
    f->email = apr_pstrdup(q->p, email);
    if (json_array_size(tenants) == 1)
        return to_tenant(q, f, json_array_get(tenants, 0));
    if (sk_flow_update(q, f, NULL, NULL, f->email, NULL) != 0)
        return unavailable_page(q);
    if (json_array_size(tenants) == 0)
        return render_password(q, f, "login/password", HTTP_OK, NULL);
    return render_choice(q, f, tenants, "login/tenant", HTTP_OK, NULL);
}

int sk_login_choose_tenant(sk_req *q)
{
    const char *slug;
    json_t *tenants = NULL, *t;
    sk_flow *f;
    size_t i;

    if (sk_req_read_form(q, sk_login_form_error) != OK)
        return OK;
    if (platform_flow(q, apr_table_get(q->form, "flow"), 1, &f) != OK)
        return OK;
    if (!f->email)
        return render_email(q, f, HTTP_BAD_REQUEST, NULL, "Enter your email address.");
    if (tenants_of(q, f->email, &tenants) != 0)
        return unavailable_page(q);
    slug = apr_table_get(q->form, "tenant");
    json_array_foreach(tenants, i, t)
        if (slug && !strcmp(slug, sk_jstr(t, "slug")))
            return to_tenant(q, f, t);
    if (json_array_size(tenants) == 0)
        return render_password(q, f, "password", HTTP_OK, NULL);
    return render_choice(q, f, tenants, "tenant", HTTP_BAD_REQUEST, "Choose one of the organisations below.");
}

static int setting(int v, int def)
{
    return v == SK_UNSET ? def : v;
}

int sk_login_unknown_password(sk_req *q)
{
    const char *password, *ip_key, *acct_key;
    char *l, *c;
    sk_flow *f;
    sk_db *db;
    int wait_ip, wait_acct, window;

    if (sk_req_read_form(q, sk_login_form_error) != OK)
        return OK;
    if (platform_flow(q, apr_table_get(q->form, "flow"), 1, &f) != OK)
        return OK;
    if (!f->email || f->tenant_id)
        return render_email(q, f, HTTP_BAD_REQUEST, f->email, "Enter your email address.");
    password = apr_table_get(q->form, "password");
    if (!password || !*password || strlen(password) > 1024)
        return render_password(q, f, "password", HTTP_BAD_REQUEST, "Enter your password.");

    db = sk_req_db(q);
    l = apr_pstrdup(q->p, f->email);
    for (c = l; *c; c++)
        *c = (char)apr_tolower((unsigned char)*c);
    window = setting(q->cfg->throttle_window, 900);
    ip_key = apr_pstrcat(q->p, "user-ip:", q->ip, NULL);
    acct_key = apr_pstrcat(q->p, "user-acct:*:", l, NULL);
    wait_ip = sk_throttle_wait(db, ip_key, setting(q->cfg->throttle_ip, 20), window);
    wait_acct = sk_throttle_wait(db, acct_key, setting(q->cfg->throttle_account, 5), window);
    if (wait_ip < 0 || wait_acct < 0)
        return unavailable_page(q);
    if (wait_ip > 0 || wait_acct > 0) {
        sk_login_audit(q, "denied", f->email, NULL, NULL, "throttled", NULL);
        apr_table_setn(q->r->err_headers_out, "Retry-After", apr_itoa(q->p, wait_ip > wait_acct ? wait_ip : wait_acct));
        return render_password(q, f, "password", HTTP_TOO_MANY_REQUESTS,
                               "Too many failed sign-in attempts. Try again later.");
    }
    /* the same work as for a known account, and the same answer */
    sk_password_verify(NULL, password);
    sk_throttle_fail(db, ip_key, window);
    sk_throttle_fail(db, acct_key, window);
    sk_login_audit(q, "failure", f->email, NULL, NULL, "invalid_credentials", NULL);
    return render_password(q, f, "password", HTTP_UNAUTHORIZED, "Invalid email or password.");
}
