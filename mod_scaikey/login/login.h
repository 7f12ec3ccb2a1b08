/* Browser sign-in for the authorization endpoint: the pending request, the hosted pages and the
 * steps between them.
 *
 *   authorize (GET) --no usable SSO session--> login page --password--> [MFA] --> [consent] --> code
 *            \--SSO session----------------------------------------------------^
 *
 * The platform flavour starts with an email-first page that finds the user's tenant, then
 * continues on that tenant's pages. Every page after authorize works on a flow: the validated
 * authorization request kept server-side (one_time_codes, purpose 'flow', 10 minutes), named in
 * URLs and forms by a random handle of which only the digest is stored. */
#ifndef SK_LOGIN_LOGIN_H
#define SK_LOGIN_LOGIN_H

#include "http/request.h"
#include "login/html.h"

/* ---- flows (login/flow.c) ---- */

typedef struct sk_flow {
    const char *id;          /* one_time_codes.id */
    const char *handle;      /* what URLs and forms carry */
    const char *tenant_id;   /* the tenant whose pages go on with it (NULL: not known yet) */
    const char *user_id;     /* once signed in */
    const char *email;       /* platform flavour: the email typed on the first page */
    json_t *data;            /* the authorization request and the step reached (pool-owned) */
} sk_flow;

/* Stores a new flow (data is copied) and makes sure the browser carries its binding cookie.
 * 0, or -1 when the store failed. */
int sk_flow_create(sk_req *q, json_t *data, const char *tenant_id, const char *user_id, sk_flow **out);
/* 0 found, 1 unknown, finished or expired, -1 store failure. */
int sk_flow_load(sk_req *q, const char *handle, sk_flow **out);
/* The anti-forgery token of the flow, for its forms. */
const char *sk_flow_csrf(sk_req *q, const sk_flow *f);
/* 1 when a form posted for the flow carries its anti-forgery token and comes from the browser
 * that started it (binding cookie); compared in constant time. */
int sk_flow_form_ok(sk_req *q, const sk_flow *f);
/* Sets tenant, user and email (as given, NULL included) and merges patch into the data. 0 or -1. */
int sk_flow_update(sk_req *q, sk_flow *f, const char *tenant_id, const char *user_id, const char *email,
                   json_t *patch);
/* Ends the flow: 0, 1 when it had already ended (a second submission), -1 store failure. */
int sk_flow_finish(sk_req *q, sk_flow *f);
/* A string member of the flow's data. */
const char *sk_flow_get(const sk_flow *f, const char *key);

/* ---- the SSO session (login/sso.c) ---- */

/* The live SSO session named by the browser's cookie. 0 with *out = {"id","tenant_id",
 * "tenant_slug","auth_time","mfa_required","mfa_verified","user"}, 1 when there is none, -1 store
 * failure. */
int sk_sso_current(sk_req *q, json_t **out);
/* Restarts the idle timeout of a session in use. */
void sk_sso_touch(sk_req *q, const char *session_id);
/* Opens an SSO session for the user (ending the one the cookie named) inside the caller's
 * transaction; the cookie is set when the response goes out. 0 with *sid and *auth_time, or -1. */
int sk_sso_start(sk_req *q, json_t *user, const char *partner_id, const char *client_id, const char **sid,
                 long long *auth_time);
/* Ends the browser's SSO session (if any) and clears the cookie. 0, or -1 store failure. */
int sk_sso_end(sk_req *q, const char *reason, const char **ended_id, json_t **ended_user);

/* Cookies: production names carry the __Host- prefix and Secure; see docs/oauth-login.md. */
const char *sk_cookie_name(sk_req *q, const char *base);
const char *sk_cookie_get(sk_req *q, const char *name);
/* The value of the cookie name in the request; NULL when absent or sent more than once. */
const char *sk_cookie_read(request_rec *r, const char *name);
/* max_age < 0: a browser-session cookie; 0: delete it. */
void sk_cookie_set(sk_req *q, const char *name, const char *value, int max_age);

/* ---- the authorization request (oauth/authorize.c) ---- */

typedef struct sk_authz {
    int platform;            /* platform flavour: a GLOBAL application */
    const char *slug;        /* tenant flavour: the tenant of the URL */
    json_t *tenant;          /* tenant flavour: that tenant's row */
    json_t *client;          /* the application */
    const char *client_id, *redirect_uri, *scope, *state, *nonce, *resource, *login_hint;
    const char *code_challenge, *code_challenge_method, *prompt;
    long long max_age;       /* -1: none */
    sk_flow *flow;           /* NULL until the request had to be kept */
    sk_brand brand;
} sk_authz;

/* Who signed in. */
typedef struct sk_signin {
    json_t *user;            /* {"id","email","tenant_id","first_name",...} */
    const char *session_id;  /* the SSO session */
    long long auth_time;
    const char *tenant_slug; /* the user's tenant (consent is asked on its pages) */
} sk_signin;

/* The request a flow keeps, checked again (the client may have been changed meanwhile).
 * OK, or DONE after an error page. */
int sk_authz_from_flow(sk_req *q, sk_flow *f, sk_authz *az);
/* After a sign-in or with an SSO session: consent when it is needed, else the code. via_post: the
 * answer to a form (the way back is a page, not a redirect). Sends the response; returns OK. */
int sk_authz_signed_in(sk_req *q, sk_authz *az, const sk_signin *who, int via_post);
/* Issues the code and sends the user back to the client (no consent check). Returns OK. */
int sk_authz_issue(sk_req *q, sk_authz *az, const sk_signin *who, int via_post);
/* The error goes back to the client's redirect_uri (RFC 6749 §4.1.2.1). Returns OK. */
int sk_authz_error(sk_req *q, sk_authz *az, int via_post, const char *error, const char *description);
/* Absolute URL of a page: issuer of the flavour + suffix ("/oauth/login", ...). */
const char *sk_authz_page_url(sk_req *q, const char *slug, const char *suffix, const char *handle);
/* Space-separated scopes as a JSON array (new reference). */
json_t *sk_scope_list(apr_pool_t *p, const char *scope);

/* ---- pages (login/pages.c, login/platform.c, login/consent.c) ---- */

/* The tenant's password page for a flow (email prefilled; read-only when the platform's first
 * page chose it). */
int sk_login_render(sk_req *q, sk_flow *f, json_t *tenant, int status, const char *error);
/* The tenant of the URL ({tenant_slug}) and a flow bound to it. OK, or DONE after an error page. */
int sk_login_tenant_flow(sk_req *q, const char *handle, json_t **tenant, sk_flow **f);
/* Plain error page in a tenant's branding (or the default one). */
int sk_login_error_page(sk_req *q, json_t *tenant, int status, const char *title, const char *message);
/* The answer to a form that cannot be read, for sk_req_read_form: the error page (413 or 400). */
int sk_login_form_error(sk_req *q, int status, const char *error, const char *desc);

/* Called after a correct password: SK_LOGIN_CONTINUE when no further factor is needed; otherwise
 * the page it sent (the MFA step of login/mfa.c, or an error page). */
#define SK_LOGIN_CONTINUE 0
int sk_login_second_factor(sk_req *q, sk_flow *f, json_t *tenant, json_t *account);

/* The audit record of a sign-in attempt (action user.login): the actor is user when known, else
 * the email typed; details (taken) describe the step; session_id is the session it opened. A
 * failed write is logged and the page goes on. */
void sk_login_audit_step(sk_req *q, const char *result, const char *email, json_t *user, const char *tenant_id,
                         json_t *details, const char *session_id);
/* The same for the password step: details {"method": "password"} and the reason, if any. */
void sk_login_audit(sk_req *q, const char *result, const char *email, json_t *user, const char *tenant_id,
                    const char *reason, const char *session_id);

/* Handlers (routes_login.c) */
int sk_oauth_authorize(sk_req *q);
int sk_oauth_logout(sk_req *q);
int sk_login_page(sk_req *q);
int sk_login_submit(sk_req *q);
int sk_login_identify_page(sk_req *q);
int sk_login_identify(sk_req *q);
int sk_login_choose_tenant(sk_req *q);
int sk_login_unknown_password(sk_req *q);
int sk_consent_page(sk_req *q);
int sk_consent_submit(sk_req *q);
int sk_login_mfa_page(sk_req *q);
int sk_login_mfa_submit(sk_req *q);
int sk_login_mfa_email(sk_req *q);

#endif
