/* A tenant's password page: GET and POST /api/v1/auth/tenants/{slug}/oauth/login?flow=...
 *
 * Sign-in failures are throttled per account ("user-acct:<tenant>:<email>") and per client address
 * ("user-ip:<ip>") like the admin login; an unknown account is verified against a dummy hash so
 * the time taken does not tell; every success and failure is audited (action user.login). */
#include "login/login.h"
#include "oauth/oauth.h"
#include "http/response.h"
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

#define BAD_CREDENTIALS "Invalid email or password."
#define MAX_EMAIL 320
#define MAX_PASSWORD 1024

static const char *lower(apr_pool_t *p, const char *s)
{
    char *l = apr_pstrdup(p, s), *c;
    for (c = l; *c; c++)
        *c = (char)apr_tolower((unsigned char)*c);
    return l;
}

int sk_login_error_page(sk_req *q, json_t *tenant, int status, const char *title, const char *message)
{
    sk_brand b;
    sk_html_brand(tenant ? json_object_get(tenant, "branding") : NULL, tenant ? sk_jstr(tenant, "name") : NULL, &b);
    return sk_html_message(q, status, &b, title, message);
}

static int expired_page(sk_req *q, json_t *tenant)
{
    return sk_login_error_page(q, tenant, HTTP_BAD_REQUEST, "Sign-in expired",
                               "This sign-in request has expired or was already used. Return to the "
                               "application and try again.");
}

static int forged_page(sk_req *q, json_t *tenant)
{
    return sk_login_error_page(q, tenant, HTTP_FORBIDDEN, "Request refused",
                               "The form was not sent from this sign-in page, or it expired. Go back, reload "
                               "the page and try again.");
}

static int unavailable_page(sk_req *q, json_t *tenant)
{
    return sk_login_error_page(q, tenant, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                               "Sign-in is not available right now. Please try again shortly.");
}

/* A form that cannot be read (sk_req_read_form): the error page, 413 for a body too large and
 * 400 otherwise. */
int sk_login_form_error(sk_req *q, int status, const char *error, const char *desc)
{
    return sk_login_error_page(q, NULL, status == HTTP_REQUEST_ENTITY_TOO_LARGE ? status : HTTP_BAD_REQUEST,
                               "Invalid request", desc);
}

void sk_login_audit_step(sk_req *q, const char *result, const char *email, json_t *user, const char *tenant_id,
                         json_t *details, const char *session_id)
{
    sk_audit *a = sk_req_audit(q, "user.login", result);
    a->actor_email = email;
    a->actor_type = "user";
    a->tenant_id = tenant_id;
    if (user) {
        a->actor_id = sk_jstr(user, "id");
        a->actor_email = sk_jstr(user, "email");
    }
    if (session_id) {
        a->resource_type = "session";
        a->resource_id = session_id;
    }
    a->details = sk_pool_json(q->p, details);
    if (q->db && sk_audit_write(q->db, a) != SK_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1041) "audit write failed for user.login: %s",
                      sk_db_error(q->db));
}

void sk_login_audit(sk_req *q, const char *result, const char *email, json_t *user, const char *tenant_id,
                    const char *reason, const char *session_id)
{
    sk_login_audit_step(q, result, email, user, tenant_id,
                        reason ? json_pack("{s:s,s:s}", "reason", reason, "method", "password")
                               : json_pack("{s:s}", "method", "password"),
                        session_id);
}

static const char LOGIN_FORM[] =
    "{{&error}}"
    "<form method=\"post\" action=\"login\">\n"
    "<input type=\"hidden\" name=\"flow\" value=\"{{flow}}\">\n"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
    "<label for=\"email\">Email</label>\n"
    "<input type=\"email\" id=\"email\" name=\"email\" value=\"{{email}}\" autocomplete=\"username\" "
    "required maxlength=\"320\"{{&readonly}}>\n"
    "<label for=\"password\">Password</label>\n"
    "<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required "
    "autofocus maxlength=\"1024\">\n"
    "<button type=\"submit\">Sign in</button>\n"
    "</form>\n"
    "{{&other}}";

int sk_login_render(sk_req *q, sk_flow *f, json_t *tenant, int status, const char *error)
{
    apr_table_t *v = apr_table_make(q->p, 8);
    int platform = sk_flow_get(f, "flavour") && !strcmp(sk_flow_get(f, "flavour"), "platform");
    const char *email = platform ? f->email : sk_flow_get(f, "login_hint");
    sk_brand b;

    sk_html_brand(json_object_get(tenant, "branding"), sk_jstr(tenant, "name"), &b);
    apr_table_setn(v, "flow", f->handle);
    apr_table_setn(v, "csrf", sk_flow_csrf(q, f));
    apr_table_setn(v, "email", email ? email : "");
    if (error)
        apr_table_setn(v, "error", apr_pstrcat(q->p, "<p class=\"error\" role=\"alert\">",
                                               sk_html_escape(q->p, error), "</p>\n", NULL));
    if (platform) {
        /* the platform's first page chose this account */
        apr_table_setn(v, "readonly", " readonly");
        apr_table_setn(v, "other", apr_pstrcat(q->p, "<p class=\"muted\"><a href=\"",
                                               sk_html_escape(q->p, sk_authz_page_url(q, NULL, "/login", f->handle)),
                                               "\">Use another account</a></p>\n", NULL));
    }
    return sk_html_page(q, status, &b, "Sign in", sk_html_render(q->p, LOGIN_FORM, v));
}

int sk_login_tenant_flow(sk_req *q, const char *handle, json_t **tenant, sk_flow **f)
{
    const char *slug = sk_req_param(q, "tenant_slug");
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    int rc;

    *tenant = NULL;
    *f = NULL;
    if (!db)
        return unavailable_page(q, NULL), DONE;
    st = sk_valid_slug(slug) ? SK_QJ(db, "login_tenant", tenant, slug) : SK_DB_NOTFOUND;
    if (st == SK_DB_NOTFOUND || st == SK_DB_INVALID)
        return sk_login_error_page(q, NULL, HTTP_NOT_FOUND, "Unknown organisation",
                                   "There is no sign-in page at this address."), DONE;
    if (st != SK_DB_OK)
        return unavailable_page(q, NULL), DONE;
    sk_pool_json(q->p, *tenant);
    if (!json_is_true(json_object_get(*tenant, "live")))
        return sk_login_error_page(q, *tenant, HTTP_FORBIDDEN, "Sign-in unavailable",
                                   "Sign-in to this organisation is currently disabled."), DONE;
    rc = sk_flow_load(q, handle, f);
    if (rc < 0)
        return unavailable_page(q, *tenant), DONE;
    /* a flow goes on only on the pages of the tenant it is bound to */
    if (rc > 0 || !(*f)->tenant_id || strcmp((*f)->tenant_id, sk_jstr(*tenant, "id")))
        return expired_page(q, *tenant), DONE;
    return OK;
}

int sk_login_page(sk_req *q)
{
    json_t *tenant;
    sk_flow *f;
    if (sk_login_tenant_flow(q, sk_req_query(q, "flow"), &tenant, &f) != OK)
        return OK;
    if (!sk_flow_get(f, "stage") || strcmp(sk_flow_get(f, "stage"), "login"))
        return expired_page(q, tenant);
    return sk_login_render(q, f, tenant, HTTP_OK, NULL);
}

static int throttle_setting(int v, int def)
{
    return v == SK_UNSET ? def : v;
}

int sk_login_submit(sk_req *q)
{
    const char *email, *password, *ip_key, *acct_key, *hash, *tenant_id, *sid = NULL;
    json_t *tenant, *row = NULL, *user;
    sk_flow *f;
    sk_authz az;
    sk_signin who = { 0 };
    sk_db *db;
    sk_db_status st;
    int wait_ip, wait_acct, ok, window, platform;
    long long auth_time = 0;

    if (sk_req_read_form(q, sk_login_form_error) != OK)
        return OK;
    if (sk_login_tenant_flow(q, apr_table_get(q->form, "flow"), &tenant, &f) != OK)
        return OK;
    if (!sk_flow_form_ok(q, f))
        return forged_page(q, tenant);
    if (!sk_flow_get(f, "stage") || strcmp(sk_flow_get(f, "stage"), "login"))
        return expired_page(q, tenant);
    /* the request is checked again before anyone signs in for it */
    if (sk_authz_from_flow(q, f, &az) != OK)
        return OK;
    sk_html_brand(json_object_get(tenant, "branding"), sk_jstr(tenant, "name"), &az.brand);

    platform = az.platform;
    tenant_id = sk_jstr(tenant, "id");
    email = platform ? f->email : apr_table_get(q->form, "email");
    password = apr_table_get(q->form, "password");
    if (!email || !*email || strlen(email) > MAX_EMAIL || !password || !*password || strlen(password) > MAX_PASSWORD)
        return sk_login_render(q, f, tenant, HTTP_BAD_REQUEST, "Enter your email and password.");
    if (!platform)
        json_object_set_new(f->data, "login_hint", json_string(email));   /* keeps what was typed */

    db = sk_req_db(q);
    window = throttle_setting(q->cfg->throttle_window, 900);
    ip_key = apr_pstrcat(q->p, "user-ip:", q->ip, NULL);
    acct_key = apr_pstrcat(q->p, "user-acct:", tenant_id, ":", lower(q->p, email), NULL);
    wait_ip = sk_throttle_wait(db, ip_key, throttle_setting(q->cfg->throttle_ip, 20), window);
    wait_acct = sk_throttle_wait(db, acct_key, throttle_setting(q->cfg->throttle_account, 5), window);
    if (wait_ip < 0 || wait_acct < 0)
        return unavailable_page(q, tenant);
    if (wait_ip > 0 || wait_acct > 0) {
        sk_login_audit(q, "denied", email, NULL, tenant_id, "throttled", NULL);
        apr_table_setn(q->r->err_headers_out, "Retry-After", apr_itoa(q->p, wait_ip > wait_acct ? wait_ip : wait_acct));
        return sk_login_render(q, f, tenant, HTTP_TOO_MANY_REQUESTS,
                               "Too many failed sign-in attempts. Try again later.");
    }

    st = SK_QJ(db, "login_user", &row, tenant_id, email);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND)
        return unavailable_page(q, tenant);
    sk_pool_json(q->p, row);
    hash = row ? sk_jstr(row, "password_hash") : NULL;
    /* one argon2id verification whether or not the account exists */
    ok = sk_password_verify(hash, password) && row;
    user = row ? json_object_get(row, "user") : NULL;
    if (!ok) {
        sk_throttle_fail(db, ip_key, window);
        sk_throttle_fail(db, acct_key, window);
        sk_login_audit(q, "failure", email, user, tenant_id, "invalid_credentials", NULL);
        return sk_login_render(q, f, tenant, HTTP_UNAUTHORIZED, BAD_CREDENTIALS);
    }
    if (!json_is_true(json_object_get(row, "live"))) {
        sk_login_audit(q, "denied", email, user, tenant_id, "account_disabled", NULL);
        return sk_login_error_page(q, tenant, HTTP_FORBIDDEN, "Account disabled",
                                   "This account is disabled. Contact your administrator.");
    }
    sk_throttle_reset(db, acct_key);
    if (sk_login_second_factor(q, f, tenant, row) != SK_LOGIN_CONTINUE)
        return OK;

    if (sk_db_begin(db) != SK_DB_OK)
        return unavailable_page(q, tenant);
    if (sk_sso_start(q, user, sk_jstr(row, "partner_id"), az.client_id, &sid, &auth_time) != 0 ||
        SK_Q(db, "user_logged_in", sk_jstr(user, "id")) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1042) "sign-in could not be recorded: %s",
                      sk_db_error(db));
        sk_db_rollback(db);
        return unavailable_page(q, tenant);
    }
    sk_login_audit(q, "success", email, user, tenant_id, NULL, sid);
    if (sk_db_commit(db) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1043) "sign-in could not be recorded: %s",
                      sk_db_error(db));
        return unavailable_page(q, tenant);
    }

    who.user = user;
    who.session_id = sid;
    who.auth_time = auth_time;
    who.tenant_slug = sk_jstr(tenant, "slug");
    return sk_authz_signed_in(q, &az, &who, 1);
}
