/* The second sign-in step of the hosted pages, after a correct password and before the SSO
 * session opens:
 *
 *   GET  /api/v1/auth/tenants/{slug}/oauth/login/mfa?flow=...   the page again
 *   POST /api/v1/auth/tenants/{slug}/oauth/login/mfa            flow, csrf, code
 *   POST /api/v1/auth/tenants/{slug}/oauth/login/mfa/email      flow, csrf: mail a code
 *
 * A second factor is required of a user who enrolled one (users.mfa_enabled) or whose tenant
 * demands it (settings.mfa_required = true). The page takes whatever the user can answer with: a
 * TOTP code, a backup code or, when email is one of the user's methods (enrolled, or the fallback
 * of a user who must use a second factor but enrolled nothing), a code mailed on request for this
 * sign-in only. Five wrong codes end the sign-in; after the right one the flow goes on exactly as
 * after the password, with the SSO session marked MFA-verified. */
#include "login/login.h"
#include "api/users.h"
#include "http/response.h"
#include "core/throttle.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define MAX_ATTEMPTS 5
#define MAX_CODE     64

static int unavailable(sk_req *q, json_t *tenant)
{
    return sk_login_error_page(q, tenant, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                               "Sign-in is not available right now. Please try again shortly.");
}

static int expired(sk_req *q, json_t *tenant)
{
    return sk_login_error_page(q, tenant, HTTP_BAD_REQUEST, "Sign-in expired",
                               "This sign-in request has expired or was already used. Return to the "
                               "application and try again.");
}

static const char MFA_FORM[] =
    "{{&notice}}{{&error}}"
    "<p>{{prompt}}</p>\n"
    "<form method=\"post\" action=\"{{action}}\">\n"
    "<input type=\"hidden\" name=\"flow\" value=\"{{flow}}\">\n"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
    "<label for=\"code\">Verification code</label>\n"
    "<input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
    "required autofocus maxlength=\"64\">\n"
    "<button type=\"submit\">Verify</button>\n"
    "</form>\n"
    "{{&email}}";

static const char EMAIL_FORM[] =
    "<form method=\"post\" action=\"{{action}}\">\n"
    "<input type=\"hidden\" name=\"flow\" value=\"{{flow}}\">\n"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
    "<button type=\"submit\" class=\"secondary\" name=\"send\" value=\"email\">Send me a code by email</button>\n"
    "</form>\n";

/* the page of the step: the code field, and the email button when email is a method */
static int render(sk_req *q, sk_flow *f, json_t *tenant, json_t *methods, int status, const char *notice,
                  const char *error)
{
    apr_table_t *v = apr_table_make(q->p, 8);
    const char *slug = sk_jstr(tenant, "slug"), *prompt;
    int totp = sk_jarray_has(methods, "totp"), email = sk_jarray_has(methods, "email");
    sk_brand b;

    sk_html_brand(json_object_get(tenant, "branding"), sk_jstr(tenant, "name"), &b);
    prompt = totp && email ? "Enter the code from your authenticator app, a backup code, or a code we email you."
           : totp          ? "Enter the code from your authenticator app, or a backup code."
           : email         ? "We can email you a code to confirm it is you. Enter it below."
                           : "Enter a backup code.";
    apr_table_setn(v, "prompt", prompt);
    apr_table_setn(v, "flow", f->handle);
    apr_table_setn(v, "csrf", sk_flow_csrf(q, f));
    apr_table_setn(v, "action", sk_authz_page_url(q, slug, "/login/mfa", NULL));
    if (notice)
        apr_table_setn(v, "notice", apr_pstrcat(q->p, "<p class=\"muted\" role=\"status\">",
                                                sk_html_escape(q->p, notice), "</p>\n", NULL));
    if (error)
        apr_table_setn(v, "error", apr_pstrcat(q->p, "<p class=\"error\" role=\"alert\">",
                                               sk_html_escape(q->p, error), "</p>\n", NULL));
    if (email) {
        apr_table_t *e = apr_table_make(q->p, 4);
        apr_table_setn(e, "action", sk_authz_page_url(q, slug, "/login/mfa/email", NULL));
        apr_table_setn(e, "flow", f->handle);
        apr_table_setn(e, "csrf", sk_flow_csrf(q, f));
        apr_table_setn(v, "email", sk_html_render(q->p, EMAIL_FORM, e));
    }
    return sk_html_page(q, status, &b, "Two-step verification", sk_html_render(q->p, MFA_FORM, v));
}

int sk_login_second_factor(sk_req *q, sk_flow *f, json_t *tenant, json_t *account)
{
    json_t *user = json_object_get(account, "user"), *mu, *methods;
    const char *tenant_id = sk_jstr(tenant, "id");
    sk_db *db = sk_req_db(q);
    int rc;

    if (!json_is_true(json_object_get(account, "mfa_required")))
        return SK_LOGIN_CONTINUE;
    if (!db || !(mu = sk_mfa_email_user(q, db, sk_jstr(user, "id"), &rc)))
        return unavailable(q, tenant), DONE;
    methods = json_object_get(mu, "methods");
    if (json_array_size(methods) == 0) {
        /* nothing to answer with (a method the hosted pages do not offer) */
        sk_login_audit(q, "denied", sk_jstr(user, "email"), user, tenant_id, "mfa_unavailable", NULL);
        return sk_login_error_page(q, tenant, HTTP_FORBIDDEN, "MFA required",
                                   "Multi-factor authentication is required for this account, but none of its "
                                   "methods is available on this sign-in page. Contact your administrator."),
               DONE;
    }
    if (sk_flow_update(q, f, f->tenant_id, sk_jstr(user, "id"), f->email,
                       sk_pool_json(q->p, json_pack("{s:s,s:s,s:i}", "stage", "mfa", "mfa_email", sk_jstr(user, "email"),
                                                    "mfa_attempts", 0))) != 0)
        return unavailable(q, tenant), DONE;
    sk_login_audit_step(q, "success", NULL, user, tenant_id,
                        json_pack("{s:s,s:s,s:b}", "method", "password", "step", "password", "mfa_required", 1),
                        NULL);
    return render(q, f, tenant, methods, HTTP_OK, NULL, NULL), DONE;
}

/* the flow at its MFA step and its user's methods; OK, or DONE after a page */
static int mfa_flow(sk_req *q, const char *handle, int post, json_t **tenant, sk_flow **f, json_t **mu)
{
    int rc;
    if (sk_login_tenant_flow(q, handle, tenant, f) != OK)
        return DONE;
    if (post && !sk_flow_form_ok(q, *f))
        return sk_login_error_page(q, *tenant, HTTP_FORBIDDEN, "Request refused",
                                   "The form was not sent from this sign-in page, or it expired. Go back, reload "
                                   "the page and try again."), DONE;
    if (!sk_flow_get(*f, "stage") || strcmp(sk_flow_get(*f, "stage"), "mfa") || !(*f)->user_id)
        return expired(q, *tenant), DONE;
    if (!(*mu = sk_mfa_email_user(q, sk_req_db(q), (*f)->user_id, &rc)))
        return (rc > 0 ? expired(q, *tenant) : unavailable(q, *tenant)), DONE;
    if (!json_is_true(json_object_get(*mu, "live")))
        return sk_login_error_page(q, *tenant, HTTP_FORBIDDEN, "Account disabled",
                                   "This account is disabled. Contact your administrator."), DONE;
    return OK;
}

int sk_login_mfa_page(sk_req *q)
{
    json_t *tenant, *mu;
    sk_flow *f;
    if (mfa_flow(q, sk_req_query(q, "flow"), 0, &tenant, &f, &mu) != OK)
        return OK;
    return render(q, f, tenant, json_object_get(mu, "methods"), HTTP_OK, NULL, NULL);
}

int sk_login_mfa_email(sk_req *q)
{
    json_t *tenant, *mu, *methods;
    sk_flow *f;
    int wait = 0;

    if (sk_req_read_form(q, sk_login_form_error) != OK)
        return OK;
    if (mfa_flow(q, apr_table_get(q->form, "flow"), 1, &tenant, &f, &mu) != OK)
        return OK;
    methods = json_object_get(mu, "methods");
    if (!sk_jarray_has(methods, "email"))
        return render(q, f, tenant, methods, HTTP_BAD_REQUEST, NULL, "Email verification is not available.");
    switch (sk_mfa_email_send(q, sk_req_db(q), mu, apr_pstrcat(q->p, "flow:", f->id, NULL), &wait)) {
    case SK_MFA_MAIL_SENT:
        return render(q, f, tenant, methods, HTTP_OK,
                      apr_psprintf(q->p, "We sent a code to your email address. It is valid for %d minutes.",
                                   SK_MFA_EMAIL_TTL / 60), NULL);
    case SK_MFA_MAIL_THROTTLED:
        apr_table_setn(q->r->err_headers_out, "Retry-After", apr_itoa(q->p, wait > 0 ? wait : 1));
        return render(q, f, tenant, methods, HTTP_TOO_MANY_REQUESTS, NULL,
                      "Too many codes were sent. Try again later.");
    default:
        return render(q, f, tenant, methods, HTTP_SERVICE_UNAVAILABLE, NULL,
                      "The code could not be sent. Please try again shortly.");
    }
}

/* the code against each method the user has: 1 right (*method set), 0 wrong, -1 failure */
static int check_code(sk_req *q, sk_flow *f, json_t *methods, const char *code, const char **method)
{
    sk_db *db = sk_req_db(q);
    int six = strlen(code) == 6 && strspn(code, "0123456789") == 6, rc;
    if (six && sk_jarray_has(methods, "totp") && (rc = sk_mfa_totp_check(q, db, f->user_id, code)) != 0)
        return *method = "totp", rc;
    if (six && sk_jarray_has(methods, "email") &&
        (rc = sk_mfa_email_check(q, db, f->user_id, apr_pstrcat(q->p, "flow:", f->id, NULL), code)) != 0)
        return *method = "email", rc;
    if (!six && sk_jarray_has(methods, "backup_codes") && (rc = sk_mfa_backup_use(q, db, f->user_id, code)) != 0)
        return *method = "backup_code", rc;
    return 0;
}

int sk_login_mfa_submit(sk_req *q)
{
    json_t *tenant, *mu, *methods, *row = NULL, *user;
    const char *code, *method = NULL, *sid = NULL, *updated = NULL, *tenant_id, *ip_key, *count = NULL;
    sk_flow *f;
    sk_authz az;
    sk_signin who = { 0 };
    sk_db *db;
    sk_db_status st;
    long long auth_time = 0;
    int attempts, rc, window = q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window, wait;

    if (sk_req_read_form(q, sk_login_form_error) != OK)
        return OK;
    if (mfa_flow(q, apr_table_get(q->form, "flow"), 1, &tenant, &f, &mu) != OK)
        return OK;
    if (sk_authz_from_flow(q, f, &az) != OK)
        return OK;
    sk_html_brand(json_object_get(tenant, "branding"), sk_jstr(tenant, "name"), &az.brand);
    db = sk_req_db(q);
    tenant_id = sk_jstr(tenant, "id");
    methods = json_object_get(mu, "methods");
    code = apr_table_get(q->form, "code");
    if (!code || !*code || strlen(code) > MAX_CODE)
        return render(q, f, tenant, methods, HTTP_BAD_REQUEST, NULL, "Enter the verification code.");

    /* wrong codes from many flows still count against one client address */
    ip_key = apr_pstrcat(q->p, "user-ip:", q->ip, NULL);
    wait = sk_throttle_wait(db, ip_key, q->cfg->throttle_ip == SK_UNSET ? 20 : q->cfg->throttle_ip, window);
    if (wait < 0)
        return unavailable(q, tenant);
    if (wait > 0) {
        apr_table_setn(q->r->err_headers_out, "Retry-After", apr_itoa(q->p, wait));
        return render(q, f, tenant, methods, HTTP_TOO_MANY_REQUESTS, NULL,
                      "Too many failed attempts. Try again later.");
    }
    /* every code given counts, in the store and under the flow's row lock, so that codes sent
     * at once count one each; the fifth wrong one ends the sign-in, and past it none is tried */
    if ((st = SK_QV(db, "flow_mfa_attempt", &count, f->id, apr_itoa(q->p, MAX_ATTEMPTS))) == SK_DB_NOTFOUND)
        return expired(q, tenant);
    if (st != SK_DB_OK || (attempts = atoi(count)) < 1)
        return unavailable(q, tenant);
    if ((rc = check_code(q, f, methods, code, &method)) < 0)
        return unavailable(q, tenant);
    if (!rc) {
        sk_throttle_fail(db, ip_key, window);
        sk_login_audit_step(q, "failure", NULL, mu, tenant_id,
                            json_pack("{s:s,s:s,s:i}", "reason", "invalid_mfa_code", "step", "mfa",
                                      "attempts_left", MAX_ATTEMPTS - attempts),
                            NULL);
        if (attempts >= MAX_ATTEMPTS) {
            sk_flow_finish(q, f);
            return sk_login_error_page(q, tenant, HTTP_UNAUTHORIZED, "Sign-in stopped",
                                       "Too many wrong codes. Return to the application and sign in again.");
        }
        return render(q, f, tenant, methods, HTTP_UNAUTHORIZED, NULL, "Invalid code. Try again.");
    }

    /* the account as the password step saw it, found again */
    if (SK_QJ(db, "login_user", &row, tenant_id, sk_flow_get(f, "mfa_email")) != SK_DB_OK)
        return expired(q, tenant);
    sk_pool_json(q->p, row);
    user = json_object_get(row, "user");
    if (!sk_jstr(user, "id") || strcmp(sk_jstr(user, "id"), f->user_id) || !json_is_true(json_object_get(row, "live")))
        return expired(q, tenant);
    if (sk_db_begin(db) != SK_DB_OK)
        return unavailable(q, tenant);
    /* the step is left in the same transaction: a second submission finds the sign-in done */
    if ((st = SK_QV(db, "flow_mfa_done", &updated, f->id)) == SK_DB_NOTFOUND) {
        sk_db_rollback(db);
        return expired(q, tenant);
    }
    if (st != SK_DB_OK || sk_sso_start(q, user, sk_jstr(row, "partner_id"), az.client_id, &sid, &auth_time) != 0 ||
        SK_QV(db, "sso_mfa_verified", &updated, strcmp(method, "backup_code") ? "[\"pwd\",\"otp\"]"
                                                                               : "[\"pwd\",\"backup_code\"]",
              sid) != SK_DB_OK ||
        SK_Q(db, "user_logged_in", sk_jstr(user, "id")) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1072) "sign-in could not be recorded: %s",
                      sk_db_error(db));
        sk_db_rollback(db);
        return unavailable(q, tenant);
    }
    sk_login_audit_step(q, "success", NULL, user, tenant_id,
                        json_pack("{s:s,s:s}", "method", method, "step", "mfa"), sid);
    if (sk_db_commit(db) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1073) "sign-in could not be recorded: %s",
                      sk_db_error(db));
        return unavailable(q, tenant);
    }
    json_object_set_new(f->data, "stage", json_string("mfa_done"));
    who.user = user;
    who.session_id = sid;
    who.auth_time = auth_time;
    who.tenant_slug = sk_jstr(tenant, "slug");
    return sk_authz_signed_in(q, &az, &who, 1);
}
