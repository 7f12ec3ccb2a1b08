#include "login/html.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define CSP "default-src 'none'; style-src 'unsafe-inline'; img-src https:; form-action 'self'"
#define MAX_LOGO_URL 2000
#define MAX_NAME 200

const char *sk_html_escape(apr_pool_t *p, const char *s)
{
    apr_size_t n = 0;
    const char *c;
    char *out, *o;
    if (!s)
        return "";
    for (c = s; *c; c++)
        n += (*c == '&') ? 5 : (*c == '<' || *c == '>') ? 4 : (*c == '"' || *c == '\'') ? 5 : 1;
    o = out = apr_palloc(p, n + 1);
    for (c = s; *c; c++) {
        switch (*c) {
        case '&':  memcpy(o, "&amp;", 5); o += 5; break;
        case '<':  memcpy(o, "&lt;", 4); o += 4; break;
        case '>':  memcpy(o, "&gt;", 4); o += 4; break;
        case '"':  memcpy(o, "&#34;", 5); o += 5; break;
        case '\'': memcpy(o, "&#39;", 5); o += 5; break;
        default:   *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

int sk_html_valid_color(const char *s)
{
    apr_size_t n;
    const char *c;
    if (!s || s[0] != '#')
        return 0;
    n = strlen(s + 1);
    if (n < 3 || n > 8)
        return 0;
    for (c = s + 1; *c; c++)
        if (!apr_isxdigit(*c))
            return 0;
    return 1;
}

int sk_html_valid_logo(const char *s)
{
    const char *c;
    if (!s || strncasecmp(s, "https://", 8) || !s[8] || s[8] == '/' || strlen(s) > MAX_LOGO_URL)
        return 0;
    for (c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '"' || *c == '\'' || *c == '<' || *c == '>' ||
            *c == '\\' || *c == '`')
            return 0;
    return 1;
}

void sk_html_brand(json_t *branding, const char *fallback_name, sk_brand *out)
{
    const char *name = json_string_value(json_object_get(branding, "name"));
    const char *logo = json_string_value(json_object_get(branding, "logo_url"));
    const char *color = json_string_value(json_object_get(branding, "primary_color"));
    out->name = (name && *name && strlen(name) <= MAX_NAME) ? name
              : (fallback_name && *fallback_name) ? fallback_name : SK_HTML_DEFAULT_NAME;
    out->logo_url = sk_html_valid_logo(logo) ? logo : NULL;
    out->color = sk_html_valid_color(color) ? color : SK_HTML_DEFAULT_COLOR;
}

char *sk_html_render(apr_pool_t *p, const char *tmpl, apr_table_t *vars)
{
    struct iovec parts[128];
    int n = 0;
    const char *c = tmpl, *open;
    char *out = "";

    while ((open = strstr(c, "{{")) != NULL) {
        const char *close = strstr(open + 2, "}}"), *name, *v;
        int raw;
        if (!close)
            break;
        if (n >= 126) {
            /* flush what is gathered so far */
            out = apr_pstrcat(p, out, apr_pstrcatv(p, parts, n, NULL), NULL);
            n = 0;
        }
        parts[n].iov_base = (void *)c;
        parts[n++].iov_len = (apr_size_t)(open - c);
        raw = open[2] == '&';
        name = apr_pstrndup(p, open + 2 + raw, (apr_size_t)(close - open - 2 - raw));
        v = vars ? apr_table_get(vars, name) : NULL;
        if (!raw)
            v = sk_html_escape(p, v);
        else if (!v)
            v = "";
        parts[n].iov_base = (void *)v;
        parts[n++].iov_len = strlen(v);
        c = close + 2;
    }
    parts[n].iov_base = (void *)c;
    parts[n++].iov_len = strlen(c);
    return apr_pstrcat(p, out, apr_pstrcatv(p, parts, n, NULL), NULL);
}

static const char LAYOUT[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"referrer\" content=\"no-referrer\">\n"
    "{{&head}}"
    "<title>{{title}} - {{brand}}</title>\n"
    "<style>\n"
    "body{margin:0;background:#f3f4f6;color:#111827;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",sans-serif}\n"
    "main{max-width:400px;margin:8vh auto;background:#fff;padding:32px;border-radius:10px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.15)}\n"
    ".brand{display:flex;align-items:center;gap:12px;margin-bottom:16px;font-weight:600}\n"
    ".brand img{max-height:40px;max-width:160px}\n"
    "h1{font-size:1.35em;margin:0 0 16px}\n"
    "label{display:block;margin:14px 0 4px;font-weight:500}\n"
    "input[type=email],input[type=password],input[type=text]{width:100%;box-sizing:border-box;"
    "padding:9px 10px;font-size:1em;border:1px solid #d1d5db;border-radius:6px}\n"
    "button,.button{display:inline-block;margin-top:18px;padding:10px 18px;font-size:1em;border:0;"
    "border-radius:6px;background:{{&color}};color:#fff;cursor:pointer;text-decoration:none}\n"
    "button.secondary{background:#6b7280}\n"
    ".error{color:#b91c1c;background:#fef2f2;border-radius:6px;padding:8px 10px}\n"
    ".muted{color:#6b7280;font-size:.9em}\n"
    "ul.scopes{padding-left:20px}\n"
    "ul.choices{list-style:none;padding:0}\nul.choices button{width:100%;text-align:left}\n"
    "</style>\n</head>\n<body>\n<main>\n"
    "<div class=\"brand\">{{&logo}}<span>{{brand}}</span></div>\n"
    "<h1>{{title}}</h1>\n"
    "{{&content}}"
    "</main>\n</body>\n</html>\n";

static void page_headers(sk_req *q)
{
    apr_table_t *h = q->r->err_headers_out;
    apr_table_setn(h, "Cache-Control", "no-store");
    apr_table_setn(h, "Pragma", "no-cache");
    apr_table_setn(h, "X-Frame-Options", "DENY");
    apr_table_setn(h, "Content-Security-Policy", CSP);
    apr_table_setn(h, "X-Content-Type-Options", "nosniff");
    apr_table_setn(h, "Referrer-Policy", "no-referrer");
}

static int send_page(sk_req *q, int status, const sk_brand *b, const char *title, const char *content,
                     const char *head)
{
    request_rec *r = q->r;
    apr_table_t *v = apr_table_make(q->p, 8);
    sk_brand def;
    char *html;
    if (!b) {
        sk_html_brand(NULL, NULL, &def);
        b = &def;
    }
    apr_table_setn(v, "title", title);
    apr_table_setn(v, "brand", b->name);
    /* checked by sk_html_brand: a colour of hex digits only */
    apr_table_setn(v, "color", sk_html_valid_color(b->color) ? b->color : SK_HTML_DEFAULT_COLOR);
    if (sk_html_valid_logo(b->logo_url))
        apr_table_setn(v, "logo", apr_pstrcat(q->p, "<img src=\"", sk_html_escape(q->p, b->logo_url),
                                              "\" alt=\"\">", NULL));
    apr_table_setn(v, "content", content);
    if (head)
        apr_table_setn(v, "head", head);
    html = sk_html_render(q->p, LAYOUT, v);
    page_headers(q);
    r->status = status;
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_set_content_length(r, (apr_off_t)strlen(html));
    if (!r->header_only)
        ap_rputs(html, r);
    return OK;
}

int sk_html_page(sk_req *q, int status, const sk_brand *b, const char *title, const char *content)
{
    return send_page(q, status, b, title, content, NULL);
}

int sk_html_message(sk_req *q, int status, const sk_brand *b, const char *title, const char *message)
{
    return sk_html_page(q, status, b, title,
                        apr_pstrcat(q->p, "<p>", sk_html_escape(q->p, message), "</p>\n", NULL));
}

int sk_html_continue(sk_req *q, const sk_brand *b, const char *url)
{
    const char *u = sk_html_escape(q->p, url);
    return send_page(q, HTTP_OK, b, "Continue",
                     apr_pstrcat(q->p, "<p>Returning to the application&hellip;</p>\n"
                                 "<p><a class=\"button\" id=\"continue\" href=\"", u, "\">Continue</a></p>\n", NULL),
                     apr_pstrcat(q->p, "<meta http-equiv=\"refresh\" content=\"0;url=", u, "\">\n", NULL));
}
