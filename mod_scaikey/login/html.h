/* Server-rendered pages of the hosted login: escaping, a tiny template language, the tenant's
 * branding and the headers every page carries.
 *
 * Templates: {{name}} is replaced by the HTML-escaped value of name, {{&name}} by the value as it
 * is (for fragments this module built itself from escaped parts). An unknown name renders as
 * nothing. */
#ifndef SK_LOGIN_HTML_H
#define SK_LOGIN_HTML_H

#include "http/request.h"

/* The look of a tenant's pages: only values that passed the checks below. */
typedef struct sk_brand {
    const char *name;        /* shown as text (escaped) */
    const char *logo_url;    /* an https URL, or NULL */
    const char *color;       /* #rgb .. #rrggbbaa */
} sk_brand;

#define SK_HTML_DEFAULT_COLOR "#2563eb"
#define SK_HTML_DEFAULT_NAME  "ScaiKey"

/* &, <, >, " and ' as character references; NULL as "". */
const char *sk_html_escape(apr_pool_t *p, const char *s);

/* ^#[0-9a-fA-F]{3,8}$ */
int sk_html_valid_color(const char *s);
/* https://host... without quotes, spaces, angle brackets or control characters, at most 2000 bytes */
int sk_html_valid_logo(const char *s);

/* Branding from a tenant's branding object (name, logo_url, primary_color); what is missing or
 * does not pass the checks falls back to fallback_name and the defaults. */
void sk_html_brand(json_t *branding, const char *fallback_name, sk_brand *out);

/* Renders tmpl with the values of vars (see above). */
char *sk_html_render(apr_pool_t *p, const char *tmpl, apr_table_t *vars);

/* Sends a whole page: the layout with the brand, title and content (an HTML fragment), as
 * text/html with no-store, X-Frame-Options DENY and the content security policy. Returns OK. */
int sk_html_page(sk_req *q, int status, const sk_brand *b, const char *title, const char *content);

/* A page with a heading and one message (escaped here). */
int sk_html_message(sk_req *q, int status, const sk_brand *b, const char *title, const char *message);

/* After a form was posted, the way back to the application: a page that moves on at once
 * (meta refresh) with a link to follow by hand. The content security policy's form-action
 * 'self' also governs redirects that answer a form, so a 302 to another origin would be
 * blocked by the browser. */
int sk_html_continue(sk_req *q, const sk_brand *b, const char *url);

#endif
